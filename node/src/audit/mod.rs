//! The audit log (docs/AUDIT_LOG.md): every request a node serves or makes is an entry in an
//! append-only RFC 9162 Merkle tree, with signed checkpoints and proofs for auditors.
//!
//! The formats and every check an auditor runs live in the pure crate `attesta-audit`
//! (`node/audit/`), re-exported here under their old names:
//! - [`merkle`]: the tree and its proofs;
//! - [`entry`]: one entry and its canonical encoding;
//! - [`note`]: checkpoints as C2SP signed notes, and cosignatures;
//! - [`bundle`]: exported logs and their offline verification;
//! - [`reconcile`]: two nodes' logs compared call by call;
//! - [`receipt`]: one entry's proof of inclusion, for the agency it names;
//! - [`names`]: log origins and witness names;
//! - [`witness`]: the witness's rule (does a checkpoint extend the last one cosigned).
//!
//! Node-side, here:
//! - [`subject`]: the key that blinds subjects in entries;
//! - [`log`]: the node's log (durable group-committed appends, checkpoint signing);
//! - [`witnessed`]: the witness's state per peer log, and its reset (`forget`).

pub use attesta_audit::{bundle, entry, merkle, names, note, receipt, reconcile, witness};

#[cfg(feature = "node")]
pub mod log;
pub mod subject;
#[cfg(feature = "node")]
pub mod witnessed;

pub use names::origin;

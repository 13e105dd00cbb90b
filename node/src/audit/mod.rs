//! The audit log (DESIGN.md §6): every request a node serves or makes is an entry in an
//! append-only RFC 9162 Merkle tree, with signed checkpoints and proofs for auditors.
//!
//! - [`merkle`]: the tree and its proofs (pure code, shared with the auditor's tools);
//! - [`entry`]: one entry and its canonical encoding;
//! - [`note`]: checkpoints as C2SP signed notes, and cosignatures;
//! - [`log`]: the node's log (durable group-committed appends, checkpoint signing);
//! - [`bundle`]: exported logs and their offline verification;
//! - [`reconcile`]: two nodes' logs compared call by call;
//! - [`receipt`]: one entry's proof of inclusion, for the agency it names;
//! - [`report`]: the citizen access report, gathered from every node.

pub mod bundle;
#[cfg(feature = "node")]
pub mod cli;
pub mod entry;
#[cfg(feature = "node")]
pub mod log;
pub mod merkle;
pub mod note;
pub mod receipt;
pub mod reconcile;
#[cfg(feature = "node")]
pub mod report;

/// The origin (and checkpoint key name) of an agency's log: `<trust-domain>/<agency>/audit`.
pub fn origin(trust_domain: &str, agency: &str) -> String {
    format!("{trust_domain}/{agency}/audit")
}

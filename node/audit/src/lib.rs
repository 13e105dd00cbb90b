//! attesta's audit log, as an auditor sees it: the formats every node writes and every check
//! that can be run on them offline, with nothing but the federation CA.
//!
//! Layout:
//! - [`merkle`]: the RFC 9162 tree and its inclusion and consistency proofs.
//! - [`entry`]: one log entry and its canonical encoding (the tree's leaves).
//! - [`note`]: C2SP signed notes, checkpoints, cosignature/v1, tlog-witness requests.
//! - [`names`]: log origins and witness names, and the agency each one names.
//! - [`witness`]: the witness's rule, "does this checkpoint extend the last one I cosigned".
//! - [`bundle`]: exported logs (whole or a range) and their verification.
//! - [`receipt`]: one entry's proof of inclusion (C2SP tlog-proof) and its verification.
//! - [`reconcile`]: two nodes' logs compared call by call.
//! - [`attestation`]: signed answers (compact JWS) and their verification.
//! - [`cli`]: the offline commands of the `attesta-audit` binary (and of `attesta audit`).
//!
//! This crate links no RocksDB, HTTP, async runtime, TLS stack or policy engine, and its
//! library does no I/O: the node writes these formats through it, and the auditor's verifier
//! is the same code. Certificates are checked by `attesta-certs`' trust module (openssl).

pub mod attestation;
pub mod bundle;
pub mod cli;
pub mod entry;
pub mod merkle;
pub mod names;
pub mod note;
pub mod receipt;
pub mod reconcile;
pub mod witness;

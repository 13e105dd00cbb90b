//! The audit log (DESIGN.md §6). So far: the RFC 9162 Merkle tree and its proofs, shared by
//! the node and the auditor's tools (`attesta audit check-inclusion|check-consistency`).

pub mod cli;
pub mod merkle;

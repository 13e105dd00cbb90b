//! Multi-node integration tests over real TLS on loopback.

// Tests fail loudly: unwrapping is how they say "this must not fail".
#![allow(clippy::unwrap_used)]

#[path = "../harness/mod.rs"]
mod harness;

mod api;
mod audit;
mod cli;
mod console;
mod data;
mod demo;
mod hostile;
mod http;
mod mtls;
mod policy;
mod status;
mod tenants;

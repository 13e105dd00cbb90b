//! Multi-node integration tests over real TLS on loopback.

#[path = "../harness/mod.rs"]
mod harness;

mod cli;
mod demo;
mod http;
mod mtls;

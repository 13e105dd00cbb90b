//! The attesta node: a federated query node for public agencies.
//!
//! Layout:
//! - [`domain`]: codice fiscale, places, citizenships (parse, don't validate).
//! - [`config`]: `node.toml`, parsed strictly and validated once into [`config::Settings`].
//! - [`server`]: the HTTPS server (TLS 1.3, mTLS, HTTP/1.1 + HTTP/2), routes, hot reload,
//!   graceful shutdown.
//! - [`problem`]: RFC 9457 problem+json, the only error format on the wire.
//! - [`wire`]: query strings and request bodies, parsed strictly (pure code, fuzzed).
//! - [`metrics`]: Prometheus metrics.
//! - [`client`]: the mTLS HTTP client on the same stack.
//! - [`audit`]: the node's audit log, over the pure formats and verifiers of `attesta-audit`.
//! - [`attestation`]: signed answers (compact JWS) and their verification (from
//!   `attesta-audit`, shared with the auditor's offline tools).
//! - [`manifest`]: the Prefettura's signed manifest in force: verify, order, persist, swap.
//! - [`import`]: CSV validation and import (snapshot or delta).
//! - [`store`]: RocksDB (the only module that names it): residents, permits, indexes.
//! - [`cli`]: the client side, the `attesta` command line and its tools: `attesta policy`
//!   ([`cli::policy`]), `attesta query` and `client.toml` ([`cli::query`]), `attesta audit`
//!   ([`cli::audit`]), `attesta bench`, `attesta generate`, `attesta demo up`. Nothing outside
//!   `cli` imports it.
//!
//! The node reads an agency's identity only from the verified client certificate.
//!
//! Without the default feature `node` the crate is its pure parts only (no RocksDB): domain
//! types, the audit formats, proofs and verifiers, attestations, manifests, problems.

pub use attesta_audit::attestation;
pub mod audit;
#[cfg(feature = "node")]
pub mod cli;
pub mod client;
pub mod config;
pub mod domain;
#[cfg(feature = "node")]
pub mod import;
pub mod manifest;
#[cfg(feature = "node")]
pub mod metrics;
pub mod problem;
#[cfg(feature = "node")]
pub mod server;
#[cfg(feature = "node")]
pub mod store;
pub mod wire;

#[cfg(test)]
mod layering;

//! attesta's PKI: the federation CA, agency certificates, CRLs, and the rustls configuration
//! every node and client uses.
//!
//! Layout:
//! - [`id`]: agency ids, trust domains, SPIFFE ids (parse, don't validate).
//! - [`ca`]: the CA directory: init, issue, revoke, CRL (openssl).
//! - [`leaf`]: the federation's checks on a peer certificate; the only place an identity is
//!   read from a certificate.
//! - [`sign`]: the agency's Ed25519 signing identity.
//! - [`jws`]: compact JWS signed with it (manifests, attestations).
//! - [`trust`]: the CA and CRL loaded from files, and the checks of signing and TLS
//!   certificates against them (openssl only).
//! - [`tls`]: rustls server and client configs (TLS 1.3, aws-lc-rs, mandatory client auth),
//!   behind the default feature `tls`. Without it the crate links no TLS stack: the offline
//!   verifier (`attesta-audit`) builds on [`trust`], [`jws`] and [`sign`] alone.
//! - [`fsutil`]: atomic writes, 0600 private keys.
//!
//! This crate does no networking and holds no long-lived state: callers load, reload and swap.

pub mod ca;
pub mod fsutil;
pub mod id;
pub mod jws;
pub mod leaf;
pub mod sign;
#[cfg(feature = "tls")]
pub mod tls;
pub mod trust;

pub use ca::{AgencyFiles, Ca, CaError, IssuedLeaf, LeafKind, LeafSpec, OperatorFiles};
pub use id::{AgencyId, NameError, OperatorId, OperatorName, SpiffeId, TrustDomain};
pub use leaf::{check_leaf, check_operator, IdentityError, LeafIdentity, OperatorIdentity, Role};
pub use sign::{SignerCert, SigningIdentity};
#[cfg(feature = "tls")]
pub use tls::Identity;
pub use trust::{LoadError, TrustStore};

/// Fills `buf` from the system CSPRNG (keys, query ids).
pub fn random_bytes(buf: &mut [u8]) {
    // See `random_hex`.
    openssl::rand::rand_bytes(buf).expect("system random number generator");
}

/// `n` random bytes from the system CSPRNG, as lower-case hex (query ids, upload names).
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    // OpenSSL's RAND_bytes fails only if the OS cannot seed it, which would make every key
    // this process generates unsafe as well.
    openssl::rand::rand_bytes(&mut bytes).expect("system random number generator");
    hex::encode(&bytes)
}

//! What the federation demands of a TLS peer's certificate beyond a valid chain: the right
//! extended key usage and exactly one SPIFFE id in the federation's trust domain.
//!
//! The checks here are the only way an agency identity is read from a certificate.

use std::collections::HashMap;
use std::sync::Mutex;

use openssl::x509::{X509ExtendedKeyUsage, X509};
use sha2::{Digest, Sha256};

use crate::id::{AgencyId, OperatorId, SpiffeId, TrustDomain};

/// Which side of a TLS connection the certificate was presented by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// Why a certificate that chains to the CA is still not an acceptable agency identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("certificate could not be parsed")]
    Malformed,
    #[error("certificate is not a TLS certificate for this role (a signing certificate?)")]
    NotTlsCertificate,
    #[error("certificate has no SPIFFE id URI SAN")]
    NoSpiffeId,
    #[error("certificate has more than one URI SAN")]
    ManyUris,
    #[error("certificate URI SAN {0:?} is not an agency SPIFFE id")]
    BadSpiffeId(String),
    #[error("certificate belongs to trust domain {found}, not {expected}")]
    WrongTrustDomain { found: String, expected: String },
    #[error("peer is agency {found}, expected {expected}")]
    UnexpectedAgency { found: AgencyId, expected: AgencyId },
    #[error("certificate has been revoked")]
    Revoked,
    #[error("certificate is not issued by the federation CA")]
    NotIssuedByCa,
    #[error("certificate is not an Ed25519 signing certificate (digitalSignature, no EKU)")]
    NotSigningCertificate,
    #[error("certificate URI SAN {0:?} is not an operator's SPIFFE id")]
    NotOperator(String),
}

impl IdentityError {
    /// A short stable label, used for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed => "malformed_certificate",
            Self::NotTlsCertificate => "wrong_key_usage",
            Self::NoSpiffeId | Self::ManyUris | Self::BadSpiffeId(_) => "no_spiffe_id",
            Self::WrongTrustDomain { .. } => "wrong_trust_domain",
            Self::UnexpectedAgency { .. } => "unexpected_agency",
            Self::Revoked => "revoked",
            Self::NotIssuedByCa => "unknown_ca",
            Self::NotSigningCertificate => "wrong_key_usage",
            Self::NotOperator(_) => "not_an_operator",
        }
    }
}

/// The identity a verified certificate carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafIdentity {
    pub id: SpiffeId,
    /// Serial number, big-endian bytes without leading zeros.
    pub serial: Vec<u8>,
    /// SHA-256 of the certificate's DER.
    pub fingerprint: [u8; 32],
}

impl LeafIdentity {
    pub fn agency(&self) -> &AgencyId {
        &self.id.agency
    }

    pub fn fingerprint_hex(&self) -> String {
        hex::encode(self.fingerprint)
    }
}

/// Checks a certificate that already chains to the CA and reads its identity.
pub fn check_leaf(
    der: &[u8],
    role: Role,
    trust_domain: &TrustDomain,
) -> Result<LeafIdentity, IdentityError> {
    let cert = X509::from_der(der).map_err(|_| IdentityError::Malformed)?;

    tls_usage(&cert, role)?;
    identity_of(&cert, der, trust_domain)
}

/// The person a verified operator certificate names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorIdentity {
    pub id: OperatorId,
    /// Serial number, big-endian bytes without leading zeros.
    pub serial: Vec<u8>,
    /// SHA-256 of the certificate's DER.
    pub fingerprint: [u8; 32],
}

/// Checks an operator certificate that already chains to the CA (and is not revoked) and reads
/// who it names: EKU clientAuth, exactly one URI SAN, an operator SPIFFE id in `trust_domain`.
/// An agency's own certificate is refused ([`IdentityError::NotOperator`]): a node's key is
/// not a person.
pub fn check_operator(
    der: &[u8],
    trust_domain: &TrustDomain,
) -> Result<OperatorIdentity, IdentityError> {
    let cert = X509::from_der(der).map_err(|_| IdentityError::Malformed)?;
    tls_usage(&cert, Role::Client)?;
    let uri = only_uri(&cert)?;
    let id = OperatorId::parse(&uri).map_err(|_| IdentityError::NotOperator(uri.clone()))?;
    in_domain(&id.trust_domain, trust_domain)?;
    Ok(OperatorIdentity {
        id,
        serial: serial_of(&cert)?,
        fingerprint: Sha256::digest(der).into(),
    })
}

/// The certificate is a TLS certificate for `role`. An absent EKU means "any purpose" to RFC
/// 5280 and to webpki, which is how a signing certificate (no EKU by design) would otherwise
/// pass as a TLS certificate.
fn tls_usage(cert: &X509, role: Role) -> Result<(), IdentityError> {
    let wanted = match role {
        Role::Client => X509ExtendedKeyUsage::SSL_CLIENT,
        Role::Server => X509ExtendedKeyUsage::SSL_SERVER,
    };
    match cert.extended_key_usage() {
        Some(eku) if eku.contains(wanted) => Ok(()),
        _ => Err(IdentityError::NotTlsCertificate),
    }
}

/// The certificate's one URI SAN.
fn only_uri(cert: &X509) -> Result<String, IdentityError> {
    let sans = cert.subject_alt_names();
    let mut uris = sans.iter().flatten().filter_map(|n| n.uri());
    let uri = uris.next().ok_or(IdentityError::NoSpiffeId)?.to_owned();
    if uris.next().is_some() {
        return Err(IdentityError::ManyUris);
    }
    Ok(uri)
}

fn in_domain(found: &TrustDomain, expected: &TrustDomain) -> Result<(), IdentityError> {
    if found != expected {
        return Err(IdentityError::WrongTrustDomain {
            found: found.to_string(),
            expected: expected.to_string(),
        });
    }
    Ok(())
}

/// Serial number, big-endian bytes without leading zeros.
fn serial_of(cert: &X509) -> Result<Vec<u8>, IdentityError> {
    Ok(cert
        .serial_number()
        .to_bn()
        .map_err(|_| IdentityError::Malformed)?
        .to_vec())
}

/// Checks the profile of a signing certificate (the chain is the caller's business): Ed25519,
/// digitalSignature, no EKU, exactly one SPIFFE id in `trust_domain`.
pub fn check_signing_cert(
    cert: &X509,
    trust_domain: &TrustDomain,
) -> Result<LeafIdentity, IdentityError> {
    let ed25519 = cert
        .public_key()
        .map(|k| k.id() == openssl::pkey::Id::ED25519)
        .unwrap_or(false);
    let usage = cert
        .key_usage()
        .unwrap_or(openssl::x509::X509KeyUsage::empty());
    if !ed25519
        || !usage.contains(openssl::x509::X509KeyUsage::DIGITAL_SIGNATURE)
        || cert.extended_key_usage().is_some()
    {
        return Err(IdentityError::NotSigningCertificate);
    }
    let der = cert.to_der().map_err(|_| IdentityError::Malformed)?;
    identity_of(cert, &der, trust_domain)
}

/// The SPIFFE id, serial and fingerprint of a certificate whose profile has been checked.
fn identity_of(
    cert: &X509,
    der: &[u8],
    trust_domain: &TrustDomain,
) -> Result<LeafIdentity, IdentityError> {
    let uri = only_uri(cert)?;
    let id = SpiffeId::parse(&uri).map_err(|_| IdentityError::BadSpiffeId(uri.clone()))?;
    in_domain(&id.trust_domain, trust_domain)?;
    Ok(LeafIdentity {
        id,
        serial: serial_of(cert)?,
        fingerprint: Sha256::digest(der).into(),
    })
}

/// Remembers certificates that passed [`check_leaf`], so a handshake does not decode the same
/// certificate with OpenSSL again and again (its X.509 decoding is the largest cost of a
/// handshake after the signatures).
///
/// A certificate's identity depends only on its bytes, the role and the trust domain, so an
/// entry never goes stale; chain, validity and revocation are checked by webpki on every
/// handshake regardless. The cache is bounded and emptied when full: a federation has tens of
/// agencies, not thousands.
#[derive(Debug, Default)]
pub struct LeafCache {
    entries: Mutex<HashMap<([u8; 32], bool), LeafIdentity>>,
}

const LEAF_CACHE_MAX: usize = 4096;

impl LeafCache {
    /// [`check_leaf`], remembered.
    pub fn check(
        &self,
        der: &[u8],
        role: Role,
        trust_domain: &TrustDomain,
    ) -> Result<LeafIdentity, IdentityError> {
        let key = (Sha256::digest(der).into(), role == Role::Client);
        if let Some(hit) = self.lock().get(&key) {
            return Ok(hit.clone());
        }
        let leaf = check_leaf(der, role, trust_domain)?;
        let mut entries = self.lock();
        if entries.len() >= LEAF_CACHE_MAX {
            entries.clear();
        }
        entries.insert(key, leaf.clone());
        Ok(leaf)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<([u8; 32], bool), LeafIdentity>> {
        // A panic while holding the lock cannot leave the map inconsistent (inserts are
        // single calls), so a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

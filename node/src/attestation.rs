//! Signed attestations: the answers of `/v1/attest/*` are compact JWS (RFC 7515, EdDSA with the
//! answering agency's Ed25519 sign key, its certificate in `x5c`), so that the asking agency
//! can keep them as evidence and anyone holding the federation CA can verify them offline.
//!
//! The payload is the answer itself (docs/openapi.yaml: `ResidenceAnswer`, `PresenceAnswer`),
//! with `iat` (Unix seconds) and `request_sha256` (SHA-256 of the request body, hex), which
//! binds the answer to the exact question asked.

use std::time::{Duration, SystemTime};

use attesta_certs::jws::{self, JwsError};
use attesta_certs::{LeafIdentity, TrustStore};
use sha2::{Digest, Sha256};

/// The JWS `typ` of an attestation.
pub const ATTESTATION_TYP: &str = "attesta-attestation+jws";
/// Media type of an attestation on the wire.
pub const CONTENT_TYPE: &str = "application/jose";

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why an attestation does not verify.
#[derive(Debug, thiserror::Error)]
pub enum AttestationError {
    #[error("{0}")]
    Jws(#[from] JwsError),
    #[error("payload is not an attestation: {0}")]
    Payload(String),
    #[error("signed by {signer}, but the payload says the issuer is {issuer}")]
    IssuerMismatch { signer: String, issuer: String },
}

/// A verified attestation.
#[derive(Debug)]
pub struct Verified {
    pub payload: serde_json::Value,
    pub signer: LeafIdentity,
}

/// Verifies an attestation against the federation CA (and CRL, if the store has one): the
/// signature, a signing certificate of the federation valid when the answer was issued and
/// not revoked, and that the signer is the issuer the payload names.
pub fn verify(trust: &TrustStore, token: &str) -> Result<Verified, AttestationError> {
    let v = jws::verify(trust, ATTESTATION_TYP, token)?;
    let payload: serde_json::Value =
        serde_json::from_slice(&v.payload).map_err(|e| AttestationError::Payload(e.to_string()))?;
    let iat = payload["iat"]
        .as_i64()
        .and_then(|t| u64::try_from(t).ok())
        .ok_or_else(|| AttestationError::Payload("no iat".into()))?;
    v.check_valid_at(SystemTime::UNIX_EPOCH + Duration::from_secs(iat))?;
    let issuer = payload["issuer"].as_str().unwrap_or_default();
    if issuer != v.signer.agency().as_str() {
        return Err(AttestationError::IssuerMismatch {
            signer: v.signer.agency().to_string(),
            issuer: issuer.to_owned(),
        });
    }
    Ok(Verified {
        payload,
        signer: v.signer,
    })
}

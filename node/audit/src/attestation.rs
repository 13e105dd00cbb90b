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
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The JWS `typ` of an attestation.
pub const ATTESTATION_TYP: &str = "attesta-attestation+jws";
/// Media type of an attestation on the wire.
pub const CONTENT_TYPE: &str = "application/jose";

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Why an attestation does not verify.
#[derive(Debug, thiserror::Error)]
pub enum AttestationError {
    #[error(transparent)]
    Jws(#[from] JwsError),
    #[error("payload is not an attestation: {0}")]
    Payload(String),
    #[error("signed by {signer}, but the payload says the issuer is {issuer}")]
    IssuerMismatch { signer: String, issuer: String },
    #[error("implausible time: {0}")]
    Time(String),
}

/// A verified attestation.
#[derive(Debug)]
pub struct Verified {
    pub payload: serde_json::Value,
    pub signer: LeafIdentity,
}

impl Verified {
    /// The payload as the answer it claims to be ([`ResidenceAnswer`], [`PresenceAnswer`]).
    pub fn answer<T: serde::de::DeserializeOwned>(&self) -> Result<T, AttestationError> {
        T::deserialize(&self.payload).map_err(|e| AttestationError::Payload(e.to_string()))
    }
}

/// The fields every attestation carries (docs/openapi.yaml, `AttestationEnvelope`). The node
/// signs these types and the coordinator and auditors read them back: one definition for both
/// ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The answering agency (the signer).
    pub issuer: String,
    /// The asking agency.
    pub audience: String,
    pub query_id: String,
    /// The canonical codice fiscale.
    pub subject: String,
    pub purpose: String,
    /// The date the answer is about, YYYY-MM-DD.
    pub as_of: String,
    /// When the answering registry's data was last imported, YYYY-MM-DD.
    pub data_as_of: Option<String>,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// SHA-256 of the request body, lower-case hex.
    pub request_sha256: String,
}

/// A registry's signed answer (`POST /v1/attest/residence`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResidenceAnswer {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub resident: bool,
    /// ISTAT code of the comune of residence.
    pub comune: Option<String>,
    pub since: Option<String>,
    /// Whether the person needs a residence permit (false: Italian, EU, EEA or Swiss).
    pub permit_required: Option<bool>,
    /// On a service centre's answer for all the agencies it hosts (signed by the host, always
    /// negative): the hosted agencies whose registries were consulted. Absent otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub covers: Vec<String>,
}

/// A Questura's signed answer (`POST /v1/attest/legal-presence`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceAnswer {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub legally_present: bool,
    /// permit, renewal_receipt or parent_permit.
    pub basis: Option<String>,
    pub valid_until: Option<String>,
}

/// How far apart two nodes' clocks may be: an attestation issued further in the future is
/// refused, and a fresh one (see [`verify_fresh`]) must be no older than this.
pub const MAX_SKEW: Duration = Duration::from_secs(300);

/// Verifies an attestation against the federation CA (and CRL, if the store has one): the
/// signature, a signing certificate of the federation valid when the answer was issued and
/// not revoked, an `iat` not in the future, and that the signer is the issuer the payload
/// names. For evidence checked later (offline, by an auditor): the certificate may have
/// expired since.
pub fn verify(trust: &TrustStore, token: &str) -> Result<Verified, AttestationError> {
    verify_at(trust, token, None)
}

/// [`verify`] for an answer received just now (the coordinator's): the signer must also be
/// valid now, and `iat` within [`MAX_SKEW`] of now, so that an expired key cannot sign a
/// backdated answer.
pub fn verify_fresh(trust: &TrustStore, token: &str) -> Result<Verified, AttestationError> {
    verify_at(trust, token, Some(SystemTime::now()))
}

fn verify_at(
    trust: &TrustStore,
    token: &str,
    fresh_at: Option<SystemTime>,
) -> Result<Verified, AttestationError> {
    let v = jws::verify(trust, ATTESTATION_TYP, token)?;
    let payload: serde_json::Value =
        serde_json::from_slice(&v.payload).map_err(|e| AttestationError::Payload(e.to_string()))?;
    let iat = payload["iat"]
        .as_i64()
        .and_then(|t| u64::try_from(t).ok())
        .ok_or_else(|| AttestationError::Payload("no iat".into()))?;
    let issued = SystemTime::UNIX_EPOCH + Duration::from_secs(iat);
    let now = fresh_at.unwrap_or_else(SystemTime::now);
    if issued > now + MAX_SKEW {
        return Err(AttestationError::Time(format!(
            "iat {iat} is in the future"
        )));
    }
    if let Some(now) = fresh_at {
        if issued + MAX_SKEW < now {
            return Err(AttestationError::Time(format!(
                "iat {iat} is more than {} s old for an answer just received",
                MAX_SKEW.as_secs()
            )));
        }
        v.check_valid_at(now)?;
    }
    v.check_valid_at(issued)?;
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

//! Compact JWS (RFC 7515) signed with an agency's Ed25519 sign key: `alg` `EdDSA` (RFC 8037),
//! the signer's certificate in `x5c`, and a `typ` naming what is signed, so a signature over
//! one kind of document can never be passed off as another.
//!
//! Verification checks, in order: the shape of the token, the header (only the fields below,
//! `alg` EdDSA, the expected `typ`, one certificate), the certificate (issued by the federation
//! CA, a signing certificate, a SPIFFE id of our trust domain, not revoked), and the signature.
//! The certificate's validity period is left to the caller ([`Verified::check_valid_at`]),
//! because what matters is the time the document was signed, which only the payload says.

use std::time::SystemTime;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use openssl::pkey::PKey;
use openssl::sign::Verifier;
use openssl::x509::X509;
use serde::{Deserialize, Serialize};

use crate::leaf::{IdentityError, LeafIdentity};
use crate::sign::SigningIdentity;
use crate::trust::TrustStore;

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum JwsError {
    #[error("not a compact JWS: {0}")]
    Malformed(String),
    #[error("unexpected JWS header: {0}")]
    Header(String),
    #[error("signing certificate refused: {0}")]
    Certificate(IdentityError),
    #[error("signature does not verify")]
    BadSignature,
    #[error("signing certificate was not valid at {0}")]
    NotValidAt(String),
    #[error("signing failed: {0}")]
    Sign(String),
}

// The identity error is part of the message, not a separate source: chains printed with
// `{:#}` or `error_chain` would say it twice.
impl From<IdentityError> for JwsError {
    fn from(e: IdentityError) -> Self {
        Self::Certificate(e)
    }
}

impl JwsError {
    /// A short stable label, for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) | Self::Header(_) => "malformed",
            Self::Certificate(_) | Self::NotValidAt(_) => "bad_certificate",
            Self::BadSignature => "bad_signature",
            Self::Sign(_) => "sign_failed",
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    alg: String,
    typ: String,
    x5c: Vec<String>,
}

/// Signs `payload` as a compact JWS of type `typ`.
pub fn sign(signer: &SigningIdentity, typ: &str, payload: &[u8]) -> Result<String, JwsError> {
    let der = signer
        .cert
        .to_der()
        .map_err(|e| JwsError::Sign(e.to_string()))?;
    let header = Header {
        alg: "EdDSA".into(),
        typ: typ.into(),
        x5c: vec![STANDARD.encode(der)],
    };
    let header = serde_json::to_vec(&header).map_err(|e| JwsError::Sign(e.to_string()))?;
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let signature = signer
        .sign(token.as_bytes())
        .map_err(|e| JwsError::Sign(e.to_string()))?;
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(token)
}

/// A token whose signature and certificate checked out.
#[derive(Debug)]
pub struct Verified {
    pub payload: Vec<u8>,
    /// The signer, as its certificate says.
    pub signer: LeafIdentity,
    cert: X509,
}

impl Verified {
    /// Checks that the signing certificate was valid at `at`.
    pub fn check_valid_at(&self, at: SystemTime) -> Result<(), JwsError> {
        let secs = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let t = openssl::asn1::Asn1Time::from_unix(secs as i64)
            .map_err(|e| JwsError::NotValidAt(e.to_string()))?;
        if self.cert.not_before() <= t && t <= self.cert.not_after() {
            Ok(())
        } else {
            Err(JwsError::NotValidAt(t.to_string()))
        }
    }

    /// The signing certificate, DER.
    pub fn certificate_der(&self) -> Vec<u8> {
        self.cert.to_der().unwrap_or_default()
    }
}

/// Verifies a compact JWS of type `typ` against the federation's trust store.
pub fn verify(trust: &TrustStore, typ: &str, token: &str) -> Result<Verified, JwsError> {
    let token = token.trim();
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed(
            "expected three dot-separated parts".into(),
        ));
    };
    let decode = |what: &str, part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|e| JwsError::Malformed(format!("{what} is not base64url: {e}")))
    };
    let header: Header = serde_json::from_slice(&decode("header", h)?)
        .map_err(|e| JwsError::Header(e.to_string()))?;
    // EdDSA (RFC 8037) as signed here, or its fully specified name Ed25519 (RFC 9864): the
    // same algorithm, with an Ed25519 key either way.
    if header.alg != "EdDSA" && header.alg != "Ed25519" {
        return Err(JwsError::Header(format!(
            "alg {:?} (expected EdDSA or Ed25519)",
            header.alg
        )));
    }
    if header.typ != typ {
        return Err(JwsError::Header(format!(
            "typ {:?} (expected {typ:?})",
            header.typ
        )));
    }
    let [cert_b64] = header.x5c.as_slice() else {
        return Err(JwsError::Header(
            "x5c must hold exactly one certificate".into(),
        ));
    };
    let der = STANDARD
        .decode(cert_b64)
        .map_err(|e| JwsError::Header(format!("x5c is not base64: {e}")))?;
    let cert = X509::from_der(&der).map_err(|_| JwsError::Certificate(IdentityError::Malformed))?;
    let signer = trust.check_signer_der(&der, &cert)?;

    let signature = decode("signature", s)?;
    let key = cert
        .public_key()
        .map_err(|_| JwsError::Certificate(IdentityError::Malformed))?;
    if !ed25519_verifies(&key, &token.as_bytes()[..h.len() + 1 + p.len()], &signature) {
        return Err(JwsError::BadSignature);
    }
    Ok(Verified {
        payload: decode("payload", p)?,
        signer,
        cert,
    })
}

/// The payload of a token, **without any verification**: for displaying a document when no
/// trust anchors are at hand. Never act on it.
pub fn payload_unverified(token: &str) -> Result<Vec<u8>, JwsError> {
    let mut parts = token.trim().split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(p), Some(_), None) => URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|e| JwsError::Malformed(format!("payload is not base64url: {e}"))),
        _ => Err(JwsError::Malformed(
            "expected three dot-separated parts".into(),
        )),
    }
}

fn ed25519_verifies(key: &PKey<openssl::pkey::Public>, message: &[u8], signature: &[u8]) -> bool {
    Verifier::new_without_digest(key)
        .and_then(|mut v| v.verify_oneshot(signature, message))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AgencyId, Ca, TrustDomain};

    struct Fixture {
        _dir: tempfile::TempDir,
        ca: Ca,
        trust: TrustStore,
        dir: std::path::PathBuf,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let td = TrustDomain::new("jws.attesta.test").unwrap();
        let mut ca = Ca::init(&tmp.path().join("ca"), td.clone()).unwrap();
        let dir = tmp.path().join("agency");
        ca.issue_agency(
            &AgencyId::new("prefettura-pu").unwrap(),
            vec![],
            vec![],
            30,
            &dir,
        )
        .unwrap();
        let trust = TrustStore::load(td, &tmp.path().join("ca/ca.crt"), None).unwrap();
        Fixture {
            _dir: tmp,
            ca,
            trust,
            dir,
        }
    }

    fn signer(f: &Fixture) -> SigningIdentity {
        SigningIdentity::load(
            &f.trust.trust_domain,
            &f.dir.join("sign.crt"),
            &f.dir.join("sign.key"),
        )
        .unwrap()
    }

    #[test]
    fn signed_token_verifies_and_names_the_signer() {
        let f = fixture();
        let token = sign(&signer(&f), "test+jws", b"{\"a\":1}").unwrap();
        let v = verify(&f.trust, "test+jws", &token).unwrap();
        assert_eq!(v.payload, b"{\"a\":1}");
        assert_eq!(v.signer.agency().as_str(), "prefettura-pu");
        v.check_valid_at(SystemTime::now()).unwrap();
        assert!(v
            .check_valid_at(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1))
            .is_err());
    }

    /// A token with the given header fields, signed by `id`.
    fn token_with_alg(id: &SigningIdentity, alg: &str) -> String {
        let x5c = STANDARD.encode(id.cert.to_der().unwrap());
        let header = format!(r#"{{"alg":"{alg}","typ":"test+jws","x5c":["{x5c}"]}}"#);
        let mut token = URL_SAFE_NO_PAD.encode(header);
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(b"{}"));
        let sig = id.sign(token.as_bytes()).unwrap();
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(sig));
        token
    }

    #[test]
    fn the_fully_specified_ed25519_alg_is_accepted_and_nothing_else() {
        let f = fixture();
        let id = signer(&f);
        // RFC 9864: "Ed25519" names the same algorithm as "EdDSA" with an Ed25519 key.
        assert!(verify(&f.trust, "test+jws", &token_with_alg(&id, "Ed25519")).is_ok());
        assert!(verify(&f.trust, "test+jws", &token_with_alg(&id, "EdDSA")).is_ok());
        for alg in ["none", "HS256", "ES256", "Ed448", "eddsa", ""] {
            assert!(
                matches!(
                    verify(&f.trust, "test+jws", &token_with_alg(&id, alg)),
                    Err(JwsError::Header(_))
                ),
                "{alg}"
            );
        }
    }

    #[test]
    fn every_change_to_a_token_is_refused() {
        let f = fixture();
        let token = sign(&signer(&f), "test+jws", b"payload").unwrap();
        // Another typ.
        assert!(matches!(
            verify(&f.trust, "other", &token),
            Err(JwsError::Header(_))
        ));
        // Payload swapped.
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(b"payloae"),
            parts[2]
        );
        assert!(matches!(
            verify(&f.trust, "test+jws", &forged),
            Err(JwsError::BadSignature)
        ));
        // One signature byte flipped.
        let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        sig[10] ^= 1;
        let forged = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
        assert!(matches!(
            verify(&f.trust, "test+jws", &forged),
            Err(JwsError::BadSignature)
        ));
        // Not a JWS at all.
        for bad in ["", "a.b", "a.b.c.d", "!!.??.##"] {
            assert!(verify(&f.trust, "test+jws", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn revoked_or_foreign_signers_are_refused() {
        let mut f = fixture();
        let token = sign(&signer(&f), "test+jws", b"x").unwrap();

        // A certificate from another CA.
        let other = fixture();
        assert!(matches!(
            verify(&other.trust, "test+jws", &token),
            Err(JwsError::Certificate(IdentityError::NotIssuedByCa))
        ));

        // Revoked: the CRL lists the sign certificate.
        f.ca.revoke_agency(&AgencyId::new("prefettura-pu").unwrap())
            .unwrap();
        let trust = TrustStore::load(
            f.trust.trust_domain.clone(),
            &f._dir.path().join("ca/ca.crt"),
            Some(&f._dir.path().join("ca/crl.pem")),
        )
        .unwrap();
        assert!(matches!(
            verify(&trust, "test+jws", &token),
            Err(JwsError::Certificate(IdentityError::Revoked))
        ));
    }
}

//! The agency's signing identity: an Ed25519 key and the certificate that binds it to the
//! agency. Signs attestations, audit checkpoints and manifests.

use std::path::Path;

use openssl::pkey::{Id, PKey, Private};
use openssl::sign::Signer;
use openssl::x509::{X509KeyUsage, X509};

use crate::id::{SpiffeId, TrustDomain};
use crate::tls::TlsError;

/// An Ed25519 signing key with its certificate.
pub struct SigningIdentity {
    pub cert: X509,
    key: PKey<Private>,
    pub id: SpiffeId,
}

impl std::fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningIdentity")
            .field("id", &self.id)
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl SigningIdentity {
    /// Loads and checks a sign certificate and key: Ed25519, digitalSignature and
    /// nonRepudiation, no EKU, one SPIFFE id in `trust_domain`, key matching the certificate.
    pub fn load(
        trust_domain: &TrustDomain,
        cert_path: &Path,
        key_path: &Path,
    ) -> Result<Self, TlsError> {
        let invalid = |path: &Path, what: String| TlsError::Invalid {
            path: path.to_owned(),
            what,
        };
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                path: path.to_owned(),
                source,
            })
        };
        let cert = X509::from_pem(&read(cert_path)?)
            .map_err(|e| invalid(cert_path, format!("not a PEM certificate ({e})")))?;
        let key = PKey::private_key_from_pem(&read(key_path)?)
            .map_err(|e| invalid(key_path, format!("not a PEM private key ({e})")))?;
        if key.id() != Id::ED25519 {
            return Err(invalid(key_path, "not an Ed25519 key".into()));
        }
        let usage = cert.key_usage().unwrap_or(X509KeyUsage::empty());
        let is_sign_cert = cert
            .public_key()
            .map(|k| k.id() == Id::ED25519)
            .unwrap_or(false)
            && usage.contains(X509KeyUsage::DIGITAL_SIGNATURE | X509KeyUsage::NON_REPUDIATION)
            && cert.extended_key_usage().is_none();
        if !is_sign_cert {
            return Err(invalid(
                cert_path,
                "not an Ed25519 signing certificate (digitalSignature, nonRepudiation, no EKU)"
                    .into(),
            ));
        }
        if !cert
            .public_key()
            .map(|pk| pk.public_eq(&key))
            .unwrap_or(false)
        {
            return Err(TlsError::KeyMismatch {
                cert: cert_path.to_owned(),
                key: key_path.to_owned(),
            });
        }
        let uri = cert
            .subject_alt_names()
            .and_then(|names| names.iter().find_map(|n| n.uri().map(str::to_owned)))
            .ok_or_else(|| invalid(cert_path, "no SPIFFE id URI SAN".into()))?;
        let id = SpiffeId::parse(&uri).map_err(|e| invalid(cert_path, e.to_string()))?;
        if &id.trust_domain != trust_domain {
            return Err(invalid(
                cert_path,
                format!(
                    "certificate belongs to trust domain {}, not {trust_domain}",
                    id.trust_domain
                ),
            ));
        }
        Ok(Self { cert, key, id })
    }

    /// Signs `message` with Ed25519 (64 bytes).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let mut signer = Signer::new_without_digest(&self.key)?;
        signer.sign_oneshot_to_vec(message)
    }
}

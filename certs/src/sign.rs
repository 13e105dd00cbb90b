//! The agency's signing identity: an Ed25519 key and the certificate that binds it to the
//! agency. Signs attestations, audit checkpoints and manifests.

use std::path::Path;

use openssl::pkey::{Id, PKey, Private};
use openssl::sign::Signer;
use openssl::x509::{X509KeyUsage, X509};

use crate::id::{SpiffeId, TrustDomain};
use crate::trust::LoadError;

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
    ) -> Result<Self, LoadError> {
        let invalid = |path: &Path, what: String| LoadError::Invalid {
            path: path.to_owned(),
            what,
        };
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| LoadError::Read {
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
        // The same profile and identity check as every other sign certificate (Ed25519,
        // digitalSignature, no EKU, exactly one URI SAN: a SPIFFE id in `trust_domain`), and
        // nonRepudiation, which the CA gives every sign certificate it issues.
        let leaf = crate::leaf::check_signing_cert(&cert, trust_domain).map_err(|e| {
            invalid(
                cert_path,
                format!("not a signing certificate of {trust_domain}: {e}"),
            )
        })?;
        let usage = cert.key_usage().unwrap_or(X509KeyUsage::empty());
        if !usage.contains(X509KeyUsage::NON_REPUDIATION) {
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
            return Err(LoadError::KeyMismatch {
                cert: cert_path.to_owned(),
                key: key_path.to_owned(),
            });
        }
        let id = leaf.id;
        Ok(Self { cert, key, id })
    }

    /// Signs `message` with Ed25519 (64 bytes).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let mut signer = Signer::new_without_digest(&self.key)?;
        signer.sign_oneshot_to_vec(message)
    }
}

impl SigningIdentity {
    /// The raw Ed25519 public key (32 bytes).
    pub fn public_key(&self) -> [u8; 32] {
        // `load` checked that the key is Ed25519, whose raw public key is 32 bytes.
        self.key
            .raw_public_key()
            .ok()
            .and_then(|k| k.try_into().ok())
            .expect("an Ed25519 key has a 32-byte public key")
    }

    /// The certificate as DER.
    pub fn cert_der(&self) -> Vec<u8> {
        self.cert.to_der().unwrap_or_default()
    }

    /// The certificate as PEM.
    pub fn cert_pem(&self) -> String {
        self.cert
            .to_pem()
            .map(|p| String::from_utf8_lossy(&p).into_owned())
            .unwrap_or_default()
    }
}

/// Someone else's signing certificate (from an audit bundle, a peer's checkpoint): checked
/// against the trust store, then used to verify Ed25519 signatures.
#[derive(Clone)]
pub struct SignerCert {
    cert: X509,
    der: Vec<u8>,
}

impl std::fmt::Debug for SignerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignerCert").finish_non_exhaustive()
    }
}

impl SignerCert {
    /// Reads one PEM certificate.
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let cert = X509::from_pem(pem).map_err(|e| format!("not a PEM certificate ({e})"))?;
        let der = cert.to_der().map_err(|e| e.to_string())?;
        Ok(Self { cert, der })
    }

    /// Reads one DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        let cert = X509::from_der(der).map_err(|e| format!("not a DER certificate ({e})"))?;
        Ok(Self {
            cert,
            der: der.to_vec(),
        })
    }

    pub fn pem(&self) -> String {
        self.cert
            .to_pem()
            .map(|p| String::from_utf8_lossy(&p).into_owned())
            .unwrap_or_default()
    }

    /// Chain, profile and revocation, as for attestations; see [`TrustStore::check_signer`].
    pub fn check(
        &self,
        trust: &crate::TrustStore,
    ) -> Result<crate::LeafIdentity, crate::IdentityError> {
        trust.check_signer_der(&self.der, &self.cert)
    }

    /// Whether the certificate is valid at `unix` seconds.
    pub fn valid_at(&self, unix: i64) -> bool {
        openssl::asn1::Asn1Time::from_unix(unix)
            .map(|t| self.cert.not_before() <= t && t <= self.cert.not_after())
            .unwrap_or(false)
    }

    /// The raw Ed25519 public key, if the certificate has one.
    pub fn public_key(&self) -> Option<[u8; 32]> {
        let key = self.cert.public_key().ok()?;
        if key.id() != Id::ED25519 {
            return None;
        }
        key.raw_public_key().ok()?.try_into().ok()
    }

    /// Whether `sig` is this certificate's Ed25519 signature of `message`.
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        let Ok(key) = self.cert.public_key() else {
            return false;
        };
        if key.id() != Id::ED25519 {
            return false;
        }
        openssl::sign::Verifier::new_without_digest(&key)
            .and_then(|mut v| v.verify_oneshot(sig, message))
            .unwrap_or(false)
    }
}

/// Whether `sig` is a valid Ed25519 signature of `message` by the raw `public_key`.
pub fn ed25519_verify(public_key: &[u8; 32], message: &[u8], sig: &[u8]) -> bool {
    let Ok(key) = PKey::public_key_from_raw_bytes(public_key, Id::ED25519) else {
        return false;
    };
    openssl::sign::Verifier::new_without_digest(&key)
        .and_then(|mut v| v.verify_oneshot(sig, message))
        .unwrap_or(false)
}

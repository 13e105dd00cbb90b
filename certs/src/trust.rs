//! The federation's trust: its CA certificates and CRL, loaded from files, and the checks every
//! certificate is put through before anything it signed or presented is believed (CA chain,
//! revocation, the agency profiles of [`crate::leaf`]).
//!
//! Pure openssl: no TLS stack. The offline verifier (`attesta-audit`) uses this module alone;
//! [`crate::tls`] builds rustls configurations on top of it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openssl::x509::{X509Crl, X509};

use crate::id::TrustDomain;
use crate::leaf::{IdentityError, LeafCache, LeafIdentity, Role};

/// Errors loading the federation's certificates, keys and CRLs. Each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {what}")]
    Invalid { path: PathBuf, what: String },
    #[error("{key} does not belong to the certificate in {cert}")]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("{path}: certificate is not an agency certificate of this federation: {why}")]
    NotAgencyCertificate { path: PathBuf, why: IdentityError },
    #[error("building TLS configuration: {0}")]
    Config(String),
}

/// The federation's trust anchors and revocation state, loaded from files.
#[derive(Debug, Clone)]
pub struct TrustStore {
    pub trust_domain: TrustDomain,
    /// The CA certificates (DER), the roots of every TLS chain.
    ca_ders: Arc<Vec<Vec<u8>>>,
    /// The CRL (DER), verified against the CA, for the TLS verifiers.
    crls: Arc<Vec<Vec<u8>>>,
    revoked: Arc<HashSet<Vec<u8>>>,
    leaves: Arc<LeafCache>,
    /// The CA certificates, for checking signing certificates (which never appear in TLS).
    cas: Arc<Vec<X509>>,
    /// Signing certificates already checked against `cas`, by SHA-256 of their DER.
    signers: Arc<Mutex<HashMap<[u8; 32], LeafIdentity>>>,
}

impl TrustStore {
    /// Loads the CA certificate and, if given, a CRL signed by it.
    pub fn load(
        trust_domain: TrustDomain,
        ca_path: &Path,
        crl_path: Option<&Path>,
    ) -> Result<Self, LoadError> {
        let ca_pem = read(ca_path)?;
        let cas = X509::stack_from_pem(&ca_pem)
            .map_err(|e| invalid(ca_path, format!("not a PEM certificate ({e})")))?;
        let ca = cas
            .first()
            .ok_or_else(|| invalid(ca_path, "no certificate found".into()))?;
        let ca_ders = cas
            .iter()
            .map(|c| c.to_der())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(ca_path, format!("not a usable CA certificate ({e})")))?;

        let mut crls = Vec::new();
        let mut revoked = HashSet::new();
        if let Some(crl_path) = crl_path {
            let pem = read(crl_path)?;
            let crl = X509Crl::from_pem(&pem)
                .map_err(|e| invalid(crl_path, format!("not a PEM CRL ({e})")))?;
            let ca_key = ca
                .public_key()
                .map_err(|e| invalid(ca_path, format!("unreadable public key ({e})")))?;
            // A CRL we cannot trust would be worse than none: refuse it, keep the old one.
            if !crl.verify(&ca_key).unwrap_or(false) {
                return Err(invalid(
                    crl_path,
                    "CRL is not signed by the federation CA".into(),
                ));
            }
            for r in crl.get_revoked().into_iter().flatten() {
                let serial = r
                    .serial_number()
                    .to_bn()
                    .map_err(|e| invalid(crl_path, format!("bad serial ({e})")))?;
                revoked.insert(serial.to_vec());
            }
            let der = crl
                .to_der()
                .map_err(|e| invalid(crl_path, format!("cannot re-encode CRL ({e})")))?;
            crls.push(der);
        }
        Ok(Self {
            trust_domain,
            ca_ders: Arc::new(ca_ders),
            crls: Arc::new(crls),
            revoked: Arc::new(revoked),
            leaves: Arc::default(),
            cas: Arc::new(cas),
            signers: Arc::default(),
        })
    }

    /// [`check_leaf`] for a certificate that webpki has verified, through this store's cache.
    pub fn check_leaf(&self, der: &[u8], role: Role) -> Result<LeafIdentity, IdentityError> {
        self.leaves.check(der, role, &self.trust_domain)
    }

    /// Whether the CRL lists this serial (big-endian bytes, as in [`LeafIdentity::serial`]).
    pub fn is_revoked(&self, serial: &[u8]) -> bool {
        self.revoked.contains(serial)
    }

    /// Checks a signing certificate: issued by the CA, Ed25519 with digitalSignature and no
    /// EKU, one SPIFFE id in our trust domain, not revoked. The validity period is *not*
    /// checked here: the caller decides at which time it matters (see [`crate::jws`]).
    pub fn check_signer(&self, cert: &X509) -> Result<LeafIdentity, IdentityError> {
        let issued = self.cas.iter().any(|ca| {
            ca.issued(cert) == openssl::x509::X509VerifyResult::OK
                && ca
                    .public_key()
                    .and_then(|k| cert.verify(&k))
                    .unwrap_or(false)
        });
        if !issued {
            return Err(IdentityError::NotIssuedByCa);
        }
        let leaf = crate::leaf::check_signing_cert(cert, &self.trust_domain)?;
        if self.is_revoked(&leaf.serial) {
            return Err(IdentityError::Revoked);
        }
        Ok(leaf)
    }

    /// [`TrustStore::check_signer`] for the certificate whose DER is `der`, remembering the
    /// CA signature and profile checks (the costly part); revocation is checked every time.
    pub fn check_signer_der(&self, der: &[u8], cert: &X509) -> Result<LeafIdentity, IdentityError> {
        use sha2::Digest;
        let key: [u8; 32] = sha2::Sha256::digest(der).into();
        let lock = || self.signers.lock().unwrap_or_else(|p| p.into_inner());
        let cached = lock().get(&key).cloned();
        let leaf = match cached {
            Some(leaf) => leaf,
            None => {
                let leaf = self.check_signer(cert)?;
                let mut signers = lock();
                if signers.len() >= 1024 {
                    signers.clear();
                }
                signers.insert(key, leaf.clone());
                leaf
            }
        };
        if self.is_revoked(&leaf.serial) {
            return Err(IdentityError::Revoked);
        }
        Ok(leaf)
    }

    /// How many serials the CRL lists.
    pub fn revoked_count(&self) -> usize {
        self.revoked.len()
    }

    /// The CA certificates, DER-encoded.
    pub fn ca_ders(&self) -> &[Vec<u8>] {
        &self.ca_ders
    }

    /// The verified CRL, DER-encoded (empty when none was loaded).
    pub fn crl_ders(&self) -> &[Vec<u8>] {
        &self.crls
    }
}

/// The trust domain a federation CA certificate was created for (its subject's O), so that
/// offline tools need only the CA file.
pub fn ca_trust_domain(ca_path: &Path) -> Result<TrustDomain, LoadError> {
    let pem = read(ca_path)?;
    let ca = X509::from_pem(&pem)
        .map_err(|e| invalid(ca_path, format!("not a PEM certificate ({e})")))?;
    let o = ca
        .subject_name()
        .entries_by_nid(openssl::nid::Nid::ORGANIZATIONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok())
        .ok_or_else(|| invalid(ca_path, "not an attesta federation CA (no O)".into()))?;
    TrustDomain::new(&o)
        .map_err(|e| invalid(ca_path, format!("not an attesta federation CA ({e})")))
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })
}

pub(crate) fn invalid(path: &Path, what: String) -> LoadError {
    LoadError::Invalid {
        path: path.to_owned(),
        what,
    }
}

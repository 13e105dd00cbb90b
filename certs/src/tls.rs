//! rustls configuration for the federation: TLS 1.3 only, aws-lc-rs (with the post-quantum
//! hybrid key exchange X25519MLKEM768 preferred), client certificates mandatory, CRLs checked,
//! and the agency identity checks of [`crate::leaf`] on both sides.
//!
//! This module builds configs from files; it does not watch or reload them (the node does).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openssl::x509::{X509Crl, X509};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, OtherError,
    RootCertStore, ServerConfig, SignatureScheme,
};

use crate::id::{AgencyId, TrustDomain};
use crate::leaf::{check_leaf, IdentityError, LeafCache, LeafIdentity, Role};

/// Errors loading TLS material. Each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
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
    #[error("{path}: certificate is not an agency certificate of this federation: {source}")]
    NotAgencyCertificate {
        path: PathBuf,
        #[source]
        source: IdentityError,
    },
    #[error("building TLS configuration: {0}")]
    Config(String),
}

/// The crypto provider every attesta TLS config is built with.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Installs [`provider`] as the process default, for libraries that look it up. Every config
/// this crate builds names its provider explicitly, so the default is never raced for.
pub fn install_default_provider() {
    // Err means a provider is already installed; configs built here do not depend on it.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// ALPN protocols, most preferred first.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The federation's trust anchors and revocation state, loaded from files.
#[derive(Debug, Clone)]
pub struct TrustStore {
    pub trust_domain: TrustDomain,
    roots: Arc<RootCertStore>,
    crls: Vec<CertificateRevocationListDer<'static>>,
    revoked: Arc<HashSet<Vec<u8>>>,
    leaves: Arc<LeafCache>,
    /// The CA certificates, for checking signing certificates (which never appear in TLS).
    cas: Arc<Vec<X509>>,
    /// Signing certificates already checked against `cas`, by SHA-256 of their DER.
    signers: Arc<std::sync::Mutex<std::collections::HashMap<[u8; 32], LeafIdentity>>>,
}

impl TrustStore {
    /// Loads the CA certificate and, if given, a CRL signed by it.
    pub fn load(
        trust_domain: TrustDomain,
        ca_path: &Path,
        crl_path: Option<&Path>,
    ) -> Result<Self, TlsError> {
        let ca_pem = read(ca_path)?;
        let ca_ders = CertificateDer::pem_slice_iter(&ca_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(ca_path, format!("not a PEM certificate ({e})")))?;
        if ca_ders.is_empty() {
            return Err(invalid(ca_path, "no certificate found".into()));
        }
        let mut roots = RootCertStore::empty();
        for der in ca_ders {
            roots
                .add(der)
                .map_err(|e| invalid(ca_path, format!("not a usable CA certificate ({e})")))?;
        }
        let cas = X509::stack_from_pem(&ca_pem)
            .map_err(|e| invalid(ca_path, format!("not a PEM certificate ({e})")))?;
        let ca = cas
            .first()
            .ok_or_else(|| invalid(ca_path, "no certificate found".into()))?;

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
            crls.push(CertificateRevocationListDer::from(der));
        }
        Ok(Self {
            trust_domain,
            roots: Arc::new(roots),
            crls,
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

    /// The verifier nodes use for their clients: chain to the CA, not revoked, not expired,
    /// clientAuth EKU, one SPIFFE id in our trust domain.
    pub fn client_verifier(&self) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
        let inner = WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider())
            .with_crls(self.crls.clone())
            .only_check_end_entity_revocation()
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        Ok(Arc::new(AgencyClientVerifier {
            inner,
            trust: self.clone(),
        }))
    }

    /// The verifier clients use for nodes; `expected` pins the agency the client meant to reach.
    pub fn server_verifier(
        &self,
        expected: Option<AgencyId>,
    ) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
        let inner = WebPkiServerVerifier::builder_with_provider(self.roots.clone(), provider())
            .with_crls(self.crls.clone())
            .only_check_end_entity_revocation()
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        Ok(Arc::new(AgencyServerVerifier {
            inner,
            trust: self.clone(),
            expected,
        }))
    }
}

/// The trust domain a federation CA certificate was created for (its subject's O), so that
/// offline tools need only the CA file.
pub fn ca_trust_domain(ca_path: &Path) -> Result<TrustDomain, TlsError> {
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

/// An agency's TLS identity: its auth certificate and key, checked to belong together and to
/// be an agency certificate of the trust domain.
#[derive(Debug)]
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub leaf: LeafIdentity,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            leaf: self.leaf.clone(),
        }
    }
}

impl Identity {
    pub fn load(
        trust_domain: &TrustDomain,
        cert_path: &Path,
        key_path: &Path,
    ) -> Result<Self, TlsError> {
        let cert_pem = read(cert_path)?;
        let key_pem = read(key_path)?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(cert_path, format!("not a PEM certificate ({e})")))?;
        let first = chain
            .first()
            .ok_or_else(|| invalid(cert_path, "no certificate found".into()))?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| invalid(key_path, format!("not a PEM private key ({e})")))?;

        let cert = X509::from_der(first)
            .map_err(|e| invalid(cert_path, format!("unparseable certificate ({e})")))?;
        let pkey = openssl::pkey::PKey::private_key_from_pem(&key_pem)
            .map_err(|e| invalid(key_path, format!("unparseable private key ({e})")))?;
        let matches = cert
            .public_key()
            .map(|pk| pk.public_eq(&pkey))
            .unwrap_or(false);
        if !matches {
            return Err(TlsError::KeyMismatch {
                cert: cert_path.to_owned(),
                key: key_path.to_owned(),
            });
        }
        // Our certificate serves both sides of TLS, so it must pass both checks.
        check_leaf(first, Role::Client, trust_domain).map_err(|source| {
            TlsError::NotAgencyCertificate {
                path: cert_path.to_owned(),
                source,
            }
        })?;
        let leaf = check_leaf(first, Role::Server, trust_domain).map_err(|source| {
            TlsError::NotAgencyCertificate {
                path: cert_path.to_owned(),
                source,
            }
        })?;
        Ok(Self { chain, key, leaf })
    }
}

/// A node's server config: TLS 1.3 only, client certificate mandatory, no session resumption
/// (a resumed session would skip the revocation check; see [`UnredeemableTickets`]), ALPN h2
/// and http/1.1.
pub fn server_config(trust: &TrustStore, identity: &Identity) -> Result<ServerConfig, TlsError> {
    server_config_with(provider(), trust, identity)
}

/// [`server_config`] that negotiates only the post-quantum hybrid X25519MLKEM768. rustls
/// follows the client's order of key-exchange groups; a node picks this config for a client
/// that *offers* X25519MLKEM768, whatever its order, so that the client gets the hybrid (with a
/// HelloRetryRequest when it sent no key share for it). See [`offers_post_quantum`].
pub fn server_config_post_quantum(
    trust: &TrustStore,
    identity: &Identity,
) -> Result<ServerConfig, TlsError> {
    let mut pq = rustls::crypto::aws_lc_rs::default_provider();
    pq.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::X25519MLKEM768];
    server_config_with(Arc::new(pq), trust, identity)
}

/// Whether a ClientHello offers the post-quantum hybrid X25519MLKEM768.
pub fn offers_post_quantum(hello: &rustls::server::ClientHello<'_>) -> bool {
    hello
        .named_groups()
        .is_some_and(|g| g.contains(&rustls::NamedGroup::X25519MLKEM768))
}

fn server_config_with(
    provider: Arc<CryptoProvider>,
    trust: &TrustStore,
    identity: &Identity,
) -> Result<ServerConfig, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(trust.client_verifier()?)
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.ticketer = Arc::new(UnredeemableTickets);
    config.send_tls13_tickets = 1;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// A client config presenting `identity`, verifying the node against the federation CA, and,
/// when `expected` is given, that the node is that agency.
pub fn client_config(
    trust: &TrustStore,
    identity: &Identity,
    expected: Option<AgencyId>,
) -> Result<ClientConfig, TlsError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(trust.server_verifier(expected)?)
        .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// Issues session tickets that no server can redeem: random bytes, decrypted by nothing.
///
/// The node never resumes a session (a resumed session would skip the revocation check). It
/// still sends one ticket because that message, right after the client's Finished, carries the
/// TCP acknowledgement clients wait for: without it, a client that leaves Nagle's algorithm on
/// (ab, many Java clients) holds its first request until the server's delayed ACK, about 40 ms
/// per connection. A client that presents the ticket gets a full handshake.
#[derive(Debug)]
struct UnredeemableTickets;

impl rustls::server::ProducesTickets for UnredeemableTickets {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        3600
    }

    fn encrypt(&self, _plain: &[u8]) -> Option<Vec<u8>> {
        let mut ticket = vec![0u8; 32];
        openssl::rand::rand_bytes(&mut ticket).ok()?;
        Some(ticket)
    }

    fn decrypt(&self, _cipher: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

#[derive(Debug)]
struct AgencyClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    trust: TrustStore,
}

impl ClientCertVerifier for AgencyClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)?;
        self.trust
            .check_leaf(end_entity, Role::Client)
            .map_err(identity_error)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[derive(Debug)]
struct AgencyServerVerifier {
    inner: Arc<WebPkiServerVerifier>,
    trust: TrustStore,
    expected: Option<AgencyId>,
}

impl ServerCertVerifier for AgencyServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        let leaf = self
            .trust
            .check_leaf(end_entity, Role::Server)
            .map_err(identity_error)?;
        if let Some(expected) = &self.expected {
            if leaf.agency() != expected {
                return Err(identity_error(IdentityError::UnexpectedAgency {
                    found: leaf.agency().clone(),
                    expected: expected.clone(),
                }));
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn identity_error(e: IdentityError) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
}

/// A stable label for why a TLS handshake failed, for metrics and logs.
pub fn failure_reason(err: &rustls::Error) -> &'static str {
    use rustls::Error as E;
    use CertificateError as C;
    match err {
        E::NoCertificatesPresented => "no_client_certificate",
        E::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "unknown_issuer",
            C::Expired | C::ExpiredContext { .. } => "expired",
            C::NotValidYet | C::NotValidYetContext { .. } => "not_yet_valid",
            C::Revoked => "revoked",
            C::BadSignature => "bad_signature",
            C::InvalidPurpose => "wrong_key_usage",
            C::Other(OtherError(inner)) => inner
                .downcast_ref::<IdentityError>()
                .map(IdentityError::reason)
                .unwrap_or("invalid_certificate"),
            _ => "invalid_certificate",
        },
        E::PeerIncompatible(_) => "incompatible_peer",
        E::NoApplicationProtocol => "no_application_protocol",
        E::AlertReceived(_) => "alert_received",
        _ => "other",
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn invalid(path: &Path, what: String) -> TlsError {
    TlsError::Invalid {
        path: path.to_owned(),
        what,
    }
}

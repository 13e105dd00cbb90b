//! rustls configuration for the federation: TLS 1.3 only, aws-lc-rs (with the post-quantum
//! hybrid key exchange X25519MLKEM768 preferred), client certificates mandatory, CRLs checked,
//! and the agency identity checks of [`crate::leaf`] on both sides.
//!
//! This module builds configs from files; it does not watch or reload them (the node does).

use std::path::Path;
use std::sync::Arc;

use openssl::x509::X509;
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
use crate::leaf::{check_leaf, IdentityError, LeafIdentity, Role};
use crate::trust::{invalid, read, LoadError, TrustStore};

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

/// The rustls side of [`TrustStore`]: the certificate verifiers of both ends of a connection.
impl TrustStore {
    fn roots(&self) -> Result<Arc<RootCertStore>, LoadError> {
        let mut roots = RootCertStore::empty();
        for der in self.ca_ders() {
            roots
                .add(CertificateDer::from(der.clone()))
                .map_err(|e| LoadError::Config(format!("CA certificate not usable ({e})")))?;
        }
        Ok(Arc::new(roots))
    }

    fn crls(&self) -> Vec<CertificateRevocationListDer<'static>> {
        self.crl_ders()
            .iter()
            .map(|d| CertificateRevocationListDer::from(d.clone()))
            .collect()
    }

    /// The verifier nodes use for their clients: chain to the CA, not revoked, not expired,
    /// clientAuth EKU, one SPIFFE id in our trust domain.
    pub fn client_verifier(&self) -> Result<Arc<dyn ClientCertVerifier>, LoadError> {
        let inner = WebPkiClientVerifier::builder_with_provider(self.roots()?, provider())
            .with_crls(self.crls())
            .only_check_end_entity_revocation()
            .build()
            .map_err(|e| LoadError::Config(e.to_string()))?;
        Ok(Arc::new(AgencyClientVerifier {
            inner,
            trust: self.clone(),
        }))
    }

    /// The verifier clients use for nodes; `expected` pins the agency the client meant to reach.
    pub fn server_verifier(
        &self,
        expected: Option<AgencyId>,
    ) -> Result<Arc<dyn ServerCertVerifier>, LoadError> {
        let inner = WebPkiServerVerifier::builder_with_provider(self.roots()?, provider())
            .with_crls(self.crls())
            .only_check_end_entity_revocation()
            .build()
            .map_err(|e| LoadError::Config(e.to_string()))?;
        Ok(Arc::new(AgencyServerVerifier {
            inner,
            trust: self.clone(),
            expected,
        }))
    }
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
    ) -> Result<Self, LoadError> {
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
            return Err(LoadError::KeyMismatch {
                cert: cert_path.to_owned(),
                key: key_path.to_owned(),
            });
        }
        // Our certificate serves both sides of TLS, so it must pass both checks.
        check_leaf(first, Role::Client, trust_domain).map_err(|why| {
            LoadError::NotAgencyCertificate {
                path: cert_path.to_owned(),
                why,
            }
        })?;
        let leaf = check_leaf(first, Role::Server, trust_domain).map_err(|why| {
            LoadError::NotAgencyCertificate {
                path: cert_path.to_owned(),
                why,
            }
        })?;
        Ok(Self { chain, key, leaf })
    }
}

/// A node's server config: TLS 1.3 only, client certificate mandatory, no session resumption
/// (a resumed session would skip the revocation check; see [`UnredeemableTickets`]), ALPN h2
/// and http/1.1.
pub fn server_config(trust: &TrustStore, identity: &Identity) -> Result<ServerConfig, LoadError> {
    server_config_with(provider(), trust, identity)
}

/// [`server_config`] that negotiates only the post-quantum hybrid X25519MLKEM768. rustls
/// follows the client's order of key-exchange groups; a node picks this config for a client
/// that *offers* X25519MLKEM768, whatever its order, so that the client gets the hybrid (with a
/// HelloRetryRequest when it sent no key share for it). See [`offers_post_quantum`].
pub fn server_config_post_quantum(
    trust: &TrustStore,
    identity: &Identity,
) -> Result<ServerConfig, LoadError> {
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
) -> Result<ServerConfig, LoadError> {
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| LoadError::Config(e.to_string()))?
        .with_client_cert_verifier(trust.client_verifier()?)
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(|e| LoadError::Config(e.to_string()))?;
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.ticketer = Arc::new(UnredeemableTickets);
    config.send_tls13_tickets = 1;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// The server config of a node's console: TLS 1.3, the node's certificate, a client
/// certificate that chains to the CA, is in date and not revoked (whose it is, an operator of
/// this agency or not, the console checks and explains on a page), no resumption, HTTP/1.1.
pub fn console_config(trust: &TrustStore, identity: &Identity) -> Result<ServerConfig, LoadError> {
    let verifier = WebPkiClientVerifier::builder_with_provider(trust.roots()?, provider())
        .with_crls(trust.crls())
        .only_check_end_entity_revocation()
        .build()
        .map_err(|e| LoadError::Config(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| LoadError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(|e| LoadError::Config(e.to_string()))?;
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.ticketer = Arc::new(UnredeemableTickets);
    config.send_tls13_tickets = 1;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A client config presenting `identity`, verifying the node against the federation CA, and,
/// when `expected` is given, that the node is that agency.
pub fn client_config(
    trust: &TrustStore,
    identity: &Identity,
    expected: Option<AgencyId>,
) -> Result<ClientConfig, LoadError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| LoadError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(trust.server_verifier(expected)?)
        .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(|e| LoadError::Config(e.to_string()))?;
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

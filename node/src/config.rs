//! The node's configuration file (`node.toml`).
//!
//! The raw file ([`NodeConfig`]) is parsed with unknown keys rejected, then turned once into
//! [`Settings`]: paths resolved against the file's directory, certificates loaded and checked.
//! Every error names the file and the key at fault, on one line.
//!
//! `examples/node.toml` is the fully commented reference; a test parses it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use attesta_certs::{AgencyId, Identity, SigningIdentity, TrustDomain, TrustStore};
use serde::{Deserialize, Serialize};

/// Errors reading a configuration file. Messages are one line, naming the file and key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        key: &'static str,
        message: String,
    },
}

/// `node.toml`, as written by the operator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The agency this node belongs to, e.g. `comune-pesaro`. Must be the agency named in the
    /// SPIFFE id of `tls.cert`.
    pub agency: String,
    /// The federation's SPIFFE trust domain, e.g. `pu.attesta.it`.
    pub trust_domain: String,
    /// Address and port to listen on, e.g. `127.0.0.1:8443`.
    pub listen: SocketAddr,
    /// Directory for the node's database and state. Relative paths are resolved against the
    /// directory of this file.
    pub data_dir: PathBuf,
    /// What this node answers for its peers: `residence` (a Comune's registry) and/or
    /// `legal-presence` (a Questura). Consumers' nodes (INPS, ASL) serve neither.
    #[serde(default)]
    pub serves: Vec<String>,
    /// Where the Prefettura's signed manifest (policy and directory) comes from.
    pub manifest: ManifestConfig,
    /// TLS material.
    pub tls: TlsConfig,
    /// The agency's signing certificate (Ed25519) for attestations and checkpoints.
    pub signing: SigningConfig,
    /// Protective limits; every field has a default.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Calls to peers (the `/v1/status` coordinator); every field has a default.
    #[serde(default)]
    pub peers: PeersConfig,
    /// The audit log; every field has a default.
    #[serde(default)]
    pub audit: AuditConfig,
    /// The database's memory; every field has a default.
    #[serde(default)]
    pub store: StoreConfig,
    /// The console for the agency's staff, on a port of its own; absent: no console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console: Option<ConsoleConfig>,
}

/// `[console]`: where the agency's staff sign in with their operator certificates.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Address and port, e.g. `127.0.0.1:8446`: the browser's `https://` address.
    pub listen: SocketAddr,
}

/// `[store]`: how much memory RocksDB may use, for the whole node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// MiB for RocksDB's block cache, which also carries the memtables of every column family
    /// (write buffers are charged to it), and index and filter blocks. One budget for the
    /// node, however many column families.
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u32,
}

fn default_memory_mb() -> u32 {
    256
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            memory_mb: default_memory_mb(),
        }
    }
}

/// `[audit]`: how long the node keeps its log's entries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Days an entry's content is kept (24 months by default); then it is deleted, and only
    /// its hash stays in the tree, so checkpoints and later entries' proofs still verify.
    /// 0 keeps every entry.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
}

fn default_retention_days() -> u32 {
    730
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention_days: default_retention_days(),
        }
    }
}

/// `[peers]`: how long this node waits for its peers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeersConfig {
    /// Time (ms) to open a connection to a peer (TCP and TLS).
    #[serde(default = "default_peer_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Time (ms) one call to a peer may take, connection included.
    #[serde(default = "default_peer_timeout_ms")]
    pub timeout_ms: u64,
    /// Per-agency overrides of `timeout_ms`, e.g. `{ "questura-pu" = 1500 }`.
    #[serde(default)]
    pub agency_timeout_ms: std::collections::BTreeMap<String, u64>,
    /// Time (ms) within which `/v1/status` answers, with whatever its peers said by then.
    #[serde(default = "default_status_deadline_ms")]
    pub status_deadline_ms: u64,
}

fn default_peer_connect_timeout_ms() -> u64 {
    1_000
}
fn default_peer_timeout_ms() -> u64 {
    2_000
}
fn default_status_deadline_ms() -> u64 {
    2_500
}

impl Default for PeersConfig {
    fn default() -> Self {
        Self {
            connect_timeout_ms: default_peer_connect_timeout_ms(),
            timeout_ms: default_peer_timeout_ms(),
            agency_timeout_ms: Default::default(),
            status_deadline_ms: default_status_deadline_ms(),
        }
    }
}

/// `[peers]`, validated.
#[derive(Debug, Clone)]
pub struct PeerSettings {
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub agency_timeout: std::collections::HashMap<AgencyId, Duration>,
    pub status_deadline: Duration,
}

impl PeerSettings {
    /// How long a call to `agency` may take.
    pub fn timeout_for(&self, agency: &AgencyId) -> Duration {
        self.agency_timeout
            .get(agency)
            .copied()
            .unwrap_or(self.timeout)
    }
}

/// `[tls]`: the node's certificate, and the federation's trust anchor and CRL.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The federation CA certificate (PEM).
    pub ca: PathBuf,
    /// The federation CRL (PEM). Optional, but every production node should have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crl: Option<PathBuf>,
    /// The node's auth certificate (PEM, ECDSA P-256, EKU serverAuth + clientAuth).
    pub cert: PathBuf,
    /// Its private key (PEM, PKCS#8).
    pub key: PathBuf,
    /// How often, in milliseconds, the CA, CRL, certificate and key files are checked for
    /// changes. A change (or SIGHUP) reloads them without dropping connections.
    #[serde(default = "default_reload_interval_ms")]
    pub reload_interval_ms: u64,
}

/// `[manifest]`: the trust anchor of the policy. Only a manifest signed with the sign key of
/// agency `prefettura` (certified by `tls.ca`) is ever put in force.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestConfig {
    /// Agency id of the Prefettura, e.g. `prefettura-pu`.
    pub prefettura: String,
    /// The Prefettura node's URL, e.g. `https://prefettura.pu.attesta.it:8441`, where this node
    /// fetches the manifest at start-up and every `refresh_secs`. Omitted on the Prefettura's
    /// own node; a node without it only takes manifests the Prefettura pushes to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Seconds between fetches.
    #[serde(default = "default_manifest_refresh_secs")]
    pub refresh_secs: u64,
}

fn default_manifest_refresh_secs() -> u64 {
    60
}

/// The manifest settings, checked.
#[derive(Debug, Clone)]
pub struct ManifestSettings {
    pub prefettura: AgencyId,
    pub url: Option<String>,
    pub refresh: Duration,
}

/// `[signing]`: the agency's signing certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// Sign certificate (PEM, Ed25519, digitalSignature + nonRepudiation).
    pub cert: PathBuf,
    /// Its private key (PEM, PKCS#8).
    pub key: PathBuf,
}

/// `[limits]`: what protects the port from slow, large or too many clients.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Most established connections, all agencies together; more are refused.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Of `max_connections`, how many only the node's own agency and the Prefettura may use.
    #[serde(default = "default_reserved_connections")]
    pub reserved_connections: usize,
    /// Most established connections of one agency (the node's own and the Prefettura's are
    /// not capped).
    #[serde(default = "default_max_connections_per_agency")]
    pub max_connections_per_agency: usize,
    /// Most connections from one IP address, in the handshake or established.
    #[serde(default = "default_max_connections_per_address")]
    pub max_connections_per_address: usize,
    /// Most TLS handshakes under way at once.
    #[serde(default = "default_max_handshakes")]
    pub max_handshakes: usize,
    /// Milliseconds a connection may stay without a request in flight before it is closed.
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// Milliseconds a client has to take an answer (read it, or open its flow-control
    /// window); past that the connection is closed.
    #[serde(default = "default_send_timeout_ms")]
    pub send_timeout_ms: u64,
    /// Milliseconds a client has to complete the TLS handshake.
    #[serde(default = "default_handshake_timeout_ms")]
    pub handshake_timeout_ms: u64,
    /// Milliseconds a client has to send its first request after the handshake, and (HTTP/1.1)
    /// each request's headers.
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// Milliseconds a request may take, body included, before it is answered 503.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Largest request body accepted, in bytes; larger ones get 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Largest import file, in bytes.
    #[serde(default = "default_max_import_bytes")]
    pub max_import_bytes: u64,
    /// Seconds an import (upload, validation and write) may take.
    #[serde(default = "default_import_timeout_secs")]
    pub import_timeout_secs: u64,
    /// Most concurrent HTTP/2 streams on one connection.
    #[serde(default = "default_max_streams")]
    pub max_concurrent_streams: u32,
    /// Seconds in-flight requests get to finish on shutdown.
    #[serde(default = "default_shutdown_grace_secs")]
    pub shutdown_grace_secs: u64,
}

fn default_reload_interval_ms() -> u64 {
    2_000
}
fn default_max_connections() -> usize {
    1_024
}
fn default_reserved_connections() -> usize {
    64
}
fn default_max_connections_per_agency() -> usize {
    128
}
fn default_max_connections_per_address() -> usize {
    512
}
fn default_max_handshakes() -> usize {
    256
}
fn default_idle_timeout_ms() -> u64 {
    60_000
}
fn default_send_timeout_ms() -> u64 {
    10_000
}
fn default_handshake_timeout_ms() -> u64 {
    5_000
}
fn default_header_read_timeout_ms() -> u64 {
    5_000
}
fn default_request_timeout_ms() -> u64 {
    30_000
}
fn default_max_body_bytes() -> usize {
    64 * 1024
}
fn default_max_import_bytes() -> u64 {
    4 << 30
}
fn default_import_timeout_secs() -> u64 {
    3_600
}
fn default_max_streams() -> u32 {
    128
}
fn default_shutdown_grace_secs() -> u64 {
    10
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: default_max_connections(),
            reserved_connections: default_reserved_connections(),
            max_connections_per_agency: default_max_connections_per_agency(),
            max_connections_per_address: default_max_connections_per_address(),
            max_handshakes: default_max_handshakes(),
            idle_timeout_ms: default_idle_timeout_ms(),
            send_timeout_ms: default_send_timeout_ms(),
            handshake_timeout_ms: default_handshake_timeout_ms(),
            header_read_timeout_ms: default_header_read_timeout_ms(),
            request_timeout_ms: default_request_timeout_ms(),
            max_body_bytes: default_max_body_bytes(),
            max_import_bytes: default_max_import_bytes(),
            import_timeout_secs: default_import_timeout_secs(),
            max_concurrent_streams: default_max_streams(),
            shutdown_grace_secs: default_shutdown_grace_secs(),
        }
    }
}

/// Where the node's TLS files are, resolved to absolute or config-relative paths.
#[derive(Debug, Clone)]
pub struct TlsPaths {
    pub ca: PathBuf,
    pub crl: Option<PathBuf>,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsPaths {
    pub fn all(&self) -> impl Iterator<Item = &Path> {
        [
            Some(&self.ca),
            self.crl.as_ref(),
            Some(&self.cert),
            Some(&self.key),
        ]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
    }
}

/// Limits as durations and sizes.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub reserved_connections: usize,
    pub max_connections_per_agency: usize,
    pub max_connections_per_address: usize,
    pub max_handshakes: usize,
    pub idle_timeout: Duration,
    pub send_timeout: Duration,
    pub handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
    pub max_import_bytes: u64,
    pub import_timeout: Duration,
    pub max_concurrent_streams: u32,
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        // The defaults are valid by construction.
        Limits::from_config(&LimitsConfig::default()).expect("default limits are valid")
    }
}

impl Limits {
    /// Validates `[limits]`; an error names the key.
    pub fn from_config(l: &LimitsConfig) -> Result<Self, (&'static str, String)> {
        for (key, v) in [
            ("limits.max_connections", l.max_connections),
            (
                "limits.max_connections_per_agency",
                l.max_connections_per_agency,
            ),
            (
                "limits.max_connections_per_address",
                l.max_connections_per_address,
            ),
            ("limits.max_handshakes", l.max_handshakes),
            ("limits.max_body_bytes", l.max_body_bytes),
        ] {
            if v == 0 {
                return Err((key, "must be at least 1".into()));
            }
        }
        if l.reserved_connections >= l.max_connections {
            return Err((
                "limits.reserved_connections",
                format!(
                    "must be less than limits.max_connections ({})",
                    l.max_connections
                ),
            ));
        }
        for (key, v) in [
            ("limits.handshake_timeout_ms", l.handshake_timeout_ms),
            ("limits.header_read_timeout_ms", l.header_read_timeout_ms),
            ("limits.request_timeout_ms", l.request_timeout_ms),
            ("limits.idle_timeout_ms", l.idle_timeout_ms),
            ("limits.send_timeout_ms", l.send_timeout_ms),
        ] {
            if v == 0 {
                return Err((key, "must be greater than 0".into()));
            }
        }
        Ok(Limits {
            max_connections: l.max_connections,
            reserved_connections: l.reserved_connections,
            max_connections_per_agency: l.max_connections_per_agency,
            max_connections_per_address: l.max_connections_per_address,
            max_handshakes: l.max_handshakes,
            idle_timeout: Duration::from_millis(l.idle_timeout_ms),
            send_timeout: Duration::from_millis(l.send_timeout_ms),
            handshake_timeout: Duration::from_millis(l.handshake_timeout_ms),
            header_read_timeout: Duration::from_millis(l.header_read_timeout_ms),
            request_timeout: Duration::from_millis(l.request_timeout_ms),
            max_body_bytes: l.max_body_bytes,
            max_import_bytes: l.max_import_bytes,
            import_timeout: Duration::from_secs(l.import_timeout_secs.max(1)),
            max_concurrent_streams: l.max_concurrent_streams,
            shutdown_grace: Duration::from_secs(l.shutdown_grace_secs),
        })
    }
}

/// A validated configuration: everything the node needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The file it came from, for messages.
    pub source: PathBuf,
    pub agency: AgencyId,
    pub trust_domain: TrustDomain,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub serves_residence: bool,
    pub serves_legal_presence: bool,
    pub manifest: ManifestSettings,
    pub tls_paths: TlsPaths,
    pub reload_interval: Duration,
    pub limits: Limits,
    pub peers: PeerSettings,
    /// How long entries of the audit log are kept; `None`: forever.
    pub audit_retention: Option<Duration>,
    /// RocksDB's memory budget, in bytes.
    pub store_memory: usize,
    /// Where the console listens, if the node has one.
    pub console: Option<SocketAddr>,
    /// The trust store and identity as loaded at start-up (the node reloads them later).
    pub trust: TrustStore,
    pub identity: Identity,
    pub signing: Arc<SigningIdentity>,
}

impl NodeConfig {
    /// Reads and parses `path`, rejecting unknown keys.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        parse_toml(path, &text)
    }

    /// Writes the configuration as TOML.
    pub fn to_toml(&self) -> String {
        // Serialising plain structs of strings, numbers and paths cannot fail.
        toml::to_string_pretty(self).expect("node config serialises")
    }
}

/// Parses TOML text from `path` into `T`, with a one-line error naming the file and line.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(1);
        ConfigError::Syntax {
            path: path.to_owned(),
            line,
            message: e.message().replace('\n', " "),
        }
    })
}

impl Settings {
    /// A client presenting this node's identity (as loaded), that accepts only the node of
    /// agency `expected`.
    pub fn client_for(
        &self,
        expected: &AgencyId,
    ) -> Result<crate::client::Client, attesta_certs::LoadError> {
        crate::client::Client::pinned(&self.trust, &self.identity, Some(expected))
    }

    /// A client presenting this node's identity that accepts only this node: the operator's.
    pub fn own_client(&self) -> Result<crate::client::Client, attesta_certs::LoadError> {
        self.client_for(&self.agency)
    }

    /// The URL this node answers on, from this machine (`listen`, with an unspecified address
    /// read as localhost).
    pub fn local_url(&self) -> String {
        let mut addr = self.listen;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("https://{addr}")
    }

    /// Reads `path` and validates it: names, paths, certificates and keys.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let raw = NodeConfig::read(path)?;
        Self::from_config(path, raw)
    }

    pub fn from_config(path: &Path, raw: NodeConfig) -> Result<Self, ConfigError> {
        let invalid = |key: &'static str, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            key,
            message,
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &Path| base.join(p);

        let agency = AgencyId::new(&raw.agency).map_err(|e| invalid("agency", e.to_string()))?;
        let trust_domain = TrustDomain::new(&raw.trust_domain)
            .map_err(|e| invalid("trust_domain", e.to_string()))?;
        if let Some(c) = &raw.console {
            if c.listen == raw.listen && c.listen.port() != 0 {
                return Err(invalid(
                    "console.listen",
                    format!(
                        "{} is the node's own listen address; give the console a port of its own",
                        c.listen
                    ),
                ));
            }
        }
        let mut serves_residence = false;
        let mut serves_legal_presence = false;
        for s in &raw.serves {
            match s.as_str() {
                "residence" => serves_residence = true,
                "legal-presence" => serves_legal_presence = true,
                other => {
                    return Err(invalid(
                        "serves",
                        format!("{other:?} is not residence or legal-presence"),
                    ))
                }
            }
        }
        let manifest = ManifestSettings {
            prefettura: AgencyId::new(&raw.manifest.prefettura)
                .map_err(|e| invalid("manifest.prefettura", e.to_string()))?,
            url: match &raw.manifest.url {
                Some(url) => {
                    crate::client::check_base_url(url).map_err(|_| {
                        invalid("manifest.url", format!("{url:?} is not https://host:port"))
                    })?;
                    Some(url.trim_end_matches('/').to_owned())
                }
                None => None,
            },
            refresh: Duration::from_secs(raw.manifest.refresh_secs),
        };
        if raw.manifest.refresh_secs == 0 {
            return Err(invalid(
                "manifest.refresh_secs",
                "must be greater than 0".into(),
            ));
        }
        let tls_paths = TlsPaths {
            ca: resolve(&raw.tls.ca),
            crl: raw.tls.crl.as_deref().map(resolve),
            cert: resolve(&raw.tls.cert),
            key: resolve(&raw.tls.key),
        };

        if !(16..=65_536).contains(&raw.store.memory_mb) {
            return Err(invalid(
                "store.memory_mb",
                "must be from 16 to 65536 (MiB)".into(),
            ));
        }
        let store_memory = raw.store.memory_mb as usize * 1024 * 1024;
        if raw.tls.reload_interval_ms == 0 {
            return Err(invalid(
                "tls.reload_interval_ms",
                "must be greater than 0".into(),
            ));
        }
        let limits = Limits::from_config(&raw.limits).map_err(|(key, why)| invalid(key, why))?;

        let p = &raw.peers;
        for (key, v) in [
            ("peers.connect_timeout_ms", p.connect_timeout_ms),
            ("peers.timeout_ms", p.timeout_ms),
            ("peers.status_deadline_ms", p.status_deadline_ms),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be greater than 0".into()));
            }
        }
        let mut agency_timeout = std::collections::HashMap::new();
        for (name, ms) in &p.agency_timeout_ms {
            let id = AgencyId::new(name)
                .map_err(|e| invalid("peers.agency_timeout_ms", format!("{name:?}: {e}")))?;
            if *ms == 0 {
                return Err(invalid(
                    "peers.agency_timeout_ms",
                    format!("{name}: must be greater than 0"),
                ));
            }
            agency_timeout.insert(id, Duration::from_millis(*ms));
        }
        let peers = PeerSettings {
            connect_timeout: Duration::from_millis(p.connect_timeout_ms),
            timeout: Duration::from_millis(p.timeout_ms),
            agency_timeout,
            status_deadline: Duration::from_millis(p.status_deadline_ms),
        };

        let trust = TrustStore::load(
            trust_domain.clone(),
            &tls_paths.ca,
            tls_paths.crl.as_deref(),
        )
        .map_err(|e| tls_key_error(path, &tls_paths, e))?;
        let identity = Identity::load(&trust_domain, &tls_paths.cert, &tls_paths.key)
            .map_err(|e| tls_key_error(path, &tls_paths, e))?;
        if identity.leaf.agency() != &agency {
            return Err(invalid(
                "tls.cert",
                format!(
                    "certificate is for agency {}, but agency = {agency:?}",
                    identity.leaf.agency()
                ),
            ));
        }

        let sign_cert = resolve(&raw.signing.cert);
        let sign_key = resolve(&raw.signing.key);
        let signing = SigningIdentity::load(&trust_domain, &sign_cert, &sign_key).map_err(|e| {
            let key = match &e {
                attesta_certs::LoadError::Read { path, .. }
                | attesta_certs::LoadError::Invalid { path, .. }
                    if path == &sign_cert =>
                {
                    "signing.cert"
                }
                _ => "signing.key",
            };
            invalid(key, error_chain(&e))
        })?;
        if signing.id.agency != agency {
            return Err(invalid(
                "signing.cert",
                format!(
                    "certificate is for agency {}, but agency = {agency:?}",
                    signing.id.agency
                ),
            ));
        }

        Ok(Self {
            source: path.to_owned(),
            agency,
            trust_domain,
            listen: raw.listen,
            data_dir: resolve(&raw.data_dir),
            serves_residence,
            serves_legal_presence,
            manifest,
            tls_paths,
            reload_interval: Duration::from_millis(raw.tls.reload_interval_ms),
            limits,
            peers,
            store_memory,
            console: raw.console.as_ref().map(|c| c.listen),
            audit_retention: match raw.audit.retention_days {
                0 => None,
                days => Some(Duration::from_secs(u64::from(days) * 86_400)),
            },
            trust,
            identity,
            signing: Arc::new(signing),
        })
    }
}

/// Maps a TLS loading error to the config key whose file is at fault.
fn tls_key_error(path: &Path, paths: &TlsPaths, e: attesta_certs::LoadError) -> ConfigError {
    use attesta_certs::LoadError as E;
    let file = match &e {
        E::Read { path, .. } | E::Invalid { path, .. } | E::NotAgencyCertificate { path, .. } => {
            Some(path.clone())
        }
        E::KeyMismatch { key, .. } => Some(key.clone()),
        E::Config(_) => None,
    };
    let key = match file {
        Some(f) if f == paths.ca => "tls.ca",
        Some(f) if Some(&f) == paths.crl.as_ref() => "tls.crl",
        Some(f) if f == paths.cert => "tls.cert",
        Some(f) if f == paths.key => "tls.key",
        _ => "tls",
    };
    ConfigError::Invalid {
        path: path.to_owned(),
        key,
        message: error_chain(&e),
    }
}

/// Formats an error and its sources on one line: `outer: inner: innermost`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests;

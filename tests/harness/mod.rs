//! Test harness: a federation PKI in a temp dir (plus, for negative cases, an untrusted one),
//! and real nodes on `127.0.0.1:0` built from real `node.toml` files.
//!
//! Nothing here is a mock: certificates come from the project's CA code, nodes run the real
//! server, clients speak real TLS 1.3 over loopback.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use attesta::client::{Client, ClientError, Reply};
use attesta::config::{
    LimitsConfig, ManifestConfig, NodeConfig, Settings, SigningConfig, TlsConfig,
};
use attesta::server::Node;
use attesta_certs::{AgencyFiles, AgencyId, Ca, IssuedLeaf, LeafSpec, TrustDomain, TrustStore};
use attesta_policy::{DirectoryEntry, Manifest, Service};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::ClientConfig;

pub const TRUST_DOMAIN: &str = "pu.attesta.test";

/// The agency whose sign key signs the federation's manifests.
pub const PREFETTURA: &str = "prefettura-pu";

/// The policy test nodes start with: the default policy, plus an operator certificate of
/// comune-pesaro's own (a dedicated agency id for the registry office's import job).
pub fn test_policy() -> String {
    format!(
        "{}g, comune-pesaro-ops, operator\ng2, comune-pesaro-ops, comune-pesaro\n",
        attesta_policy::DEFAULT_POLICY
    )
}

/// A manifest over `policy`, with the demo's directory (URLs that nobody listens on: tests
/// that need the directory's URLs build their own).
pub fn test_manifest(version: u64, policy: &str) -> Manifest {
    let entry = |agency: &str, serves: Vec<Service>, comuni: &[&str]| DirectoryEntry {
        agency: agency.into(),
        url: Some("https://127.0.0.1:9".into()),
        hosted_by: None,
        serves,
        comuni: comuni.iter().map(|c| c.to_string()).collect(),
    };
    Manifest {
        version,
        issued_at: attesta::manifest::now_rfc3339(),
        issuer: PREFETTURA.into(),
        policy: policy.into(),
        directory: vec![
            entry(PREFETTURA, vec![], &[]),
            entry("questura-pu", vec![Service::LegalPresence], &[]),
            entry("comune-pesaro", vec![Service::Residence], &["041044"]),
            entry("comune-urbino", vec![Service::Residence], &["041067"]),
            entry("inps-pesaro", vec![], &[]),
        ],
        revoked: vec![],
    }
}

/// Bounded retries: how often and how long to wait for something to become true.
pub const ATTEMPTS: u32 = 200;
pub const BACKOFF: Duration = Duration::from_millis(25);

pub fn td() -> TrustDomain {
    TrustDomain::new(TRUST_DOMAIN).unwrap()
}

pub fn agency(s: &str) -> AgencyId {
    AgencyId::new(s).unwrap()
}

/// A federation CA and the agencies it issued, in a temp dir.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: Ca,
}

impl Pki {
    pub fn new() -> Self {
        Self::with_trust_domain(td())
    }

    /// A CA of its own: certificates from it are untrusted by nodes of another `Pki`.
    pub fn with_trust_domain(td: TrustDomain) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(&dir.path().join("ca"), td).unwrap();
        Self { dir, ca }
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.dir.path().join("ca/ca.crt")
    }

    pub fn crl(&self) -> PathBuf {
        self.dir.path().join("ca/crl.pem")
    }

    pub fn agency_dir(&self, id: &str) -> PathBuf {
        self.dir.path().join("agencies").join(id)
    }

    /// Issues the standard auth and sign certificates of `id` (once).
    pub fn agency(&mut self, id: &str) -> AgencyFiles {
        let out = self.agency_dir(id);
        if !out.join("auth.crt").exists() {
            self.ca
                .issue_agency(
                    &agency(id),
                    vec!["localhost".into()],
                    vec![[127, 0, 0, 1].into()],
                    30,
                    &out,
                )
                .unwrap();
        }
        AgencyFiles::in_dir(&out)
    }

    /// Issues a leaf from the standard auth profile of `id`, changed by `tweak`.
    pub fn leaf(&mut self, id: &str, tweak: impl FnOnce(&mut LeafSpec)) -> IssuedLeaf {
        let mut spec = LeafSpec::auth(&td_of(&self.ca), &agency(id), vec![], vec![], 30);
        tweak(&mut spec);
        self.ca.issue_leaf(&spec).unwrap()
    }

    /// The signing identity (sign key and certificate) of agency `id`.
    pub fn signing(&mut self, id: &str) -> attesta_certs::SigningIdentity {
        let files = self.agency(id);
        attesta_certs::SigningIdentity::load(
            self.ca.trust_domain(),
            &files.sign_cert,
            &files.sign_key,
        )
        .unwrap()
    }

    /// Signs `manifest` with the sign key of agency `signer` (normally [`PREFETTURA`]).
    pub fn sign_manifest(&mut self, signer: &str, manifest: &Manifest) -> String {
        let identity = self.signing(signer);
        attesta::manifest::sign(&identity, manifest).unwrap()
    }

    /// The Prefettura's signed [`test_manifest`].
    pub fn manifest(&mut self, version: u64, policy: &str) -> String {
        self.sign_manifest(PREFETTURA, &test_manifest(version, policy))
    }

    pub fn trust(&self) -> TrustStore {
        TrustStore::load(
            self.ca.trust_domain().clone(),
            &self.ca_cert(),
            Some(&self.crl()),
        )
        .unwrap()
    }

    /// A client presenting `id`'s standard auth certificate.
    pub fn client(&mut self, id: &str) -> Client {
        let files = self.agency(id);
        let cert = std::fs::read(&files.auth_cert).unwrap();
        let key = std::fs::read(&files.auth_key).unwrap();
        self.client_with(&cert, &key)
    }

    /// A client presenting any certificate and key (PEM), checked by nothing but the node.
    pub fn client_with(&self, cert_pem: &[u8], key_pem: &[u8]) -> Client {
        Client::new(Arc::new(self.client_config(Some((cert_pem, key_pem)))))
    }

    /// Issues operator `name` of `agency` and returns a client presenting their certificate.
    pub fn operator(&mut self, agency: &str, name: &str) -> Client {
        let out = self.dir.path().join("operators").join(agency);
        let files = self
            .ca
            .issue_operator(
                &AgencyId::new(agency).unwrap(),
                &attesta_certs::OperatorName::new(name).unwrap(),
                30,
                "password",
                &out,
            )
            .unwrap();
        let cert = std::fs::read(&files.cert).unwrap();
        let key = std::fs::read(&files.key).unwrap();
        self.client_with(&cert, &key)
    }

    /// A client that presents no certificate.
    pub fn anonymous_client(&self) -> Client {
        Client::new(Arc::new(self.client_config(None)))
    }

    /// A TLS 1.3 client config that trusts this PKI's CA and presents `cert` (if any).
    pub fn client_config(&self, cert: Option<(&[u8], &[u8])>) -> ClientConfig {
        let builder = ClientConfig::builder_with_provider(attesta_certs::tls::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(self.trust().server_verifier(None).unwrap());
        let mut config = match cert {
            Some((cert_pem, key_pem)) => {
                let chain = CertificateDer::pem_slice_iter(cert_pem)
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap();
                let key = PrivateKeyDer::from_pem_slice(key_pem).unwrap();
                builder.with_client_auth_cert(chain, key).unwrap()
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config
    }
}

fn td_of(ca: &Ca) -> TrustDomain {
    ca.trust_domain().clone()
}

pub fn hours(h: u64) -> Duration {
    Duration::from_secs(h * 3600)
}

pub fn now() -> SystemTime {
    SystemTime::now()
}

/// A node running in this process.
pub struct TestNode {
    pub agency: String,
    pub addr: SocketAddr,
    pub url: String,
    /// `https://…` of its console, when its configuration has one.
    pub console_url: Option<String>,
    pub config_path: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestNode {
    /// A node running in another process (`attesta node run`), reached on `port`.
    pub fn external(agency: &str, port: u16, config_path: PathBuf) -> Self {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        Self {
            agency: agency.to_owned(),
            addr,
            url: format!("https://{addr}"),
            console_url: None,
            config_path,
            stop: None,
            task: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Asks the node to shut down and waits until it has drained.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("node drains within 20 s")
                .unwrap();
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The `node.toml` a test node starts from; `tweak` changes it before it is written.
pub fn node_config(pki: &Pki, id: &str, listen: SocketAddr) -> NodeConfig {
    let dir = pki.agency_dir(id);
    let rel = |p: &Path| p.to_owned();
    NodeConfig {
        agency: id.to_owned(),
        trust_domain: pki.ca.trust_domain().to_string(),
        listen,
        data_dir: dir.join("data"),
        serves: Vec::new(),
        manifest: ManifestConfig {
            prefettura: PREFETTURA.into(),
            url: None,
            refresh_secs: 60,
        },
        tls: TlsConfig {
            ca: rel(&pki.ca_cert()),
            crl: Some(pki.crl()),
            cert: dir.join("auth.crt"),
            key: dir.join("auth.key"),
            reload_interval_ms: 50,
        },
        signing: SigningConfig {
            cert: dir.join("sign.crt"),
            key: dir.join("sign.key"),
        },
        limits: LimitsConfig::default(),
        peers: Default::default(),
        audit: Default::default(),
        store: Default::default(),
        console: None,
    }
}

/// A node to run in another process (`attesta node run`): agency `id`'s configuration on a
/// free port, changed by `tweak` and written to its `node.toml`.
pub fn external_node(
    pki: &mut Pki,
    id: &str,
    tweak: impl FnOnce(&mut NodeConfig),
) -> (TestNode, NodeConfig) {
    pki.agency(id);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = node_config(pki, id, ([127, 0, 0, 1], port).into());
    tweak(&mut config);
    let path = pki.agency_dir(id).join("node.toml");
    std::fs::write(&path, config.to_toml()).unwrap();
    (TestNode::external(id, port, path), config)
}

/// Starts the node of agency `id` on 127.0.0.1:0, with the test manifest in force, and waits
/// until it is ready.
pub async fn start_node(pki: &mut Pki, id: &str, tweak: impl FnOnce(&mut NodeConfig)) -> TestNode {
    start(pki, id, true, tweak).await
}

/// Like [`start_node`], without installing the test manifest: the node has whatever its data
/// directory holds (nothing, on a first start).
pub async fn start_node_bare(
    pki: &mut Pki,
    id: &str,
    tweak: impl FnOnce(&mut NodeConfig),
) -> TestNode {
    start(pki, id, false, tweak).await
}

async fn start(
    pki: &mut Pki,
    id: &str,
    with_manifest: bool,
    tweak: impl FnOnce(&mut NodeConfig),
) -> TestNode {
    pki.agency(id);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = node_config(pki, id, addr);
    tweak(&mut config);
    // A console asked for (any address) gets a free port of its own.
    let console = match config.console {
        Some(_) => {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            config.console = Some(attesta::config::ConsoleConfig {
                listen: l.local_addr().unwrap(),
            });
            Some(l)
        }
        None => None,
    };
    let console_url = config
        .console
        .as_ref()
        .map(|c| format!("https://{}", c.listen));
    let config_path = pki.agency_dir(id).join("node.toml");
    std::fs::write(&config_path, config.to_toml()).unwrap();
    if with_manifest {
        install_test_manifest(pki, &config);
    }

    let settings = Settings::load(&config_path).unwrap();
    let mut node = Node::new(settings).unwrap();
    if let Some(l) = console {
        node = node.with_console(l);
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(node.run(listener, async move {
        let _ = stopped.await;
    }));
    let url = format!("https://{addr}");
    let node = TestNode {
        agency: id.to_owned(),
        addr,
        url,
        console_url,
        config_path,
        stop: Some(stop),
        task: Some(task),
    };
    let me = pki.client(id);
    let ready = node.url("/readyz");
    eventually(|| async { me.get(&ready).await.ok().filter(|r| r.status == 200) }).await;
    node
}

/// Puts the Prefettura's manifest over [`test_policy`] (version 1) in the node's data
/// directory, as if fetched before, unless the node already has one or is the Prefettura's.
pub fn install_test_manifest(pki: &mut Pki, config: &NodeConfig) {
    let path = config.data_dir.join(attesta::manifest::FILE);
    if config.agency == PREFETTURA || path.exists() {
        return;
    }
    std::fs::create_dir_all(&config.data_dir).unwrap();
    let token = pki.manifest(1, &test_policy());
    std::fs::write(path, token).unwrap();
}

/// For a signed answer (`application/jose`), verifies it against the node's CA and CRL and
/// returns the reply with its payload as the body; any other reply unchanged.
pub fn attested(node: &TestNode, mut reply: Reply) -> Reply {
    if reply.content_type() != Some(attesta::attestation::CONTENT_TYPE) {
        return reply;
    }
    let settings = Settings::load(&node.config_path).unwrap();
    let token = std::str::from_utf8(&reply.body).unwrap();
    let v = attesta::attestation::verify(&settings.trust, token).unwrap();
    assert_eq!(
        v.signer.agency().as_str(),
        node.agency,
        "signed by the node asked"
    );
    reply.body = serde_json::to_vec(&v.payload).unwrap().into();
    reply
}

/// Polls `check` with bounded retries until it returns `Some`.
pub async fn eventually<T, F, Fut>(mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..ATTEMPTS {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(BACKOFF).await;
    }
    panic!("condition not met after {ATTEMPTS} attempts");
}

/// Sends GET and, for a refused handshake, returns the error. TLS 1.3 clients may finish their
/// side of the handshake before the server has checked the client certificate, so a refusal
/// can surface on connect or on the first exchange; both count.
pub async fn get(client: &Client, url: &str) -> Result<Reply, ClientError> {
    client.get(url).await
}

/// The value of a counter line in Prometheus text, e.g.
/// `attesta_tls_handshake_failures_total{reason="revoked"}`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.trim().parse().ok())
    })
}

/// Asserts that Prometheus text `text` has `series` at `min` or more.
pub fn assert_metric_at_least(text: &str, series: &str, min: f64) {
    assert!(
        metric(text, series).is_some_and(|v| v >= min),
        "{series} below {min} in:\n{text}"
    );
}

/// Pushes a signed manifest to `node` as `client` (`POST /v1/manifest/notify`).
pub async fn notify(client: &Client, node: &TestNode, token: String) -> Reply {
    client
        .post(
            &node.url("/v1/manifest/notify"),
            attesta::attestation::CONTENT_TYPE,
            bytes::Bytes::from(token),
        )
        .await
        .unwrap()
}

/// Waits until the node's metrics show `series` at least `min`.
pub async fn wait_metric(client: &Client, node: &TestNode, series: &str, min: f64) -> f64 {
    let url = node.url("/metrics");
    eventually(|| async {
        let reply = client.get(&url).await.ok()?;
        let text = String::from_utf8(reply.body.to_vec()).ok()?;
        metric(&text, series).filter(|v| *v >= min)
    })
    .await
}

/// Opens a raw TLS connection with the given client identity.
pub async fn raw_tls(
    pki: &mut Pki,
    id: &str,
    node: &TestNode,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let files = pki.agency(id);
    let mut config = pki.client_config(Some((
        &std::fs::read(files.auth_cert).unwrap(),
        &std::fs::read(files.auth_key).unwrap(),
    )));
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(node.addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap()
}

//! The node's HTTPS server: accept loop, TLS, HTTP/1.1 and HTTP/2, limits, graceful shutdown.
//!
//! [`Node::run`] takes an already bound listener and a shutdown future, so tests bind
//! `127.0.0.1:0` and never race for ports. The TLS configuration lives behind an `ArcSwap`;
//! [`reload`] replaces it when files change or on SIGHUP, and every new handshake uses the
//! current one while established connections carry on.
//!
//! Identity: the only identity a handler sees is the [`Peer`] built from the verified client
//! certificate of its connection.

// Handlers return `Result<_, Problem>`: the error *is* the response body, built once and
// serialised right away, so boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

mod access;
mod attest;
mod audit_api;
pub(crate) mod conn;
mod console;
pub use console::roles as console_roles;
mod h1_errors;
mod manifest_api;
mod peers;
mod registry;
mod reload;
mod respond;
mod routes;
pub(crate) mod served;
mod status;
mod tenant_api;
mod throttle;
mod upload;
pub mod witness;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use attesta_certs::{LeafIdentity, Role, TrustStore};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn, Instrument};

use crate::audit::log::AuditLog;
use crate::config::{self, Settings};
use crate::metrics::Metrics;

pub use crate::wire::AUDIT_PAGE;
pub use manifest_api::{Notified, PublishAnswer, PublishRequest};
pub use respond::{LOG_INDEX_HEADER, QUERY_ID_HEADER};
pub use routes::{Route, ROUTES};
pub use served::{tenants_dir, TenantConfig, TENANT_FILE};
pub use status::{StatusAnswer, Unavailable};

/// Errors starting a node.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("building TLS configuration")]
    Tls(#[from] attesta_certs::LoadError),
    #[error("opening the store")]
    Store(#[from] crate::store::StoreError),
    #[error("opening the audit log")]
    Audit(#[from] crate::audit::log::AuditError),
    #[error("loading the tenants")]
    Tenants(#[from] served::TenantError),
    #[error("binding {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The TLS configuration in force, with the trust store it was built from.
pub(crate) struct TlsState {
    /// For clients that do not offer the post-quantum hybrid.
    config: Arc<rustls::ServerConfig>,
    /// For clients that offer X25519MLKEM768: only that group, whatever the client prefers.
    post_quantum: Arc<rustls::ServerConfig>,
    /// The console's: any in-date, unrevoked certificate of the CA; the console reads whose.
    console: Arc<rustls::ServerConfig>,
    trust: TrustStore,
    /// The node's own certificate, for its calls to peers.
    identity: attesta_certs::Identity,
}

impl TlsState {
    fn build(trust: TrustStore, identity: &attesta_certs::Identity) -> Result<Self, ServeError> {
        let config = attesta_certs::tls::server_config(&trust, identity)?;
        let post_quantum = attesta_certs::tls::server_config_post_quantum(&trust, identity)?;
        let console = attesta_certs::tls::console_config(&trust, identity)?;
        Ok(Self {
            config: Arc::new(config),
            post_quantum: Arc::new(post_quantum),
            console: Arc::new(console),
            trust,
            identity: identity.clone(),
        })
    }
}

/// State shared by every connection of a node.
pub(crate) struct Shared {
    settings: Settings,
    /// The node's own agency: its data, its log, its sign key.
    own: Arc<served::Served>,
    /// The agencies this node hosts.
    tenants: served::Tenants,
    tls: ArcSwap<TlsState>,
    metrics: Metrics,
    manifest: crate::manifest::ManifestState,
    /// Connections to peer nodes (the status coordinator's calls).
    peers: peers::Peers,
    /// Cosigning peers' checkpoints.
    witness: witness::Witnessing,
    /// Lasting conditions are warned about once a minute, not on every occurrence.
    warnings: throttle::Throttle,
    draining: AtomicBool,
}

/// The client at the other end of a connection, as its verified certificate says.
#[derive(Debug, Clone)]
pub struct Peer {
    pub leaf: LeafIdentity,
    pub addr: SocketAddr,
    /// The person at this node's console on whose behalf the request is made (the console's
    /// requests only: `leaf` is then this node's agency with the operator's certificate).
    pub operator: Option<attesta_certs::OperatorName>,
}

/// A configured node, ready to serve.
pub struct Node {
    shared: Arc<Shared>,
    /// The console's listener, when bound before [`Node::run`] (else `run` binds
    /// `[console] listen` itself).
    console: Option<TcpListener>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("agency", &self.shared.settings.agency)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Builds the node from validated settings.
    pub fn new(settings: Settings) -> Result<Self, ServeError> {
        let tls = TlsState::build(settings.trust.clone(), &settings.identity)?;
        let metrics = Metrics::new();
        metrics.crl_revoked.set(tls.trust.revoked_count() as i64);
        let store = Arc::new(crate::store::Store::open_with_memory(
            &settings.data_dir.join("db"),
            settings.store_memory,
        )?);
        let audit = AuditLog::open(
            store.clone(),
            crate::audit::log::load_or_create_key(&settings.data_dir.join("audit.key"))?,
            crate::audit::log::origin(settings.trust_domain.as_str(), settings.agency.as_str()),
            settings.signing.clone(),
        )?;
        let tenants = served::Tenants::load(&settings, &store)?;
        let mut serves = Vec::new();
        if settings.serves_residence {
            serves.push(attesta_policy::Service::Residence);
        }
        if settings.serves_legal_presence {
            serves.push(attesta_policy::Service::LegalPresence);
        }
        let own = Arc::new(served::Served {
            agency: settings.agency.clone(),
            store,
            audit: Arc::new(audit),
            signing: settings.signing.clone(),
            identity: None,
            serves,
            dir: None,
            serials: Vec::new(),
            retention: None,
            submitting: Default::default(),
        });
        // Uploads of imports a crash interrupted: the store already ignores their rows.
        let _ = std::fs::remove_dir_all(settings.data_dir.join("imports"));
        let manifest = crate::manifest::ManifestState::new(
            &settings.data_dir,
            settings.manifest.prefettura.clone(),
        );
        Ok(Self {
            shared: Arc::new(Shared {
                settings,
                own,
                tenants,
                tls: ArcSwap::from_pointee(tls),
                metrics,
                manifest,
                peers: peers::Peers::default(),
                witness: witness::Witnessing::default(),
                warnings: throttle::Throttle::new(Duration::from_secs(60)),
                draining: AtomicBool::new(false),
            }),
            console: None,
        })
    }

    /// Serves the console on `listener` too (see `[console]`).
    pub fn with_console(mut self, listener: TcpListener) -> Self {
        self.console = Some(listener);
        self
    }

    pub fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    /// Binds the configured address, and the console's if there is one (served by `run`).
    pub async fn bind(&mut self) -> Result<TcpListener, ServeError> {
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind { addr, source })
        };
        if let Some(addr) = self.shared.settings.console {
            self.console = Some(bind(addr).await?);
        }
        bind(self.shared.settings.listen).await
    }

    /// Serves `listener` until `shutdown` completes, then stops accepting, lets in-flight
    /// requests finish (up to `limits.shutdown_grace`) and returns.
    pub async fn run(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let shared = self.shared;
        let limits = shared.settings.limits.clone();
        let table = conn::Table::new(limits.clone());
        // Connections watch this to close gracefully when the node stops.
        let (stop_conns, conns_stopping) = tokio::sync::watch::channel(false);
        let (stop_reload, reload_stopped) = tokio::sync::watch::channel(false);
        let reloader =
            tokio::spawn(reload::watch(shared.clone(), reload_stopped.clone()).in_current_span());
        manifest_api::load_persisted(&shared).await;
        let fetcher = tokio::spawn(
            manifest_api::fetcher(shared.clone(), reload_stopped.clone()).in_current_span(),
        );
        let pruner = tokio::spawn(prune(shared.clone(), reload_stopped.clone()).in_current_span());
        let checkpointer =
            tokio::spawn(checkpoints(shared.clone(), reload_stopped).in_current_span());
        let console = self.console.map(|l| {
            tokio::spawn(
                console::serve(shared.clone(), l, conns_stopping.clone()).in_current_span(),
            )
        });

        info!(
            agency = %shared.settings.agency,
            addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            "node listening"
        );
        tokio::pin!(shutdown);
        loop {
            let (tcp, addr) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(conn) => conn,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            // Admission before any work: a full node or a flooding address costs an accept
            // and a close, never a handshake.
            let handshaking = match table.accept(addr.ip()) {
                Ok(h) => h,
                Err(refusal) => {
                    shared.metrics.refused(refusal);
                    debug!(client.addr = %addr, reason = refusal.label(), "connection refused");
                    drop(tcp);
                    continue;
                }
            };
            let shared = shared.clone();
            let stopping = conns_stopping.clone();
            let span =
                tracing::info_span!("conn", client.addr = %addr, client.id = tracing::field::Empty);
            tokio::spawn(
                async move {
                    shared.metrics.open_connections.inc();
                    serve_connection(&shared, tcp, addr, handshaking, stopping).await;
                    shared.metrics.open_connections.dec();
                }
                .instrument(span),
            );
        }

        shared.draining.store(true, Ordering::SeqCst);
        drop(listener);
        let _ = stop_reload.send(true);
        let _ = stop_conns.send(true);
        info!(agency = %shared.settings.agency, "shutting down: draining connections");
        tokio::select! {
            () = table.drained() => info!("all connections closed"),
            () = tokio::time::sleep(limits.shutdown_grace) => {
                warn!("shutdown grace period over; closing remaining connections");
            }
        }
        let _ = reloader.await;
        let _ = fetcher.await;
        let _ = checkpointer.await;
        let _ = pruner.await;
        if let Some(c) = console {
            let _ = c.await;
        }
        // The last checkpoints cover every answer given.
        for served in shared.served_all() {
            let _ = sign_checkpoint(&shared, &served).await;
            served.audit.close();
        }
    }
}

impl Shared {
    /// The node's own agency and every tenant it has loaded.
    fn served_all(&self) -> Vec<Arc<served::Served>> {
        let mut all = vec![self.own.clone()];
        all.extend(self.tenants.all().values().cloned());
        all
    }
}

/// How often the node signs a checkpoint while its log grows.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Signs a checkpoint every second while the log grows, and has the witnesses cosign it,
/// until `stop`.
async fn checkpoints(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                for served in shared.served_all() {
                    let fresh = sign_checkpoint(&shared, &served).await;
                    witness::submit(&shared, &served, fresh);
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// How often the node deletes audit entries past the retention period.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// Deletes the content of audit entries older than the retention period, at start and every
/// hour, until `stop`.
async fn prune(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(PRUNE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        for served in shared.served_all() {
            prune_one(&shared, &served).await;
        }
    }
}

/// Deletes the content of `served`'s audit entries older than the retention period.
async fn prune_one(shared: &Shared, served: &served::Served) {
    let audit = served.audit.clone();
    let retention = served.retention_or(shared.settings.audit_retention);
    let pruned = tokio::task::spawn_blocking(move || {
        let was = audit.first_kept()?;
        match retention {
            Some(keep) => audit
                .prune(respond::now_ms().saturating_sub(keep.as_millis() as u64))
                .map(|now| (was, now)),
            None => Ok((was, was)),
        }
    })
    .await;
    match pruned {
        Ok(Ok((was, now))) => {
            if !served.is_tenant() {
                shared.metrics.audit_first_kept.set(now as i64);
            }
            if now > was {
                info!(
                    log = %served.agency,
                    deleted = now - was,
                    first_kept = now,
                    "audit entries past retention deleted"
                );
            }
        }
        Ok(Err(e)) => {
            tracing::error!(error = %crate::config::error_chain(&e), "audit retention: entries not deleted");
        }
        Err(_) => tracing::error!("audit retention task failed"),
    }
}

/// Signs a checkpoint of `served`'s durable head, if it moved; whether it did.
pub(super) async fn sign_checkpoint(shared: &Arc<Shared>, served: &served::Served) -> bool {
    let audit = served.audit.clone();
    let signed = tokio::task::spawn_blocking(move || audit.sign_checkpoint()).await;
    let m = &shared.metrics;
    match signed {
        Ok(Ok(Some(s))) => {
            if served.is_tenant() {
                m.tenant_audit_size
                    .get_or_create(&crate::metrics::Tenant {
                        tenant: served.agency.to_string(),
                    })
                    .set(s.checkpoint.size as i64);
            } else {
                m.audit_size.set(s.checkpoint.size as i64);
            }
            m.audit_checkpoints
                .get_or_create(&crate::metrics::Outcome { result: "signed" })
                .inc();
            true
        }
        Ok(Ok(None)) => false,
        Ok(Err(e)) => {
            m.audit_checkpoints
                .get_or_create(&crate::metrics::Outcome { result: "refused" })
                .inc();
            if let Some(repeats) = shared
                .warnings
                .allow(&format!("checkpoint {}", served.agency))
            {
                tracing::error!(log = %served.agency, error = %crate::config::error_chain(&e), repeats, "audit checkpoint not signed");
            }
            false
        }
        Err(_) => {
            tracing::error!("audit checkpoint task failed");
            false
        }
    }
}

async fn serve_connection(
    shared: &Arc<Shared>,
    tcp: TcpStream,
    addr: SocketAddr,
    handshaking: conn::Handshaking,
    stopping: tokio::sync::watch::Receiver<bool>,
) {
    let limits = &shared.settings.limits;
    let _ = tcp.set_nodelay(true);
    let tls = shared.tls.load_full();
    let stream = match tokio::time::timeout(limits.handshake_timeout, handshake(&tls, tcp)).await {
        Err(_) => {
            shared.metrics.handshake_failed("timeout");
            debug!("handshake timed out");
            return;
        }
        Ok(Err(e)) => {
            let reason = handshake_failure_reason(&e);
            shared.metrics.handshake_failed(reason);
            debug!(reason, error = %e, "handshake failed");
            return;
        }
        Ok(Ok(stream)) => stream,
    };
    shared.metrics.handshakes.inc();

    // The verifier accepted this chain a moment ago, so the leaf is there and passes the same
    // checks; anything else means a bug, and the connection is closed rather than trusted.
    let leaf = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|der| tls.trust.check_leaf(der, Role::Client));
    let leaf = match leaf {
        Some(Ok(leaf)) => leaf,
        _ => {
            warn!("verified connection without a usable client certificate; closing");
            return;
        }
    };
    tracing::Span::current().record("client.id", tracing::field::display(leaf.agency()));
    let agency = leaf.agency().clone();
    let privileged =
        agency == shared.settings.agency || agency == shared.settings.manifest.prefettura;
    // A refused connection is still served one answer, so the client learns why.
    let (_established, refusal) = match handshaking.establish(&agency, privileged) {
        Ok(e) => (Some(e), None),
        Err(refusal) => {
            shared.metrics.refused(refusal);
            info!(client.id = %agency, reason = refusal.label(), "connection refused");
            (None, Some(refusal))
        }
    };
    // HTTP/2 only when the client asked for it in ALPN; no sniffing, so a client that sends
    // nothing meets the first-request timeout like any other.
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let peer = Arc::new(Peer {
        leaf,
        addr,
        operator: None,
    });
    let activity = conn::Activity::new(refusal.is_some());

    let service = {
        let shared = shared.clone();
        let activity = activity.clone();
        service_fn(move |req| {
            let shared = shared.clone();
            let peer = peer.clone();
            let handling = activity.begin();
            async move {
                let resp = match refusal {
                    None => routes::handle(&shared, &peer, req).await,
                    Some(r) => refused(&shared, r),
                };
                let (parts, body) = resp.into_parts();
                Ok::<_, std::convert::Infallible>(http::Response::from_parts(
                    parts,
                    handling.answer(body),
                ))
            }
        })
    };
    if h2 {
        let io = TokioIo::new(stream);
        // Each HTTP/2 stream runs in a task of its own: in the connection's span, so that its
        // log lines keep the caller and the node.
        let mut builder =
            hyper::server::conn::http2::Builder::new(InSpan(tracing::Span::current()));
        builder
            .timer(TokioTimer::new())
            .max_concurrent_streams(limits.max_concurrent_streams)
            .keep_alive_interval(Duration::from_secs(30));
        let conn = builder.serve_connection(io, service);
        watch_connection(shared, conn, &activity, stopping).await;
    } else {
        // hyper's own answers to heads it cannot parse, in problem+json.
        let io = TokioIo::new(h1_errors::ProblemErrors::new(stream));
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .keep_alive(refusal.is_none());
        let conn = builder.serve_connection(io, service);
        watch_connection(shared, conn, &activity, stopping).await;
    };
}

/// The server side of a TLS handshake: the post-quantum config for a client that offers
/// X25519MLKEM768, the other one otherwise.
async fn handshake(
    tls: &TlsState,
    tcp: TcpStream,
) -> std::io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
    let start =
        tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp).await?;
    let config = if attesta_certs::tls::offers_post_quantum(&start.client_hello()) {
        tls.post_quantum.clone()
    } else {
        tls.config.clone()
    };
    start.into_stream(config).await
}

/// The answer to every request of a connection that was not admitted.
fn refused(shared: &Shared, refusal: conn::Refusal) -> respond::Resp {
    let limits = &shared.settings.limits;
    let detail = match refusal {
        conn::Refusal::Agency => format!(
            "your agency already has {} connections to this node; reuse them",
            limits.max_connections_per_agency
        ),
        _ => "this node has no connection left for your agency; try again later".to_owned(),
    };
    let mut resp = crate::problem::Problem::new(crate::problem::ProblemKind::TooManyConnections)
        .with_detail(detail)
        .into_response();
    resp.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    );
    resp
}

/// Drives `conn` until it ends, closing it when its watchdog says so (idle, silent, stalled)
/// or when the node stops: gracefully first, then, after a grace, by dropping it.
async fn watch_connection<C>(
    shared: &Shared,
    conn: C,
    activity: &conn::Activity,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    let limits = &shared.settings.limits;
    tokio::pin!(conn);
    let mut tick = tokio::time::interval(conn::Activity::tick(limits));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Until the graceful close began: when it did, and why.
    let mut closing: Option<(tokio::time::Instant, &'static str)> = None;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            _ = tick.tick() => {}
            _ = stopping.changed(), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some((tokio::time::Instant::now(), "shutdown"));
                continue;
            }
        }
        let verdict = activity.check(std::time::Instant::now(), limits);
        match (verdict, closing) {
            (conn::Verdict::Stalled, _) => {
                shared.metrics.closed(verdict.label());
                debug!("answer not taken in time; closing the connection");
                break;
            }
            (conn::Verdict::Idle | conn::Verdict::NoRequest, None) => {
                shared.metrics.closed(verdict.label());
                conn.as_mut().graceful_shutdown();
                closing = Some((tokio::time::Instant::now(), verdict.label()));
            }
            (_, Some((since, why))) if since.elapsed() >= close_grace(limits, why) => {
                debug!(
                    reason = why,
                    "connection did not close in time; dropping it"
                );
                break;
            }
            _ => {}
        }
    }
}

/// How long a connection asked to close may take to finish its requests.
fn close_grace(limits: &config::Limits, why: &str) -> Duration {
    match why {
        "shutdown" => limits.shutdown_grace,
        _ => limits.send_timeout,
    }
}

/// Why an accept failed, as a metric label.
fn handshake_failure_reason(e: &std::io::Error) -> &'static str {
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return attesta_certs::tls::failure_reason(tls);
    }
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => "client_closed",
        _ => "io",
    }
}

/// Spawns hyper's tasks (HTTP/2 streams) in a span: the connection's.
#[derive(Clone)]
struct InSpan(tracing::Span);

impl<F> hyper::rt::Executor<F> for InSpan
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        tokio::spawn(fut.instrument(self.0.clone()));
    }
}

/// Resolves on Ctrl-C or SIGTERM: the signal that stops a node (or the demo) gracefully.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
}

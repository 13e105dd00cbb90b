//! Calls to peer nodes: one HTTP/2 connection per peer node and calling agency, reused by every
//! call, opened with the calling agency's certificate (the node's own, or a tenant's when the
//! call is made for it) and accepting only the agency the directory names for that URL.
//!
//! A connection is tied to the TLS state it was opened with: after a certificate or CRL reload
//! the next call opens a new one, so a revoked peer is not reached over an old connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use attesta_certs::AgencyId;
use bytes::Bytes;
use http::Method;

use super::served::Served;
use super::{Shared, TlsState};
use crate::client::{Client, ClientError, H2Connection, Reply};

/// Why a call to a peer did not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PeerFailure {
    /// No answer within the call's time.
    Timeout,
    /// Nobody listening, or the connection broke.
    Unreachable(String),
    /// The TLS handshake failed: the peer is not who the directory says (reason
    /// `unexpected_agency`), its certificate is revoked or expired, or it refused ours.
    Refused(&'static str),
    /// This node could not build its side of the connection.
    Local,
}

impl PeerFailure {
    /// A stable label for answers, logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Unreachable(_) => "unreachable",
            Self::Refused(_) => "refused",
            Self::Local => "error",
        }
    }

    /// One line for the caller.
    pub fn detail(&self, agency: &str) -> String {
        match self {
            Self::Timeout => format!("{agency} did not answer in time"),
            Self::Unreachable(e) => format!("{agency} could not be reached: {e}"),
            Self::Refused(why) => format!("TLS with {agency} refused ({why})"),
            Self::Local => "this node could not open a connection".to_owned(),
        }
    }
}

fn failure(e: &ClientError) -> PeerFailure {
    if let Some(tls) = e.tls_error() {
        return PeerFailure::Refused(attesta_certs::tls::failure_reason(tls));
    }
    match e {
        ClientError::Handshake { .. } => PeerFailure::Refused("handshake"),
        ClientError::Url(_) => PeerFailure::Local,
        other => PeerFailure::Unreachable(crate::config::error_chain(other)),
    }
}

/// An agency to ask, and where: the node it is served by (its own, or its host), whose TLS
/// certificate the connection must present, and the path prefix of the agency there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The agency whose answer is asked for (the signer of what comes back).
    pub agency: AgencyId,
    /// The node that serves it.
    pub node: AgencyId,
    pub url: String,
    /// `/tenants/<agency>` on a host, empty on the agency's own node.
    pub prefix: String,
    /// When `agency` is a host asked for all the registries it hosts at once: those
    /// registries (see `attest::attest_residence_here`). Empty otherwise.
    pub hosted: Vec<AgencyId>,
}

impl Target {
    /// An agency on a node of its own.
    #[cfg(test)]
    pub fn own(agency: AgencyId, url: String) -> Self {
        Self {
            node: agency.clone(),
            agency,
            url,
            prefix: String::new(),
            hosted: Vec::new(),
        }
    }
}

/// The agencies of the manifest's directory that `keep` selects, with where they are served;
/// agencies the manifest revokes, hosted by a revoked node, or not reachable are left out.
pub(crate) fn directory(
    shared: &Shared,
    keep: impl Fn(&attesta_policy::DirectoryEntry) -> bool,
) -> Vec<Target> {
    let Some(active) = shared.manifest.current() else {
        return Vec::new();
    };
    let m = &active.manifest;
    m.directory
        .iter()
        .filter(|e| keep(e) && !m.is_revoked(&e.agency))
        .filter_map(|e| {
            let at = m.endpoint(&e.agency)?;
            if m.is_revoked(at.node) {
                return None;
            }
            Some(Target {
                agency: AgencyId::new(&e.agency).ok()?,
                node: AgencyId::new(at.node).ok()?,
                url: at.url.to_owned(),
                prefix: at.prefix,
                hosted: Vec::new(),
            })
        })
        .collect()
}

/// `targets` with every group of agencies hosted by one node replaced by one target: the
/// host, asked for all of them at once.
pub(crate) fn one_call_per_host(targets: Vec<Target>) -> Vec<Target> {
    let mut out: Vec<Target> = Vec::new();
    for t in targets {
        if t.prefix.is_empty() {
            out.push(t);
            continue;
        }
        match out
            .iter_mut()
            .find(|o| !o.hosted.is_empty() && o.node == t.node)
        {
            Some(host) => host.hosted.push(t.agency),
            None => out.push(Target {
                agency: t.node.clone(),
                node: t.node,
                url: t.url,
                prefix: String::new(),
                hosted: vec![t.agency],
            }),
        }
    }
    out
}

/// The other nodes of the directory (agencies with a URL of their own), not revoked: the
/// witnesses of this node's logs.
pub(crate) fn nodes(shared: &Shared) -> Vec<(AgencyId, String)> {
    let me = shared.settings.agency.as_str();
    directory(shared, |e| e.url.is_some() && e.agency != me)
        .into_iter()
        .map(|t| (t.node, t.url))
        .collect()
}

/// What a node asks a peer: a POST.
pub(crate) struct Call<'a> {
    pub path: &'a str,
    pub content_type: &'static str,
    /// Sent along: the query id of the request being served (so that both logs name it), the
    /// node's signing certificate (witnessing).
    pub headers: &'a [(&'static str, &'a str)],
    pub body: Bytes,
}

/// One peer node, for one calling agency: where it is, the client pinned to its agency, and
/// the open connection.
struct Entry {
    url: String,
    tls: Arc<TlsState>,
    client: Client,
    conn: tokio::sync::Mutex<Option<H2Connection>>,
}

/// The node's connections to its peers, by (calling agency, peer node).
#[derive(Default)]
pub(crate) struct Peers {
    entries: Mutex<HashMap<(AgencyId, AgencyId), Arc<Entry>>>,
}

impl Peers {
    /// The entry for `from` calling `agency` at `url`, made anew when the URL or the TLS state
    /// changed.
    fn entry(
        &self,
        shared: &Shared,
        from: &Served,
        agency: &AgencyId,
        url: &str,
    ) -> Result<Arc<Entry>, PeerFailure> {
        let tls = shared.tls.load_full();
        let key = (from.agency.clone(), agency.clone());
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = entries.get(&key) {
            if e.url == url && Arc::ptr_eq(&e.tls, &tls) {
                return Ok(e.clone());
            }
        }
        let identity = from.identity.as_ref().unwrap_or(&tls.identity);
        let client = Client::pinned(&tls.trust, identity, Some(agency)).map_err(|e| {
            tracing::warn!(error = %e, "cannot build a peer client configuration");
            PeerFailure::Local
        })?;
        let entry = Arc::new(Entry {
            url: url.to_owned(),
            tls,
            client,
            conn: tokio::sync::Mutex::new(None),
        });
        entries.insert(key, entry.clone());
        Ok(entry)
    }

    /// An open connection to the peer: the current one, or a new one (one handshake at a
    /// time per peer; concurrent callers wait for it and share it).
    async fn connection(
        entry: &Entry,
        connect_timeout: Duration,
    ) -> Result<H2Connection, PeerFailure> {
        let mut slot = entry.conn.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        *slot = None;
        let conn = tokio::time::timeout(connect_timeout, entry.client.connect_h2(&entry.url))
            .await
            .map_err(|_| PeerFailure::Timeout)?
            .map_err(|e| failure(&e))?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// POSTs the call's body to its path on `agency`'s node at `url`, as `from` (its
    /// certificate on the connection), within the peer's timeout. `peer_cert` receives the
    /// SHA-256 of the certificate the peer presented, once connected.
    pub(crate) async fn post(
        &self,
        shared: &Shared,
        from: &Served,
        agency: &AgencyId,
        url: &str,
        call: &Call<'_>,
        peer_cert: &mut Option<[u8; 32]>,
    ) -> Result<Reply, PeerFailure> {
        self.send(shared, from, agency, url, Method::POST, call, peer_cert)
            .await
    }

    /// GETs the call's path (its body and content type are not sent), as [`Peers::post`].
    pub(crate) async fn get(
        &self,
        shared: &Shared,
        from: &Served,
        agency: &AgencyId,
        url: &str,
        call: &Call<'_>,
        peer_cert: &mut Option<[u8; 32]>,
    ) -> Result<Reply, PeerFailure> {
        self.send(shared, from, agency, url, Method::GET, call, peer_cert)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        shared: &Shared,
        from: &Served,
        agency: &AgencyId,
        url: &str,
        method: Method,
        call: &Call<'_>,
        peer_cert: &mut Option<[u8; 32]>,
    ) -> Result<Reply, PeerFailure> {
        let peers = &shared.settings.peers;
        let entry = self.entry(shared, from, agency, url)?;
        let (path, headers) = (call.path, call.headers);
        let body = || (method == Method::POST).then(|| (call.content_type, call.body.clone()));
        let attempt = async {
            let conn = Self::connection(&entry, peers.connect_timeout).await?;
            *peer_cert = conn.server_fingerprint();
            match conn.send_with(method.clone(), path, headers, body()).await {
                Ok(reply) => Ok(reply),
                // The connection may have closed between the check and the call (the peer
                // restarted): one more try on a new connection.
                Err(_) if conn.is_closed() => {
                    let conn = Self::connection(&entry, peers.connect_timeout).await?;
                    *peer_cert = conn.server_fingerprint();
                    conn.send_with(method.clone(), path, headers, body())
                        .await
                        .map_err(|e| failure(&e))
                }
                Err(e) => Err(failure(&e)),
            }
        };
        tokio::time::timeout(peers.timeout_for(agency), attempt)
            .await
            .map_err(|_| PeerFailure::Timeout)?
    }
}

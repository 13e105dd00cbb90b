//! The manifest's routes and the fetcher.
//!
//! - `GET /v1/manifest`: the signed manifest in force (any federation member).
//! - `POST /v1/manifest/notify`: from the Prefettura only. With a body (a signed manifest),
//!   the manifest is offered directly; without one, the node fetches from the Prefettura.
//! - `POST /v1/manifest` (the Prefettura's node only): publish a new policy. The node signs
//!   the next version with its sign key, puts it in force and pushes it to every peer of the
//!   directory.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use http_body_util::Full;
use serde::Serialize;
use tracing::{debug, info, warn};

use super::respond::{json, Resp};
use super::{Peer, Shared};
use crate::client::Client;
use crate::manifest::{self, Offer, Rejected};
use crate::metrics::{Outcome, Reason};
use crate::problem::{Problem, ProblemKind};
use attesta_certs::AgencyId;
use attesta_policy::Manifest;

use crate::audit::entry::{Decision, Direction, Entry};

/// Media type of a compact JWS.
pub const JOSE: &str = "application/jose";

/// How long the Prefettura waits for each peer it notifies.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// Offers a manifest to this node, logging and counting the outcome.
pub(super) async fn offer(
    shared: &Shared,
    token: &str,
    source: &'static str,
) -> Result<Offer, Rejected> {
    let trust = shared.tls.load().trust.clone();
    let result = shared.manifest.offer(&trust, token).await;
    let m = &shared.metrics;
    match &result {
        Ok(Offer::Installed(v)) => {
            m.manifest_version.set(*v as i64);
            m.manifest_updates
                .get_or_create(&Outcome {
                    result: "installed",
                })
                .inc();
            let policy = shared
                .manifest
                .current()
                .map(|a| a.policy.version().to_owned())
                .unwrap_or_default();
            info!(version = v, policy_version = %policy, source, "manifest installed");
            log_change(shared, token, *v, &policy, source).await;
        }
        Ok(Offer::Unchanged(v)) => {
            m.manifest_updates
                .get_or_create(&Outcome {
                    result: "unchanged",
                })
                .inc();
            debug!(version = v, source, "manifest unchanged");
        }
        Err(e) => {
            m.manifest_rejections
                .get_or_create(&Reason { reason: e.reason() })
                .inc();
            warn!(reason = e.reason(), error = %e, source, "manifest refused; keeping the one in force");
        }
    }
    result
}

/// Loads the manifest persisted in the data directory (start-up).
pub(super) async fn load_persisted(shared: &Shared) {
    let trust = shared.tls.load().trust.clone();
    match shared.manifest.load_persisted(&trust).await {
        Ok(Some(v)) => {
            shared.metrics.manifest_version.set(v as i64);
            info!(version = v, "manifest loaded from the data directory");
        }
        Ok(None) => {
            info!("no manifest yet: every policy-guarded request is denied until one arrives")
        }
        Err(e) => {
            shared
                .metrics
                .manifest_rejections
                .get_or_create(&Reason { reason: e.reason() })
                .inc();
            warn!(reason = e.reason(), error = %e, file = %manifest::FILE, "persisted manifest refused");
        }
    }
}

/// A client presenting this node's certificate that accepts only `expected` as the server.
pub(super) fn peer_client(shared: &Shared, expected: &AgencyId) -> Result<Client, Problem> {
    let tls = shared.tls.load();
    Client::pinned(&tls.trust, &tls.identity, Some(expected)).map_err(|e| {
        warn!(error = %e, "cannot build a client configuration");
        Problem::new(ProblemKind::Internal)
    })
}

/// Fetches the manifest from the Prefettura at start-up, every `refresh`, and when notified,
/// until `stop` turns true. Nothing to do on the Prefettura's node or without a URL.
pub(super) async fn fetcher(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let s = &shared.settings;
    let Some(url) = s.manifest.url.clone() else {
        return;
    };
    if s.agency == s.manifest.prefettura {
        return;
    }
    let mut interval = tokio::time::interval(s.manifest.refresh);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = shared.manifest.fetch_now.notified() => {}
            _ = stop.changed() => return,
        }
        fetch_once(&shared, &url).await;
    }
}

async fn fetch_once(shared: &Shared, base: &str) {
    let client = match peer_client(shared, &shared.manifest.prefettura) {
        Ok(c) => c,
        Err(_) => return,
    };
    let outcome = |result: &'static str| {
        shared
            .metrics
            .manifest_updates
            .get_or_create(&Outcome { result })
            .inc();
    };
    match client
        .get(&format!("{base}{}", crate::wire::path::MANIFEST))
        .await
    {
        Ok(reply) if reply.status == StatusCode::OK => match std::str::from_utf8(&reply.body) {
            Ok(token) => {
                let _ = offer(shared, token, "fetch").await;
            }
            Err(_) => {
                shared
                    .metrics
                    .manifest_rejections
                    .get_or_create(&Reason {
                        reason: "malformed",
                    })
                    .inc();
                warn!("the Prefettura's manifest is not text");
            }
        },
        Ok(reply) => {
            outcome("fetch_failed");
            debug!(status = %reply.status, "no manifest from the Prefettura");
        }
        Err(e) => {
            outcome("fetch_failed");
            warn!(error = %crate::config::error_chain(&e), "cannot reach the Prefettura for the manifest; keeping the one in force");
        }
    }
}

/// `GET /v1/manifest`.
pub(super) fn get(shared: &Shared) -> Result<Resp, Problem> {
    let active = shared
        .manifest
        .current()
        .ok_or_else(|| Problem::new(ProblemKind::NoManifest))?;
    let mut resp = http::Response::new(Full::new(Bytes::from(active.token.clone())));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JOSE));
    if let Ok(v) = HeaderValue::from_str(&active.manifest.version.to_string()) {
        resp.headers_mut().insert("attesta-manifest-version", v);
    }
    Ok(resp)
}

#[derive(Serialize)]
struct OfferAnswer {
    version: u64,
    installed: bool,
}

/// `POST /v1/manifest/notify`.
pub(super) async fn notify(shared: &Shared, peer: &Peer, body: &Bytes) -> Result<Resp, Problem> {
    if peer.leaf.agency() != &shared.manifest.prefettura {
        return Err(Problem::new(ProblemKind::Forbidden).with_detail(format!(
            "only the Prefettura ({}) notifies manifests",
            shared.manifest.prefettura
        )));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        shared.manifest.fetch_now.notify_one();
        return Ok(json(
            StatusCode::ACCEPTED,
            &serde_json::json!({"status": "fetching"}),
        ));
    }
    let token = std::str::from_utf8(body)
        .map_err(|_| rejected(&Rejected::Malformed("the body is not text".into())))?;
    match offer(shared, token, "push").await {
        Ok(Offer::Installed(version)) => Ok(json(
            StatusCode::OK,
            &OfferAnswer {
                version,
                installed: true,
            },
        )),
        Ok(Offer::Unchanged(version)) => Ok(json(
            StatusCode::OK,
            &OfferAnswer {
                version,
                installed: false,
            },
        )),
        Err(e) => Err(rejected(&e)),
    }
}

/// A new manifest in force is an audit entry of its own (direction `change`): issuer, version
/// and source, the new policy version, and the SHA-256 of the signed manifest. The manifest is
/// in force already; if the entry cannot be written, that is logged and counted.
async fn log_change(shared: &Shared, token: &str, version: u64, policy: &str, source: &str) {
    let issuer = shared
        .manifest
        .current()
        .map(|a| a.manifest.issuer.clone())
        .unwrap_or_default();
    let mut query_id = [0u8; 16];
    attesta_certs::random_bytes(&mut query_id);
    let entry = Entry {
        time_ms: super::respond::now_ms(),
        query_id,
        direction: Direction::Change,
        peer_agency: issuer,
        peer_cert: None,
        route: "manifest".into(),
        purpose: super::access::purpose::FEDERATION.into(),
        subject: None,
        decision: Decision::None,
        rule: format!("version {version} installed ({source})"),
        policy_version: policy.to_owned(),
        status: 0,
        request_sha256: crate::audit::entry::sha256(token.as_bytes()),
        response_sha256: None,
        operator: None,
    };
    match shared.own.audit.append(&[entry]).await {
        Ok(_) => {
            shared.metrics.audit_entries.inc();
        }
        Err(e) => {
            shared.metrics.audit_failures.inc();
            tracing::error!(error = %crate::config::error_chain(&e), version, "the manifest change could not be logged");
        }
    }
}

fn rejected(e: &Rejected) -> Problem {
    Problem::new(ProblemKind::ManifestRejected)
        .with_detail(e.to_string())
        .with_extension("reason", e.reason().into())
}

pub use crate::wire::{Notified, PublishAnswer, PublishRequest};

/// `POST /v1/manifest` on the Prefettura's node. The caller has passed the policy guard
/// (or, before the first manifest, is this node's own agency).
pub(super) async fn publish(shared: &Shared, body: &Bytes) -> Result<Resp, Problem> {
    let req: PublishRequest = serde_json::from_slice(body).map_err(|e| {
        Problem::new(ProblemKind::BadRequest).with_detail(format!("request body: {e}"))
    })?;
    let s = &shared.settings;
    let current = shared.manifest.current();
    let have = current.as_ref().map(|a| a.manifest.version).unwrap_or(0);
    if let Some(expected) = req.expected_version {
        if expected != have {
            return Err(Problem::new(ProblemKind::Conflict).with_detail(format!(
                "the draft was made from version {expected}, but version {have} is in force"
            )));
        }
    }
    let base = current.as_ref().map(|a| &a.manifest);
    let next = Manifest {
        version: have + 1,
        issued_at: manifest::now_rfc3339(),
        issuer: s.agency.to_string(),
        policy: req.policy,
        directory: req
            .directory
            .or_else(|| base.map(|m| m.directory.clone()))
            .unwrap_or_default(),
        revoked: req
            .revoked
            .or_else(|| base.map(|m| m.revoked.clone()))
            .unwrap_or_default(),
    };
    let token = manifest::sign(&s.signing, &next).map_err(|e| {
        warn!(error = %e, "signing the manifest failed");
        Problem::new(ProblemKind::Internal)
    })?;
    // The same checks every node applies: a manifest the Prefettura cannot verify itself is
    // never served.
    match offer(shared, &token, "publish").await {
        Ok(_) => {}
        Err(e) => return Err(rejected(&e)),
    }
    let active = shared
        .manifest
        .current()
        .ok_or_else(|| Problem::new(ProblemKind::Internal))?;
    let notified = push_to_peers(shared, &active.manifest, &active.token).await;
    Ok(json(
        StatusCode::OK,
        &PublishAnswer {
            version: active.manifest.version,
            issued_at: active.manifest.issued_at.clone(),
            policy_version: active.policy.version().to_owned(),
            notified,
        },
    ))
}

/// Pushes `token` to every other node of the directory, concurrently, each within
/// [`NOTIFY_TIMEOUT`]. A node that misses it fetches it at its next refresh.
async fn push_to_peers(shared: &Shared, manifest: &Manifest, token: &str) -> Vec<Notified> {
    let mut tasks = tokio::task::JoinSet::new();
    for entry in &manifest.directory {
        // Hosted agencies have no node of their own: their host is notified.
        let Some(base) = &entry.url else { continue };
        if entry.agency == shared.settings.agency.as_str() {
            continue;
        }
        let agency = entry.agency.clone();
        let client = AgencyId::new(&agency)
            .map_err(|e| e.to_string())
            .and_then(|id| peer_client(shared, &id).map_err(|_| "no client".to_owned()));
        let url = format!("{base}{}", crate::wire::path::MANIFEST_NOTIFY);
        let body = Bytes::from(token.to_owned());
        tasks.spawn(async move {
            let result = match client {
                Err(e) => Err(e),
                Ok(client) => {
                    match tokio::time::timeout(NOTIFY_TIMEOUT, client.post(&url, JOSE, body)).await
                    {
                        Err(_) => Err("timed out".to_owned()),
                        Ok(Err(e)) => Err(crate::config::error_chain(&e)),
                        Ok(Ok(reply)) if reply.status.is_success() => Ok(()),
                        Ok(Ok(reply)) => Err(format!(
                            "{}: {}",
                            reply.status,
                            reply.problem().and_then(|p| p.detail).unwrap_or_default()
                        )),
                    }
                }
            };
            Notified {
                agency,
                ok: result.is_ok(),
                detail: result.err().unwrap_or_else(|| "in force".into()),
            }
        });
    }
    let mut out = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok(n) = done {
            if !n.ok {
                warn!(peer = %n.agency, detail = %n.detail, "peer not notified of the manifest");
            }
            out.push(n);
        }
    }
    out.sort_by(|a, b| a.agency.cmp(&b.agency));
    out
}

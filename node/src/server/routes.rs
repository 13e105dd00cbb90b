//! Routing and the handlers of the node's own endpoints.
//!
//! Every request goes through [`handle`]: revocation re-check (CRL and manifest), routing, body
//! limit, the route's access guard, timeout, metrics, one log line with the policy decision.
//! Errors become problem+json here and nowhere else.

use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use serde::Serialize;
use tracing::info;

use super::access::{self, purpose, Ask, Decided, ANY_TERRITORY};
use super::served::{self, Served};
use super::{
    attest, audit_api, manifest_api, registry, status, tenant_api, upload, witness, Peer, Shared,
};
use crate::audit::entry::{self, Direction, Entry};
use crate::domain::cf::CodiceFiscale;
use crate::metrics::{RouteLabel, RouteStatus};
use crate::problem::{Problem, ProblemKind};
use crate::wire::path;

pub(super) use super::respond::{json, now_ms, Resp};
pub use super::respond::{LOG_INDEX_HEADER, QUERY_ID_HEADER};
use crate::store::Dataset;
use std::sync::Arc;

/// The node's routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Healthz,
    Readyz,
    Metrics,
    Whoami,
    AttestResidence,
    AttestLegalPresence,
    ImportResidents,
    ImportPermits,
    TenantList,
    TenantAdd,
    TenantRemove,
    MonitorExpiring,
    Family,
    ManifestGet,
    ManifestPublish,
    ManifestNotify,
    Status,
    AuditCheckpoint,
    AuditCertificates,
    AuditEntries,
    AuditInclusion,
    AuditConsistency,
    AuditSubjectReport,
    AuditReceipt,
    WitnessAddCheckpoint,
}

/// Every route the server registers: method, path, route. The OpenAPI document must list the
/// same set.
pub const ROUTES: &[(Method, &str, Route)] = &[
    (Method::GET, path::HEALTHZ, Route::Healthz),
    (Method::GET, path::READYZ, Route::Readyz),
    (Method::GET, path::METRICS, Route::Metrics),
    (Method::GET, path::WHOAMI, Route::Whoami),
    (Method::POST, path::ATTEST_RESIDENCE, Route::AttestResidence),
    (
        Method::POST,
        path::ATTEST_LEGAL_PRESENCE,
        Route::AttestLegalPresence,
    ),
    (Method::POST, path::IMPORT_RESIDENTS, Route::ImportResidents),
    (Method::POST, path::IMPORT_PERMITS, Route::ImportPermits),
    (Method::GET, path::TENANTS, Route::TenantList),
    (Method::POST, path::TENANT, Route::TenantAdd),
    (Method::DELETE, path::TENANT, Route::TenantRemove),
    (Method::GET, path::MONITOR_EXPIRING, Route::MonitorExpiring),
    (Method::GET, path::FAMILY, Route::Family),
    (Method::GET, path::MANIFEST, Route::ManifestGet),
    (Method::POST, path::MANIFEST, Route::ManifestPublish),
    (Method::POST, path::MANIFEST_NOTIFY, Route::ManifestNotify),
    (Method::POST, path::STATUS, Route::Status),
    (Method::GET, path::AUDIT_CHECKPOINT, Route::AuditCheckpoint),
    (
        Method::GET,
        path::AUDIT_CERTIFICATES,
        Route::AuditCertificates,
    ),
    (Method::GET, path::AUDIT_ENTRIES, Route::AuditEntries),
    (Method::GET, path::AUDIT_INCLUSION, Route::AuditInclusion),
    (
        Method::GET,
        path::AUDIT_CONSISTENCY,
        Route::AuditConsistency,
    ),
    (
        Method::POST,
        path::AUDIT_SUBJECT_REPORT,
        Route::AuditSubjectReport,
    ),
    (Method::GET, path::AUDIT_RECEIPT, Route::AuditReceipt),
    (
        Method::POST,
        path::WITNESS_ADD_CHECKPOINT,
        Route::WitnessAddCheckpoint,
    ),
];

/// Whether `path` matches the route template (`{name}` matches one non-empty segment).
fn path_matches(template: &str, path: &str) -> bool {
    let mut t = template.split('/');
    let mut p = path.split('/');
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(ts), Some(ps)) if ts.starts_with('{') && ts.ends_with('}') && !ps.is_empty() => {}
            (Some(ts), Some(ps)) if ts == ps => {}
            _ => return false,
        }
    }
}

impl Route {
    /// Whether the route is served for a tenant, under `/tenants/{agency}`: the agency's data,
    /// its questions and its log; not the node's health, metrics, manifest or witness.
    pub fn for_tenants(self) -> bool {
        matches!(
            self,
            Route::Whoami
                | Route::AttestResidence
                | Route::AttestLegalPresence
                | Route::ImportResidents
                | Route::ImportPermits
                | Route::MonitorExpiring
                | Route::Family
                | Route::Status
                | Route::AuditCheckpoint
                | Route::AuditCertificates
                | Route::AuditEntries
                | Route::AuditInclusion
                | Route::AuditConsistency
                | Route::AuditSubjectReport
                | Route::AuditReceipt
        )
    }

    /// The route's path template, used as the metrics label.
    pub fn name(self) -> &'static str {
        ROUTES
            .iter()
            .find(|(_, _, r)| *r == self)
            .map(|(_, p, _)| *p)
            .unwrap_or("unknown")
    }
}

/// Why no route matched.
#[derive(Debug)]
enum Miss {
    NotFound,
    /// The path exists with these methods.
    MethodNotAllowed(Vec<&'static str>),
}

impl Miss {
    fn into_response(self, path: &str) -> Resp {
        match self {
            Miss::NotFound => Problem::new(ProblemKind::NotFound).into_response(),
            Miss::MethodNotAllowed(allowed) => {
                let allowed = allowed.join(", ");
                let mut resp = Problem::new(ProblemKind::MethodNotAllowed)
                    .with_detail(format!("{path} accepts {allowed}"))
                    .into_response();
                if let Ok(v) = HeaderValue::from_str(&allowed) {
                    resp.headers_mut().insert(header::ALLOW, v);
                }
                resp
            }
        }
    }
}

/// `/tenants/{agency}/rest` → (`Some(agency)`, `/rest`); any other path → (`None`, path).
/// `/tenants/{agency}` alone, or with an empty agency, is a tenant with no route.
fn split_tenant(path: &str) -> (Option<&str>, &str) {
    let Some(rest) = path
        .strip_prefix(attesta_policy::TENANTS_PATH)
        .and_then(|r| r.strip_prefix('/'))
    else {
        return (None, path);
    };
    match rest.find('/') {
        Some(i) => (Some(&rest[..i]), &rest[i..]),
        None => (Some(rest), ""),
    }
}

/// The agency a request is for: the node's own, or the tenant its path names, if this node
/// hosts it now (loaded here, and given to this node by the manifest in force).
fn served_for(
    shared: &Shared,
    tenant: Option<&str>,
    routed: &Result<Route, Miss>,
) -> Result<Arc<Served>, Problem> {
    let Some(tenant) = tenant else {
        return Ok(shared.own.clone());
    };
    if matches!(routed, Ok(r) if !r.for_tenants()) || matches!(routed, Err(Miss::NotFound)) {
        return Err(Problem::new(ProblemKind::NotFound));
    }
    let active = shared.manifest.current();
    let refused = |detail: String| Problem::new(ProblemKind::UnknownTenant).with_detail(detail);
    if let Some(why) = served::not_hosted(
        active.as_ref().map(|a| &a.manifest),
        &shared.settings.agency,
        tenant,
    ) {
        return Err(refused(why));
    }
    let served = shared
        .tenants
        .loaded(tenant)
        .ok_or_else(|| refused(format!("{tenant} is not a tenant of this node")))?;
    if served.revoked(&shared.tls.load().trust) {
        return Err(refused(format!(
            "a certificate of {tenant} is listed in the CRL"
        )));
    }
    Ok(served)
}

/// Finds the route for a request.
fn route(method: &Method, path: &str) -> Result<Route, Miss> {
    let mut allowed = Vec::new();
    for (m, p, r) in ROUTES {
        if path_matches(p, path) {
            if m == method {
                return Ok(*r);
            }
            allowed.push(m.as_str());
        }
    }
    if allowed.is_empty() {
        Err(Miss::NotFound)
    } else {
        Err(Miss::MethodNotAllowed(allowed))
    }
}

/// What a request leaves for its audit entry, filled in as it is served.
pub(super) struct Trail {
    pub query_id: [u8; 16],
    /// A malformed `Attesta-Query-Id` header (the request is refused).
    bad_query_id: bool,
    pub decided: Option<Decided>,
    /// The person the request is about.
    pub subject: Option<CodiceFiscale>,
    /// SHA-256 of the request body, when it is not the body `dispatch` read (imports).
    pub request_sha256: Option<[u8; 32]>,
    /// The calls this request made to peers (the status coordinator's).
    pub outgoing: Vec<Entry>,
    /// The request's body has arrived (a request timed out before is answered 408).
    pub body_read: bool,
    /// The tenant whose data answered a question asked of its host without a tenant (see
    /// `attest::attest_residence_here`): its log takes the entry, not the host's.
    pub answered_by: Option<Arc<Served>>,
}

impl Trail {
    /// The caller's query id if it sent one (32 hex digits), a new one otherwise.
    fn new(headers: &http::HeaderMap) -> Self {
        let mut trail = Self {
            query_id: [0; 16],
            bad_query_id: false,
            decided: None,
            subject: None,
            request_sha256: None,
            outgoing: Vec::new(),
            body_read: false,
            answered_by: None,
        };
        match headers.get(QUERY_ID_HEADER).map(|v| v.to_str()) {
            None => attesta_certs::random_bytes(&mut trail.query_id),
            Some(v) => match v.ok().and_then(parse_query_id) {
                Some(id) => trail.query_id = id,
                None => {
                    trail.bad_query_id = true;
                    attesta_certs::random_bytes(&mut trail.query_id);
                }
            },
        }
        trail
    }
}

/// 32 lower-case hex digits.
fn parse_query_id(s: &str) -> Option<[u8; 16]> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    entry::parse_hex(s)
}

pub(super) async fn handle(
    shared: &Arc<Shared>,
    peer: &Peer,
    req: Request<impl super::respond::ReqBody>,
) -> Resp {
    let started = Instant::now();
    let time_ms = now_ms();
    let method = req.method().clone();
    let (tenant, path) = split_tenant(req.uri().path());
    let routed = route(&method, path);
    let tenant = tenant.map(str::to_owned);
    let tenant = tenant.as_deref();
    // A request for an agency this node does not serve is answered, and logged, by the node.
    let (served, not_served) = match served_for(shared, tenant, &routed) {
        Ok(s) => (s, None),
        Err(p) => (shared.own.clone(), Some(p)),
    };
    let cosigning = matches!(routed, Ok(Route::WitnessAddCheckpoint));
    let label = routed.as_ref().map(|r| r.name()).unwrap_or("unmatched");
    let timeout = match routed {
        Ok(Route::ImportResidents | Route::ImportPermits) => shared.settings.limits.import_timeout,
        _ => shared.settings.limits.request_timeout,
    };

    let mut trail = Trail::new(req.headers());
    let work = async {
        match not_served {
            Some(problem) => problem.into_response(),
            None => dispatch(shared, &served, peer, routed, req, &mut trail).await,
        }
    };
    let mut resp = match tokio::time::timeout(timeout, work).await {
        Ok(resp) => resp,
        // A client too slow to send its body is told so; a slow answer is the node's fault.
        Err(_) if !trail.body_read => Problem::new(ProblemKind::RequestTimeout)
            .with_detail(format!(
                "the request body did not arrive within {} ms",
                timeout.as_millis()
            ))
            .into_response(),
        Err(_) => Problem::new(ProblemKind::Timeout).into_response(),
    };
    let outgoing = std::mem::take(&mut trail.outgoing);
    let (decision, explanation, policy_version) = match &trail.decided {
        Some(d) => (
            if d.allow { "allow" } else { "deny" },
            d.explanation.as_str(),
            d.policy_version.as_deref().unwrap_or(""),
        ),
        // Open routes, and requests refused before any decision (revoked, malformed, unknown).
        None => ("none", "", ""),
    };
    if !policy_version.is_empty() {
        if let Ok(v) = HeaderValue::from_str(policy_version) {
            resp.headers_mut().insert("attesta-policy-version", v);
        }
    }

    // The answer leaves only once its audit entry is durable. A cosignature is not logged:
    // it would make the next checkpoint to cosign (see `witness`).
    let resp = if cosigning && resp.status() == StatusCode::OK {
        resp
    } else {
        let route = format!("{method} {label}");
        let logged_in = trail.answered_by.clone().unwrap_or_else(|| served.clone());
        record(
            shared, &logged_in, peer, route, time_ms, &trail, outgoing, resp,
        )
        .await
    };

    let status = resp.status().as_u16();
    let m = &shared.metrics;
    // Per tenant: the one served, or the one whose data answered a question for them all.
    if let Some(t) = trail
        .answered_by
        .as_ref()
        .or(Some(&served))
        .filter(|s| s.is_tenant())
    {
        m.tenant_requests
            .get_or_create(&crate::metrics::TenantClass {
                tenant: t.agency.to_string(),
                class: match status {
                    200..=299 => "2xx",
                    500..=599 => "5xx",
                    _ => "4xx",
                },
            })
            .inc();
    }
    m.requests
        .get_or_create(&RouteStatus {
            route: label,
            status,
        })
        .inc();
    m.latency
        .get_or_create(&RouteLabel { route: label })
        .observe(started.elapsed().as_secs_f64());
    info!(
        client.id = %peer.leaf.agency(),
        tenant = tenant.unwrap_or(""),
        method = %method,
        route = label,
        status,
        decision,
        rule = explanation,
        policy_version,
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    resp
}

async fn dispatch(
    shared: &Arc<Shared>,
    served: &Arc<Served>,
    peer: &Peer,
    routed: Result<Route, Miss>,
    req: Request<impl super::respond::ReqBody>,
    trail: &mut Trail,
) -> Resp {
    // Connections outlive CRL and manifest updates: check every request, not just the
    // handshake.
    let agency = peer.leaf.agency().as_str();
    let revoked = if shared.tls.load().trust.is_revoked(&peer.leaf.serial) {
        Some("the client certificate is listed in the CRL".to_owned())
    } else if shared
        .manifest
        .current()
        .is_some_and(|a| a.manifest.is_revoked(agency))
    {
        Some(format!(
            "agency {agency} is revoked by the federation manifest"
        ))
    } else {
        None
    };
    if let Some(detail) = revoked {
        let mut resp = Problem::new(ProblemKind::CertificateRevoked)
            .with_detail(detail)
            .into_response();
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return resp;
    }
    // Requests no client of the API needs: answered in problem+json here, below the limits
    // at which hyper (HTTP/1.1: 400 KiB of head) and h2 (16 KiB of headers) answer alone.
    if let Some(problem) = oversized_head(&req) {
        return problem.into_response();
    }
    // Imports stream their (large) body to disk under their own limit, once allowed.
    let import = match routed {
        Ok(Route::ImportResidents) => Some(Dataset::Residents),
        Ok(Route::ImportPermits) => Some(Dataset::Permits),
        _ => None,
    };
    if let (Some(ds), Ok(route)) = (import, &routed) {
        let ask = Ask {
            resource: "import",
            action: "write",
            purpose: purpose::DATA_LOAD,
            // A tenant's data is its own: its operator loads it, not the host's.
            territory: served.agency.as_str(),
        };
        if let Err(problem) = access::authorize(shared, peer, route.name(), ask, &mut trail.decided)
        {
            return problem.into_response();
        }
        // The upload is part of the import's own (long) time limit.
        trail.body_read = true;
        let uploaded = upload::import(shared, served, ds, req).await;
        trail.request_sha256 = uploaded.request_sha256;
        return uploaded.answer.unwrap_or_else(Problem::into_response);
    }
    // For everything else the body limit comes before routing, so that no path or method
    // escapes it.
    let (parts, incoming) = req.into_parts();
    let body = match read_body(
        &parts.headers,
        incoming,
        shared.settings.limits.max_body_bytes,
    )
    .await
    {
        Ok(b) => b,
        Err(problem) => return problem.into_response(),
    };
    trail.body_read = true;
    trail.request_sha256 = Some(crate::audit::entry::sha256(&body));
    if trail.bad_query_id {
        return crate::wire::bad_request(format!(
            "{QUERY_ID_HEADER}: expected 32 lower-case hex digits"
        ))
        .into_response();
    }
    let route = match routed {
        Ok(r) => r,
        Err(miss) => return miss.into_response(parts.uri.path()),
    };
    serve(shared, served, peer, route, &parts, &body, trail)
        .await
        .unwrap_or_else(Problem::into_response)
}

/// A route's request, parsed from its query string, path and body: what its guard and its
/// handler need, before either runs (mini-redis's `Command::from_frame`). Parsing reads no
/// data; a malformed request is refused for its form alone.
enum Parsed {
    /// Open to every federation member: no personal data.
    Healthz,
    Readyz,
    Whoami,
    ManifestGet,
    /// The Prefettura named in node.toml (checked by the handler).
    ManifestNotify,
    /// Peers of the directory (checked by the witness).
    Witness,
    Metrics,
    Attest(attesta_policy::Service, crate::wire::Question),
    Status(status::StatusQuestion),
    Expiring(registry::ExpiringQuery),
    Family(registry::FamilyQuery),
    /// The Prefettura's node only; the first manifest by the Prefettura itself.
    ManifestPublish,
    /// The auditor's read routes (the subject report names its subject).
    Audit(Route, Option<CodiceFiscale>),
    /// An auditor, or the agency the entry names.
    Receipt(u64),
    /// The host's operator: list (no agency), add or remove a tenant.
    Tenants(Route, Option<attesta_certs::AgencyId>),
}

impl Parsed {
    fn parse(
        shared: &Shared,
        peer: &Peer,
        route: Route,
        parts: &http::request::Parts,
        body: &Bytes,
        query_id: [u8; 16],
    ) -> Result<Self, Problem> {
        let last_segment = parts.uri.path().rsplit('/').next().unwrap_or_default();
        let query = parts.uri.query();
        Ok(match route {
            Route::Healthz => Self::Healthz,
            Route::Readyz => Self::Readyz,
            Route::Whoami => Self::Whoami,
            Route::ManifestGet => Self::ManifestGet,
            Route::ManifestNotify => Self::ManifestNotify,
            Route::WitnessAddCheckpoint => Self::Witness,
            Route::Metrics => Self::Metrics,
            Route::AttestResidence | Route::AttestLegalPresence => {
                let mut q = crate::wire::parse_question(body)?;
                q.query_id = hex::encode(query_id);
                let service = if route == Route::AttestResidence {
                    attesta_policy::Service::Residence
                } else {
                    attesta_policy::Service::LegalPresence
                };
                Self::Attest(service, q)
            }
            Route::Status => Self::Status(status::parse(body)?),
            Route::MonitorExpiring => {
                Self::Expiring(registry::parse_expiring(shared, peer, query)?)
            }
            Route::Family => Self::Family(registry::parse_family(last_segment, query)?),
            Route::ManifestPublish => Self::ManifestPublish,
            Route::AuditSubjectReport => {
                Self::Audit(route, Some(audit_api::parse_subject_report(body)?))
            }
            Route::AuditCheckpoint
            | Route::AuditCertificates
            | Route::AuditEntries
            | Route::AuditInclusion
            | Route::AuditConsistency => Self::Audit(route, None),
            Route::AuditReceipt => Self::Receipt(audit_api::receipt_index(query)?),
            Route::TenantList => Self::Tenants(route, None),
            Route::TenantAdd | Route::TenantRemove => {
                Self::Tenants(route, Some(tenant_api::parse_agency(last_segment)?))
            }
            // Handled by `dispatch`, before the body is read.
            Route::ImportResidents | Route::ImportPermits => {
                return Err(Problem::new(ProblemKind::Internal))
            }
        })
    }

    /// The person the request is about, for its audit entry (blinded there).
    fn subject(&self) -> Option<&CodiceFiscale> {
        match self {
            Self::Attest(_, q) => Some(&q.subject),
            Self::Status(q) => Some(&q.subject),
            Self::Family(q) => Some(&q.subject),
            Self::Audit(_, subject) => subject.as_ref(),
            _ => None,
        }
    }

    /// What the policy is asked, for the routes it decides alone. `None`: open, checked by
    /// the handler itself (notify, witness), or decided in [`Parsed::apply`] (publish,
    /// receipt).
    fn ask<'a>(&'a self, node: &'a str) -> Option<Ask<'a>> {
        let read = |resource, purpose, territory| Ask {
            resource,
            action: "read",
            purpose,
            territory,
        };
        Some(match self {
            Self::Metrics => read("metrics", purpose::OPERATIONS, node),
            Self::Attest(service, q) => read(service.as_str(), &q.purpose, ANY_TERRITORY),
            Self::Status(q) => read(
                "status",
                &q.purpose,
                q.comune.as_ref().map_or(ANY_TERRITORY, |c| c.as_str()),
            ),
            Self::Expiring(q) => read("expiring-permits", &q.purpose, q.comune.as_str()),
            Self::Family(q) => read("family", &q.purpose, ANY_TERRITORY),
            Self::Audit(..) => access::AUDIT_READ,
            Self::Tenants(route, _) => Ask {
                resource: "tenants",
                action: if *route == Route::TenantList {
                    "read"
                } else {
                    "write"
                },
                purpose: purpose::OPERATIONS,
                territory: node,
            },
            _ => return None,
        })
    }

    /// Answers a request whose guard (if [`Parsed::ask`] gave one) has allowed it.
    #[allow(clippy::too_many_arguments)]
    async fn apply(
        self,
        shared: &Arc<Shared>,
        served: &Arc<Served>,
        peer: &Peer,
        route: Route,
        parts: &http::request::Parts,
        body: &Bytes,
        trail: &mut Trail,
    ) -> Result<Resp, Problem> {
        let query = parts.uri.query();
        let node = served.agency.as_str();
        let mut guard =
            |ask: Ask<'_>| access::authorize(shared, peer, route.name(), ask, &mut trail.decided);
        match self {
            Self::Healthz => Ok(json(StatusCode::OK, &Status { status: "ok" })),
            Self::Readyz => readyz(shared),
            Self::Whoami => Ok(whoami(shared, served, peer)),
            Self::ManifestGet => manifest_api::get(shared),
            Self::ManifestNotify => manifest_api::notify(shared, peer, body).await,
            Self::Witness => witness::add_checkpoint(shared, peer, &parts.headers, body),
            Self::Metrics => Ok(metrics(shared, &parts.headers)),
            Self::Attest(attesta_policy::Service::Residence, q) => {
                attest::attest_residence_here(shared, served, peer, &q, &mut trail.answered_by)
            }
            Self::Attest(attesta_policy::Service::LegalPresence, q) => {
                attest::attest_legal_presence(served, peer, &q)
            }
            Self::Status(q) => {
                let (resp, outgoing) = status::status(shared, served, &q, trail.query_id).await?;
                trail.outgoing = outgoing;
                Ok(resp)
            }
            Self::Expiring(q) => registry::monitor_expiring(shared, served, peer, &q),
            Self::Family(q) => registry::family(shared, served, peer, &q),
            Self::ManifestPublish => {
                if shared.settings.agency != shared.manifest.prefettura {
                    return Err(Problem::new(ProblemKind::NotServed)
                        .with_detail("manifests are published on the Prefettura's node"));
                }
                if shared.manifest.current().is_some() {
                    guard(Ask {
                        resource: "manifest",
                        action: "publish",
                        purpose: purpose::FEDERATION,
                        territory: ANY_TERRITORY,
                    })?;
                } else if peer.leaf.agency() != &shared.settings.agency {
                    // Before the first manifest there is no policy: only the Prefettura itself.
                    return Err(Problem::new(ProblemKind::Forbidden)
                        .with_detail("the first manifest is published by the Prefettura itself"));
                }
                manifest_api::publish(shared, body).await
            }
            Self::Audit(route, subject) => match (route, subject) {
                (Route::AuditCheckpoint, _) => audit_api::checkpoint(served),
                (Route::AuditCertificates, _) => Ok(audit_api::certificates(shared, served)),
                (Route::AuditEntries, _) => audit_api::entries(shared, served, query),
                (Route::AuditInclusion, _) => audit_api::inclusion(served, query),
                (Route::AuditConsistency, _) => audit_api::consistency(served, query),
                (_, Some(cf)) => audit_api::subject_report(served, &cf),
                _ => Err(Problem::new(ProblemKind::Internal)),
            },
            Self::Tenants(Route::TenantList, _) => Ok(tenant_api::list(shared)),
            Self::Tenants(Route::TenantAdd, Some(agency)) => tenant_api::add(shared, agency).await,
            Self::Tenants(_, Some(agency)) => tenant_api::remove(shared, agency).await,
            Self::Tenants(..) => Err(Problem::new(ProblemKind::Internal)),
            Self::Receipt(index) => {
                let caller = peer.leaf.agency().as_str();
                // The policy first: an auditor may see any entry, and learns what is missing
                // or pruned.
                let active = shared.manifest.current();
                let in_force = active.as_ref().map(|a| (&a.policy, a.manifest.version));
                let auditor =
                    access::check(in_force, peer.leaf.agency(), &access::AUDIT_READ).is_ok();
                let as_auditor =
                    |guard: &mut dyn FnMut(Ask<'_>) -> Result<access::Permit, Problem>| {
                        guard(access::AUDIT_READ)?;
                        let (entry, _) = audit_api::receipt_entry(shared, served, index)?;
                        audit_api::receipt(shared, served, index, entry)
                    };
                if auditor {
                    return as_auditor(&mut guard);
                }
                // Anyone else learns only about entries that name it (and the node's own
                // agency what is missing or pruned): a missing, pruned or foreign entry is the
                // same policy denial, so the answer tells neither the log's size nor what was
                // pruned.
                match audit_api::receipt_entry(shared, served, index) {
                    Ok((entry, named)) if named == caller => {
                        audit_api::receipt(shared, served, index, entry)
                    }
                    Err(problem) if caller == node => Err(problem),
                    _ => as_auditor(&mut guard),
                }
            }
        }
    }
}

/// Runs a route, one way for all: parse its request, put it to its guard, then answer.
async fn serve(
    shared: &Arc<Shared>,
    served: &Arc<Served>,
    peer: &Peer,
    route: Route,
    parts: &http::request::Parts,
    body: &Bytes,
    trail: &mut Trail,
) -> Result<Resp, Problem> {
    let parsed = Parsed::parse(shared, peer, route, parts, body, trail.query_id)?;
    trail.subject = parsed.subject().cloned();
    if let Some(ask) = parsed.ask(served.agency.as_str()) {
        access::authorize(shared, peer, route.name(), ask, &mut trail.decided)?;
    }
    parsed
        .apply(shared, served, peer, route, parts, body, trail)
        .await
}

/// Appends the request's audit entry (after the entries of the calls it made) and waits until
/// it is durable; then the answer may leave, carrying the entry's index. If the log cannot
/// take it, the caller gets 503 `audit-unavailable` instead of the answer. The entry goes to
/// the log of the agency the request was for.
#[allow(clippy::too_many_arguments)]
async fn record(
    shared: &Shared,
    served: &Served,
    peer: &Peer,
    route: String,
    time_ms: u64,
    trail: &Trail,
    mut entries: Vec<Entry>,
    resp: Resp,
) -> Resp {
    let (mut parts, body) = resp.into_parts();
    // `Full` holds its bytes: collecting it is immediate and cannot fail.
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let audit = &served.audit;
    let d = trail.decided.as_ref();
    let incoming = Entry {
        time_ms,
        query_id: trail.query_id,
        direction: Direction::Incoming,
        peer_agency: peer.leaf.agency().to_string(),
        peer_cert: Some(peer.leaf.fingerprint),
        route,
        purpose: d.map(|d| d.purpose.clone()).unwrap_or_default(),
        subject: trail
            .subject
            .as_ref()
            .map(|cf| audit.subject_key().blind(cf)),
        decision: match d {
            None => entry::Decision::None,
            Some(d) if d.allow => entry::Decision::Allow,
            Some(_) => entry::Decision::Deny,
        },
        rule: d.map(|d| d.explanation.clone()).unwrap_or_default(),
        policy_version: d.and_then(|d| d.policy_version.clone()).unwrap_or_default(),
        status: parts.status.as_u16(),
        request_sha256: trail.request_sha256.unwrap_or_else(|| entry::sha256(b"")),
        response_sha256: Some(entry::sha256(&body)),
        operator: peer.operator.as_ref().map(|o| o.to_string()),
    };
    // The calls a console action made are that operator's too.
    for e in &mut entries {
        e.operator.clone_from(&incoming.operator);
    }
    entries.push(incoming);
    let index = match audit.append(&entries).await {
        Ok(first) => first + entries.len() as u64 - 1,
        Err(e) => {
            tracing::error!(error = %crate::config::error_chain(&e), "audit append failed; answer withheld");
            shared.metrics.audit_failures.inc();
            return Problem::new(ProblemKind::AuditUnavailable).into_response();
        }
    };
    shared.metrics.audit_entries.inc_by(entries.len() as u64);
    parts
        .headers
        .insert(LOG_INDEX_HEADER, HeaderValue::from(index));
    if let Ok(v) = HeaderValue::from_str(&hex::encode(trail.query_id)) {
        parts.headers.insert(QUERY_ID_HEADER, v);
    }
    Response::from_parts(parts, Full::new(body))
}

/// The longest request target read: 4 KiB (the API's longest is under 200 bytes).
pub const MAX_URI_BYTES: usize = 4 << 10;
/// The most header bytes read (names, values and separators): 8 KiB.
pub const MAX_HEADER_BYTES: usize = 8 << 10;

/// 414 or 431 for a request whose target or headers are larger than the node reads.
fn oversized_head<B>(req: &Request<B>) -> Option<Problem> {
    let uri = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri > MAX_URI_BYTES {
        return Some(Problem::new(ProblemKind::UriTooLong).with_detail(format!(
            "request targets are limited to {MAX_URI_BYTES} bytes"
        )));
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    (headers > MAX_HEADER_BYTES).then(|| {
        Problem::new(ProblemKind::HeadersTooLarge).with_detail(format!(
            "request headers are limited to {MAX_HEADER_BYTES} bytes"
        ))
    })
}

/// Reads the whole body, refusing more than `limit` bytes: by Content-Length before reading,
/// and by counting while reading (chunked bodies, HTTP/2).
async fn read_body(
    headers: &http::HeaderMap,
    body: impl super::respond::ReqBody,
    limit: usize,
) -> Result<Bytes, Box<Problem>> {
    let too_large = || {
        Box::new(
            Problem::new(ProblemKind::BodyTooLarge)
                .with_detail(format!("request bodies are limited to {limit} bytes")),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => Err(Box::new(
            Problem::new(ProblemKind::BadRequest).with_detail("the request body could not be read"),
        )),
    }
}

#[derive(Serialize)]
struct Status {
    status: &'static str,
}

fn readyz(shared: &Shared) -> Result<Resp, Problem> {
    if shared.draining.load(Ordering::SeqCst) {
        return Err(Problem::new(ProblemKind::ShuttingDown));
    }
    let active = shared.manifest.current();
    Ok(json(
        StatusCode::OK,
        &crate::wire::Ready {
            status: "ready".into(),
            manifest_version: active.as_ref().map(|a| a.manifest.version),
            policy_version: active.as_ref().map(|a| a.policy.version().to_owned()),
        },
    ))
}

/// `/metrics`: OpenMetrics text to a client that accepts it (Prometheus asks for it), the
/// Prometheus text format 0.0.4 otherwise; each served as what it is.
fn metrics(shared: &Shared, headers: &http::HeaderMap) -> Resp {
    shared
        .metrics
        .store_memory
        .set(i64::try_from(shared.own.store.memory_in_use()).unwrap_or(i64::MAX));
    let text = shared.metrics.encode();
    let (body, content_type) = if crate::metrics::accepts_openmetrics(headers) {
        (text, crate::metrics::OPENMETRICS_TYPE)
    } else {
        (
            crate::metrics::to_prometheus_text(&text),
            crate::metrics::PROMETHEUS_TYPE,
        )
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept"));
    resp
}

/// The caller as this node sees it.
#[derive(Serialize)]
struct WhoAmI<'a> {
    agency: &'a str,
    spiffe_id: String,
    certificate_sha256: String,
    node: &'a str,
    /// The tenant the request addressed (`/tenants/{agency}/v1/whoami`).
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<&'a str>,
}

fn whoami(shared: &Shared, served: &Served, peer: &Peer) -> Resp {
    json(
        StatusCode::OK,
        &WhoAmI {
            agency: peer.leaf.agency().as_str(),
            spiffe_id: peer.leaf.id.to_string(),
            certificate_sha256: peer.leaf.fingerprint_hex(),
            node: shared.settings.agency.as_str(),
            tenant: served.is_tenant().then_some(served.agency.as_str()),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_templates_match_one_segment_per_parameter() {
        for (template, path, ok) in [
            ("/v1/family/{cf}", "/v1/family/RSSMRA85T10A562S", true),
            ("/v1/family/{cf}", "/v1/family/", false),
            ("/v1/family/{cf}", "/v1/family", false),
            ("/v1/family/{cf}", "/v1/family/a/b", false),
            ("/v1/whoami", "/v1/whoami", true),
            ("/v1/whoami", "/v1/whoami/", false),
        ] {
            assert_eq!(path_matches(template, path), ok, "{template} ~ {path}");
        }
        assert_eq!(
            route(&Method::GET, "/v1/family/X").ok(),
            Some(Route::Family)
        );
        assert!(matches!(
            route(&Method::POST, "/v1/family/X"),
            Err(Miss::MethodNotAllowed(_))
        ));
    }
}

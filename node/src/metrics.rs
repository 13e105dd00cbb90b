//! Prometheus metrics, served as text at `/metrics`.
//!
//! Labels are bounded sets (route templates, status codes, failure reasons, the tenants the
//! node's operator added), never raw paths or callers' identities, so cardinality stays small.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteStatus {
    pub route: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteDecision {
    pub route: &'static str,
    pub decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerCall {
    /// The question asked: residence, legal-presence.
    pub service: &'static str,
    /// ok, or why there was no usable answer (timeout, unreachable, refused, denied, ...).
    pub result: &'static str,
}

/// One tenant of the node (a comune hosted by a service centre), and a class of answers.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantClass {
    pub tenant: String,
    /// 2xx, 4xx or 5xx.
    pub class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Tenant {
    pub tenant: String,
}

/// Media type of the OpenMetrics text format.
pub const OPENMETRICS_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Media type of the Prometheus text format.
pub const PROMETHEUS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether the request's `Accept` names OpenMetrics text (with a non-zero q).
pub fn accepts_openmetrics(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut params = range.split(';').map(str::trim);
            let media = params.next().unwrap_or_default();
            let refused = params.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
        })
}

/// The Prometheus text format 0.0.4 of an OpenMetrics exposition: no `# EOF`, and counter
/// families named by their samples' `_total` name in `# HELP` and `# TYPE`.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Every metric the node exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RouteStatus, Counter>,
    pub latency: Family<RouteLabel, Histogram>,
    pub handshakes: Counter,
    pub handshake_failures: Family<Reason, Counter>,
    pub open_connections: Gauge,
    /// Connections not admitted, by reason (handshakes, address_limit, agency_limit, node_full).
    pub connections_refused: Family<Reason, Counter>,
    /// Connections the node closed, by reason (idle, no_request, stalled).
    pub connections_closed: Family<Reason, Counter>,
    pub tls_reloads: Family<Outcome, Counter>,
    pub crl_revoked: Gauge,
    pub manifest_version: Gauge,
    pub manifest_updates: Family<Outcome, Counter>,
    pub manifest_rejections: Family<Reason, Counter>,
    pub policy_decisions: Family<RouteDecision, Counter>,
    pub peer_calls: Family<PeerCall, Counter>,
    pub status_answers: Family<Outcome, Counter>,
    pub audit_entries: Counter,
    pub audit_failures: Counter,
    pub audit_size: Gauge,
    /// The first audit entry whose content is kept (older ones were past retention).
    pub audit_first_kept: Gauge,
    /// RocksDB's budget in use (block cache, memtables charged to it), set when scraped.
    pub store_memory: Gauge,
    pub audit_checkpoints: Family<Outcome, Counter>,
    /// This node's checkpoints sent to witnesses, by result.
    pub witness_submissions: Family<Outcome, Counter>,
    /// Peers' checkpoints this node was asked to cosign, by result.
    pub witness_requests: Family<Outcome, Counter>,
    /// Requests for each tenant this node hosts, by class of answer.
    pub tenant_requests: Family<TenantClass, Counter>,
    /// The size of each tenant's audit log at its last checkpoint.
    pub tenant_audit_size: Family<Tenant, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("attesta");
        let requests = Family::<RouteStatus, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabel, Histogram>::new_with_constructor(|| {
            // 100 µs .. ~6.5 s
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.0001, 2.0, 17,
            ))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time from request headers to response, by route",
            latency.clone(),
        );
        let handshakes = Counter::default();
        registry.register(
            "tls_handshakes",
            "TLS handshakes completed",
            handshakes.clone(),
        );
        let handshake_failures = Family::<Reason, Counter>::default();
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes refused or failed, by reason",
            handshake_failures.clone(),
        );
        let open_connections = Gauge::default();
        registry.register(
            "open_connections",
            "Client connections being served",
            open_connections.clone(),
        );
        let connections_refused = Family::<Reason, Counter>::default();
        registry.register(
            "connections_refused",
            "Connections not admitted, by reason (handshakes, address_limit, agency_limit, node_full)",
            connections_refused.clone(),
        );
        let connections_closed = Family::<Reason, Counter>::default();
        registry.register(
            "connections_closed",
            "Connections the node closed, by reason (idle, no_request, stalled)",
            connections_closed.clone(),
        );
        let tls_reloads = Family::<Outcome, Counter>::default();
        registry.register(
            "tls_reloads",
            "Reloads of CA, CRL, certificate and key, by result",
            tls_reloads.clone(),
        );
        let crl_revoked = Gauge::default();
        registry.register(
            "crl_revoked_certificates",
            "Certificates listed in the CRL in force",
            crl_revoked.clone(),
        );
        let manifest_version = Gauge::default();
        registry.register(
            "manifest_version",
            "Version of the policy manifest in force (0: none yet)",
            manifest_version.clone(),
        );
        let manifest_updates = Family::<Outcome, Counter>::default();
        registry.register(
            "manifest_updates",
            "Manifests offered to this node and accepted, by result (installed, unchanged)",
            manifest_updates.clone(),
        );
        let manifest_rejections = Family::<Reason, Counter>::default();
        registry.register(
            "manifest_rejections",
            "Manifests refused, by reason",
            manifest_rejections.clone(),
        );
        let policy_decisions = Family::<RouteDecision, Counter>::default();
        registry.register(
            "policy_decisions",
            "Access decisions, by route and decision (allow, deny)",
            policy_decisions.clone(),
        );
        let peer_calls = Family::<PeerCall, Counter>::default();
        registry.register(
            "peer_calls",
            "Calls of the status coordinator to its peers, by question and result",
            peer_calls.clone(),
        );
        let status_answers = Family::<Outcome, Counter>::default();
        registry.register(
            "status_answers",
            "Answers of /v1/status, by result (complete, incomplete)",
            status_answers.clone(),
        );
        let audit_entries = Counter::default();
        registry.register(
            "audit_entries",
            "Audit log entries appended (incoming requests and outgoing calls)",
            audit_entries.clone(),
        );
        let audit_failures = Counter::default();
        registry.register(
            "audit_append_failures",
            "Requests not answered because their audit entry could not be written",
            audit_failures.clone(),
        );
        let audit_size = Gauge::default();
        registry.register(
            "audit_checkpoint_size",
            "Tree size of the latest signed audit checkpoint",
            audit_size.clone(),
        );
        let audit_first_kept = Gauge::default();
        registry.register(
            "audit_first_kept_entry",
            "Index of the first audit entry whose content is kept; older entries were deleted after the retention period (their hashes stay)",
            audit_first_kept.clone(),
        );
        let store_memory = Gauge::default();
        registry.register_with_unit(
            "store_memory_in_use",
            "RocksDB memory in use: the block cache with the memtables charged to it (bounded by [store] memory_mb)",
            prometheus_client::registry::Unit::Bytes,
            store_memory.clone(),
        );
        let audit_checkpoints = Family::<Outcome, Counter>::default();
        registry.register(
            "audit_checkpoints",
            "Audit checkpoint signings, by result (signed, refused)",
            audit_checkpoints.clone(),
        );
        let witness_submissions = Family::<Outcome, Counter>::default();
        registry.register(
            "witness_submissions",
            "This node's checkpoints sent to its witnesses, by result (cosigned, conflict, refused, unreachable)",
            witness_submissions.clone(),
        );
        let witness_requests = Family::<Outcome, Counter>::default();
        registry.register(
            "witness_requests",
            "Peers' checkpoints this node was asked to cosign, by result (cosigned, conflict, inconsistent, refused)",
            witness_requests.clone(),
        );
        let tenant_requests = Family::<TenantClass, Counter>::default();
        registry.register(
            "tenant_requests",
            "Requests for each tenant this node hosts, by class of answer (2xx, 4xx, 5xx)",
            tenant_requests.clone(),
        );
        let tenant_audit_size = Family::<Tenant, Gauge>::default();
        registry.register(
            "tenant_audit_size",
            "Entries in each hosted tenant's audit log at its last checkpoint",
            tenant_audit_size.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            handshakes,
            handshake_failures,
            open_connections,
            connections_refused,
            connections_closed,
            tls_reloads,
            crl_revoked,
            manifest_version,
            manifest_updates,
            manifest_rejections,
            policy_decisions,
            peer_calls,
            status_answers,
            audit_entries,
            audit_failures,
            audit_size,
            audit_first_kept,
            store_memory,
            audit_checkpoints,
            witness_submissions,
            witness_requests,
            tenant_requests,
            tenant_audit_size,
        }
    }

    pub(crate) fn refused(&self, refusal: crate::server::conn::Refusal) {
        self.connections_refused
            .get_or_create(&Reason {
                reason: refusal.label(),
            })
            .inc();
    }

    pub fn closed(&self, reason: &'static str) {
        self.connections_closed
            .get_or_create(&Reason { reason })
            .inc();
    }

    pub fn handshake_failed(&self, reason: &'static str) {
        self.handshake_failures
            .get_or_create(&Reason { reason })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("encoding metrics into a string");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_is_served_to_who_asks_for_it() {
        let h = |v: &str| {
            let mut m = http::HeaderMap::new();
            m.insert(http::header::ACCEPT, v.parse().unwrap());
            m
        };
        // What Prometheus sends.
        assert!(accepts_openmetrics(&h(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )));
        assert!(!accepts_openmetrics(&h("text/plain")));
        assert!(!accepts_openmetrics(&h(
            "application/openmetrics-text; q=0"
        )));
        assert!(!accepts_openmetrics(&http::HeaderMap::new()));
    }

    #[test]
    fn every_metric_has_help_and_type_in_both_formats() {
        let m = Metrics::new();
        m.requests
            .get_or_create(&RouteStatus {
                route: "/healthz",
                status: 200,
            })
            .inc();
        let om = m.encode();
        assert!(om.ends_with("# EOF\n"), "{om}");
        let prom = to_prometheus_text(&om);
        assert!(!prom.contains("# EOF"));
        assert!(
            prom.contains("# TYPE attesta_http_requests_total counter\n"),
            "{prom}"
        );
        assert!(
            prom.contains("# HELP attesta_http_requests_total HTTP requests"),
            "{prom}"
        );
        assert!(prom.contains("attesta_http_requests_total{route=\"/healthz\",status=\"200\"} 1"));
        for text in [&om, &prom] {
            let types: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("# TYPE "))
                .filter_map(|l| l.split(' ').next())
                .collect();
            assert!(types.len() > 5, "{text}");
            for name in types {
                let help = text
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("# HELP {name} ")));
                assert!(
                    help.is_some_and(|h| !h.trim().is_empty()),
                    "{name} has no HELP"
                );
            }
        }
    }
}

//! `POST /v1/status`: the coordinator. It asks the authoritative peers, in parallel and
//! within a deadline, and combines their signed attestations into one answer.
//!
//! - Residence: the registry node of the comune given, or every registry node in the
//!   directory when none is given; the first positive answer wins. "Not resident" needs a
//!   negative answer from every registry asked.
//! - Legal presence: when the registry says the person needs no permit (Italian, EU, EEA or
//!   Swiss citizen), it follows registration (`basis: "registration"`); otherwise it is the
//!   Questura's answer. A Questura's "no valid permit" about someone whose residence is
//!   unknown stays `null`: the person might be a citizen who needs none.
//! - A peer that does not answer in time, refuses the connection, is not who the directory
//!   says, denies the question or returns an attestation that does not verify leaves its fact
//!   `null` and is listed in `unavailable` with the reason. Nothing is guessed.
//!
//! Every attestation kept is verified first: signed by the agency asked, addressed to this
//! node's agency, about this exact request (`request_sha256`).

use std::collections::HashMap;
use std::sync::Arc;

use attesta_certs::AgencyId;
use attesta_policy::Service;
use bytes::Bytes;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::task::JoinSet;

use super::peers::Call;
use super::routes::{json, now_ms, Resp, Trail, QUERY_ID_HEADER};
use super::Shared;
use crate::audit::entry::{Decision, Direction, Entry};
use crate::client::Reply;
use crate::domain::places::ComuneCode;
use crate::domain::records::format_date;
use crate::metrics::{Outcome, PeerCall};
use crate::problem::{Problem, ProblemKind};

pub(super) use crate::wire::{parse_status as parse, StatusQuestion};

/// The question forwarded to each peer (`/v1/attest/*`).
#[derive(Serialize)]
struct PeerQuestion<'a> {
    subject: &'a str,
    purpose: &'a str,
    as_of: String,
}

/// A peer that gave no usable answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Unavailable {
    /// The agency asked; null when no node in the directory could be asked.
    pub agency: Option<String>,
    /// timeout, unreachable, refused, denied, no-data, error, bad-attestation, no-node.
    pub reason: String,
    pub detail: String,
}

/// The coordinator's answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct StatusAnswer {
    pub resident: Option<bool>,
    pub comune: Option<String>,
    pub since: Option<String>,
    pub legally_present: Option<bool>,
    /// permit, renewal_receipt, parent_permit (from the Questura) or registration.
    pub basis: Option<String>,
    pub valid_until: Option<String>,
    pub as_of: String,
    /// Both facts are known.
    pub complete: bool,
    /// The peers' signed answers this one rests on (compact JWS).
    pub attestations: Vec<String>,
    pub unavailable: Vec<Unavailable>,
    pub query_id: String,
}

/// What a peer is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Residence,
    Presence,
}

impl Kind {
    fn service(self) -> &'static str {
        match self {
            Kind::Residence => "residence",
            Kind::Presence => "legal-presence",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Kind::Residence => "/v1/attest/residence",
            Kind::Presence => "/v1/attest/legal-presence",
        }
    }

    /// The boolean fact the attestation must carry.
    fn fact(self) -> &'static str {
        match self {
            Kind::Residence => "resident",
            Kind::Presence => "legally_present",
        }
    }
}

/// A verified answer of a peer.
struct Attested {
    token: String,
    payload: Value,
}

impl Attested {
    fn fact(&self, kind: Kind) -> bool {
        self.payload[kind.fact()].as_bool().unwrap_or(false)
    }

    fn str(&self, field: &str) -> Option<String> {
        self.payload[field].as_str().map(str::to_owned)
    }
}

type Failure = (&'static str, String);

/// What the audit entry of one call records of its exchange.
#[derive(Debug, Default)]
struct Exchange {
    peer_cert: Option<[u8; 32]>,
    /// 0 when no answer came.
    status: u16,
    response_sha256: Option<[u8; 32]>,
}

/// The shared part of every call of one status request.
struct Asking {
    body: Bytes,
    /// SHA-256 of `body`, hex (what the attestations must name).
    digest: Arc<str>,
    query_id: Arc<str>,
}

/// Asks one peer and verifies its answer.
async fn ask(
    shared: Arc<Shared>,
    agency: AgencyId,
    url: String,
    kind: Kind,
    asking: Arc<Asking>,
) -> (Exchange, Result<Attested, Failure>) {
    let mut exchange = Exchange::default();
    let call = Call {
        path: kind.path(),
        content_type: "application/json",
        headers: &[(QUERY_ID_HEADER, &asking.query_id)],
        body: asking.body.clone(),
    };
    let reply = shared
        .peers
        .post(&shared, &agency, &url, &call, &mut exchange.peer_cert)
        .await;
    let result = match reply {
        Ok(reply) => {
            exchange.status = reply.status.as_u16();
            exchange.response_sha256 = Some(crate::audit::entry::sha256(&reply.body));
            check_answer(&shared, &agency, kind, &asking.digest, &reply)
        }
        Err(f) => Err((f.reason(), f.detail(agency.as_str()))),
    };
    (exchange, result)
}

/// Verifies a peer's answer: a signed attestation by that agency, for this node, about this
/// question, carrying the fact asked for.
fn check_answer(
    shared: &Shared,
    agency: &AgencyId,
    kind: Kind,
    digest: &str,
    reply: &Reply,
) -> Result<Attested, Failure> {
    let name = agency.as_str();
    if !reply.status.is_success() {
        let doc = reply.json().unwrap_or(Value::Null);
        let said = doc["detail"]
            .as_str()
            .or(doc["title"].as_str())
            .unwrap_or_default();
        let reason = match (reply.status, doc["type"].as_str()) {
            (StatusCode::FORBIDDEN, _) => "denied",
            (_, Some(t)) if t.ends_with(":no-data") => "no-data",
            _ => "error",
        };
        return Err((reason, format!("{name} answered {}: {said}", reply.status)));
    }
    let bad = |why: String| ("bad-attestation", format!("{name}: {why}"));
    let token = std::str::from_utf8(&reply.body)
        .map_err(|_| bad("answer is not text".into()))?
        .trim()
        .to_owned();
    let verified = crate::attestation::verify_fresh(&shared.tls.load().trust, &token)
        .map_err(|e| bad(e.to_string()))?;
    let p = &verified.payload;
    if p["issuer"].as_str() != Some(name) {
        return Err(bad("issued by another agency".into()));
    }
    if p["audience"].as_str() != Some(shared.settings.agency.as_str()) {
        return Err(bad("addressed to another agency".into()));
    }
    if p["request_sha256"].as_str() != Some(digest) {
        return Err(bad("answers another question".into()));
    }
    if !p[kind.fact()].is_boolean() {
        return Err(bad(format!("no {} fact", kind.fact())));
    }
    Ok(Attested {
        token,
        payload: verified.payload,
    })
}

/// The answers gathered so far.
#[derive(Default)]
struct Gathered {
    registries_pending: usize,
    questure_pending: usize,
    registry_failed: bool,
    questura_failed: bool,
    resident: Option<Attested>,
    present: Option<Attested>,
    attestations: Vec<String>,
    unavailable: Vec<Unavailable>,
}

impl Gathered {
    fn pending(&mut self, kind: Kind) -> &mut usize {
        match kind {
            Kind::Residence => &mut self.registries_pending,
            Kind::Presence => &mut self.questure_pending,
        }
    }

    fn failed(&mut self, kind: Kind, agency: Option<&str>, reason: &str, detail: String) {
        match kind {
            Kind::Residence => self.registry_failed = true,
            Kind::Presence => self.questura_failed = true,
        }
        self.unavailable.push(Unavailable {
            agency: agency.map(str::to_owned),
            reason: reason.to_owned(),
            detail,
        });
    }

    fn answered(&mut self, kind: Kind, a: Attested) {
        self.attestations.push(a.token.clone());
        let slot = match kind {
            Kind::Residence => &mut self.resident,
            Kind::Presence => &mut self.present,
        };
        if slot.is_none() && a.fact(kind) {
            *slot = Some(a);
        }
    }

    /// Registration alone makes the person legally present.
    fn exempt(&self) -> bool {
        self.resident
            .as_ref()
            .is_some_and(|r| r.payload["permit_required"].as_bool() == Some(false))
    }

    /// Both facts are settled: waiting longer cannot change the answer.
    fn settled(&self) -> bool {
        let residence = self.resident.is_some() || self.registries_pending == 0;
        let presence = self.exempt() || self.present.is_some() || self.questure_pending == 0;
        residence && presence
    }

    fn resident(&self) -> Option<bool> {
        if self.resident.is_some() {
            Some(true)
        } else if self.registries_pending == 0 && !self.registry_failed {
            Some(false)
        } else {
            None
        }
    }

    /// (legally_present, basis, valid_until)
    fn presence(&self) -> (Option<bool>, Option<String>, Option<String>) {
        if self.exempt() {
            return (Some(true), Some("registration".into()), None);
        }
        if let Some(p) = &self.present {
            return (Some(true), p.str("basis"), p.str("valid_until"));
        }
        let all_said_no = self.questure_pending == 0 && !self.questura_failed;
        if all_said_no && self.resident().is_some() {
            (Some(false), None, None)
        } else {
            (None, None, None)
        }
    }
}

/// The nodes of the directory that answer `service`, and for residence with a comune, only
/// those keeping that comune's registry. Agencies revoked by the manifest are left out.
fn targets(
    shared: &Shared,
    service: Service,
    comune: Option<&ComuneCode>,
) -> Vec<(AgencyId, String)> {
    super::peers::directory(shared, |e| {
        e.serves.contains(&service)
            && comune.is_none_or(|c| e.comuni.iter().any(|k| k == c.as_str()))
    })
}

fn count_call(shared: &Shared, kind: Kind, result: &'static str) {
    shared
        .metrics
        .peer_calls
        .get_or_create(&PeerCall {
            service: kind.service(),
            result,
        })
        .inc();
}

pub(super) async fn status(
    shared: &Arc<Shared>,
    q: &StatusQuestion,
    trail: &mut Trail,
) -> Result<Resp, Problem> {
    let deadline = tokio::time::Instant::now() + shared.settings.peers.status_deadline;
    let body = serde_json::to_vec(&PeerQuestion {
        subject: q.subject.canonical(),
        purpose: &q.purpose,
        as_of: format_date(q.as_of),
    })
    .map_err(|_| Problem::new(ProblemKind::Internal))?;
    let request_sha256 = crate::audit::entry::sha256(&body);
    let asking = Arc::new(Asking {
        digest: crate::audit::entry::hex(&request_sha256).into(),
        body: Bytes::from(body),
        query_id: trail.query_id_hex().into(),
    });
    // One outgoing audit entry per call, written with the request's own entry.
    let subject = shared.audit.subject_key().blind(&q.subject);
    let outgoing = |agency: &AgencyId, kind: Kind, x: Exchange, outcome: &str| Entry {
        time_ms: now_ms(),
        query_id: trail.query_id,
        direction: Direction::Outgoing,
        peer_agency: agency.to_string(),
        peer_cert: x.peer_cert,
        route: format!("POST {}", kind.path()),
        purpose: q.purpose.clone(),
        subject: Some(subject),
        decision: Decision::None,
        rule: outcome.to_owned(),
        policy_version: String::new(),
        status: x.status,
        request_sha256,
        response_sha256: x.response_sha256,
    };
    let mut logged = Vec::new();

    let mut g = Gathered::default();
    let mut calls = JoinSet::new();
    let mut asked = HashMap::new();
    for (kind, service) in [
        (Kind::Residence, Service::Residence),
        (Kind::Presence, Service::LegalPresence),
    ] {
        let comune = match kind {
            Kind::Residence => q.comune.as_ref(),
            Kind::Presence => None,
        };
        let nodes = targets(shared, service, comune);
        if nodes.is_empty() {
            let detail = match comune {
                Some(c) => format!("no node in the directory keeps the registry of comune {c}"),
                None => format!("no node in the directory answers {}", kind.service()),
            };
            g.failed(kind, None, "no-node", detail);
            continue;
        }
        for (agency, url) in nodes {
            *g.pending(kind) += 1;
            let task = ask(shared.clone(), agency.clone(), url, kind, asking.clone());
            let id = calls.spawn(task).id();
            asked.insert(id, (agency, kind));
        }
    }

    while !g.settled() {
        let next = match tokio::time::timeout_at(deadline, calls.join_next_with_id()).await {
            Ok(Some(next)) => next,
            Ok(None) | Err(_) => break,
        };
        let (id, exchange, result) = match next {
            Ok((id, (exchange, result))) => (id, exchange, result),
            Err(e) => (
                e.id(),
                Exchange::default(),
                Err(("error", "the call failed".to_owned())),
            ),
        };
        let Some((agency, kind)) = asked.remove(&id) else {
            continue;
        };
        let outcome = result.as_ref().map_or_else(|(r, _)| *r, |_| "ok");
        logged.push(outgoing(&agency, kind, exchange, outcome));
        *g.pending(kind) -= 1;
        count_call(
            shared,
            kind,
            result.as_ref().map_or_else(|(r, _)| *r, |_| "ok"),
        );
        match result {
            Ok(a) => g.answered(kind, a),
            Err((reason, detail)) => {
                tracing::debug!(peer = %agency, service = kind.service(), reason, "peer gave no answer");
                g.failed(kind, Some(agency.as_str()), reason, detail);
            }
        }
    }
    // Whatever is still running missed the deadline, unless the answer no longer needs it.
    calls.abort_all();
    let settled = g.settled();
    for (agency, kind) in asked.into_values() {
        // Abandoned calls are logged too: the peer may have received them.
        let outcome = if settled { "abandoned" } else { "timeout" };
        logged.push(outgoing(&agency, kind, Exchange::default(), outcome));
        if !settled {
            count_call(shared, kind, "timeout");
            let detail = format!("{agency} did not answer within the status deadline");
            g.failed(kind, Some(agency.as_str()), "timeout", detail);
        }
    }
    trail.outgoing = logged;

    let resident = g.resident();
    let (legally_present, basis, valid_until) = g.presence();
    let complete = resident.is_some() && legally_present.is_some();
    shared
        .metrics
        .status_answers
        .get_or_create(&Outcome {
            result: if complete { "complete" } else { "incomplete" },
        })
        .inc();
    let place = g.resident.as_ref();
    Ok(json(
        StatusCode::OK,
        &StatusAnswer {
            resident,
            comune: place.and_then(|r| r.str("comune")),
            since: place.and_then(|r| r.str("since")),
            legally_present,
            basis,
            valid_until,
            as_of: format_date(q.as_of),
            complete,
            attestations: g.attestations,
            unavailable: g.unavailable,
            query_id: trail.query_id_hex(),
        },
    ))
}

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
//!
//! [`coordinate`] is the rules above and nothing else: it asks through an [`AskPeer`] (the
//! node's [`Peers`](super::peers::Peers), or a fake in the unit tests), takes the targets,
//! the trust store and the deadline as inputs, and returns the answer together with the calls
//! it made, for the route to count and log. It does not know the audit log.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use attesta_certs::{AgencyId, TrustStore};
use attesta_policy::Service;
use bytes::Bytes;
use http::StatusCode;
use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::peers::{Call, PeerFailure, Target};
use super::respond::{json, now_ms, Resp, QUERY_ID_HEADER};
use super::served::Served;
use super::Shared;
use crate::attestation::{PresenceAnswer, ResidenceAnswer};
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

pub use crate::wire::{StatusAnswer, Unavailable};

/// The route a service is asked on.
fn path(service: Service) -> &'static str {
    match service {
        Service::Residence => crate::wire::path::ATTEST_RESIDENCE,
        Service::LegalPresence => crate::wire::path::ATTEST_LEGAL_PRESENCE,
    }
}

/// A verified answer of a peer.
enum Attested {
    Residence(String, ResidenceAnswer),
    Presence(String, PresenceAnswer),
}

impl Attested {
    /// The agency that signed it.
    fn issuer(&self) -> &str {
        match self {
            Self::Residence(_, a) => &a.envelope.issuer,
            Self::Presence(_, p) => &p.envelope.issuer,
        }
    }

    fn token(&self) -> &str {
        match self {
            Self::Residence(t, _) | Self::Presence(t, _) => t,
        }
    }

    /// The fact asked for is true.
    fn positive(&self) -> bool {
        match self {
            Self::Residence(_, a) => a.resident,
            Self::Presence(_, a) => a.legally_present,
        }
    }
}

/// Why a peer's call gave no answer: a stable reason and one line.
type Failure = (&'static str, String);

/// What the audit entry of one call records of its exchange.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Exchange {
    pub peer_cert: Option<[u8; 32]>,
    /// 0 when no answer came.
    pub status: u16,
    pub response_sha256: Option<[u8; 32]>,
}

/// One call the coordinator made (or abandoned), for the route's metrics and audit entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutgoingCall {
    pub agency: AgencyId,
    pub service: Service,
    pub exchange: Exchange,
    /// ok, a failure reason, timeout or abandoned (not needed for the answer any more).
    pub outcome: &'static str,
    pub time_ms: u64,
}

/// How the coordinator reaches a peer: POST `body` to `path` for the target agency, on the
/// node that serves it, sending the query id along. The reply, or why none came, and the
/// SHA-256 of the certificate the peer presented, if it got that far.
pub(crate) trait AskPeer: Send + Sync + 'static {
    fn ask(
        &self,
        target: Target,
        path: &'static str,
        body: Bytes,
        query_id: Arc<str>,
    ) -> impl Future<Output = (Option<[u8; 32]>, Result<Reply, PeerFailure>)> + Send;
}

/// The node's peers, as the coordinator asks them for one agency it serves (its own, or a
/// tenant's: the call then carries the tenant's certificate).
pub(crate) struct NodePeers(pub Arc<Shared>, pub Arc<Served>);

impl AskPeer for NodePeers {
    async fn ask(
        &self,
        target: Target,
        path: &'static str,
        body: Bytes,
        query_id: Arc<str>,
    ) -> (Option<[u8; 32]>, Result<Reply, PeerFailure>) {
        let (shared, from) = (&self.0, &self.1);
        let path = format!("{}{path}", target.prefix);
        let call = Call {
            path: &path,
            content_type: "application/json",
            headers: &[(QUERY_ID_HEADER, &query_id)],
            body,
        };
        let mut cert = None;
        let reply = shared
            .peers
            .post(shared, from, &target.node, &target.url, &call, &mut cert)
            .await;
        (cert, reply)
    }
}

/// Everything [`coordinate`] decides on.
pub(crate) struct Inputs {
    /// The body sent to every peer.
    pub body: Bytes,
    pub query_id: String,
    /// The day the question is about, YYYY-MM-DD (echoed in the answer).
    pub as_of: String,
    /// This node's agency: the audience every attestation must name.
    pub me: AgencyId,
    pub trust: TrustStore,
    /// The agencies to ask for residence, and for legal presence; `Err` says why there are
    /// none.
    pub registries: Result<Vec<Target>, String>,
    pub questure: Result<Vec<Target>, String>,
    pub deadline: Instant,
}

/// What the coordinator found: the answer, and every call it made, in the order each ended
/// (abandoned and timed-out calls last), for the route to count and log.
pub(crate) struct Found {
    pub answer: StatusAnswer,
    pub calls: Vec<OutgoingCall>,
}

/// Verifies a peer's answer: a signed attestation by that agency, for this node, about this
/// question, carrying the fact asked for. A host asked for all the registries it hosts
/// (`hosted`) answers with one of them's positive attestation, or with its own negative one
/// that covers every one of them.
fn check_answer(
    trust: &TrustStore,
    me: &AgencyId,
    agency: &AgencyId,
    hosted: &[AgencyId],
    service: Service,
    digest: &str,
    reply: &Reply,
) -> Result<Attested, Failure> {
    let name = agency.as_str();
    if !reply.status.is_success() {
        let problem = reply.problem();
        let said = problem
            .as_ref()
            .map(|p| p.detail.clone().unwrap_or_else(|| p.title.clone()))
            .unwrap_or_default();
        let reason = match (reply.status, problem.as_ref().map(|p| p.type_.as_str())) {
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
    let verified =
        crate::attestation::verify_fresh(trust, &token).map_err(|e| bad(e.to_string()))?;
    let (attested, envelope) = match service {
        Service::Residence => {
            let a: ResidenceAnswer = verified
                .answer()
                .map_err(|e| bad(format!("not a residence answer: {e}")))?;
            let envelope = a.envelope.clone();
            (Attested::Residence(token, a), envelope)
        }
        Service::LegalPresence => {
            let a: PresenceAnswer = verified
                .answer()
                .map_err(|e| bad(format!("not a legal-presence answer: {e}")))?;
            let envelope = a.envelope.clone();
            (Attested::Presence(token, a), envelope)
        }
    };
    if hosted.is_empty() {
        if envelope.issuer != name {
            return Err(bad("issued by another agency".into()));
        }
    } else {
        let Attested::Residence(_, a) = &attested else {
            return Err(bad(
                "a host answers residence for its registries only".into()
            ));
        };
        if envelope.issuer == name {
            if a.resident {
                return Err(bad("a host says no for its registries, never yes".into()));
            }
            if let Some(missing) = hosted
                .iter()
                .find(|h| !a.covers.iter().any(|c| c == h.as_str()))
            {
                return Err((
                    "incomplete",
                    format!("{name}: its answer does not cover {missing}, which it hosts"),
                ));
            }
        } else if !hosted.iter().any(|h| h.as_str() == envelope.issuer) {
            return Err(bad(format!(
                "issued by {}, which {name} does not host",
                envelope.issuer
            )));
        } else if !a.resident {
            return Err(bad(
                "a hosted registry's negative answers for itself only".into()
            ));
        }
    }
    if envelope.audience != me.as_str() {
        return Err(bad("addressed to another agency".into()));
    }
    if envelope.request_sha256 != digest {
        return Err(bad("answers another question".into()));
    }
    Ok(attested)
}

/// The answers gathered so far.
#[derive(Default)]
struct Gathered {
    registries_pending: usize,
    questure_pending: usize,
    registry_failed: bool,
    questura_failed: bool,
    resident: Option<ResidenceAnswer>,
    present: Option<PresenceAnswer>,
    attestations: Vec<String>,
    unavailable: Vec<Unavailable>,
}

impl Gathered {
    fn pending(&mut self, service: Service) -> &mut usize {
        match service {
            Service::Residence => &mut self.registries_pending,
            Service::LegalPresence => &mut self.questure_pending,
        }
    }

    fn failed(&mut self, service: Service, agency: Option<&str>, reason: &str, detail: String) {
        match service {
            Service::Residence => self.registry_failed = true,
            Service::LegalPresence => self.questura_failed = true,
        }
        self.unavailable.push(Unavailable {
            agency: agency.map(str::to_owned),
            reason: reason.to_owned(),
            detail,
        });
    }

    fn answered(&mut self, a: Attested) {
        self.attestations.push(a.token().to_owned());
        let positive = a.positive();
        match a {
            Attested::Residence(_, r) if positive && self.resident.is_none() => {
                self.resident = Some(r)
            }
            Attested::Presence(_, p) if positive && self.present.is_none() => {
                self.present = Some(p)
            }
            _ => {}
        }
    }

    /// Registration alone makes the person legally present.
    fn exempt(&self) -> bool {
        self.resident
            .as_ref()
            .is_some_and(|r| r.permit_required == Some(false))
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
            return (Some(true), p.basis.clone(), p.valid_until.clone());
        }
        let all_said_no = self.questure_pending == 0 && !self.questura_failed;
        if all_said_no && self.resident().is_some() {
            (Some(false), None, None)
        } else {
            (None, None, None)
        }
    }
}

/// Asks the targets in parallel until the answer is settled or the deadline passes, and
/// combines what came back by the rules of this module's documentation.
pub(crate) async fn coordinate<P: AskPeer>(peers: Arc<P>, input: Inputs) -> Found {
    let digest: Arc<str> = crate::attestation::sha256_hex(&input.body).into();
    let query_id: Arc<str> = input.query_id.as_str().into();
    let trust = Arc::new(input.trust);
    let me = Arc::new(input.me);
    let mut g = Gathered::default();
    let mut calls = JoinSet::new();
    let mut asked = HashMap::new();
    let mut done = Vec::new();
    for (service, targets) in [
        (Service::Residence, input.registries),
        (Service::LegalPresence, input.questure),
    ] {
        let nodes = match targets {
            Ok(nodes) => nodes,
            Err(detail) => {
                g.failed(service, None, "no-node", detail);
                continue;
            }
        };
        for target in nodes {
            *g.pending(service) += 1;
            let agency = target.agency.clone();
            let hosted = target.hosted.clone();
            let (peers, trust, me, digest) =
                (peers.clone(), trust.clone(), me.clone(), digest.clone());
            let (body, query_id, who) = (input.body.clone(), query_id.clone(), agency.clone());
            let task = async move {
                let (peer_cert, reply) = peers.ask(target, path(service), body, query_id).await;
                let mut exchange = Exchange {
                    peer_cert,
                    ..Exchange::default()
                };
                let result = match reply {
                    Ok(reply) => {
                        exchange.status = reply.status.as_u16();
                        exchange.response_sha256 = Some(crate::audit::entry::sha256(&reply.body));
                        check_answer(&trust, &me, &who, &hosted, service, &digest, &reply)
                    }
                    Err(f) => Err((f.reason(), f.detail(who.as_str()))),
                };
                (exchange, result)
            };
            let id = calls.spawn(tracing::Instrument::in_current_span(task)).id();
            asked.insert(id, (agency, service));
        }
    }

    while !g.settled() {
        let next = match tokio::time::timeout_at(input.deadline, calls.join_next_with_id()).await {
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
        let Some((agency, service)) = asked.remove(&id) else {
            continue;
        };
        *g.pending(service) -= 1;
        // The call is logged against the agency that answered: a registry a host answered
        // for logged it in its own log.
        let answered = result
            .as_ref()
            .ok()
            .and_then(|a| AgencyId::new(a.issuer()).ok())
            .unwrap_or_else(|| agency.clone());
        done.push(OutgoingCall {
            agency: answered,
            service,
            exchange,
            outcome: result.as_ref().map_or_else(|(r, _)| *r, |_| "ok"),
            time_ms: now_ms(),
        });
        match result {
            Ok(a) => g.answered(a),
            Err((reason, detail)) => {
                tracing::debug!(peer = %agency, service = service.as_str(), reason, "peer gave no answer");
                g.failed(service, Some(agency.as_str()), reason, detail);
            }
        }
    }
    // Whatever is still running missed the deadline, unless the answer no longer needs it.
    calls.abort_all();
    let settled = g.settled();
    for (agency, service) in asked.into_values() {
        // Abandoned calls are logged too: the peer may have received them.
        if !settled {
            let detail = format!("{agency} did not answer within the status deadline");
            g.failed(service, Some(agency.as_str()), "timeout", detail);
        }
        done.push(OutgoingCall {
            agency,
            service,
            exchange: Exchange::default(),
            outcome: if settled { "abandoned" } else { "timeout" },
            time_ms: now_ms(),
        });
    }

    let resident = g.resident();
    let (legally_present, basis, valid_until) = g.presence();
    let place = g.resident.as_ref();
    Found {
        answer: StatusAnswer {
            resident,
            comune: place.and_then(|r| r.comune.clone()),
            since: place.and_then(|r| r.since.clone()),
            legally_present,
            basis,
            valid_until,
            as_of: input.as_of,
            complete: resident.is_some() && legally_present.is_some(),
            attestations: g.attestations,
            unavailable: g.unavailable,
            query_id: input.query_id,
        },
        calls: done,
    }
}

/// The nodes of the directory that answer `service`, and for residence with a comune, only
/// those keeping that comune's registry. Agencies revoked by the manifest are left out.
fn targets(
    shared: &Shared,
    service: Service,
    comune: Option<&ComuneCode>,
) -> Result<Vec<Target>, String> {
    let mut nodes = super::peers::directory(shared, |e| {
        e.serves.contains(&service)
            && comune.is_none_or(|c| e.comuni.iter().any(|k| k == c.as_str()))
    });
    // Every registry: one call per node, a host answering for all it hosts.
    if service == Service::Residence && comune.is_none() {
        nodes = super::peers::one_call_per_host(nodes);
    }
    if !nodes.is_empty() {
        return Ok(nodes);
    }
    Err(match comune {
        Some(c) => format!("no node in the directory keeps the registry of comune {c}"),
        None => format!("no node in the directory answers {}", service.as_str()),
    })
}

/// `POST /v1/status`: the route around [`coordinate`]: its inputs from the node's settings
/// and directory, then its calls counted and handed to the request's audit record.
///
/// Returns the answer and the outgoing audit entries of its calls (query id `query_id`).
pub(super) async fn status(
    shared: &Arc<Shared>,
    served: &Arc<Served>,
    q: &StatusQuestion,
    query_id: [u8; 16],
) -> Result<(Resp, Vec<Entry>), Problem> {
    let body = serde_json::to_vec(&PeerQuestion {
        subject: q.subject.canonical(),
        purpose: &q.purpose,
        as_of: format_date(q.as_of),
    })
    .map_err(|_| Problem::new(ProblemKind::Internal))?;
    let request_sha256 = crate::audit::entry::sha256(&body);
    let input = Inputs {
        body: Bytes::from(body),
        query_id: hex::encode(query_id),
        as_of: format_date(q.as_of),
        me: served.agency.clone(),
        trust: shared.tls.load().trust.clone(),
        registries: targets(shared, Service::Residence, q.comune.as_ref()),
        questure: targets(shared, Service::LegalPresence, None),
        deadline: Instant::now() + shared.settings.peers.status_deadline,
    };
    let found = coordinate(Arc::new(NodePeers(shared.clone(), served.clone())), input).await;

    // One outgoing audit entry per call, written with the request's own entry.
    let subject = served.audit.subject_key().blind(&q.subject);
    for call in &found.calls {
        if call.outcome != "abandoned" {
            shared
                .metrics
                .peer_calls
                .get_or_create(&PeerCall {
                    service: call.service.as_str(),
                    result: call.outcome,
                })
                .inc();
        }
    }
    let outgoing = found
        .calls
        .iter()
        .map(|c| Entry {
            time_ms: c.time_ms,
            query_id,
            direction: Direction::Outgoing,
            peer_agency: c.agency.to_string(),
            peer_cert: c.exchange.peer_cert,
            route: format!("POST {}", path(c.service)),
            purpose: q.purpose.to_string(),
            subject: Some(subject),
            decision: Decision::None,
            rule: c.outcome.to_owned(),
            policy_version: String::new(),
            status: c.exchange.status,
            request_sha256,
            response_sha256: c.exchange.response_sha256,
            operator: None,
        })
        .collect();

    let complete = found.answer.complete;
    shared
        .metrics
        .status_answers
        .get_or_create(&Outcome {
            result: if complete { "complete" } else { "incomplete" },
        })
        .inc();
    let answer = json(StatusCode::OK, &found.answer);
    Ok((answer, outgoing))
}

#[cfg(test)]
mod tests;

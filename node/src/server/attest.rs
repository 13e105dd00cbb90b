//! `POST /v1/attest/residence` and `/v1/attest/legal-presence`: the node's own signed answers,
//! from its own data, minimally: a boolean, a date, the basis; never names, addresses or the
//! permit type. The request is parsed (`wire::parse_question`) before the router asks the
//! policy, so no data is read for a caller without a grant.

use bytes::Bytes;
use serde::Serialize;

use super::respond::{data_as_of, store_failure, Resp};
use std::sync::Arc;

use super::served::Served;
use super::{Peer, Shared};
use crate::attestation::{Envelope, PresenceAnswer, ResidenceAnswer};
use crate::domain::presence::{legal_presence_on, residence_on};
use crate::domain::records::format_date;
use crate::problem::{Problem, ProblemKind};
use crate::wire::Question;

/// The fields every attestation carries, for `q` asked by `peer`.
fn envelope(served: &Served, peer: &Peer, q: &Question, data_as_of: Option<String>) -> Envelope {
    Envelope {
        issuer: served.agency.to_string(),
        audience: peer.leaf.agency().to_string(),
        query_id: q.query_id.clone(),
        subject: q.subject.canonical().to_owned(),
        purpose: q.purpose.to_string(),
        as_of: format_date(q.as_of),
        data_as_of,
        iat: time::OffsetDateTime::now_utc().unix_timestamp(),
        request_sha256: q.request_sha256.clone(),
    }
}

/// Signs an answer as a compact JWS with the sign key of the agency it is for (a tenant's
/// own, never the host's) (`application/jose`).
fn signed<T: Serialize>(served: &Served, answer: &T) -> Result<Resp, Problem> {
    let payload = serde_json::to_vec(answer).map_err(|_| Problem::new(ProblemKind::Internal))?;
    let token = attesta_certs::jws::sign(
        &served.signing,
        crate::attestation::ATTESTATION_TYP,
        &payload,
    )
    .map_err(|e| {
        tracing::error!(error = %e, "signing an attestation failed");
        Problem::new(ProblemKind::Internal)
    })?;
    let mut resp = http::Response::new(http_body_util::Full::new(Bytes::from(token)));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(crate::attestation::CONTENT_TYPE),
    );
    Ok(resp)
}

pub(super) fn attest_residence(
    served: &Served,
    peer: &Peer,
    q: &Question,
) -> Result<Resp, Problem> {
    if !served.serves(attesta_policy::Service::Residence) {
        return Err(Problem::new(ProblemKind::NotServed));
    }
    let (resident, info) = served.store.resident(&q.subject).map_err(store_failure)?;
    let data_as_of = data_as_of(&info)?;
    let fact = residence_on(resident.as_ref(), q.as_of);
    signed(
        served,
        &ResidenceAnswer {
            envelope: envelope(served, peer, q, data_as_of),
            resident: fact.resident,
            comune: fact.comune.map(|c| c.to_string()),
            since: fact.since.map(format_date),
            permit_required: fact.permit_required,
            covers: Vec::new(),
        },
    )
}

/// The tenants of this node that answer residence now: loaded, and given to this node by the
/// manifest in force (not revoked), in the directory's order.
fn residence_tenants(shared: &Shared) -> Vec<Arc<Served>> {
    let Some(active) = shared.manifest.current() else {
        return Vec::new();
    };
    let me = &shared.settings.agency;
    let trust = shared.tls.load().trust.clone();
    active
        .manifest
        .tenants_of(me.as_str())
        .filter(|e| !active.manifest.is_revoked(&e.agency))
        .filter_map(|e| shared.tenants.loaded(&e.agency))
        .filter(|t| t.serves(attesta_policy::Service::Residence))
        .filter(|t| !t.revoked(&trust))
        .collect()
}

/// `POST /v1/attest/residence` without a tenant on a service centre: one call answers for
/// every registry it hosts (a question that names no comune must not cost the coordinator a
/// call per hosted comune). A resident of one of them gets that comune's own attestation,
/// logged in that comune's log (`answered_by`); anyone else gets the host's negative
/// attestation, which names in `covers` the hosted registries it consulted (those with data),
/// with the oldest of their `data_as_of`. The coordinator accepts the negative only if it
/// covers every registry the directory says the host keeps. A node whose own agency keeps a
/// registry answers from it, as always.
pub(super) fn attest_residence_here(
    shared: &Shared,
    served: &Arc<Served>,
    peer: &Peer,
    q: &Question,
    answered_by: &mut Option<Arc<Served>>,
) -> Result<Resp, Problem> {
    if served.is_tenant() || served.serves(attesta_policy::Service::Residence) {
        return attest_residence(served, peer, q);
    }
    let tenants = residence_tenants(shared);
    if tenants.is_empty() {
        return Err(Problem::new(ProblemKind::NotServed));
    }
    let mut covers = Vec::new();
    let mut oldest: Option<String> = None;
    for t in &tenants {
        let (resident, info) = t.store.resident(&q.subject).map_err(store_failure)?;
        let Ok(as_of) = data_as_of(&info) else {
            // No data yet: this registry cannot say no; the answer will not cover it.
            continue;
        };
        let fact = residence_on(resident.as_ref(), q.as_of);
        if fact.resident {
            *answered_by = Some(t.clone());
            return signed(
                t,
                &ResidenceAnswer {
                    envelope: envelope(t, peer, q, as_of),
                    resident: true,
                    comune: fact.comune.map(|c| c.to_string()),
                    since: fact.since.map(format_date),
                    permit_required: fact.permit_required,
                    covers: Vec::new(),
                },
            );
        }
        covers.push(t.agency.to_string());
        if let Some(d) = as_of {
            if oldest.as_ref().is_none_or(|o| d < *o) {
                oldest = Some(d);
            }
        }
    }
    if covers.is_empty() {
        return Err(
            Problem::new(ProblemKind::NoData).with_detail("no registry hosted here has data yet")
        );
    }
    signed(
        served,
        &ResidenceAnswer {
            envelope: envelope(served, peer, q, oldest),
            resident: false,
            comune: None,
            since: None,
            permit_required: None,
            covers,
        },
    )
}

pub(super) fn attest_legal_presence(
    served: &Served,
    peer: &Peer,
    q: &Question,
) -> Result<Resp, Problem> {
    if !served.serves(attesta_policy::Service::LegalPresence) {
        return Err(Problem::new(ProblemKind::NotServed));
    }
    let (permits, info) = served.store.permits_of(&q.subject).map_err(store_failure)?;
    let data_as_of = data_as_of(&info)?;
    let fact = legal_presence_on(&q.subject, &permits, q.as_of);
    signed(
        served,
        &PresenceAnswer {
            envelope: envelope(served, peer, q, data_as_of),
            legally_present: fact.legally_present,
            basis: fact.basis.map(|b| b.as_str().to_owned()),
            valid_until: fact.valid_until.map(format_date),
        },
    )
}

//! `POST /v1/attest/residence` and `/v1/attest/legal-presence`: the node's own signed answers,
//! from its own data, minimally: a boolean, a date, the basis; never names, addresses or the
//! permit type. The request is parsed (`wire::parse_question`) before the router asks the
//! policy, so no data is read for a caller without a grant.

use bytes::Bytes;
use serde::Serialize;

use super::respond::{data_as_of, store_failure, Resp};
use super::{Peer, Shared};
use crate::attestation::{Envelope, PresenceAnswer, ResidenceAnswer};
use crate::domain::presence::{legal_presence_on, residence_on};
use crate::domain::records::format_date;
use crate::problem::{Problem, ProblemKind};
use crate::wire::Question;

/// The fields every attestation carries, for `q` asked by `peer`.
fn envelope(shared: &Shared, peer: &Peer, q: &Question, data_as_of: Option<String>) -> Envelope {
    Envelope {
        issuer: shared.settings.agency.to_string(),
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

/// Signs an answer as a compact JWS with the node's sign key (`application/jose`).
fn signed<T: Serialize>(shared: &Shared, answer: &T) -> Result<Resp, Problem> {
    let payload = serde_json::to_vec(answer).map_err(|_| Problem::new(ProblemKind::Internal))?;
    let token = attesta_certs::jws::sign(
        &shared.settings.signing,
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
    shared: &Shared,
    peer: &Peer,
    q: &Question,
) -> Result<Resp, Problem> {
    if !shared.settings.serves_residence {
        return Err(Problem::new(ProblemKind::NotServed));
    }
    let (resident, info) = shared.store.resident(&q.subject).map_err(store_failure)?;
    let data_as_of = data_as_of(&info)?;
    let fact = residence_on(resident.as_ref(), q.as_of);
    signed(
        shared,
        &ResidenceAnswer {
            envelope: envelope(shared, peer, q, data_as_of),
            resident: fact.resident,
            comune: fact.comune.map(|c| c.to_string()),
            since: fact.since.map(format_date),
            permit_required: fact.permit_required,
        },
    )
}

pub(super) fn attest_legal_presence(
    shared: &Shared,
    peer: &Peer,
    q: &Question,
) -> Result<Resp, Problem> {
    if !shared.settings.serves_legal_presence {
        return Err(Problem::new(ProblemKind::NotServed));
    }
    let (permits, info) = shared.store.permits_of(&q.subject).map_err(store_failure)?;
    let data_as_of = data_as_of(&info)?;
    let fact = legal_presence_on(&q.subject, &permits, q.as_of);
    signed(
        shared,
        &PresenceAnswer {
            envelope: envelope(shared, peer, q, data_as_of),
            legally_present: fact.legally_present,
            basis: fact.basis.map(|b| b.as_str().to_owned()),
            valid_until: fact.valid_until.map(format_date),
        },
    )
}

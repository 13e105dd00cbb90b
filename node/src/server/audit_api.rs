//! `/v1/audit/...`: what auditors read from a node's log (policy resource `audit`, purpose
//! `audit`; the default policy grants it to the auditor role only).
//!
//! - `GET /v1/audit/checkpoint`: the latest checkpoint that went to the witnesses (C2SP signed
//!   note, with their cosignatures), `text/plain`.
//! - `GET /v1/audit/certificates`: the node's signing certificate, then those of the witnesses
//!   that cosigned the served checkpoint, PEM.
//! - `GET /v1/audit/entries?start=&end=`: entries `start..end` (at most [`MAX_ENTRIES`]), each
//!   as its canonical bytes (base64) and decoded.
//! - `GET /v1/audit/proof/inclusion?index=&size=` and `/proof/consistency?from=&to=`: RFC 9162
//!   proofs, hashes in standard base64.
//! - `POST /v1/audit/subject-report` `{"subject": CF}`: every entry about that person.
//! - `GET /v1/audit/receipt?index=`: one entry's receipt (C2SP tlog-proof against the served
//!   checkpoint), for the agency the entry names or an auditor.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::respond::{json, text, Resp};
use super::served::Served;
use super::Shared;
use crate::audit::entry::{Entry, EntryView};
use crate::audit::log::AuditError;
use crate::audit::merkle::{self, Hash};
use crate::audit::note::Note;
use crate::audit::receipt::Receipt;
use crate::domain::cf::CodiceFiscale;
use crate::problem::{Problem, ProblemKind};
use crate::wire::{bad_request, parse_subject, ConsistencyProof, EntriesPage, InclusionProof};

/// The most entries one `entries` request returns.
pub use crate::wire::AUDIT_PAGE as MAX_ENTRIES;

fn failed(e: AuditError) -> Problem {
    tracing::error!(error = %crate::config::error_chain(&e), "audit read failed");
    Problem::new(ProblemKind::Internal)
}

/// The largest index or size a query may name: 2^53 − 1, the largest integer every JSON
/// client reads exactly (and far beyond any log).
pub const MAX_NUMBER: u64 = (1 << 53) - 1;

/// Reads `name=u64` pairs from a query string; every name in `names` is required, once, and
/// others are refused.
fn numbers<const N: usize>(query: Option<&str>, names: [&str; N]) -> Result<[u64; N], Problem> {
    let params = crate::wire::query_params(query, &names)?;
    let mut values = [0; N];
    for (i, name) in names.iter().enumerate() {
        let v = params
            .get(name)
            .ok_or_else(|| bad_request(format!("{name}: required")))?;
        // Digits only: no sign, no spaces, no leading zeros beyond "0".
        values[i] = crate::audit::note::decimal(v)
            .filter(|n| *n <= MAX_NUMBER)
            .ok_or_else(|| {
                bad_request(format!(
                    "{name}: expected an integer from 0 to {MAX_NUMBER}"
                ))
            })?;
    }
    Ok(values)
}

/// The durable size, for checking requested ranges.
fn size(served: &Served) -> u64 {
    served.audit.head().size
}

fn b64(h: &Hash) -> String {
    STANDARD.encode(h)
}

pub(super) fn checkpoint(served: &Served) -> Result<Resp, Problem> {
    let latest = served.audit.published().ok_or_else(|| {
        Problem::new(ProblemKind::NotFound).with_detail("no checkpoint has been signed yet")
    })?;
    Ok(text("text/plain; charset=utf-8", latest.note.render()))
}

/// The node's signing certificate, then those of the witnesses that cosigned `note`.
fn certificate_list(shared: &Shared, served: &Served, note: Option<&Note>) -> Vec<String> {
    let mut pems = vec![served.signing.cert_pem()];
    if let Some(note) = note {
        pems.extend(shared.witness.certificates_for(note));
    }
    pems
}

pub(super) fn certificates(shared: &Shared, served: &Served) -> Resp {
    let latest = served.audit.published();
    let pems = certificate_list(shared, served, latest.as_ref().map(|l| &l.note));
    text("application/x-pem-file", pems.concat())
}

/// `GET /v1/audit/receipt?index=`: the entry and the agency it names (the caller may have it
/// without the auditor's grant).
/// The `index` of a receipt request.
pub(super) fn receipt_index(query: Option<&str>) -> Result<u64, Problem> {
    let [index] = numbers(query, ["index"])?;
    Ok(index)
}

/// Entry `index`'s bytes and the agency it names (404 past the log, 410 pruned).
pub(super) fn receipt_entry(
    shared: &Shared,
    served: &Served,
    index: u64,
) -> Result<(Vec<u8>, String), Problem> {
    let size = size(served);
    if index >= size {
        return Err(Problem::new(ProblemKind::NotFound)
            .with_detail(format!("no entry {index}: the log has {size}")));
    }
    kept(shared, served, index)?;
    let bytes = served
        .audit
        .store()
        .audit_entries(index, index + 1)
        .map_err(|e| failed(e.into()))?
        .pop()
        .ok_or_else(|| Problem::new(ProblemKind::Internal))?;
    let entry = Entry::decode(&bytes).map_err(|e| {
        failed(AuditError::Store(crate::store::StoreError::Corrupt(
            e.to_string(),
        )))
    })?;
    Ok((bytes, entry.peer_agency))
}

/// The receipt (C2SP tlog-proof) of entry `index`, against the served checkpoint.
pub(super) fn receipt(
    shared: &Shared,
    served: &Served,
    index: u64,
    entry: Vec<u8>,
) -> Result<Resp, Problem> {
    let latest = served
        .audit
        .published()
        .filter(|l| l.checkpoint.size > index)
        .ok_or_else(|| {
            Problem::new(ProblemKind::NotCheckpointed).with_detail(format!(
                "entry {index} is not under a signed checkpoint yet: ask again in a moment"
            ))
        })?;
    let proof = merkle::inclusion_proof(&served.audit.tree(), index, latest.checkpoint.size)
        .map_err(failed)?;
    let receipt = Receipt {
        index,
        proof,
        checkpoint: latest.note.render(),
        entry,
        certificates: certificate_list(shared, served, Some(&latest.note)),
    };
    Ok(text("text/plain; charset=utf-8", receipt.render()))
}

#[derive(Serialize)]
struct EntryItem<'a> {
    /// The canonical bytes (the Merkle leaf), standard base64.
    leaf: String,
    #[serde(flatten)]
    view: EntryView<'a>,
}

/// Refuses `index` if its content was deleted after the retention period.
fn kept(shared: &Shared, served: &Served, index: u64) -> Result<(), Problem> {
    let first = served.audit.first_kept().map_err(failed)?;
    if index < first {
        let days = shared
            .settings
            .audit_retention
            .map_or(0, |r| r.as_secs() / 86_400);
        return Err(Problem::new(ProblemKind::Pruned).with_detail(format!(
            "entries below {first} were deleted after the retention period ({days} days); their \
             hashes remain: export from entry {first} (--from {first})"
        )));
    }
    Ok(())
}

pub(super) fn entries(
    shared: &Shared,
    served: &Served,
    query: Option<&str>,
) -> Result<Resp, Problem> {
    let [start, end] = numbers(query, ["start", "end"])?;
    let size = size(served);
    if start >= end || end > size || end - start > MAX_ENTRIES {
        return Err(bad_request(format!(
            "need start < end <= {size} (the log's size) and at most {MAX_ENTRIES} entries"
        )));
    }
    kept(shared, served, start)?;
    let raw = served
        .audit
        .store()
        .audit_entries(start, end)
        .map_err(|e| failed(e.into()))?;
    let decoded = raw
        .iter()
        .map(|b| Entry::decode(b))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            failed(AuditError::Store(crate::store::StoreError::Corrupt(
                e.to_string(),
            )))
        })?;
    let entries = raw
        .iter()
        .zip(&decoded)
        .zip(start..)
        .map(|((bytes, e), index)| EntryItem {
            leaf: STANDARD.encode(bytes),
            view: e.view(index),
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &EntriesPage {
            start,
            end,
            size,
            entries,
        },
    ))
}

pub(super) fn inclusion(served: &Served, query: Option<&str>) -> Result<Resp, Problem> {
    let [index, size] = numbers(query, ["index", "size"])?;
    let durable = self::size(served);
    if index >= size || size > durable {
        return Err(bad_request(format!(
            "need index < size <= {durable} (the log's size)"
        )));
    }
    let audit = &served.audit;
    let tree = audit.tree();
    let proof = merkle::inclusion_proof(&tree, index, size).map_err(failed)?;
    let leaf_hash = audit.store().audit_node(0, index).ok().flatten();
    let leaf_hash = leaf_hash.ok_or_else(|| Problem::new(ProblemKind::Internal))?;
    Ok(json(
        StatusCode::OK,
        &InclusionProof {
            index,
            size,
            leaf_hash: b64(&leaf_hash),
            root: b64(&audit.root_at(size).map_err(failed)?),
            proof: proof.iter().map(b64).collect(),
        },
    ))
}

pub(super) fn consistency(served: &Served, query: Option<&str>) -> Result<Resp, Problem> {
    let [from, to] = numbers(query, ["from", "to"])?;
    let durable = size(served);
    if from == 0 || from > to || to > durable {
        return Err(bad_request(format!(
            "need 0 < from <= to <= {durable} (the log's size)"
        )));
    }
    let audit = &served.audit;
    let proof = merkle::consistency_proof(&audit.tree(), from, to).map_err(failed)?;
    Ok(json(
        StatusCode::OK,
        &ConsistencyProof {
            from,
            to,
            from_root: b64(&audit.root_at(from).map_err(failed)?),
            to_root: b64(&audit.root_at(to).map_err(failed)?),
            proof: proof.iter().map(b64).collect(),
        },
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectReportRequest {
    subject: String,
}

pub(super) fn parse_subject_report(body: &Bytes) -> Result<CodiceFiscale, Problem> {
    let req: SubjectReportRequest =
        serde_json::from_slice(body).map_err(|e| bad_request(format!("request body: {e}")))?;
    parse_subject(&req.subject)
}

/// One query about the person: when, who, why, and what was decided.
#[derive(Serialize)]
struct Reported<'a> {
    index: u64,
    time: String,
    query_id: String,
    direction: crate::audit::entry::Direction,
    /// The agency that asked (incoming) or was asked (outgoing).
    agency: &'a str,
    route: &'a str,
    purpose: &'a str,
    decision: crate::audit::entry::Decision,
    status: u16,
}

#[derive(Serialize)]
struct SubjectReport<'a> {
    subject: &'a str,
    node: &'a str,
    /// The log's durable size when the report was made: the report covers entries below it.
    size: u64,
    entries: Vec<Reported<'a>>,
}

/// `POST /v1/audit/subject-report`: every entry about the person, oldest first (GDPR art. 15).
pub(super) fn subject_report(served: &Served, cf: &CodiceFiscale) -> Result<Resp, Problem> {
    let audit = &served.audit;
    let blinded = audit.subject_key().blind(cf);
    let size = size(served);
    let indexes = audit
        .store()
        .audit_by_subject(&blinded)
        .map_err(|e| failed(e.into()))?;
    let mut entries = Vec::with_capacity(indexes.len());
    let first = audit.first_kept().map_err(failed)?;
    for i in indexes.into_iter().filter(|i| (first..size).contains(i)) {
        let raw = audit
            .store()
            .audit_entries(i, i + 1)
            .map_err(|e| failed(e.into()))?;
        let e = raw
            .first()
            .and_then(|b| Entry::decode(b).ok())
            .filter(|e| e.subject == Some(blinded))
            .ok_or_else(|| {
                failed(AuditError::Store(crate::store::StoreError::Corrupt(
                    format!("audit entry {i}"),
                )))
            })?;
        entries.push((i, e));
    }
    let reported = entries
        .iter()
        .map(|(i, e)| Reported {
            index: *i,
            time: crate::audit::entry::format_ms(e.time_ms),
            query_id: hex::encode(e.query_id),
            direction: e.direction,
            agency: &e.peer_agency,
            route: &e.route,
            purpose: &e.purpose,
            decision: e.decision,
            status: e.status,
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &SubjectReport {
            subject: cf.canonical(),
            node: served.agency.as_str(),
            size,
            entries: reported,
        },
    ))
}

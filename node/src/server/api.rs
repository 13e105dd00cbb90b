//! Handlers of the data routes: local attestations and admin imports.
//!
//! Attestations answer from the node's own data, minimally: a boolean, a date,
//! the basis; never names, addresses or the permit type.
//!
//! Each route's request is parsed here (`parse_*`) so that the router can put the declared
//! purpose and territory to the policy before the handler reads any data.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::Serialize;
use time::Date;
use tokio::io::AsyncWriteExt;

use super::respond::{json, Resp};
use super::{Peer, Shared};
use crate::attestation::{Envelope, PresenceAnswer, ResidenceAnswer};
use crate::domain::cf::CodiceFiscale;
use crate::domain::places::ComuneCode;
use crate::domain::presence::{legal_presence_on, residence_on};
use crate::domain::purpose::Purpose;
use crate::domain::records::format_date;
use crate::import::{self, ImportError, Mode};
use crate::problem::{Problem, ProblemKind};
use crate::store::{Dataset, DatasetInfo};

pub(super) use crate::wire::{
    bad_request, bounded_date, parse_purpose, parse_question, query_params, today, Question,
};

fn data_as_of(info: &DatasetInfo) -> Result<Option<String>, Problem> {
    if info.generation == 0 {
        return Err(Problem::new(ProblemKind::NoData));
    }
    Ok(info.as_of.map(format_date))
}

fn store_failure(e: impl std::error::Error) -> Problem {
    tracing::error!(error = %crate::config::error_chain(&e), "store read failed");
    Problem::new(ProblemKind::Internal)
}

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

/// Options of an import, from the query string.
struct ImportOptions {
    mode: Mode,
    as_of: Option<Date>,
    skip_invalid: bool,
}

fn import_options(query: Option<&str>) -> Result<ImportOptions, Problem> {
    let mut opts = ImportOptions {
        mode: Mode::Snapshot,
        as_of: None,
        skip_invalid: false,
    };
    let params = query_params(query, &["mode", "as_of", "skip_invalid"])?;
    for (k, v) in &params {
        let v = v.as_str();
        match *k {
            "mode" => {
                opts.mode = v
                    .parse()
                    .map_err(|e: String| bad_request(format!("mode: {e}")))?
            }
            "as_of" => {
                opts.as_of =
                    Some(bounded_date(v, today()).map_err(|e| bad_request(format!("as_of: {e}")))?)
            }
            "skip_invalid" => {
                opts.skip_invalid = match v {
                    "true" => true,
                    "false" => false,
                    _ => return Err(bad_request("skip_invalid: true or false")),
                }
            }
            other => return Err(bad_request(format!("unknown query parameter {other:?}"))),
        }
    }
    Ok(opts)
}

/// `POST /v1/admin/import/{residents,permits}`: the body is the CSV file. The router has
/// checked the policy (resource `import`, territory this node) before the upload is read.
pub(super) async fn import(
    shared: &Arc<Shared>,
    ds: Dataset,
    req: Request<Incoming>,
    digest: &mut Option<[u8; 32]>,
) -> Result<Resp, Problem> {
    use sha2::Digest as _;
    let s = &shared.settings;
    let served = match ds {
        Dataset::Residents => s.serves_residence,
        Dataset::Permits => s.serves_legal_presence,
    };
    if !served {
        return Err(Problem::new(ProblemKind::NotServed));
    }
    let opts = import_options(req.uri().query())?;

    // Spool the upload to a file: imports can be gigabytes, and validation reads it twice.
    let dir = s.data_dir.join("imports");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(store_failure)?;
    let path = dir.join(format!("upload-{}.csv", attesta_certs::random_hex(16)));
    let _cleanup = RemoveOnDrop(path.clone());
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(store_failure)?;
    let mut body = req.into_body();
    let mut size = 0u64;
    let mut hasher = sha2::Sha256::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| bad_request("the upload could not be read"))?;
        if let Some(data) = frame.data_ref() {
            size += data.len() as u64;
            if size > s.limits.max_import_bytes {
                return Err(Problem::new(ProblemKind::BodyTooLarge).with_detail(format!(
                    "imports are limited to {} bytes",
                    s.limits.max_import_bytes
                )));
            }
            hasher.update(data);
            file.write_all(data).await.map_err(store_failure)?;
        }
    }
    *digest = Some(hasher.finalize().into());
    file.flush().await.map_err(store_failure)?;
    drop(file);

    let shared2 = shared.clone();
    let result = tokio::task::spawn_blocking(move || {
        import::run(
            &shared2.store,
            &path,
            ds,
            opts.mode,
            opts.as_of,
            opts.skip_invalid,
        )
    })
    .await
    .map_err(|_| Problem::new(ProblemKind::Internal))?;
    match result {
        Ok(summary) => {
            tracing::info!(
                dataset = summary.dataset,
                mode = summary.mode,
                applied = summary.applied,
                rejected = summary.rejected,
                "import applied"
            );
            Ok(json(StatusCode::OK, &summary))
        }
        Err(ImportError::Invalid {
            rejected,
            rows_read,
            errors,
        }) => Err(Problem::new(ProblemKind::InvalidRows)
            .with_detail(format!("{rejected} of {rows_read} rows are invalid"))
            .with_extension("rows_read", rows_read.into())
            .with_extension("rejected", rejected.into())
            .with_extension("errors", serde_json::to_value(errors).unwrap_or_default())),
        Err(e @ (ImportError::Header { .. } | ImportError::Csv(_))) => {
            Err(Problem::new(ProblemKind::InvalidRows).with_detail(e.to_string()))
        }
        Err(e @ ImportError::Store(_)) => Err(store_failure(e)),
    }
}

/// Deletes the spooled upload however the import ends.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[derive(Serialize)]
struct Expiring {
    subject: String,
    valid_until: String,
    renewal_pending: bool,
}

#[derive(Serialize)]
struct ExpiringAnswer<'a> {
    issuer: &'a str,
    audience: &'a str,
    comune: String,
    from: String,
    to: String,
    data_as_of: Option<String>,
    permits: Vec<Expiring>,
}

/// `GET /v1/monitor/expiring?days=N&purpose=P[&comune=C]`, parsed.
pub(super) struct ExpiringQuery {
    days: u16,
    pub purpose: Purpose,
    pub comune: ComuneCode,
}

/// Parses the monitor's query. The comune defaults to the caller's, when the manifest's
/// directory gives it exactly one; the policy decides whether the caller may see it.
pub(super) fn parse_expiring(
    shared: &Shared,
    peer: &Peer,
    query: Option<&str>,
) -> Result<ExpiringQuery, Problem> {
    let mut params = query_params(query, &["days", "purpose", "comune"])?;
    let days = params
        .get("days")
        .map(|v| {
            v.parse::<u16>()
                .ok()
                .filter(|d| (1..=366).contains(d))
                .ok_or_else(|| bad_request("days: 1 to 366"))
        })
        .transpose()?;
    let purpose = parse_purpose(&params.remove("purpose").unwrap_or_default())?;
    let comune = params
        .get("comune")
        .map(|v| ComuneCode::parse(v).map_err(|e| bad_request(format!("comune: {e}"))))
        .transpose()?;
    let days = days.ok_or_else(|| bad_request("days: required, 1 to 366"))?;
    let comune = match comune {
        Some(c) => c,
        None => {
            let active = shared.manifest.current();
            let own = active
                .as_ref()
                .map(|a| a.comuni_of(peer.leaf.agency().as_str()))
                .unwrap_or_default();
            match own {
                [one] => ComuneCode::parse(one).map_err(|_| Problem::new(ProblemKind::Internal))?,
                _ => {
                    return Err(bad_request(
                        "comune: required (the directory gives this agency no single comune)",
                    ))
                }
            }
        }
    };
    Ok(ExpiringQuery {
        days,
        purpose,
        comune,
    })
}

/// `GET /v1/monitor/expiring` on a Questura node: permits domiciled in the comune that expire
/// within N days, soonest first. Never the permit type.
pub(super) fn monitor_expiring(
    shared: &Shared,
    peer: &Peer,
    q: &ExpiringQuery,
) -> Result<Resp, Problem> {
    let s = &shared.settings;
    if !s.serves_legal_presence {
        return Err(Problem::new(ProblemKind::NotServed));
    }
    let (days, comune) = (q.days, &q.comune);
    let from = today();
    let to = from
        .checked_add(time::Duration::days(i64::from(days)))
        .unwrap_or(from);
    let (permits, info) = shared
        .store
        .expiring(comune, from, to)
        .map_err(store_failure)?;
    let data_as_of = data_as_of(&info)?;
    let permits = permits
        .into_iter()
        .filter_map(|p| {
            Some(Expiring {
                subject: p.holder.canonical().to_owned(),
                valid_until: format_date(p.expires?),
                renewal_pending: p.status == crate::domain::records::PermitStatus::RenewalPending,
            })
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &ExpiringAnswer {
            issuer: s.agency.as_str(),
            audience: peer.leaf.agency().as_str(),
            comune: comune.to_string(),
            from: format_date(from),
            to: format_date(to),
            data_as_of,
            permits,
        },
    ))
}

#[derive(Serialize)]
struct Member {
    subject: String,
    sex: &'static str,
    birth_date: String,
    resident: bool,
}

#[derive(Serialize)]
struct FamilyAnswer<'a> {
    issuer: &'a str,
    audience: &'a str,
    subject: String,
    data_as_of: Option<String>,
    members: Vec<Member>,
}

/// `GET /v1/family/{cf}?purpose=P`, parsed.
pub(super) struct FamilyQuery {
    pub subject: CodiceFiscale,
    pub purpose: Purpose,
}

pub(super) fn parse_family(subject: &str, query: Option<&str>) -> Result<FamilyQuery, Problem> {
    let purpose = parse_purpose(
        &query_params(query, &["purpose"])?
            .remove("purpose")
            .unwrap_or_default(),
    )?;
    let subject = CodiceFiscale::parse(subject)
        .map_err(|e| Problem::new(ProblemKind::InvalidSubject).with_detail(e.to_string()))?;
    Ok(FamilyQuery { subject, purpose })
}

/// `GET /v1/family/{cf}` on a registry node: the members of the subject's famiglia
/// anagrafica (the subject included).
pub(super) fn family(shared: &Shared, peer: &Peer, q: &FamilyQuery) -> Result<Resp, Problem> {
    let s = &shared.settings;
    if !s.serves_residence {
        return Err(Problem::new(ProblemKind::NotServed));
    }
    let subject = &q.subject;
    let (resident, info) = shared.store.resident(subject).map_err(store_failure)?;
    let data_as_of = data_as_of(&info)?;
    let members = match resident {
        Some(r) => shared.store.family(&r.family_id).map_err(store_failure)?.0,
        None => Vec::new(),
    };
    let now = today();
    Ok(json(
        StatusCode::OK,
        &FamilyAnswer {
            issuer: s.agency.as_str(),
            audience: peer.leaf.agency().as_str(),
            subject: subject.canonical().to_owned(),
            data_as_of,
            members: members
                .iter()
                .map(|m| Member {
                    subject: m.cf.canonical().to_owned(),
                    sex: match m.sex {
                        crate::domain::cf::Sex::M => "M",
                        crate::domain::cf::Sex::F => "F",
                    },
                    birth_date: format_date(m.birth_date),
                    resident: residence_on(Some(m), now).resident,
                })
                .collect(),
        },
    ))
}

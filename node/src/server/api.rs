//! Handlers of the data routes: local attestations and admin imports.
//!
//! Attestations answer from the node's own data, minimally (DESIGN.md §4): a boolean, a date,
//! the basis; never names, addresses or the permit type.
//!
//! Each route's request is parsed here (`parse_*`) so that the router can put the declared
//! purpose and territory to the policy before the handler reads any data.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use time::Date;
use tokio::io::AsyncWriteExt;

use super::routes::{json, Resp};
use super::{Peer, Shared};
use crate::domain::cf::CodiceFiscale;
use crate::domain::places::ComuneCode;
use crate::domain::presence::{legal_presence_on, residence_on};
use crate::domain::records::{format_date, parse_date};
use crate::import::{self, ImportError, Mode};
use crate::problem::{Problem, ProblemKind};
use crate::store::{Dataset, DatasetInfo};

/// The body of an attestation request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttestRequest {
    subject: String,
    /// Required by the policy, not by the parser: a request without one is denied (403).
    #[serde(default)]
    purpose: String,
    #[serde(default, deserialize_with = "as_of_present")]
    as_of: Option<String>,
}

/// An optional string that, when present, is a string: `null` is refused, as the API
/// document says (absent means the default), with a message naming the field.
fn present<'de, D: serde::Deserializer<'de>>(
    d: D,
    field: &str,
) -> Result<Option<String>, D::Error> {
    match Option::<String>::deserialize(d)? {
        Some(s) => Ok(Some(s)),
        None => Err(serde::de::Error::custom(format!(
            "{field}: null is not allowed; leave the field out for the default"
        ))),
    }
}

/// `as_of`, when present, is a date string.
pub(super) fn as_of_present<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    present(d, "as_of")
}

/// `comune`, when present, is a string.
pub(super) fn comune_present<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    present(d, "comune")
}

/// A validated attestation request.
pub(super) struct Question {
    pub subject: CodiceFiscale,
    pub purpose: String,
    /// The request's query id (its audit entry's), hex.
    pub query_id: String,
    as_of: Date,
    /// SHA-256 of the request body, hex: binds the answer to the question.
    request_sha256: String,
}

pub(super) fn bad_request(detail: impl Into<String>) -> Problem {
    Problem::new(ProblemKind::BadRequest).with_detail(detail)
}

/// The parameters of a query string, percent-decoded (RFC 3986; `+` is a space, as HTML forms
/// send it), each given at most once; a name not in `known` is refused, and so is a value
/// that is not UTF-8 once decoded. Names are compared after decoding.
pub(super) fn query_params<'k>(
    query: Option<&str>,
    known: &[&'k str],
) -> Result<HashMap<&'k str, String>, Problem> {
    let mut out = HashMap::new();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k)
            .ok_or_else(|| bad_request("the query string is not valid percent-encoded UTF-8"))?;
        let v = percent_decode(v)
            .ok_or_else(|| bad_request(format!("{k}: not valid percent-encoded UTF-8")))?;
        let name = known
            .iter()
            .find(|n| **n == k)
            .ok_or_else(|| bad_request(format!("unknown query parameter {k:?}")))?;
        if out.insert(*name, v).is_some() {
            return Err(bad_request(format!("{k}: given more than once")));
        }
    }
    Ok(out)
}

/// Decodes `%XX` escapes and `+`; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hi = (bytes.next()? as char).to_digit(16)?;
                let lo = (bytes.next()? as char).to_digit(16)?;
                out.push((hi * 16 + lo) as u8);
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

/// Checks a declared purpose's form. An empty purpose passes: the policy denies it.
pub(super) fn check_purpose(purpose: &str) -> Result<(), Problem> {
    let ok = purpose.len() <= 64
        && purpose
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(bad_request(
            "purpose: 1-64 characters of a-z, 0-9, '-' and '_'",
        ))
    }
}

pub(super) fn parse_question(body: &Bytes) -> Result<Question, Problem> {
    let req: AttestRequest =
        serde_json::from_slice(body).map_err(|e| bad_request(format!("request body: {e}")))?;
    let subject = parse_subject(&req.subject)?;
    check_purpose(&req.purpose)?;
    let as_of = parse_as_of(req.as_of.as_deref())?;
    Ok(Question {
        subject,
        purpose: req.purpose,
        query_id: String::new(),
        as_of,
        request_sha256: crate::attestation::sha256_hex(body),
    })
}

/// A request's subject, or 400 `invalid-codice-fiscale` saying what is wrong with it.
pub(super) fn parse_subject(s: &str) -> Result<CodiceFiscale, Problem> {
    CodiceFiscale::parse(s)
        .map_err(|e| Problem::new(ProblemKind::InvalidSubject).with_detail(e.to_string()))
}

/// The earliest date a question may be about: no registry or permit record is older.
pub const EARLIEST_AS_OF: Date = time::macros::date!(1900 - 01 - 01);

/// A request's `as_of` date; today when absent. Bounded: from [`EARLIEST_AS_OF`] to tomorrow
/// (UTC; tomorrow because in Rome it may already be), since nobody can attest a future date.
pub(super) fn parse_as_of(d: Option<&str>) -> Result<Date, Problem> {
    match d {
        Some(d) => bounded_date(d, today()).map_err(|e| bad_request(format!("as_of: {e}"))),
        None => Ok(today()),
    }
}

/// `s` as a date between [`EARLIEST_AS_OF`] and the day after `today`.
pub(crate) fn bounded_date(s: &str, today: Date) -> Result<Date, String> {
    let d = parse_date(s)?;
    let latest = today.next_day().unwrap_or(today);
    if d < EARLIEST_AS_OF {
        return Err(format!(
            "{s:?} is before {}: no record is that old",
            format_date(EARLIEST_AS_OF)
        ));
    }
    if d > latest {
        return Err(format!(
            "{s:?} is in the future (after {}): answers are about the past and today",
            format_date(latest)
        ));
    }
    Ok(d)
}

/// Today's date in UTC (the date the answer is about when the caller gives none).
fn today() -> Date {
    time::OffsetDateTime::now_utc().date()
}

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
fn envelope<'a>(
    shared: &'a Shared,
    peer: &'a Peer,
    q: &'a Question,
    data_as_of: Option<String>,
) -> Envelope<'a> {
    Envelope {
        issuer: shared.settings.agency.as_str(),
        audience: peer.leaf.agency().as_str(),
        query_id: q.query_id.clone(),
        subject: q.subject.canonical(),
        purpose: &q.purpose,
        as_of: format_date(q.as_of),
        data_as_of,
        iat: time::OffsetDateTime::now_utc().unix_timestamp(),
        request_sha256: &q.request_sha256,
    }
}

/// The fields every attestation carries.
#[derive(Serialize)]
struct Envelope<'a> {
    issuer: &'a str,
    audience: &'a str,
    query_id: String,
    subject: &'a str,
    purpose: &'a str,
    as_of: String,
    data_as_of: Option<String>,
    /// Issued at, Unix seconds.
    iat: i64,
    request_sha256: &'a str,
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

#[derive(Serialize)]
struct ResidenceAnswer<'a> {
    #[serde(flatten)]
    envelope: Envelope<'a>,
    resident: bool,
    comune: Option<String>,
    since: Option<String>,
    permit_required: Option<bool>,
}

#[derive(Serialize)]
struct PresenceAnswer<'a> {
    #[serde(flatten)]
    envelope: Envelope<'a>,
    legally_present: bool,
    basis: Option<&'static str>,
    valid_until: Option<String>,
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
            basis: fact.basis.map(|b| b.as_str()),
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
    pub purpose: String,
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
    let purpose = params.remove("purpose").unwrap_or_default();
    let comune = params
        .get("comune")
        .map(|v| ComuneCode::parse(v).map_err(|e| bad_request(format!("comune: {e}"))))
        .transpose()?;
    check_purpose(&purpose)?;
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
    pub purpose: String,
}

pub(super) fn parse_family(subject: &str, query: Option<&str>) -> Result<FamilyQuery, Problem> {
    let purpose = query_params(query, &["purpose"])?
        .remove("purpose")
        .unwrap_or_default();
    check_purpose(&purpose)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_is_bounded_from_1900_to_tomorrow() {
        let today = time::macros::date!(2026 - 12 - 01);
        for ok in ["1900-01-01", "1985-06-30", "2026-12-01", "2026-12-02"] {
            assert!(bounded_date(ok, today).is_ok(), "{ok}");
        }
        for (bad, says) in [
            ("1899-12-31", "before 1900-01-01"),
            ("0000-01-01", "before 1900-01-01"),
            ("-0001-01-01", "not a date"),
            ("-001-01-01", "not a date"),
            ("2026-12-03", "in the future"),
            ("9999-12-31", "in the future"),
            ("2026-02-30", "not a date"),
            ("+2026-01-01", "not a date"),
        ] {
            let e = bounded_date(bad, today).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn query_parameters_are_decoded_once_each_and_only_known_ones() {
        let p = query_params(
            Some("purpose=benefit%2Deligibility&days=30"),
            &["days", "purpose"],
        )
        .unwrap();
        assert_eq!(p["purpose"], "benefit-eligibility");
        assert_eq!(p["days"], "30");
        assert_eq!(
            query_params(Some("comune=04%31044&x+y=1"), &["comune", "x y"]).unwrap()["comune"],
            "041044"
        );
        assert!(query_params(None, &["days"]).unwrap().is_empty());
        for (q, says) in [
            ("days=1&days=2", "given more than once"),
            ("days=1&d%61ys=2", "given more than once"),
            ("nope=1", "unknown query parameter"),
            ("days=%zz", "not valid percent-encoded"),
            ("days=%4", "not valid percent-encoded"),
            ("days=%ff", "not valid percent-encoded"),
        ] {
            let e = query_params(Some(q), &["days"]).err().unwrap();
            assert!(e.detail.as_deref().unwrap().contains(says), "{q}: {e:?}");
        }
    }

    #[test]
    fn as_of_null_is_refused_and_absent_means_today() {
        let body = |s: &str| Bytes::from(s.to_owned());
        let q = parse_question(&body(r#"{"subject":"RSSMRA85T10A562S","purpose":"x"}"#)).unwrap();
        assert_eq!(q.as_of, today());
        let e = parse_question(&body(
            r#"{"subject":"RSSMRA85T10A562S","purpose":"x","as_of":null}"#,
        ))
        .err()
        .unwrap();
        assert!(e.detail.unwrap().contains("as_of: null is not allowed"));
    }
}

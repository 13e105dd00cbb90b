//! The wire, in one place: what arrives, parsed strictly (query strings, request bodies, their
//! fields), and the answers, headers and limits that the server writes and every client
//! reads (the status answer, the import summary, the manifest publication). Server and
//! clients use these same types, so they cannot drift apart; the attestation payloads are in
//! `attesta-audit` (`attesta::attestation`), which auditors read too.
//!
//! Pure code (no I/O), so that every parser here is fuzzed (node/fuzz/) and the server's
//! handlers only see validated values. Each failure is a [`Problem`] naming the field.

// As in the server: the error *is* the response body, built once and serialised right away.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use time::Date;

use crate::domain::cf::CodiceFiscale;
use crate::domain::places::ComuneCode;
use crate::domain::purpose::Purpose;
use crate::domain::records::{format_date, parse_date};
use crate::problem::{Problem, ProblemKind};

/// The header carrying a query id from the coordinator to its peers, and back in answers.
pub const QUERY_ID_HEADER: &str = "attesta-query-id";
/// The header giving the index of the request's entry in the node's audit log.
pub const LOG_INDEX_HEADER: &str = "attesta-log-index";
/// Every path the node serves (`server::ROUTES` is made of these; the OpenAPI lists the same).
pub mod path {
    pub const HEALTHZ: &str = "/healthz";
    pub const READYZ: &str = "/readyz";
    pub const METRICS: &str = "/metrics";
    pub const WHOAMI: &str = "/v1/whoami";
    pub const ATTEST_RESIDENCE: &str = "/v1/attest/residence";
    pub const ATTEST_LEGAL_PRESENCE: &str = "/v1/attest/legal-presence";
    pub const IMPORT_RESIDENTS: &str = "/v1/admin/import/residents";
    pub const IMPORT_PERMITS: &str = "/v1/admin/import/permits";
    pub const TENANTS: &str = "/v1/admin/tenants";
    pub const TENANT: &str = "/v1/admin/tenants/{agency}";
    pub const MONITOR_EXPIRING: &str = "/v1/monitor/expiring";
    pub const FAMILY: &str = "/v1/family/{cf}";
    pub const MANIFEST: &str = "/v1/manifest";
    pub const MANIFEST_NOTIFY: &str = "/v1/manifest/notify";
    pub const STATUS: &str = "/v1/status";
    pub const AUDIT_CHECKPOINT: &str = "/v1/audit/checkpoint";
    pub const AUDIT_CERTIFICATES: &str = "/v1/audit/certificates";
    pub const AUDIT_ENTRIES: &str = "/v1/audit/entries";
    pub const AUDIT_INCLUSION: &str = "/v1/audit/proof/inclusion";
    pub const AUDIT_CONSISTENCY: &str = "/v1/audit/proof/consistency";
    pub const AUDIT_SUBJECT_REPORT: &str = "/v1/audit/subject-report";
    pub const AUDIT_RECEIPT: &str = "/v1/audit/receipt";
    pub const WITNESS_ADD_CHECKPOINT: &str = "/v1/witness/add-checkpoint";
}

/// The most entries one `GET /v1/audit/entries` answers: exporters page by it.
pub const AUDIT_PAGE: u64 = 1000;

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

/// `GET /v1/audit/entries`: entries `start..end` of a log of `size`; the server sends each
/// entry's canonical bytes (`leaf`, base64) with its decoded view, an exporter reads `leaf`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntriesPage<E> {
    pub start: u64,
    pub end: u64,
    /// The log's durable size when read.
    pub size: u64,
    pub entries: Vec<E>,
}

/// What an exporter keeps of an entry of [`EntriesPage`]: its canonical bytes, base64.
#[derive(Debug, Clone, Deserialize)]
pub struct PageEntry {
    pub leaf: String,
}

/// `GET /v1/audit/proof/inclusion`: leaf `index`'s proof in the tree of `size` (hashes in
/// standard base64).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    pub index: u64,
    pub size: u64,
    pub leaf_hash: String,
    pub root: String,
    pub proof: Vec<String>,
}

/// `GET /v1/audit/proof/consistency`: the proof that the tree of `from` is a prefix of the
/// tree of `to` (hashes in standard base64).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    pub from_root: String,
    pub to_root: String,
    pub proof: Vec<String>,
}

/// `GET /readyz`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ready {
    pub status: String,
    /// The manifest in force (null: none yet, every policy-guarded route denies).
    pub manifest_version: Option<u64>,
    pub policy_version: Option<String>,
}

/// One rejected row of an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    pub line: u64,
    pub reason: String,
}

/// The answer to an import (`POST /v1/admin/import/*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportSummary {
    pub dataset: String,
    /// snapshot or delta.
    pub mode: String,
    pub rows_read: u64,
    pub applied: u64,
    pub rejected: u64,
    /// The first rejected rows (at most `import::MAX_REPORTED`).
    pub errors: Vec<RowError>,
    pub as_of: Option<String>,
    pub dataset_rows: u64,
    pub millis: u64,
}

/// The body of `POST /v1/manifest`. Omitted parts are carried over from the manifest in force.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    pub policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<Vec<attesta_policy::DirectoryEntry>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<Vec<String>>,
    /// Publish only if this is the version in force (the version the draft was made from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Notified {
    pub agency: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PublishAnswer {
    pub version: u64,
    pub issued_at: String,
    pub policy_version: String,
    pub notified: Vec<Notified>,
}

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
pub fn as_of_present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    present(d, "as_of")
}

/// `comune`, when present, is a string.
pub fn comune_present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    present(d, "comune")
}

/// A validated attestation request.
#[derive(Debug)]
pub struct Question {
    pub subject: CodiceFiscale,
    pub purpose: Purpose,
    /// The request's query id (its audit entry's), hex.
    pub query_id: String,
    pub as_of: Date,
    /// SHA-256 of the request body, hex: binds the answer to the question.
    pub request_sha256: String,
}

pub fn bad_request(detail: impl Into<String>) -> Problem {
    Problem::new(ProblemKind::BadRequest).with_detail(detail)
}

/// The parameters of a query string, percent-decoded (RFC 3986; `+` is a space, as HTML forms
/// send it), each given at most once; a name not in `known` is refused, and so is a value
/// that is not UTF-8 once decoded. Names are compared after decoding.
pub fn query_params<'k>(
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
pub fn percent_decode(s: &str) -> Option<String> {
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

/// Escapes `s` for a query string value: letters, digits and `-._~` stay, every other byte
/// is `%XX` ([`percent_decode`] reads it back).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Checks a declared purpose's form. An empty purpose passes: the policy denies it.
/// The request's declared purpose (empty when none: the policy denies it).
pub fn parse_purpose(purpose: &str) -> Result<Purpose, Problem> {
    Purpose::parse(purpose).map_err(|e| bad_request(e.to_string()))
}

pub fn parse_question(body: &Bytes) -> Result<Question, Problem> {
    let req: AttestRequest =
        serde_json::from_slice(body).map_err(|e| bad_request(format!("request body: {e}")))?;
    let subject = parse_subject(&req.subject)?;
    let purpose = parse_purpose(&req.purpose)?;
    let as_of = parse_as_of(req.as_of.as_deref())?;
    Ok(Question {
        subject,
        purpose,
        query_id: String::new(),
        as_of,
        request_sha256: crate::attestation::sha256_hex(body),
    })
}

/// A request's subject, or 400 `invalid-codice-fiscale` saying what is wrong with it.
pub fn parse_subject(s: &str) -> Result<CodiceFiscale, Problem> {
    CodiceFiscale::parse(s)
        .map_err(|e| Problem::new(ProblemKind::InvalidSubject).with_detail(e.to_string()))
}

/// The earliest date a question may be about: no registry or permit record is older.
pub const EARLIEST_AS_OF: Date = time::macros::date!(1900 - 01 - 01);

/// A request's `as_of` date; today when absent. Bounded: from [`EARLIEST_AS_OF`] to tomorrow
/// (UTC; tomorrow because in Rome it may already be), since nobody can attest a future date.
pub fn parse_as_of(d: Option<&str>) -> Result<Date, Problem> {
    match d {
        Some(d) => bounded_date(d, today()).map_err(|e| bad_request(format!("as_of: {e}"))),
        None => Ok(today()),
    }
}

/// `s` as a date between [`EARLIEST_AS_OF`] and the day after `today`.
pub fn bounded_date(s: &str, today: Date) -> Result<Date, String> {
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
pub fn today() -> Date {
    time::OffsetDateTime::now_utc().date()
}

/// The body of a status request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusRequest {
    subject: String,
    /// Required by the policy, not by the parser: a request without one is denied (403).
    #[serde(default)]
    purpose: String,
    #[serde(default, deserialize_with = "comune_present")]
    comune: Option<String>,
    #[serde(default, deserialize_with = "as_of_present")]
    as_of: Option<String>,
}

/// A validated status request.
#[derive(Debug)]
pub struct StatusQuestion {
    pub subject: CodiceFiscale,
    pub purpose: Purpose,
    pub comune: Option<ComuneCode>,
    pub as_of: Date,
}

pub fn parse_status(body: &Bytes) -> Result<StatusQuestion, Problem> {
    let req: StatusRequest =
        serde_json::from_slice(body).map_err(|e| bad_request(format!("request body: {e}")))?;
    let subject = parse_subject(&req.subject)?;
    let purpose = parse_purpose(&req.purpose)?;
    let comune = req
        .comune
        .as_deref()
        .map(ComuneCode::parse)
        .transpose()
        .map_err(|e| bad_request(format!("comune: {e}")))?;
    let as_of = parse_as_of(req.as_of.as_deref())?;
    Ok(StatusQuestion {
        subject,
        purpose,
        comune,
        as_of,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_percent_encoded_value_reads_back_whole() {
        for v in ["benefit-eligibility", "a&b=c d", "<x>", "è%+", ""] {
            let e = percent_encode(v);
            assert!(!e.contains(['&', '=', ' ', '+', '<']), "{e}");
            assert_eq!(percent_decode(&e).as_deref(), Some(v));
        }
    }

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

/// One entry of a node's report, as `POST /v1/audit/subject-report` gives it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reported {
    pub index: u64,
    pub time: String,
    pub query_id: String,
    pub direction: String,
    pub agency: String,
    pub route: String,
    pub purpose: String,
    pub decision: String,
    pub status: u16,
}

/// A node's report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeReport {
    pub node: String,
    pub size: u64,
    pub entries: Vec<Reported>,
}

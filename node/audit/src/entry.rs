//! One audit log entry and its canonical encoding.
//!
//! The encoding is the leaf of the Merkle tree, so it must be deterministic: one value has
//! exactly one encoding, and [`Entry::decode`] accepts nothing else (no trailing bytes, no
//! unknown tags, no invalid UTF-8, no field over its bound). docs/AUDIT_LOG.md has the layout.
//!
//! ```text
//! u8      version: 1, or 2 when a person at the agency's console caused the request
//! u64     time, Unix milliseconds, big-endian
//! [16]    query id
//! u8      direction: 1 incoming, 2 outgoing, 3 change
//! str8    peer agency
//! opt32   peer certificate SHA-256
//! str8    route ("POST /v1/status")
//! str8    purpose
//! opt32   blinded subject, HMAC-SHA256(audit key, canonical codice fiscale)
//! u8      decision: 0 none, 1 allow, 2 deny
//! str16   matched rule or reason of the denial
//! str8    policy version
//! u16     HTTP status (0: no answer)
//! [32]    request body SHA-256
//! opt32   response body SHA-256
//! str8    (version 2 only) the operator: their name at the peer agency, never empty
//!
//! str8  = u8 length, UTF-8 bytes       str16 = u16 length (big-endian), UTF-8 bytes
//! opt32 = u8 0 (absent) | u8 1, 32 bytes
//! ```

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The encoding version of an entry no operator caused.
pub const VERSION: u8 = 1;
/// The encoding version of an entry with an operator (a console action): version 1's fields,
/// then the operator's name.
pub const VERSION_OPERATOR: u8 = 2;

/// Longest matched rule or denial reason kept; longer ones are cut at a character boundary.
pub const MAX_RULE: usize = 1024;

/// Longest encoded entry (every field at its bound).
pub const MAX_ENCODED: usize = 1
    + 8
    + 16
    + 1
    + (1 + 255)
    + 33
    + (1 + 255)
    + (1 + 255)
    + 33
    + 1
    + (2 + MAX_RULE)
    + (1 + 255)
    + 2
    + 32
    + 33
    + (1 + 255);

/// Who started the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// A peer asked this node.
    Incoming,
    /// This node asked a peer (the status coordinator's calls).
    Outgoing,
    /// A change on this node itself: a new manifest (policy and directory) in force.
    Change,
}

/// What the policy said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// No policy decision: open routes, requests refused before one (malformed, revoked), and
    /// outgoing calls.
    None,
    Allow,
    Deny,
}

/// One logged request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub time_ms: u64,
    pub query_id: [u8; 16],
    pub direction: Direction,
    /// The agency at the other end.
    pub peer_agency: String,
    /// SHA-256 of the certificate the other end presented (absent when no TLS session was
    /// made, e.g. an outgoing call to a node that was down).
    pub peer_cert: Option<[u8; 32]>,
    /// Method and route template, e.g. `POST /v1/attest/residence`.
    pub route: String,
    pub purpose: String,
    pub subject: Option<[u8; 32]>,
    pub decision: Decision,
    pub rule: String,
    pub policy_version: String,
    pub status: u16,
    pub request_sha256: [u8; 32],
    pub response_sha256: Option<[u8; 32]>,
    /// The person at the console of `peer_agency` whose action this was (their operator
    /// certificate is `peer_cert`); `None` for agency-to-agency calls.
    pub operator: Option<String>,
}

/// Why bytes are not an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed audit entry: {0}")]
pub struct Malformed(pub &'static str);

/// Unix milliseconds now: the time an entry records.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Cuts `s` to at most `max` bytes at a character boundary.
fn bounded(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Entry {
    /// The canonical bytes. Strings over their bound are cut (at a character boundary), so
    /// that every entry can be encoded; the bounds are far above what the node produces.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        let operator = self
            .operator
            .as_deref()
            .map(|o| bounded(o, 255))
            .filter(|o| !o.is_empty());
        out.push(if operator.is_some() {
            VERSION_OPERATOR
        } else {
            VERSION
        });
        out.extend_from_slice(&self.time_ms.to_be_bytes());
        out.extend_from_slice(&self.query_id);
        out.push(match self.direction {
            Direction::Incoming => 1,
            Direction::Outgoing => 2,
            Direction::Change => 3,
        });
        str8(&mut out, &self.peer_agency);
        opt32(&mut out, self.peer_cert.as_ref());
        str8(&mut out, &self.route);
        str8(&mut out, &self.purpose);
        opt32(&mut out, self.subject.as_ref());
        out.push(match self.decision {
            Decision::None => 0,
            Decision::Allow => 1,
            Decision::Deny => 2,
        });
        let rule = bounded(&self.rule, MAX_RULE);
        out.extend_from_slice(&(rule.len() as u16).to_be_bytes());
        out.extend_from_slice(rule.as_bytes());
        str8(&mut out, &self.policy_version);
        out.extend_from_slice(&self.status.to_be_bytes());
        out.extend_from_slice(&self.request_sha256);
        opt32(&mut out, self.response_sha256.as_ref());
        if let Some(o) = operator {
            str8(&mut out, o);
        }
        out
    }

    /// Reads canonical bytes; anything else is refused.
    pub fn decode(bytes: &[u8]) -> Result<Self, Malformed> {
        let mut r = Reader(bytes);
        let version = r.u8("version")?;
        if version != VERSION && version != VERSION_OPERATOR {
            return Err(Malformed("unknown version"));
        }
        let time_ms = u64::from_be_bytes(r.array("time")?);
        let query_id = r.array("query id")?;
        let direction = match r.u8("direction")? {
            1 => Direction::Incoming,
            2 => Direction::Outgoing,
            3 => Direction::Change,
            _ => return Err(Malformed("unknown direction")),
        };
        let peer_agency = r.str8("peer agency")?;
        let peer_cert = r.opt32("peer certificate")?;
        let route = r.str8("route")?;
        let purpose = r.str8("purpose")?;
        let subject = r.opt32("subject")?;
        let decision = match r.u8("decision")? {
            0 => Decision::None,
            1 => Decision::Allow,
            2 => Decision::Deny,
            _ => return Err(Malformed("unknown decision")),
        };
        let rule_len = u16::from_be_bytes(r.array("rule")?) as usize;
        if rule_len > MAX_RULE {
            return Err(Malformed("rule too long"));
        }
        let rule = r.string(rule_len, "rule")?;
        let policy_version = r.str8("policy version")?;
        let status = u16::from_be_bytes(r.array("status")?);
        let request_sha256 = r.array("request digest")?;
        let response_sha256 = r.opt32("response digest")?;
        let operator = if version == VERSION_OPERATOR {
            let o = r.str8("operator")?;
            if o.is_empty() {
                // Version 1 is the one encoding of an entry without an operator.
                return Err(Malformed("empty operator"));
            }
            Some(o)
        } else {
            None
        };
        if !r.0.is_empty() {
            return Err(Malformed("trailing bytes"));
        }
        Ok(Self {
            time_ms,
            query_id,
            direction,
            peer_agency,
            peer_cert,
            route,
            purpose,
            subject,
            decision,
            rule,
            policy_version,
            status,
            request_sha256,
            response_sha256,
            operator,
        })
    }

    /// The entry as JSON (hex digests, RFC 3339 time), for auditors.
    pub fn view(&self, index: u64) -> EntryView<'_> {
        EntryView {
            index,
            time: format_ms(self.time_ms),
            query_id: hex::encode(self.query_id),
            direction: self.direction,
            peer_agency: &self.peer_agency,
            peer_certificate_sha256: self.peer_cert.as_ref().map(hex::encode),
            route: &self.route,
            purpose: &self.purpose,
            subject_hmac: self.subject.as_ref().map(hex::encode),
            decision: self.decision,
            rule: &self.rule,
            policy_version: &self.policy_version,
            status: self.status,
            request_sha256: hex::encode(self.request_sha256),
            response_sha256: self.response_sha256.as_ref().map(hex::encode),
            operator: self.operator.as_deref(),
        }
    }
}

/// An entry for people: what `GET /v1/audit/entries` and `attesta audit` print.
#[derive(Debug, Serialize)]
pub struct EntryView<'a> {
    pub index: u64,
    pub time: String,
    pub query_id: String,
    pub direction: Direction,
    pub peer_agency: &'a str,
    pub peer_certificate_sha256: Option<String>,
    pub route: &'a str,
    pub purpose: &'a str,
    pub subject_hmac: Option<String>,
    pub decision: Decision,
    pub rule: &'a str,
    pub policy_version: &'a str,
    pub status: u16,
    pub request_sha256: String,
    pub response_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<&'a str>,
}

/// Unix milliseconds as RFC 3339 (UTC, millisecond precision).
pub fn format_ms(ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Reads `N` bytes written as `2N` hex digits (either case).
pub fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

fn str8(out: &mut Vec<u8>, s: &str) {
    let s = bounded(s, 255);
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

fn opt32(out: &mut Vec<u8>, h: Option<&[u8; 32]>) {
    match h {
        None => out.push(0),
        Some(h) => {
            out.push(1);
            out.extend_from_slice(h);
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed(what));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, Malformed> {
        Ok(self.take(1, what)?[0])
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Malformed> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn string(&mut self, len: usize, what: &'static str) -> Result<String, Malformed> {
        let bytes = self.take(len, what)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| Malformed(what))
    }

    fn str8(&mut self, what: &'static str) -> Result<String, Malformed> {
        let len = self.u8(what)? as usize;
        self.string(len, what)
    }

    fn opt32(&mut self, what: &'static str) -> Result<Option<[u8; 32]>, Malformed> {
        match self.u8(what)? {
            0 => Ok(None),
            1 => Ok(Some(self.array(what)?)),
            _ => Err(Malformed(what)),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Entry {
        Entry {
            time_ms: 1_790_000_000_123,
            query_id: [7; 16],
            direction: Direction::Incoming,
            peer_agency: "inps-pesaro".into(),
            peer_cert: Some([1; 32]),
            route: "POST /v1/attest/residence".into(),
            purpose: "benefit-eligibility".into(),
            subject: Some([2; 32]),
            decision: Decision::Allow,
            rule: "p, consumer, residence, read, benefit-eligibility, *, allow".into(),
            policy_version: "ab12".into(),
            status: 200,
            request_sha256: [3; 32],
            response_sha256: Some([4; 32]),
            operator: None,
        }
    }

    #[test]
    fn encoding_round_trips_and_is_canonical() {
        let mut e = sample();
        let bytes = e.encode();
        assert_eq!(Entry::decode(&bytes).unwrap(), e);
        e.peer_cert = None;
        e.subject = None;
        e.response_sha256 = None;
        e.direction = Direction::Outgoing;
        e.decision = Decision::None;
        let bytes = e.encode();
        assert_eq!(Entry::decode(&bytes).unwrap().encode(), bytes);
        assert!(bytes.len() <= MAX_ENCODED);
    }

    #[test]
    fn every_strict_prefix_and_any_trailing_byte_is_refused() {
        let bytes = sample().encode();
        for n in 0..bytes.len() {
            assert!(Entry::decode(&bytes[..n]).is_err(), "prefix of {n} bytes");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Entry::decode(&longer), Err(Malformed("trailing bytes")));
    }

    #[test]
    fn unknown_tags_and_bad_utf8_are_refused() {
        let bytes = sample().encode();
        let mut v = bytes.clone();
        v[0] = 3;
        assert_eq!(Entry::decode(&v), Err(Malformed("unknown version")));
        // Version 2 without its operator, or with an empty one, is not an entry.
        v[0] = 2;
        assert_eq!(Entry::decode(&v), Err(Malformed("operator")));
        v.push(0);
        assert_eq!(Entry::decode(&v), Err(Malformed("empty operator")));
        let mut d = bytes.clone();
        d[25] = 4;
        assert_eq!(Entry::decode(&d), Err(Malformed("unknown direction")));
        d[25] = 3;
        assert_eq!(Entry::decode(&d).unwrap().direction, Direction::Change);
        let mut u = bytes.clone();
        u[27] = 0xff; // first byte of the peer agency
        assert_eq!(Entry::decode(&u), Err(Malformed("peer agency")));
    }

    #[test]
    fn an_operator_is_version_2_and_round_trips() {
        let mut e = sample();
        let v1 = e.encode();
        e.operator = Some("mario.rossi".into());
        let v2 = e.encode();
        assert_eq!(v2[0], VERSION_OPERATOR);
        assert_eq!(&v2[1..v1.len()], &v1[1..], "version 1's fields, unchanged");
        assert_eq!(&v2[v1.len()..], b"\x0bmario.rossi");
        assert_eq!(Entry::decode(&v2).unwrap(), e);
        assert!(v2.len() <= MAX_ENCODED);
        for n in 0..v2.len() {
            assert!(Entry::decode(&v2[..n]).is_err(), "prefix of {n} bytes");
        }
        // An empty operator is no operator: version 1.
        e.operator = Some(String::new());
        assert_eq!(e.encode(), v1);
    }

    #[test]
    fn overlong_strings_are_cut_at_a_character_boundary() {
        let mut e = sample();
        e.rule = "è".repeat(MAX_RULE); // two bytes each
        e.purpose = "x".repeat(300);
        let back = Entry::decode(&e.encode()).unwrap();
        assert_eq!(back.rule.len(), MAX_RULE);
        assert!(back.rule.chars().all(|c| c == 'è'));
        assert_eq!(back.purpose.len(), 255);
    }

    #[test]
    fn time_formats_as_rfc3339_utc() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ms(1_790_000_000_123), "2026-09-21T14:13:20.123Z");
    }
}

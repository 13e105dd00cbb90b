//! Reconciling two nodes' logs (`attesta audit reconcile A B`): every call that A's node logged
//! as outgoing to B must be in B's log as incoming from A, with the same query id and request
//! digest, and every such request B logged from A must be one of A's outgoing calls; the
//! same from B to A.
//!
//! Only the routes whose calls nodes log as outgoing are compared (the status coordinator's
//! questions, [`CALLED_ROUTES`]); other requests between nodes (manifest fetches, witness
//! submissions) are not outgoing entries. An entry later than the other bundle's last entry, or
//! earlier than its first (a range bundle), is not a difference: the other bundle does not
//! cover its time.

use std::collections::HashMap;

use super::entry::{format_ms, Direction, Entry};

/// The routes nodes call on each other and log as outgoing calls.
pub const CALLED_ROUTES: &[&str] = &[
    "POST /v1/attest/residence",
    "POST /v1/attest/legal-presence",
];

/// One side: an agency's log, decoded.
#[derive(Debug)]
pub struct Log<'a> {
    pub agency: &'a str,
    /// The log index of the first entry (0 unless the bundle holds a range).
    pub start: u64,
    pub entries: &'a [Entry],
}

impl Log<'_> {
    /// The times the entries span.
    fn span(&self) -> std::ops::RangeInclusive<u64> {
        let times = self.entries.iter().map(|e| e.time_ms);
        // A range bundle starts after earlier entries: nothing before its first is covered.
        let first = if self.start == 0 {
            0
        } else {
            times.clone().min().unwrap_or(u64::MAX)
        };
        first..=times.max().unwrap_or(0)
    }
}

/// An entry of one log with no counterpart in the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Whose log holds the entry.
    pub agency: String,
    pub index: u64,
    pub what: String,
}

/// The calls between the two agencies, as the logs show them.
#[derive(Debug, Default)]
pub struct Report {
    /// Calls found in both logs, A→B then B→A.
    pub matched: [usize; 2],
    pub differences: Vec<Difference>,
    /// Entries outside the time the other bundle covers.
    pub outside: usize,
}

type Key = ([u8; 16], [u8; 32]);

fn describe(e: &Entry) -> String {
    format!(
        "{}, query {}, {}, status {}",
        format_ms(e.time_ms),
        hex::encode(e.query_id),
        e.route,
        e.status
    )
}

/// The calls `caller` made to `callee`: `caller`'s outgoing entries against `callee`'s incoming
/// ones.
fn one_way(caller: &Log<'_>, callee: &Log<'_>, report: &mut Report) -> usize {
    let compared = |e: &Entry| CALLED_ROUTES.contains(&e.route.as_str());
    let mut received: HashMap<Key, Vec<u64>> = HashMap::new();
    for (i, e) in callee.entries.iter().enumerate() {
        if e.direction == Direction::Incoming && e.peer_agency == caller.agency && compared(e) {
            received
                .entry((e.query_id, e.request_sha256))
                .or_default()
                .push(i as u64);
        }
    }
    let (caller_span, callee_span) = (caller.span(), callee.span());
    let mut matched = 0;
    for (i, e) in caller.entries.iter().enumerate() {
        if e.direction != Direction::Outgoing || e.peer_agency != callee.agency {
            continue;
        }
        let found = received
            .get_mut(&(e.query_id, e.request_sha256))
            .and_then(|v| (!v.is_empty()).then(|| v.remove(0)));
        if found.is_some() {
            matched += 1;
        } else if !callee_span.contains(&e.time_ms) {
            report.outside += 1;
        } else {
            let why = if e.status == 0 {
                " (no answer came: it may never have arrived)"
            } else {
                ""
            };
            report.differences.push(Difference {
                agency: caller.agency.to_owned(),
                index: caller.start + i as u64,
                what: format!(
                    "call to {} ({}) is not in {}'s log{why}",
                    callee.agency,
                    describe(e),
                    callee.agency
                ),
            });
        }
    }
    let mut left: Vec<u64> = received.into_values().flatten().collect();
    left.sort_unstable();
    for i in left {
        let e = &callee.entries[i as usize];
        if !caller_span.contains(&e.time_ms) {
            report.outside += 1;
            continue;
        }
        report.differences.push(Difference {
            agency: callee.agency.to_owned(),
            index: callee.start + i,
            what: format!(
                "request from {} ({}) is not an outgoing call in {}'s log (made by another client \
                 holding its certificate, or missing from its log)",
                caller.agency,
                describe(e),
                caller.agency
            ),
        });
    }
    matched
}

/// Compares the calls between two agencies' logs in both directions.
pub fn reconcile(a: &Log<'_>, b: &Log<'_>) -> Report {
    let mut report = Report::default();
    report.matched[0] = one_way(a, b, &mut report);
    report.matched[1] = one_way(b, a, &mut report);
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Decision;

    fn entry(time_ms: u64, q: u8, direction: Direction, peer: &str, route: &str) -> Entry {
        Entry {
            time_ms,
            query_id: [q; 16],
            direction,
            peer_agency: peer.into(),
            peer_cert: None,
            route: route.into(),
            purpose: "benefit-eligibility".into(),
            subject: None,
            decision: Decision::None,
            rule: String::new(),
            policy_version: String::new(),
            status: 200,
            request_sha256: [q; 32],
            response_sha256: None,
            operator: None,
        }
    }

    /// Reconciles two logs given as (agency, first index, entries).
    fn between(a: (&str, u64, &[Entry]), b: (&str, u64, &[Entry])) -> Report {
        let log = |(agency, start, entries)| Log {
            agency,
            start,
            entries,
        };
        reconcile(&log(a), &log(b))
    }

    const PRESENCE: &str = "POST /v1/attest/legal-presence";
    use Direction::{Incoming, Outgoing};

    #[test]
    fn matching_calls_reconcile_and_every_kind_of_difference_is_named() {
        let inps = vec![
            entry(10, 1, Outgoing, "questura-pu", PRESENCE),
            entry(11, 1, Incoming, "inps-pesaro", "POST /v1/status"),
            entry(20, 2, Outgoing, "questura-pu", PRESENCE),
            entry(30, 3, Outgoing, "questura-pu", PRESENCE), // never arrived
            entry(31, 4, Outgoing, "comune-pesaro", PRESENCE), // another peer
            entry(90, 5, Outgoing, "questura-pu", PRESENCE), // after the Questura's export
        ];
        let mut lost = entry(32, 6, Outgoing, "questura-pu", PRESENCE);
        lost.status = 0;
        let mut inps = inps;
        inps.push(lost);
        let questura = vec![
            entry(9, 1, Incoming, "inps-pesaro", PRESENCE),
            entry(19, 2, Incoming, "inps-pesaro", PRESENCE),
            entry(25, 7, Incoming, "inps-pesaro", PRESENCE), // a direct call
            entry(26, 8, Incoming, "inps-pesaro", "GET /v1/manifest"), // not compared
            entry(27, 9, Incoming, "comune-pesaro", PRESENCE), // another caller
            entry(50, 10, Incoming, "inps-pesaro", PRESENCE),
        ];
        // The Questura's last entry is at 50; INPS's at 90.
        let r = between(("inps-pesaro", 0, &inps), ("questura-pu", 0, &questura));
        assert_eq!(r.matched, [2, 0]);
        assert_eq!(r.outside, 1);
        let found: Vec<(&str, u64)> = r
            .differences
            .iter()
            .map(|d| (d.agency.as_str(), d.index))
            .collect();
        assert_eq!(
            found,
            [
                ("inps-pesaro", 3),
                ("inps-pesaro", 6),
                ("questura-pu", 2),
                ("questura-pu", 5)
            ]
        );
        assert!(r.differences[0]
            .what
            .contains("is not in questura-pu's log"));
        assert!(r.differences[1].what.contains("may never have arrived"));
        assert!(r.differences[2]
            .what
            .starts_with("request from inps-pesaro (1970-01-01T00:00:00.025Z, query 0707"));

        // A changed request body on one side is a difference on both.
        let mut changed = questura.clone();
        changed[0].request_sha256[0] ^= 1;
        let r = between(
            ("inps-pesaro", 0, &inps[..3]),
            ("questura-pu", 0, &changed[..2]),
        );
        assert_eq!(r.matched, [1, 0]);
        assert_eq!(r.differences.len(), 2);

        // A call made twice is matched twice only if logged twice.
        let twice = [inps[0].clone(), inps[0].clone()];
        let r = between(
            ("inps-pesaro", 0, &twice),
            ("questura-pu", 0, &questura[..2]),
        );
        assert_eq!((r.matched, r.differences.len()), ([1, 0], 1));
    }

    #[test]
    fn a_range_bundle_names_log_indexes_and_leaves_out_what_it_does_not_cover() {
        // The Questura's range starts at its entry 100, at time 19: INPS's call at 10 is
        // before it, the one at 20 is in it, and the one at 30 is missing.
        let inps = vec![
            entry(10, 1, Outgoing, "questura-pu", PRESENCE),
            entry(20, 2, Outgoing, "questura-pu", PRESENCE),
            entry(30, 3, Outgoing, "questura-pu", PRESENCE),
        ];
        let questura = vec![
            entry(19, 2, Incoming, "inps-pesaro", PRESENCE),
            entry(40, 4, Incoming, "inps-pesaro", "GET /v1/manifest"),
        ];
        let r = between(("inps-pesaro", 0, &inps), ("questura-pu", 100, &questura));
        assert_eq!(r.matched, [1, 0]);
        assert_eq!(r.outside, 1);
        assert_eq!(r.differences.len(), 1);
        assert_eq!(r.differences[0].index, 2);
        // And from the other side: an unmatched request in the range is named by log index.
        let stray = vec![entry(19, 9, Incoming, "inps-pesaro", PRESENCE)];
        let r = between(("inps-pesaro", 0, &inps), ("questura-pu", 100, &stray));
        assert!(r
            .differences
            .iter()
            .any(|d| d.agency == "questura-pu" && d.index == 100));
    }
}

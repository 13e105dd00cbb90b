//! `attesta audit subject-report`: the citizen access report (GDPR art. 15) for the whole
//! federation. Every node is asked for its entries about the person
//! (`POST /v1/audit/subject-report`); the answers are merged by time into one list of who
//! asked which agency, when, for what purpose, and what was decided.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use attesta_certs::AgencyId;
use clap::Args;
use serde::Serialize;

use crate::cli::query::ClientSettings;
use crate::domain::cf::CodiceFiscale;

#[derive(Debug, Args)]
pub struct SubjectReportArgs {
    /// The person's codice fiscale.
    subject: String,
    /// The auditor's client.toml (CA, the auditor's certificate and key, a node to reach the
    /// federation through).
    #[arg(long)]
    config: PathBuf,
    /// Ask only this agency's node (repeatable); by default every node of the directory.
    #[arg(long = "node")]
    nodes: Vec<String>,
    /// Print the nodes' answers as one JSON document.
    #[arg(long)]
    json: bool,
}

/// How long one node may take to answer.
const NODE_DEADLINE: Duration = Duration::from_secs(10);

pub use crate::wire::{NodeReport, Reported};

/// What one node said: its report, or why there is none.
#[derive(Debug, Serialize)]
struct Answer {
    agency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<NodeReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub async fn run(a: SubjectReportArgs) -> anyhow::Result<()> {
    let cf = CodiceFiscale::parse(&a.subject)
        .map_err(|e| anyhow::anyhow!("{:?} is not a valid codice fiscale: {e}", a.subject))?;
    let settings = ClientSettings::load(&a.config)?;
    let manifest = settings.directory().await?;
    let mut nodes = Vec::new();
    if a.nodes.is_empty() {
        nodes.extend(manifest.directory.iter().cloned());
    } else {
        for n in &a.nodes {
            let entry = manifest.entry(n).ok_or_else(|| {
                anyhow::anyhow!("--node {n}: no node of the manifest's directory")
            })?;
            nodes.push(entry.clone());
        }
    }

    let body = bytes::Bytes::from(serde_json::to_vec(
        &serde_json::json!({"subject": cf.canonical()}),
    )?);
    // One report is one query: every node logs it under the same id.
    let mut id = [0u8; 16];
    attesta_certs::random_bytes(&mut id);
    let query_id: std::sync::Arc<str> = hex::encode(id).into();
    let mut asks = tokio::task::JoinSet::new();
    for (i, entry) in nodes.iter().enumerate() {
        let Some(at) = manifest.endpoint(&entry.agency) else {
            continue;
        };
        let node = AgencyId::new(at.node)
            .map_err(|e| anyhow::anyhow!("directory agency {:?}: {e}", at.node))?;
        let client = settings.client_for(&node)?;
        let base = at.base();
        let body = body.clone();
        let query_id = query_id.clone();
        asks.spawn(async move {
            let ask = async {
                let conn = client.connect_h2(&base).await?;
                conn.send_with(
                    http::Method::POST,
                    crate::wire::path::AUDIT_SUBJECT_REPORT,
                    &[(crate::wire::QUERY_ID_HEADER, &query_id)],
                    Some(("application/json", body)),
                )
                .await
            };
            let asked = tokio::time::timeout(NODE_DEADLINE, ask).await;
            let result = match asked {
                Err(_) => Err(format!("no answer within {}s", NODE_DEADLINE.as_secs())),
                Ok(Err(e)) => Err(format!("{base}: {}", crate::config::error_chain(&e))),
                Ok(Ok(r)) if !r.status.is_success() => Err(crate::cli::query::refusal(&r)),
                Ok(Ok(r)) => serde_json::from_slice::<NodeReport>(&r.body)
                    .map_err(|e| format!("not a subject report: {e}")),
            };
            (i, result)
        });
    }
    let mut answers: Vec<Answer> = nodes
        .iter()
        .map(|n| Answer {
            agency: n.agency.clone(),
            report: None,
            error: None,
        })
        .collect();
    while let Some(done) = asks.join_next().await {
        let (i, result) = done.context("a request task failed")?;
        match result {
            Ok(r) => answers[i].report = Some(r),
            Err(e) => answers[i].error = Some(e),
        }
    }

    if a.json {
        let doc = serde_json::json!({"subject": cf.canonical(), "nodes": answers});
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", human(cf.canonical(), &answers));
    }
    let missing: Vec<&str> = answers
        .iter()
        .filter(|a| a.report.is_none())
        .map(|a| a.agency.as_str())
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "incomplete: {} of {} node(s) did not answer ({})",
            missing.len(),
            answers.len(),
            missing.join(", ")
        );
    }
    Ok(())
}

/// Who asked whom in one entry of `node`'s log.
fn parties<'a>(node: &'a str, e: &'a Reported) -> (&'a str, &'a str) {
    if e.direction == "outgoing" {
        (node, &e.agency)
    } else {
        (&e.agency, node)
    }
}

/// What came of the request: the policy's decision where this node took one, else the status
/// the caller received (none: the call failed or was given up, e.g. at the deadline).
fn outcome(e: &Reported) -> String {
    match (e.direction.as_str(), e.decision.as_str(), e.status) {
        ("outgoing", _, 0) => "no answer received".into(),
        ("outgoing", _, s) => format!("answered {s}"),
        (_, "allow", s) => format!("allowed ({s})"),
        (_, "deny", s) => format!("denied ({s})"),
        (_, _, s) => format!("status {s}"),
    }
}

/// The report as a person reads it: every entry by time, then the queries by asking agency.
fn human(subject: &str, answers: &[Answer]) -> String {
    use std::collections::{BTreeMap, BTreeSet};
    use std::fmt::Write;

    let answered = answers.iter().filter(|a| a.report.is_some()).count();
    let mut out = format!(
        "access report for {subject}: {answered} of {} node(s) answered\n",
        answers.len()
    );
    let mut rows: Vec<(&str, &Reported)> = answers
        .iter()
        .filter_map(|a| a.report.as_ref())
        .flat_map(|r| r.entries.iter().map(move |e| (r.node.as_str(), e)))
        .collect();
    rows.sort_by(|a, b| (&a.1.time, a.0, a.1.index).cmp(&(&b.1.time, b.0, b.1.index)));
    let mut queries: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (node, e) in &rows {
        let (asker, asked) = parties(node, e);
        let _ = writeln!(
            out,
            "  {}  {asker} asked {asked}: {}, purpose {}, {}, query {} ({node} entry {})",
            e.time,
            e.route,
            e.purpose,
            outcome(e),
            e.query_id,
            e.index
        );
        queries.entry(asker).or_default().insert(&e.query_id);
    }
    if rows.is_empty() {
        if answered > 0 {
            out.push_str("  no agency asked about this person\n");
        }
    } else {
        let by: Vec<String> = queries
            .iter()
            .map(|(agency, ids)| format!("{agency} {}", ids.len()))
            .collect();
        let _ = writeln!(
            out,
            "{} entr(y/ies); queries by asking agency: {}",
            rows.len(),
            by.join(", ")
        );
    }
    for a in answers {
        if let Some(e) = &a.error {
            let _ = writeln!(out, "  {}: no report: {e}", a.agency);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, time: &str, direction: &str, agency: &str, query: &str) -> Reported {
        Reported {
            index,
            time: time.into(),
            query_id: query.into(),
            direction: direction.into(),
            agency: agency.into(),
            route: "POST /v1/attest/legal-presence".into(),
            purpose: "benefit-eligibility".into(),
            decision: "allow".into(),
            status: 200,
        }
    }

    #[test]
    fn the_report_orders_every_nodes_entries_by_time_and_names_who_asked_whom() {
        let answers = vec![
            Answer {
                agency: "questura-pu".into(),
                report: Some(NodeReport {
                    node: "questura-pu".into(),
                    size: 9,
                    entries: vec![entry(
                        4,
                        "2026-11-23T10:00:00.200Z",
                        "incoming",
                        "inps-pesaro",
                        "q1",
                    )],
                }),
                error: None,
            },
            Answer {
                agency: "inps-pesaro".into(),
                report: Some(NodeReport {
                    node: "inps-pesaro".into(),
                    size: 30,
                    entries: vec![
                        entry(
                            7,
                            "2026-11-23T10:00:00.300Z",
                            "outgoing",
                            "questura-pu",
                            "q1",
                        ),
                        entry(
                            9,
                            "2026-11-23T09:00:00.000Z",
                            "incoming",
                            "inps-pesaro",
                            "q0",
                        ),
                    ],
                }),
                error: None,
            },
            Answer {
                agency: "comune-urbino".into(),
                report: None,
                error: Some("no answer within 10s".into()),
            },
        ];
        let text = human("RSSMRA85T10A562S", &answers);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "access report for RSSMRA85T10A562S: 2 of 3 node(s) answered"
        );
        assert!(
            lines[1].contains("09:00:00.000Z  inps-pesaro asked inps-pesaro"),
            "{text}"
        );
        assert!(
            lines[2].contains("inps-pesaro asked questura-pu")
                && lines[2].contains("questura-pu entry 4"),
            "{text}"
        );
        assert!(
            lines[3].contains("inps-pesaro asked questura-pu")
                && lines[3].contains("inps-pesaro entry 7"),
            "{text}"
        );
        assert_eq!(
            lines[4],
            "3 entr(y/ies); queries by asking agency: inps-pesaro 2"
        );
        assert_eq!(lines[5], "  comune-urbino: no report: no answer within 10s");
    }

    #[test]
    fn a_report_with_no_entries_says_so() {
        let answers = vec![Answer {
            agency: "questura-pu".into(),
            report: Some(NodeReport {
                node: "questura-pu".into(),
                size: 3,
                entries: vec![],
            }),
            error: None,
        }];
        let text = human("RSSMRA85T10A562S", &answers);
        assert!(text.contains("1 of 1 node(s) answered"), "{text}");
        assert!(text.contains("no agency asked about this person"), "{text}");
        // With no node answering, nothing is known either way.
        let refused = vec![Answer {
            agency: "questura-pu".into(),
            report: None,
            error: Some("the node refused: 403".into()),
        }];
        let text = human("RSSMRA85T10A562S", &refused);
        assert!(text.contains("0 of 1 node(s) answered"), "{text}");
        assert!(!text.contains("no agency asked"), "{text}");
    }
}

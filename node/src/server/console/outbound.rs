//! Calls the console makes to other nodes, as the agency, on an operator's behalf: all of one
//! action's calls at once, under one query id (which each peer logs too), each within the
//! peers' timeout, and each written to the agency's log as an outgoing entry that names the
//! operator before anything of the answers is shown.

use super::i18n::msg;
use std::sync::Arc;

use attesta_certs::OperatorIdentity;
use bytes::Bytes;
use http::{Method, StatusCode};

use crate::audit::entry::{now_ms, sha256, Decision, Direction, Entry};
use crate::client::Reply;
use crate::domain::cf::CodiceFiscale;
use crate::server::peers::{Call, Target};
use crate::server::Shared;

/// One call.
pub(super) struct Outbound {
    pub target: Target,
    pub method: Method,
    /// The route, as the entry names it (`/v1/audit/checkpoint`).
    pub route: &'static str,
    /// What follows the route: a query string (`?days=30`), or nothing.
    pub query: String,
    pub body: Bytes,
    /// The purpose declared, for the entry.
    pub purpose: String,
    /// The person the call is about (blinded in the entry).
    pub subject: Option<CodiceFiscale>,
}

/// What a call came back with: the agency asked, and its reply or why there is none.
pub(super) struct Reached {
    pub agency: String,
    pub reply: Result<Reply, String>,
}

/// Makes `calls`, logs them, and gives back their replies in the calls' order; `Err` when
/// the log could not take the entries (the answers are then not shown).
pub(super) async fn ask(
    shared: &Arc<Shared>,
    op: &OperatorIdentity,
    calls: Vec<Outbound>,
) -> Result<Vec<Reached>, ()> {
    let mut query_id = [0u8; 16];
    attesta_certs::random_bytes(&mut query_id);
    let qid: Arc<str> = hex::encode(query_id).into();
    let mut running = tokio::task::JoinSet::new();
    let count = calls.len();
    for (i, c) in calls.into_iter().enumerate() {
        let shared = shared.clone();
        let qid = qid.clone();
        running.spawn(async move {
            let path = format!("{}{}{}", c.target.prefix, c.route, c.query);
            let call = Call {
                path: &path,
                content_type: "application/json",
                headers: &[(crate::wire::QUERY_ID_HEADER, &qid)],
                body: c.body.clone(),
            };
            let time_ms = now_ms();
            let mut cert = None;
            let peers = &shared.peers;
            let (own, node, url) = (&shared.own, &c.target.node, &c.target.url);
            let reply = if c.method == Method::POST {
                peers.post(&shared, own, node, url, &call, &mut cert).await
            } else {
                peers.get(&shared, own, node, url, &call, &mut cert).await
            };
            let agency = c.target.agency.to_string();
            let (status, outcome, response) = match &reply {
                Ok(r) if r.status.is_success() => (r.status.as_u16(), "ok", Some(sha256(&r.body))),
                Ok(r) => (r.status.as_u16(), "refused", Some(sha256(&r.body))),
                Err(f) => (0, f.reason(), None),
            };
            let entry = Entry {
                time_ms,
                query_id,
                direction: Direction::Outgoing,
                peer_agency: agency.clone(),
                peer_cert: cert,
                route: format!("{} {}", c.method, c.route),
                purpose: c.purpose,
                subject: c
                    .subject
                    .as_ref()
                    .map(|s| shared.own.audit.subject_key().blind(s)),
                decision: Decision::None,
                rule: outcome.to_owned(),
                policy_version: String::new(),
                status,
                request_sha256: sha256(&c.body),
                response_sha256: response,
                operator: None,
            };
            let reply = reply.map_err(|f| f.detail(&agency));
            (i, entry, Reached { agency, reply })
        });
    }
    let mut done: Vec<Option<(Entry, Reached)>> = (0..count).map(|_| None).collect();
    while let Some(r) = running.join_next().await {
        if let Ok((i, entry, reached)) = r {
            done[i] = Some((entry, reached));
        }
    }
    let mut entries = Vec::with_capacity(count);
    let mut out = Vec::with_capacity(count);
    for (mut entry, reached) in done.into_iter().flatten() {
        entry.operator = Some(op.id.operator.to_string());
        entries.push(entry);
        out.push(reached);
    }
    if let Err(e) = shared.own.audit.append(&entries).await {
        tracing::error!(error = %crate::config::error_chain(&e), "audit append failed; answers withheld");
        shared.metrics.audit_failures.inc();
        return Err(());
    }
    shared.metrics.audit_entries.inc_by(entries.len() as u64);
    Ok(out)
}

/// A reply's body as JSON of type `T`, when its status is 200; else a line that says why.
pub(super) fn json<T: serde::de::DeserializeOwned>(reached: &Reached) -> Result<T, String> {
    match &reached.reply {
        Ok(r) if r.status == StatusCode::OK => r
            .json::<T>()
            .map_err(|_| msg("risposta non leggibile").to_owned()),
        Ok(r) => Err(super::problem_line(&r.body)),
        Err(why) => Err(why.clone()),
    }
}

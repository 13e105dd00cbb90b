//! The Prefettura's editing (`/politica/bozza`, `/politica/pubblica`, `/politica/nodi`): a
//! draft of the policy kept on its node and edited with forms, the difference from what is
//! published, a publish that asks for confirmation first, and which manifest version each
//! node of the directory runs.
//!
//! The draft is one file, `<data_dir>/console/policy-draft.csv`, shared by the Prefettura's
//! policy officers; every edit is a read, a change and an atomic write under one lock, and is
//! refused if the result would not load as a policy. Publishing is the agency's own
//! `POST /v1/manifest`, passed through the router as every console action is: the policy
//! decides it, the entry names the officer, and `expected_version` refuses a draft made over
//! a version that is no longer in force.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use attesta_certs::OperatorIdentity;
use attesta_policy::rules::{self, Rule};
use bytes::Bytes;
use http::{Method, Request, StatusCode};

use super::form::{self, field};
use super::i18n::msg;
use super::pages::{self, prefettura as page};
use super::{act, Console, ReqBody, Resp};
use crate::server::peers::{self, Call};
use crate::server::Shared;

fn draft_path(shared: &Shared) -> PathBuf {
    shared
        .settings
        .data_dir
        .join("console")
        .join("policy-draft.csv")
}

/// The draft's text (the published policy when there is none yet), and whether a draft file
/// exists.
fn draft(shared: &Shared) -> Result<(String, bool), String> {
    match std::fs::read_to_string(draft_path(shared)) {
        Ok(t) => Ok((t, true)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((
            shared
                .manifest
                .current()
                .map(|a| a.manifest.policy.clone())
                .unwrap_or_default(),
            false,
        )),
        Err(e) => Err(format!("{}: {e}", msg("bozza non leggibile"))),
    }
}

/// Whether this node publishes manifests (it is the Prefettura's).
fn publishes(shared: &Shared) -> bool {
    shared.settings.agency == shared.manifest.prefettura
}

fn not_here(shared: &Shared, ctx: &pages::Ctx) -> Resp {
    pages::error(
        ctx,
        StatusCode::NOT_FOUND,
        &format!(
            "la politica si modifica e si pubblica dalla console della Prefettura ({})",
            shared.manifest.prefettura
        ),
    )
}

/// The draft page's data.
fn view(shared: &Shared) -> Result<page::Draft, String> {
    let active = shared
        .manifest
        .current()
        .ok_or(msg("il nodo non ha ancora un manifesto in vigore"))?;
    let (text, exists) = draft(shared)?;
    let lines = rules::parse(&text).map_err(|e| format!("{}: {e}", msg("bozza")))?;
    let diff = rules::diff(&active.manifest.policy, &text)
        .map_err(|e| format!("{}: {e}", msg("bozza")))?;
    Ok(page::Draft {
        version: active.manifest.version,
        exists,
        lines,
        diff,
    })
}

/// `GET /politica/bozza`.
pub(super) fn draft_page(shared: &Shared, ctx: &pages::Ctx, query: Option<&str>) -> Resp {
    if !publishes(shared) {
        return not_here(shared, ctx);
    }
    let done = crate::wire::query_params(query, &["esito"])
        .ok()
        .and_then(|q| q.get("esito").cloned());
    match view(shared) {
        Ok(d) => page::draft(ctx, &d, page::Said::from_code(done.as_deref()), None),
        Err(why) => pages::error(ctx, StatusCode::SERVICE_UNAVAILABLE, &why),
    }
}

/// `POST /politica/bozza`: add a rule, remove one, or discard the draft; then back to the
/// draft page (303), which says what was done.
pub(super) async fn edit(
    shared: &Arc<Shared>,
    console: &Console,
    ctx: &pages::Ctx,
    req: Request<impl ReqBody>,
) -> Resp {
    if !publishes(shared) {
        return not_here(shared, ctx);
    }
    let form = match form::posted(
        req,
        ctx,
        &[
            "op",
            "subject",
            "resource",
            "action",
            "purpose",
            "territory",
            "effect",
        ],
    )
    .await
    {
        Ok(f) => f,
        Err(page) => return page,
    };
    let _editing = console.draft_lock.lock().await;
    let rule = || Rule {
        subject: field(&form, "subject"),
        resource: field(&form, "resource"),
        action: match field(&form, "action") {
            a if a.is_empty() => "read".into(),
            a => a,
        },
        purpose: field(&form, "purpose"),
        territory: match field(&form, "territory") {
            t if t.is_empty() => "*".into(),
            t => t,
        },
        allow: field(&form, "effect") != "deny",
    };
    let refuse = |why: String, typed: Option<Rule>| match view(shared) {
        Ok(d) => page::draft(ctx, &d, None, Some((why, typed))),
        Err(e) => pages::error(ctx, StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    let path = draft_path(shared);
    let op = field(&form, "op");
    let said = match op.as_str() {
        "discard" => {
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return refuse(format!("{}: {e}", msg("bozza non eliminata")), None);
                }
            }
            page::Said::Discarded
        }
        "add" | "remove" => {
            let (text, _) = match draft(shared) {
                Ok(d) => d,
                Err(why) => return refuse(why, None),
            };
            let r = rule();
            let edited = if op == "add" {
                rules::grant(&text, &r)
            } else {
                rules::revoke(&text, &r)
            };
            let edited = match edited {
                Ok(t) => t,
                Err(e) => return refuse(edit_error(&e.to_string()), Some(r)),
            };
            // A draft that would not load is never written: what is saved can be published.
            if let Err(e) = attesta_policy::Policy::load(&edited).await {
                return refuse(
                    format!("{}: {e}", msg("la politica non si caricherebbe")),
                    Some(r),
                );
            }
            let written = path
                .parent()
                .map(std::fs::create_dir_all)
                .transpose()
                .and_then(|_| {
                    attesta_certs::fsutil::write_atomic(
                        &path,
                        edited.as_bytes(),
                        attesta_certs::fsutil::PUBLIC_MODE,
                    )
                });
            if let Err(e) = written {
                return refuse(format!("{}: {e}", msg("bozza non salvata")), Some(r));
            }
            if op == "add" {
                page::Said::Added
            } else {
                page::Said::Removed
            }
        }
        _ => return refuse(msg("operazione sconosciuta").into(), None),
    };
    super::see_other(&format!("/politica/bozza?esito={}", said.code()))
}

/// An editing error in the officer's words.
fn edit_error(e: &str) -> String {
    if e.contains("already in the policy") {
        msg("questa regola c'è già").into()
    } else if e.contains("not in the policy") {
        msg("questa regola non c'è (forse è stata appena tolta)").into()
    } else {
        format!("{}: {e}", msg("regola non valida"))
    }
}

/// `GET /politica/pubblica`: what publishing would change, and the button that does it.
pub(super) fn confirm(shared: &Shared, ctx: &pages::Ctx) -> Resp {
    if !publishes(shared) {
        return not_here(shared, ctx);
    }
    match view(shared) {
        Ok(d) => page::confirm(ctx, &d),
        Err(why) => pages::error(ctx, StatusCode::SERVICE_UNAVAILABLE, &why),
    }
}

/// `POST /politica/pubblica`: the agency's `POST /v1/manifest` with the draft, over the
/// version the officer confirmed.
pub(super) async fn publish(
    shared: &Arc<Shared>,
    console: &Console,
    ctx: &pages::Ctx,
    op: &OperatorIdentity,
    addr: SocketAddr,
    req: Request<impl ReqBody>,
) -> Resp {
    if !publishes(shared) {
        return not_here(shared, ctx);
    }
    let form = match form::posted(req, ctx, &["expected_version"]).await {
        Ok(f) => f,
        Err(page) => return page,
    };
    let _editing = console.draft_lock.lock().await;
    let Ok(expected) = field(&form, "expected_version").parse::<u64>() else {
        return pages::error(ctx, StatusCode::BAD_REQUEST, "versione attesa mancante");
    };
    let (text, exists) = match draft(shared) {
        Ok(d) => d,
        Err(why) => return pages::error(ctx, StatusCode::SERVICE_UNAVAILABLE, &why),
    };
    if !exists {
        return pages::error(
            ctx,
            StatusCode::CONFLICT,
            msg("non c'è una bozza da pubblicare (forse è appena stata pubblicata)"),
        );
    }
    let request = crate::wire::PublishRequest {
        policy: text,
        directory: None,
        revoked: None,
        expected_version: Some(expected),
    };
    let body = serde_json::to_vec(&request).unwrap_or_default();
    let acted = act(
        shared,
        op,
        addr,
        Method::POST,
        crate::wire::path::MANIFEST,
        "application/json",
        body,
    )
    .await;
    if acted.status != StatusCode::OK {
        let why = super::problem_line(&acted.body);
        return match view(shared) {
            Ok(d) => page::draft(
                ctx,
                &d,
                None,
                Some((format!("{}: {why}", msg("pubblicazione rifiutata")), None)),
            ),
            Err(e) => pages::error(ctx, StatusCode::SERVICE_UNAVAILABLE, &e),
        };
    }
    let Ok(answer) = acted.json::<crate::wire::PublishAnswer>() else {
        return pages::error(
            ctx,
            StatusCode::BAD_GATEWAY,
            msg("risposta del nodo non leggibile"),
        );
    };
    // Published: the draft is what is now in force.
    let _ = std::fs::remove_file(draft_path(shared));
    page::published(ctx, &answer, acted.log_index.as_deref())
}

/// `GET /politica/nodi`: the manifest version each node of the directory serves (its
/// `GET /v1/manifest`), asked concurrently within the peers' timeout.
pub(super) async fn nodes(shared: &Arc<Shared>, ctx: &pages::Ctx) -> Resp {
    let Some(active) = shared.manifest.current() else {
        return pages::error(
            ctx,
            StatusCode::SERVICE_UNAVAILABLE,
            msg("il nodo non ha ancora un manifesto in vigore"),
        );
    };
    let mut rows = vec![page::NodeVersion {
        agency: shared.settings.agency.to_string(),
        url: String::new(),
        version: Ok(active.manifest.version),
    }];
    let mut asked = tokio::task::JoinSet::new();
    for (agency, url) in peers::nodes(shared) {
        let shared = shared.clone();
        asked.spawn(async move {
            let call = Call {
                path: crate::wire::path::MANIFEST,
                content_type: "application/json",
                headers: &[],
                body: Bytes::new(),
            };
            let mut cert = None;
            let version = match shared
                .peers
                .get(&shared, &shared.own, &agency, &url, &call, &mut cert)
                .await
            {
                Ok(r) if r.status == StatusCode::OK => r
                    .headers
                    .get("attesta-manifest-version")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| msg("risposta senza versione").to_owned()),
                Ok(r) => Err(super::problem_line(&r.body)),
                Err(f) => Err(f.detail(agency.as_str())),
            };
            page::NodeVersion {
                agency: agency.to_string(),
                url,
                version,
            }
        });
    }
    while let Some(done) = asked.join_next().await {
        if let Ok(row) = done {
            rows.push(row);
        }
    }
    rows[1..].sort_by(|a, b| a.agency.cmp(&b.agency));
    page::nodes(ctx, active.manifest.version, &rows)
}

//! The auditor (`/registro`): every log's latest checkpoint with its cosignatures and their
//! age; a log's entries browsed and filtered; a log verified from the browser (exported and
//! checked as `attesta audit verify` checks a bundle, with its progress on a page); and the
//! citizen access report for a codice fiscale, one line per question, as a printable letter.
//!
//! Every call goes to the other nodes as the agency (whose policy role gives it the audit
//! routes), through [`outbound`], so the agency's own log names the auditor who asked.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use attesta_certs::OperatorIdentity;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use serde::Deserialize;

use super::form::{self, field};
use super::i18n::msg;
use super::outbound::{self, Outbound, Reached};
use super::pages;
use super::pages::auditor::{
    self as page, Browsed, Filter, Logged, Progress, Question, Seen, SeenCheckpoint, Verdict,
};
use super::{Console, ReqBody, Resp};
use crate::audit::note::{Checkpoint, Note};
use crate::server::peers::{self, Target};
use crate::server::Shared;
use crate::wire::path;

/// The purpose an auditor's calls declare (the policy's `audit` grants).
const PURPOSE: &str = "audit";

/// How many entries the browse page reads at a time (one page of the API).
const BROWSE: u64 = crate::wire::AUDIT_PAGE;

/// Largest log the console verifies (it holds the log in memory while it checks it).
const MAX_VERIFY_ENTRIES: u64 = 2_000_000;

/// Most verifications the console remembers (the oldest finished one goes first).
const MAX_JOBS: usize = 16;

/// Every log of the directory: each agency's, on its own node or its host.
fn logs(shared: &Shared) -> Vec<Target> {
    let mut t = peers::directory(shared, |_| true);
    t.sort_by(|a, b| a.agency.cmp(&b.agency));
    t
}

fn call(target: &Target, route: &'static str, query: String) -> Outbound {
    Outbound {
        target: target.clone(),
        method: Method::GET,
        route,
        query,
        body: Bytes::new(),
        purpose: PURPOSE.into(),
        subject: None,
    }
}

fn unavailable(ctx: &pages::Ctx) -> Resp {
    pages::error(
        ctx,
        StatusCode::SERVICE_UNAVAILABLE,
        msg("il registro degli accessi di questo nodo non è disponibile: la risposta non può essere mostrata"),
    )
}

fn read_checkpoint(text: &[u8]) -> Result<SeenCheckpoint, String> {
    let text = std::str::from_utf8(text).map_err(|_| msg("checkpoint non testuale").to_owned())?;
    let note = Note::parse(text).map_err(|e| format!("{}: {e}", msg("checkpoint non valido")))?;
    let cp = Checkpoint::parse(&note.body)
        .map_err(|e| format!("{}: {e}", msg("checkpoint non valido")))?;
    let cosigned = note
        .signatures
        .iter()
        // cosignature/v1: the timestamp (8 bytes) then the Ed25519 signature.
        .filter(|s| s.data.len() == 8 + 64)
        .filter_map(|s| {
            Some((
                s.name.clone(),
                u64::from_be_bytes(s.data[..8].try_into().ok()?),
            ))
        })
        .collect();
    Ok(SeenCheckpoint {
        origin: cp.origin,
        size: cp.size,
        root: STANDARD.encode(cp.root),
        cosigned,
    })
}

/// `GET /registro`.
pub(super) async fn overview(
    shared: &Arc<Shared>,
    ctx: &pages::Ctx,
    op: &OperatorIdentity,
) -> Resp {
    let targets = logs(shared);
    let calls = targets
        .iter()
        .map(|t| call(t, path::AUDIT_CHECKPOINT, String::new()))
        .collect();
    let Ok(reached) = outbound::ask(shared, op, calls).await else {
        return unavailable(ctx);
    };
    let seen: Vec<Seen> = reached
        .iter()
        .map(|r| Seen {
            agency: r.agency.clone(),
            checkpoint: match &r.reply {
                Ok(reply) if reply.status == StatusCode::OK => read_checkpoint(&reply.body),
                Ok(reply) => Err(super::problem_line(&reply.body)),
                Err(why) => Err(why.clone()),
            },
        })
        .collect();
    page::overview(ctx, &seen, now_secs())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[derive(Debug, Deserialize)]
struct Page {
    entries: Vec<Logged>,
}

/// `GET /registro/voci`: the newest entries of one log (or those before `prima`), filtered
/// by day, agency, purpose and decision.
pub(super) async fn entries(
    shared: &Arc<Shared>,
    ctx: &pages::Ctx,
    op: &OperatorIdentity,
    query: Option<&str>,
) -> Resp {
    let targets = logs(shared);
    let names: Vec<String> = targets.iter().map(|t| t.agency.to_string()).collect();
    let q = match crate::wire::query_params(
        query,
        &[
            "registro", "dal", "al", "agenzia", "finalita", "esito", "prima",
        ],
    ) {
        Ok(q) => q,
        Err(p) => return pages::error(ctx, StatusCode::BAD_REQUEST, &p.detail.unwrap_or(p.title)),
    };
    let get = |k: &str| q.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let filter = Filter {
        log: get("registro"),
        from: get("dal"),
        to: get("al"),
        agency: get("agenzia"),
        purpose: get("finalita"),
        decision: get("esito"),
        before: get("prima"),
    };
    let Some(target) = targets.iter().find(|t| t.agency.as_str() == filter.log) else {
        return page::entries(ctx, &names, &filter, None);
    };
    let before = match filter.before.as_str() {
        "" => None,
        b => match b.parse::<u64>() {
            Ok(b) => Some(b),
            Err(_) => {
                return pages::error(
                    ctx,
                    StatusCode::BAD_REQUEST,
                    msg("prima: un indice del registro"),
                )
            }
        },
    };
    // The log's size, then the page of entries that ends there.
    let Ok(reached) = outbound::ask(
        shared,
        op,
        vec![call(target, path::AUDIT_CHECKPOINT, String::new())],
    )
    .await
    else {
        return unavailable(ctx);
    };
    let size = match reached.first().map(|r| &r.reply) {
        Some(Ok(r)) if r.status == StatusCode::OK => match read_checkpoint(&r.body) {
            Ok(c) => c.size,
            Err(why) => return page::entries(ctx, &names, &filter, Some(Err(why))),
        },
        Some(r) => {
            let why = match r {
                Ok(reply) => super::problem_line(&reply.body),
                Err(why) => why.clone(),
            };
            return page::entries(ctx, &names, &filter, Some(Err(why)));
        }
        None => return unavailable(ctx),
    };
    let end = before.map_or(size, |b| b.min(size));
    let start = end.saturating_sub(BROWSE);
    if start == end {
        return page::entries(
            ctx,
            &names,
            &filter,
            Some(Ok(Browsed {
                start,
                end,
                list: Vec::new(),
            })),
        );
    }
    let Ok(reached) = outbound::ask(
        shared,
        op,
        vec![call(
            target,
            path::AUDIT_ENTRIES,
            format!("?start={start}&end={end}"),
        )],
    )
    .await
    else {
        return unavailable(ctx);
    };
    let shown = match reached.first().map(outbound::json::<Page>) {
        Some(Ok(p)) => {
            let mut kept: Vec<Logged> = p.entries.into_iter().filter(|e| filter.keeps(e)).collect();
            kept.reverse();
            Ok(Browsed {
                start,
                end,
                list: kept,
            })
        }
        Some(Err(why)) => Err(why),
        None => return unavailable(ctx),
    };
    page::entries(ctx, &names, &filter, Some(shown))
}

/// A verification under way or done.
pub(super) struct Job {
    id: String,
    /// The operator who started it (only they see it).
    owner: [u8; 32],
    pub agency: String,
    pub state: Mutex<Progress>,
}

/// Whether a new verification may start, given those the console has.
#[derive(Debug, PartialEq, Eq)]
enum Admit {
    Start,
    /// The operator's own, still running.
    Yours(String),
    /// [`MAX_RUNNING`] are running: each reads a whole log of another node.
    Busy,
}

/// Most verifications running at once on a console (each reads a whole log of another
/// node, a page at a time).
const MAX_RUNNING: usize = 2;

fn admit(jobs: &[Arc<Job>], who: &[u8; 32]) -> Admit {
    let running: Vec<&Arc<Job>> = jobs.iter().filter(|j| j.running()).collect();
    if let Some(mine) = running.iter().find(|j| &j.owner == who) {
        return Admit::Yours(mine.id.clone());
    }
    if running.len() >= MAX_RUNNING {
        return Admit::Busy;
    }
    Admit::Start
}

impl Job {
    fn running(&self) -> bool {
        self.state
            .lock()
            .map(|s| s.result.is_none())
            .unwrap_or(false)
    }

    fn set(&self, f: impl FnOnce(&mut Progress)) {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// `POST /registro/verifica`: start verifying a log; then its page (303).
pub(super) async fn start_verify(
    shared: &Arc<Shared>,
    console: &Console,
    ctx: &pages::Ctx,
    op: &Arc<OperatorIdentity>,
    req: Request<impl ReqBody>,
) -> Resp {
    let form = match form::posted(req, ctx, &["registro"]).await {
        Ok(f) => f,
        Err(page) => return page,
    };
    let wanted = field(&form, "registro");
    let Some(target) = logs(shared)
        .into_iter()
        .find(|t| t.agency.as_str() == wanted)
    else {
        return pages::error(
            ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            msg("registro sconosciuto: scegliete un'agenzia dell'elenco"),
        );
    };
    let job = Arc::new(Job {
        id: attesta_certs::random_hex(16),
        owner: op.fingerprint,
        agency: target.agency.to_string(),
        state: Mutex::new(Progress {
            phase: msg("in attesa"),
            done: 0,
            total: 0,
            result: None,
        }),
    });
    {
        let mut jobs = console.jobs.lock().unwrap_or_else(|e| e.into_inner());
        match admit(&jobs, &op.fingerprint) {
            Admit::Start => {}
            // One at a time per person: a second click shows the first one's progress.
            Admit::Yours(id) => {
                return super::see_other(&format!("/registro/verifica?lavoro={id}"))
            }
            Admit::Busy => {
                return pages::error(
                    ctx,
                    StatusCode::TOO_MANY_REQUESTS,
                    msg("altre verifiche sono in corso su questo nodo: riprovate quando finiscono"),
                )
            }
        }
        while jobs.len() >= MAX_JOBS {
            let finished = jobs.iter().position(|j| !j.running()).unwrap_or(0);
            jobs.remove(finished);
        }
        jobs.push(job.clone());
    }
    let (shared, op, running) = (shared.clone(), op.clone(), job.clone());
    tokio::spawn(async move {
        let result = verify(&shared, &op, &target, &running).await;
        running.set(|p| {
            p.phase = msg("finita");
            p.result = Some(result);
        });
    });
    super::see_other(&format!("/registro/verifica?lavoro={}", job.id))
}

/// `GET /registro/verifica?lavoro=ID`: where the verification is, or how it ended.
pub(super) fn verify_page(
    shared: &Shared,
    console: &Console,
    ctx: &pages::Ctx,
    op: &OperatorIdentity,
    query: Option<&str>,
) -> Resp {
    let names: Vec<String> = logs(shared).iter().map(|t| t.agency.to_string()).collect();
    let id = crate::wire::query_params(query, &["lavoro"])
        .ok()
        .and_then(|q| q.get("lavoro").cloned());
    let Some(id) = id else {
        return page::verify(ctx, &names, None);
    };
    let job = console
        .jobs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|j| j.id == id && j.owner == op.fingerprint)
        .cloned();
    match job {
        Some(job) => {
            let state = job.state.lock().unwrap_or_else(|e| e.into_inner()).clone();
            page::verify(ctx, &names, Some((&job.agency, &job.id, &state)))
        }
        None => pages::error(
            ctx,
            StatusCode::NOT_FOUND,
            msg("verifica sconosciuta o scaduta: avviatela di nuovo"),
        ),
    }
}

/// Exports `target`'s whole log as a bundle, page by page, and verifies it against the
/// federation's CA as `attesta audit verify` does.
async fn verify(
    shared: &Arc<Shared>,
    op: &OperatorIdentity,
    target: &Target,
    job: &Job,
) -> Result<Verdict, String> {
    use crate::audit::bundle::{Bundle, Header};
    use crate::audit::merkle;
    let one = |route, query: String| {
        let c = call(target, route, query);
        async move {
            let mut r = outbound::ask(shared, op, vec![c])
                .await
                .map_err(|_| msg("il registro di questo nodo non è disponibile").to_owned())?;
            let r: Reached = r.pop().ok_or(msg("nessuna risposta"))?;
            match r.reply {
                Ok(reply) if reply.status == StatusCode::OK => Ok(reply.body),
                Ok(reply) => Err(super::problem_line(&reply.body)),
                Err(why) => Err(why),
            }
        }
    };
    job.set(|p| p.phase = msg("lettura del checkpoint"));
    let note = String::from_utf8(one(path::AUDIT_CHECKPOINT, String::new()).await?.to_vec())
        .map_err(|_| msg("checkpoint non testuale").to_owned())?;
    let checkpoint = read_checkpoint(note.as_bytes())?;
    let pems = String::from_utf8(one(path::AUDIT_CERTIFICATES, String::new()).await?.to_vec())
        .map_err(|_| msg("certificati non testuali").to_owned())?;
    let mut pems = pem_blocks(&pems).into_iter();
    let signer = pems
        .next()
        .ok_or(msg("il nodo non ha dato il suo certificato di firma"))?;
    let witnesses: Vec<String> = pems.collect();
    let size = checkpoint.size;
    // The log is held in memory while it is checked: a node claiming more than this is
    // verified with `attesta audit export` and `attesta audit verify`, not here.
    if size > MAX_VERIFY_ENTRIES {
        return Err(format!(
            "il registro ha {size} voci, più delle {MAX_VERIFY_ENTRIES} che la console verifica: \
             usate attesta audit export e attesta audit verify"
        ));
    }
    job.set(|p| {
        p.phase = msg("lettura delle voci");
        p.total = size;
    });
    let mut entries = Vec::with_capacity(size.min(1 << 20) as usize);
    let mut start = 0;
    while start < size {
        let end = size.min(start + crate::wire::AUDIT_PAGE);
        let body = one(path::AUDIT_ENTRIES, format!("?start={start}&end={end}")).await?;
        let page: crate::wire::EntriesPage<crate::wire::PageEntry> = serde_json::from_slice(&body)
            .map_err(|_| format!("voci {start}..{end} non leggibili"))?;
        for e in page.entries {
            entries.push(
                STANDARD
                    .decode(e.leaf)
                    .map_err(|_| msg("una voce non è base64").to_owned())?,
            );
        }
        if entries.len() as u64 != end {
            return Err(format!("le voci {start}..{end} sono arrivate incomplete"));
        }
        start = end;
        job.set(|p| p.done = end);
    }
    let bundle = Bundle {
        header: Header {
            agency: target.agency.to_string(),
            origin: checkpoint.origin.clone(),
            exported_at: crate::manifest::now_rfc3339(),
            checkpoint: note,
            signer,
            witnesses,
            range: None,
        },
        leaves: entries.iter().map(|e| merkle::leaf_hash(e)).collect(),
        entries,
    };
    job.set(|p| {
        p.phase = msg("verifica delle voci e delle firme");
        p.done = 0;
    });
    let trust = shared.tls.load().trust.clone();
    // At least one witness when the checkpoint names any: a log nobody cosigned proves less.
    let wanted = usize::from(!checkpoint.cosigned.is_empty());
    let verified = tokio::task::spawn_blocking(move || {
        crate::audit::bundle::verify(&bundle, &trust, wanted, None, |_, _| {})
    })
    .await
    .map_err(|_| msg("verifica interrotta").to_owned())?
    .map_err(|e| e.to_string())?;
    job.set(|p| p.done = size);
    Ok(Verdict {
        origin: verified.checkpoint.origin,
        size: verified.checkpoint.size,
        root: STANDARD.encode(verified.checkpoint.root),
        witnesses: verified.witnesses,
    })
}

/// The PEM certificates in `text`, each with its armour.
fn pem_blocks(text: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    text.split_inclusive(END)
        .filter_map(|b| {
            b.find("-----BEGIN CERTIFICATE-----")
                .map(|at| format!("{}\n", &b[at..]))
        })
        .collect()
}

/// `POST /registro/persona`: every log's entries about the person, one line per question.
pub(super) async fn citizen(
    shared: &Arc<Shared>,
    ctx: &pages::Ctx,
    op: &OperatorIdentity,
    req: Request<impl ReqBody>,
) -> Resp {
    let form = match form::posted(req, ctx, &["subject"]).await {
        Ok(f) => f,
        Err(page) => return page,
    };
    let subject = field(&form, "subject").to_ascii_uppercase();
    let cf = match crate::domain::cf::CodiceFiscale::parse(&subject) {
        Ok(cf) => cf,
        Err(e) => {
            return page::citizen_form(
                ctx,
                &subject,
                Some(&format!("{}: {e}", msg("codice fiscale"))),
            )
        }
    };
    let body = Bytes::from(serde_json::json!({"subject": cf.canonical()}).to_string());
    let calls = logs(shared)
        .into_iter()
        .map(|target| Outbound {
            target,
            method: Method::POST,
            route: path::AUDIT_SUBJECT_REPORT,
            query: String::new(),
            body: body.clone(),
            purpose: PURPOSE.into(),
            subject: Some(cf.clone()),
        })
        .collect();
    let Ok(reached) = outbound::ask(shared, op, calls).await else {
        return unavailable(ctx);
    };
    let mut missing = Vec::new();
    let mut reports = Vec::new();
    for r in &reached {
        match outbound::json::<crate::wire::NodeReport>(r) {
            Ok(rep) => reports.push(rep),
            Err(why) => missing.push((r.agency.clone(), why)),
        }
    }
    let questions = questions(&reports);
    page::citizen_letter(ctx, cf.canonical(), &questions, &missing)
}

/// The entries of every report grouped by query: who asked first, whom, for what, when.
pub fn questions(reports: &[crate::wire::NodeReport]) -> Vec<Question> {
    let mut by: HashMap<&str, Vec<(&str, &crate::wire::Reported)>> = HashMap::new();
    for r in reports {
        for e in &r.entries {
            by.entry(e.query_id.as_str())
                .or_default()
                .push((r.node.as_str(), e));
        }
    }
    let mut out: Vec<Question> = by
        .into_values()
        .map(|group| {
            // Who asked whom in each entry: an outgoing entry is its node asking; an incoming
            // one, the caller asking the node.
            let pairs: Vec<(&str, &str)> = group
                .iter()
                .map(|(node, e)| {
                    if e.direction == "outgoing" {
                        (*node, e.agency.as_str())
                    } else {
                        (e.agency.as_str(), *node)
                    }
                })
                .collect();
            // The one who started it: an asker nobody else asked.
            let asker = pairs
                .iter()
                .map(|p| p.0)
                .find(|a| pairs.iter().all(|p| p.1 != *a || p.0 == *a))
                .or(pairs.first().map(|p| p.0))
                .unwrap_or_default()
                .to_owned();
            let mut asked: BTreeSet<String> = pairs
                .iter()
                .map(|p| p.1.to_owned())
                .filter(|a| *a != asker)
                .collect();
            if asked.is_empty() {
                // It asked its own node only (a check that went no further).
                asked.insert(asker.clone());
            }
            Question {
                time: group
                    .iter()
                    .map(|(_, e)| e.time.clone())
                    .min()
                    .unwrap_or_default(),
                asker,
                asked: asked.into_iter().collect(),
                purpose: group
                    .iter()
                    .map(|(_, e)| e.purpose.as_str())
                    .find(|p| !p.is_empty())
                    .unwrap_or_default()
                    .to_owned(),
                denied: group.iter().any(|(_, e)| e.decision == "deny"),
            }
        })
        .collect();
    out.sort_by(|a, b| a.time.cmp(&b.time));
    out
}

/// `GET /registro/persona`: the form.
pub(super) fn citizen_form(ctx: &pages::Ctx) -> Resp {
    page::citizen_form(ctx, "", None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(owner: u8, done: bool) -> Arc<Job> {
        Arc::new(Job {
            id: format!("job-{owner}-{done}"),
            owner: [owner; 32],
            agency: "questura-pu".into(),
            state: Mutex::new(Progress {
                phase: "",
                done: 0,
                total: 0,
                result: done.then(|| Err("done".into())),
            }),
        })
    }

    #[test]
    fn one_verification_at_a_time_per_person_and_two_per_console() {
        assert_eq!(admit(&[], &[1; 32]), Admit::Start);
        // Finished ones do not count.
        assert_eq!(admit(&[job(1, true), job(2, true)], &[1; 32]), Admit::Start);
        assert_eq!(
            admit(&[job(1, true), job(1, false)], &[1; 32]),
            Admit::Yours("job-1-false".into())
        );
        assert_eq!(admit(&[job(2, false)], &[1; 32]), Admit::Start);
        assert_eq!(
            admit(&[job(2, false), job(3, false)], &[1; 32]),
            Admit::Busy
        );
    }
}

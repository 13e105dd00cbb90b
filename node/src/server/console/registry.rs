//! The registry office (`/anagrafe`): the node's datasets and their last import; a CSV file
//! uploaded, checked line by line and applied only when the officer confirms; the permits of
//! the comune's residents that expire soon, asked of the Questura; a family's composition,
//! where the policy allows it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use attesta_certs::OperatorIdentity;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use tracing::warn;

use super::form::{self, field, Upload};
use super::i18n::msg;
use super::outbound::{self, Outbound};
use super::pages;
use super::pages::registry::{self as page, Asked, ExpiringAnswer, FamilyAnswer};
use super::{act, Console, ReqBody, Resp};
use crate::domain::places::ComuneCode;
use crate::import::Mode;
use crate::server::peers;
use crate::server::Shared;
use crate::store::Dataset;
use attesta_policy::Service;

/// Largest file the console takes; larger imports go through `attesta import`, which streams.
pub(super) const MAX_UPLOAD_BYTES: u64 = 64 << 20;

/// How long a checked upload waits for the officer to apply it.
const STAGED_FOR: Duration = Duration::from_secs(3600);

/// A file checked and waiting to be applied: one per operator, the newest.
pub(super) struct Staged {
    /// What the apply form names (so that an old page cannot apply a newer file).
    id: String,
    upload: Upload,
    ds: Dataset,
    mode: Mode,
    as_of: String,
    at: Instant,
}

/// The datasets this node keeps for its agency, with their page names.
fn datasets(shared: &Shared) -> Vec<(Dataset, &'static str)> {
    [
        (Dataset::Residents, Service::Residence, msg("residenti")),
        (
            Dataset::Permits,
            Service::LegalPresence,
            msg("permessi di soggiorno"),
        ),
    ]
    .into_iter()
    .filter(|(_, service, _)| shared.own.serves(*service))
    .map(|(ds, _, name)| (ds, name))
    .collect()
}

/// What the agency may ask for `resource`, by the policy in force.
fn granted(shared: &Shared, resource: &str) -> Vec<String> {
    super::granted_purposes(shared, resource)
}

/// The comuni the manifest's directory gives this agency.
fn own_comuni(shared: &Shared) -> Vec<String> {
    shared
        .manifest
        .current()
        .map(|a| a.comuni_of(shared.settings.agency.as_str()).to_vec())
        .unwrap_or_default()
}

/// What the page offers besides the datasets.
fn offers(shared: &Shared) -> page::Offers {
    page::Offers {
        datasets: datasets(shared)
            .into_iter()
            .map(|(ds, name)| (ds.name(), name))
            .collect(),
        expiring_purposes: granted(shared, "expiring-permits"),
        family_purposes: granted(shared, "family"),
        comuni: own_comuni(shared),
    }
}

/// `GET /anagrafe`.
pub(super) fn overview(shared: &Shared, ctx: &pages::Ctx) -> Resp {
    show(shared, ctx, None)
}

/// The registry office's page, with what the last action did.
fn show(shared: &Shared, ctx: &pages::Ctx, notice: Option<page::Notice>) -> Resp {
    let mut shown = Vec::new();
    for (ds, name) in datasets(shared) {
        let store = &shared.own.store;
        let info = match store.info(ds) {
            Ok(i) => i,
            Err(e) => {
                warn!(error = %e, "console: dataset info unreadable");
                return pages::error(
                    ctx,
                    StatusCode::SERVICE_UNAVAILABLE,
                    msg("archivio del nodo non leggibile"),
                );
            }
        };
        let last = store
            .last_import(ds)
            .ok()
            .flatten()
            .and_then(|v| serde_json::from_slice::<crate::wire::ImportSummary>(&v).ok());
        shown.push(page::Shown { name, info, last });
    }
    page::overview(ctx, &shown, &offers(shared), notice)
}

/// `POST /anagrafe/carica`: spool the file, check every row, keep it for the apply step.
pub(super) async fn upload(
    shared: &Arc<Shared>,
    console: &Console,
    ctx: &pages::Ctx,
    op: &OperatorIdentity,
    req: Request<impl ReqBody>,
) -> Resp {
    let dir = super::staging_dir(shared);
    let mut form = match form::posted_multipart(
        req,
        ctx,
        &["dataset", "mode", "as_of"],
        "file",
        &dir,
        MAX_UPLOAD_BYTES,
    )
    .await
    {
        Ok(f) => f,
        Err(page) => return page,
    };
    let refuse = |why: &str| show(shared, ctx, Some(page::Notice::Refused(why.to_owned())));
    let Some(file) = form.file.take() else {
        return refuse(msg("scegliete il file CSV da caricare"));
    };
    let Some((ds, _)) = datasets(shared)
        .into_iter()
        .find(|(ds, _)| ds.name() == field(&form.fields, "dataset"))
    else {
        return refuse(msg("archivio sconosciuto o non tenuto da questo nodo"));
    };
    let mode = match field(&form.fields, "mode").as_str() {
        "snapshot" | "" => Mode::Snapshot,
        "delta" => Mode::Delta,
        _ => return refuse(msg("modalità sconosciuta: sostituzione o aggiornamento")),
    };
    let as_of = field(&form.fields, "as_of");
    if !as_of.is_empty() {
        if let Err(e) = crate::wire::bounded_date(&as_of, crate::wire::today()) {
            return refuse(&format!("{}: {e}", msg("data dei dati")));
        }
    }
    let path = file.path.clone();
    let checked = tokio::task::spawn_blocking(move || crate::import::check(&path, ds, mode)).await;
    let checked = match checked {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            return page::checked(
                ctx,
                &file.name,
                ds.name(),
                mode,
                page::Check::Unreadable(e.to_string()),
            )
        }
        Err(_) => {
            return pages::error(
                ctx,
                StatusCode::INTERNAL_SERVER_ERROR,
                msg("controllo interrotto"),
            )
        }
    };
    if checked.rejected > 0 {
        return page::checked(
            ctx,
            &file.name,
            ds.name(),
            mode,
            page::Check::Invalid {
                rows: checked.rows_read,
                rejected: checked.rejected,
                errors: checked.errors,
            },
        );
    }
    let id = attesta_certs::random_hex(16);
    let rows = checked.rows_read;
    let name = file.name.clone();
    let staged = Staged {
        id: id.clone(),
        upload: file,
        ds,
        mode,
        as_of,
        at: Instant::now(),
    };
    // The newest upload replaces the operator's previous one (whose file is then deleted).
    console.stage(op.fingerprint, staged);
    page::checked(ctx, &name, ds.name(), mode, page::Check::Valid { rows, id })
}

impl Console {
    fn stage(&self, who: [u8; 32], staged: Staged) {
        let mut map = self.staged.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| s.at.elapsed() < STAGED_FOR);
        map.insert(who, staged);
    }

    /// The operator's staged upload named `id`, taken out (a second apply finds nothing).
    fn unstage(&self, who: &[u8; 32], id: &str) -> Option<Staged> {
        let mut map = self.staged.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| s.at.elapsed() < STAGED_FOR);
        match map.get(who) {
            Some(s) if s.id == id => map.remove(who),
            _ => None,
        }
    }
}

/// `POST /anagrafe/applica`: the agency's import request, with the checked file.
pub(super) async fn apply(
    shared: &Arc<Shared>,
    console: &Console,
    ctx: &pages::Ctx,
    op: &OperatorIdentity,
    addr: SocketAddr,
    req: Request<impl ReqBody>,
) -> Resp {
    let form = match form::posted(req, ctx, &["id"]).await {
        Ok(f) => f,
        Err(page) => return page,
    };
    let Some(staged) = console.unstage(&op.fingerprint, &field(&form, "id")) else {
        return show(
            shared,
            ctx,
            Some(page::Notice::Refused(
                "nessun file in attesa: è già stato applicato, è scaduto o ne avete caricato \
                 un altro. Caricatelo di nuovo."
                    .into(),
            )),
        );
    };
    let body = match tokio::fs::read(&staged.upload.path).await {
        Ok(b) => b,
        Err(_) => {
            return pages::error(
                ctx,
                StatusCode::INTERNAL_SERVER_ERROR,
                msg("il file caricato non è più leggibile: caricatelo di nuovo"),
            )
        }
    };
    let mut path = format!(
        "{}?mode={}",
        match staged.ds {
            Dataset::Residents => crate::wire::path::IMPORT_RESIDENTS,
            Dataset::Permits => crate::wire::path::IMPORT_PERMITS,
        },
        match staged.mode {
            Mode::Snapshot => "snapshot",
            Mode::Delta => "delta",
        }
    );
    if !staged.as_of.is_empty() {
        path.push_str("&as_of=");
        path.push_str(&staged.as_of);
    }
    let acted = act(shared, op, addr, Method::POST, &path, "text/csv", body).await;
    let notice = match acted.json::<crate::wire::ImportSummary>() {
        Ok(summary) => page::Notice::Applied {
            file: staged.upload.name.clone(),
            summary: Box::new(summary),
            log_index: acted.log_index,
        },
        Err(why) => page::Notice::Refused(why),
    };
    drop(staged);
    show(shared, ctx, Some(notice))
}

/// `POST /anagrafe/scadenze`: the permits of the comune's residents expiring within N days,
/// asked of every Questura as the agency (one outgoing entry each, naming the operator), as a
/// page or as CSV.
pub(super) async fn expiring(
    shared: &Arc<Shared>,
    ctx: &pages::Ctx,
    op: &OperatorIdentity,
    req: Request<impl ReqBody>,
) -> Resp {
    let form = match form::posted(req, ctx, &["days", "purpose", "comune", "format"]).await {
        Ok(f) => f,
        Err(page) => return page,
    };
    let refuse = |why: &str| show(shared, ctx, Some(page::Notice::Refused(why.to_owned())));
    let days = match field(&form, "days").parse::<u16>() {
        Ok(d) if (1..=366).contains(&d) => d,
        _ => return refuse(msg("giorni: un numero da 1 a 366")),
    };
    let purpose = field(&form, "purpose");
    if !granted(shared, "expiring-permits").contains(&purpose) {
        return refuse(msg(
            "finalità non concessa alla vostra agenzia per i permessi in scadenza",
        ));
    }
    let comuni = own_comuni(shared);
    let comune = match field(&form, "comune") {
        c if c.is_empty() && comuni.len() == 1 => comuni[0].clone(),
        c => c,
    };
    let Ok(comune) = ComuneCode::parse(&comune) else {
        return refuse(msg(
            "comune: il codice ISTAT a 6 cifre di un comune della vostra agenzia",
        ));
    };
    let csv = field(&form, "format") == "csv";

    let questure = peers::directory(shared, |e| e.serves.contains(&Service::LegalPresence));
    if questure.is_empty() {
        return refuse(msg("nessuna Questura nell'elenco dei nodi"));
    }
    let calls = questure
        .into_iter()
        .map(|target| Outbound {
            target,
            method: Method::GET,
            route: crate::wire::path::MONITOR_EXPIRING,
            query: format!("?days={days}&purpose={purpose}&comune={comune}"),
            body: Bytes::new(),
            purpose: purpose.clone(),
            subject: None,
        })
        .collect();
    // What was asked is on record before anything is shown.
    let Ok(reached) = outbound::ask(shared, op, calls).await else {
        return pages::error(
            ctx,
            StatusCode::SERVICE_UNAVAILABLE,
            msg("il registro degli accessi non è disponibile: la risposta non può essere mostrata"),
        );
    };
    let asked: Vec<Asked> = reached
        .iter()
        .map(|r| {
            let answer = outbound::json::<ExpiringAnswer>(r).and_then(|a| {
                if a.issuer == r.agency && a.comune == comune.as_str() {
                    Ok(a)
                } else {
                    Err(msg("risposta di un'altra agenzia o di un altro comune").to_owned())
                }
            });
            (r.agency.clone(), answer)
        })
        .collect();
    if csv {
        return expiring_csv(&comune, &asked);
    }
    page::expiring(ctx, &comune, days, &purpose, &asked)
}

/// The list as CSV: one row per permit, the Questura that answered; a value that a
/// spreadsheet would take for a formula is quoted as text.
fn expiring_csv(comune: &ComuneCode, asked: &[Asked]) -> Resp {
    let mut w = csv::Writer::from_writer(Vec::new());
    let cell = |s: &str| -> String {
        if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{s}")
        } else {
            s.to_owned()
        }
    };
    let _ = w.write_record([
        "codice_fiscale",
        "scadenza",
        "rinnovo_in_corso",
        "questura",
        "dati_al",
    ]);
    for (agency, answer) in asked {
        if let Ok(a) = answer {
            for p in &a.permits {
                let _ = w.write_record([
                    cell(&p.subject),
                    cell(&p.valid_until),
                    if p.renewal_pending { "si" } else { "no" }.to_owned(),
                    cell(agency),
                    cell(a.data_as_of.as_deref().unwrap_or("")),
                ]);
            }
        }
    }
    let body = w.into_inner().unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    let name = format!(
        "attachment; filename=\"permessi-in-scadenza-{comune}-{}.csv\"",
        crate::domain::records::format_date(crate::wire::today())
    );
    if let Ok(v) = HeaderValue::from_str(&name) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// `POST /anagrafe/famiglia`: the agency's `GET /v1/family/{cf}`, on the operator's behalf;
/// the policy decides it as it decides any agency's.
pub(super) async fn family(
    shared: &Arc<Shared>,
    ctx: &pages::Ctx,
    op: &OperatorIdentity,
    addr: SocketAddr,
    req: Request<impl ReqBody>,
) -> Resp {
    let form = match form::posted(req, ctx, &["subject", "purpose"]).await {
        Ok(f) => f,
        Err(page) => return page,
    };
    let subject = field(&form, "subject").to_ascii_uppercase();
    let purpose = field(&form, "purpose");
    if !granted(shared, "family").contains(&purpose) {
        return show(
            shared,
            ctx,
            Some(page::Notice::Refused(
                msg("finalità non concessa alla vostra agenzia per lo stato di famiglia").into(),
            )),
        );
    }
    let cf = match crate::domain::cf::CodiceFiscale::parse(&subject) {
        Ok(cf) => cf,
        Err(e) => {
            return show(
                shared,
                ctx,
                Some(page::Notice::Refused(format!(
                    "{}: {e}",
                    msg("codice fiscale")
                ))),
            )
        }
    };
    // The purpose is one the policy names: a plain token, safe in a query string.
    let path = format!(
        "{}?purpose={purpose}",
        crate::wire::path::FAMILY.replace("{cf}", cf.canonical()),
    );
    let acted = act(
        shared,
        op,
        addr,
        Method::GET,
        &path,
        "application/json",
        Vec::new(),
    )
    .await;
    let answer = acted.json::<FamilyAnswer>();
    let log_index = acted.log_index;
    show(
        shared,
        ctx,
        Some(page::Notice::Family { answer, log_index }),
    )
}

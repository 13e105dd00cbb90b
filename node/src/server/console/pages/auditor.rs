//! The auditor's pages (`/registro`).

use http::StatusCode;
use maud::{html, Markup};

use super::super::i18n::{msg, Lang};
use super::{layout, purpose_label, respond, Ctx};
use crate::server::console::Resp;
use serde::Deserialize;

/// How long ago `then` was (Unix seconds), in words.
fn age(lang: Lang, now: u64, then: u64) -> String {
    let s = now.saturating_sub(then);
    let (n, unit) = match s {
        0..=59 => (s, "s"),
        60..=3599 => (s / 60, "min"),
        3600..=86_399 => (s / 3600, "h"),
        _ => (s / 86_400, lang.t(msg("giorni"))),
    };
    match lang {
        Lang::It => format!("{n} {unit} fa"),
        Lang::En => format!("{n} {unit} ago"),
    }
}

/// `2026-12-01T20:32:40.208Z` as `01/12/2026 20:32` (UTC, as the logs keep it).
fn readable_time(rfc3339: &str) -> String {
    match (
        rfc3339.get(0..4),
        rfc3339.get(5..7),
        rfc3339.get(8..10),
        rfc3339.get(11..16),
    ) {
        (Some(y), Some(m), Some(d), Some(hm)) => format!("{d}/{m}/{y} {hm}"),
        _ => rfc3339.to_owned(),
    }
}

fn enc(s: &str) -> String {
    crate::wire::percent_encode(s)
}

fn secs_rfc3339(t: u64) -> String {
    crate::audit::entry::format_ms(t.saturating_mul(1000))
}

fn log_select(names: &[String], chosen: &str, id: &str) -> Markup {
    html! {
        select id=(id) name="registro" required {
            @for n in names { option value=(n) selected[n == chosen] { (n) } }
        }
    }
}

/// `/registro`: each log's latest checkpoint, its size and its cosignatures with their age.
pub fn overview(ctx: &Ctx, seen: &[Seen], now: u64) -> Resp {
    respond(
        StatusCode::OK,
        layout(
            ctx.lang,
            Some(ctx),
            msg("Registro degli accessi"),
            html! {
                p {
                    (ctx.t("Il checkpoint più recente del registro di ogni agenzia, come il suo nodo lo serve ora. "))
                    (ctx.t("Le cosignature sono quelle che il checkpoint riporta: «Verifica un registro» le controlla con le chiavi dei testimoni."))
                }
                table {
                    caption { (ctx.t("Checkpoint dei registri")) }
                    thead { tr { th scope="col" { (ctx.t("Agenzia")) } th scope="col" { (ctx.t("Voci")) } th scope="col" { (ctx.t("Radice")) } th scope="col" { (ctx.t("Cosignature")) } } }
                    tbody {
                        @for s in seen {
                            tr {
                                td { (s.agency) }
                                @match &s.checkpoint {
                                    Ok(c) => {
                                        td { (c.size) }
                                        td { code { (c.root.get(..16).unwrap_or(&c.root)) "…" } }
                                        td {
                                            @if c.cosigned.is_empty() { strong { (ctx.t("nessuna")) } }
                                            @else {
                                                @let newest = c.cosigned.iter().map(|x| x.1).max().unwrap_or(0);
                                                details {
                                                    summary {
                                                        (c.cosigned.len()) (ctx.t(", la più recente "))
                                                        time datetime=(secs_rfc3339(newest)) { (age(ctx.lang, now, newest)) }
                                                    }
                                                    ul {
                                                        @for (w, t) in &c.cosigned {
                                                            li { (w) ", " time datetime=(secs_rfc3339(*t)) { (age(ctx.lang, now, *t)) } }
                                                        }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                    Err(why) => { td colspan="3" { strong { (ctx.t("non disponibile")) } ": " (ctx.line(why)) } }
                                }
                            }
                        }
                    }
                }
                ul {
                    li { a href="/registro/voci" { (ctx.t("Consulta le voci di un registro")) } }
                    li { a href="/registro/verifica" { (ctx.t("Verifica un registro")) } }
                    li { a href="/registro/persona" { (ctx.t("Resoconto degli accessi per un cittadino")) } }
                }
            },
        ),
    )
}

/// `/registro/voci`: the filters, and the entries that pass them.
pub fn entries(
    ctx: &Ctx,
    names: &[String],
    f: &Filter,
    shown: Option<Result<Browsed, String>>,
) -> Resp {
    let status = match &shown {
        Some(Err(_)) => StatusCode::BAD_GATEWAY,
        _ => StatusCode::OK,
    };
    respond(
        status,
        layout(
            ctx.lang,
            Some(ctx),
            msg("Voci del registro"),
            html! {
                form method="get" action="/registro/voci" {
                    div class="field" { label for="registro" { (ctx.t("Registro di")) } (log_select(names, &f.log, "registro")) }
                    div class="field" { label for="dal" { (ctx.t("Dal giorno (facoltativo)")) } input id="dal" name="dal" type="date" value=(f.from); }
                    div class="field" { label for="al" { (ctx.t("Al giorno (facoltativo)")) } input id="al" name="al" type="date" value=(f.to); }
                    div class="field" { label for="agenzia" { (ctx.t("Agenzia dall'altra parte (facoltativa)")) } input id="agenzia" name="agenzia" type="text" value=(f.agency); }
                    div class="field" { label for="finalita" { (ctx.t("Finalità (facoltativa)")) } input id="finalita" name="finalita" type="text" value=(f.purpose); }
                    div class="field" {
                        label for="esito" { (ctx.t("Decisione")) }
                        select id="esito" name="esito" {
                            option value="" selected[f.decision.is_empty()] { (ctx.t("qualsiasi")) }
                            option value="allow" selected[f.decision == "allow"] { (ctx.t("consentita")) }
                            option value="deny" selected[f.decision == "deny"] { (ctx.t("negata")) }
                            option value="none" selected[f.decision == "none"] { (ctx.t("nessuna (chiamate in uscita, rotte aperte)")) }
                        }
                    }
                    button type="submit" { (ctx.t("Mostra le voci")) }
                }
                @match shown {
                    None => {}
                    Some(Err(why)) => { div class="result failed" role="alert" { h2 { (ctx.t("Registro non disponibile")) } p { (ctx.line(why)) } } }
                    Some(Ok(Browsed { start, end, list })) => {
                        p role="status" {
                            (ctx.t("Voci da ")) (start) (ctx.t(" a ")) (end.saturating_sub(1)) (ctx.t(" del registro di ")) (f.log)
                            (ctx.t(" (quelle che l'ultimo checkpoint firmato copre): ")) (list.len()) (ctx.t(" corrispondono ai filtri."))
                        }
                        @if !list.is_empty() {
                            table {
                                caption { (ctx.t("Voci, le più recenti prima")) }
                                thead { tr {
                                    th scope="col" { (ctx.t("Voce")) } th scope="col" { (ctx.t("Ora (UTC)")) } th scope="col" { (ctx.t("Verso")) }
                                    th scope="col" { (ctx.t("Agenzia")) } th scope="col" { (ctx.t("Richiesta")) } th scope="col" { (ctx.t("Finalità")) }
                                    th scope="col" { (ctx.t("Decisione")) } th scope="col" { (ctx.t("Esito")) } th scope="col" { (ctx.t("Operatore")) } th scope="col" { (ctx.t("Domanda")) }
                                } }
                                tbody {
                                    @for e in &list {
                                        tr {
                                            td { (e.index) } td { (e.time) }
                                            td { @if e.direction == "outgoing" { (ctx.t("in uscita")) } @else if e.direction == "incoming" { (ctx.t("in entrata")) } @else { (e.direction) } }
                                            td { (e.peer_agency) } td { code { (e.route) } } td { (e.purpose) }
                                            td { @match e.decision.as_str() { "allow" => { (ctx.t("consentita")) } "deny" => { strong { (ctx.t("negata")) } } _ => { "—" } } }
                                            td { (e.status) }
                                            td { (e.operator.as_deref().unwrap_or("—")) }
                                            td { code class="hash" { (e.query_id) } }
                                        }
                                    }
                                }
                            }
                        }
                        @if start > 0 {
                            p {
                                a href=(format!(
                                    "/registro/voci?registro={}&dal={}&al={}&agenzia={}&finalita={}&esito={}&prima={start}",
                                    enc(&f.log), enc(&f.from), enc(&f.to), enc(&f.agency), enc(&f.purpose), enc(&f.decision)
                                )) { (ctx.t("Voci precedenti")) }
                            }
                        }
                    }
                }
            },
        ),
    )
}

/// `/registro/verifica`: the form, or a verification's progress and result.
pub fn verify(ctx: &Ctx, names: &[String], job: Option<(&str, &str, &Progress)>) -> Resp {
    respond(
        StatusCode::OK,
        layout(
            ctx.lang,
            Some(ctx),
            msg("Verifica un registro"),
            html! {
                @if let Some((agency, id, p)) = job {
                    @match &p.result {
                        None => {
                            section role="status" aria-labelledby="corso" {
                                h2 id="corso" { (ctx.t("Verifica del registro di ")) (agency) (ctx.t(" in corso")) }
                                p { (ctx.t("Fase: ")) (ctx.t(p.phase)) "." }
                                @if p.total > 0 {
                                    p {
                                        label for="avanzamento" { (ctx.t("Voci lette: ")) (p.done) (ctx.t(" di ")) (p.total) }
                                        " "
                                        progress id="avanzamento" max=(p.total) value=(p.done) { (p.done) (ctx.t(" di ")) (p.total) }
                                    }
                                }
                                p { a href=(format!("/registro/verifica?lavoro={id}")) { (ctx.t("Aggiorna lo stato")) } }
                            }
                        }
                        Some(Ok(v)) => {
                            section class="result" role="status" aria-labelledby="esito" {
                                h2 id="esito" { (ctx.t("Registro di ")) (agency) (ctx.t(" verificato")) }
                                p {
                                    (ctx.t("Tutte le ")) (v.size) (ctx.t(" voci hanno l'impronta che il checkpoint firmato impegna; "))
                                    (ctx.t("la firma del nodo è valida per la federazione."))
                                }
                                dl {
                                    dt { (ctx.t("Origine")) } dd { code { (v.origin) } }
                                    dt { (ctx.t("Voci")) } dd { (v.size) }
                                    dt { (ctx.t("Radice")) } dd { code class="hash" { (v.root) } }
                                    dt { (ctx.t("Testimoni verificati")) }
                                    dd { @if v.witnesses.is_empty() { (ctx.t("nessuno")) } @else { (v.witnesses.join(", ")) } }
                                }
                            }
                        }
                        Some(Err(why)) => {
                            div class="result failed" role="alert" {
                                h2 { (ctx.t("Il registro di ")) (agency) (ctx.t(" non si verifica")) }
                                p { (ctx.line(why)) }
                            }
                        }
                    }
                }
                h2 { (ctx.t("Verifica")) }
                form method="post" action="/registro/verifica" {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    div class="field" { label for="registro" { (ctx.t("Registro di")) } (log_select(names, job.map(|j| j.0).unwrap_or(""), "registro")) }
                    p class="hint" {
                        (ctx.t("Il nodo scarica tutte le voci del registro e le controlla come ")) code { "attesta audit verify" }
                        (ctx.t(": l'impronta di ogni voce, l'albero di Merkle, la firma del checkpoint, le cosignature dei testimoni."))
                    }
                    button type="submit" { (ctx.t("Verifica")) }
                }
            },
        ),
    )
}

/// `/registro/persona`: the codice fiscale to report on.
pub fn citizen_form(ctx: &Ctx, typed: &str, error: Option<&str>) -> Resp {
    respond(
        if error.is_some() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        },
        layout(
            ctx.lang,
            Some(ctx),
            msg("Resoconto degli accessi"),
            html! {
                @if let Some(e) = error { div class="result failed" role="alert" { p { (ctx.line(e)) } } }
                p { (ctx.t("Chi ha chiesto dei dati di una persona, quando e per quale finalità (art. 15 del Regolamento (UE) 2016/679), dai registri di ogni nodo della federazione.")) }
                form method="post" action="/registro/persona" {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    div class="field" {
                        label for="subject" { (ctx.t("Codice fiscale")) }
                        input id="subject" name="subject" type="text" required autocomplete="off" spellcheck="false" maxlength="16" value=(typed);
                    }
                    button type="submit" { (ctx.t("Prepara il resoconto")) }
                }
            },
        ),
    )
}

/// The report as a letter to the person: one line per question, printable.
pub fn citizen_letter(
    ctx: &Ctx,
    subject: &str,
    questions: &[Question],
    missing: &[(String, String)],
) -> Resp {
    let today = crate::domain::records::format_date(crate::wire::today());
    respond(
        StatusCode::OK,
        layout(
            ctx.lang,
            Some(ctx),
            msg("Resoconto degli accessi"),
            html! {
                article class="letter" aria-labelledby="oggetto" {
                    p { (ctx.agency) ", " (today) }
                    h2 id="oggetto" { (ctx.t("Oggetto: accessi ai dati della persona con codice fiscale ")) (subject) }
                    p { (ctx.t("Risposta ai sensi dell'art. 15 del Regolamento (UE) 2016/679 (diritto di accesso).")) }
                    @if questions.is_empty() {
                        p { (ctx.t("Nei registri degli accessi dei nodi della federazione non risulta alcuna richiesta che La riguardi.")) }
                    } @else {
                        p { (ctx.t("Nei registri degli accessi dei nodi della federazione risultano le richieste che La riguardano qui elencate (")) (questions.len()) (ctx.t(" in tutto).")) }
                        table {
                            caption { (ctx.t("Richieste sui Suoi dati, in ordine di tempo")) }
                            thead { tr { th scope="col" { (ctx.t("Data e ora (UTC)")) } th scope="col" { (ctx.t("Chi ha chiesto")) } th scope="col" { (ctx.t("A chi")) } th scope="col" { (ctx.t("Per quale finalità")) } th scope="col" { (ctx.t("Esito")) } } }
                            tbody {
                                @for q in questions {
                                    tr {
                                        td { time datetime=(q.time) { (readable_time(&q.time)) } } td { (q.asker) } td { (q.asked.join(", ")) }
                                        td { (purpose_label(ctx.lang, &q.purpose)) }
                                        td { @if q.denied { (ctx.t("negata")) } @else { (ctx.t("consentita")) } }
                                    }
                                }
                            }
                        }
                    }
                    @if !missing.is_empty() {
                        p class="warn" {
                            (ctx.t("Il resoconto può essere incompleto: non hanno risposto "))
                            @for (i, (a, why)) in missing.iter().enumerate() { @if i > 0 { "; " } (a) " (" (ctx.line(why)) ")" }
                            "."
                        }
                    }
                    p { (ctx.t("Il revisore: ")) (ctx.operator) ", " (ctx.agency) "." }
                }
                form method="post" action="/registro/persona" {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    div class="field" {
                        label for="subject" { (ctx.t("Un altro codice fiscale")) }
                        input id="subject" name="subject" type="text" required autocomplete="off" spellcheck="false" maxlength="16";
                    }
                    button type="submit" { (ctx.t("Prepara il resoconto")) }
                }
            },
        ),
    )
}

/// A checkpoint as the overview shows it.
pub struct Seen {
    pub agency: String,
    pub checkpoint: Result<SeenCheckpoint, String>,
}

pub struct SeenCheckpoint {
    pub origin: String,
    pub size: u64,
    pub root: String,
    /// Cosignatures: the witness's name and when it cosigned (Unix seconds).
    pub cosigned: Vec<(String, u64)>,
}

/// An entry as `GET /v1/audit/entries` gives it, with what the browse page shows.
#[derive(Debug, Deserialize)]
pub struct Logged {
    pub index: u64,
    pub time: String,
    pub query_id: String,
    pub direction: String,
    pub peer_agency: String,
    pub route: String,
    pub purpose: String,
    pub decision: String,
    pub status: u16,
    #[serde(default)]
    pub operator: Option<String>,
}

/// The entries `start..end` of a log read for the browse page, and those the filters keep
/// (newest first).
pub struct Browsed {
    pub start: u64,
    pub end: u64,
    pub list: Vec<Logged>,
}

/// Where a verification is.
#[derive(Clone)]
pub struct Progress {
    pub phase: &'static str,
    pub done: u64,
    pub total: u64,
    pub result: Option<Result<Verdict, String>>,
}

/// A verified log.
#[derive(Clone)]
pub struct Verdict {
    pub origin: String,
    pub size: u64,
    pub root: String,
    pub witnesses: Vec<String>,
}

/// One question about the person, across the logs that recorded it.
pub struct Question {
    pub time: String,
    pub asker: String,
    pub asked: Vec<String>,
    pub purpose: String,
    pub denied: bool,
}

/// The browse page's filters, as typed.
#[derive(Default)]
pub struct Filter {
    pub log: String,
    pub from: String,
    pub to: String,
    pub agency: String,
    pub purpose: String,
    pub decision: String,
    /// Read the entries below this index (the page before); empty: the newest.
    pub before: String,
}

impl Filter {
    pub fn keeps(&self, e: &Logged) -> bool {
        // Times are RFC 3339 in UTC: a day compares as a prefix.
        let day = e.time.get(..10).unwrap_or_default();
        (self.from.is_empty() || day >= self.from.as_str())
            && (self.to.is_empty() || day <= self.to.as_str())
            && (self.agency.is_empty() || e.peer_agency == self.agency)
            && (self.purpose.is_empty() || e.purpose == self.purpose)
            && (self.decision.is_empty() || e.decision == self.decision)
    }
}

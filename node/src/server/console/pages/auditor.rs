//! The auditor's pages (`/registro`).

use http::StatusCode;
use maud::{html, Markup};

use super::{layout, purpose_label, respond, Ctx};
use crate::server::console::Resp;
use serde::Deserialize;

/// How long ago `then` was (Unix seconds), in words.
fn age(now: u64, then: u64) -> String {
    let s = now.saturating_sub(then);
    match s {
        0..=59 => format!("{s} s fa"),
        60..=3599 => format!("{} min fa", s / 60),
        3600..=86_399 => format!("{} h fa", s / 3600),
        _ => format!("{} giorni fa", s / 86_400),
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
            Some(ctx),
            "Registro degli accessi",
            html! {
                p {
                    "Il checkpoint più recente del registro di ogni agenzia, come il suo nodo lo serve ora. "
                    "Le cosignature sono quelle che il checkpoint riporta: «Verifica un registro» le controlla con le chiavi dei testimoni."
                }
                table {
                    caption { "Checkpoint dei registri" }
                    thead { tr { th scope="col" { "Agenzia" } th scope="col" { "Voci" } th scope="col" { "Radice" } th scope="col" { "Cosignature" } } }
                    tbody {
                        @for s in seen {
                            tr {
                                td { (s.agency) }
                                @match &s.checkpoint {
                                    Ok(c) => {
                                        td { (c.size) }
                                        td { code { (c.root.get(..16).unwrap_or(&c.root)) "…" } }
                                        td {
                                            @if c.cosigned.is_empty() { strong { "nessuna" } }
                                            @else {
                                                @let newest = c.cosigned.iter().map(|x| x.1).max().unwrap_or(0);
                                                details {
                                                    summary {
                                                        (c.cosigned.len()) ", la più recente "
                                                        time datetime=(secs_rfc3339(newest)) { (age(now, newest)) }
                                                    }
                                                    ul {
                                                        @for (w, t) in &c.cosigned {
                                                            li { (w) ", " time datetime=(secs_rfc3339(*t)) { (age(now, *t)) } }
                                                        }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                    Err(why) => { td colspan="3" { strong { "non disponibile" } ": " (why) } }
                                }
                            }
                        }
                    }
                }
                ul {
                    li { a href="/registro/voci" { "Consulta le voci di un registro" } }
                    li { a href="/registro/verifica" { "Verifica un registro" } }
                    li { a href="/registro/persona" { "Resoconto degli accessi per un cittadino" } }
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
            Some(ctx),
            "Voci del registro",
            html! {
                form method="get" action="/registro/voci" {
                    div class="field" { label for="registro" { "Registro di" } (log_select(names, &f.log, "registro")) }
                    div class="field" { label for="dal" { "Dal giorno (facoltativo)" } input id="dal" name="dal" type="date" value=(f.from); }
                    div class="field" { label for="al" { "Al giorno (facoltativo)" } input id="al" name="al" type="date" value=(f.to); }
                    div class="field" { label for="agenzia" { "Agenzia dall'altra parte (facoltativa)" } input id="agenzia" name="agenzia" type="text" value=(f.agency); }
                    div class="field" { label for="finalita" { "Finalità (facoltativa)" } input id="finalita" name="finalita" type="text" value=(f.purpose); }
                    div class="field" {
                        label for="esito" { "Decisione" }
                        select id="esito" name="esito" {
                            option value="" selected[f.decision.is_empty()] { "qualsiasi" }
                            option value="allow" selected[f.decision == "allow"] { "consentita" }
                            option value="deny" selected[f.decision == "deny"] { "negata" }
                            option value="none" selected[f.decision == "none"] { "nessuna (chiamate in uscita, rotte aperte)" }
                        }
                    }
                    button type="submit" { "Mostra le voci" }
                }
                @match shown {
                    None => {}
                    Some(Err(why)) => { div class="result failed" role="alert" { h2 { "Registro non disponibile" } p { (why) } } }
                    Some(Ok(Browsed { start, end, list })) => {
                        p role="status" {
                            "Voci da " (start) " a " (end.saturating_sub(1)) " del registro di " (f.log)
                            " (quelle che l'ultimo checkpoint firmato copre): " (list.len()) " corrispondono ai filtri."
                        }
                        @if !list.is_empty() {
                            table {
                                caption { "Voci, le più recenti prima" }
                                thead { tr {
                                    th scope="col" { "Voce" } th scope="col" { "Ora (UTC)" } th scope="col" { "Verso" }
                                    th scope="col" { "Agenzia" } th scope="col" { "Richiesta" } th scope="col" { "Finalità" }
                                    th scope="col" { "Decisione" } th scope="col" { "Esito" } th scope="col" { "Operatore" } th scope="col" { "Domanda" }
                                } }
                                tbody {
                                    @for e in &list {
                                        tr {
                                            td { (e.index) } td { (e.time) }
                                            td { @if e.direction == "outgoing" { "in uscita" } @else if e.direction == "incoming" { "in entrata" } @else { (e.direction) } }
                                            td { (e.peer_agency) } td { code { (e.route) } } td { (e.purpose) }
                                            td { @match e.decision.as_str() { "allow" => { "consentita" } "deny" => { strong { "negata" } } _ => { "—" } } }
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
                                )) { "Voci precedenti" }
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
            Some(ctx),
            "Verifica un registro",
            html! {
                @if let Some((agency, id, p)) = job {
                    @match &p.result {
                        None => {
                            section role="status" aria-labelledby="corso" {
                                h2 id="corso" { "Verifica del registro di " (agency) " in corso" }
                                p { "Fase: " (p.phase) "." }
                                @if p.total > 0 {
                                    p {
                                        label for="avanzamento" { "Voci lette: " (p.done) " di " (p.total) }
                                        " "
                                        progress id="avanzamento" max=(p.total) value=(p.done) { (p.done) " di " (p.total) }
                                    }
                                }
                                p { a href=(format!("/registro/verifica?lavoro={id}")) { "Aggiorna lo stato" } }
                            }
                        }
                        Some(Ok(v)) => {
                            section class="result" role="status" aria-labelledby="esito" {
                                h2 id="esito" { "Registro di " (agency) " verificato" }
                                p {
                                    "Tutte le " (v.size) " voci hanno l'impronta che il checkpoint firmato impegna; "
                                    "la firma del nodo è valida per la federazione."
                                }
                                dl {
                                    dt { "Origine" } dd { code { (v.origin) } }
                                    dt { "Voci" } dd { (v.size) }
                                    dt { "Radice" } dd { code class="hash" { (v.root) } }
                                    dt { "Testimoni verificati" }
                                    dd { @if v.witnesses.is_empty() { "nessuno" } @else { (v.witnesses.join(", ")) } }
                                }
                            }
                        }
                        Some(Err(why)) => {
                            div class="result failed" role="alert" {
                                h2 { "Il registro di " (agency) " non si verifica" }
                                p { (why) }
                            }
                        }
                    }
                }
                h2 { "Verifica" }
                form method="post" action="/registro/verifica" {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    div class="field" { label for="registro" { "Registro di" } (log_select(names, job.map(|j| j.0).unwrap_or(""), "registro")) }
                    p class="hint" {
                        "Il nodo scarica tutte le voci del registro e le controlla come " code { "attesta audit verify" }
                        ": l'impronta di ogni voce, l'albero di Merkle, la firma del checkpoint, le cosignature dei testimoni."
                    }
                    button type="submit" { "Verifica" }
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
            Some(ctx),
            "Resoconto degli accessi",
            html! {
                @if let Some(e) = error { div class="result failed" role="alert" { p { (e) } } }
                p { "Chi ha chiesto dei dati di una persona, quando e per quale finalità (art. 15 del Regolamento (UE) 2016/679), dai registri di ogni nodo della federazione." }
                form method="post" action="/registro/persona" {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    div class="field" {
                        label for="subject" { "Codice fiscale" }
                        input id="subject" name="subject" type="text" required autocomplete="off" spellcheck="false" maxlength="16" value=(typed);
                    }
                    button type="submit" { "Prepara il resoconto" }
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
            Some(ctx),
            "Resoconto degli accessi",
            html! {
                article class="letter" aria-labelledby="oggetto" {
                    p { (ctx.agency) ", " (today) }
                    h2 id="oggetto" { "Oggetto: accessi ai dati della persona con codice fiscale " (subject) }
                    p { "Risposta ai sensi dell'art. 15 del Regolamento (UE) 2016/679 (diritto di accesso)." }
                    @if questions.is_empty() {
                        p { "Nei registri degli accessi dei nodi della federazione non risulta alcuna richiesta che La riguardi." }
                    } @else {
                        p { "Nei registri degli accessi dei nodi della federazione risultano le richieste che La riguardano qui elencate (" (questions.len()) " in tutto)." }
                        table {
                            caption { "Richieste sui Suoi dati, in ordine di tempo" }
                            thead { tr { th scope="col" { "Data e ora (UTC)" } th scope="col" { "Chi ha chiesto" } th scope="col" { "A chi" } th scope="col" { "Per quale finalità" } th scope="col" { "Esito" } } }
                            tbody {
                                @for q in questions {
                                    tr {
                                        td { time datetime=(q.time) { (readable_time(&q.time)) } } td { (q.asker) } td { (q.asked.join(", ")) }
                                        td { (purpose_label(&q.purpose)) }
                                        td { @if q.denied { "negata" } @else { "consentita" } }
                                    }
                                }
                            }
                        }
                    }
                    @if !missing.is_empty() {
                        p class="warn" {
                            "Il resoconto può essere incompleto: non hanno risposto "
                            @for (i, (a, why)) in missing.iter().enumerate() { @if i > 0 { "; " } (a) " (" (why) ")" }
                            "."
                        }
                    }
                    p { "Il revisore: " (ctx.operator) ", " (ctx.agency) "." }
                }
                form method="post" action="/registro/persona" {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    div class="field" {
                        label for="subject" { "Un altro codice fiscale" }
                        input id="subject" name="subject" type="text" required autocomplete="off" spellcheck="false" maxlength="16";
                    }
                    button type="submit" { "Prepara il resoconto" }
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

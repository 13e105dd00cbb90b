//! The registry office's pages (`/anagrafe`).

use http::StatusCode;
use maud::{html, Markup};

use super::super::i18n::{msg, Lang};
use super::{layout, purpose_label, respond, Ctx};
use crate::domain::places::{comune_label, ComuneCode};
use crate::import::Mode;
use crate::server::console::Resp;
use crate::store::DatasetInfo;
use crate::wire::{ImportSummary, RowError};
use serde::Deserialize;

/// A dataset as the page shows it.
pub struct Shown {
    pub name: &'static str,
    pub info: DatasetInfo,
    pub last: Option<ImportSummary>,
}

/// What the page offers the officer: the datasets to upload to (code, name), the purposes
/// the policy gives the agency for the expiring permits and for family composition, and the
/// comuni of its registry.
pub struct Offers {
    pub datasets: Vec<(&'static str, &'static str)>,
    pub expiring_purposes: Vec<String>,
    pub family_purposes: Vec<String>,
    pub comuni: Vec<String>,
}

/// What the last action did, shown above the page.
pub enum Notice {
    Refused(String),
    Applied {
        file: String,
        summary: Box<ImportSummary>,
        log_index: Option<String>,
    },
    Family {
        answer: Result<FamilyAnswer, String>,
        log_index: Option<String>,
    },
}

/// How a checked upload stands.
pub enum Check {
    /// Not readable as this dataset at all (header, encoding).
    Unreadable(String),
    Invalid {
        rows: u64,
        rejected: u64,
        errors: Vec<RowError>,
    },
    /// Every row valid: the form that applies it names `id`.
    Valid { rows: u64, id: String },
}

fn dataset_label(lang: Lang, code: &str) -> &str {
    lang.t(match code {
        "residents" => msg("residenti"),
        "permits" => msg("permessi di soggiorno"),
        other => other,
    })
}

fn mode_label(lang: Lang, mode: &str) -> &'static str {
    lang.t(match mode {
        "delta" => msg("aggiornamento (righe aggiunte, modificate, cancellate)"),
        _ => msg("sostituzione dell'intero archivio"),
    })
}

fn when(lang: Lang, t: Option<i64>) -> String {
    t.map(|s| crate::audit::entry::format_ms(s.max(0) as u64 * 1000))
        .unwrap_or_else(|| lang.t(msg("mai")).into())
}

fn upload_form(ctx: &Ctx, offers: &Offers) -> Markup {
    html! {
        form method="post" action="/anagrafe/carica" enctype="multipart/form-data" {
            // First: the node reads nothing of a form past a part that is not the token.
            input type="hidden" name="csrf" value=(ctx.csrf);
            div class="field" {
                label for="dataset" { (ctx.t("Archivio")) }
                select id="dataset" name="dataset" {
                    @for (code, name) in &offers.datasets { option value=(code) { (ctx.t(name)) } }
                }
            }
            fieldset {
                legend { (ctx.t("Che cosa fa il file")) }
                div {
                    input type="radio" id="mode-snapshot" name="mode" value="snapshot" checked;
                    label for="mode-snapshot" { (ctx.t("Sostituisce l'intero archivio")) }
                }
                div {
                    input type="radio" id="mode-delta" name="mode" value="delta";
                    label for="mode-delta" { (ctx.t("Aggiorna alcune righe (prima colonna ")) code { "op" } (ctx.t(": upsert o delete)")) }
                }
            }
            div class="field" {
                label for="as_of" { (ctx.t("I dati sono aggiornati al (facoltativo)")) }
                input id="as_of" name="as_of" type="date";
            }
            div class="field" {
                label for="file" { (ctx.t("File CSV")) }
                input id="file" name="file" type="file" accept=".csv,text/csv" required aria-describedby="file-hint";
                p id="file-hint" class="hint" {
                    (ctx.t("Le colonne sono descritte in docs/DATA_FORMATS.md. Il file viene prima controllato riga per riga: "))
                    (ctx.t("nulla cambia finché non confermate."))
                }
            }
            button type="submit" { (ctx.t("Controlla il file")) }
        }
    }
}

/// `/anagrafe`: the datasets, the last import of each, and the office's forms.
pub fn overview(ctx: &Ctx, shown: &[Shown], offers: &Offers, notice: Option<Notice>) -> Resp {
    let (status, notice) = match notice {
        None => (StatusCode::OK, html! {}),
        Some(Notice::Refused(why)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            html! { div class="result failed" role="alert" { h2 { (ctx.t("Non eseguito")) } p { (ctx.line(why)) } } },
        ),
        Some(Notice::Applied {
            file,
            summary,
            log_index,
        }) => (
            StatusCode::OK,
            html! {
                section class="result" role="status" aria-labelledby="applicato" {
                    h2 id="applicato" { (ctx.t("Importazione applicata")) }
                    p {
                        (ctx.t("Il file ")) strong { (file) } (ctx.t(" è stato importato in ")) (dataset_label(ctx.lang, &summary.dataset)) ". "
                        (ctx.t("Righe applicate: ")) (summary.applied) (ctx.t("; righe nell'archivio: ")) (summary.dataset_rows) "."
                    }
                    @if let Some(i) = log_index {
                        p { (ctx.t("Voce ")) (i) (ctx.t(" del registro di ")) (ctx.agency) (ctx.t(", a nome di ")) (ctx.operator) "." }
                    }
                }
            },
        ),
        Some(Notice::Family { answer, log_index }) => (
            if answer.is_ok() {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            },
            family(ctx, &answer, log_index.as_deref()),
        ),
    };
    respond(
        status,
        layout(
            ctx.lang,
            Some(ctx),
            msg("Anagrafe"),
            html! {
                (notice)
                @if shown.is_empty() {
                    p { (ctx.t("Questo nodo non tiene un'anagrafe né un archivio di permessi.")) }
                } @else {
                    table {
                        caption { (ctx.t("I dati di ")) (ctx.agency) (ctx.t(" su questo nodo")) }
                        thead { tr { th scope="col" { (ctx.t("Archivio")) } th scope="col" { (ctx.t("Righe")) } th scope="col" { (ctx.t("Dati al")) } th scope="col" { (ctx.t("Importati il")) } } }
                        tbody {
                            @for s in shown {
                                tr {
                                    td { (s.name) }
                                    td { (s.info.rows) }
                                    td { @match s.info.as_of { Some(d) => { (crate::domain::records::format_date(d)) } None => { "—" } } }
                                    td { (when(ctx.lang, s.info.imported_at)) }
                                }
                            }
                        }
                    }
                    h2 { (ctx.t("Ultima importazione")) }
                    @for s in shown {
                        @match &s.last {
                            Some(l) => {
                                p {
                                    strong { (ctx.t(s.name)) } ": " (mode_label(ctx.lang, &l.mode)) "; "
                                    (ctx.t("righe lette ")) (l.rows_read) (ctx.t(", applicate ")) (l.applied) (ctx.t(", scartate ")) (l.rejected) (ctx.t(", in ")) (l.millis) (ctx.t(" ms"))
                                    @if let Some(d) = &l.as_of { (ctx.t("; dati al ")) (d) }
                                    "."
                                }
                            }
                            None => { p { strong { (ctx.t(s.name)) } (ctx.t(": nessuna importazione registrata.")) } }
                        }
                    }
                    h2 { (ctx.t("Carica un archivio")) }
                    (upload_form(ctx, offers))
                }
                @if !offers.expiring_purposes.is_empty() && !offers.comuni.is_empty() {
                    h2 { (ctx.t("Permessi in scadenza")) }
                    (expiring_form(ctx, offers, 30))
                }
                h2 { (ctx.t("Stato di famiglia")) }
                @if offers.family_purposes.is_empty() {
                    p { (ctx.t("La politica in vigore non concede a ")) (ctx.agency) (ctx.t(" di consultare lo stato di famiglia.")) }
                } @else {
                    form method="post" action="/anagrafe/famiglia" {
                        input type="hidden" name="csrf" value=(ctx.csrf);
                        div class="field" {
                            label for="family-subject" { (ctx.t("Codice fiscale")) }
                            input id="family-subject" name="subject" type="text" required autocomplete="off" spellcheck="false" maxlength="16";
                        }
                        div class="field" {
                            label for="family-purpose" { (ctx.t("Finalità")) }
                            select id="family-purpose" name="purpose" {
                                @for p in &offers.family_purposes { option value=(p) { (purpose_label(ctx.lang, p)) " (" (p) ")" } }
                            }
                        }
                        button type="submit" { (ctx.t("Mostra la famiglia")) }
                    }
                }
            },
        ),
    )
}

fn expiring_form(ctx: &Ctx, offers: &Offers, days: u16) -> Markup {
    html! {
        form method="post" action="/anagrafe/scadenze" {
            input type="hidden" name="csrf" value=(ctx.csrf);
            div class="field" {
                label for="days" { (ctx.t("Entro quanti giorni")) }
                input id="days" name="days" type="number" min="1" max="366" value=(days) required;
            }
            @if offers.comuni.len() > 1 {
                div class="field" {
                    label for="comune" { (ctx.t("Comune")) }
                    select id="comune" name="comune" {
                        @for c in &offers.comuni { option value=(c) { (comune_label(c)) } }
                    }
                }
            }
            div class="field" {
                label for="expiring-purpose" { (ctx.t("Finalità")) }
                select id="expiring-purpose" name="purpose" {
                    @for p in &offers.expiring_purposes { option value=(p) { (purpose_label(ctx.lang, p)) " (" (p) ")" } }
                }
            }
            button type="submit" name="format" value="html" { (ctx.t("Mostra")) }
            " "
            button type="submit" name="format" value="csv" { (ctx.t("Scarica CSV")) }
        }
    }
}

fn family(ctx: &Ctx, answer: &Result<FamilyAnswer, String>, log_index: Option<&str>) -> Markup {
    match answer {
        Err(why) => html! {
            div class="result failed" role="alert" { h2 { (ctx.t("Stato di famiglia non disponibile")) } p { (ctx.line(why)) } }
        },
        Ok(f) => html! {
            section class="result" aria-labelledby="famiglia" {
                h2 id="famiglia" { (ctx.t("Famiglia di ")) (f.subject) }
                @if let Some(d) = &f.data_as_of { p { (ctx.t("Dati aggiornati al ")) (d) "." } }
                table {
                    caption { (ctx.t("Componenti")) }
                    thead { tr { th scope="col" { (ctx.t("Codice fiscale")) } th scope="col" { (ctx.t("Sesso")) } th scope="col" { (ctx.t("Nato il")) } th scope="col" { (ctx.t("Residente")) } } }
                    tbody {
                        @for m in &f.members {
                            tr { td { (m.subject) } td { (m.sex) } td { (m.birth_date) } td { @if m.resident { (ctx.t("sì")) } @else { (ctx.t("no")) } } }
                        }
                    }
                }
                @if let Some(i) = log_index {
                    p { (ctx.t("Voce ")) (i) (ctx.t(" del registro di ")) (ctx.agency) (ctx.t(", a nome di ")) (ctx.operator) "." }
                }
            }
        },
    }
}

/// What checking an upload found; the apply button only when every row is valid.
pub fn checked(ctx: &Ctx, file: &str, dataset: &str, mode: Mode, check: Check) -> Resp {
    let mode = match mode {
        Mode::Snapshot => "snapshot",
        Mode::Delta => "delta",
    };
    let (status, body) = match check {
        Check::Unreadable(why) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            html! {
                div class="result failed" role="alert" {
                    h2 { (ctx.t("File non leggibile")) }
                    p { (ctx.line(why)) }
                    p { (ctx.t("Nulla è stato importato.")) }
                }
            },
        ),
        Check::Invalid {
            rows,
            rejected,
            errors,
        } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            html! {
                div class="result failed" role="alert" {
                    h2 { (ctx.t("Righe non valide: ")) (rejected) (ctx.t(" su ")) (rows) }
                    p { (ctx.t("Nulla è stato importato. Correggete le righe indicate e caricate di nuovo il file.")) }
                }
                table {
                    caption { (ctx.t("Righe non valide")) @if (errors.len() as u64) < rejected { (ctx.t(" (le prime ")) (errors.len()) ")" } }
                    thead { tr { th scope="col" { (ctx.t("Riga")) } th scope="col" { (ctx.t("Problema")) } } }
                    tbody { @for e in &errors { tr { td { (e.line) } td { (e.reason) } } } }
                }
            },
        ),
        Check::Valid { rows, id } => (
            StatusCode::OK,
            html! {
                section class="result" role="status" aria-labelledby="valido" {
                    h2 id="valido" { (ctx.t("Tutte le righe sono valide (")) (rows) ")" }
                    p { (ctx.t("Non è ancora cambiato nulla. Applicando, ")) (mode_label(ctx.lang, mode)) "." }
                    form method="post" action="/anagrafe/applica" {
                        input type="hidden" name="csrf" value=(ctx.csrf);
                        input type="hidden" name="id" value=(id);
                        button type="submit" { (ctx.t("Applica l'importazione")) }
                    }
                    p { a href="/anagrafe" { (ctx.t("Annulla e torna all'anagrafe")) } }
                }
            },
        ),
    };
    respond(
        status,
        layout(
            ctx.lang,
            Some(ctx),
            msg("Controllo del file"),
            html! {
                dl {
                    dt { (ctx.t("File")) } dd { (file) }
                    dt { (ctx.t("Archivio")) } dd { (dataset_label(ctx.lang, dataset)) }
                    dt { (ctx.t("Modalità")) } dd { (mode_label(ctx.lang, mode)) }
                }
                (body)
                @if !matches!(status, StatusCode::OK) {
                    p { a href="/anagrafe" { (ctx.t("Torna all'anagrafe e caricate il file corretto")) } }
                }
            },
        ),
    )
}

/// The permits of the comune's residents expiring within `days` days, from each Questura.
pub fn expiring(ctx: &Ctx, comune: &ComuneCode, days: u16, purpose: &str, asked: &[Asked]) -> Resp {
    let any_ok = asked.iter().any(|(_, a)| a.is_ok());
    respond(
        if any_ok {
            StatusCode::OK
        } else {
            StatusCode::BAD_GATEWAY
        },
        layout(
            ctx.lang,
            Some(ctx),
            msg("Permessi in scadenza"),
            html! {
                p {
                    (ctx.t("Residenti di ")) (comune_label(comune.as_str())) (ctx.t(" con un permesso di soggiorno che scade entro "))
                    (days) (ctx.t(" giorni (finalità ")) (purpose_label(ctx.lang, purpose)) (ctx.t("), a nome di ")) (ctx.operator) "."
                }
                @for (agency, answer) in asked {
                    @match answer {
                        Err(why) => {
                            div class="result failed" role="alert" { h2 { (agency) (ctx.t(" non ha risposto")) } p { (ctx.line(why)) } }
                        }
                        Ok(a) => {
                            section aria-labelledby=(format!("q-{agency}")) {
                                h2 id=(format!("q-{agency}")) { (ctx.t("Da ")) (agency) }
                                p {
                                    (a.permits.len()) (ctx.t(" permessi dal ")) (a.from) (ctx.t(" al ")) (a.to)
                                    @if let Some(d) = &a.data_as_of { (ctx.t("; dati della Questura al ")) (d) }
                                    "."
                                }
                                @if !a.permits.is_empty() {
                                    table {
                                        caption { (ctx.t("Permessi in scadenza, i più vicini prima")) }
                                        thead { tr { th scope="col" { (ctx.t("Codice fiscale")) } th scope="col" { (ctx.t("Scade il")) } th scope="col" { (ctx.t("Rinnovo in corso")) } } }
                                        tbody {
                                            @for p in &a.permits {
                                                tr { td { (p.subject) } td { (p.valid_until) } td { @if p.renewal_pending { (ctx.t("sì")) } @else { (ctx.t("no")) } } }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                form method="post" action="/anagrafe/scadenze" {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    input type="hidden" name="days" value=(days);
                    input type="hidden" name="comune" value=(comune.as_str());
                    input type="hidden" name="purpose" value=(purpose);
                    button type="submit" name="format" value="csv" { (ctx.t("Scarica CSV")) }
                }
                p { a href="/anagrafe" { (ctx.t("Torna all'anagrafe")) } }
            },
        ),
    )
}

/// What a Questura answers `GET /v1/monitor/expiring`.
#[derive(Debug, Deserialize)]
pub struct ExpiringAnswer {
    pub issuer: String,
    pub comune: String,
    pub from: String,
    pub to: String,
    pub data_as_of: Option<String>,
    pub permits: Vec<ExpiringPermit>,
}

#[derive(Debug, Deserialize)]
pub struct ExpiringPermit {
    pub subject: String,
    pub valid_until: String,
    pub renewal_pending: bool,
}

/// One Questura's answer, or why there is none.
pub type Asked = (String, Result<ExpiringAnswer, String>);

/// What a registry answers `GET /v1/family/{cf}`.
#[derive(Debug, Deserialize)]
pub struct FamilyAnswer {
    pub subject: String,
    pub data_as_of: Option<String>,
    pub members: Vec<FamilyMember>,
}

#[derive(Debug, Deserialize)]
pub struct FamilyMember {
    pub subject: String,
    pub sex: String,
    pub birth_date: String,
    pub resident: bool,
}

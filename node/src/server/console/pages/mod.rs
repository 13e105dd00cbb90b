//! The console's pages: plain server-rendered HTML (maud: every value written with `(…)` is
//! escaped, so no name, purpose or CSV field can become markup), Italian, no script, the
//! stylesheet from the console itself.

pub mod auditor;
pub mod prefettura;
pub mod registry;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use maud::{html, Markup, DOCTYPE};

use super::roles::Role;
use super::Resp;
use crate::wire::StatusAnswer;

/// The console's stylesheet (`/static/console.css`): contrast of at least 4.5:1 for text, a
/// visible focus ring, a print layout without navigation.
pub const CSS: &str = include_str!("../console.css");

/// What every page shows of who is signed in, and the token its forms carry.
pub struct Ctx {
    pub agency: String,
    pub operator: String,
    /// What `operators.toml` gives the operator.
    pub roles: Vec<Role>,
    pub csrf: String,
    pub manifest_version: Option<u64>,
}

/// The clerk's question, as typed (shown again with the answer).
#[derive(Default)]
pub struct CheckForm {
    pub subject: String,
    pub purpose: String,
    pub comune: String,
    pub as_of: String,
}

/// An answer the check rests on: who signed it, and how fresh their data was.
pub struct Signed {
    pub agency: String,
    pub data_as_of: Option<String>,
    /// The attestation itself (compact JWS), for the printed page and its QR code.
    pub jws: String,
}

/// A QR code of `text` as inline SVG (black modules on white, quiet zone included), or
/// `None` when it does not fit a QR code.
fn qr_svg(text: &str) -> Option<String> {
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::L).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(320, 320)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build();
    // Inline in HTML: the `<svg>` element only, without the XML declaration.
    svg.find("<svg").map(|at| svg[at..].to_owned())
}

/// A verified attestation: who signed it and what it says.
pub struct Verdict {
    pub signer: String,
    pub payload: serde_json::Value,
}

/// How a check ended.
pub enum Outcome {
    Answer {
        answer: Box<StatusAnswer>,
        signers: Vec<Signed>,
        log_index: Option<String>,
    },
    Failed {
        status: u16,
        detail: String,
    },
}

fn respond(status: StatusCode, markup: Markup) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(markup.into_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// A whole page: `title`, the operator's bar (when signed in), `main`.
fn layout(ctx: Option<&Ctx>, title: &str, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="it" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · attesta" }
                link rel="stylesheet" href="/static/console.css";
            }
            body {
                a class="skip" href="#main" { "Vai al contenuto" }
                header class="bar" {
                    p class="brand" { "attesta" }
                    @if let Some(ctx) = ctx {
                        nav aria-label="Sezioni" {
                            ul {
                                li { a href="/" { "Home" } }
                                @if ctx.roles.contains(&Role::Clerk) {
                                    li { a href="/verifica" { "Verifica" } }
                                    li { a href="/attestato" { "Controlla un attestato" } }
                                }
                                @if ctx.roles.contains(&Role::PolicyOfficer) {
                                    li { a href="/politica" { "Politica" } }
                                    li { a href="/politica/bozza" { "Bozza" } }
                                    li { a href="/politica/nodi" { "Nodi" } }
                                }
                                @if ctx.roles.contains(&Role::RegistryOfficer) {
                                    li { a href="/anagrafe" { "Anagrafe" } }
                                }
                                @if ctx.roles.contains(&Role::Auditor) {
                                    li { a href="/registro" { "Registro" } }
                                }
                            }
                        }
                        p class="who" {
                            "Operatore " strong { (ctx.operator) } " · " (ctx.agency)
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (main)
                }
                footer {
                    @if let Some(ctx) = ctx {
                        p {
                            "Nodo di " (ctx.agency) " · manifesto "
                            @match ctx.manifest_version {
                                Some(v) => { "versione " (v) }
                                None => { "non ancora ricevuto" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A certificate or request the console does not take: the reason, nothing else.
pub fn refused(status: StatusCode, why: &str) -> Resp {
    respond(
        status,
        layout(
            None,
            "Accesso negato",
            html! {
                p { (why) }
                p { "Se pensate che sia un errore, rivolgetevi al referente informatico della vostra agenzia." }
            },
        ),
    )
}

/// Signed in, but without the role a page needs: what is missing, and who grants it.
pub fn no_role(ctx: &Ctx, needed: Role) -> Resp {
    respond(
        StatusCode::FORBIDDEN,
        layout(
            Some(ctx),
            "Ruolo mancante",
            html! {
                p { "Questa pagina richiede il ruolo " strong { (role_label(needed)) } " (" code { (needed.as_str()) } "), che non avete." }
                p { "I ruoli delle persone di " (ctx.agency) " li assegna il referente del nodo, in " code { "operators.toml" } "." }
                p { a href="/" { "Torna alla home" } }
            },
        ),
    )
}

fn role_label(r: Role) -> &'static str {
    match r {
        Role::Clerk => "operatore di sportello",
        Role::RegistryOfficer => "ufficiale d'anagrafe",
        Role::PolicyOfficer => "funzionario della Prefettura",
        Role::Auditor => "revisore",
    }
}

pub fn error(ctx: &Ctx, status: StatusCode, what: &str) -> Resp {
    respond(
        status,
        layout(
            Some(ctx),
            "Errore",
            html! { p { (what) } p { a href="/" { "Torna alla home" } } },
        ),
    )
}

pub fn home(ctx: &Ctx, draining: bool) -> Resp {
    respond(
        StatusCode::OK,
        layout(
            Some(ctx),
            "Console",
            html! {
                h2 { "Chi sono" }
                dl {
                    dt { "Operatore" } dd { (ctx.operator) }
                    dt { "Agenzia" } dd { (ctx.agency) }
                    dt { "Ruoli" }
                    dd {
                        @if ctx.roles.is_empty() {
                            "nessuno: chiedete al referente del nodo"
                        } @else {
                            @for (i, r) in ctx.roles.iter().enumerate() {
                                @if i > 0 { ", " }
                                (role_label(*r))
                            }
                        }
                    }
                    dt { "Manifesto in vigore" }
                    dd {
                        @match ctx.manifest_version {
                            Some(v) => { "versione " (v) }
                            None => { "nessuno: il nodo non ha ancora ricevuto la politica della Prefettura" }
                        }
                    }
                    dt { "Stato del nodo" }
                    dd { @if draining { "in arresto" } @else { "in servizio" } }
                }
                @if ctx.roles.contains(&Role::Clerk) {
                    h2 { "Cosa potete fare" }
                    ul {
                        li { a href="/verifica" { "Verificare residenza e regolarità del soggiorno" } " di una persona, per una finalità concessa alla vostra agenzia." }
                    }
                }
            },
        ),
    )
}

/// Italian names of the purposes the federation uses; others are shown by their code.
fn purpose_label(code: &str) -> &str {
    match code {
        "benefit-eligibility" => "Verifica dei requisiti per una prestazione",
        "permit-renewal" => "Rinnovo del permesso di soggiorno",
        "registry-update" => "Aggiornamento anagrafico",
        "family-reunification" => "Ricongiungimento familiare",
        "health-enrolment" => "Iscrizione al Servizio sanitario",
        _ => code,
    }
}

fn check_fields(ctx: &Ctx, purposes: &[String], form: &CheckForm) -> Markup {
    html! {
        form method="post" action="/verifica" {
            input type="hidden" name="csrf" value=(ctx.csrf);
            div class="field" {
                label for="subject" { "Codice fiscale" }
                input id="subject" name="subject" type="text" required
                    autocomplete="off" spellcheck="false" maxlength="16"
                    aria-describedby="subject-hint" value=(form.subject);
                p id="subject-hint" class="hint" { "16 caratteri, ad esempio RSSMRA80A01G479Z." }
            }
            div class="field" {
                label for="purpose" { "Finalità" }
                @if purposes.is_empty() {
                    p class="warn" id="purpose" { "La politica in vigore non concede verifiche alla vostra agenzia." }
                } @else {
                    select id="purpose" name="purpose" required {
                        @for p in purposes {
                            option value=(p) selected[*p == form.purpose] { (purpose_label(p)) " (" (p) ")" }
                        }
                    }
                }
            }
            div class="field" {
                label for="comune" { "Comune di residenza (facoltativo)" }
                input id="comune" name="comune" type="text" inputmode="numeric"
                    maxlength="6" aria-describedby="comune-hint" value=(form.comune);
                p id="comune-hint" class="hint" { "Codice ISTAT a 6 cifre, ad esempio 041044 per Pesaro. Senza, si chiede a ogni anagrafe." }
            }
            div class="field" {
                label for="as_of" { "Alla data (facoltativa)" }
                input id="as_of" name="as_of" type="date" aria-describedby="as_of-hint" value=(form.as_of);
                p id="as_of-hint" class="hint" { "Senza, alla data di oggi." }
            }
            button type="submit" { "Verifica" }
        }
    }
}

pub fn check_form(ctx: &Ctx, purposes: &[String], form: &CheckForm) -> Resp {
    respond(
        StatusCode::OK,
        layout(Some(ctx), "Verifica", check_fields(ctx, purposes, form)),
    )
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "Sì",
        Some(false) => "No",
        None => "Non noto",
    }
}

pub fn check_result(ctx: &Ctx, purposes: &[String], asked: &CheckForm, outcome: &Outcome) -> Resp {
    let (status, body) = match outcome {
        Outcome::Failed { status, detail } => (
            StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY),
            html! {
                div class="result failed" role="alert" {
                    h2 { "Verifica non eseguita" }
                    p { (detail) }
                }
            },
        ),
        Outcome::Answer {
            answer,
            signers,
            log_index,
        } => (
            StatusCode::OK,
            html! {
                section class="result" aria-labelledby="esito" {
                    h2 id="esito" { "Esito" }
                    @if !answer.complete {
                        p class="warn" role="status" { "Risposta incompleta: non tutte le amministrazioni hanno risposto." }
                    }
                    dl {
                        dt { "Residente" }
                        dd class="answer" { (yes_no(answer.resident)) }
                        @if let Some(c) = &answer.comune { dt { "Comune" } dd { (crate::domain::places::comune_label(c)) } }
                        @if let Some(s) = &answer.since { dt { "Dal" } dd { (s) } }
                        dt { "Regolarmente soggiornante" }
                        dd class="answer" { (yes_no(answer.legally_present)) }
                        @if let Some(b) = &answer.basis { dt { "Titolo" } dd { (b) } }
                        @if let Some(v) = &answer.valid_until { dt { "Valido fino al" } dd { (v) } }
                        dt { "Alla data" } dd { (answer.as_of) }
                    }
                    h3 { "Chi ha risposto" }
                    @if signers.is_empty() {
                        p { "Nessuna risposta firmata." }
                    } @else {
                        ul {
                            @for s in signers {
                                li {
                                    (s.agency)
                                    @if let Some(d) = &s.data_as_of { ", dati aggiornati al " (d) }
                                }
                            }
                        }
                    }
                    @if !answer.unavailable.is_empty() {
                        h3 { "Non disponibili" }
                        ul {
                            @for u in &answer.unavailable {
                                li { (u.agency.as_deref().unwrap_or("nessun nodo")) ": " (u.reason) " (" (u.detail) ")" }
                            }
                        }
                    }
                    h3 { "Attestazioni firmate" }
                    p class="hint" {
                        "Per l'interessato o un altro ufficio: stampate la pagina (la stampa omette menu e moduli). "
                        "Ogni codice QR contiene l'attestazione firmata; chi la riceve la controlla senza rete con "
                        code { "attesta verify-attestation --ca ca.crt" } " o alla pagina «Controlla un attestato»."
                    }
                    @for s in signers {
                        figure class="attestation" {
                            @if let Some(svg) = qr_svg(&s.jws) {
                                // Markup made by the QR encoder from the attestation's bytes: no
                                // text of the attestation is in it.
                                div class="qr" role="img" aria-label=(format!("Codice QR dell'attestazione di {}", s.agency)) {
                                    (maud::PreEscaped(svg))
                                }
                            }
                            figcaption { "Attestazione di " (s.agency) }
                            details {
                                summary { "Testo dell'attestazione di " (s.agency) }
                                pre class="jws" { (s.jws) }
                            }
                        }
                    }
                    h3 { "Registro" }
                    p {
                        "Domanda " code { (answer.query_id) }
                        @if let Some(i) = log_index { ", voce " (i) " del registro di " (ctx.agency) }
                        ", a nome di " (ctx.operator) "."
                    }
                }
            },
        ),
    };
    respond(
        status,
        layout(
            Some(ctx),
            "Verifica",
            html! { (body) h2 { "Nuova verifica" } (check_fields(ctx, purposes, asked)) },
        ),
    )
}

/// Labels of an attestation's fields, in the order shown.
const FIELDS: &[(&str, &str)] = &[
    ("issuer", "Rilasciato da"),
    ("audience", "Richiesto da"),
    ("subject", "Codice fiscale"),
    ("purpose", "Finalità"),
    ("as_of", "Alla data"),
    ("resident", "Residente"),
    ("comune", "Comune"),
    ("since", "Dal"),
    ("legally_present", "Regolarmente soggiornante"),
    ("basis", "Titolo"),
    ("valid_until", "Valido fino al"),
    ("data_as_of", "Dati aggiornati al"),
    ("query_id", "Domanda"),
];

fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Bool(true) => "Sì".into(),
        serde_json::Value::Bool(false) => "No".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// "Controlla un attestato": paste a signed answer (compact JWS), see whether it verifies
/// against the federation's CA and CRL, who signed it and what it says.
pub fn verify_form(ctx: &Ctx, token: &str, verdict: Option<&Result<Verdict, String>>) -> Resp {
    let result = match verdict {
        None => html! {},
        Some(Ok(v)) => html! {
            section class="result" aria-labelledby="valido" {
                h2 id="valido" { "Attestato valido" }
                p { "Firmato da " strong { (v.signer) } ", con un certificato della federazione valido quando fu firmato e non revocato." }
                dl {
                    @for (k, label) in FIELDS {
                        @if let Some(x) = v.payload.get(*k).filter(|x| !x.is_null()) {
                            dt { (label) }
                            dd { (show(x)) }
                        }
                    }
                }
            }
        },
        Some(Err(why)) => html! {
            div class="result failed" role="alert" {
                h2 { "Attestato non valido" }
                p { (why) }
            }
        },
    };
    respond(
        StatusCode::OK,
        layout(
            Some(ctx),
            "Controlla un attestato",
            html! {
                (result)
                form method="post" action="/attestato" enctype="multipart/form-data" {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    div class="field" {
                        label for="token" { "Attestato (JWS compatto)" }
                        textarea id="token" name="token" rows="6" cols="60"
                            spellcheck="false" aria-describedby="token-hint" { (token) }
                        p id="token-hint" class="hint" { "Incollate il testo dell'attestato: tre parti separate da punti." }
                    }
                    div class="field" {
                        label for="file" { "Oppure il file dell'attestato" }
                        input id="file" name="file" type="file" accept=".jws,.txt,application/jose,text/plain" aria-describedby="file-hint";
                        p id="file-hint" class="hint" { "Un file .jws ricevuto da un altro ufficio; se scegliete un file, vale il file." }
                    }
                    button type="submit" { "Controlla" }
                }
            },
        ),
    )
}

/// "Can agency X ask for resource Y, for purpose Z, about comune W?", as typed.
#[derive(Default)]
pub struct PolicyQuestion {
    pub agency: String,
    pub resource: String,
    pub purpose: String,
    pub comune: String,
}

/// The resources agencies ask for, as the policy names them.
const RESOURCES: &[(&str, &str)] = &[
    ("status", "stato (residenza e soggiorno)"),
    ("residence", "residenza"),
    ("legal-presence", "regolarità del soggiorno"),
    ("family", "stato di famiglia"),
    ("expiring-permits", "permessi in scadenza"),
    ("audit", "registro degli accessi"),
];

/// The Prefettura's view: the manifest in force as tables, and a question to the policy.
pub fn policy(
    ctx: &Ctx,
    manifest: &attesta_policy::Manifest,
    lines: &[attesta_policy::Line],
    q: &PolicyQuestion,
    answer: Option<&Result<attesta_policy::Decision, String>>,
) -> Resp {
    use attesta_policy::{Decision, Line};
    let rules: Vec<&attesta_policy::Rule> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Rule(r) => Some(r),
            _ => None,
        })
        .collect();
    // One row per agency, its roles together.
    let mut roles: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for l in lines {
        if let Line::Role { agency, role } = l {
            roles
                .entry(agency.as_str())
                .or_default()
                .push(role.as_str());
        }
    }
    respond(
        StatusCode::OK,
        layout(
            Some(ctx),
            "Politica di accesso",
            html! {
                p { "Manifesto in vigore: versione " (manifest.version) ", firmato il " (manifest.issued_at) "." }
                h2 { "Può chiedere?" }
                form method="get" action="/politica" {
                    div class="field" {
                        label for="agency" { "Agenzia che chiede" }
                        input id="agency" name="agency" type="text" required value=(q.agency)
                            aria-describedby="agency-hint";
                        p id="agency-hint" class="hint" { "Ad esempio inps-pesaro." }
                    }
                    div class="field" {
                        label for="resource" { "Che cosa" }
                        select id="resource" name="resource" {
                            @for (r, label) in RESOURCES {
                                option value=(r) selected[*r == q.resource] { (label) " (" (r) ")" }
                            }
                        }
                    }
                    div class="field" {
                        label for="purpose" { "Finalità" }
                        input id="purpose" name="purpose" type="text" required value=(q.purpose);
                    }
                    div class="field" {
                        label for="comune" { "Comune (facoltativo)" }
                        input id="comune" name="comune" type="text" inputmode="numeric" maxlength="6" value=(q.comune);
                    }
                    button type="submit" { "Chiedi alla politica" }
                }
                @match answer {
                    Some(Ok(Decision::Allow { rule })) => {
                        div class="result" role="status" {
                            h3 { "Sì" }
                            p { "Consentito dalla regola " code { (rule) } "." }
                        }
                    }
                    Some(Ok(Decision::Deny { reason })) => {
                        div class="result failed" role="status" {
                            h3 { "No" }
                            p { (reason) }
                        }
                    }
                    Some(Err(e)) => { div class="result failed" role="alert" { p { (e) } } }
                    None => {}
                }
                h2 { "Regole" }
                table {
                    caption { "Chi può fare che cosa, per quale finalità, su quale territorio" }
                    thead { tr { th scope="col" { "Soggetto" } th scope="col" { "Risorsa" } th scope="col" { "Azione" } th scope="col" { "Finalità" } th scope="col" { "Territorio" } th scope="col" { "Effetto" } } }
                    tbody {
                        @for r in &rules {
                            tr {
                                td { (r.subject) } td { (r.resource) } td { (r.action) }
                                td { (r.purpose) } td { (r.territory) }
                                td { @if r.allow { "consenti" } @else { strong { "nega" } } }
                            }
                        }
                    }
                }
                h2 { "Ruoli delle agenzie" }
                table {
                    caption { "Ogni agenzia e i ruoli che la politica le assegna" }
                    thead { tr { th scope="col" { "Agenzia" } th scope="col" { "Ruoli" } } }
                    tbody { @for (a, r) in &roles { tr { td { (a) } td { (r.join(", ")) } } } }
                }
                h2 { "Elenco dei nodi" }
                table {
                    caption { "Dove risponde ogni agenzia" }
                    thead { tr { th scope="col" { "Agenzia" } th scope="col" { "Nodo" } th scope="col" { "Risponde per" } th scope="col" { "Comuni" } } }
                    tbody {
                        @for e in &manifest.directory {
                            tr {
                                td { (e.agency) }
                                td {
                                    @if let Some(u) = &e.url { (u) }
                                    @if let Some(h) = &e.hosted_by { "ospitata da " (h) }
                                }
                                td { @for (i, s) in e.serves.iter().enumerate() { @if i > 0 { ", " } (s.as_str()) } }
                                td { (e.comuni.join(", ")) }
                            }
                        }
                    }
                }
                h2 { "Revoche" }
                @if manifest.revoked.is_empty() {
                    p { "Nessuna agenzia revocata." }
                } @else {
                    ul { @for r in &manifest.revoked { li { (r) } } }
                }
            },
        ),
    )
}

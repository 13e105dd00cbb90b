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

use super::i18n::{msg, Lang};
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
    /// The language the pages are shown in.
    pub lang: Lang,
    /// The page asked for, where the language switch returns to.
    pub path: String,
}

impl Ctx {
    /// `it` in the operator's language.
    pub fn t<'a>(&self, it: &'a str) -> &'a str {
        self.lang.t(it)
    }

    /// A message made elsewhere, in the operator's language (see [`Lang::line`]).
    pub fn line(&self, it: impl AsRef<str>) -> String {
        self.lang.line(it.as_ref())
    }
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
fn layout(lang: Lang, ctx: Option<&Ctx>, title: &str, main: Markup) -> Markup {
    let title = lang.t(title);
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · attesta" }
                link rel="stylesheet" href="/static/console.css";
            }
            body {
                a class="skip" href="#main" { (lang.t("Vai al contenuto")) }
                header class="bar" {
                    p class="brand" { "attesta" }
                    @if let Some(ctx) = ctx {
                        nav aria-label=(lang.t("Sezioni")) {
                            ul {
                                li { a href="/" { (ctx.t("Home")) } }
                                @if ctx.roles.contains(&Role::Clerk) {
                                    li { a href="/verifica" { (ctx.t("Verifica")) } }
                                    li { a href="/attestato" { (ctx.t("Controlla un attestato")) } }
                                }
                                @if ctx.roles.contains(&Role::PolicyOfficer) {
                                    li { a href="/politica" { (ctx.t("Politica")) } }
                                    li { a href="/politica/bozza" { (ctx.t("Bozza")) } }
                                    li { a href="/politica/nodi" { (ctx.t("Nodi")) } }
                                }
                                @if ctx.roles.contains(&Role::RegistryOfficer) {
                                    li { a href="/anagrafe" { (ctx.t("Anagrafe")) } }
                                }
                                @if ctx.roles.contains(&Role::Auditor) {
                                    li { a href="/registro" { (ctx.t("Registro")) } }
                                }
                            }
                        }
                        p class="who" {
                            (ctx.t("Operatore ")) strong { (ctx.operator) } " · " (ctx.agency)
                        }
                        // The other language, in its own words (and marked as such).
                        form class="lang" method="post" action="/lingua" {
                            input type="hidden" name="csrf" value=(ctx.csrf);
                            input type="hidden" name="torna" value=(ctx.path);
                            button type="submit" name="lingua" value=(lang.other().code()) lang=(lang.other().code()) {
                                (lang.other().name())
                            }
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
                            (ctx.t("Nodo di ")) (ctx.agency) (ctx.t(" · manifesto "))
                            @match ctx.manifest_version {
                                Some(v) => { (ctx.t("versione ")) (v) }
                                None => { (ctx.t("non ancora ricevuto")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A certificate or request the console does not take: the reason, nothing else.
pub fn refused(lang: Lang, status: StatusCode, why: &str) -> Resp {
    respond(
        status,
        layout(
            lang,
            None,
            msg("Accesso negato"),
            html! {
                p { (lang.line(why)) }
                p { (lang.t("Se pensate che sia un errore, rivolgetevi al referente informatico della vostra agenzia.")) }
            },
        ),
    )
}

/// Signed in, but without the role a page needs: what is missing, and who grants it.
pub fn no_role(ctx: &Ctx, needed: Role) -> Resp {
    respond(
        StatusCode::FORBIDDEN,
        layout(
            ctx.lang,
            Some(ctx),
            msg("Ruolo mancante"),
            html! {
                p { (ctx.t("Questa pagina richiede il ruolo ")) strong { (role_label(ctx.lang, needed)) } " (" code { (needed.as_str()) } (ctx.t("), che non avete.")) }
                p { (ctx.t("I ruoli delle persone di ")) (ctx.agency) (ctx.t(" li assegna il referente del nodo, in ")) code { "operators.toml" } "." }
                p { a href="/" { (ctx.t("Torna alla home")) } }
            },
        ),
    )
}

fn role_label(lang: Lang, r: Role) -> &'static str {
    lang.t(match r {
        Role::Clerk => msg("operatore di sportello"),
        Role::RegistryOfficer => msg("ufficiale d'anagrafe"),
        Role::PolicyOfficer => msg("funzionario della Prefettura"),
        Role::Auditor => msg("revisore"),
    })
}

pub fn error(ctx: &Ctx, status: StatusCode, what: &str) -> Resp {
    respond(
        status,
        layout(
            ctx.lang,
            Some(ctx),
            msg("Errore"),
            html! { p { (ctx.line(what)) } p { a href="/" { (ctx.t("Torna alla home")) } } },
        ),
    )
}

pub fn home(ctx: &Ctx, draining: bool) -> Resp {
    respond(
        StatusCode::OK,
        layout(
            ctx.lang,
            Some(ctx),
            msg("Console"),
            html! {
                h2 { (ctx.t("Chi sono")) }
                dl {
                    dt { (ctx.t("Operatore")) } dd { (ctx.operator) }
                    dt { (ctx.t("Agenzia")) } dd { (ctx.agency) }
                    dt { (ctx.t("Ruoli")) }
                    dd {
                        @if ctx.roles.is_empty() {
                            (ctx.t("nessuno: chiedete al referente del nodo"))
                        } @else {
                            @for (i, r) in ctx.roles.iter().enumerate() {
                                @if i > 0 { ", " }
                                (role_label(ctx.lang, *r))
                            }
                        }
                    }
                    dt { (ctx.t("Manifesto in vigore")) }
                    dd {
                        @match ctx.manifest_version {
                            Some(v) => { (ctx.t("versione ")) (v) }
                            None => { (ctx.t("nessuno: il nodo non ha ancora ricevuto la politica della Prefettura")) }
                        }
                    }
                    dt { (ctx.t("Stato del nodo")) }
                    dd { @if draining { (ctx.t("in arresto")) } @else { (ctx.t("in servizio")) } }
                }
                @if ctx.roles.contains(&Role::Clerk) {
                    h2 { (ctx.t("Cosa potete fare")) }
                    ul {
                        li { a href="/verifica" { (ctx.t("Verificare residenza e regolarità del soggiorno")) } (ctx.t(" di una persona, per una finalità concessa alla vostra agenzia.")) }
                    }
                }
            },
        ),
    )
}

/// Names of the purposes the federation uses; others are shown by their code.
fn purpose_label(lang: Lang, code: &str) -> &str {
    lang.t(match code {
        "benefit-eligibility" => msg("Verifica dei requisiti per una prestazione"),
        "permit-renewal" => msg("Rinnovo del permesso di soggiorno"),
        "registry-update" => msg("Aggiornamento anagrafico"),
        "family-reunification" => msg("Ricongiungimento familiare"),
        "health-enrolment" => msg("Iscrizione al Servizio sanitario"),
        _ => code,
    })
}

fn check_fields(ctx: &Ctx, purposes: &[String], form: &CheckForm) -> Markup {
    html! {
        form method="post" action="/verifica" {
            input type="hidden" name="csrf" value=(ctx.csrf);
            div class="field" {
                label for="subject" { (ctx.t("Codice fiscale")) }
                input id="subject" name="subject" type="text" required
                    autocomplete="off" spellcheck="false" maxlength="16"
                    aria-describedby="subject-hint" value=(form.subject);
                p id="subject-hint" class="hint" { (ctx.t("16 caratteri, ad esempio RSSMRA80A01G479Z.")) }
            }
            div class="field" {
                label for="purpose" { (ctx.t("Finalità")) }
                @if purposes.is_empty() {
                    p class="warn" id="purpose" { (ctx.t("La politica in vigore non concede verifiche alla vostra agenzia.")) }
                } @else {
                    select id="purpose" name="purpose" required {
                        @for p in purposes {
                            option value=(p) selected[*p == form.purpose] { (purpose_label(ctx.lang, p)) " (" (p) ")" }
                        }
                    }
                }
            }
            div class="field" {
                label for="comune" { (ctx.t("Comune di residenza (facoltativo)")) }
                input id="comune" name="comune" type="text" inputmode="numeric"
                    maxlength="6" aria-describedby="comune-hint" value=(form.comune);
                p id="comune-hint" class="hint" { (ctx.t("Codice ISTAT a 6 cifre, ad esempio 041044 per Pesaro. Senza, si chiede a ogni anagrafe.")) }
            }
            div class="field" {
                label for="as_of" { (ctx.t("Alla data (facoltativa)")) }
                input id="as_of" name="as_of" type="date" aria-describedby="as_of-hint" value=(form.as_of);
                p id="as_of-hint" class="hint" { (ctx.t("Senza, alla data di oggi.")) }
            }
            button type="submit" { (ctx.t("Verifica")) }
        }
    }
}

pub fn check_form(ctx: &Ctx, purposes: &[String], form: &CheckForm) -> Resp {
    respond(
        StatusCode::OK,
        layout(
            ctx.lang,
            Some(ctx),
            msg("Verifica"),
            check_fields(ctx, purposes, form),
        ),
    )
}

fn yes_no(lang: Lang, v: Option<bool>) -> &'static str {
    lang.t(match v {
        Some(true) => msg("Sì"),
        Some(false) => msg("No"),
        None => msg("Non noto"),
    })
}

pub fn check_result(ctx: &Ctx, purposes: &[String], asked: &CheckForm, outcome: &Outcome) -> Resp {
    let (status, body) = match outcome {
        Outcome::Failed { status, detail } => (
            StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY),
            html! {
                div class="result failed" role="alert" {
                    h2 { (ctx.t("Verifica non eseguita")) }
                    p { (ctx.line(detail)) }
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
                    h2 id="esito" { (ctx.t("Esito")) }
                    @if !answer.complete {
                        p class="warn" role="status" { (ctx.t("Risposta incompleta: non tutte le amministrazioni hanno risposto.")) }
                    }
                    dl {
                        dt { (ctx.t("Residente")) }
                        dd class="answer" { (yes_no(ctx.lang, answer.resident)) }
                        @if let Some(c) = &answer.comune { dt { (ctx.t("Comune")) } dd { (crate::domain::places::comune_label(c)) } }
                        @if let Some(s) = &answer.since { dt { (ctx.t("Dal")) } dd { (s) } }
                        dt { (ctx.t("Regolarmente soggiornante")) }
                        dd class="answer" { (yes_no(ctx.lang, answer.legally_present)) }
                        @if let Some(b) = &answer.basis { dt { (ctx.t("Titolo")) } dd { (b) } }
                        @if let Some(v) = &answer.valid_until { dt { (ctx.t("Valido fino al")) } dd { (v) } }
                        dt { (ctx.t("Alla data")) } dd { (answer.as_of) }
                    }
                    h3 { (ctx.t("Chi ha risposto")) }
                    @if signers.is_empty() {
                        p { (ctx.t("Nessuna risposta firmata.")) }
                    } @else {
                        ul {
                            @for s in signers {
                                li {
                                    (s.agency)
                                    @if let Some(d) = &s.data_as_of { (ctx.t(", dati aggiornati al ")) (d) }
                                }
                            }
                        }
                    }
                    @if !answer.unavailable.is_empty() {
                        h3 { (ctx.t("Non disponibili")) }
                        ul {
                            @for u in &answer.unavailable {
                                li { (u.agency.as_deref().unwrap_or(ctx.t("nessun nodo"))) ": " (u.reason) " (" (u.detail) ")" }
                            }
                        }
                    }
                    h3 { (ctx.t("Attestazioni firmate")) }
                    p class="hint" {
                        (ctx.t("Per l'interessato o un altro ufficio: stampate la pagina (la stampa omette menu e moduli). "))
                        (ctx.t("Ogni codice QR contiene l'attestazione firmata; chi la riceve la controlla senza rete con "))
                        code { "attesta verify-attestation --ca ca.crt" } (ctx.t(" o alla pagina «Controlla un attestato»."))
                    }
                    @for s in signers {
                        figure class="attestation" {
                            @if let Some(svg) = qr_svg(&s.jws) {
                                // Markup made by the QR encoder from the attestation's bytes: no
                                // text of the attestation is in it.
                                div class="qr" role="img" aria-label=(format!("{} {}", ctx.t("Codice QR dell'attestazione di"), s.agency)) {
                                    (maud::PreEscaped(svg))
                                }
                            }
                            figcaption { (ctx.t("Attestazione di ")) (s.agency) }
                            details {
                                summary { (ctx.t("Testo dell'attestazione di ")) (s.agency) }
                                pre class="jws" { (s.jws) }
                            }
                        }
                    }
                    h3 { (ctx.t("Registro")) }
                    p {
                        (ctx.t("Domanda ")) code { (answer.query_id) }
                        @if let Some(i) = log_index { (ctx.t(", voce ")) (i) (ctx.t(" del registro di ")) (ctx.agency) }
                        (ctx.t(", a nome di ")) (ctx.operator) "."
                    }
                }
            },
        ),
    };
    respond(
        status,
        layout(
            ctx.lang,
            Some(ctx),
            msg("Verifica"),
            html! { (body) h2 { (ctx.t("Nuova verifica")) } (check_fields(ctx, purposes, asked)) },
        ),
    )
}

/// Labels of an attestation's fields, in the order shown.
const FIELDS: &[(&str, &str)] = &[
    ("issuer", msg("Rilasciato da")),
    ("audience", msg("Richiesto da")),
    ("subject", msg("Codice fiscale")),
    ("purpose", msg("Finalità")),
    ("as_of", msg("Alla data")),
    ("resident", msg("Residente")),
    ("comune", msg("Comune")),
    ("since", msg("Dal")),
    ("legally_present", msg("Regolarmente soggiornante")),
    ("basis", msg("Titolo")),
    ("valid_until", msg("Valido fino al")),
    ("data_as_of", msg("Dati aggiornati al")),
    ("query_id", msg("Domanda")),
];

fn show(lang: Lang, v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Bool(true) => lang.t("Sì").into(),
        serde_json::Value::Bool(false) => lang.t("No").into(),
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
                h2 id="valido" { (ctx.t("Attestato valido")) }
                p { (ctx.t("Firmato da ")) strong { (v.signer) } (ctx.t(", con un certificato della federazione valido quando fu firmato e non revocato.")) }
                dl {
                    @for (k, label) in FIELDS {
                        @if let Some(x) = v.payload.get(*k).filter(|x| !x.is_null()) {
                            dt { (ctx.t(label)) }
                            dd { (show(ctx.lang, x)) }
                        }
                    }
                }
            }
        },
        Some(Err(why)) => html! {
            div class="result failed" role="alert" {
                h2 { (ctx.t("Attestato non valido")) }
                p { (ctx.line(why)) }
            }
        },
    };
    respond(
        StatusCode::OK,
        layout(
            ctx.lang,
            Some(ctx),
            msg("Controlla un attestato"),
            html! {
                (result)
                form method="post" action="/attestato" enctype="multipart/form-data" {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    div class="field" {
                        label for="token" { (ctx.t("Attestato (JWS compatto)")) }
                        textarea id="token" name="token" rows="6" cols="60"
                            spellcheck="false" aria-describedby="token-hint" { (token) }
                        p id="token-hint" class="hint" { (ctx.t("Incollate il testo dell'attestato: tre parti separate da punti.")) }
                    }
                    div class="field" {
                        label for="file" { (ctx.t("Oppure il file dell'attestato")) }
                        input id="file" name="file" type="file" accept=".jws,.txt,application/jose,text/plain" aria-describedby="file-hint";
                        p id="file-hint" class="hint" { (ctx.t("Un file .jws ricevuto da un altro ufficio; se scegliete un file, vale il file.")) }
                    }
                    button type="submit" { (ctx.t("Controlla")) }
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
    ("status", msg("stato (residenza e soggiorno)")),
    ("residence", msg("residenza")),
    ("legal-presence", msg("regolarità del soggiorno")),
    ("family", msg("stato di famiglia")),
    ("expiring-permits", msg("permessi in scadenza")),
    ("audit", msg("registro degli accessi")),
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
            ctx.lang,
            Some(ctx),
            msg("Politica di accesso"),
            html! {
                p { (ctx.t("Manifesto in vigore: versione ")) (manifest.version) (ctx.t(", firmato il ")) (manifest.issued_at) "." }
                h2 { (ctx.t("Può chiedere?")) }
                form method="get" action="/politica" {
                    div class="field" {
                        label for="agency" { (ctx.t("Agenzia che chiede")) }
                        input id="agency" name="agency" type="text" required value=(q.agency)
                            aria-describedby="agency-hint";
                        p id="agency-hint" class="hint" { (ctx.t("Ad esempio inps-pesaro.")) }
                    }
                    div class="field" {
                        label for="resource" { (ctx.t("Che cosa")) }
                        select id="resource" name="resource" {
                            @for (r, label) in RESOURCES {
                                option value=(r) selected[*r == q.resource] { (ctx.t(label)) " (" (r) ")" }
                            }
                        }
                    }
                    div class="field" {
                        label for="purpose" { (ctx.t("Finalità")) }
                        input id="purpose" name="purpose" type="text" required value=(q.purpose);
                    }
                    div class="field" {
                        label for="comune" { (ctx.t("Comune (facoltativo)")) }
                        input id="comune" name="comune" type="text" inputmode="numeric" maxlength="6" value=(q.comune);
                    }
                    button type="submit" { (ctx.t("Chiedi alla politica")) }
                }
                @match answer {
                    Some(Ok(Decision::Allow { rule })) => {
                        div class="result" role="status" {
                            h3 { (ctx.t("Sì")) }
                            p { (ctx.t("Consentito dalla regola ")) code { (rule) } "." }
                        }
                    }
                    Some(Ok(Decision::Deny { reason })) => {
                        div class="result failed" role="status" {
                            h3 { (ctx.t("No")) }
                            p { (ctx.line(reason)) }
                        }
                    }
                    Some(Err(e)) => { div class="result failed" role="alert" { p { (ctx.line(e)) } } }
                    None => {}
                }
                h2 { (ctx.t("Regole")) }
                table {
                    caption { (ctx.t("Chi può fare che cosa, per quale finalità, su quale territorio")) }
                    thead { tr { th scope="col" { (ctx.t("Soggetto")) } th scope="col" { (ctx.t("Risorsa")) } th scope="col" { (ctx.t("Azione")) } th scope="col" { (ctx.t("Finalità")) } th scope="col" { (ctx.t("Territorio")) } th scope="col" { (ctx.t("Effetto")) } } }
                    tbody {
                        @for r in &rules {
                            tr {
                                td { (r.subject) } td { (r.resource) } td { (r.action) }
                                td { (r.purpose) } td { (r.territory) }
                                td { @if r.allow { (ctx.t("consenti")) } @else { strong { (ctx.t("nega")) } } }
                            }
                        }
                    }
                }
                h2 { (ctx.t("Ruoli delle agenzie")) }
                table {
                    caption { (ctx.t("Ogni agenzia e i ruoli che la politica le assegna")) }
                    thead { tr { th scope="col" { (ctx.t("Agenzia")) } th scope="col" { (ctx.t("Ruoli")) } } }
                    tbody { @for (a, r) in &roles { tr { td { (a) } td { (r.join(", ")) } } } }
                }
                h2 { (ctx.t("Elenco dei nodi")) }
                table {
                    caption { (ctx.t("Dove risponde ogni agenzia")) }
                    thead { tr { th scope="col" { (ctx.t("Agenzia")) } th scope="col" { (ctx.t("Nodo")) } th scope="col" { (ctx.t("Risponde per")) } th scope="col" { (ctx.t("Comuni")) } } }
                    tbody {
                        @for e in &manifest.directory {
                            tr {
                                td { (e.agency) }
                                td {
                                    @if let Some(u) = &e.url { (u) }
                                    @if let Some(h) = &e.hosted_by { (ctx.t("ospitata da ")) (h) }
                                }
                                td { @for (i, s) in e.serves.iter().enumerate() { @if i > 0 { ", " } (s.as_str()) } }
                                td { (e.comuni.join(", ")) }
                            }
                        }
                    }
                }
                h2 { (ctx.t("Revoche")) }
                @if manifest.revoked.is_empty() {
                    p { (ctx.t("Nessuna agenzia revocata.")) }
                } @else {
                    ul { @for r in &manifest.revoked { li { (r) } } }
                }
            },
        ),
    )
}

//! The Prefettura's editing pages: the draft, the confirmation, the result, the nodes.

use attesta_policy::rules::Diff;
use attesta_policy::{Line, Rule};
use http::StatusCode;
use maud::{html, Markup};

use super::{layout, respond, Ctx, RESOURCES};
use crate::server::console::Resp;

/// The draft as the pages show it.
pub struct Draft {
    /// The version in force, which the draft is published over.
    pub version: u64,
    /// Whether a draft file exists (else the draft is the policy in force).
    pub exists: bool,
    pub lines: Vec<Line>,
    pub diff: Diff,
}

/// What the last edit did (carried across the redirect by a code).
#[derive(Clone, Copy)]
pub enum Said {
    Added,
    Removed,
    Discarded,
}

impl Said {
    pub fn code(self) -> &'static str {
        match self {
            Said::Added => "aggiunta",
            Said::Removed => "tolta",
            Said::Discarded => "scartata",
        }
    }

    pub fn from_code(code: Option<&str>) -> Option<Self> {
        match code? {
            "aggiunta" => Some(Said::Added),
            "tolta" => Some(Said::Removed),
            "scartata" => Some(Said::Discarded),
            _ => None,
        }
    }

    fn text(self) -> &'static str {
        match self {
            Said::Added => "Regola aggiunta alla bozza.",
            Said::Removed => "Regola tolta dalla bozza.",
            Said::Discarded => "Bozza scartata: si riparte dalla politica in vigore.",
        }
    }
}

fn diff_list(diff: &Diff) -> Markup {
    html! {
        @if diff.is_empty() {
            p { "La bozza è uguale alla politica in vigore." }
        } @else {
            ul class="diff" {
                @for l in &diff.removed { li class="removed" { span class="mark" { "tolta: " } code { (l) } } }
                @for l in &diff.added { li class="added" { span class="mark" { "aggiunta: " } code { (l) } } }
            }
        }
    }
}

/// The hidden fields that name `r` in a form.
fn rule_fields(r: &Rule) -> Markup {
    html! {
        input type="hidden" name="subject" value=(r.subject);
        input type="hidden" name="resource" value=(r.resource);
        input type="hidden" name="action" value=(r.action);
        input type="hidden" name="purpose" value=(r.purpose);
        input type="hidden" name="territory" value=(r.territory);
        input type="hidden" name="effect" value=(if r.allow { "allow" } else { "deny" });
    }
}

/// `/politica/bozza`: the draft's rules (each with a button that removes it), a form that
/// adds one, the difference from what is published, and the way to publish.
pub fn draft(
    ctx: &Ctx,
    d: &Draft,
    said: Option<Said>,
    error: Option<(String, Option<Rule>)>,
) -> Resp {
    let typed = error.as_ref().and_then(|(_, r)| r.clone()).unwrap_or(Rule {
        subject: String::new(),
        resource: "status".into(),
        action: "read".into(),
        purpose: String::new(),
        territory: "*".into(),
        allow: true,
    });
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    respond(
        status,
        layout(
            Some(ctx),
            "Bozza della politica",
            html! {
                @if let Some(s) = said { p class="result" role="status" { (s.text()) } }
                @if let Some((why, _)) = &error {
                    div class="result failed" role="alert" { h2 { "Modifica non eseguita" } p { (why) } }
                }
                p {
                    "In vigore: manifesto versione " (d.version) ". "
                    @if d.exists { "La bozza ha modifiche non ancora pubblicate." } @else { "Nessuna modifica in bozza." }
                }
                h2 { "Differenze dalla politica in vigore" }
                (diff_list(&d.diff))
                @if !d.diff.is_empty() {
                    p { a href="/politica/pubblica" { "Rivedi e pubblica…" } }
                }
                h2 { "Aggiungi una regola" }
                form method="post" action="/politica/bozza" {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    input type="hidden" name="op" value="add";
                    div class="field" {
                        label for="subject" { "Chi (agenzia o ruolo)" }
                        input id="subject" name="subject" type="text" required value=(typed.subject) aria-describedby="subject-hint";
                        p id="subject-hint" class="hint" { "Ad esempio inps-pesaro, oppure un ruolo: consumer, comune, questura." }
                    }
                    div class="field" {
                        label for="resource" { "Che cosa" }
                        select id="resource" name="resource" {
                            @for (r, label) in RESOURCES { option value=(r) selected[*r == typed.resource] { (label) " (" (r) ")" } }
                        }
                    }
                    div class="field" {
                        label for="purpose" { "Finalità" }
                        input id="purpose" name="purpose" type="text" required value=(typed.purpose) aria-describedby="purpose-hint";
                        p id="purpose-hint" class="hint" { "Ad esempio benefit-eligibility; * per ogni finalità." }
                    }
                    div class="field" {
                        label for="territory" { "Territorio" }
                        input id="territory" name="territory" type="text" required value=(typed.territory) aria-describedby="territory-hint";
                        p id="territory-hint" class="hint" { "* ogni comune, own il territorio di chi chiede, oppure un codice ISTAT." }
                    }
                    input type="hidden" name="action" value=(typed.action);
                    fieldset {
                        legend { "Effetto" }
                        div { input type="radio" id="effect-allow" name="effect" value="allow" checked[typed.allow]; label for="effect-allow" { "consenti" } }
                        div { input type="radio" id="effect-deny" name="effect" value="deny" checked[!typed.allow]; label for="effect-deny" { "nega (prevale su ogni consenso)" } }
                    }
                    button type="submit" { "Aggiungi alla bozza" }
                }
                h2 { "Regole della bozza" }
                table {
                    caption { "Le regole come saranno pubblicate" }
                    thead { tr { th scope="col" { "Soggetto" } th scope="col" { "Risorsa" } th scope="col" { "Azione" } th scope="col" { "Finalità" } th scope="col" { "Territorio" } th scope="col" { "Effetto" } th scope="col" { "Modifica" } } }
                    tbody {
                        @for l in &d.lines {
                            @if let Line::Rule(r) = l {
                                tr {
                                    td { (r.subject) } td { (r.resource) } td { (r.action) } td { (r.purpose) } td { (r.territory) }
                                    td { @if r.allow { "consenti" } @else { strong { "nega" } } }
                                    td {
                                        form method="post" action="/politica/bozza" {
                                            input type="hidden" name="csrf" value=(ctx.csrf);
                                            input type="hidden" name="op" value="remove";
                                            (rule_fields(r))
                                            button type="submit" aria-label=(format!("Togli la regola {r}")) { "Togli" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if d.exists {
                    h2 { "Scarta la bozza" }
                    form method="post" action="/politica/bozza" {
                        input type="hidden" name="csrf" value=(ctx.csrf);
                        input type="hidden" name="op" value="discard";
                        button type="submit" { "Scarta tutte le modifiche" }
                    }
                }
            },
        ),
    )
}

/// `/politica/pubblica`: the changes once more, and the button that publishes them over the
/// version in force.
pub fn confirm(ctx: &Ctx, d: &Draft) -> Resp {
    respond(
        StatusCode::OK,
        layout(
            Some(ctx),
            "Pubblica la politica",
            html! {
                @if d.diff.is_empty() {
                    p { "La bozza non cambia nulla: non c'è niente da pubblicare." }
                    p { a href="/politica/bozza" { "Torna alla bozza" } }
                } @else {
                    p {
                        "Pubblicando, la Prefettura firma il manifesto versione " strong { (d.version + 1) }
                        " e lo invia a ogni nodo della federazione; le regole valgono da subito."
                    }
                    h2 { "Che cosa cambia" }
                    (diff_list(&d.diff))
                    form method="post" action="/politica/pubblica" {
                        input type="hidden" name="csrf" value=(ctx.csrf);
                        input type="hidden" name="expected_version" value=(d.version);
                        button type="submit" { "Confermo: pubblica la versione " (d.version + 1) }
                    }
                    p { a href="/politica/bozza" { "Non ancora: torna alla bozza" } }
                }
            },
        ),
    )
}

/// The published version and which nodes were told.
pub fn published(ctx: &Ctx, a: &crate::wire::PublishAnswer, log_index: Option<&str>) -> Resp {
    respond(
        StatusCode::OK,
        layout(
            Some(ctx),
            "Politica pubblicata",
            html! {
                p class="result" role="status" {
                    "Pubblicato il manifesto versione " strong { (a.version) } " (politica " code { (a.policy_version) } "), firmato il " (a.issued_at) "."
                }
                @if let Some(i) = log_index { p { "Voce " (i) " del registro di " (ctx.agency) ", a nome di " (ctx.operator) "." } }
                h2 { "Nodi avvisati" }
                ul {
                    @for n in &a.notified {
                        li {
                            (n.agency) ": "
                            @if n.ok { "avvisato" } @else { "non raggiunto (" (n.detail) "): la prenderà al prossimo aggiornamento" }
                        }
                    }
                }
                p { a href="/politica/nodi" { "Quale versione applica ogni nodo" } }
            },
        ),
    )
}

/// A node and the manifest version it serves, or why it did not say.
pub struct NodeVersion {
    pub agency: String,
    pub url: String,
    pub version: Result<u64, String>,
}

/// `/politica/nodi`.
pub fn nodes(ctx: &Ctx, in_force: u64, rows: &[NodeVersion]) -> Resp {
    respond(
        StatusCode::OK,
        layout(
            Some(ctx),
            "Versione della politica sui nodi",
            html! {
                p { "Versione in vigore sul nodo della Prefettura: " strong { (in_force) } "." }
                table {
                    caption { "La versione del manifesto che ogni nodo applica ora" }
                    thead { tr { th scope="col" { "Agenzia" } th scope="col" { "Nodo" } th scope="col" { "Versione" } th scope="col" { "Stato" } } }
                    tbody {
                        @for n in rows {
                            tr {
                                td { (n.agency) }
                                td { @if n.url.is_empty() { "questo nodo" } @else { (n.url) } }
                                @match &n.version {
                                    Ok(v) => {
                                        td { (v) }
                                        td { @if *v == in_force { "aggiornato" } @else if *v < in_force { strong { "indietro" } } @else { strong { "più recente" } } }
                                    }
                                    Err(why) => { td { "—" } td { strong { "non raggiungibile" } " (" (why) ")" } }
                                }
                            }
                        }
                    }
                }
            },
        ),
    )
}

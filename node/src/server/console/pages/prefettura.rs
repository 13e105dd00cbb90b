//! The Prefettura's editing pages: the draft, the confirmation, the result, the nodes.

use attesta_policy::rules::Diff;
use attesta_policy::{Line, Rule};
use http::StatusCode;
use maud::{html, Markup};

use super::super::i18n::msg;
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
            Said::Added => msg("Regola aggiunta alla bozza."),
            Said::Removed => msg("Regola tolta dalla bozza."),
            Said::Discarded => msg("Bozza scartata: si riparte dalla politica in vigore."),
        }
    }
}

fn diff_list(ctx: &Ctx, diff: &Diff) -> Markup {
    html! {
        @if diff.is_empty() {
            p { (ctx.t("La bozza è uguale alla politica in vigore.")) }
        } @else {
            ul class="diff" {
                @for l in &diff.removed { li class="removed" { span class="mark" { (ctx.t("tolta: ")) } code { (l) } } }
                @for l in &diff.added { li class="added" { span class="mark" { (ctx.t("aggiunta: ")) } code { (l) } } }
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
            ctx.lang,
            Some(ctx),
            msg("Bozza della politica"),
            html! {
                @if let Some(s) = said { p class="result" role="status" { (ctx.t(s.text())) } }
                @if let Some((why, _)) = &error {
                    div class="result failed" role="alert" { h2 { (ctx.t("Modifica non eseguita")) } p { (ctx.line(why)) } }
                }
                p {
                    (ctx.t("In vigore: manifesto versione ")) (d.version) ". "
                    @if d.exists { (ctx.t("La bozza ha modifiche non ancora pubblicate.")) } @else { (ctx.t("Nessuna modifica in bozza.")) }
                }
                h2 { (ctx.t("Differenze dalla politica in vigore")) }
                (diff_list(ctx, &d.diff))
                @if !d.diff.is_empty() {
                    p { a href="/politica/pubblica" { (ctx.t("Rivedi e pubblica…")) } }
                }
                h2 { (ctx.t("Aggiungi una regola")) }
                form method="post" action="/politica/bozza" {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    input type="hidden" name="op" value="add";
                    div class="field" {
                        label for="subject" { (ctx.t("Chi (agenzia o ruolo)")) }
                        input id="subject" name="subject" type="text" required value=(typed.subject) aria-describedby="subject-hint";
                        p id="subject-hint" class="hint" { (ctx.t("Ad esempio inps-pesaro, oppure un ruolo: consumer, comune, questura.")) }
                    }
                    div class="field" {
                        label for="resource" { (ctx.t("Che cosa")) }
                        select id="resource" name="resource" {
                            @for (r, label) in RESOURCES { option value=(r) selected[*r == typed.resource] { (label) " (" (r) ")" } }
                        }
                    }
                    div class="field" {
                        label for="purpose" { (ctx.t("Finalità")) }
                        input id="purpose" name="purpose" type="text" required value=(typed.purpose) aria-describedby="purpose-hint";
                        p id="purpose-hint" class="hint" { (ctx.t("Ad esempio benefit-eligibility; * per ogni finalità.")) }
                    }
                    div class="field" {
                        label for="territory" { (ctx.t("Territorio")) }
                        input id="territory" name="territory" type="text" required value=(typed.territory) aria-describedby="territory-hint";
                        p id="territory-hint" class="hint" { (ctx.t("* ogni comune, own il territorio di chi chiede, oppure un codice ISTAT.")) }
                    }
                    input type="hidden" name="action" value=(typed.action);
                    fieldset {
                        legend { (ctx.t("Effetto")) }
                        div { input type="radio" id="effect-allow" name="effect" value="allow" checked[typed.allow]; label for="effect-allow" { (ctx.t("consenti")) } }
                        div { input type="radio" id="effect-deny" name="effect" value="deny" checked[!typed.allow]; label for="effect-deny" { (ctx.t("nega (prevale su ogni consenso)")) } }
                    }
                    button type="submit" { (ctx.t("Aggiungi alla bozza")) }
                }
                h2 { (ctx.t("Regole della bozza")) }
                table {
                    caption { (ctx.t("Le regole come saranno pubblicate")) }
                    thead { tr { th scope="col" { (ctx.t("Soggetto")) } th scope="col" { (ctx.t("Risorsa")) } th scope="col" { (ctx.t("Azione")) } th scope="col" { (ctx.t("Finalità")) } th scope="col" { (ctx.t("Territorio")) } th scope="col" { (ctx.t("Effetto")) } th scope="col" { (ctx.t("Modifica")) } } }
                    tbody {
                        @for l in &d.lines {
                            @if let Line::Rule(r) = l {
                                tr {
                                    td { (r.subject) } td { (r.resource) } td { (r.action) } td { (r.purpose) } td { (r.territory) }
                                    td { @if r.allow { (ctx.t("consenti")) } @else { strong { (ctx.t("nega")) } } }
                                    td {
                                        form method="post" action="/politica/bozza" {
                                            input type="hidden" name="csrf" value=(ctx.csrf);
                                            input type="hidden" name="op" value="remove";
                                            (rule_fields(r))
                                            button type="submit" aria-label=(format!("{} {r}", ctx.t("Togli la regola"))) { (ctx.t("Togli")) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if d.exists {
                    h2 { (ctx.t("Scarta la bozza")) }
                    form method="post" action="/politica/bozza" {
                        input type="hidden" name="csrf" value=(ctx.csrf);
                        input type="hidden" name="op" value="discard";
                        button type="submit" { (ctx.t("Scarta tutte le modifiche")) }
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
            ctx.lang,
            Some(ctx),
            msg("Pubblica la politica"),
            html! {
                @if d.diff.is_empty() {
                    p { (ctx.t("La bozza non cambia nulla: non c'è niente da pubblicare.")) }
                    p { a href="/politica/bozza" { (ctx.t("Torna alla bozza")) } }
                } @else {
                    p {
                        (ctx.t("Pubblicando, la Prefettura firma il manifesto versione ")) strong { (d.version + 1) }
                        (ctx.t(" e lo invia a ogni nodo della federazione; le regole valgono da subito."))
                    }
                    h2 { (ctx.t("Che cosa cambia")) }
                    (diff_list(ctx, &d.diff))
                    form method="post" action="/politica/pubblica" {
                        input type="hidden" name="csrf" value=(ctx.csrf);
                        input type="hidden" name="expected_version" value=(d.version);
                        button type="submit" { (ctx.t("Confermo: pubblica la versione ")) (d.version + 1) }
                    }
                    p { a href="/politica/bozza" { (ctx.t("Non ancora: torna alla bozza")) } }
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
            ctx.lang,
            Some(ctx),
            msg("Politica pubblicata"),
            html! {
                p class="result" role="status" {
                    (ctx.t("Pubblicato il manifesto versione ")) strong { (a.version) } (ctx.t(" (politica ")) code { (a.policy_version) } (ctx.t("), firmato il ")) (a.issued_at) "."
                }
                @if let Some(i) = log_index { p { (ctx.t("Voce ")) (i) (ctx.t(" del registro di ")) (ctx.agency) (ctx.t(", a nome di ")) (ctx.operator) "." } }
                h2 { (ctx.t("Nodi avvisati")) }
                ul {
                    @for n in &a.notified {
                        li {
                            (n.agency) ": "
                            @if n.ok { (ctx.t("avvisato")) } @else { (ctx.t("non raggiunto (")) (n.detail) (ctx.t("): la prenderà al prossimo aggiornamento")) }
                        }
                    }
                }
                p { a href="/politica/nodi" { (ctx.t("Quale versione applica ogni nodo")) } }
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
            ctx.lang,
            Some(ctx),
            msg("Versione della politica sui nodi"),
            html! {
                p { (ctx.t("Versione in vigore sul nodo della Prefettura: ")) strong { (in_force) } "." }
                table {
                    caption { (ctx.t("La versione del manifesto che ogni nodo applica ora")) }
                    thead { tr { th scope="col" { (ctx.t("Agenzia")) } th scope="col" { (ctx.t("Nodo")) } th scope="col" { (ctx.t("Versione")) } th scope="col" { (ctx.t("Stato")) } } }
                    tbody {
                        @for n in rows {
                            tr {
                                td { (n.agency) }
                                td { @if n.url.is_empty() { (ctx.t("questo nodo")) } @else { (n.url) } }
                                @match &n.version {
                                    Ok(v) => {
                                        td { (v) }
                                        td { @if *v == in_force { (ctx.t("aggiornato")) } @else if *v < in_force { strong { (ctx.t("indietro")) } } @else { strong { (ctx.t("più recente")) } } }
                                    }
                                    Err(why) => { td { "—" } td { strong { (ctx.t("non raggiungibile")) } " (" (ctx.line(why)) ")" } }
                                }
                            }
                        }
                    }
                }
            },
        ),
    )
}

//! The console: the agency's staff at a browser, on a port of its own (`[console] listen`).
//!
//! Who is at the keyboard is read from their **operator certificate** (TLS client
//! authentication, as PA staff sign in with a CNS card): it must chain to the federation CA, be
//! in date and not revoked (checked at the handshake and again on every request, as the CRL
//! changes), and name an operator of this node's agency. Anyone else is answered a page that
//! says why, and nothing more.
//!
//! The console has no powers of its own: each action is the request the agency's API would
//! take (`POST /v1/status` for a clerk's check), built here and passed to the same router, as
//! the agency, with the operator's certificate and name. The policy decides it as it decides
//! the agency's calls, and its audit entry names the operator (docs/AUDIT_LOG.md).
//!
//! Browsers send client certificates on their own, so mTLS does not stop a hostile page
//! from posting to the console: every form carries a token bound to the operator's
//! certificate and this process, and a POST must come from the console's own origin. Pages
//! allow no script, no inline style, no framing (see [`secure`]).

mod auditor;
mod form;
mod i18n;
mod outbound;
mod pages;
mod prefettura;
mod registry;
pub mod roles;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use attesta_certs::{OperatorIdentity, Role};
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn, Instrument};

use super::respond::{ReqBody, Resp};
use super::{conn, routes, Peer, Shared};
use i18n::{msg, Lang};

/// What the console keeps for the life of the process.
struct Console {
    /// Keys the forms' anti-forgery tokens; new at every start, so a token outlives neither
    /// the process nor the certificate it was made for.
    csrf_key: [u8; 32],
    /// Uploads checked and waiting for their operator to apply them, by certificate.
    staged: std::sync::Mutex<std::collections::HashMap<[u8; 32], registry::Staged>>,
    /// Serialises edits of the Prefettura's draft (read, change, write) and its publishing.
    draft_lock: tokio::sync::Mutex<()>,
    /// Log verifications started by auditors, the newest last.
    jobs: std::sync::Mutex<Vec<Arc<auditor::Job>>>,
}

/// 303 See Other to `to` (after a form that changed something, so that a reload does not
/// post it again).
fn see_other(to: &str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Where uploads wait to be applied; emptied at every start (what was waiting is gone with
/// the process that checked it).
fn staging_dir(shared: &Shared) -> std::path::PathBuf {
    shared.settings.data_dir.join("console").join("uploads")
}

/// Who is at the other end of a console connection.
#[derive(Clone)]
enum Who {
    /// An operator of this node's agency.
    Operator(Arc<OperatorIdentity>),
    /// A certificate the console does not take, and why, and the agency it belongs to (whose
    /// connection caps it counts against).
    Refused(Refusal, attesta_certs::AgencyId),
}

/// Why a certificate that names an agency does not open this console.
#[derive(Clone)]
enum Refusal {
    /// An operator of another agency.
    OtherAgency { operator: String, agency: String },
    /// A node's certificate, not a person's.
    Node,
}

impl Refusal {
    fn say(&self, lang: Lang, own: &str) -> String {
        match (self, lang) {
            (Refusal::OtherAgency { operator, agency }, Lang::It) => format!(
                "il certificato è di {operator}, operatore di {agency}: questa console è di {own}"
            ),
            (Refusal::OtherAgency { operator, agency }, Lang::En) => format!(
                "the certificate is {operator}'s, an operator of {agency}: this console is {own}'s"
            ),
            (Refusal::Node, Lang::It) => "questo è il certificato di un nodo, non di una persona: \
                 accedete con il vostro certificato di operatore"
                .to_owned(),
            (Refusal::Node, Lang::En) => "this is a node's certificate, not a person's: \
                 sign in with your operator certificate"
                .to_owned(),
        }
    }
}

/// Accepts console connections until `stopping` changes.
pub(super) async fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let mut csrf_key = [0u8; 32];
    attesta_certs::random_bytes(&mut csrf_key);
    let console = Arc::new(Console {
        csrf_key,
        staged: Default::default(),
        draft_lock: Default::default(),
        jobs: Default::default(),
    });
    let _ = std::fs::remove_dir_all(staging_dir(&shared));
    // Connections of its own: a busy API port does not lock the staff out, nor the reverse.
    let table = conn::Table::new(shared.settings.limits.clone());
    info!(
        addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        "console listening"
    );
    loop {
        let (tcp, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "console accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopping.changed() => return,
        };
        let Ok(handshaking) = table.accept(addr.ip()) else {
            debug!(client.addr = %addr, "console connection refused: too many");
            continue;
        };
        let shared = shared.clone();
        let console = console.clone();
        let stopping = stopping.clone();
        let span = tracing::info_span!("console", client.addr = %addr);
        tokio::spawn(
            async move {
                connection(&shared, &console, tcp, addr, handshaking, stopping).await;
            }
            .instrument(span),
        );
    }
}

async fn connection(
    shared: &Arc<Shared>,
    console: &Arc<Console>,
    tcp: TcpStream,
    addr: SocketAddr,
    handshaking: conn::Handshaking,
    stopping: tokio::sync::watch::Receiver<bool>,
) {
    let limits = &shared.settings.limits;
    let _ = tcp.set_nodelay(true);
    let config = shared.tls.load().console.clone();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let stream = match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            debug!(error = %e, "console handshake failed");
            return;
        }
        Err(_) => return,
    };
    let der = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec());
    let Some(der) = der else { return };
    // A certificate that names no agency at all gets no page.
    let Some(who) = identify(shared, &der) else {
        return;
    };
    let (agency, refused) = match &who {
        Who::Operator(op) => (op.id.agency.clone(), false),
        Who::Refused(_, agency) => (agency.clone(), true),
    };
    // Operators of this agency are its own people: they keep the node's reserve. Anyone else
    // counts against their own agency's caps and gets one answer, then the connection closes.
    let Ok(_established) = handshaking.establish(&agency, !refused) else {
        return;
    };
    let activity = conn::Activity::new(refused);
    let service = {
        let shared = shared.clone();
        let console = console.clone();
        let activity = activity.clone();
        service_fn(move |req| {
            let shared = shared.clone();
            let console = console.clone();
            let who = who.clone();
            let handling = activity.begin();
            async move {
                let resp = handle(&shared, &console, &who, addr, req).await;
                let (parts, body) = secure(resp).into_parts();
                Ok::<_, std::convert::Infallible>(Response::from_parts(
                    parts,
                    handling.answer(body),
                ))
            }
        })
    };
    let io = TokioIo::new(stream);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(!refused);
    let conn = builder.serve_connection(io, service);
    super::watch_connection(shared, conn, &activity, stopping).await;
}

/// Whose certificate `der` is, for this console; `None` when it names no agency.
fn identify(shared: &Shared, der: &[u8]) -> Option<Who> {
    let own = &shared.settings.agency;
    match attesta_certs::check_operator(der, &shared.settings.trust_domain) {
        Ok(op) if &op.id.agency == own => Some(Who::Operator(Arc::new(op))),
        Ok(op) => Some(Who::Refused(
            Refusal::OtherAgency {
                operator: op.id.operator.to_string(),
                agency: op.id.agency.to_string(),
            },
            op.id.agency,
        )),
        Err(_) => {
            let node = shared.tls.load().trust.check_leaf(der, Role::Client).ok()?;
            Some(Who::Refused(Refusal::Node, node.agency().clone()))
        }
    }
}

/// What every console answer carries: no script, style only from the console itself, no
/// framing, HTTPS only, no sniffing, no referrer to other sites, nothing cached (pages hold
/// personal data).
fn secure(mut resp: Resp) -> Resp {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: with it, browsers send `Origin: null` on form posts, and the
    // same-origin check below could not tell the console's own forms from a hostile page's.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

async fn handle(
    shared: &Arc<Shared>,
    console: &Console,
    who: &Who,
    addr: SocketAddr,
    req: Request<hyper::body::Incoming>,
) -> Resp {
    let path = req.uri().path().to_owned();
    let lang = Lang::of(&req);
    if path == "/static/console.css" && req.method() == Method::GET {
        let mut r = Response::new(Full::new(Bytes::from_static(pages::CSS.as_bytes())));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        );
        r.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=3600"),
        );
        return r;
    }
    let op = match who {
        Who::Operator(op) => op.clone(),
        Who::Refused(why, _) => {
            let why = why.say(lang, shared.settings.agency.as_str());
            return pages::refused(lang, StatusCode::FORBIDDEN, &why);
        }
    };
    // The CRL may have changed since the handshake.
    if shared.tls.load().trust.is_revoked(&op.serial) {
        return pages::refused(
            lang,
            StatusCode::FORBIDDEN,
            msg("il vostro certificato di operatore è stato revocato"),
        );
    }
    // Read on every request: a change to operators.toml applies at once, without a restart.
    let roles = match roles::load(&shared.settings.data_dir) {
        Ok(r) => r.of(&op.id.operator),
        Err(e) => {
            warn!(error = %e, "console: operators.toml unreadable; no operator has a role");
            Vec::new()
        }
    };
    let ctx = pages::Ctx {
        agency: shared.settings.agency.to_string(),
        operator: op.id.operator.to_string(),
        roles,
        csrf: form::csrf_token(console, &op),
        manifest_version: shared.manifest.current().map(|a| a.manifest.version),
        lang,
        path: match req.uri().query() {
            Some(q) if req.method() == Method::GET => format!("{path}?{q}"),
            _ => path.clone(),
        },
    };
    let post = req.method() == Method::POST;
    // A page that asks other nodes or shows personal data is not fetched by another site
    // (an image or a link there would otherwise make calls in the operator's name); the
    // home page may be linked to from anywhere.
    if !post && path != "/" && cross_site(&req) {
        return pages::refused(
            lang,
            StatusCode::FORBIDDEN,
            msg("richiesta inviata da un altro sito: aprite la console dal suo indirizzo"),
        );
    }
    if post {
        if let Err(why) = form::same_origin(&req) {
            return pages::refused(lang, StatusCode::FORBIDDEN, why);
        }
    } else if req.method() != Method::GET {
        return pages::error(&ctx, StatusCode::METHOD_NOT_ALLOWED, "metodo non ammesso");
    }
    if post && path == "/lingua" {
        return switch_language(req, &ctx).await;
    }
    let needs = match path.as_str() {
        "/verifica" | "/attestato" => Some(roles::Role::Clerk),
        p if p == "/politica" || p.starts_with("/politica/") => Some(roles::Role::PolicyOfficer),
        p if p == "/anagrafe" || p.starts_with("/anagrafe/") => Some(roles::Role::RegistryOfficer),
        p if p == "/registro" || p.starts_with("/registro/") => Some(roles::Role::Auditor),
        _ => None,
    };
    if let Some(role) = needs {
        if !ctx.roles.contains(&role) {
            return pages::no_role(&ctx, role);
        }
    }
    let query = req.uri().query().map(str::to_owned);
    match (post, path.as_str()) {
        (false, "/politica") => policy_page(shared, &ctx, query.as_deref()),
        (false, "/anagrafe") => registry::overview(shared, &ctx),
        (true, "/anagrafe/carica") => registry::upload(shared, console, &ctx, &op, req).await,
        (true, "/anagrafe/applica") => registry::apply(shared, console, &ctx, &op, addr, req).await,
        (true, "/anagrafe/scadenze") => registry::expiring(shared, &ctx, &op, req).await,
        (true, "/anagrafe/famiglia") => registry::family(shared, &ctx, &op, addr, req).await,
        (false, "/politica/bozza") => prefettura::draft_page(shared, &ctx, query.as_deref()),
        (true, "/politica/bozza") => prefettura::edit(shared, console, &ctx, req).await,
        (false, "/politica/pubblica") => prefettura::confirm(shared, &ctx),
        (true, "/politica/pubblica") => {
            prefettura::publish(shared, console, &ctx, &op, addr, req).await
        }
        (false, "/politica/nodi") => prefettura::nodes(shared, &ctx).await,
        (false, "/registro") => auditor::overview(shared, &ctx, &op).await,
        (false, "/registro/voci") => auditor::entries(shared, &ctx, &op, query.as_deref()).await,
        (false, "/registro/verifica") => {
            auditor::verify_page(shared, console, &ctx, &op, query.as_deref())
        }
        (true, "/registro/verifica") => {
            auditor::start_verify(shared, console, &ctx, &op, req).await
        }
        (false, "/registro/persona") => auditor::citizen_form(&ctx),
        (true, "/registro/persona") => auditor::citizen(shared, &ctx, &op, req).await,
        (false, "/") => pages::home(
            &ctx,
            shared.draining.load(std::sync::atomic::Ordering::SeqCst),
        ),
        (false, "/verifica") => {
            pages::check_form(&ctx, &purposes(shared), &pages::CheckForm::default())
        }
        (true, "/verifica") => {
            match form::posted(req, &ctx, &["subject", "purpose", "comune", "as_of"]).await {
                Ok(form) => check(shared, &ctx, &op, addr, form).await,
                Err(page) => page,
            }
        }
        (false, "/attestato") => pages::verify_form(&ctx, "", None),
        (true, "/attestato") => {
            let token = match attestation_posted(shared, &ctx, req).await {
                Ok(t) => t,
                Err(page) => return page,
            };
            let token = token.trim();
            // As an auditor would, offline: the CA and the CRL in force, at the answer's time.
            let trust = shared.tls.load().trust.clone();
            let verdict = crate::attestation::verify(&trust, token)
                .map(|v| pages::Verdict {
                    signer: v.signer.agency().to_string(),
                    payload: v.payload,
                })
                .map_err(|e| e.to_string());
            pages::verify_form(&ctx, token, Some(&verdict))
        }
        _ => pages::error(&ctx, StatusCode::NOT_FOUND, "pagina non trovata"),
    }
}

/// The language switch: keeps the operator's choice in a cookie and goes back to the page
/// the switch was on (a path of this console only).
async fn switch_language(req: Request<hyper::body::Incoming>, ctx: &pages::Ctx) -> Resp {
    let form = match form::posted(req, ctx, &["lingua", "torna"]).await {
        Ok(f) => f,
        Err(page) => return page,
    };
    let Some(lang) = Lang::from_code(&form::field(&form, "lingua")) else {
        return pages::error(ctx, StatusCode::BAD_REQUEST, msg("lingua sconosciuta"));
    };
    let back = form::field(&form, "torna");
    // Only a path here: not `//host` or `/\\host`, which browsers read as another site.
    let back = if back.starts_with('/')
        && !back.starts_with("//")
        && !back.contains('\\')
        && back.bytes().all(|b| b.is_ascii_graphic())
    {
        back
    } else {
        "/".to_owned()
    };
    let mut r = see_other(&back);
    let cookie = format!(
        "{}={}; Path=/; Max-Age=31536000; Secure; HttpOnly; SameSite=Strict",
        i18n::COOKIE,
        lang.code()
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// Longest attestation file the verify page takes (an attestation is a few KiB).
const MAX_ATTESTATION_BYTES: u64 = 64 * 1024;

/// The attestation a clerk submitted: pasted (a form) or as a file (an upload, where a
/// chosen file wins over the text box).
async fn attestation_posted(
    shared: &Shared,
    ctx: &pages::Ctx,
    req: Request<hyper::body::Incoming>,
) -> Result<String, Resp> {
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("multipart/form-data"));
    if !multipart {
        let form = form::posted(req, ctx, &["token"]).await?;
        return Ok(form::field(&form, "token"));
    }
    let form = form::posted_multipart(
        req,
        ctx,
        &["token"],
        "file",
        &staging_dir(shared),
        MAX_ATTESTATION_BYTES,
    )
    .await?;
    match &form.file {
        Some(file) => match std::fs::read(&file.path).map(String::from_utf8) {
            Ok(Ok(text)) => Ok(text),
            _ => Err(pages::error(
                ctx,
                StatusCode::BAD_REQUEST,
                msg("il file non è un attestato: un attestato è testo (tre parti separate da punti)"),
            )),
        },
        None => Ok(form::field(&form.fields, "token")),
    }
}

/// The policy in force, readable, and "may X ask for Y, for purpose Z, about comune W?"
/// answered by the policy itself (a GET: it changes nothing).
fn policy_page(shared: &Shared, ctx: &pages::Ctx, query: Option<&str>) -> Resp {
    let Some(active) = shared.manifest.current() else {
        return pages::error(
            ctx,
            StatusCode::SERVICE_UNAVAILABLE,
            msg("il nodo non ha ancora un manifesto in vigore"),
        );
    };
    let asked = match crate::wire::query_params(query, &["agency", "resource", "purpose", "comune"])
    {
        Ok(q) => q,
        Err(p) => return pages::error(ctx, StatusCode::BAD_REQUEST, &p.detail.unwrap_or(p.title)),
    };
    let field = |k: &str| {
        asked
            .get(k)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let question = pages::PolicyQuestion {
        agency: field("agency"),
        resource: field("resource"),
        purpose: field("purpose"),
        comune: field("comune"),
    };
    let answer = (!question.agency.is_empty()).then(|| {
        let req = attesta_policy::Request {
            agency: question.agency.clone(),
            resource: question.resource.clone(),
            action: "read".into(),
            purpose: question.purpose.clone(),
            territory: if question.comune.is_empty() {
                "*".into()
            } else {
                question.comune.clone()
            },
        };
        active
            .policy
            .decide_uncached(&req)
            .map_err(|e| e.to_string())
    });
    let lines =
        attesta_policy::rules::parse(&active.manifest.effective_policy()).unwrap_or_default();
    pages::policy(ctx, &active.manifest, &lines, &question, answer.as_ref())
}

/// Whether the browser says the request comes from another site (Fetch Metadata).
fn cross_site<B>(req: &Request<B>) -> bool {
    req.headers()
        .get("sec-fetch-site")
        .is_some_and(|v| v != "same-origin" && v != "none")
}

/// The purposes the agency may declare for a status check, as the policy in force grants.
fn purposes(shared: &Shared) -> Vec<String> {
    granted_purposes(shared, "status")
}

/// The purposes the policy in force lets the agency declare for `resource`.
fn granted_purposes(shared: &Shared, resource: &str) -> Vec<String> {
    let Some(active) = shared.manifest.current() else {
        return Vec::new();
    };
    attesta_policy::rules::purposes(
        &active.manifest.effective_policy(),
        shared.settings.agency.as_str(),
    )
    .ok()
    .and_then(|mut m| m.remove(resource))
    .map(|s| s.into_iter().collect())
    .unwrap_or_default()
}

/// The log index an answer's entry was written at (the `Attesta-Log-Index` header).
fn log_index(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get(crate::wire::LOG_INDEX_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// One line from a problem+json body: its detail, else its title.
fn problem_line(body: &[u8]) -> String {
    let problem: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    problem["detail"]
        .as_str()
        .or(problem["title"].as_str())
        .unwrap_or(msg("richiesta non riuscita"))
        .to_owned()
}

/// The clerk's check: the agency's `POST /v1/status`, on the operator's behalf.
async fn check(
    shared: &Arc<Shared>,
    ctx: &pages::Ctx,
    op: &OperatorIdentity,
    addr: SocketAddr,
    form: std::collections::HashMap<&'static str, String>,
) -> Resp {
    let field = |k: &str| form.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let asked = pages::CheckForm {
        subject: field("subject").to_ascii_uppercase(),
        purpose: field("purpose"),
        comune: field("comune"),
        as_of: field("as_of"),
    };
    let mut body = serde_json::json!({"subject": asked.subject, "purpose": asked.purpose});
    if !asked.comune.is_empty() {
        body["comune"] = asked.comune.clone().into();
    }
    if !asked.as_of.is_empty() {
        body["as_of"] = asked.as_of.clone().into();
    }
    let acted = act(
        shared,
        op,
        addr,
        Method::POST,
        crate::wire::path::STATUS,
        "application/json",
        serde_json::to_vec(&body).unwrap_or_default(),
    )
    .await;
    let log_index = acted.log_index.clone();
    let outcome = if acted.status == StatusCode::OK {
        match serde_json::from_slice::<crate::wire::StatusAnswer>(&acted.body) {
            Ok(answer) => {
                let trust = shared.tls.load().trust.clone();
                pages::Outcome::Answer {
                    signers: answer
                        .attestations
                        .iter()
                        .filter_map(|t| crate::attestation::verify(&trust, t).ok().map(|v| (v, t)))
                        .map(|(v, jws)| pages::Signed {
                            agency: v.signer.agency().to_string(),
                            data_as_of: v.payload["data_as_of"].as_str().map(str::to_owned),
                            jws: jws.clone(),
                        })
                        .collect(),
                    answer: Box::new(answer),
                    log_index,
                }
            }
            Err(_) => pages::Outcome::Failed {
                status: 502,
                detail: msg("risposta del nodo non leggibile").into(),
            },
        }
    } else {
        pages::Outcome::Failed {
            status: acted.status.as_u16(),
            detail: problem_line(&acted.body),
        }
    };
    pages::check_result(ctx, &purposes(shared), &asked, &outcome)
}

/// Makes the agency's API request `method path body` (of `content_type`) on the operator's behalf: the same
/// router, policy and audit as the agency's own calls, with the operator's certificate and
/// name in the entry.
async fn act(
    shared: &Arc<Shared>,
    op: &OperatorIdentity,
    addr: SocketAddr,
    method: Method,
    path: &str,
    content_type: &'static str,
    body: Vec<u8>,
) -> Acted {
    let peer = Peer {
        leaf: attesta_certs::LeafIdentity {
            id: attesta_certs::SpiffeId::new(
                shared.settings.trust_domain.clone(),
                shared.settings.agency.clone(),
            ),
            serial: op.serial.clone(),
            fingerprint: op.fingerprint,
        },
        addr,
        operator: Some(op.id.operator.clone()),
    };
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)));
    let resp = match req {
        Ok(req) => routes::handle(shared, &peer, req).await,
        Err(_) => {
            crate::problem::Problem::new(crate::problem::ProblemKind::Internal).into_response()
        }
    };
    let (parts, body) = resp.into_parts();
    // The router answers with bytes it holds: collecting them cannot wait or fail.
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    Acted {
        status: parts.status,
        log_index: log_index(&parts.headers),
        body,
    }
}

/// What the router answered a console action: its status, the log index of its entry, and
/// its body.
struct Acted {
    status: StatusCode,
    log_index: Option<String>,
    body: Bytes,
}

impl Acted {
    /// The body as `T` when the action succeeded (200); else the one line that says why.
    fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        if self.status == StatusCode::OK {
            serde_json::from_slice(&self.body)
                .map_err(|_| msg("risposta del nodo non leggibile").to_owned())
        } else {
            Err(problem_line(&self.body))
        }
    }
}

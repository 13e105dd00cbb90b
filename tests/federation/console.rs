//! The console over real nodes and TLS: who may sign in (operators of the node's agency, with
//! unrevoked certificates), what a forged request gets, and what the audit log records of a
//! console action. The pages in a real browser are tested in `tests/console/`.

use bytes::Bytes;
use http::Method;
use serde_json::{json, Value};

use attesta::client::{Client, Reply};

use crate::harness::*;
use crate::status::Federation;

async fn with_console() -> Federation {
    Federation::start(|c| {
        c.console = Some(attesta::config::ConsoleConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
        })
    })
    .await
}

/// Gives INPS's operators their roles (`operators.toml` in its data directory).
fn roles(f: &Federation, text: &str) {
    give_roles(&f.pki, "inps-pesaro", text);
}

/// Gives `agency`'s operators their roles (`operators.toml` in its node's data directory).
fn give_roles(pki: &Pki, agency: &str, text: &str) {
    let path = pki
        .agency_dir(agency)
        .join("data")
        .join(attesta::server::console_roles::FILE);
    std::fs::write(path, text).unwrap();
}

/// Pesaro's registry node, restarted with a console; and the console's URL.
async fn pesaro_with_console(pki: &mut Pki, pesaro: TestNode) -> (TestNode, String) {
    pesaro.stop().await;
    let pesaro = start_node(pki, "comune-pesaro", |c| {
        c.serves = vec!["residence".into()];
        c.console = Some(attesta::config::ConsoleConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
        });
    })
    .await;
    let base = pesaro.console_url.clone().unwrap();
    (pesaro, base)
}

fn console(f: &Federation) -> String {
    f.inps.console_url.clone().expect("INPS has a console")
}

fn text(r: &Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// The anti-forgery token of the form on `page`.
fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a token")
        + 19;
    page[at..].split('"').next().unwrap().to_owned()
}

/// POSTs `form` (already encoded) to `path` of the console at `base`, with `headers`.
async fn post_form(
    client: &Client,
    base: &str,
    path: &str,
    headers: &[(&'static str, &str)],
    form: String,
) -> Reply {
    let mut conn = client.connect(base).await.unwrap();
    conn.send_with(
        Method::POST,
        path,
        headers,
        Some(("application/x-www-form-urlencoded", Bytes::from(form))),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_checks_a_person_and_the_log_names_the_clerk_but_the_citizen_report_does_not() {
    let mut f = with_console().await;
    let base = console(&f);
    let clerk = f.pki.operator("inps-pesaro", "mario.rossi");
    roles(&f, "[operators]\n\"mario.rossi\" = [\"clerk\"]\n");

    let home = clerk.get(&format!("{base}/")).await.unwrap();
    assert_eq!(home.status, 200, "{}", text(&home));
    let page = text(&home);
    assert!(page.contains("<html lang=\"it\">"), "{page}");
    assert!(page.contains("mario.rossi") && page.contains("inps-pesaro"));
    assert!(page.contains("versione 2"), "the manifest in force: {page}");
    // No script, no framing, nothing cached.
    let csp = home.headers.get("content-security-policy").unwrap();
    let csp = csp.to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("script-src"), "{csp}");
    assert_eq!(
        home.headers.get("x-content-type-options").unwrap(),
        "nosniff"
    );
    assert_eq!(home.headers.get("cache-control").unwrap(), "no-store");
    assert!(home.headers.get("strict-transport-security").is_some());

    let form = clerk.get(&format!("{base}/verifica")).await.unwrap();
    let form = text(&form);
    assert!(
        form.contains("value=\"benefit-eligibility\""),
        "the purposes INPS is granted: {form}"
    );
    let token = csrf(&form);
    let person = f.sample("resident with valid permit")["cf"]
        .as_str()
        .unwrap()
        .to_owned();
    let authority = base.trim_start_matches("https://").to_owned();
    let origin = format!("https://{authority}");
    let r = post_form(
        &clerk,
        &base,
        "/verifica",
        &[("origin", &origin)],
        format!("csrf={token}&subject={person}&purpose=benefit-eligibility&comune=&as_of="),
    )
    .await;
    let page = text(&r);
    assert_eq!(r.status, 200, "{page}");
    assert!(page.contains("Residente"), "{page}");
    assert!(
        page.matches("<dd class=\"answer\">Sì</dd>").count() == 2,
        "resident and legally present: {page}"
    );
    assert!(
        page.contains("comune-pesaro") && page.contains("questura-pu"),
        "who answered: {page}"
    );
    assert!(page.contains("a nome di mario.rossi"), "{page}");
    // The printable part: each signed answer as a QR code and as text, and the text verifies
    // offline as the signer's attestation.
    assert!(page.matches("<svg").count() >= 2, "QR codes: {page}");
    assert!(!page.contains("<?xml"), "{page}");
    let mut printed = Vec::new();
    for chunk in page.split("<pre class=\"jws\">").skip(1) {
        let jws = chunk.split("</pre>").next().unwrap();
        let v = attesta::attestation::verify(&f.pki.trust(), jws).unwrap();
        printed.push(v.signer.agency().to_string());
    }
    assert!(
        printed.contains(&"comune-pesaro".to_string())
            && printed.contains(&"questura-pu".to_string()),
        "{printed:?}"
    );

    // The node's log: the status request is the agency's, made by Mario.
    let auditor = f.pki.client("garante-audit");
    let entries = eventually(|| async {
        let r = auditor
            .get(&f.inps.url("/v1/audit/checkpoint"))
            .await
            .ok()?;
        let size: u64 = String::from_utf8(r.body.to_vec())
            .ok()?
            .lines()
            .nth(1)?
            .parse()
            .ok()?;
        let r = auditor
            .get(&f.inps.url(&format!("/v1/audit/entries?start=0&end={size}")))
            .await
            .ok()?;
        let page: Value = r.json().ok()?;
        let found: Vec<Value> = page["entries"]
            .as_array()?
            .iter()
            .filter(|e| e["route"] == "POST /v1/status" && e["direction"] == "incoming")
            .cloned()
            .collect();
        (!found.is_empty()).then_some(found)
    })
    .await;
    let e = &entries[0];
    assert_eq!(e["operator"], "mario.rossi", "{e}");
    assert_eq!(e["peer_agency"], "inps-pesaro");
    assert_eq!(e["decision"], "allow");
    assert_eq!(e["purpose"], "benefit-eligibility");

    // The person's access report names the agency and the purpose, never the clerk.
    let r = auditor
        .post(
            &f.inps.url("/v1/audit/subject-report"),
            "application/json",
            Bytes::from(json!({"subject": person}).to_string()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", text(&r));
    let report = text(&r);
    assert!(report.contains("benefit-eligibility"), "{report}");
    assert!(!report.contains("mario"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_refuses_strangers_nodes_forged_posts_and_revoked_operators() {
    let mut f = with_console().await;
    let base = console(&f);
    let authority = base.trim_start_matches("https://").to_owned();
    let origin = format!("https://{authority}");
    roles(
        &f,
        "[operators]\n\"mario.rossi\" = [\"clerk\"]\n\"anna.verdi\" = [\"clerk\"]\n",
    );

    // An operator of another agency, and a node's certificate: a page that says why.
    let stranger = f.pki.operator("comune-pesaro", "anna.bianchi");
    let r = stranger.get(&format!("{base}/verifica")).await.unwrap();
    assert_eq!(r.status, 403);
    let page = text(&r);
    assert!(
        page.contains("operatore di comune-pesaro") && page.contains("console è di inps-pesaro"),
        "{page}"
    );
    assert!(!page.contains("name=\"csrf\""), "no form for a stranger");
    // A stranger gets one answer per connection: the console closes it after, so another
    // agency's certificates cannot hold the console's connections open.
    let mut conn = stranger.connect(&base).await.unwrap();
    let first = conn.send(Method::GET, "/", None).await.unwrap();
    assert_eq!(first.status, 403);
    assert_eq!(
        first.headers.get("connection").map(|v| v.to_str().unwrap()),
        Some("close")
    );
    assert!(
        conn.send(Method::GET, "/", None).await.is_err(),
        "closed after one answer"
    );
    let node = f.pki.client("inps-pesaro");
    let r = node.get(&format!("{base}/")).await.unwrap();
    assert_eq!(r.status, 403);
    assert!(text(&r).contains("certificato di un nodo"), "{}", text(&r));
    // And an operator certificate opens no API port.
    let clerk = f.pki.operator("inps-pesaro", "mario.rossi");
    assert!(get(&clerk, &f.inps.url("/v1/audit/checkpoint"))
        .await
        .is_err());

    // A cross-site POST: no token, a token with a foreign Origin, no Origin at all.
    let token = csrf(&text(
        &clerk.get(&format!("{base}/verifica")).await.unwrap(),
    ));
    let person = f.sample("resident with valid permit")["cf"]
        .as_str()
        .unwrap()
        .to_owned();
    let form = |t: &str| format!("csrf={t}&subject={person}&purpose=benefit-eligibility");
    type Headers<'a> = &'a [(&'static str, &'a str)];
    let cases: [(Headers, String, &str); 5] = [
        (&[("origin", &origin)], form(""), "modulo scaduto"),
        (
            &[("origin", &origin)],
            form(&"0".repeat(64)),
            "modulo scaduto",
        ),
        (
            &[("origin", "https://evil.example")],
            form(&token),
            "altro sito",
        ),
        (&[], form(&token), "senza intestazione Origin"),
        (
            &[("origin", &origin), ("sec-fetch-site", "cross-site")],
            form(&token),
            "altro sito",
        ),
    ];
    for (headers, body, why) in cases {
        let r = post_form(&clerk, &base, "/verifica", headers, body).await;
        assert_eq!(r.status, 403, "{headers:?}");
        assert!(text(&r).contains(why), "{headers:?}: {}", text(&r));
    }
    // Another operator's token is not Mario's.
    let anna = f.pki.operator("inps-pesaro", "anna.verdi");
    let r = post_form(
        &anna,
        &base,
        "/verifica",
        &[("origin", &origin)],
        form(&token),
    )
    .await;
    assert_eq!(r.status, 403);
    // Nothing of it reached the log as a question.
    let auditor = f.pki.client("garante-audit");
    let r = auditor
        .get(&f.inps.url("/v1/audit/entries?start=0&end=1000"))
        .await
        .unwrap();
    assert!(!text(&r).contains("POST /v1/status"), "{}", text(&r));

    // Revoked: refused at the handshake, once the node has the new CRL.
    f.pki
        .ca
        .revoke_operator(
            &attesta_certs::AgencyId::new("inps-pesaro").unwrap(),
            &attesta_certs::OperatorName::new("mario.rossi").unwrap(),
        )
        .unwrap();
    eventually(|| async {
        match clerk.get(&format!("{base}/")).await {
            Err(_) => Some(()),
            Ok(r) if r.status == 403 => Some(()),
            Ok(_) => None,
        }
    })
    .await;
    // Anna, not revoked, still signs in.
    let r = anna.get(&format!("{base}/")).await.unwrap();
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_without_the_role_gets_a_403_page_and_a_role_given_applies_at_once() {
    let mut f = with_console().await;
    let base = console(&f);
    let origin = format!("https://{}", base.trim_start_matches("https://"));
    let anna = f.pki.operator("inps-pesaro", "anna.verdi");
    roles(&f, "[operators]\n\"anna.verdi\" = [\"auditor\"]\n");
    let home = text(&anna.get(&format!("{base}/")).await.unwrap());
    assert!(home.contains("revisore"), "{home}");
    assert!(
        !home.contains("href=\"/verifica\""),
        "no link to what she may not do: {home}"
    );
    let r = anna.get(&format!("{base}/verifica")).await.unwrap();
    assert_eq!(r.status, 403);
    let page = text(&r);
    assert!(
        page.contains("Ruolo mancante") && page.contains("clerk"),
        "{page}"
    );
    assert!(!page.contains("name=\"subject\""), "no form: {page}");
    // A POST is refused for the role before its form is read.
    let token = "0".repeat(64);
    let person = f.sample("resident with valid permit")["cf"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = post_form(
        &anna,
        &base,
        "/verifica",
        &[("origin", &origin)],
        format!("csrf={token}&subject={person}&purpose=benefit-eligibility"),
    )
    .await;
    assert_eq!(r.status, 403);
    // Given the role, she checks, with no restart.
    roles(
        &f,
        "[operators]\n\"anna.verdi\" = [\"auditor\", \"clerk\"]\n",
    );
    let r = anna.get(&format!("{base}/verifica")).await.unwrap();
    assert_eq!(r.status, 200);
    // A broken operators.toml gives nobody a role (and the node says so in its log).
    roles(&f, "[operators]\n\"anna.verdi\" = [\"boss\"]\n");
    let r = anna.get(&format!("{base}/verifica")).await.unwrap();
    assert_eq!(r.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_verifies_a_pasted_attestation_and_a_tampered_one_is_refused() {
    let mut f = with_console().await;
    let base = console(&f);
    let origin = format!("https://{}", base.trim_start_matches("https://"));
    let clerk = f.pki.operator("inps-pesaro", "mario.rossi");
    roles(&f, "[operators]\n\"mario.rossi\" = [\"clerk\"]\n");
    // An attestation, as a citizen or another office would bring it: Pesaro's signed answer.
    let person = f.sample("resident with valid permit")["cf"]
        .as_str()
        .unwrap()
        .to_owned();
    let inps = f.pki.client("inps-pesaro");
    let r = inps
        .post(
            &f.inps.url("/v1/status"),
            "application/json",
            Bytes::from(json!({"subject": person, "purpose": "benefit-eligibility"}).to_string()),
        )
        .await
        .unwrap();
    let answer: Value = r.json().unwrap();
    let jws = answer["attestations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .find(|t| {
            attesta::attestation::verify(&f.pki.trust(), t)
                .unwrap()
                .signer
                .agency()
                .as_str()
                == "comune-pesaro"
        })
        .unwrap();

    let page = text(&clerk.get(&format!("{base}/attestato")).await.unwrap());
    let token = csrf(&page);
    let encode = |s: &str| s.replace('+', "%2B").replace('=', "%3D");
    let ask = |jws: String| {
        let (clerk, base, origin, token) = (&clerk, &base, &origin, &token);
        async move {
            let r = post_form(
                clerk,
                base,
                "/attestato",
                &[("origin", origin)],
                format!("csrf={token}&token={}", encode(&jws)),
            )
            .await;
            assert_eq!(r.status, 200, "{}", text(&r));
            text(&r)
        }
    };
    let page = ask(jws.clone()).await;
    assert!(page.contains("Attestato valido"), "{page}");
    assert!(
        page.contains("comune-pesaro") && page.contains(&person),
        "{page}"
    );
    // One byte of the payload changed: refused, with the reason.
    let mut parts: Vec<String> = jws.split('.').map(str::to_owned).collect();
    let mut payload = parts[1].clone().into_bytes();
    payload[10] = if payload[10] == b'A' { b'B' } else { b'A' };
    parts[1] = String::from_utf8(payload).unwrap();
    let page = ask(parts.join(".")).await;
    assert!(page.contains("Attestato non valido"), "{page}");
    // Markup in what was pasted is shown as text.
    let page = ask("<script>alert(1)</script>".into()).await;
    assert!(page.contains("Attestato non valido"), "{page}");
    assert!(!page.contains("<script>"), "{page}");
    assert!(page.contains("&lt;script&gt;"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_officer_reads_the_policy_and_the_policy_answers_their_question() {
    let mut f = with_console().await;
    let base = console(&f);
    let officer = f.pki.operator("inps-pesaro", "giulia.verdi");
    let clerk = f.pki.operator("inps-pesaro", "mario.rossi");
    roles(
        &f,
        "[operators]\n\"giulia.verdi\" = [\"policy-officer\"]\n\"mario.rossi\" = [\"clerk\"]\n",
    );
    let page = text(&officer.get(&format!("{base}/politica")).await.unwrap());
    assert!(page.contains("versione 2"), "{page}");
    assert!(
        page.contains("<td>benefit-eligibility</td>"),
        "the rules: {page}"
    );
    assert!(page.contains("comune-pesaro"), "the directory: {page}");
    let ask = |q: &str| {
        let (officer, base) = (&officer, &base);
        let q = q.to_owned();
        async move {
            let r = officer.get(&format!("{base}/politica?{q}")).await.unwrap();
            assert_eq!(r.status, 200, "{}", text(&r));
            text(&r)
        }
    };
    let yes = ask("agency=inps-pesaro&resource=status&purpose=benefit-eligibility&comune=").await;
    assert!(
        yes.contains("<h3>Sì</h3>") && yes.contains("p, consumer, status"),
        "{yes}"
    );
    let no = ask("agency=inps-pesaro&resource=family&purpose=benefit-eligibility").await;
    assert!(no.contains("<h3>No</h3>"), "{no}");
    // A hostile value is text, and an unknown parameter is refused.
    let odd = ask("agency=%3Cb%3Ex%3C%2Fb%3E&resource=status&purpose=x").await;
    assert!(
        odd.contains("&lt;b&gt;x&lt;/b&gt;") && !odd.contains("<b>x</b>"),
        "{odd}"
    );
    let r = officer
        .get(&format!("{base}/politica?agency=a&agency=b"))
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    // A clerk is not a policy officer.
    let r = clerk.get(&format!("{base}/politica")).await.unwrap();
    assert_eq!(r.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nodes_operator_grants_and_revokes_console_roles_from_the_command_line() {
    let mut f = with_console().await;
    let base = console(&f);
    let anna = f.pki.operator("inps-pesaro", "anna.verdi");
    let config = f.inps.config_path.display().to_string();
    let run = |args: &[&str]| {
        let mut cmd = crate::cli::attesta();
        cmd.arg("operator").args(args).args(["--config", &config]);
        let o = tokio::task::block_in_place(|| cmd.output().unwrap());
        (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    };
    let page = |r: &Reply| r.status;
    assert_eq!(
        page(&anna.get(&format!("{base}/verifica")).await.unwrap()),
        403
    );
    let (ok, said) = run(&["grant", "--operator", "anna.verdi", "--role", "clerk"]);
    assert!(ok && said.contains("anna.verdi is clerk"), "{said}");
    assert_eq!(
        page(&anna.get(&format!("{base}/verifica")).await.unwrap()),
        200
    );
    let (ok, said) = run(&["grant", "--operator", "anna.verdi", "--role", "auditor"]);
    assert!(ok, "{said}");
    let (ok, said) = run(&["list"]);
    assert!(ok && said.contains("anna.verdi\tclerk, auditor"), "{said}");
    let (ok, said) = run(&["revoke", "--operator", "anna.verdi", "--role", "clerk"]);
    assert!(ok, "{said}");
    assert_eq!(
        page(&anna.get(&format!("{base}/verifica")).await.unwrap()),
        403
    );
    // Bad input: one line naming the option.
    let (ok, said) = run(&["grant", "--operator", "anna.verdi", "--role", "boss"]);
    assert!(!ok && said.contains("--role \"boss\""), "{said}");
    let (ok, said) = run(&["grant", "--operator", "Anna Verdi", "--role", "clerk"]);
    assert!(!ok && said.contains("--operator"), "{said}");
    let (ok, said) = run(&["revoke", "--operator", "anna.verdi", "--all"]);
    assert!(ok && said.contains("no role"), "{said}");
    let (_, said) = run(&["list"]);
    assert!(!said.contains("anna.verdi"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_officer_sees_the_nodes_datasets_and_others_do_not() {
    let f = Federation::start(|_| {}).await;
    // Pesaro's node, restarted with a console: its registry officer sees its residents.
    let crate::status::Federation {
        mut pki, pesaro, ..
    } = f;
    let (_pesaro, base) = pesaro_with_console(&mut pki, pesaro).await;
    give_roles(
        &pki,
        "comune-pesaro",
        "[operators]\n\"laura.bianchi\" = [\"registry-officer\"]\n\"mario.rossi\" = [\"clerk\"]\n",
    );
    let laura = pki.operator("comune-pesaro", "laura.bianchi");
    let r = laura.get(&format!("{base}/anagrafe")).await.unwrap();
    assert_eq!(r.status, 200, "{}", text(&r));
    let page = text(&r);
    assert!(page.contains("<td>residenti</td>"), "{page}");
    assert!(
        !page.contains("permessi di soggiorno"),
        "Pesaro keeps no permits: {page}"
    );
    assert!(
        page.contains(&format!("<td>{}</td>", "2026-11-23")),
        "the data's date: {page}"
    );
    let mario = pki.operator("comune-pesaro", "mario.rossi");
    let r = mario.get(&format!("{base}/anagrafe")).await.unwrap();
    assert_eq!(r.status, 403);
}

const BOUNDARY: &str = "attesta-test-boundary-7f3a";
const MULTIPART: &str = "multipart/form-data; boundary=attesta-test-boundary-7f3a";

/// A `multipart/form-data` body of `fields` then, if given, the file `(field, name, bytes)`.
fn multipart(fields: &[(&str, &str)], file: Option<(&str, &str, &[u8])>) -> Bytes {
    let boundary = BOUNDARY;
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    if let Some((k, name, bytes)) = file {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"; filename=\"{name}\"\r\nContent-Type: text/csv\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Bytes::from(body)
}

/// POSTs a multipart `body` to `path` of the console at `base`, from
/// the console's own origin.
async fn post_multipart(client: &Client, base: &str, path: &str, body: Bytes) -> Reply {
    let mut conn = client.connect(base).await.unwrap();
    conn.send_with(
        Method::POST,
        path,
        &[("origin", base)],
        Some((MULTIPART, body)),
    )
    .await
    .unwrap()
}

/// The entries of `node`'s log, read as an auditor, once `ready` says they hold what the
/// test waits for (a checkpoint covers an entry a moment after it is written).
async fn entries_once(
    pki: &mut Pki,
    node: &TestNode,
    ready: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let auditor = pki.client("garante-audit");
    eventually(|| async {
        let r = auditor.get(&node.url("/v1/audit/checkpoint")).await.ok()?;
        let size: u64 = String::from_utf8(r.body.to_vec())
            .ok()?
            .lines()
            .nth(1)?
            .parse()
            .ok()?;
        let r = auditor
            .get(&node.url(&format!("/v1/audit/entries?start=0&end={size}")))
            .await
            .ok()?;
        let page: Value = r.json().ok()?;
        let entries = page["entries"].as_array()?.clone();
        ready(&entries).then_some(entries)
    })
    .await
}

/// The manifest version `node` has in force, from its `/readyz`.
async fn manifest_version(client: &Client, node: &TestNode) -> Option<u64> {
    let r = client.get(&node.url("/readyz")).await.ok()?;
    r.json::<Value>().ok()?["manifest_version"].as_u64()
}

/// The value of the hidden field `name` in the form on `page`.
fn hidden(page: &str, name: &str) -> String {
    let key = format!("name=\"{name}\" value=\"");
    let at = page
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + key.len();
    page[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_officer_uploads_a_file_sees_its_bad_rows_then_applies_a_good_one() {
    let f = Federation::start(|_| {}).await;
    let generated = f.pki.dir.path().join("generated").join("residents.csv");
    let crate::status::Federation {
        mut pki, pesaro, ..
    } = f;
    let (pesaro, base) = pesaro_with_console(&mut pki, pesaro).await;
    give_roles(
        &pki,
        "comune-pesaro",
        "[operators]\n\"laura.bianchi\" = [\"registry-officer\"]\n",
    );
    let laura = pki.operator("comune-pesaro", "laura.bianchi");
    let page = text(&laura.get(&format!("{base}/anagrafe")).await.unwrap());
    assert!(
        page.contains("enctype=\"multipart/form-data\""),
        "an upload form: {page}"
    );
    let token = csrf(&page);
    let residents = std::fs::read_to_string(generated).unwrap();
    let mut lines = residents.lines();
    let header = lines.next().unwrap();
    let pesaro_rows: Vec<&str> = lines
        .filter(|l| l.split(',').nth(7) == Some("041044"))
        .collect();
    let before = pesaro_rows.len();

    // A file with a bad codice fiscale and a hostile name on line 3: the report names the
    // line, shows the row's text escaped, and nothing is imported.
    let good = pesaro_rows[0];
    let mut fields: Vec<String> = pesaro_rows[1].split(',').map(str::to_owned).collect();
    fields[0] = "<b>NOTACF</b>".into();
    let bad = format!("{header}\n{good}\n{}\n", fields.join(","));
    let r = post_multipart(
        &laura,
        &base,
        "/anagrafe/carica",
        multipart(
            &[
                ("csrf", &token),
                ("dataset", "residents"),
                ("mode", "snapshot"),
                ("as_of", ""),
            ],
            Some(("file", "<i>elenco</i>.csv", bad.as_bytes())),
        ),
    )
    .await;
    let page = text(&r);
    assert_eq!(r.status, 422, "{page}");
    assert!(page.contains("Righe non valide: 1 su 2"), "{page}");
    assert!(page.contains("<td>3</td>"), "the line number: {page}");
    assert!(
        !page.contains("<i>elenco</i>") && page.contains("&lt;i&gt;elenco&lt;/i&gt;.csv"),
        "the file's name, escaped: {page}"
    );
    assert!(!page.contains("<b>NOTACF"), "{page}");
    assert!(!page.contains("name=\"id\""), "no apply button: {page}");

    // Without the token first, nothing is read.
    let r = post_multipart(
        &laura,
        &base,
        "/anagrafe/carica",
        multipart(
            &[("dataset", "residents"), ("csrf", &token)],
            Some(("file", "x.csv", bad.as_bytes())),
        ),
    )
    .await;
    assert_eq!(r.status, 403, "{}", text(&r));

    // A delta that changes one resident's address: checked, then applied on confirmation.
    let mut changed: Vec<String> = good.split(',').map(str::to_owned).collect();
    changed[8] = "VIA DELLE PROVE 1".into();
    let delta = format!("op,{header}\nupsert,{}\n", changed.join(","));
    let r = post_multipart(
        &laura,
        &base,
        "/anagrafe/carica",
        multipart(
            &[
                ("csrf", &token),
                ("dataset", "residents"),
                ("mode", "delta"),
                ("as_of", "2026-11-30"),
            ],
            Some(("file", "variazioni.csv", delta.as_bytes())),
        ),
    )
    .await;
    let page = text(&r);
    assert_eq!(r.status, 200, "{page}");
    assert!(page.contains("Tutte le righe sono valide (1)"), "{page}");
    let id = hidden(&page, "id");
    // Not applied yet.
    let page = text(&laura.get(&format!("{base}/anagrafe")).await.unwrap());
    assert!(!page.contains("2026-11-30"), "{page}");

    let r = post_form(
        &laura,
        &base,
        "/anagrafe/applica",
        &[("origin", &base)],
        format!("csrf={token}&id={id}"),
    )
    .await;
    let page = text(&r);
    assert_eq!(r.status, 200, "{page}");
    assert!(page.contains("Importazione applicata"), "{page}");
    assert!(page.contains("Righe applicate: 1"), "{page}");
    assert!(
        page.contains(&format!("righe nell'archivio: {before}")),
        "{page}"
    );
    assert!(
        page.contains("<td>2026-11-30</td>"),
        "the data's new date: {page}"
    );
    assert!(
        page.contains(
            "aggiornamento (righe aggiunte, modificate, cancellate); righe lette 1, applicate 1"
        ),
        "the last import's summary: {page}"
    );
    // Applied once: the same form again finds nothing waiting.
    let r = post_form(
        &laura,
        &base,
        "/anagrafe/applica",
        &[("origin", &base)],
        format!("csrf={token}&id={id}"),
    )
    .await;
    assert_eq!(r.status, 422, "{}", text(&r));

    // The import is the agency's request, made by Laura.
    let entries = entries_once(&mut pki, &pesaro, |es| {
        es.iter().any(|e| e["operator"] == "laura.bianchi")
    })
    .await;
    let imports: Vec<&Value> = entries
        .iter()
        .filter(|e| e["route"] == "POST /v1/admin/import/residents")
        .collect();
    let import = imports.last().expect("the import's entry");
    assert_eq!(import["operator"], "laura.bianchi", "{import}");
    assert_eq!(import["decision"], "allow", "{import}");
    assert_eq!(import["status"], 200, "{import}");
    assert_eq!(
        imports
            .iter()
            .filter(|e| e["operator"] == "laura.bianchi")
            .count(),
        1,
        "the bad file never reached the import: {imports:?}"
    );
    // The summary survives a restart (it is kept with the data).
    let (_pesaro, base) = pesaro_with_console(&mut pki, pesaro).await;
    let page = text(&laura.get(&format!("{base}/anagrafe")).await.unwrap());
    assert!(page.contains("righe lette 1, applicate 1"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_officer_lists_expiring_permits_from_the_questura_as_a_page_and_as_csv() {
    let f = Federation::start(|_| {}).await;
    let crate::status::Federation {
        mut pki,
        pesaro,
        questura,
        ..
    } = f;
    let (pesaro, base) = pesaro_with_console(&mut pki, pesaro).await;
    give_roles(
        &pki,
        "comune-pesaro",
        "[operators]\n\"laura.bianchi\" = [\"registry-officer\"]\n",
    );
    let laura = pki.operator("comune-pesaro", "laura.bianchi");
    let page = text(&laura.get(&format!("{base}/anagrafe")).await.unwrap());
    assert!(page.contains("Permessi in scadenza"), "{page}");
    assert!(
        page.contains(
            "La politica in vigore non concede a comune-pesaro di consultare lo stato di famiglia"
        ),
        "family data is the Questura's only: {page}"
    );
    let token = csrf(&page);
    let ask = |format: &str| {
        format!("csrf={token}&days=366&purpose=registry-update&comune=&format={format}")
    };
    let r = post_form(
        &laura,
        &base,
        "/anagrafe/scadenze",
        &[("origin", &base)],
        ask("html"),
    )
    .await;
    let page = text(&r);
    assert_eq!(r.status, 200, "{page}");
    assert!(page.contains("Da questura-pu"), "{page}");
    let shown = page.matches("<tr><td>").count();
    assert!(shown > 0, "some permits expire within a year: {page}");

    let r = post_form(
        &laura,
        &base,
        "/anagrafe/scadenze",
        &[("origin", &base)],
        ask("csv"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(
        r.headers.get("content-type").unwrap(),
        "text/csv; charset=utf-8"
    );
    assert!(r
        .headers
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"permessi-in-scadenza-041044-"));
    let csv = text(&r);
    let mut rows = csv.lines();
    assert_eq!(
        rows.next(),
        Some("codice_fiscale,scadenza,rinnovo_in_corso,questura,dati_al")
    );
    assert_eq!(rows.count(), shown, "{csv}");

    // A purpose the policy does not give the comune is refused before anything is asked.
    let r = post_form(
        &laura,
        &base,
        "/anagrafe/scadenze",
        &[("origin", &base)],
        format!("csrf={token}&days=30&purpose=benefit-eligibility&comune=&format=html"),
    )
    .await;
    assert_eq!(r.status, 422, "{}", text(&r));

    // Pesaro's log has one outgoing entry per list asked, naming Laura; the Questura's has
    // the comune's incoming request with the same query id.
    let mine = entries_once(&mut pki, &pesaro, |es| {
        es.iter()
            .filter(|e| e["route"] == "GET /v1/monitor/expiring")
            .count()
            >= 2
    })
    .await;
    let out: Vec<&Value> = mine
        .iter()
        .filter(|e| e["route"] == "GET /v1/monitor/expiring")
        .collect();
    assert_eq!(out.len(), 2, "{mine:?}");
    for e in &out {
        assert_eq!(e["direction"], "outgoing", "{e}");
        assert_eq!(e["operator"], "laura.bianchi", "{e}");
        assert_eq!(e["peer_agency"], "questura-pu", "{e}");
    }
    let theirs = entries_once(&mut pki, &questura, |es| {
        es.iter().any(|e| {
            e["route"] == "GET /v1/monitor/expiring" && e["query_id"] == out[0]["query_id"]
        })
    })
    .await;
    assert!(theirs
        .iter()
        .any(|e| e["route"] == "GET /v1/monitor/expiring"
            && e["query_id"] == out[0]["query_id"]
            && e["peer_agency"] == "comune-pesaro"
            && e["decision"] == "allow"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_officer_edits_a_draft_confirms_and_publishes_it_to_every_node() {
    let mut pki = Pki::new();
    let prefettura = start_node_bare(&mut pki, PREFETTURA, |c| {
        c.console = Some(attesta::config::ConsoleConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
        });
    })
    .await;
    let mut others = Vec::new();
    for (id, serves) in [
        ("questura-pu", "legal-presence"),
        ("comune-pesaro", "residence"),
    ] {
        let url = prefettura.url.clone();
        others.push(
            start_node_bare(&mut pki, id, |c| {
                c.serves = vec![serves.into()];
                c.manifest.url = Some(url);
                c.manifest.refresh_secs = 3600;
            })
            .await,
        );
    }
    let entry = |n: &TestNode, serves: &[&str], comuni: &[&str]| json!({"agency": n.agency, "url": n.url, "serves": serves, "comuni": comuni});
    let directory = json!([
        entry(&prefettura, &[], &[]),
        entry(&others[0], &["legal-presence"], &[]),
        entry(&others[1], &["residence"], &["041044"]),
    ]);
    let r = pki
        .client(PREFETTURA)
        .post(
            &prefettura.url("/v1/manifest"),
            "application/json",
            Bytes::from(
                json!({"policy": attesta_policy::DEFAULT_POLICY, "directory": directory})
                    .to_string(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", text(&r));
    give_roles(
        &pki,
        PREFETTURA,
        "[operators]\n\"giulia.verdi\" = [\"policy-officer\"]\n",
    );
    let base = prefettura.console_url.clone().unwrap();
    let giulia = pki.operator(PREFETTURA, "giulia.verdi");
    let page = text(&giulia.get(&format!("{base}/politica/bozza")).await.unwrap());
    assert!(page.contains("Nessuna modifica in bozza"), "{page}");
    let token = csrf(&page);
    let edit = |fields: &str| format!("csrf={token}&{fields}");
    let grant = "subject=inps-pesaro&resource=residence&action=read&purpose=pension-check&territory=*&effect=allow";

    // Adding a rule: back to the draft (303), which shows the difference.
    let r = post_form(
        &giulia,
        &base,
        "/politica/bozza",
        &[("origin", &base)],
        edit(&format!("op=add&{grant}")),
    )
    .await;
    assert_eq!(r.status, 303, "{}", text(&r));
    assert_eq!(
        r.headers.get("location").unwrap(),
        "/politica/bozza?esito=aggiunta"
    );
    let page = text(
        &giulia
            .get(&format!("{base}/politica/bozza?esito=aggiunta"))
            .await
            .unwrap(),
    );
    assert!(page.contains("Regola aggiunta alla bozza."), "{page}");
    assert!(
        page.contains("aggiunta: </span><code>p, inps-pesaro, residence, read, pension-check, *, allow</code>"),
        "{page}"
    );
    // The same rule twice, and a hostile name, are refused with the reason; the name is
    // shown escaped.
    let r = post_form(
        &giulia,
        &base,
        "/politica/bozza",
        &[("origin", &base)],
        edit(&format!("op=add&{grant}")),
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(
        text(&r).contains("questa regola c&#39;è già")
            || text(&r).contains("questa regola c'è già"),
        "{}",
        text(&r)
    );
    let r = post_form(
        &giulia,
        &base,
        "/politica/bozza",
        &[("origin", &base)],
        edit("op=add&subject=%3Cscript%3Ex%3C%2Fscript%3E&resource=status&action=read&purpose=x&territory=*&effect=allow"),
    )
    .await;
    let page = text(&r);
    assert_eq!(r.status, 422, "{page}");
    assert!(
        !page.contains("<script>") && page.contains("&lt;script&gt;"),
        "{page}"
    );

    // Nothing is in force yet.
    let probe = pki.client("questura-pu");
    assert_eq!(
        manifest_version(&probe, &others[1]).await,
        Some(1),
        "not published yet"
    );

    // The confirmation names the next version; a stale confirmation is refused.
    let page = text(
        &giulia
            .get(&format!("{base}/politica/pubblica"))
            .await
            .unwrap(),
    );
    assert!(page.contains("Confermo: pubblica la versione 2"), "{page}");
    assert_eq!(hidden(&page, "expected_version"), "1");
    let r = post_form(
        &giulia,
        &base,
        "/politica/pubblica",
        &[("origin", &base)],
        format!("csrf={token}&expected_version=0"),
    )
    .await;
    assert_eq!(r.status, 422, "{}", text(&r));
    assert!(text(&r).contains("pubblicazione rifiutata"), "{}", text(&r));

    let r = post_form(
        &giulia,
        &base,
        "/politica/pubblica",
        &[("origin", &base)],
        format!("csrf={token}&expected_version=1"),
    )
    .await;
    let page = text(&r);
    assert_eq!(r.status, 200, "{page}");
    assert!(
        page.contains("Pubblicato il manifesto versione <strong>2</strong>"),
        "{page}"
    );
    assert!(
        page.contains("questura-pu: avvisato") && page.contains("comune-pesaro: avvisato"),
        "{page}"
    );
    for n in &others {
        eventually(|| async { (manifest_version(&probe, n).await == Some(2)).then_some(()) }).await;
    }
    // Every node runs version 2, as the Prefettura's console shows.
    let page = text(&giulia.get(&format!("{base}/politica/nodi")).await.unwrap());
    assert_eq!(page.matches("<td>aggiornato</td>").count(), 3, "{page}");
    assert!(
        !page.contains("indietro") && !page.contains("non raggiungibile"),
        "{page}"
    );
    // The draft is gone: what it held is in force.
    let page = text(&giulia.get(&format!("{base}/politica/bozza")).await.unwrap());
    assert!(
        page.contains("Nessuna modifica in bozza") && page.contains("pension-check"),
        "{page}"
    );
    // The publish is the Prefettura's request, made by Giulia.
    let entries = entries_once(&mut pki, &prefettura, |es| {
        es.iter().any(|e| {
            e["route"] == "POST /v1/manifest"
                && e["status"] == 200
                && e["operator"] == "giulia.verdi"
        })
    })
    .await;
    // The stale confirmation is on record too, refused.
    assert!(
        entries.iter().any(|e| e["route"] == "POST /v1/manifest"
            && e["status"] == 409
            && e["operator"] == "giulia.verdi"),
        "{entries:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_reads_checkpoints_filters_entries_verifies_a_log_and_prints_a_citizen_report() {
    let mut f = Federation::start(|_| {}).await;
    // INPS asks about a person, as an agency: one question, four entries in three logs.
    let person = f.sample("resident with valid permit")["cf"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = f
        .pki
        .client("inps-pesaro")
        .post(
            &f.inps.url("/v1/status"),
            "application/json",
            Bytes::from(json!({"subject": person, "purpose": "benefit-eligibility"}).to_string()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", text(&r));

    // The Garante's node, with a console, and the manifest with the real directory.
    let garante = start_node(&mut f.pki, "garante-audit", |c| {
        c.console = Some(attesta::config::ConsoleConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
        })
    })
    .await;
    let manifest = attesta_policy::Manifest {
        directory: f.directory(),
        ..test_manifest(2, &test_policy())
    };
    let token = f.pki.sign_manifest(PREFETTURA, &manifest);
    let r = f
        .pki
        .client(PREFETTURA)
        .post(
            &garante.url("/v1/manifest/notify"),
            "application/jose",
            Bytes::from(token),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", text(&r));
    give_roles(
        &f.pki,
        "garante-audit",
        "[operators]\n\"elena.neri\" = [\"auditor\"]\n",
    );
    let base = garante.console_url.clone().unwrap();
    let elena = f.pki.operator("garante-audit", "elena.neri");

    // Every log's checkpoint, with its cosignatures.
    let r = elena.get(&format!("{base}/registro")).await.unwrap();
    let page = text(&r);
    assert_eq!(r.status, 200, "{page}");
    for agency in [
        "comune-pesaro",
        "comune-urbino",
        "questura-pu",
        "inps-pesaro",
    ] {
        assert!(
            page.contains(&format!("<td>{agency}</td>")),
            "{agency}: {page}"
        );
    }
    assert!(!page.contains("non disponibile"), "{page}");

    // Pesaro's entries, filtered to allowed ones for the purpose: INPS's question is there
    // once a checkpoint covers it.
    let page = eventually(|| async {
        let r = elena
            .get(&format!(
                "{base}/registro/voci?registro=comune-pesaro&esito=allow&finalita=benefit-eligibility"
            ))
            .await
            .ok()?;
        assert_eq!(r.status, 200, "{}", text(&r));
        let page = text(&r);
        page.contains("<td>inps-pesaro</td>").then_some(page)
    })
    .await;
    assert!(!page.contains("data-load"), "filtered out: {page}");
    // A page fetched by another site is refused.
    let mut conn = elena.connect(&base).await.unwrap();
    let r = conn
        .send_with(
            Method::GET,
            "/registro/voci?registro=comune-pesaro",
            &[("sec-fetch-site", "cross-site")],
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 403);

    // The Questura's log verified from the browser: the job's page says so.
    let page = text(
        &elena
            .get(&format!("{base}/registro/verifica"))
            .await
            .unwrap(),
    );
    let token = csrf(&page);
    let r = post_form(
        &elena,
        &base,
        "/registro/verifica",
        &[("origin", &base)],
        format!("csrf={token}&registro=questura-pu"),
    )
    .await;
    assert_eq!(r.status, 303, "{}", text(&r));
    let job = r
        .headers
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let page = eventually(|| async {
        let page = text(&elena.get(&format!("{base}{job}")).await.ok()?);
        (!page.contains("in corso")).then_some(page)
    })
    .await;
    assert!(
        page.contains("Registro di questura-pu verificato"),
        "{page}"
    );

    // The citizen's report: one line per question, naming who asked and whom (every
    // registry, as no comune was named, and the Questura).
    let r = post_form(
        &elena,
        &base,
        "/registro/persona",
        &[("origin", &base)],
        format!("csrf={token}&subject={person}"),
    )
    .await;
    let page = text(&r);
    assert_eq!(r.status, 200, "{page}");
    assert!(page.contains("(1 in tutto)"), "one question: {page}");
    assert!(
        page.contains("<td>inps-pesaro</td><td>comune-pesaro, comune-urbino, questura-pu</td>"),
        "{page}"
    );
    assert!(
        page.contains("Verifica dei requisiti per una prestazione"),
        "{page}"
    );

    // The Garante's log names Elena on every call she made.
    let mine = entries_once(&mut f.pki, &garante, |es| {
        es.iter()
            .any(|e| e["route"] == "POST /v1/audit/subject-report")
    })
    .await;
    let calls: Vec<&Value> = mine
        .iter()
        .filter(|e| e["direction"] == "outgoing")
        .collect();
    assert!(!calls.is_empty());
    for e in calls {
        assert_eq!(e["operator"], "elena.neri", "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_speak_english_when_the_browser_or_the_operator_asks_and_italian_otherwise() {
    let mut f = with_console().await;
    let base = console(&f);
    let origin = format!("https://{}", base.trim_start_matches("https://"));
    let anna = f.pki.operator("inps-pesaro", "anna.verdi");
    roles(&f, "[operators]\n\"anna.verdi\" = [\"clerk\"]\n");
    let get = |headers: Vec<(&'static str, String)>, path: &'static str| {
        let (anna, base) = (&anna, base.clone());
        async move {
            let h: Vec<(&'static str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let mut conn = anna.connect(&base).await.unwrap();
            conn.send_with(Method::GET, path, &h, None).await.unwrap()
        }
    };
    // No preference: Italian.
    let page = text(&get(vec![], "/verifica").await);
    assert!(
        page.contains("<html lang=\"it\"") && page.contains("Codice fiscale"),
        "{page}"
    );
    // The browser prefers English.
    let r = get(
        vec![("accept-language", "en-GB,en;q=0.9,it;q=0.5".into())],
        "/verifica",
    )
    .await;
    let page = text(&r);
    assert!(page.contains("<html lang=\"en\""), "{page}");
    assert!(
        page.contains("Tax code (codice fiscale)") && page.contains("Purpose"),
        "{page}"
    );
    assert!(!page.contains("Finalità"), "no Italian label left: {page}");
    // The switch offers the other language, in its own words.
    assert!(
        page.contains("lang=\"it\"") && page.contains("Italiano"),
        "{page}"
    );
    // A missing role, in English.
    let r = get(vec![("accept-language", "en".into())], "/politica").await;
    assert_eq!(r.status, 403);
    assert!(text(&r).contains("Missing role"), "{}", text(&r));
    // The operator's choice wins over the browser's, and is kept in a cookie.
    let token = csrf(&page);
    let r = post_form(
        &anna,
        &base,
        "/lingua",
        &[("origin", &origin)],
        format!("csrf={token}&lingua=it&torna=%2Fverifica"),
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.headers["location"], "/verifica");
    let cookie = r.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("attesta-lingua=it;"), "{cookie}");
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    let r = get(
        vec![
            ("accept-language", "en".into()),
            ("cookie", "attesta-lingua=it".into()),
        ],
        "/verifica",
    )
    .await;
    assert!(text(&r).contains("<html lang=\"it\""), "{}", text(&r));
    // The switch returns only to a page of this console.
    for evil in [
        "%2F%2Fevil.example",
        "https%3A%2F%2Fevil.example",
        "%2F%5Cevil.example",
    ] {
        let r = post_form(
            &anna,
            &base,
            "/lingua",
            &[("origin", &origin)],
            format!("csrf={token}&lingua=en&torna={evil}"),
        )
        .await;
        assert_eq!(r.status, 303, "{evil}");
        assert_eq!(r.headers["location"], "/", "{evil}");
    }
    // Like any form: without the token, or from another site, it is refused.
    let r = post_form(
        &anna,
        &base,
        "/lingua",
        &[("origin", &origin)],
        "lingua=en&torna=%2F".into(),
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(r.headers.get("set-cookie").is_none());
    let r = post_form(
        &anna,
        &base,
        "/lingua",
        &[("origin", "https://evil.example")],
        format!("csrf={token}&lingua=en&torna=%2F"),
    )
    .await;
    assert_eq!(r.status, 403);
    // An unknown language is a clear error, not a cookie.
    let r = post_form(
        &anna,
        &base,
        "/lingua",
        &[("origin", &origin)],
        format!("csrf={token}&lingua=xx&torna=%2F"),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(text(&r).contains("lingua sconosciuta"), "{}", text(&r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_officer_sees_a_family_once_the_policy_grants_it_and_not_before() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", |c| {
        c.serves = vec!["residence".into()];
        c.console = Some(attesta::config::ConsoleConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
        });
    })
    .await;
    let base = node.console_url.clone().unwrap();
    crate::data::import_two_families(&pki, &node);
    give_roles(
        &pki,
        "comune-pesaro",
        "[operators]\n\"laura.bianchi\" = [\"registry-officer\"]\n",
    );
    let laura = pki.operator("comune-pesaro", "laura.bianchi");
    let origin = format!("https://{}", base.trim_start_matches("https://"));
    // The policy in force gives the comune no family data: the page says so, with no form.
    let page = text(&laura.get(&format!("{base}/anagrafe")).await.unwrap());
    assert!(
        page.contains("non concede a comune-pesaro di consultare lo stato di famiglia"),
        "{page}"
    );
    assert!(!page.contains("action=\"/anagrafe/famiglia\""), "{page}");
    let token = csrf(&page);
    let post = |purpose: &'static str| {
        let (laura, base, origin, token) = (&laura, base.clone(), origin.clone(), token.clone());
        async move {
            post_form(
                laura,
                &base,
                "/anagrafe/famiglia",
                &[("origin", &origin)],
                format!("csrf={token}&subject=RSSMRA85T10A562S&purpose={purpose}"),
            )
            .await
        }
    };
    let r = post("registry-update").await;
    assert_eq!(r.status, 422, "refused before asking: {}", text(&r));
    assert!(text(&r).contains("finalità non concessa"), "{}", text(&r));
    // The Prefettura grants it; the page offers the form and shows the family.
    let policy = format!(
        "{}p, comune-pesaro, family, read, registry-update, *, allow\n",
        test_policy()
    );
    let r = notify(&pki.client(PREFETTURA), &node, pki.manifest(2, &policy)).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    let page = text(&laura.get(&format!("{base}/anagrafe")).await.unwrap());
    assert!(page.contains("action=\"/anagrafe/famiglia\""), "{page}");
    let r = post("registry-update").await;
    assert_eq!(r.status, 200, "{}", text(&r));
    let page = text(&r);
    assert!(
        page.contains("<td>RSSMRA85T10A562S</td>") && page.contains("<td>BNCLRA90A41G479C</td>"),
        "both members of family F1: {page}"
    );
    assert!(
        !page.contains("PPPGPP80M01Z129A"),
        "not another family: {page}"
    );
    assert!(
        !page.contains("Via Roma") && !page.contains("Bianchi"),
        "no names or addresses: {page}"
    );
    // The entry of the question names the officer.
    let asked = |e: &Value| e["route"] == "GET /v1/family/{cf}" && e["decision"] == "allow";
    let entries = entries_once(&mut pki, &node, |es| es.iter().any(asked)).await;
    let e = entries.iter().find(|e| asked(e)).unwrap();
    assert_eq!(e["operator"], "laura.bianchi", "{e}");
    assert_eq!(e["purpose"], "registry-update", "{e}");
}

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
    let path = f
        .pki
        .agency_dir("inps-pesaro")
        .join("data")
        .join(attesta::server::console_roles::FILE);
    std::fs::write(path, text).unwrap();
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
    pesaro.stop().await;
    let pesaro = start_node(&mut pki, "comune-pesaro", |c| {
        c.serves = vec!["residence".into()];
        c.console = Some(attesta::config::ConsoleConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
        });
    })
    .await;
    let base = pesaro.console_url.clone().unwrap();
    std::fs::write(
        pki.agency_dir("comune-pesaro")
            .join("data")
            .join(attesta::server::console_roles::FILE),
        "[operators]\n\"laura.bianchi\" = [\"registry-officer\"]\n\"mario.rossi\" = [\"clerk\"]\n",
    )
    .unwrap();
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

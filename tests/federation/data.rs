//! Registry and permit data over real nodes: imports through the CLI, local attestations for
//! every generated sample, bad requests, import permissions, and a node killed mid-import.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};

use crate::cli::{attesta, spawn_node, wait_exit};
use crate::harness::*;

const AS_OF: &str = "2026-11-23";

fn generate(dir: &Path, residents: u32) -> PathBuf {
    let out = dir.join("generated");
    attesta::cli::generate::run(&attesta::cli::generate::GenerateArgs {
        out: out.clone(),
        residents,
        seed: 2014,
        as_of: Some(AS_OF.into()),
    })
    .unwrap();
    out
}

/// The header and the rows of `comune` from a generated residents.csv.
fn residents_of(generated: &Path, comune: &str, out: &Path) -> PathBuf {
    let text = std::fs::read_to_string(generated.join("residents.csv")).unwrap();
    let mut lines = text.lines();
    let mut body = format!("{}\n", lines.next().unwrap());
    for l in lines.filter(|l| l.split(',').nth(7) == Some(comune)) {
        body.push_str(l);
        body.push('\n');
    }
    std::fs::write(out, body).unwrap();
    out.to_owned()
}

/// `attesta import` as an operator would run it.
pub(crate) fn cli_import(
    node: &TestNode,
    dataset: &str,
    file: &Path,
    extra: &[&str],
) -> std::process::Output {
    attesta()
        .args([
            "import",
            dataset,
            "--config",
            node.config_path.to_str().unwrap(),
            file.to_str().unwrap(),
        ])
        .args(["--as-of", AS_OF])
        .args(extra)
        .output()
        .unwrap()
}

async fn ask(
    client: &attesta::client::Client,
    node: &TestNode,
    route: &str,
    body: Value,
) -> attesta::client::Reply {
    let reply = client
        .post(
            &node.url(route),
            "application/json",
            Bytes::from(body.to_string()),
        )
        .await
        .unwrap();
    // Answers are signed: check the signature, then read the payload.
    attested(node, reply)
}

fn serves(what: &str) -> impl FnOnce(&mut attesta::config::NodeConfig) + '_ {
    move |c| c.serves = vec![what.to_owned()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_gets_its_expected_answer_from_the_local_attestations() {
    let mut pki = Pki::new();
    let generated = generate(pki.dir.path(), 20_000);
    let pesaro = start_node(&mut pki, "comune-pesaro", serves("residence")).await;
    let urbino = start_node(&mut pki, "comune-urbino", serves("residence")).await;
    let questura = start_node(&mut pki, "questura-pu", serves("legal-presence")).await;

    for (node, comune) in [(&pesaro, "041044"), (&urbino, "041067")] {
        let file = residents_of(
            &generated,
            comune,
            &pki.dir.path().join(format!("{comune}.csv")),
        );
        let out = cli_import(node, "residents", &file, &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("imported residents (snapshot)"));
    }
    let out = cli_import(&questura, "permits", &generated.join("permits.csv"), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let samples: Vec<Value> =
        serde_json::from_slice(&std::fs::read(generated.join("samples.json")).unwrap()).unwrap();
    let labels: Vec<&str> = samples
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    for required in [
        "resident with valid permit",
        "resident with expired permit",
        "resident with renewal pending",
        "EU citizen resident",
        "Italian citizen",
        "EU long-term permit holder",
        "minor on a parent's permit",
        "emigrated person",
        "unknown person",
    ] {
        assert!(
            labels.contains(&required),
            "samples lack {required:?}: {labels:?}"
        );
    }

    let inps = pki.client("inps-pesaro");
    // The samples of the two registries started here (samples.json has one in every comune).
    for s in samples.iter().filter(|s| {
        s["comune"]
            .as_str()
            .is_none_or(|c| c == "041044" || c == "041067")
    }) {
        let label = s["label"].as_str().unwrap();
        let q = json!({"subject": s["cf"], "purpose": "benefit-eligibility", "as_of": s["as_of"]});
        // The registry of the sample's comune, or every registry when it is not known.
        let registries: Vec<&TestNode> = match s["comune"].as_str() {
            Some("041044") => vec![&pesaro],
            Some("041067") => vec![&urbino],
            _ => vec![&pesaro, &urbino],
        };
        let mut resident = false;
        let mut permit_required = None;
        for node in registries {
            let r = ask(&inps, node, "/v1/attest/residence", q.clone()).await;
            assert_eq!(
                r.status,
                200,
                "{label}: {}",
                String::from_utf8_lossy(&r.body)
            );
            let a = r.json::<serde_json::Value>().unwrap();
            assert_eq!(a["issuer"], node.agency.as_str());
            assert_eq!(a["audience"], "inps-pesaro");
            assert_eq!(a["data_as_of"], AS_OF);
            // Minimal: no names, addresses or citizenship.
            for private in ["surname", "name", "address", "citizenship", "family_id"] {
                assert!(a.get(private).is_none(), "{label}: answer leaks {private}");
            }
            if a["resident"] == true {
                resident = true;
            }
            if !a["permit_required"].is_null() {
                permit_required = a["permit_required"].as_bool();
            }
        }
        assert_eq!(
            resident,
            s["expect"]["resident"].as_bool().unwrap(),
            "{label}: resident"
        );

        // Legal presence: from registration when no permit is needed, else from the Questura.
        let present = if permit_required == Some(false) {
            resident
        } else {
            let r = ask(&inps, &questura, "/v1/attest/legal-presence", q.clone()).await;
            assert_eq!(r.status, 200, "{label}");
            let a = r.json::<serde_json::Value>().unwrap();
            assert!(
                a.get("type").is_none() && a.get("permit_type").is_none(),
                "{label}: permit type leaked"
            );
            a["legally_present"].as_bool().unwrap()
        };
        assert_eq!(
            present,
            s["expect"]["legally_present"].as_bool().unwrap(),
            "{label}: legally_present"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_attestation_requests_get_problem_json() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", serves("residence")).await;
    let client = pki.client("inps-pesaro");
    let route = "/v1/attest/residence";

    // No data imported yet: unavailable, not "not resident".
    let r = ask(
        &client,
        &node,
        route,
        json!({"subject": "RSSMRA85T10A562S", "purpose": "benefit-eligibility"}),
    )
    .await;
    assert_eq!(
        r.json::<serde_json::Value>().unwrap()["type"],
        "urn:attesta:problem:no-data"
    );
    assert_eq!(r.status, 503);

    let cases = [
        (
            json!({"subject": "RSSMRA85T10A562X", "purpose": "benefit-eligibility"}),
            400,
            "invalid-codice-fiscale",
            "check letter",
        ),
        (
            json!({"subject": "RSSMRA85T10A56", "purpose": "benefit-eligibility"}),
            400,
            "invalid-codice-fiscale",
            "14 characters",
        ),
        (
            json!({"subject": "RSSMRA85T10A562S", "purpose": "benefit-eligibility", "name": "Mario"}),
            400,
            "bad-request",
            "unknown field `name`",
        ),
        // No purpose, an empty one, or one no rule grants: denied by the policy.
        (
            json!({"subject": "RSSMRA85T10A562S"}),
            403,
            "policy-denied",
            "no purpose declared",
        ),
        (
            json!({"subject": "RSSMRA85T10A562S", "purpose": ""}),
            403,
            "policy-denied",
            "no purpose declared",
        ),
        (
            json!({"subject": "RSSMRA85T10A562S", "purpose": "marketing"}),
            403,
            "policy-denied",
            "no rule grants read residence for purpose \"marketing\"",
        ),
        (
            json!({"subject": "RSSMRA85T10A562S", "purpose": "Not A Purpose!"}),
            400,
            "bad-request",
            "purpose",
        ),
        (
            json!({"subject": "RSSMRA85T10A562S", "purpose": "benefit-eligibility", "as_of": "23/11/2026"}),
            400,
            "bad-request",
            "as_of",
        ),
    ];
    for (body, status, slug, detail) in cases {
        let r = ask(&client, &node, route, body.clone()).await;
        assert_eq!(r.status, status, "{body}");
        assert_eq!(r.content_type(), Some("application/problem+json"));
        let p = r.json::<serde_json::Value>().unwrap();
        assert_eq!(p["type"], format!("urn:attesta:problem:{slug}"), "{body}");
        assert!(
            p["detail"].as_str().unwrap().contains(detail),
            "{body}: {p}"
        );
    }
    let r = client
        .post(
            &node.url(route),
            "application/json",
            Bytes::from_static(b"{not json"),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400);

    // A registry does not answer legal presence.
    let r = ask(
        &client,
        &node,
        "/v1/attest/legal-presence",
        json!({"subject": "RSSMRA85T10A562S", "purpose": "benefit-eligibility"}),
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json::<serde_json::Value>().unwrap()["type"],
        "urn:attesta:problem:not-served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_are_allowed_only_to_the_nodes_own_operators() {
    let mut pki = Pki::new();
    // comune-pesaro-ops operates comune-pesaro's node by the test policy's grant.
    let node = start_node(&mut pki, "comune-pesaro", serves("residence")).await;
    let csv = Bytes::from(format!("{}\n", attesta::import::RESIDENT_COLUMNS.join(",")));
    let url = node.url("/v1/admin/import/residents");

    let r = pki
        .client("inps-pesaro")
        .post(&url, "text/csv", csv.clone())
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json::<serde_json::Value>().unwrap()["type"],
        "urn:attesta:problem:policy-denied"
    );
    // Another agency's operator, too.
    let r = pki
        .client("questura-pu")
        .post(&url, "text/csv", csv.clone())
        .await
        .unwrap();
    assert_eq!(r.status, 403);

    for operator in ["comune-pesaro", "comune-pesaro-ops"] {
        let r = pki
            .client(operator)
            .post(&url, "text/csv", csv.clone())
            .await
            .unwrap();
        assert_eq!(
            r.status,
            200,
            "{operator}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    // Unknown options are refused, not ignored.
    let r = pki
        .client("comune-pesaro")
        .post(&format!("{url}?mode=replace"), "text/csv", csv)
        .await
        .unwrap();
    assert_eq!(r.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_import_lists_its_rows_and_changes_nothing() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", serves("residence")).await;
    let header = attesta::import::RESIDENT_COLUMNS.join(",");
    let good = pki.dir.path().join("good.csv");
    std::fs::write(&good, format!("{header}\nRSSMRA85T10A562S,Rossi,Mario,M,1985-12-10,A562,100,041044,Via Roma 1,F1,2010-01-01,,\n")).unwrap();
    assert!(cli_import(&node, "residents", &good, &[]).status.success());

    let bad = pki.dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        format!("{header}\nBNCLRA90A41G479C,Bianchi,Laura,F,1990-01-01,G479,100,041044,Via Roma 1,F1,1990-01-01,,\nBNCLRA90A41G479C,Bianchi,Laura,F,1990-01-01,G479,100,041099,Via Roma 1,F1,1990-01-01,,\n"),
    )
    .unwrap();
    let out = cli_import(&node, "residents", &bad, &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 3: comune: unknown comune 041099"),
        "{stderr}"
    );
    assert!(stderr.contains("bad.csv: import refused"), "{stderr}");

    let client = pki.client("inps-pesaro");
    let q = |cf: &str| json!({"subject": cf, "purpose": "benefit-eligibility", "as_of": AS_OF});
    let r = ask(
        &client,
        &node,
        "/v1/attest/residence",
        q("RSSMRA85T10A562S"),
    )
    .await;
    assert_eq!(r.json::<serde_json::Value>().unwrap()["resident"], true);
    let r = ask(
        &client,
        &node,
        "/v1/attest/residence",
        q("BNCLRA90A41G479C"),
    )
    .await;
    assert_eq!(
        r.json::<serde_json::Value>().unwrap()["resident"],
        false,
        "a rejected import must change nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_during_an_import_keeps_the_previous_snapshot() {
    let mut pki = Pki::new();
    let generated = generate(pki.dir.path(), 150_000);
    let (node, config) = external_node(&mut pki, "comune-pesaro", |c| {
        c.serves = vec!["residence".into()];
    });
    install_test_manifest(&mut pki, &config);
    let config_path = node.config_path.clone();
    let start = || spawn_node(&node);
    let client = pki.client("inps-pesaro");
    let ready = node.url("/readyz");
    let mut child = start();
    eventually(|| async { client.get(&ready).await.ok().filter(|r| r.status == 200) }).await;

    // A first snapshot: the whole province's Pesaro residents.
    let pesaro = residents_of(&generated, "041044", &pki.dir.path().join("pesaro.csv"));
    assert!(cli_import(&node, "residents", &pesaro, &[])
        .status
        .success());
    let known = std::fs::read_to_string(&pesaro)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_owned();

    // A second, much larger snapshot (every comune), killed while the node works on it.
    let mut import = attesta()
        .args([
            "import",
            "residents",
            "--config",
            config_path.to_str().unwrap(),
        ])
        .arg(generated.join("residents.csv"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let uploads = config.data_dir.join("imports");
    let size = std::fs::metadata(generated.join("residents.csv"))
        .unwrap()
        .len();
    // Wait until the whole upload is on the node's disk: from then on it validates and writes.
    eventually(|| async {
        let entry = std::fs::read_dir(&uploads).ok()?.next()?.ok()?;
        (entry.metadata().ok()?.len() == size).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let _ = wait_exit(&mut import, Duration::from_secs(30));

    // After a restart the previous snapshot is there, whole.
    let mut child = start();
    eventually(|| async { client.get(&ready).await.ok().filter(|r| r.status == 200) }).await;
    let r = ask(
        &client,
        &node,
        "/v1/attest/residence",
        json!({"subject": known, "purpose": "benefit-eligibility", "as_of": AS_OF}),
    )
    .await;
    let a = r.json::<serde_json::Value>().unwrap();
    assert_eq!(a["resident"], true, "{a}");
    assert_eq!(a["comune"], "041044");
    // Nobody from another comune got in: the killed import left nothing visible.
    let text = std::fs::read_to_string(generated.join("residents.csv")).unwrap();
    let other = text
        .lines()
        .skip(1)
        .find(|l| l.split(',').nth(7) != Some("041044") && l.split(',').nth(11) == Some(""))
        .unwrap();
    let other_cf = other.split(',').next().unwrap();
    let r = ask(
        &client,
        &node,
        "/v1/attest/residence",
        json!({"subject": other_cf, "purpose": "benefit-eligibility", "as_of": AS_OF}),
    )
    .await;
    assert_eq!(r.json::<serde_json::Value>().unwrap()["resident"], false);
    assert!(
        !uploads.exists() || std::fs::read_dir(&uploads).unwrap().next().is_none(),
        "spooled upload left behind"
    );

    // And the node takes the full import now.
    let out = cli_import(&node, "residents", &generated.join("residents.csv"), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = ask(
        &client,
        &node,
        "/v1/attest/residence",
        json!({"subject": other_cf, "purpose": "benefit-eligibility", "as_of": AS_OF}),
    )
    .await;
    assert_eq!(r.json::<serde_json::Value>().unwrap()["resident"], true);
    child.kill().unwrap();
    child.wait().unwrap();
}

fn today_plus(days: i64) -> String {
    let d = time::OffsetDateTime::now_utc().date() + time::Duration::days(days);
    attesta::domain::records::format_date(d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comune_monitors_only_its_own_expiring_permits() {
    let mut pki = Pki::new();
    // The comuni come from the manifest's directory, the grant from its policy.
    let questura = start_node(&mut pki, "questura-pu", serves("legal-presence")).await;
    let header = attesta::import::PERMIT_COLUMNS.join(",");
    let rows = [
        format!(
            "I00000001,PPPGPP80M01Z129A,work,{},{},valid,,041044,",
            today_plus(-700),
            today_plus(10)
        ),
        format!(
            "I00000002,RSSMRA85T10A562S,family,{},{},renewal_pending,{},041044,",
            today_plus(-700),
            today_plus(20),
            today_plus(-5)
        ),
        format!(
            "I00000003,BNCLRA90A41G479C,work,{},{},valid,,041044,",
            today_plus(-300),
            today_plus(200)
        ),
        format!(
            "I00000004,GRGGNN01B07G479S,study,{},{},valid,,041067,",
            today_plus(-300),
            today_plus(15)
        ),
    ];
    let file = pki.dir.path().join("permits.csv");
    std::fs::write(&file, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
    let out = cli_import(&questura, "permits", &file, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let pesaro = pki.client("comune-pesaro");
    let r = pesaro
        .get(&questura.url("/v1/monitor/expiring?days=30&purpose=registry-update"))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let a = r.json::<serde_json::Value>().unwrap();
    assert_eq!(a["comune"], "041044");
    let subjects: Vec<&str> = a["permits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["subject"].as_str().unwrap())
        .collect();
    // Pesaro's two permits expiring within 30 days, soonest first; not Urbino's, not the later one.
    assert_eq!(subjects, ["PPPGPP80M01Z129A", "RSSMRA85T10A562S"]);
    assert_eq!(a["permits"][1]["renewal_pending"], true);
    assert!(
        a["permits"][0].get("type").is_none(),
        "permit type must not leave the Questura"
    );

    let r = pesaro
        .get(&questura.url("/v1/monitor/expiring?days=0&purpose=registry-update"))
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    // Another comune's territory, no purpose, or an agency without the grant: denied.
    for (client, query, why) in [
        (
            "comune-pesaro",
            "days=30&purpose=registry-update&comune=041067",
            "in territory 041067",
        ),
        ("comune-pesaro", "days=30", "no purpose declared"),
        (
            "inps-pesaro",
            "days=30&purpose=benefit-eligibility&comune=041044",
            "no rule grants",
        ),
    ] {
        let r = pki
            .client(client)
            .get(&questura.url(&format!("/v1/monitor/expiring?{query}")))
            .await
            .unwrap();
        assert_eq!(r.status, 403, "{client} {query}");
        let p = r.json::<serde_json::Value>().unwrap();
        assert_eq!(p["type"], "urn:attesta:problem:policy-denied");
        assert!(p["detail"].as_str().unwrap().contains(why), "{p}");
    }
}

/// Imports three residents of Pesaro into `node`: Mario Rossi (RSSMRA85T10A562S) and Laura
/// Bianchi (BNCLRA90A41G479C), family F1 at Via Roma 1, and Giorgiu Popescu
/// (PPPGPP80M01Z129A), family F2.
pub(crate) fn import_two_families(pki: &Pki, node: &TestNode) {
    let header = attesta::import::RESIDENT_COLUMNS.join(",");
    let file = pki.dir.path().join("residents.csv");
    std::fs::write(
        &file,
        format!(
            "{header}\nRSSMRA85T10A562S,Rossi,Mario,M,1985-12-10,A562,100,041044,Via Roma 1,F1,2010-01-01,,\n\
             BNCLRA90A41G479C,Bianchi,Laura,F,1990-01-01,G479,100,041044,Via Roma 1,F1,2012-01-01,,\n\
             PPPGPP80M01Z129A,Popescu,Giorgiu,M,1980-08-01,Z129,235,041044,Via Po 3,F2,2015-03-01,,\n"
        ),
    )
    .unwrap();
    assert!(cli_import(node, "residents", &file, &[]).status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn family_data_goes_only_to_granted_agencies() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", serves("residence")).await;
    import_two_families(&pki, &node);

    let questura = pki.client("questura-pu");
    // Any omocodia spelling of the subject works.
    let r = questura
        .get(&node.url("/v1/family/RSSMRA85T10A56NH?purpose=family-reunification"))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let a = r.json::<serde_json::Value>().unwrap();
    let mut members: Vec<&str> = a["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["subject"].as_str().unwrap())
        .collect();
    members.sort();
    assert_eq!(members, ["BNCLRA90A41G479C", "RSSMRA85T10A562S"]);
    assert!(a["members"][0].get("surname").is_none() && a["members"][0].get("address").is_none());

    let r = questura
        .get(&node.url("/v1/family/RSSMRA85T10A562X?purpose=family-reunification"))
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    // The Questura for another purpose; INPS whatever it declares (an explicit deny).
    for (client, purpose, why) in [
        ("questura-pu", "permit-renewal", "no rule grants"),
        (
            "inps-pesaro",
            "family-reunification",
            "denied by rule: p, consumer, family, read, *, *, deny",
        ),
    ] {
        let r = pki
            .client(client)
            .get(&node.url(&format!("/v1/family/RSSMRA85T10A562S?purpose={purpose}")))
            .await
            .unwrap();
        assert_eq!(r.status, 403);
        let p = r.json::<serde_json::Value>().unwrap();
        assert!(p["detail"].as_str().unwrap().contains(why), "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attestations_verify_offline_and_any_change_is_caught() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", serves("residence")).await;
    let header = attesta::import::RESIDENT_COLUMNS.join(",");
    let file = pki.dir.path().join("one.csv");
    std::fs::write(&file, format!("{header}\nRSSMRA85T10A562S,Rossi,Mario,M,1985-12-10,A562,100,041044,Via Roma 1,F1,2010-01-01,,\n")).unwrap();
    assert!(cli_import(&node, "residents", &file, &[]).status.success());

    let body =
        json!({"subject": "RSSMRA85T10A562S", "purpose": "benefit-eligibility", "as_of": AS_OF})
            .to_string();
    let r = pki
        .client("inps-pesaro")
        .post(
            &node.url("/v1/attest/residence"),
            "application/json",
            Bytes::from(body.clone()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type(), Some("application/jose"));
    let token = String::from_utf8(r.body.to_vec()).unwrap();
    let saved = pki.dir.path().join("answer.jws");
    std::fs::write(&saved, &token).unwrap();

    let (ca, crl) = (pki.ca_cert(), pki.crl());
    let verify = |path: &Path| {
        attesta()
            .args(["verify-attestation", "--ca", ca.to_str().unwrap()])
            .args(["--crl", crl.to_str().unwrap()])
            .arg(path)
            .output()
            .unwrap()
    };
    let out = verify(&saved);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let payload: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(payload["resident"], true);
    assert_eq!(payload["issuer"], "comune-pesaro");
    assert_eq!(payload["audience"], "inps-pesaro");
    assert_eq!(payload["subject"], "RSSMRA85T10A562S");
    // The answer is bound to the question: the digest of the exact request body.
    assert_eq!(
        payload["request_sha256"],
        attesta::attestation::sha256_hex(body.as_bytes())
    );
    assert!(payload["iat"].as_i64().unwrap() > 1_700_000_000);

    // One byte changed anywhere (header, payload, signature) and it no longer verifies.
    let (head, rest) = token.split_once('.').unwrap();
    let (payload_b64, sig) = rest.split_once('.').unwrap();
    for (what, at) in [
        ("header", head.len() / 2),
        ("payload", head.len() + 1 + payload_b64.len() / 2),
        ("signature", token.len() - sig.len() / 2),
    ] {
        let mut bytes = token.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let tampered = pki.dir.path().join(format!("tampered-{what}.jws"));
        std::fs::write(&tampered, &bytes).unwrap();
        let out = verify(&tampered);
        assert!(
            !out.status.success(),
            "{what}: tampered attestation verified"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("attestation refused") && err.contains(&format!("tampered-{what}.jws")),
            "{what}: {err}"
        );
    }

    // Signed with a key the CA has since revoked: refused with the CRL.
    pki.ca.revoke_agency(&agency("comune-pesaro")).unwrap();
    let out = verify(&saved);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("revoked"));
}

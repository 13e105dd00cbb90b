//! The federated status check (`POST /v1/status`) over real nodes: every sample through a
//! consumer's coordinator, offline verification of the attestations it returns, dead, silent
//! and impostor peers, and the policy at both ends.

use std::path::{Path, PathBuf};
use std::time::Duration;

use attesta_policy::{DirectoryEntry, Manifest, Service};
use bytes::Bytes;
use serde_json::{json, Value};

use crate::cli::attesta;
use crate::harness::*;

const AS_OF: &str = "2026-11-23";
const JOSE: &str = "application/jose";
const PURPOSE: &str = "benefit-eligibility";

/// Four nodes of the demo's shape with generated data imported: two registries, the Questura
/// and INPS (the consumer whose coordinator is asked).
pub(crate) struct Federation {
    pub pki: Pki,
    pub samples: Vec<Value>,
    pub pesaro: TestNode,
    pub urbino: TestNode,
    pub questura: TestNode,
    pub inps: TestNode,
}

fn entry(node: &TestNode, serves: Vec<Service>, comuni: &[&str]) -> DirectoryEntry {
    DirectoryEntry {
        agency: node.agency.clone(),
        url: Some(node.url.clone()),
        hosted_by: None,
        serves,
        comuni: comuni.iter().map(|c| c.to_string()).collect(),
    }
}

impl Federation {
    pub async fn start(tweak_inps: impl FnOnce(&mut attesta::config::NodeConfig)) -> Self {
        let mut pki = Pki::new();
        let generated = pki.dir.path().join("generated");
        attesta::cli::generate::run(&attesta::cli::generate::GenerateArgs {
            out: generated.clone(),
            residents: 20_000,
            seed: 2014,
            as_of: Some(AS_OF.into()),
        })
        .unwrap();
        let serves = |what: &'static str| {
            move |c: &mut attesta::config::NodeConfig| c.serves = vec![what.to_owned()]
        };
        let pesaro = start_node(&mut pki, "comune-pesaro", serves("residence")).await;
        let urbino = start_node(&mut pki, "comune-urbino", serves("residence")).await;
        let questura = start_node(&mut pki, "questura-pu", serves("legal-presence")).await;
        let inps = start_node(&mut pki, "inps-pesaro", tweak_inps).await;

        let residents = std::fs::read_to_string(generated.join("residents.csv")).unwrap();
        for (node, comune) in [(&pesaro, "041044"), (&urbino, "041067")] {
            let mut lines = residents.lines();
            let mut body = format!("{}\n", lines.next().unwrap());
            for l in lines.filter(|l| l.split(',').nth(7) == Some(comune)) {
                body.push_str(l);
                body.push('\n');
            }
            import(&mut pki, node, "residents", body.into_bytes()).await;
        }
        let permits = std::fs::read(generated.join("permits.csv")).unwrap();
        import(&mut pki, &questura, "permits", permits).await;

        // The samples of the two registries this federation has (samples.json has one for
        // every comune of the province; the hosted ones are tenants::).
        let samples: Vec<Value> =
            serde_json::from_slice(&std::fs::read(generated.join("samples.json")).unwrap())
                .unwrap();
        let samples = samples
            .into_iter()
            .filter(|s| {
                s["comune"]
                    .as_str()
                    .is_none_or(|c| c == "041044" || c == "041067")
            })
            .collect();
        let mut f = Self {
            pki,
            samples,
            pesaro,
            urbino,
            questura,
            inps,
        };
        let directory = f.directory();
        f.publish(2, &test_policy(), directory).await;
        f
    }

    /// The real directory: every node at its URL.
    pub fn directory(&self) -> Vec<DirectoryEntry> {
        vec![
            entry(&self.pesaro, vec![Service::Residence], &["041044"]),
            entry(&self.urbino, vec![Service::Residence], &["041067"]),
            entry(&self.questura, vec![Service::LegalPresence], &[]),
            entry(&self.inps, vec![], &[]),
        ]
    }

    /// Signs a manifest as the Prefettura and pushes it to every node.
    pub async fn publish(&mut self, version: u64, policy: &str, directory: Vec<DirectoryEntry>) {
        let manifest = Manifest {
            directory,
            ..test_manifest(version, policy)
        };
        let token = self.pki.sign_manifest(PREFETTURA, &manifest);
        let prefettura = self.pki.client(PREFETTURA);
        for node in [&self.pesaro, &self.urbino, &self.questura, &self.inps] {
            let r = prefettura
                .post(
                    &node.url("/v1/manifest/notify"),
                    JOSE,
                    Bytes::from(token.clone()),
                )
                .await
                .unwrap();
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        }
    }

    pub fn sample(&self, label: &str) -> &Value {
        self.samples
            .iter()
            .find(|s| s["label"] == label)
            .unwrap_or_else(|| panic!("no sample {label:?}"))
    }
}

async fn import(pki: &mut Pki, node: &TestNode, dataset: &str, body: Vec<u8>) {
    let r = pki
        .client(&node.agency)
        .post(
            &node.url(&format!(
                "/v1/admin/import/{dataset}?mode=snapshot&as_of={AS_OF}"
            )),
            "text/csv",
            Bytes::from(body),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

/// `POST /v1/status` on `node` as `caller`.
async fn status(pki: &mut Pki, caller: &str, node: &TestNode, body: Value) -> (u16, Value) {
    let r = pki
        .client(caller)
        .post(
            &node.url("/v1/status"),
            "application/json",
            Bytes::from(body.to_string()),
        )
        .await
        .unwrap();
    (r.status.as_u16(), r.json::<serde_json::Value>().unwrap())
}

fn question(s: &Value) -> Value {
    let mut q = json!({"subject": s["cf"], "purpose": PURPOSE, "as_of": s["as_of"]});
    if let Some(c) = s["comune"].as_str() {
        q["comune"] = json!(c);
    }
    q
}

fn unavailable<'a>(answer: &'a Value, agency: &str) -> Option<&'a Value> {
    answer["unavailable"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["agency"] == agency)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_gets_its_expected_answer_from_a_consumers_coordinator() {
    let mut f = Federation::start(|_| {}).await;
    let trust = f.pki.trust();
    let questura_operator = f.pki.client("questura-pu");
    let handshakes = || async {
        let r = questura_operator
            .get(&f.questura.url("/metrics"))
            .await
            .unwrap();
        metric(
            std::str::from_utf8(&r.body).unwrap(),
            "attesta_tls_handshakes_total",
        )
        .unwrap()
    };
    let before = handshakes().await;
    let mut kept = None;
    for s in f.samples.clone() {
        let label = s["label"].as_str().unwrap();
        let (code, a) = status(&mut f.pki, "inps-pesaro", &f.inps, question(&s)).await;
        assert_eq!(code, 200, "{label}: {a}");
        assert_eq!(a["resident"], s["expect"]["resident"], "{label}: {a}");
        assert_eq!(
            a["legally_present"], s["expect"]["legally_present"],
            "{label}: {a}"
        );
        assert_eq!(a["complete"], true, "{label}: {a}");
        assert_eq!(a["unavailable"], json!([]), "{label}: {a}");
        assert_eq!(a["as_of"], s["as_of"]);
        if a["resident"] == true {
            assert_eq!(a["comune"], s["comune"], "{label}");
        }
        if label == "EU citizen resident" || label == "Italian citizen" {
            assert_eq!(a["basis"], "registration", "{label}");
        }
        // Every attestation verifies with the CA, was issued to INPS's node, and answers the
        // same forwarded question.
        let tokens = a["attestations"].as_array().unwrap();
        assert!(!tokens.is_empty(), "{label}: no evidence");
        let mut digests = std::collections::HashSet::new();
        for t in tokens {
            let v = attesta::attestation::verify(&trust, t.as_str().unwrap()).unwrap();
            assert_eq!(v.payload["audience"], "inps-pesaro", "{label}");
            assert_eq!(v.payload["subject"], s["cf"], "{label}");
            assert_eq!(v.payload["purpose"], PURPOSE, "{label}");
            digests.insert(v.payload["request_sha256"].as_str().unwrap().to_owned());
        }
        assert_eq!(digests.len(), 1, "{label}: one question, one digest");
        if label == "resident with valid permit" {
            kept = Some(tokens[tokens.len() - 1].as_str().unwrap().to_owned());
        }
    }

    // The coordinator kept one connection to the Questura for every question: at most one
    // new handshake from each peer (INPS's coordinator shares its connection with INPS's
    // witness submissions; the registries may open theirs to submit checkpoints meanwhile),
    // and this metrics request's. One connection per question would be nine or more.
    let new = handshakes().await - before;
    assert!(
        new <= 4.0,
        "{new} handshakes for {} questions",
        f.samples.len()
    );

    // Without a comune every registry is asked; the answer is the same.
    let s = f.sample("resident with valid permit").clone();
    let mut q = question(&s);
    q.as_object_mut().unwrap().remove("comune");
    let (_, a) = status(&mut f.pki, "inps-pesaro", &f.inps, q).await;
    assert_eq!(a["resident"], true, "{a}");
    assert_eq!(a["comune"], s["comune"]);
    assert_eq!(a["legally_present"], true);

    // Offline, with the CLI: an attestation from the answer verifies; one changed byte fails.
    let token = kept.unwrap();
    let dir = f.pki.dir.path().to_owned();
    let good = write(&dir, "kept.jws", &token);
    let ca = f.pki.ca_cert();
    let out = attesta()
        .args(["verify-attestation", "--ca", ca.to_str().unwrap()])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut bytes = token.into_bytes();
    let middle = bytes.len() / 2;
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    let bad = write(&dir, "tampered.jws", &String::from_utf8(bytes).unwrap());
    let out = attesta()
        .args(["verify-attestation", "--ca", ca.to_str().unwrap()])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tampered.jws"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_status_requests_get_problem_json() {
    let mut f = Federation::start(|_| {}).await;
    let cf = f.sample("Italian citizen")["cf"].clone();
    for (body, code, kind) in [
        (
            json!({"subject": "RSSMRA85T10A562X", "purpose": PURPOSE}),
            400,
            "invalid-codice-fiscale",
        ),
        (
            json!({"subject": cf, "purpose": PURPOSE, "nome": "Mario"}),
            400,
            "bad-request",
        ),
        (
            json!({"subject": cf, "purpose": PURPOSE, "comune": "Pesaro"}),
            400,
            "bad-request",
        ),
        (
            json!({"subject": cf, "purpose": PURPOSE, "as_of": "23/11/2026"}),
            400,
            "bad-request",
        ),
        (json!({"subject": cf}), 403, "policy-denied"),
    ] {
        let (status_code, a) = status(&mut f.pki, "inps-pesaro", &f.inps, body.clone()).await;
        assert_eq!(status_code, code, "{body}: {a}");
        assert_eq!(a["type"], format!("urn:attesta:problem:{kind}"), "{body}");
    }
    // A comune with no registry node in the federation: residence unknown, and said why.
    let (code, a) = status(
        &mut f.pki,
        "inps-pesaro",
        &f.inps,
        json!({"subject": cf, "purpose": PURPOSE, "comune": "041001"}),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(a["resident"], Value::Null);
    assert_eq!(a["complete"], false);
    let u = &a["unavailable"][0];
    assert_eq!(u["agency"], Value::Null);
    assert_eq!(u["reason"], "no-node");
    assert!(u["detail"].as_str().unwrap().contains("041001"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_or_silent_questura_is_reported_within_the_deadline() {
    let deadline = Duration::from_millis(800);
    let mut f = Federation::start(|c| {
        c.peers.status_deadline_ms = deadline.as_millis() as u64;
    })
    .await;
    let foreigner = question(f.sample("resident with valid permit"));
    let italian = question(f.sample("Italian citizen"));

    // Stopped: nothing listens on its port any more.
    let questura_url = f.questura.url.clone();
    let questura = std::mem::replace(
        &mut f.questura,
        TestNode::external("questura-pu", 9, PathBuf::new()),
    );
    questura.stop().await;
    // (How long it takes is the coordinator's unit tests' business, on a paused clock.)
    let (code, a) = status(&mut f.pki, "inps-pesaro", &f.inps, foreigner.clone()).await;
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["resident"], true);
    assert_eq!(a["legally_present"], Value::Null, "{a}");
    assert_eq!(a["complete"], false);
    let u = unavailable(&a, "questura-pu").expect("questura listed");
    assert_eq!(u["reason"], "unreachable", "{a}");
    assert_eq!(a["attestations"].as_array().unwrap().len(), 1);

    // An Italian citizen needs no permit: the answer is complete without the Questura.
    let (_, a) = status(&mut f.pki, "inps-pesaro", &f.inps, italian).await;
    assert_eq!(a["legally_present"], true, "{a}");
    assert_eq!(a["complete"], true, "{a}");

    // Silent: a listener on the Questura's port that accepts and never answers.
    let silent = tokio::net::TcpListener::bind(questura_url.trim_start_matches("https://"))
        .await
        .unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            held.push(conn);
        }
    });
    let (code, a) = status(&mut f.pki, "inps-pesaro", &f.inps, foreigner).await;
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["legally_present"], Value::Null, "{a}");
    assert_eq!(a["complete"], false);
    assert_eq!(unavailable(&a, "questura-pu").unwrap()["reason"], "timeout");
    hold.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_presenting_another_agencys_certificate_is_refused() {
    let mut f = Federation::start(|_| {}).await;
    // The directory sends the Questura's questions to Urbino's node, which presents a valid
    // certificate, of the wrong agency.
    let mut directory = f.directory();
    directory[2].url = Some(f.urbino.url.clone());
    f.publish(3, &test_policy(), directory).await;

    let q = question(f.sample("resident with valid permit"));
    let (code, a) = status(&mut f.pki, "inps-pesaro", &f.inps, q).await;
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["resident"], true);
    assert_eq!(a["legally_present"], Value::Null, "{a}");
    let u = unavailable(&a, "questura-pu").expect("questura listed");
    assert_eq!(u["reason"], "refused", "{a}");
    assert!(
        u["detail"].as_str().unwrap().contains("unexpected_agency"),
        "{a}"
    );
    // Only the residence attestation, from the real registry.
    let tokens = a["attestations"].as_array().unwrap();
    assert_eq!(tokens.len(), 1);
    let v = attesta::attestation::verify(&f.pki.trust(), tokens[0].as_str().unwrap()).unwrap();
    assert_eq!(v.payload["issuer"], "comune-pesaro");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_holds_at_the_coordinator_and_at_every_peer() {
    let mut f = Federation::start(|_| {}).await;
    let q = question(f.sample("resident with valid permit"));

    // The Questura has no status grant: refused by INPS's coordinator before any peer call.
    let (code, a) = status(&mut f.pki, "questura-pu", &f.inps, q.clone()).await;
    assert_eq!(code, 403, "{a}");
    assert_eq!(a["type"], "urn:attesta:problem:policy-denied");
    // A purpose INPS is not granted.
    let mut marketing = q.clone();
    marketing["purpose"] = json!("marketing");
    let (code, _) = status(&mut f.pki, "inps-pesaro", &f.inps, marketing).await;
    assert_eq!(code, 403);

    // The Questura stops answering consumers: INPS's coordinator still may ask, the Questura
    // denies its agency, and the answer says so.
    let policy: String = test_policy()
        .lines()
        .filter(|l| !l.contains("consumer, legal-presence"))
        .map(|l| format!("{l}\n"))
        .collect();
    let directory = f.directory();
    f.publish(3, &policy, directory).await;
    let (code, a) = status(&mut f.pki, "inps-pesaro", &f.inps, q).await;
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["resident"], true);
    assert_eq!(a["legally_present"], Value::Null, "{a}");
    assert_eq!(a["complete"], false);
    let u = unavailable(&a, "questura-pu").expect("questura listed");
    assert_eq!(u["reason"], "denied", "{a}");
    assert!(u["detail"].as_str().unwrap().contains("403"), "{a}");
}

/// A clerk's client.toml for `agency`, asking `node`.
pub(crate) fn client_toml(pki: &mut Pki, agency: &str, node: &TestNode) -> PathBuf {
    let files = pki.agency(agency);
    let text = format!(
        "ca = {:?}\ncrl = {:?}\ncert = {:?}\nkey = {:?}\nnode = {:?}\nnode_agency = {:?}\n",
        pki.ca_cert(),
        pki.crl(),
        files.auth_cert,
        files.auth_key,
        node.url,
        node.agency,
    );
    write(pki.dir.path(), &format!("{agency}-client.toml"), &text)
}

fn query(config: &Path, subject: &str, extra: &[&str]) -> std::process::Output {
    attesta()
        .args(["query", "status", subject, "--config"])
        .arg(config)
        .args(extra)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_asks_with_attesta_query_status() {
    let mut f = Federation::start(|_| {}).await;
    let config = client_toml(&mut f.pki, "inps-pesaro", &f.inps);
    let s = f.sample("resident with valid permit").clone();
    let cf = s["cf"].as_str().unwrap().to_owned();
    let args: Vec<String> = [
        "--purpose",
        PURPOSE,
        "--comune",
        s["comune"].as_str().unwrap(),
        "--as-of",
        s["as_of"].as_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec();
    let mut marketing = args.clone();
    marketing[1] = "marketing".into();
    let mut with_json = args.clone();
    with_json.push("--json".into());
    let run = |config: &Path, args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        query(config, &cf, &args)
    };

    let (human, json_out) =
        tokio::task::block_in_place(|| (run(&config, &args), run(&config, &with_json)));
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        human.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&human.stderr)
    );
    assert!(
        text.contains("  resident         yes, in PESARO (041044)"),
        "{text}"
    );
    assert!(
        text.contains("  legally present  yes, permit valid until "),
        "{text}"
    );
    assert!(text.contains("complete; 2 signed attestations"), "{text}");
    // The entry INPS's node logged for the question, whose receipt the clerk's agency gets.
    let index: u64 = text
        .split("  logged           inps-pesaro entry ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    let saved = f.pki.dir.path().join("question.receipt");
    let fetched = tokio::task::block_in_place(|| {
        attesta()
            .args([
                "audit",
                "receipt",
                "--index",
                &index.to_string(),
                "--config",
            ])
            .arg(&config)
            .arg("--out")
            .arg(&saved)
            .output()
            .unwrap()
    });
    let said = String::from_utf8_lossy(&fetched.stdout).into_owned();
    assert!(
        fetched.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&fetched.stderr)
    );
    assert!(
        said.starts_with(&format!("valid: inps-pesaro logged entry {index} "))
            && said.contains("request from inps-pesaro, POST /v1/status"),
        "{said}"
    );
    let checked = attesta()
        .args(["audit", "check-receipt"])
        .arg(&saved)
        .arg("--ca")
        .arg(f.pki.ca_cert())
        .output()
        .unwrap();
    assert!(checked.status.success());
    // An entry that does not exist yet: the node's answer, in one line.
    let missing = tokio::task::block_in_place(|| {
        attesta()
            .args(["audit", "receipt", "--index", "999999", "--config"])
            .arg(&config)
            .arg("--out")
            .arg(&saved)
            .output()
            .unwrap()
    });
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("404"));
    let doc: Value = serde_json::from_slice(&json_out.stdout).unwrap();
    assert_eq!(doc["complete"], true);
    assert_eq!(doc["attestations"].as_array().unwrap().len(), 2);

    // The Questura is gone: the answer is incomplete, and the exit code says so.
    let questura = std::mem::replace(
        &mut f.questura,
        TestNode::external("questura-pu", 9, PathBuf::new()),
    );
    questura.stop().await;
    let bad_config = write(
        f.pki.dir.path(),
        "bad-client.toml",
        "ca = \"x\"\nnodo = 1\n",
    );
    let (incomplete, denied, broken) = tokio::task::block_in_place(|| {
        (
            run(&config, &args),
            run(&config, &marketing),
            run(&bad_config, &args),
        )
    });
    let text = String::from_utf8_lossy(&incomplete.stdout);
    assert_eq!(incomplete.status.code(), Some(3), "{text}");
    assert!(text.contains("  legally present  unknown"), "{text}");
    assert!(
        text.contains("  unavailable      questura-pu: unreachable"),
        "{text}"
    );
    assert!(text.contains("INCOMPLETE"), "{text}");

    // Refused by the policy: one line with the problem type.
    let err = String::from_utf8_lossy(&denied.stderr);
    assert_eq!(denied.status.code(), Some(1));
    assert!(err.contains("403 policy-denied"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // A broken client.toml: one line naming the file and the key.
    let err = String::from_utf8_lossy(&broken.stderr);
    assert_eq!(broken.status.code(), Some(1));
    assert!(
        err.contains("bad-client.toml") && err.contains("nodo"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attesta_bench_loads_a_route_and_reports_percentiles() {
    let mut f = Federation::start(|_| {}).await;
    let config = client_toml(&mut f.pki, "inps-pesaro", &f.inps);
    let samples = write(
        f.pki.dir.path(),
        "samples.json",
        &serde_json::to_string(&f.samples).unwrap(),
    );
    let bench = |route: &str, extra: &[&str]| {
        attesta()
            .args(["bench", "--route", route, "--config"])
            .arg(&config)
            .args([
                "--duration",
                "1s",
                "--warmup",
                "0s",
                "--concurrency",
                "2",
                "--json",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let (status, whoami, missing) = tokio::task::block_in_place(|| {
        (
            bench("status", &["--subjects", samples.to_str().unwrap()]),
            bench("whoami", &[]),
            bench("residence", &[]),
        )
    });
    for out in [&status, &whoami] {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(r["ok"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["failed"], 0, "{r}");
        assert_eq!(r["errors"], 0, "{r}");
        assert_eq!(r["incomplete"], 0, "{r}");
        let l = &r["latency_ms"];
        let p = |k: &str| l[k].as_f64().unwrap();
        assert!(
            p("p50") > 0.0 && p("p50") <= p("p90") && p("p90") <= p("p99"),
            "{r}"
        );
        assert!(p("p99") <= p("p99_9") && p("p99_9") <= p("max"), "{r}");
    }
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(err.contains("--subjects is required"), "{err}");
}

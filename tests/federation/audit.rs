//! The auditor's proof checks, through the CLI as an auditor runs them.

use attesta::audit::merkle::{self, Hash};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::cli::attesta;

fn b64(h: &Hash) -> String {
    STANDARD.encode(h)
}

fn joined(proof: &[Hash]) -> String {
    proof.iter().map(b64).collect::<Vec<_>>().join(",")
}

fn run(args: &[String]) -> std::process::Output {
    attesta().arg("audit").args(args).output().unwrap()
}

#[test]
fn proofs_are_checked_by_hand_with_one_line_reasons() {
    let leaves: Vec<Hash> = (0..21)
        .map(|i| merkle::leaf_hash(format!("entry {i}").as_bytes()))
        .collect();
    let (root13, root21) = (merkle::root(&leaves[..13]), merkle::root(&leaves));
    let inclusion = merkle::inclusion_proof(&leaves[..], 6, 21).unwrap();
    let consistency = merkle::consistency_proof(&leaves[..], 13, 21).unwrap();

    let check_inclusion = |leaf: &Hash, index: u64, root: &Hash, proof: &str| {
        run(&[
            "check-inclusion".into(),
            "--leaf-hash".into(),
            b64(leaf),
            "--index".into(),
            index.to_string(),
            "--size".into(),
            "21".into(),
            "--root".into(),
            b64(root),
            "--proof".into(),
            proof.into(),
        ])
    };
    let ok = check_inclusion(&leaves[6], 6, &root21, &joined(&inclusion));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("valid:"));

    for (out, why) in [
        (
            check_inclusion(&leaves[7], 6, &root21, &joined(&inclusion)),
            "does not lead to the root",
        ),
        (
            check_inclusion(&leaves[6], 7, &root21, &joined(&inclusion)),
            "does not lead to the root",
        ),
        (
            check_inclusion(&leaves[6], 6, &root21, "AAAA"),
            "a hash must be 32 bytes",
        ),
        (
            check_inclusion(&leaves[6], 6, &root21, "not base64!"),
            "--proof element 0: not standard base64",
        ),
        // Exactly the hashes the RFC asks for: nothing empty, extra, missing, short or long.
        (
            check_inclusion(&leaves[6], 6, &root21, &format!(",{}", joined(&inclusion))),
            "--proof element 0: empty",
        ),
        (
            check_inclusion(&leaves[6], 6, &root21, &format!("{},", joined(&inclusion))),
            "empty",
        ),
        (
            check_inclusion(
                &leaves[6],
                6,
                &root21,
                &joined(&inclusion).replacen(',', ",,", 1),
            ),
            "--proof element 1: empty",
        ),
        (
            check_inclusion(
                &leaves[6],
                6,
                &root21,
                &format!("{},{}", joined(&inclusion), b64(&root13)),
            ),
            "proof",
        ),
        (
            check_inclusion(&leaves[6], 6, &root21, &joined(&inclusion[1..])),
            "proof",
        ),
        (
            check_inclusion(&leaves[6], 6, &root21, &STANDARD.encode([7u8; 33])),
            "a hash must be 32 bytes",
        ),
        (
            check_inclusion(&leaves[6], 21, &root21, &joined(&inclusion)),
            "index 21 is not in a tree of size 21",
        ),
    ] {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(why), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }

    let check_consistency = |size1: u64, root1: &Hash, proof: &str| {
        run(&[
            "check-consistency".into(),
            "--size1".into(),
            size1.to_string(),
            "--size2".into(),
            "21".into(),
            "--root1".into(),
            b64(root1),
            "--root2".into(),
            b64(&root21),
            "--proof".into(),
            proof.into(),
        ])
    };
    let ok = check_consistency(13, &root13, &joined(&consistency));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // A rewritten history: another first root for the same size.
    let forged = merkle::root(&leaves[1..14]);
    let out = check_consistency(13, &forged, &joined(&consistency));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("first root"));
    let out = check_consistency(0, &root13, &joined(&consistency));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("0 < size1 <= size2"));
    for bad in [
        format!("{},", joined(&consistency)),
        format!(",{}", joined(&consistency)),
        format!("{},{}", joined(&consistency), b64(&root13)),
        joined(&consistency[1..]),
        format!("{},AAAA", joined(&consistency)),
    ] {
        let out = check_consistency(13, &root13, &bad);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{bad}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

/// The log index a node gave the entry of the request `r` answers.
fn log_index(r: &attesta::client::Reply) -> u64 {
    r.headers["attesta-log-index"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// `attesta audit verify BUNDLE --ca CA`, as an auditor runs it.
fn verify_offline(bundle: &std::path::Path, ca: &std::path::Path) -> std::process::Output {
    attesta()
        .args(["audit", "verify"])
        .arg(bundle)
        .arg("--ca")
        .arg(ca)
        .output()
        .unwrap()
}

/// A status question about a sample, through INPS's coordinator.
async fn ask_status(f: &crate::status::Federation, inps: &attesta::client::Client, label: &str) {
    let q = serde_json::json!({"subject": f.sample(label)["cf"], "purpose": "benefit-eligibility"});
    let r = inps
        .post(
            &f.inps.url("/v1/status"),
            "application/json",
            bytes::Bytes::from(q.to_string()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
}

mod node_log {
    use attesta::audit::entry::sha256;
    use attesta::audit::merkle;
    use attesta::audit::note::{Checkpoint, Note};
    use attesta::client::{Client, Reply};
    use attesta_certs::SignerCert;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use bytes::Bytes;
    use serde_json::{json, Value};

    use super::log_index;
    use crate::harness::*;
    use crate::status::Federation;

    const PURPOSE: &str = "benefit-eligibility";

    async fn post(client: &Client, url: &str, body: &Value) -> (Bytes, Reply) {
        let body = Bytes::from(body.to_string());
        let r = client
            .post(url, "application/json", body.clone())
            .await
            .unwrap();
        (body, r)
    }

    /// The node's signed checkpoint once it covers `size` entries, checked against the node's
    /// signing certificate (itself checked against the CA).
    async fn checkpoint_covering(
        auditor: &Client,
        trust: &attesta_certs::TrustStore,
        node: &TestNode,
        size: u64,
    ) -> Checkpoint {
        let pem = auditor
            .get(&node.url("/v1/audit/certificates"))
            .await
            .unwrap();
        assert_eq!(pem.status, 200);
        let signer = SignerCert::from_pem(&pem.body).unwrap();
        assert_eq!(signer.check(trust).unwrap().agency().as_str(), node.agency);
        let pk = signer.public_key().unwrap();
        let url = node.url("/v1/audit/checkpoint");
        eventually(|| async {
            let r = auditor.get(&url).await.ok()?;
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            let note = Note::parse(std::str::from_utf8(&r.body).unwrap()).unwrap();
            let c = Checkpoint::parse(&note.body).unwrap();
            assert_eq!(c.origin, format!("{TRUST_DOMAIN}/{}/audit", node.agency));
            assert!(note.verify(&c.origin, &pk, |m, s| signer.verify(m, s)));
            (c.size >= size).then_some(c)
        })
        .await
    }

    async fn entries(auditor: &Client, node: &TestNode, start: u64, end: u64) -> Vec<Value> {
        let mut out = Vec::new();
        let mut at = start;
        while at < end {
            let to = end.min(at + 1000);
            let r = auditor
                .get(&node.url(&format!("/v1/audit/entries?start={at}&end={to}")))
                .await
                .unwrap();
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            out.extend(
                r.json::<serde_json::Value>().unwrap()["entries"]
                    .as_array()
                    .unwrap()
                    .clone(),
            );
            at = to;
        }
        out
    }

    /// The `proof` of a proof answer.
    fn proof_hashes(answer: &Value) -> Vec<merkle::Hash> {
        answer["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                merkle::hash_from_slice(&STANDARD.decode(h.as_str().unwrap()).unwrap()).unwrap()
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_request_is_logged_before_its_answer_and_proven_to_auditors() {
        let mut f = Federation::start(|_| {}).await;
        let trust = f.pki.trust();
        let auditor = f.pki.client("garante-audit");
        let inps = f.pki.client("inps-pesaro");
        let foreigner = f.sample("resident with valid permit")["cf"].clone();
        let italian = f.sample("Italian citizen")["cf"].clone();

        // Two questions about the foreigner, one about the Italian, one denied, one malformed.
        let q = json!({"subject": foreigner, "purpose": PURPOSE});
        let (body, first) = post(&inps, &f.inps.url("/v1/status"), &q).await;
        assert_eq!(first.status, 200);
        let (_, second) = post(&inps, &f.inps.url("/v1/status"), &q).await;
        let q_it = json!({"subject": italian, "purpose": PURPOSE});
        let (_, other) = post(&inps, &f.inps.url("/v1/status"), &q_it).await;
        assert_eq!(other.status, 200);
        let stranger = f.pki.client("asl-1");
        let (_, denied) = post(&stranger, &f.inps.url("/v1/status"), &q).await;
        assert_eq!(denied.status, 403);
        let bad = stranger
            .post(
                &f.inps.url("/v1/status"),
                "application/json",
                Bytes::from_static(b"{\"subject\": 1}"),
            )
            .await
            .unwrap();
        assert_eq!(bad.status, 400);
        let indexes: Vec<u64> = [&first, &second, &other, &denied, &bad]
            .iter()
            .map(|r| log_index(r))
            .collect();
        assert!(indexes.windows(2).all(|w| w[0] < w[1]), "{indexes:?}");

        // The entries, as the auditor reads them.
        let c = checkpoint_covering(&auditor, &trust, &f.inps, indexes[4] + 1).await;
        let all = entries(&auditor, &f.inps, 0, c.size).await;
        let leaves: Vec<merkle::Hash> = all
            .iter()
            .map(|e| merkle::leaf_hash(&STANDARD.decode(e["leaf"].as_str().unwrap()).unwrap()))
            .collect();
        assert_eq!(
            merkle::root(&leaves),
            c.root,
            "entries match the signed root"
        );

        // The manifest the Prefettura pushed (version 2) is an entry of its own, naming the
        // policy now in force and the signed manifest's digest.
        let ready = inps
            .get(&f.inps.url("/readyz"))
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .unwrap();
        let token = inps.get(&f.inps.url("/v1/manifest")).await.unwrap().body;
        let change: Vec<&Value> = all.iter().filter(|e| e["direction"] == "change").collect();
        assert_eq!(change.len(), 1, "{change:?}");
        assert_eq!(change[0]["route"], "manifest");
        assert_eq!(change[0]["peer_agency"], PREFETTURA);
        assert_eq!(change[0]["rule"], "version 2 installed (push)");
        assert_eq!(change[0]["policy_version"], ready["policy_version"]);
        assert_eq!(change[0]["request_sha256"], hex::encode(sha256(&token)));

        let e = &all[indexes[0] as usize];
        let query_id = first.headers["attesta-query-id"].to_str().unwrap();
        assert_eq!(e["direction"], "incoming");
        assert_eq!(e["route"], "POST /v1/status");
        assert_eq!(e["peer_agency"], "inps-pesaro");
        assert_eq!(e["query_id"], query_id);
        assert_eq!(e["purpose"], PURPOSE);
        assert_eq!(e["decision"], "allow");
        assert_eq!(e["status"], 200);
        assert_eq!(e["request_sha256"], hex::encode(sha256(&body)));
        assert_eq!(e["response_sha256"], hex::encode(sha256(&first.body)));
        assert_eq!(
            first.json::<serde_json::Value>().unwrap()["query_id"],
            query_id
        );
        // The blinded subject: the same person has the same HMAC, another person another.
        let blinded = e["subject_hmac"].as_str().unwrap();
        assert_eq!(blinded.len(), 64);
        assert_eq!(all[indexes[1] as usize]["subject_hmac"], blinded);
        assert_ne!(all[indexes[2] as usize]["subject_hmac"], blinded);
        assert!(!all
            .iter()
            .any(|e| e.to_string().contains(foreigner.as_str().unwrap())));

        // The coordinator's calls precede its answer's entry, under the same query id, and
        // the peers logged them as incoming with the same request digest.
        let calls: Vec<&Value> = all
            .iter()
            .filter(|x| x["query_id"] == query_id && x["direction"] == "outgoing")
            .collect();
        let asked: std::collections::BTreeSet<&str> = calls
            .iter()
            .map(|x| x["peer_agency"].as_str().unwrap())
            .collect();
        assert!(asked.contains("questura-pu"), "{asked:?}");
        for call in &calls {
            assert!(call["index"].as_u64().unwrap() < indexes[0]);
            assert_eq!(call["subject_hmac"], blinded);
        }
        let questura_call = calls
            .iter()
            .find(|x| x["peer_agency"] == "questura-pu")
            .unwrap();
        assert_eq!(questura_call["route"], "POST /v1/attest/legal-presence");
        assert_eq!(questura_call["status"], 200);
        let qc = checkpoint_covering(&auditor, &trust, &f.questura, 1).await;
        let questura_log = entries(&auditor, &f.questura, 0, qc.size).await;
        let received = questura_log
            .iter()
            .find(|x| x["query_id"] == query_id)
            .expect("the Questura logged the call");
        assert_eq!(received["direction"], "incoming");
        assert_eq!(received["peer_agency"], "inps-pesaro");
        assert_eq!(received["request_sha256"], questura_call["request_sha256"]);
        assert_eq!(
            received["response_sha256"],
            questura_call["response_sha256"]
        );
        // Each node blinds with its own key.
        assert_ne!(received["subject_hmac"], blinded);

        // Denied and malformed requests are entries too.
        let d = &all[indexes[3] as usize];
        assert_eq!(
            (d["decision"].as_str(), d["status"].as_u64()),
            (Some("deny"), Some(403))
        );
        assert_eq!(d["peer_agency"], "asl-1");
        assert!(
            d["rule"].as_str().unwrap().starts_with("no rule grants"),
            "{d}"
        );
        let b = &all[indexes[4] as usize];
        assert_eq!(
            (b["decision"].as_str(), b["status"].as_u64()),
            (Some("none"), Some(400))
        );

        // Proofs from the node verify against the signed checkpoint.
        for &index in &indexes {
            let r = auditor
                .get(&f.inps.url(&format!(
                    "/v1/audit/proof/inclusion?index={index}&size={}",
                    c.size
                )))
                .await
                .unwrap();
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            let p = r.json::<serde_json::Value>().unwrap();
            let proof = proof_hashes(&p);
            merkle::verify_inclusion(&leaves[index as usize], index, c.size, &proof, &c.root)
                .unwrap();
        }
        // A later checkpoint is consistent with the earlier one.
        let (_, more) = post(&inps, &f.inps.url("/v1/status"), &q).await;
        let later = checkpoint_covering(&auditor, &trust, &f.inps, log_index(&more) + 1).await;
        let r = auditor
            .get(&f.inps.url(&format!(
                "/v1/audit/proof/consistency?from={}&to={}",
                c.size, later.size
            )))
            .await
            .unwrap();
        let p = r.json::<serde_json::Value>().unwrap();
        let proof = proof_hashes(&p);
        merkle::verify_consistency(c.size, later.size, &c.root, &later.root, &proof).unwrap();

        // Bad auditor requests, and non-auditors, are refused.
        for (path, status) in [
            ("/v1/audit/entries?start=5&end=5", 400),
            ("/v1/audit/entries?start=0&end=100000000", 400),
            ("/v1/audit/entries?start=0", 400),
            ("/v1/audit/entries?start=0&end=1&x=1", 400),
            ("/v1/audit/proof/inclusion?index=5&size=5", 400),
            ("/v1/audit/proof/consistency?from=0&to=5", 400),
        ] {
            let r = auditor.get(&f.inps.url(path)).await.unwrap();
            assert_eq!(r.status, status, "{path}");
            assert_eq!(r.content_type(), Some("application/problem+json"), "{path}");
        }
        let r = inps.get(&f.inps.url("/v1/audit/checkpoint")).await.unwrap();
        assert_eq!(r.status, 403);
        let (_, r) = post(&inps, &f.inps.url("/v1/status"), &q).await;
        assert_eq!(r.status, 200);
        let conn = inps.connect_h2(&f.inps.url).await.unwrap();
        let r = conn
            .send_with(
                http::Method::POST,
                "/v1/status",
                &[("attesta-query-id", "not-hex")],
                Some(("application/json", Bytes::from(q.to_string()))),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 400);
        assert!(String::from_utf8_lossy(&r.body).contains("attesta-query-id"));

        // The subject report: exactly the queries about the person, with their outgoing calls.
        let report = post(
            &auditor,
            &f.inps.url("/v1/audit/subject-report"),
            &json!({"subject": foreigner}),
        )
        .await
        .1;
        assert_eq!(
            report.status,
            200,
            "{}",
            String::from_utf8_lossy(&report.body)
        );
        let report = report.json::<serde_json::Value>().unwrap();
        let reported: Vec<u64> = report["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["index"].as_u64().unwrap())
            .collect();
        let size = report["size"].as_u64().unwrap();
        let all = entries(&auditor, &f.inps, 0, size).await;
        let expected: Vec<u64> = all
            .iter()
            .filter(|e| e["subject_hmac"] == blinded)
            .map(|e| e["index"].as_u64().unwrap())
            .collect();
        assert_eq!(reported, expected);
        // The five status requests about the foreigner (the denied one included) and the
        // calls of the allowed ones; nothing about the Italian.
        let incoming: Vec<&Value> = report["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["direction"] == "incoming")
            .collect();
        assert_eq!(incoming.len(), 5, "{report}");
        assert!(incoming.iter().all(|e| e["route"] == "POST /v1/status"));
        assert_eq!(
            incoming.iter().filter(|e| e["decision"] == "deny").count(),
            1
        );
        assert!(!reported.contains(&indexes[2]));
        let r = post(
            &auditor,
            &f.inps.url("/v1/audit/subject-report"),
            &json!({"subject": "RSSMRA85T10A562X"}),
        )
        .await
        .1;
        assert_eq!(r.status, 400);

        // Receipts: the agency an entry names gets a proof, checkable offline, that the node
        // logged it; others need the auditor's grant.
        let receipt = |client: Client, index: u64| {
            let url = f.inps.url(&format!("/v1/audit/receipt?index={index}"));
            async move {
                eventually(|| async {
                    let r = client.get(&url).await.ok()?;
                    (r.status != 404).then_some(r)
                })
                .await
            }
        };
        let dir = f.pki.dir.path().to_owned();
        let ca = f.pki.ca_cert();
        let check = |name: &str, body: &[u8], witnesses: &str| {
            let path = dir.join(name);
            std::fs::write(&path, body).unwrap();
            let o = crate::cli::attesta()
                .args(["audit", "check-receipt"])
                .arg(&path)
                .arg("--ca")
                .arg(&ca)
                .args(["--witnesses", witnesses])
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            (o.status.success(), text)
        };
        let mine = receipt(inps.clone(), indexes[0]).await;
        assert_eq!(mine.status, 200, "{}", String::from_utf8_lossy(&mine.body));
        let (ok, said) = check("mine.tlog-proof", &mine.body, "3");
        assert!(ok, "{said}");
        assert!(said.contains("cosigned by"), "{said}");
        assert!(
            said.starts_with(&format!("valid: inps-pesaro logged entry {}", indexes[0]))
                && said.contains("request from inps-pesaro, POST /v1/status")
                && said.contains(&format!("query {query_id}, status 200")),
            "{said}"
        );
        // A signature line by the node's key that does not verify, beside the valid one,
        // makes the receipt invalid (C2SP signed-note): it is not "valid" because one line is.
        let text = String::from_utf8(mine.body.to_vec()).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with('\u{2014}'))
            .unwrap()
            .to_owned();
        let mut forged_line: Vec<char> = line.chars().collect();
        let at = forged_line.len() - 10;
        forged_line[at] = if forged_line[at] == 'A' { 'B' } else { 'A' };
        let forged_line: String = forged_line.into_iter().collect();
        for forged in [
            text.replacen(&line, &format!("{line}\n{forged_line}"), 1),
            text.replacen(&line, &format!("{forged_line}\n{line}"), 1),
        ] {
            let (ok, said) = check("forged.tlog-proof", forged.as_bytes(), "0");
            assert!(
                !ok,
                "a receipt with a failing signature line passed: {said}"
            );
        }
        // The stranger's denied request is logged too, and it can prove it.
        let denied_receipt = receipt(stranger.clone(), indexes[3]).await;
        assert_eq!(denied_receipt.status, 200);
        let (ok, said) = check("denied.tlog-proof", &denied_receipt.body, "0");
        assert!(ok && said.contains("status 403"), "{said}");
        // Not the stranger's entry: the policy decides, and it has no grant.
        assert_eq!(receipt(stranger.clone(), indexes[0]).await.status, 403);
        assert_eq!(receipt(auditor.clone(), indexes[0]).await.status, 200);
        // Past the log: an auditor and the node's own agency are told the size; anyone else
        // only that it may not ask, so a receipt request does not reveal the log's size (or
        // what was pruned).
        for who in [&auditor, &inps] {
            let r = who
                .get(&f.inps.url("/v1/audit/receipt?index=99999999"))
                .await
                .unwrap();
            assert_eq!(r.status, 404);
            let detail = r.json::<serde_json::Value>().unwrap()["detail"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(detail.contains("the log has"), "{detail}");
        }
        let r = stranger
            .get(&f.inps.url("/v1/audit/receipt?index=99999999"))
            .await
            .unwrap();
        assert_eq!(r.status, 403);
        let detail = r.json::<serde_json::Value>().unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(!detail.contains("the log has"), "{detail}");
        // A changed entry (its query id) no longer has the signed tree's leaf.
        let text = String::from_utf8(mine.body.to_vec()).unwrap();
        let forged = attesta::audit::receipt::Receipt::parse(&text).unwrap();
        let mut changed = forged.clone();
        changed.entry[10] ^= 1;
        let (ok, said) = check("changed.tlog-proof", changed.render().as_bytes(), "0");
        assert!(!ok && said.contains("is not in the signed tree"), "{said}");
        let (ok, said) = check("garbage.tlog-proof", b"hello\n", "0");
        assert!(
            !ok && said.contains("garbage.tlog-proof: not a receipt"),
            "{said}"
        );
    }
}

mod bundles {
    use std::path::{Path, PathBuf};

    use bytes::Bytes;
    use serde_json::json;

    use super::{ask_status, log_index};
    use crate::cli::attesta;
    use crate::harness::*;
    use crate::status::{client_toml, Federation};

    fn run(args: &[&str], extra: &[&Path]) -> std::process::Output {
        attesta()
            .arg("audit")
            .args(args)
            .args(extra)
            .output()
            .unwrap()
    }

    fn text(o: &std::process::Output) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    }

    fn export(config: &Path, agency: &str, url: Option<&str>, out: &Path) {
        let mut args = vec!["export", "--node", agency];
        if let Some(u) = url {
            args.extend(["--url", u]);
        }
        let o = run(
            &args,
            &[Path::new("--config"), config, Path::new("--out"), out],
        );
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            text(&o).contains(&format!("exported {agency}")),
            "{}",
            text(&o)
        );
    }

    fn reconcile(a: &Path, b: &Path, ca: &Path) -> std::process::Output {
        run(&["reconcile"], &[a, b, Path::new("--ca"), ca])
    }

    fn verify(bundle: &Path, ca: &Path, since: Option<&Path>) -> std::process::Output {
        verify_with(bundle, ca, since, 0)
    }

    fn verify_with(
        bundle: &Path,
        ca: &Path,
        since: Option<&Path>,
        witnesses: usize,
    ) -> std::process::Output {
        let mut extra = vec![bundle, Path::new("--ca"), ca];
        if let Some(s) = since {
            extra.extend([Path::new("--since"), s]);
        }
        let n = witnesses.to_string();
        run(&["verify", "--witnesses", &n], &extra)
    }

    /// The index a node gave its log entry for one request of `client`: every earlier
    /// entry has a smaller one.
    async fn logged_up_to(client: &attesta::client::Client, node: &TestNode) -> u64 {
        let r = client
            .get(&node.url("/v1/audit/certificates"))
            .await
            .unwrap();
        log_index(&r)
    }

    /// Exports `agency`'s log until its checkpoint holds more than `covering` entries and
    /// carries `witnesses` cosignatures that verify (a new checkpoint is signed every second
    /// and cosigned a moment later; until then the node serves the last cosigned one).
    async fn export_witnessed(
        config: &Path,
        ca: &Path,
        agency: &str,
        out: &Path,
        witnesses: usize,
        covering: u64,
    ) -> String {
        let mut last = String::new();
        for _ in 0..20 {
            tokio::task::block_in_place(|| export(config, agency, None, out));
            let o = verify_with(out, ca, None, witnesses);
            last = text(&o);
            if o.status.success() && entries_in(&last) > covering {
                return last;
            }
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        panic!("{agency}: no cosigned checkpoint beyond entry {covering}: {last}");
    }

    /// The number of entries `verify` said a whole bundle holds (0 if it did not verify).
    fn entries_in(said: &str) -> u64 {
        said.split(" log, ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    fn export_range(config: &Path, agency: &str, from: u64, to: u64, out: &Path) -> String {
        let (from, to) = (from.to_string(), to.to_string());
        let args = ["export", "--node", agency, "--from", &from, "--to", &to];
        let o = run(
            &args,
            &[Path::new("--config"), config, Path::new("--out"), out],
        );
        assert!(o.status.success(), "{}", text(&o));
        text(&o)
    }

    /// Byte offsets of each entry's bytes in a bundle, and of the leaf hash list.
    fn layout(bytes: &[u8]) -> (usize, Vec<(usize, usize)>) {
        let magic = attesta::audit::bundle::MAGIC.len();
        let hlen = u32::from_be_bytes(bytes[magic..magic + 4].try_into().unwrap()) as usize;
        let mut at = magic + 4 + hlen;
        let n = u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        at += 8;
        let leaves = at;
        at += 32 * n;
        let mut entries = Vec::new();
        for _ in 0..n {
            let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            entries.push((at + 4, len));
            at += 4 + len;
        }
        assert_eq!(at, bytes.len());
        (leaves, entries)
    }

    fn changed(path: &Path, name: &str, offset: usize) -> PathBuf {
        let mut bytes = std::fs::read(path).unwrap();
        bytes[offset] ^= 0x01;
        let out = path.with_file_name(name);
        std::fs::write(&out, bytes).unwrap();
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_auditor_exports_and_verifies_and_catches_tampering_and_truncation() {
        let mut f = Federation::start(|_| {}).await;
        let inps = f.pki.client("inps-pesaro");
        for label in ["resident with valid permit", "Italian citizen"] {
            ask_status(&f, &inps, label).await;
        }
        // Checkpoints are signed every second.
        let config = client_toml(&mut f.pki, "garante-audit", &f.inps);
        let ca = f.pki.ca_cert();
        let dir = f.pki.dir.path().to_owned();
        // Every node's log, cosigned by its three peers, holding the calls above.
        let auditor = f.pki.client("garante-audit");
        let first = dir.join("questura-1.bundle");
        let covering = logged_up_to(&auditor, &f.questura).await;
        let said = export_witnessed(&config, &ca, "questura-pu", &first, 3, covering).await;
        assert!(said.starts_with("valid: questura-pu log,"), "{said}");
        assert!(
            said.contains("cosigned by")
                && said.contains("comune-pesaro")
                && said.contains("comune-urbino")
                && said.contains("inps-pesaro"),
            "{said}"
        );
        for node in [&f.inps, &f.pesaro, &f.urbino] {
            let out = dir.join(format!("{}.bundle", node.agency));
            let covering = logged_up_to(&auditor, node).await;
            export_witnessed(&config, &ca, &node.agency, &out, 3, covering).await;
        }
        // The node serves its witnesses' certificates with its own, so the bundle does not
        // depend on reaching every witness.
        let url = f.questura.url("/v1/audit/certificates");
        eventually(|| async {
            let r = auditor.get(&url).await.ok()?;
            let text = String::from_utf8(r.body.to_vec()).unwrap();
            (text.matches("-----BEGIN CERTIFICATE-----").count() == 4).then_some(())
        })
        .await;
        // Four witnesses are more than it has.
        let o = verify_with(&first, &ca, None, 4);
        assert!(
            text(&o).contains("3 valid witness cosignature(s), 4 required"),
            "{}",
            text(&o)
        );

        // One flipped byte in one entry: verify fails and names that entry.
        let bytes = std::fs::read(&first).unwrap();
        let (leaves, entries) = layout(&bytes);
        assert!(entries.len() >= 3, "{} entries", entries.len());
        let k = entries.len() - 2;
        let (at, len) = entries[k];
        let o = verify(&changed(&first, "entry.bundle", at + len - 1), &ca, None);
        assert!(!o.status.success());
        assert!(
            text(&o).contains(&format!("entry {k} was changed after it was logged")),
            "{}",
            text(&o)
        );
        // A changed leaf hash: the list no longer has the signed root.
        let o = verify(&changed(&first, "leaf.bundle", leaves + 40), &ca, None);
        assert!(text(&o).contains("hash list was changed"), "{}", text(&o));
        // A changed checkpoint root (the last characters before the note's blank line, which
        // the JSON header escapes as `\n\n`): the signature no longer verifies.
        let header = String::from_utf8_lossy(&bytes).find("\\n\\n").unwrap();
        let o = verify(&changed(&first, "sig.bundle", header - 3), &ca, None);
        assert!(!o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("checkpoint"), "{}", text(&o));
        // Cut short, or not a bundle at all: one line naming the file.
        let cut = dir.join("cut.bundle");
        std::fs::write(&cut, &bytes[..bytes.len() - 5]).unwrap();
        let o = verify(&cut, &ca, None);
        assert!(
            text(&o).contains("cut.bundle") && text(&o).contains("truncated"),
            "{}",
            text(&o)
        );
        let o = verify(&config, &ca, None);
        assert!(
            text(&o).contains("not an attesta audit bundle"),
            "{}",
            text(&o)
        );
        // Another federation's CA does not vouch for the signer.
        let other = Pki::with_trust_domain(attesta_certs::TrustDomain::new("other.test").unwrap());
        let o = verify(&first, &other.ca_cert(), None);
        assert!(
            text(&o).contains("signing certificate is not valid"),
            "{}",
            text(&o)
        );

        // Reconciliation: INPS's coordinator asked the Questura and the registry of Pesaro
        // twice each; each log has the other side of every call.
        let inps_first = dir.join("inps-pesaro.bundle");
        let o = reconcile(&inps_first, &first, &ca);
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            text(&o).contains("inps-pesaro -> questura-pu: 2 call(s) in both logs")
                && text(&o).contains("questura-pu -> inps-pesaro: 0 call(s)")
                && text(&o).contains("reconciled: no differences"),
            "{}",
            text(&o)
        );
        let o = reconcile(&dir.join("comune-pesaro.bundle"), &inps_first, &ca);
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            text(&o).contains("inps-pesaro -> comune-pesaro: 2 call(s) in both logs"),
            "{}",
            text(&o)
        );
        let o = reconcile(&first, &first, &ca);
        assert!(text(&o).contains("both questura-pu's log"), "{}", text(&o));
        let o = reconcile(&inps_first, &dir.join("entry.bundle"), &ca);
        assert!(
            !o.status.success() && text(&o).contains("entry.bundle: entry"),
            "{}",
            text(&o)
        );

        // A call with INPS's certificate that did not go through INPS's node: the Questura
        // logged it, INPS's node did not make it.
        let cf = f.sample("resident with valid permit")["cf"].clone();
        let direct = inps
            .post(
                &f.questura.url("/v1/attest/legal-presence"),
                "application/json",
                Bytes::from(json!({"subject": cf, "purpose": "benefit-eligibility"}).to_string()),
            )
            .await
            .unwrap();
        let direct_index = log_index(&direct);

        // The log grows: the new bundle extends the first one.
        ask_status(&f, &inps, "Italian citizen").await;
        let second = dir.join("questura-2.bundle");
        let covering = logged_up_to(&auditor, &f.questura).await;
        export_witnessed(&config, &ca, "questura-pu", &second, 3, covering).await;
        let o = verify(&second, &ca, Some(&first));
        assert!(o.status.success(), "{}", text(&o));

        // A range of the log: its entries, tied to the signed root by the subtrees left of
        // it and a consistency proof to the checkpoint.
        let (size1, size2) = (
            entries_in(&said),
            entries_in(&text(&verify(&second, &ca, None))),
        );
        assert!(size1 >= 5 && size2 > size1, "{size1} {size2}");
        let range = dir.join("questura-range.bundle");
        let said = export_range(&config, "questura-pu", 2, 5, &range);
        assert!(
            said.contains("exported questura-pu: entries 2..5 of "),
            "{said}"
        );
        let o = verify_with(&range, &ca, None, 3);
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            text(&o).contains("valid: questura-pu log, entries 2..5 of "),
            "{}",
            text(&o)
        );
        let bytes = std::fs::read(&range).unwrap();
        let (leaves, entries) = layout(&bytes);
        assert_eq!(entries.len(), 3);
        let (at, len) = entries[1];
        let o = verify(
            &changed(&range, "range-entry.bundle", at + len - 1),
            &ca,
            None,
        );
        assert!(
            text(&o).contains("entry 3 was changed after it was logged"),
            "{}",
            text(&o)
        );
        let o = verify(
            &changed(&range, "range-leaf.bundle", leaves + 40),
            &ca,
            None,
        );
        assert!(
            text(&o).contains("do not lead to the signed root: the range was changed"),
            "{}",
            text(&o)
        );
        // What was logged since the first bundle: it continues that bundle's checkpoint.
        let since = dir.join("questura-since.bundle");
        let export_since = |agency: &str| {
            run(
                &["export", "--node", agency],
                &[
                    Path::new("--config"),
                    &config,
                    Path::new("--out"),
                    &since,
                    Path::new("--since"),
                    &first,
                ],
            )
        };
        let o = export_since("questura-pu");
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            text(&o).contains(&format!("entries {size1}..")),
            "{}",
            text(&o)
        );
        let o = verify(&since, &ca, Some(&first));
        assert!(o.status.success(), "{}", text(&o));
        let o = export_since("inps-pesaro");
        assert!(
            !o.status.success() && text(&o).contains("questura-pu/audit, not of "),
            "{}",
            text(&o)
        );
        // A range that does not reach the earlier checkpoint's end cannot show it continues.
        let o = verify(&range, &ca, Some(&first));
        assert!(
            !o.status.success() && text(&o).contains("outside this bundle's entries 2..5"),
            "{}",
            text(&o)
        );
        // Bad bounds: one line naming them.
        let o = run(
            &[
                "export",
                "--node",
                "questura-pu",
                "--from",
                "5",
                "--to",
                "5",
            ],
            &[Path::new("--config"), &config, Path::new("--out"), &range],
        );
        assert!(!o.status.success());
        assert!(
            text(&o).contains("--from 5 --to 5: need from < to"),
            "{}",
            text(&o)
        );
        let inps_second = dir.join("inps-pesaro-2.bundle");
        let covering = logged_up_to(&auditor, &f.inps).await;
        export_witnessed(&config, &ca, "inps-pesaro", &inps_second, 3, covering).await;
        let o = reconcile(&inps_second, &second, &ca);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(
            text(&o).contains("inps-pesaro -> questura-pu: 3 call(s) in both logs")
                && text(&o).contains(&format!(
                    "questura-pu entry {direct_index}: request from inps-pesaro ("
                ))
                && text(&o).contains("POST /v1/attest/legal-presence, status 200")
                && text(&o)
                    .contains("1 difference(s) between the logs of inps-pesaro and questura-pu"),
            "{}",
            text(&o)
        );

        // The Questura's log is wiped and its node restarted: it signs a new, shorter
        // history with its own key. Consistency with the earlier bundle catches it.
        let Federation {
            mut pki,
            questura,
            pesaro: f_pesaro,
            urbino: f_urbino,
            inps: f_inps,
            ..
        } = f;
        let data = pki.agency_dir("questura-pu").join("data");
        questura.stop().await;
        std::fs::remove_dir_all(data.join("db")).unwrap();
        let questura = start_node(&mut pki, "questura-pu", |c| {
            c.serves = vec!["legal-presence".into()];
        })
        .await;
        // Until the new history has a signed checkpoint to export.
        eventually(|| async {
            let r = auditor
                .get(&questura.url("/v1/audit/checkpoint"))
                .await
                .ok()?;
            (r.status == 200).then_some(())
        })
        .await;
        let third = dir.join("questura-3.bundle");
        tokio::task::block_in_place(|| export(&config, "questura-pu", Some(&questura.url), &third));
        let o = verify(&third, &ca, None);
        assert!(
            o.status.success(),
            "on its own the new log verifies: {}",
            text(&o)
        );
        let o = verify(&third, &ca, Some(&second));
        assert!(!o.status.success());
        assert!(
            text(&o).contains("it was truncated") || text(&o).contains("history was rewritten"),
            "{}",
            text(&o)
        );
        // The witnesses refuse to cosign the new history: each has cosigned a larger tree
        // and answers 409 with its size; the new checkpoint carries no cosignature.
        let o = verify_with(&third, &ca, None, 1);
        assert!(
            text(&o).contains("0 valid witness cosignature(s), 1 required"),
            "{}",
            text(&o)
        );
        for witness in [&f_pesaro, &f_urbino, &f_inps] {
            let own = pki.client(&witness.agency);
            wait_metric(
                &own,
                witness,
                "attesta_witness_requests_total{result=\"conflict\"}",
                1.0,
            )
            .await;
        }
        let own = pki.client("questura-pu");
        wait_metric(
            &own,
            &questura,
            "attesta_witness_submissions_total{result=\"conflict\"}",
            3.0,
        )
        .await;
    }
}

mod witness {
    use attesta::audit::merkle::{self, Hash};
    use attesta::audit::note::{cosigned_at, Checkpoint, Note};
    use attesta::client::{Client, Reply};
    use attesta_certs::{SignerCert, SigningIdentity};
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use bytes::Bytes;
    use http::Method;

    use crate::cli::attesta;
    use crate::harness::*;

    const PATH: &str = "/v1/witness/add-checkpoint";

    /// A checkpoint of the first `n` leaves, signed as `origin` by `key`.
    fn checkpoint(key: &SigningIdentity, origin: &str, leaves: &[Hash], n: usize) -> Note {
        let c = Checkpoint {
            origin: origin.to_owned(),
            size: n as u64,
            root: merkle::root(&leaves[..n]),
        };
        Note::sign(c.body(), origin, &key.public_key(), |m| key.sign(m)).unwrap()
    }

    fn body(old: u64, proof: &[Hash], note: &Note) -> String {
        let mut out = format!("old {old}\n");
        for h in proof {
            out.push_str(&STANDARD.encode(h));
            out.push('\n');
        }
        format!("{out}\n{}", note.render())
    }

    async fn submit(client: &Client, node: &TestNode, cert: Option<&str>, body: String) -> Reply {
        let conn = client.connect_h2(&node.url).await.unwrap();
        let headers: Vec<(&'static str, &str)> = cert
            .map(|c| vec![("attesta-log-certificate", c)])
            .unwrap_or_default();
        conn.send_with(
            Method::POST,
            PATH,
            &headers,
            Some(("text/plain; charset=utf-8", Bytes::from(body))),
        )
        .await
        .unwrap()
    }

    /// The node's log size, and its entries from `start` on (as the auditor reads them).
    async fn logged_since(
        auditor: &Client,
        node: &TestNode,
        start: u64,
    ) -> (u64, Vec<serde_json::Value>) {
        let get = |path: String| async move {
            auditor
                .get(&node.url(&path))
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .unwrap()
        };
        let size = get("/v1/audit/entries?start=0&end=1".into()).await["size"]
            .as_u64()
            .unwrap();
        let page = get(format!("/v1/audit/entries?start={start}&end={size}")).await;
        (size, page["entries"].as_array().unwrap().clone())
    }

    fn problem(r: &Reply) -> (String, String) {
        let p = r.json::<serde_json::Value>().unwrap_or_default();
        (
            p["type"].as_str().unwrap_or_default().to_owned(),
            p["detail"].as_str().unwrap_or_default().to_owned(),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_witness_cosigns_only_checkpoints_that_extend_the_last_one() {
        let mut pki = Pki::new();
        let serves = |c: &mut attesta::config::NodeConfig| {
            c.serves = vec!["legal-presence".into()];
        };
        let questura = start_node(&mut pki, "questura-pu", serves).await;
        // The log of comune-urbino (in the directory; its node is played by the test).
        let urbino_key = pki.signing("comune-urbino");
        let cert = STANDARD.encode(urbino_key.cert_der());
        let urbino = pki.client("comune-urbino");
        let origin = format!("{TRUST_DOMAIN}/comune-urbino/audit");
        let leaves: Vec<Hash> = (0..20u8).map(|i| merkle::leaf_hash(&[i])).collect();
        let note = |n| checkpoint(&urbino_key, &origin, &leaves, n);

        // Only agencies of the directory may ask.
        let r = submit(
            &pki.client("asl-1"),
            &questura,
            Some(&cert),
            body(0, &[], &note(5)),
        )
        .await;
        assert_eq!(r.status, 403, "{}", problem(&r).1);
        assert!(problem(&r).1.contains("not in the federation directory"));
        // Malformed requests.
        for bad in [
            "old 0\n".to_owned(),
            format!("old x\n\n{}", note(5).render()),
            format!("old 0\nnot base64\n\n{}", note(5).render()),
            "old 0\n\nnot a note\n".to_owned(),
        ] {
            let r = submit(&urbino, &questura, Some(&cert), bad.clone()).await;
            assert_eq!(r.status, 400, "{bad:?}");
            assert_eq!(problem(&r).0, "urn:attesta:problem:bad-request");
        }
        // Logs it does not follow: outside the directory, another federation, its own.
        for other in ["asl-1", "questura-pu"] {
            let o = format!("{TRUST_DOMAIN}/{other}/audit");
            let n = checkpoint(&urbino_key, &o, &leaves, 5);
            let r = submit(&urbino, &questura, Some(&cert), body(0, &[], &n)).await;
            assert_eq!(r.status, 404, "{other}");
            assert_eq!(problem(&r).0, "urn:attesta:problem:unknown-log");
        }
        let n = checkpoint(&urbino_key, "other.test/comune-urbino/audit", &leaves, 5);
        let r = submit(&urbino, &questura, Some(&cert), body(0, &[], &n)).await;
        assert_eq!(r.status, 404);
        // No certificate yet, another agency's certificate, another key's signature.
        let r = submit(&urbino, &questura, None, body(0, &[], &note(5))).await;
        assert_eq!(r.status, 403);
        assert!(problem(&r).1.contains("no signing certificate known"));
        let pesaro_key = pki.signing("comune-pesaro");
        let pesaro_cert = STANDARD.encode(pesaro_key.cert_der());
        let r = submit(
            &urbino,
            &questura,
            Some(&pesaro_cert),
            body(0, &[], &note(5)),
        )
        .await;
        assert_eq!(r.status, 403);
        assert!(problem(&r)
            .1
            .contains("comune-pesaro's, not comune-urbino's"));
        let forged = checkpoint(&pesaro_key, &origin, &leaves, 5);
        let r = submit(&urbino, &questura, Some(&cert), body(0, &[], &forged)).await;
        assert_eq!(r.status, 403);
        assert!(problem(&r)
            .1
            .contains("not signed by comune-urbino's signing key"));
        let r = submit(&urbino, &questura, Some("%%%"), body(0, &[], &note(5))).await;
        assert_eq!(r.status, 403);
        // A signing key whose certificate has expired gets nothing cosigned, even for a
        // checkpoint it signed (a checkpoint carries no time).
        let expired = {
            let now = std::time::SystemTime::now();
            let day = std::time::Duration::from_secs(86_400);
            let leaf = pki.leaf("comune-urbino", |spec| {
                *spec = attesta_certs::LeafSpec::sign(&td(), &agency("comune-urbino"), 1);
                spec.not_before = now - 10 * day;
                spec.not_after = now - day;
            });
            let dir = pki.dir.path().join("expired-urbino");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("sign.crt"), &leaf.cert_pem).unwrap();
            std::fs::write(dir.join("sign.key"), &leaf.key_pem).unwrap();
            SigningIdentity::load(&td(), &dir.join("sign.crt"), &dir.join("sign.key")).unwrap()
        };
        let old_cert = STANDARD.encode(expired.cert_der());
        let old_note = checkpoint(&expired, &origin, &leaves, 5);
        let r = submit(&urbino, &questura, Some(&old_cert), body(0, &[], &old_note)).await;
        assert_eq!(r.status, 403);
        assert!(problem(&r).1.contains("not valid now"), "{}", problem(&r).1);
        // A failing signature line by the log's key beside its valid one: refused.
        let mut two = note(5);
        let mut bad = two.signatures[0].clone();
        bad.data[3] ^= 1;
        two.signatures.push(bad);
        let r = submit(&urbino, &questura, Some(&cert), body(0, &[], &two)).await;
        assert_eq!(r.status, 403, "{}", problem(&r).1);

        // The first checkpoint: cosigned, with the witness's certificate to check it.
        let r = submit(&urbino, &questura, Some(&cert), body(0, &[], &note(5))).await;
        assert_eq!(r.status, 200, "{}", problem(&r).1);
        let witness = SignerCert::from_der(
            &STANDARD
                .decode(r.headers["attesta-witness-certificate"].as_bytes())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            witness.check(&pki.trust()).unwrap().agency().as_str(),
            "questura-pu"
        );
        let line = String::from_utf8(r.body.to_vec()).unwrap();
        let name = format!("{TRUST_DOMAIN}/questura-pu/witness");
        assert!(line.starts_with(&format!("\u{2014} {name} ")), "{line}");
        let cosigned = Note::parse(&format!("{}\n{line}", note(5).body)).unwrap();
        let pk = witness.public_key().unwrap();
        let at = cosigned_at(&cosigned, &name, &pk, |m, s| witness.verify(m, s)).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(at <= now && now - at < 60, "{at} vs {now}");

        // A stale `old`: 409 with the size the witness has.
        let r = submit(&urbino, &questura, Some(&cert), body(0, &[], &note(8))).await;
        assert_eq!(r.status, 409);
        assert_eq!(r.content_type(), Some("text/x.tlog.size"));
        // tlog-witness: the size in decimal, then a newline.
        assert_eq!(&r.body[..], b"5\n");
        // A proof that does not verify: 422.
        let r = submit(
            &urbino,
            &questura,
            Some(&cert),
            body(5, &[[0; 32]; 3], &note(8)),
        )
        .await;
        assert_eq!(r.status, 422);
        assert_eq!(problem(&r).0, "urn:attesta:problem:inconsistent-checkpoint");
        // The right proof; the certificate is remembered.
        let proof = merkle::consistency_proof(&leaves[..], 5, 8).unwrap();
        let r = submit(&urbino, &questura, None, body(5, &proof, &note(8))).await;
        assert_eq!(r.status, 200, "{}", problem(&r).1);

        // A fork: entry 6 rewritten, a new root for size 10 with a proof from the forked
        // tree. Refused.
        let mut forked = leaves.clone();
        forked[6] = merkle::leaf_hash(b"rewritten");
        let fork = checkpoint(&urbino_key, &origin, &forked, 10);
        let proof = merkle::consistency_proof(&forked[..], 8, 10).unwrap();
        let r = submit(&urbino, &questura, None, body(8, &proof, &fork)).await;
        assert_eq!(r.status, 422);
        // A truncated log: smaller than what was cosigned.
        let r = submit(&urbino, &questura, None, body(8, &[], &note(3))).await;
        assert_eq!(r.status, 400);
        let r = submit(&urbino, &questura, None, body(0, &[], &note(3))).await;
        assert_eq!((r.status.as_u16(), &r.body[..]), (409, &b"8\n"[..]));

        // The state survives a restart.
        let questura = {
            questura.stop().await;
            start_node(&mut pki, "questura-pu", serves).await
        };
        let r = submit(&urbino, &questura, None, body(0, &[], &note(12))).await;
        assert_eq!((r.status.as_u16(), &r.body[..]), (409, &b"8\n"[..]));
        let proof = merkle::consistency_proof(&leaves[..], 8, 12).unwrap();
        let r = submit(&urbino, &questura, None, body(8, &proof, &note(12))).await;
        assert_eq!(r.status, 200, "{}", problem(&r).1);
        // Another tree of the same size (a split view): 409 with the witness's size, as
        // tlog-witness says; the same one again: cosigned.
        let split = checkpoint(&urbino_key, &origin, &forked, 12);
        let r = submit(&urbino, &questura, None, body(12, &[], &split)).await;
        assert_eq!((r.status.as_u16(), &r.body[..]), (409, &b"12\n"[..]));
        let r = submit(&urbino, &questura, None, body(12, &[], &note(12))).await;
        assert_eq!(r.status, 200, "{}", problem(&r).1);

        // Refusals are audit entries; cosignatures are not (each would make a new checkpoint
        // to cosign).
        let auditor = pki.client("garante-audit");
        let (size, page) = logged_since(&auditor, &questura, 0).await;
        let statuses: Vec<u64> = page
            .iter()
            .filter(|e| e["route"] == format!("POST {PATH}"))
            .map(|e| e["status"].as_u64().unwrap())
            .collect();
        assert_eq!(
            statuses,
            [
                403, 400, 400, 400, 400, 404, 404, 404, 403, 403, 403, 403, 403, 403, 409, 422,
                422, 400, 409, 409, 409
            ],
            "{page:?}"
        );

        // Urbino lost its log and the federation accepted its new history: the Questura's
        // operator makes its node forget what it cosigned (node stopped), and it cosigns the
        // new history from scratch. The reset is in the Questura's own log.
        let config = questura.config_path.clone();
        let run = |log: &str| {
            tokio::task::block_in_place(|| {
                attesta()
                    .args(["node", "forget-witnessed", "--log", log, "--config"])
                    .arg(&config)
                    .output()
                    .unwrap()
            })
        };
        let o = run("comune-urbino");
        assert!(!o.status.success());
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("is the node running? stop it first"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        questura.stop().await;
        let o = run("comune-urbino");
        let said = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(
            said.starts_with(&format!("forgot {origin} at size 12 (root ")),
            "{said}"
        );
        let o = run("comune-urbino");
        assert!(!o.status.success());
        assert!(String::from_utf8_lossy(&o.stderr)
            .contains("has cosigned nothing of comune-urbino's log"));
        let o = run("Not An Agency");
        assert!(!o.status.success());
        assert!(String::from_utf8_lossy(&o.stderr).contains("--log Not An Agency"));

        let questura = start_node(&mut pki, "questura-pu", serves).await;
        let restarted = checkpoint(&urbino_key, &origin, &forked, 4);
        let r = submit(&urbino, &questura, None, body(0, &[], &restarted)).await;
        assert_eq!(r.status, 403, "the certificate was forgotten too");
        let r = submit(&urbino, &questura, Some(&cert), body(0, &[], &restarted)).await;
        assert_eq!(r.status, 200, "{}", problem(&r).1);
        let (_, page) = logged_since(&auditor, &questura, size).await;
        let changes: Vec<&serde_json::Value> =
            page.iter().filter(|e| e["direction"] == "change").collect();
        assert_eq!(changes.len(), 1, "{page:?}");
        let e = changes[0];
        assert_eq!(e["route"], "witness");
        assert_eq!(e["peer_agency"], "comune-urbino");
        assert!(e["rule"]
            .as_str()
            .unwrap()
            .starts_with(&format!("forgot {origin} at size 12")));
    }
}

mod crash {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use attesta::audit::bundle::Bundle;
    use attesta::audit::entry::{sha256, Entry};
    use attesta::audit::merkle;
    use attesta::audit::note::{Checkpoint, Note};
    use attesta::client::Client;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use bytes::Bytes;
    use http::Method;
    use serde_json::{json, Value};

    use crate::cli::{attesta, spawn_node};
    use crate::harness::*;
    use crate::status::client_toml;

    /// What a client got back: the entry index and query id the answer named, and the
    /// digests of what was sent and received.
    struct Answer {
        status: u16,
        index: u64,
        query_id: String,
        request_sha256: [u8; 32],
        response_sha256: [u8; 32],
    }

    /// Asks the node in a loop over one HTTP/2 connection until `stop` or the node dies.
    async fn load(client: Client, url: String, body: Bytes, stop: Arc<AtomicBool>) -> Vec<Answer> {
        let mut got = Vec::new();
        let Ok(conn) = client.connect_h2(&url).await else {
            return got;
        };
        let request_sha256 = sha256(&body);
        while !stop.load(Ordering::SeqCst) {
            let reply = conn
                .send_with(
                    Method::POST,
                    "/v1/attest/legal-presence",
                    &[],
                    Some(("application/json", body.clone())),
                )
                .await;
            let Ok(reply) = reply else { break };
            let header = |name: &str| reply.headers[name].to_str().unwrap().to_owned();
            got.push(Answer {
                status: reply.status.as_u16(),
                index: header("attesta-log-index").parse().unwrap(),
                query_id: header("attesta-query-id"),
                request_sha256,
                response_sha256: sha256(&reply.body),
            });
        }
        got
    }

    async fn checkpoint(auditor: &Client, node: &TestNode) -> Option<(String, Checkpoint)> {
        let r = auditor.get(&node.url("/v1/audit/checkpoint")).await.ok()?;
        let text = String::from_utf8(r.body.to_vec()).ok()?;
        let note = Note::parse(&text).ok()?;
        Some((text, Checkpoint::parse(&note.body).ok()?))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_killed_under_load_keeps_every_answered_entry_and_signs_on_consistently() {
        let mut pki = Pki::new();
        pki.agency("questura-pu");
        let generated = pki.dir.path().join("generated");
        attesta::cli::generate::run(&attesta::cli::generate::GenerateArgs {
            out: generated.clone(),
            residents: 2_000,
            seed: 2014,
            as_of: Some("2026-11-01".into()),
        })
        .unwrap();
        let (node, config) = external_node(&mut pki, "questura-pu", |c| {
            c.serves = vec!["legal-presence".into()];
        });
        install_test_manifest(&mut pki, &config);
        let start = || spawn_node(&node);
        let inps = pki.client("inps-pesaro");
        let auditor = pki.client("garante-audit");
        let ready = node.url("/readyz");
        let mut child = start();
        eventually(|| async { inps.get(&ready).await.ok().filter(|r| r.status == 200) }).await;
        let permits = std::fs::read(generated.join("permits.csv")).unwrap();
        let r = pki
            .client("questura-pu")
            .post(
                &node.url("/v1/admin/import/permits?mode=snapshot&as_of=2026-11-01"),
                "text/csv",
                Bytes::from(permits),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let samples: Vec<Value> =
            serde_json::from_slice(&std::fs::read(generated.join("samples.json")).unwrap())
                .unwrap();
        let cf = samples
            .iter()
            .find(|s| s["label"] == "resident with valid permit")
            .unwrap()["cf"]
            .clone();
        let body =
            Bytes::from(json!({"subject": cf, "purpose": "benefit-eligibility"}).to_string());

        // Eight clients ask as fast as the node answers.
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..8)
            .map(|_| {
                let client = pki.client("inps-pesaro");
                tokio::spawn(load(client, node.url.clone(), body.clone(), stop.clone()))
            })
            .collect();
        // The auditor keeps the latest checkpoint it saw; then the node is killed mid-load.
        let mut seen = None;
        for _ in 0..15 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Some(c) = checkpoint(&auditor, &node).await {
                seen = Some(c);
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        stop.store(true, Ordering::SeqCst);
        let mut answers = Vec::new();
        for w in workers {
            answers.extend(w.await.unwrap());
        }
        let (seen_text, seen) = seen.expect("a checkpoint was signed under load");
        assert!(answers.len() > 50, "only {} answers", answers.len());
        assert!(
            answers.iter().all(|a| a.status == 200),
            "attestations served"
        );
        assert!(seen.size > 0);

        // Restarted, the node signs a checkpoint covering every answer, consistent with the
        // one the auditor saw before the kill.
        let mut child = start();
        eventually(|| async { inps.get(&ready).await.ok().filter(|r| r.status == 200) }).await;
        let last = answers.iter().map(|a| a.index).max().unwrap();
        let (_, now) = eventually(|| async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            checkpoint(&auditor, &node)
                .await
                .filter(|(_, c)| c.size > last)
        })
        .await;
        let proof: Value = auditor
            .get(&node.url(&format!(
                "/v1/audit/proof/consistency?from={}&to={}",
                seen.size, now.size
            )))
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .unwrap();
        let hashes: Vec<merkle::Hash> = proof["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                merkle::hash_from_slice(&STANDARD.decode(h.as_str().unwrap()).unwrap()).unwrap()
            })
            .collect();
        merkle::verify_consistency(seen.size, now.size, &seen.root, &now.root, &hashes)
            .unwrap_or_else(|e| panic!("{e}: {seen_text}"));

        // The exported log verifies, and each answer's entry is there: same query id, same
        // request and response digests.
        let config = client_toml(&mut pki, "garante-audit", &node);
        let out = pki.dir.path().join("questura.bundle");
        let o = tokio::task::block_in_place(|| {
            attesta()
                .args([
                    "audit",
                    "export",
                    "--node",
                    "questura-pu",
                    "--url",
                    &node.url,
                ])
                .arg("--config")
                .arg(&config)
                .arg("--out")
                .arg(&out)
                .output()
                .unwrap()
        });
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = super::verify_offline(&out, &pki.ca_cert());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let bundle = Bundle::read(std::fs::File::open(&out).unwrap(), |_, _| {}).unwrap();
        for a in &answers {
            let e = Entry::decode(&bundle.entries[a.index as usize]).unwrap();
            assert_eq!(hex::encode(e.query_id), a.query_id, "entry {}", a.index);
            assert_eq!(e.route, "POST /v1/attest/legal-presence");
            assert_eq!(e.request_sha256, a.request_sha256, "entry {}", a.index);
            assert_eq!(
                e.response_sha256,
                Some(a.response_sha256),
                "entry {}",
                a.index
            );
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

mod report {
    use serde_json::Value;

    use super::ask_status;
    use crate::cli::attesta;
    use crate::status::{client_toml, Federation};

    fn subject_report(args: &[&str]) -> (bool, String, String) {
        let o = attesta()
            .args(["audit", "subject-report"])
            .args(args)
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_citizen_access_report_gathers_every_nodes_entries_about_one_person() {
        let mut f = Federation::start(|_| {}).await;
        let inps = f.pki.client("inps-pesaro");
        let foreigner = f.sample("resident with valid permit")["cf"]
            .as_str()
            .unwrap()
            .to_owned();
        let italian = f.sample("Italian citizen")["cf"]
            .as_str()
            .unwrap()
            .to_owned();
        for label in [
            "resident with valid permit",
            "Italian citizen",
            "resident with valid permit",
        ] {
            ask_status(&f, &inps, label).await;
        }
        let auditor = client_toml(&mut f.pki, "garante-audit", &f.inps);
        let auditor = auditor.to_str().unwrap();

        // Every node answers; the two questions about the foreigner, on every side, and
        // nothing about the Italian.
        let (ok, out, err) = subject_report(&[&foreigner, "--config", auditor]);
        assert!(ok, "{out}{err}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            format!("access report for {foreigner}: 4 of 4 node(s) answered")
        );
        let asked = |asker: &str, asked: &str, log: &str| {
            lines
                .iter()
                .filter(|l| {
                    l.contains(&format!(" {asker} asked {asked}: "))
                        && l.contains(&format!("({log} entry "))
                })
                .count()
        };
        // The clerk asked INPS's node; its coordinator asked the Questura and the registry,
        // which logged it too: each twice, in each log.
        for (asker, callee, log) in [
            ("inps-pesaro", "inps-pesaro", "inps-pesaro"),
            ("inps-pesaro", "questura-pu", "inps-pesaro"),
            ("inps-pesaro", "questura-pu", "questura-pu"),
            ("inps-pesaro", "comune-pesaro", "comune-pesaro"),
        ] {
            assert_eq!(
                asked(asker, callee, log),
                2,
                "{asker} {callee} {log}: {out}"
            );
        }
        assert!(
            lines
                .iter()
                .any(|l| l.ends_with("queries by asking agency: inps-pesaro 2")),
            "{out}"
        );
        assert!(!out.contains(&italian));
        // Times are in order.
        let times: Vec<&str> = lines[1..]
            .iter()
            .filter(|l| l.starts_with("  20"))
            .map(|l| l.split_whitespace().next().unwrap())
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{out}");

        // As JSON: every node's own report, which now holds the report asked above too (an
        // auditor's look-up about the person is an access like any other).
        let (ok, out, err) = subject_report(&[&foreigner, "--config", auditor, "--json"]);
        assert!(ok, "{err}");
        let doc: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["subject"], foreigner.as_str());
        let nodes = doc["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), 4);
        let mut report_ids = std::collections::HashSet::new();
        for node in nodes {
            let entries = node["report"]["entries"].as_array().unwrap();
            let reports: Vec<&Value> = entries
                .iter()
                .filter(|e| e["route"] == "POST /v1/audit/subject-report")
                .collect();
            assert_eq!(reports.len(), 1, "{node}");
            assert_eq!(reports[0]["agency"], "garante-audit");
            assert_eq!(reports[0]["purpose"], "audit");
            report_ids.insert(reports[0]["query_id"].as_str().unwrap().to_owned());
        }
        // One report is one query, under one id on every node.
        assert_eq!(report_ids.len(), 1, "{report_ids:?}");
        let questura = nodes.iter().find(|n| n["agency"] == "questura-pu").unwrap();
        let entries = questura["report"]["entries"].as_array().unwrap();
        let asked: Vec<&Value> = entries
            .iter()
            .filter(|e| e["route"] == "POST /v1/attest/legal-presence")
            .collect();
        assert_eq!(asked.len(), 2, "{questura}");
        assert!(asked
            .iter()
            .all(|e| e["direction"] == "incoming" && e["agency"] == "inps-pesaro"));

        // One node only.
        let (ok, out, _) =
            subject_report(&[&foreigner, "--config", auditor, "--node", "questura-pu"]);
        assert!(ok);
        assert!(out.starts_with(&format!("access report for {foreigner}: 1 of 1 node(s)")));

        // Bad input: one line naming what is wrong.
        let (ok, _, err) = subject_report(&["RSSMRA85T10A562X", "--config", auditor]);
        assert!(!ok);
        assert!(
            err.contains("\"RSSMRA85T10A562X\" is not a valid codice fiscale")
                && err.trim().lines().count() == 1,
            "{err}"
        );
        let (ok, _, err) = subject_report(&[&foreigner, "--config", auditor, "--node", "asl-9"]);
        assert!(!ok);
        assert!(
            err.contains("--node asl-9: no node of the manifest's directory"),
            "{err}"
        );

        // An agency without the auditor's grant is refused by every node: nothing is shown,
        // and the report says it is incomplete.
        let clerk = client_toml(&mut f.pki, "comune-urbino", &f.urbino);
        let (ok, out, err) = subject_report(&[&foreigner, "--config", clerk.to_str().unwrap()]);
        assert!(!ok);
        assert!(out.contains("0 of 4 node(s) answered"), "{out}");
        assert!(!out.contains("no agency asked"), "{out}");
        assert!(
            out.contains("questura-pu: no report: the node refused: 403"),
            "{out}"
        );
        assert!(
            err.contains("incomplete: 4 of 4 node(s) did not answer"),
            "{err}"
        );

        // A node that is down is named; the others' entries are still shown.
        let Federation {
            urbino,
            pki: _pki,
            pesaro: _pesaro,
            questura: _questura,
            inps: _inps,
            ..
        } = f;
        urbino.stop().await;
        let (ok, out, err) = subject_report(&[&foreigner, "--config", auditor]);
        assert!(!ok);
        assert!(out.contains("3 of 4 node(s) answered"), "{out}");
        assert!(out.contains("inps-pesaro asked questura-pu"), "{out}");
        assert!(out.contains("  comune-urbino: no report: "), "{out}");
        assert!(
            err.contains("incomplete: 1 of 4 node(s) did not answer (comune-urbino)"),
            "{err}"
        );
    }
}

mod retention {
    use std::path::Path;
    use std::sync::Arc;

    use attesta::audit::log::{load_or_create_key, origin, AuditLog};
    use attesta::config::Settings;
    use serde_json::json;

    use super::ask_status;
    use crate::cli::attesta;
    use crate::harness::*;
    use crate::status::{client_toml, Federation};

    /// Prunes `config`'s log as the node's retention task would, with `before_ms` as the
    /// cut-off, while the node is stopped.
    fn prune(config: &Path, before_ms: u64) -> u64 {
        let settings = Settings::load(config).unwrap();
        let store = Arc::new(attesta::store::Store::open(&settings.data_dir.join("db")).unwrap());
        let log = AuditLog::open(
            store,
            load_or_create_key(&settings.data_dir.join("audit.key")).unwrap(),
            origin(settings.trust_domain.as_str(), settings.agency.as_str()),
            settings.signing.clone(),
        )
        .unwrap();
        let first = log.prune(before_ms).unwrap();
        log.close();
        first
    }

    fn now_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn entries_past_retention_are_deleted_and_the_rest_still_verifies() {
        let mut f = Federation::start(|_| {}).await;
        let inps = f.pki.client("inps-pesaro");
        let label = "resident with valid permit";
        ask_status(&f, &inps, label).await;
        // The cut falls strictly between the two questions' entry times (milliseconds).
        let later = |t: u64| eventually(move || async move { (now_ms() > t).then_some(()) });
        later(now_ms()).await;
        let cut = now_ms();
        later(cut).await;
        ask_status(&f, &inps, label).await;

        let Federation {
            mut pki,
            questura,
            samples,
            pesaro: _pesaro,
            urbino: _urbino,
            inps: _inps,
        } = f;
        let config = questura.config_path.clone();
        questura.stop().await;
        let first = tokio::task::block_in_place(|| prune(&config, cut));
        assert!(first > 0);
        let questura = start_node(&mut pki, "questura-pu", |c| {
            c.serves = vec!["legal-presence".into()];
        })
        .await;

        // Pruned entries are gone, by name; their hashes still prove later ones.
        let auditor = pki.client("garante-audit");
        let r = auditor
            .get(&questura.url("/v1/audit/entries?start=0&end=1"))
            .await
            .unwrap();
        assert_eq!(r.status, 410);
        let p = r.json::<serde_json::Value>().unwrap();
        assert_eq!(p["type"], "urn:attesta:problem:pruned");
        assert!(
            p["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("export from entry {first} (--from {first})")),
            "{p}"
        );
        let r = auditor
            .get(&questura.url("/v1/audit/receipt?index=0"))
            .await
            .unwrap();
        assert_eq!(r.status, 410);
        let size = eventually(|| async {
            let r = auditor
                .get(&questura.url("/v1/audit/checkpoint"))
                .await
                .ok()?;
            let text = String::from_utf8(r.body.to_vec()).ok()?;
            let size: u64 = text.lines().nth(1)?.parse().ok()?;
            (size > first).then_some(size)
        })
        .await;
        let r = auditor
            .get(&questura.url(&format!("/v1/audit/proof/inclusion?index=0&size={size}")))
            .await
            .unwrap();
        assert_eq!(r.status, 200);

        // The whole log cannot be exported any more; from the first kept entry it can, and it
        // verifies against the checkpoint signed before and after pruning.
        let auditor_config = client_toml(&mut pki, "garante-audit", &questura);
        let dir = pki.dir.path().to_owned();
        let out = dir.join("kept.bundle");
        let export = |from: Option<u64>| {
            let mut cmd = attesta();
            cmd.args([
                "audit",
                "export",
                "--node",
                "questura-pu",
                "--url",
                &questura.url,
            ]);
            cmd.arg("--config")
                .arg(&auditor_config)
                .arg("--out")
                .arg(&out);
            if let Some(n) = from {
                cmd.args(["--from", &n.to_string()]);
            }
            cmd.output().unwrap()
        };
        let o = tokio::task::block_in_place(|| export(None));
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success());
        assert!(
            err.contains("410 pruned") && err.contains(&format!("--from {first}")),
            "{err}"
        );
        let o = tokio::task::block_in_place(|| export(Some(first)));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = super::verify_offline(&out, &pki.ca_cert());
        let said = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "{said}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            said.contains(&format!("valid: questura-pu log, entries {first}..")),
            "{said}"
        );

        // The person's report no longer shows the first question, and still shows the second.
        let cf = samples.iter().find(|s| s["label"] == label).unwrap()["cf"].clone();
        let r = auditor
            .post(
                &questura.url("/v1/audit/subject-report"),
                "application/json",
                bytes::Bytes::from(json!({ "subject": cf }).to_string()),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        let report = r.json::<serde_json::Value>().unwrap();
        let asked: Vec<u64> = report["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["route"] == "POST /v1/attest/legal-presence")
            .map(|e| e["index"].as_u64().unwrap())
            .collect();
        assert_eq!(asked.len(), 1, "{report}");
        assert!(asked[0] >= first);
    }
}

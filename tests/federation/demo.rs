//! `attesta demo up`: from nothing to a running federation, and again on the same directory.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use attesta::client::Client;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

use crate::cli::{attesta, sigterm, wait_exit};
use crate::harness::*;

/// A base port with seven free ports after it, and seven more for the consoles.
fn free_ports() -> u16 {
    for _ in 0..50 {
        let base = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if base > 65000 {
            continue;
        }
        let offset = attesta::cli::demo::CONSOLE_PORT_OFFSET;
        if (base..base + 7)
            .chain(base + offset..base + offset + 7)
            .all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        {
            return base;
        }
    }
    panic!("no seven consecutive free ports");
}

fn client_from_demo(dir: &std::path::Path, id: &str) -> Client {
    let a = dir.join("agencies").join(id);
    client_with_files(dir, &a.join("auth.crt"), &a.join("auth.key"))
}

/// A client of the demo's CA presenting the certificate and key in these files.
fn client_with_files(
    dir: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Client {
    let td = attesta_certs::TrustDomain::new(attesta::cli::demo::TRUST_DOMAIN).unwrap();
    let trust =
        attesta_certs::TrustStore::load(td, &dir.join("ca/ca.crt"), Some(&dir.join("ca/crl.pem")))
            .unwrap();
    let chain = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(attesta_certs::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(trust.server_verifier(None).unwrap())
        .with_client_auth_cert(chain, key)
        .unwrap();
    Client::new(Arc::new(config))
}

async fn demo_up_once(dir: &std::path::Path, base: u16) -> BTreeMap<String, String> {
    let endpoints_path = dir.join("endpoints.json");
    let _ = std::fs::remove_file(&endpoints_path);
    let mut child = attesta()
        .args([
            "demo",
            "up",
            "--dir",
            dir.to_str().unwrap(),
            "--base-port",
            &base.to_string(),
        ])
        .stdout(Stdio::from(
            std::fs::File::create(dir.join("demo.out")).unwrap(),
        ))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let endpoints: BTreeMap<String, String> = eventually(|| async {
        let bytes = std::fs::read(&endpoints_path).ok()?;
        serde_json::from_slice(&bytes).ok()
    })
    .await;

    // Every node answers, over mTLS, with the identity of the caller.
    let inps = client_from_demo(dir, "inps-pesaro");
    let trust = attesta_certs::TrustStore::load(
        attesta_certs::TrustDomain::new(attesta::cli::demo::TRUST_DOMAIN).unwrap(),
        &dir.join("ca/ca.crt"),
        Some(&dir.join("ca/crl.pem")),
    )
    .unwrap();
    for (agency, url) in &endpoints {
        let reply = inps.get(&format!("{url}/v1/whoami")).await.unwrap();
        assert_eq!(reply.status, 200, "{agency}");
        let body = reply.json::<serde_json::Value>().unwrap();
        assert_eq!(body["agency"], "inps-pesaro");
        assert_eq!(body["node"], agency.as_str());
    }

    // The Prefettura published the default policy as version 1, and every node has it (a
    // second run on the same directory publishes nothing new).
    for (agency, url) in &endpoints {
        let ready = inps.get(&format!("{url}/readyz")).await.unwrap();
        assert_eq!(
            ready.json::<serde_json::Value>().unwrap()["manifest_version"],
            1,
            "{agency}"
        );
    }
    // console.json: every role's console, reachable with that operator's certificate, and a
    // PKCS#12 file (0600) the password opens.
    let consoles: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("console.json")).unwrap()).unwrap();
    for role in ["clerk", "registry-officer", "policy-officer", "auditor"] {
        let c = &consoles[role];
        let file = |k: &str| std::path::PathBuf::from(c[k].as_str().unwrap());
        use std::os::unix::fs::PermissionsExt as _;
        let p12 = std::fs::read(file("p12")).unwrap();
        assert_eq!(
            std::fs::metadata(file("p12")).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(openssl::pkcs12::Pkcs12::from_der(&p12)
            .unwrap()
            .parse2(c["p12_password"].as_str().unwrap())
            .is_ok());
        let operator = client_with_files(dir, &file("cert"), &file("key"));
        let home = operator.get(c["url"].as_str().unwrap()).await.unwrap();
        assert_eq!(home.status, 200, "{role}");
        let page = String::from_utf8_lossy(&home.body).into_owned();
        assert!(
            page.contains(c["operator"].as_str().unwrap()),
            "{role}: {page}"
        );
    }

    // purposes.json says what each agency may declare, from the policy.
    let purposes: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("purposes.json")).unwrap()).unwrap();
    assert_eq!(
        purposes["inps-pesaro"]["residence"],
        serde_json::json!(["benefit-eligibility"])
    );
    assert_eq!(
        purposes["questura-pu"]["family"],
        serde_json::json!(["family-reunification"])
    );
    assert_eq!(purposes["inps-pesaro"]["family"], serde_json::json!([]));

    // The demo imported its data: every sample in DIR/samples.json, in all 50 comuni (48 of
    // them hosted by the service centre), gets its expected answer from INPS's coordinator,
    // with its comune and without; a hosted comune's attestation is its own.
    let samples: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(dir.join("samples.json")).unwrap()).unwrap();
    let comuni: std::collections::BTreeSet<&str> = samples
        .iter()
        .filter_map(|s| s["comune"].as_str())
        .collect();
    assert_eq!(comuni.len(), 50, "{comuni:?}");
    let status_purpose = purposes["inps-pesaro"]["status"][0].as_str().unwrap();
    let status_url = format!("{}/v1/status", endpoints["inps-pesaro"]);
    for s in &samples {
        let label = s["label"].as_str().unwrap();
        for with_comune in [true, false] {
            let mut q = serde_json::json!({"subject": s["cf"], "purpose": status_purpose, "as_of": s["as_of"]});
            if let (true, Some(c)) = (with_comune, s["comune"].as_str()) {
                q["comune"] = c.into();
            }
            let reply = inps
                .post(
                    &status_url,
                    "application/json",
                    bytes::Bytes::from(q.to_string()),
                )
                .await
                .unwrap();
            assert_eq!(reply.status, 200, "{label}");
            let a = reply.json::<serde_json::Value>().unwrap();
            assert_eq!(
                a["resident"], s["expect"]["resident"],
                "{label} {with_comune}: {a}"
            );
            assert_eq!(
                a["legally_present"], s["expect"]["legally_present"],
                "{label} {with_comune}: {a}"
            );
            assert_eq!(a["complete"], true, "{label} {with_comune}: {a}");
            if label == "resident of Fano" {
                let signers: Vec<String> = a["attestations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| {
                        attesta::attestation::verify(&trust, t.as_str().unwrap())
                            .unwrap()
                            .signer
                            .agency()
                            .to_string()
                    })
                    .collect();
                assert!(signers.iter().any(|s| s == "comune-fano"), "{signers:?}");
            }
        }
    }
    // The service centre's 48 comuni, each with its own certificates on the host.
    let tenants = std::fs::read_dir(dir.join("agencies/cst-pu/data/tenants"))
        .unwrap()
        .count();
    assert_eq!(tenants, 48);

    // The banner's example queries work as printed.
    let banner = eventually(|| async {
        let text = std::fs::read_to_string(dir.join("demo.out")).ok()?;
        text.contains("Ctrl-C stops every node").then_some(text)
    })
    .await;
    let commands: Vec<Vec<String>> = banner
        .lines()
        .filter(|l| l.contains(" query status "))
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    assert_eq!(commands.len(), 4, "{banner}");
    let outputs = tokio::task::spawn_blocking(move || {
        commands
            .iter()
            .map(|c| {
                std::process::Command::new(&c[0])
                    .args(&c[1..])
                    .output()
                    .unwrap()
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for (out, present) in outputs.iter().zip(["yes", "yes", "no", "yes"]) {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("  resident         yes"), "{text}");
        assert!(
            text.contains(&format!("  legally present  {present}")),
            "{text}"
        );
        assert!(text.contains("complete; "), "{text}");
    }

    // After this traffic, the auditor exports every node's log and verifies it offline: the
    // banner's commands for the Questura, the same commands for every other node.
    let mut audit: Vec<String> = banner
        .lines()
        .filter(|l| l.contains(" audit export ") || l.contains(" audit verify "))
        .map(|l| l.trim().to_owned())
        .collect();
    assert_eq!(audit.len(), 2, "{banner}");
    let exe = audit[0].split_whitespace().next().unwrap().to_owned();
    for id in [
        "prefettura-pu",
        "comune-pesaro",
        "comune-urbino",
        "inps-pesaro",
        "cst-pu",
        "comune-fano",
    ] {
        let (export, verify) = attesta::cli::demo::audit_commands(dir, id);
        for cmd in [export, verify] {
            // The banner's program: this test binary is not `attesta`.
            let args = cmd.split_once(' ').unwrap().1;
            audit.push(format!("{exe} {args}"));
        }
    }
    // A checkpoint is signed within a second and cosigned a moment later; until then the
    // node serves the last cosigned one. A user who runs the commands again a moment later
    // gets the newer one, and so does this test.
    let failures = tokio::task::spawn_blocking(move || {
        let run = |c: &str| {
            let words: Vec<&str> = c.split_whitespace().collect();
            let out = std::process::Command::new(words[0])
                .args(&words[1..])
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            (out.status.success(), text)
        };
        let mut failures = Vec::new();
        for pair in audit.chunks(2) {
            let mut last = String::new();
            let verified = (0..20).any(|_| {
                let (exported, text) = run(&pair[0]);
                last = format!("{}: {text}", pair[0]);
                if exported {
                    let (valid, text) = run(&pair[1]);
                    last = format!("{}: {text}", pair[1]);
                    if valid && text.starts_with("valid: ") {
                        return true;
                    }
                }
                std::thread::sleep(Duration::from_millis(300));
                false
            });
            if !verified {
                failures.push(last);
            }
        }
        failures
    })
    .await
    .unwrap();
    assert!(failures.is_empty(), "{failures:#?}");

    // The banner's citizen access report: every node answers, and the Questura logged the
    // question INPS's coordinator asked it about that person.
    let report = banner
        .lines()
        .find(|l| l.contains(" audit subject-report "))
        .unwrap_or_else(|| panic!("{banner}"))
        .trim()
        .to_owned();
    let out = tokio::task::spawn_blocking(move || {
        let words: Vec<&str> = report.split_whitespace().collect();
        std::process::Command::new(words[0])
            .args(&words[1..])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every agency of the directory answers: the seven nodes and the 48 hosted comuni.
    assert!(text.contains(": 55 of 55 node(s) answered"), "{text}");
    assert!(
        text.contains("inps-pesaro asked questura-pu: POST /v1/attest/legal-presence"),
        "{text}"
    );

    sigterm(&child);
    let status =
        tokio::task::spawn_blocking(move || wait_exit(&mut child, Duration::from_secs(30)))
            .await
            .unwrap();
    assert!(status.success(), "demo exited with {status}");
    endpoints
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_up_brings_up_every_node_and_reuses_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let base = free_ports();
    let endpoints = demo_up_once(dir.path(), base).await;

    let expected: Vec<&str> = vec![
        "comune-pesaro",
        "comune-urbino",
        "cst-pu",
        "garante-audit",
        "inps-pesaro",
        "prefettura-pu",
        "questura-pu",
    ];
    assert_eq!(
        endpoints.keys().map(String::as_str).collect::<Vec<_>>(),
        expected
    );
    for url in endpoints.values() {
        assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    }
    for id in [
        "prefettura-pu",
        "questura-pu",
        "comune-pesaro",
        "comune-urbino",
        "inps-pesaro",
        "cst-pu",
        "garante-audit",
    ] {
        let a = dir.path().join("agencies").join(id);
        for f in ["auth.crt", "auth.key", "sign.crt", "sign.key"] {
            assert!(a.join(f).exists(), "{id}/{f}");
        }
        assert!(a.join("node.toml").exists(), "{id}/node.toml");
    }
    for f in ["ca.crt", "ca.key", "crl.pem"] {
        assert!(dir.path().join("ca").join(f).exists(), "ca/{f}");
    }

    // Running again reuses the CA and every certificate.
    let ca_before = std::fs::read(dir.path().join("ca/ca.crt")).unwrap();
    let cert_before = std::fs::read(dir.path().join("agencies/inps-pesaro/auth.crt")).unwrap();
    let again = demo_up_once(dir.path(), base).await;
    assert_eq!(again, endpoints);
    assert_eq!(
        std::fs::read(dir.path().join("ca/ca.crt")).unwrap(),
        ca_before
    );
    assert_eq!(
        std::fs::read(dir.path().join("agencies/inps-pesaro/auth.crt")).unwrap(),
        cert_before
    );
}

//! The access policy over real nodes: every route guarded, the Prefettura's manifest published
//! and propagated (push and fetch), every kind of bad manifest refused, a restart without the
//! Prefettura, and the `attesta policy` tooling.

use std::path::Path;
use std::process::Output;

use attesta::client::{Client, Reply};
use attesta_policy::Manifest;
use bytes::Bytes;
use serde_json::{json, Value};

use crate::cli::attesta;
use crate::harness::*;

const JOSE: &str = "application/jose";

async fn post_json(client: &Client, url: &str, body: Value) -> Reply {
    client
        .post(url, "application/json", Bytes::from(body.to_string()))
        .await
        .unwrap()
}

fn problem_type(r: &Reply) -> String {
    r.json::<serde_json::Value>().unwrap()["type"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The manifest version a node reports on /readyz.
async fn manifest_version(client: &Client, node: &TestNode) -> Option<u64> {
    let r = client.get(&node.url("/readyz")).await.ok()?;
    r.json::<serde_json::Value>().ok()?["manifest_version"].as_u64()
}

fn policy_cli(args: &[&str]) -> Output {
    attesta().arg("policy").args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// What a 403 says, without what differs by request and not by data: the query id, and the
/// territory the request itself named (the denial repeats it).
fn denial(r: &Reply) -> Value {
    let mut p = r.json::<serde_json::Value>().unwrap();
    p.as_object_mut().unwrap().remove("instance");
    if let Some(d) = p["detail"].as_str() {
        p["detail"] = Value::from(
            d.replace("041044", "<comune>")
                .replace("041067", "<comune>"),
        );
    }
    p
}

/// An agency without grants walks every route with every shape of parameters: about people
/// who are and are not in the registry, entries that exist, do not exist yet or never will,
/// ranges inside and past the log. For every guarded route each answer is the same policy
/// denial, so nothing about the data (who is resident, how long the log is, what was
/// pruned) can be learnt from it; malformed requests are refused for their form alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agency_without_grants_learns_nothing_about_the_data_from_any_route() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", |c| {
        c.serves = vec!["residence".into(), "legal-presence".into()];
    })
    .await;
    let header = attesta::import::RESIDENT_COLUMNS.join(",");
    let file = pki.dir.path().join("residents.csv");
    std::fs::write(
        &file,
        format!(
            "{header}\nRSSMRA85T10A562S,Rossi,Mario,M,1985-12-10,A562,100,041044,Via Roma 1,F1,2010-01-01,,\n"
        ),
    )
    .unwrap();
    let out = crate::data::cli_import(&node, "residents", &file, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Some entries in the log, from an agency that may read: the stranger's guesses below
    // fall inside it, at its end and far past it.
    let granted = pki.client("inps-pesaro");
    let mut last = 0;
    for _ in 0..3 {
        let r = post_json(
            &granted,
            &node.url("/v1/attest/residence"),
            json!({"subject": "RSSMRA85T10A562S", "purpose": "benefit-eligibility"}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        last = r.headers["attesta-log-index"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap();
    }

    let stranger = pki.client("asl-1");
    let resident = "RSSMRA85T10A562S";
    let unknown = "BNCLRA90A41G479C";
    let question = |cf: &str| json!({"subject": cf, "purpose": "benefit-eligibility"});
    // (route, shapes). GET shapes are query strings (or paths), POST shapes are bodies.
    enum Shape {
        Get(String),
        Post(Value),
    }
    use Shape::{Get, Post};
    let numbers = |names: &[&str], values: &[u64]| {
        let mut q = String::from("?");
        for (n, v) in names.iter().zip(values) {
            q.push_str(&format!("{n}={v}&"));
        }
        q.pop();
        q
    };
    let far = (1u64 << 53) - 1;
    let mut walked = std::collections::BTreeSet::new();
    // The receipt route first: an entry that names the stranger (any of its requests below)
    // is its own to see, by design.
    let routes: Vec<(&str, Vec<Shape>)> = vec![
        (
            "/v1/audit/receipt",
            [0, 1, last - 1, last, last + 1000, far]
                .iter()
                .map(|i| Get(numbers(&["index"], &[*i])))
                .collect(),
        ),
        ("/metrics", vec![Get(String::new())]),
        (
            "/v1/attest/residence",
            vec![Post(question(resident)), Post(question(unknown))],
        ),
        (
            "/v1/attest/legal-presence",
            vec![Post(question(resident)), Post(question(unknown))],
        ),
        (
            "/v1/status",
            vec![Post(question(resident)), Post(question(unknown))],
        ),
        (
            "/v1/monitor/expiring",
            ["041044", "041067"]
                .iter()
                .flat_map(|c| {
                    [1, 30, 365]
                        .map(|d| Get(format!("?days={d}&purpose=benefit-eligibility&comune={c}")))
                })
                .collect(),
        ),
        (
            "/v1/family/{cf}",
            [resident, unknown]
                .iter()
                .map(|cf| Get(format!("/v1/family/{cf}?purpose=benefit-eligibility")))
                .collect(),
        ),
        ("/v1/audit/checkpoint", vec![Get(String::new())]),
        ("/v1/audit/certificates", vec![Get(String::new())]),
        (
            "/v1/audit/entries",
            [
                [0, 1],
                [0, 4],
                [2, 3],
                [3, 1000],
                [1000, 1001],
                [far - 1, far],
                [5, 2],
            ]
            .iter()
            .map(|v| Get(numbers(&["start", "end"], v)))
            .chain([Get(String::new()), Get("?start=x&end=1".into())])
            .collect(),
        ),
        (
            "/v1/audit/proof/inclusion",
            [
                [0, 1],
                [0, 4],
                [3, 4],
                [4, 5],
                [0, 1000],
                [999, 1000],
                [far - 1, far],
            ]
            .iter()
            .map(|v| Get(numbers(&["index", "size"], v)))
            .chain([Get(String::new()), Get("?index=1&size=-1".into())])
            .collect(),
        ),
        (
            "/v1/audit/proof/consistency",
            [[1, 2], [1, 4], [4, 5], [2, 1000], [far - 1, far], [3, 1]]
                .iter()
                .map(|v| Get(numbers(&["from", "to"], v)))
                .chain([Get(String::new())])
                .collect(),
        ),
        (
            "/v1/audit/subject-report",
            vec![
                Post(json!({"subject": resident})),
                Post(json!({"subject": unknown})),
            ],
        ),
    ];
    for (path, shapes) in routes {
        walked.insert(path);
        let mut first: Option<Value> = None;
        for shape in shapes {
            let (what, r) = match &shape {
                Get(q) if q.starts_with('/') => {
                    (q.clone(), stranger.get(&node.url(q)).await.unwrap())
                }
                Get(q) => (
                    format!("{path}{q}"),
                    stranger
                        .get(&node.url(&format!("{path}{q}")))
                        .await
                        .unwrap(),
                ),
                Post(body) => (
                    format!("{path} {body}"),
                    post_json(&stranger, &node.url(path), body.clone()).await,
                ),
            };
            let text = String::from_utf8_lossy(&r.body).into_owned();
            assert_eq!(r.status, 403, "{what}: {text}");
            assert_eq!(
                problem_type(&r),
                "urn:attesta:problem:policy-denied",
                "{what}"
            );
            let said = denial(&r);
            assert!(
                said["detail"]
                    .as_str()
                    .unwrap()
                    .starts_with("no rule grants"),
                "{what}: {said}"
            );
            for leak in [
                "pruned",
                "the log has",
                "entries",
                "not found",
                resident,
                unknown,
            ] {
                assert!(!text.contains(leak), "{what} says {leak:?}: {text}");
            }
            match &first {
                None => first = Some(said),
                Some(f) => assert_eq!(&said, f, "{what}: another answer than the route's first"),
            }
        }
    }
    // Every route of the table was walked, or is open to every member (no personal data),
    // or is refused to the stranger before any data is read (the Prefettura's, the
    // directory's, the node's operators').
    for (_, path, _) in attesta::server::ROUTES {
        let elsewhere = [
            "/healthz",
            "/readyz",
            "/v1/whoami",
            "/v1/manifest",
            "/v1/manifest/notify",
            "/v1/witness/add-checkpoint",
            "/v1/admin/import/residents",
            "/v1/admin/import/permits",
            "/v1/admin/tenants",
            "/v1/admin/tenants/{agency}",
        ];
        assert!(
            walked.contains(path) || elsewhere.contains(path),
            "{path} is not walked"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_guarded() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", |c| {
        c.serves = vec!["residence".into()];
    })
    .await;
    // An agency of the federation with no grant at all.
    let stranger = pki.client("asl-1");
    let q = json!({"subject": "RSSMRA85T10A562S", "purpose": "benefit-eligibility"});
    for (method, path, _) in attesta::server::ROUTES {
        // Well-formed requests, with a purpose: only the policy stands in the way.
        let query = match *path {
            "/v1/monitor/expiring" => "?days=30&purpose=benefit-eligibility&comune=041044",
            "/v1/family/{cf}" => "?purpose=benefit-eligibility",
            // Entry 0 is the node's own readiness probe: not the stranger's.
            "/v1/audit/receipt" => "?index=0",
            _ => "",
        };
        let url = node.url(&format!(
            "{}{query}",
            path.replace("{cf}", "RSSMRA85T10A562S")
                .replace("{agency}", "comune-fano")
        ));
        let r = if *method == http::Method::GET {
            stranger.get(&url).await.unwrap()
        } else if *method == http::Method::DELETE {
            stranger
                .request(http::Method::DELETE, &url, None)
                .await
                .unwrap()
        } else if *path == "/v1/audit/subject-report" {
            // The purpose of audit routes is fixed: "audit".
            post_json(&stranger, &url, json!({"subject": "RSSMRA85T10A562S"})).await
        } else {
            post_json(&stranger, &url, q.clone()).await
        };
        let expected = match *path {
            // Open to every member: no personal data.
            "/healthz" | "/readyz" | "/v1/whoami" | "/v1/manifest"
                if *method == http::Method::GET =>
            {
                200
            }
            // Manifests are published on the Prefettura's node only.
            "/v1/manifest" => 404,
            // Only the Prefettura notifies; only agencies of the directory ask for cosignatures.
            "/v1/manifest/notify" | "/v1/witness/add-checkpoint" => 403,
            _ => 403,
        };
        assert_eq!(
            r.status,
            expected,
            "{method} {path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        if *path == "/v1/witness/add-checkpoint" {
            assert!(
                r.json::<serde_json::Value>().unwrap()["detail"]
                    .as_str()
                    .unwrap()
                    .contains("asl-1 is not in the federation directory"),
                "{}",
                String::from_utf8_lossy(&r.body)
            );
        }
        if expected == 403
            && *path != "/v1/manifest/notify"
            && *path != "/v1/witness/add-checkpoint"
        {
            assert_eq!(
                problem_type(&r),
                "urn:attesta:problem:policy-denied",
                "{method} {path}"
            );
            let p = r.json::<serde_json::Value>().unwrap();
            assert!(
                p["detail"].as_str().unwrap().starts_with("no rule grants"),
                "{p}"
            );
            assert_eq!(p["manifest_version"], 1);
            assert_eq!(p["policy_version"].as_str().unwrap().len(), 64);
        }
    }
    // Decisions are counted per route, and decided answers name the policy version.
    let own = pki.client("comune-pesaro");
    wait_metric(
        &own,
        &node,
        "attesta_policy_decisions_total{route=\"/v1/attest/residence\",decision=\"deny\"}",
        1.0,
    )
    .await;
    let allowed = post_json(
        &pki.client("inps-pesaro"),
        &node.url("/v1/attest/residence"),
        q,
    )
    .await;
    assert_eq!(
        problem_type(&allowed),
        "urn:attesta:problem:no-data",
        "allowed, then no data"
    );
    assert_eq!(
        allowed.headers.get("attesta-policy-version").unwrap().len(),
        64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_manifest_denies_everything_but_the_open_routes() {
    let mut pki = Pki::new();
    let node = start_node_bare(&mut pki, "comune-pesaro", |c| {
        c.serves = vec!["residence".into()];
    })
    .await;
    let inps = pki.client("inps-pesaro");
    assert_eq!(manifest_version(&inps, &node).await, None);
    let r = post_json(
        &inps,
        &node.url("/v1/attest/residence"),
        json!({"subject": "RSSMRA85T10A562S", "purpose": "benefit-eligibility"}),
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(r.json::<serde_json::Value>().unwrap()["detail"]
        .as_str()
        .unwrap()
        .contains("no policy manifest"));
    let r = inps.get(&node.url("/v1/manifest")).await.unwrap();
    assert_eq!(problem_type(&r), "urn:attesta:problem:no-manifest");
    // Even its own operator cannot import before the policy arrives.
    let r = pki
        .client("comune-pesaro")
        .post(
            &node.url("/v1/admin/import/residents"),
            "text/csv",
            Bytes::from_static(b"x\n"),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 403);
}

/// Starts the Prefettura's node and, pointed at it, the other nodes of the demo federation.
/// Returns (prefettura, others); the others' manifests come from the Prefettura only.
/// Agencies in `fast` fetch every second; the others every hour (in practice: only pushes).
async fn federation(pki: &mut Pki, fast: &[&str]) -> (TestNode, Vec<TestNode>) {
    let prefettura = start_node_bare(pki, PREFETTURA, |_| {}).await;
    let mut others = Vec::new();
    for (id, serves) in [
        ("questura-pu", "legal-presence"),
        ("comune-pesaro", "residence"),
        ("comune-urbino", "residence"),
        ("inps-pesaro", ""),
    ] {
        let url = prefettura.url.clone();
        others.push(
            start_node_bare(pki, id, |c| {
                c.serves = if serves.is_empty() {
                    vec![]
                } else {
                    vec![serves.into()]
                };
                c.manifest.url = Some(url);
                c.manifest.refresh_secs = if fast.contains(&id) { 1 } else { 3600 };
            })
            .await,
        );
    }
    (prefettura, others)
}

fn directory(nodes: &[&TestNode]) -> Value {
    let entry = |n: &TestNode| {
        let (serves, comuni): (Vec<&str>, Vec<&str>) = match n.agency.as_str() {
            "questura-pu" => (vec!["legal-presence"], vec![]),
            "comune-pesaro" => (vec!["residence"], vec!["041044"]),
            "comune-urbino" => (vec!["residence"], vec!["041067"]),
            _ => (vec![], vec![]),
        };
        json!({"agency": n.agency, "url": n.url, "serves": serves, "comuni": comuni})
    };
    Value::Array(nodes.iter().map(|n| entry(n)).collect())
}

/// Whether inps-pesaro may ask `resource` for `purpose` on `node`: an allowed request gets
/// past the policy to "no data" (nothing was imported), a denied one is 403.
async fn inps_allowed(inps: &Client, node: &TestNode, route: &str, purpose: &str) -> bool {
    let r = post_json(
        inps,
        &node.url(route),
        json!({"subject": "RSSMRA85T10A562S", "purpose": purpose}),
    )
    .await;
    match r.status.as_u16() {
        503 => true,
        403 => false,
        other => panic!("{route} on {}: unexpected {other}", node.agency),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_published_by_the_prefettura_reaches_every_node_and_a_revoke_takes_it_back() {
    let mut pki = Pki::new();
    // comune-urbino fetches every second and is left out of the directory: it learns of new
    // versions by fetching. The others are in the directory and get each version pushed.
    let (prefettura, others) = federation(&mut pki, &["comune-urbino"]).await;
    let pushed: Vec<&TestNode> = others
        .iter()
        .filter(|n| n.agency != "comune-urbino")
        .chain(std::iter::once(&prefettura))
        .collect();
    let pref_client = pki.client(PREFETTURA);

    // Version 1: the default policy and the directory, published over the API.
    let r = post_json(
        &pref_client,
        &prefettura.url("/v1/manifest"),
        json!({"policy": attesta_policy::DEFAULT_POLICY, "directory": directory(&pushed)}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let answer = r.json::<serde_json::Value>().unwrap();
    assert_eq!(answer["version"], 1);
    for n in answer["notified"].as_array().unwrap() {
        assert_eq!(n["ok"], true, "{n}");
    }
    let inps = pki.client("inps-pesaro");
    for node in &others {
        if node.agency != "comune-urbino" {
            assert_eq!(
                manifest_version(&inps, node).await,
                Some(1),
                "{}",
                node.agency
            );
        }
    }

    let urbino = others.iter().find(|n| n.agency == "comune-urbino").unwrap();
    eventually(|| async { (manifest_version(&inps, urbino).await == Some(1)).then_some(()) }).await;

    // The Prefettura grants INPS a new purpose with the CLI, checks the diff, publishes.
    let config = prefettura.config_path.to_str().unwrap().to_owned();
    let draft = pki.dir.path().join("draft.csv");
    let draft_s = draft.to_str().unwrap().to_owned();
    let grant = ["--config", &config, "--draft", &draft_s, "inps-pesaro"];
    for (resource, purpose) in [
        ("residence", "pension-check"),
        ("legal-presence", "pension-check"),
    ] {
        let mut args = vec!["grant"];
        args.extend(grant);
        args.extend([resource, purpose]);
        let o = policy_cli(&args);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = policy_cli(&["diff", "--config", &config, "--draft", &draft_s]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("+ p, inps-pesaro, residence, read, pension-check, *, allow"),
        "{}",
        stdout(&o)
    );
    // Not yet published: denied everywhere.
    let registries: Vec<&TestNode> = others
        .iter()
        .filter(|n| n.agency.starts_with("comune-"))
        .collect();
    let questura = others.iter().find(|n| n.agency == "questura-pu").unwrap();
    for r in &registries {
        assert!(!inps_allowed(&inps, r, "/v1/attest/residence", "pension-check").await);
    }
    let o = policy_cli(&["publish", "--config", &config, "--draft", &draft_s]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("published manifest version 2"),
        "{}",
        stdout(&o)
    );

    // Within a bounded wait, every node allows it, without a restart.
    for r in &registries {
        eventually(|| async {
            inps_allowed(&inps, r, "/v1/attest/residence", "pension-check")
                .await
                .then_some(())
        })
        .await;
    }
    eventually(|| async {
        inps_allowed(
            &inps,
            questura,
            "/v1/attest/legal-presence",
            "pension-check",
        )
        .await
        .then_some(())
    })
    .await;
    // (comune-urbino got it by fetching: it is not in the directory; nobody pushed to it.)

    // Revoking it and publishing denies it again.
    for (resource, purpose) in [
        ("residence", "pension-check"),
        ("legal-presence", "pension-check"),
    ] {
        let mut args = vec!["revoke"];
        args.extend(grant);
        args.extend([resource, purpose]);
        let o = policy_cli(&args);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = policy_cli(&["publish", "--config", &config, "--draft", &draft_s]);
    assert!(o.status.success(), "{}", stderr(&o));
    for r in &registries {
        eventually(|| async {
            (!inps_allowed(&inps, r, "/v1/attest/residence", "pension-check").await).then_some(())
        })
        .await;
    }
    eventually(|| async {
        (!inps_allowed(
            &inps,
            questura,
            "/v1/attest/legal-presence",
            "pension-check",
        )
        .await)
            .then_some(())
    })
    .await;
    for node in others.iter().chain(std::iter::once(&prefettura)) {
        eventually(|| async { (manifest_version(&inps, node).await == Some(3)).then_some(()) })
            .await;
    }

    // `policy show` prints the version and the policy in force, verified.
    let o = policy_cli(&["show", "--config", &config]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("manifest version 3") && out.contains("(signature verified)"),
        "{out}"
    );
    assert!(!out.contains("pension-check"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_prefettura_role_publishes() {
    let mut pki = Pki::new();
    let (prefettura, others) = federation(&mut pki, &[]).await;
    let first = post_json(
        &pki.client("questura-pu"),
        &prefettura.url("/v1/manifest"),
        json!({"policy": attesta_policy::DEFAULT_POLICY}),
    )
    .await;
    // Before the first manifest: only the Prefettura's own certificate.
    assert_eq!(first.status, 403);
    let r = post_json(
        &pki.client(PREFETTURA),
        &prefettura.url("/v1/manifest"),
        json!({"policy": attesta_policy::DEFAULT_POLICY}),
    )
    .await;
    assert_eq!(r.status, 200);
    // Afterwards, by the policy: the questura has no grant to publish.
    let r = post_json(
        &pki.client("questura-pu"),
        &prefettura.url("/v1/manifest"),
        json!({"policy": attesta_policy::DEFAULT_POLICY}),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(problem_type(&r), "urn:attesta:problem:policy-denied");
    // The CLI with the Questura's certificate says so, on one line.
    let questura = others.iter().find(|n| n.agency == "questura-pu").unwrap();
    let draft = pki.dir.path().join("draft.csv");
    std::fs::write(&draft, attesta_policy::DEFAULT_POLICY).unwrap();
    let o = policy_cli(&[
        "publish",
        "--config",
        questura.config_path.to_str().unwrap(),
        "--draft",
        draft.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("publish refused: 403") && err.contains("no rule grants publish manifest"),
        "{err}"
    );
    // A node that is not the Prefettura's publishes nothing.
    let r = post_json(
        &pki.client(PREFETTURA),
        &questura.url("/v1/manifest"),
        json!({"policy": attesta_policy::DEFAULT_POLICY}),
    )
    .await;
    assert_eq!(r.status, 404);
    // A draft made from an older version is refused rather than overwriting a newer one.
    let r = post_json(
        &pki.client(PREFETTURA),
        &prefettura.url("/v1/manifest"),
        json!({"policy": attesta_policy::DEFAULT_POLICY, "expected_version": 0}),
    )
    .await;
    assert_eq!(r.status, 409);
    // A policy that does not load is refused, naming the line.
    let r = post_json(
        &pki.client(PREFETTURA),
        &prefettura.url("/v1/manifest"),
        json!({"policy": "p, consumer, residence, read\n"}),
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(r.json::<serde_json::Value>().unwrap()["detail"]
        .as_str()
        .unwrap()
        .contains("line 1"));
    assert_eq!(
        manifest_version(&pki.client(PREFETTURA), &prefettura).await,
        Some(1)
    );
}

/// Signs `payload` as a manifest with `signer`'s key, whatever it holds.
fn sign_raw(pki: &mut Pki, signer: &str, payload: &[u8]) -> String {
    let files = pki.agency(signer);
    let identity = attesta_certs::SigningIdentity::load(
        pki.ca.trust_domain(),
        &files.sign_cert,
        &files.sign_key,
    )
    .unwrap();
    attesta_certs::jws::sign(&identity, attesta_policy::MANIFEST_TYP, payload).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_manifests_are_refused_and_the_last_valid_one_is_kept() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", |c| {
        c.serves = vec!["residence".into()];
    })
    .await;
    let prefettura = pki.client(PREFETTURA);
    let own = pki.client("comune-pesaro");
    let notify_url = node.url("/v1/manifest/notify");
    let push = |token: String| notify(&prefettura, &node, token);

    // Version 3 goes in.
    let v3 = pki.manifest(3, &test_policy());
    let r = push(v3.clone()).await;
    assert_eq!(
        r.json::<serde_json::Value>().unwrap(),
        json!({"version": 3, "installed": true})
    );
    // The same document again changes nothing.
    let r = push(v3.clone()).await;
    assert_eq!(
        r.json::<serde_json::Value>().unwrap(),
        json!({"version": 3, "installed": false})
    );

    let with_extra_field = {
        let mut v = serde_json::to_value(test_manifest(4, &test_policy())).unwrap();
        v["valid_forever"] = true.into();
        serde_json::to_vec(&v).unwrap()
    };
    let flipped = {
        let v4 = pki.manifest(4, &test_policy());
        let (rest, sig) = v4.rsplit_once('.').unwrap();
        let mut sig = sig.to_owned().into_bytes();
        sig[5] = if sig[5] == b'A' { b'B' } else { b'A' };
        format!("{rest}.{}", String::from_utf8(sig).unwrap())
    };
    let mut other_policy = test_policy();
    other_policy.push_str("p, inps-pesaro, residence, read, marketing, *, allow\n");
    let cases: Vec<(&str, String, &str)> = vec![
        ("bad signature", flipped, "bad_signature"),
        (
            "signed by the Questura",
            pki.sign_manifest("questura-pu", &test_manifest(4, &test_policy())),
            "wrong_signer",
        ),
        (
            "older version",
            pki.manifest(2, &test_policy()),
            "older_version",
        ),
        (
            "same version, other content",
            pki.manifest(3, &other_policy),
            "same_version",
        ),
        (
            "not JSON",
            sign_raw(&mut pki, PREFETTURA, b"version 4"),
            "malformed",
        ),
        ("not a JWS", "hello.world".into(), "malformed"),
        (
            "unknown field",
            sign_raw(&mut pki, PREFETTURA, &with_extra_field),
            "unknown_field",
        ),
        (
            "policy that does not load",
            pki.manifest(4, "p, consumer, residence\n"),
            "invalid",
        ),
    ];
    for (what, token, reason) in cases {
        let r = push(token).await;
        assert_eq!(
            r.status,
            422,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let p = r.json::<serde_json::Value>().unwrap();
        assert_eq!(p["type"], "urn:attesta:problem:manifest-rejected", "{what}");
        assert_eq!(p["reason"], reason, "{what}: {p}");
        // The last valid manifest stays in force, on disk too.
        assert_eq!(manifest_version(&own, &node).await, Some(3), "{what}");
        let series = format!("attesta_manifest_rejections_total{{reason=\"{reason}\"}}");
        wait_metric(&own, &node, &series, 1.0).await;
    }
    let data_dir = Path::new(&node.config_path).parent().unwrap().join("data");
    assert_eq!(
        std::fs::read_to_string(data_dir.join(attesta::manifest::FILE)).unwrap(),
        v3
    );
    let r = own.get(&node.url("/v1/manifest")).await.unwrap();
    assert_eq!(String::from_utf8(r.body.to_vec()).unwrap(), v3);
    // INPS's marketing purpose from the refused document is not granted.
    let r = post_json(
        &pki.client("inps-pesaro"),
        &node.url("/v1/attest/residence"),
        json!({"subject": "RSSMRA85T10A562S", "purpose": "marketing"}),
    )
    .await;
    assert_eq!(r.status, 403);
    // An empty notification asks the node to fetch (this one has no Prefettura URL: a no-op).
    let r = prefettura
        .post(&notify_url, JOSE, Bytes::new())
        .await
        .unwrap();
    assert_eq!(r.status, 202);
    // Only the Prefettura may notify at all.
    let r = pki
        .client("questura-pu")
        .post(
            &notify_url,
            JOSE,
            Bytes::from(pki.manifest(5, &test_policy())),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(manifest_version(&own, &node).await, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agency_revoked_in_the_manifest_is_refused() {
    let mut pki = Pki::new();
    let node = start_node(&mut pki, "comune-pesaro", |c| {
        c.serves = vec!["residence".into()];
    })
    .await;
    let inps = pki.client("inps-pesaro");
    assert_eq!(inps.get(&node.url("/v1/whoami")).await.unwrap().status, 200);
    let mut m = test_manifest(2, &test_policy());
    m.revoked = vec!["inps-pesaro".into()];
    let token = pki.sign_manifest(PREFETTURA, &m);
    let r = pki
        .client(PREFETTURA)
        .post(&node.url("/v1/manifest/notify"), JOSE, Bytes::from(token))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let r = inps.get(&node.url("/v1/whoami")).await.unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(problem_type(&r), "urn:attesta:problem:certificate-revoked");
    assert!(r.json::<serde_json::Value>().unwrap()["detail"]
        .as_str()
        .unwrap()
        .contains("manifest"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_serves_with_its_persisted_manifest_while_the_prefettura_is_down() {
    let mut pki = Pki::new();
    let (prefettura, mut others) = federation(&mut pki, &[]).await;
    let pesaro_at = others
        .iter()
        .position(|n| n.agency == "comune-pesaro")
        .unwrap();
    let pesaro = others.remove(pesaro_at);
    let r = post_json(
        &pki.client(PREFETTURA),
        &prefettura.url("/v1/manifest"),
        json!({"policy": attesta_policy::DEFAULT_POLICY, "directory": directory(&[&pesaro])}),
    )
    .await;
    assert_eq!(r.status, 200);
    let inps = pki.client("inps-pesaro");
    assert_eq!(manifest_version(&inps, &pesaro).await, Some(1));

    // The Prefettura goes away, then comune-pesaro restarts.
    let prefettura_url = prefettura.url.clone();
    prefettura.stop().await;
    pesaro.stop().await;
    let pesaro = start_node_bare(&mut pki, "comune-pesaro", |c| {
        c.serves = vec!["residence".into()];
        c.manifest.url = Some(prefettura_url);
        c.manifest.refresh_secs = 1;
    })
    .await;
    assert_eq!(manifest_version(&inps, &pesaro).await, Some(1));
    assert!(
        inps_allowed(
            &inps,
            &pesaro,
            "/v1/attest/residence",
            "benefit-eligibility"
        )
        .await
    );
    assert!(!inps_allowed(&inps, &pesaro, "/v1/attest/residence", "marketing").await);
    // It keeps trying the Prefettura, and keeps serving.
    let own = pki.client("comune-pesaro");
    wait_metric(
        &own,
        &pesaro,
        "attesta_manifest_updates_total{result=\"fetch_failed\"}",
        2.0,
    )
    .await;
    assert_eq!(manifest_version(&inps, &pesaro).await, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_explain_prints_the_rule_or_the_reason() {
    let mut pki = Pki::new();
    pki.agency("comune-pesaro");
    let config = node_config(&pki, "comune-pesaro", "127.0.0.1:0".parse().unwrap());
    let config_path = pki.agency_dir("comune-pesaro").join("node.toml");
    std::fs::write(&config_path, config.to_toml()).unwrap();
    let manifest_path = pki.dir.path().join("manifest.jws");
    std::fs::write(&manifest_path, pki.manifest(7, &test_policy())).unwrap();
    let base = [
        "explain",
        "--config",
        config_path.to_str().unwrap(),
        "--manifest",
        manifest_path.to_str().unwrap(),
    ];

    let mut args = base.to_vec();
    args.extend(["inps-pesaro", "legal-presence", "benefit-eligibility"]);
    let o = policy_cli(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("allow: inps-pesaro read legal-presence"),
        "{out}"
    );
    assert!(
        out.contains(
            "matched rule: p, consumer, legal-presence, read, benefit-eligibility, *, allow"
        ),
        "{out}"
    );
    assert!(out.contains("manifest version 7"), "{out}");

    let mut args = base.to_vec();
    args.extend(["inps-pesaro", "legal-presence", "marketing"]);
    let o = policy_cli(&args);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stdout(&o).contains("reason: no rule grants read legal-presence for purpose \"marketing\""),
        "{}",
        stdout(&o)
    );

    // Territory: a comune's own, from the directory.
    let mut args = base.to_vec();
    args.extend([
        "comune-urbino",
        "expiring-permits",
        "registry-update",
        "--territory",
        "041044",
    ]);
    let o = policy_cli(&args);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stdout(&o).contains("in territory 041044"), "{}", stdout(&o));

    // A tampered manifest file is refused, naming the file.
    let token = std::fs::read_to_string(&manifest_path).unwrap();
    let (head, _) = token.rsplit_once('.').unwrap();
    let forged = pki.dir.path().join("forged.jws");
    std::fs::write(&forged, format!("{head}.AAAA")).unwrap();
    let o = policy_cli(&[
        "show",
        "--config",
        config_path.to_str().unwrap(),
        "--manifest",
        forged.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("forged.jws") && err.contains("signature"),
        "{err}"
    );
    // Without trust anchors it shows the content, saying it is unverified.
    let o = policy_cli(&["show", "--manifest", manifest_path.to_str().unwrap()]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("NOT verified"), "{}", stdout(&o));
    let _: Manifest = serde_json::from_slice(
        &policy_cli(&[
            "show",
            "--json",
            "--config",
            config_path.to_str().unwrap(),
            "--manifest",
            manifest_path.to_str().unwrap(),
        ])
        .stdout,
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prefettura_hosts_and_unhosts_a_comune_with_the_cli() {
    let mut pki = Pki::new();
    let (prefettura, others) = federation(&mut pki, &[]).await;
    let pref_client = pki.client(PREFETTURA);
    let nodes: Vec<&TestNode> = others.iter().chain(std::iter::once(&prefettura)).collect();
    let r = post_json(
        &pref_client,
        &prefettura.url("/v1/manifest"),
        json!({"policy": attesta_policy::DEFAULT_POLICY, "directory": directory(&nodes)}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let config = prefettura.config_path.to_str().unwrap().to_owned();
    let run = |args: Vec<&str>| {
        let config = config.clone();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let mut a = vec![args[0].clone(), "--config".into(), config];
            a.extend(args[1..].iter().cloned());
            attesta().arg("policy").args(&a).output().unwrap()
        })
    };

    // Comune di Fano moves to a node that hosts it (here Urbino's, for the test's sake).
    let o = run(vec![
        "host",
        "--agency",
        "comune-fano",
        "--host",
        "comune-urbino",
        "--comune",
        "041013",
    ])
    .await
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("published manifest version 2: comune-fano hosted by comune-urbino"),
        "{}",
        stdout(&o)
    );
    let inps = pki.client("inps-pesaro");
    let questura = others.iter().find(|n| n.agency == "questura-pu").unwrap();
    eventually(|| async { (manifest_version(&inps, questura).await == Some(2)).then_some(()) })
        .await;
    let o = run(vec!["show", "--json"]).await.unwrap();
    let m: Value = serde_json::from_slice(&o.stdout).unwrap();
    let fano = m["directory"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["agency"] == "comune-fano")
        .unwrap()
        .clone();
    assert_eq!(
        fano,
        json!({"agency": "comune-fano", "hosted_by": "comune-urbino", "serves": ["residence"], "comuni": ["041013"]})
    );
    assert_eq!(
        m["policy"],
        attesta_policy::DEFAULT_POLICY,
        "the policy is unchanged"
    );

    // Refused, each in one line: a host not in the directory, an agency with a node of its
    // own, a bad comune; and unhosting what is not hosted.
    for (args, says) in [
        (
            vec!["host", "--agency", "comune-cagli", "--host", "cst-nowhere"],
            "--host cst-nowhere: not in the directory",
        ),
        (
            vec![
                "host",
                "--agency",
                "comune-pesaro",
                "--host",
                "comune-urbino",
            ],
            "runs a node of its own",
        ),
        (
            vec![
                "host",
                "--agency",
                "comune-cagli",
                "--host",
                "comune-urbino",
                "--comune",
                "41007",
            ],
            "--comune 41007",
        ),
        (
            vec!["unhost", "--agency", "comune-pesaro"],
            "not a hosted agency",
        ),
    ] {
        let o = run(args.clone()).await.unwrap();
        assert!(!o.status.success(), "{args:?}");
        let err = stderr(&o);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }

    let o = run(vec!["unhost", "--agency", "comune-fano"])
        .await
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("published manifest version 3"),
        "{}",
        stdout(&o)
    );
    let o = run(vec!["show", "--json"]).await.unwrap();
    let m: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        !m["directory"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["agency"] == "comune-fano"),
        "{m}"
    );
}

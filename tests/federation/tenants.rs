//! A service centre (`cst-pu`) hosting comuni as tenants, over real nodes: hosted comuni
//! answer through a consumer's coordinator with attestations they sign themselves, and each
//! tenant is kept apart from the others and from the host (data, imports, logs, revocation,
//! grants), each in its own test. Tenants are added and removed on a running host.

use std::path::{Path, PathBuf};

use attesta_policy::{DirectoryEntry, Manifest, Service};
use bytes::Bytes;
use serde_json::{json, Value};

use attesta::client::Reply;

use crate::harness::*;

const AS_OF: &str = "2026-11-23";
const HOST: &str = "cst-pu";
const FANO: &str = "comune-fano";
const CAGLI: &str = "comune-cagli";
/// In the directory as hosted by cst-pu, but not loaded on it until a test adds it.
const ACQUALAGNA: &str = "comune-acqualagna";

/// The grants of the hosted comuni: comuni like any other, each operating its own data.
fn policy() -> String {
    let mut p = test_policy();
    for c in [FANO, CAGLI, ACQUALAGNA] {
        p.push_str(&format!("g, {c}, comune\ng, {c}, operator\n"));
    }
    p.push_str(&format!("g, {HOST}, operator\n"));
    p
}

struct Province {
    pki: Pki,
    host: TestNode,
    questura: TestNode,
    inps: TestNode,
    /// comune code → the generated residents CSV rows of that comune (with the header).
    generated: PathBuf,
}

/// Installs tenant `id` in the host's data directory, as `attesta tenant add` does.
fn install_tenant(pki: &mut Pki, host_data: &Path, id: &str) {
    let files = pki.agency(id);
    let dir = host_data.join("tenants").join(id);
    std::fs::create_dir_all(&dir).unwrap();
    for f in files.all() {
        std::fs::copy(f, dir.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.join("tenant.toml"), "serves = [\"residence\"]\n").unwrap();
}

fn entry(agency: &str, url: Option<&str>, serves: Vec<Service>, comuni: &[&str]) -> DirectoryEntry {
    DirectoryEntry {
        agency: agency.into(),
        url: url.map(Into::into),
        hosted_by: url.is_none().then(|| HOST.to_owned()),
        serves,
        comuni: comuni.iter().map(|c| c.to_string()).collect(),
    }
}

impl Province {
    async fn start() -> Self {
        let mut pki = Pki::new();
        let generated = pki.dir.path().join("generated");
        attesta::cli::generate::run(&attesta::cli::generate::GenerateArgs {
            out: generated.clone(),
            residents: 20_000,
            seed: 2014,
            as_of: Some(AS_OF.into()),
        })
        .unwrap();
        let host_data = pki.agency_dir(HOST).join("data");
        for t in [FANO, CAGLI] {
            install_tenant(&mut pki, &host_data, t);
        }
        let host = start_node(&mut pki, HOST, |_| {}).await;
        let questura = start_node(&mut pki, "questura-pu", |c| {
            c.serves = vec!["legal-presence".into()]
        })
        .await;
        let inps = start_node(&mut pki, "inps-pesaro", |_| {}).await;
        let mut p = Self {
            pki,
            host,
            questura,
            inps,
            generated,
        };
        p.publish(2, &[]).await;
        let permits = std::fs::read(p.generated.join("permits.csv")).unwrap();
        let questura = p.questura.url.clone();
        let r = p.import("questura-pu", &questura, "permits", permits).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        for (t, comune) in [(FANO, "041013"), (CAGLI, "041007")] {
            let body = p.residents_of(comune);
            let base = p.base(t);
            let r = p.import(t, &base, "residents", body).await;
            assert_eq!(r.status, 200, "{t}: {}", String::from_utf8_lossy(&r.body));
        }
        p
    }

    fn directory(&self) -> Vec<DirectoryEntry> {
        vec![
            entry(PREFETTURA, Some("https://127.0.0.1:9"), vec![], &[]),
            entry(HOST, Some(&self.host.url), vec![], &[]),
            entry(FANO, None, vec![Service::Residence], &["041013"]),
            entry(CAGLI, None, vec![Service::Residence], &["041007"]),
            entry(ACQUALAGNA, None, vec![Service::Residence], &["041001"]),
            entry(
                "questura-pu",
                Some(&self.questura.url),
                vec![Service::LegalPresence],
                &[],
            ),
            entry("inps-pesaro", Some(&self.inps.url), vec![], &[]),
        ]
    }

    /// Signs a manifest (the province's directory, `revoked`) and pushes it to every node.
    async fn publish(&mut self, version: u64, revoked: &[&str]) {
        let manifest = Manifest {
            directory: self.directory(),
            revoked: revoked.iter().map(|r| r.to_string()).collect(),
            ..test_manifest(version, &policy())
        };
        let token = self.pki.sign_manifest(PREFETTURA, &manifest);
        let prefettura = self.pki.client(PREFETTURA);
        for node in [&self.host, &self.questura, &self.inps] {
            let r = notify(&prefettura, node, token.clone()).await;
            assert!(
                r.status.is_success(),
                "{}: {}",
                node.agency,
                r.problem_line()
            );
        }
    }

    /// A tenant's base URL on the host.
    fn base(&self, tenant: &str) -> String {
        format!("{}/tenants/{tenant}", self.host.url)
    }

    /// The generated residents of `comune`, as a CSV with its header.
    fn residents_of(&self, comune: &str) -> Vec<u8> {
        let all = std::fs::read_to_string(self.generated.join("residents.csv")).unwrap();
        let mut lines = all.lines();
        let mut body = format!("{}\n", lines.next().unwrap());
        for l in lines.filter(|l| l.split(',').nth(7) == Some(comune)) {
            body.push_str(l);
            body.push('\n');
        }
        body.into_bytes()
    }

    /// A current resident of `comune` who is an Italian citizen: resident and legally present
    /// by registration.
    fn citizen_of(&self, comune: &str) -> String {
        let body = String::from_utf8(self.residents_of(comune)).unwrap();
        body.lines()
            .skip(1)
            .map(|l| l.split(',').collect::<Vec<_>>())
            .find(|f| f[6] == "100" && f[11].is_empty())
            .map(|f| f[0].to_owned())
            .unwrap_or_else(|| panic!("no Italian resident of {comune}"))
    }

    async fn import(&mut self, as_: &str, base: &str, dataset: &str, body: Vec<u8>) -> Reply {
        self.pki
            .client(as_)
            .post(
                &format!("{base}/v1/admin/import/{dataset}?mode=snapshot&as_of={AS_OF}"),
                "text/csv",
                Bytes::from(body),
            )
            .await
            .unwrap()
    }

    async fn post(&mut self, as_: &str, url: &str, body: Value) -> (u16, Value) {
        let r = self
            .pki
            .client(as_)
            .post(url, "application/json", Bytes::from(body.to_string()))
            .await
            .unwrap();
        let v = if r.content_type() == Some(attesta::attestation::CONTENT_TYPE) {
            let token = std::str::from_utf8(&r.body).unwrap();
            let v = attesta::attestation::verify(&self.pki.trust(), token).unwrap();
            json!({"signer": v.signer.agency().as_str(), "payload": v.payload})
        } else {
            r.json::<Value>().unwrap_or(Value::Null)
        };
        (r.status.as_u16(), v)
    }

    /// Asks a tenant's residence question directly, as the Questura would.
    async fn residence(&mut self, tenant: &str, cf: &str) -> (u16, Value) {
        let url = format!("{}/v1/attest/residence", self.base(tenant));
        let q = json!({"subject": cf, "purpose": "permit-renewal", "as_of": AS_OF});
        self.post("questura-pu", &url, q).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosted_comuni_answer_through_a_consumers_coordinator_signed_by_themselves() {
    let mut p = Province::start().await;
    let trust = p.pki.trust();
    let url = p.inps.url("/v1/status");
    for (tenant, comune) in [(FANO, "041013"), (CAGLI, "041007")] {
        let cf = p.citizen_of(comune);
        for with_comune in [true, false] {
            let mut q = json!({"subject": cf, "purpose": "benefit-eligibility", "as_of": AS_OF});
            if with_comune {
                q["comune"] = json!(comune);
            }
            let (code, a) = p.post("inps-pesaro", &url, q).await;
            assert_eq!(code, 200, "{a}");
            assert_eq!(a["resident"], true, "{tenant} {with_comune}: {a}");
            assert_eq!(a["comune"], comune, "{a}");
            assert_eq!(a["legally_present"], true, "{a}");
            assert_eq!(a["complete"], true, "{a}");
            // The positive answer is the comune's own, verified offline against the CA: signed
            // by the comune, not by the host that served it.
            let signers: Vec<String> = a["attestations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    let v = attesta::attestation::verify(&trust, t.as_str().unwrap()).unwrap();
                    assert_eq!(v.payload["audience"], "inps-pesaro");
                    v.signer.agency().to_string()
                })
                .collect();
            assert!(signers.iter().any(|s| s == tenant), "{signers:?}");
            assert!(!signers.iter().any(|s| s == HOST), "{signers:?}");
        }
    }
    // Asked without a tenant, the host answers for every registry it hosts in one call: a
    // resident gets the comune's own attestation.
    let cf = p.citizen_of("041013");
    let url = p.host.url("/v1/attest/residence");
    let q = json!({"subject": cf, "purpose": "permit-renewal"});
    let (code, a) = p.post("questura-pu", &url, q).await;
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["signer"], FANO, "{a}");
    assert_eq!(a["payload"]["resident"], true);
    // Someone resident nowhere: the host's own no, naming the registries it consulted.
    let nobody = "XYZQWK77E15G479C";
    let q = json!({"subject": nobody, "purpose": "permit-renewal"});
    let (code, a) = p.post("questura-pu", &url, q).await;
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["signer"], HOST, "{a}");
    assert_eq!(a["payload"]["resident"], false);
    assert_eq!(a["payload"]["covers"], json!([FANO, CAGLI]), "{a}");
    // The directory says the host keeps Acqualagna too, which it does not serve yet: its no
    // does not cover Acqualagna, so a coordinator cannot conclude "not resident".
    let status = p.inps.url("/v1/status");
    let q = json!({"subject": nobody, "purpose": "benefit-eligibility"});
    let (code, a) = p.post("inps-pesaro", &status, q.clone()).await;
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["resident"], Value::Null, "{a}");
    let why = &a["unavailable"][0];
    assert_eq!(why["agency"], HOST, "{a}");
    assert_eq!(why["reason"], "incomplete", "{a}");
    assert!(why["detail"].as_str().unwrap().contains(ACQUALAGNA), "{a}");
    // Once it is served (with data), the same question is a complete "no", in one call.
    let host_data = p.pki.agency_dir(HOST).join("data");
    install_tenant(&mut p.pki, &host_data, ACQUALAGNA);
    let add = p.host.url(&format!("/v1/admin/tenants/{ACQUALAGNA}"));
    let r = p
        .pki
        .client(HOST)
        .post(&add, "application/json", Bytes::new())
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.problem_line());
    let base = p.base(ACQUALAGNA);
    let body = p.residents_of("041001");
    let r = p.import(ACQUALAGNA, &base, "residents", body).await;
    assert_eq!(r.status, 200, "{}", r.problem_line());
    let (code, a) = p.post("inps-pesaro", &status, q).await;
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["resident"], false, "{a}");
    let signers: Vec<String> = a["attestations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let v = attesta::attestation::verify(&trust, t.as_str().unwrap()).unwrap();
            v.signer.agency().to_string()
        })
        .collect();
    assert_eq!(
        signers.iter().filter(|s| *s == HOST).count(),
        1,
        "{signers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_operator_imports_into_its_own_data_only() {
    let mut p = Province::start().await;
    // Fano's operator into Cagli, and the host's operator into Fano: both refused by policy,
    // before the upload is read (a small one, so the refusal is not a broken pipe).
    let body = p.residents_of("041013")[..200].to_vec();
    for (as_, tenant) in [(FANO, CAGLI), (HOST, FANO)] {
        let base = p.base(tenant);
        let r = p.import(as_, &base, "residents", body.clone()).await;
        assert_eq!(r.status, 403, "{as_} into {tenant}: {}", r.problem_line());
    }
    // Cagli's data is still Cagli's, and Fano's still Fano's.
    let fano = p.citizen_of("041013");
    let cagli = p.citizen_of("041007");
    assert_eq!(
        p.residence(CAGLI, &cagli).await.1["payload"]["resident"],
        true
    );
    assert_eq!(
        p.residence(FANO, &fano).await.1["payload"]["resident"],
        true
    );
    // And reading another tenant's log is an auditor's grant, not a neighbour's.
    let r = p
        .pki
        .client(FANO)
        .get(&format!("{}/v1/audit/entries?start=0&end=1", p.base(CAGLI)))
        .await
        .unwrap();
    assert_eq!(r.status, 403, "{}", r.problem_line());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_is_answered_from_the_addressed_tenants_data_only() {
    let mut p = Province::start().await;
    let fano = p.citizen_of("041013");
    let (code, a) = p.residence(FANO, &fano).await;
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["signer"], FANO);
    assert_eq!(a["payload"]["issuer"], FANO);
    assert_eq!(a["payload"]["resident"], true);
    assert_eq!(a["payload"]["comune"], "041013");
    // The same person asked of Cagli: not resident there, signed by Cagli.
    let (code, a) = p.residence(CAGLI, &fano).await;
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["signer"], CAGLI);
    assert_eq!(a["payload"]["resident"], false);
    // A tenant the node does not have, and a node route under a tenant's prefix.
    let (code, a) = p.residence("comune-pesaro", &fano).await;
    assert_eq!(code, 404, "{a}");
    assert_eq!(a["type"], "urn:attesta:problem:unknown-tenant");
    // Names nobody hosts leave nothing behind: no state, no metric label a caller could grow.
    for bogus in ["comune-nowhere", "NOT-AN-ID", "..", "x%2Fy"] {
        let url = format!("{}/tenants/{bogus}/v1/attest/residence", p.host.url);
        let q = json!({"subject": fano, "purpose": "permit-renewal"});
        let (code, a) = p.post("questura-pu", &url, q).await;
        assert_eq!(code, 404, "{bogus}: {a}");
    }
    let admin = p.pki.client(HOST);
    let m = admin.get(&p.host.url("/metrics")).await.unwrap();
    let m = String::from_utf8(m.body.to_vec()).unwrap();
    for label in ["comune-pesaro", "comune-nowhere", "NOT-AN-ID"] {
        assert!(
            !m.contains(&format!("tenant=\"{label}\"")),
            "{label} in:\n{m}"
        );
    }
    assert!(m.contains(&format!("tenant=\"{FANO}\"")), "{m}");
    let r = p
        .pki
        .client(FANO)
        .get(&format!("{}/metrics", p.base(FANO)))
        .await
        .unwrap();
    assert_eq!(r.status, 404, "{}", r.problem_line());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenants_log_holds_its_own_requests_and_verifies_on_its_own() {
    let mut p = Province::start().await;
    let fano = p.citizen_of("041013");
    for _ in 0..3 {
        p.residence(FANO, &fano).await;
    }
    p.residence(CAGLI, &fano).await;
    // Asked of the host for all its registries, answered from Fano's: Fano's log takes it.
    let url = p.host.url("/v1/attest/residence");
    let q = json!({"subject": fano, "purpose": "permit-renewal"});
    let (code, a) = p.post("questura-pu", &url, q).await;
    assert_eq!((code, &a["signer"]), (200, &json!(FANO)), "{a}");
    let auditor = p.pki.client("garante-audit");
    let td = p.pki.ca.trust_domain().to_string();
    for (tenant, asked) in [(FANO, 4), (CAGLI, 1)] {
        let base = p.base(tenant);
        // A checkpoint of the tenant's own log, signed with the tenant's key, covering (at
        // least) its import, then the questions asked of it.
        let (note, size) = checkpoint(&auditor, &base, asked + 1).await;
        assert!(
            note.starts_with(&format!("{td}/{tenant}/audit\n")),
            "{note}"
        );
        let pems = auditor
            .get(&format!("{base}/v1/audit/certificates"))
            .await
            .unwrap();
        let first = String::from_utf8(pems.body.to_vec()).unwrap();
        let signer = attesta_certs::SignerCert::from_pem(first.as_bytes()).unwrap();
        assert_eq!(
            signer.check(&p.pki.trust()).unwrap().agency().as_str(),
            tenant
        );
        let mut questions = 0;
        for entry in entries(&auditor, &base, size).await {
            // Only this tenant's requests: its operator's import, the Questura's questions, the
            // auditor's reads of this log.
            assert!(
                [tenant, "questura-pu", "garante-audit"].contains(&entry.peer_agency.as_str()),
                "{tenant}'s log holds {entry:?}"
            );
            questions += u64::from(entry.route.ends_with("/v1/attest/residence"));
        }
        assert_eq!(questions, asked, "{tenant}");
    }
    // The host's own log has none of them.
    let (_, host_size) = checkpoint(&auditor, &p.host.url, 1).await;
    for entry in entries(&auditor, &p.host.url, host_size).await {
        assert!(!entry.route.contains("/v1/attest/"), "{entry:?}");
    }
}

/// The checkpoint of the log at `base` (a node's or a tenant's), once it has `at_least`
/// entries: the note and its size.
async fn checkpoint(auditor: &attesta::client::Client, base: &str, at_least: u64) -> (String, u64) {
    eventually(|| async {
        let r = auditor
            .get(&format!("{base}/v1/audit/checkpoint"))
            .await
            .ok()?;
        let text = String::from_utf8(r.body.to_vec()).ok()?;
        let note = attesta::audit::note::Note::parse(&text).ok()?;
        let c = attesta::audit::note::Checkpoint::parse(&note.body).ok()?;
        (c.size >= at_least).then_some((text, c.size))
    })
    .await
}

/// The first `size` entries of the log at `base`, decoded.
async fn entries(
    auditor: &attesta::client::Client,
    base: &str,
    size: u64,
) -> Vec<attesta::audit::entry::Entry> {
    use base64::Engine as _;
    let r = auditor
        .get(&format!("{base}/v1/audit/entries?start=0&end={size}"))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.problem_line());
    let page: attesta::wire::EntriesPage<attesta::wire::PageEntry> = r.json().unwrap();
    page.entries
        .iter()
        .map(|e| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&e.leaf)
                .unwrap();
            attesta::audit::entry::Entry::decode(&bytes).unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_tenant_stops_it_and_nobody_else() {
    let mut p = Province::start().await;
    let fano = p.citizen_of("041013");
    let cagli = p.citizen_of("041007");
    p.publish(3, &[FANO]).await;
    let (code, a) = p.residence(FANO, &fano).await;
    assert_eq!(code, 404, "{a}");
    assert_eq!(a["type"], "urn:attesta:problem:unknown-tenant");
    assert!(a["detail"].as_str().unwrap().contains("revoked"), "{a}");
    let (code, a) = p.residence(CAGLI, &cagli).await;
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["payload"]["resident"], true);
    // A consumer's coordinator no longer asks Fano: its residence stays unknown.
    let q = json!({"subject": fano, "purpose": "benefit-eligibility", "comune": "041013"});
    let url = p.inps.url("/v1/status");
    let (code, a) = p.post("inps-pesaro", &url, q).await;
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["resident"], Value::Null, "{a}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_asks_peers_with_its_own_grants_and_the_host_with_its_own() {
    let mut p = Province::start().await;
    // A hosted comune checks a resident's legal presence through its coordinator on the host:
    // the Questura learns it is Fano from Fano's certificate, and answers by Fano's grants.
    let fano = p.citizen_of("041013");
    let q = json!({"subject": fano, "purpose": "registry-update", "comune": "041013"});
    let url = format!("{}/v1/status", p.base(FANO));
    let (code, a) = p.post(FANO, &url, q.clone()).await;
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["resident"], true, "{a}");
    assert_eq!(a["legally_present"], true, "{a}");
    for t in a["attestations"].as_array().unwrap() {
        let v = attesta::attestation::verify(&p.pki.trust(), t.as_str().unwrap()).unwrap();
        assert_eq!(
            v.payload["audience"], FANO,
            "addressed to the tenant: {v:?}"
        );
    }
    // The host asking for itself has no comune's grants: refused at its own node, and by the
    // Questura when it asks there directly.
    let url = p.host.url("/v1/status");
    let (code, a) = p.post(HOST, &url, q).await;
    assert_eq!(code, 403, "{a}");
    let url = p.questura.url("/v1/attest/legal-presence");
    let (code, a) = p
        .post(
            HOST,
            &url,
            json!({"subject": fano, "purpose": "registry-update"}),
        )
        .await;
    assert_eq!(code, 403, "{a}");
    // Nor is a grant to Fano a grant to Cagli's prefix: Cagli's operator asking as Fano.
    let url = format!("{}/v1/admin/import/residents", p.base(FANO));
    let (code, a) = p.post(CAGLI, &url, json!({})).await;
    assert_eq!(code, 403, "{a}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_is_added_to_a_running_host_and_removed_with_its_log_kept() {
    let mut p = Province::start().await;
    let cf = p.citizen_of("041001");
    // Listed in the directory, not yet on the host.
    let (code, a) = p.residence(ACQUALAGNA, &cf).await;
    assert_eq!(code, 404, "{a}");
    let host_data = p.pki.agency_dir(HOST).join("data");
    install_tenant(&mut p.pki, &host_data, ACQUALAGNA);
    let admin = p.pki.client(HOST);
    let add = p.host.url(&format!("/v1/admin/tenants/{ACQUALAGNA}"));
    // A neighbour cannot add tenants to the host.
    let r = p
        .pki
        .client(FANO)
        .post(&add, "application/json", Bytes::new())
        .await
        .unwrap();
    assert_eq!(r.status, 403, "{}", r.problem_line());
    let r = admin
        .post(&add, "application/json", Bytes::new())
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.problem_line());
    let base = p.base(ACQUALAGNA);
    let body = p.residents_of("041001");
    let r = p.import(ACQUALAGNA, &base, "residents", body).await;
    assert_eq!(r.status, 200, "{}", r.problem_line());
    let (code, a) = p.residence(ACQUALAGNA, &cf).await;
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["signer"], ACQUALAGNA);
    assert_eq!(a["payload"]["resident"], true);

    let r = admin.get(&p.host.url("/v1/admin/tenants")).await.unwrap();
    let list: Value = r.json().unwrap();
    let names: Vec<&str> = list["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["agency"].as_str().unwrap())
        .collect();
    assert_eq!(names, [ACQUALAGNA, CAGLI, FANO], "{list}");

    // Removal writes the whole log out first; the bundle verifies offline.
    let r = admin
        .request(http::Method::DELETE, &add, None)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.problem_line());
    let removed: Value = r.json().unwrap();
    let bundle_path = PathBuf::from(removed["bundle"].as_str().unwrap());
    let bytes = std::fs::read(&bundle_path).unwrap();
    let bundle = attesta::audit::bundle::Bundle::read(&bytes[..], |_, _| {}).unwrap();
    let verified =
        attesta::audit::bundle::verify(&bundle, &p.pki.trust(), 0, None, |_, _| {}).unwrap();
    assert_eq!(verified.agency, ACQUALAGNA);
    assert!(verified.entries.end >= 2, "{:?}", verified.entries);
    assert_eq!(removed["entries"], verified.entries.end);
    let (code, a) = p.residence(ACQUALAGNA, &cf).await;
    assert_eq!(code, 404, "{a}");
    assert!(!host_data.join("tenants").join(ACQUALAGNA).exists());
    // The others are untouched.
    let fano = p.citizen_of("041013");
    assert_eq!(
        p.residence(FANO, &fano).await.1["payload"]["resident"],
        true
    );
}

/// Runs `attesta ARGS` off the runtime's threads (the host runs in this process).
async fn cli(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || crate::cli::attesta().args(&args).output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_centre_adds_imports_lists_and_removes_a_comune_from_the_command_line() {
    let mut p = Province::start().await;
    let config = p.host.config_path.display().to_string();
    let ca = p.pki.dir.path().join("ca").display().to_string();
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let out = cli(s(&[
        "tenant",
        "add",
        "--config",
        &config,
        "--agency",
        ACQUALAGNA,
        "--ca",
        &ca,
        "--retention-days",
        "90",
    ]))
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.contains(&format!("{ACQUALAGNA} is served by {HOST}")),
        "{said}"
    );
    let key = p
        .pki
        .agency_dir(HOST)
        .join("data/tenants")
        .join(ACQUALAGNA)
        .join("sign.key");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Imported as the comune (its certificate, kept on the host), answered in its name.
    let csv = p.pki.dir.path().join("acqualagna.csv");
    std::fs::write(&csv, p.residents_of("041001")).unwrap();
    let out = cli(s(&[
        "import",
        "residents",
        "--config",
        &config,
        "--tenant",
        ACQUALAGNA,
        "--as-of",
        AS_OF,
        csv.to_str().unwrap(),
    ]))
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cf = p.citizen_of("041001");
    let (code, a) = p.residence(ACQUALAGNA, &cf).await;
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["signer"], ACQUALAGNA);
    assert_eq!(a["payload"]["resident"], true);
    // Its requests and its log, under its own name in the host's metrics.
    let host_metrics = p.host.url("/metrics");
    let admin = p.pki.client(HOST);
    let text = |r: Reply| String::from_utf8(r.body.to_vec()).unwrap();
    let m = text(admin.get(&host_metrics).await.unwrap());
    assert_metric_at_least(
        &m,
        &format!("attesta_tenant_requests_total{{tenant=\"{ACQUALAGNA}\",class=\"2xx\"}}"),
        2.0,
    );
    wait_metric(
        &admin,
        &p.host,
        &format!("attesta_tenant_audit_size{{tenant=\"{ACQUALAGNA}\"}}"),
        2.0,
    )
    .await;

    let out = cli(s(&["tenant", "list", "--config", &config])).await;
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(listed.lines().count(), 3, "{listed}");
    assert!(
        listed.lines().any(|l| l.starts_with(ACQUALAGNA)
            && l.contains("served")
            && l.ends_with("(kept 90 days)")),
        "{listed}"
    );
    // The others keep the host's retention.
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(FANO) && l.ends_with("(kept 730 days)")),
        "{listed}"
    );

    // An agency the manifest does not give this host is refused, in one line, and nothing is
    // served for it.
    let out = cli(s(&[
        "tenant",
        "add",
        "--config",
        &config,
        "--agency",
        "comune-pesaro",
        "--ca",
        &ca,
    ]))
    .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("does not give comune-pesaro to this node"),
        "{err}"
    );

    let out = cli(s(&[
        "tenant", "remove", "--config", &config, "--agency", ACQUALAGNA,
    ]))
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.starts_with(&format!("removed {ACQUALAGNA}: its log (")),
        "{said}"
    );
    let (code, _) = p.residence(ACQUALAGNA, &cf).await;
    assert_eq!(code, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_revoked_in_the_crl_is_served_no_more_and_nobody_else_is_affected() {
    let mut p = Province::start().await;
    let fano = p.citizen_of("041013");
    let cagli = p.citizen_of("041007");
    assert_eq!(p.residence(FANO, &fano).await.0, 200);
    // The Provincia revokes Fano's certificates; the host reloads the CRL on its own.
    p.pki.ca.revoke_agency(&agency(FANO)).unwrap();
    let url = format!("{}/v1/attest/residence", p.base(FANO));
    let questura = p.pki.client("questura-pu");
    let q = json!({"subject": fano, "purpose": "permit-renewal"}).to_string();
    let r = eventually(|| async {
        let r = questura
            .post(&url, "application/json", Bytes::from(q.clone()))
            .await
            .ok()?;
        (r.status == 404).then_some(r)
    })
    .await;
    assert!(
        r.problem_line().contains("listed in the CRL"),
        "{}",
        r.problem_line()
    );
    let (code, a) = p.residence(CAGLI, &cagli).await;
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["payload"]["resident"], true);
    // The host's answer for all its registries leaves Fano out: not a "no" about Fano.
    let url = p.host.url("/v1/attest/residence");
    let (code, a) = p
        .post(
            "questura-pu",
            &url,
            json!({"subject": fano, "purpose": "permit-renewal"}),
        )
        .await;
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["payload"]["covers"], json!([CAGLI]), "{a}");
}

/// Prunes tenant `tenant`'s log on the stopped host at `host_config`, as the host's retention
/// task does with the tenant's `retention_days`: entries written before `before_ms` go. The
/// first entry kept.
fn prune_tenant_log(host_config: &Path, tenant: &str, before_ms: u64) -> u64 {
    use attesta::audit::log::{load_or_create_key, origin, AuditLog};
    use std::sync::Arc;
    let settings = attesta::config::Settings::load(host_config).unwrap();
    let dir = settings.data_dir.join("tenants").join(tenant);
    let root = attesta::store::Store::open(&settings.data_dir.join("db")).unwrap();
    let files = attesta_certs::AgencyFiles::in_dir(&dir);
    let signing = attesta_certs::SigningIdentity::load(
        &settings.trust_domain,
        &files.sign_cert,
        &files.sign_key,
    )
    .unwrap();
    let log = AuditLog::open(
        Arc::new(root.scoped(tenant).unwrap()),
        load_or_create_key(&dir.join("audit.key")).unwrap(),
        origin(settings.trust_domain.as_str(), tenant),
        Arc::new(signing),
    )
    .unwrap();
    let first = log.prune(before_ms).unwrap();
    log.close();
    first
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_log_is_pruned_on_its_own_and_still_proves_what_it_keeps() {
    let mut p = Province::start().await;
    let fano = p.citizen_of("041013");
    let cagli = p.citizen_of("041007");
    p.residence(FANO, &fano).await;
    p.residence(CAGLI, &cagli).await;
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    // The cut falls strictly between the questions before it and those after (milliseconds).
    let later = |t: u64| eventually(move || async move { (now_ms() > t).then_some(()) });
    later(now_ms()).await;
    let cut = now_ms();
    later(cut).await;
    p.residence(FANO, &fano).await;

    let Province {
        mut pki,
        host,
        questura,
        inps,
        generated,
    } = p;
    let config = host.config_path.clone();
    host.stop().await;
    let first = tokio::task::block_in_place(|| prune_tenant_log(&config, FANO, cut));
    assert!(
        first > 0,
        "Fano's import and first question are past the cut"
    );
    let host = start_node(&mut pki, HOST, |_| {}).await;
    let mut p = Province {
        pki,
        host,
        questura,
        inps,
        generated,
    };

    let auditor = p.pki.client("garante-audit");
    let get = |url: String| {
        let auditor = &auditor;
        async move { auditor.get(&url).await.unwrap() }
    };
    // Fano's pruned entries are gone, and the 410 says where its export may start.
    let r = get(format!("{}/v1/audit/entries?start=0&end=1", p.base(FANO))).await;
    assert_eq!(r.status, 410, "{}", r.problem_line());
    let problem: Value = r.json().unwrap();
    assert_eq!(problem["type"], "urn:attesta:problem:pruned");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("--from {first}")),
        "{problem}"
    );
    // Cagli's log and the host's are whole.
    for base in [p.base(CAGLI), p.host.url.clone()] {
        let r = get(format!("{base}/v1/audit/entries?start=0&end=1")).await;
        assert_eq!(r.status, 200, "{base}: {}", r.problem_line());
    }
    // Fano's hashes still prove: an inclusion proof of entry 0, and the kept entries, the
    // question after the cut among them.
    let (_, size) = checkpoint(&auditor, &p.base(FANO), first + 1).await;
    let r = get(format!(
        "{}/v1/audit/proof/inclusion?index=0&size={size}",
        p.base(FANO)
    ))
    .await;
    assert_eq!(r.status, 200, "{}", r.problem_line());
    let r = get(format!(
        "{}/v1/audit/entries?start={first}&end={size}",
        p.base(FANO)
    ))
    .await;
    assert_eq!(r.status, 200, "{}", r.problem_line());
    let page: attesta::wire::EntriesPage<attesta::wire::PageEntry> = r.json().unwrap();
    assert!(page.entries.iter().any(|e| {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&e.leaf)
            .unwrap();
        let entry = attesta::audit::entry::Entry::decode(&bytes).unwrap();
        entry.route.ends_with("/v1/attest/residence") && entry.time_ms >= cut
    }));
}

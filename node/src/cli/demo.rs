//! `attesta demo up`: a whole Pesaro–Urbino federation on one machine.
//!
//! Layout of DIR:
//!
//! ```text
//! DIR/ca/                 ca.crt, ca.key, crl.pem, index.json
//! DIR/agencies/<id>/      auth.crt, auth.key, sign.crt, sign.key, node.toml, data/,
//!                         client.toml (for `attesta query` and `attesta bench` as that agency)
//! DIR/agencies/cst-pu/data/tenants/<comune>/
//!                         the 48 comuni the Provincia's service centre hosts: their
//!                         certificates, issued by the demo CA (see `attesta tenant`)
//! DIR/endpoints.json      {"agency-id": "https://127.0.0.1:PORT", ...}, once all nodes are ready
//! DIR/purposes.json       per agency and resource, the purposes the policy in force grants
//! DIR/samples.json        subjects to ask about, with the expected answers
//! ```
//!
//! The CA, certificates and data already in DIR are reused; node.toml files are rewritten.
//! Once every node is up, the Prefettura publishes the default policy (manifest version 1 on
//! a new DIR; a new version only if the policy or directory differ from the one in force).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use attesta_certs::{AgencyId, Ca, TrustDomain};

use crate::config::{LimitsConfig, ManifestConfig, NodeConfig, Settings, SigningConfig, TlsConfig};
use crate::server::Node;

pub const DEFAULT_BASE_PORT: u16 = 8441;
pub const TRUST_DOMAIN: &str = "pesaro-urbino.attesta.test";
/// The agency that signs the demo's manifest (it runs the first node, on the base port).
pub const PREFETTURA: &str = "prefettura-pu";

/// A demo agency: its id, whether it runs a node, and what that node serves.
#[derive(Debug, Clone, Copy)]
pub struct DemoAgency {
    pub id: &'static str,
    pub runs_node: bool,
    pub serves: &'static [&'static str],
    /// The comune whose registry it keeps (registry nodes).
    pub comune: Option<&'static str>,
}

/// The demo agencies. The auditor has certificates only: it uses the CLI against other
/// agencies' nodes.
pub const AGENCIES: &[DemoAgency] = &[
    DemoAgency {
        id: "prefettura-pu",
        runs_node: true,
        serves: &[],
        comune: None,
    },
    DemoAgency {
        id: "questura-pu",
        runs_node: true,
        serves: &["legal-presence"],
        comune: None,
    },
    DemoAgency {
        id: "comune-pesaro",
        runs_node: true,
        serves: &["residence"],
        comune: Some("041044"),
    },
    DemoAgency {
        id: "comune-urbino",
        runs_node: true,
        serves: &["residence"],
        comune: Some("041067"),
    },
    DemoAgency {
        id: "inps-pesaro",
        runs_node: true,
        serves: &[],
        comune: None,
    },
    DemoAgency {
        id: HOST,
        runs_node: true,
        serves: &[],
        comune: None,
    },
    DemoAgency {
        id: "garante-audit",
        runs_node: true,
        serves: &[],
        comune: None,
    },
];

/// The Provincia's service centre: its node hosts every comune without a node of its own.
pub const HOST: &str = "cst-pu";

/// Each node's console listens on the node's port plus this.
pub const CONSOLE_PORT_OFFSET: u16 = 10;

/// The demo's people: (role, agency, operator name). Each gets an operator certificate for
/// their agency's console (`DIR/operators/<role>/`).
pub const OPERATORS: &[(&str, &str, &str)] = &[
    ("clerk", "inps-pesaro", "mario.rossi"),
    ("registry-officer", "comune-pesaro", "laura.bianchi"),
    ("policy-officer", "prefettura-pu", "giulia.verdi"),
    ("auditor", "garante-audit", "elena.neri"),
];

/// The agency id of a comune: `comune-` and its name in lower case, words joined by `-`
/// ("SANT'ANGELO IN VADO" → `comune-sant-angelo-in-vado`).
pub fn comune_agency(name: &str) -> String {
    let mut id = String::from("comune");
    for word in name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        id.push('-');
        id.push_str(&word.to_ascii_lowercase());
    }
    id
}

/// The comuni the service centre hosts: every comune of the province but those with a node
/// of their own, as (agency id, ISTAT code).
pub fn hosted_comuni() -> Vec<(String, &'static str)> {
    crate::domain::places::comuni_pu()
        .iter()
        .filter(|c| !AGENCIES.iter().any(|a| a.comune == Some(c.istat.as_str())))
        .map(|c| (comune_agency(&c.name), c.istat.as_str()))
        .collect()
}

/// The demo's policy: the default policy, and the hosted comuni (comuni like any other, each
/// operating its own data) and the service centre (operating its node).
pub fn demo_policy() -> String {
    let mut p = attesta_policy::DEFAULT_POLICY.to_owned();
    p.push_str(
        "#
# The comuni the Provincia's service centre hosts, and the service centre.
",
    );
    p.push_str(&format!(
        "g, {HOST}, operator
"
    ));
    for (id, _) in hosted_comuni() {
        p.push_str(&format!(
            "g, {id}, comune
g, {id}, operator
"
        ));
    }
    p
}

/// How long to wait for every node to answer `/readyz`.
const READY_ATTEMPTS: u32 = 200;
const READY_BACKOFF: Duration = Duration::from_millis(50);

/// Creates what is missing in `dir` and returns the node configs, in `AGENCIES` order.
pub fn prepare(dir: &Path, base_port: u16, memory_mb: u32) -> anyhow::Result<Vec<PathBuf>> {
    let ca_dir = dir.join("ca");
    let mut ca = if ca_dir.join(attesta_certs::ca::CA_CERT).exists() {
        Ca::open(&ca_dir)?
    } else {
        let td = TrustDomain::new(TRUST_DOMAIN).context("demo trust domain")?;
        Ca::init(&ca_dir, td)?
    };
    let mut configs = Vec::new();
    let mut port = base_port;
    for demo in AGENCIES {
        let name = demo.id;
        let agency = AgencyId::new(name).context("demo agency id")?;
        let agency_dir = dir.join("agencies").join(name);
        if !agency_dir.join("auth.crt").exists() {
            ca.issue_agency(
                &agency,
                vec!["localhost".into()],
                vec![[127, 0, 0, 1].into()],
                attesta_certs::ca::DEFAULT_LEAF_DAYS,
                &agency_dir,
            )?;
        }
        write_client_toml(&agency_dir, name, demo.runs_node, port, base_port)?;
        if !demo.runs_node {
            continue;
        }
        if name == HOST {
            for (id, _) in hosted_comuni() {
                let tenant = AgencyId::new(&id).context("demo comune id")?;
                let tenant_dir = agency_dir.join("data").join("tenants").join(&id);
                if !tenant_dir.join("auth.crt").exists() {
                    ca.issue_agency(
                        &tenant,
                        vec!["localhost".into()],
                        vec![[127, 0, 0, 1].into()],
                        attesta_certs::ca::DEFAULT_LEAF_DAYS,
                        &tenant_dir,
                    )?;
                }
                crate::cli::tenant::write_config(
                    &tenant_dir,
                    &crate::server::TenantConfig {
                        serves: vec![attesta_policy::Service::Residence],
                        retention_days: None,
                    },
                )?;
            }
        }
        let config_path = agency_dir.join("node.toml");
        let config = NodeConfig {
            agency: name.to_string(),
            trust_domain: ca.trust_domain().to_string(),
            listen: ([127, 0, 0, 1], port).into(),
            data_dir: "data".into(),
            serves: demo.serves.iter().map(|s| s.to_string()).collect(),
            manifest: ManifestConfig {
                prefettura: PREFETTURA.into(),
                url: (name != PREFETTURA).then(|| format!("https://127.0.0.1:{base_port}")),
                refresh_secs: 30,
            },
            tls: TlsConfig {
                ca: "../../ca/ca.crt".into(),
                crl: Some("../../ca/crl.pem".into()),
                cert: "auth.crt".into(),
                key: "auth.key".into(),
                reload_interval_ms: 2_000,
            },
            signing: SigningConfig {
                cert: "sign.crt".into(),
                key: "sign.key".into(),
            },
            limits: LimitsConfig::default(),
            peers: Default::default(),
            audit: Default::default(),
            store: crate::config::StoreConfig { memory_mb },
            console: Some(crate::config::ConsoleConfig {
                listen: (
                    [127, 0, 0, 1],
                    port.checked_add(CONSOLE_PORT_OFFSET)
                        .context("--base-port too high")?,
                )
                    .into(),
            }),
        };
        let text = format!(
            "# Node of {name} in the attesta demo federation. See examples/node.toml for every key.\n{}",
            config.to_toml()
        );
        attesta_certs::fsutil::write_atomic(
            &config_path,
            text.as_bytes(),
            attesta_certs::fsutil::PUBLIC_MODE,
        )
        .with_context(|| format!("writing {}", config_path.display()))?;
        std::fs::create_dir_all(agency_dir.join("data"))
            .with_context(|| format!("creating {}", agency_dir.join("data").display()))?;
        configs.push(config_path);
        port = port.checked_add(1).context("--base-port too high")?;
    }
    issue_operators(dir, &mut ca)?;
    Ok(configs)
}

/// The demo's PKCS#12 password (one for every operator): `DIR/operators/password.txt`,
/// made on first use.
fn operators_password(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join("operators").join("password.txt");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(text.trim().to_owned());
    }
    let password = crate::cli::operator_password();
    std::fs::create_dir_all(dir.join("operators"))
        .with_context(|| format!("creating {}", dir.join("operators").display()))?;
    attesta_certs::fsutil::write_atomic(
        &path,
        format!("{password}\n").as_bytes(),
        attesta_certs::fsutil::PRIVATE_MODE,
    )
    .with_context(|| format!("writing {}", path.display()))?;
    Ok(password)
}

/// Issues each of [`OPERATORS`] their certificate, unless they have one, and gives them
/// their role in their agency's `operators.toml`.
fn issue_operators(dir: &Path, ca: &mut Ca) -> anyhow::Result<()> {
    let password = operators_password(dir)?;
    let mut by_agency: BTreeMap<&str, crate::server::console_roles::Operators> = BTreeMap::new();
    for (role, agency, name) in OPERATORS {
        let role: crate::server::console_roles::Role =
            serde_json::from_value(serde_json::json!(role)).context("demo role")?;
        by_agency
            .entry(agency)
            .or_default()
            .operators
            .insert(name.to_string(), vec![role]);
    }
    for (agency, ops) in &by_agency {
        let path = dir
            .join("agencies")
            .join(agency)
            .join("data")
            .join(crate::server::console_roles::FILE);
        let text = format!(
            "# Who among {agency}'s staff may do what at its console (see docs/OPERATIONS.md).\n{}",
            toml::to_string(ops).context("operators.toml")?
        );
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        attesta_certs::fsutil::write_atomic(
            &path,
            text.as_bytes(),
            attesta_certs::fsutil::PUBLIC_MODE,
        )
        .with_context(|| format!("writing {}", path.display()))?;
    }
    for (role, agency, name) in OPERATORS {
        let out = dir.join("operators").join(role);
        let operator = attesta_certs::OperatorName::new(name).context("demo operator")?;
        if attesta_certs::OperatorFiles::in_dir(&out, &operator)
            .p12
            .exists()
        {
            continue;
        }
        let agency = AgencyId::new(agency).context("demo agency id")?;
        ca.issue_operator(
            &agency,
            &operator,
            attesta_certs::ca::DEFAULT_LEAF_DAYS,
            &password,
            &out,
        )?;
    }
    Ok(())
}

/// `DIR/console.json`: for each role, its console's URL and the operator's files, so that
/// scripts (and the browser tests) reach every console.
fn write_consoles(dir: &Path, nodes: &[(Settings, String)]) -> anyhow::Result<serde_json::Value> {
    let password = operators_password(dir)?;
    let mut out = serde_json::Map::new();
    for (role, agency, name) in OPERATORS {
        let Some(console) = nodes
            .iter()
            .find(|(s, _)| s.agency.as_str() == *agency)
            .and_then(|(s, _)| s.console)
        else {
            continue;
        };
        let operator = attesta_certs::OperatorName::new(name).context("demo operator")?;
        let files =
            attesta_certs::OperatorFiles::in_dir(&dir.join("operators").join(role), &operator);
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
        out.insert(
            role.to_string(),
            serde_json::json!({
                "url": format!("https://localhost:{}/", console.port()),
                "agency": agency,
                "operator": name,
                "cert": abs(&files.cert),
                "key": abs(&files.key),
                "p12": abs(&files.p12),
                "p12_password": password,
            }),
        );
    }
    let value = serde_json::Value::Object(out);
    let path = dir.join("console.json");
    attesta_certs::fsutil::write_atomic(
        &path,
        &serde_json::to_vec_pretty(&value)?,
        attesta_certs::fsutil::PRIVATE_MODE,
    )
    .with_context(|| format!("writing {}", path.display()))?;
    Ok(value)
}

/// `attesta demo up`.
/// `attesta demo up`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Directory for the CA, the agencies and endpoints.json.
    #[arg(long, default_value = "demo")]
    pub dir: PathBuf,
    /// First port; nodes listen on consecutive ports from here (used when DIR is new).
    #[arg(long, default_value_t = DEFAULT_BASE_PORT)]
    pub base_port: u16,
    /// MiB of RocksDB memory for each node (`[store] memory_mb`; written when DIR is new).
    #[arg(long, default_value_t = DEFAULT_MEMORY_MB, value_parser = clap::value_parser!(u32).range(16..=65_536))]
    pub memory_mb: u32,
    /// Synthetic residents of the province (generated when DIR has no data yet; the
    /// province has about 350,000).
    #[arg(long, default_value_t = DEMO_RESIDENTS, value_parser = clap::value_parser!(u32).range(100..=10_000_000))]
    pub residents: u32,
}

pub async fn up(args: DemoArgs) -> anyhow::Result<()> {
    let dir = &args.dir;
    let configs = prepare(dir, args.base_port, args.memory_mb)?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut endpoints = BTreeMap::new();
    let mut tasks = Vec::new();
    let mut nodes = Vec::new();
    for path in &configs {
        let settings = Settings::load(path)?;
        let url = format!("https://{}", settings.listen);
        let mut node =
            Node::new(settings).with_context(|| format!("starting node of {}", path.display()))?;
        let listener = node.bind().await?;
        nodes.push((node.settings().clone(), url.clone()));
        endpoints.insert(node.settings().agency.to_string(), url);
        let mut stop = stop_rx.clone();
        // Everything the node logs happens in its span: the demo writes it to its own file.
        let span = tracing::info_span!("node", agency = %node.settings().agency);
        tasks.push(tokio::spawn(tracing::Instrument::instrument(
            node.run(listener, async move {
                let _ = stop.changed().await;
            }),
            span,
        )));
    }

    for (settings, url) in &nodes {
        wait_ready(settings, url).await?;
    }
    let version = publish_default_policy(&nodes).await?;
    write_purposes(dir, &demo_policy())?;
    load_data(dir, &nodes, args.residents).await?;
    let endpoints_path = dir.join("endpoints.json");
    let json = serde_json::to_vec_pretty(&endpoints)?;
    attesta_certs::fsutil::write_atomic(&endpoints_path, &json, attesta_certs::fsutil::PUBLIC_MODE)
        .with_context(|| format!("writing {}", endpoints_path.display()))?;

    let consoles = write_consoles(dir, &nodes)?;
    print_banner(dir, &endpoints, version);
    print_consoles(dir, &consoles);
    crate::server::shutdown_signal().await;
    println!("stopping the demo federation…");
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}

/// The resources a clerk declares purposes for, in `purposes.json`.
const QUESTIONS: &[&str] = &[
    "residence",
    "legal-presence",
    "status",
    "family",
    "expiring-permits",
    "audit",
];

/// `DIR/purposes.json`: for each demo agency, the purposes the policy grants it per
/// resource, derived from the policy text.
pub fn purposes(policy: &str) -> anyhow::Result<serde_json::Value> {
    let mut out = serde_json::Map::new();
    for a in AGENCIES {
        let granted = attesta_policy::rules::purposes(policy, a.id)?;
        let mut per = serde_json::Map::new();
        for q in QUESTIONS {
            let list: Vec<&String> = granted
                .get(*q)
                .map(|s| s.iter().collect())
                .unwrap_or_default();
            per.insert((*q).to_owned(), serde_json::json!(list));
        }
        out.insert(a.id.to_owned(), serde_json::Value::Object(per));
    }
    Ok(serde_json::Value::Object(out))
}

fn write_purposes(dir: &Path, policy: &str) -> anyhow::Result<()> {
    let path = dir.join("purposes.json");
    let json = serde_json::to_vec_pretty(&purposes(policy)?)?;
    attesta_certs::fsutil::write_atomic(&path, &json, attesta_certs::fsutil::PUBLIC_MODE)
        .with_context(|| format!("writing {}", path.display()))
}

/// The demo's directory: every node, what it serves, which comune it keeps; and the comuni
/// the service centre hosts, if it runs.
pub fn directory(nodes: &[(Settings, String)]) -> Vec<attesta_policy::DirectoryEntry> {
    let hosted = nodes
        .iter()
        .any(|(s, _)| s.agency.as_str() == HOST)
        .then(hosted_comuni)
        .unwrap_or_default()
        .into_iter()
        .map(|(id, istat)| attesta_policy::DirectoryEntry {
            agency: id,
            url: None,
            hosted_by: Some(HOST.to_owned()),
            serves: vec![attesta_policy::Service::Residence],
            comuni: vec![istat.to_owned()],
        });
    nodes
        .iter()
        .map(|(settings, url)| {
            let demo = AGENCIES.iter().find(|a| a.id == settings.agency.as_str());
            attesta_policy::DirectoryEntry {
                agency: settings.agency.to_string(),
                url: Some(url.clone()),
                hosted_by: None,
                serves: demo
                    .map(|d| {
                        d.serves
                            .iter()
                            .filter_map(|s| attesta_policy::Service::parse(s))
                            .collect()
                    })
                    .unwrap_or_default(),
                comuni: demo
                    .and_then(|d| d.comune)
                    .map(|c| vec![c.to_owned()])
                    .unwrap_or_default(),
            }
        })
        .chain(hosted)
        .collect()
}

/// Publishes the default policy and the demo's directory on the Prefettura's node, unless the
/// manifest in force already has both, then waits until every node has it. Returns the
/// version in force.
async fn publish_default_policy(nodes: &[(Settings, String)]) -> anyhow::Result<u64> {
    let (prefettura, url) = nodes
        .iter()
        .find(|(s, _)| s.agency.as_str() == PREFETTURA)
        .context("the demo has no Prefettura node")?;
    let client = prefettura.own_client()?;
    let directory = directory(nodes);
    let policy = demo_policy();
    let in_force = crate::manifest::fetch_published(prefettura, &client, url).await?;
    let version = match in_force {
        Some(m) if m.policy == policy && m.directory == directory => m.version,
        _ => {
            let body = serde_json::to_vec(&crate::wire::PublishRequest {
                policy,
                directory: Some(directory),
                revoked: Some(Vec::new()),
                expected_version: None,
            })?;
            let reply = client
                .post(
                    &format!("{url}{}", crate::wire::path::MANIFEST),
                    "application/json",
                    bytes::Bytes::from(body),
                )
                .await?;
            if !reply.status.is_success() {
                anyhow::bail!(
                    "publishing the demo policy: {} {}",
                    reply.status,
                    String::from_utf8_lossy(&reply.body)
                );
            }
            let answer: crate::wire::PublishAnswer = serde_json::from_slice(&reply.body)?;
            println!(
                "published the default policy as manifest version {}",
                answer.version
            );
            answer.version
        }
    };
    // Every node has it once its /readyz says so (pushed by the publish, or fetched).
    for (settings, url) in nodes {
        let client = settings.own_client()?;
        let mut have = None;
        for _ in 0..READY_ATTEMPTS {
            have = client
                .get(&format!("{url}{}", crate::wire::path::READYZ))
                .await
                .ok()
                .and_then(|r| r.json::<crate::wire::Ready>().ok())
                .and_then(|r| r.manifest_version);
            if have == Some(version) {
                break;
            }
            tokio::time::sleep(READY_BACKOFF).await;
        }
        if have != Some(version) {
            anyhow::bail!(
                "node {} did not take manifest version {version} (has {have:?})",
                settings.agency
            );
        }
    }
    Ok(version)
}

/// Residents in the demo: enough to be realistic, small enough to import in a second.
pub const DEMO_RESIDENTS: u32 = 20_000;

/// Generates the demo data (once) and imports it: each registry node gets its comune's
/// residents, the Questura every permit. `DIR/samples.json` lists subjects to ask about.
async fn load_data(dir: &Path, nodes: &[(Settings, String)], residents: u32) -> anyhow::Result<()> {
    let data = dir.join("data");
    if !data.join("samples.json").exists() {
        crate::cli::generate::run(&crate::cli::generate::GenerateArgs {
            out: data.clone(),
            residents,
            seed: 2014,
            as_of: None,
        })?;
    }
    std::fs::copy(data.join("samples.json"), dir.join("samples.json"))
        .with_context(|| format!("writing {}", dir.join("samples.json").display()))?;
    let residents = std::fs::read_to_string(data.join("residents.csv"))
        .with_context(|| format!("reading {}", data.join("residents.csv").display()))?;
    // The data describes the day it was generated, as written in the samples.
    let samples: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data.join("samples.json"))
            .with_context(|| format!("reading {}", data.join("samples.json").display()))?,
    )
    .with_context(|| format!("parsing {}", data.join("samples.json").display()))?;
    let as_of = samples[0]["as_of"].as_str().unwrap_or_default().to_owned();
    let permits = std::fs::read(data.join("permits.csv"))
        .with_context(|| format!("reading {}", data.join("permits.csv").display()))?;

    for (settings, url) in nodes {
        if settings.agency.as_str() == HOST {
            import_hosted(settings, url, &residents, &as_of).await?;
            continue;
        }
        let demo = AGENCIES.iter().find(|a| a.id == settings.agency.as_str());
        let (route, body) = match demo {
            Some(DemoAgency {
                comune: Some(comune),
                ..
            }) => {
                let out = rows_of_comune(&residents, comune)
                    .with_context(|| format!("reading {}", data.join("residents.csv").display()))?;
                ("residents", bytes::Bytes::from(out))
            }
            Some(d) if d.serves.contains(&"legal-presence") => {
                ("permits", bytes::Bytes::from(permits.clone()))
            }
            _ => continue,
        };
        let client = settings.own_client()?;
        let reply = client
            .post(
                &format!("{url}/v1/admin/import/{route}?mode=snapshot&as_of={as_of}"),
                "text/csv",
                body,
            )
            .await?;
        if !reply.status.is_success() {
            anyhow::bail!(
                "importing {route} into {}: {} {}",
                settings.agency,
                reply.status,
                String::from_utf8_lossy(&reply.body)
            );
        }
        let summary: crate::wire::ImportSummary = reply
            .json()
            .with_context(|| format!("importing {route} into {}", settings.agency))?;
        println!(
            "imported {} {route} into {}",
            summary.applied, settings.agency
        );
    }
    Ok(())
}

/// Imports each hosted comune's residents on the service centre, as that comune (its
/// certificate, in the host's tenant directory), a few at a time.
async fn import_hosted(
    host: &Settings,
    url: &str,
    residents: &str,
    as_of: &str,
) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    let mut rows = 0u64;
    let hosted = hosted_comuni();
    for chunk in hosted.chunks(8) {
        for (id, istat) in chunk {
            let agency = AgencyId::new(id).context("demo comune id")?;
            let client = crate::cli::tenant::client_as(host, &agency)?;
            let body = bytes::Bytes::from(rows_of_comune(residents, istat)?);
            let target = format!(
                "{url}{}{}?mode=snapshot&as_of={as_of}",
                attesta_policy::tenant_prefix(agency.as_str()),
                crate::wire::path::IMPORT_RESIDENTS
            );
            tasks.spawn(async move {
                let reply = client.post(&target, "text/csv", body).await?;
                if !reply.status.is_success() {
                    anyhow::bail!(
                        "importing residents into {agency}: {}",
                        reply.problem_line()
                    );
                }
                let summary: crate::wire::ImportSummary = reply.json()?;
                anyhow::Ok(summary.applied)
            });
        }
        while let Some(done) = tasks.join_next().await {
            rows += done??;
        }
    }
    println!(
        "imported {rows} residents into the {} comuni {HOST} hosts",
        hosted.len()
    );
    Ok(())
}

/// The header of a residents CSV, then the rows of `comune`, as CSV.
fn rows_of_comune(residents: &str, comune: &str) -> anyhow::Result<Vec<u8>> {
    let mut reader = csv::Reader::from_reader(residents.as_bytes());
    let headers = reader.headers()?.clone();
    let column = headers
        .iter()
        .position(|h| h == "comune")
        .context("no comune column")?;
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(&headers)?;
    for row in reader.records() {
        let row = row?;
        if row.get(column) == Some(comune) {
            out.write_record(&row)?;
        }
    }
    Ok(out.into_inner().map_err(|e| e.into_error())?)
}

/// Polls `/readyz` with the node's own identity, with bounded retries.
pub async fn wait_ready(settings: &Settings, url: &str) -> anyhow::Result<()> {
    let client = settings.own_client()?;
    let ready = format!("{url}{}", crate::wire::path::READYZ);
    let mut last = String::new();
    for _ in 0..READY_ATTEMPTS {
        match client.get(&ready).await {
            Ok(r) if r.status.is_success() => return Ok(()),
            Ok(r) => last = format!("status {}", r.status),
            Err(e) => last = crate::config::error_chain(&e),
        }
        tokio::time::sleep(READY_BACKOFF).await;
    }
    anyhow::bail!(
        "node {} at {url} did not become ready: {last}",
        settings.agency
    )
}

/// The consoles, their people and how to sign in with a browser.
fn print_consoles(dir: &Path, consoles: &serde_json::Value) {
    println!(
        "consoles (sign in with the operator's PKCS#12 file; {}):",
        dir.join("console.json").display()
    );
    if let Some(map) = consoles.as_object() {
        for (role, c) in map {
            println!(
                "  {role:<17} {} as {} of {}: {}",
                c["url"].as_str().unwrap_or_default(),
                c["operator"].as_str().unwrap_or_default(),
                c["agency"].as_str().unwrap_or_default(),
                c["p12"].as_str().unwrap_or_default()
            );
        }
        if let Some(c) = map.values().next() {
            println!(
                "  PKCS#12 password: {} (in {})",
                c["p12_password"].as_str().unwrap_or_default(),
                dir.join("operators").join("password.txt").display()
            );
        }
    }
    println!(
        "  import a .p12 into the browser (Chromium: Settings → Privacy and security → Security → \
         Manage certificates → Import; Firefox: Settings → Certificates → Your Certificates → Import),"
    );
    println!(
        "  and trust the demo CA for the console's address ({}: Authorities → Import).",
        dir.join("ca").join("ca.crt").display()
    );
}

fn print_banner(dir: &Path, endpoints: &BTreeMap<String, String>, manifest_version: u64) {
    println!(
        "attesta demo federation is up ({TRUST_DOMAIN}, manifest version {manifest_version}):"
    );
    for (agency, url) in endpoints {
        println!("  {agency:<15} {url}");
    }
    let a = dir.join("agencies").join("inps-pesaro");
    let target = endpoints.get("comune-pesaro").cloned().unwrap_or_default();
    println!("endpoints: {}", dir.join("endpoints.json").display());
    println!(
        "node logs: {} (this terminal shows warnings only)",
        dir.join("logs").join("<agency>.log").display()
    );
    println!(
        "purposes each agency may declare: {}",
        dir.join("purposes.json").display()
    );
    println!("ask comune-pesaro who you are, as inps-pesaro:");
    println!(
        "  curl --cert {} --key {} --cacert {} {target}/v1/whoami",
        a.join("auth.crt").display(),
        a.join("auth.key").display(),
        dir.join("ca").join("ca.crt").display()
    );
    println!(
        "ask comune-pesaro whether a sample subject is resident (see {}):",
        dir.join("samples.json").display()
    );
    println!(
        "  curl --cert {} --key {} --cacert {} -H 'content-type: application/json' \\\n       -d '{{\"subject\": \"<cf from samples.json>\", \"purpose\": \"benefit-eligibility\"}}' {target}/v1/attest/residence",
        a.join("auth.crt").display(),
        a.join("auth.key").display(),
        dir.join("ca").join("ca.crt").display()
    );
    print_queries(dir);
    println!("Ctrl-C stops every node.");
}

/// `client.toml` for `attesta query`, `attesta bench` and `attesta audit` as the agency: a
/// node agency asks its own node; the auditor, which runs none, reaches the federation
/// through the Prefettura's.
fn write_client_toml(
    agency_dir: &Path,
    name: &str,
    runs_node: bool,
    port: u16,
    base_port: u16,
) -> anyhow::Result<()> {
    let (node, node_agency, comment) = if runs_node {
        (
            format!("https://127.0.0.1:{port}"),
            None,
            format!(
                "A clerk of {name}, asking the agency's own node (attesta query, attesta bench)."
            ),
        )
    } else {
        (
            format!("https://127.0.0.1:{base_port}"),
            Some(PREFETTURA.to_owned()),
            format!(
                "{name}, reaching the federation through the Prefettura's node (attesta audit)."
            ),
        )
    };
    let client = crate::cli::query::ClientFile {
        ca: "../../ca/ca.crt".into(),
        crl: Some("../../ca/crl.pem".into()),
        cert: "auth.crt".into(),
        key: "auth.key".into(),
        node,
        node_agency,
    };
    let client_path = agency_dir.join("client.toml");
    let text = format!(
        "# {comment}\n{}",
        toml::to_string_pretty(&client).context("client.toml")?
    );
    attesta_certs::fsutil::write_atomic(
        &client_path,
        text.as_bytes(),
        attesta_certs::fsutil::PUBLIC_MODE,
    )
    .with_context(|| format!("writing {}", client_path.display()))
}

/// Samples the banner shows `attesta query status` for: three different answers, and a
/// resident of a comune the service centre hosts.
const SHOWN: &[&str] = &[
    "resident with valid permit",
    "EU citizen resident",
    "resident with expired permit",
    "resident of Fano",
];

/// The `attesta query status` commands for [`SHOWN`] samples, as INPS's clerk.
pub fn query_commands(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let samples = samples(dir)?;
    let exe = exe();
    let config = dir.join("agencies").join("inps-pesaro").join("client.toml");
    let today = crate::domain::records::format_date(time::OffsetDateTime::now_utc().date());
    let mut out = Vec::new();
    for label in SHOWN {
        let Some(s) = samples.iter().find(|s| s["label"] == *label) else {
            continue;
        };
        let mut cmd = format!(
            "{exe} query status {} --purpose benefit-eligibility",
            s["cf"].as_str().unwrap_or_default()
        );
        if let Some(c) = s["comune"].as_str() {
            cmd.push_str(&format!(" --comune {c}"));
        }
        // The data describes the day it was generated.
        if let Some(d) = s["as_of"].as_str().filter(|d| *d != today) {
            cmd.push_str(&format!(" --as-of {d}"));
        }
        cmd.push_str(&format!(" --config {}", config.display()));
        out.push(((*label).to_owned(), cmd));
    }
    Ok(out)
}

fn samples(dir: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let path = dir.join("samples.json");
    serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("parsing {}", path.display()))
}

/// RocksDB memory of each demo node: five nodes share one machine (a real node: 256 MiB).
pub const DEFAULT_MEMORY_MB: u32 = 64;

/// This program, as the banner's commands name it.
fn exe() -> String {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "attesta".into())
}

fn auditor_config(dir: &Path) -> std::path::PathBuf {
    dir.join("agencies")
        .join("garante-audit")
        .join("client.toml")
}

/// The citizen access report the banner shows, about the first example's person.
pub fn report_command(dir: &Path) -> anyhow::Result<String> {
    let samples = samples(dir)?;
    let cf = SHOWN
        .iter()
        .find_map(|label| samples.iter().find(|s| s["label"] == *label))
        .and_then(|s| s["cf"].as_str())
        .ok_or_else(|| anyhow::anyhow!("no example person in samples.json"))?;
    Ok(format!(
        "{} audit subject-report {cf} --config {}",
        exe(),
        auditor_config(dir).display()
    ))
}

/// The auditor's commands the banner shows: export a node's log, verify the bundle.
pub fn audit_commands(dir: &Path, agency: &str) -> (String, String) {
    let exe = exe();
    let config = auditor_config(dir);
    let bundle = dir.join("audit").join(format!("{agency}.bundle"));
    (
        format!(
            "{exe} audit export --config {} --node {agency} --out {}",
            config.display(),
            bundle.display()
        ),
        format!(
            "{exe} audit verify {} --ca {} --witnesses 2",
            bundle.display(),
            dir.join("ca").join("ca.crt").display()
        ),
    )
}

fn print_queries(dir: &Path) {
    match query_commands(dir) {
        Ok(commands) => {
            println!("ask INPS's node whether a person is resident and legally present:");
            for (label, cmd) in commands {
                println!("  # {label}");
                println!("  {cmd}");
            }
        }
        Err(e) => println!("(no example queries: {e:#})"),
    }
    let (export, verify) = audit_commands(dir, "questura-pu");
    println!(
        "as the auditor (garante-audit), export the Questura's audit log and verify it offline \
         (signed by the Questura, cosigned by at least two peers):"
    );
    println!("  {export}");
    println!("  {verify}");
    if let Ok(report) = report_command(dir) {
        println!(
            "the citizen access report (GDPR art. 15): who asked about the first person, on \
             every node:"
        );
        println!("  {report}");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_comunes_rows_are_read_as_csv_not_by_commas() {
        let csv = "codice_fiscale,comune,address\n\
                   A,041044,\"Via Roma, 1\"\n\
                   B,041067,Via Po 3\n\
                   C,041044,Via Po 4\n";
        let out = String::from_utf8(super::rows_of_comune(csv, "041044").unwrap()).unwrap();
        assert_eq!(
            out,
            "codice_fiscale,comune,address\nA,041044,\"Via Roma, 1\"\nC,041044,Via Po 4\n"
        );
        assert!(super::rows_of_comune("codice_fiscale\nA\n", "041044").is_err());
    }
}

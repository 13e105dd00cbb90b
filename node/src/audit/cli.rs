//! `attesta audit ...`: the auditor's tools: checking single proofs by hand, exporting a
//! node's log as a bundle, verifying bundles offline and reconciling two nodes' bundles.

use anyhow::Context;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use clap::{Args, Subcommand};

use super::merkle::{self, Hash};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check an inclusion proof (RFC 9162 §2.1.3.2). Exit 0 iff it verifies.
    CheckInclusion(InclusionArgs),
    /// Check a consistency proof (RFC 9162 §2.1.4.2). Exit 0 iff it verifies.
    CheckConsistency(ConsistencyArgs),
    /// Export a node's log, or a range of it, as a bundle (entries, signed checkpoint,
    /// certificates, and for a range the hashes that tie it to the checkpoint).
    Export(ExportArgs),
    /// Verify a bundle offline against the federation CA. Exit 0 iff it verifies.
    Verify(VerifyArgs),
    /// Compare the calls between two nodes in their bundles (both verified first). Exit 0 iff
    /// every call one logged is in the other's log, both ways.
    Reconcile(ReconcileArgs),
    /// Check a receipt (`GET /v1/audit/receipt`: C2SP tlog-proof) offline against the CA.
    /// Exit 0 iff the node's signed tree holds the entry.
    CheckReceipt(ReceiptArgs),
    /// Fetch one entry's receipt from a node (`GET /v1/audit/receipt`), check it against the
    /// CA of the client's config, and save it. The agency an entry names needs no grant.
    Receipt(FetchReceiptArgs),
    /// The citizen access report (GDPR art. 15): every node's log entries about one person,
    /// merged by time. Exit 0 iff every node answered.
    SubjectReport(super::report::SubjectReportArgs),
}

/// What offline checks trust: the federation's CA, and its CRL.
#[derive(Debug, Args)]
pub struct TrustArgs {
    /// The federation CA certificate.
    #[arg(long)]
    ca: std::path::PathBuf,
    /// The CRL, to refuse revoked signing certificates.
    #[arg(long)]
    crl: Option<std::path::PathBuf>,
}

impl TrustArgs {
    fn load(&self) -> anyhow::Result<attesta_certs::TrustStore> {
        let td = attesta_certs::tls::ca_trust_domain(&self.ca)?;
        Ok(attesta_certs::TrustStore::load(
            td,
            &self.ca,
            self.crl.as_deref(),
        )?)
    }
}

#[derive(Debug, Args)]
pub struct ReceiptArgs {
    /// The receipt file.
    receipt: std::path::PathBuf,
    #[command(flatten)]
    trust: TrustArgs,
    /// How many distinct witnesses must have cosigned the checkpoint.
    #[arg(long, default_value_t = 0)]
    witnesses: usize,
}

#[derive(Debug, Args)]
pub struct FetchReceiptArgs {
    /// client.toml: CA, the agency's certificate and key, the node to ask.
    #[arg(long)]
    config: std::path::PathBuf,
    /// The entry's index (an answer's `Attesta-Log-Index`).
    #[arg(long)]
    index: u64,
    /// The agency whose node logged the entry; by default the configured node's.
    #[arg(long)]
    node: Option<String>,
    /// Where to save the receipt.
    #[arg(long)]
    out: std::path::PathBuf,
    /// How many distinct witnesses must have cosigned the checkpoint.
    #[arg(long, default_value_t = 0)]
    witnesses: usize,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// One node's bundle.
    a: std::path::PathBuf,
    /// Another node's bundle.
    b: std::path::PathBuf,
    /// Both bundles are verified against the CA first.
    #[command(flatten)]
    trust: TrustArgs,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The auditor's client.toml (CA, the auditor's certificate and key, a node to reach the
    /// federation through).
    #[arg(long)]
    config: std::path::PathBuf,
    /// The agency whose node's log to export. Its URL comes from the manifest's directory.
    #[arg(long)]
    node: String,
    /// The node's URL, instead of the directory's.
    #[arg(long)]
    url: Option<String>,
    /// Where to write the bundle.
    #[arg(long)]
    out: std::path::PathBuf,
    /// Export entries from this index on (default 0): a range bundle.
    #[arg(long, conflicts_with = "since")]
    from: Option<u64>,
    /// Export what was logged after this earlier bundle of the node's log (from its
    /// checkpoint's size); `verify --since` the same bundle proves the two join up.
    #[arg(long)]
    since: Option<std::path::PathBuf>,
    /// Export entries below this index (default: the checkpoint's size).
    #[arg(long)]
    to: Option<u64>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle file.
    bundle: std::path::PathBuf,
    #[command(flatten)]
    trust: TrustArgs,
    /// How many distinct witnesses must have cosigned the checkpoint.
    #[arg(long, default_value_t = 0)]
    witnesses: usize,
    /// An earlier bundle of the same node: its checkpoint must be a prefix of this log.
    #[arg(long)]
    since: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct InclusionArgs {
    /// The leaf's hash, SHA-256(0x00 || entry), standard base64.
    #[arg(long)]
    leaf_hash: String,
    #[arg(long)]
    index: u64,
    #[arg(long)]
    size: u64,
    /// The tree's root at `size`, standard base64.
    #[arg(long)]
    root: String,
    /// The proof's hashes, deepest first, standard base64, comma-separated.
    #[arg(long, value_delimiter = ',')]
    proof: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ConsistencyArgs {
    #[arg(long)]
    size1: u64,
    #[arg(long)]
    size2: u64,
    #[arg(long)]
    root1: String,
    #[arg(long)]
    root2: String,
    /// The proof's hashes, standard base64, comma-separated.
    #[arg(long, value_delimiter = ',')]
    proof: Vec<String>,
}

/// One hash: exactly 32 bytes in canonical standard base64 (44 characters, padded), nothing
/// around it.
fn hash(what: &str, b64: &str) -> anyhow::Result<Hash> {
    if b64.is_empty() {
        anyhow::bail!("{what}: empty");
    }
    let bytes = STANDARD
        .decode(b64)
        .with_context(|| format!("{what}: not standard base64"))?;
    merkle::hash_from_slice(&bytes).with_context(|| what.to_owned())
}

/// A proof from the command line: exactly the hashes given, each a hash. `--proof ''` is the
/// empty proof; an empty element anywhere else (`a,,b`, a trailing comma) is refused, as is
/// anything that is not a hash.
fn proof(items: &[String]) -> anyhow::Result<Vec<Hash>> {
    if let [only] = items {
        if only.is_empty() {
            return Ok(Vec::new());
        }
    }
    items
        .iter()
        .enumerate()
        .map(|(i, s)| hash(&format!("--proof element {i}"), s))
        .collect()
}

/// The `proof` of an auditor route's answer: an array of hashes, nothing else.
fn answer_proof(what: &str, body: &[u8]) -> anyhow::Result<Vec<Hash>> {
    let v: serde_json::Value =
        serde_json::from_slice(body).with_context(|| format!("{what}: not JSON"))?;
    let items = v["proof"]
        .as_array()
        .with_context(|| format!("{what}: no proof array"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let s = h
                .as_str()
                .with_context(|| format!("{what}: proof element {i} is not a string"))?;
            hash(&format!("{what}: proof element {i}"), s)
        })
        .collect()
}

pub fn run(cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Export(a) => runtime()?.block_on(export(a))?,
        AuditCommand::SubjectReport(a) => runtime()?.block_on(super::report::run(a))?,
        AuditCommand::Verify(a) => verify(a)?,
        AuditCommand::Reconcile(a) => reconcile(a)?,
        AuditCommand::CheckReceipt(a) => check_receipt(a)?,
        AuditCommand::Receipt(a) => runtime()?.block_on(fetch_receipt(a))?,
        AuditCommand::CheckInclusion(a) => {
            let leaf = hash("--leaf-hash", &a.leaf_hash)?;
            let root = hash("--root", &a.root)?;
            let proof = proof(&a.proof)?;
            merkle::verify_inclusion(&leaf, a.index, a.size, &proof, &root)
                .context("inclusion proof refused")?;
            println!(
                "valid: leaf {} is in the tree of size {} with this root",
                a.index, a.size
            );
        }
        AuditCommand::CheckConsistency(a) => {
            let root1 = hash("--root1", &a.root1)?;
            let root2 = hash("--root2", &a.root2)?;
            let proof = proof(&a.proof)?;
            merkle::verify_consistency(a.size1, a.size2, &root1, &root2, &proof)
                .context("consistency proof refused")?;
            println!(
                "valid: the tree of size {} is a prefix of the tree of size {}",
                a.size1, a.size2
            );
        }
    }
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// `N entries [#####     ] 40%` on stderr, when it is a terminal.
struct Progress {
    what: &'static str,
    tty: bool,
}

impl Progress {
    fn new(what: &'static str) -> Self {
        use std::io::IsTerminal;
        Self {
            what,
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn show(&self, done: u64, total: u64) {
        if !self.tty || total < 10_000 {
            return;
        }
        const WIDTH: u64 = 30;
        let filled = (done * WIDTH)
            .checked_div(total)
            .unwrap_or(WIDTH)
            .min(WIDTH);
        eprint!(
            "\r{} [{}{}] {:>3}%  {done}/{total} entries",
            self.what,
            "#".repeat(filled as usize),
            " ".repeat((WIDTH - filled) as usize),
            (done * 100).checked_div(total).unwrap_or(100),
        );
        if done >= total {
            eprintln!();
        }
    }
}

/// The URL of `agency`'s node, from the manifest the configured node serves. The connection
/// to it is pinned to `agency` anyway, so a wrong URL cannot lead to an impostor.
async fn node_url(settings: &crate::query::ClientSettings, agency: &str) -> anyhow::Result<String> {
    manifest(settings)
        .await?
        .entry(agency)
        .map(|e| e.url.clone())
        .ok_or_else(|| anyhow::anyhow!("agency {agency} has no node in the manifest's directory"))
}

/// The manifest the configured node serves (its directory lists every node). Its signature
/// is not checked here: it only says where to connect, and every connection is pinned to the
/// agency it is meant for.
pub(super) async fn manifest(
    settings: &crate::query::ClientSettings,
) -> anyhow::Result<attesta_policy::Manifest> {
    let url = format!("{}/v1/manifest", settings.node);
    let reply = settings
        .client()?
        .get(&url)
        .await
        .with_context(|| format!("fetching {url}"))?;
    if !reply.status.is_success() {
        anyhow::bail!("{url}: {}", crate::query::refusal(&reply));
    }
    let token = String::from_utf8_lossy(&reply.body);
    let payload = attesta_certs::jws::payload_unverified(&token)
        .map_err(|e| anyhow::anyhow!("{url}: not a signed manifest ({e})"))?;
    attesta_policy::Manifest::from_json(&payload).with_context(|| format!("{url}: not a manifest"))
}

async fn export(a: ExportArgs) -> anyhow::Result<()> {
    use super::bundle::{Bundle, Header};
    let settings = crate::query::ClientSettings::load(&a.config)?;
    let agency =
        attesta_certs::AgencyId::new(&a.node).map_err(|e| anyhow::anyhow!("--node: {e}"))?;
    let base = match &a.url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => node_url(&settings, agency.as_str()).await?,
    };
    let conn = settings
        .client_for(&agency)?
        .connect_h2(&base)
        .await
        .with_context(|| format!("connecting to {agency} at {base}"))?;
    let get = |path: String| {
        let conn = conn.clone();
        let base = base.clone();
        async move {
            let reply = conn
                .send(http::Method::GET, &path, None)
                .await
                .with_context(|| format!("{base}{path}"))?;
            if !reply.status.is_success() {
                anyhow::bail!("{base}{path}: {}", crate::query::refusal(&reply));
            }
            anyhow::Ok(reply.body)
        }
    };
    let note = String::from_utf8(get("/v1/audit/checkpoint".into()).await?.to_vec())
        .context("the checkpoint is not text")?;
    let checkpoint = super::note::Note::parse(&note)
        .and_then(|n| super::note::Checkpoint::parse(&n.body))
        .map_err(|e| anyhow::anyhow!("{base}: bad checkpoint: {e}"))?;
    // The node's signing certificate, then those of the witnesses that cosigned.
    let pems = String::from_utf8(get("/v1/audit/certificates".into()).await?.to_vec())
        .context("the certificates are not text")?;
    let mut pems = pem_blocks(&pems).into_iter();
    let signer = pems
        .next()
        .ok_or_else(|| anyhow::anyhow!("{base}: no signing certificate"))?;
    let mut witnesses: Vec<String> = pems.collect();
    let cosignatures = super::note::Note::parse(&note).map_or(0, |n| n.signatures.len() - 1);
    if witnesses.len() < cosignatures {
        // Ask the witnesses' own nodes for the ones the node did not have.
        witnesses.extend(witness_certificates(&settings, &note, &agency).await);
    }

    let size = checkpoint.size;
    let since = match &a.since {
        None => None,
        Some(p) => {
            let file =
                std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
            let h = super::bundle::Bundle::read_header(std::io::BufReader::new(file))
                .with_context(|| format!("{}", p.display()))?;
            let then = super::note::Note::parse(&h.checkpoint)
                .and_then(|n| super::note::Checkpoint::parse(&n.body))
                .map_err(|e| anyhow::anyhow!("{}: bad checkpoint: {e}", p.display()))?;
            if then.origin != checkpoint.origin {
                anyhow::bail!(
                    "{} is a bundle of {}, not of {}",
                    p.display(),
                    then.origin,
                    checkpoint.origin
                );
            }
            if then.size > size {
                anyhow::bail!(
                    "{agency}'s checkpoint has {size} entries, fewer than the {} of {}: its log \
                     was truncated",
                    then.size,
                    p.display()
                );
            }
            if then.size == size {
                println!(
                    "nothing logged by {agency} since {} ({size} entries); nothing written",
                    p.display()
                );
                return Ok(());
            }
            Some(then.size)
        }
    };
    let (from, to) = (a.from.or(since).unwrap_or(0), a.to.unwrap_or(size));
    let ranged = a.from.is_some() || a.to.is_some() || since.is_some();
    if ranged && (from >= to || to > size) {
        anyhow::bail!(
            "--from {from} --to {to}: need from < to <= {size} (the size of {agency}'s checkpoint)"
        );
    }
    // A range: the subtrees left of it (from the first entry's inclusion proof) and the
    // consistency proof from its end to the checkpoint.
    let range = if !ranged {
        None
    } else {
        let left = if from == 0 {
            Vec::new()
        } else {
            let body = get(format!(
                "/v1/audit/proof/inclusion?index={from}&size={size}"
            ))
            .await?;
            let path = answer_proof(
                &format!("{base}: the inclusion proof of entry {from}"),
                &body,
            )?;
            merkle::left_subtrees(from, size, &path)
                .with_context(|| format!("{base}: the inclusion proof of entry {from}"))?
                .iter()
                .map(|h| STANDARD.encode(h))
                .collect()
        };
        let consistency = if to == size {
            Vec::new()
        } else {
            let body = get(format!("/v1/audit/proof/consistency?from={to}&to={size}")).await?;
            answer_proof(&format!("{base}: the consistency proof from {to}"), &body)?
                .iter()
                .map(|h| STANDARD.encode(h))
                .collect()
        };
        Some(super::bundle::Range {
            start: from,
            left,
            consistency,
        })
    };

    let progress = Progress::new("exporting");
    let mut entries = Vec::with_capacity((to - from).min(1 << 24) as usize);
    let mut start = from;
    while start < to {
        let end = to.min(start + crate::server::AUDIT_PAGE);
        let body = get(format!("/v1/audit/entries?start={start}&end={end}")).await?;
        let page: serde_json::Value = serde_json::from_slice(&body)?;
        for e in page["entries"].as_array().into_iter().flatten() {
            let leaf = e["leaf"].as_str().unwrap_or_default();
            entries.push(STANDARD.decode(leaf).context("an entry is not base64")?);
        }
        if entries.len() as u64 != end - from {
            anyhow::bail!("{base}: entries {start}..{end} came back incomplete");
        }
        start = end;
        progress.show(start - from, to - from);
    }
    let bundle = Bundle {
        header: Header {
            agency: agency.to_string(),
            origin: checkpoint.origin.clone(),
            exported_at: crate::manifest::now_rfc3339(),
            checkpoint: note,
            signer,
            witnesses,
            range,
        },
        leaves: entries.iter().map(|e| merkle::leaf_hash(e)).collect(),
        entries,
    };
    let mut bytes = Vec::new();
    bundle.write(&mut bytes)?;
    if let Some(parent) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    attesta_certs::fsutil::write_atomic(&a.out, &bytes, attesta_certs::fsutil::PUBLIC_MODE)
        .with_context(|| format!("writing {}", a.out.display()))?;
    let what = if from == 0 && to == size {
        format!("{size} entries")
    } else {
        format!("entries {from}..{to} of {size}")
    };
    println!(
        "exported {agency}: {what}, checkpoint root {}, to {}",
        STANDARD.encode(checkpoint.root),
        a.out.display()
    );
    Ok(())
}

/// The PEM certificates in `text`, each with its armour.
fn pem_blocks(text: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    text.split_inclusive(END)
        .filter_map(|block| {
            let start = block.find("-----BEGIN CERTIFICATE-----")?;
            block
                .ends_with(END)
                .then(|| format!("{}\n", &block[start..]))
        })
        .collect()
}

/// The signing certificates of the agencies that cosigned the checkpoint, fetched from their
/// nodes (best effort: a witness that cannot be reached is left out, and verify counts it
/// as missing).
async fn witness_certificates(
    settings: &crate::query::ClientSettings,
    note: &str,
    node: &attesta_certs::AgencyId,
) -> Vec<String> {
    let (Ok(parsed), Ok(manifest)) = (super::note::Note::parse(note), manifest(settings).await)
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for sig in parsed.signatures.iter().skip(1) {
        let Some(agency) = sig
            .name
            .strip_suffix("/witness")
            .and_then(|n| n.rsplit('/').next())
            .and_then(|a| attesta_certs::AgencyId::new(a).ok())
        else {
            continue;
        };
        if &agency == node {
            continue;
        }
        let Some(url) = manifest.entry(agency.as_str()).map(|e| &e.url) else {
            continue;
        };
        let Ok(client) = settings.client_for(&agency) else {
            continue;
        };
        if let Ok(r) = client.get(&format!("{url}/v1/audit/certificates")).await {
            if r.status.is_success() {
                out.push(String::from_utf8_lossy(&r.body).into_owned());
            }
        }
    }
    out
}

fn read_bundle(
    path: &std::path::Path,
    progress: &Progress,
) -> anyhow::Result<super::bundle::Bundle> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    super::bundle::Bundle::read(file, |d, t| progress.show(d, t))
        .with_context(|| format!("{}", path.display()))
}

fn verify(a: VerifyArgs) -> anyhow::Result<()> {
    let trust = a.trust.load()?;
    let progress = Progress::new("reading");
    let bundle = read_bundle(&a.bundle, &progress)?;
    let earlier = match &a.since {
        Some(p) => Some(read_bundle(p, &Progress::new("reading earlier"))?.header),
        None => None,
    };
    let checking = Progress::new("verifying");
    let v = super::bundle::verify(&bundle, &trust, a.witnesses, earlier.as_ref(), |d, t| {
        checking.show(d, t)
    })
    .map_err(|e| anyhow::anyhow!("{}: {e}", a.bundle.display()))?;
    let what = if v.entries == (0..v.checkpoint.size) {
        format!("{} entries", v.checkpoint.size)
    } else {
        format!(
            "entries {}..{} of {}",
            v.entries.start, v.entries.end, v.checkpoint.size
        )
    };
    println!(
        "valid: {} log, {what}, root {}, signed by {}{}",
        v.agency,
        STANDARD.encode(v.checkpoint.root),
        v.agency,
        if v.witnesses.is_empty() {
            String::new()
        } else {
            format!(", cosigned by {}", v.witnesses.join(", "))
        }
    );
    Ok(())
}

/// Reads and verifies a bundle (no witnesses required), decoding its entries.
fn verified_entries(
    path: &std::path::Path,
    trust: &attesta_certs::TrustStore,
) -> anyhow::Result<(String, u64, Vec<super::entry::Entry>)> {
    let bundle = read_bundle(path, &Progress::new("reading"))?;
    let checking = Progress::new("verifying");
    let v = super::bundle::verify(&bundle, trust, 0, None, |d, t| checking.show(d, t))
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    // `verify` decoded every entry already: these cannot fail.
    let entries = bundle
        .entries
        .iter()
        .map(|b| super::entry::Entry::decode(b))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((v.agency, v.entries.start, entries))
}

fn check_receipt(a: ReceiptArgs) -> anyhow::Result<()> {
    let trust = a.trust.load()?;
    let path = a.receipt.display();
    let text = std::fs::read_to_string(&a.receipt).with_context(|| format!("reading {path}"))?;
    println!(
        "{}",
        checked_receipt(&text, &trust, a.witnesses).map_err(|e| anyhow::anyhow!("{path}: {e}"))?
    );
    Ok(())
}

async fn fetch_receipt(a: FetchReceiptArgs) -> anyhow::Result<()> {
    let settings = crate::query::ClientSettings::load(&a.config)?;
    let (agency, base) = match &a.node {
        None => (settings.node_agency.clone(), settings.node.clone()),
        Some(n) => {
            let agency =
                attesta_certs::AgencyId::new(n).map_err(|e| anyhow::anyhow!("--node: {e}"))?;
            let url = node_url(&settings, agency.as_str()).await?;
            (agency, url)
        }
    };
    let url = format!("{base}/v1/audit/receipt?index={}", a.index);
    let client = settings.client_for(&agency)?;
    // A fresh entry is under a signed checkpoint within a second or two.
    let mut tries = 0;
    let reply = loop {
        let reply = client
            .get(&url)
            .await
            .with_context(|| format!("asking {url}"))?;
        tries += 1;
        let pending = reply.status == http::StatusCode::NOT_FOUND
            && String::from_utf8_lossy(&reply.body).contains("ask again in a moment");
        if !pending || tries == 5 {
            break reply;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    };
    if !reply.status.is_success() {
        anyhow::bail!("{url}: {}", crate::query::refusal(&reply));
    }
    let text = String::from_utf8(reply.body.to_vec()).context("the receipt is not text")?;
    let said = checked_receipt(&text, &settings.trust, a.witnesses)
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    attesta_certs::fsutil::write_atomic(
        &a.out,
        text.as_bytes(),
        attesta_certs::fsutil::PUBLIC_MODE,
    )
    .with_context(|| format!("writing {}", a.out.display()))?;
    println!("{said}\nsaved to {}", a.out.display());
    Ok(())
}

/// Verifies a receipt's text and says what it proves, in one line.
fn checked_receipt(
    text: &str,
    trust: &attesta_certs::TrustStore,
    witnesses: usize,
) -> anyhow::Result<String> {
    let receipt = super::receipt::Receipt::parse(text)?;
    let c = receipt.verify(trust, witnesses)?;
    let e = &c.entry;
    let direction = match e.direction {
        super::entry::Direction::Incoming => format!("request from {}", e.peer_agency),
        super::entry::Direction::Outgoing => format!("call to {}", e.peer_agency),
        super::entry::Direction::Change => format!("change by {}", e.peer_agency),
    };
    Ok(format!(
        "valid: {} logged entry {} (checkpoint of {} entries, signed by {}{}): {}, {direction}, {}, purpose {}, query {}, status {}",
        c.agency,
        receipt.index,
        c.checkpoint.size,
        c.agency,
        if c.witnesses.is_empty() {
            String::new()
        } else {
            format!(", cosigned by {}", c.witnesses.join(", "))
        },
        super::entry::format_ms(e.time_ms),
        e.route,
        e.purpose,
        super::entry::hex(&e.query_id),
        e.status,
    ))
}

fn reconcile(a: ReconcileArgs) -> anyhow::Result<()> {
    use super::reconcile::{reconcile, Log};
    let trust = a.trust.load()?;
    let (agency_a, start_a, entries_a) = verified_entries(&a.a, &trust)?;
    let (agency_b, start_b, entries_b) = verified_entries(&a.b, &trust)?;
    if agency_a == agency_b {
        anyhow::bail!(
            "{} and {} are both {agency_a}'s log: reconcile compares two nodes",
            a.a.display(),
            a.b.display()
        );
    }
    let report = reconcile(
        &Log {
            agency: &agency_a,
            start: start_a,
            entries: &entries_a,
        },
        &Log {
            agency: &agency_b,
            start: start_b,
            entries: &entries_b,
        },
    );
    println!(
        "{agency_a} -> {agency_b}: {} call(s) in both logs\n{agency_b} -> {agency_a}: {} call(s) in both logs",
        report.matched[0], report.matched[1]
    );
    if report.outside > 0 {
        println!(
            "{} entr(y/ies) outside the time the other bundle covers, not compared (export both over the same period to include them)",
            report.outside
        );
    }
    for d in &report.differences {
        println!("{} entry {}: {}", d.agency, d.index, d.what);
    }
    match report.differences.len() {
        0 => {
            println!("reconciled: no differences");
            Ok(())
        }
        n => anyhow::bail!("{n} difference(s) between the logs of {agency_a} and {agency_b}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pem_blocks_are_split_with_their_armour() {
        let one = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----";
        let two = "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----";
        let text = format!("{one}\n{two}\ntrailing\n");
        assert_eq!(
            super::pem_blocks(&text),
            [format!("{one}\n"), format!("{two}\n")]
        );
        assert!(super::pem_blocks("no certificate here").is_empty());
    }

    #[test]
    fn a_proof_is_exactly_the_hashes_given() {
        use base64::Engine;
        let b64 = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; 32]);
        let (a, b) = (b64(1), b64(2));
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(super::proof(&list(&[&a, &b])).unwrap(), [[1; 32], [2; 32]]);
        assert!(super::proof(&list(&[""])).unwrap().is_empty(), "--proof ''");
        assert!(super::proof(&[]).unwrap().is_empty());
        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 31]);
        let long = base64::engine::general_purpose::STANDARD.encode([1u8; 33]);
        let unpadded = a.trim_end_matches('=').to_owned();
        let spaced = format!(" {a}");
        for (bad, says) in [
            (list(&["", &a]), "element 0: empty"),
            (list(&[&a, ""]), "element 1: empty"),
            (list(&[&a, "", &b]), "element 1: empty"),
            (list(&[&a, &short]), "element 1"),
            (list(&[&long]), "element 0"),
            (list(&[&unpadded]), "element 0: not standard base64"),
            (list(&[&spaced]), "element 0: not standard base64"),
            (list(&["garbage"]), "element 0"),
        ] {
            let e = format!("{:#}", super::proof(&bad).unwrap_err());
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn a_proof_in_an_answer_is_an_array_of_hashes_and_nothing_else() {
        use base64::Engine;
        let a = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let ok = format!(r#"{{"proof":["{a}","{a}"]}}"#);
        assert_eq!(super::answer_proof("x", ok.as_bytes()).unwrap().len(), 2);
        for bad in [
            format!(r#"{{"proof":["{a}",1]}}"#),
            format!(r#"{{"proof":["{a}",""]}}"#),
            format!(r#"{{"proof":"{a}"}}"#),
            r#"{"nope":[]}"#.to_owned(),
            "not json".to_owned(),
        ] {
            assert!(super::answer_proof("x", bad.as_bytes()).is_err(), "{bad}");
        }
    }
}

//! `attesta audit ...`: the auditor's tools that talk to nodes (exporting a node's log as a
//! bundle, fetching a receipt, the citizen access report), plus the offline ones of
//! [`attesta_audit::cli`] (proofs by hand, verify, reconcile, check-receipt).

pub mod report;

use anyhow::Context;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use clap::{Args, Subcommand};

use attesta_audit::cli::{checked_receipt, hash, Progress};
use attesta_audit::merkle::{self, Hash};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    #[command(flatten)]
    Offline(attesta_audit::cli::Offline),
    /// Export a node's log, or a range of it, as a bundle (entries, signed checkpoint,
    /// certificates, and for a range the hashes that tie it to the checkpoint).
    Export(ExportArgs),
    /// Fetch one entry's receipt from a node (`GET /v1/audit/receipt`), check it against the
    /// CA of the client's config, and save it. The agency an entry names needs no grant.
    Receipt(FetchReceiptArgs),
    /// The citizen access report (GDPR art. 15): every node's log entries about one person,
    /// merged by time. Exit 0 iff every node answered.
    SubjectReport(report::SubjectReportArgs),
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

/// A proof's hashes, as an auditor route answers them: each exactly a hash.
fn proof_hashes(what: &str, items: &[String]) -> anyhow::Result<Vec<Hash>> {
    items
        .iter()
        .enumerate()
        .map(|(i, s)| hash(&format!("{what}: proof element {i}"), s))
        .collect()
}

/// An auditor route's answer of type `T`.
fn answer<T: serde::de::DeserializeOwned>(what: &str, body: &[u8]) -> anyhow::Result<T> {
    serde_json::from_slice(body).with_context(|| format!("{what}: not the expected answer"))
}

pub fn run(cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Offline(c) => attesta_audit::cli::run(c),
        AuditCommand::Export(a) => runtime()?.block_on(export(a)),
        AuditCommand::SubjectReport(a) => runtime()?.block_on(report::run(a)),
        AuditCommand::Receipt(a) => runtime()?.block_on(fetch_receipt(a)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

async fn export(a: ExportArgs) -> anyhow::Result<()> {
    use crate::audit::bundle::{Bundle, Header};
    let settings = crate::cli::query::ClientSettings::load(&a.config)?;
    let agency =
        attesta_certs::AgencyId::new(&a.node).map_err(|e| anyhow::anyhow!("--node: {e}"))?;
    let (node, base) = match &a.url {
        Some(u) => (agency.clone(), u.trim_end_matches('/').to_owned()),
        None => settings.endpoint(agency.as_str()).await?,
    };
    let conn = settings
        .client_for(&node)?
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
                anyhow::bail!("{base}{path}: {}", crate::cli::query::refusal(&reply));
            }
            anyhow::Ok(reply.body)
        }
    };
    let note = String::from_utf8(
        get(crate::wire::path::AUDIT_CHECKPOINT.into())
            .await?
            .to_vec(),
    )
    .context("the checkpoint is not text")?;
    let checkpoint = crate::audit::note::Note::parse(&note)
        .and_then(|n| crate::audit::note::Checkpoint::parse(&n.body))
        .map_err(|e| anyhow::anyhow!("{base}: bad checkpoint: {e}"))?;
    // The node's signing certificate, then those of the witnesses that cosigned.
    let pems = String::from_utf8(
        get(crate::wire::path::AUDIT_CERTIFICATES.into())
            .await?
            .to_vec(),
    )
    .context("the certificates are not text")?;
    let mut pems = pem_blocks(&pems).into_iter();
    let signer = pems
        .next()
        .ok_or_else(|| anyhow::anyhow!("{base}: no signing certificate"))?;
    let mut witnesses: Vec<String> = pems.collect();
    let cosignatures = crate::audit::note::Note::parse(&note).map_or(0, |n| n.signatures.len() - 1);
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
            let h = crate::audit::bundle::Bundle::read_header(std::io::BufReader::new(file))
                .with_context(|| format!("{}", p.display()))?;
            let then = crate::audit::note::Note::parse(&h.checkpoint)
                .and_then(|n| crate::audit::note::Checkpoint::parse(&n.body))
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
                "{}?index={from}&size={size}",
                crate::wire::path::AUDIT_INCLUSION
            ))
            .await?;
            let what = format!("{base}: the inclusion proof of entry {from}");
            let proof: crate::wire::InclusionProof = answer(&what, &body)?;
            let path = proof_hashes(&what, &proof.proof)?;
            merkle::left_subtrees(from, size, &path)
                .with_context(|| format!("{base}: the inclusion proof of entry {from}"))?
                .iter()
                .map(|h| STANDARD.encode(h))
                .collect()
        };
        let consistency = if to == size {
            Vec::new()
        } else {
            let body = get(format!(
                "{}?from={to}&to={size}",
                crate::wire::path::AUDIT_CONSISTENCY
            ))
            .await?;
            let what = format!("{base}: the consistency proof from {to}");
            let proof: crate::wire::ConsistencyProof = answer(&what, &body)?;
            proof_hashes(&what, &proof.proof)?
                .iter()
                .map(|h| STANDARD.encode(h))
                .collect()
        };
        Some(crate::audit::bundle::Range {
            start: from,
            left,
            consistency,
        })
    };

    let progress = Progress::new("exporting");
    let mut entries = Vec::with_capacity((to - from).min(1 << 24) as usize);
    let mut start = from;
    while start < to {
        let end = to.min(start + crate::wire::AUDIT_PAGE);
        let body = get(format!(
            "{}?start={start}&end={end}",
            crate::wire::path::AUDIT_ENTRIES
        ))
        .await?;
        let page: crate::wire::EntriesPage<crate::wire::PageEntry> =
            answer(&format!("{base}: entries {start}..{end}"), &body)?;
        for e in page.entries {
            entries.push(STANDARD.decode(e.leaf).context("an entry is not base64")?);
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
    settings: &crate::cli::query::ClientSettings,
    note: &str,
    node: &attesta_certs::AgencyId,
) -> Vec<String> {
    let (Ok(parsed), Ok(manifest)) = (
        crate::audit::note::Note::parse(note),
        settings.directory().await,
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for sig in parsed.signatures.iter().skip(1) {
        let Some(agency) =
            attesta_audit::names::witness_agency(settings.trust.trust_domain.as_str(), &sig.name)
        else {
            continue;
        };
        if &agency == node {
            continue;
        }
        let Some(url) = manifest.entry(agency.as_str()).and_then(|e| e.url.as_ref()) else {
            continue;
        };
        let Ok(client) = settings.client_for(&agency) else {
            continue;
        };
        if let Ok(r) = client
            .get(&format!("{url}{}", crate::wire::path::AUDIT_CERTIFICATES))
            .await
        {
            if r.status.is_success() {
                out.push(String::from_utf8_lossy(&r.body).into_owned());
            }
        }
    }
    out
}

async fn fetch_receipt(a: FetchReceiptArgs) -> anyhow::Result<()> {
    let settings = crate::cli::query::ClientSettings::load(&a.config)?;
    let (agency, base) = match &a.node {
        None => (settings.node_agency.clone(), settings.node.clone()),
        Some(n) => {
            let agency =
                attesta_certs::AgencyId::new(n).map_err(|e| anyhow::anyhow!("--node: {e}"))?;
            settings.endpoint(agency.as_str()).await?
        }
    };
    let url = format!(
        "{base}{}?index={}",
        crate::wire::path::AUDIT_RECEIPT,
        a.index
    );
    let client = settings.client_for(&agency)?;
    // A fresh entry is under a signed checkpoint within a second or two.
    let mut tries = 0;
    let reply = loop {
        let reply = client
            .get(&url)
            .await
            .with_context(|| format!("asking {url}"))?;
        tries += 1;
        let pending = reply
            .problem()
            .is_some_and(|p| p.is(crate::problem::ProblemKind::NotCheckpointed));
        if !pending || tries == 5 {
            break reply;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    };
    if !reply.status.is_success() {
        anyhow::bail!("{url}: {}", crate::cli::query::refusal(&reply));
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
    fn a_proof_in_an_answer_is_an_array_of_hashes_and_nothing_else() {
        use base64::Engine;
        let a = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let answer = |proof: &str| {
            format!(r#"{{"index":1,"size":4,"leaf_hash":"{a}","root":"{a}","proof":{proof}}}"#)
        };
        let read = |body: &str| -> anyhow::Result<Vec<super::Hash>> {
            let p: crate::wire::InclusionProof = super::answer("x", body.as_bytes())?;
            super::proof_hashes("x", &p.proof)
        };
        assert_eq!(
            read(&answer(&format!(r#"["{a}","{a}"]"#))).unwrap().len(),
            2
        );
        for bad in [
            answer(&format!(r#"["{a}",1]"#)),
            answer(&format!(r#"["{a}",""]"#)),
            answer(&format!(r#""{a}""#)),
            r#"{"nope":[]}"#.to_owned(),
            answer("[]").replace(r#""index":1,"#, r#""index":1,"extra":0,"#),
            "not json".to_owned(),
        ] {
            assert!(read(&bad).is_err(), "{bad}");
        }
    }
}

//! The auditor's offline commands, for `attesta-audit` and `attesta audit`: check a proof by
//! hand, verify a bundle, a receipt or an attestation against the federation CA, reconcile two
//! nodes' bundles. Nothing here touches the network: every input is a file or an argument.

use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use clap::{Args, Subcommand};

use crate::merkle::{self, Hash};

/// The offline commands. `attesta audit` flattens them into its own list.
#[derive(Debug, Subcommand)]
pub enum Offline {
    /// Check an inclusion proof (RFC 9162 §2.1.3.2). Exit 0 iff it verifies.
    CheckInclusion(InclusionArgs),
    /// Check a consistency proof (RFC 9162 §2.1.4.2). Exit 0 iff it verifies.
    CheckConsistency(ConsistencyArgs),
    /// Verify a bundle offline against the federation CA. Exit 0 iff it verifies.
    Verify(VerifyArgs),
    /// Compare the calls between two nodes in their bundles (both verified first). Exit 0 iff
    /// every call one logged is in the other's log, both ways.
    Reconcile(ReconcileArgs),
    /// Check a receipt (`GET /v1/audit/receipt`: C2SP tlog-proof) offline against the CA.
    /// Exit 0 iff the node's signed tree holds the entry.
    CheckReceipt(ReceiptArgs),
    /// Verify a signed attestation offline and print its payload.
    VerifyAttestation(AttestationArgs),
}

/// Runs one offline command.
pub fn run(cmd: Offline) -> anyhow::Result<()> {
    match cmd {
        Offline::Verify(a) => verify(a),
        Offline::Reconcile(a) => reconcile(a),
        Offline::CheckReceipt(a) => check_receipt(a),
        Offline::VerifyAttestation(a) => verify_attestation(&a),
        Offline::CheckInclusion(a) => {
            let leaf = hash("--leaf-hash", &a.leaf_hash)?;
            let root = hash("--root", &a.root)?;
            let proof = proof(&a.proof)?;
            merkle::verify_inclusion(&leaf, a.index, a.size, &proof, &root)
                .context("inclusion proof refused")?;
            println!(
                "valid: leaf {} is in the tree of size {} with this root",
                a.index, a.size
            );
            Ok(())
        }
        Offline::CheckConsistency(a) => {
            let root1 = hash("--root1", &a.root1)?;
            let root2 = hash("--root2", &a.root2)?;
            let proof = proof(&a.proof)?;
            merkle::verify_consistency(a.size1, a.size2, &root1, &root2, &proof)
                .context("consistency proof refused")?;
            println!(
                "valid: the tree of size {} is a prefix of the tree of size {}",
                a.size1, a.size2
            );
            Ok(())
        }
    }
}

/// What offline checks trust: the federation's CA, and its CRL.
#[derive(Debug, Args)]
pub struct TrustArgs {
    /// The federation CA certificate.
    #[arg(long)]
    ca: PathBuf,
    /// The CRL, to refuse revoked signing certificates.
    #[arg(long)]
    crl: Option<PathBuf>,
}

impl TrustArgs {
    /// The trust store these files make (the trust domain is read from the CA).
    pub fn load(&self) -> anyhow::Result<attesta_certs::TrustStore> {
        let td = attesta_certs::trust::ca_trust_domain(&self.ca)?;
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
    receipt: PathBuf,
    #[command(flatten)]
    trust: TrustArgs,
    /// How many distinct witnesses must have cosigned the checkpoint.
    #[arg(long, default_value_t = 0)]
    witnesses: usize,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// One node's bundle.
    a: PathBuf,
    /// Another node's bundle.
    b: PathBuf,
    /// Both bundles are verified against the CA first.
    #[command(flatten)]
    trust: TrustArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle file.
    bundle: PathBuf,
    #[command(flatten)]
    trust: TrustArgs,
    /// How many distinct witnesses must have cosigned the checkpoint.
    #[arg(long, default_value_t = 0)]
    witnesses: usize,
    /// An earlier bundle of the same node: its checkpoint must be a prefix of this log.
    #[arg(long)]
    since: Option<PathBuf>,
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

#[derive(Debug, Args)]
pub struct AttestationArgs {
    /// The federation CA certificate.
    #[arg(long)]
    ca: PathBuf,
    /// A CRL of the federation CA: an attestation signed with a revoked key is refused.
    #[arg(long)]
    crl: Option<PathBuf>,
    /// The attestation (compact JWS), or `-` for standard input.
    file: PathBuf,
}

/// One hash: exactly 32 bytes in canonical standard base64 (44 characters, padded), nothing
/// around it.
pub fn hash(what: &str, b64: &str) -> anyhow::Result<Hash> {
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

/// `N entries [#####     ] 40%` on stderr, when it is a terminal.
#[derive(Debug)]
pub struct Progress {
    what: &'static str,
    tty: bool,
}

impl Progress {
    pub fn new(what: &'static str) -> Self {
        use std::io::IsTerminal;
        Self {
            what,
            tty: std::io::stderr().is_terminal(),
        }
    }

    pub fn show(&self, done: u64, total: u64) {
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

pub fn read_bundle(path: &Path, progress: &Progress) -> anyhow::Result<crate::bundle::Bundle> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    crate::bundle::Bundle::read(file, |d, t| progress.show(d, t))
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
    let v = crate::bundle::verify(&bundle, &trust, a.witnesses, earlier.as_ref(), |d, t| {
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
    path: &Path,
    trust: &attesta_certs::TrustStore,
) -> anyhow::Result<(String, u64, Vec<crate::entry::Entry>)> {
    let bundle = read_bundle(path, &Progress::new("reading"))?;
    let checking = Progress::new("verifying");
    let v = crate::bundle::verify(&bundle, trust, 0, None, |d, t| checking.show(d, t))
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    // `verify` decoded every entry already: these cannot fail.
    let entries = bundle
        .entries
        .iter()
        .map(|b| crate::entry::Entry::decode(b))
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

/// Verifies a receipt's text and says what it proves, in one line.
pub fn checked_receipt(
    text: &str,
    trust: &attesta_certs::TrustStore,
    witnesses: usize,
) -> anyhow::Result<String> {
    let receipt = crate::receipt::Receipt::parse(text)?;
    let c = receipt.verify(trust, witnesses)?;
    let e = &c.entry;
    let direction = match e.direction {
        crate::entry::Direction::Incoming => format!("request from {}", e.peer_agency),
        crate::entry::Direction::Outgoing => format!("call to {}", e.peer_agency),
        crate::entry::Direction::Change => format!("change by {}", e.peer_agency),
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
        crate::entry::format_ms(e.time_ms),
        e.route,
        e.purpose,
        hex::encode(e.query_id),
        e.status,
    ))
}

fn reconcile(a: ReconcileArgs) -> anyhow::Result<()> {
    use crate::reconcile::{reconcile, Log};
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

/// `verify-attestation`: the attestation in a file (or on standard input) against the CA.
pub fn verify_attestation(args: &AttestationArgs) -> anyhow::Result<()> {
    use std::io::Read;
    let name = args.file.display().to_string();
    let token = if name == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading standard input")?;
        s
    } else {
        std::fs::read_to_string(&args.file).with_context(|| format!("reading {name}"))?
    };
    let td = attesta_certs::trust::ca_trust_domain(&args.ca)?;
    let trust = attesta_certs::TrustStore::load(td, &args.ca, args.crl.as_deref())?;
    let v = crate::attestation::verify(&trust, &token)
        .with_context(|| format!("{name}: attestation refused"))?;
    eprintln!(
        "valid attestation signed by {} (sign certificate sha256 {})",
        v.signer.agency(),
        v.signer.fingerprint_hex()
    );
    println!("{}", serde_json::to_string_pretty(&v.payload)?);
    Ok(())
}

#[cfg(test)]
mod tests {
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
}

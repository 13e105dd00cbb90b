//! `attesta audit ...`: the auditor's tools. So far: checking single proofs by hand.

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

fn hash(what: &str, b64: &str) -> anyhow::Result<Hash> {
    let bytes = STANDARD
        .decode(b64.trim())
        .with_context(|| format!("{what}: not standard base64"))?;
    merkle::hash_from_slice(&bytes).with_context(|| what.to_owned())
}

fn proof(items: &[String]) -> anyhow::Result<Vec<Hash>> {
    items
        .iter()
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, s)| hash(&format!("proof[{i}]"), s))
        .collect()
}

pub fn run(cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
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

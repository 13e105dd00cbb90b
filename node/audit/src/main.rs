//! `attesta-audit`: the auditor's offline tools, without the node (no RocksDB to build).
//! The same commands are `attesta audit …` and `attesta verify-attestation` in the node's
//! binary.

use clap::Parser;

/// Verify attesta audit bundles, receipts, proofs and attestations offline, against the
/// federation CA.
#[derive(Debug, Parser)]
#[command(name = "attesta-audit", version)]
struct Cli {
    #[command(subcommand)]
    command: attesta_audit::cli::Offline,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match attesta_audit::cli::run(cli.command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("attesta-audit: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

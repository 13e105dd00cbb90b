//! The `attesta` command line. Argument parsing and glue only: every command calls into the
//! library. Errors are printed on one line, naming the file or key at fault.

pub mod audit;
pub mod bench;
pub mod demo;
pub mod generate;
pub mod logs;
pub mod operator;
pub mod policy;
pub mod query;
pub mod tenant;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use attesta_certs::{AgencyId, Ca, TrustDomain};
use clap::{Args, Parser, Subcommand};

use crate::config::Settings;
use crate::server::Node;

#[derive(Debug, Parser)]
#[command(
    name = "attesta",
    version,
    about = "Federated residence and legal-presence checks between public agencies"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The federation CA: create it, issue and revoke agency certificates.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Run a node.
    #[command(subcommand)]
    Node(NodeCommand),
    /// A whole demo federation on this machine.
    #[command(subcommand)]
    Demo(DemoCommand),
    /// Import a CSV file of residents or permits into a running node (as its operator).
    Import(ImportArgs),
    /// The agencies a service centre's node hosts: add, list, remove (the host's operator).
    #[command(subcommand)]
    Tenant(crate::cli::tenant::TenantCommand),
    /// Who among the agency's staff may do what at the node's console (operators.toml).
    #[command(subcommand)]
    Operator(crate::cli::operator::OperatorCommand),
    /// Write synthetic residents.csv, permits.csv and samples.json for the province.
    Generate(crate::cli::generate::GenerateArgs),
    /// Verify a signed attestation offline and print its payload.
    VerifyAttestation(attesta_audit::cli::AttestationArgs),
    /// The access policy: show, grant, revoke, explain, diff, publish (the Prefettura).
    #[command(subcommand)]
    Policy(crate::cli::policy::PolicyCommand),
    /// Ask the federation, as a clerk (client.toml).
    #[command(subcommand)]
    Query(crate::cli::query::QueryCommand),
    /// Load a node's status, residence or whoami route and report throughput and latency.
    Bench(crate::cli::bench::BenchArgs),
    /// The auditor's tools: check Merkle proofs by hand.
    #[command(subcommand)]
    Audit(crate::cli::audit::AuditCommand),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// What the file holds.
    #[arg(value_enum)]
    dataset: ImportDataset,
    /// The node's node.toml: the import connects to it with the node's own certificate.
    #[arg(long)]
    config: PathBuf,
    /// The CSV file (columns in docs/DATA_FORMATS.md).
    file: PathBuf,
    /// snapshot replaces the dataset; delta upserts and deletes (first column `op`).
    #[arg(long, default_value = "snapshot")]
    mode: String,
    /// The date the data describes (YYYY-MM-DD), returned with every answer as data_as_of.
    #[arg(long)]
    as_of: Option<String>,
    /// Import the valid rows and report the invalid ones (default: any invalid row stops it).
    #[arg(long)]
    skip_invalid: bool,
    /// On a host: import into this tenant's data, as the tenant (with its certificate, kept
    /// in the host's tenant directory).
    #[arg(long)]
    tenant: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ImportDataset {
    Residents,
    Permits,
}

#[derive(Debug, Subcommand)]
enum CaCommand {
    /// Create a new federation CA in DIR.
    Init {
        /// Directory for ca.crt, ca.key (0600), crl.pem and index.json.
        #[arg(long)]
        dir: PathBuf,
        /// The federation's SPIFFE trust domain, e.g. pu.attesta.it.
        #[arg(long)]
        trust_domain: String,
    },
    /// Issue an agency's auth (TLS) and sign (Ed25519) certificates into OUT.
    Issue {
        #[arg(long)]
        dir: PathBuf,
        /// Agency id: 1-63 characters of a-z, 0-9 and '-'.
        #[arg(long)]
        agency: String,
        /// Output directory for auth.crt, auth.key, sign.crt, sign.key.
        #[arg(long)]
        out: PathBuf,
        /// DNS name of the agency's node (repeatable). Default: localhost.
        #[arg(long = "dns")]
        dns: Vec<String>,
        /// IP address of the agency's node (repeatable). Default: 127.0.0.1.
        #[arg(long = "ip")]
        ips: Vec<IpAddr>,
        /// Validity in days.
        #[arg(long, default_value_t = attesta_certs::ca::DEFAULT_LEAF_DAYS)]
        days: u32,
    },
    /// Issue a member of an agency's staff a personal operator certificate for its console:
    /// NAME.crt, NAME.key (0600) and NAME.p12 (0600, for the browser) in OUT.
    IssueOperator {
        #[arg(long)]
        dir: PathBuf,
        /// The agency the operator works for.
        #[arg(long)]
        agency: String,
        /// The operator's name: 1-64 characters of a-z, 0-9, '.', '-', '_' (e.g. mario.rossi).
        #[arg(long)]
        operator: String,
        #[arg(long)]
        out: PathBuf,
        /// The PKCS#12 file's password, from the first line of this file; default: a new
        /// random one, printed once.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Validity in days.
        #[arg(long, default_value_t = attesta_certs::ca::DEFAULT_LEAF_DAYS)]
        days: u32,
    },
    /// Revoke every certificate of an agency (its operators' too), or of one of its
    /// operators, and write a new CRL.
    Revoke {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        agency: String,
        /// Only this operator's certificates.
        #[arg(long)]
        operator: Option<String>,
    },
    /// Write a fresh CRL (new number and next update), e.g. from a daily timer.
    Crl {
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum NodeCommand {
    /// Serve until SIGTERM or Ctrl-C, then drain in-flight requests and exit 0.
    Run {
        /// Path of node.toml.
        #[arg(long)]
        config: PathBuf,
    },
    /// With the node stopped: forget what it cosigned of a peer's log, so that it cosigns that
    /// log again from scratch (after the peer lost its log and its new history was accepted).
    /// The reset is logged in this node's audit log first.
    ForgetWitnessed {
        /// Path of node.toml.
        #[arg(long)]
        config: PathBuf,
        /// The agency whose log to forget.
        #[arg(long)]
        log: String,
    },
}

#[derive(Debug, Subcommand)]
enum DemoCommand {
    /// Create (or reuse) a demo federation in DIR and run all its nodes until Ctrl-C.
    Up(crate::cli::demo::DemoArgs),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Demo(DemoCommand::Up(args)) = &cli.command {
        let logs = args.dir.join("logs");
        if let Err(e) = logs::init(&logs) {
            eprintln!("attesta: {}: {e}", logs.display());
            return ExitCode::FAILURE;
        }
    } else {
        init_tracing();
    }
    attesta_certs::tls::install_default_provider();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` prints the whole context chain on one line.
            eprintln!("attesta: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Policy(cmd) = cli.command {
        return runtime()?.block_on(crate::cli::policy::run(cmd));
    }
    if let Command::Query(cmd) = cli.command {
        return runtime()?.block_on(crate::cli::query::run(cmd));
    }
    run_command(cli.command).map(|()| ExitCode::SUCCESS)
}

fn run_command(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Ca(cmd) => ca(cmd),
        Command::Node(NodeCommand::Run { config }) => {
            let settings = Settings::load(&config)?;
            runtime()?.block_on(async {
                let mut node = Node::new(settings).context("starting the node")?;
                let listener = node.bind().await?;
                node.run(listener, crate::server::shutdown_signal()).await;
                anyhow::Ok(())
            })
        }
        Command::Node(NodeCommand::ForgetWitnessed { config, log }) => {
            let settings = Settings::load(&config)?;
            let agency = attesta_certs::AgencyId::new(&log)
                .map_err(|e| anyhow::anyhow!("--log {log}: {e}"))?;
            let f = runtime()?.block_on(crate::audit::witnessed::forget(&settings, &agency))?;
            println!(
                "forgot {} at size {} (root {}); logged as entry {} of {}'s log",
                f.origin, f.size, f.root, f.entry, settings.agency
            );
            Ok(())
        }
        Command::Demo(DemoCommand::Up(args)) => runtime()?.block_on(crate::cli::demo::up(args)),
        Command::Import(args) => runtime()?.block_on(import(args)),
        Command::Tenant(cmd) => crate::cli::tenant::run(cmd),
        Command::Operator(cmd) => crate::cli::operator::run(cmd),
        Command::Generate(args) => crate::cli::generate::run(&args),
        Command::Bench(args) => runtime()?.block_on(crate::cli::bench::run(args)),
        Command::Audit(cmd) => crate::cli::audit::run(cmd),
        Command::VerifyAttestation(args) => attesta_audit::cli::verify_attestation(&args),
        Command::Policy(_) | Command::Query(_) => unreachable!("handled by run"),
    }
}

async fn import(args: ImportArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let settings = Settings::load(&args.config)?;
    let dataset = match args.dataset {
        ImportDataset::Residents => "residents",
        ImportDataset::Permits => "permits",
    };
    let body =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let mut query = format!("mode={}", args.mode);
    if let Some(d) = &args.as_of {
        query.push_str(&format!("&as_of={d}"));
    }
    if args.skip_invalid {
        query.push_str("&skip_invalid=true");
    }
    let (prefix, client) = match &args.tenant {
        None => (String::new(), settings.own_client()?),
        Some(t) => {
            let tenant = AgencyId::new(t).context("--tenant")?;
            let client = crate::cli::tenant::client_as(&settings, &tenant)?;
            (attesta_policy::tenant_prefix(tenant.as_str()), client)
        }
    };
    let url = format!(
        "{}{prefix}{}?{query}",
        settings.local_url(),
        match args.dataset {
            ImportDataset::Residents => crate::wire::path::IMPORT_RESIDENTS,
            ImportDataset::Permits => crate::wire::path::IMPORT_PERMITS,
        }
    );
    let reply = if std::io::stderr().is_terminal() {
        let name = args.file.display().to_string();
        let reply = client
            .post_with_progress(&url, "text/csv", body.into(), move |sent, total| {
                eprint!("\r{}", progress_bar(&name, sent, total));
            })
            .await?;
        eprintln!();
        reply
    } else {
        client.post(&url, "text/csv", body.into()).await?
    };
    if reply.status.is_success() {
        let done: crate::wire::ImportSummary = reply
            .json()
            .with_context(|| format!("{url}: not an import summary"))?;
        println!(
            "imported {dataset} ({}): {} rows read, {} applied, {} rejected in {} ms; the dataset has {} rows{}",
            done.mode,
            done.rows_read,
            done.applied,
            done.rejected,
            done.millis,
            done.dataset_rows,
            done.as_of.map(|d| format!(", as of {d}")).unwrap_or_default(),
        );
        print_row_errors(&done.errors);
        Ok(())
    } else {
        let problem = reply.problem();
        // A refused import lists its first bad rows in the problem's `errors` extension.
        let rows: Vec<crate::wire::RowError> = problem
            .as_ref()
            .and_then(|p| p.extensions.get("errors"))
            .and_then(|e| serde_json::from_value(e.clone()).ok())
            .unwrap_or_default();
        print_row_errors(&rows);
        anyhow::bail!(
            "{}: import refused ({}): {}",
            args.file.display(),
            reply.status,
            problem
                .map(|p| p.detail.unwrap_or(p.title))
                .unwrap_or_else(|| "no details".into())
        )
    }
}

/// `uploading FILE [########            ]  40%  41/103 MB`
fn progress_bar(name: &str, sent: u64, total: u64) -> String {
    const WIDTH: u64 = 30;
    let filled = (sent * WIDTH)
        .checked_div(total)
        .unwrap_or(WIDTH)
        .min(WIDTH);
    let percent = (sent * 100).checked_div(total).unwrap_or(100);
    format!(
        "uploading {name} [{}{}] {percent:>3}%  {}/{} MB{}",
        "#".repeat(filled as usize),
        " ".repeat((WIDTH - filled) as usize),
        sent >> 20,
        total >> 20,
        if sent >= total {
            "; validating and writing"
        } else {
            ""
        }
    )
}

fn print_row_errors(rows: &[crate::wire::RowError]) {
    for e in rows {
        eprintln!("line {}: {}", e.line, e.reason);
    }
}

/// A new PKCS#12 password: 20 random characters of an alphabet without look-alikes, in
/// groups of five (about 100 bits).
pub fn operator_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 20];
    attesta_certs::random_bytes(&mut bytes);
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    chars
        .chunks(5)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

fn ca(cmd: CaCommand) -> anyhow::Result<()> {
    match cmd {
        CaCommand::Init { dir, trust_domain } => {
            let td = TrustDomain::new(&trust_domain).context("--trust-domain")?;
            Ca::init(&dir, td)?;
            println!("created federation CA in {}", dir.display());
        }
        CaCommand::Issue {
            dir,
            agency,
            out,
            mut dns,
            mut ips,
            days,
        } => {
            let agency = AgencyId::new(&agency).context("--agency")?;
            if days == 0 {
                anyhow::bail!("--days: must be at least 1");
            }
            if dns.is_empty() && ips.is_empty() {
                dns.push("localhost".into());
                ips.push(IpAddr::from([127, 0, 0, 1]));
            }
            let mut ca = Ca::open(&dir)?;
            let files = ca.issue_agency(&agency, dns, ips, days, &out)?;
            println!(
                "issued {agency}: {}, {}",
                files.auth_cert.display(),
                files.sign_cert.display()
            );
        }
        CaCommand::IssueOperator {
            dir,
            agency,
            operator,
            out,
            password_file,
            days,
        } => {
            let agency = AgencyId::new(&agency).context("--agency")?;
            let operator = attesta_certs::OperatorName::new(&operator).context("--operator")?;
            if days == 0 {
                anyhow::bail!("--days: must be at least 1");
            }
            let (password, generated) = match &password_file {
                Some(f) => {
                    let text = std::fs::read_to_string(f)
                        .with_context(|| format!("--password-file {}", f.display()))?;
                    let line = text.lines().next().unwrap_or_default().to_owned();
                    if line.len() < 8 {
                        anyhow::bail!(
                            "--password-file {}: the password must have at least 8 characters",
                            f.display()
                        );
                    }
                    (line, false)
                }
                None => (operator_password(), true),
            };
            let mut ca = Ca::open(&dir)?;
            let files = ca.issue_operator(&agency, &operator, days, &password, &out)?;
            println!(
                "issued operator {operator} of {agency}: {} (for the browser), {}, {}",
                files.p12.display(),
                files.cert.display(),
                files.key.display()
            );
            if generated {
                println!("PKCS#12 password (shown once): {password}");
            }
        }
        CaCommand::Revoke {
            dir,
            agency,
            operator: Some(operator),
        } => {
            let agency = AgencyId::new(&agency).context("--agency")?;
            let operator = attesta_certs::OperatorName::new(&operator).context("--operator")?;
            let mut ca = Ca::open(&dir)?;
            let serials = ca.revoke_operator(&agency, &operator)?;
            println!(
                "revoked {} certificate(s) of operator {operator} of {agency}; wrote {}",
                serials.len(),
                dir.join(attesta_certs::ca::CRL).display()
            );
        }
        CaCommand::Revoke {
            dir,
            agency,
            operator: None,
        } => {
            let agency = AgencyId::new(&agency).context("--agency")?;
            let mut ca = Ca::open(&dir)?;
            let serials = ca.revoke_agency(&agency)?;
            println!(
                "revoked {} certificate(s) of {agency}; wrote {}",
                serials.len(),
                dir.join(attesta_certs::ca::CRL).display()
            );
        }
        CaCommand::Crl { dir } => {
            let mut ca = Ca::open(&dir)?;
            ca.write_crl()?;
            println!("wrote {}", dir.join(attesta_certs::ca::CRL).display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::progress_bar;

    #[test]
    fn the_progress_bar_shows_share_and_megabytes() {
        let half = progress_bar("r.csv", 50 << 20, 100 << 20);
        assert!(
            half.starts_with("uploading r.csv [###############               ]  50%  50/100 MB"),
            "{half}"
        );
        let done = progress_bar("r.csv", 100 << 20, 100 << 20);
        assert!(
            done.contains("100%") && done.ends_with("validating and writing"),
            "{done}"
        );
        // An empty file is done at once, not a division by zero.
        assert!(progress_bar("e.csv", 0, 0).contains("100%"));
    }
}

//! `attesta tenant add|list|remove --config host.toml`: the service centre's operator manages
//! the agencies its node hosts, on the host's machine, while the node runs.
//!
//! `add` writes the tenant's directory under the node's `data_dir` (certificates issued by the
//! CA directory given with `--ca`, or copied from `--from`), then asks the running node to
//! load it (`POST /v1/admin/tenants/{agency}`); `remove` asks the node to write the tenant's log
//! out and delete it (`DELETE`). Both calls are entries of the host's own log.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use attesta_certs::{AgencyFiles, AgencyId, Ca};
use clap::{Args, Subcommand};

use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Install an agency's certificates on the host and start serving it, without a restart.
    Add(AddArgs),
    /// The agencies the host serves: datasets, logs, and whether the manifest gives them to it.
    List {
        /// The host's node.toml.
        #[arg(long)]
        config: PathBuf,
    },
    /// Write the agency's whole log out as a bundle on the host, then delete its data.
    Remove {
        #[arg(long)]
        config: PathBuf,
        /// The tenant to remove.
        #[arg(long)]
        agency: String,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The host's node.toml.
    #[arg(long)]
    config: PathBuf,
    /// The agency to host (it must be listed as `hosted_by` this node in the manifest).
    #[arg(long)]
    agency: String,
    /// What it answers: residence, legal-presence (repeat for both), or none (it only asks).
    #[arg(long = "serves", default_value = "residence")]
    serves: Vec<String>,
    /// Issue its certificates from this CA directory (the Provincia's).
    #[arg(long, conflicts_with = "from")]
    ca: Option<PathBuf>,
    /// Or copy them from this directory (auth.crt, auth.key, sign.crt, sign.key).
    #[arg(long)]
    from: Option<PathBuf>,
    /// Validity of certificates issued with --ca, in days.
    #[arg(long, default_value_t = 825)]
    days: u32,
    /// Days the comune's log entries are kept (0: forever); default: the host's
    /// `[audit] retention_days`.
    #[arg(long)]
    retention_days: Option<u32>,
}

pub fn run(cmd: TenantCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cmd {
        TenantCommand::Add(a) => rt.block_on(add(a)),
        TenantCommand::List { config } => rt.block_on(list(&config)),
        TenantCommand::Remove { config, agency } => rt.block_on(remove(&config, &agency)),
    }
}

/// `--serves` values: `residence`, `legal-presence`, or `none` alone (an agency that only
/// asks, such as a union of comuni's social services).
pub fn parse_services(serves: &[String]) -> anyhow::Result<Vec<attesta_policy::Service>> {
    if serves.iter().any(|s| s == "none") {
        anyhow::ensure!(
            serves.len() == 1,
            "--serves none: an agency that serves nothing serves nothing else"
        );
        return Ok(Vec::new());
    }
    serves
        .iter()
        .map(|s| {
            attesta_policy::Service::parse(s).ok_or_else(|| {
                anyhow::anyhow!("--serves: {s:?} is not residence, legal-presence or none")
            })
        })
        .collect()
}

/// `/v1/admin/tenants/{agency}` on the host, from its own machine.
fn admin_url(settings: &Settings, agency: &AgencyId) -> String {
    format!(
        "{}{}/{agency}",
        settings.local_url(),
        crate::wire::path::TENANTS
    )
}

/// A client presenting tenant `tenant`'s certificate (kept in the host's tenant directory),
/// pinned to the host: how the host's machine acts as the tenant (its imports).
pub fn client_as(settings: &Settings, tenant: &AgencyId) -> anyhow::Result<crate::client::Client> {
    let files = AgencyFiles::in_dir(&tenant_dir(settings, tenant));
    let identity =
        attesta_certs::Identity::load(&settings.trust_domain, &files.auth_cert, &files.auth_key)
            .with_context(|| format!("{tenant}: its certificate on this host"))?;
    Ok(crate::client::Client::pinned(
        &settings.trust,
        &identity,
        Some(&settings.agency),
    )?)
}

/// Writes `tenant.toml` into a tenant's directory.
pub fn write_config(dir: &Path, config: &crate::server::TenantConfig) -> anyhow::Result<()> {
    let path = dir.join(crate::server::TENANT_FILE);
    let text = toml::to_string(config).context("tenant.toml")?;
    attesta_certs::fsutil::write_atomic(&path, text.as_bytes(), attesta_certs::fsutil::PUBLIC_MODE)
        .with_context(|| format!("writing {}", path.display()))
}

/// The tenant's directory on the host.
pub fn tenant_dir(settings: &Settings, agency: &AgencyId) -> PathBuf {
    crate::server::tenants_dir(settings).join(agency.as_str())
}

/// Writes the tenant's directory: certificates (issued or copied) and `tenant.toml`. A
/// directory that already holds all four files is kept as it is (adding again after a
/// failed call to the node).
pub fn install(
    settings: &Settings,
    agency: &AgencyId,
    serves: &[String],
    ca: Option<&Path>,
    from: Option<&Path>,
    days: u32,
    retention_days: Option<u32>,
) -> anyhow::Result<PathBuf> {
    if agency == &settings.agency {
        anyhow::bail!("--agency: {agency} is the host itself");
    }
    let services = parse_services(serves)?;
    let dir = tenant_dir(settings, agency);
    let files = AgencyFiles::in_dir(&dir);
    let complete = files.all().iter().all(|p| p.exists());
    if !complete {
        match (ca, from) {
            (Some(ca), _) => {
                if days == 0 {
                    anyhow::bail!("--days: must be at least 1");
                }
                let mut ca = Ca::open(ca)?;
                ca.issue_agency(agency, vec!["localhost".into()], vec![], days, &dir)?;
            }
            (None, Some(src)) => {
                attesta_certs::fsutil::ensure_dir(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                let given = AgencyFiles::in_dir(src);
                for (from, to, private) in [
                    (&given.auth_cert, &files.auth_cert, false),
                    (&given.auth_key, &files.auth_key, true),
                    (&given.sign_cert, &files.sign_cert, false),
                    (&given.sign_key, &files.sign_key, true),
                ] {
                    let bytes = std::fs::read(from)
                        .with_context(|| format!("reading {}", from.display()))?;
                    let mode = if private {
                        attesta_certs::fsutil::PRIVATE_MODE
                    } else {
                        attesta_certs::fsutil::PUBLIC_MODE
                    };
                    attesta_certs::fsutil::write_atomic(to, &bytes, mode)
                        .with_context(|| format!("writing {}", to.display()))?;
                }
            }
            (None, None) => anyhow::bail!(
                "{agency} has no certificates in {}: give --ca DIR to issue them, or --from DIR",
                dir.display()
            ),
        }
    }
    write_config(
        &dir,
        &crate::server::TenantConfig {
            serves: services,
            retention_days,
        },
    )?;
    Ok(dir)
}

async fn add(a: AddArgs) -> anyhow::Result<()> {
    let settings = Settings::load(&a.config)?;
    let agency = AgencyId::new(&a.agency).context("--agency")?;
    let dir = install(
        &settings,
        &agency,
        &a.serves,
        a.ca.as_deref(),
        a.from.as_deref(),
        a.days,
        a.retention_days,
    )?;
    let url = admin_url(&settings, &agency);
    let reply = settings
        .own_client()?
        .post(&url, "application/json", bytes::Bytes::new())
        .await
        .with_context(|| format!("asking the node at {url}"))?;
    if !reply.status.is_success() {
        anyhow::bail!(
            "{agency}: the node refused it ({}); its files stay in {}",
            reply.problem_line(),
            dir.display()
        );
    }
    let info: serde_json::Value = reply.json().context("not a tenant description")?;
    println!(
        "{agency} is served by {} at {}/tenants/{agency} (log {})",
        settings.agency,
        settings.local_url(),
        info["origin"].as_str().unwrap_or_default()
    );
    Ok(())
}

async fn list(config: &Path) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    let url = format!("{}{}", settings.local_url(), crate::wire::path::TENANTS);
    let reply = settings.own_client()?.get(&url).await?;
    if !reply.status.is_success() {
        anyhow::bail!("{url}: {}", reply.problem_line());
    }
    let v: serde_json::Value = reply.json()?;
    let tenants = v["tenants"].as_array().cloned().unwrap_or_default();
    if tenants.is_empty() {
        println!("{} hosts no agency", settings.agency);
    }
    for t in tenants {
        let as_of = |k: &str| {
            t[k].as_str()
                .map(|d| format!(" as of {d}"))
                .unwrap_or_default()
        };
        let kept = match t["retention_days"].as_u64() {
            Some(d) => format!("kept {d} days"),
            None => "kept forever".to_owned(),
        };
        println!(
            "{:<24} {:<8} residents {}{}, permits {}{}, log {} entries ({kept})",
            t["agency"].as_str().unwrap_or_default(),
            if t["served"] == true {
                "served"
            } else {
                "NOT in the manifest"
            },
            t["residents"],
            as_of("residents_as_of"),
            t["permits"],
            as_of("permits_as_of"),
            t["log_size"],
        );
    }
    Ok(())
}

async fn remove(config: &Path, agency: &str) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    let agency = AgencyId::new(agency).context("--agency")?;
    let url = admin_url(&settings, &agency);
    let reply = settings
        .own_client()?
        .request(http::Method::DELETE, &url, None)
        .await?;
    if !reply.status.is_success() {
        anyhow::bail!("{agency}: not removed: {}", reply.problem_line());
    }
    let v: serde_json::Value = reply.json()?;
    match v["bundle"].as_str() {
        Some(b) => println!(
            "removed {agency}: its log ({} entries, {} cosignatures) is in {b} (sha256 {}); verify it with attesta-audit verify",
            v["entries"], v["cosignatures"], v["bundle_sha256"].as_str().unwrap_or_default()
        ),
        None => println!("removed {agency} (its log had no entries)"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_services;
    use attesta_policy::Service;

    #[test]
    fn serves_names_services_or_none_alone() {
        let s = |v: &[&str]| parse_services(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            s(&["residence", "legal-presence"]).unwrap(),
            vec![Service::Residence, Service::LegalPresence]
        );
        assert!(s(&["none"]).unwrap().is_empty());
        assert!(s(&["none", "residence"]).is_err());
        let e = s(&["residenza"]).unwrap_err().to_string();
        assert!(e.contains("\"residenza\""), "{e}");
    }
}

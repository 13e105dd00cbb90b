//! `attesta operator`: who among the agency's staff may do what at its console, in the node's
//! `operators.toml` (the console reads it on every request: no restart).

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::config::Settings;
use crate::server::console_roles::{self, Operators, Role};

#[derive(Debug, clap::Subcommand)]
pub enum OperatorCommand {
    /// Give an operator a role (clerk, registry-officer, policy-officer, auditor).
    Grant {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        operator: String,
        #[arg(long)]
        role: String,
    },
    /// Take a role away, or every role with --all.
    Revoke {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        operator: String,
        #[arg(long, required_unless_present = "all")]
        role: Option<String>,
        #[arg(long, conflicts_with = "role")]
        all: bool,
    },
    /// Every operator and their roles.
    List {
        #[arg(long)]
        config: PathBuf,
    },
}

fn parse_role(s: &str) -> anyhow::Result<Role> {
    serde_json::from_value(serde_json::json!(s)).map_err(|_| {
        anyhow::anyhow!("--role {s:?}: not clerk, registry-officer, policy-officer or auditor")
    })
}

fn file_of(config: &Path) -> anyhow::Result<PathBuf> {
    let settings = Settings::load(config)?;
    Ok(settings.data_dir.join(console_roles::FILE))
}

/// Reads, changes and writes back (atomically) the operators file of the node at `config`.
fn edit(config: &Path, change: impl FnOnce(&mut Operators)) -> anyhow::Result<Operators> {
    let path = file_of(config)?;
    let dir = path.parent().context("operators.toml has no directory")?;
    let mut ops = console_roles::load(dir)?;
    change(&mut ops);
    ops.operators.retain(|_, roles| !roles.is_empty());
    let text = format!(
        "# Who among the agency's staff may do what at its console (attesta operator).\n{}",
        toml::to_string(&ops).context("operators.toml")?
    );
    attesta_certs::fsutil::write_atomic(&path, text.as_bytes(), attesta_certs::fsutil::PUBLIC_MODE)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(ops)
}

pub fn run(cmd: OperatorCommand) -> anyhow::Result<()> {
    match cmd {
        OperatorCommand::Grant {
            config,
            operator,
            role,
        } => {
            let name = attesta_certs::OperatorName::new(&operator).context("--operator")?;
            let role = parse_role(&role)?;
            edit(&config, |ops| {
                let roles = ops.operators.entry(name.to_string()).or_default();
                if !roles.contains(&role) {
                    roles.push(role);
                    roles.sort();
                }
            })?;
            println!("{name} is {} at this node's console", role.as_str());
        }
        OperatorCommand::Revoke {
            config,
            operator,
            role,
            all,
        } => {
            let name = attesta_certs::OperatorName::new(&operator).context("--operator")?;
            let role = role.as_deref().map(parse_role).transpose()?;
            edit(&config, |ops| match (role, all) {
                (_, true) | (None, _) => {
                    ops.operators.remove(name.as_str());
                }
                (Some(r), false) => {
                    if let Some(roles) = ops.operators.get_mut(name.as_str()) {
                        roles.retain(|x| *x != r);
                    }
                }
            })?;
            match role {
                Some(r) if !all => println!("{name} is no longer {}", r.as_str()),
                _ => println!("{name} has no role at this node's console"),
            }
        }
        OperatorCommand::List { config } => {
            let path = file_of(&config)?;
            let ops = console_roles::load(path.parent().context("no directory")?)?;
            for (name, roles) in &ops.operators {
                let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
                println!("{name}\t{}", roles.join(", "));
            }
        }
    }
    Ok(())
}

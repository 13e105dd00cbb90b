//! `attesta policy ...`: the Prefettura's tooling for the access policy.
//!
//! The published policy comes from the Prefettura's node (`--config node.toml`: over mTLS with
//! that node's certificate, the manifest verified against its CA and Prefettura) or from a
//! manifest file (`--manifest FILE`, verified when `--config` is given too). Edits go to a
//! draft file (`--draft FILE`, created from the published policy on first use); `diff`
//! compares the draft with the published policy; `publish` sends the draft to the
//! Prefettura's node, which signs it as the next version and pushes it to every node.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use attesta_policy::{rules, Decision, Manifest, Policy, Request, Rule};
use clap::{Args, Subcommand};

use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print the published manifest: version, policy, directory, revoked agencies.
    Show {
        #[command(flatten)]
        source: Source,
        /// Print the verified manifest as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add an allow rule to the draft.
    Grant(Edit),
    /// Remove an allow rule from the draft.
    Revoke(Edit),
    /// Would this request be allowed? Prints the matched rule, or the reason for a denial.
    Explain {
        #[command(flatten)]
        source: Source,
        /// Explain against this draft instead of the published policy.
        #[arg(long)]
        draft: Option<PathBuf>,
        /// The asking agency, e.g. inps-pesaro.
        agency: String,
        /// residence, legal-presence, status, family, expiring-permits, audit, ...
        resource: String,
        /// The declared purpose.
        purpose: String,
        #[arg(long, default_value = "read")]
        action: String,
        /// The comune (ISTAT code) the request is about; `*` when none.
        #[arg(long, default_value = "*")]
        territory: String,
    },
    /// Show what the draft changes in the published policy.
    Diff {
        #[command(flatten)]
        source: Source,
        #[arg(long)]
        draft: PathBuf,
    },
    /// Publish the next manifest version with `agency` hosted by `host` in the directory (a
    /// comune moved to the service centre), the policy in force unchanged.
    Host {
        /// node.toml of the Prefettura's node (or of a node whose certificate may publish).
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        url: Option<String>,
        /// The hosted agency, e.g. comune-fano.
        #[arg(long)]
        agency: String,
        /// The node that serves it, e.g. cst-pu (an agency of the directory with a URL).
        #[arg(long)]
        host: String,
        /// The comuni (ISTAT codes) whose registry it keeps.
        #[arg(long = "comune")]
        comuni: Vec<String>,
        /// What it answers: residence, legal-presence, or none (it only asks).
        #[arg(long = "serves", default_value = "residence")]
        serves: Vec<String>,
    },
    /// Publish the next manifest version without the hosted agency `agency` in the directory.
    Unhost {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        url: Option<String>,
        #[arg(long)]
        agency: String,
    },
    /// Sign the draft as the next manifest version on the Prefettura's node, which serves it
    /// and notifies every node.
    Publish {
        /// node.toml of the Prefettura's node (or of a node whose certificate may publish).
        #[arg(long)]
        config: PathBuf,
        /// URL of the Prefettura's node (default: from the config).
        #[arg(long)]
        url: Option<String>,
        #[arg(long)]
        draft: PathBuf,
    },
}

/// Where the published manifest comes from.
#[derive(Debug, Args)]
pub struct Source {
    /// A node.toml: fetch the manifest from the Prefettura's node with this node's
    /// certificate, and verify it against its CA and Prefettura.
    #[arg(long)]
    config: Option<PathBuf>,
    /// URL of the Prefettura's node (default: from the config).
    #[arg(long)]
    url: Option<String>,
    /// A signed manifest file instead of the Prefettura's node.
    #[arg(long)]
    manifest: Option<PathBuf>,
}

/// A rule to grant or revoke.
#[derive(Debug, Args)]
pub struct Edit {
    #[command(flatten)]
    source: Source,
    /// The draft to edit (created from the published policy if missing).
    #[arg(long)]
    draft: PathBuf,
    /// Agency or role, e.g. inps-pesaro or consumer.
    subject: String,
    resource: String,
    purpose: String,
    #[arg(long, default_value = "read")]
    action: String,
    /// `*` (any), `own` (the subject's own territory) or an ISTAT code.
    #[arg(long, default_value = "*")]
    territory: String,
}

/// The published manifest, and whether its signature was checked.
struct Published {
    manifest: Manifest,
    verified: bool,
}

/// Runs a policy command. `explain` exits 2 for a denial: an answer, not a failure.
pub async fn run(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Show { source, json } => {
            let p = published(&source).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&p.manifest)?);
            } else {
                print_manifest(&p);
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Grant(edit) => edit_draft(edit, true).await.map(|()| ExitCode::SUCCESS),
        PolicyCommand::Revoke(edit) => edit_draft(edit, false).await.map(|()| ExitCode::SUCCESS),
        PolicyCommand::Explain {
            source,
            draft,
            agency,
            resource,
            purpose,
            action,
            territory,
        } => {
            let (text, what) = match &draft {
                Some(path) => {
                    // A draft's territories still come from the published directory, if any.
                    let mut m = match published(&source).await {
                        Ok(p) => p.manifest,
                        Err(_) => empty_manifest(),
                    };
                    m.policy = read_draft(path)?;
                    (m.effective_policy(), format!("draft {}", path.display()))
                }
                None => {
                    let p = published(&source).await?;
                    let what = format!("manifest version {}", p.manifest.version);
                    (p.manifest.effective_policy(), what)
                }
            };
            let policy = Policy::load(&text).await.context("loading the policy")?;
            let req = Request {
                agency,
                resource,
                action,
                purpose,
                territory,
            };
            match policy.decide_uncached(&req)? {
                Decision::Allow { rule } => {
                    println!(
                        "allow: {} {} {} for purpose {:?}",
                        req.agency, req.action, req.resource, req.purpose
                    );
                    println!("  matched rule: {rule}");
                    println!("  policy {} ({what})", policy.version());
                    Ok(ExitCode::SUCCESS)
                }
                Decision::Deny { reason } => {
                    println!(
                        "deny: {} {} {} for purpose {:?}",
                        req.agency, req.action, req.resource, req.purpose
                    );
                    println!("  reason: {reason}");
                    println!("  policy {} ({what})", policy.version());
                    Ok(ExitCode::from(2))
                }
            }
        }
        PolicyCommand::Diff { source, draft } => {
            let p = published(&source).await?;
            let text = read_draft(&draft)?;
            let d = rules::diff(&p.manifest.policy, &text)?;
            if d.is_empty() {
                println!(
                    "{} is the same as manifest version {}",
                    draft.display(),
                    p.manifest.version
                );
            } else {
                println!(
                    "--- manifest version {}\n+++ {}",
                    p.manifest.version,
                    draft.display()
                );
                for l in &d.removed {
                    println!("- {l}");
                }
                for l in &d.added {
                    println!("+ {l}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Publish { config, url, draft } => publish(&config, url, &draft)
            .await
            .map(|()| ExitCode::SUCCESS),
        PolicyCommand::Host {
            config,
            url,
            agency,
            host,
            comuni,
            serves,
        } => {
            let services = crate::cli::tenant::parse_services(&serves)?;
            for c in &comuni {
                crate::domain::places::ComuneCode::parse(c)
                    .map_err(|e| anyhow::anyhow!("--comune {c}: {e}"))?;
            }
            let entry = attesta_policy::DirectoryEntry {
                agency: agency.clone(),
                url: None,
                hosted_by: Some(host.clone()),
                serves: services,
                comuni,
            };
            edit_directory(&config, url, |m| {
                match m.entry(&host) {
                    Some(h) if h.url.is_some() => {}
                    Some(_) => anyhow::bail!("--host {host}: it is hosted itself"),
                    None => anyhow::bail!("--host {host}: not in the directory"),
                }
                if m.entry(&agency).is_some_and(|e| e.url.is_some()) {
                    anyhow::bail!(
                        "--agency {agency}: it runs a node of its own; remove that entry first"
                    );
                }
                m.directory.retain(|e| e.agency != agency);
                m.directory.push(entry);
                Ok(format!("{agency} hosted by {host}"))
            })
            .await
            .map(|()| ExitCode::SUCCESS)
        }
        PolicyCommand::Unhost {
            config,
            url,
            agency,
        } => edit_directory(&config, url, |m| {
            match m.entry(&agency) {
                Some(e) if e.hosted_by.is_some() => {}
                Some(_) => anyhow::bail!("--agency {agency}: not a hosted agency"),
                None => anyhow::bail!("--agency {agency}: not in the directory"),
            }
            m.directory.retain(|e| e.agency != agency);
            Ok(format!("{agency} no longer hosted"))
        })
        .await
        .map(|()| ExitCode::SUCCESS),
    }
}

fn empty_manifest() -> Manifest {
    Manifest {
        version: 0,
        issued_at: String::new(),
        issuer: String::new(),
        policy: String::new(),
        directory: Vec::new(),
        revoked: Vec::new(),
    }
}

fn read_draft(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    rules::parse(&text).with_context(|| format!("{}", path.display()))?;
    Ok(text)
}

/// The URL of the Prefettura's node, as seen from `settings`.
fn prefettura_url(settings: &Settings, url: Option<String>) -> anyhow::Result<String> {
    if let Some(u) = url {
        return Ok(u.trim_end_matches('/').to_owned());
    }
    if settings.agency == settings.manifest.prefettura {
        return Ok(settings.local_url());
    }
    settings.manifest.url.clone().with_context(|| {
        format!(
            "{}: manifest.url: not set, and this is not the Prefettura's node (give --url)",
            settings.source.display()
        )
    })
}

async fn published(source: &Source) -> anyhow::Result<Published> {
    let settings = source.config.as_deref().map(Settings::load).transpose()?;
    let Some(path) = &source.manifest else {
        let s = settings.context("give --config node.toml or --manifest FILE")?;
        let base = prefettura_url(&s, source.url.clone())?;
        let client = s.client_for(&s.manifest.prefettura)?;
        let manifest = crate::manifest::fetch_published(&s, &client, &base)
            .await?
            .with_context(|| format!("{base}: no manifest has been published yet"))?;
        return Ok(Published {
            manifest,
            verified: true,
        });
    };
    let origin = path.display().to_string();
    let token = std::fs::read_to_string(path).with_context(|| format!("reading {origin}"))?;
    match &settings {
        Some(s) => {
            let active = crate::manifest::verify(
                &s.trust,
                &s.manifest.prefettura,
                &token,
                crate::manifest::Arrival::Installed,
            )
            .await
            .with_context(|| format!("{origin}: manifest refused"))?;
            Ok(Published {
                manifest: active.manifest,
                verified: true,
            })
        }
        None => {
            // Without trust anchors the payload can be read, not trusted.
            let payload =
                attesta_certs::jws::payload_unverified(&token).with_context(|| origin.clone())?;
            let manifest = Manifest::from_json(&payload).with_context(|| origin.clone())?;
            Ok(Published {
                manifest,
                verified: false,
            })
        }
    }
}

fn print_manifest(p: &Published) {
    let m = &p.manifest;
    println!(
        "manifest version {} issued {} by {}{}",
        m.version,
        m.issued_at,
        m.issuer,
        if p.verified {
            " (signature verified)"
        } else {
            " (signature NOT verified: give --config for the trust anchors)"
        }
    );
    println!("directory:");
    for e in &m.directory {
        let serves: Vec<&str> = e.serves.iter().map(|s| s.as_str()).collect();
        let at = match (&e.url, &e.hosted_by) {
            (Some(url), _) => url.clone(),
            (None, Some(host)) => format!("hosted by {host}"),
            (None, None) => "-".to_owned(),
        };
        println!(
            "  {:<16} {:<28} serves [{}] comuni [{}]",
            e.agency,
            at,
            serves.join(", "),
            e.comuni.join(", ")
        );
    }
    if !m.revoked.is_empty() {
        println!("revoked: {}", m.revoked.join(", "));
    }
    println!("policy:");
    for l in rules::normalise(&m.policy).unwrap_or_default() {
        println!("  {l}");
    }
}

async fn edit_draft(edit: Edit, grant: bool) -> anyhow::Result<()> {
    let text = if edit.draft.exists() {
        read_draft(&edit.draft)?
    } else {
        published(&edit.source)
            .await
            .with_context(|| {
                format!(
                    "{} does not exist yet: starting it from the published policy",
                    edit.draft.display()
                )
            })?
            .manifest
            .policy
    };
    let rule = Rule {
        subject: edit.subject,
        resource: edit.resource,
        action: edit.action,
        purpose: edit.purpose,
        territory: edit.territory,
        allow: true,
    };
    let edited = if grant {
        rules::grant(&text, &rule)
    } else {
        rules::revoke(&text, &rule)
    }
    .with_context(|| edit.draft.display().to_string())?;
    attesta_certs::fsutil::write_atomic(
        &edit.draft,
        edited.as_bytes(),
        attesta_certs::fsutil::PUBLIC_MODE,
    )
    .with_context(|| format!("writing {}", edit.draft.display()))?;
    println!(
        "{} {rule} in {} (publish with: attesta policy publish --draft {})",
        if grant { "+" } else { "-" },
        edit.draft.display(),
        edit.draft.display()
    );
    Ok(())
}

/// Publishes the next version with the directory `edit` changes (the policy and revocations
/// in force unchanged), over the version it was read from.
async fn edit_directory(
    config: &Path,
    url: Option<String>,
    edit: impl FnOnce(&mut Manifest) -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    let base = prefettura_url(&settings, url)?;
    let client = settings.client_for(&settings.manifest.prefettura)?;
    let mut m = crate::manifest::fetch_published(&settings, &client, &base)
        .await?
        .with_context(|| format!("{base}: no manifest has been published yet"))?;
    let what = edit(&mut m)?;
    let request = crate::wire::PublishRequest {
        policy: m.policy.clone(),
        directory: Some(m.directory.clone()),
        revoked: None,
        expected_version: Some(m.version),
    };
    let answer = post_publish(&client, &base, &request, &what).await?;
    println!(
        "published manifest version {}: {what}; {} of {} nodes notified",
        answer.version,
        answer.notified.iter().filter(|n| n.ok).count(),
        answer.notified.len()
    );
    Ok(())
}

/// `POST /v1/manifest` on the Prefettura's node at `base`; a refusal is one line naming
/// `what` was published.
async fn post_publish(
    client: &crate::client::Client,
    base: &str,
    request: &crate::wire::PublishRequest,
    what: &str,
) -> anyhow::Result<crate::wire::PublishAnswer> {
    let reply = client
        .post(
            &format!("{base}{}", crate::wire::path::MANIFEST),
            "application/json",
            serde_json::to_vec(request)?.into(),
        )
        .await
        .with_context(|| format!("publishing to {base}"))?;
    if !reply.status.is_success() {
        anyhow::bail!("{what}: publish refused: {}", reply.problem_line());
    }
    serde_json::from_slice(&reply.body).context("reading the publish answer")
}

async fn publish(config: &Path, url: Option<String>, draft: &Path) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    let text = read_draft(draft)?;
    Policy::load(&text)
        .await
        .with_context(|| format!("{}: policy does not load", draft.display()))?;
    let base = prefettura_url(&settings, url)?;
    let client = settings.client_for(&settings.manifest.prefettura)?;
    // The version the draft is published over, so a concurrent publish is not overwritten.
    let expected_version = crate::manifest::fetch_published(&settings, &client, &base)
        .await?
        .map(|m| m.version);
    let request = crate::wire::PublishRequest {
        policy: text,
        directory: None,
        revoked: None,
        expected_version,
    };
    let answer = post_publish(&client, &base, &request, &draft.display().to_string()).await?;
    println!(
        "published manifest version {} (policy {}) at {}",
        answer.version, answer.policy_version, answer.issued_at
    );
    let mut missed = 0;
    for n in &answer.notified {
        if n.ok {
            println!("  {:<16} notified", n.agency);
        } else {
            missed += 1;
            println!(
                "  {:<16} NOT notified: {} (it will fetch it)",
                n.agency, n.detail
            );
        }
    }
    if missed > 0 {
        println!("{missed} node(s) not reached; they fetch the new version at their next refresh");
    }
    Ok(())
}

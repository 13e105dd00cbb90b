//! `attesta query status`: the clerk's command, and `client.toml`, the configuration of a
//! client that is not a node (a clerk's workstation, a load generator).
//!
//! ```toml
//! ca = "ca.crt"               # the federation CA
//! crl = "crl.pem"             # optional
//! cert = "auth.crt"           # the agency's certificate and key
//! key = "auth.key"
//! node = "https://127.0.0.1:8445"   # the node to ask (normally the agency's own)
//! node_agency = "inps-pesaro"       # who that node must be; default: the certificate's agency
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use attesta_certs::{AgencyId, Identity, TrustStore};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

use crate::client::{Client, Reply};
use crate::config::{parse_toml, ConfigError};
use crate::wire::StatusAnswer;

/// `client.toml`, as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFile {
    pub ca: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crl: Option<PathBuf>,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_agency: Option<String>,
}

/// A loaded `client.toml`: a client pinned to the configured node.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub agency: AgencyId,
    pub node: String,
    pub node_agency: AgencyId,
    pub trust: TrustStore,
    pub identity: Identity,
}

impl ClientSettings {
    /// Where `agency` answers, from the directory of the manifest the configured node
    /// serves: the node to connect to (the agency's own, or its host's) and the agency's base
    /// URL there. Connections are pinned to that node anyway, so a wrong URL cannot lead to an
    /// impostor.
    pub async fn endpoint(&self, agency: &str) -> anyhow::Result<(AgencyId, String)> {
        let manifest = self.directory().await?;
        let e = manifest.endpoint(agency).ok_or_else(|| {
            anyhow::anyhow!("agency {agency} has no node in the manifest's directory")
        })?;
        let node = AgencyId::new(e.node)
            .map_err(|err| anyhow::anyhow!("directory agency {:?}: {err}", e.node))?;
        Ok((node, e.base()))
    }

    /// The manifest the configured node serves (its directory lists every node). Its
    /// signature is not checked here: it only says where to connect, and every connection is
    /// pinned to the agency it is meant for. (`crate::manifest::fetch_published` verifies.)
    pub async fn directory(&self) -> anyhow::Result<attesta_policy::Manifest> {
        use anyhow::Context as _;
        let url = format!("{}{}", self.node, crate::wire::path::MANIFEST);
        let reply = self
            .client()?
            .get(&url)
            .await
            .with_context(|| format!("fetching {url}"))?;
        if !reply.status.is_success() {
            anyhow::bail!("{url}: {}", refusal(&reply));
        }
        let token = String::from_utf8_lossy(&reply.body);
        let payload = attesta_certs::jws::payload_unverified(&token)
            .map_err(|e| anyhow::anyhow!("{url}: not a signed manifest ({e})"))?;
        attesta_policy::Manifest::from_json(&payload)
            .with_context(|| format!("{url}: not a manifest"))
    }
}

impl ClientSettings {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        let raw: ClientFile = parse_toml(path, &text)?;
        let invalid = |key: &'static str, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            key,
            message,
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let ca = base.join(&raw.ca);
        let td = attesta_certs::trust::ca_trust_domain(&ca)
            .map_err(|e| invalid("ca", crate::config::error_chain(&e)))?;
        let trust = TrustStore::load(
            td.clone(),
            &ca,
            raw.crl.as_ref().map(|c| base.join(c)).as_deref(),
        )
        .map_err(|e| invalid("crl", crate::config::error_chain(&e)))?;
        let identity = Identity::load(&td, &base.join(&raw.cert), &base.join(&raw.key))
            .map_err(|e| invalid("cert", crate::config::error_chain(&e)))?;
        crate::client::check_base_url(&raw.node)
            .map_err(|_| invalid("node", format!("{:?} is not https://host:port", raw.node)))?;
        let agency = identity.leaf.agency().clone();
        let node_agency = match &raw.node_agency {
            Some(a) => AgencyId::new(a).map_err(|e| invalid("node_agency", e.to_string()))?,
            None => agency.clone(),
        };
        Ok(Self {
            agency,
            node: raw.node.trim_end_matches('/').to_owned(),
            node_agency,
            trust,
            identity,
        })
    }

    /// A client presenting the configured certificate that accepts only `expected`.
    pub fn client_for(&self, expected: &AgencyId) -> anyhow::Result<Client> {
        Ok(Client::pinned(&self.trust, &self.identity, Some(expected))?)
    }

    /// A client for the configured node.
    pub fn client(&self) -> anyhow::Result<Client> {
        self.client_for(&self.node_agency)
    }
}

#[derive(Debug, Subcommand)]
pub enum QueryCommand {
    /// Is a person resident and legally present? Asks the node's coordinator (`/v1/status`).
    /// Exit code 0 when the answer is complete, 3 when a fact is unknown.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The person's codice fiscale.
    subject: String,
    /// The purpose of the question (finalità), as the policy grants it.
    #[arg(long)]
    purpose: String,
    /// ISTAT code of the person's comune, if known (only its registry is asked).
    #[arg(long)]
    comune: Option<String>,
    /// The date the question is about (YYYY-MM-DD); default today.
    #[arg(long)]
    as_of: Option<String>,
    /// client.toml: CA, the agency's certificate and key, the node to ask.
    #[arg(long)]
    config: PathBuf,
    /// Print the whole answer as JSON (with the signed attestations).
    #[arg(long)]
    json: bool,
}

/// Exit code of an incomplete answer.
pub const INCOMPLETE: u8 = 3;

pub async fn run(cmd: QueryCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        QueryCommand::Status(args) => status(args).await,
    }
}

async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let settings = ClientSettings::load(&args.config)?;
    let client = settings.client()?;
    let mut body = serde_json::json!({"subject": args.subject, "purpose": args.purpose});
    if let Some(c) = &args.comune {
        body["comune"] = c.as_str().into();
    }
    if let Some(d) = &args.as_of {
        body["as_of"] = d.as_str().into();
    }
    let url = format!("{}{}", settings.node, crate::wire::path::STATUS);
    let reply = client
        .post(&url, "application/json", serde_json::to_vec(&body)?.into())
        .await
        .with_context(|| format!("asking {url}"))?;
    if !reply.status.is_success() {
        anyhow::bail!("{}", refusal(&reply));
    }
    let answer: StatusAnswer = serde_json::from_slice(&reply.body)
        .with_context(|| format!("{url} answered something that is not a status answer"))?;
    if args.json {
        println!("{}", String::from_utf8_lossy(&reply.body));
    } else {
        print!("{}", human(&args.subject, &args.purpose, &answer));
        // The node logged the question before answering; the entry's receipt proves it.
        if let Some(index) = reply
            .headers
            .get(crate::wire::LOG_INDEX_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            println!(
                "  logged           {} entry {index} (its receipt: attesta audit receipt --index {index})",
                settings.node_agency
            );
        }
    }
    Ok(if answer.complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(INCOMPLETE)
    })
}

/// One line for a problem+json answer.
pub fn refusal(reply: &Reply) -> String {
    let (kind, said) = match reply.problem() {
        Some(p) => (
            p.type_.rsplit(':').next().unwrap_or("error").to_owned(),
            p.detail.unwrap_or(p.title),
        ),
        None => ("error".to_owned(), "no details".to_owned()),
    };
    format!("the node refused: {} {kind}: {said}", reply.status.as_u16())
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    }
}

/// The short answer a clerk reads.
pub fn human(subject: &str, purpose: &str, a: &StatusAnswer) -> String {
    let mut out = format!(
        "{} on {}, purpose {purpose}\n",
        subject.to_uppercase(),
        a.as_of
    );
    let mut resident = yes_no(a.resident).to_owned();
    if let Some(c) = &a.comune {
        resident.push_str(&format!(", in {}", crate::domain::places::comune_label(c)));
    }
    if let Some(s) = &a.since {
        resident.push_str(&format!(" since {s}"));
    }
    out.push_str(&format!("  resident         {resident}\n"));
    let mut present = yes_no(a.legally_present).to_owned();
    match (a.basis.as_deref(), &a.valid_until) {
        (Some("registration"), _) => present.push_str(", no permit needed (registration)"),
        (Some(basis), Some(until)) => present.push_str(&format!(
            ", {} valid until {until}",
            basis.replace('_', " ")
        )),
        (Some(basis), None) => {
            present.push_str(&format!(", {} with no expiry", basis.replace('_', " ")))
        }
        _ => {}
    }
    out.push_str(&format!("  legally present  {present}\n"));
    for u in &a.unavailable {
        out.push_str(&format!(
            "  unavailable      {}: {} ({})\n",
            u.agency.as_deref().unwrap_or("-"),
            u.reason,
            u.detail
        ));
    }
    out.push_str(&format!(
        "  answer           {}; {} signed attestation{}; query {}\n",
        if a.complete { "complete" } else { "INCOMPLETE" },
        a.attestations.len(),
        if a.attestations.len() == 1 { "" } else { "s" },
        a.query_id
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Unavailable;

    fn answer() -> StatusAnswer {
        StatusAnswer {
            resident: Some(true),
            comune: Some("041044".into()),
            since: Some("2019-03-01".into()),
            legally_present: Some(true),
            basis: Some("renewal_receipt".into()),
            valid_until: None,
            as_of: "2026-11-23".into(),
            complete: true,
            attestations: vec!["a".into(), "b".into()],
            unavailable: vec![],
            query_id: "q1".into(),
        }
    }

    #[test]
    fn a_complete_answer_reads_as_one_line_per_fact() {
        let text = human("rssmra85t10a562s", "benefit-eligibility", &answer());
        assert_eq!(
            text,
            "RSSMRA85T10A562S on 2026-11-23, purpose benefit-eligibility\n\
             \x20 resident         yes, in PESARO (041044) since 2019-03-01\n\
             \x20 legally present  yes, renewal receipt with no expiry\n\
             \x20 answer           complete; 2 signed attestations; query q1\n"
        );
    }

    #[test]
    fn an_incomplete_answer_names_the_missing_peer() {
        let mut a = answer();
        a.legally_present = None;
        a.basis = None;
        a.complete = false;
        a.attestations.pop();
        a.unavailable.push(Unavailable {
            agency: Some("questura-pu".into()),
            reason: "timeout".into(),
            detail: "questura-pu did not answer in time".into(),
        });
        let text = human("RSSMRA85T10A562S", "benefit-eligibility", &a);
        assert!(text.contains("legally present  unknown\n"), "{text}");
        assert!(
            text.contains(
                "unavailable      questura-pu: timeout (questura-pu did not answer in time)"
            ),
            "{text}"
        );
        assert!(text.contains("INCOMPLETE; 1 signed attestation;"), "{text}");
    }
}

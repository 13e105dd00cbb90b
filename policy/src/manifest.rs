//! The manifest the Prefettura signs: the policy in force and the directory of the federation.
//!
//! This module is the document's shape and nothing else: the node checks the signature
//! (a compact JWS of type [`MANIFEST_TYP`]), the names and URLs, and the version order.

use serde::{Deserialize, Serialize};

/// The JWS `typ` of a signed manifest.
pub const MANIFEST_TYP: &str = "attesta-manifest+jws";

/// One manifest version. Unknown fields are refused: a node must never silently ignore part
/// of what the Prefettura signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Strictly increasing; a node refuses a version lower than or equal to its own.
    pub version: u64,
    /// RFC 3339, UTC.
    pub issued_at: String,
    /// The agency that signed it (the Prefettura).
    pub issuer: String,
    /// The casbin policy (CSV lines, see docs/POLICY.md).
    pub policy: String,
    /// The nodes of the federation.
    pub directory: Vec<DirectoryEntry>,
    /// Agencies refused by every node, whatever their certificates say.
    #[serde(default)]
    pub revoked: Vec<String>,
}

/// An agency of the federation, as the manifest lists it: one that runs its own node (`url`),
/// or one hosted by another agency's node (`hosted_by`), never both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryEntry {
    pub agency: String,
    /// `https://host:port`, no path: the agency's own node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The agency whose node serves this one (a service centre hosting it as a tenant). The
    /// host answers at its own URL under `/tenants/<agency>`, presenting its own TLS
    /// certificate; what it answers for this agency is signed with this agency's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_by: Option<String>,
    /// What the node answers: `residence`, `legal-presence`.
    #[serde(default)]
    pub serves: Vec<Service>,
    /// The comuni (ISTAT codes) whose registry it keeps.
    #[serde(default)]
    pub comuni: Vec<String>,
}

/// Where an agency is reached (see [`Manifest::endpoint`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint<'a> {
    /// The agency whose node it is (the host, for a hosted agency).
    pub node: &'a str,
    pub url: &'a str,
    /// `/tenants/<agency>` for a hosted agency, empty otherwise.
    pub prefix: String,
}

impl Endpoint<'_> {
    /// The agency's base URL: what its routes' paths are appended to.
    pub fn base(&self) -> String {
        format!("{}{}", self.url, self.prefix)
    }
}

/// The path prefix under which a host serves its tenant `agency`.
pub fn tenant_prefix(agency: &str) -> String {
    format!("{TENANTS_PATH}/{agency}")
}

/// The first segment of every tenant-addressed path.
pub const TENANTS_PATH: &str = "/tenants";

/// A question a node answers for its peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Service {
    Residence,
    LegalPresence,
}

impl Service {
    /// `residence` or `legal-presence`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "residence" => Some(Self::Residence),
            "legal-presence" => Some(Self::LegalPresence),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Residence => "residence",
            Self::LegalPresence => "legal-presence",
        }
    }
}

impl Manifest {
    /// Parses the signed payload. Errors name the field at fault.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The canonical payload that gets signed.
    pub fn to_json(&self) -> Vec<u8> {
        // Plain strings, numbers and vectors: serialisation cannot fail.
        serde_json::to_vec(self).expect("manifest serialises")
    }

    /// The directory entry of `agency`.
    pub fn entry(&self, agency: &str) -> Option<&DirectoryEntry> {
        self.directory.iter().find(|e| e.agency == agency)
    }

    /// The policy the nodes enforce: the signed policy text plus, for every comune a directory
    /// entry keeps, its territory line (`g2, agency, comune`) if the text lacks it. The
    /// directory is where comuni are kept; a rule with territory `own` follows it.
    pub fn effective_policy(&self) -> String {
        let mut text = self.policy.clone();
        let existing = crate::rules::normalise(&self.policy).unwrap_or_default();
        let mut added = false;
        for e in &self.directory {
            for c in &e.comuni {
                let line = format!("g2, {}, {c}", e.agency);
                if !existing.contains(&line) {
                    if !added {
                        if !text.is_empty() && !text.ends_with('\n') {
                            text.push('\n');
                        }
                        text.push_str("# Territories from the directory.\n");
                        added = true;
                    }
                    text.push_str(&line);
                    text.push('\n');
                }
            }
        }
        text
    }

    /// Where `agency` is served: the node to connect to (whose TLS certificate it must
    /// present), its URL, and the path prefix of the agency on that node (empty for an agency
    /// that runs its own node). `None` for an agency not in the directory, or hosted by an
    /// agency that is not a node of the directory.
    pub fn endpoint(&self, agency: &str) -> Option<Endpoint<'_>> {
        let entry = self.entry(agency)?;
        match (&entry.url, &entry.hosted_by) {
            (Some(url), None) => Some(Endpoint {
                node: &entry.agency,
                url,
                prefix: String::new(),
            }),
            (None, Some(host)) => {
                let host = self.entry(host)?;
                match (&host.url, &host.hosted_by) {
                    (Some(url), None) => Some(Endpoint {
                        node: &host.agency,
                        url,
                        prefix: tenant_prefix(agency),
                    }),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The agencies the directory says `host` serves as tenants.
    pub fn tenants_of<'a>(&'a self, host: &'a str) -> impl Iterator<Item = &'a DirectoryEntry> {
        self.directory
            .iter()
            .filter(move |e| e.hosted_by.as_deref() == Some(host))
    }

    /// Whether `agency` is listed as revoked.
    pub fn is_revoked(&self, agency: &str) -> bool {
        self.revoked.iter().any(|a| a == agency)
    }
}

//! The manifest in force on this node: the Prefettura's signed policy and directory.
//!
//! A manifest arrives from disk (the last valid one, at start-up), from a fetch of the
//! Prefettura's `GET /v1/manifest`, from a push to `POST /v1/manifest/notify`, or, on the
//! Prefettura's own node, from a publish. Every path goes through [`ManifestState::offer`]:
//! verify the signature and the signer, parse (unknown fields refused), check names and the
//! policy, refuse a version that is not newer, write the file, then swap. A refused manifest
//! changes nothing; the reason is logged and counted in `/metrics`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use attesta_certs::jws::{self, JwsError};
use attesta_certs::{AgencyId, SigningIdentity, TrustStore};
use attesta_policy::{Manifest, Policy, MANIFEST_TYP};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::domain::places::ComuneCode;

/// The manifest's file in the data directory.
pub const FILE: &str = "manifest.jws";

/// How far in the future an `issued_at` may be (clock skew between nodes).
const MAX_SKEW: Duration = Duration::from_secs(300);

/// A verified manifest with its compiled policy.
pub struct Active {
    pub manifest: Manifest,
    pub policy: Policy,
    /// The signed token, as served by the Prefettura.
    pub token: String,
}

impl std::fmt::Debug for Active {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Active")
            .field("version", &self.manifest.version)
            .field("policy", &self.policy.version())
            .finish_non_exhaustive()
    }
}

impl Active {
    /// The comuni the manifest's directory gives `agency`.
    pub fn comuni_of(&self, agency: &str) -> &[String] {
        self.manifest
            .entry(agency)
            .map(|e| e.comuni.as_slice())
            .unwrap_or_default()
    }
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    #[error(transparent)]
    Signature(#[from] JwsError),
    #[error("signed by {found}, not by the Prefettura ({expected})")]
    WrongSigner { found: String, expected: String },
    #[error("unknown field in the manifest: {0}")]
    UnknownField(String),
    #[error("malformed manifest: {0}")]
    Malformed(String),
    #[error("invalid manifest: {0}")]
    Invalid(String),
    #[error("version {got} is older than the version in force ({have})")]
    Older { got: u64, have: u64 },
    #[error("version {0} is already in force with different content (replayed or forked)")]
    SameVersion(u64),
    #[error("issued_at {got} is earlier than that of the manifest in force ({have}): backdated")]
    Backdated { got: String, have: String },
    #[error("writing {path}: {error}")]
    Persist {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl Rejected {
    /// A short stable label, for metrics and problem documents.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Signature(e) => e.reason(),
            Self::WrongSigner { .. } => "wrong_signer",
            Self::UnknownField(_) => "unknown_field",
            Self::Malformed(_) => "malformed",
            Self::Invalid(_) => "invalid",
            Self::Older { .. } => "older_version",
            Self::SameVersion(_) => "same_version",
            Self::Backdated { .. } => "backdated",
            Self::Persist { .. } => "persist_failed",
        }
    }
}

/// What an accepted offer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// A newer manifest is now in force.
    Installed(u64),
    /// The same manifest was already in force.
    Unchanged(u64),
}

/// Whether a manifest is new to this node, or one it installed before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Offered now (fetch, push, publish): the signer must be valid **now** as well as at
    /// `issued_at`, so that an expired key cannot sign a backdated manifest.
    New,
    /// The file this node installed while its signer was valid: it stays in force after the
    /// Prefettura's certificate expires (no expiry outage), unless the certificate is revoked.
    Installed,
}

/// Verifies a signed manifest: signature and certificate (against `trust`), signer (must be
/// `prefettura`, not revoked, valid at `issued_at` and, for a new manifest, now), document,
/// names, policy. Does not look at the version in force.
pub async fn verify(
    trust: &TrustStore,
    prefettura: &AgencyId,
    token: &str,
    arrival: Arrival,
) -> Result<Active, Rejected> {
    let verified = jws::verify(trust, MANIFEST_TYP, token)?;
    if verified.signer.agency() != prefettura {
        return Err(Rejected::WrongSigner {
            found: verified.signer.agency().to_string(),
            expected: prefettura.to_string(),
        });
    }
    let manifest = Manifest::from_json(&verified.payload).map_err(|e| {
        let message = e.to_string();
        if message.contains("unknown field") {
            Rejected::UnknownField(message)
        } else {
            Rejected::Malformed(message)
        }
    })?;
    if manifest.issuer != prefettura.as_str() {
        return Err(Rejected::Invalid(format!(
            "issuer {:?} is not the Prefettura {prefettura}",
            manifest.issuer
        )));
    }
    if manifest.version == 0 {
        return Err(Rejected::Invalid("version must be at least 1".into()));
    }
    let issued_at = OffsetDateTime::parse(&manifest.issued_at, &Rfc3339)
        .map_err(|e| Rejected::Invalid(format!("issued_at {:?}: {e}", manifest.issued_at)))?;
    let issued_at = SystemTime::from(issued_at);
    if issued_at > SystemTime::now() + MAX_SKEW {
        return Err(Rejected::Invalid(format!(
            "issued_at {} is in the future",
            manifest.issued_at
        )));
    }
    // The certificate must have been valid when the Prefettura signed, and be valid now for a
    // manifest offered now: an installed manifest stays in force after its signing certificate
    // expires, until a newer one replaces it.
    verified.check_valid_at(issued_at)?;
    if arrival == Arrival::New {
        verified.check_valid_at(SystemTime::now())?;
    }
    check_names(&manifest)?;
    let policy = Policy::load(&manifest.effective_policy())
        .await
        .map_err(|e| Rejected::Invalid(format!("policy: {e}")))?;
    Ok(Active {
        manifest,
        policy,
        token: token.trim().to_owned(),
    })
}

/// A verified manifest's `issued_at` (checked by [`verify`]).
fn issued(m: &Manifest) -> OffsetDateTime {
    OffsetDateTime::parse(&m.issued_at, &Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Agency ids, URLs and comuni of the directory and the revocation list.
fn check_names(m: &Manifest) -> Result<(), Rejected> {
    let mut seen = std::collections::HashSet::new();
    for e in &m.directory {
        AgencyId::new(&e.agency).map_err(|err| Rejected::Invalid(format!("directory: {err}")))?;
        if !seen.insert(e.agency.as_str()) {
            return Err(Rejected::Invalid(format!(
                "directory: {} is listed twice",
                e.agency
            )));
        }
        match (&e.url, &e.hosted_by) {
            (Some(url), None) => crate::client::check_base_url(url).map_err(|_| {
                Rejected::Invalid(format!(
                    "directory: {}: url {url:?} is not https://host:port",
                    e.agency
                ))
            })?,
            (None, Some(host)) => {
                let hosting = m.entry(host).ok_or_else(|| {
                    Rejected::Invalid(format!(
                        "directory: {}: hosted_by {host}, which is not in the directory",
                        e.agency
                    ))
                })?;
                if hosting.url.is_none() {
                    return Err(Rejected::Invalid(format!(
                        "directory: {}: hosted_by {host}, which is hosted itself",
                        e.agency
                    )));
                }
            }
            (Some(_), Some(_)) => {
                return Err(Rejected::Invalid(format!(
                    "directory: {}: has both url and hosted_by (a hosted agency is reached at its host's url)",
                    e.agency
                )))
            }
            (None, None) => {
                return Err(Rejected::Invalid(format!(
                    "directory: {}: needs url (its own node) or hosted_by (the node hosting it)",
                    e.agency
                )))
            }
        }
        for c in &e.comuni {
            ComuneCode::parse(c)
                .map_err(|err| Rejected::Invalid(format!("directory: {}: {err}", e.agency)))?;
        }
    }
    for a in &m.revoked {
        AgencyId::new(a).map_err(|err| Rejected::Invalid(format!("revoked: {err}")))?;
    }
    Ok(())
}

/// Builds and signs the next manifest.
pub fn sign(signer: &SigningIdentity, manifest: &Manifest) -> Result<String, JwsError> {
    jws::sign(signer, MANIFEST_TYP, &manifest.to_json())
}

/// Now, as a manifest's `issued_at`.
pub fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or(OffsetDateTime::now_utc());
    now.format(&Rfc3339).unwrap_or_default()
}

/// The manifest in force and how it is replaced.
pub struct ManifestState {
    current: ArcSwapOption<Active>,
    /// Offers are verified concurrently but installed one at a time.
    install: tokio::sync::Mutex<()>,
    path: PathBuf,
    pub prefettura: AgencyId,
    /// Wakes the fetcher (`POST /v1/manifest/notify` without a body).
    pub fetch_now: tokio::sync::Notify,
}

impl std::fmt::Debug for ManifestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManifestState")
            .field(
                "current",
                &self.current.load().as_ref().map(|a| a.manifest.version),
            )
            .finish_non_exhaustive()
    }
}

impl ManifestState {
    pub fn new(data_dir: &std::path::Path, prefettura: AgencyId) -> Self {
        Self {
            current: ArcSwapOption::empty(),
            install: tokio::sync::Mutex::new(()),
            path: data_dir.join(FILE),
            prefettura,
            fetch_now: tokio::sync::Notify::new(),
        }
    }

    /// The manifest in force, if any.
    pub fn current(&self) -> Option<Arc<Active>> {
        self.current.load_full()
    }

    /// Loads the persisted manifest (start-up). A file that no longer verifies (a corrupted
    /// disk, a revoked Prefettura certificate) is reported and ignored.
    pub async fn load_persisted(&self, trust: &TrustStore) -> Result<Option<u64>, Rejected> {
        let token = match tokio::fs::read_to_string(&self.path).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Rejected::Malformed(format!("{}: {e}", self.path.display()))),
        };
        let active = verify(trust, &self.prefettura, &token, Arrival::Installed).await?;
        let version = active.manifest.version;
        let _guard = self.install.lock().await;
        let newer = self
            .current
            .load()
            .as_ref()
            .is_none_or(|c| c.manifest.version < version);
        if newer {
            self.current.store(Some(Arc::new(active)));
        }
        Ok(Some(version))
    }

    /// Verifies `token` and, if it is newer than the manifest in force, writes it to disk and
    /// puts it in force.
    pub async fn offer(&self, trust: &TrustStore, token: &str) -> Result<Offer, Rejected> {
        let active = verify(trust, &self.prefettura, token, Arrival::New).await?;
        let version = active.manifest.version;
        let _guard = self.install.lock().await;
        if let Some(current) = self.current.load().as_ref() {
            let have = current.manifest.version;
            if current.token == active.token {
                return Ok(Offer::Unchanged(have));
            }
            if version < have {
                return Err(Rejected::Older { got: version, have });
            }
            if version == have {
                return Err(Rejected::SameVersion(version));
            }
            // Time moves forward with versions: a newer manifest issued before the one in
            // force is backdated.
            if issued(&active.manifest) < issued(&current.manifest) {
                return Err(Rejected::Backdated {
                    got: active.manifest.issued_at.clone(),
                    have: current.manifest.issued_at.clone(),
                });
            }
        }
        attesta_certs::fsutil::write_atomic(
            &self.path,
            active.token.as_bytes(),
            attesta_certs::fsutil::PUBLIC_MODE,
        )
        .map_err(|error| Rejected::Persist {
            path: self.path.clone(),
            error,
        })?;
        self.current.store(Some(Arc::new(active)));
        Ok(Offer::Installed(version))
    }
}

/// Fetches the manifest the Prefettura's node at `base` serves and verifies it against the
/// trust anchors of `settings`. `None`: nothing published yet.
pub async fn fetch_published(
    settings: &crate::config::Settings,
    client: &crate::client::Client,
    base: &str,
) -> anyhow::Result<Option<Manifest>> {
    use anyhow::Context as _;
    let reply = client
        .get(&format!("{base}{}", crate::wire::path::MANIFEST))
        .await
        .with_context(|| format!("fetching the manifest from {base}"))?;
    if reply.status == http::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !reply.status.is_success() {
        anyhow::bail!(
            "{base}{}: {}",
            crate::wire::path::MANIFEST,
            reply.problem_line()
        );
    }
    let token = String::from_utf8_lossy(&reply.body);
    let active = verify(
        &settings.trust,
        &settings.manifest.prefettura,
        &token,
        Arrival::Installed,
    )
    .await
    .with_context(|| format!("{base}: manifest refused"))?;
    Ok(Some(active.manifest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use attesta_policy::{DirectoryEntry, Service};

    fn entry(agency: &str, url: Option<&str>, host: Option<&str>) -> DirectoryEntry {
        DirectoryEntry {
            agency: agency.into(),
            url: url.map(Into::into),
            hosted_by: host.map(Into::into),
            serves: vec![Service::Residence],
            comuni: vec![],
        }
    }

    fn with(directory: Vec<DirectoryEntry>) -> Result<(), String> {
        check_names(&Manifest {
            version: 1,
            issued_at: "2026-12-01T00:00:00Z".into(),
            issuer: "prefettura-pu".into(),
            policy: String::new(),
            directory,
            revoked: vec![],
        })
        .map_err(|e| e.to_string())
    }

    #[test]
    fn a_hosted_agency_names_a_host_with_a_node_and_has_no_url_of_its_own() {
        let host = || entry("cst-pu", Some("https://127.0.0.1:8446"), None);
        assert!(with(vec![host(), entry("comune-fano", None, Some("cst-pu"))]).is_ok());
        for (bad, says) in [
            (
                vec![
                    host(),
                    entry("comune-fano", Some("https://127.0.0.1:1"), Some("cst-pu")),
                ],
                "has both url and hosted_by",
            ),
            (vec![entry("comune-fano", None, None)], "needs url"),
            (
                vec![entry("comune-fano", None, Some("cst-pu"))],
                "hosted_by cst-pu, which is not in the directory",
            ),
            (
                vec![
                    host(),
                    entry("comune-fano", None, Some("cst-pu")),
                    entry("comune-cagli", None, Some("comune-fano")),
                ],
                "hosted_by comune-fano, which is hosted itself",
            ),
        ] {
            let err = with(bad).unwrap_err();
            assert!(err.contains(says), "{err}");
        }
    }
}

//! The agencies a node serves: its own, and the tenants it hosts (a service centre, DESIGN §7).
//!
//! Each [`Served`] agency has its own part of the database ([`Store::scoped`]), its own audit
//! log (origin `<trust-domain>/<agency>/audit`, checkpoints signed with the agency's sign key
//! and cosigned like any other log), its own sign key (what the node answers for a tenant is
//! signed by the tenant: the comune stays the data controller, the host is its processor) and,
//! for a tenant, its own auth certificate, which the node presents on the calls it makes for
//! the tenant, so that peers decide by the tenant's grants and learn its identity from a
//! certificate. Shared: the process, the database, the listener, the manifest.
//!
//! A tenant lives in `<data_dir>/tenants/<agency>/`: `auth.crt`, `auth.key`, `sign.crt`,
//! `sign.key` (as `attesta ca issue` writes them), `audit.key` (made on first load) and
//! `tenant.toml` (what it serves). The node serves a tenant only while the manifest in force
//! says the node hosts it ([`Tenants::get`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use attesta_certs::{AgencyId, Identity, SigningIdentity};
use attesta_policy::Service;
use serde::{Deserialize, Serialize};

use crate::audit::log::AuditLog;
use crate::config::Settings;
use crate::store::Store;

/// One agency this node answers for.
pub(crate) struct Served {
    pub agency: AgencyId,
    pub store: Arc<Store>,
    pub audit: Arc<AuditLog>,
    pub signing: Arc<SigningIdentity>,
    /// The tenant's auth certificate, for the calls made on its behalf; `None` for the node's
    /// own agency, whose calls use the node's (reloadable) TLS identity.
    pub identity: Option<Identity>,
    pub serves: Vec<Service>,
    /// The tenant's directory (`None` for the node's own agency).
    pub dir: Option<PathBuf>,
    /// The serials of the tenant's auth and sign certificates, checked against the CRL in
    /// force on every request (empty for the node's own agency: its TLS reload does that).
    pub serials: Vec<Vec<u8>>,
    /// Getting this log's checkpoints cosigned.
    pub submitting: Submitting,
    /// How long this tenant's log entries are kept, when it is not the node's
    /// (`tenant.toml`'s `retention_days`; `Some(None)`: forever).
    pub retention: Option<Option<std::time::Duration>>,
}

/// One log's submissions to the witnesses (see `witness`).
#[derive(Default)]
pub(crate) struct Submitting {
    /// A round of submissions is under way.
    pub busy: std::sync::atomic::AtomicBool,
    /// The size each peer's witness last cosigned for this log, as it said.
    pub known: std::sync::Mutex<HashMap<String, u64>>,
    /// When the last round started.
    pub last_round: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Served {
    /// How long this agency's log entries are kept (`None`: forever): its own setting, else
    /// the node's.
    pub fn retention_or(&self, node: Option<std::time::Duration>) -> Option<std::time::Duration> {
        self.retention.unwrap_or(node)
    }

    /// Whether the CRL in force revokes one of the tenant's certificates.
    pub fn revoked(&self, trust: &attesta_certs::TrustStore) -> bool {
        self.serials.iter().any(|s| trust.is_revoked(s))
    }

    pub fn serves(&self, service: Service) -> bool {
        self.serves.contains(&service)
    }

    pub fn is_tenant(&self) -> bool {
        self.dir.is_some()
    }
}

impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Served")
            .field("agency", &self.agency)
            .field("tenant", &self.is_tenant())
            .finish_non_exhaustive()
    }
}

/// Errors loading a tenant: one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("{path}: {what}")]
    Invalid { path: PathBuf, what: String },
    #[error(transparent)]
    Load(#[from] attesta_certs::LoadError),
    #[error("tenant {0}: opening its part of the store")]
    Store(String, #[source] crate::store::StoreError),
    #[error("tenant {0}: opening its audit log")]
    Audit(String, #[source] crate::audit::log::AuditError),
}

/// `tenant.toml`: what the tenant serves.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// `residence`, `legal-presence`.
    #[serde(default)]
    pub serves: Vec<Service>,
    /// Days the tenant's log entries are kept (0: forever); absent: the node's
    /// `[audit] retention_days`. The comune, as controller, decides its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
}

impl TenantConfig {
    /// The tenant's own retention, if it sets one (`Some(None)`: forever).
    pub fn retention(&self) -> Option<Option<std::time::Duration>> {
        self.retention_days
            .map(|d| (d > 0).then(|| std::time::Duration::from_secs(u64::from(d) * 86_400)))
    }
}

/// The file names of a tenant's directory.
pub const TENANT_FILE: &str = "tenant.toml";

/// The directory of the node's tenants.
pub fn tenants_dir(settings: &Settings) -> PathBuf {
    settings.data_dir.join("tenants")
}

/// Loads tenant `agency` from `dir`: its certificates (both of `agency`, in the node's trust
/// domain), its audit key (made on first load, 0600), its part of `root` and its log.
pub(crate) fn load_tenant(
    settings: &Settings,
    root: &Store,
    agency: &AgencyId,
    dir: &Path,
) -> Result<Served, TenantError> {
    let td = &settings.trust_domain;
    let files = attesta_certs::AgencyFiles::in_dir(dir);
    let identity = Identity::load(td, &files.auth_cert, &files.auth_key)?;
    if identity.leaf.agency() != agency {
        return Err(TenantError::Invalid {
            path: files.auth_cert.clone(),
            what: format!(
                "is {}'s certificate, not tenant {agency}'s",
                identity.leaf.agency()
            ),
        });
    }
    let signing = SigningIdentity::load(td, &files.sign_cert, &files.sign_key)?;
    if &signing.id.agency != agency {
        return Err(TenantError::Invalid {
            path: files.sign_cert.clone(),
            what: format!(
                "is {}'s signing certificate, not tenant {agency}'s",
                signing.id.agency
            ),
        });
    }
    let config_path = dir.join(TENANT_FILE);
    let config: TenantConfig = match std::fs::read_to_string(&config_path) {
        Ok(text) => toml::from_str(&text).map_err(|e| TenantError::Invalid {
            path: config_path.clone(),
            what: e.message().replace('\n', " "),
        })?,
        Err(e) => {
            return Err(TenantError::Invalid {
                path: config_path,
                what: e.to_string(),
            })
        }
    };
    let store = Arc::new(
        root.scoped(agency.as_str())
            .map_err(|e| TenantError::Store(agency.to_string(), e))?,
    );
    let key = crate::audit::log::load_or_create_key(&dir.join("audit.key"))
        .map_err(|e| TenantError::Audit(agency.to_string(), e))?;
    let sign_serial = signing
        .cert
        .serial_number()
        .to_bn()
        .map(|b| b.to_vec())
        .map_err(|e| TenantError::Invalid {
            path: files.sign_cert.clone(),
            what: format!("unreadable serial number ({e})"),
        })?;
    let serials = vec![identity.leaf.serial.clone(), sign_serial];
    let signing = Arc::new(signing);
    let audit = AuditLog::open(
        store.clone(),
        key,
        crate::audit::log::origin(td.as_str(), agency.as_str()),
        signing.clone(),
    )
    .map_err(|e| TenantError::Audit(agency.to_string(), e))?;
    Ok(Served {
        agency: agency.clone(),
        store,
        audit: Arc::new(audit),
        signing,
        identity: Some(identity),
        serves: config.serves.clone(),
        dir: Some(dir.to_owned()),
        serials,
        submitting: Default::default(),
        retention: config.retention(),
    })
}

/// The tenants of a node, replaced as a whole when one is added or removed.
#[derive(Default)]
pub(crate) struct Tenants {
    map: ArcSwap<HashMap<AgencyId, Arc<Served>>>,
    /// Adding and removing run one at a time.
    pub changing: tokio::sync::Mutex<()>,
}

impl Tenants {
    /// Loads every tenant directory under `<data_dir>/tenants`.
    pub fn load(settings: &Settings, root: &Store) -> Result<Self, TenantError> {
        let dir = tenants_dir(settings);
        let mut map = HashMap::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => {
                return Err(TenantError::Invalid {
                    path: dir,
                    what: e.to_string(),
                })
            }
        };
        for entry in entries {
            let entry = entry.map_err(|e| TenantError::Invalid {
                path: dir.clone(),
                what: e.to_string(),
            })?;
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let agency = AgencyId::new(&name).map_err(|e| TenantError::Invalid {
                path: path.clone(),
                what: format!("not an agency id: {e}"),
            })?;
            let served = load_tenant(settings, root, &agency, &path)?;
            map.insert(agency, Arc::new(served));
        }
        Ok(Self {
            map: ArcSwap::from_pointee(map),
            changing: Default::default(),
        })
    }

    /// Every tenant loaded, served or not.
    pub fn all(&self) -> Arc<HashMap<AgencyId, Arc<Served>>> {
        self.map.load_full()
    }

    /// The tenant `agency`, if loaded.
    pub fn loaded(&self, agency: &str) -> Option<Arc<Served>> {
        let agency = AgencyId::new(agency).ok()?;
        self.map.load().get(&agency).cloned()
    }

    /// Adds (or replaces) a tenant.
    pub fn insert(&self, served: Arc<Served>) {
        self.map.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.insert(served.agency.clone(), served.clone());
            m
        });
    }

    /// Removes a tenant; it is returned for closing.
    pub fn remove(&self, agency: &AgencyId) -> Option<Arc<Served>> {
        let removed = self.map.load().get(agency).cloned();
        self.map.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.remove(agency);
            m
        });
        removed
    }
}

/// Why a tenant-addressed request is not served.
pub(crate) fn not_hosted(
    manifest: Option<&attesta_policy::Manifest>,
    me: &AgencyId,
    tenant: &str,
) -> Option<String> {
    let Some(m) = manifest else {
        return Some("no manifest is in force on this node: it serves no tenant yet".into());
    };
    match m.entry(tenant) {
        Some(e) if e.hosted_by.as_deref() == Some(me.as_str()) && !m.is_revoked(tenant) => None,
        Some(_) if m.is_revoked(tenant) => Some(format!(
            "agency {tenant} is revoked by the federation manifest"
        )),
        _ => Some(format!(
            "the federation manifest does not give {tenant} to this node ({me})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_tenant_keeps_its_log_as_long_as_it_says_else_as_long_as_its_host() {
        let parse = |text: &str| toml::from_str::<TenantConfig>(text).map(|c| c.retention());
        assert_eq!(
            parse("serves = [\"residence\"]").unwrap(),
            None,
            "the host's"
        );
        assert_eq!(parse("retention_days = 0").unwrap(), Some(None), "forever");
        assert_eq!(
            parse("retention_days = 90").unwrap(),
            Some(Some(Duration::from_secs(90 * 86_400)))
        );
        assert!(parse("retention_days = -1").is_err());
        assert!(parse("retention = 90").is_err(), "unknown keys are refused");
        // Written back as read: no key when the host's applies.
        let c = TenantConfig {
            serves: vec![Service::Residence],
            retention_days: None,
        };
        assert_eq!(toml::to_string(&c).unwrap(), "serves = [\"residence\"]\n");
    }
}

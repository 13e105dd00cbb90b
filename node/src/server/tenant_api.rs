//! `/v1/admin/tenants`: the host's operator adds, lists and removes the agencies its node
//! hosts, without a restart. Each call is an entry of the host's own log, like every request.
//!
//! - `POST /v1/admin/tenants/{agency}`: loads `<data_dir>/tenants/<agency>/` (written by
//!   `attesta tenant add`) and starts serving it. Refused while the manifest in force does not
//!   say this node hosts the agency.
//! - `GET /v1/admin/tenants`: every tenant loaded, whether the manifest gives it to this node,
//!   its datasets and its log.
//! - `DELETE /v1/admin/tenants/{agency}`: signs a last checkpoint of the tenant's log, has the
//!   witnesses cosign it, and writes the whole log as a bundle to `<data_dir>/removed/` before
//!   anything is deleted; then stops serving the tenant and deletes its data, its log and its
//!   directory. Nothing of the log is lost: the bundle verifies offline like any export.

use std::sync::Arc;

use attesta_certs::AgencyId;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::StatusCode;
use serde::Serialize;

use super::respond::{json, Resp};
use super::served::{self, Served};
use super::Shared;
use crate::audit::bundle::{Bundle, Header, Range};
use crate::audit::merkle;
use crate::problem::{Problem, ProblemKind};
use crate::store::Dataset;

/// How long a removal waits for the witnesses to cosign the tenant's last checkpoint.
const COSIGN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn failed(what: &str, e: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %e, "{what}");
    Problem::new(ProblemKind::Internal)
}

/// The tenant of a path segment.
pub(super) fn parse_agency(segment: &str) -> Result<AgencyId, Problem> {
    AgencyId::new(segment).map_err(|e| crate::wire::bad_request(format!("tenant {segment:?}: {e}")))
}

/// What the host says of one tenant.
#[derive(Debug, Serialize)]
pub struct TenantInfo {
    pub agency: String,
    /// The manifest in force gives this agency to this node (else it is loaded, not served).
    pub served: bool,
    pub serves: Vec<&'static str>,
    pub origin: String,
    pub log_size: u64,
    /// Days its log entries are kept (null: forever).
    pub retention_days: Option<u64>,
    pub residents: u64,
    pub residents_as_of: Option<String>,
    pub permits: u64,
    pub permits_as_of: Option<String>,
}

fn info(shared: &Shared, t: &Served) -> TenantInfo {
    let active = shared.manifest.current();
    let ds = |d| t.store.info(d).unwrap_or_default();
    let (r, p) = (ds(Dataset::Residents), ds(Dataset::Permits));
    TenantInfo {
        agency: t.agency.to_string(),
        served: served::not_hosted(
            active.as_ref().map(|a| &a.manifest),
            &shared.settings.agency,
            t.agency.as_str(),
        )
        .is_none(),
        serves: t.serves.iter().map(|s| s.as_str()).collect(),
        origin: t.audit.origin().to_owned(),
        log_size: t.audit.head().size,
        retention_days: t
            .retention_or(shared.settings.audit_retention)
            .map(|d| d.as_secs() / 86_400),
        residents: r.rows,
        residents_as_of: r.as_of.map(crate::domain::records::format_date),
        permits: p.rows,
        permits_as_of: p.as_of.map(crate::domain::records::format_date),
    }
}

/// `GET /v1/admin/tenants`.
pub(super) fn list(shared: &Shared) -> Resp {
    let all = shared.tenants.all();
    let mut tenants: Vec<TenantInfo> = all.values().map(|t| info(shared, t)).collect();
    tenants.sort_by(|a, b| a.agency.cmp(&b.agency));
    json(StatusCode::OK, &serde_json::json!({ "tenants": tenants }))
}

/// `POST /v1/admin/tenants/{agency}`.
pub(super) async fn add(shared: &Arc<Shared>, agency: AgencyId) -> Result<Resp, Problem> {
    let _one_at_a_time = shared.tenants.changing.lock().await;
    if agency == shared.settings.agency {
        return Err(crate::wire::bad_request(
            "a node does not host its own agency",
        ));
    }
    let active = shared.manifest.current();
    if let Some(why) = served::not_hosted(
        active.as_ref().map(|a| &a.manifest),
        &shared.settings.agency,
        agency.as_str(),
    ) {
        return Err(Problem::new(ProblemKind::Conflict).with_detail(format!(
            "{why}: the Prefettura lists it as hosted_by {} first",
            shared.settings.agency
        )));
    }
    if let Some(t) = shared.tenants.loaded(agency.as_str()) {
        return Ok(json(StatusCode::OK, &info(shared, &t)));
    }
    let dir = served::tenants_dir(&shared.settings).join(agency.as_str());
    if !dir.is_dir() {
        return Err(Problem::new(ProblemKind::NotFound).with_detail(format!(
            "no tenant directory {} on this node (attesta tenant add writes it)",
            dir.display()
        )));
    }
    let loading = {
        let shared = shared.clone();
        let agency = agency.clone();
        tokio::task::spawn_blocking(move || {
            served::load_tenant(&shared.settings, &shared.own.store, &agency, &dir)
        })
    };
    let tenant = match loading.await {
        Ok(Ok(t)) => Arc::new(t),
        Ok(Err(e)) => {
            return Err(
                Problem::new(ProblemKind::BadRequest).with_detail(crate::config::error_chain(&e))
            )
        }
        Err(e) => return Err(failed("loading a tenant", e)),
    };
    shared.tenants.insert(tenant.clone());
    tracing::info!(tenant = %agency, "tenant added");
    Ok(json(StatusCode::CREATED, &info(shared, &tenant)))
}

/// What a removal answers.
#[derive(Debug, Serialize)]
struct Removed {
    agency: String,
    /// The bundle of the tenant's whole log, on the host (none for a log without entries).
    bundle: Option<String>,
    bundle_sha256: Option<String>,
    entries: u64,
    cosignatures: usize,
}

/// `DELETE /v1/admin/tenants/{agency}`.
pub(super) async fn remove(shared: &Arc<Shared>, agency: AgencyId) -> Result<Resp, Problem> {
    let _one_at_a_time = shared.tenants.changing.lock().await;
    let tenant = shared.tenants.loaded(agency.as_str()).ok_or_else(|| {
        Problem::new(ProblemKind::UnknownTenant)
            .with_detail(format!("{agency} is not a tenant of this node"))
    })?;
    // Every entry under a signed checkpoint, cosigned if the witnesses answer in time, and
    // written out; a log that never had an entry has nothing to keep.
    let kept = if tenant.audit.head().size == 0 {
        None
    } else {
        super::sign_checkpoint(shared, &tenant).await;
        let _ = tokio::time::timeout(COSIGN_WAIT, super::witness::round(shared, &tenant)).await;
        let bundle = {
            let (shared, tenant) = (shared.clone(), tenant.clone());
            tokio::task::spawn_blocking(move || export(&shared, &tenant))
                .await
                .map_err(|e| failed("exporting a tenant's log", e))??
        };
        let mut bytes = Vec::new();
        bundle
            .write(&mut bytes)
            .map_err(|e| failed("writing a tenant's bundle", e))?;
        let dir = shared.settings.data_dir.join("removed");
        let name = format!(
            "{agency}-{}.bundle",
            time::OffsetDateTime::now_utc().unix_timestamp()
        );
        let path = dir.join(name);
        attesta_certs::fsutil::ensure_dir(&dir).map_err(|e| failed("creating removed/", e))?;
        attesta_certs::fsutil::write_atomic(&path, &bytes, attesta_certs::fsutil::PRIVATE_MODE)
            .map_err(|e| failed("writing a tenant's bundle", e))?;
        Some((path, bytes, bundle))
    };

    // Only now: stop serving, close the log, delete.
    shared.tenants.remove(&agency);
    tenant.audit.close();
    let deleting = {
        let tenant = tenant.clone();
        tokio::task::spawn_blocking(move || {
            tenant.store.delete_scope()?;
            if let Some(dir) = &tenant.dir {
                std::fs::remove_dir_all(dir)
                    .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
            }
            Ok::<_, crate::store::StoreError>(())
        })
    };
    deleting
        .await
        .map_err(|e| failed("deleting a tenant", e))?
        .map_err(|e| failed("deleting a tenant", e))?;
    tracing::info!(tenant = %agency, "tenant removed");
    let removed = match kept {
        None => Removed {
            agency: agency.to_string(),
            bundle: None,
            bundle_sha256: None,
            entries: 0,
            cosignatures: 0,
        },
        Some((path, bytes, bundle)) => Removed {
            agency: agency.to_string(),
            bundle: Some(path.display().to_string()),
            bundle_sha256: Some(hex::encode(crate::audit::entry::sha256(&bytes))),
            entries: bundle.entries.len() as u64,
            cosignatures: crate::audit::note::Note::parse(&bundle.header.checkpoint)
                .map_or(0, |n| n.signatures.len().saturating_sub(1)),
        },
    };
    Ok(json(StatusCode::OK, &removed))
}

/// The tenant's log as a bundle: every entry still kept (a range from the first kept one, if
/// retention pruned older ones), under its latest published checkpoint.
fn export(shared: &Shared, t: &Served) -> Result<Bundle, Problem> {
    let signed = t
        .audit
        .published()
        .or_else(|| t.audit.latest())
        .ok_or_else(|| {
            Problem::new(ProblemKind::Conflict)
                .with_detail("the tenant's log has no signed checkpoint yet: try again")
        })?;
    let size = signed.checkpoint.size;
    let first = t
        .audit
        .first_kept()
        .map_err(|e| failed("reading a tenant's log", e))?
        .min(size);
    let entries = t
        .store
        .audit_entries(first, size)
        .map_err(|e| failed("reading a tenant's log", e))?;
    let range = if first == 0 {
        None
    } else {
        let tree = t.audit.tree();
        let path = merkle::inclusion_proof(&tree, first, size)
            .map_err(|e| failed("proving a tenant's log", e))?;
        let left = merkle::left_subtrees(first, size, &path)
            .map_err(|e| failed("proving a tenant's log", e))?;
        Some(Range {
            start: first,
            left: left.iter().map(|h| STANDARD.encode(h)).collect(),
            consistency: Vec::new(),
        })
    };
    let note = signed.note.render();
    Ok(Bundle {
        header: Header {
            agency: t.agency.to_string(),
            origin: signed.checkpoint.origin.clone(),
            exported_at: crate::manifest::now_rfc3339(),
            checkpoint: note,
            signer: t.signing.cert_pem(),
            witnesses: shared.witness.certificates_for(&signed.note),
            range,
        },
        leaves: entries.iter().map(|e| merkle::leaf_hash(e)).collect(),
        entries,
    })
}

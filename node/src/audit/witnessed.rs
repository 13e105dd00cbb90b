//! The witness's state, as this node keeps it for every peer log it cosigns: the latest
//! checkpoint cosigned (size, root) and the log's signing certificate. The witness endpoint
//! (`server::witness`) reads and writes it under its lock; [`forget`] is the operator's reset,
//! run with the node stopped (`attesta node forget-witnessed`).

use std::sync::Arc;

use attesta_certs::AgencyId;
use serde::{Deserialize, Serialize};

/// The witness's state for one log: the latest checkpoint it cosigned.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Witnessed {
    pub size: u64,
    /// Standard base64.
    pub root: String,
    /// The log's signing certificate, PEM.
    pub signer: String,
}

/// What [`forget`] dropped, and where it logged doing so.
#[derive(Debug)]
pub struct Forgotten {
    pub origin: String,
    pub size: u64,
    pub root: String,
    /// This node's log entry that records the reset.
    pub entry: u64,
}

/// Drops this witness's state for `agency`'s log, so that it cosigns that log again from
/// scratch (after the peer lost its log and the federation accepted its new history). The node
/// must be stopped: its database is opened here. The reset is first logged as a `change`
/// entry (route `witness`, the forgotten size and root, the SHA-256 of the state), so auditors
/// of this node see when and what it forgot.
pub async fn forget(
    settings: &crate::config::Settings,
    agency: &AgencyId,
) -> anyhow::Result<Forgotten> {
    use anyhow::Context;
    let db = settings.data_dir.join("db");
    let store = Arc::new(
        crate::store::Store::open(&db)
            .with_context(|| format!("is the node running? stop it first ({})", db.display()))?,
    );
    let audit = crate::audit::log::AuditLog::open(
        store.clone(),
        crate::audit::log::load_or_create_key(&settings.data_dir.join("audit.key"))?,
        crate::audit::log::origin(settings.trust_domain.as_str(), settings.agency.as_str()),
        settings.signing.clone(),
    )?;
    let origin = crate::audit::log::origin(settings.trust_domain.as_str(), agency.as_str());
    let Some(bytes) = store.audit_get(true, origin.as_bytes())? else {
        anyhow::bail!("this node has cosigned nothing of {agency}'s log: nothing to forget");
    };
    let state: Witnessed = serde_json::from_slice(&bytes)
        .with_context(|| format!("the witness state of {origin} is corrupt"))?;
    let mut query_id = [0u8; 16];
    attesta_certs::random_bytes(&mut query_id);
    let entry = crate::audit::entry::Entry {
        time_ms: crate::audit::entry::now_ms(),
        query_id,
        direction: crate::audit::entry::Direction::Change,
        peer_agency: agency.to_string(),
        peer_cert: None,
        route: "witness".into(),
        purpose: crate::domain::purpose::fixed::FEDERATION.into(),
        subject: None,
        decision: crate::audit::entry::Decision::None,
        rule: format!(
            "forgot {origin} at size {} (root {})",
            state.size, state.root
        ),
        policy_version: String::new(),
        status: 0,
        request_sha256: crate::audit::entry::sha256(&bytes),
        response_sha256: None,
        operator: None,
    };
    let index = audit.append(&[entry]).await?;
    store.audit_delete(true, origin.as_bytes())?;
    audit.close();
    Ok(Forgotten {
        origin,
        size: state.size,
        root: state.root,
        entry: index,
    })
}

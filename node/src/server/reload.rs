//! Hot reload of the CA, CRL, certificate and key.
//!
//! Files are polled (size, mtime, inode: an atomic rename changes the inode) and SIGHUP forces
//! a reload. A reload that fails — a half-copied CRL, a key that does not match — keeps the
//! configuration in force and is logged and counted; the node never drops to "no TLS".

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use attesta_certs::{Identity, TrustStore};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tracing::{info, warn};

use super::{Shared, TlsState};
use crate::config::error_chain;
use crate::metrics::Outcome;

type Stamp = Vec<Option<(u64, i64, i64, u64)>>;

fn stamp(paths: impl Iterator<Item = impl AsRef<Path>>) -> Stamp {
    paths
        .map(|p| {
            std::fs::metadata(p.as_ref())
                .ok()
                .map(|m| (m.len(), m.mtime(), m.mtime_nsec(), m.ino()))
        })
        .collect()
}

/// Watches the TLS files until `stop` turns true.
pub(super) async fn watch(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let settings = &shared.settings;
    let mut last = stamp(settings.tls_paths.all());
    let mut interval = tokio::time::interval(settings.reload_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            warn!(error = %e, "cannot listen for SIGHUP; reloading on file changes only");
            None
        }
    };
    loop {
        let forced = tokio::select! {
            _ = interval.tick() => false,
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
            _ = stop.changed() => return,
        };
        let now = stamp(settings.tls_paths.all());
        if !forced && now == last {
            continue;
        }
        last = now;
        reload(&shared);
    }
}

/// Rebuilds the TLS configuration from the files and swaps it in, or keeps the old one.
pub(super) fn reload(shared: &Shared) {
    let s = &shared.settings;
    let result = TrustStore::load(
        s.trust_domain.clone(),
        &s.tls_paths.ca,
        s.tls_paths.crl.as_deref(),
    )
    .and_then(|trust| {
        let identity = Identity::load(&s.trust_domain, &s.tls_paths.cert, &s.tls_paths.key)?;
        if identity.leaf.agency() != &s.agency {
            return Err(attesta_certs::LoadError::Config(format!(
                "new certificate is for agency {}, not {}",
                identity.leaf.agency(),
                s.agency
            )));
        }
        Ok((trust, identity))
    })
    .map_err(super::ServeError::from)
    .and_then(|(trust, identity)| TlsState::build(trust, &identity));
    match result {
        Ok(state) => {
            let revoked = state.trust.revoked_count();
            shared.tls.store(Arc::new(state));
            shared.metrics.crl_revoked.set(revoked as i64);
            shared
                .metrics
                .tls_reloads
                .get_or_create(&Outcome { result: "ok" })
                .inc();
            info!(revoked, "TLS configuration reloaded");
        }
        Err(e) => {
            shared
                .metrics
                .tls_reloads
                .get_or_create(&Outcome { result: "error" })
                .inc();
            warn!(error = %error_chain(&e), "TLS reload failed; keeping the configuration in force");
        }
    }
}

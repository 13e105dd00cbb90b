//! Access control: the policy decision every route goes through before it reads any data.
//!
//! Each route has a guard ([`super::routes::Route::guard`]): open to any federation member
//! (health, identity, the manifest itself), the Prefettura named in `node.toml` (manifest
//! notifications), or a policy decision on (agency, resource, action, purpose, territory).
//! The decision is recorded with the policy version, for the request log and the audit log.

use attesta_policy::{Decision, Request};

use super::{Peer, Shared};
use crate::metrics::RouteDecision;
use crate::problem::{Problem, ProblemKind};

/// Purposes fixed by the route rather than declared by the caller.
pub mod purpose {
    /// Imports into a node.
    pub const DATA_LOAD: &str = "data-load";
    /// Metrics scraping.
    pub const OPERATIONS: &str = "operations";
    /// Publishing the manifest.
    pub const FEDERATION: &str = "federation";
    /// Reading the audit log.
    pub const AUDIT: &str = "audit";
}

/// The territory of a request that is not about one.
pub const ANY_TERRITORY: &str = "*";

/// A decision taken on a request, as recorded.
#[derive(Debug, Clone)]
pub struct Decided {
    pub allow: bool,
    /// The matched rule (allow) or the reason (deny).
    pub explanation: String,
    /// The version hash of the policy that decided, if one was in force.
    pub policy_version: Option<String>,
    /// The purpose the request declared (or the route fixes).
    pub purpose: String,
}

/// Reading a node's audit log (auditors).
pub const AUDIT_READ: Ask<'static> = Ask {
    resource: "audit",
    action: "read",
    purpose: purpose::AUDIT,
    territory: ANY_TERRITORY,
};

/// What one request asks the policy.
#[derive(Debug)]
pub struct Ask<'a> {
    pub resource: &'a str,
    pub action: &'a str,
    pub purpose: &'a str,
    pub territory: &'a str,
}

/// Decides `ask` for `peer` under the manifest in force; records the decision in `record`.
/// A denial is a 403 problem naming the rule or the missing grant (the caller's own, never
/// anyone else's).
pub fn authorize(
    shared: &Shared,
    peer: &Peer,
    route: &'static str,
    ask: Ask<'_>,
    record: &mut Option<Decided>,
) -> Result<(), Problem> {
    let Some(active) = shared.manifest.current() else {
        let reason = "no policy manifest is in force on this node yet: everything is denied";
        *record = Some(Decided {
            allow: false,
            explanation: reason.into(),
            policy_version: None,
            purpose: ask.purpose.to_owned(),
        });
        count(shared, route, false);
        return Err(Problem::new(ProblemKind::PolicyDenied).with_detail(reason));
    };
    let version = active.policy.version().to_owned();
    let request = Request {
        agency: peer.leaf.agency().to_string(),
        resource: ask.resource.to_owned(),
        action: ask.action.to_owned(),
        purpose: ask.purpose.to_owned(),
        territory: ask.territory.to_owned(),
    };
    let decision = active.policy.decide(&request).unwrap_or_else(|e| {
        tracing::error!(error = %e, "policy evaluation failed; denying");
        Decision::Deny {
            reason: "the policy could not be evaluated".into(),
        }
    });
    match decision {
        Decision::Allow { rule } => {
            count(shared, route, true);
            *record = Some(Decided {
                allow: true,
                explanation: rule,
                policy_version: Some(version),
                purpose: request.purpose,
            });
            Ok(())
        }
        Decision::Deny { reason } => {
            count(shared, route, false);
            let problem = Problem::new(ProblemKind::PolicyDenied)
                .with_detail(reason.clone())
                .with_extension("policy_version", version.clone().into())
                .with_extension("manifest_version", active.manifest.version.into());
            *record = Some(Decided {
                allow: false,
                explanation: reason,
                policy_version: Some(version),
                purpose: request.purpose,
            });
            Err(problem)
        }
    }
}

fn count(shared: &Shared, route: &'static str, allow: bool) {
    shared
        .metrics
        .policy_decisions
        .get_or_create(&RouteDecision {
            route,
            decision: if allow { "allow" } else { "deny" },
        })
        .inc();
}

//! Access control: the policy decision every route goes through before it reads any data.
//!
//! Each route has a guard ([`super::routes::Route::guard`]): open to any federation member
//! (health, identity, the manifest itself), the Prefettura named in `node.toml` (manifest
//! notifications), or a policy decision on (agency, resource, action, purpose, territory).
//! The decision is recorded with the policy version, for the request log and the audit log.

use attesta_certs::AgencyId;
use attesta_policy::{Decision, Policy, Request};

use super::{Peer, Shared};
use crate::metrics::RouteDecision;
use crate::problem::{Problem, ProblemKind};

/// Purposes fixed by the route rather than declared by the caller.
pub use crate::domain::purpose::fixed as purpose;

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

/// What the policy granted: the rule that matched, under which policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permit {
    pub rule: String,
    pub policy_version: String,
}

/// Why the policy refused: the missing grant or the denying rule (the caller's own, never
/// anyone else's), and the policy and manifest that decided, if one was in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub reason: String,
    pub policy_version: Option<String>,
    pub manifest_version: Option<u64>,
}

impl Denied {
    /// The 403 the caller gets.
    pub fn problem(&self) -> Problem {
        let mut p = Problem::new(ProblemKind::PolicyDenied).with_detail(self.reason.clone());
        if let (Some(policy), Some(manifest)) = (&self.policy_version, self.manifest_version) {
            p = p
                .with_extension("policy_version", policy.clone().into())
                .with_extension("manifest_version", manifest.into());
        }
        p
    }
}

/// The policy's answer to `agency` asking `ask`, under `in_force` (the policy and the version
/// of the manifest that carries it; none: everything is denied). Pure: no metrics, no log,
/// no record; the caller does those with what this returns.
pub fn check(
    in_force: Option<(&Policy, u64)>,
    agency: &AgencyId,
    ask: &Ask<'_>,
) -> Result<Permit, Denied> {
    let Some((policy, manifest_version)) = in_force else {
        return Err(Denied {
            reason: "no policy manifest is in force on this node yet: everything is denied".into(),
            policy_version: None,
            manifest_version: None,
        });
    };
    let version = policy.version().to_owned();
    let request = Request {
        agency: agency.to_string(),
        resource: ask.resource.to_owned(),
        action: ask.action.to_owned(),
        purpose: ask.purpose.to_owned(),
        territory: ask.territory.to_owned(),
    };
    let decision = policy.decide(&request).unwrap_or_else(|e| {
        tracing::error!(error = %e, "policy evaluation failed; denying");
        Decision::Deny {
            reason: "the policy could not be evaluated".into(),
        }
    });
    match decision {
        Decision::Allow { rule } => Ok(Permit {
            rule,
            policy_version: version,
        }),
        Decision::Deny { reason } => Err(Denied {
            reason,
            policy_version: Some(version),
            manifest_version: Some(manifest_version),
        }),
    }
}

/// [`check`] under the manifest in force on this node, for a route: the decision is counted,
/// recorded in `record` (for the request's log line and audit entry) and a denial becomes
/// its 403.
pub fn authorize(
    shared: &Shared,
    peer: &Peer,
    route: &'static str,
    ask: Ask<'_>,
    record: &mut Option<Decided>,
) -> Result<Permit, Problem> {
    let active = shared.manifest.current();
    let decided = check(
        active.as_ref().map(|a| (&a.policy, a.manifest.version)),
        peer.leaf.agency(),
        &ask,
    );
    count(shared, route, decided.is_ok());
    let (allow, explanation, policy_version) = match &decided {
        Ok(p) => (true, p.rule.clone(), Some(p.policy_version.clone())),
        Err(d) => (false, d.reason.clone(), d.policy_version.clone()),
    };
    *record = Some(Decided {
        allow,
        explanation,
        policy_version,
        purpose: ask.purpose.to_owned(),
    });
    decided.map_err(|d| d.problem())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ask<'a>(resource: &'a str, purpose: &'a str) -> Ask<'a> {
        Ask {
            resource,
            action: "read",
            purpose,
            territory: ANY_TERRITORY,
        }
    }

    #[tokio::test]
    async fn the_check_is_a_function_of_policy_agency_and_question() {
        let policy = Policy::load(
            "p, inps-pesaro, residence, read, benefit-eligibility, *, allow\n\
             p, asl-1, residence, read, *, *, deny\n",
        )
        .await
        .unwrap();
        let inps = AgencyId::new("inps-pesaro").unwrap();
        let asl = AgencyId::new("asl-1").unwrap();
        let permit = check(
            Some((&policy, 7)),
            &inps,
            &ask("residence", "benefit-eligibility"),
        )
        .unwrap();
        assert!(permit.rule.contains("inps-pesaro, residence"), "{permit:?}");
        assert_eq!(permit.policy_version, policy.version());

        // Another purpose, another agency's explicit deny: the caller's own reason only.
        let d = check(Some((&policy, 7)), &inps, &ask("residence", "statistics")).unwrap_err();
        assert!(d.reason.starts_with("no rule grants"), "{d:?}");
        assert_eq!(d.manifest_version, Some(7));
        let d = check(
            Some((&policy, 7)),
            &asl,
            &ask("residence", "benefit-eligibility"),
        )
        .unwrap_err();
        assert!(
            d.reason.contains("asl-1, residence, read, *, *, deny"),
            "{d:?}"
        );
        assert!(!d.reason.contains("inps-pesaro"), "{d:?}");
        let p = d.problem();
        assert_eq!(p.status, 403);
        assert_eq!(p.extensions["manifest_version"], 7);

        // No manifest in force: everything is denied, with no versions to name.
        let d = check(None, &inps, &ask("residence", "benefit-eligibility")).unwrap_err();
        assert_eq!(d.policy_version, None);
        assert!(d.problem().extensions.is_empty());
    }
}

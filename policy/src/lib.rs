//! attesta's access policy: the casbin model and default policy, and the enforcement wrapper
//! every route will go through. This is the only crate that names `casbin`.
//!
//! A request is (agency, resource, action, purpose, territory). Deny by default; an explicit
//! deny beats any allow; allow rules name their purposes (no wildcard), so a request without a
//! declared purpose is denied. Decisions are cached per policy (a [`Policy`] is immutable: a
//! new policy is a new value, so its cache starts empty and a swap invalidates by
//! construction).
//!
//! - [`rules`]: the policy text itself: line checks, grant/revoke edits, diffs, purposes.
//! - [`manifest`]: the document the Prefettura signs (policy + directory + revocations).

use std::collections::HashMap;
use std::sync::Mutex;

pub mod manifest;
pub mod rules;

pub use manifest::{
    tenant_prefix, DirectoryEntry, Endpoint, Manifest, Service, MANIFEST_TYP, TENANTS_PATH,
};
pub use rules::{Diff, Line, Rule};

use casbin::{CoreApi, DefaultModel, Enforcer, StringAdapter};
use sha2::{Digest, Sha256};

/// The casbin model, embedded.
pub const MODEL: &str = include_str!("../conf/model.conf");
/// The demo federation's default policy, embedded.
pub const DEFAULT_POLICY: &str = include_str!("../conf/default.csv");

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy does not load: {0}")]
    Load(String),
    #[error("policy evaluation failed: {0}")]
    Evaluate(String),
    #[error("{0}")]
    Edit(String),
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Request {
    pub agency: String,
    pub resource: String,
    pub action: String,
    pub purpose: String,
    /// The comune (ISTAT code) the request is about, or `*` when it is not about one.
    pub territory: String,
}

/// A decision. A denial is a normal outcome, not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by this rule (`p, sub, res, act, purpose, territory, eft`).
    Allow { rule: String },
    /// Denied, and why: the deny rule that matched, or the missing grant.
    Deny { reason: String },
}

impl Decision {
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }
}

/// A loaded policy: model + rules, with its version hash and a decision cache.
pub struct Policy {
    enforcer: Enforcer,
    version: String,
    cache: Mutex<HashMap<Request, Decision>>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Most cached decisions before the cache is emptied (requests are few distinct shapes).
const CACHE_MAX: usize = 65_536;

impl Policy {
    /// Loads `rules` (casbin CSV lines: `p, ...` and `g, ...`; `#` comments) with the model.
    pub async fn load(text: &str) -> Result<Self, PolicyError> {
        let model = DefaultModel::from_str(MODEL)
            .await
            .map_err(|e| PolicyError::Load(e.to_string()))?;
        let lines: String = rules::normalise(text)?
            .iter()
            .map(|l| format!("{l}\n"))
            .collect();
        let adapter = StringAdapter::new(lines.clone());
        let enforcer = Enforcer::new(model, adapter)
            .await
            .map_err(|e| PolicyError::Load(e.to_string()))?;
        let version = hex::encode(Sha256::digest(lines.as_bytes()));
        Ok(Self {
            enforcer,
            version,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// SHA-256 of the normalised rules: recorded with every decision.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Decides a request, explaining the outcome.
    pub fn decide(&self, req: &Request) -> Result<Decision, PolicyError> {
        if req.purpose.trim().is_empty() {
            return Ok(Decision::Deny {
                reason: "no purpose declared".into(),
            });
        }
        if let Some(d) = self.lock().get(req) {
            return Ok(d.clone());
        }
        let decision = self.decide_uncached(req)?;
        let mut cache = self.lock();
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(req.clone(), decision.clone());
        Ok(decision)
    }

    /// Decides a request with casbin, bypassing the cache (for `explain` and benchmarks).
    pub fn decide_uncached(&self, req: &Request) -> Result<Decision, PolicyError> {
        if req.purpose.trim().is_empty() {
            return Ok(Decision::Deny {
                reason: "no purpose declared".into(),
            });
        }
        let (allowed, rules) = self
            .enforcer
            .enforce_ex((
                req.agency.as_str(),
                req.resource.as_str(),
                req.action.as_str(),
                req.purpose.as_str(),
                req.territory.as_str(),
            ))
            .map_err(|e| PolicyError::Evaluate(e.to_string()))?;
        let rule = rules.first().map(|r| format!("p, {}", r.join(", ")));
        let decision = match (allowed, rule) {
            (true, Some(rule)) => Decision::Allow { rule },
            (true, None) => Decision::Allow {
                rule: "p, ?".into(),
            },
            (false, Some(rule)) if rule.ends_with("deny") => Decision::Deny {
                reason: format!("denied by rule: {rule}"),
            },
            (false, _) => Decision::Deny {
                reason: format!(
                    "no rule grants {} {} for purpose {:?}{}",
                    req.action,
                    req.resource,
                    req.purpose,
                    if req.territory == "*" {
                        String::new()
                    } else {
                        format!(" in territory {}", req.territory)
                    }
                ),
            },
        };
        Ok(decision)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Request, Decision>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests;

//! Who among the agency's staff may do what at its console: `<data_dir>/operators.toml`,
//! the agency's own decision (the Prefettura's manifest says what the *agency* may do; the
//! agency says which of its people act for it, and the federation never learns their names).
//!
//! ```toml
//! [operators]
//! "mario.rossi" = ["clerk"]
//! "laura.bianchi" = ["registry-officer", "auditor"]
//! ```
//!
//! An operator not listed has no role: they can sign in and see who they are, nothing more.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use attesta_certs::OperatorName;
use serde::{Deserialize, Serialize};

/// The file's name in the node's data directory.
pub const FILE: &str = "operators.toml";

/// What a person may do at the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Checks a person's status for a purpose the agency is granted (an INPS counter).
    Clerk,
    /// Keeps a comune's registry: imports, expiring permits of its residents.
    RegistryOfficer,
    /// Edits and publishes the federation's policy (the Prefettura).
    PolicyOfficer,
    /// Reads and verifies logs, prints a citizen's access report.
    Auditor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Clerk => "clerk",
            Role::RegistryOfficer => "registry-officer",
            Role::PolicyOfficer => "policy-officer",
            Role::Auditor => "auditor",
        }
    }
}

/// `operators.toml`, as read.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operators {
    #[serde(default)]
    pub operators: BTreeMap<String, Vec<Role>>,
}

impl Operators {
    /// The roles of `name` (none when not listed).
    pub fn of(&self, name: &OperatorName) -> Vec<Role> {
        let mut r = self
            .operators
            .get(name.as_str())
            .cloned()
            .unwrap_or_default();
        r.sort();
        r.dedup();
        r
    }
}

/// Why `operators.toml` could not be used: the file and the reason, in one line.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct RolesError {
    pub path: PathBuf,
    pub reason: String,
}

/// Reads `<data_dir>/operators.toml`; a missing file is no operators.
pub fn load(data_dir: &Path) -> Result<Operators, RolesError> {
    let path = data_dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Operators::default()),
        Err(e) => {
            return Err(RolesError {
                path,
                reason: e.to_string(),
            })
        }
    };
    let ops: Operators = toml::from_str(&text).map_err(|e| RolesError {
        path: path.clone(),
        reason: e.message().replace('\n', " "),
    })?;
    for name in ops.operators.keys() {
        OperatorName::new(name).map_err(|e| RolesError {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_read_per_operator_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().operators.is_empty(), "no file");
        let write = |t: &str| std::fs::write(dir.path().join(FILE), t).unwrap();
        write("[operators]\n\"mario.rossi\" = [\"clerk\", \"auditor\", \"clerk\"]\n");
        let ops = load(dir.path()).unwrap();
        let mario = OperatorName::new("mario.rossi").unwrap();
        assert_eq!(ops.of(&mario), vec![Role::Clerk, Role::Auditor]);
        assert!(ops.of(&OperatorName::new("anna").unwrap()).is_empty());
        for (bad, why) in [
            (
                "[operators]\n\"mario.rossi\" = [\"boss\"]\n",
                "unknown variant",
            ),
            (
                "[operators]\n\"Mario Rossi\" = [\"clerk\"]\n",
                "operator name",
            ),
            ("[staff]\n", "unknown field"),
        ] {
            write(bad);
            let e = load(dir.path()).unwrap_err().to_string();
            assert!(
                e.contains("operators.toml") && e.contains(why),
                "{bad}: {e}"
            );
        }
    }
}

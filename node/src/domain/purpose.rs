//! The purpose a request declares (purpose limitation: every grant names one). Parsed once,
//! where the request arrives; handlers and the policy only see a [`Purpose`].

use std::fmt;
use std::ops::Deref;

/// Purposes fixed by a route rather than declared by the caller.
pub mod fixed {
    /// Imports into a node.
    pub const DATA_LOAD: &str = "data-load";
    /// Metrics scraping.
    pub const OPERATIONS: &str = "operations";
    /// Publishing the manifest, and the federation's own changes (witness resets).
    pub const FEDERATION: &str = "federation";
    /// Reading the audit log.
    pub const AUDIT: &str = "audit";
}

/// A declared purpose: at most 64 characters of `a-z`, `0-9`, `-` and `_`. Empty when the
/// request declared none (the parser accepts that; the policy denies it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Purpose(String);

/// Why a string is not a purpose.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("purpose: 1-64 characters of a-z, 0-9, '-' and '_'")]
pub struct PurposeError;

impl Purpose {
    pub fn parse(s: &str) -> Result<Self, PurposeError> {
        let ok = s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(PurposeError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Purpose {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_purpose_is_short_lower_case_words() {
        for ok in [
            "",
            "benefit-eligibility",
            "permit_renewal",
            "a1",
            &"x".repeat(64),
        ] {
            assert_eq!(Purpose::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "Benefit",
            "with space",
            "è",
            "a/b",
            "a,b",
            &"x".repeat(65),
            "*",
        ] {
            assert_eq!(Purpose::parse(bad), Err(PurposeError), "{bad:?}");
        }
    }
}

//! Names: agency ids, trust domains and the SPIFFE ids that join them.
//!
//! These types are the only place where the syntax of a name is checked. Code that holds an
//! [`AgencyId`] never re-validates it.

use std::fmt;
use std::str::FromStr;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("agency id {0:?} is not 1-63 characters of a-z, 0-9 and '-'")]
    AgencyId(String),
    #[error("trust domain {0:?} is not 1-255 characters of a-z, 0-9, '.', '-' and '_'")]
    TrustDomain(String),
    #[error("{0:?} is not a SPIFFE id of the form spiffe://<trust-domain>/agency/<agency-id>")]
    SpiffeId(String),
    #[error("operator name {0:?} is not 1-64 characters of a-z, 0-9, '.', '-' and '_', starting with a letter or digit")]
    OperatorName(String),
    #[error(
        "{0:?} is not an operator SPIFFE id (spiffe://<trust-domain>/agency/<agency-id>/operator/<name>)"
    )]
    OperatorId(String),
}

/// An agency's identifier, such as `comune-pesaro`: `[a-z0-9-]{1,63}`, not starting or ending
/// with `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgencyId(String);

impl AgencyId {
    pub fn new(s: &str) -> Result<Self, NameError> {
        let ok = (1..=63).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(NameError::AgencyId(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AgencyId {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for AgencyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A SPIFFE trust domain, such as `pu.attesta.it`: the federation's name.
///
/// Follows the SPIFFE ID specification: lower-case letters, digits, `.`, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrustDomain(String);

impl TrustDomain {
    pub fn new(s: &str) -> Result<Self, NameError> {
        let ok = (1..=255).contains(&s.len())
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
            });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(NameError::TrustDomain(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for TrustDomain {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `spiffe://<trust-domain>/agency/<agency-id>`: who an agency is, as written in the URI SAN
/// of its certificates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpiffeId {
    pub trust_domain: TrustDomain,
    pub agency: AgencyId,
}

impl SpiffeId {
    pub fn new(trust_domain: TrustDomain, agency: AgencyId) -> Self {
        Self {
            trust_domain,
            agency,
        }
    }

    pub fn parse(uri: &str) -> Result<Self, NameError> {
        let bad = || NameError::SpiffeId(uri.to_owned());
        let rest = uri.strip_prefix("spiffe://").ok_or_else(bad)?;
        let (td, path) = rest.split_once('/').ok_or_else(bad)?;
        let agency = path.strip_prefix("agency/").ok_or_else(bad)?;
        Ok(Self {
            trust_domain: TrustDomain::new(td).map_err(|_| bad())?,
            agency: AgencyId::new(agency).map_err(|_| bad())?,
        })
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spiffe://{}/agency/{}", self.trust_domain, self.agency)
    }
}

/// A member of an agency's staff, such as `mario.rossi`: 1-64 characters of `a-z`, `0-9`,
/// `.`, `-` and `_` (SPIFFE path-segment characters), starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OperatorName(String);

impl OperatorName {
    pub fn new(s: &str) -> Result<Self, NameError> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
            })
            && s.as_bytes()[0].is_ascii_alphanumeric();
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(NameError::OperatorName(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OperatorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `spiffe://<trust-domain>/agency/<agency-id>/operator/<name>`: a person who works for an
/// agency, as written in the URI SAN of their operator certificate. Never an agency identity:
/// [`SpiffeId::parse`] refuses it, so an operator certificate opens no node's API port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OperatorId {
    pub trust_domain: TrustDomain,
    pub agency: AgencyId,
    pub operator: OperatorName,
}

impl OperatorId {
    pub fn parse(uri: &str) -> Result<Self, NameError> {
        let bad = || NameError::OperatorId(uri.to_owned());
        let rest = uri.strip_prefix("spiffe://").ok_or_else(bad)?;
        let (td, path) = rest.split_once('/').ok_or_else(bad)?;
        let path = path.strip_prefix("agency/").ok_or_else(bad)?;
        let (agency, operator) = path.split_once("/operator/").ok_or_else(bad)?;
        Ok(Self {
            trust_domain: TrustDomain::new(td).map_err(|_| bad())?,
            agency: AgencyId::new(agency).map_err(|_| bad())?,
            operator: OperatorName::new(operator).map_err(|_| bad())?,
        })
    }
}

impl fmt::Display for OperatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "spiffe://{}/agency/{}/operator/{}",
            self.trust_domain, self.agency, self.operator
        )
    }
}

#[cfg(test)]
mod tests;

//! The two facts the federation exists to answer, computed from a node's own records as of a
//! date: is the person resident, is the person legally present. Pure functions, no I/O.
//!
//! Legal presence from permits (DOMAIN.md), as decided here:
//! - a permit is valid from its issue date to its expiry date, both included;
//! - an EU long-term permit has no expiry: valid from its issue date on;
//! - a revoked permit gives no presence at any date (records carry no revocation date);
//! - a renewal filed **in time** (receipt dated on or before expiry) keeps the person legally
//!   present after expiry, on the receipt, until the decision; a renewal filed late does not;
//! - a minor listed on a parent's permit shares that permit's validity;
//! - of several permits, any valid one suffices; the answer reports the one valid longest.
//!
//! Answers never carry the permit type: only `legally_present`, `basis` and `valid_until`.

use time::Date;

use super::cf::CodiceFiscale;
use super::places::ComuneCode;
use super::records::{Permit, PermitKind, PermitStatus, Resident};

/// Residence as of a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResidenceFact {
    pub resident: bool,
    pub comune: Option<ComuneCode>,
    pub since: Option<Date>,
    /// Whether the person's citizenship needs a permit; None for an unknown person.
    pub permit_required: Option<bool>,
}

pub fn residence_on(resident: Option<&Resident>, as_of: Date) -> ResidenceFact {
    match resident {
        Some(r) => {
            let active =
                r.residence_start <= as_of && r.residence_end.is_none_or(|end| as_of < end);
            ResidenceFact {
                resident: active,
                comune: active.then(|| r.comune.clone()),
                since: active.then_some(r.residence_start),
                permit_required: Some(r.citizenship.permit_required()),
            }
        }
        None => ResidenceFact {
            resident: false,
            comune: None,
            since: None,
            permit_required: None,
        },
    }
}

/// On what grounds a person is legally present. Deliberately coarse: it must not reveal the
/// permit type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    Permit,
    RenewalReceipt,
    ParentPermit,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Permit => "permit",
            Self::RenewalReceipt => "renewal_receipt",
            Self::ParentPermit => "parent_permit",
        }
    }
}

/// Legal presence as of a date, from permits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceFact {
    pub legally_present: bool,
    pub basis: Option<Basis>,
    /// Last day of validity; None when open-ended (EU long-term, renewal pending) or absent.
    pub valid_until: Option<Date>,
}

/// How a permit stands on a date: None when it gives no presence, else the validity end
/// (None = open-ended) and whether it rests on a renewal receipt.
fn permit_on(p: &Permit, as_of: Date) -> Option<(Option<Date>, bool)> {
    if p.status == PermitStatus::Revoked || as_of < p.issued {
        return None;
    }
    let Some(expires) = p.expires else {
        // Only EU long-term permits have no expiry (the importer enforces it).
        debug_assert_eq!(p.kind, PermitKind::EuLongTerm);
        return Some((None, false));
    };
    if as_of <= expires {
        return Some((Some(expires), false));
    }
    match (p.status, p.renewal_receipt) {
        (PermitStatus::RenewalPending, Some(receipt)) if receipt <= expires && receipt <= as_of => {
            Some((None, true))
        }
        _ => None,
    }
}

/// Legal presence of `subject` given every permit that names them (as holder or minor).
pub fn legal_presence_on(subject: &CodiceFiscale, permits: &[Permit], as_of: Date) -> PresenceFact {
    let mut best: Option<(Option<Date>, Basis)> = None;
    for p in permits {
        let Some((until, on_receipt)) = permit_on(p, as_of) else {
            continue;
        };
        let basis = if &p.holder != subject {
            Basis::ParentPermit
        } else if on_receipt {
            Basis::RenewalReceipt
        } else {
            Basis::Permit
        };
        // Open-ended beats any date; a later date beats an earlier one.
        let better = match (&best, until) {
            (None, _) => true,
            (Some((None, _)), _) => false,
            (Some((Some(_), _)), None) => true,
            (Some((Some(b), _)), Some(u)) => u > *b,
        };
        if better {
            best = Some((until, basis));
        }
    }
    match best {
        Some((valid_until, basis)) => PresenceFact {
            legally_present: true,
            basis: Some(basis),
            valid_until,
        },
        None => PresenceFact {
            legally_present: false,
            basis: None,
            valid_until: None,
        },
    }
}

#[cfg(test)]
mod tests;

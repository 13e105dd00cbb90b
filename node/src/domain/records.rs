//! Registry and permit records, as the node stores them (docs/DATA_FORMATS.md).
//!
//! Residence and permit validity are date intervals, so every question can be asked as of a
//! date. Records are built only by the importer's validation; a record that exists is valid.

use std::fmt;
use std::str::FromStr;

use time::Date;

use super::cf::{CodiceFiscale, Sex};
use super::places::{Citizenship, ComuneCode};

/// Why a resident's registration ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Emigrated,
    Deceased,
    Untraceable,
    /// Struck off for failing to renew the residence declaration after the permit expired.
    NotRenewed,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Emigrated => "emigrated",
            Self::Deceased => "deceased",
            Self::Untraceable => "untraceable",
            Self::NotRenewed => "not_renewed",
        }
    }
}

impl FromStr for EndReason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "emigrated" => Self::Emigrated,
            "deceased" => Self::Deceased,
            "untraceable" => Self::Untraceable,
            "not_renewed" => Self::NotRenewed,
            other => {
                return Err(format!(
                "end reason {other:?} is not one of emigrated, deceased, untraceable, not_renewed"
            ))
            }
        })
    }
}

/// A person in the anagrafe of a comune.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resident {
    pub cf: CodiceFiscale,
    pub surname: String,
    pub name: String,
    pub sex: Sex,
    pub birth_date: Date,
    /// Belfiore code (`Z###` abroad).
    pub birth_place: String,
    pub citizenship: Citizenship,
    pub comune: ComuneCode,
    pub address: String,
    /// Famiglia anagrafica.
    pub family_id: String,
    pub residence_start: Date,
    /// With `end_reason`: the first day the person is no longer resident.
    pub residence_end: Option<Date>,
    pub end_reason: Option<EndReason>,
}

/// An electronic residence permit number: `I` followed by 8 digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PermitNumber([u8; 9]);

impl fmt::Debug for PermitNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PermitNumber(…)")
    }
}

impl PermitNumber {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_uppercase();
        let b = s.as_bytes();
        if b.len() == 9 && b[0] == b'I' && b[1..].iter().all(u8::is_ascii_digit) {
            let mut out = [0u8; 9];
            out.copy_from_slice(b);
            Ok(Self(out))
        } else {
            Err(format!("permit number {s:?} is not I followed by 8 digits"))
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub fn as_bytes(&self) -> &[u8; 9] {
        &self.0
    }
}

/// Permit types. The type is kept for the Questura's own use and **never** leaves the node:
/// some types (asylum, protection) are sensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermitKind {
    Work,
    SeasonalWork,
    SelfEmployment,
    Family,
    Study,
    Asylum,
    SubsidiaryProtection,
    SpecialProtection,
    /// Permesso di soggiorno UE per soggiornanti di lungo periodo: does not expire.
    EuLongTerm,
}

impl PermitKind {
    pub const ALL: [PermitKind; 9] = [
        Self::Work,
        Self::SeasonalWork,
        Self::SelfEmployment,
        Self::Family,
        Self::Study,
        Self::Asylum,
        Self::SubsidiaryProtection,
        Self::SpecialProtection,
        Self::EuLongTerm,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Work => "work",
            Self::SeasonalWork => "seasonal_work",
            Self::SelfEmployment => "self_employment",
            Self::Family => "family",
            Self::Study => "study",
            Self::Asylum => "asylum",
            Self::SubsidiaryProtection => "subsidiary_protection",
            Self::SpecialProtection => "special_protection",
            Self::EuLongTerm => "eu_long_term",
        }
    }
}

impl FromStr for PermitKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "permit type {s:?} is not one of {}",
                    Self::ALL.map(Self::as_str).join(", ")
                )
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermitStatus {
    Valid,
    /// A renewal was filed; the receipt date is in the record.
    RenewalPending,
    Revoked,
}

impl PermitStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::RenewalPending => "renewal_pending",
            Self::Revoked => "revoked",
        }
    }
}

impl FromStr for PermitStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "valid" => Self::Valid,
            "renewal_pending" => Self::RenewalPending,
            "revoked" => Self::Revoked,
            other => {
                return Err(format!(
                    "status {other:?} is not one of valid, renewal_pending, revoked"
                ))
            }
        })
    }
}

/// A residence permit (permesso di soggiorno).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permit {
    pub number: PermitNumber,
    pub holder: CodiceFiscale,
    pub kind: PermitKind,
    pub issued: Date,
    /// None only for EU long-term permits.
    pub expires: Option<Date>,
    pub status: PermitStatus,
    /// When status is renewal_pending: the date on the renewal receipt.
    pub renewal_receipt: Option<Date>,
    /// ISTAT code of the comune of domicile.
    pub comune: ComuneCode,
    /// Minors under 14 listed on this permit; they share its validity.
    pub minors: Vec<CodiceFiscale>,
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Result<Date, String> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let t = s.trim();
    // RFC 3339 full-date: four digits, two, two; no sign, no wider year.
    let shape = t.len() == 10
        && t.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    shape
        .then(|| Date::parse(t, &fmt).ok())
        .flatten()
        .ok_or_else(|| format!("{s:?} is not a date (YYYY-MM-DD)"))
}

/// Formats `YYYY-MM-DD`.
pub fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

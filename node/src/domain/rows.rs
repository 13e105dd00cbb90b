//! One CSV row of an import, parsed into a record: each field checked, with a message naming
//! the column (docs/DATA_FORMATS.md). Pure code: the import drives it row by row.

use time::Date;

use super::cf::{CodiceFiscale, Sex};
use super::places::{self, Citizenship, ComuneCode};
use super::records::{
    parse_date, EndReason, Permit, PermitKind, PermitNumber, PermitStatus, Resident,
};

/// Fields of a residents row.
pub const RESIDENT_FIELDS: usize = 13;
/// Fields of a permits row.
pub const PERMIT_FIELDS: usize = 9;

fn date_field(name: &str, v: &str) -> Result<Date, String> {
    parse_date(v).map_err(|e| format!("{name}: {e}"))
}

fn opt_date_field(name: &str, v: &str) -> Result<Option<Date>, String> {
    if v.is_empty() {
        Ok(None)
    } else {
        date_field(name, v).map(Some)
    }
}

fn known_comune(name: &str, v: &str) -> Result<ComuneCode, String> {
    let code = ComuneCode::parse(v).map_err(|e| format!("{name}: {e}"))?;
    if places::comune(&code).is_none() {
        return Err(format!("{name}: unknown comune {v}"));
    }
    Ok(code)
}

fn text_field(name: &str, v: &str, max: usize) -> Result<String, String> {
    if v.is_empty() {
        return Err(format!("{name}: empty"));
    }
    if v.len() > max {
        return Err(format!("{name}: longer than {max} bytes"));
    }
    Ok(v.to_owned())
}

/// A residents row (the columns of `RESIDENT_COLUMNS` in `import`, in that order): every
/// field checked, and against the codice fiscale (sex, birth date, birth place).
pub fn parse_resident(f: &[&str]) -> Result<Resident, String> {
    if f.len() != RESIDENT_FIELDS {
        return Err(format!("{} fields, expected {RESIDENT_FIELDS}", f.len()));
    }
    let cf = CodiceFiscale::parse(f[0]).map_err(|e| format!("codice_fiscale: {e}"))?;
    let sex = match f[3] {
        "M" => Sex::M,
        "F" => Sex::F,
        other => return Err(format!("sex: {other:?} is not M or F")),
    };
    if sex != cf.sex() {
        return Err("sex: does not match the codice fiscale".into());
    }
    let birth_date = date_field("birth_date", f[4])?;
    let (yy, mm, dd) = cf.birth_yy_mm_dd();
    if (
        birth_date.year().rem_euclid(100) as u8,
        u8::from(birth_date.month()),
        birth_date.day(),
    ) != (yy, mm, dd)
    {
        return Err("birth_date: does not match the codice fiscale".into());
    }
    if f[5] != cf.birth_place() {
        return Err("birth_place: does not match the codice fiscale".into());
    }
    let citizenship = Citizenship::parse(f[6]).map_err(|e| format!("citizenship: {e}"))?;
    let comune = known_comune("comune", f[7])?;
    let residence_start = date_field("residence_start", f[10])?;
    let residence_end = opt_date_field("residence_end", f[11])?;
    let end_reason = if f[12].is_empty() {
        None
    } else {
        Some(
            f[12]
                .parse::<EndReason>()
                .map_err(|e| format!("end_reason: {e}"))?,
        )
    };
    match (residence_end, end_reason) {
        (Some(end), Some(_)) if end <= residence_start => {
            return Err("residence_end: not after residence_start".into())
        }
        (Some(_), None) => return Err("end_reason: required with residence_end".into()),
        (None, Some(_)) => return Err("residence_end: required with end_reason".into()),
        _ => {}
    }
    if residence_start < birth_date {
        return Err("residence_start: before birth_date".into());
    }
    Ok(Resident {
        cf,
        surname: text_field("surname", f[1], 200)?,
        name: text_field("name", f[2], 200)?,
        sex,
        birth_date,
        birth_place: f[5].to_owned(),
        citizenship,
        comune,
        address: text_field("address", f[8], 500)?,
        family_id: text_field("family_id", f[9], 64)?,
        residence_start,
        residence_end,
        end_reason,
    })
}

/// A permits row (the columns of `PERMIT_COLUMNS` in `import`, in that order).
pub fn parse_permit(f: &[&str]) -> Result<Permit, String> {
    if f.len() != PERMIT_FIELDS {
        return Err(format!("{} fields, expected {PERMIT_FIELDS}", f.len()));
    }
    let number = PermitNumber::parse(f[0]).map_err(|e| format!("permit_number: {e}"))?;
    let holder = CodiceFiscale::parse(f[1]).map_err(|e| format!("holder: {e}"))?;
    let kind: PermitKind = f[2].parse().map_err(|e| format!("type: {e}"))?;
    let issued = date_field("issue_date", f[3])?;
    let expires = opt_date_field("expiry_date", f[4])?;
    match (kind, expires) {
        (PermitKind::EuLongTerm, Some(_)) => {
            return Err("expiry_date: must be empty for eu_long_term permits".into())
        }
        (PermitKind::EuLongTerm, None) => {}
        (_, None) => {
            return Err("expiry_date: required (only eu_long_term permits do not expire)".into())
        }
        (_, Some(e)) if e < issued => return Err("expiry_date: before issue_date".into()),
        _ => {}
    }
    let status: PermitStatus = f[5].parse().map_err(|e| format!("status: {e}"))?;
    let renewal_receipt = opt_date_field("renewal_receipt", f[6])?;
    match (status, renewal_receipt) {
        (PermitStatus::RenewalPending, None) => {
            return Err("renewal_receipt: required when status is renewal_pending".into())
        }
        (PermitStatus::Valid | PermitStatus::Revoked, Some(_)) => {
            return Err("renewal_receipt: only with status renewal_pending".into())
        }
        _ => {}
    }
    let comune = known_comune("comune", f[7])?;
    let mut minors = Vec::new();
    for m in f[8].split(';').map(str::trim).filter(|m| !m.is_empty()) {
        let cf = CodiceFiscale::parse(m).map_err(|e| format!("minors: {e}"))?;
        if cf == holder {
            return Err("minors: the holder is listed as a minor".into());
        }
        minors.push(cf);
    }
    Ok(Permit {
        number,
        holder,
        kind,
        issued,
        expires,
        status,
        renewal_receipt,
        comune,
        minors,
    })
}

//! Imports: CSV files of residents or permits, validated row by row, applied to the store as
//! a snapshot (replace the dataset atomically) or a delta (upserts and deletes).
//!
//! Two passes over the file: the first validates every row and finds duplicate keys, the
//! second writes. An import with any invalid row writes nothing, unless `skip_invalid` is set,
//! in which case the valid rows go in and the invalid ones are reported. Formats are in
//! docs/DATA_FORMATS.md.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use time::Date;

use crate::domain::cf::{CodiceFiscale, Sex};
use crate::domain::places::{self, Citizenship, ComuneCode};
use crate::domain::records::{
    parse_date, EndReason, Permit, PermitKind, PermitNumber, PermitStatus, Resident,
};
use crate::store::{Dataset, DatasetInfo, Delta, DeltaOp, Store, StoreError};

pub const RESIDENT_COLUMNS: [&str; 13] = [
    "codice_fiscale",
    "surname",
    "name",
    "sex",
    "birth_date",
    "birth_place",
    "citizenship",
    "comune",
    "address",
    "family_id",
    "residence_start",
    "residence_end",
    "end_reason",
];

pub const PERMIT_COLUMNS: [&str; 9] = [
    "permit_number",
    "holder",
    "type",
    "issue_date",
    "expiry_date",
    "status",
    "renewal_receipt",
    "comune",
    "minors",
];

/// How an import changes the dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Replace the whole dataset.
    Snapshot,
    /// Upsert and delete rows (an `op` column comes first: `upsert` or `delete`).
    Delta,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "snapshot" => Ok(Self::Snapshot),
            "delta" => Ok(Self::Delta),
            other => Err(format!("mode {other:?} is not snapshot or delta")),
        }
    }
}

/// One rejected row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub line: u64,
    pub reason: String,
}

/// The outcome of an import.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub dataset: &'static str,
    pub mode: &'static str,
    pub rows_read: u64,
    pub applied: u64,
    pub rejected: u64,
    /// The first rejected rows (at most [`MAX_REPORTED`]).
    pub errors: Vec<RowError>,
    pub as_of: Option<String>,
    pub dataset_rows: u64,
    pub millis: u64,
}

/// Most row errors reported in one answer; `rejected` counts them all.
pub const MAX_REPORTED: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("reading the CSV: {0}")]
    Csv(String),
    #[error("line 1: header must be {expected}")]
    Header { expected: String },
    #[error("{rejected} invalid row(s); nothing was imported")]
    Invalid {
        rejected: u64,
        rows_read: u64,
        errors: Vec<RowError>,
    },
    #[error("store")]
    Store(#[from] StoreError),
}

/// A validated row: an upsert of a record, or a delete by key.
enum Row {
    Resident(DeltaOp<Resident, CodiceFiscale>),
    Permit(DeltaOp<Permit, PermitNumber>),
}

impl Row {
    fn key(&self) -> Vec<u8> {
        match self {
            Row::Resident(DeltaOp::Upsert(r)) => r.cf.as_bytes().to_vec(),
            Row::Resident(DeltaOp::Delete(cf)) => cf.as_bytes().to_vec(),
            Row::Permit(DeltaOp::Upsert(p)) => p.number.as_bytes().to_vec(),
            Row::Permit(DeltaOp::Delete(n)) => n.as_bytes().to_vec(),
        }
    }
}

fn reader(path: &Path) -> Result<csv::Reader<std::fs::File>, ImportError> {
    csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| ImportError::Csv(e.to_string()))
}

fn expected_header(ds: Dataset, mode: Mode) -> Vec<&'static str> {
    let cols: &[&str] = match ds {
        Dataset::Residents => &RESIDENT_COLUMNS,
        Dataset::Permits => &PERMIT_COLUMNS,
    };
    let mut h = Vec::new();
    if mode == Mode::Delta {
        h.push("op");
    }
    h.extend_from_slice(cols);
    h
}

/// Calls `f` with each row's line number and validation result.
fn for_each_row(
    path: &Path,
    ds: Dataset,
    mode: Mode,
    mut f: impl FnMut(u64, Result<Row, String>) -> Result<(), ImportError>,
) -> Result<u64, ImportError> {
    let mut rd = reader(path)?;
    let expected = expected_header(ds, mode);
    let header = rd.headers().map_err(|e| ImportError::Csv(e.to_string()))?;
    if header.iter().collect::<Vec<_>>() != expected {
        return Err(ImportError::Header {
            expected: expected.join(","),
        });
    }
    let mut record = csv::StringRecord::new();
    let mut rows = 0;
    loop {
        let line = rd.position().line() + 1;
        match rd.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // A malformed record (e.g. invalid UTF-8) is that row's error.
                rows += 1;
                f(line, Err(format!("unreadable row: {e}")))?;
                continue;
            }
        }
        let line = record.position().map(|p| p.line()).unwrap_or(line);
        rows += 1;
        let result = if record.len() != expected.len() {
            Err(format!(
                "{} columns, expected {}",
                record.len(),
                expected.len()
            ))
        } else {
            parse_row(&record, ds, mode)
        };
        f(line, result)?;
    }
    Ok(rows)
}

fn parse_row(rec: &csv::StringRecord, ds: Dataset, mode: Mode) -> Result<Row, String> {
    let (op, fields): (&str, Vec<&str>) = match mode {
        Mode::Snapshot => ("upsert", rec.iter().collect()),
        Mode::Delta => (rec.get(0).unwrap_or_default(), rec.iter().skip(1).collect()),
    };
    let delete = match op {
        "upsert" => false,
        "delete" => true,
        other => return Err(format!("op: {other:?} is not upsert or delete")),
    };
    match ds {
        Dataset::Residents => {
            if delete {
                let cf =
                    CodiceFiscale::parse(fields[0]).map_err(|e| format!("codice_fiscale: {e}"))?;
                Ok(Row::Resident(DeltaOp::Delete(cf)))
            } else {
                parse_resident(&fields).map(|r| Row::Resident(DeltaOp::Upsert(r)))
            }
        }
        Dataset::Permits => {
            if delete {
                let n =
                    PermitNumber::parse(fields[0]).map_err(|e| format!("permit_number: {e}"))?;
                Ok(Row::Permit(DeltaOp::Delete(n)))
            } else {
                parse_permit(&fields).map(|p| Row::Permit(DeltaOp::Upsert(p)))
            }
        }
    }
}

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

fn parse_resident(f: &[&str]) -> Result<Resident, String> {
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

fn parse_permit(f: &[&str]) -> Result<Permit, String> {
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

/// Validates and applies the CSV file at `path`.
pub fn run(
    store: &Store,
    path: &Path,
    ds: Dataset,
    mode: Mode,
    as_of: Option<Date>,
    skip_invalid: bool,
) -> Result<Summary, ImportError> {
    let started = Instant::now();
    let mut errors = Vec::new();
    let mut rejected = 0u64;
    let mut bad_lines = HashSet::new();
    let mut seen: HashMap<Vec<u8>, u64> = HashMap::new();
    let mut reject = |line: u64, reason: String, errors: &mut Vec<RowError>| {
        rejected += 1;
        if errors.len() < MAX_REPORTED {
            errors.push(RowError { line, reason });
        }
        line
    };

    // Pass 1: validate everything, find duplicate keys.
    let rows_read = for_each_row(path, ds, mode, |line, row| {
        match row {
            Ok(row) => {
                if let Some(first) = seen.insert(row.key(), line) {
                    seen.insert(row.key(), first);
                    bad_lines.insert(reject(
                        line,
                        format!("duplicate key, first at line {first}"),
                        &mut errors,
                    ));
                }
            }
            Err(reason) => {
                bad_lines.insert(reject(line, reason, &mut errors));
            }
        }
        Ok(())
    })?;
    drop(seen);
    if rejected > 0 && !skip_invalid {
        return Err(ImportError::Invalid {
            rejected,
            rows_read,
            errors,
        });
    }

    // Pass 2: write the valid rows.
    let mut applied = 0u64;
    let info: DatasetInfo = match mode {
        Mode::Snapshot => {
            let mut writer = store.snapshot_writer(ds)?;
            for_each_row(path, ds, mode, |line, row| {
                if bad_lines.contains(&line) {
                    return Ok(());
                }
                match row {
                    Ok(Row::Resident(DeltaOp::Upsert(r))) => writer.put_resident(&r)?,
                    Ok(Row::Permit(DeltaOp::Upsert(p))) => writer.put_permit(&p)?,
                    // Snapshot rows are all upserts, and pass 1 found no invalid ones here.
                    _ => return Ok(()),
                }
                applied += 1;
                Ok(())
            })?;
            writer.commit(as_of)?
        }
        Mode::Delta => {
            let mut residents = Vec::new();
            let mut permits = Vec::new();
            for_each_row(path, ds, mode, |line, row| {
                if bad_lines.contains(&line) {
                    return Ok(());
                }
                match row {
                    Ok(Row::Resident(op)) => residents.push(op),
                    Ok(Row::Permit(op)) => permits.push(op),
                    Err(_) => return Ok(()),
                }
                applied += 1;
                Ok(())
            })?;
            let delta = match ds {
                Dataset::Residents => Delta::Residents(residents),
                Dataset::Permits => Delta::Permits(permits),
            };
            store.apply_delta(delta, as_of)?
        }
    };
    Ok(Summary {
        dataset: ds.name(),
        mode: match mode {
            Mode::Snapshot => "snapshot",
            Mode::Delta => "delta",
        },
        rows_read,
        applied,
        rejected,
        errors,
        as_of: info.as_of.map(crate::domain::records::format_date),
        dataset_rows: info.rows,
        millis: started.elapsed().as_millis() as u64,
    })
}

#[cfg(test)]
mod tests;

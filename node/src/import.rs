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

use time::Date;

use crate::domain::cf::CodiceFiscale;
use crate::domain::records::{Permit, PermitNumber, Resident};
use crate::domain::rows::{parse_permit, parse_resident};
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

pub use crate::wire::{ImportSummary as Summary, RowError};

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

/// What validating a file found, before anything is written.
#[derive(Debug, Default)]
pub struct Checked {
    pub rows_read: u64,
    pub rejected: u64,
    /// The first rejected rows (at most [`MAX_REPORTED`]), in file order.
    pub errors: Vec<RowError>,
    bad_lines: HashSet<u64>,
}

/// Validates every row of the CSV file at `path` (pass 1 of [`run`]) and writes nothing: what
/// the registry office sees before it applies an upload. `Err` only for a file that cannot be
/// read as this dataset at all (its header, its CSV).
pub fn check(path: &Path, ds: Dataset, mode: Mode) -> Result<Checked, ImportError> {
    let mut c = Checked::default();
    let mut seen: HashMap<Vec<u8>, u64> = HashMap::new();
    let reject = |c: &mut Checked, line: u64, reason: String| {
        c.rejected += 1;
        if c.errors.len() < MAX_REPORTED {
            c.errors.push(RowError { line, reason });
        }
        c.bad_lines.insert(line);
    };
    c.rows_read = for_each_row(path, ds, mode, |line, row| {
        match row {
            Ok(row) => {
                if let Some(first) = seen.insert(row.key(), line) {
                    seen.insert(row.key(), first);
                    reject(
                        &mut c,
                        line,
                        format!("duplicate key, first at line {first}"),
                    );
                }
            }
            Err(reason) => reject(&mut c, line, reason),
        }
        Ok(())
    })?;
    Ok(c)
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
    // Pass 1: validate everything, find duplicate keys.
    let Checked {
        rows_read,
        rejected,
        errors,
        bad_lines,
    } = check(path, ds, mode)?;
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
        dataset: ds.name().to_owned(),
        mode: match mode {
            Mode::Snapshot => "snapshot",
            Mode::Delta => "delta",
        }
        .to_owned(),
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

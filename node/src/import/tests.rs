use time::macros::date;

use super::*;
use crate::domain::records::EndReason;

const HEADER: &str = "codice_fiscale,surname,name,sex,birth_date,birth_place,citizenship,comune,address,family_id,residence_start,residence_end,end_reason";
const ROSSI: &str =
    "RSSMRA85T10A562S,Rossi,Mario,M,1985-12-10,A562,100,041044,Via Roma 1,F1,2010-01-01,,";
const BIANCHI: &str =
    "BNCLRA90A41G479C,Bianchi,Laura,F,1990-01-01,G479,100,041044,Via Roma 1,F1,1990-01-01,,";
const POPESCU: &str = "PPPGPP80M01Z129A,Popescu,Giorgiu,M,1980-08-01,Z129,235,041067,\"Via Urbino 3, int. 2\",F2,2015-03-01,2025-06-01,emigrated";

fn write(dir: &Path, name: &str, lines: &[&str]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

fn setup() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    (dir, store)
}

#[test]
fn a_valid_snapshot_is_imported_with_its_as_of() {
    let (dir, store) = setup();
    let f = write(dir.path(), "r.csv", &[HEADER, ROSSI, BIANCHI, POPESCU]);
    let s = run(
        &store,
        &f,
        Dataset::Residents,
        Mode::Snapshot,
        Some(date!(2026 - 11 - 22)),
        false,
    )
    .unwrap();
    assert_eq!((s.rows_read, s.applied, s.rejected), (3, 3, 0));
    assert_eq!(s.as_of.as_deref(), Some("2026-11-22"));
    let cf = CodiceFiscale::parse("PPPGPP80M01Z129A").unwrap();
    let (r, info) = store.resident(&cf).unwrap();
    let r = r.unwrap();
    assert_eq!(r.address, "Via Urbino 3, int. 2");
    assert_eq!(r.end_reason, Some(EndReason::Emigrated));
    assert_eq!(info.rows, 3);
}

#[test]
fn bad_rows_are_reported_with_line_numbers_and_nothing_is_applied() {
    let (dir, store) = setup();
    let good = write(dir.path(), "good.csv", &[HEADER, ROSSI]);
    run(
        &store,
        &good,
        Dataset::Residents,
        Mode::Snapshot,
        None,
        false,
    )
    .unwrap();

    let bad = write(
        dir.path(),
        "bad.csv",
        &[
            HEADER,
            BIANCHI,                                                                          // line 2: fine
            "RSSMRA85T10A562S,Rossi,Mario,M,1985-12-10,A562,100,041044,Via Roma 1,F1",        // 3: columns
            "RSSMRA85T10A562X,Rossi,Mario,M,1985-12-10,A562,100,041044,Via Roma 1,F1,2010-01-01,,", // 4: cf
            "RSSMRA85T10A562S,Rossi,Mario,M,1985-12-10,A562,100,041044,Via Roma 1,F1,2010-13-01,,", // 5: date
            "RSSMRA85T10A562S,Rossi,Mario,M,1985-12-10,A562,100,099999,Via Roma 1,F1,2010-01-01,,", // 6: comune
            "BNCLRA90A41G479C,Bianchi,Laura,F,1990-01-01,G479,100,041044,Via Roma 1,F1,1990-01-01,,", // 7: duplicate of 2
            "RSSMRA85T10A562S,Rossi,Mario,F,1985-12-10,A562,100,041044,Via Roma 1,F1,2010-01-01,,", // 8: sex
        ],
    );
    let err = run(
        &store,
        &bad,
        Dataset::Residents,
        Mode::Snapshot,
        None,
        false,
    )
    .unwrap_err();
    let ImportError::Invalid {
        rejected,
        rows_read,
        errors,
    } = err
    else {
        panic!("expected row errors, got {err}");
    };
    assert_eq!((rejected, rows_read), (6, 7));
    let by_line: Vec<(u64, &str)> = errors.iter().map(|e| (e.line, e.reason.as_str())).collect();
    let expect = [
        (3, "10 columns, expected 13"),
        (4, "codice_fiscale: check letter is X, expected S"),
        (
            5,
            "residence_start: \"2010-13-01\" is not a date (YYYY-MM-DD)",
        ),
        (6, "comune: unknown comune 099999"),
        (7, "duplicate key, first at line 2"),
        (8, "sex: does not match the codice fiscale"),
    ];
    assert_eq!(by_line, expect);

    // The dataset is the one imported before.
    assert!(store
        .resident(&CodiceFiscale::parse(ROSSI.split(',').next().unwrap()).unwrap())
        .unwrap()
        .0
        .is_some());
    assert!(store
        .resident(&CodiceFiscale::parse("BNCLRA90A41G479C").unwrap())
        .unwrap()
        .0
        .is_none());

    // With skip_invalid, the valid rows go in and the invalid ones are reported.
    let s = run(&store, &bad, Dataset::Residents, Mode::Snapshot, None, true).unwrap();
    assert_eq!((s.rows_read, s.applied, s.rejected), (7, 1, 6));
    assert_eq!(s.errors.len(), 6);
    assert!(store
        .resident(&CodiceFiscale::parse("BNCLRA90A41G479C").unwrap())
        .unwrap()
        .0
        .is_some());
}

#[test]
fn a_wrong_header_is_refused() {
    let (dir, store) = setup();
    let f = write(dir.path(), "h.csv", &["cf,surname", ROSSI]);
    let err = run(&store, &f, Dataset::Residents, Mode::Snapshot, None, false).unwrap_err();
    assert!(matches!(err, ImportError::Header { .. }), "{err}");
    assert!(err
        .to_string()
        .starts_with("line 1: header must be codice_fiscale,"));
}

#[test]
fn deltas_upsert_and_delete() {
    let (dir, store) = setup();
    let f = write(dir.path(), "r.csv", &[HEADER, ROSSI, BIANCHI]);
    run(&store, &f, Dataset::Residents, Mode::Snapshot, None, false).unwrap();
    let delta = write(
        dir.path(),
        "d.csv",
        &[
            &format!("op,{HEADER}"),
            "delete,RSSMRA85T10A562S,,,,,,,,,,,,",
            &format!("upsert,{POPESCU}"),
        ],
    );
    let s = run(
        &store,
        &delta,
        Dataset::Residents,
        Mode::Delta,
        Some(date!(2026 - 11 - 23)),
        false,
    )
    .unwrap();
    assert_eq!((s.applied, s.dataset_rows), (2, 2));
    assert!(store
        .resident(&CodiceFiscale::parse("RSSMRA85T10A562S").unwrap())
        .unwrap()
        .0
        .is_none());
    assert!(store
        .resident(&CodiceFiscale::parse("PPPGPP80M01Z129A").unwrap())
        .unwrap()
        .0
        .is_some());
}

#[test]
fn permit_rows_are_validated() {
    let (dir, store) = setup();
    let header = PERMIT_COLUMNS.join(",");
    let f = write(
        dir.path(),
        "p.csv",
        &[
            &header,
            "I00000001,PPPGPP80M01Z129A,work,2025-01-01,2027-01-01,valid,,041044,BNCLRA90A41G479C", // 2 ok
            "I00000002,PPPGPP80M01Z129A,eu_long_term,2020-01-01,,valid,,041044,", // 3 ok
            "I0000003,PPPGPP80M01Z129A,work,2025-01-01,2027-01-01,valid,,041044,", // 4 number
            "I00000004,PPPGPP80M01Z129A,work,2025-01-01,,valid,,041044,",         // 5 expiry
            "I00000005,PPPGPP80M01Z129A,work,2025-01-01,2027-01-01,renewal_pending,,041044,", // 6 receipt
            "I00000006,PPPGPP80M01Z129A,tourism,2025-01-01,2027-01-01,valid,,041044,", // 7 type
            "I00000007,PPPGPP80M01Z129A,work,2025-01-01,2024-01-01,valid,,041044,",    // 8 order
        ],
    );
    let ImportError::Invalid { errors, .. } =
        run(&store, &f, Dataset::Permits, Mode::Snapshot, None, false).unwrap_err()
    else {
        panic!("expected row errors");
    };
    let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![4, 5, 6, 7, 8]);
    assert!(errors[0].reason.starts_with("permit_number:"));
    assert!(errors[1].reason.starts_with("expiry_date: required"));
    assert!(errors[2].reason.starts_with("renewal_receipt: required"));
    assert!(errors[3].reason.starts_with("type:"));
    assert_eq!(errors[4].reason, "expiry_date: before issue_date");
}

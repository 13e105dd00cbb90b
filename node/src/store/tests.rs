use time::macros::date;

use super::*;
use crate::domain::cf::{compose, CodiceFiscale, Sex};
use crate::domain::places::Citizenship;
use crate::domain::records::{PermitKind, PermitStatus};

fn cf_n(n: u32) -> CodiceFiscale {
    // Distinct, valid codes: vary the surname letters.
    let letters: Vec<char> = ('A'..='Z').collect();
    let s: String = [
        letters[(n / 676 % 26) as usize],
        letters[(n / 26 % 26) as usize],
        letters[(n % 26) as usize],
    ]
    .iter()
    .collect();
    CodiceFiscale::parse(&compose(&s, "MRA", 85, 12, 10, Sex::M, "G479")).unwrap()
}

fn resident(n: u32, comune: &str, family: &str) -> Resident {
    Resident {
        cf: cf_n(n),
        surname: format!("Surname{n}"),
        name: "Mario".into(),
        sex: Sex::M,
        birth_date: date!(1985 - 12 - 10),
        birth_place: "G479".into(),
        citizenship: Citizenship::parse("100").unwrap(),
        comune: ComuneCode::parse(comune).unwrap(),
        address: "Via Roma 1".into(),
        family_id: family.into(),
        residence_start: date!(2000 - 01 - 01),
        residence_end: None,
        end_reason: None,
    }
}

fn permit(number: &str, holder: u32, minors: &[u32], expires: Option<Date>) -> Permit {
    Permit {
        number: PermitNumber::parse(number).unwrap(),
        holder: cf_n(holder),
        kind: if expires.is_some() {
            PermitKind::Work
        } else {
            PermitKind::EuLongTerm
        },
        issued: date!(2024 - 01 - 01),
        expires,
        status: PermitStatus::Valid,
        renewal_receipt: None,
        comune: ComuneCode::parse("041044").unwrap(),
        minors: minors.iter().map(|&m| cf_n(m)).collect(),
    }
}

fn import_residents(store: &Store, rows: &[Resident], as_of: Date) -> DatasetInfo {
    let mut w = store.snapshot_writer(Dataset::Residents).unwrap();
    for r in rows {
        w.put_resident(r).unwrap();
    }
    w.commit(Some(as_of)).unwrap()
}

#[test]
fn records_round_trip_and_any_omocodia_variant_finds_the_person() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut r = resident(1, "041044", "F1");
    r.residence_end = Some(date!(2025 - 01 - 01));
    r.end_reason = Some(crate::domain::records::EndReason::Deceased);
    let info = import_residents(&store, &[r.clone()], date!(2026 - 11 - 01));
    assert_eq!(info.rows, 1);
    assert_eq!(info.as_of, Some(date!(2026 - 11 - 01)));

    let variant = CodiceFiscale::parse(&r.cf.omocodia_variant(3)).unwrap();
    let (found, info) = store.resident(&variant).unwrap();
    assert_eq!(found, Some(r));
    assert_eq!(info.as_of, Some(date!(2026 - 11 - 01)));
    assert_eq!(store.resident(&cf_n(2)).unwrap().0, None);
}

#[test]
fn a_snapshot_replaces_the_dataset_only_on_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    import_residents(
        &store,
        &[resident(1, "041044", "F1")],
        date!(2026 - 01 - 01),
    );

    // An import abandoned midway (a crash, a validation failure) changes nothing.
    let mut w = store.snapshot_writer(Dataset::Residents).unwrap();
    for n in 100..30_100 {
        w.put_resident(&resident(n, "041067", "F2")).unwrap();
    }
    drop(w);
    assert!(store.resident(&cf_n(1)).unwrap().0.is_some());
    assert!(store.resident(&cf_n(100)).unwrap().0.is_none());
    assert_eq!(store.info(Dataset::Residents).unwrap().rows, 1);

    // A committed one replaces it whole.
    import_residents(
        &store,
        &[resident(2, "041067", "F3")],
        date!(2026 - 02 - 01),
    );
    assert!(store.resident(&cf_n(1)).unwrap().0.is_none());
    assert!(store.resident(&cf_n(2)).unwrap().0.is_some());
    assert!(store.resident(&cf_n(100)).unwrap().0.is_none());
    let (fam, _) = store.family("F1").unwrap();
    assert!(fam.is_empty(), "old generation's index must be gone");
}

#[test]
fn reopening_keeps_the_committed_generation_and_drops_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        import_residents(
            &store,
            &[resident(1, "041044", "F1")],
            date!(2026 - 01 - 01),
        );
        let mut w = store.snapshot_writer(Dataset::Residents).unwrap();
        for n in 10..25_000 {
            w.put_resident(&resident(n, "041044", "F1")).unwrap();
        }
        // Dropped uncommitted, with batches already written: what a crash leaves.
    }
    let store = Store::open(dir.path()).unwrap();
    let (fam, info) = store.family("F1").unwrap();
    assert_eq!(fam.len(), 1);
    assert_eq!(info.rows, 1);
    assert_eq!(info.generation, 1);
}

#[test]
fn deltas_upsert_and_delete_with_their_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    import_residents(
        &store,
        &[resident(1, "041044", "F1"), resident(2, "041044", "F1")],
        date!(2026 - 01 - 01),
    );
    let mut moved = resident(1, "041067", "F9");
    moved.address = "Via Urbino 2".into();
    let info = store
        .apply_delta(
            Delta::Residents(vec![
                DeltaOp::Upsert(moved.clone()),
                DeltaOp::Delete(cf_n(2)),
                DeltaOp::Upsert(resident(3, "041044", "F1")),
            ]),
            Some(date!(2026 - 01 - 02)),
        )
        .unwrap();
    assert_eq!(info.rows, 2);
    assert_eq!(info.as_of, Some(date!(2026 - 01 - 02)));
    assert_eq!(store.resident(&cf_n(1)).unwrap().0, Some(moved));
    assert_eq!(store.resident(&cf_n(2)).unwrap().0, None);
    let (f1, _) = store.family("F1").unwrap();
    assert_eq!(
        f1.iter().map(|r| r.cf.clone()).collect::<Vec<_>>(),
        vec![cf_n(3)]
    );
    assert_eq!(store.family("F9").unwrap().0.len(), 1);
}

#[test]
fn permits_are_found_by_holder_and_minor_and_by_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut w = store.snapshot_writer(Dataset::Permits).unwrap();
    let a = permit("I00000001", 1, &[5], Some(date!(2026 - 12 - 01)));
    let b = permit("I00000002", 2, &[], Some(date!(2027 - 06 - 01)));
    let c = permit("I00000003", 1, &[], None);
    for p in [&a, &b, &c] {
        w.put_permit(p).unwrap();
    }
    w.commit(Some(date!(2026 - 11 - 15))).unwrap();

    let (of1, info) = store.permits_of(&cf_n(1)).unwrap();
    assert_eq!(of1.len(), 2);
    assert_eq!(info.rows, 3);
    let (of5, _) = store.permits_of(&cf_n(5)).unwrap();
    assert_eq!(of5, vec![a.clone()]);

    let pesaro = ComuneCode::parse("041044").unwrap();
    let (soon, _) = store
        .expiring(&pesaro, date!(2026 - 11 - 23), date!(2027 - 01 - 01))
        .unwrap();
    assert_eq!(soon, vec![a]);
    let (later, _) = store
        .expiring(&pesaro, date!(2026 - 11 - 23), date!(2027 - 12 - 31))
        .unwrap();
    assert_eq!(later.len(), 2, "the long-term permit never expires");
    let urbino = ComuneCode::parse("041067").unwrap();
    assert!(store
        .expiring(&urbino, date!(2026 - 01 - 01), date!(2030 - 01 - 01))
        .unwrap()
        .0
        .is_empty());

    let info = store
        .apply_delta(
            Delta::Permits(vec![DeltaOp::Delete(b.number.clone())]),
            None,
        )
        .unwrap();
    assert_eq!(info.rows, 2);
    assert!(store.permits_of(&cf_n(2)).unwrap().0.is_empty());
}

#[test]
fn the_memory_in_use_is_counted_and_stays_within_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 8 << 20;
    let store = Store::open_with_memory(&dir.path().join("db"), budget).unwrap();
    let rows: Vec<Resident> = (0..5000).map(|n| resident(n, "041044", "F1")).collect();
    import_residents(&store, &rows, date!(2026 - 11 - 30));
    for n in (0..5000).step_by(7) {
        store.resident(&cf_n(n)).unwrap();
    }
    let used = store.memory_in_use();
    assert!(used > 0, "the cache holds the data just read");
    // RocksDB may overshoot its budget a little while a memtable is flushed.
    assert!(used <= budget + budget / 4, "{used} of {budget}");
}

#[test]
fn scopes_keep_tenants_apart_and_a_removed_tenant_leaves_the_others_whole() {
    let dir = tempfile::tempdir().unwrap();
    let own = Store::open(&dir.path().join("db")).unwrap();
    let fano = own.scoped("comune-fano").unwrap();
    // A prefix of another tenant's id must not reach into its keys.
    let fan = own.scoped("comune-fan").unwrap();

    import_residents(&own, &[resident(1, "041044", "F1")], date!(2026 - 11 - 01));
    import_residents(&fano, &[resident(2, "041013", "F2")], date!(2026 - 11 - 02));
    import_residents(
        &fan,
        &[resident(3, "041013", "F3"), resident(4, "041013", "F3")],
        date!(2026 - 11 - 03),
    );
    for (store, mine, others) in [(&own, 1, [2, 3]), (&fano, 2, [1, 3]), (&fan, 3, [1, 2])] {
        assert!(store.resident(&cf_n(mine)).unwrap().0.is_some());
        for o in others {
            assert!(
                store.resident(&cf_n(o)).unwrap().0.is_none(),
                "{store:?} sees {o}"
            );
        }
    }
    assert_eq!(fano.info(Dataset::Residents).unwrap().rows, 1);
    assert_eq!(fan.family("F3").unwrap().0.len(), 2);
    assert!(fano.family("F3").unwrap().0.is_empty());

    // Audit logs too: sizes, entries, subjects.
    let subject = [0xff; 32];
    let entry = |b: u8| NewEntry {
        bytes: vec![b; 4],
        subject: Some(subject),
    };
    own.audit_append(0, &[entry(1)], &[(0, 0, [1; 32])])
        .unwrap();
    fano.audit_append(0, &[entry(2), entry(3)], &[]).unwrap();
    assert_eq!(
        (own.audit_size().unwrap(), fano.audit_size().unwrap()),
        (1, 2)
    );
    assert_eq!(fan.audit_size().unwrap(), 0);
    assert_eq!(own.audit_entries(0, 1).unwrap(), vec![vec![1; 4]]);
    assert_eq!(
        fano.audit_entries(0, 2).unwrap(),
        vec![vec![2; 4], vec![3; 4]]
    );
    // The all-0xff subject, the one with no upper bound of its own.
    assert_eq!(own.audit_by_subject(&subject).unwrap(), vec![0]);
    assert_eq!(fano.audit_by_subject(&subject).unwrap(), vec![0, 1]);
    assert_eq!(fano.audit_node(0, 0).unwrap(), None);

    // A new snapshot for one tenant drops only its old generation.
    import_residents(&fano, &[resident(5, "041013", "F5")], date!(2026 - 11 - 04));
    assert!(own.resident(&cf_n(1)).unwrap().0.is_some());
    assert!(fan.resident(&cf_n(3)).unwrap().0.is_some());

    // Removing a tenant deletes its keys and nobody else's, and survives reopening.
    fano.delete_scope().unwrap();
    assert!(own.delete_scope().is_err());
    drop((own, fano, fan));
    let own = Store::open(&dir.path().join("db")).unwrap();
    let fano = own.scoped("comune-fano").unwrap();
    let fan = own.scoped("comune-fan").unwrap();
    assert!(fano.resident(&cf_n(5)).unwrap().0.is_none());
    assert_eq!(
        fano.info(Dataset::Residents).unwrap(),
        DatasetInfo::default()
    );
    assert_eq!(fano.audit_size().unwrap(), 0);
    assert!(fano.audit_by_subject(&subject).unwrap().is_empty());
    assert!(own.resident(&cf_n(1)).unwrap().0.is_some());
    assert_eq!(own.audit_size().unwrap(), 1);
    assert_eq!(fan.info(Dataset::Residents).unwrap().rows, 2);
}

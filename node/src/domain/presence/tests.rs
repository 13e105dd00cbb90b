use time::macros::date;

use super::*;
use crate::domain::cf::{CodiceFiscale, Sex};
use crate::domain::places::Citizenship;
use crate::domain::records::{EndReason, PermitNumber};

fn cf(s: &str) -> CodiceFiscale {
    CodiceFiscale::parse(s).unwrap()
}

const PARENT: &str = "PPPGPP80M01Z129A";
const CHILD: &str = "BNCLRA90A41G479C";

fn permit(kind: PermitKind, issued: Date, expires: Option<Date>) -> Permit {
    Permit {
        number: PermitNumber::parse("I12345678").unwrap(),
        holder: cf(PARENT),
        kind,
        issued,
        expires,
        status: PermitStatus::Valid,
        renewal_receipt: None,
        comune: ComuneCode::parse("041044").unwrap(),
        minors: vec![],
    }
}

fn present(subject: &str, permits: &[Permit], as_of: Date) -> PresenceFact {
    legal_presence_on(&cf(subject), permits, as_of)
}

#[test]
fn a_permit_is_valid_from_issue_to_expiry_inclusive() {
    let p = permit(
        PermitKind::Work,
        date!(2025 - 03 - 01),
        Some(date!(2026 - 02 - 28)),
    );
    let ps = [p];
    for (as_of, expected) in [
        (date!(2025 - 02 - 28), false), // before issue
        (date!(2025 - 03 - 01), true),  // issue day
        (date!(2026 - 02 - 28), true),  // expiry day
        (date!(2026 - 03 - 01), false), // after expiry
    ] {
        let fact = present(PARENT, &ps, as_of);
        assert_eq!(fact.legally_present, expected, "as of {as_of}");
        if expected {
            assert_eq!(fact.basis, Some(Basis::Permit));
            assert_eq!(fact.valid_until, Some(date!(2026 - 02 - 28)));
        } else {
            assert_eq!(fact.basis, None);
        }
    }
}

#[test]
fn an_eu_long_term_permit_does_not_expire() {
    let ps = [permit(PermitKind::EuLongTerm, date!(2015 - 06 - 01), None)];
    let fact = present(PARENT, &ps, date!(2040 - 01 - 01));
    assert!(fact.legally_present);
    assert_eq!(fact.basis, Some(Basis::Permit));
    assert_eq!(fact.valid_until, None);
    assert!(!present(PARENT, &ps, date!(2015 - 05 - 31)).legally_present);
}

#[test]
fn a_renewal_filed_in_time_keeps_the_person_present_after_expiry() {
    let mut p = permit(
        PermitKind::Family,
        date!(2024 - 01 - 10),
        Some(date!(2026 - 01 - 09)),
    );
    p.status = PermitStatus::RenewalPending;
    p.renewal_receipt = Some(date!(2025 - 11 - 01));
    let ps = [p.clone()];
    // Before expiry, the permit itself.
    let fact = present(PARENT, &ps, date!(2025 - 12 - 01));
    assert_eq!(fact.basis, Some(Basis::Permit));
    // After expiry, the receipt, open-ended until the decision.
    let fact = present(PARENT, &ps, date!(2026 - 06 - 01));
    assert!(fact.legally_present);
    assert_eq!(fact.basis, Some(Basis::RenewalReceipt));
    assert_eq!(fact.valid_until, None);

    // Filed after expiry: not in time, no presence after expiry.
    p.renewal_receipt = Some(date!(2026 - 02 - 01));
    assert!(!present(PARENT, &[p], date!(2026 - 06 - 01)).legally_present);
}

#[test]
fn an_expired_permit_gives_no_presence() {
    let ps = [permit(
        PermitKind::Study,
        date!(2023 - 09 - 01),
        Some(date!(2024 - 08 - 31)),
    )];
    let fact = present(PARENT, &ps, date!(2026 - 01 - 01));
    assert!(!fact.legally_present);
    assert_eq!(fact.valid_until, None);
}

#[test]
fn a_revoked_permit_gives_no_presence() {
    let mut p = permit(
        PermitKind::Work,
        date!(2025 - 01 - 01),
        Some(date!(2027 - 01 - 01)),
    );
    p.status = PermitStatus::Revoked;
    assert!(!present(PARENT, &[p], date!(2026 - 01 - 01)).legally_present);
}

#[test]
fn a_minor_on_a_parents_permit_shares_its_validity() {
    let mut p = permit(
        PermitKind::Family,
        date!(2025 - 01 - 01),
        Some(date!(2027 - 01 - 01)),
    );
    p.minors = vec![cf(CHILD)];
    let ps = [p];
    let fact = present(CHILD, &ps, date!(2026 - 01 - 01));
    assert!(fact.legally_present);
    assert_eq!(fact.basis, Some(Basis::ParentPermit));
    assert_eq!(fact.valid_until, Some(date!(2027 - 01 - 01)));
    assert!(!present(CHILD, &ps, date!(2027 - 01 - 02)).legally_present);
}

#[test]
fn of_several_permits_the_longest_valid_one_is_reported() {
    let old = permit(
        PermitKind::Work,
        date!(2024 - 01 - 01),
        Some(date!(2026 - 03 - 01)),
    );
    let new = permit(
        PermitKind::Work,
        date!(2025 - 06 - 01),
        Some(date!(2027 - 06 - 01)),
    );
    let fact = present(PARENT, &[old, new], date!(2026 - 01 - 01));
    assert_eq!(fact.valid_until, Some(date!(2027 - 06 - 01)));
}

#[test]
fn residence_is_a_date_interval() {
    let r = Resident {
        cf: cf(PARENT),
        surname: "Popescu".into(),
        name: "Giorgiu".into(),
        sex: Sex::M,
        birth_date: date!(1980 - 08 - 01),
        birth_place: "Z129".into(),
        citizenship: Citizenship::parse("254").unwrap(),
        comune: ComuneCode::parse("041044").unwrap(),
        address: "Via Roma 1".into(),
        family_id: "F1".into(),
        residence_start: date!(2020 - 05 - 01),
        residence_end: Some(date!(2025 - 09 - 01)),
        end_reason: Some(EndReason::Emigrated),
    };
    let on = |d| residence_on(Some(&r), d);
    assert!(!on(date!(2020 - 04 - 30)).resident);
    let fact = on(date!(2024 - 01 - 01));
    assert!(fact.resident);
    assert_eq!(fact.since, Some(date!(2020 - 05 - 01)));
    assert_eq!(fact.comune.unwrap().as_str(), "041044");
    assert_eq!(fact.permit_required, Some(true));
    // The end date is the first day no longer resident.
    assert!(on(date!(2025 - 08 - 31)).resident);
    let gone = on(date!(2025 - 09 - 01));
    assert!(!gone.resident);
    assert_eq!(gone.comune, None);

    let unknown = residence_on(None, date!(2024 - 01 - 01));
    assert!(!unknown.resident);
    assert_eq!(unknown.permit_required, None);
}

use super::*;

fn req(agency: &str, resource: &str, purpose: &str, territory: &str) -> Request {
    Request {
        agency: agency.into(),
        resource: resource.into(),
        action: "read".into(),
        purpose: purpose.into(),
        territory: territory.into(),
    }
}

fn default_policy() -> Policy {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(Policy::load(DEFAULT_POLICY))
        .unwrap()
}

#[test]
fn default_policy_decisions_for_every_role() {
    let p = default_policy();
    let cases: &[(&str, &str, &str, &str, bool)] = &[
        // Residence: Questura, INPS and comuni, for their declared purposes.
        ("questura-pu", "residence", "permit-renewal", "*", true),
        ("inps-pesaro", "residence", "benefit-eligibility", "*", true),
        ("comune-urbino", "residence", "registry-update", "*", true),
        ("inps-pesaro", "residence", "permit-renewal", "*", false), // wrong purpose
        ("prefettura-pu", "residence", "permit-renewal", "*", false), // no grant
        ("garante-audit", "residence", "audit", "*", false),
        // Legal presence: comuni and INPS.
        (
            "comune-pesaro",
            "legal-presence",
            "registry-update",
            "*",
            true,
        ),
        (
            "inps-pesaro",
            "legal-presence",
            "benefit-eligibility",
            "*",
            true,
        ),
        (
            "questura-pu",
            "legal-presence",
            "permit-renewal",
            "*",
            false,
        ),
        // Expiring permits: a comune, only for its own territory.
        (
            "comune-pesaro",
            "expiring-permits",
            "registry-update",
            "041044",
            true,
        ),
        (
            "comune-pesaro",
            "expiring-permits",
            "registry-update",
            "041067",
            false,
        ),
        (
            "comune-urbino",
            "expiring-permits",
            "registry-update",
            "041067",
            true,
        ),
        (
            "inps-pesaro",
            "expiring-permits",
            "benefit-eligibility",
            "041044",
            false,
        ),
        // Family data: only the Questura, only for family reunification.
        ("questura-pu", "family", "family-reunification", "*", true),
        ("questura-pu", "family", "permit-renewal", "*", false),
        ("comune-pesaro", "family", "registry-update", "*", false),
        // Audit: only auditors.
        ("garante-audit", "audit", "audit", "*", true),
        ("prefettura-pu", "audit", "audit", "*", false),
        // Unknown agencies get nothing.
        ("asl-1", "residence", "benefit-eligibility", "*", false),
    ];
    for (agency, resource, purpose, territory, allow) in cases {
        let d = p
            .decide(&req(agency, resource, purpose, territory))
            .unwrap();
        assert_eq!(
            d.is_allow(),
            *allow,
            "{agency} {resource} {purpose} {territory}: {d:?}"
        );
    }
}

#[test]
fn a_request_without_a_purpose_is_denied() {
    let p = default_policy();
    for purpose in ["", "  ", "*"] {
        let d = p
            .decide(&req("inps-pesaro", "residence", purpose, "*"))
            .unwrap();
        assert!(!d.is_allow(), "purpose {purpose:?}: {d:?}");
    }
}

#[test]
fn decisions_explain_themselves() {
    let p = default_policy();
    let allow = p
        .decide(&req("inps-pesaro", "residence", "benefit-eligibility", "*"))
        .unwrap();
    assert_eq!(
        allow,
        Decision::Allow {
            rule: "p, consumer, residence, read, benefit-eligibility, *, allow".into()
        }
    );
    let deny = p
        .decide(&req("inps-pesaro", "residence", "marketing", "*"))
        .unwrap();
    let Decision::Deny { reason } = deny else {
        panic!("expected a denial")
    };
    assert_eq!(
        reason,
        "no rule grants read residence for purpose \"marketing\""
    );
    // The reason never lists other agencies' grants.
    assert!(!reason.contains("questura"));
}

#[test]
fn an_explicit_deny_beats_an_allow() {
    // INPS is granted family data by one rule, and denied by the default consumer deny.
    let rules =
        format!("{DEFAULT_POLICY}\np, inps-pesaro, family, read, family-reunification, *, allow\n");
    let p = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(Policy::load(&rules))
        .unwrap();
    let d = p
        .decide(&req("inps-pesaro", "family", "family-reunification", "*"))
        .unwrap();
    assert!(!d.is_allow(), "{d:?}");
    let Decision::Deny { reason } = d else {
        unreachable!()
    };
    assert!(reason.contains("deny"), "{reason}");
    // And the version hash changed with the rules.
    assert_ne!(p.version(), default_policy().version());
}

#[test]
fn cached_decisions_equal_fresh_ones() {
    let p = default_policy();
    let r = req(
        "comune-pesaro",
        "expiring-permits",
        "registry-update",
        "041067",
    );
    let first = p.decide(&r).unwrap();
    let again = p.decide(&r).unwrap();
    assert_eq!(first, again);
    assert!(!first.is_allow());
}

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
        // Metrics: a node's own operator only (territory = the node's agency).
        (
            "comune-pesaro",
            "metrics",
            "operations",
            "comune-pesaro",
            true,
        ),
        (
            "comune-urbino",
            "metrics",
            "operations",
            "comune-pesaro",
            false,
        ),
        (
            "garante-audit",
            "metrics",
            "operations",
            "garante-audit",
            false,
        ),
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
fn imports_and_publishing_are_for_their_owners_only() {
    let p = default_policy();
    let write = |agency: &str, resource: &str, action: &str, purpose: &str, territory: &str| {
        p.decide(&Request {
            agency: agency.into(),
            resource: resource.into(),
            action: action.into(),
            purpose: purpose.into(),
            territory: territory.into(),
        })
        .unwrap()
        .is_allow()
    };
    // Import: into one's own node only.
    assert!(write(
        "comune-pesaro",
        "import",
        "write",
        "data-load",
        "comune-pesaro"
    ));
    assert!(write(
        "questura-pu",
        "import",
        "write",
        "data-load",
        "questura-pu"
    ));
    assert!(!write(
        "questura-pu",
        "import",
        "write",
        "data-load",
        "comune-pesaro"
    ));
    assert!(!write(
        "comune-pesaro",
        "import",
        "write",
        "other",
        "comune-pesaro"
    ));
    // The manifest: only the prefettura role publishes.
    assert!(write(
        "prefettura-pu",
        "manifest",
        "publish",
        "federation",
        "*"
    ));
    assert!(!write(
        "questura-pu",
        "manifest",
        "publish",
        "federation",
        "*"
    ));
    assert!(!write(
        "inps-pesaro",
        "manifest",
        "publish",
        "federation",
        "*"
    ));
}

#[test]
fn malformed_policies_are_refused_with_the_line() {
    for (text, expect) in [
        ("p, a, b, c\n", "line 1"),
        ("g, a, b\np, a, res, read, x, *, maybe\n", "line 2"),
        ("p, a, res, read, *, *, allow\n", "must name its purpose"),
        ("q, a, b\n", "not p, g or g2"),
        ("p, a, res, read, x y, *, allow\n", "not a name"),
        ("g, a\n", "2 fields"),
    ] {
        let err = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(Policy::load(text))
            .unwrap_err()
            .to_string();
        assert!(err.contains(expect), "{text:?}: {err}");
    }
}

fn rule(subject: &str, resource: &str, purpose: &str) -> Rule {
    Rule {
        subject: subject.into(),
        resource: resource.into(),
        action: "read".into(),
        purpose: purpose.into(),
        territory: "*".into(),
        allow: true,
    }
}

#[test]
fn grant_revoke_and_diff_edit_the_text() {
    let r = rule("inps-pesaro", "legal-presence", "pension-check");
    let granted = rules::grant(DEFAULT_POLICY, &r).unwrap();
    assert!(
        granted.starts_with(DEFAULT_POLICY),
        "comments and order are kept"
    );
    let d = rules::diff(DEFAULT_POLICY, &granted).unwrap();
    assert_eq!(
        d.added,
        vec!["p, inps-pesaro, legal-presence, read, pension-check, *, allow"]
    );
    assert!(d.removed.is_empty());
    // Granting twice, or revoking what is not there, is an error.
    assert!(rules::grant(&granted, &r).is_err());
    let revoked = rules::revoke(&granted, &r).unwrap();
    assert!(rules::diff(DEFAULT_POLICY, &revoked).unwrap().is_empty());
    assert!(rules::revoke(&revoked, &r).is_err());
    // Whitespace does not matter to a revoke.
    let spaced = "p,inps-pesaro ,legal-presence,read,pension-check,*,allow\n";
    assert_eq!(rules::revoke(spaced, &r).unwrap(), "");
}

#[test]
fn purposes_follow_roles_and_denies() {
    let inps = rules::purposes(DEFAULT_POLICY, "inps-pesaro").unwrap();
    let names = |res: &str| -> Vec<&str> {
        inps.get(res)
            .map(|s| s.iter().map(String::as_str).collect())
            .unwrap_or_default()
    };
    assert_eq!(names("residence"), ["benefit-eligibility"]);
    assert_eq!(names("legal-presence"), ["benefit-eligibility"]);
    assert_eq!(names("status"), ["benefit-eligibility"]);
    assert!(names("family").is_empty());
    let questura = rules::purposes(DEFAULT_POLICY, "questura-pu").unwrap();
    assert_eq!(
        questura["family"].iter().collect::<Vec<_>>(),
        ["family-reunification"]
    );
    // A deny for the agency's role removes what an allow would give.
    let denied = format!("{DEFAULT_POLICY}p, consumer, status, read, *, *, deny\n");
    assert!(!rules::purposes(&denied, "inps-pesaro")
        .unwrap()
        .contains_key("status"));
}

#[test]
fn manifests_refuse_unknown_fields() {
    let m = Manifest {
        version: 1,
        issued_at: "2026-11-23T10:00:00Z".into(),
        issuer: "prefettura-pu".into(),
        policy: DEFAULT_POLICY.into(),
        directory: vec![DirectoryEntry {
            agency: "comune-pesaro".into(),
            url: Some("https://127.0.0.1:8443".into()),
            hosted_by: None,
            serves: vec![Service::Residence],
            comuni: vec!["041044".into()],
        }],
        revoked: vec![],
    };
    assert_eq!(Manifest::from_json(&m.to_json()).unwrap(), m);
    let mut v: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
    v["expires"] = "never".into();
    let err = Manifest::from_json(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert!(err.to_string().contains("unknown field `expires`"), "{err}");
    v = serde_json::from_slice(&m.to_json()).unwrap();
    v["directory"][0]["serves"] = serde_json::json!(["everything"]);
    assert!(Manifest::from_json(&serde_json::to_vec(&v).unwrap()).is_err());
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

#[test]
fn the_directory_gives_territories_to_own_rules() {
    // A comune the policy text does not map: its directory entry does.
    let policy = "g, comune-fano, comune\n\
                  p, comune, expiring-permits, read, registry-update, own, allow\n";
    let m = Manifest {
        version: 1,
        issued_at: "2026-11-23T10:00:00Z".into(),
        issuer: "prefettura-pu".into(),
        policy: policy.into(),
        directory: vec![DirectoryEntry {
            agency: "comune-fano".into(),
            url: Some("https://127.0.0.1:8446".into()),
            hosted_by: None,
            serves: vec![Service::Residence],
            comuni: vec!["041013".into()],
        }],
        revoked: vec![],
    };
    let effective = m.effective_policy();
    assert!(effective.starts_with(policy));
    assert!(effective.contains("g2, comune-fano, 041013"));
    let p = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(Policy::load(&effective))
        .unwrap();
    let ask = |territory: &str| {
        p.decide(&req(
            "comune-fano",
            "expiring-permits",
            "registry-update",
            territory,
        ))
        .unwrap()
        .is_allow()
    };
    assert!(ask("041013"));
    assert!(!ask("041044"));
    // A line already in the text is not repeated.
    let mut with_line = m.clone();
    with_line.policy = format!("{policy}g2, comune-fano, 041013\n");
    assert_eq!(with_line.effective_policy(), with_line.policy);
}

#[test]
fn a_hosted_agency_is_reached_at_its_hosts_url_under_its_prefix() {
    let entry = |agency: &str, url: Option<&str>, host: Option<&str>| DirectoryEntry {
        agency: agency.into(),
        url: url.map(Into::into),
        hosted_by: host.map(Into::into),
        serves: vec![Service::Residence],
        comuni: vec![],
    };
    let m = Manifest {
        version: 1,
        issued_at: "2026-11-23T10:00:00Z".into(),
        issuer: "prefettura-pu".into(),
        policy: String::new(),
        directory: vec![
            entry("comune-pesaro", Some("https://127.0.0.1:8443"), None),
            entry("cst-pu", Some("https://127.0.0.1:8450"), None),
            entry("comune-fano", None, Some("cst-pu")),
            entry("comune-cagli", None, Some("cst-pu")),
            // Hosted by an agency that is itself hosted, or not in the directory: unreachable.
            entry("comune-acqualagna", None, Some("comune-fano")),
            entry("comune-apecchio", None, Some("cst-nowhere")),
        ],
        revoked: vec![],
    };
    let own = m.endpoint("comune-pesaro").unwrap();
    assert_eq!(
        (own.node, own.url, own.base().as_str()),
        (
            "comune-pesaro",
            "https://127.0.0.1:8443",
            "https://127.0.0.1:8443"
        )
    );
    let fano = m.endpoint("comune-fano").unwrap();
    assert_eq!(fano.node, "cst-pu");
    assert_eq!(fano.base(), "https://127.0.0.1:8450/tenants/comune-fano");
    assert!(m.endpoint("comune-acqualagna").is_none());
    assert!(m.endpoint("comune-apecchio").is_none());
    assert!(m.endpoint("comune-nowhere").is_none());
    let tenants: Vec<_> = m.tenants_of("cst-pu").map(|e| e.agency.as_str()).collect();
    assert_eq!(tenants, ["comune-fano", "comune-cagli"]);
    // Neither field is written when absent, so a manifest without hosting reads as before.
    let json = String::from_utf8(m.to_json()).unwrap();
    assert!(
        json.contains(r#"{"agency":"comune-fano","hosted_by":"cst-pu","serves""#),
        "{json}"
    );
    assert!(!json.contains("null"), "{json}");
}

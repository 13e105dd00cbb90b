use super::*;

#[test]
fn agency_ids_follow_the_documented_syntax() {
    let cases: &[(&str, bool)] = &[
        ("comune-pesaro", true),
        ("questura-pu", true),
        ("asl-1", true),
        ("a", true),
        (&"a".repeat(63), true),
        (&"a".repeat(64), false),
        ("", false),
        ("Comune-Pesaro", false),
        ("comune_pesaro", false),
        ("comune pesaro", false),
        ("-comune", false),
        ("comune-", false),
        ("comune/pesaro", false),
        ("comunè", false),
    ];
    for (input, ok) in cases {
        assert_eq!(AgencyId::new(input).is_ok(), *ok, "agency id {input:?}");
    }
}

#[test]
fn trust_domains_follow_the_spiffe_syntax() {
    for (input, ok) in [
        ("pu.attesta.it", true),
        ("demo_fed-1", true),
        ("", false),
        ("PU.attesta.it", false),
        ("pu.attesta.it:443", false),
        ("pu/attesta", false),
    ] {
        assert_eq!(
            TrustDomain::new(input).is_ok(),
            ok,
            "trust domain {input:?}"
        );
    }
}

#[test]
fn spiffe_ids_round_trip_and_reject_other_shapes() {
    let id = SpiffeId::parse("spiffe://pu.attesta.it/agency/inps-pesaro").unwrap();
    assert_eq!(id.trust_domain.as_str(), "pu.attesta.it");
    assert_eq!(id.agency.as_str(), "inps-pesaro");
    assert_eq!(id.to_string(), "spiffe://pu.attesta.it/agency/inps-pesaro");

    for bad in [
        "https://pu.attesta.it/agency/inps-pesaro",
        "spiffe://pu.attesta.it/inps-pesaro",
        "spiffe://pu.attesta.it/agency/",
        "spiffe://pu.attesta.it/agency/inps/pesaro",
        "spiffe:///agency/inps-pesaro",
        "spiffe://PU/agency/inps-pesaro",
        "spiffe://pu.attesta.it",
    ] {
        assert!(SpiffeId::parse(bad).is_err(), "{bad} should be refused");
    }
}

#[test]
fn operator_ids_name_a_person_of_an_agency_and_are_never_agency_ids() {
    let uri = "spiffe://pu.attesta.it/agency/inps-pesaro/operator/mario.rossi";
    let id = OperatorId::parse(uri).unwrap();
    assert_eq!(
        (id.agency.as_str(), id.operator.as_str()),
        ("inps-pesaro", "mario.rossi")
    );
    assert_eq!(id.to_string(), uri);
    assert!(
        SpiffeId::parse(uri).is_err(),
        "an operator is not the agency"
    );
    assert!(OperatorId::parse("spiffe://pu.attesta.it/agency/inps-pesaro").is_err());
    for bad in [
        "spiffe://pu.attesta.it/agency/inps-pesaro/operator/",
        "spiffe://pu.attesta.it/agency/inps-pesaro/operator/Mario",
        "spiffe://pu.attesta.it/agency/inps-pesaro/operator/.hidden",
        "spiffe://pu.attesta.it/agency/inps-pesaro/operator/a/b",
        "spiffe://pu.attesta.it/agency/inps/pesaro/operator/a",
        "spiffe://pu.attesta.it/operator/a",
    ] {
        assert!(OperatorId::parse(bad).is_err(), "{bad} should be refused");
    }
    assert!(OperatorName::new(&"a".repeat(64)).is_ok());
    assert!(OperatorName::new(&"a".repeat(65)).is_err());
    assert!(OperatorName::new("anna_bianchi-2").is_ok());
}

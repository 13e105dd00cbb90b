use std::os::unix::fs::PermissionsExt;

use openssl::nid::Nid;
use openssl::x509::extension::CrlNumber;
use openssl::x509::X509Crl;

use super::*;

fn td() -> TrustDomain {
    TrustDomain::new("pu.attesta.test").unwrap()
}

fn agency(s: &str) -> AgencyId {
    AgencyId::new(s).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_writes_ca_files_with_a_private_key_readable_only_by_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::init(dir.path(), td()).unwrap();
    assert_eq!(mode(&dir.path().join(CA_KEY)), 0o600);
    assert!(dir.path().join(CRL).exists());

    let cert = X509::from_pem(&ca.cert_pem().unwrap()).unwrap();
    let cn = cert
        .subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .unwrap();
    assert_eq!(cn.data().to_string().unwrap(), "attesta federation CA");

    let again = Ca::init(dir.path(), td()).unwrap_err();
    assert!(matches!(again, CaError::AlreadyExists(_)), "{again}");
}

#[test]
fn issued_agency_certificates_follow_the_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let mut ca = Ca::init(&dir.path().join("ca"), td()).unwrap();
    let out = dir.path().join("inps");
    let files = ca
        .issue_agency(
            &agency("inps-pesaro"),
            vec!["localhost".into()],
            vec!["127.0.0.1".parse().unwrap()],
            30,
            &out,
        )
        .unwrap();
    assert_eq!(mode(&files.auth_key), 0o600);
    assert_eq!(mode(&files.sign_key), 0o600);

    let auth = X509::from_pem(&std::fs::read(&files.auth_cert).unwrap()).unwrap();
    let leaf = crate::check_leaf(&auth.to_der().unwrap(), crate::Role::Client, &td()).unwrap();
    assert_eq!(
        leaf.id.to_string(),
        "spiffe://pu.attesta.test/agency/inps-pesaro"
    );
    assert_eq!(auth.public_key().unwrap().id(), openssl::pkey::Id::EC);
    // At least 64 random bits: our serials are 127 bits with the top bit set.
    assert_eq!(auth.serial_number().to_bn().unwrap().num_bits(), 127);
    let names = auth.subject_alt_names().unwrap();
    assert!(names.iter().any(|n| n.dnsname() == Some("localhost")));
    assert!(names
        .iter()
        .any(|n| n.ipaddress() == Some(&[127, 0, 0, 1][..])));

    let sign = X509::from_pem(&std::fs::read(&files.sign_cert).unwrap()).unwrap();
    assert_eq!(sign.public_key().unwrap().id(), openssl::pkey::Id::ED25519);
    assert!(
        sign.extended_key_usage().is_none(),
        "sign certificate must not have a TLS EKU"
    );
    let ku = sign.key_usage().unwrap();
    assert!(ku.contains(openssl::x509::X509KeyUsage::DIGITAL_SIGNATURE));
    assert!(ku.contains(openssl::x509::X509KeyUsage::NON_REPUDIATION));
    // The signing certificate is refused as a TLS certificate.
    let err = crate::check_leaf(&sign.to_der().unwrap(), crate::Role::Client, &td()).unwrap_err();
    assert_eq!(err, crate::IdentityError::NotTlsCertificate);

    // Both chain to the CA.
    let ca_cert = X509::from_pem(&ca.cert_pem().unwrap()).unwrap();
    let ca_key = ca_cert.public_key().unwrap();
    assert!(auth.verify(&ca_key).unwrap());
    assert!(sign.verify(&ca_key).unwrap());

    // Issuing again into the same directory would replace keys: refused.
    let err = ca
        .issue_agency(&agency("inps-pesaro"), vec![], vec![], 30, &out)
        .unwrap_err();
    assert!(matches!(err, CaError::WouldOverwrite { .. }), "{err}");
}

/// The serials a CRL lists, lower-case hex.
fn serials(crl: &X509Crl) -> Vec<String> {
    crl.get_revoked()
        .unwrap()
        .iter()
        .map(|r| {
            r.serial_number()
                .to_bn()
                .unwrap()
                .to_hex_str()
                .unwrap()
                .to_ascii_lowercase()
        })
        .collect()
}

#[test]
fn revocation_lists_every_certificate_of_the_agency_in_a_numbered_crl() {
    let dir = tempfile::tempdir().unwrap();
    let mut ca = Ca::init(dir.path(), td()).unwrap();
    let a = agency("comune-urbino");
    let first = ca.issue_leaf(&LeafSpec::sign(&td(), &a, 10)).unwrap();
    let second = ca.issue_leaf(&LeafSpec::sign(&td(), &a, 10)).unwrap();
    let other = ca
        .issue_leaf(&LeafSpec::sign(&td(), &agency("asl-1"), 10))
        .unwrap();

    let revoked = ca.revoke_agency(&a).unwrap();
    assert_eq!(revoked, vec![first.serial.clone(), second.serial.clone()]);

    let crl = X509Crl::from_pem(&std::fs::read(dir.path().join(CRL)).unwrap()).unwrap();
    let ca_cert = X509::from_pem(&ca.cert_pem().unwrap()).unwrap();
    assert!(crl.verify(&ca_cert.public_key().unwrap()).unwrap());
    let listed = serials(&crl);
    assert!(listed.contains(&first.serial) && listed.contains(&second.serial));
    assert!(!listed.contains(&other.serial));
    let (_, number) = crl.extension::<CrlNumber>().unwrap().unwrap();
    // CRL 1 was written at init, CRL 2 by the revocation.
    assert_eq!(number.to_bn().unwrap().to_string(), "2");
    assert!(crl.next_update().is_some());

    // Nothing left to revoke is an error, not a silent new CRL.
    assert!(matches!(
        ca.revoke_agency(&a),
        Err(CaError::NothingToRevoke(_))
    ));

    // A revoked certificate that has expired stays listed: what its key signed "back then"
    // must still be refused.
    let old = agency("prefettura-pu");
    let mut spec = LeafSpec::sign(&td(), &old, 10);
    spec.not_before = std::time::SystemTime::now() - std::time::Duration::from_secs(10 * 86_400);
    spec.not_after = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400);
    let expired = ca.issue_leaf(&spec).unwrap();
    ca.revoke_agency(&old).unwrap();
    let crl = X509Crl::from_pem(&std::fs::read(dir.path().join(CRL)).unwrap()).unwrap();
    let listed = serials(&crl);
    assert!(
        listed.contains(&expired.serial),
        "expired and revoked, still listed"
    );
    assert!(listed.contains(&first.serial));

    // The state survives reopening.
    let reopened = Ca::open(dir.path()).unwrap();
    assert_eq!(
        reopened
            .issued()
            .iter()
            .filter(|r| r.revoked_at.is_some())
            .count(),
        3
    );
}

#[test]
fn opening_a_damaged_ca_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    Ca::init(dir.path(), td()).unwrap();

    std::fs::write(dir.path().join("index.json"), b"{not json").unwrap();
    let err = Ca::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("index.json"), "{err}");

    std::fs::write(dir.path().join(CA_KEY), b"garbage").unwrap();
    let err = Ca::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("ca.key"), "{err}");

    std::fs::remove_file(dir.path().join(CA_CERT)).unwrap();
    let err = Ca::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("ca.crt") && err.contains("missing"), "{err}");
}

#[test]
fn a_nodes_own_sign_certificate_passes_the_same_check_as_anyone_elses() {
    let dir = tempfile::tempdir().unwrap();
    let mut ca = Ca::init(&dir.path().join("ca"), td()).unwrap();
    let load = |name: &str, spec: &LeafSpec, ca: &mut Ca| {
        let issued = ca.issue_leaf(spec).unwrap();
        let (cert, key) = (
            dir.path().join(format!("{name}.crt")),
            dir.path().join(format!("{name}.key")),
        );
        std::fs::write(&cert, &issued.cert_pem).unwrap();
        std::fs::write(&key, &issued.key_pem).unwrap();
        crate::SigningIdentity::load(&td(), &cert, &key)
    };
    let inps = agency("inps-pesaro");
    let good = LeafSpec::sign(&td(), &inps, 30);
    assert!(load("good", &good, &mut ca).is_ok());

    // A second URI SAN: refused as every other sign certificate is, naming the file.
    let mut two = LeafSpec::sign(&td(), &inps, 30);
    two.uris
        .push("spiffe://pu.attesta.test/agency/questura-pu".into());
    let e = load("two", &two, &mut ca).unwrap_err().to_string();
    assert!(e.contains("two.crt") && e.contains("URI"), "{e}");

    // Another trust domain's SPIFFE id.
    let mut other = LeafSpec::sign(&td(), &inps, 30);
    other.uris = vec!["spiffe://other.test/agency/inps-pesaro".into()];
    let e = load("other", &other, &mut ca).unwrap_err().to_string();
    assert!(e.contains("other.crt") && e.contains("other.test"), "{e}");
}

#[test]
fn operator_certificates_name_a_person_open_no_api_port_and_are_revoked_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut ca = Ca::init(&dir.path().join("ca"), td()).unwrap();
    let inps = agency("inps-pesaro");
    let out = dir.path().join("operators");
    let mario = OperatorName::new("mario.rossi").unwrap();
    let files = ca
        .issue_operator(&inps, &mario, 30, "s3greto", &out)
        .unwrap();
    assert_eq!(mode(&files.key), 0o600);
    assert_eq!(mode(&files.p12), 0o600);
    let cert = X509::from_pem(&std::fs::read(&files.cert).unwrap()).unwrap();
    let der = cert.to_der().unwrap();
    let op = crate::check_operator(&der, &td()).unwrap();
    assert_eq!(
        op.id.to_string(),
        "spiffe://pu.attesta.test/agency/inps-pesaro/operator/mario.rossi"
    );
    let cn = cert.subject_name().entries_by_nid(Nid::COMMONNAME).next();
    assert_eq!(cn.unwrap().data().as_slice(), b"mario.rossi");
    // A client certificate only, and not an agency's: no node takes it on its API port.
    let eku = cert.extended_key_usage().unwrap();
    assert!(!eku.contains(openssl::x509::X509ExtendedKeyUsage::SSL_SERVER));
    let err = crate::check_leaf(&der, crate::Role::Client, &td()).unwrap_err();
    assert!(
        matches!(err, crate::IdentityError::BadSpiffeId(_)),
        "{err:?}"
    );
    // And an agency's certificate is not an operator's.
    let node = ca
        .issue_agency(&inps, vec![], vec![], 30, &dir.path().join("inps"))
        .unwrap();
    let auth = X509::from_pem(&std::fs::read(&node.auth_cert).unwrap()).unwrap();
    let err = crate::check_operator(&auth.to_der().unwrap(), &td()).unwrap_err();
    assert!(
        matches!(err, crate::IdentityError::NotOperator(_)),
        "{err:?}"
    );

    // The browser's file opens with its password and holds the key, the certificate and the
    // CA; a wrong password opens nothing.
    let p12 = openssl::pkcs12::Pkcs12::from_der(&std::fs::read(&files.p12).unwrap()).unwrap();
    assert!(p12.parse2("wrong").is_err());
    let parsed = p12.parse2("s3greto").unwrap();
    assert_eq!(parsed.cert.unwrap().to_der().unwrap(), der);
    assert!(parsed.pkey.is_some());
    assert_eq!(parsed.ca.unwrap().len(), 1);
    // Issuing again over the same files is refused.
    assert!(matches!(
        ca.issue_operator(&inps, &mario, 30, "x", &out),
        Err(CaError::WouldOverwrite { .. })
    ));

    // Revoking Mario revokes Mario only; revoking the agency revokes the rest.
    let anna = OperatorName::new("anna.bianchi").unwrap();
    ca.issue_operator(&inps, &anna, 30, "x", &out).unwrap();
    let record = |ca: &Ca, name: &str| {
        ca.issued()
            .iter()
            .find(|r| r.operator.as_deref() == Some(name))
            .unwrap()
            .clone()
    };
    let revoked = ca.revoke_operator(&inps, &mario).unwrap();
    assert_eq!(revoked, vec![record(&ca, "mario.rossi").serial]);
    assert!(record(&ca, "anna.bianchi").revoked_at.is_none());
    assert!(matches!(
        ca.revoke_operator(&inps, &mario),
        Err(CaError::NothingToRevokeOperator(..))
    ));
    let crl = X509Crl::from_pem(&std::fs::read(dir.path().join("ca").join(CRL)).unwrap()).unwrap();
    assert_eq!(serials(&crl), vec![record(&ca, "mario.rossi").serial]);
    ca.revoke_agency(&inps).unwrap();
    assert!(record(&ca, "anna.bianchi").revoked_at.is_some());
}

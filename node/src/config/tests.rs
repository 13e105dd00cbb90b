use std::path::Path;

use attesta_certs::{AgencyId, Ca, TrustDomain};

use super::*;

/// A CA and one agency's files in a temp dir, with a valid node.toml beside them.
struct Fixture {
    dir: tempfile::TempDir,
}

const VALID: &str = r#"
agency = "comune-pesaro"
trust_domain = "pu.attesta.test"
listen = "127.0.0.1:0"
data_dir = "data"

[manifest]
prefettura = "prefettura-pu"
url = "https://127.0.0.1:8441"

[tls]
ca = "ca/ca.crt"
crl = "ca/crl.pem"
cert = "agency/auth.crt"
key = "agency/auth.key"

[signing]
cert = "agency/sign.crt"
key = "agency/sign.key"
"#;

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let td = TrustDomain::new("pu.attesta.test").unwrap();
        let mut ca = Ca::init(&dir.path().join("ca"), td).unwrap();
        for (agency, out) in [("comune-pesaro", "agency"), ("comune-urbino", "other")] {
            ca.issue_agency(
                &AgencyId::new(agency).unwrap(),
                vec!["localhost".into()],
                vec![],
                30,
                &dir.path().join(out),
            )
            .unwrap();
        }
        Self { dir }
    }

    fn write_config(&self, text: &str) -> std::path::PathBuf {
        let path = self.dir.path().join("node.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn load(&self, text: &str) -> Result<Settings, ConfigError> {
        Settings::load(&self.write_config(text))
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }
}

fn one_line(e: &ConfigError) -> String {
    let s = e.to_string();
    assert!(!s.contains('\n'), "error must be one line: {s:?}");
    s
}

#[test]
fn a_valid_config_loads_with_paths_resolved_against_its_directory() {
    let f = Fixture::new();
    let s = f.load(VALID).unwrap();
    assert_eq!(s.agency.as_str(), "comune-pesaro");
    assert_eq!(s.data_dir, f.path("data"));
    assert_eq!(s.tls_paths.crl, Some(f.path("ca/crl.pem")));
    assert_eq!(s.identity.leaf.agency().as_str(), "comune-pesaro");
    assert_eq!(s.limits.max_body_bytes, 64 * 1024);
}

#[test]
fn the_commented_example_config_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/node.toml");
    let raw = NodeConfig::read(&path).unwrap();
    assert_eq!(raw.agency, "comune-pesaro");
    // Every limit is spelled out in the example, with the defaults.
    let d = LimitsConfig::default();
    assert_eq!(raw.limits.max_body_bytes, d.max_body_bytes);
    assert_eq!(raw.limits.max_connections, d.max_connections);
    assert_eq!(raw.limits.reserved_connections, d.reserved_connections);
    assert_eq!(
        raw.limits.max_connections_per_agency,
        d.max_connections_per_agency
    );
    assert_eq!(
        raw.limits.max_connections_per_address,
        d.max_connections_per_address
    );
    assert_eq!(raw.limits.max_handshakes, d.max_handshakes);
    assert_eq!(raw.limits.idle_timeout_ms, d.idle_timeout_ms);
    assert_eq!(raw.limits.send_timeout_ms, d.send_timeout_ms);
    assert_eq!(raw.store.memory_mb, StoreConfig::default().memory_mb);
    assert_eq!(raw.tls.reload_interval_ms, default_reload_interval_ms());
    let p = PeersConfig::default();
    assert_eq!(raw.peers.connect_timeout_ms, p.connect_timeout_ms);
    assert_eq!(raw.peers.timeout_ms, p.timeout_ms);
    assert_eq!(raw.peers.status_deadline_ms, p.status_deadline_ms);
    assert_eq!(raw.peers.agency_timeout_ms["questura-pu"], 1500);
    assert_eq!(
        raw.audit.retention_days,
        AuditConfig::default().retention_days
    );
}

#[test]
fn audit_retention_is_in_days_and_zero_keeps_everything() {
    let f = Fixture::new();
    let day = std::time::Duration::from_secs(86_400);
    assert_eq!(f.load(VALID).unwrap().audit_retention, Some(730 * day));
    let s = f
        .load(&format!(
            "{VALID}
[audit]
retention_days = 0
"
        ))
        .unwrap();
    assert_eq!(s.audit_retention, None);
    let s = f
        .load(&format!(
            "{VALID}
[audit]
retention_days = 90
"
        ))
        .unwrap();
    assert_eq!(s.audit_retention, Some(90 * day));
    for bad in [
        "retention_days = -1",
        "retention_days = \"forever\"",
        "keep = 3",
    ] {
        let err = f
            .load(&format!(
                "{VALID}
[audit]
{bad}
"
            ))
            .unwrap_err();
        let msg = one_line(&err);
        assert!(msg.contains("node.toml:"), "{bad}: {msg}");
    }
}

#[test]
fn the_example_client_config_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/client.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let raw: crate::cli::query::ClientFile = parse_toml(&path, &text).unwrap();
    assert_eq!(raw.node, "https://127.0.0.1:8445");
    assert_eq!(raw.node_agency.as_deref(), Some("inps-pesaro"));
}

#[test]
fn peer_timeouts_must_be_positive_and_name_real_agencies() {
    let f = Fixture::new();
    for (extra, key) in [
        ("[peers]\ntimeout_ms = 0\n", "peers.timeout_ms"),
        (
            "[peers]\nstatus_deadline_ms = 0\n",
            "peers.status_deadline_ms",
        ),
        (
            "[peers]\nagency_timeout_ms = { \"Questura PU\" = 100 }\n",
            "peers.agency_timeout_ms",
        ),
        (
            "[peers]\nagency_timeout_ms = { \"questura-pu\" = 0 }\n",
            "peers.agency_timeout_ms",
        ),
    ] {
        let err = f.load(&format!("{VALID}\n{extra}")).unwrap_err();
        let msg = one_line(&err);
        assert!(msg.contains(key), "{extra}: {msg}");
    }
    let s = f
        .load(&format!(
            "{VALID}\n[peers]\nagency_timeout_ms = {{ \"questura-pu\" = 150 }}\n"
        ))
        .unwrap();
    let q = attesta_certs::AgencyId::new("questura-pu").unwrap();
    let other = attesta_certs::AgencyId::new("comune-urbino").unwrap();
    assert_eq!(
        s.peers.timeout_for(&q),
        std::time::Duration::from_millis(150)
    );
    assert_eq!(
        s.peers.timeout_for(&other),
        std::time::Duration::from_millis(2000)
    );
}

#[test]
fn an_unknown_key_is_named_with_file_and_line() {
    let f = Fixture::new();
    let text = VALID.replace("[signing]", "[signing]\nkye = \"typo\"");
    let err = f.load(&text).unwrap_err();
    let msg = one_line(&err);
    assert!(msg.contains("node.toml:"), "{msg}");
    assert!(msg.contains("unknown field `kye`"), "{msg}");
    let line = text.lines().position(|l| l.starts_with("kye")).unwrap() + 1;
    assert!(
        msg.contains(&format!(":{line}:")),
        "{msg} should name line {line}"
    );
}

#[test]
fn a_missing_config_file_is_named() {
    let f = Fixture::new();
    let err = Settings::load(&f.path("nope.toml")).unwrap_err();
    let msg = one_line(&err);
    assert!(msg.contains("nope.toml"), "{msg}");
}

#[test]
fn a_missing_certificate_file_names_the_key_and_the_file() {
    let f = Fixture::new();
    let err = f
        .load(&VALID.replace("agency/auth.crt", "agency/missing.crt"))
        .unwrap_err();
    let msg = one_line(&err);
    assert!(
        msg.contains("tls.cert") && msg.contains("missing.crt"),
        "{msg}"
    );
}

#[test]
fn an_unreadable_key_names_the_key_file() {
    let f = Fixture::new();
    std::fs::write(
        f.path("agency/auth.key"),
        b"-----BEGIN PRIVATE KEY-----\ngarbage\n",
    )
    .unwrap();
    let msg = one_line(&f.load(VALID).unwrap_err());
    assert!(msg.contains("tls.key") && msg.contains("auth.key"), "{msg}");
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_refused() {
    let f = Fixture::new();
    let msg = one_line(
        &f.load(&VALID.replace("agency/auth.key", "other/auth.key"))
            .unwrap_err(),
    );
    assert!(
        msg.contains("tls.key") && msg.contains("does not belong"),
        "{msg}"
    );

    let msg = one_line(
        &f.load(&VALID.replace("agency/sign.key", "other/sign.key"))
            .unwrap_err(),
    );
    assert!(
        msg.contains("signing.key") && msg.contains("does not belong"),
        "{msg}"
    );
}

#[test]
fn a_certificate_of_another_agency_is_refused() {
    let f = Fixture::new();
    let text = VALID
        .replace("agency/auth.crt", "other/auth.crt")
        .replace("agency/auth.key", "other/auth.key");
    let msg = one_line(&f.load(&text).unwrap_err());
    assert!(
        msg.contains("tls.cert") && msg.contains("comune-urbino"),
        "{msg}"
    );
}

#[test]
fn a_sign_certificate_is_refused_as_tls_certificate_and_vice_versa() {
    let f = Fixture::new();
    let text = VALID
        .replace("agency/auth.crt", "agency/sign.crt")
        .replace("agency/auth.key", "agency/sign.key");
    let msg = one_line(&f.load(&text).unwrap_err());
    assert!(msg.contains("tls.cert"), "{msg}");

    let text = VALID
        .replace("cert = \"agency/sign.crt\"", "cert = \"agency/auth.crt\"")
        .replace("key = \"agency/sign.key\"", "key = \"agency/auth.key\"");
    let msg = one_line(&f.load(&text).unwrap_err());
    assert!(msg.contains("signing"), "{msg}");
}

#[test]
fn bad_values_are_named_by_key() {
    let f = Fixture::new();
    for (text, key) in [
        (VALID.replace("comune-pesaro", "Comune Pesaro"), "agency"),
        (VALID.replace("pu.attesta.test", "PU!"), "trust_domain"),
        (
            format!("{VALID}\n[limits]\nmax_body_bytes = 0\n"),
            "limits.max_body_bytes",
        ),
        (
            format!("{VALID}\n[limits]\nmax_connections_per_agency = 0\n"),
            "limits.max_connections_per_agency",
        ),
        (
            format!("{VALID}\n[limits]\nmax_connections = 10\nreserved_connections = 10\n"),
            "limits.reserved_connections",
        ),
        (
            format!("{VALID}\n[limits]\nidle_timeout_ms = 0\n"),
            "limits.idle_timeout_ms",
        ),
        (
            format!("{VALID}\n[limits]\nsend_timeout_ms = 0\n"),
            "limits.send_timeout_ms",
        ),
        (
            format!("{VALID}\n[store]\nmemory_mb = 8\n"),
            "store.memory_mb",
        ),
        (
            VALID.replace("https://127.0.0.1:8441", "http://127.0.0.1:8441"),
            "manifest.url",
        ),
        (
            VALID.replace(
                "prefettura = \"prefettura-pu\"",
                "prefettura = \"Prefettura!\"",
            ),
            "manifest.prefettura",
        ),
    ] {
        let msg = one_line(&f.load(&text).unwrap_err());
        assert!(msg.contains(key), "{msg} should name {key}");
    }
    // A value of the wrong type is a syntax error with a line.
    let msg = one_line(
        &f.load(&VALID.replace("\"127.0.0.1:0\"", "8443"))
            .unwrap_err(),
    );
    assert!(msg.contains("node.toml:4:"), "{msg}");
}

#[test]
fn a_crl_not_signed_by_the_ca_is_refused() {
    let f = Fixture::new();
    let other = tempfile::tempdir().unwrap();
    Ca::init(other.path(), TrustDomain::new("pu.attesta.test").unwrap()).unwrap();
    std::fs::copy(other.path().join("crl.pem"), f.path("ca/crl.pem")).unwrap();
    let msg = one_line(&f.load(VALID).unwrap_err());
    assert!(
        msg.contains("tls.crl") && msg.contains("not signed"),
        "{msg}"
    );
}

#[test]
fn an_error_chain_says_each_cause_once() {
    let e = Settings::load(std::path::Path::new("/nonexistent/node.toml")).unwrap_err();
    let chain = error_chain(&e);
    assert_eq!(chain.matches("No such file").count(), 1, "{chain}");
    assert!(chain.starts_with("/nonexistent/node.toml: "), "{chain}");
}

#[test]
fn the_commented_service_centre_config_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/host.toml");
    let raw = NodeConfig::read(&path).unwrap();
    assert_eq!(raw.agency, "cst-pu");
    assert!(raw.serves.is_empty());
    assert_eq!(raw.store.memory_mb, 512);
}

#[test]
fn the_console_has_a_port_of_its_own() {
    let f = Fixture::new();
    assert_eq!(f.load(VALID).unwrap().console, None);
    let with = format!("{VALID}\n[console]\nlisten = \"127.0.0.1:8446\"\n");
    assert_eq!(
        f.load(&with).unwrap().console,
        Some("127.0.0.1:8446".parse().unwrap())
    );
    let fixed = VALID.replace("127.0.0.1:0", "127.0.0.1:8443");
    let same = format!("{fixed}\n[console]\nlisten = \"127.0.0.1:8443\"\n");
    let e = f.load(&same).unwrap_err().to_string();
    assert!(
        e.contains("console.listen") && e.contains("port of its own"),
        "{e}"
    );
    let unknown = format!("{VALID}\n[console]\nlisten = \"127.0.0.1:8446\"\nport = 1\n");
    assert!(f.load(&unknown).unwrap_err().to_string().contains("port"));
}

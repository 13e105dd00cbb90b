//! What the fuzz targets share: a federation trust store, made once per process.

use std::sync::OnceLock;

use attesta_certs::{Ca, TrustDomain, TrustStore};

/// A trust store of a CA made for this process (nothing a fuzzer writes can be signed by it,
/// so verification paths run to their refusals).
pub fn trust() -> &'static TrustStore {
    static TRUST: OnceLock<(tempfile::TempDir, TrustStore)> = OnceLock::new();
    &TRUST
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let td = TrustDomain::new("fuzz.attesta.test").expect("trust domain");
            Ca::init(&dir.path().join("ca"), td.clone()).expect("CA");
            let ca = dir.path().join("ca/ca.crt");
            let crl = dir.path().join("ca/crl.pem");
            let trust = TrustStore::load(td, &ca, Some(&crl)).expect("trust store");
            (dir, trust)
        })
        .1
}

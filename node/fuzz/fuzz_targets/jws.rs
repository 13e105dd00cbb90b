#![no_main]
//! Compact JWS (attestations, manifests) and the manifest document: never panic; nothing a
//! fuzzer writes verifies.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let trust = attesta_fuzz::trust();
        assert!(attesta_certs::jws::verify(trust, attesta_policy::MANIFEST_TYP, text).is_err());
        assert!(attesta::attestation::verify(trust, text).is_err());
        let _ = attesta_certs::jws::payload_unverified(text);
    }
    if let Ok(m) = attesta_policy::Manifest::from_json(data) {
        let _ = attesta_policy::Manifest::from_json(&m.to_json());
    }
});

#![no_main]
//! Exported audit bundles: reading and verifying arbitrary bytes never panics (and nothing a
//! fuzzer writes verifies against the process's CA).

use attesta::audit::bundle::{self, Bundle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Bundle::read_header(data);
    if let Ok(b) = Bundle::read(data, |_, _| {}) {
        assert!(bundle::verify(&b, attesta_fuzz::trust(), 0, None, |_, _| {}).is_err());
    }
});

#![no_main]
//! The canonical audit-entry encoding: never panics, and what decodes encodes back to the
//! same bytes (one encoding per entry).

use attesta::audit::entry::Entry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = Entry::decode(data) {
        assert_eq!(
            entry.encode(),
            data,
            "decoding is the inverse of the canonical encoding"
        );
    }
});

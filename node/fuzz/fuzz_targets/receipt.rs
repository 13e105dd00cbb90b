#![no_main]
//! C2SP tlog-proof receipts: parsing and checking arbitrary text never panics.

use attesta::audit::receipt::Receipt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = Receipt::parse(text) {
        assert!(r.verify(attesta_fuzz::trust(), 0).is_err());
    }
});

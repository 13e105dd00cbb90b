#![no_main]
//! Query strings: never panic; accepted ones name only known parameters, each once, and a
//! value decodes to what was percent-encoded.

use attesta::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    let known = [
        "index", "size", "start", "end", "purpose", "days", "comune", "as_of",
    ];
    if let Ok(params) = wire::query_params(Some(q), &known) {
        assert!(params.keys().all(|k| known.contains(k)));
        assert!(params.len() <= q.split('&').filter(|p| !p.is_empty()).count());
    }
    if let Some(decoded) = wire::percent_decode(q) {
        let encoded: String = decoded.bytes().map(|b| format!("%{b:02X}")).collect();
        assert_eq!(
            wire::percent_decode(&encoded).as_deref(),
            Some(decoded.as_str())
        );
    }
});

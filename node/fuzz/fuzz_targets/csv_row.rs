#![no_main]
//! Import rows: a residents or permits CSV record never panics the row parser, whatever its
//! fields, their number or their bytes.

use attesta::domain::rows::{parse_permit, parse_resident};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(data);
    for rec in rd.records().take(16) {
        let Ok(rec) = rec else { return };
        let fields: Vec<&str> = rec.iter().collect();
        if let Ok(r) = parse_resident(&fields) {
            assert_eq!(r.birth_place, r.cf.birth_place());
            assert!(r.residence_start >= r.birth_date);
        }
        if let Ok(p) = parse_permit(&fields) {
            assert!(p.expires.is_none_or(|e| e >= p.issued));
            assert!(!p.minors.contains(&p.holder));
        }
    }
});

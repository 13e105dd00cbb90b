#![no_main]
//! Attestation and status request bodies: never panic; an accepted one has a canonical
//! subject, a well-formed purpose and an as_of within its bounds.

use attesta::wire;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    let today = wire::today();
    let earliest = wire::EARLIEST_AS_OF;
    if let Ok(q) = wire::parse_question(&body) {
        assert!(q.as_of >= earliest && q.as_of <= today.next_day().unwrap_or(today));
        assert_eq!(wire::parse_purpose(q.purpose.as_str()).unwrap(), q.purpose);
        assert_eq!(
            wire::parse_subject(q.subject.canonical()).unwrap(),
            q.subject
        );
    }
    if let Ok(q) = wire::parse_status(&body) {
        assert!(q.as_of >= earliest && q.as_of <= today.next_day().unwrap_or(today));
        assert_eq!(wire::parse_purpose(q.purpose.as_str()).unwrap(), q.purpose);
    }
});

#![no_main]
//! tlog-witness add-checkpoint requests: never panic; an accepted one has a proof of at most
//! 64 hashes and a checkpoint whose lines begin its note's body.

use attesta::audit::note::AddCheckpoint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = AddCheckpoint::parse(data) {
        assert!(req.proof.len() <= attesta::audit::note::MAX_PROOF);
        assert!(req.note.body.starts_with(&req.checkpoint.body()));
    }
});

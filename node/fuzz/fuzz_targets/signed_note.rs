#![no_main]
//! C2SP signed notes, checkpoints and cosignatures: never panic; an accepted note renders
//! back to the same text; an accepted checkpoint's three lines begin its text (extension
//! lines may follow).

use attesta::audit::note::{cosigned_at, Checkpoint, Note};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(note) = Note::parse(text) {
        assert_eq!(note.render(), text, "a parsed note renders to its text");
        let key = [7u8; 32];
        let verify = |m: &[u8], s: &[u8]| attesta_certs::sign::ed25519_verify(&key, m, s);
        assert!(!note.verify("example.com/log", &key, verify));
        assert!(cosigned_at(&note, "example.com/witness", &key, verify).is_none());
        if let Ok(c) = Checkpoint::parse(&note.body) {
            // Extension lines may follow the root; the three lines come first.
            assert!(note.body.starts_with(&c.body()));
        }
    }
    if let Ok(c) = Checkpoint::parse(text) {
        assert!(text.starts_with(&c.body()));
    }
});

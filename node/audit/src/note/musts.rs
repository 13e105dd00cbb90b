//! The MUSTs of the C2SP texts this crate speaks, one test each, in the specs' order:
//! signed-note (c2sp.org/signed-note), tlog-checkpoint, tlog-cosignature (v1, Ed25519) and the
//! request side of tlog-witness (the witness's answers are `crate::witness` and the node's
//! endpoint). Signatures here are a toy keyed hash: these tests are about the formats; the
//! Ed25519 key ids are checked against the spec's own example in `note::tests`.

use sha2::{Digest, Sha256};

use super::tests::{toy_sign, toy_verify};
use super::*;

const NAME: &str = "pu.attesta.test/questura-pu/audit";
const PK: [u8; 32] = [5; 32];
const ROOT: &str = "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=";

fn body() -> String {
    format!("{NAME}\n12\n{ROOT}\n")
}

fn signed(body: &str) -> Note {
    Note::sign(body.to_owned(), NAME, &PK, toy_sign(1)).unwrap()
}

// --- signed-note ---------------------------------------------------------------------------

#[test]
fn signed_note_text_must_be_ignored_unless_a_trusted_key_verified_it() {
    let note = signed(&body());
    assert!(note.verify(NAME, &PK, toy_verify(1)));
    assert!(
        !note.verify(NAME, &PK, toy_verify(2)),
        "a key that did not sign it"
    );
    assert!(
        !note.verify(NAME, &[6; 32], toy_verify(1)),
        "another key id"
    );
}

#[test]
fn signed_notes_must_be_utf8_without_control_characters_but_newline() {
    let text = signed(&body()).render();
    for c in ['\u{0}', '\u{1}', '\t', '\r', '\u{1b}', '\u{7f}'] {
        let bad = text.replacen("\n12\n", &format!("\n12{c}\n"), 1);
        assert!(Note::parse(&bad).is_err(), "{c:?}");
    }
    // Bytes that are not UTF-8 never become a note (the witness request path).
    let mut req = b"old 0\n\n".to_vec();
    req.extend_from_slice(text.as_bytes());
    req[12] = 0xff;
    assert!(AddCheckpoint::parse(&req).is_err());
}

#[test]
fn key_names_must_be_non_empty_without_unicode_spaces_or_plus() {
    let sig = signed(&body()).signatures[0].line();
    for bad in ["", "a b", "a+b", "a\u{a0}b", "a\u{2003}b", "a\u{3000}b"] {
        let line = sig.replacen(NAME, bad, 1);
        let text = format!("{}\n{line}", body());
        assert!(Note::parse(&text).is_err(), "{bad:?}");
    }
}

#[test]
fn the_text_may_hold_empty_lines_and_ends_at_the_last_empty_line() {
    let text_with_gaps = "first\n\nsecond\n\n\nthird\n";
    let note = Note::sign(text_with_gaps.to_owned(), NAME, &PK, toy_sign(1)).unwrap();
    let back = Note::parse(&note.render()).unwrap();
    assert_eq!(back.body, text_with_gaps);
    assert!(back.verify(NAME, &PK, toy_verify(1)));
}

#[test]
fn a_signature_is_a_key_id_and_at_least_one_byte() {
    let short = STANDARD.encode([1u8, 2, 3, 4]);
    let text = format!("{}\n\u{2014} {NAME} {short}\n", body());
    assert!(Note::parse(&text).is_err());
    let not_b64 = format!("{}\n\u{2014} {NAME} !!!\n", body());
    assert!(Note::parse(&not_b64).is_err());
}

#[test]
fn verifiers_must_accept_at_least_16_signatures() {
    let mut note = signed(&body());
    for i in 0..15u8 {
        let mut s = note.signatures[0].clone();
        s.name = format!("witness.example/w{i}");
        note.signatures.push(s);
    }
    assert_eq!(note.signatures.len(), 16);
    let back = Note::parse(&note.render()).unwrap();
    assert!(back.verify(NAME, &PK, toy_verify(1)));
    // Up to this crate's own limit (100), and not beyond.
    while note.signatures.len() < 100 {
        let s = note.signatures[1].clone();
        note.signatures.push(s);
    }
    assert!(Note::parse(&note.render()).is_ok());
    note.signatures.push(note.signatures[1].clone());
    assert!(Note::parse(&note.render()).is_err());
}

#[test]
fn signatures_from_unknown_keys_must_be_ignored_even_sharing_a_name_or_an_id() {
    let mut note = signed(&body());
    let good = note.signatures[0].clone();
    // The same name, another id; the same id, another name: both unknown, both garbage.
    note.signatures.push(Signature {
        name: NAME.into(),
        key_id: [0, 0, 0, 0],
        data: vec![1; 64],
    });
    note.signatures.push(Signature {
        name: "other.example/log".into(),
        key_id: good.key_id,
        data: vec![1; 64],
    });
    let back = Note::parse(&note.render()).unwrap();
    assert!(back.verify(NAME, &PK, toy_verify(1)));
}

#[test]
fn a_known_keys_signature_must_be_verified_and_the_note_rejected_without_one() {
    let good = signed(&body());
    // Only a failing signature by the known key: rejected.
    let mut failing = good.clone();
    failing.signatures[0].data[0] ^= 1;
    assert!(!failing.verify(NAME, &PK, toy_verify(1)));
    // No signature by the known key at all: rejected.
    let mut none = good.clone();
    none.signatures[0].name = "other.example/log".into();
    assert!(!none.verify(NAME, &PK, toy_verify(1)));
    // A failing one beside a valid one (SHOULD reject; this crate does, as Go's note.Open).
    let mut both = good.clone();
    both.signatures.push(failing.signatures[0].clone());
    assert!(!both.verify(NAME, &PK, toy_verify(1)));
}

// --- tlog-checkpoint -----------------------------------------------------------------------

#[test]
fn a_checkpoint_is_three_non_empty_lines_origin_size_root() {
    assert!(Checkpoint::parse(&body()).is_ok());
    for bad in [
        format!("\n12\n{ROOT}\n"),     // empty origin
        format!("{NAME}\n\n{ROOT}\n"), // empty size
        format!("{NAME}\n12\n\n"),     // empty root
        format!("{NAME}\n12\n"),       // two lines
        format!("{NAME}\n12\n{ROOT}"), // no final newline
    ] {
        assert!(Checkpoint::parse(&bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_tree_size_is_decimal_without_leading_zeroes_unless_zero() {
    let with = |size: &str| format!("{NAME}\n{size}\n{ROOT}\n");
    assert_eq!(Checkpoint::parse(&with("0")).unwrap().size, 0);
    assert_eq!(
        Checkpoint::parse(&with("18446744073709551615"))
            .unwrap()
            .size,
        u64::MAX
    );
    for bad in [
        "00",
        "012",
        "+12",
        "-1",
        " 12",
        "12 ",
        "1e3",
        "0x10",
        "18446744073709551616",
    ] {
        assert!(Checkpoint::parse(&with(bad)).is_err(), "{bad:?}");
    }
}

#[test]
fn the_root_hash_is_base64_of_32_bytes() {
    let with = |root: String| format!("{NAME}\n12\n{root}\n");
    assert!(Checkpoint::parse(&with(STANDARD.encode([1u8; 32]))).is_ok());
    for bad in [
        STANDARD.encode([1u8; 31]),
        STANDARD.encode([1u8; 33]),
        STANDARD.encode([1u8; 32]).trim_end_matches('=').to_owned(),
        "not base64!".to_owned(),
    ] {
        assert!(Checkpoint::parse(&with(bad.clone())).is_err(), "{bad:?}");
    }
}

#[test]
fn extension_lines_are_optional_and_must_be_non_empty() {
    assert!(Checkpoint::parse(&format!("{}ext one\next two\n", body())).is_ok());
    assert!(Checkpoint::parse(&format!("{}ext one\n\n", body())).is_err());
    assert!(Checkpoint::parse(&format!("{}\next\n", body())).is_err());
}

#[test]
fn clients_must_ignore_unknown_signatures_on_a_checkpoint() {
    // A witness's cosignature (another name, another kind) beside the log's signature.
    let mut note = signed(&body());
    let w = cosign(
        &note.body,
        "witness.example/w1",
        &[7; 32],
        1_790_000_000,
        toy_sign(7),
    )
    .unwrap();
    note.signatures.push(w);
    let back = Note::parse(&note.render()).unwrap();
    assert!(back.verify(NAME, &PK, toy_verify(1)));
}

// --- tlog-cosignature (cosignature/v1, Ed25519) ---------------------------------------------

#[test]
fn the_cosignature_key_id_must_use_type_0x04() {
    let name = "witness.example/w1";
    let pk = [7u8; 32];
    let sig = cosign(&body(), name, &pk, 1, toy_sign(7)).unwrap();
    let expected: [u8; 4] = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update(b"\n")
        .chain_update([0x04])
        .chain_update(pk)
        .finalize()[..4]
        .try_into()
        .unwrap();
    assert_eq!(sig.key_id, expected);
    assert_ne!(
        sig.key_id,
        key_id(name, 0x01, &pk),
        "not the signed-note Ed25519 type"
    );
}

#[test]
fn the_cosignature_is_a_big_endian_timestamp_then_the_signature() {
    let time = 1_679_315_147u64;
    let sig = cosign(&body(), "witness.example/w1", &[7; 32], time, toy_sign(7)).unwrap();
    assert_eq!(sig.data.len(), 8 + 64);
    assert_eq!(sig.data[..8], time.to_be_bytes());
}

#[test]
fn the_signed_message_is_the_header_the_time_line_and_the_whole_body() {
    let text = format!("{}ext\n", body());
    let seen = std::cell::RefCell::new(Vec::new());
    cosign(&text, "witness.example/w1", &[7; 32], 1_679_315_147, |m| {
        seen.replace(m.to_vec());
        toy_sign(7)(m)
    })
    .unwrap();
    let expected = format!("cosignature/v1\ntime 1679315147\n{text}");
    assert_eq!(
        seen.into_inner(),
        expected.as_bytes(),
        "extension lines included"
    );
}

#[test]
fn a_cosignature_verifies_only_at_its_own_time_and_text() {
    let name = "witness.example/w1";
    let mut note = signed(&body());
    note.signatures
        .push(cosign(&note.body, name, &[7; 32], 1_790_000_000, toy_sign(7)).unwrap());
    assert_eq!(
        cosigned_at(&note, name, &[7; 32], toy_verify(7)),
        Some(1_790_000_000)
    );
    // Another time in the timestamp field: the signature no longer matches.
    let mut moved = note.clone();
    moved.signatures[1].data[7] ^= 1;
    assert_eq!(cosigned_at(&moved, name, &[7; 32], toy_verify(7)), None);
    // Another text.
    let mut other = note.clone();
    other.body = other.body.replace("\n12\n", "\n13\n");
    assert_eq!(cosigned_at(&other, name, &[7; 32], toy_verify(7)), None);
}

#[test]
fn the_timestamp_must_not_exceed_2_pow_63_minus_1() {
    let name = "witness.example/w1";
    let max = i64::MAX as u64;
    for (time, ok) in [(max, true), (max + 1, false), (u64::MAX, false)] {
        let mut note = signed(&body());
        note.signatures
            .push(cosign(&note.body, name, &[7; 32], time, toy_sign(7)).unwrap());
        assert_eq!(
            cosigned_at(&note, name, &[7; 32], toy_verify(7)).is_some(),
            ok,
            "{time}"
        );
    }
}

// --- tlog-witness: the add-checkpoint request ----------------------------------------------

fn request(old: &str, proof: &[String]) -> Vec<u8> {
    let mut out = format!("old {old}\n");
    for p in proof {
        out.push_str(p);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed(&body()).render());
    out.into_bytes()
}

#[test]
fn the_old_size_line_is_old_space_decimal_without_leading_zeroes() {
    assert_eq!(AddCheckpoint::parse(&request("0", &[])).unwrap().old, 0);
    assert_eq!(AddCheckpoint::parse(&request("8", &[])).unwrap().old, 8);
    for bad in ["00", "08", "+8", "-1", " 8", "8 ", "x"] {
        assert!(AddCheckpoint::parse(&request(bad, &[])).is_err(), "{bad:?}");
    }
    let tab = String::from_utf8(request("8", &[]))
        .unwrap()
        .replacen("old 8", "old\t8", 1);
    assert!(AddCheckpoint::parse(tab.as_bytes()).is_err());
}

#[test]
fn each_proof_line_is_one_base64_hash_and_at_most_63_of_them() {
    let h = STANDARD.encode([3u8; 32]);
    let r = AddCheckpoint::parse(&request("8", &[h.clone(), h.clone()])).unwrap();
    assert_eq!(r.proof, vec![[3u8; 32]; 2]);
    for bad in [
        STANDARD.encode([3u8; 31]),
        format!("{h} {h}"),
        format!(" {h}"),
        "not base64".to_owned(),
    ] {
        assert!(
            AddCheckpoint::parse(&request("8", std::slice::from_ref(&bad))).is_err(),
            "{bad:?}"
        );
    }
    assert!(AddCheckpoint::parse(&request("8", &vec![h.clone(); 63])).is_ok());
    assert!(AddCheckpoint::parse(&request("8", &vec![h; 64])).is_err());
}

#[test]
fn every_line_of_the_request_ends_in_a_newline() {
    let text = String::from_utf8(request("8", &[])).unwrap();
    let cut = text.trim_end_matches('\n');
    assert!(AddCheckpoint::parse(cut.as_bytes()).is_err());
    assert!(AddCheckpoint::parse(b"old 8").is_err());
}

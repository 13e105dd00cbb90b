//! The auditor's proof checks, through the CLI as an auditor runs them.

use attesta::audit::merkle::{self, Hash};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::cli::attesta;

fn b64(h: &Hash) -> String {
    STANDARD.encode(h)
}

fn joined(proof: &[Hash]) -> String {
    proof.iter().map(b64).collect::<Vec<_>>().join(",")
}

fn run(args: &[String]) -> std::process::Output {
    attesta().arg("audit").args(args).output().unwrap()
}

#[test]
fn proofs_are_checked_by_hand_with_one_line_reasons() {
    let leaves: Vec<Hash> = (0..21)
        .map(|i| merkle::leaf_hash(format!("entry {i}").as_bytes()))
        .collect();
    let (root13, root21) = (merkle::root(&leaves[..13]), merkle::root(&leaves));
    let inclusion = merkle::inclusion_proof(&leaves[..], 6, 21).unwrap();
    let consistency = merkle::consistency_proof(&leaves[..], 13, 21).unwrap();

    let check_inclusion = |leaf: &Hash, index: u64, root: &Hash, proof: &str| {
        run(&[
            "check-inclusion".into(),
            "--leaf-hash".into(),
            b64(leaf),
            "--index".into(),
            index.to_string(),
            "--size".into(),
            "21".into(),
            "--root".into(),
            b64(root),
            "--proof".into(),
            proof.into(),
        ])
    };
    let ok = check_inclusion(&leaves[6], 6, &root21, &joined(&inclusion));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("valid:"));

    for (out, why) in [
        (
            check_inclusion(&leaves[7], 6, &root21, &joined(&inclusion)),
            "does not lead to the root",
        ),
        (
            check_inclusion(&leaves[6], 7, &root21, &joined(&inclusion)),
            "does not lead to the root",
        ),
        (
            check_inclusion(&leaves[6], 6, &root21, "AAAA"),
            "a hash must be 32 bytes",
        ),
        (
            check_inclusion(&leaves[6], 6, &root21, "not base64!"),
            "proof[0]: not standard base64",
        ),
        (
            check_inclusion(&leaves[6], 21, &root21, &joined(&inclusion)),
            "index 21 is not in a tree of size 21",
        ),
    ] {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(why), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }

    let check_consistency = |size1: u64, root1: &Hash, proof: &str| {
        run(&[
            "check-consistency".into(),
            "--size1".into(),
            size1.to_string(),
            "--size2".into(),
            "21".into(),
            "--root1".into(),
            b64(root1),
            "--root2".into(),
            b64(&root21),
            "--proof".into(),
            proof.into(),
        ])
    };
    let ok = check_consistency(13, &root13, &joined(&consistency));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // A rewritten history: another first root for the same size.
    let forged = merkle::root(&leaves[1..14]);
    let out = check_consistency(13, &forged, &joined(&consistency));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("first root"));
    let out = check_consistency(0, &root13, &joined(&consistency));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("0 < size1 <= size2"));
}

//! The `attesta-audit` binary on files made by the library: a CA from `attesta-certs`, a log's
//! entries and signed checkpoint, a bundle. What an auditor runs, without a node.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use attesta_audit::bundle::{Bundle, Header};
use attesta_audit::entry::{Decision, Direction, Entry};
use attesta_audit::merkle::{self, Hash};
use attesta_audit::names;
use attesta_audit::note::{Checkpoint, Note};
use attesta_certs::{AgencyId, Ca, SigningIdentity, TrustDomain};
use base64::Engine;

const AGENCY: &str = "questura-pu";

struct Federation {
    dir: tempfile::TempDir,
    td: TrustDomain,
}

impl Federation {
    fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let td = TrustDomain::new(name).unwrap();
        let mut ca = Ca::init(&dir.path().join("ca"), td.clone()).unwrap();
        ca.issue_agency(
            &AgencyId::new(AGENCY).unwrap(),
            vec![],
            vec![],
            30,
            &dir.path().join(AGENCY),
        )
        .unwrap();
        Self { dir, td }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca/ca.crt")
    }

    fn signer(&self) -> SigningIdentity {
        let d = self.dir.path().join(AGENCY);
        SigningIdentity::load(&self.td, &d.join("sign.crt"), &d.join("sign.key")).unwrap()
    }
}

fn entry(i: u8) -> Entry {
    Entry {
        time_ms: 1_796_000_000_000 + u64::from(i) * 1000,
        query_id: [i; 16],
        direction: Direction::Incoming,
        peer_agency: "inps-pesaro".into(),
        peer_cert: Some([1; 32]),
        route: "POST /v1/attest/legal-presence".into(),
        purpose: "benefit-eligibility".into(),
        subject: Some([i; 32]),
        decision: Decision::Allow,
        rule: "p, consumer, legal-presence, read, benefit-eligibility, *, allow".into(),
        policy_version: "ab12".into(),
        status: 200,
        request_sha256: [3; 32],
        response_sha256: Some([4; 32]),
        operator: None,
    }
}

/// A bundle of `n` entries, signed by the agency's key, and its entries.
fn bundle(f: &Federation, n: u8) -> Bundle {
    let signer = f.signer();
    let entries: Vec<Vec<u8>> = (0..n).map(|i| entry(i).encode()).collect();
    let leaves: Vec<Hash> = entries.iter().map(|e| merkle::leaf_hash(e)).collect();
    let origin = names::origin(f.td.as_str(), AGENCY);
    let checkpoint = Checkpoint {
        origin: origin.clone(),
        size: u64::from(n),
        root: merkle::root(&leaves),
    };
    let note = Note::sign(checkpoint.body(), &origin, &signer.public_key(), |m| {
        signer.sign(m)
    })
    .unwrap();
    Bundle {
        header: Header {
            agency: AGENCY.into(),
            origin,
            exported_at: "2026-12-01T10:00:00Z".into(),
            checkpoint: note.render(),
            signer: signer.cert_pem(),
            witnesses: vec![],
            range: None,
        },
        leaves,
        entries,
    }
}

fn write(b: &Bundle, path: &Path) {
    let mut out = Vec::new();
    b.write(&mut out).unwrap();
    std::fs::write(path, out).unwrap();
}

fn audit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_attesta-audit"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_binary_verifies_a_bundle_and_names_a_changed_entry() {
    let f = Federation::new("pu.attesta.test");
    let ca = f.ca();
    let ca = ca.to_str().unwrap();
    let good = f.dir.path().join("questura.bundle");
    let b = bundle(&f, 6);
    write(&b, &good);
    let o = audit(&["verify", good.to_str().unwrap(), "--ca", ca]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("valid: questura-pu log, 6 entries"),
        "{}",
        text(&o)
    );

    // Entry 3 rewritten after the fact (a denial turned into an allow, say): named.
    let mut changed = b.clone();
    let mut e = entry(3);
    e.status = 403;
    e.decision = Decision::Deny;
    changed.entries[3] = e.encode();
    let bad = f.dir.path().join("changed.bundle");
    write(&changed, &bad);
    let o = audit(&["verify", bad.to_str().unwrap(), "--ca", ca]);
    assert!(!o.status.success());
    assert!(text(&o).contains("entry 3 was changed"), "{}", text(&o));
    assert!(text(&o).starts_with("attesta-audit: "), "{}", text(&o));

    // Another federation's CA does not vouch for this log's key.
    let other = Federation::new("other.attesta.test");
    let o = audit(&[
        "verify",
        good.to_str().unwrap(),
        "--ca",
        other.ca().to_str().unwrap(),
    ]);
    assert!(!o.status.success(), "{}", text(&o));

    // A file that is not a bundle, and one that is missing: one line naming it.
    let junk = f.dir.path().join("junk.bundle");
    std::fs::write(&junk, b"not a bundle").unwrap();
    let o = audit(&["verify", junk.to_str().unwrap(), "--ca", ca]);
    assert!(!o.status.success());
    assert!(text(&o).contains("junk.bundle"), "{}", text(&o));
    assert_eq!(text(&o).trim().lines().count(), 1, "{}", text(&o));
}

#[test]
fn the_binary_checks_proofs_by_hand() {
    let leaves: Vec<Hash> = (0..5u8).map(|i| merkle::leaf_hash(&[i])).collect();
    let b64 = |h: &Hash| base64::engine::general_purpose::STANDARD.encode(h);
    let root = merkle::root(&leaves);
    let proof = merkle::inclusion_proof(leaves.as_slice(), 2, 5).unwrap();
    let proof: Vec<String> = proof.iter().map(b64).collect();
    let args = |leaf: &Hash| {
        vec![
            "check-inclusion".to_owned(),
            format!("--leaf-hash={}", b64(leaf)),
            "--index=2".into(),
            "--size=5".into(),
            format!("--root={}", b64(&root)),
            format!("--proof={}", proof.join(",")),
        ]
    };
    let run = |a: Vec<String>| audit(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(args(&leaves[2]));
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("valid: leaf 2 is in the tree of size 5"));
    let o = run(args(&leaves[3]));
    assert!(!o.status.success());
    assert!(text(&o).contains("inclusion proof refused"), "{}", text(&o));
}

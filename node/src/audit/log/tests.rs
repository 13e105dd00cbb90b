use std::sync::Arc;

use attesta_certs::{AgencyId, Ca, SignerCert, SigningIdentity, TrustDomain};

use super::*;
use crate::audit::entry::{Decision, Direction};
use crate::audit::merkle::{verify_consistency, verify_inclusion};

struct Fixture {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    signing: Arc<SigningIdentity>,
    signer: SignerCert,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let td = TrustDomain::new("test.attesta.example").unwrap();
    let mut ca = Ca::init(&dir.path().join("ca"), td.clone()).unwrap();
    let agency = AgencyId::new("comune-pesaro").unwrap();
    let files = ca
        .issue_agency(&agency, vec![], vec![], 30, &dir.path().join("agency"))
        .unwrap();
    let signing = SigningIdentity::load(&td, &files.sign_cert, &files.sign_key).unwrap();
    let signer = SignerCert::from_pem(&std::fs::read(&files.sign_cert).unwrap()).unwrap();
    Fixture {
        db: dir.path().join("db"),
        _dir: dir,
        signing: Arc::new(signing),
        signer,
    }
}

fn open(f: &Fixture) -> AuditLog {
    let store = Arc::new(Store::open(&f.db).unwrap());
    AuditLog::open(
        store,
        SubjectKey::new([1; 32]),
        origin("test.attesta.example", "comune-pesaro"),
        f.signing.clone(),
    )
    .unwrap()
}

fn entry(i: u64) -> Entry {
    Entry {
        time_ms: 1_790_000_000_000 + i,
        query_id: [i as u8; 16],
        direction: Direction::Incoming,
        peer_agency: "inps-pesaro".into(),
        peer_cert: Some([2; 32]),
        route: "POST /v1/attest/residence".into(),
        purpose: "benefit-eligibility".into(),
        subject: Some([(i % 3) as u8; 32]),
        decision: Decision::Allow,
        rule: "rule".into(),
        policy_version: "v".into(),
        status: 200,
        request_sha256: [3; 32],
        response_sha256: Some([4; 32]),
        operator: None,
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn appends_are_durable_and_the_stored_tree_matches_the_definition() {
    let f = fixture();
    let all: Vec<Entry> = (0..37).map(entry).collect();
    let leaves: Vec<Hash> = all.iter().map(|e| merkle::leaf_hash(&e.encode())).collect();
    {
        let log = open(&f);
        assert_eq!(log.head().root, merkle::empty_root());
        // Concurrent appends of different sizes: indexes are contiguous and in order per call.
        block_on(async {
            let mut at = 0;
            for chunk in all.chunks(5) {
                let index = log.append(chunk).await.unwrap();
                assert_eq!(index, at);
                at += chunk.len() as u64;
            }
        });
        assert_eq!(log.head().size, 37);
        assert_eq!(log.head().root, merkle::root(&leaves));
    }
    // Reopened: the right edge is rebuilt from the stored subtree hashes.
    let log = open(&f);
    assert_eq!(log.head().size, 37);
    assert_eq!(log.head().root, merkle::root(&leaves));
    for size in 1..=37u64 {
        assert_eq!(
            log.root_at(size).unwrap(),
            merkle::root(&leaves[..size as usize])
        );
        for index in [0, size / 2, size - 1] {
            let proof = merkle::inclusion_proof(&log.tree(), index, size).unwrap();
            assert_eq!(
                proof,
                merkle::inclusion_proof(&leaves[..], index, size).unwrap()
            );
            verify_inclusion(
                &leaves[index as usize],
                index,
                size,
                &proof,
                &merkle::root(&leaves[..size as usize]),
            )
            .unwrap();
        }
        let proof = merkle::consistency_proof(&log.tree(), size, 37).unwrap();
        verify_consistency(
            size,
            37,
            &log.root_at(size).unwrap(),
            &log.head().root,
            &proof,
        )
        .unwrap();
    }
    let stored = log.store().audit_entries(0, 37).unwrap();
    assert_eq!(stored.len(), 37);
    assert_eq!(Entry::decode(&stored[10]).unwrap(), all[10]);
    assert_eq!(
        log.store().audit_by_subject(&[1; 32]).unwrap(),
        (0..37).filter(|i| i % 3 == 1).collect::<Vec<_>>()
    );
}

#[test]
fn many_concurrent_appends_share_writes() {
    let f = fixture();
    let log = Arc::new(open(&f));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let indexes = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..400 {
            let log = log.clone();
            set.spawn(async move { log.append(&[entry(i)]).await.unwrap() });
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            out.push(r.unwrap());
        }
        out
    });
    let mut sorted = indexes.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..400).collect::<Vec<_>>(),
        "every index given once"
    );
    let leaves: Vec<Hash> = log
        .store()
        .audit_entries(0, 400)
        .unwrap()
        .iter()
        .map(|b| merkle::leaf_hash(b))
        .collect();
    assert_eq!(log.head().root, merkle::root(&leaves));
}

#[test]
fn checkpoints_are_signed_persisted_and_never_inconsistent() {
    let f = fixture();
    let pk = f.signer.public_key().unwrap();
    {
        let log = open(&f);
        let first = log.sign_checkpoint().unwrap().expect("first checkpoint");
        assert_eq!(first.checkpoint.size, 0);
        assert!(log.sign_checkpoint().unwrap().is_none(), "nothing new");
        block_on(log.append(&(0..9).map(entry).collect::<Vec<_>>())).unwrap();
        let signed = log.sign_checkpoint().unwrap().unwrap();
        assert_eq!(signed.checkpoint.size, 9);
        assert_eq!(signed.checkpoint.root, log.head().root);
        let note = Note::parse(&signed.note.render()).unwrap();
        assert!(note.verify(log.origin(), &pk, |m, s| f.signer.verify(m, s)));
    }
    // After a restart the last checkpoint is known, and further ones extend it.
    {
        let log = open(&f);
        assert_eq!(log.latest().unwrap().checkpoint.size, 9);
        block_on(log.append(&[entry(9)])).unwrap();
        assert_eq!(log.sign_checkpoint().unwrap().unwrap().checkpoint.size, 10);
    }
    // A persisted checkpoint the log does not extend (here: a different root at size 10, as
    // after a rewrite) makes the node refuse to sign, also after a restart.
    {
        let log = open(&f);
        let mut forged = log.latest().unwrap().checkpoint.clone();
        forged.root[0] ^= 1;
        let note = Note::sign(forged.body(), log.origin(), &pk, |m| f.signing.sign(m)).unwrap();
        log.store()
            .audit_put(false, CHECKPOINT_KEY, note.render().as_bytes())
            .unwrap();
    }
    let log = open(&f);
    block_on(log.append(&[entry(10)])).unwrap();
    let err = log.sign_checkpoint().unwrap_err();
    assert!(
        matches!(err, AuditError::Inconsistent(ref m) if m.contains("no longer have the root")),
        "{err}"
    );
    // A last checkpoint larger than the log (a truncation) is refused too.
    let mut bigger = log.latest().unwrap().checkpoint.clone();
    bigger.size = 1000;
    let note = Note::sign(bigger.body(), log.origin(), &pk, |m| f.signing.sign(m)).unwrap();
    log.store()
        .audit_put(false, CHECKPOINT_KEY, note.render().as_bytes())
        .unwrap();
    drop(log);
    let log = open(&f);
    let err = log.sign_checkpoint().unwrap_err();
    assert!(err.to_string().contains("fewer than"), "{err}");
}

#[test]
fn the_subject_key_is_created_once_with_private_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.key");
    let k1 = load_or_create_key(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let k2 = load_or_create_key(&path).unwrap();
    let cf = crate::domain::cf::CodiceFiscale::parse("RSSMRA85T10A562S").unwrap();
    assert_eq!(k1.blind(&cf), k2.blind(&cf));
    std::fs::write(&path, "not hex\n").unwrap();
    let err = load_or_create_key(&path).unwrap_err().to_string();
    assert!(
        err.contains("audit.key") && err.contains("64 hex digits"),
        "{err}"
    );
}

#[test]
fn pruning_deletes_old_entries_and_their_subject_keys_and_keeps_the_tree() {
    let f = fixture();
    // 10,000 entries one millisecond apart (more than one pruning chunk), one of which has a
    // later time than those after it (times come from concurrent requests): pruning stops at
    // the first entry it must keep.
    let mut all: Vec<Entry> = (0..10_000).map(entry).collect();
    all[7_000].time_ms = entry(9_999).time_ms;
    let leaves: Vec<Hash> = all.iter().map(|e| merkle::leaf_hash(&e.encode())).collect();
    {
        let log = open(&f);
        block_on(async {
            for chunk in all.chunks(1000) {
                log.append(chunk).await.unwrap();
            }
        });
        let signed = log.sign_checkpoint().unwrap().unwrap();
        assert_eq!(log.first_kept().unwrap(), 0);
        // Nothing is older than the first entry.
        assert_eq!(log.prune(entry(0).time_ms).unwrap(), 0);
        // Entries 0..5000 are older than entry 5000.
        assert_eq!(log.prune(entry(5_000).time_ms).unwrap(), 5_000);
        assert!(log.store().audit_entries(4_999, 5_000).is_err());
        assert_eq!(
            Entry::decode(&log.store().audit_entries(5_000, 5_001).unwrap()[0]).unwrap(),
            all[5_000]
        );
        // The subject keys of pruned entries are gone, later ones stay.
        assert_eq!(
            log.store().audit_by_subject(&[1; 32]).unwrap(),
            (5_000..10_000).filter(|i| i % 3 == 1).collect::<Vec<_>>()
        );
        // The tree is unchanged: roots, proofs of pruned and kept leaves, the next checkpoint.
        assert_eq!(log.root_at(10_000).unwrap(), merkle::root(&leaves));
        assert_eq!(log.root_at(3).unwrap(), merkle::root(&leaves[..3]));
        for index in [0, 4_999, 5_000, 9_999] {
            let proof = merkle::inclusion_proof(&log.tree(), index, 10_000).unwrap();
            verify_inclusion(
                &leaves[index as usize],
                index,
                10_000,
                &proof,
                &signed.checkpoint.root,
            )
            .unwrap();
        }
        block_on(log.append(&[entry(20_000)])).unwrap();
        let next = log.sign_checkpoint().unwrap().unwrap();
        assert_eq!(next.checkpoint.size, 10_001);
        // Entry 7,000 is not older than entry 9,500's time: it and what follows are kept.
        assert_eq!(log.prune(entry(9_500).time_ms).unwrap(), 7_000);
    }
    // The first kept entry is persisted.
    let log = open(&f);
    assert_eq!(log.first_kept().unwrap(), 7_000);
    assert_eq!(log.prune(0).unwrap(), 7_000);
}

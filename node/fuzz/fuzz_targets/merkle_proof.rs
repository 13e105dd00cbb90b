#![no_main]
//! RFC 9162 proof verification on arbitrary sizes, indexes and hashes: never panics, and
//! accepts only what the tree gives.

use attesta::audit::merkle;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 17 {
        return;
    }
    let a = u64::from_le_bytes(data[..8].try_into().unwrap_or_default());
    let b = u64::from_le_bytes(data[8..16].try_into().unwrap_or_default());
    let rest = &data[16..];
    let hashes: Vec<merkle::Hash> = rest
        .chunks_exact(32)
        .map(|c| c.try_into().unwrap_or([0; 32]))
        .collect();
    let Some((first, proof)) = hashes.split_first() else {
        return;
    };
    let root = proof.last().copied().unwrap_or([0; 32]);
    let _ = merkle::verify_inclusion(first, a, b, proof, &root);
    let _ = merkle::verify_consistency(a, b, first, &root, proof);
    // A small real tree: its own proofs verify, and a changed leaf does not.
    let n = (a % 64) + 1;
    let leaves: Vec<merkle::Hash> = (0..n)
        .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
        .collect();
    let i = b % n;
    let root = merkle::root(&leaves);
    let proof = merkle::inclusion_proof(&leaves[..], i, n).expect("an index in the tree");
    assert!(merkle::verify_inclusion(&leaves[i as usize], i, n, &proof, &root).is_ok());
    assert!(
        merkle::verify_inclusion(first, i, n, &proof, &root).is_err()
            || *first == leaves[i as usize]
    );
});

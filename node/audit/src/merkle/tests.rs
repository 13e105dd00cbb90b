use proptest::prelude::*;

use super::*;

/// MTH straight from RFC 9162 §2.1.1, recursive over the data: the reference the fast code is
/// checked against.
fn mth(data: &[Vec<u8>]) -> Hash {
    match data.len() {
        0 => Sha256::digest([]).into(),
        1 => {
            let mut v = vec![0u8];
            v.extend_from_slice(&data[0]);
            Sha256::digest(&v).into()
        }
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            let mut v = vec![1u8];
            v.extend_from_slice(&mth(&data[..k]));
            v.extend_from_slice(&mth(&data[k..]));
            Sha256::digest(&v).into()
        }
    }
}

fn data(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("entry {i}").into_bytes()).collect()
}

fn leaves(data: &[Vec<u8>]) -> Vec<Hash> {
    data.iter().map(|d| leaf_hash(d)).collect()
}

/// The sides (true: right) of the siblings in `PATH(m, D[n])`, deepest first: all the
/// verifier computes from the index and the size.
fn sides(m: u64, n: u64) -> Vec<bool> {
    if n <= 1 {
        return Vec::new();
    }
    let k = split(n);
    let (mut v, side) = if m < k {
        (sides(m, k), true)
    } else {
        (sides(m - k, n - k), false)
    };
    v.push(side);
    v
}

/// The shape of `SUBPROOF(m, D[n], b)`: 2 for the subtree's own root, 1 for a right sibling,
/// 0 for a left one.
fn shape(m: u64, n: u64, complete: bool) -> Vec<u8> {
    if m == n {
        return if complete { Vec::new() } else { vec![2] };
    }
    let k = split(n);
    let (mut v, side) = if m <= k {
        (shape(m, k, complete), 1)
    } else {
        (shape(m - k, n - k, false), 0)
    };
    v.push(side);
    v
}

#[test]
fn roots_match_the_rfc_definition_and_known_answers() {
    assert_eq!(
        hex::encode(root(&[])),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    // The certificate-transparency reference inputs and their roots for sizes 1..=8.
    let inputs: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x00],
        vec![0x10],
        vec![0x20, 0x21],
        vec![0x30, 0x31],
        vec![0x40, 0x41, 0x42, 0x43],
        (0x50..=0x57).collect(),
        (0x60..=0x6f).collect(),
    ];
    let expected = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    for n in 1..=8 {
        let l = leaves(&inputs[..n]);
        assert_eq!(hex::encode(root(&l)), expected[n - 1], "size {n}");
        assert_eq!(root(&l), mth(&inputs[..n]), "size {n}");
    }
    for n in 0..=300 {
        let d = data(n);
        assert_eq!(root(&leaves(&d)), mth(&d), "size {n}");
    }
}

#[test]
fn every_leaf_of_every_tree_up_to_130_has_a_proof_that_verifies() {
    let d = data(130);
    let all = leaves(&d);
    for size in 1..=130u64 {
        let tree = &all[..size as usize];
        let r = root(tree);
        for index in 0..size {
            let proof = inclusion_proof(tree, index, size).unwrap();
            assert_eq!(proof.len(), sides(index, size).len());
            verify_inclusion(&tree[index as usize], index, size, &proof, &r)
                .unwrap_or_else(|e| panic!("index {index} of {size}: {e}"));
        }
    }
}

#[test]
fn every_pair_of_sizes_up_to_70_has_a_consistency_proof_that_verifies() {
    let all = leaves(&data(70));
    for size2 in 1..=70u64 {
        let tree = &all[..size2 as usize];
        let root2 = root(tree);
        for size1 in 1..=size2 {
            let root1 = root(&all[..size1 as usize]);
            let proof = consistency_proof(tree, size1, size2).unwrap();
            verify_consistency(size1, size2, &root1, &root2, &proof)
                .unwrap_or_else(|e| panic!("{size1} -> {size2}: {e}"));
        }
    }
}

#[test]
fn any_range_of_any_tree_up_to_70_rebuilds_the_root_from_its_left_subtrees() {
    let all = leaves(&data(70));
    for size in 1..=70u64 {
        let tree = &all[..size as usize];
        for start in 0..size {
            let proof = inclusion_proof(tree, start, size).unwrap();
            let left = left_subtrees(start, size, &proof).unwrap();
            assert_eq!(left.len(), start.count_ones() as usize);
            for end in start..=size {
                let got = root_from_range(&left, start, &tree[start as usize..end as usize]);
                assert_eq!(
                    got,
                    Ok(root(&all[..end as usize])),
                    "{start}..{end} of {size}"
                );
            }
        }
    }
}

#[test]
fn a_wrong_left_subtree_or_count_gives_no_root_or_another_one() {
    let all = leaves(&data(13));
    let proof = inclusion_proof(&all[..], 6, 13).unwrap();
    let left = left_subtrees(6, 13, &proof).unwrap();
    // 6 = 4 + 2: two subtrees.
    assert_eq!(left.len(), 2);
    let good = root_from_range(&left, 6, &all[6..]).unwrap();
    assert_eq!(good, root(&all));
    let mut changed = left.clone();
    changed[1] = flip(&changed[1], 3);
    assert_ne!(root_from_range(&changed, 6, &all[6..]).unwrap(), good);
    assert_eq!(
        root_from_range(&left[..1], 6, &all[6..]),
        Err(ProofError::WrongLength)
    );
    assert_eq!(
        left_subtrees(6, 13, &proof[..proof.len() - 1]),
        Err(ProofError::WrongLength)
    );
    assert_eq!(
        left_subtrees(13, 13, &proof),
        Err(ProofError::IndexOutOfRange {
            index: 13,
            size: 13
        })
    );
    assert_eq!(root_from_range(&[], 0, &[]), Ok(empty_root()));
}

#[test]
fn bad_requests_are_refused() {
    let all = leaves(&data(8));
    let r = root(&all);
    assert_eq!(
        inclusion_proof(&all[..], 8, 8),
        Err(ProofError::IndexOutOfRange { index: 8, size: 8 })
    );
    assert_eq!(
        verify_inclusion(&all[0], 9, 8, &[], &r),
        Err(ProofError::IndexOutOfRange { index: 9, size: 8 })
    );
    assert_eq!(
        consistency_proof(&all[..], 0, 8),
        Err(ProofError::BadSizes { size1: 0, size2: 8 })
    );
    assert_eq!(
        verify_consistency(0, 8, &r, &r, &[]),
        Err(ProofError::BadSizes { size1: 0, size2: 8 })
    );
    assert_eq!(
        verify_consistency(5, 4, &r, &r, &[]),
        Err(ProofError::BadSizes { size1: 5, size2: 4 })
    );
    // Equal sizes: empty proof, equal roots.
    assert_eq!(verify_consistency(8, 8, &r, &r, &[]), Ok(()));
    assert_eq!(
        verify_consistency(8, 8, &r, &r, &[r]),
        Err(ProofError::WrongLength)
    );
    assert_eq!(
        verify_consistency(8, 8, &r, &all[0], &[]),
        Err(ProofError::RootMismatch)
    );
    // Different sizes need a proof.
    assert_eq!(
        verify_consistency(4, 8, &r, &r, &[]),
        Err(ProofError::WrongLength)
    );
    // Too long and too short proofs.
    let proof = inclusion_proof(&all[..], 3, 8).unwrap();
    let mut long = proof.clone();
    long.push(r);
    assert_eq!(
        verify_inclusion(&all[3], 3, 8, &long, &r),
        Err(ProofError::WrongLength)
    );
    assert_eq!(
        verify_inclusion(&all[3], 3, 8, &proof[..2], &r),
        Err(ProofError::WrongLength)
    );
    assert_eq!(
        hash_from_slice(&[0; 31]),
        Err(ProofError::BadHashLength(31))
    );
    assert!(hash_from_slice(&[0; 32]).is_ok());
}

#[test]
fn a_consistency_proof_that_ignores_the_first_root_is_caught() {
    // The first root is checked, not only the second: a proof for the real history does not
    // vouch for a forged first root.
    let all = leaves(&data(11));
    let proof = consistency_proof(&all[..], 6, 11).unwrap();
    let forged = root(&leaves(&data(5)));
    assert_eq!(
        verify_consistency(6, 11, &forged, &root(&all), &proof),
        Err(ProofError::FirstRootMismatch)
    );
}

fn flip(h: &Hash, bit: usize) -> Hash {
    let mut h = *h;
    h[bit / 8 % 32] ^= 1 << (bit % 8);
    h
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn inclusion_proofs_of_larger_trees_verify_and_any_flipped_bit_fails(
        size in 1u64..400,
        index_seed in any::<u64>(),
        bit in 0usize..256,
        which in any::<prop::sample::Index>(),
        small_bit in 0u32..9,
    ) {
        let index = index_seed % size;
        let all = leaves(&data(size as usize));
        let r = root(&all);
        let leaf = all[index as usize];
        let proof = inclusion_proof(&all[..], index, size).unwrap();
        prop_assert!(verify_inclusion(&leaf, index, size, &proof, &r).is_ok());

        prop_assert!(verify_inclusion(&flip(&leaf, bit), index, size, &proof, &r).is_err());
        prop_assert!(verify_inclusion(&leaf, index, size, &proof, &flip(&r, bit)).is_err());
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let i = which.index(bad.len());
            bad[i] = flip(&bad[i], bit);
            prop_assert!(verify_inclusion(&leaf, index, size, &bad, &r).is_err());
        }
        let other_index = index ^ (1 << small_bit);
        prop_assert!(verify_inclusion(&leaf, other_index, size, &proof, &r).is_err());
        // RFC 9162's verifier binds the size only through the proof's shape (e.g. leaf 0 has
        // the same path in trees of 129 and 131 leaves): a size that gives another shape
        // fails. Sizes with the same shape are told apart by the signed checkpoint, which
        // commits to size and root together.
        let other_size = size ^ (1 << small_bit);
        if other_size <= index || sides(index, other_size) != sides(index, size) {
            prop_assert!(verify_inclusion(&leaf, index, other_size, &proof, &r).is_err());
        }
    }

    #[test]
    fn consistency_proofs_verify_and_any_flipped_bit_fails(
        size2 in 2u64..400,
        size1_seed in any::<u64>(),
        bit in 0usize..256,
        which in any::<prop::sample::Index>(),
        small_bit in 0u32..9,
    ) {
        let size1 = 1 + size1_seed % (size2 - 1);
        let all = leaves(&data(size2 as usize));
        let (root1, root2) = (root(&all[..size1 as usize]), root(&all));
        let proof = consistency_proof(&all[..], size1, size2).unwrap();
        prop_assert!(verify_consistency(size1, size2, &root1, &root2, &proof).is_ok());

        prop_assert!(verify_consistency(size1, size2, &flip(&root1, bit), &root2, &proof).is_err());
        prop_assert!(verify_consistency(size1, size2, &root1, &flip(&root2, bit), &proof).is_err());
        let mut bad = proof.clone();
        let i = which.index(bad.len());
        bad[i] = flip(&bad[i], bit);
        prop_assert!(verify_consistency(size1, size2, &root1, &root2, &bad).is_err());
        // As for inclusion, sizes are bound through the proof's shape.
        let same = shape(size1, size2, true);
        let other1 = size1 ^ (1 << small_bit);
        if other1 == 0 || other1 >= size2 || shape(other1, size2, true) != same {
            prop_assert!(verify_consistency(other1, size2, &root1, &root2, &proof).is_err());
        }
        let other2 = size2 ^ (1 << small_bit);
        if other2 <= size1 || shape(size1, other2, true) != same {
            prop_assert!(verify_consistency(size1, other2, &root1, &root2, &proof).is_err());
        }
    }
}

#[test]
fn the_root_on_several_cores_is_the_root() {
    let leaves: Vec<Hash> = (0..140_000u32)
        .map(|i| leaf_hash(&i.to_be_bytes()))
        .collect();
    for n in [0, 1, 2, 65_535, 65_536, 65_537, 100_000, 131_072, 140_000] {
        let want = root(&leaves[..n]);
        for threads in [1, 2, 3, 4] {
            assert_eq!(
                root_parallel(&leaves[..n], threads),
                want,
                "{n} leaves, {threads} threads"
            );
        }
    }
}

//! RFC 9162 §2.1 Merkle trees over SHA-256: hashing, inclusion and consistency proofs, and
//! their verification. Pure code, no I/O: the node and the auditor's tools share it.
//!
//! Hashes: `leaf = SHA-256(0x00 || data)`, `node = SHA-256(0x01 || left || right)`, the empty
//! tree's root is `SHA-256()`. A tree of `n > 1` leaves splits at `k`, the largest power of two
//! smaller than `n`.
//!
//! Proof generation works on any [`Tree`] (something that can give the root of a range of
//! leaves); verification needs only hashes and sizes. Arithmetic is checked: sizes and indexes
//! come from the network and from files.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// Why a proof was refused, or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("index {index} is not in a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("a consistency proof needs 0 < size1 <= size2 (got {size1} and {size2})")]
    BadSizes { size1: u64, size2: u64 },
    #[error("a hash must be 32 bytes, got {0}")]
    BadHashLength(usize),
    #[error("the proof has the wrong number of hashes")]
    WrongLength,
    #[error("the proof does not lead to the root")]
    RootMismatch,
    #[error("the proof does not lead to the first root")]
    FirstRootMismatch,
    #[error("size overflow")]
    Overflow,
}

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree, `SHA-256()`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// A hash from bytes that must be exactly 32 long.
pub fn hash_from_slice(bytes: &[u8]) -> Result<Hash, ProofError> {
    bytes
        .try_into()
        .map_err(|_| ProofError::BadHashLength(bytes.len()))
}

/// The largest power of two smaller than `n` (`n >= 2`).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The root of a tree whose leaf hashes are `leaves`, in one pass with O(log n) memory.
pub fn root(leaves: &[Hash]) -> Hash {
    let mut stack: Vec<(Hash, u32)> = Vec::new();
    for leaf in leaves {
        let mut node = (*leaf, 0u32);
        while let Some(&(top, height)) = stack.last() {
            if height != node.1 {
                break;
            }
            stack.pop();
            node = (node_hash(&top, &node.0), height + 1);
        }
        stack.push(node);
    }
    // What is left are perfect subtrees, largest first: fold them from the right.
    let mut acc = match stack.pop() {
        Some((h, _)) => h,
        None => return empty_root(),
    };
    while let Some((left, _)) = stack.pop() {
        acc = node_hash(&left, &acc);
    }
    acc
}

/// [`root`] on up to `threads` cores: the tree's two subtrees (RFC 9162 §2.1.1: the left one
/// over the largest power of two of leaves smaller than their number) each on its own thread,
/// recursively, while a subtree is large enough to be worth a thread.
pub fn root_parallel(leaves: &[Hash], threads: usize) -> Hash {
    const WORTH_A_THREAD: usize = 1 << 15;
    if threads < 2 || leaves.len() < 2 * WORTH_A_THREAD {
        return root(leaves);
    }
    let k = split(leaves.len() as u64) as usize;
    let (left, right) = leaves.split_at(k);
    let (l, r) = std::thread::scope(|s| {
        let l = s.spawn(|| root_parallel(left, threads / 2));
        let r = root_parallel(right, threads - threads / 2);
        (l.join().expect("a subtree's root cannot panic"), r)
    });
    node_hash(&l, &r)
}

/// Something that knows the root of any range of its leaves.
pub trait Tree {
    type Error: From<ProofError>;

    /// The root of leaves `start..end` as a tree of their own (`start < end`).
    fn range_root(&self, start: u64, end: u64) -> Result<Hash, Self::Error>;
}

/// Leaf hashes in memory.
impl Tree for [Hash] {
    type Error = ProofError;

    fn range_root(&self, start: u64, end: u64) -> Result<Hash, ProofError> {
        let (s, e) = (
            usize::try_from(start).map_err(|_| ProofError::Overflow)?,
            usize::try_from(end).map_err(|_| ProofError::Overflow)?,
        );
        let leaves = self.get(s..e).ok_or(ProofError::IndexOutOfRange {
            index: end,
            size: self.len() as u64,
        })?;
        Ok(root(leaves))
    }
}

/// The inclusion proof of leaf `index` in the first `size` leaves of `tree` (RFC 9162
/// §2.1.3.1, `PATH(m, D[n])`), deepest sibling first.
pub fn inclusion_proof<T: Tree + ?Sized>(
    tree: &T,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, T::Error> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size }.into());
    }
    let mut proof = Vec::new();
    path(tree, index, 0, size, &mut proof)?;
    Ok(proof)
}

/// `PATH(m, D[start..end])`, appending to `out` in the RFC's order.
fn path<T: Tree + ?Sized>(
    tree: &T,
    m: u64,
    start: u64,
    end: u64,
    out: &mut Vec<Hash>,
) -> Result<(), T::Error> {
    let n = end - start;
    if n == 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path(tree, m, start, start + k, out)?;
        out.push(tree.range_root(start + k, end)?);
    } else {
        path(tree, m - k, start + k, end, out)?;
        out.push(tree.range_root(start, start + k)?);
    }
    Ok(())
}

/// The consistency proof between the first `size1` and the first `size2` leaves of `tree`
/// (RFC 9162 §2.1.4.1, `PROOF(m, D[n])`). `size1` must be at least 1.
pub fn consistency_proof<T: Tree + ?Sized>(
    tree: &T,
    size1: u64,
    size2: u64,
) -> Result<Vec<Hash>, T::Error> {
    if size1 == 0 || size1 > size2 {
        return Err(ProofError::BadSizes { size1, size2 }.into());
    }
    let mut proof = Vec::new();
    subproof(tree, size1, 0, size2, true, &mut proof)?;
    Ok(proof)
}

/// `SUBPROOF(m, D[start..end], b)`.
fn subproof<T: Tree + ?Sized>(
    tree: &T,
    m: u64,
    start: u64,
    end: u64,
    complete: bool,
    out: &mut Vec<Hash>,
) -> Result<(), T::Error> {
    let n = end - start;
    if m == n {
        if !complete {
            out.push(tree.range_root(start, end)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(tree, m, start, start + k, complete, out)?;
        out.push(tree.range_root(start + k, end)?);
    } else {
        subproof(tree, m - k, start + k, end, false, out)?;
        out.push(tree.range_root(start, start + k)?);
    }
    Ok(())
}

/// For each hash of an inclusion proof of `len` hashes for leaf `index` of a tree of `size`
/// leaves, whether that sibling is on the left (RFC 9162 §2.1.3.2's walk up the tree).
fn sibling_sides(index: u64, size: u64, len: usize) -> Result<Vec<bool>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut sides = Vec::with_capacity(len.min(64));
    for _ in 0..len {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        let left = fnode & 1 == 1 || fnode == snode;
        if left && fnode & 1 == 0 {
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        }
        sides.push(left);
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    Ok(sides)
}

/// Verifies that `leaf` is leaf `index` of the tree of `size` leaves with root `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let mut r = *leaf;
    for (p, left) in proof.iter().zip(sibling_sides(index, size, proof.len())?) {
        r = if left {
            node_hash(p, &r)
        } else {
            node_hash(&r, p)
        };
    }
    if &r != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `size1` leaves with root `root1` is a prefix of the tree of
/// `size2` leaves with root `root2` (RFC 9162 §2.1.4.2). Equal sizes need an empty proof and
/// equal roots; `size1 == 0` is refused (every tree extends the empty one: nothing to prove).
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if size1 == 0 || size1 > size2 {
        return Err(ProofError::BadSizes { size1, size2 });
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    // A first tree that is a perfect subtree is its own first proof node.
    let path: Vec<Hash> = if size1.is_power_of_two() {
        std::iter::once(*root1)
            .chain(proof.iter().copied())
            .collect()
    } else {
        proof.to_vec()
    };
    let (mut fnode, mut snode) = (size1 - 1, size2 - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if &fr != root1 {
        return Err(ProofError::FirstRootMismatch);
    }
    if &sr != root2 {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The roots of the perfect subtrees that make up leaves `[0, index)`, largest first (the
/// tree's compact range left of `index`), from leaf `index`'s inclusion proof in a tree of
/// `size` leaves: they are the proof's left siblings. With [`root_from_range`] they let a
/// verifier that holds only leaves `index..` recompute the tree's root.
///
/// Nothing here checks the proof: a wrong hash gives a wrong root, which the caller compares
/// with a signed one.
pub fn left_subtrees(index: u64, size: u64, proof: &[Hash]) -> Result<Vec<Hash>, ProofError> {
    let sides = sibling_sides(index, size, proof.len())?;
    let mut left: Vec<Hash> = proof
        .iter()
        .zip(sides)
        .filter_map(|(p, left)| left.then_some(*p))
        .collect();
    if left.len() != index.count_ones() as usize {
        return Err(ProofError::WrongLength);
    }
    left.reverse();
    Ok(left)
}

/// The root of the tree of leaves `[0, start + leaves.len())`, from the compact range of
/// `[0, start)` (one perfect subtree root per set bit of `start`, largest first, as
/// [`left_subtrees`] gives them) and the leaves that follow it.
pub fn root_from_range(left: &[Hash], start: u64, leaves: &[Hash]) -> Result<Hash, ProofError> {
    if left.len() != start.count_ones() as usize {
        return Err(ProofError::WrongLength);
    }
    start
        .checked_add(leaves.len() as u64)
        .ok_or(ProofError::Overflow)?;
    // Perfect subtrees (root, size), sizes strictly decreasing: a leaf merges with equal sizes.
    let sizes = (0..u64::BITS)
        .rev()
        .filter(|b| start >> b & 1 == 1)
        .map(|b| 1u64 << b);
    let mut stack: Vec<(Hash, u64)> = left.iter().copied().zip(sizes).collect();
    for leaf in leaves {
        let mut cur = (*leaf, 1u64);
        while let Some(&(h, size)) = stack.last() {
            if size != cur.1 {
                break;
            }
            stack.pop();
            cur = (node_hash(&h, &cur.0), size << 1);
        }
        stack.push(cur);
    }
    let mut subtrees = stack.iter().rev();
    let Some(&(mut root, _)) = subtrees.next() else {
        return Ok(empty_root());
    };
    for (h, _) in subtrees {
        root = node_hash(h, &root);
    }
    Ok(root)
}

#[cfg(test)]
mod tests;

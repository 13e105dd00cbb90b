//! The witness's rule (C2SP tlog-witness, "add-checkpoint"): a witness cosigns a log's
//! checkpoint only if it extends the last checkpoint of that log it cosigned, as proven by an
//! RFC 9162 consistency proof from the size the log says the witness last saw.
//!
//! Pure: the caller has checked the log's signature, holds the witness's state, and persists
//! the new state when the verdict is [`Verdict::Cosign`].

use crate::merkle::{self, Hash};
use crate::note::AddCheckpoint;

/// What the witness last cosigned for a log: nothing yet is size 0 and the empty root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Last {
    pub size: u64,
    pub root: Hash,
}

impl Last {
    /// The state of a witness that has cosigned nothing for this log.
    pub fn none() -> Self {
        Self {
            size: 0,
            root: merkle::empty_root(),
        }
    }
}

/// The witness's answer to an add-checkpoint request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The checkpoint extends the last one: cosign it and remember it.
    Cosign,
    /// The log's idea of the witness's last size is wrong, or it shows another root at that
    /// size: answer 409 with this size.
    Conflict(u64),
    /// The request contradicts itself (its old size is beyond the checkpoint): answer 400.
    Malformed(String),
    /// The checkpoint does not extend the last one: answer 422, cosign nothing.
    Inconsistent(String),
}

/// Whether `req` extends `last`, per tlog-witness: the old size must be the witness's (else
/// [`Verdict::Conflict`]); at the same size the root must be the same (else, a split view,
/// [`Verdict::Conflict`] too); otherwise the proof must show the checkpoint's tree has the last
/// one's as a prefix. From size 0 the proof is empty.
pub fn check(last: Last, req: &AddCheckpoint) -> Verdict {
    let c = &req.checkpoint;
    if req.old > c.size {
        return Verdict::Malformed(format!(
            "old size {} is larger than the checkpoint's ({})",
            req.old, c.size
        ));
    }
    if req.old != last.size {
        return Verdict::Conflict(last.size);
    }
    // tlog-witness: the same size with another root (a split view) is a conflict, 409.
    if c.size == last.size {
        return if c.root == last.root && req.proof.is_empty() {
            Verdict::Cosign
        } else if c.root != last.root {
            Verdict::Conflict(last.size)
        } else {
            Verdict::Inconsistent("a proof between equal sizes must be empty".into())
        };
    }
    if last.size == 0 {
        if !req.proof.is_empty() {
            return Verdict::Inconsistent("a proof from size 0 must be empty".into());
        }
        return Verdict::Cosign;
    }
    match merkle::verify_consistency(last.size, c.size, &last.root, &c.root, &req.proof) {
        Ok(()) => Verdict::Cosign,
        Err(e) => Verdict::Inconsistent(format!(
            "the checkpoint of size {} does not extend the one of size {} cosigned before: {e}",
            c.size, last.size
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::leaf_hash;
    use crate::note::{Checkpoint, Note};

    /// A tree of `n` leaves `[0]`, `[1]`, …, kept in memory.
    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&[i as u8])).collect()
    }

    fn root(n: u64) -> Hash {
        merkle::root(&leaves(n))
    }

    fn req(old: u64, size: u64, root: Hash, proof: Vec<Hash>) -> AddCheckpoint {
        AddCheckpoint {
            old,
            proof,
            note: Note {
                body: String::new(),
                signatures: Vec::new(),
            },
            checkpoint: Checkpoint {
                origin: "pu.attesta.example/questura-pu/audit".into(),
                size,
                root,
            },
        }
    }

    fn consistency(from: u64, to: u64) -> Vec<Hash> {
        merkle::consistency_proof(leaves(to).as_slice(), from, to).expect("from >= 1")
    }

    #[test]
    fn a_first_checkpoint_is_cosigned_with_an_empty_proof() {
        assert_eq!(
            check(Last::none(), &req(0, 5, root(5), vec![])),
            Verdict::Cosign
        );
        assert_eq!(
            check(Last::none(), &req(0, 0, root(0), vec![])),
            Verdict::Cosign
        );
        assert!(matches!(
            check(Last::none(), &req(0, 5, root(5), vec![root(1)])),
            Verdict::Inconsistent(_)
        ));
        // An empty tree with another root than the empty one: another view of size 0.
        assert_eq!(
            check(Last::none(), &req(0, 0, root(3), vec![])),
            Verdict::Conflict(0)
        );
    }

    #[test]
    fn an_extension_is_cosigned_and_a_fork_is_not() {
        let last = Last {
            size: 3,
            root: root(3),
        };
        assert_eq!(
            check(last, &req(3, 7, root(7), consistency(3, 7))),
            Verdict::Cosign
        );
        // The same size again, unchanged, is an extension by nothing.
        assert_eq!(check(last, &req(3, 3, root(3), vec![])), Verdict::Cosign);
        // Another tree of size 7 (a fork) cannot be proven to extend the last one.
        let mut forked = leaves(7);
        forked[1] = leaf_hash(b"rewritten");
        let fork_root = merkle::root(&forked);
        let v = check(last, &req(3, 7, fork_root, consistency(3, 7)));
        assert!(
            matches!(&v, Verdict::Inconsistent(w) if w.contains("size 3")),
            "{v:?}"
        );
        // The same size with another root is a split view: 409, with the witness's size.
        assert_eq!(
            check(last, &req(3, 3, root(4), vec![])),
            Verdict::Conflict(3)
        );
        // The same size and root with a proof: there is nothing to prove.
        assert!(matches!(
            check(last, &req(3, 3, root(3), vec![root(1)])),
            Verdict::Inconsistent(_)
        ));
    }

    #[test]
    fn a_wrong_old_size_is_a_conflict_naming_the_witness_size() {
        let last = Last {
            size: 3,
            root: root(3),
        };
        assert_eq!(
            check(last, &req(2, 7, root(7), consistency(2, 7))),
            Verdict::Conflict(3)
        );
        assert_eq!(
            check(last, &req(0, 7, root(7), vec![])),
            Verdict::Conflict(3)
        );
        assert_eq!(
            check(Last::none(), &req(4, 7, root(7), consistency(4, 7))),
            Verdict::Conflict(0)
        );
    }

    #[test]
    fn an_old_size_beyond_the_checkpoint_is_malformed() {
        let v = check(Last::none(), &req(8, 7, root(7), vec![]));
        assert!(
            matches!(&v, Verdict::Malformed(w) if w.contains("old size 8")),
            "{v:?}"
        );
    }
}

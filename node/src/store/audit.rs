//! The audit log's column families (the log itself lives in `crate::audit::log`).
//!
//! | CF               | key                          | value                    |
//! |------------------|------------------------------|--------------------------|
//! | `audit_entries`  | index (u64 BE)               | canonical entry bytes    |
//! | `audit_nodes`    | level (u8) · index (u64 BE)  | subtree hash (32 bytes)  |
//! | `audit_subjects` | blinded subject · index      | –                        |
//! | `meta`           | `audit/size`                 | u64 BE                   |
//! | `meta`           | `audit/checkpoint`           | last signed checkpoint   |
//! | `meta`           | `audit/pruned`               | first kept entry, u64 BE |
//! | `witness`        | origin                       | latest cosigned size · root |
//!
//! `audit_nodes` holds the hash of every complete, aligned subtree: node (level, i) covers
//! leaves `i·2^level .. (i+1)·2^level`; level 0 holds the leaf hashes. An append writes the
//! entries, their new nodes and the new size in one synced batch, so after a crash the log is
//! exactly the batches that were acknowledged.
//!
//! Entries older than the retention period are pruned: their bytes and subject keys are
//! deleted, their hashes in `audit_nodes` stay, so the tree, its checkpoints and the proofs of
//! later entries are unchanged.

use rocksdb::{Direction, IteratorMode, ReadOptions, WriteBatch};

use super::{sync_writes, Store, StoreError};

pub(super) const AUDIT_ENTRIES: &str = "audit_entries";
pub(super) const AUDIT_NODES: &str = "audit_nodes";
pub(super) const AUDIT_SUBJECTS: &str = "audit_subjects";
pub(super) const WITNESS: &str = "witness";

const SIZE_KEY: &[u8] = b"audit/size";
const PRUNED_KEY: &[u8] = b"audit/pruned";

/// One entry to append: its bytes and the blinded subject it is about, if any.
#[derive(Debug)]
pub struct NewEntry {
    pub bytes: Vec<u8>,
    pub subject: Option<[u8; 32]>,
}

impl Store {
    fn node_key(&self, level: u8, index: u64) -> Vec<u8> {
        self.k(&[&[level], &index.to_be_bytes()])
    }

    fn subject_index_key(&self, subject: &[u8; 32], index: u64) -> Vec<u8> {
        self.k(&[subject, &index.to_be_bytes()])
    }

    fn entry_key(&self, index: u64) -> Vec<u8> {
        self.k(&[&index.to_be_bytes()])
    }
}

impl Store {
    /// The number of entries in the log.
    pub fn audit_size(&self) -> Result<u64, StoreError> {
        self.meta_u64(SIZE_KEY)
    }

    /// The index of the first entry whose content is kept (entries below it were pruned).
    pub fn audit_first_kept(&self) -> Result<u64, StoreError> {
        self.meta_u64(PRUNED_KEY)
    }

    /// A u64 BE counter in `meta`; 0 when absent.
    fn meta_u64(&self, key: &[u8]) -> Result<u64, StoreError> {
        match self.db.get_cf(self.cf(super::META), self.k(&[key]))? {
            None => Ok(0),
            Some(v) => v
                .as_slice()
                .try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt(String::from_utf8_lossy(key).into_owned())),
        }
    }

    /// Deletes the content of entries `from..to` and the subject keys (`subjects`: index and
    /// blinded subject of those that had one), keeping their hashes, and records `to` as the
    /// first kept entry; one synced write.
    pub fn audit_prune(
        &self,
        from: u64,
        to: u64,
        subjects: &[(u64, [u8; 32])],
    ) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            self.cf(AUDIT_ENTRIES),
            self.entry_key(from),
            self.entry_key(to),
        );
        for (index, s) in subjects {
            batch.delete_cf(self.cf(AUDIT_SUBJECTS), self.subject_index_key(s, *index));
        }
        batch.put_cf(
            self.cf(super::META),
            self.k(&[PRUNED_KEY]),
            to.to_be_bytes(),
        );
        self.db.write_opt(batch, &sync_writes())?;
        Ok(())
    }

    /// Appends `entries` at `first` (the current size) with the subtree `nodes` they complete,
    /// in one synced write.
    pub fn audit_append(
        &self,
        first: u64,
        entries: &[NewEntry],
        nodes: &[(u8, u64, [u8; 32])],
    ) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        for (i, e) in entries.iter().enumerate() {
            let index = first + i as u64;
            batch.put_cf(self.cf(AUDIT_ENTRIES), self.entry_key(index), &e.bytes);
            if let Some(s) = &e.subject {
                batch.put_cf(
                    self.cf(AUDIT_SUBJECTS),
                    self.subject_index_key(s, index),
                    [],
                );
            }
        }
        for (level, index, hash) in nodes {
            batch.put_cf(self.cf(AUDIT_NODES), self.node_key(*level, *index), hash);
        }
        let size = first + entries.len() as u64;
        batch.put_cf(
            self.cf(super::META),
            self.k(&[SIZE_KEY]),
            size.to_be_bytes(),
        );
        self.db.write_opt(batch, &sync_writes())?;
        Ok(())
    }

    /// The stored hash of subtree (`level`, `index`).
    pub fn audit_node(&self, level: u8, index: u64) -> Result<Option<[u8; 32]>, StoreError> {
        match self
            .db
            .get_pinned_cf(self.cf(AUDIT_NODES), self.node_key(level, index))?
        {
            None => Ok(None),
            Some(v) => v.as_ref().try_into().map(Some).map_err(|_| {
                StoreError::Corrupt(format!("audit node {level}/{index} is not 32 bytes"))
            }),
        }
    }

    /// Entries `start..end`, in order.
    pub fn audit_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(self.entry_key(end));
        let mut out = Vec::with_capacity(end.saturating_sub(start).min(1 << 16) as usize);
        let from = self.entry_key(start);
        for (expected, item) in (start..).zip(self.db.iterator_cf_opt(
            self.cf(AUDIT_ENTRIES),
            opts,
            IteratorMode::From(&from, Direction::Forward),
        )) {
            let (k, v) = item?;
            if k.as_ref() != self.entry_key(expected) {
                return Err(StoreError::Corrupt(format!(
                    "audit entry {expected} is missing"
                )));
            }
            out.push(v.into_vec());
        }
        if out.len() as u64 != end.saturating_sub(start) {
            return Err(StoreError::Corrupt(format!(
                "audit entries {start}..{end} are incomplete"
            )));
        }
        Ok(out)
    }

    /// The indexes of the entries about `subject`, ascending.
    pub fn audit_by_subject(&self, subject: &[u8; 32]) -> Result<Vec<u64>, StoreError> {
        let mut opts = ReadOptions::default();
        let prefix = self.k(&[subject]);
        let mut upper = subject.to_vec();
        // Increment as a big-endian number; an all-0xff subject is bounded by the scope's end.
        let bounded = upper.iter_mut().rev().any(|b| {
            let (v, carry) = b.overflowing_add(1);
            *b = v;
            !carry
        });
        // The node's own subjects may start with 0xff, like a tenant's prefix: an all-0xff
        // one is bounded by the prefix check below, a tenant's by the end of its scope.
        if bounded {
            opts.set_iterate_upper_bound(self.k(&[&upper]));
        } else if !self.scope.is_empty() {
            opts.set_iterate_upper_bound(self.end());
        }
        let mut out = Vec::new();
        for item in self.db.iterator_cf_opt(
            self.cf(AUDIT_SUBJECTS),
            opts,
            IteratorMode::From(&prefix, Direction::Forward),
        ) {
            let (k, _) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            let index: [u8; 8] = k[prefix.len()..]
                .try_into()
                .map_err(|_| StoreError::Corrupt("audit subject index key".into()))?;
            out.push(u64::from_be_bytes(index));
        }
        Ok(out)
    }

    /// A small value of the audit log or the witness (`meta` or `witness` column family).
    pub fn audit_get(&self, witness: bool, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let cf = if witness { WITNESS } else { super::META };
        Ok(self.db.get_cf(self.cf(cf), self.k(&[key]))?)
    }

    /// Writes one small value, synced.
    pub fn audit_put(&self, witness: bool, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let cf = if witness { WITNESS } else { super::META };
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(cf), self.k(&[key]), value);
        self.db.write_opt(batch, &sync_writes())?;
        Ok(())
    }

    /// Deletes one small value, synced.
    pub fn audit_delete(&self, witness: bool, key: &[u8]) -> Result<(), StoreError> {
        let cf = if witness { WITNESS } else { super::META };
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.cf(cf), self.k(&[key]));
        self.db.write_opt(batch, &sync_writes())?;
        Ok(())
    }
}

//! The node's audit log: durable appends with group commit, stored subtree hashes, proofs and
//! signed checkpoints.
//!
//! **Appends.** Handlers call [`AuditLog::append`] and wait. One writer thread takes every
//! entry queued since its last write, computes their leaf hashes and the subtree hashes they
//! complete, and writes them all in one synced RocksDB batch: concurrent requests share one
//! fsync. An answer leaves only once its entry is durable; if the write fails, the request
//! fails too.
//!
//! **Tree.** The writer keeps the right edge of the tree (the hashes of the complete subtrees
//! covering `0..size`, one per set bit of `size`), so the root after an append costs
//! O(log n). Proofs read stored subtree hashes, O(log n) reads, never leaves.
//!
//! **Checkpoints.** [`AuditLog::sign_checkpoint`] signs the durable head as a C2SP checkpoint
//! and persists it (synced) before publishing it. It first checks that the head is consistent
//! with the last checkpoint it signed, read back from the database, so a node whose log was
//! truncated or rewritten refuses to sign, also after a restart.

use std::path::Path;
use std::sync::{mpsc, Arc, Mutex, RwLock};

use arc_swap::ArcSwapOption;
use attesta_certs::SigningIdentity;
use tokio::sync::oneshot;

use super::entry::Entry;
use super::merkle::{self, Hash, ProofError, Tree};
use super::note::{Checkpoint, Note};
use super::subject::SubjectKey;
use crate::store::{NewEntry, Store, StoreError};

/// The most entries one synced write takes.
const MAX_BATCH: usize = 8192;

const CHECKPOINT_KEY: &[u8] = b"audit/checkpoint";

/// Errors of the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit store")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error("the audit log writer has stopped")]
    Closed,
    #[error("audit key file {path}: {what}")]
    Key { path: String, what: String },
    #[error("refusing to sign: {0}")]
    Inconsistent(String),
    #[error("signing the checkpoint failed")]
    Sign,
}

/// The durable head of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub size: u64,
    pub root: Hash,
}

/// A checkpoint this node signed, with the note as served (cosignatures added as witnesses
/// return them).
#[derive(Debug, Clone)]
pub struct Signed {
    pub checkpoint: Checkpoint,
    pub note: Note,
}

struct Job {
    entries: Vec<NewEntry>,
    reply: oneshot::Sender<Result<u64, AuditError>>,
}

/// The complete subtrees on the right edge of the tree: (level, hash), largest first.
#[derive(Debug, Clone, Default)]
struct Frontier {
    size: u64,
    stack: Vec<(u8, Hash)>,
}

impl Frontier {
    fn load(store: &Store) -> Result<Self, AuditError> {
        let size = store.audit_size()?;
        let mut stack = Vec::new();
        let mut offset = 0u64;
        for level in (0..64u8).rev() {
            if size & (1 << level) != 0 {
                let index = offset >> level;
                let hash = store.audit_node(level, index)?.ok_or_else(|| {
                    StoreError::Corrupt(format!("audit node {level}/{index} is missing"))
                })?;
                stack.push((level, hash));
                offset += 1 << level;
            }
        }
        Ok(Self { size, stack })
    }

    /// Adds a leaf; records the subtree hashes it completes (the leaf itself included).
    fn push(&mut self, leaf: Hash, nodes: &mut Vec<(u8, u64, Hash)>) {
        let mut index = self.size;
        let mut level = 0u8;
        let mut hash = leaf;
        nodes.push((0, index, hash));
        while let Some(&(l, left)) = self.stack.last() {
            if l != level {
                break;
            }
            self.stack.pop();
            hash = merkle::node_hash(&left, &hash);
            level += 1;
            index >>= 1;
            nodes.push((level, index, hash));
        }
        self.stack.push((level, hash));
        self.size += 1;
    }

    fn root(&self) -> Hash {
        let mut it = self.stack.iter().rev();
        match it.next() {
            None => merkle::empty_root(),
            Some(&(_, last)) => it.fold(last, |acc, (_, h)| merkle::node_hash(h, &acc)),
        }
    }
}

/// The tree as stored: subtree hashes read from the database.
#[derive(Debug)]
pub struct StoredTree<'a> {
    store: &'a Store,
}

impl Tree for StoredTree<'_> {
    type Error = AuditError;

    fn range_root(&self, start: u64, end: u64) -> Result<Hash, AuditError> {
        let n = end.checked_sub(start).ok_or(ProofError::Overflow)?;
        if n == 0 {
            return Err(ProofError::Overflow.into());
        }
        if n.is_power_of_two() && start % n == 0 {
            let level = n.trailing_zeros() as u8;
            return self
                .store
                .audit_node(level, start >> level)?
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("audit node {level}/{} is missing", start >> level))
                        .into()
                });
        }
        let k = if n.is_power_of_two() {
            n / 2
        } else {
            1 << (63 - (n - 1).leading_zeros())
        };
        let left = self.range_root(start, start + k)?;
        let right = self.range_root(start + k, end)?;
        Ok(merkle::node_hash(&left, &right))
    }
}

/// The node's audit log.
pub struct AuditLog {
    store: Arc<Store>,
    key: SubjectKey,
    origin: String,
    signing: Arc<SigningIdentity>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    head: Arc<RwLock<Head>>,
    latest: ArcSwapOption<Signed>,
    /// See [`AuditLog::published`].
    published: ArcSwapOption<Signed>,
    /// Serialises signing (the ticker and shutdown).
    signing_lock: Mutex<()>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// The origin line of an agency's checkpoints.
pub use super::origin;

/// Reads the node's subject key from `path`, creating it (0600) on first start.
pub fn load_or_create_key(path: &Path) -> Result<SubjectKey, AuditError> {
    let bad = |what: String| AuditError::Key {
        path: path.display().to_string(),
        what,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => super::entry::parse_hex::<32>(text.trim())
            .map(SubjectKey::new)
            .ok_or_else(|| bad("expected 64 hex digits".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            attesta_certs::random_bytes(&mut key);
            let text = format!("{}\n", hex::encode(key));
            attesta_certs::fsutil::write_atomic(
                path,
                text.as_bytes(),
                attesta_certs::fsutil::PRIVATE_MODE,
            )
            .map_err(|e| bad(e.to_string()))?;
            Ok(SubjectKey::new(key))
        }
        Err(e) => Err(bad(e.to_string())),
    }
}

impl AuditLog {
    /// Opens the log in `store` and starts its writer thread.
    pub fn open(
        store: Arc<Store>,
        key: SubjectKey,
        origin: String,
        signing: Arc<SigningIdentity>,
    ) -> Result<Self, AuditError> {
        let frontier = Frontier::load(&store)?;
        let head = Arc::new(RwLock::new(Head {
            size: frontier.size,
            root: frontier.root(),
        }));
        let latest = match store.audit_get(false, CHECKPOINT_KEY)? {
            None => None,
            Some(bytes) => {
                let text = String::from_utf8(bytes)
                    .map_err(|_| StoreError::Corrupt("audit/checkpoint is not text".into()))?;
                let note = Note::parse(&text)
                    .map_err(|e| StoreError::Corrupt(format!("audit/checkpoint: {e}")))?;
                let checkpoint = Checkpoint::parse(&note.body)
                    .map_err(|e| StoreError::Corrupt(format!("audit/checkpoint: {e}")))?;
                Some(Arc::new(Signed { checkpoint, note }))
            }
        };
        let (tx, rx) = mpsc::channel();
        let writer_store = store.clone();
        let writer_head = head.clone();
        let writer = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_loop(&writer_store, frontier, &writer_head, &rx))
            .map_err(|_| AuditError::Closed)?;
        Ok(Self {
            store,
            key,
            origin,
            signing,
            jobs: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            head,
            latest: ArcSwapOption::new(latest),
            published: ArcSwapOption::empty(),
            signing_lock: Mutex::new(()),
        })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn subject_key(&self) -> &SubjectKey {
        &self.key
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Appends entries (in order) and returns the index of the first once all are durable.
    pub async fn append(&self, entries: &[Entry]) -> Result<u64, AuditError> {
        let entries = entries
            .iter()
            .map(|e| NewEntry {
                bytes: e.encode(),
                subject: e.subject,
            })
            .collect();
        let (reply, done) = oneshot::channel();
        {
            let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
            let tx = jobs.as_ref().ok_or(AuditError::Closed)?;
            tx.send(Job { entries, reply })
                .map_err(|_| AuditError::Closed)?;
        }
        done.await.map_err(|_| AuditError::Closed)?
    }

    /// Stops the writer once the queued entries are written, and waits for it.
    pub fn close(&self) {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take();
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = writer {
            let _ = w.join();
        }
    }

    /// The durable head.
    pub fn head(&self) -> Head {
        *self.head.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The stored tree, for proofs.
    pub fn tree(&self) -> StoredTree<'_> {
        StoredTree { store: &self.store }
    }

    /// The index of the first entry whose content is kept: entries below it were pruned
    /// ([`Self::prune`]), their hashes remain.
    pub fn first_kept(&self) -> Result<u64, AuditError> {
        Ok(self.store.audit_first_kept()?)
    }

    /// Deletes the content of the entries logged before `before_ms` (Unix ms), oldest first,
    /// stopping at the first later one; their leaf and subtree hashes stay, so checkpoints
    /// and proofs are unchanged. Returns the first kept entry's index.
    pub fn prune(&self, before_ms: u64) -> Result<u64, AuditError> {
        const CHUNK: u64 = 4096;
        let size = self.head().size;
        let mut first = self.first_kept()?;
        while first < size {
            let end = size.min(first + CHUNK);
            let chunk = self.store.audit_entries(first, end)?;
            let mut cut = first;
            let mut subjects = Vec::new();
            for bytes in &chunk {
                let e = Entry::decode(bytes)
                    .map_err(|e| StoreError::Corrupt(format!("audit entry {cut}: {}", e.0)))?;
                if e.time_ms >= before_ms {
                    break;
                }
                if let Some(s) = e.subject {
                    subjects.push((cut, s));
                }
                cut += 1;
            }
            if cut == first {
                break;
            }
            self.store.audit_prune(first, cut, &subjects)?;
            let stopped = cut < end;
            first = cut;
            if stopped {
                break;
            }
        }
        Ok(first)
    }

    /// The root of the first `size` entries (`size` ≤ the durable size).
    pub fn root_at(&self, size: u64) -> Result<Hash, AuditError> {
        if size == 0 {
            return Ok(merkle::empty_root());
        }
        self.tree().range_root(0, size)
    }

    /// The latest signed checkpoint.
    pub fn latest(&self) -> Option<Arc<Signed>> {
        self.latest.load_full()
    }

    /// The checkpoint served to auditors: the latest one that went to the witnesses, with
    /// their cosignatures (the latest signed one until then).
    pub fn published(&self) -> Option<Arc<Signed>> {
        self.published.load_full().or_else(|| self.latest())
    }

    /// Publishes a checkpoint this log signed, with the cosignatures gathered for it (the
    /// note keeps its text, so its consistency with later checkpoints is unchanged).
    pub fn publish(&self, signed: Signed) {
        let signed = Arc::new(signed);
        if self
            .latest()
            .is_some_and(|cur| cur.note.body == signed.note.body)
        {
            self.latest.store(Some(signed.clone()));
        }
        self.published.store(Some(signed));
    }

    /// Signs a checkpoint of the durable head if it moved since the last one (or none was
    /// ever signed). Returns the new checkpoint, or `None` when there was nothing to sign.
    pub fn sign_checkpoint(&self) -> Result<Option<Arc<Signed>>, AuditError> {
        let _guard = self.signing_lock.lock().unwrap_or_else(|p| p.into_inner());
        let head = self.head();
        if let Some(last) = self.latest() {
            let c = &last.checkpoint;
            if c.origin != self.origin {
                return Err(AuditError::Inconsistent(format!(
                    "the last checkpoint is for {}, this log is {}",
                    c.origin, self.origin
                )));
            }
            if head.size < c.size {
                return Err(AuditError::Inconsistent(format!(
                    "the log has {} entries, fewer than the {} of the last signed checkpoint",
                    head.size, c.size
                )));
            }
            if self.root_at(c.size)? != c.root {
                return Err(AuditError::Inconsistent(format!(
                    "the first {} entries no longer have the root of the last signed checkpoint",
                    c.size
                )));
            }
            if head.size == c.size {
                return Ok(None);
            }
        }
        let checkpoint = Checkpoint {
            origin: self.origin.clone(),
            size: head.size,
            root: head.root,
        };
        let note = Note::sign(
            checkpoint.body(),
            &self.origin,
            &self.signing.public_key(),
            |m| self.signing.sign(m),
        )
        .map_err(|_| AuditError::Sign)?;
        self.store
            .audit_put(false, CHECKPOINT_KEY, note.render().as_bytes())?;
        let signed = Arc::new(Signed { checkpoint, note });
        self.latest.store(Some(signed.clone()));
        Ok(Some(signed))
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.close();
    }
}

fn write_loop(
    store: &Store,
    mut frontier: Frontier,
    head: &RwLock<Head>,
    rx: &mpsc::Receiver<Job>,
) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        let mut count = jobs[0].entries.len();
        while count < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => {
                    count += job.entries.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let start = frontier.size;
        let mut next = frontier.clone();
        let mut nodes = Vec::with_capacity(count * 2);
        let mut entries = Vec::with_capacity(count);
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs {
            replies.push((next.size, job.reply));
            for e in job.entries {
                next.push(merkle::leaf_hash(&e.bytes), &mut nodes);
                entries.push(e);
            }
        }
        match store.audit_append(start, &entries, &nodes) {
            Ok(()) => {
                frontier = next;
                *head.write().unwrap_or_else(|p| p.into_inner()) = Head {
                    size: frontier.size,
                    root: frontier.root(),
                };
                for (index, reply) in replies {
                    let _ = reply.send(Ok(index));
                }
            }
            Err(e) => {
                tracing::error!(error = %crate::config::error_chain(&e), "audit append failed");
                for (_, reply) in replies {
                    let _ = reply.send(Err(AuditError::Store(StoreError::Corrupt(
                        "the audit entry could not be written".into(),
                    ))));
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "log/tests.rs"]
mod tests;

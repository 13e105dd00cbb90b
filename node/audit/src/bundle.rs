//! Audit bundles: one node's log as an auditor exported it, verifiable offline with nothing
//! but the federation's CA certificate.
//!
//! ```text
//! "attesta-audit-bundle/1\n"
//! u32 BE  header length, then the header (JSON): agency, origin, exported_at, the signed
//!         checkpoint (note text with cosignatures), the node's signing certificate (PEM),
//!         the witnesses' signing certificates (PEM)
//! u64 BE  n, the number of entries (= the checkpoint's size, or the range's length)
//! n × 32  the leaf hashes, SHA-256(0x00 ‖ entry)
//! n ×     u32 BE length, then the entry's canonical bytes
//! ```
//!
//! The leaf hashes are authenticated by the signed root (their tree must have it), and each
//! entry by its leaf hash: so a changed entry is named by index, and a changed hash list is
//! caught as a whole.
//!
//! A bundle of a range `[start, start + n)` of the log carries in its header, besides, the
//! roots of the perfect subtrees left of `start` (one per set bit of `start`) and an RFC 9162
//! consistency proof from `start + n` to the checkpoint's size: the leaves rebuild the tree's
//! root at `start + n`, and the proof links it to the signed root.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use super::entry::{Entry, MAX_ENCODED};
use super::merkle::{self, Hash};
use super::note::{cosigned_at, Checkpoint, Note};
use attesta_certs::{SignerCert, TrustStore};

pub use crate::names::witness_name;

pub const MAGIC: &[u8] = b"attesta-audit-bundle/1\n";
/// The largest header accepted.
const MAX_HEADER: u32 = 1 << 20;

/// What a bundle says about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub agency: String,
    pub origin: String,
    pub exported_at: String,
    /// The signed note, with the witnesses' cosignatures.
    pub checkpoint: String,
    /// The node's signing certificate, PEM.
    pub signer: String,
    /// The witnesses' signing certificates, PEM.
    #[serde(default)]
    pub witnesses: Vec<String>,
    /// Set when the bundle holds a range of the log, not all of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Range>,
}

/// Where a range bundle's entries sit in the log, and the hashes that tie them to the root.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// The index of the bundle's first entry.
    pub start: u64,
    /// The roots of the perfect subtrees that make up entries `[0, start)`, largest first,
    /// standard base64.
    pub left: Vec<String>,
    /// Consistency proof from `start + n` entries to the checkpoint's size, standard base64
    /// (empty when the range ends at the checkpoint).
    pub consistency: Vec<String>,
}

impl Range {
    fn hashes(list: &[String], what: &str) -> Result<Vec<Hash>, Invalid> {
        use base64::Engine;
        list.iter()
            .map(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .ok()
                    .and_then(|v| merkle::hash_from_slice(&v).ok())
                    .ok_or_else(|| Invalid::Range(format!("{what}: {b:?} is not a base64 hash")))
            })
            .collect()
    }
}

/// A bundle in memory.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub header: Header,
    pub leaves: Vec<Hash>,
    pub entries: Vec<Vec<u8>>,
}

/// Why a bundle could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not an attesta audit bundle (bad magic)")]
    Magic,
    #[error("truncated at byte {0}")]
    Truncated(u64),
    #[error("header: {0}")]
    Header(String),
    #[error("entry {index}: length {len} is over the limit")]
    EntryLength { index: u64, len: u32 },
    #[error("{0} trailing bytes after the last entry")]
    Trailing(u64),
    #[error(transparent)]
    Io(std::io::Error),
}

struct Counting<R> {
    inner: R,
    at: u64,
}

impl<R: Read> Counting<R> {
    fn exact(&mut self, buf: &mut [u8]) -> Result<(), ReadError> {
        self.inner.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                ReadError::Truncated(self.at)
            } else {
                ReadError::Io(e)
            }
        })?;
        self.at += buf.len() as u64;
        Ok(())
    }

    fn u32(&mut self) -> Result<u32, ReadError> {
        let mut b = [0u8; 4];
        self.exact(&mut b)?;
        Ok(u32::from_be_bytes(b))
    }
}

impl Bundle {
    pub fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        let header = serde_json::to_vec(&self.header).map_err(std::io::Error::other)?;
        out.write_all(MAGIC)?;
        out.write_all(&(header.len() as u32).to_be_bytes())?;
        out.write_all(&header)?;
        out.write_all(&(self.entries.len() as u64).to_be_bytes())?;
        for h in &self.leaves {
            out.write_all(h)?;
        }
        for e in &self.entries {
            out.write_all(&(e.len() as u32).to_be_bytes())?;
            out.write_all(e)?;
        }
        Ok(())
    }

    /// Reads only a bundle's header (its checkpoint, signer and range), not its entries.
    pub fn read_header(input: impl Read) -> Result<Header, ReadError> {
        Self::header(&mut Counting {
            inner: input,
            at: 0,
        })
    }

    fn header<R: Read>(r: &mut Counting<R>) -> Result<Header, ReadError> {
        let mut magic = vec![0u8; MAGIC.len()];
        r.exact(&mut magic).map_err(|_| ReadError::Magic)?;
        if magic != MAGIC {
            return Err(ReadError::Magic);
        }
        let len = r.u32()?;
        if len > MAX_HEADER {
            return Err(ReadError::Header("too long".into()));
        }
        let mut header = vec![0u8; len as usize];
        r.exact(&mut header)?;
        serde_json::from_slice(&header).map_err(|e| ReadError::Header(e.to_string()))
    }

    /// Reads a bundle; `progress(done, total)` is called as entries are read.
    pub fn read(input: impl Read, mut progress: impl FnMut(u64, u64)) -> Result<Self, ReadError> {
        let mut r = Counting {
            inner: std::io::BufReader::with_capacity(1 << 20, input),
            at: 0,
        };
        let header = Self::header(&mut r)?;
        let mut n = [0u8; 8];
        r.exact(&mut n)?;
        let n = u64::from_be_bytes(n);
        let mut leaves = Vec::new();
        for _ in 0..n {
            let mut h = [0u8; 32];
            r.exact(&mut h)?;
            leaves.push(h);
        }
        let mut entries = Vec::new();
        for index in 0..n {
            let len = r.u32()?;
            if len as usize > MAX_ENCODED {
                return Err(ReadError::EntryLength { index, len });
            }
            let mut e = vec![0u8; len as usize];
            r.exact(&mut e)?;
            entries.push(e);
            if index % 65536 == 0 {
                progress(index, n);
            }
        }
        progress(n, n);
        let mut rest = Vec::new();
        r.inner.read_to_end(&mut rest).map_err(ReadError::Io)?;
        if !rest.is_empty() {
            return Err(ReadError::Trailing(rest.len() as u64));
        }
        Ok(Self {
            header,
            leaves,
            entries,
        })
    }
}

/// What a verified bundle shows.
#[derive(Debug, Clone)]
pub struct Verified {
    pub agency: String,
    pub checkpoint: Checkpoint,
    /// The log indexes of the bundle's entries: all of the checkpoint's, or a range.
    pub entries: std::ops::Range<u64>,
    /// The witnesses whose cosignature verified, by agency.
    pub witnesses: Vec<String>,
}

/// Why a bundle does not verify. Each names what an auditor should look at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("the signing certificate is not valid for this federation: {0}")]
    Signer(String),
    #[error("the checkpoint is malformed: {0}")]
    Checkpoint(String),
    #[error("the checkpoint's origin {found:?} is not this agency's log ({expected:?})")]
    Origin { found: String, expected: String },
    #[error("the checkpoint's signature does not verify with the agency's signing key")]
    Signature,
    #[error("the bundle holds {entries} entries, the checkpoint says {size}")]
    Count { entries: u64, size: u64 },
    #[error("the bundle's leaf hashes do not have the signed root: the hash list was changed")]
    Root,
    #[error("entry {0} was changed after it was logged: its hash is not the one the signed tree commits to")]
    Entry(u64),
    #[error("entry {index} is malformed: {why}")]
    Malformed { index: u64, why: String },
    #[error("{found} valid witness cosignature(s), {wanted} required")]
    Witnesses { found: usize, wanted: usize },
    #[error("the earlier checkpoint is not valid: {0}")]
    Earlier(String),
    #[error("the log has {now} entries, fewer than the {then} of the earlier checkpoint: it was truncated")]
    Shrank { now: u64, then: u64 },
    #[error(
        "the first {0} entries no longer have the earlier checkpoint's root: history was rewritten"
    )]
    Rewritten(u64),
    #[error("the range's proof is malformed: {0}")]
    Range(String),
    #[error("the range's entries and proof do not lead to the signed root: the range was changed")]
    RangeRoot,
    #[error("{0}")]
    NotCovered(String),
}

/// Reads and checks a signed checkpoint note against the agency's signing certificate.
fn checked_checkpoint(
    note_text: &str,
    signer: &SignerCert,
    origin: &str,
) -> Result<(Note, Checkpoint), Invalid> {
    let note = Note::parse(note_text).map_err(|e| Invalid::Checkpoint(e.to_string()))?;
    let checkpoint =
        Checkpoint::parse(&note.body).map_err(|e| Invalid::Checkpoint(e.to_string()))?;
    if checkpoint.origin != origin {
        return Err(Invalid::Origin {
            found: checkpoint.origin,
            expected: origin.to_owned(),
        });
    }
    let pk = signer
        .public_key()
        .ok_or_else(|| Invalid::Signer("not an Ed25519 key".into()))?;
    if !note.verify(origin, &pk, |m, s| signer.verify(m, s)) {
        return Err(Invalid::Signature);
    }
    Ok((note, checkpoint))
}

/// A checkpoint whose signature verified with a signing certificate checked against the CA.
pub(super) struct SignedCheckpoint {
    pub agency: String,
    pub origin: String,
    pub note: Note,
    pub checkpoint: Checkpoint,
}

/// Checks the signing certificate `signer_pem` against `trust`, then the checkpoint note
/// against it (origin of that agency, signature).
pub(super) fn signed_checkpoint(
    signer_pem: &str,
    note_text: &str,
    trust: &TrustStore,
) -> Result<SignedCheckpoint, Invalid> {
    let signer = SignerCert::from_pem(signer_pem.as_bytes()).map_err(Invalid::Signer)?;
    let leaf = signer
        .check(trust)
        .map_err(|e| Invalid::Signer(e.to_string()))?;
    let agency = leaf.agency().to_string();
    let origin = crate::names::origin(leaf.id.trust_domain.as_str(), &agency);
    let (note, checkpoint) = checked_checkpoint(note_text, &signer, &origin)?;
    Ok(SignedCheckpoint {
        agency,
        origin,
        note,
        checkpoint,
    })
}

/// The agencies (other than the log's own) whose certificate, among `pems`, chains to the CA,
/// was valid at the time of their cosignature on `note` (not in the future), and whose
/// cosignature verifies; at least `wanted` of them.
pub(super) fn cosigners(
    note: &Note,
    log_agency: &str,
    pems: &[String],
    trust: &TrustStore,
    wanted: usize,
) -> Result<Vec<String>, Invalid> {
    let mut cosigned = Vec::new();
    for pem in pems {
        let Ok(cert) = SignerCert::from_pem(pem.as_bytes()) else {
            continue;
        };
        let Ok(w) = cert.check(trust) else { continue };
        let name = witness_name(w.id.trust_domain.as_str(), w.agency().as_str());
        let Some(pk) = cert.public_key() else {
            continue;
        };
        let agency = w.agency().to_string();
        if agency == log_agency || cosigned.contains(&agency) {
            continue;
        }
        // A cosignature counts when its witness's certificate was valid at the time it
        // claims, and that time is not in the future (an expired key cannot backdate one).
        let Some(time) = cosigned_at(note, &name, &pk, |m, s| cert.verify(m, s)) else {
            continue;
        };
        let plausible = i64::try_from(time)
            .is_ok_and(|t| t <= unix_now().saturating_add(MAX_SKEW_SECS) && cert.valid_at(t));
        if plausible {
            cosigned.push(agency);
        }
    }
    if cosigned.len() < wanted {
        return Err(Invalid::Witnesses {
            found: cosigned.len(),
            wanted,
        });
    }
    Ok(cosigned)
}

/// How far in the future a cosignature's time may be (clock skew between nodes).
const MAX_SKEW_SECS: i64 = 300;

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Checks that every entry hashes to its leaf and decodes, on up to `threads` cores, a block
/// of entries at a time: `progress(done, of)` before each block and at the end, and of several bad entries the
/// first one (by index) is the one reported, as a sequential check would.
fn check_entries(
    entries: &[Vec<u8>],
    leaves: &[Hash],
    start: u64,
    threads: usize,
    progress: &mut impl FnMut(u64, u64),
) -> Result<(), Invalid> {
    const PER_THREAD: usize = 1 << 16;
    let threads = threads.clamp(1, 16);
    let n = entries.len() as u64;
    let check = |from: usize, entries: &[Vec<u8>], leaves: &[Hash]| -> Result<(), Invalid> {
        for (i, (bytes, leaf)) in entries.iter().zip(leaves).enumerate() {
            let index = start + (from + i) as u64;
            if merkle::leaf_hash(bytes) != *leaf {
                return Err(Invalid::Entry(index));
            }
            Entry::decode(bytes).map_err(|e| Invalid::Malformed {
                index,
                why: e.0.to_owned(),
            })?;
        }
        Ok(())
    };
    let block = PER_THREAD * threads;
    for (b, (es, ls)) in entries.chunks(block).zip(leaves.chunks(block)).enumerate() {
        let from = b * block;
        progress(from as u64, n);
        if threads == 1 || es.len() < 2 * PER_THREAD {
            check(from, es, ls)?;
            continue;
        }
        let part = es.len().div_ceil(threads);
        let results: Vec<Result<(), Invalid>> = std::thread::scope(|s| {
            let running: Vec<_> = es
                .chunks(part)
                .zip(ls.chunks(part))
                .enumerate()
                .map(|(k, (e, l))| s.spawn(move || check(from + k * part, e, l)))
                .collect();
            running
                .into_iter()
                .map(|t| t.join().expect("checking entries cannot panic"))
                .collect()
        });
        // In index order: the first part's error is the first bad entry.
        results.into_iter().collect::<Result<Vec<()>, Invalid>>()?;
    }
    progress(n, n);
    Ok(())
}

/// Verifies a bundle against the federation's trust store: the signer, the checkpoint's
/// signature, the tree, every entry, `witnesses` cosignatures, and, if given, consistency
/// with an earlier checkpoint of the same log (its note and the signing certificate that
/// signed it, as an earlier bundle holds them). `progress(done, total)` follows the entries.
pub fn verify(
    bundle: &Bundle,
    trust: &TrustStore,
    witnesses: usize,
    earlier: Option<&Header>,
    mut progress: impl FnMut(u64, u64),
) -> Result<Verified, Invalid> {
    let h = &bundle.header;
    let signed = signed_checkpoint(&h.signer, &h.checkpoint, trust)?;
    let (agency, origin, checkpoint) = (signed.agency, signed.origin, signed.checkpoint);

    let n = bundle.entries.len() as u64;
    let (start, left) = match &h.range {
        None => (0, Vec::new()),
        Some(r) => (r.start, Range::hashes(&r.left, "left")?),
    };
    let end = start.checked_add(n).ok_or(Invalid::Count {
        entries: n,
        size: checkpoint.size,
    })?;
    let whole = h.range.is_none();
    if (whole && end != checkpoint.size) || end > checkpoint.size || bundle.leaves.len() as u64 != n
    {
        return Err(Invalid::Count {
            entries: n,
            size: checkpoint.size,
        });
    }
    // The root of the first `upto` entries (`start <= upto <= end`), from the bundle's leaves.
    let root_upto = |upto: u64| {
        merkle::root_from_range(&left, start, &bundle.leaves[..(upto - start) as usize])
            .map_err(|e| Invalid::Range(e.to_string()))
    };
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    match &h.range {
        None if merkle::root_parallel(&bundle.leaves, threads) != checkpoint.root => {
            return Err(Invalid::Root)
        }
        None => {}
        Some(r) => {
            let proof = Range::hashes(&r.consistency, "consistency")?;
            let at_end = root_upto(end)?;
            let linked = if end == checkpoint.size {
                proof.is_empty() && at_end == checkpoint.root
            } else {
                end > 0
                    && merkle::verify_consistency(
                        end,
                        checkpoint.size,
                        &at_end,
                        &checkpoint.root,
                        &proof,
                    )
                    .is_ok()
            };
            if !linked {
                return Err(Invalid::RangeRoot);
            }
        }
    }
    check_entries(
        &bundle.entries,
        &bundle.leaves,
        start,
        threads,
        &mut progress,
    )?;

    let cosigned = cosigners(&signed.note, &agency, &h.witnesses, trust, witnesses)?;

    if let Some(old) = earlier {
        let old_signer = SignerCert::from_pem(old.signer.as_bytes()).map_err(Invalid::Earlier)?;
        old_signer
            .check(trust)
            .map_err(|e| Invalid::Earlier(e.to_string()))?;
        let (_, then) = checked_checkpoint(&old.checkpoint, &old_signer, &origin)
            .map_err(|e| Invalid::Earlier(e.to_string()))?;
        if then.size > checkpoint.size {
            return Err(Invalid::Shrank {
                now: checkpoint.size,
                then: then.size,
            });
        }
        if then.size < start || then.size > end {
            return Err(Invalid::NotCovered(format!(
                "the earlier checkpoint ends at entry {}, outside this bundle's entries {start}..{end}: \
                 export a range that includes it",
                then.size
            )));
        }
        if root_upto(then.size)? != then.root {
            return Err(Invalid::Rewritten(then.size));
        }
    }
    Ok(Verified {
        agency,
        checkpoint,
        entries: start..end,
        witnesses: cosigned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use attesta_certs::{AgencyId, Ca, SigningIdentity, TrustDomain};

    #[test]
    fn entries_checked_on_several_cores_report_the_first_bad_one_and_their_progress() {
        let good = crate::entry::tests::sample().encode();
        let mut entries = vec![good; 300_000];
        let leaves: Vec<Hash> = entries.iter().map(|e| merkle::leaf_hash(e)).collect();
        let mut wrong = leaves.clone();
        // Two bad leaves in different threads' parts: the earlier is the one reported.
        wrong[250_000] = [0; 32];
        wrong[140_000] = [0; 32];
        for threads in [1, 2, 3, 8] {
            let r = check_entries(&entries, &wrong, 10, threads, &mut |_, _| {});
            assert!(
                matches!(r, Err(Invalid::Entry(140_010))),
                "{threads}: {r:?}"
            );
        }
        let mut seen = Vec::new();
        check_entries(&entries, &leaves, 0, 2, &mut |done, of| {
            seen.push((done, of))
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                (0, 300_000),
                (131_072, 300_000),
                (262_144, 300_000),
                (300_000, 300_000)
            ]
        );
        // An entry that hashes to its leaf but does not decode: named, with its index.
        entries[200_001] = vec![99];
        let mut leaves = leaves;
        leaves[200_001] = merkle::leaf_hash(&entries[200_001]);
        let r = check_entries(&entries, &leaves, 0, 2, &mut |_, _| {});
        assert!(
            matches!(r, Err(Invalid::Malformed { index: 200_001, .. })),
            "{r:?}"
        );
        let none: Vec<Vec<u8>> = Vec::new();
        let mut seen = Vec::new();
        check_entries(&none, &[], 0, 2, &mut |d, o| seen.push((d, o))).unwrap();
        assert_eq!(seen, [(0, 0)]);
    }

    #[test]
    fn a_cosignature_counts_only_at_a_time_its_witness_could_sign() {
        let tmp = tempfile::tempdir().unwrap();
        let td = TrustDomain::new("pu.attesta.test").unwrap();
        let mut ca = Ca::init(&tmp.path().join("ca"), td.clone()).unwrap();
        let dir = tmp.path().join("questura-pu");
        ca.issue_agency(
            &AgencyId::new("questura-pu").unwrap(),
            vec![],
            vec![],
            30,
            &dir,
        )
        .unwrap();
        let trust = TrustStore::load(td.clone(), &tmp.path().join("ca/ca.crt"), None).unwrap();
        let w = SigningIdentity::load(&td, &dir.join("sign.crt"), &dir.join("sign.key")).unwrap();
        let name = witness_name(td.as_str(), "questura-pu");
        let body = "pu.attesta.test/comune-pesaro/audit\n1\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n";
        let cosigned_at_time = |time: i64| {
            let mut note = Note {
                body: body.to_owned(),
                signatures: vec![],
            };
            let sig = crate::note::cosign(body, &name, &w.public_key(), time as u64, |m| w.sign(m))
                .unwrap();
            note.signatures.push(sig);
            cosigners(&note, "comune-pesaro", &[w.cert_pem()], &trust, 1).is_ok()
        };
        let now = unix_now();
        assert!(cosigned_at_time(now), "now");
        assert!(cosigned_at_time(now + 60), "within the skew");
        assert!(!cosigned_at_time(now + 3600), "an hour in the future");
        assert!(
            !cosigned_at_time(now - 86_400),
            "before the certificate was issued"
        );
        assert!(!cosigned_at_time(now + 40 * 86_400), "after it expires");
    }
}

//! Checkpoints as C2SP signed notes.
//!
//! - `tlog-checkpoint`: the note text is the origin line, the tree size in decimal and the
//!   root hash in standard base64, each ending in a newline.
//! - `signed-note`: the text, an empty line, then one line per signature:
//!   `— <key name> <base64(key id ‖ signature)>`. An Ed25519 key id is the first four bytes of
//!   SHA-256(key name ‖ "\n" ‖ 0x01 ‖ public key).
//! - `tlog-cosignature` (`cosignature/v1`): a witness signs `cosignature/v1\ntime <t>\n`
//!   followed by the checkpoint text; its signature line carries key id (type 0x04) ‖ t as
//!   u64 big-endian ‖ signature.
//!
//! Pure code: signing and verifying go through closures, so the auditor's tools and the node
//! share it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::merkle::Hash;

const DASH: &str = "\u{2014} ";
/// Signature type of an Ed25519 signed-note key.
const ED25519: u8 = 0x01;
/// Signature type of a `cosignature/v1` key.
pub const COSIGNATURE_V1: u8 = 0x04;
/// The most signature lines a note may carry.
const MAX_SIGNATURES: usize = 100;

/// Why a note, a checkpoint or a signature line is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NoteError(pub String);

fn err(s: impl Into<String>) -> NoteError {
    NoteError(s.into())
}

/// A decimal number as the C2SP formats write them: digits only, no leading zero.
pub fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// The most hashes a proof may have (more than any proof in a 2^63-entry tree).
pub const MAX_PROOF: usize = 64;
/// The most consistency proof lines an add-checkpoint request may carry (tlog-witness: a
/// client MUST NOT send more than 63).
pub const MAX_WITNESS_PROOF: usize = 63;

/// Proof hashes, one standard-base64 hash per line (tlog-witness, tlog-proof).
pub fn proof_lines<'a>(lines: impl Iterator<Item = &'a str>) -> Result<Vec<Hash>, NoteError> {
    let proof = lines
        .map(|l| {
            STANDARD
                .decode(l)
                .ok()
                .and_then(|b| Hash::try_from(b.as_slice()).ok())
                .ok_or_else(|| err("a proof line is not 32 bytes of base64"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if proof.len() > MAX_PROOF {
        return Err(err("the proof has too many lines"));
    }
    Ok(proof)
}

/// A tree head: what a checkpoint commits to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note text.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// Reads a checkpoint's note text (extension lines after the root are allowed and ignored).
    pub fn parse(body: &str) -> Result<Self, NoteError> {
        let mut lines = body
            .strip_suffix('\n')
            .ok_or_else(|| err("checkpoint text does not end with a newline"))?
            .split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(err("checkpoint has no origin line"));
        }
        let size = lines
            .next()
            .and_then(decimal)
            .ok_or_else(|| err("checkpoint size is not a decimal number"))?;
        let root = lines
            .next()
            .and_then(|s| STANDARD.decode(s).ok())
            .and_then(|b| Hash::try_from(b.as_slice()).ok())
            .ok_or_else(|| err("checkpoint root is not 32 bytes of base64"))?;
        // tlog-checkpoint: extension lines, if any, MUST be non-empty.
        if lines.any(str::is_empty) {
            return Err(err("checkpoint has an empty extension line"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

/// One signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub name: String,
    pub key_id: [u8; 4],
    /// What follows the key id: the signature, or for a cosignature the timestamp and the
    /// signature.
    pub data: Vec<u8>,
}

impl Signature {
    /// The signature line, newline included.
    pub fn line(&self) -> String {
        let mut bytes = self.key_id.to_vec();
        bytes.extend_from_slice(&self.data);
        format!("{DASH}{} {}\n", self.name, STANDARD.encode(bytes))
    }
}

/// A signed note: text and signature lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub body: String,
    pub signatures: Vec<Signature>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// The signed-note key id of a key.
pub fn key_id(name: &str, kind: u8, public_key: &[u8; 32]) -> [u8; 4] {
    let h = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update(b"\n")
        .chain_update([kind])
        .chain_update(public_key)
        .finalize();
    [h[0], h[1], h[2], h[3]]
}

impl Note {
    pub fn render(&self) -> String {
        let mut out = self.body.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.line());
        }
        out
    }

    pub fn parse(text: &str) -> Result<Self, NoteError> {
        if text.chars().any(|c| c.is_control() && c != '\n') {
            return Err(err("note contains control characters"));
        }
        // The text may hold empty lines: the last one separates it from the signatures.
        let split = text
            .rfind("\n\n")
            .ok_or_else(|| err("note has no blank line before its signatures"))?;
        let body = &text[..split + 1];
        let sigs = &text[split + 2..];
        let sigs = sigs
            .strip_suffix('\n')
            .ok_or_else(|| err("note does not end with a newline"))?;
        let mut signatures = Vec::new();
        for line in sigs.split('\n') {
            let rest = line
                .strip_prefix(DASH)
                .ok_or_else(|| err("signature line does not start with an em dash"))?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or_else(|| err("signature line has no key name"))?;
            if !valid_name(name) {
                return Err(err("signature line has an invalid key name"));
            }
            let bytes = STANDARD
                .decode(b64)
                .map_err(|_| err("signature is not base64"))?;
            if bytes.len() < 5 {
                return Err(err("signature is too short"));
            }
            signatures.push(Signature {
                name: name.to_owned(),
                key_id: [bytes[0], bytes[1], bytes[2], bytes[3]],
                data: bytes[4..].to_vec(),
            });
        }
        if signatures.is_empty() || signatures.len() > MAX_SIGNATURES {
            return Err(err("note must carry 1 to 100 signatures"));
        }
        Ok(Self {
            body: body.to_owned(),
            signatures,
        })
    }

    /// Signs `body` as `name` with an Ed25519 key.
    pub fn sign<E>(
        body: String,
        name: &str,
        public_key: &[u8; 32],
        sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, E>,
    ) -> Result<Self, E> {
        let data = sign(body.as_bytes())?;
        Ok(Self {
            signatures: vec![Signature {
                name: name.to_owned(),
                key_id: key_id(name, ED25519, public_key),
                data,
            }],
            body,
        })
    }

    /// Whether the note carries a valid Ed25519 signature by (`name`, `public_key`), and no
    /// failing one: C2SP signed-note, like Go's `note.Open`, rejects a note that carries a
    /// signature by a known key that does not verify, even beside a valid one.
    pub fn verify(
        &self,
        name: &str,
        public_key: &[u8; 32],
        verify: impl Fn(&[u8], &[u8]) -> bool,
    ) -> bool {
        let id = key_id(name, ED25519, public_key);
        all_verify(
            self.signatures
                .iter()
                .filter(|s| s.name == name && s.key_id == id),
            |s| verify(self.body.as_bytes(), &s.data),
        )
    }

    /// Adds a signature line, replacing one by the same key.
    pub fn add(&mut self, sig: Signature) {
        self.signatures
            .retain(|s| !(s.name == sig.name && s.key_id == sig.key_id));
        self.signatures.push(sig);
    }
}

/// True when there is at least one signature and every one verifies.
fn all_verify<'a>(
    mut sigs: impl Iterator<Item = &'a Signature>,
    verifies: impl Fn(&Signature) -> bool,
) -> bool {
    let mut any = false;
    sigs.all(|s| {
        any = true;
        verifies(s)
    }) && any
}

/// A C2SP tlog-witness `add-checkpoint` request: `old <size>`, the consistency proof (one
/// base64 hash a line), an empty line, the checkpoint as a signed note.
#[derive(Debug)]
pub struct AddCheckpoint {
    pub old: u64,
    pub proof: Vec<Hash>,
    pub note: Note,
    pub checkpoint: Checkpoint,
}

impl AddCheckpoint {
    pub fn parse(body: &[u8]) -> Result<Self, NoteError> {
        let text = std::str::from_utf8(body).map_err(|_| err("the body is not UTF-8"))?;
        let (head, note) = text.split_once("\n\n").ok_or_else(|| {
            err("expected `old <size>`, proof lines, an empty line, the checkpoint")
        })?;
        let mut lines = head.split('\n');
        let old = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .and_then(decimal)
            .ok_or_else(|| err("the first line must be `old <size>` (decimal)"))?;
        let proof = proof_lines(lines)?;
        if proof.len() > MAX_WITNESS_PROOF {
            return Err(err(format!(
                "at most {MAX_WITNESS_PROOF} consistency proof lines (tlog-witness)"
            )));
        }
        let note = Note::parse(note).map_err(|e| err(format!("checkpoint note: {}", e.0)))?;
        let checkpoint =
            Checkpoint::parse(&note.body).map_err(|e| err(format!("checkpoint: {}", e.0)))?;
        Ok(Self {
            old,
            proof,
            note,
            checkpoint,
        })
    }
}

/// What a witness signs for a checkpoint text at `time` (Unix seconds).
fn cosigned_message(body: &str, time: u64) -> String {
    format!("cosignature/v1\ntime {time}\n{body}")
}

/// A witness's `cosignature/v1` on a checkpoint text.
pub fn cosign<E>(
    body: &str,
    name: &str,
    public_key: &[u8; 32],
    time: u64,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, E>,
) -> Result<Signature, E> {
    let sig = sign(cosigned_message(body, time).as_bytes())?;
    let mut data = time.to_be_bytes().to_vec();
    data.extend_from_slice(&sig);
    Ok(Signature {
        name: name.to_owned(),
        key_id: key_id(name, COSIGNATURE_V1, public_key),
        data,
    })
}

/// The time of a valid cosignature by (`name`, `public_key`) on the note, if there is one.
pub fn cosigned_at(
    note: &Note,
    name: &str,
    public_key: &[u8; 32],
    verify: impl Fn(&[u8], &[u8]) -> bool,
) -> Option<u64> {
    let id = key_id(name, COSIGNATURE_V1, public_key);
    let time = |s: &Signature| -> Option<u64> {
        if s.data.len() != 8 + 64 {
            return None;
        }
        // cosignature/v1: the timestamp MUST NOT exceed 2^63 - 1.
        let time = u64::from_be_bytes(s.data[..8].try_into().ok()?);
        if time > i64::MAX as u64 {
            return None;
        }
        verify(cosigned_message(&note.body, time).as_bytes(), &s.data[8..]).then_some(time)
    };
    let mine = || {
        note.signatures
            .iter()
            .filter(|s| s.name == name && s.key_id == id)
    };
    // A failing cosignature by this witness's key rejects the note, as a failing signature
    // by a known key does.
    if !all_verify(mine(), |s| time(s).is_some()) {
        return None;
    }
    mine().filter_map(time).max()
}

#[cfg(test)]
mod musts;

#[cfg(test)]
mod tests {
    use super::*;

    /// A keyed hash standing in for a signature (the tests here and in `musts` are about
    /// formats; Ed25519 key ids are checked against the spec's example).
    pub(super) fn toy_sign(key: u8) -> impl Fn(&[u8]) -> Result<Vec<u8>, ()> {
        move |m: &[u8]| {
            let mut h = Sha256::new()
                .chain_update([key])
                .chain_update(m)
                .finalize()
                .to_vec();
            h.extend_from_slice(&[key; 32]);
            Ok(h)
        }
    }

    pub(super) fn toy_verify(key: u8) -> impl Fn(&[u8], &[u8]) -> bool {
        move |m, s| toy_sign(key)(m).map(|x| x == s).unwrap_or(false)
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "pesaro.attesta.example/comune-pesaro/audit".into(),
            size: 12,
            root: [9; 32],
        }
    }

    #[test]
    fn checkpoint_text_round_trips_and_rejects_bad_lines() {
        let c = checkpoint();
        let body = c.body();
        assert_eq!(
            body,
            "pesaro.attesta.example/comune-pesaro/audit\n12\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n"
        );
        assert_eq!(Checkpoint::parse(&body).unwrap(), c);
        for bad in [
            "origin\n012\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n",
            "origin\n-1\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n",
            "origin\n1\nCQkJ\n",
            "origin\n1\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=",
            "\n1\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n",
        ] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn signed_note_round_trips_and_verifies_only_the_right_key() {
        let c = checkpoint();
        let name = c.origin.clone();
        let pk = [5; 32];
        let note = Note::sign(c.body(), &name, &pk, toy_sign(1)).unwrap();
        let text = note.render();
        assert!(text.starts_with(&c.body()));
        assert!(text.contains("\n\n\u{2014} pesaro.attesta.example/comune-pesaro/audit "));
        let back = Note::parse(&text).unwrap();
        assert_eq!(back, note);
        assert!(back.verify(&name, &pk, toy_verify(1)));
        assert!(!back.verify(&name, &pk, toy_verify(2)), "other key");
        assert!(!back.verify(&name, &[6; 32], toy_verify(1)), "other key id");
        assert!(!back.verify("other", &pk, toy_verify(1)), "other name");
        let mut changed = back.clone();
        changed.body = changed.body.replace("\n12\n", "\n13\n");
        assert!(!changed.verify(&name, &pk, toy_verify(1)), "changed text");
    }

    #[test]
    fn key_id_follows_the_signed_note_definition() {
        let pk = [0xab; 32];
        let mut m = b"example.com/log\n".to_vec();
        m.push(0x01);
        m.extend_from_slice(&pk);
        let h = Sha256::digest(&m);
        assert_eq!(key_id("example.com/log", ED25519, &pk), h[..4]);
        assert_ne!(
            key_id("example.com/log", ED25519, &pk),
            key_id("example.com/log", COSIGNATURE_V1, &pk)
        );
    }

    #[test]
    fn cosignatures_bind_time_and_text() {
        let c = checkpoint();
        let mut note = Note::sign(c.body(), &c.origin, &[5; 32], toy_sign(1)).unwrap();
        let wpk = [7; 32];
        let sig = cosign(&note.body, "w/witness", &wpk, 1_800_000_000, toy_sign(3)).unwrap();
        note.add(sig.clone());
        let back = Note::parse(&note.render()).unwrap();
        assert_eq!(
            cosigned_at(&back, "w/witness", &wpk, toy_verify(3)),
            Some(1_800_000_000)
        );
        assert_eq!(cosigned_at(&back, "w/witness", &wpk, toy_verify(4)), None);
        // The time is signed: changing it breaks the cosignature.
        let mut moved = back.clone();
        let s = moved.signatures.last_mut().unwrap();
        s.data[7] ^= 1;
        assert_eq!(cosigned_at(&moved, "w/witness", &wpk, toy_verify(3)), None);
        // Adding the same key again replaces its line.
        note.add(sig);
        assert_eq!(note.signatures.len(), 2);
    }

    #[test]
    fn a_failing_signature_by_a_known_key_rejects_the_note_even_beside_a_valid_one() {
        let c = checkpoint();
        let pk = [5; 32];
        let note = Note::sign(c.body(), &c.origin, &pk, toy_sign(1)).unwrap();
        let good = note.signatures[0].clone();
        let mut bad = good.clone();
        bad.data[0] ^= 1;
        for order in [[bad.clone(), good.clone()], [good.clone(), bad.clone()]] {
            let mut n = note.clone();
            n.signatures = order.to_vec();
            let n = Note::parse(&n.render()).unwrap();
            assert!(!n.verify(&c.origin, &pk, toy_verify(1)));
        }
        // A signature by an unknown key is ignored (signed-note: verifiers skip unknown keys).
        let mut n = note.clone();
        n.signatures.push(
            Note::sign(c.body(), "other.example/log", &[8; 32], toy_sign(9))
                .unwrap()
                .signatures[0]
                .clone(),
        );
        assert!(n.verify(&c.origin, &pk, toy_verify(1)));
        // The same for cosignatures.
        let wpk = [7; 32];
        let mut n = note.clone();
        let cos = cosign(&n.body, "w/witness", &wpk, 1_800_000_000, toy_sign(3)).unwrap();
        let mut broken = cos.clone();
        broken.data[20] ^= 1;
        n.signatures.push(cos);
        n.signatures.push(broken);
        let n = Note::parse(&n.render()).unwrap();
        assert_eq!(cosigned_at(&n, "w/witness", &wpk, toy_verify(3)), None);
    }

    /// The example of C2SP signed-note (and Go's golang.org/x/mod/sumdb/note): the key
    /// `PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW` signs
    /// "If you think cryptography is the answer to your problem,\nthen you don't know what
    /// your problem is.\n". The key id is the first four bytes of SHA-256(name || 0x0A || 0x01
    /// || key).
    #[test]
    fn the_spec_example_key_id_matches() {
        use base64::Engine;
        let key = STANDARD
            .decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
            .unwrap();
        assert_eq!(key[0], ED25519);
        let pk: [u8; 32] = key[1..].try_into().unwrap();
        assert_eq!(
            key_id("PeterNeumann", ED25519, &pk),
            [0xc7, 0x4f, 0x20, 0xa3]
        );
        let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        let note = Note::parse(text).unwrap();
        assert_eq!(note.signatures[0].key_id, [0xc7, 0x4f, 0x20, 0xa3]);
        let verify = |m: &[u8], sig: &[u8]| attesta_certs::sign::ed25519_verify(&pk, m, sig);
        assert!(note.verify("PeterNeumann", &pk, verify));
    }

    /// Found by the `signed_note` fuzz target: C2SP checkpoints may carry extension lines
    /// after the root; they are kept out of the tree head, and the text still verifies whole.
    #[test]
    fn checkpoint_extension_lines_are_not_part_of_the_tree_head() {
        let c = checkpoint();
        let text = format!("{}ext one\next two\n", c.body());
        assert_eq!(Checkpoint::parse(&text).unwrap(), c);
    }

    #[test]
    fn malformed_notes_are_refused() {
        for bad in [
            "no blank line\n\u{2014} a AAAAAAA=\n",
            "text\n\n",
            "text\n\nnot a signature\n",
            "text\n\n\u{2014} a !!!\n",
            "text\n\n\u{2014} a AAA=\n",
            "text\n\n\u{2014} a+b AAAAAAA=\n",
            "te\rxt\n\n\u{2014} a AAAAAAA=\n",
            "text\n\n\u{2014} a AAAAAAA=",
        ] {
            assert!(Note::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Note::parse("text\n\n\u{2014} a AAAAAAA=\n").is_ok());
    }
}

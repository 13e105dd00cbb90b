//! Receipts: proof, for the agency an entry names, that a node logged it, verifiable offline
//! with the CA certificate alone. The format is a C2SP `tlog-proof`:
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64 of JSON {"entry": base64 entry bytes, "certificates": [PEM, ...]}>
//! index <n>
//! <inclusion proof: one base64 hash per line>
//!
//! <the checkpoint: signed note with its cosignatures>
//! ```
//!
//! `extra` carries what makes the proof self-contained: the entry's canonical bytes (whose
//! leaf hash the proof is about) and the certificates needed to check the note: the node's
//! signing certificate first, then its witnesses'.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::bundle::{cosigners, signed_checkpoint, Invalid};
use super::entry::Entry;
use super::merkle::{self, Hash};
use super::note::Checkpoint;
use attesta_certs::TrustStore;

/// The first line of a receipt.
pub const FIRST_LINE: &str = "c2sp.org/tlog-proof@v1";
/// The usual file extension.
pub const EXTENSION: &str = "tlog-proof";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Extra {
    entry: String,
    certificates: Vec<String>,
}

/// A receipt for one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub index: u64,
    pub proof: Vec<Hash>,
    /// The checkpoint note, as the node served it.
    pub checkpoint: String,
    /// The entry's canonical bytes.
    pub entry: Vec<u8>,
    /// The node's signing certificate, then its witnesses' (PEM).
    pub certificates: Vec<String>,
}

/// Why a receipt cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a receipt: {0}")]
pub struct Malformed(pub String);

/// Why a receipt does not prove its entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error(transparent)]
    Checkpoint(#[from] Invalid),
    #[error("the receipt has no signing certificate")]
    NoSigner,
    #[error("the entry is not in the signed tree at index {index}: {why}")]
    NotIncluded { index: u64, why: String },
    #[error("the entry is malformed: {0}")]
    Entry(String),
}

/// A receipt that verified.
#[derive(Debug)]
pub struct Checked {
    /// The node that logged the entry.
    pub agency: String,
    pub checkpoint: Checkpoint,
    pub entry: Entry,
    pub witnesses: Vec<String>,
}

impl Receipt {
    pub fn render(&self) -> String {
        let extra = Extra {
            entry: STANDARD.encode(&self.entry),
            certificates: self.certificates.clone(),
        };
        let extra = serde_json::to_vec(&extra).unwrap_or_default();
        let mut out = format!(
            "{FIRST_LINE}\nextra {}\nindex {}\n",
            STANDARD.encode(extra),
            self.index
        );
        for h in &self.proof {
            out.push_str(&STANDARD.encode(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    pub fn parse(text: &str) -> Result<Self, Malformed> {
        let bad = |s: &str| Malformed(s.to_owned());
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no empty line before the checkpoint"))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(FIRST_LINE) {
            return Err(bad("the first line is not c2sp.org/tlog-proof@v1"));
        }
        let extra = lines
            .next()
            .and_then(|l| l.strip_prefix("extra "))
            .and_then(|b| STANDARD.decode(b).ok())
            .and_then(|j| serde_json::from_slice::<Extra>(&j).ok())
            .ok_or_else(|| bad("no `extra` line with the entry and certificates"))?;
        let entry = STANDARD
            .decode(&extra.entry)
            .map_err(|_| bad("the entry is not base64"))?;
        let index = lines
            .next()
            .and_then(|l| l.strip_prefix("index "))
            .and_then(super::note::decimal)
            .ok_or_else(|| bad("no `index <n>` line"))?;
        let proof = super::note::proof_lines(lines).map_err(|e| Malformed(e.0))?;
        Ok(Self {
            index,
            proof,
            checkpoint: checkpoint.to_owned(),
            entry,
            certificates: extra.certificates,
        })
    }

    /// Checks the signing certificate against the CA, the checkpoint's signature, `witnesses`
    /// cosignatures, and that the entry is the leaf at `index` of the signed tree.
    pub fn verify(&self, trust: &TrustStore, witnesses: usize) -> Result<Checked, Refused> {
        let (signer, others) = self.certificates.split_first().ok_or(Refused::NoSigner)?;
        let signed = signed_checkpoint(signer, &self.checkpoint, trust)?;
        let cosigned = cosigners(&signed.note, &signed.agency, others, trust, witnesses)?;
        let c = &signed.checkpoint;
        merkle::verify_inclusion(
            &merkle::leaf_hash(&self.entry),
            self.index,
            c.size,
            &self.proof,
            &c.root,
        )
        .map_err(|e| Refused::NotIncluded {
            index: self.index,
            why: e.to_string(),
        })?;
        let entry = Entry::decode(&self.entry).map_err(|e| Refused::Entry(e.to_string()))?;
        Ok(Checked {
            agency: signed.agency,
            checkpoint: signed.checkpoint,
            entry,
            witnesses: cosigned,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_round_trip_and_malformed_ones_are_refused() {
        let r = Receipt {
            index: 5,
            proof: vec![[1; 32], [2; 32]],
            checkpoint: "o\n6\nAAAA\n\n\u{2014} o AAAA\n".into(),
            entry: vec![1, 2, 3],
            certificates: vec!["PEM".into()],
        };
        let text = r.render();
        assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra "));
        assert!(text.contains("\nindex 5\nAQEB"));
        assert_eq!(Receipt::parse(&text).unwrap(), r);
        for bad in [
            text.replacen("tlog-proof@v1", "tlog-proof@v2", 1),
            text.replacen("index 5", "index 05", 1),
            text.replacen("index 5", "index x", 1),
            text.replacen("\nextra ", "\nextras ", 1),
            text.replacen("AQEB", "AQ", 1),
            text.replace("\n\n", "\n"),
        ] {
            assert!(Receipt::parse(&bad).is_err(), "{bad:?}");
        }
    }
}

//! The node's key for blinding subjects in its audit log entries (the `subject` field of
//! [`Entry`](super::entry::Entry)). Node-side: the offline verifier never needs it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::cf::CodiceFiscale;

/// The node's key for blinding subjects: the log proves *that* a person was asked about
/// without naming them, and only this node can tell whom an entry is about.
#[derive(Clone)]
pub struct SubjectKey([u8; 32]);

impl std::fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubjectKey(<redacted>)")
    }
}

impl SubjectKey {
    pub fn new(key: [u8; 32]) -> Self {
        Self(key)
    }

    /// HMAC-SHA256 of the canonical codice fiscale.
    pub fn blind(&self, cf: &CodiceFiscale) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(cf.canonical().as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn blinding_is_keyed_and_uses_the_canonical_form() {
        let cf = CodiceFiscale::parse("RSSMRA85T10A562S").unwrap();
        let omocodic = CodiceFiscale::parse(&cf.omocodia_variant(1)).unwrap();
        let k1 = SubjectKey::new([1; 32]);
        let k2 = SubjectKey::new([2; 32]);
        assert_ne!(k1.blind(&cf), k2.blind(&cf));
        assert_eq!(k1.blind(&cf), k1.blind(&cf));
        // RFC 4231-style check against an independent HMAC: openssl is not a dependency of
        // the node, so compare against the definition H(K^opad || H(K^ipad || m)).
        let key = [1u8; 32];
        let mut ipad = [0x36u8; 64];
        let mut opad = [0x5cu8; 64];
        for i in 0..32 {
            ipad[i] ^= key[i];
            opad[i] ^= key[i];
        }
        let inner = Sha256::new()
            .chain_update(ipad)
            .chain_update(cf.canonical().as_bytes())
            .finalize();
        let outer: [u8; 32] = Sha256::new()
            .chain_update(opad)
            .chain_update(inner)
            .finalize()
            .into();
        assert_eq!(k1.blind(&cf), outer);
        assert_eq!(
            k1.blind(&cf),
            k1.blind(&omocodic),
            "omocodic forms blind alike"
        );
    }
}

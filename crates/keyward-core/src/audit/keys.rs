//! The keys that seal the audit chain and sign its anchors: HMAC-SHA256 keys, each named by the id
//! of the server secret key it was derived from (see `keyward_store::secret`), held in a ring so
//! events sealed before a key rotation still verify.
//!
//! The ring is ordered: the first key seals new events (or signs new anchors); the others only
//! verify. The bytes never print (`Debug` shows the ids only) and are zeroed when dropped.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

/// One HMAC-SHA256 key with the id it is known by in sealed hashes and anchors.
pub struct MacKey {
    id: String,
    key: SecretBox<[u8; 32]>,
}

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MacKey({}, [redacted])", self.id)
    }
}

impl MacKey {
    /// A key from its id and 32 bytes.
    pub fn new(id: impl Into<String>, bytes: [u8; 32]) -> Self {
        Self { id: id.into(), key: SecretBox::new(Box::new(bytes)) }
    }

    /// The id this key is named by (the id of the secret key it was derived from).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// HMAC-SHA256 of `data` under this key.
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        let mut m =
            Hmac::<Sha256>::new_from_slice(self.key.expose_secret()).expect("HMAC takes a key of any length");
        m.update(data);
        m.finalize().into_bytes().into()
    }

    /// Whether `tag` is the HMAC of `data` under this key (compared in constant time).
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        let mut m =
            Hmac::<Sha256>::new_from_slice(self.key.expose_secret()).expect("HMAC takes a key of any length");
        m.update(data);
        m.verify_slice(tag).is_ok()
    }
}

/// The keys a server holds for one purpose: the current one first, then older ones.
#[derive(Debug, Default)]
pub struct MacKeys {
    keys: Vec<MacKey>,
}

impl MacKeys {
    /// No keys: the chain is sealed with plain SHA-256 (stores opened without the server's key).
    pub fn none() -> Self {
        Self::default()
    }

    /// A ring whose current key is `current`, with `older` keys for verifying only.
    pub fn new(current: MacKey, older: impl IntoIterator<Item = MacKey>) -> Self {
        let mut keys = vec![current];
        keys.extend(older);
        Self { keys }
    }

    /// The key that seals or signs now, if any.
    pub fn current(&self) -> Option<&MacKey> {
        self.keys.first()
    }

    /// The key with id `id`, current or older.
    pub fn get(&self, id: &str) -> Option<&MacKey> {
        self.keys.iter().find(|k| k.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_depend_on_the_key_and_verify_in_place() {
        let a = MacKey::new("aaaa", [1; 32]);
        let b = MacKey::new("bbbb", [2; 32]);
        let tag = a.mac(b"event");
        assert!(a.verify(b"event", &tag));
        assert!(!b.verify(b"event", &tag));
        assert!(!a.verify(b"evenT", &tag));
        assert_eq!(format!("{a:?}"), "MacKey(aaaa, [redacted])");
        let ring = MacKeys::new(b, [a]);
        assert_eq!(ring.current().map(MacKey::id), Some("bbbb"));
        assert!(ring.get("aaaa").is_some() && ring.get("cccc").is_none());
        assert!(MacKeys::none().current().is_none());
    }
}

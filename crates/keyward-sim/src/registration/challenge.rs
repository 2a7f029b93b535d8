//! Registration challenges: opaque sealed tokens binding a user, an expiry and a nonce.
//!
//! Real Entra challenges are JWEs the client cannot read, so nothing needs to be stored
//! when one is issued; the emulator does the same with AES-256-GCM (see `keys.rs`). The
//! nonce makes every challenge distinct and is the key under which a used challenge is
//! remembered (single use, the stricter reading), whatever encoding the client echoes.

use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::Sim;
use crate::keys::LoadedKeys;

/// What a sealed challenge carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeClaims {
    /// The object id of the user it was issued for (lowercase).
    #[serde(rename = "u")]
    pub user_id: String,
    /// Expiry, unix seconds.
    #[serde(rename = "e")]
    pub expires: i64,
    /// Random nonce, hex; identifies the challenge for single use.
    #[serde(rename = "n")]
    pub nonce: String,
}

/// Issues a challenge for `user_id` expiring at `expires` (unix seconds), base64url.
pub fn issue(keys: &LoadedKeys, user_id: &str, expires: i64) -> String {
    let mut nonce = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut nonce);
    let claims =
        ChallengeClaims { user_id: user_id.to_ascii_lowercase(), expires, nonce: hex::encode(nonce) };
    let plain = serde_json::to_vec(&claims).unwrap_or_default();
    keyward_webauthn::b64::encode(&keys.seal(&plain))
}

/// Opens challenge bytes sealed by this emulator; `None` if forged or tampered with.
pub fn open(keys: &LoadedKeys, sealed: &[u8]) -> Option<ChallengeClaims> {
    serde_json::from_slice(&keys.open(sealed)?).ok()
}

/// Seals a challenge for `user_id` with an arbitrary expiry (unix seconds) — for tests that
/// need an expired or far-future challenge without waiting.
pub fn seal_challenge(sim: &Sim, user_id: &str, expires: i64) -> String {
    issue(sim.keys(), user_id, expires)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SimKeys;

    #[test]
    fn challenges_round_trip_and_are_unique() {
        let keys = LoadedKeys::load(&SimKeys::generate()).unwrap();
        let a = issue(&keys, "ABC", 10);
        let b = issue(&keys, "abc", 10);
        assert_ne!(a, b);
        let claims = open(&keys, &keyward_webauthn::b64::decode_lenient(&a).unwrap()).unwrap();
        assert_eq!((claims.user_id.as_str(), claims.expires), ("abc", 10));
        let other = LoadedKeys::load(&SimKeys::generate()).unwrap();
        assert!(open(&other, &keyward_webauthn::b64::decode_lenient(&a).unwrap()).is_none());
    }
}

//! Registration challenges: opaque sealed tokens binding a user, an expiry and a nonce.
//!
//! Real Entra challenges are JWEs the client cannot read, so nothing needs to be stored
//! when one is issued; the emulator does the same with AES-256-GCM (see `keys.rs`). The
//! nonce makes every challenge distinct and is the key under which a used challenge is
//! remembered (single use in `--strict` mode), whatever encoding the client echoes.
//!
//! The shape and size follow what was observed (docs/entra-graph-api.md §1.3): the challenge
//! is base64url of the ASCII text of a compact JWE — five dot-separated base64url parts, a
//! header `{"alg":"RSA-OAEP-256","enc":"A256GCM","x5c":[…],"x5t":"…"}`, an encrypted key,
//! the IV, the ciphertext and the tag — about 6 900 characters in all, most of it the
//! header's certificate chain. Here the IV, ciphertext and tag are the emulator's own
//! AES-GCM seal; the header's chain and the encrypted key are opaque filler of the observed
//! size, so that a client's columns, URLs and buffers meet a challenge of the real length.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Sim;
use crate::keys::LoadedKeys;

/// The observed length of a challenge in creation options, in characters (base64url).
pub const OBSERVED_CHALLENGE_CHARS: usize = 6_900;

/// AES-GCM's IV and tag, as [`LoadedKeys::seal`] frames them.
const IV_BYTES: usize = 12;
const TAG_BYTES: usize = 16;
/// An RSA-2048 OAEP-encrypted content key.
const ENCRYPTED_KEY_BYTES: usize = 256;
/// The sealed claims' usual length (user id, expiry, nonce as JSON), for sizing the filler.
const TYPICAL_CLAIMS_BYTES: usize = 100;

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
    let sealed = keys.seal(&plain);
    let (iv, rest) = sealed.split_at(IV_BYTES);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_BYTES);
    let jwe = [
        jwe_header().to_owned(),
        URL_SAFE_NO_PAD.encode(encrypted_key(&sealed)),
        URL_SAFE_NO_PAD.encode(iv),
        URL_SAFE_NO_PAD.encode(ciphertext),
        URL_SAFE_NO_PAD.encode(tag),
    ]
    .join(".");
    keyward_webauthn::b64::encode(jwe.as_bytes())
}

/// Opens the challenge bytes the client signed (the JWE's ASCII text) when this emulator
/// sealed them; `None` if forged, tampered with or not a five-part JWE.
pub fn open(keys: &LoadedKeys, challenge: &[u8]) -> Option<ChallengeClaims> {
    let text = std::str::from_utf8(challenge).ok()?;
    let parts: Vec<&str> = text.split('.').collect();
    let [header, key, iv, ciphertext, tag] = parts.as_slice() else {
        return None;
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).ok();
    let sealed = [decode(iv)?, decode(ciphertext)?, decode(tag)?].concat();
    // A JWE's header is authenticated and a changed encrypted key yields no content key: a
    // change to either makes the challenge invalid, as it would at Entra.
    if *header != jwe_header() || decode(key)? != encrypted_key(&sealed) {
        return None;
    }
    serde_json::from_slice(&keys.open(&sealed)?).ok()
}

/// The JWE's "encrypted key": filler of an RSA-2048 ciphertext's size, derived from the seal
/// so that a challenge whose key part was changed does not open.
fn encrypted_key(sealed: &[u8]) -> Vec<u8> {
    (0u8..)
        .map(|block| Sha256::new().chain_update([block]).chain_update(sealed).finalize())
        .flat_map(|digest| digest.to_vec())
        .take(ENCRYPTED_KEY_BYTES)
        .collect()
}

/// The JWE header every challenge carries, base64url: the observed algorithms and a
/// certificate chain of filler sized so that a challenge is about
/// [`OBSERVED_CHALLENGE_CHARS`] long. Made once; the same for every challenge, as a real
/// signing chain is.
fn jwe_header() -> &'static str {
    static HEADER: OnceLock<String> = OnceLock::new();
    HEADER.get_or_init(|| {
        let b64 = |n: usize| (n * 4).div_ceil(3);
        // The JWE's ASCII text is 3/4 of the challenge; the header takes what the other
        // parts and the four dots leave.
        let others =
            b64(ENCRYPTED_KEY_BYTES) + b64(IV_BYTES) + b64(TYPICAL_CLAIMS_BYTES) + b64(TAG_BYTES) + 4;
        let header_chars = OBSERVED_CHALLENGE_CHARS * 3 / 4 - others;
        let skeleton = |certs: &[String], thumbprint: &str| {
            serde_json::json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "x5c": certs, "x5t": thumbprint})
                .to_string()
        };
        let thumbprint = URL_SAFE_NO_PAD.encode(Sha256::digest(b"keyward-sim challenge chain"));
        let empty = skeleton(&[String::new(), String::new()], &thumbprint).len();
        // Two certificates (leaf and issuer) in standard base64, as x5c has them.
        let cert_chars = (header_chars * 3 / 4).saturating_sub(empty) / 2;
        let cert = |label: &str| {
            let mut der = Vec::new();
            let mut block = Sha256::digest(label.as_bytes());
            while der.len() * 4 / 3 < cert_chars {
                der.extend_from_slice(&block);
                block = Sha256::digest(block);
            }
            let mut text = base64::engine::general_purpose::STANDARD.encode(der);
            text.truncate(cert_chars - cert_chars % 4);
            text
        };
        let header = skeleton(&[cert("leaf"), cert("issuer")], &thumbprint);
        URL_SAFE_NO_PAD.encode(header)
    })
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

    #[test]
    fn a_challenge_is_a_jwe_of_the_observed_size() {
        let keys = LoadedKeys::load(&SimKeys::generate()).unwrap();
        let challenge = issue(&keys, "a1000000-0000-4000-8000-000000000001", 1_900_000_000);
        let chars = challenge.len() as f64;
        let observed = OBSERVED_CHALLENGE_CHARS as f64;
        assert!((chars - observed).abs() / observed < 0.02, "{chars} characters");
        let text = String::from_utf8(keyward_webauthn::b64::decode_lenient(&challenge).unwrap()).unwrap();
        let parts: Vec<&str> = text.split('.').collect();
        assert_eq!(parts.len(), 5, "compact JWE");
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!((header["alg"].as_str(), header["enc"].as_str()), (Some("RSA-OAEP-256"), Some("A256GCM")));
        assert_eq!(header["x5c"].as_array().map(Vec::len), Some(2));
        assert!(challenge.starts_with("ZXlKaGJHY2lPaUpTVTBFdFQwRkZVQzB5TlRZ"), "{}", &challenge[..40]);
    }

    #[test]
    fn a_tampered_or_malformed_challenge_does_not_open() {
        let keys = LoadedKeys::load(&SimKeys::generate()).unwrap();
        let text =
            String::from_utf8(keyward_webauthn::b64::decode_lenient(&issue(&keys, "abc", 10)).unwrap())
                .unwrap();
        let parts: Vec<String> = text.split('.').map(str::to_owned).collect();
        let with = |i: usize, text: &str| {
            let mut changed = parts.clone();
            changed[i] = text.to_owned();
            changed.join(".")
        };
        let first_changed = |part: &str| {
            let first = if part.starts_with('A') { "B" } else { "A" };
            format!("{first}{}", &part[1..])
        };
        let header_changed = with(0, &first_changed(&parts[0]));
        let key_changed = with(1, &first_changed(&parts[1]));
        let ciphertext_changed = {
            let mut bytes = URL_SAFE_NO_PAD.decode(&parts[3]).unwrap();
            bytes[0] ^= 1;
            with(3, &URL_SAFE_NO_PAD.encode(bytes))
        };
        assert!(open(&keys, parts.join(".").as_bytes()).is_some(), "the untouched challenge opens");
        for bad in [
            header_changed,
            key_changed,
            ciphertext_changed,
            parts[..4].join("."),
            "not a jwe".into(),
            String::new(),
        ] {
            assert!(open(&keys, bad.as_bytes()).is_none(), "{bad:.40}");
        }
        assert!(open(&keys, &[0xff, 0xfe]).is_none());
    }
}

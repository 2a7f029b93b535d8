//! The emulator's own secrets: the RSA key that signs access and ID tokens (published in
//! the JWKS) and the AES key that seals registration challenges.
//!
//! Real Entra challenges are JWEs the client cannot read; the emulator seals its
//! challenges with AES-256-GCM for the same reason: a client cannot forge one, cannot
//! move one to another user, and cannot extend its expiry.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use rsa::RsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Keys generated when a tenant is created and persisted with its state.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimKeys {
    /// PKCS#8 PEM of the token-signing RSA key.
    pub token_key_pem: String,
    /// Key id published in the JWKS.
    pub token_kid: String,
    /// Hex of the 32-byte challenge-sealing key.
    pub challenge_key_hex: String,
    /// Hex of the 32-byte secret that derives stable per-user handles.
    pub user_handle_secret_hex: String,
}

impl std::fmt::Debug for SimKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimKeys").field("token_kid", &self.token_kid).finish_non_exhaustive()
    }
}

impl SimKeys {
    /// Fresh random keys.
    pub fn generate() -> Self {
        let mut rng = rand::thread_rng();
        let key =
            RsaPrivateKey::new(&mut rng, 2048).unwrap_or_else(|e| panic!("RSA key generation failed: {e}"));
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap_or_else(|e| panic!("PKCS#8 encoding failed: {e}"))
            .to_string();
        let der =
            key.to_public_key().to_public_key_der().unwrap_or_else(|e| panic!("SPKI encoding failed: {e}"));
        let kid = keyward_webauthn::b64::encode(&Sha256::digest(der.as_bytes())[..16]);
        let mut challenge_key = [0u8; 32];
        rng.fill_bytes(&mut challenge_key);
        let mut handle_secret = [0u8; 32];
        rng.fill_bytes(&mut handle_secret);
        Self {
            token_key_pem: pem,
            token_kid: kid,
            challenge_key_hex: hex::encode(challenge_key),
            user_handle_secret_hex: hex::encode(handle_secret),
        }
    }
}

/// Keys ready for use (parsed once at start).
pub struct LoadedKeys {
    /// The token-signing key for `jsonwebtoken`.
    pub encoding: jsonwebtoken::EncodingKey,
    /// The matching verification key.
    pub decoding: jsonwebtoken::DecodingKey,
    /// Key id.
    pub kid: String,
    /// RSA modulus, base64url (for the JWKS).
    pub n: String,
    /// RSA exponent, base64url (for the JWKS).
    pub e: String,
    challenge: Aes256Gcm,
    handle_secret: Vec<u8>,
}

impl LoadedKeys {
    /// Parses persisted keys.
    pub fn load(keys: &SimKeys) -> Result<Self, String> {
        let key =
            RsaPrivateKey::from_pkcs8_pem(&keys.token_key_pem).map_err(|e| format!("token key: {e}"))?;
        let encoding = jsonwebtoken::EncodingKey::from_rsa_pem(keys.token_key_pem.as_bytes())
            .map_err(|e| format!("token key: {e}"))?;
        let public = key.to_public_key();
        let n = keyward_webauthn::b64::encode(&public.n().to_bytes_be());
        let e = keyward_webauthn::b64::encode(&public.e().to_bytes_be());
        let decoding =
            jsonwebtoken::DecodingKey::from_rsa_components(&n, &e).map_err(|e| format!("token key: {e}"))?;
        let challenge_key =
            hex::decode(&keys.challenge_key_hex).map_err(|e| format!("challenge key: {e}"))?;
        let challenge =
            Aes256Gcm::new_from_slice(&challenge_key).map_err(|e| format!("challenge key: {e}"))?;
        let handle_secret =
            hex::decode(&keys.user_handle_secret_hex).map_err(|e| format!("user handle secret: {e}"))?;
        Ok(Self { encoding, decoding, kid: keys.token_kid.clone(), n, e, challenge, handle_secret })
    }

    /// Seals `plain` so only this emulator can open it: nonce ‖ AES-256-GCM ciphertext.
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .challenge
            .encrypt(&Nonce::from(nonce), plain)
            .unwrap_or_else(|e| panic!("AES-GCM sealing failed: {e}"));
        [nonce.as_slice(), &sealed].concat()
    }

    /// Opens what [`LoadedKeys::seal`] produced; `None` if it was not sealed by this emulator.
    pub fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < 12 + 16 {
            return None;
        }
        let (nonce, body) = sealed.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        self.challenge.decrypt(&Nonce::from(nonce), body).ok()
    }

    /// The stable WebAuthn user handle of a user: `OF:` and 48 opaque bytes, as observed.
    pub fn user_handle(&self, user_id: &str) -> Vec<u8> {
        let mut out = b"OF:".to_vec();
        for block in 0u8..2 {
            let mut h = Sha256::new();
            h.update(&self.handle_secret);
            h.update([block]);
            h.update(user_id.to_ascii_lowercase().as_bytes());
            out.extend_from_slice(&h.finalize()[..24]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_untampered() {
        let a = LoadedKeys::load(&SimKeys::generate()).unwrap();
        let b = LoadedKeys::load(&SimKeys::generate()).unwrap();
        let sealed = a.seal(b"user=1;exp=2");
        assert_eq!(a.open(&sealed).unwrap(), b"user=1;exp=2");
        assert!(b.open(&sealed).is_none());
        let mut tampered = sealed.clone();
        tampered[20] ^= 1;
        assert!(a.open(&tampered).is_none());
    }

    #[test]
    fn user_handles_are_stable_opaque_and_51_bytes() {
        let keys = LoadedKeys::load(&SimKeys::generate()).unwrap();
        let h = keys.user_handle("ABC");
        assert_eq!(h, keys.user_handle("abc"));
        assert_ne!(h, keys.user_handle("abd"));
        assert_eq!(h.len(), 51);
        assert!(h.starts_with(b"OF:"));
    }
}

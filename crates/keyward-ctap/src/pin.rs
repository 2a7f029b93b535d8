//! PIN/UV auth protocols 1 and 2 (CTAP 2.1 §6.5.6, §6.5.7), platform side.
//!
//! Both derive a shared secret from ECDH on P-256 with the platform's ephemeral key. Protocol 1
//! uses SHA-256(Z) as both AES and HMAC key, AES-256-CBC with a zero IV and a 16-byte HMAC tag;
//! protocol 2 derives separate HMAC and AES keys with HKDF, uses a random IV prefixed to the
//! ciphertext and a full 32-byte tag. PIN input never needs padding: it is 16, 32 or 64 bytes.

use aes::Aes256;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use ciborium::value::Value;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use p256::ecdh::EphemeralSecret;
use p256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use p256::{EncodedPoint, PublicKey};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::cbor::{imap, int};
use crate::error::CtapError;

/// A PIN/UV auth protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinProtocol {
    /// Protocol 1 (CTAP 2.0).
    V1,
    /// Protocol 2 (CTAP 2.1).
    V2,
}

impl PinProtocol {
    /// Decodes a protocol number from getInfo.
    pub fn from_number(n: u64) -> Option<Self> {
        match n {
            1 => Some(Self::V1),
            2 => Some(Self::V2),
            _ => None,
        }
    }

    /// The protocol number sent to the key.
    pub fn number(self) -> u8 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
        }
    }

    /// Derives the shared secret from the ECDH x-coordinate.
    pub fn kdf(self, z: &[u8]) -> Zeroizing<Vec<u8>> {
        match self {
            Self::V1 => Zeroizing::new(Sha256::digest(z).to_vec()),
            Self::V2 => {
                let hk = Hkdf::<Sha256>::new(Some(&[0u8; 32]), z);
                let mut out = Zeroizing::new(vec![0u8; 64]);
                hk.expand(b"CTAP2 HMAC key", &mut out[..32]).expect("32 bytes");
                hk.expand(b"CTAP2 AES key", &mut out[32..]).expect("32 bytes");
                out
            }
        }
    }

    /// The HMAC key inside a shared secret.
    pub fn hmac_key(self, shared: &[u8]) -> &[u8] {
        match self {
            Self::V1 => shared,
            Self::V2 => &shared[..32],
        }
    }

    /// Encrypts a multiple of 16 bytes with the shared secret.
    pub fn encrypt(self, shared: &[u8], plain: &[u8]) -> Vec<u8> {
        let (key, mut iv) = match self {
            Self::V1 => (shared, [0u8; 16]),
            Self::V2 => {
                let mut iv = [0u8; 16];
                rand::thread_rng().fill_bytes(&mut iv);
                (&shared[32..], iv)
            }
        };
        let cipher = <Aes256 as KeyInit>::new_from_slice(key).expect("32-byte AES key");
        let mut out = if self == Self::V2 { iv.to_vec() } else { Vec::new() };
        for block in plain.chunks(16) {
            let mut b = [0u8; 16];
            for i in 0..16 {
                b[i] = block[i] ^ iv[i];
            }
            let mut ga: aes::Block = b.into();
            cipher.encrypt_block(&mut ga);
            iv.copy_from_slice(&ga);
            out.extend_from_slice(&ga);
        }
        out
    }

    /// Decrypts; `None` if the length is not a whole number of blocks.
    pub fn decrypt(self, shared: &[u8], data: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let (key, mut iv, ct) = match self {
            Self::V1 => (shared, [0u8; 16], data),
            Self::V2 => {
                if data.len() < 16 {
                    return None;
                }
                (&shared[32..], <[u8; 16]>::try_from(&data[..16]).ok()?, &data[16..])
            }
        };
        if ct.len() % 16 != 0 {
            return None;
        }
        let cipher = <Aes256 as KeyInit>::new_from_slice(key).expect("32-byte AES key");
        let mut out = Zeroizing::new(Vec::with_capacity(ct.len()));
        for block in ct.chunks(16) {
            let mut ga: aes::Block = <[u8; 16]>::try_from(block).expect("16-byte block").into();
            cipher.decrypt_block(&mut ga);
            for i in 0..16 {
                out.push(ga[i] ^ iv[i]);
            }
            iv.copy_from_slice(block);
        }
        Some(out)
    }

    /// The authentication tag of `msg` under `key` (16 bytes for V1, 32 for V2).
    pub fn authenticate(self, key: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
        mac.update(msg);
        let tag = mac.finalize().into_bytes();
        match self {
            Self::V1 => tag[..16].to_vec(),
            Self::V2 => tag.to_vec(),
        }
    }

    /// Verifies a tag in constant time.
    pub fn verify(self, key: &[u8], msg: &[u8], tag: &[u8]) -> bool {
        let want = match self {
            Self::V1 => 16,
            Self::V2 => 32,
        };
        if tag.len() != want {
            return false;
        }
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
        mac.update(msg);
        mac.verify_truncated_left(tag).is_ok()
    }
}

/// The COSE_Key of a P-256 public key with the given COSE algorithm.
pub fn cose_key(public: &PublicKey, alg: i64) -> Value {
    let p = public.to_encoded_point(false);
    imap(vec![
        (1, int(2)),
        (3, int(alg)),
        (-1, int(1)),
        (-2, Value::Bytes(p.x().expect("uncompressed").to_vec())),
        (-3, Value::Bytes(p.y().expect("uncompressed").to_vec())),
    ])
}

/// Parses the authenticator's key-agreement COSE_Key.
pub fn parse_cose_key(v: &Value) -> Result<PublicKey, CtapError> {
    let bad = || CtapError::Malformed("key-agreement key".into());
    let map = v.as_map().ok_or_else(bad)?;
    let get = |k: i64| {
        map.iter()
            .find(|(key, _)| key.as_integer().and_then(|i| i64::try_from(i).ok()) == Some(k))
            .and_then(|(_, v)| v.as_bytes())
    };
    let (x, y) = (get(-2).ok_or_else(bad)?, get(-3).ok_or_else(bad)?);
    if x.len() != 32 || y.len() != 32 {
        return Err(bad());
    }
    let point = EncodedPoint::from_affine_coordinates(x.as_slice().into(), y.as_slice().into(), false);
    Option::from(PublicKey::from_encoded_point(&point)).ok_or_else(bad)
}

/// Platform half of the key agreement: a fresh ephemeral key, its COSE form, and the shared secret.
pub fn encapsulate(protocol: PinProtocol, device: &PublicKey) -> (Value, Zeroizing<Vec<u8>>) {
    let ours = EphemeralSecret::random(&mut rand::rngs::OsRng);
    let z = ours.diffie_hellman(device);
    (cose_key(&ours.public_key(), -25), protocol.kdf(z.raw_secret_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypt_decrypt_and_tags_per_protocol() {
        for p in [PinProtocol::V1, PinProtocol::V2] {
            let shared = p.kdf(&[7u8; 32]);
            let plain = [0x42u8; 64];
            let ct = p.encrypt(&shared, &plain);
            assert_eq!(ct.len(), if p == PinProtocol::V1 { 64 } else { 80 });
            assert_eq!(p.decrypt(&shared, &ct).unwrap().as_slice(), &plain);
            let tag = p.authenticate(p.hmac_key(&shared), b"msg");
            assert!(p.verify(p.hmac_key(&shared), b"msg", &tag));
            assert!(!p.verify(p.hmac_key(&shared), b"msh", &tag));
        }
    }
}

//! PIN/UV auth protocols 1 and 2 (CTAP 2.1 §6.5.6, §6.5.7), authenticator side.
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
use p256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use p256::{EncodedPoint, PublicKey, SecretKey};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::cbor::{as_i64, imap, int};
use crate::status::{CtapResult, Status};

/// A PIN/UV auth protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinProtocol {
    /// Protocol 1 (CTAP 2.0).
    V1,
    /// Protocol 2 (CTAP 2.1).
    V2,
}

impl PinProtocol {
    /// Decodes the protocol number; unsupported numbers are an invalid parameter.
    pub fn from_number(n: u64) -> CtapResult<Self> {
        match n {
            1 => Ok(Self::V1),
            2 => Ok(Self::V2),
            _ => Err(Status::InvalidParameter),
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

/// Parses the platform's key-agreement COSE_Key.
pub fn parse_cose_key(v: &Value) -> CtapResult<PublicKey> {
    let map = v.as_map().ok_or(Status::CborUnexpectedType)?;
    let get = |k: i64| {
        map.iter()
            .find(|(key, _)| key.as_integer().and_then(|i| i64::try_from(i).ok()) == Some(k))
            .map(|(_, v)| v)
    };
    if as_i64(get(1).ok_or(Status::MissingParameter)?)? != 2 {
        return Err(Status::InvalidParameter);
    }
    let x = get(-2).and_then(|v| v.as_bytes()).ok_or(Status::MissingParameter)?;
    let y = get(-3).and_then(|v| v.as_bytes()).ok_or(Status::MissingParameter)?;
    if x.len() != 32 || y.len() != 32 {
        return Err(Status::InvalidParameter);
    }
    let point = EncodedPoint::from_affine_coordinates(x.as_slice().into(), y.as_slice().into(), false);
    Option::from(PublicKey::from_encoded_point(&point)).ok_or(Status::InvalidParameter)
}

/// ECDH with the platform key, then the protocol's KDF.
pub fn shared_secret(protocol: PinProtocol, ours: &SecretKey, theirs: &PublicKey) -> Zeroizing<Vec<u8>> {
    let z = p256::ecdh::diffie_hellman(ours.to_nonzero_scalar(), theirs.as_affine());
    protocol.kdf(z.raw_secret_bytes())
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

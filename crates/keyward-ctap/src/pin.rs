//! PIN/UV auth protocols 1 and 2, platform side, written from CTAP 2.1 §6.5.
//!
//! The platform and the key agree on a secret by ECDH on P-256 (the key's COSE_Key from
//! getKeyAgreement, a fresh platform key per exchange). What each protocol does with the
//! x-coordinate Z:
//!
//! | | protocol 1 (§6.5.6) | protocol 2 (§6.5.7) |
//! |---|---|---|
//! | keys | one key, SHA-256(Z), for HMAC and AES | HKDF-SHA-256(salt = 32 zero bytes, Z): "CTAP2 HMAC key" and "CTAP2 AES key" |
//! | encrypt | AES-256-CBC, IV all zero | AES-256-CBC, random IV sent in front of the ciphertext |
//! | authenticate | HMAC-SHA-256, first 16 bytes | HMAC-SHA-256, all 32 bytes |
//!
//! The result is a [`SharedSecret`] that owns both keys, so callers never slice a secret by
//! hand. CBC comes from RustCrypto's `cbc` crate (no padding: every CTAP plaintext is whole
//! blocks). This module is deliberately not shared with the soft key's implementation: the
//! two are written separately so the conformance tests catch a misreading on either side.

use aes::Aes256;
use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use ciborium::value::Value;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use p256::ecdh::EphemeralSecret;
use p256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use p256::{EncodedPoint, FieldBytes, PublicKey};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::CtapError;

/// AES block size; every CTAP plaintext (PIN block, PIN hash, salts, tokens) is a multiple.
const BLOCK: usize = 16;

/// COSE algorithm number the spec assigns to the key-agreement key (ECDH-ES + HKDF-256).
const COSE_ALG_ECDH_ES_HKDF_256: i64 = -25;

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
        [Self::V1, Self::V2].into_iter().find(|p| u64::from(p.number()) == n)
    }

    /// The protocol number sent to the key.
    pub fn number(self) -> u8 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
        }
    }

    /// How many bytes of HMAC-SHA-256 the protocol keeps as pinUvAuthParam.
    pub fn tag_len(self) -> usize {
        match self {
            Self::V1 => 16,
            Self::V2 => 32,
        }
    }

    /// pinUvAuthParam of `msg` under `key` (a pinUvAuthToken or a shared secret's HMAC key).
    pub fn authenticate(self, key: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(msg);
        let mut tag = mac.finalize().into_bytes().to_vec();
        tag.truncate(self.tag_len());
        tag
    }
}

/// The keys both sides derived from one ECDH exchange; never printed.
pub struct SharedSecret {
    protocol: PinProtocol,
    hmac_key: Zeroizing<[u8; 32]>,
    aes_key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedSecret({:?}, [redacted])", self.protocol)
    }
}

impl SharedSecret {
    /// Derives the protocol's keys from the ECDH x-coordinate `z`.
    pub fn from_ecdh_x(protocol: PinProtocol, z: &[u8]) -> Self {
        let mut hmac_key = Zeroizing::new([0u8; 32]);
        let mut aes_key = Zeroizing::new([0u8; 32]);
        match protocol {
            PinProtocol::V1 => {
                let k: [u8; 32] = Sha256::digest(z).into();
                hmac_key.copy_from_slice(&k);
                aes_key.copy_from_slice(&k);
            }
            PinProtocol::V2 => {
                let prk = Hkdf::<Sha256>::new(Some(&[0u8; 32]), z);
                prk.expand(b"CTAP2 HMAC key", hmac_key.as_mut()).expect("32 bytes is a valid HKDF length");
                prk.expand(b"CTAP2 AES key", aes_key.as_mut()).expect("32 bytes is a valid HKDF length");
            }
        }
        Self { protocol, hmac_key, aes_key }
    }

    /// The protocol these keys belong to.
    pub fn protocol(&self) -> PinProtocol {
        self.protocol
    }

    /// AES-256-CBC encryption of whole blocks; protocol 2 puts its random IV in front.
    ///
    /// Panics if `plain` is not a multiple of 16 bytes (a programming error here).
    pub fn encrypt(&self, plain: &[u8]) -> Vec<u8> {
        assert_eq!(plain.len() % BLOCK, 0, "CTAP plaintexts are whole AES blocks");
        let mut iv = [0u8; BLOCK];
        if self.protocol == PinProtocol::V2 {
            rand::thread_rng().fill_bytes(&mut iv);
        }
        let mut buf = Zeroizing::new(plain.to_vec());
        let enc = cbc::Encryptor::<Aes256>::new(self.aes_key.as_ref().into(), &iv.into());
        let ct = enc.encrypt_padded_mut::<NoPadding>(&mut buf, plain.len()).expect("whole blocks");
        match self.protocol {
            PinProtocol::V1 => ct.to_vec(),
            PinProtocol::V2 => [iv.as_slice(), ct].concat(),
        }
    }

    /// Reverses [`SharedSecret::encrypt`]; `None` if the length cannot be a ciphertext.
    pub fn decrypt(&self, data: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let (iv, ct) = match self.protocol {
            PinProtocol::V1 => ([0u8; BLOCK], data),
            PinProtocol::V2 => {
                let (iv, ct) = data.split_at_checked(BLOCK)?;
                (<[u8; BLOCK]>::try_from(iv).ok()?, ct)
            }
        };
        if ct.is_empty() || ct.len() % BLOCK != 0 {
            return None;
        }
        let mut buf = Zeroizing::new(ct.to_vec());
        let dec = cbc::Decryptor::<Aes256>::new(self.aes_key.as_ref().into(), &iv.into());
        let n = dec.decrypt_padded_mut::<NoPadding>(&mut buf).ok()?.len();
        buf.truncate(n);
        Some(buf)
    }

    /// pinUvAuthParam of `msg` under this secret's HMAC key.
    pub fn authenticate(&self, msg: &[u8]) -> Vec<u8> {
        self.protocol.authenticate(self.hmac_key.as_ref(), msg)
    }
}

/// The COSE_Key (EC2, P-256) of a public key with the given COSE algorithm.
pub fn cose_key(public: &PublicKey, alg: i64) -> Value {
    let point = public.to_encoded_point(false);
    let coord = |c: Option<&FieldBytes>| Value::Bytes(c.expect("uncompressed point").to_vec());
    let entries = [(1, Value::from(2)), (3, Value::from(alg)), (-1, Value::from(1))];
    let mut map: Vec<(Value, Value)> = entries.into_iter().map(|(k, v)| (Value::from(k), v)).collect();
    map.push((Value::from(-2), coord(point.x())));
    map.push((Value::from(-3), coord(point.y())));
    Value::Map(map)
}

/// Reads the key's key-agreement COSE_Key: must be EC2 (kty 2) on P-256 (crv 1).
pub fn parse_cose_key(v: &Value) -> Result<PublicKey, CtapError> {
    let bad = |what: &str| CtapError::Malformed(format!("key-agreement key: {what}"));
    let (mut kty, mut crv, mut x, mut y) = (None, None, None, None);
    for (k, val) in v.as_map().ok_or_else(|| bad("not a map"))? {
        match k.as_integer().and_then(|i| i64::try_from(i).ok()) {
            Some(1) => kty = val.as_integer().and_then(|i| i64::try_from(i).ok()),
            Some(-1) => crv = val.as_integer().and_then(|i| i64::try_from(i).ok()),
            Some(-2) => x = val.as_bytes().filter(|b| b.len() == 32),
            Some(-3) => y = val.as_bytes().filter(|b| b.len() == 32),
            _ => {}
        }
    }
    if (kty, crv) != (Some(2), Some(1)) {
        return Err(bad("not an EC2 P-256 key"));
    }
    let (x, y) = x.zip(y).ok_or_else(|| bad("coordinates missing or not 32 bytes"))?;
    let point = EncodedPoint::from_affine_coordinates(x.as_slice().into(), y.as_slice().into(), false);
    Option::from(PublicKey::from_encoded_point(&point)).ok_or_else(|| bad("point not on the curve"))
}

/// Platform half of a key agreement with `device`: our fresh public key as a COSE_Key (to
/// send as keyAgreement) and the shared secret.
pub fn agree(protocol: PinProtocol, device: &PublicKey) -> (Value, SharedSecret) {
    let ours = EphemeralSecret::random(&mut rand::rngs::OsRng);
    let z = ours.diffie_hellman(device);
    let secret = SharedSecret::from_ecdh_x(protocol, z.raw_secret_bytes());
    (cose_key(&ours.public_key(), COSE_ALG_ECDH_ES_HKDF_256), secret)
}

#[cfg(test)]
mod tests {
    use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};

    use super::*;

    fn aes_block(key: &[u8; 32], block: [u8; 16]) -> [u8; 16] {
        let mut b = block.into();
        Aes256::new(key.into()).encrypt_block(&mut b);
        b.into()
    }

    /// Protocol 1 by the spec's own definition: key = SHA-256(Z), CBC with a zero IV (so the
    /// first block is plain AES), tag = first 16 bytes of HMAC-SHA-256.
    #[test]
    fn protocol_1_matches_its_definition() {
        let z = [0x11u8; 32];
        let s = SharedSecret::from_ecdh_x(PinProtocol::V1, &z);
        let key: [u8; 32] = Sha256::digest(z).into();
        let ct = s.encrypt(&[0x42; 32]);
        assert_eq!(ct.len(), 32);
        let first = aes_block(&key, [0x42; 16]);
        assert_eq!(ct[..16], first);
        let mut second = [0x42u8; 16];
        second.iter_mut().zip(first).for_each(|(b, p)| *b ^= p);
        assert_eq!(ct[16..], aes_block(&key, second));
        let mut full = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
        full.update(b"msg");
        assert_eq!(s.authenticate(b"msg"), full.finalize().into_bytes()[..16]);
    }

    /// Protocol 2: HKDF keys, random IV in front, full 32-byte tag.
    #[test]
    fn protocol_2_matches_its_definition() {
        let z = [0x22u8; 32];
        let s = SharedSecret::from_ecdh_x(PinProtocol::V2, &z);
        let prk = Hkdf::<Sha256>::new(Some(&[0u8; 32]), &z);
        let (mut hk, mut ak) = ([0u8; 32], [0u8; 32]);
        prk.expand(b"CTAP2 HMAC key", &mut hk).unwrap();
        prk.expand(b"CTAP2 AES key", &mut ak).unwrap();
        assert_ne!(hk, ak);
        let a = s.encrypt(&[7; 16]);
        let b = s.encrypt(&[7; 16]);
        assert_eq!(a.len(), 32);
        assert_ne!(a, b, "a fresh IV each time");
        let mut block: aes::Block = <[u8; 16]>::try_from(&a[16..]).unwrap().into();
        Aes256::new((&ak).into()).decrypt_block(&mut block);
        let plain: Vec<u8> = block.iter().zip(&a[..16]).map(|(x, iv)| x ^ iv).collect();
        assert_eq!(plain, [7; 16]);
        assert_eq!(s.decrypt(&b).unwrap().as_slice(), &[7; 16]);
        let mut full = <Hmac<Sha256> as Mac>::new_from_slice(&hk).unwrap();
        full.update(b"msg");
        assert_eq!(s.authenticate(b"msg"), full.finalize().into_bytes().to_vec());
    }

    #[test]
    fn bad_ciphertext_lengths_and_keys_are_refused() {
        let s1 = SharedSecret::from_ecdh_x(PinProtocol::V1, &[1; 32]);
        let s2 = SharedSecret::from_ecdh_x(PinProtocol::V2, &[1; 32]);
        assert!(s1.decrypt(&[0; 15]).is_none());
        assert!(s2.decrypt(&[0; 16]).is_none(), "IV without ciphertext");
        assert!(s2.decrypt(&[0; 40]).is_none());
        assert!(format!("{s2:?}").contains("redacted"));
        let key = p256::SecretKey::random(&mut rand::rngs::OsRng).public_key();
        assert_eq!(parse_cose_key(&cose_key(&key, -25)).unwrap(), key);
        let Value::Map(mut m) = cose_key(&key, -25) else { unreachable!() };
        m[2].1 = Value::from(2); // crv P-384
        assert!(parse_cose_key(&Value::Map(m)).is_err());
    }
}

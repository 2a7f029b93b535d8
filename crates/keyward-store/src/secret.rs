//! Encryption of secrets at rest (the connector's client secret and certificate private key).
//!
//! AES-256-GCM (RustCrypto `aes-gcm`) under a 32-byte key that lives outside the database — in a
//! file or an environment variable — so a copy of the database alone does not reveal the Entra app
//! credentials. Each value gets a fresh random 96-bit nonce; the column name is bound in as
//! associated data so a ciphertext cannot be moved into another column. Stored form:
//! `v1:` + base64(nonce ‖ ciphertext ‖ tag).

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use zeroize::Zeroizing;

/// Problems with the secret key or an encrypted value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The key file could not be read.
    #[error(
        "cannot read the secret key file {path}: {source}; create it with 32 random bytes (e.g. `head -c32 /dev/urandom | base64 > FILE`)"
    )]
    ReadFile {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The environment variable is not set.
    #[error("environment variable {0} is not set; set it to 32 random bytes in base64 or hex")]
    MissingEnv(String),
    /// The key material is not 32 bytes in raw, base64 or hex form.
    #[error(
        "the secret key must be 32 bytes (raw, base64 or 64 hex digits); generate one with `head -c32 /dev/urandom | base64`"
    )]
    BadKey,
    /// Decryption failed: wrong key or altered value.
    #[error(
        "cannot decrypt the stored {0}: the secret key differs from the one it was saved with, or the value was altered; restore the original key or enter the secret again"
    )]
    Decrypt(String),
}

/// The 32-byte key that encrypts secrets stored in the database. Never printed.
pub struct SecretKey(SecretBox<[u8; 32]>);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

impl SecretKey {
    /// A key from 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(SecretBox::new(Box::new(bytes)))
    }

    /// A new random key (for tests and first-start setup).
    pub fn generate() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(k.as_mut());
        Self::from_bytes(*k)
    }

    /// Writes the key as base64 text to a new file that only its owner can read; fails if the
    /// file exists (a key is never overwritten: data encrypted under it would be lost).
    pub fn write_new_file(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path)?;
        let text = Zeroizing::new(B64.encode(self.0.expose_secret()));
        file.write_all(text.as_bytes())?;
        file.sync_all()
    }

    /// Reads the key from a file holding 32 raw bytes, or base64 or hex text.
    pub fn from_file(path: &Path) -> Result<Self, SecretError> {
        let data = Zeroizing::new(
            std::fs::read(path)
                .map_err(|source| SecretError::ReadFile { path: path.display().to_string(), source })?,
        );
        if data.len() == 32 {
            let mut k = [0u8; 32];
            k.copy_from_slice(&data);
            return Ok(Self::from_bytes(k));
        }
        let text = std::str::from_utf8(&data).map_err(|_| SecretError::BadKey)?;
        Self::from_text(text)
    }

    /// Reads the key from environment variable `var` (base64 or hex text).
    pub fn from_env(var: &str) -> Result<Self, SecretError> {
        let value = Zeroizing::new(std::env::var(var).map_err(|_| SecretError::MissingEnv(var.to_owned()))?);
        Self::from_text(&value)
    }

    /// Parses base64 (standard alphabet) or hex text of 32 bytes.
    pub fn from_text(text: &str) -> Result<Self, SecretError> {
        let t = text.trim();
        let bytes = Zeroizing::new(if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(t).map_err(|_| SecretError::BadKey)?
        } else {
            B64.decode(t).map_err(|_| SecretError::BadKey)?
        });
        let k: [u8; 32] = bytes.as_slice().try_into().map_err(|_| SecretError::BadKey)?;
        Ok(Self::from_bytes(k))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&(*self.0.expose_secret()).into())
    }

    /// Encrypts `plain` for the column `column`.
    pub fn encrypt(&self, column: &str, plain: &SecretString) -> String {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload { msg: plain.expose_secret().as_bytes(), aad: column.as_bytes() },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        format!("v1:{}", B64.encode(out))
    }

    /// Decrypts a value stored by [`SecretKey::encrypt`] for the same column.
    pub fn decrypt(&self, column: &str, stored: &str) -> Result<SecretString, SecretError> {
        let err = || SecretError::Decrypt(column.to_owned());
        let raw = B64.decode(stored.strip_prefix("v1:").ok_or_else(err)?).map_err(|_| err())?;
        if raw.len() < 12 + 16 {
            return Err(err());
        }
        let (nonce, ct) = raw.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| err())?;
        let plain = Zeroizing::new(
            self.cipher()
                .decrypt(&Nonce::from(nonce), Payload { msg: ct, aad: column.as_bytes() })
                .map_err(|_| err())?,
        );
        let s = String::from_utf8(plain.to_vec()).map_err(|_| err())?;
        Ok(SecretString::from(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_column_binding() {
        let key = SecretKey::generate();
        let stored = key.encrypt("client_secret", &SecretString::from("s3cr3t-value"));
        assert!(!stored.contains("s3cr3t"));
        assert_eq!(key.decrypt("client_secret", &stored).unwrap().expose_secret(), "s3cr3t-value");
        assert!(matches!(key.decrypt("private_key", &stored), Err(SecretError::Decrypt(_))));
        assert!(SecretKey::generate().decrypt("client_secret", &stored).is_err());
        let again = key.encrypt("client_secret", &SecretString::from("s3cr3t-value"));
        assert_ne!(stored, again, "fresh nonce each time");
    }

    #[test]
    fn key_text_forms() {
        let b64 = B64.encode([7u8; 32]);
        let hexed = hex::encode([7u8; 32]);
        let a = SecretKey::from_text(&format!("{b64}\n")).unwrap();
        let b = SecretKey::from_text(&hexed).unwrap();
        let stored = a.encrypt("c", &SecretString::from("x"));
        assert_eq!(b.decrypt("c", &stored).unwrap().expose_secret(), "x");
        assert!(matches!(SecretKey::from_text("c2hvcnQ="), Err(SecretError::BadKey)));
        assert_eq!(format!("{a:?}"), "SecretKey([redacted])");
    }

    #[test]
    fn key_from_file_and_env() {
        let dir = std::env::temp_dir().join(format!("kw-key-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let raw = dir.join("raw");
        std::fs::write(&raw, [9u8; 32]).unwrap();
        let from_raw = SecretKey::from_file(&raw).unwrap();
        let txt = dir.join("txt");
        std::fs::write(&txt, B64.encode([9u8; 32])).unwrap();
        let from_txt = SecretKey::from_file(&txt).unwrap();
        let stored = from_raw.encrypt("c", &SecretString::from("y"));
        assert_eq!(from_txt.decrypt("c", &stored).unwrap().expose_secret(), "y");
        assert!(matches!(SecretKey::from_file(&dir.join("missing")), Err(SecretError::ReadFile { .. })));
        assert!(matches!(
            SecretKey::from_env("KEYWARD_TEST_SURELY_UNSET_VAR"),
            Err(SecretError::MissingEnv(_))
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }
}

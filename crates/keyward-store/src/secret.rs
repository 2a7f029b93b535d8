//! The server's secret key: its file format, the subkeys derived from it, and the encryption of
//! secrets at rest (the connector's client secret and certificate private key).
//!
//! **Key file.** A text file of three lines:
//!
//! ```text
//! keyward-secret-key v1
//! id: 5f0c2a91d3b7e846
//! key: <base64 of 32 random bytes>
//! ```
//!
//! The first line makes the format explicit. Earlier releases read a file of 32 bytes as the raw
//! key, so a 32-character passphrase typed into the file became the key itself, with a fraction
//! of the entropy; now only this format, and the base64 or hex text of 32 bytes that earlier
//! releases *wrote*, are read (the latter with a warning advising `keyward admin rotate-key`,
//! which writes this format). The `id` is derived from the key (the first 8 bytes of an
//! HKDF-SHA256 output under its own label, in hex), so a legacy file and `KEYWARD_SECRET_KEY`
//! have one too; the file's line is checked against it, catching a key pasted from another file.
//! The file must be readable by its owner only: the server refuses it otherwise.
//!
//! **Subkeys.** The file's key is never used directly: HKDF-SHA256 (RustCrypto `hkdf`) derives
//! one subkey per purpose under distinct labels — encrypting secrets, sealing the audit chain
//! (HMAC), signing audit anchors — so a weakness in one use says nothing about the others.
//!
//! **Ciphertexts.** AES-256-GCM (RustCrypto `aes-gcm`) with a fresh random 96-bit nonce, stored as
//! `v2:<key id>:` + base64(nonce ‖ ciphertext ‖ tag). The caller gives the associated data: for
//! the connector it binds the whole settings row (see [`crate::connector`]), so a value moved to
//! another column or row, or a row whose URLs were edited in the database, does not decrypt. The
//! key id says which key sealed a value, so a wrong key is named as such. Values of the first
//! release (`v1:`, encrypted under the raw key with only the column name bound) still decrypt
//! and are rewritten as `v2` at the next save or key rotation.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use keyward_core::audit::MacKey;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use zeroize::Zeroizing;

/// The first line of a key file.
pub const KEY_FILE_HEADER: &str = "keyward-secret-key v1";

/// HKDF labels, one per purpose.
const LABEL_ID: &[u8] = b"keyward key id v1";
const LABEL_SECRETS: &[u8] = b"keyward secrets encryption v1";
const LABEL_AUDIT_CHAIN: &[u8] = b"keyward audit chain hmac v1";
const LABEL_AUDIT_ANCHOR: &[u8] = b"keyward audit anchor hmac v1";

/// Problems with the secret key or an encrypted value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The key file could not be read.
    #[error(
        "cannot read the secret key file {path}: {source}; a new server creates it on first start, or restore it from your backup"
    )]
    ReadFile {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file can be read by group or others.
    #[error(
        "the secret key file {path} can be read by other users (mode {mode:04o}); run `chmod 600 {path}` and make sure only the server's user owns it"
    )]
    LoosePermissions {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The environment variable is not set.
    #[error("environment variable {0} is not set; set it to 32 random bytes in base64 or hex")]
    MissingEnv(String),
    /// The key material is not in a format Keyward reads.
    #[error(
        "the secret key is not in a format Keyward reads: {0}; a key file starts with the line `keyward-secret-key v1` (a server writes one on first start)"
    )]
    BadKey(String),
    /// A stored value was sealed under another key.
    #[error(
        "the stored {column} was encrypted under secret key {stored}, but this server's key is {ours}; use the key file it was saved with (after an interrupted `keyward admin rotate-key`, the new key is in the key file's `.new` copy) or enter the secret again"
    )]
    WrongKey {
        /// The column.
        column: String,
        /// The key id in the value.
        stored: String,
        /// This server's key id.
        ours: String,
    },
    /// Decryption failed: the value or the row it is bound to was altered.
    #[error(
        "cannot decrypt the stored {0}: the value or the connector settings it is bound to (tenant, client id, URLs, authentication mode) were changed outside Keyward, or the key differs; restore the original key or enter the connector settings and secret again"
    )]
    Decrypt(String),
}

/// The server's 32-byte secret key, from which the subkeys are derived. Never printed.
pub struct SecretKey {
    key: SecretBox<[u8; 32]>,
    id: String,
    /// Read from a file in the format of earlier releases (plain base64 or hex).
    legacy: bool,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({}, [redacted])", self.id)
    }
}

impl SecretKey {
    /// A key from 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let key = SecretBox::new(Box::new(bytes));
        let id = hex::encode(&derive(key.expose_secret(), LABEL_ID)[..8]);
        Self { key, id, legacy: false }
    }

    /// A new random key (for tests, first start and rotation).
    pub fn generate() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(k.as_mut());
        Self::from_bytes(*k)
    }

    /// The key's id (16 hex digits, derived from the key): named in ciphertexts, audit hashes and
    /// anchors.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the key came from a file in the format of earlier releases.
    pub fn is_legacy_file(&self) -> bool {
        self.legacy
    }

    /// The HMAC key that seals the audit chain.
    pub fn audit_mac_key(&self) -> MacKey {
        MacKey::new(self.id.clone(), *derive(self.key.expose_secret(), LABEL_AUDIT_CHAIN))
    }

    /// The HMAC key that signs audit anchors.
    pub fn anchor_mac_key(&self) -> MacKey {
        MacKey::new(self.id.clone(), *derive(self.key.expose_secret(), LABEL_AUDIT_ANCHOR))
    }

    /// The key file's text (see the module doc).
    fn file_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{KEY_FILE_HEADER}\nid: {}\nkey: {}\n",
            self.id,
            B64.encode(self.key.expose_secret())
        ))
    }

    /// Writes the key to a new file that only its owner can read; fails if the file exists (a key
    /// is never overwritten: data encrypted under it would be lost).
    pub fn write_new_file(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path)?;
        file.write_all(self.file_text().as_bytes())?;
        file.sync_all()
    }

    /// Reads the key from a file (see the module doc for the format), refusing a file that group
    /// or others can read. A file in the earlier format is read with a warning.
    pub fn from_file(path: &Path) -> Result<Self, SecretError> {
        let shown = || path.display().to_string();
        let read_err = |source| SecretError::ReadFile { path: shown(), source };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).map_err(read_err)?.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(SecretError::LoosePermissions { path: shown(), mode });
            }
        }
        let data = Zeroizing::new(std::fs::read(path).map_err(read_err)?);
        let text = std::str::from_utf8(&data).map_err(|_| {
            SecretError::BadKey("the file is not text (a raw 32-byte key is no longer read)".into())
        })?;
        if text.lines().next().map(str::trim) == Some(KEY_FILE_HEADER) {
            return Self::parse_file(text);
        }
        let mut key = Self::from_text(text)?;
        key.legacy = true;
        tracing::warn!(
            path = %path.display(),
            "the secret key file is in the old format (no `keyward-secret-key v1` header); run `keyward admin rotate-key` to replace it"
        );
        Ok(key)
    }

    /// Parses the text of a key file in the current format.
    fn parse_file(text: &str) -> Result<Self, SecretError> {
        let mut id = None;
        let mut key = None;
        for line in text.lines().skip(1).map(str::trim).filter(|l| !l.is_empty()) {
            match line.split_once(':').map(|(k, v)| (k.trim(), v.trim())) {
                Some(("id", v)) => id = Some(v.to_owned()),
                Some(("key", v)) => key = Some(Zeroizing::new(v.to_owned())),
                _ => return Err(SecretError::BadKey("a line is neither `id: …` nor `key: …`".into())),
            }
        }
        let key = key.ok_or_else(|| SecretError::BadKey("the `key:` line is missing".into()))?;
        let bytes = Zeroizing::new(
            B64.decode(key.as_str()).map_err(|_| SecretError::BadKey("the key is not base64".into()))?,
        );
        let k: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| SecretError::BadKey(format!("the key is {} bytes, not 32", bytes.len())))?;
        let parsed = Self::from_bytes(k);
        match id {
            Some(id) if id == parsed.id => Ok(parsed),
            Some(id) => Err(SecretError::BadKey(format!(
                "the file says id {id} but its key has id {}; the lines come from different files",
                parsed.id
            ))),
            None => Err(SecretError::BadKey("the `id:` line is missing".into())),
        }
    }

    /// Reads the key from environment variable `var` (base64 or hex text of 32 bytes).
    pub fn from_env(var: &str) -> Result<Self, SecretError> {
        let value = Zeroizing::new(std::env::var(var).map_err(|_| SecretError::MissingEnv(var.to_owned()))?);
        Self::from_text(&value)
    }

    /// Parses base64 (standard alphabet) or hex text of 32 bytes.
    pub fn from_text(text: &str) -> Result<Self, SecretError> {
        let bad = || SecretError::BadKey("expected 32 bytes as base64 or as 64 hex digits".into());
        let t = text.trim();
        let bytes = Zeroizing::new(if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(t).map_err(|_| bad())?
        } else {
            B64.decode(t).map_err(|_| bad())?
        });
        let k: [u8; 32] = bytes.as_slice().try_into().map_err(|_| bad())?;
        Ok(Self::from_bytes(k))
    }

    /// Encrypts `plain` bound to `aad` (which the caller gives again to decrypt).
    pub fn encrypt(&self, aad: &[u8], plain: &SecretString) -> String {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let cipher = Aes256Gcm::new(&(*derive(self.key.expose_secret(), LABEL_SECRETS)).into());
        let ct = cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: plain.expose_secret().as_bytes(), aad })
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        format!("v2:{}:{}", self.id, B64.encode(out))
    }

    /// Decrypts a value stored for `column`: a `v2` value bound to `aad`, or a `v1` value of the
    /// first release (bound to the column name only, under the raw key).
    pub fn decrypt(&self, column: &str, aad: &[u8], stored: &str) -> Result<SecretString, SecretError> {
        let err = || SecretError::Decrypt(column.to_owned());
        let (key, aad, body) = if let Some(rest) = stored.strip_prefix("v2:") {
            let (id, body) = rest.split_once(':').ok_or_else(err)?;
            if id != self.id {
                return Err(SecretError::WrongKey {
                    column: column.to_owned(),
                    stored: id.to_owned(),
                    ours: self.id.clone(),
                });
            }
            (derive(self.key.expose_secret(), LABEL_SECRETS), aad, body)
        } else if let Some(body) = stored.strip_prefix("v1:") {
            (Zeroizing::new(*self.key.expose_secret()), column.as_bytes(), body)
        } else {
            return Err(err());
        };
        let raw = B64.decode(body).map_err(|_| err())?;
        if raw.len() < 12 + 16 {
            return Err(err());
        }
        let (nonce, ct) = raw.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| err())?;
        let plain = Zeroizing::new(
            Aes256Gcm::new(&(*key).into())
                .decrypt(&Nonce::from(nonce), Payload { msg: ct, aad })
                .map_err(|_| err())?,
        );
        let s = String::from_utf8(plain.to_vec()).map_err(|_| err())?;
        Ok(SecretString::from(s))
    }

    /// The keys kept beside the key file `path` after rotations (`<file>.old-<id>`), for
    /// verifying audit events sealed before; unreadable ones are skipped with a warning.
    pub fn older_keys(path: &Path) -> Vec<SecretKey> {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
            return Vec::new();
        };
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        let prefix = format!("{name}.old-");
        let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
        let mut keys = Vec::new();
        for entry in entries.flatten() {
            if entry.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)) {
                match SecretKey::from_file(&entry.path()) {
                    Ok(k) => keys.push(k),
                    Err(e) => tracing::warn!(path = %entry.path().display(), "skipping an old key file: {e}"),
                }
            }
        }
        keys
    }
}

/// HKDF-SHA256 of `key` (no salt: the input is already uniformly random) for `label`.
fn derive(key: &[u8; 32], label: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    hkdf::Hkdf::<sha2::Sha256>::new(None, key)
        .expand(label, out.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

#[cfg(test)]
#[path = "secret_tests.rs"]
mod tests;

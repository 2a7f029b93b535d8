//! The soft key's state file: the whole device (credentials with their private keys, PIN hash,
//! retries, policy flags, AAGUID, attestation key and chain, signature counters) encrypted
//! under a passphrase, so the soft key is a device-bound passkey vault that survives restarts.
//!
//! Format (version 1), all integers big-endian:
//! `"KWSOFTKY" ‖ version u8 ‖ kdf u8 (1 = Argon2id v19) ‖ m_cost u32 (KiB) ‖ t_cost u32 ‖
//! p_cost u32 ‖ salt[16] ‖ verifier[32] ‖ nonce[12] ‖ AES-256-GCM(ciphertext ‖ tag)`, with the
//! whole header as associated data. Argon2id stretches the passphrase into 64 bytes: the first
//! 32 are the AES key, the last 32 are stored as the verifier. The verifier is what lets us tell
//! "wrong passphrase" (verifier differs) from "file damaged" (verifier matches, tag fails);
//! GCM alone cannot tell the two apart. The plaintext is CBOR (ciborium + serde).
//!
//! Saves are atomic (temporary file in the same directory, fsync, rename, fsync of the
//! directory) so a crash leaves either the old or the new state, never half a file. The
//! temporary file has an unpredictable name and is created exclusively (`O_CREAT|O_EXCL`
//! through [`OpenOptions::create_new`]): whoever else can write the directory cannot make the
//! save write through a symlink or into a file they opened beforehand. `O_EXCL` already refuses
//! a symlink at the path (POSIX: it fails with EEXIST "regardless of the contents of the
//! symbolic link"), so `O_NOFOLLOW`, which would need `libc` for its value, adds nothing. Only state
//! a power cycle keeps is saved: tokens, key agreement keys and consecutive-mismatch counts are
//! volatile on a real key too, so a restart behaves like re-inserting the key.
//!
//! We use RustCrypto's `argon2` and `aes-gcm` rather than an `age`-style container crate: the
//! format must hold a verifier and fixed KDF parameters we control, and it is a few lines.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::{Algorithm, Argon2, Params, Version};
use p256::ecdsa::SigningKey;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::authenticator::{Attestation, Authenticator, Config, Credential};

const MAGIC: &[u8; 8] = b"KWSOFTKY";
/// The state file format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
const KDF_ARGON2ID: u8 = 1;
const SALT_LEN: usize = 16;
const VERIFIER_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const PARAMS_AT: usize = MAGIC.len() + 2;
const SALT_AT: usize = PARAMS_AT + 12;
const VERIFIER_AT: usize = SALT_AT + SALT_LEN;
const NONCE_AT: usize = VERIFIER_AT + VERIFIER_LEN;
const HEADER_LEN: usize = NONCE_AT + NONCE_LEN;
const TAG_LEN: usize = 16;
/// Largest Argon2 memory cost accepted from a file (1 GiB), so a crafted file cannot exhaust RAM.
const MAX_M_COST_KIB: u32 = 1 << 20;
const MAX_T_COST: u32 = 64;
/// Argon2 memory cost of new state files (64 MiB).
pub const MIN_NEW_M_COST_KIB: u32 = 64 * 1024;
/// Attempts at a fresh temporary name before a save gives up.
const TEMP_ATTEMPTS: usize = 4;

/// Argon2id cost parameters for a new state file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Parallelism.
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// RFC 9106's second recommended setting (64 MiB, 3 passes, 4 lanes): the file holds every
    /// private key of the device, so it gets more than a password hash would (OWASP's 19 MiB).
    /// Files written with other parameters keep theirs; they are read from the header.
    fn default() -> Self {
        Self { m_cost_kib: MIN_NEW_M_COST_KIB, t_cost: 3, p_cost: 4 }
    }
}

/// Why the state file could not be read, decrypted or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// No file at the path.
    #[error("no soft key state file at {0}; create one with --init")]
    Missing(PathBuf),
    /// --init on a path that already holds a file.
    #[error("{0} already exists; drop --init to open it, or move it away to start a new key")]
    Exists(PathBuf),
    /// The file could not be read.
    #[error("cannot read the soft key state {path}: {reason}; check the path and its permissions")]
    Read {
        /// The state file.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// The file does not start with the state file magic.
    #[error("{0} is not a Keyward soft key state file; check the --state path")]
    NotStateFile(PathBuf),
    /// The file was written by a newer format.
    #[error("{path} uses state format version {version}, newer than this Keyward knows; upgrade keyward")]
    Version {
        /// The state file.
        path: PathBuf,
        /// The version found.
        version: u8,
    },
    /// The passphrase does not open the file.
    #[error(
        "wrong passphrase for the soft key state {0}; check KEYWARD_SOFTKEY_PASSPHRASE or retype it \
         (the file was not changed)"
    )]
    WrongPassphrase(PathBuf),
    /// The file is truncated or was modified.
    #[error(
        "the soft key state {path} is damaged ({detail}); restore it from a backup, or start a new \
         key with --init on another path (its passkeys are then lost)"
    )]
    Corrupt {
        /// The state file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The file could not be written.
    #[error("cannot save the soft key state {path}: {reason}; check free space and permissions")]
    Write {
        /// The state file.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// The passphrase is empty.
    #[error("the soft key passphrase is empty; set KEYWARD_SOFTKEY_PASSPHRASE or type a passphrase")]
    EmptyPassphrase,
}

#[derive(Serialize, Deserialize)]
enum SavedAttestation {
    None,
    SelfSigned,
    Packed { key: Vec<u8>, x5c: Vec<Vec<u8>> },
}

impl Drop for SavedAttestation {
    fn drop(&mut self) {
        if let Self::Packed { key, .. } = self {
            key.zeroize();
        }
    }
}

#[derive(Serialize, Deserialize)]
struct SavedCredential {
    id: Vec<u8>,
    rp_id: String,
    user_id: Vec<u8>,
    user_name: Option<String>,
    user_display_name: Option<String>,
    key: Vec<u8>,
    discoverable: bool,
    cred_protect: u8,
    cred_random: Option<[u8; 32]>,
    sign_count: u32,
}

impl Drop for SavedCredential {
    fn drop(&mut self) {
        self.key.zeroize();
        self.cred_random.zeroize();
    }
}

/// Everything a power cycle keeps.
#[derive(Serialize, Deserialize)]
struct DeviceState {
    aaguid: [u8; 16],
    attestation: SavedAttestation,
    max_resident_keys: u64,
    min_pin_length: u8,
    factory_min_pin_length: u8,
    always_uv: bool,
    force_pin_change: bool,
    enterprise_attestation: bool,
    min_pin_length_rp_ids: Vec<String>,
    pin_hash: Option<[u8; 16]>,
    pin_length: u8,
    pin_retries: u8,
    credentials: Vec<SavedCredential>,
}

impl Drop for DeviceState {
    fn drop(&mut self) {
        self.pin_hash.zeroize();
    }
}

fn snapshot(a: &Authenticator, factory_min_pin_length: u8) -> Zeroizing<Vec<u8>> {
    let state = DeviceState {
        aaguid: a.config.aaguid,
        attestation: match &a.config.attestation {
            Attestation::None => SavedAttestation::None,
            Attestation::SelfSigned => SavedAttestation::SelfSigned,
            Attestation::Packed { key, x5c } => {
                SavedAttestation::Packed { key: key.to_bytes().to_vec(), x5c: x5c.clone() }
            }
        },
        max_resident_keys: a.config.max_resident_keys as u64,
        min_pin_length: a.config.min_pin_length,
        factory_min_pin_length,
        always_uv: a.config.always_uv,
        force_pin_change: a.config.force_pin_change,
        enterprise_attestation: a.enterprise_attestation,
        min_pin_length_rp_ids: a.min_pin_length_rp_ids.clone(),
        pin_hash: a.pin_hash,
        pin_length: a.pin_length,
        pin_retries: a.pin_retries,
        credentials: a
            .credentials
            .iter()
            .map(|c| SavedCredential {
                id: c.id.clone(),
                rp_id: c.rp_id.clone(),
                user_id: c.user_id.clone(),
                user_name: c.user_name.clone(),
                user_display_name: c.user_display_name.clone(),
                key: c.key.to_bytes().to_vec(),
                discoverable: c.discoverable,
                cred_protect: c.cred_protect,
                cred_random: c.cred_random,
                sign_count: c.sign_count,
            })
            .collect(),
    };
    let mut out = Zeroizing::new(Vec::new());
    ciborium::ser::into_writer(&state, &mut *out).expect("CBOR into a Vec cannot fail");
    out
}

fn signing_key(bytes: &[u8]) -> Result<SigningKey, String> {
    SigningKey::from_slice(bytes).map_err(|_| "a stored private key is not a P-256 scalar".to_owned())
}

/// Rebuilds the authenticator; `base` supplies what is not device state (touch policy, reset
/// window). Returns the factory minimum PIN length too.
fn restore(plain: &[u8], base: Config) -> Result<(Authenticator, u8), String> {
    let state: DeviceState =
        ciborium::de::from_reader(plain).map_err(|e| format!("contents do not decode: {e}"))?;
    let attestation = match &state.attestation {
        SavedAttestation::None => Attestation::None,
        SavedAttestation::SelfSigned => Attestation::SelfSigned,
        SavedAttestation::Packed { key, x5c } => {
            Attestation::Packed { key: signing_key(key)?, x5c: x5c.clone() }
        }
    };
    let config = Config {
        aaguid: state.aaguid,
        attestation,
        max_resident_keys: usize::try_from(state.max_resident_keys).map_err(|e| e.to_string())?,
        min_pin_length: state.factory_min_pin_length,
        always_uv: state.always_uv,
        force_pin_change: state.force_pin_change,
        ..base
    };
    let mut a = Authenticator::new(config);
    a.config.min_pin_length = state.min_pin_length;
    a.enterprise_attestation = state.enterprise_attestation;
    a.min_pin_length_rp_ids = state.min_pin_length_rp_ids.clone();
    a.pin_hash = state.pin_hash;
    a.pin_length = state.pin_length;
    a.pin_retries = state.pin_retries;
    a.credentials = state
        .credentials
        .iter()
        .map(|c| {
            Ok(Credential {
                id: c.id.clone(),
                rp_id: c.rp_id.clone(),
                user_id: c.user_id.clone(),
                user_name: c.user_name.clone(),
                user_display_name: c.user_display_name.clone(),
                key: signing_key(&c.key)?,
                discoverable: c.discoverable,
                cred_protect: c.cred_protect,
                cred_random: c.cred_random,
                sign_count: c.sign_count,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok((a, state.factory_min_pin_length))
}

/// Derives (AES key, verifier) from the passphrase.
fn derive(
    passphrase: &SecretString,
    salt: &[u8],
    params: KdfParams,
) -> Result<(Zeroizing<[u8; 32]>, [u8; 32]), String> {
    let p =
        Params::new(params.m_cost_kib, params.t_cost, params.p_cost, Some(64)).map_err(|e| e.to_string())?;
    let mut out = Zeroizing::new([0u8; 64]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, p)
        .hash_password_into(passphrase.expose_secret().as_bytes(), salt, &mut *out)
        .map_err(|e| e.to_string())?;
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&out[..32]);
    let mut verifier = [0u8; 32];
    verifier.copy_from_slice(&out[32..]);
    Ok((key, verifier))
}

/// A fresh, unpredictable temporary path next to `path` (`.NAME.<64 random bits>.tmp`).
fn temp_path(dir: &Path, path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dir.join(format!(".{name}.{:016x}.tmp", rand::rngs::OsRng.next_u64()))
}

/// Creates `path` for writing, owner-only, failing if anything (a file, a symlink) is there.
fn create_exclusive(path: &Path) -> std::io::Result<fs::File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new content.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let (tmp, mut f) = {
        let mut attempt = 1;
        loop {
            let tmp = temp_path(dir, path);
            match create_exclusive(&tmp) {
                Ok(f) => break (tmp, f),
                // Someone planted this name: take another rather than touch theirs.
                Err(e) if e.kind() == ErrorKind::AlreadyExists && attempt < TEMP_ATTEMPTS => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    };
    let result = (|| {
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

impl Authenticator {
    /// The AAGUID this key reports (part of the identity a state file fixes).
    pub fn device_aaguid(&self) -> [u8; 16] {
        self.config.aaguid
    }
}

/// An open, unlocked state file; saves the authenticator whenever its persistent state changed.
pub struct StateFile {
    path: PathBuf,
    key: Zeroizing<[u8; 32]>,
    header: [u8; NONCE_AT],
    factory_min_pin_length: u8,
    last_saved: Mutex<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for StateFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StateFile({}, key redacted)", self.path.display())
    }
}

impl StateFile {
    /// Creates a new state file at `path` holding `authenticator` (refuses to replace a file).
    pub fn create(
        path: &Path,
        passphrase: &SecretString,
        params: KdfParams,
        authenticator: &Authenticator,
    ) -> Result<Self, StateError> {
        if passphrase.expose_secret().is_empty() {
            return Err(StateError::EmptyPassphrase);
        }
        if path.exists() {
            return Err(StateError::Exists(path.to_owned()));
        }
        let mut salt = [0u8; SALT_LEN];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let (key, verifier) = derive(passphrase, &salt, params)
            .map_err(|detail| StateError::Corrupt { path: path.to_owned(), detail })?;
        let mut header = [0u8; NONCE_AT];
        header[..MAGIC.len()].copy_from_slice(MAGIC);
        header[MAGIC.len()] = FORMAT_VERSION;
        header[MAGIC.len() + 1] = KDF_ARGON2ID;
        header[PARAMS_AT..PARAMS_AT + 4].copy_from_slice(&params.m_cost_kib.to_be_bytes());
        header[PARAMS_AT + 4..PARAMS_AT + 8].copy_from_slice(&params.t_cost.to_be_bytes());
        header[PARAMS_AT + 8..SALT_AT].copy_from_slice(&params.p_cost.to_be_bytes());
        header[SALT_AT..VERIFIER_AT].copy_from_slice(&salt);
        header[VERIFIER_AT..NONCE_AT].copy_from_slice(&verifier);
        let file = Self {
            path: path.to_owned(),
            key,
            header,
            factory_min_pin_length: authenticator.config.min_pin_length,
            last_saved: Mutex::new(Zeroizing::new(Vec::new())),
        };
        file.save(authenticator)?;
        Ok(file)
    }

    /// Opens and decrypts the state file; `base` supplies the settings that are not device state.
    pub fn open(
        path: &Path,
        passphrase: &SecretString,
        base: Config,
    ) -> Result<(Self, Authenticator), StateError> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(StateError::Missing(path.to_owned())),
            Err(e) => return Err(StateError::Read { path: path.to_owned(), reason: e.to_string() }),
        };
        let corrupt = |detail: &str| StateError::Corrupt { path: path.to_owned(), detail: detail.to_owned() };
        let magic_len = bytes.len().min(MAGIC.len());
        if bytes[..magic_len] != MAGIC[..magic_len] {
            return Err(StateError::NotStateFile(path.to_owned()));
        }
        if bytes.len() <= MAGIC.len() {
            return Err(corrupt("the file is truncated"));
        }
        let version = bytes[MAGIC.len()];
        if version != FORMAT_VERSION {
            return Err(StateError::Version { path: path.to_owned(), version });
        }
        if bytes.len() < HEADER_LEN + TAG_LEN {
            return Err(corrupt("the file is truncated"));
        }
        if bytes[MAGIC.len() + 1] != KDF_ARGON2ID {
            return Err(corrupt("unknown key derivation"));
        }
        let u32_at = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
        let params = KdfParams {
            m_cost_kib: u32_at(PARAMS_AT),
            t_cost: u32_at(PARAMS_AT + 4),
            p_cost: u32_at(PARAMS_AT + 8),
        };
        if params.m_cost_kib > MAX_M_COST_KIB || params.t_cost > MAX_T_COST || params.p_cost > 16 {
            return Err(corrupt("key derivation parameters out of range"));
        }
        let (key, verifier) =
            derive(passphrase, &bytes[SALT_AT..VERIFIER_AT], params).map_err(|e| corrupt(&e))?;
        if verifier[..] != bytes[VERIFIER_AT..NONCE_AT] {
            return Err(StateError::WrongPassphrase(path.to_owned()));
        }
        let cipher = Aes256Gcm::new_from_slice(&key[..]).expect("32-byte key");
        let plain = cipher
            .decrypt(
                &Nonce::from(<[u8; NONCE_LEN]>::try_from(&bytes[NONCE_AT..HEADER_LEN]).expect("12 bytes")),
                Payload { msg: &bytes[HEADER_LEN..], aad: &bytes[..HEADER_LEN] },
            )
            .map(Zeroizing::new)
            .map_err(|_| corrupt("the contents fail their integrity check: truncated or modified"))?;
        let (authenticator, factory_min_pin_length) = restore(&plain, base).map_err(|e| corrupt(&e))?;
        let mut header = [0u8; NONCE_AT];
        header.copy_from_slice(&bytes[..NONCE_AT]);
        let file = Self {
            path: path.to_owned(),
            key,
            header,
            factory_min_pin_length,
            last_saved: Mutex::new(snapshot(&authenticator, factory_min_pin_length)),
        };
        Ok((file, authenticator))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Saves the authenticator if its persistent state changed since the last save; returns
    /// whether it wrote.
    pub fn save(&self, authenticator: &Authenticator) -> Result<bool, StateError> {
        let plain = snapshot(authenticator, self.factory_min_pin_length);
        let mut last = self.last_saved.lock().unwrap_or_else(|e| e.into_inner());
        if !last.is_empty() && **last == *plain {
            return Ok(false);
        }
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(HEADER_LEN + plain.len() + TAG_LEN);
        out.extend_from_slice(&self.header);
        out.extend_from_slice(&nonce);
        let cipher = Aes256Gcm::new_from_slice(&self.key[..]).expect("32-byte key");
        let sealed = cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: &plain, aad: &out })
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        out.extend_from_slice(&sealed);
        write_atomically(&self.path, &out)
            .map_err(|e| StateError::Write { path: self.path.clone(), reason: e.to_string() })?;
        *last = plain;
        Ok(true)
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;

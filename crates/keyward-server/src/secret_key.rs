//! The server's secret key at start and at rotation: where it comes from, the data directory it
//! lives in, and the audit keys derived from it.
//!
//! The key comes from `KEYWARD_SECRET_KEY` when set, else from the key file (default
//! `<data dir>/secret.key`), which the first start creates (format and subkeys: see
//! `keyward_store::secret`). The data directory is created for the owner only (0700); a key file
//! others can read is refused. Key files kept by `keyward admin rotate-key` beside the key file
//! (`<file>.old-<id>`) are read too: audit events and anchors sealed under them still verify.
//!
//! **Rotation**, in an order that never loses the key the database needs: the new key is written
//! to `<file>.new`; the stored secrets are re-encrypted under it in one transaction (with its
//! audit event); the old file is kept as `<file>.old-<id>` (0600); then `<file>.new` is renamed
//! over the key file. A crash before the commit leaves the old key in force (delete
//! `<file>.new`); a crash after it leaves the new key in `<file>.new`, which the decryption error
//! names.

use std::path::{Path, PathBuf};

use keyward_core::audit::{MacKey, MacKeys};
use keyward_store::audit::AuditKeys;
use keyward_store::secret::SecretKey;

use crate::config::ServerConfig;

/// The variable that gives the key itself, instead of a file.
pub const KEY_ENV: &str = "KEYWARD_SECRET_KEY";

/// The server's current key and the older ones kept beside its file.
#[derive(Debug)]
pub struct KeyRing {
    /// Encrypts stored secrets and seals new audit events.
    pub current: SecretKey,
    /// Keys of earlier rotations: verify audit events and anchors only.
    pub older: Vec<SecretKey>,
    /// The key file, when the key came from one.
    pub file: Option<PathBuf>,
}

impl KeyRing {
    /// The audit chain's and the anchors' keys, current first.
    pub fn audit_keys(&self) -> AuditKeys {
        let ring = |f: fn(&SecretKey) -> MacKey| MacKeys::new(f(&self.current), self.older.iter().map(f));
        AuditKeys { chain: ring(SecretKey::audit_mac_key), anchor: ring(SecretKey::anchor_mac_key) }
    }
}

/// Loads the key (creating the data directory and the key file on first start).
pub fn load_or_create(config: &ServerConfig) -> Result<KeyRing, String> {
    if std::env::var_os(KEY_ENV).is_some() {
        let current = SecretKey::from_env(KEY_ENV).map_err(|e| e.to_string())?;
        return Ok(KeyRing { current, older: Vec::new(), file: None });
    }
    keyward_store::db::create_private_dir(&config.data_dir)
        .map_err(|e| format!("cannot create the data directory {}: {e}", config.data_dir.display()))?;
    let path = config.secret_key_path();
    if !path.exists() {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            keyward_store::db::create_private_dir(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        SecretKey::generate()
            .write_new_file(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        tracing::info!(path = %path.display(), "created a new secret key for stored secrets; back it up");
    }
    let current = SecretKey::from_file(&path).map_err(|e| e.to_string())?;
    let older = SecretKey::older_keys(&path);
    Ok(KeyRing { current, older, file: Some(path) })
}

/// Where rotation writes the new key before it is in force.
pub fn pending_path(file: &Path) -> PathBuf {
    suffixed(file, ".new")
}

/// Where rotation keeps the old key.
pub fn kept_path(file: &Path, old_id: &str) -> PathBuf {
    suffixed(file, &format!(".old-{old_id}"))
}

fn suffixed(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Puts the rotated key in force: the old file is kept as `<file>.old-<id>`, then `<file>.new`
/// replaces the key file (a rename, atomic on one file system).
pub fn install_rotated(file: &Path, old_id: &str) -> std::io::Result<PathBuf> {
    let kept = kept_path(file, old_id);
    std::fs::hard_link(file, &kept).or_else(|_| std::fs::copy(file, &kept).map(drop))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(pending_path(file), file)?;
    Ok(kept)
}

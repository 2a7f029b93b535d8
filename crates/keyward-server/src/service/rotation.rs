//! Rotating the server's secret key (`keyward admin rotate-key`): a new key, every stored secret
//! re-encrypted under it in one audited transaction, and the key files swapped in an order that
//! never loses the key the database needs (see [`crate::secret_key`]).
//!
//! Other servers on the same database keep the old key in memory: they fail to decrypt the
//! connector secrets (naming both key ids) until restarted with the new key file.

use keyward_core::Permission;
use keyward_store::connector;
use keyward_store::secret::SecretKey;

use super::{Caller, Service, ServiceError};
use crate::secret_key::{self, KEY_ENV};

/// What a rotation did.
#[derive(Debug, Clone)]
pub struct Rotated {
    /// The key id before.
    pub old_id: String,
    /// The key id now.
    pub new_id: String,
    /// Where the old key was kept.
    pub kept: std::path::PathBuf,
    /// How many stored values were re-encrypted.
    pub values: usize,
}

impl Service {
    /// Generates a new secret key, re-encrypts every stored secret under it (audited as
    /// `secret_key.rotate`), keeps the old key file as `<file>.old-<id>` and puts the new one in
    /// its place. Restart the server(s) afterwards.
    pub async fn rotate_secret_key(&self, caller: &Caller) -> Result<Rotated, ServiceError> {
        caller.require(Permission::ConnectorManage)?;
        if std::env::var_os(KEY_ENV).is_some() {
            return Err(ServiceError::Invalid(format!(
                "the key comes from {KEY_ENV}, which rotate-key cannot rewrite; unset it to use the key file, or re-enter the connector secret under a new {KEY_ENV}"
            )));
        }
        let file = self.config.secret_key_path();
        let pending = secret_key::pending_path(&file);
        if pending.exists() {
            return Err(ServiceError::Conflict(format!(
                "{} exists: an earlier rotation did not finish; if the server cannot decrypt its secrets with the current key, move that file over {}, else delete it, then retry",
                pending.display(),
                file.display()
            )));
        }
        let old = self.connector.key();
        let new = SecretKey::generate();
        new.write_new_file(&pending)
            .map_err(|e| ServiceError::internal(format!("cannot write {}: {e}", pending.display())))?;
        let values = match self.reencrypt(caller, old, &new).await {
            Ok(n) => n,
            Err(e) => {
                let _ = std::fs::remove_file(&pending);
                return Err(e);
            }
        };
        let kept = secret_key::install_rotated(&file, old.id()).map_err(|e| {
            ServiceError::internal(format!(
                "the secrets are now encrypted under the key in {}, but it could not be moved over {}: {e}; move it by hand before restarting",
                pending.display(),
                file.display()
            ))
        })?;
        self.connector.invalidate();
        Ok(Rotated { old_id: old.id().to_owned(), new_id: new.id().to_owned(), kept, values })
    }

    async fn reencrypt(
        &self,
        caller: &Caller,
        old: &SecretKey,
        new: &SecretKey,
    ) -> Result<usize, ServiceError> {
        let mut tx = self.store.begin().await?;
        let n = connector::rekey(&mut tx, &caller.actor(), old, new).await?;
        tx.commit().await?;
        Ok(n)
    }
}

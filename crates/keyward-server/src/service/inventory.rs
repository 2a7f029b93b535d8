//! The inventory: security keys and their lifecycle, and the list of passkeys.

use keyward_core::{KeyState, Passkey, Permission, SecurityKey, SecurityKeyId};
use keyward_store::keys;
use keyward_store::passkeys;
pub use keyward_store::passkeys::PasskeyFilter;
use uuid::Uuid;

use super::cursor::{self, Listed};
use super::issuance::PersonRef;
use super::{Caller, Service, ServiceError};

/// A key to add: what the operator knows of it.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// Serial number, when the key exposes one.
    pub serial: Option<String>,
    /// The model's AAGUID.
    pub aaguid: Uuid,
    /// Model name; looked up in the FIDO metadata when absent.
    pub model: Option<String>,
    /// Firmware version.
    pub firmware: Option<String>,
}

impl Service {
    /// One page of the key inventory in serial order, optionally in one state.
    pub async fn keys(
        &self,
        caller: &Caller,
        state: Option<KeyState>,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Listed<SecurityKey>, ServiceError> {
        caller.require(Permission::KeysRead)?;
        let limit = cursor::limit(limit)?;
        let after = after.map(|c| cursor::decode(c, 2)).transpose()?;
        let after = match &after {
            Some(k) => Some((k[0].as_str(), k[1].parse::<SecurityKeyId>().map_err(|_| cursor::invalid())?)),
            None => None,
        };
        let rows = keys::list(&self.store, state, after, limit + 1).await?;
        Ok(Listed::page(rows, limit, |k| {
            cursor::encode(&[k.serial.as_deref().unwrap_or(""), &k.id.to_string()])
        }))
    }

    /// A key by Keyward's id or by serial.
    pub async fn key(&self, caller: &Caller, key: &str) -> Result<SecurityKey, ServiceError> {
        caller.require(Permission::KeysRead)?;
        self.find_key(key).await
    }

    /// A key by Keyward's id or by serial, for operations that checked their own permission.
    pub(crate) async fn find_key(&self, text: &str) -> Result<SecurityKey, ServiceError> {
        let found = match text.parse::<SecurityKeyId>() {
            Ok(id) => keys::get(&self.store, id).await?,
            Err(_) => keys::get_by_serial(&self.store, text).await?,
        };
        found.ok_or_else(|| ServiceError::NotFound(format!("key {text:?}")))
    }

    /// Adds a key to the inventory as `available`, naming its model from the FIDO metadata
    /// when the operator did not.
    pub async fn add_key(&self, caller: &Caller, new: NewKey) -> Result<SecurityKey, ServiceError> {
        caller.require(Permission::KeysManage)?;
        let mut key = SecurityKey::new(new.serial, new.aaguid);
        key.model = new.model.or_else(|| super::doctor::model_name(new.aaguid));
        key.firmware = new.firmware;
        let mut tx = self.store.begin().await?;
        keys::insert(&mut tx, &caller.actor(), &key).await?;
        tx.commit().await?;
        Ok(key)
    }

    /// Moves a key (by id or serial) to another lifecycle state; a key reported lost, disposed
    /// or suspended has its passkeys revoked first ("device removal"), so it cannot sign in
    /// anywhere. Returns the key and how many passkeys were revoked.
    pub async fn set_key_state(
        &self,
        caller: &Caller,
        key: &str,
        to: KeyState,
    ) -> Result<(SecurityKey, usize), ServiceError> {
        caller.require(Permission::KeysManage)?;
        let actor = caller.actor();
        let key = self.find_key(key).await?;
        key.state.transition(to).map_err(|e| ServiceError::Conflict(e.to_string()))?;
        let revoked = if matches!(to, KeyState::Lost | KeyState::Disposed | KeyState::Suspended) {
            self.revoke_all_on_key(&actor, key.id, &format!("key {to}")).await?
        } else {
            0
        };
        let mut tx = self.store.begin().await?;
        let key = keys::set_state(&mut tx, &actor, key.id, to).await?;
        tx.commit().await?;
        Ok((key, revoked))
    }

    /// One page of passkeys, oldest first, optionally one person's (by id or UPN) and filtered
    /// by origin and state.
    pub async fn passkeys(
        &self,
        caller: &Caller,
        person: Option<&PersonRef>,
        mut filter: PasskeyFilter,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Listed<Passkey>, ServiceError> {
        caller.require(Permission::PasskeysRead)?;
        if let Some(who) = person {
            filter.person = Some(self.find_person(who).await?.id);
        }
        let limit = cursor::limit(limit)?;
        let after = after.map(|c| cursor::decode(c, 2)).transpose()?;
        let after = match &after {
            Some(k) => Some((
                k[0].parse::<i64>().map_err(|_| cursor::invalid())?,
                k[1].parse().map_err(|_| cursor::invalid())?,
            )),
            None => None,
        };
        let rows = passkeys::list(&self.store, filter, after, limit + 1).await?;
        Ok(Listed::page(rows, limit, |p| {
            cursor::encode(&[&keyward_store::to_micros(p.created_at).to_string(), &p.id.to_string()])
        }))
    }
}

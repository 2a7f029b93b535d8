//! API tokens: made, listed (never shown again), revoked, and resolved to a [`Caller`].
//!
//! Tokens are made and stored by `keyward_store::tokens`: only their SHA-256 is kept, so a copy
//! of the database does not hand out access. Looking a token up on every request would make the
//! store the bottleneck of every read, so resolved tokens are cached in memory for a short time;
//! revoking a token through this server drops it from the cache at once, and other servers on the
//! same database see the revocation when their cache entry expires.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use keyward_core::{ApiTokenId, Permission, Role};
use keyward_store::tokens;
pub use keyward_store::tokens::ApiToken;
use secrecy::SecretString;

use super::cursor::{self, Listed};
use super::{Caller, Service, ServiceError};

/// How long a resolved token is trusted without asking the store again.
const CACHE_TTL: Duration = Duration::from_secs(30);

/// A short-lived cache of resolved tokens, keyed by hash: each entry is trusted until
/// [`CACHE_TTL`] has passed or its token expires, whichever comes first.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, (Caller, Instant)>>,
}

impl TokenCache {
    fn get(&self, hash: &str) -> Option<Caller> {
        let entries = self.entries.lock().expect("token cache poisoned");
        entries.get(hash).filter(|(_, until)| Instant::now() < *until).map(|(c, _)| c.clone())
    }

    /// Caches `caller`, whose token expires after `expires_in` (never, when `None`).
    fn put(&self, hash: String, caller: Caller, expires_in: Option<Duration>) {
        let mut entries = self.entries.lock().expect("token cache poisoned");
        if entries.len() > 10_000 {
            let now = Instant::now();
            entries.retain(|_, (_, until)| now < *until);
        }
        let ttl = expires_in.map_or(CACHE_TTL, |left| left.min(CACHE_TTL));
        entries.insert(hash, (caller, Instant::now() + ttl));
    }

    /// Forgets a revoked token at once.
    pub fn forget(&self, token_id: ApiTokenId) {
        self.entries.lock().expect("token cache poisoned").retain(|_, (c, _)| c.token_id() != Some(token_id));
    }
}

impl Service {
    /// The caller a presented API token stands for when this server resolved it recently, without
    /// asking the store (for an address whose failed authentications are being limited).
    pub fn authenticate_cached(&self, token: &SecretString) -> Option<Caller> {
        self.tokens.get(&tokens::token_hash(token))
    }

    /// The caller a presented API token stands for; `None` for an unknown or revoked token.
    pub async fn authenticate(&self, token: &SecretString) -> Result<Option<Caller>, ServiceError> {
        let hash = tokens::token_hash(token);
        if let Some(caller) = self.tokens.get(&hash) {
            return Ok(Some(caller));
        }
        let Some(found) = tokens::authenticate(&self.store, token).await? else { return Ok(None) };
        let caller = Caller::token(found.id, found.name, found.role);
        let until = found.expires_at.map(|t| (t - time::OffsetDateTime::now_utc()).unsigned_abs());
        self.tokens.put(hash, caller.clone(), until);
        Ok(Some(caller))
    }

    /// One page of API tokens' records (live and revoked), by name.
    pub async fn tokens(
        &self,
        caller: &Caller,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Listed<ApiToken>, ServiceError> {
        caller.require(Permission::TokensManage)?;
        let limit = cursor::limit(limit)?;
        let after = after.map(|c| cursor::decode(c, 1)).transpose()?;
        let rows = tokens::list(&self.store, after.as_ref().map(|k| k[0].as_str()), limit + 1).await?;
        Ok(Listed::page(rows, limit, |t| cursor::encode(&[&t.name])))
    }

    /// Creates an API token that lives the configured number of days; the token is returned
    /// once.
    pub async fn create_token(
        &self,
        caller: &Caller,
        name: &str,
        role: Role,
    ) -> Result<(ApiToken, SecretString), ServiceError> {
        self.create_token_for(caller, name, role, None).await
    }

    /// Creates an API token that lives `days` (1–3650; the configured default when `None`);
    /// the token is returned once.
    pub async fn create_token_for(
        &self,
        caller: &Caller,
        name: &str,
        role: Role,
        days: Option<u32>,
    ) -> Result<(ApiToken, SecretString), ServiceError> {
        caller.require(Permission::TokensManage)?;
        if name.trim().is_empty() || name.len() > 64 {
            return Err(ServiceError::Invalid("a token name is 1–64 characters".into()));
        }
        let days = days.unwrap_or(self.config.token_lifetime_days);
        if !(1..=3650).contains(&days) {
            return Err(ServiceError::Invalid(format!(
                "a token lives 1 to 3650 days, not {days}; make a new one before it expires"
            )));
        }
        let expires = time::OffsetDateTime::now_utc() + time::Duration::days(days.into());
        let mut tx = self.store.begin().await?;
        let created = tokens::create(&mut tx, &caller.actor(), name, role, expires).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// Revokes the token named `name`, at once on this server. A token revokes itself only with
    /// `confirm_self` (the API's `?confirm_self=true`): a script that lists tokens and deletes
    /// them would otherwise lock itself out; without it that is a conflict and nothing changes.
    pub async fn revoke_token(
        &self,
        caller: &Caller,
        name: &str,
        confirm_self: bool,
    ) -> Result<(), ServiceError> {
        caller.require(Permission::TokensManage)?;
        let named = tokens::get_by_name(&self.store, name).await?;
        if !confirm_self && named.as_ref().is_some_and(|t| Some(t.id) == caller.token_id()) {
            return Err(ServiceError::Conflict(format!(
                "token {name:?} is the one making this request; revoking it would end your own access. \
                 Use another token, or repeat the request with ?confirm_self=true"
            )));
        }
        let mut tx = self.store.begin().await?;
        let found = tokens::revoke(&mut tx, &caller.actor(), name).await?;
        tx.commit().await?;
        match named {
            Some(t) if found => {
                self.tokens.forget(t.id);
                Ok(())
            }
            _ => Err(ServiceError::NotFound(format!("live token named {name:?}"))),
        }
    }
}

//! API tokens: created with a role, stored only as the SHA-256 of the token, checked on every
//! request, revocable.
//!
//! A token is `kw_` + 32 random bytes in base64url; it has full entropy, so a plain SHA-256 is
//! enough to store it (a slow password hash like Argon2 protects low-entropy secrets and would
//! cost every API request milliseconds).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyward_core::{ApiTokenId, AuditDraft, Role};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::audit;
use crate::db::{Store, Tx, from_micros, now_micros};
use crate::error::{Result, StoreError};
use crate::stmt::{Row, Stmt, int, opt_int, parsed, text};

/// An API token's record (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    /// Id.
    pub id: ApiTokenId,
    /// Unique name (shown in audit events as `token:NAME`).
    pub name: String,
    /// Role granted.
    pub role: Role,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was last used.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// When it stops working; `None` for tokens made before tokens expired.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

const COLUMNS: &str = "id, name, role, created_at, last_used_at, revoked_at, expires_at";

fn from_row(r: &Row) -> Result<ApiToken> {
    Ok(ApiToken {
        id: parsed(r, "id")?,
        name: text(r, "name")?,
        role: parsed(r, "role")?,
        created_at: from_micros(int(r, "created_at")?),
        last_used_at: opt_int(r, "last_used_at")?.map(from_micros),
        revoked_at: opt_int(r, "revoked_at")?.map(from_micros),
        expires_at: opt_int(r, "expires_at")?.map(from_micros),
    })
}

/// SHA-256 (hex) of a token, as stored.
pub fn token_hash(token: &SecretString) -> String {
    hex::encode(Sha256::digest(token.expose_secret().trim().as_bytes()))
}

/// Creates a token named `name` with `role`, working until `expires_at`; returns its record and
/// the token, shown once.
pub async fn create(
    tx: &mut Tx,
    actor: &str,
    name: &str,
    role: Role,
    expires_at: OffsetDateTime,
) -> Result<(ApiToken, SecretString)> {
    let mut raw = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(raw.as_mut());
    let token = SecretString::from(format!("kw_{}", URL_SAFE_NO_PAD.encode(raw.as_ref())));
    let now = now_micros();
    let rec = ApiToken {
        id: ApiTokenId::new(),
        name: name.to_owned(),
        role,
        created_at: from_micros(now),
        last_used_at: None,
        revoked_at: None,
        expires_at: Some(expires_at),
    };
    tx.execute(
        Stmt::new(
            "INSERT INTO api_token (id, name, role, token_hash, created_at, expires_at) VALUES ($1,$2,$3,$4,$5,$6)",
        )
        .bind(rec.id.to_string())
        .bind(name.to_owned())
        .bind(role.as_str())
        .bind(token_hash(&token))
        .bind(now)
        .bind(crate::db::to_micros(expires_at)),
    )
    .await
    .map_err(|e| StoreError::unique(e, || format!("a token named {name}")))?;
    let detail = json!({"role": role, "expires_at": expires_at.unix_timestamp()});
    audit::append(tx, AuditDraft::new(actor, "token.create", format!("token:{name}")).detail(&detail));
    Ok((rec, token))
}

/// How precisely a token's last use is recorded: a use is written when the stored one is older
/// than this, so a busy token costs one write a minute instead of one per request (every request
/// authenticates, and on SQLite every write is a commit).
pub const LAST_USED_PRECISION: std::time::Duration = std::time::Duration::from_secs(60);

/// The live (not revoked, not expired) token matching `token`, recording its use (to within
/// [`LAST_USED_PRECISION`]); `None` if unknown, revoked or expired.
pub async fn authenticate(store: &Store, token: &SecretString) -> Result<Option<ApiToken>> {
    authenticate_at(store, token, now_micros()).await
}

/// [`authenticate`] as of `now` (Unix microseconds).
pub async fn authenticate_at(store: &Store, token: &SecretString, now: i64) -> Result<Option<ApiToken>> {
    let hash = token_hash(token);
    let row = Stmt::new(format!(
        "SELECT {COLUMNS} FROM api_token WHERE token_hash = $1 AND revoked_at IS NULL
               AND (expires_at IS NULL OR expires_at > $2)"
    ))
    .bind(hash.clone())
    .bind(now)
    .fetch_optional(store)
    .await?;
    let Some(mut rec) = row.as_ref().map(from_row).transpose()? else { return Ok(None) };
    let precision = LAST_USED_PRECISION.as_micros() as i64;
    let stale = rec.last_used_at.is_none_or(|t| now - crate::db::to_micros(t) >= precision);
    if stale {
        store
            .execute(
                Stmt::new(
                    "UPDATE api_token SET last_used_at = $2 WHERE token_hash = $1
                     AND (last_used_at IS NULL OR last_used_at <= $3)",
                )
                .bind(hash)
                .bind(now)
                .bind(now - precision),
            )
            .await?;
        rec.last_used_at = Some(from_micros(now));
    }
    Ok(Some(rec))
}

/// Revokes the token named `name`; returns whether a live token was revoked.
pub async fn revoke(tx: &mut Tx, actor: &str, name: &str) -> Result<bool> {
    let changed = tx
        .execute(
            Stmt::new("UPDATE api_token SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL")
                .bind(name.to_owned())
                .bind(now_micros()),
        )
        .await?;
    if changed > 0 {
        audit::append(tx, AuditDraft::new(actor, "token.revoke", format!("token:{name}")));
    }
    Ok(changed > 0)
}

/// The token named `name` (live or revoked).
pub async fn get_by_name(store: &Store, name: &str) -> Result<Option<ApiToken>> {
    let row = Stmt::new(format!("SELECT {COLUMNS} FROM api_token WHERE name = $1"))
        .bind(name.to_owned())
        .fetch_optional(store)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Tokens (live and revoked) by name: those after `after_name` (exclusive), at most `limit`.
pub async fn list(store: &Store, after_name: Option<&str>, limit: i64) -> Result<Vec<ApiToken>> {
    let rows = Stmt::new(format!("SELECT {COLUMNS} FROM api_token WHERE name > $1 ORDER BY name LIMIT $2"))
        .bind(after_name.unwrap_or("").to_owned())
        .bind(limit)
        .fetch_all(store)
        .await?;
    rows.iter().map(from_row).collect()
}

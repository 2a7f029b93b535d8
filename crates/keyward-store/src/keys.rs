//! The security-key inventory: register keys, look them up, change their state under the
//! lifecycle rules of [`keyward_core::KeyState`].

use keyward_core::{AuditDraft, KeyState, PersonId, SecurityKey, SecurityKeyId};
use serde_json::json;

use crate::audit;
use crate::db::{Store, Tx, now_micros};
use crate::error::{Result, StoreError};
use crate::stmt::{Reader, Row, Stmt, opt_text, parsed};

const COLUMNS: &str = "id, serial, aaguid, model, firmware, state";

fn from_row(r: &Row) -> Result<SecurityKey> {
    Ok(SecurityKey {
        id: parsed(r, "id")?,
        serial: opt_text(r, "serial")?,
        aaguid: parsed(r, "aaguid")?,
        model: opt_text(r, "model")?,
        firmware: opt_text(r, "firmware")?,
        state: parsed(r, "state")?,
    })
}

/// The audit subject naming a key.
pub fn subject(id: SecurityKeyId) -> String {
    format!("key:{id}")
}

/// Adds a key to the inventory.
pub async fn insert(tx: &mut Tx, actor: &str, k: &SecurityKey) -> Result<()> {
    let now = now_micros();
    tx.execute(
        Stmt::new(format!(
            "INSERT INTO security_key ({COLUMNS}, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$7)"
        ))
        .bind(k.id.to_string())
        .bind(k.serial.clone())
        .bind(k.aaguid.to_string())
        .bind(k.model.clone())
        .bind(k.firmware.clone())
        .bind(k.state.as_str())
        .bind(now),
    )
    .await
    .map_err(|e| {
        StoreError::unique(e, || format!("a key with serial {}", k.serial.as_deref().unwrap_or("?")))
    })?;
    let detail = json!({"serial": k.serial, "aaguid": k.aaguid, "model": k.model});
    audit::append(tx, AuditDraft::new(actor, "key.create", subject(k.id)).detail(&detail));
    Ok(())
}

async fn get_in(on: impl Reader, id: SecurityKeyId) -> Result<Option<SecurityKey>> {
    let row = Stmt::new(format!("SELECT {COLUMNS} FROM security_key WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(on)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// A key by id.
pub async fn get(store: &Store, id: SecurityKeyId) -> Result<Option<SecurityKey>> {
    get_in(store, id).await
}

/// A key by serial number.
pub async fn get_by_serial(store: &Store, serial: &str) -> Result<Option<SecurityKey>> {
    let row = Stmt::new(format!("SELECT {COLUMNS} FROM security_key WHERE serial = $1"))
        .bind(serial.to_owned())
        .fetch_optional(store)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Keys, optionally only those in `state`, ordered by serial.
pub async fn list(
    store: &Store,
    state: Option<KeyState>,
    after: Option<(&str, SecurityKeyId)>,
    limit: i64,
) -> Result<Vec<SecurityKey>> {
    let (serial, id) = after.map_or((String::new(), String::new()), |(s, id)| (s.to_owned(), id.to_string()));
    let rows = Stmt::new(format!(
        "SELECT {COLUMNS} FROM security_key WHERE ($1 IS NULL OR state = $1)
           AND (COALESCE(serial, ''), id) > ($2, $3)
         ORDER BY COALESCE(serial, ''), id LIMIT $4"
    ))
    .bind(state.map(|s| s.as_str()))
    .bind(serial)
    .bind(id)
    .bind(limit)
    .fetch_all(store)
    .await?;
    rows.iter().map(from_row).collect()
}

/// The keys that hold any of a person's passkeys, by serial.
pub async fn list_by_person(store: &Store, person: PersonId) -> Result<Vec<SecurityKey>> {
    let rows = Stmt::new(format!(
        "SELECT {COLUMNS} FROM security_key
         WHERE id IN (SELECT security_key_id FROM passkey WHERE person_id = $1)
         ORDER BY COALESCE(serial, ''), id"
    ))
    .bind(person.to_string())
    .fetch_all(store)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Moves a key to `to` if the lifecycle allows it (e.g. reported lost), with an audit event.
pub async fn set_state(tx: &mut Tx, actor: &str, id: SecurityKeyId, to: KeyState) -> Result<SecurityKey> {
    let mut k = get_in(&mut *tx, id).await?.ok_or_else(|| StoreError::NotFound(subject(id)))?;
    let from = k.state;
    k.transition(to)?;
    let changed = tx
        .execute(
            Stmt::new("UPDATE security_key SET state = $2, updated_at = $3 WHERE id = $1 AND state = $4")
                .bind(id.to_string())
                .bind(to.as_str())
                .bind(now_micros())
                .bind(from.as_str()),
        )
        .await?;
    if changed == 0 {
        return Err(StoreError::NotFound(subject(id)));
    }
    let detail = json!({"from": from.as_str(), "to": to.as_str()});
    audit::append(tx, AuditDraft::new(actor, format!("key.{to}"), subject(id)).detail(&detail));
    Ok(k)
}

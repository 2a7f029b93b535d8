//! Passkeys: recorded `pending` before the registration call to Entra, marked `registered` with
//! Entra's method id, revoked, and listed by person or key; also found by credential id (the
//! reconcile job matches Entra's methods to Keyward's records by it).

use keyward_core::{AuditDraft, Passkey, PasskeyId, PasskeyState, PersonId, SecurityKeyId};
use serde_json::json;
use sqlx::any::AnyRow;

use crate::audit;
use crate::db::{Store, Tx, from_micros, int, now_micros, opt_parsed, opt_text, parsed, text, to_micros};
use crate::error::{Result, StoreError};
use crate::write::Write;

const COLUMNS: &str = "id, entra_method_id, credential_id, person_id, security_key_id, aaguid, model, display_name, state, origin, created_at";

fn from_row(r: &AnyRow) -> Result<Passkey> {
    Ok(Passkey {
        id: parsed(r, "id")?,
        entra_method_id: opt_text(r, "entra_method_id")?,
        credential_id: text(r, "credential_id")?,
        person_id: parsed(r, "person_id")?,
        security_key_id: opt_parsed(r, "security_key_id")?,
        aaguid: parsed(r, "aaguid")?,
        model: opt_text(r, "model")?,
        display_name: text(r, "display_name")?,
        state: parsed(r, "state")?,
        origin: parsed(r, "origin")?,
        created_at: from_micros(int(r, "created_at")?),
    })
}

/// The audit subject naming a passkey.
pub fn subject(id: PasskeyId) -> String {
    format!("passkey:{id}")
}

/// Records a passkey (normally `pending` and managed, before the Graph POST; or `registered` and
/// discovered, from reconcile).
pub async fn insert(tx: &mut Tx, actor: &str, p: &Passkey) -> Result<()> {
    let row = (p.id.to_string(), p.entra_method_id.clone(), p.credential_id.clone(), p.person_id.to_string());
    let (key, aaguid, model) =
        (p.security_key_id.map(|k| k.to_string()), p.aaguid.to_string(), p.model.clone());
    let (name, state, origin) = (p.display_name.clone(), p.state.as_str(), p.origin.as_str());
    let (created, now, credential_id) = (to_micros(p.created_at), now_micros(), p.credential_id.clone());
    let insert = Write::new(
        format!(
            "INSERT INTO passkey ({COLUMNS}, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)"
        ),
        move |q| {
            let (id, method, credential, person) = row;
            q.bind(id)
                .bind(method)
                .bind(credential)
                .bind(person)
                .bind(key)
                .bind(aaguid)
                .bind(model)
                .bind(name)
                .bind(state)
                .bind(origin)
                .bind(created)
                .bind(now)
        },
    )
    .on_error(move |e| StoreError::unique(e, || format!("a passkey with credential id {credential_id}")));
    tx.write(insert).await?;
    let detail = json!({"person": p.person_id, "key": p.security_key_id, "aaguid": p.aaguid,
                        "state": p.state.as_str(), "origin": p.origin.as_str()});
    audit::append(tx, AuditDraft::new(actor, "passkey.record", subject(p.id)).detail(&detail));
    Ok(())
}

async fn get_in(
    conn: impl sqlx::Executor<'_, Database = sqlx::Any>,
    id: PasskeyId,
) -> Result<Option<Passkey>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM passkey WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Moves passkey `p` to `to` in one statement, if its stored state is one of `from` (each a legal
/// move to `to`); `method_id` and `model` are recorded when given. Returns `p` as stored now: the
/// statement changes only the state, method id and model, so the row need not be read back (and in
/// a batched transaction it is sent with the commit); only a refused move reads the row to say why.
async fn move_to(
    tx: &mut Tx,
    p: &Passkey,
    from: &[PasskeyState],
    to: PasskeyState,
    method_id: Option<&str>,
    model: Option<&str>,
) -> Result<Passkey> {
    debug_assert!(from.iter().all(|f| f.transition(to).is_ok()), "illegal move listed");
    // The states are the enum's fixed names, not input, so they are written into the SQL.
    let states: Vec<String> = from.iter().map(|f| format!("'{}'", f.as_str())).collect();
    let (id, method, new_model, now) =
        (p.id, method_id.map(str::to_owned), model.map(str::to_owned), now_micros());
    let mut moved = p.clone();
    moved.state = to;
    moved.created_at = from_micros(to_micros(p.created_at)); // as stored
    moved.entra_method_id = method.clone().or(moved.entra_method_id);
    moved.model = new_model.clone().or(moved.model);
    let update = Write::new(
        format!(
            "UPDATE passkey SET state = $2, entra_method_id = COALESCE($3, entra_method_id),
             model = COALESCE($4, model), updated_at = $5 WHERE id = $1 AND state IN ({})",
            states.join(", ")
        ),
        move |q| q.bind(id.to_string()).bind(to.as_str()).bind(method).bind(new_model).bind(now),
    )
    .or_refuse(
        subject(id),
        move |conn| Box::pin(get_in(conn, id)),
        move |current: Passkey| {
            keyward_core::PasskeyError::IllegalTransition { from: current.state, to }.into()
        },
    );
    tx.write(update).await?;
    Ok(moved)
}

/// Marks a pending passkey registered with Entra's method id, and the model name Entra reported
/// when it gave one (Entra's metadata is the authority on it; Keyward's guess from the embedded
/// MDS may be missing).
pub async fn mark_registered(
    tx: &mut Tx,
    actor: &str,
    p: &Passkey,
    entra_method_id: &str,
    model: Option<&str>,
) -> Result<Passkey> {
    let p = move_to(tx, p, &[PasskeyState::Pending], PasskeyState::Registered, Some(entra_method_id), model)
        .await?;
    let detail = json!({"entra_method_id": entra_method_id, "person": p.person_id});
    audit::append(tx, AuditDraft::new(actor, "passkey.registered", subject(p.id)).detail(&detail));
    Ok(p)
}

/// Revokes a passkey (after deleting it in Entra, or abandoning a pending one).
pub async fn revoke(tx: &mut Tx, actor: &str, p: &Passkey, reason: &str) -> Result<Passkey> {
    let from = [PasskeyState::Pending, PasskeyState::Registered];
    let p = move_to(tx, p, &from, PasskeyState::Revoked, None, None).await?;
    let detail = json!({"reason": reason, "person": p.person_id, "entra_method_id": p.entra_method_id});
    audit::append(tx, AuditDraft::new(actor, "passkey.revoke", subject(p.id)).detail(&detail));
    Ok(p)
}

/// Abandons a pending passkey whose registration never reached Entra (or was refused): it becomes
/// revoked with the audit action `passkey.discard`. Registered passkeys are refused — revoke those
/// in Entra first.
pub async fn discard_pending(tx: &mut Tx, actor: &str, p: &Passkey, reason: &str) -> Result<Passkey> {
    let p = move_to(tx, p, &[PasskeyState::Pending], PasskeyState::Revoked, None, None).await?;
    let detail = json!({"reason": reason, "person": p.person_id});
    audit::append(tx, AuditDraft::new(actor, "passkey.discard", subject(p.id)).detail(&detail));
    Ok(p)
}

/// Every passkey, oldest first.
pub async fn list(store: &Store) -> Result<Vec<Passkey>> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM passkey ORDER BY created_at, id"))
        .fetch_all(&mut *store.conn().await?)
        .await?;
    rows.iter().map(from_row).collect()
}

/// A passkey by id.
pub async fn get(store: &Store, id: PasskeyId) -> Result<Option<Passkey>> {
    get_in(&mut *store.conn().await?, id).await
}

/// A passkey by WebAuthn credential id (base64url).
pub async fn find_by_credential_id(store: &Store, credential_id: &str) -> Result<Option<Passkey>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM passkey WHERE credential_id = $1"))
        .bind(credential_id.to_owned())
        .fetch_optional(&mut *store.conn().await?)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// A person's passkeys, oldest first.
pub async fn list_by_person(store: &Store, person: PersonId) -> Result<Vec<Passkey>> {
    let rows =
        sqlx::query(&format!("SELECT {COLUMNS} FROM passkey WHERE person_id = $1 ORDER BY created_at, id"))
            .bind(person.to_string())
            .fetch_all(&mut *store.conn().await?)
            .await?;
    rows.iter().map(from_row).collect()
}

/// The passkeys on a security key, oldest first.
pub async fn list_by_key(store: &Store, key: SecurityKeyId) -> Result<Vec<Passkey>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM passkey WHERE security_key_id = $1 ORDER BY created_at, id"
    ))
    .bind(key.to_string())
    .fetch_all(&mut *store.conn().await?)
    .await?;
    rows.iter().map(from_row).collect()
}

//! Passkeys: recorded `pending` before the registration call to Entra, marked `registered` with
//! Entra's method id, revoked, and listed by person or key; also found by credential id (the
//! reconcile job matches Entra's methods to Keyward's records by it).

use keyward_core::{AuditDraft, Passkey, PasskeyId, PasskeyOrigin, PasskeyState, PersonId, SecurityKeyId};
use serde_json::json;

use crate::audit;
use crate::db::{Store, Tx, from_micros, now_micros, to_micros};
use crate::error::{Result, StoreError};
use crate::stmt::{Reader, Row, Stmt, int, opt_parsed, opt_text, parsed, text};
use crate::write::Write;

const COLUMNS: &str = "id, entra_method_id, credential_id, person_id, security_key_id, aaguid, model, display_name, state, origin, created_at";

fn from_row(r: &Row) -> Result<Passkey> {
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
    let credential_id = p.credential_id.clone();
    let insert = Write::new(
        Stmt::new(format!(
            "INSERT INTO passkey ({COLUMNS}, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)"
        ))
        .bind(p.id.to_string())
        .bind(p.entra_method_id.clone())
        .bind(&p.credential_id)
        .bind(p.person_id.to_string())
        .bind(p.security_key_id.map(|k| k.to_string()))
        .bind(p.aaguid.to_string())
        .bind(p.model.clone())
        .bind(&p.display_name)
        .bind(p.state.as_str())
        .bind(p.origin.as_str())
        .bind(to_micros(p.created_at))
        .bind(now_micros()),
    )
    .on_error(move |e| StoreError::unique(e, || format!("a passkey with credential id {credential_id}")));
    tx.write(insert).await?;
    let detail = json!({"person": p.person_id, "key": p.security_key_id, "aaguid": p.aaguid,
                        "state": p.state.as_str(), "origin": p.origin.as_str()});
    audit::append(tx, AuditDraft::new(actor, "passkey.record", subject(p.id)).detail(&detail));
    Ok(())
}

async fn get_in(on: impl Reader, id: PasskeyId) -> Result<Option<Passkey>> {
    let row = Stmt::new(format!("SELECT {COLUMNS} FROM passkey WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(on)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Moves passkey `p` to `to` in one statement, if its stored state is one of `from` (each a legal
/// move to `to`); `method_id` and `model` are recorded when given. Returns `p` as stored now: the
/// statement changes only the state, method id and model, so the row need not be read back; only a refused move reads the row to say why.
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
    let id = p.id;
    let mut moved = p.clone();
    moved.state = to;
    moved.created_at = from_micros(to_micros(p.created_at)); // as stored
    moved.entra_method_id = method_id.map(str::to_owned).or(moved.entra_method_id);
    moved.model = model.map(str::to_owned).or(moved.model);
    let update = Write::new(
        Stmt::new(format!(
            "UPDATE passkey SET state = $2, entra_method_id = COALESCE($3, entra_method_id),
             model = COALESCE($4, model), updated_at = $5 WHERE id = $1 AND state IN ({})",
            states.join(", ")
        ))
        .bind(id.to_string())
        .bind(to.as_str())
        .bind(method_id)
        .bind(model)
        .bind(now_micros()),
    )
    .or_refuse(
        subject(id),
        move |tx| Box::pin(get_in(tx, id)),
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

/// Which passkeys a list shows; every part optional.
#[derive(Debug, Clone, Copy, Default)]
pub struct PasskeyFilter {
    /// Only this person's.
    pub person: Option<PersonId>,
    /// Only managed or only discovered ones.
    pub origin: Option<PasskeyOrigin>,
    /// Only in this state.
    pub state: Option<PasskeyState>,
}

/// One page of passkeys, oldest first: those after `after` (creation time in Unix microseconds,
/// id), filtered in SQL, at most `limit`.
pub async fn list(
    store: &Store,
    filter: PasskeyFilter,
    after: Option<(i64, PasskeyId)>,
    limit: i64,
) -> Result<Vec<Passkey>> {
    let (at, id) = after.map_or((i64::MIN, String::new()), |(at, id)| (at, id.to_string()));
    let rows = Stmt::new(format!(
        "SELECT {COLUMNS} FROM passkey
         WHERE ($1 IS NULL OR person_id = $1) AND ($2 IS NULL OR origin = $2) AND ($3 IS NULL OR state = $3)
           AND (created_at, id) > ($4, $5)
         ORDER BY created_at, id LIMIT $6"
    ))
    .bind(filter.person.map(|p| p.to_string()))
    .bind(filter.origin.map(|o| o.as_str()))
    .bind(filter.state.map(|s| s.as_str()))
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(store)
    .await?;
    rows.iter().map(from_row).collect()
}

/// A passkey by id.
pub async fn get(store: &Store, id: PasskeyId) -> Result<Option<Passkey>> {
    get_in(store, id).await
}

/// A passkey by WebAuthn credential id (base64url).
pub async fn find_by_credential_id(store: &Store, credential_id: &str) -> Result<Option<Passkey>> {
    let row = Stmt::new(format!("SELECT {COLUMNS} FROM passkey WHERE credential_id = $1"))
        .bind(credential_id.to_owned())
        .fetch_optional(store)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// A person's passkeys, oldest first.
pub async fn list_by_person(store: &Store, person: PersonId) -> Result<Vec<Passkey>> {
    let rows =
        Stmt::new(format!("SELECT {COLUMNS} FROM passkey WHERE person_id = $1 ORDER BY created_at, id"))
            .bind(person.to_string())
            .fetch_all(store)
            .await?;
    rows.iter().map(from_row).collect()
}

/// The passkeys on a security key, oldest first.
pub async fn list_by_key(store: &Store, key: SecurityKeyId) -> Result<Vec<Passkey>> {
    let rows = Stmt::new(format!(
        "SELECT {COLUMNS} FROM passkey WHERE security_key_id = $1 ORDER BY created_at, id"
    ))
    .bind(key.to_string())
    .fetch_all(store)
    .await?;
    rows.iter().map(from_row).collect()
}

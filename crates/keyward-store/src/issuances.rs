//! Issuance requests: create, move through the state machine with an optimistic check of the
//! previous state, and look up by id or collection-code hash.
//!
//! The optimistic check (`UPDATE … WHERE state = <expected>`) is what makes two racing requests
//! for the same issuance safe on both backends: only one sees its update applied, the other gets
//! [`StoreError::StaleIssuance`] and must reload.

use std::sync::LazyLock;

use keyward_core::{AuditDraft, Issuance, IssuanceId, IssuanceState, Person, PersonId};
use serde_json::json;

use crate::db::{Store, Tx, from_micros, now_micros, to_micros};
use crate::error::{Result, StoreError};
use crate::stmt::{Reader, Row, Stmt, flag, int, opt_int, opt_parsed, opt_text, parsed, text};
use crate::write::Write;
use crate::{audit, people};

const COLUMNS: &str = "id, person_id, requester, channel, approval_required, approved_by, security_key_id, \
                       collection_code_hash, challenge, challenge_expires_at, state, failure_reason, created_at, updated_at, \
                       entra_object_id, entra_upn";

fn from_row(r: &Row) -> Result<Issuance> {
    Ok(Issuance {
        id: parsed(r, "id")?,
        person_id: parsed(r, "person_id")?,
        requester: text(r, "requester")?,
        channel: parsed(r, "channel")?,
        approval_required: flag(r, "approval_required")?,
        approved_by: opt_text(r, "approved_by")?,
        security_key_id: opt_parsed(r, "security_key_id")?,
        entra_object_id: opt_text(r, "entra_object_id")?,
        entra_upn: opt_text(r, "entra_upn")?,
        collection_code_hash: opt_text(r, "collection_code_hash")?,
        challenge: opt_text(r, "challenge")?,
        challenge_expires_at: opt_int(r, "challenge_expires_at")?.map(from_micros),
        state: parsed(r, "state")?,
        failure_reason: opt_text(r, "failure_reason")?,
        created_at: from_micros(int(r, "created_at")?),
        updated_at: from_micros(int(r, "updated_at")?),
    })
}

/// The audit subject naming an issuance.
pub fn subject(id: IssuanceId) -> String {
    format!("issuance:{id}")
}

/// Records a new issuance request.
pub async fn create(tx: &mut Tx, actor: &str, i: &Issuance) -> Result<()> {
    let insert = Write::new(
        Stmt::new(format!(
            "INSERT INTO issuance ({COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)"
        ))
        .bind(i.id.to_string())
        .bind(i.person_id.to_string())
        .bind(&i.requester)
        .bind(i.channel.as_str())
        .bind(i.approval_required as i64)
        .bind(i.approved_by.clone())
        .bind(i.security_key_id.map(|k| k.to_string()))
        .bind(i.collection_code_hash.clone())
        .bind(i.challenge.clone())
        .bind(i.challenge_expires_at.map(to_micros))
        .bind(i.state.as_str())
        .bind(i.failure_reason.clone())
        .bind(to_micros(i.created_at))
        .bind(to_micros(i.updated_at))
        .bind(i.entra_object_id.clone())
        .bind(i.entra_upn.clone()),
    )
    .on_error(|e| StoreError::unique(e, || "an issuance with this collection code".into()));
    tx.write(insert).await?;
    let detail = json!({
        "person": i.person_id, "channel": i.channel.as_str(), "approval_required": i.approval_required,
        "entra_object_id": i.entra_object_id, "entra_upn": i.entra_upn,
    });
    audit::append(tx, AuditDraft::new(actor, "issuance.create", subject(i.id)).detail(&detail));
    Ok(())
}

async fn get_in(on: impl Reader, id: IssuanceId) -> Result<Option<Issuance>> {
    let row = Stmt::new(format!("SELECT {COLUMNS} FROM issuance WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(on)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Saves `next` (an issuance whose state the caller moved with [`Issuance::transition`] and
/// friends, with its key, challenge and failure reason) only if the stored state is still
/// `expected`; audits the move.
pub async fn transition(tx: &mut Tx, actor: &str, expected: IssuanceState, next: &Issuance) -> Result<()> {
    // Re-check the rule here so a caller cannot store an illegal move.
    if expected != next.state {
        expected.transition(next.state, next.approval_required)?;
    }
    let id = next.id;
    let update = Write::new(
        Stmt::new(
            "UPDATE issuance SET state = $2, approved_by = $3, security_key_id = $4, challenge_expires_at = $5,
             failure_reason = $6, updated_at = $7, challenge = $9 WHERE id = $1 AND state = $8",
        )
        .bind(id.to_string())
        .bind(next.state.as_str())
        .bind(next.approved_by.clone())
        .bind(next.security_key_id.map(|k| k.to_string()))
        .bind(next.challenge_expires_at.map(to_micros))
        .bind(next.failure_reason.clone())
        .bind(now_micros())
        .bind(expected.as_str())
        .bind(next.challenge.clone()),
    )
    .or_refuse(
        subject(id),
        move |tx| Box::pin(get_in(tx, id)),
        move |actual| StoreError::StaleIssuance { id: id.to_string(), expected, actual: actual.state },
    );
    tx.write(update).await?;
    let mut detail =
        json!({"from": expected.as_str(), "to": next.state.as_str(), "failure_reason": next.failure_reason});
    if next.state == IssuanceState::Approved {
        // What the approver approved: the account, not only the person.
        detail["entra_object_id"] = json!(next.entra_object_id);
        detail["entra_upn"] = json!(next.entra_upn);
    }
    audit::append(
        tx,
        AuditDraft::new(actor, format!("issuance.{}", next.state), subject(next.id)).detail(&detail),
    );
    Ok(())
}

/// An issuance by id.
pub async fn get(store: &Store, id: IssuanceId) -> Result<Option<Issuance>> {
    get_in(store, id).await
}

/// An issuance and the person it is for, in one read (each issuance step needs both).
pub async fn get_with_person(store: &Store, id: IssuanceId) -> Result<Option<(Issuance, Person)>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        let columns: Vec<String> = COLUMNS.split(", ").map(|c| format!("i.{}", c.trim())).collect();
        format!(
            "SELECT {}, {} FROM issuance AS i JOIN person AS p ON p.id = i.person_id WHERE i.id = $1",
            columns.join(", "),
            people::JOINED_COLUMNS
        )
    });
    let row = Stmt::new(SQL.as_str()).bind(id.to_string()).fetch_optional(store).await?;
    row.map(|r| Ok((from_row(&r)?, people::from_row_as(&r, "p_")?))).transpose()
}

/// An issuance by the hash of its collection code (see [`keyward_core::issuance::hash_collection_code`]).
pub async fn find_by_collection_code_hash(store: &Store, hash: &str) -> Result<Option<Issuance>> {
    let row = Stmt::new(format!("SELECT {COLUMNS} FROM issuance WHERE collection_code_hash = $1"))
        .bind(hash.to_owned())
        .fetch_optional(store)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// A person's issuances that have not finished (requested, approved or options issued).
pub async fn list_open_by_person(store: &Store, person: PersonId) -> Result<Vec<Issuance>> {
    let rows = Stmt::new(format!(
        "SELECT {COLUMNS} FROM issuance WHERE person_id = $1 AND state IN ('requested', 'approved', 'options-issued')
         ORDER BY created_at"
    ))
    .bind(person.to_string())
    .fetch_all(store)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Issuances, optionally for one person and/or in one state, newest first: those before `before`
/// (creation time in Unix microseconds, id) in that order, at most `limit`.
pub async fn list(
    store: &Store,
    person: Option<PersonId>,
    state: Option<IssuanceState>,
    before: Option<(i64, IssuanceId)>,
    limit: i64,
) -> Result<Vec<Issuance>> {
    let (at, id) = before.map_or((i64::MAX, String::new()), |(at, id)| (at, id.to_string()));
    let rows = Stmt::new(format!(
        "SELECT {COLUMNS} FROM issuance WHERE ($1 IS NULL OR person_id = $1) AND ($2 IS NULL OR state = $2)
           AND (created_at, id) < ($3, $4)
         ORDER BY created_at DESC, id DESC LIMIT $5"
    ))
    .bind(person.map(|p| p.to_string()))
    .bind(state.map(|s| s.as_str()))
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(store)
    .await?;
    rows.iter().map(from_row).collect()
}

//! The audit trail: append inside the caller's transaction, list, export, verify.
//!
//! Appending reads the last event's hash and inserts the next one; two concurrent writers must not
//! both read the same predecessor, or the chain would fork. On PostgreSQL the append first takes a
//! transaction-scoped advisory lock (`pg_advisory_xact_lock`), held until the caller's transaction
//! commits or rolls back; on SQLite every write transaction already holds the database write lock
//! from `BEGIN IMMEDIATE` (see [`crate::db`]). A `seq` primary key backs this up: a forked append
//! would fail rather than store two events with the same position.

use keyward_core::audit::{AuditDraft, AuditEvent, GENESIS_HASH, verify_chain_from};
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::db::{Backend, Store, Tx, from_micros, int, parsed, text, to_micros};
use crate::error::Result;

/// Advisory-lock key that serialises audit appends on PostgreSQL ("KWAUDIT" in ASCII).
const AUDIT_LOCK_KEY: i64 = 0x004b_5741_5544_4954;

/// Appends `draft` to the chain inside `tx`; it commits or rolls back with the caller's change.
///
/// The predecessor is known without a read in two cases: a later append in the same transaction
/// (which holds the lock), and the head this process last committed — a hint only, so the insert
/// is made conditional on that event still being the last one with that hash; if another writer
/// got there first (another process, or a rolled-back transaction of ours), nothing is inserted
/// and the head is read as usual.
pub async fn append(tx: &mut Tx, draft: AuditDraft) -> Result<AuditEvent> {
    if tx.backend() == Backend::Postgres && !tx.audit_locked {
        sqlx::query("SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock($1)) AS l")
            .bind(AUDIT_LOCK_KEY)
            .fetch_one(tx.conn())
            .await?;
        tx.audit_locked = true;
    }
    if let Some((seq, prev)) = tx.own_head.clone() {
        let ev = draft.seal(seq + 1, &prev, OffsetDateTime::now_utc());
        insert(tx, &ev, None).await?;
        tx.own_head = Some((ev.seq, ev.hash.clone()));
        return Ok(ev);
    }
    let hint = tx.audit_head.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some((seq, prev)) = hint {
        let ev = draft.clone().seal(seq + 1, &prev, OffsetDateTime::now_utc());
        if insert(tx, &ev, Some((seq, &prev))).await? {
            tx.own_head = Some((ev.seq, ev.hash.clone()));
            return Ok(ev);
        }
    }
    let last = sqlx::query("SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1")
        .fetch_optional(tx.conn())
        .await?;
    let (seq, prev) = match last {
        Some(r) => (r.try_get::<i64, _>("seq")? + 1, r.try_get::<String, _>("hash")?),
        None => (1, GENESIS_HASH.to_owned()),
    };
    let ev = draft.seal(seq, &prev, OffsetDateTime::now_utc());
    insert(tx, &ev, None).await?;
    tx.own_head = Some((ev.seq, ev.hash.clone()));
    Ok(ev)
}

/// Inserts `ev`; with `after`, only if `(seq, hash)` is still the chain's last event. Returns
/// whether the row was inserted.
async fn insert(tx: &mut Tx, ev: &AuditEvent, after: Option<(i64, &str)>) -> Result<bool> {
    const VALUES: &str = "$1, $2, $3, $4, $5, $6, $7, $8, $9";
    let sql = match after {
        None => format!(
            "INSERT INTO audit_event (seq, actor, action, subject, outcome, detail, at, prev_hash, hash) VALUES ({VALUES})"
        ),
        Some(_) => format!(
            "INSERT INTO audit_event (seq, actor, action, subject, outcome, detail, at, prev_hash, hash)
             SELECT {VALUES} WHERE EXISTS (SELECT 1 FROM audit_event WHERE seq = $10 AND hash = $11)
             AND NOT EXISTS (SELECT 1 FROM audit_event WHERE seq > $10)"
        ),
    };
    let mut q = sqlx::query(&sql)
        .bind(ev.seq)
        .bind(&ev.actor)
        .bind(&ev.action)
        .bind(&ev.subject)
        .bind(ev.outcome.as_str())
        .bind(&ev.detail)
        .bind(to_micros(ev.at))
        .bind(&ev.prev_hash)
        .bind(&ev.hash);
    if let Some((seq, hash)) = after {
        q = q.bind(seq).bind(hash.to_owned());
    }
    Ok(q.execute(tx.conn()).await?.rows_affected() == 1)
}

/// Filter for listing audit events.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only events whose subject equals this.
    pub subject: Option<String>,
    /// Only events with `seq` greater than this (for paging forward).
    pub after_seq: Option<i64>,
    /// At most this many events (default 100).
    pub limit: Option<i64>,
}

fn event_from_row(r: &AnyRow) -> Result<AuditEvent> {
    Ok(AuditEvent {
        seq: int(r, "seq")?,
        actor: text(r, "actor")?,
        action: text(r, "action")?,
        subject: text(r, "subject")?,
        outcome: parsed(r, "outcome")?,
        detail: text(r, "detail")?,
        at: from_micros(int(r, "at")?),
        prev_hash: text(r, "prev_hash")?,
        hash: text(r, "hash")?,
    })
}

const COLUMNS: &str = "seq, actor, action, subject, outcome, detail, at, prev_hash, hash";

/// Lists events in chain order, filtered.
pub async fn list(store: &Store, filter: &AuditFilter) -> Result<Vec<AuditEvent>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_event WHERE ($1 IS NULL OR subject = $1) AND seq > $2 ORDER BY seq LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(filter.subject.clone())
        .bind(filter.after_seq.unwrap_or(0))
        .bind(filter.limit.unwrap_or(100))
        .fetch_all(store.pool())
        .await?;
    rows.iter().map(event_from_row).collect()
}

/// Exports the whole chain as JSON Lines (one event per line), in chain order.
pub async fn export_jsonl(store: &Store) -> Result<String> {
    let mut out = String::new();
    for ev in all(store).await? {
        out.push_str(&serde_json::to_string(&ev).expect("audit events always serialise"));
        out.push('\n');
    }
    Ok(out)
}

async fn all(store: &Store) -> Result<Vec<AuditEvent>> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM audit_event ORDER BY seq"))
        .fetch_all(store.pool())
        .await?;
    rows.iter().map(event_from_row).collect()
}

/// Verifies the whole stored chain, page by page; returns the number of events verified, or
/// [`keyward_core::ChainBreak`] naming the first bad event.
pub async fn verify(store: &Store) -> Result<u64> {
    let mut prev = GENESIS_HASH.to_owned();
    let mut next_seq = 1i64;
    let mut count = 0u64;
    loop {
        let page =
            list(store, &AuditFilter { subject: None, after_seq: Some(next_seq - 1), limit: Some(1000) })
                .await?;
        if page.is_empty() {
            return Ok(count);
        }
        verify_chain_from(&prev, next_seq, &page).map_err(|mut b| {
            b.index += count as usize;
            b
        })?;
        count += page.len() as u64;
        next_seq += page.len() as i64;
        prev = page.last().map(|e| e.hash.clone()).unwrap_or_default();
    }
}

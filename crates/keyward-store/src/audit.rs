//! The audit trail: append inside the caller's transaction, list, export, verify.
//!
//! An append queues the event in the caller's transaction; the commit writes the transaction's
//! events in one statement right before `COMMIT`, so a change and its events land together or not
//! at all, and a transaction with three events pays one round trip for them, not three.
//!
//! Writing reads the last event's hash and inserts the next ones; two concurrent writers must not
//! both read the same predecessor, or the chain would fork. On PostgreSQL the write first takes a
//! transaction-scoped advisory lock (`pg_advisory_xact_lock`), held until the transaction commits;
//! on SQLite every write transaction already holds the database write lock from `BEGIN IMMEDIATE`
//! (see [`crate::db`]). A `seq` primary key backs this up: a forked append would fail rather than
//! store two events with the same position.

use keyward_core::audit::{AuditDraft, AuditEvent, GENESIS_HASH, verify_chain_from};
use sqlx::Row;
use sqlx::any::AnyRow;
use sqlx::error::ErrorKind;
use time::OffsetDateTime;

use crate::db::{Backend, Store, Tx, from_micros, int, parsed, text, to_micros};
use crate::error::Result;

/// Events per `INSERT`: nine parameters each, well under SQLite's 32 766 and PostgreSQL's 65 535
/// parameter limits (a sync of thousands of people is one transaction).
const EVENTS_PER_STATEMENT: usize = 64;

/// Advisory-lock key that serialises audit appends on PostgreSQL ("KWAUDIT" in ASCII).
const AUDIT_LOCK_KEY: i64 = 0x004b_5741_5544_4954;

/// Appends `draft` to the chain as part of `tx`: it is written when the transaction commits, with
/// the transaction's other events in one statement (see [`Tx::commit`]), and discarded if it rolls back.
pub fn append(tx: &mut Tx, draft: AuditDraft) {
    tx.pending_audit.push(draft);
}

/// Writes the transaction's queued events; called by [`Tx::commit`] just before the commit.
///
/// The predecessor comes from the head this process last committed — a hint only, so the first
/// insert is guarded by that event still being the chain's last one with that hash; if another
/// writer got there first (another process or server), nothing is inserted and the head is read
/// and the events sealed again. On PostgreSQL the advisory lock is taken first, and held only
/// from here to the commit.
///
/// `finish` (SQLite's `COMMIT`) is sent with the last `INSERT`, in the same request to the
/// connection's thread: an issuance step then costs one hand-off less per transaction. It runs only
/// if the inserts succeeded — SQLite stops a batch at the first failing statement — so a
/// transaction never commits without its events; with no events it runs alone.
pub(crate) async fn flush(tx: &mut Tx, finish: Option<&str>) -> Result<()> {
    let drafts = std::mem::take(&mut tx.pending_audit);
    if drafts.is_empty() {
        // A transaction that sent nothing has nothing to commit; batched writes go with the commit.
        if let Some(sql) = finish
            && !(tx.begin_pending && tx.deferred.is_empty())
        {
            tx.flush_and_run(Some(sqlx::query(sql))).await??;
        }
        return Ok(());
    }
    if tx.backend() == Backend::Postgres {
        sqlx::query("SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock($1)) AS l")
            .bind(AUDIT_LOCK_KEY)
            .fetch_one(tx.conn().await?)
            .await?;
    }
    let now = OffsetDateTime::now_utc();
    let hint = tx.audit_head.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some((seq, prev)) = hint {
        let events = seal_all(&drafts, seq, &prev, now);
        if write(tx, &events, Some((seq, &prev)), finish).await? {
            tx.committed_head = events.last().map(|e| (e.seq, e.hash.clone()));
            return Ok(());
        }
    }
    let last = sqlx::query("SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1")
        .fetch_optional(tx.conn().await?)
        .await?;
    let (seq, prev) = match last {
        Some(r) => (r.try_get::<i64, _>("seq")?, r.try_get::<String, _>("hash")?),
        None => (0, GENESIS_HASH.to_owned()),
    };
    let events = seal_all(&drafts, seq, &prev, now);
    write(tx, &events, None, finish).await?;
    tx.committed_head = events.last().map(|e| (e.seq, e.hash.clone()));
    Ok(())
}

/// Seals `drafts` in order after the event (`seq`, `prev`).
fn seal_all(drafts: &[AuditDraft], mut seq: i64, prev: &str, at: OffsetDateTime) -> Vec<AuditEvent> {
    let mut prev = prev.to_owned();
    drafts
        .iter()
        .map(|d| {
            seq += 1;
            let ev = d.clone().seal(seq, &prev, at);
            prev = ev.hash.clone();
            ev
        })
        .collect()
}

/// Inserts `events` (at least one) in statements of [`EVENTS_PER_STATEMENT`], the first guarded by
/// `after` (see [`insert`]), `finish` sent with the last. Returns false, having written nothing,
/// when the guard found another head.
async fn write(
    tx: &mut Tx,
    events: &[AuditEvent],
    after: Option<(i64, &str)>,
    finish: Option<&str>,
) -> Result<bool> {
    let chunks: Vec<&[AuditEvent]> = events.chunks(EVENTS_PER_STATEMENT).collect();
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        let guard = if i == 0 { after } else { None };
        if !insert(tx, chunk, guard, if i == last { finish } else { None }).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Inserts `events` in one statement, then runs `finish` if given; with `after`, only if (`seq`,
/// `hash`) is still the chain's last event. Returns whether they were inserted.
///
/// The guard differs by backend. PostgreSQL inserts the rows only `WHERE` the head matches and
/// counts them (a failed statement would abort its whole transaction there). SQLite must *fail*
/// instead, so that a `COMMIT` sent in the same batch does not run: the first row's `prev_hash`
/// is a subquery that is `NULL` unless the head matches, and the `NOT NULL` constraint refuses it.
async fn insert(
    tx: &mut Tx,
    events: &[AuditEvent],
    after: Option<(i64, &str)>,
    finish: Option<&str>,
) -> Result<bool> {
    const FIELDS: usize = 9;
    const PREV_HASH: usize = 8;
    let (s, h) = (events.len() * FIELDS + 1, events.len() * FIELDS + 2);
    let guard_in_row = after.is_some() && tx.backend() == Backend::Sqlite;
    let rows: Vec<String> = (0..events.len())
        .map(|i| {
            let params: Vec<String> = (1..=FIELDS)
                .map(|f| match f {
                    PREV_HASH if i == 0 && guard_in_row => format!(
                        "(SELECT hash FROM audit_event WHERE seq = ${s} AND hash = ${h} \
                         AND NOT EXISTS (SELECT 1 FROM audit_event WHERE seq > ${s}))"
                    ),
                    _ => format!("${}", i * FIELDS + f),
                })
                .collect();
            format!("({})", params.join(", "))
        })
        .collect();
    let columns = "seq, actor, action, subject, outcome, detail, at, prev_hash, hash";
    let sql = if after.is_some() && !guard_in_row {
        format!(
            "INSERT INTO audit_event ({columns}) SELECT * FROM (VALUES {}) AS v
             WHERE EXISTS (SELECT 1 FROM audit_event WHERE seq = ${s} AND hash = ${h})
             AND NOT EXISTS (SELECT 1 FROM audit_event WHERE seq > ${s})",
            rows.join(", ")
        )
    } else {
        format!("INSERT INTO audit_event ({columns}) VALUES {}", rows.join(", "))
    };
    // SQLite's pending `BEGIN` and batched writes go first and `finish` last: one request for the
    // whole transaction.
    let mut sql = sql;
    if let Some(finish) = finish {
        sql.push_str("; ");
        sql.push_str(finish);
    }
    let mut q = sqlx::query(&sql);
    for ev in events {
        q = q
            .bind(ev.seq)
            .bind(&ev.actor)
            .bind(&ev.action)
            .bind(&ev.subject)
            .bind(ev.outcome.as_str())
            .bind(&ev.detail)
            .bind(to_micros(ev.at))
            .bind(&ev.prev_hash)
            .bind(&ev.hash);
    }
    if let Some((seq, hash)) = after {
        q = q.bind(seq).bind(hash.to_owned());
    }
    match tx.flush_and_run(Some(q)).await? {
        // On SQLite a plain `VALUES` insert writes every row or fails (and the count is the
        // `COMMIT`'s when it travels with it).
        Ok((count, _)) => Ok(tx.backend() == Backend::Sqlite || count == events.len() as u64),
        // Another head: the guarded `prev_hash` was NULL, or this `seq` is taken.
        Err(sqlx::Error::Database(e))
            if guard_in_row
                && matches!(e.kind(), ErrorKind::NotNullViolation | ErrorKind::UniqueViolation) =>
        {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
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
        .fetch_all(&mut *store.conn().await?)
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
        .fetch_all(&mut *store.conn().await?)
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

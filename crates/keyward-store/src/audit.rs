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
//!
//! **Keys.** A store opened by the server carries [`AuditKeys`] derived from its secret key: new
//! events are sealed with HMAC-SHA256 under the current chain key, and verification uses the
//! current and older keys (see `keyward_core::audit` for the two chain versions and how events
//! written before the switch stay verifiable). A store opened without keys (tools, tests) writes
//! plain SHA-256 events and cannot verify keyed ones. [`anchor`] signs the head for keeping
//! outside the database; [`verify_against`] checks the chain against such an anchor.

use keyward_core::audit::anchor::Anchor;
use keyward_core::audit::{AuditDraft, AuditEvent, GENESIS_HASH, MacKeys, verify_chain_from};
use time::OffsetDateTime;

use crate::db::{Backend, Store, Tx, from_micros, to_micros};
use crate::error::Result;
use crate::stmt::{Row, Stmt, int, parsed, text};

/// Events per `INSERT`: nine parameters each, well under SQLite's 32 766 and PostgreSQL's 65 535
/// parameter limits (a sync of thousands of people is one transaction).
const EVENTS_PER_STATEMENT: usize = 64;

/// Advisory-lock key that serialises audit appends on PostgreSQL ("KWAUDIT" in ASCII).
const AUDIT_LOCK_KEY: i64 = 0x004b_5741_5544_4954;

/// The keys of the audit chain: one ring seals events, the other signs anchors (separate HMAC
/// subkeys of the server's secret key).
#[derive(Debug, Default)]
pub struct AuditKeys {
    /// Seals and verifies events.
    pub chain: MacKeys,
    /// Signs and checks anchors.
    pub anchor: MacKeys,
}

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
pub(crate) async fn flush(tx: &mut Tx) -> Result<()> {
    let drafts = std::mem::take(&mut tx.pending_audit);
    if drafts.is_empty() {
        return Ok(());
    }
    if tx.backend() == Backend::Postgres {
        Stmt::new("SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock($1)) AS l")
            .bind(AUDIT_LOCK_KEY)
            .fetch_one(&mut *tx)
            .await?;
    }
    let now = OffsetDateTime::now_utc();
    let hint = tx.audit_head.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let keys = tx.audit_keys.clone();
    let key = keys.chain.current();
    if let Some((seq, prev)) = hint {
        let events = seal_all(&drafts, key, seq, &prev, now);
        if write(tx, &events, Some((seq, &prev))).await? {
            tx.committed_head = events.last().map(|e| (e.seq, e.hash.clone()));
            return Ok(());
        }
    }
    let last = Stmt::new("SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *tx)
        .await?;
    let (seq, prev) = match last {
        Some(r) => (int(&r, "seq")?, text(&r, "hash")?),
        None => (0, GENESIS_HASH.to_owned()),
    };
    let events = seal_all(&drafts, key, seq, &prev, now);
    write(tx, &events, None).await?;
    tx.committed_head = events.last().map(|e| (e.seq, e.hash.clone()));
    Ok(())
}

/// Seals `drafts` in order after the event (`seq`, `prev`), with `key` when there is one.
fn seal_all(
    drafts: &[AuditDraft],
    key: Option<&keyward_core::audit::MacKey>,
    mut seq: i64,
    prev: &str,
    at: OffsetDateTime,
) -> Vec<AuditEvent> {
    let mut prev = prev.to_owned();
    drafts
        .iter()
        .map(|d| {
            seq += 1;
            let ev = d.clone().seal_with(key, seq, &prev, at);
            prev = ev.hash.clone();
            ev
        })
        .collect()
}

/// Inserts `events` (at least one) in statements of [`EVENTS_PER_STATEMENT`], the first guarded by
/// `after` (see [`insert`]). Returns false, having written nothing, when the guard found another head.
async fn write(tx: &mut Tx, events: &[AuditEvent], after: Option<(i64, &str)>) -> Result<bool> {
    for (i, chunk) in events.chunks(EVENTS_PER_STATEMENT).enumerate() {
        if !insert(tx, chunk, if i == 0 { after } else { None }).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Inserts `events` in one statement; with `after`, only if (`seq`, `hash`) is still the chain's
/// last event (the rows are inserted `WHERE` the head matches, and counted). Returns whether they
/// were inserted.
async fn insert(tx: &mut Tx, events: &[AuditEvent], after: Option<(i64, &str)>) -> Result<bool> {
    const FIELDS: usize = 9;
    let rows: Vec<String> = (0..events.len())
        .map(|i| {
            let params: Vec<String> = (1..=FIELDS).map(|f| format!("${}", i * FIELDS + f)).collect();
            format!("({})", params.join(", "))
        })
        .collect();
    let columns = "seq, actor, action, subject, outcome, detail, at, prev_hash, hash";
    let sql = match after {
        Some(_) => {
            let (s, h) = (events.len() * FIELDS + 1, events.len() * FIELDS + 2);
            format!(
                "INSERT INTO audit_event ({columns}) SELECT * FROM (VALUES {}) AS v
                 WHERE EXISTS (SELECT 1 FROM audit_event WHERE seq = ${s} AND hash = ${h})
                 AND NOT EXISTS (SELECT 1 FROM audit_event WHERE seq > ${s})",
                rows.join(", ")
            )
        }
        None => format!("INSERT INTO audit_event ({columns}) VALUES {}", rows.join(", ")),
    };
    let mut q = Stmt::new(sql);
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
        q = q.bind(seq).bind(hash);
    }
    Ok(tx.execute(q).await? == events.len() as u64)
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

fn event_from_row(r: &Row) -> Result<AuditEvent> {
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
    let rows = Stmt::new(sql)
        .bind(filter.subject.clone())
        .bind(filter.after_seq.unwrap_or(0))
        .bind(filter.limit.unwrap_or(100))
        .fetch_all(store)
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
    let rows = Stmt::new(format!("SELECT {COLUMNS} FROM audit_event ORDER BY seq")).fetch_all(store).await?;
    rows.iter().map(event_from_row).collect()
}

/// Verifies the whole stored chain, page by page, with the store's chain keys; returns the number
/// of events verified, or [`keyward_core::ChainBreak`] naming the first bad event.
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
        verify_chain_from(&store.audit_keys.chain, &prev, next_seq, &page).map_err(|mut b| {
            b.index += count as usize;
            b
        })?;
        count += page.len() as u64;
        next_seq += page.len() as i64;
        prev = page.last().map(|e| e.hash.clone()).unwrap_or_default();
    }
}

/// The chain's head (last sequence number and hash; 0 and [`GENESIS_HASH`] when empty).
async fn head(store: &Store) -> Result<(i64, String)> {
    let last = Stmt::new("SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1")
        .fetch_optional(store)
        .await?;
    Ok(match last {
        Some(r) => (int(&r, "seq")?, text(&r, "hash")?),
        None => (0, GENESIS_HASH.to_owned()),
    })
}

/// Verifies the chain, then signs its head with the current anchor key (see
/// `keyward_core::audit::anchor`). A broken chain gets no anchor.
pub async fn anchor(store: &Store) -> Result<Anchor> {
    let key = store.audit_keys.anchor.current().ok_or(crate::StoreError::NoAuditKey)?;
    verify(store).await?;
    let (seq, hash) = head(store).await?;
    Ok(Anchor::sign(seq, &hash, OffsetDateTime::now_utc(), key))
}

/// Verifies the whole chain and that it still holds the event `anchor` names, with the hash it
/// recorded: catches the newest events deleted (truncation) and a chain rewritten up to the
/// anchor, which the keyed chain alone cannot. Returns the number of events verified.
pub async fn verify_against(store: &Store, anchor: &Anchor) -> Result<u64> {
    if store.audit_keys.anchor.current().is_none() {
        return Err(crate::StoreError::NoAuditKey);
    }
    anchor.check_signature(&store.audit_keys.anchor)?;
    let count = verify(store).await?;
    let at_seq = Stmt::new(format!("SELECT {COLUMNS} FROM audit_event WHERE seq = $1"))
        .bind(anchor.seq)
        .fetch_optional(store)
        .await?;
    let at_seq = at_seq.as_ref().map(event_from_row).transpose()?;
    anchor.check_chain(at_seq.as_ref(), head(store).await?.0)?;
    Ok(count)
}

//! Bulk and background work: a job is split into units (one row each) that workers claim with a
//! lease, so a job survives restarts and a crashed worker's units are picked up again.
//!
//! * **Claim** marks up to `n` pending units — or running units whose lease expired — as running
//!   under a fresh lease token. PostgreSQL selects them `FOR UPDATE SKIP LOCKED` so concurrent
//!   workers never wait on or take the same unit; SQLite runs the claim in an immediate
//!   (write-locked) transaction, which serialises claimers. The claim commits on its own: the
//!   lease must be visible to other workers at once.
//! * **Complete** and **fail** take the caller's transaction (so a unit's effect and its
//!   completion commit together) and check the lease token: a worker whose lease expired and was
//!   taken over gets [`StoreError::LeaseLost`]. Completing an already-completed unit with the same
//!   token is a no-op ([`Completion::AlreadyDone`]), so retrying a completion is safe.
//!
//! Units are bookkeeping, not user actions: only job creation writes an audit event; the work a
//! unit does audits itself.

use std::time::Duration;

use keyward_core::{AuditDraft, JobId};
use serde::Serialize;
use serde_json::json;

use crate::audit;
use crate::db::Tx;
use crate::db::{Backend, Store, now_micros};
use crate::error::{Result, StoreError};
use crate::stmt::{Row, Stmt, int, opt_text, parsed, text};

/// A unit handed to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedUnit {
    /// Unit id.
    pub id: String,
    /// Its job.
    pub job_id: JobId,
    /// Position in the job (0-based).
    pub seq: i64,
    /// What to do (job-specific JSON text).
    pub payload: String,
    /// How many times it has been claimed, this claim included.
    pub attempts: i64,
    /// Proof of the lease; pass it to [`complete`] or [`fail`].
    pub lease_token: String,
}

/// The result of [`complete`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The unit is now done.
    Done,
    /// It was already done under this lease (a retried completion).
    AlreadyDone,
}

/// Counts of a job's units by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobProgress {
    /// Not yet claimed (or released for retry).
    pub pending: i64,
    /// Claimed and leased.
    pub running: i64,
    /// Finished.
    pub done: i64,
    /// Given up.
    pub failed: i64,
}

/// One unit's outcome, for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitReport {
    /// Position in the job.
    pub seq: i64,
    /// Payload.
    pub payload: String,
    /// `pending`, `running`, `done` or `failed`.
    pub state: String,
    /// Result or error text.
    pub result: Option<String>,
    /// Claims so far.
    pub attempts: i64,
}

/// Creates a job of `kind` with one unit per payload.
pub async fn create(
    tx: &mut Tx,
    actor: &str,
    kind: &str,
    params: &serde_json::Value,
    payloads: &[String],
) -> Result<JobId> {
    let id = JobId::new();
    let now = now_micros();
    tx.execute(
        Stmt::new("INSERT INTO job (id, kind, created_by, params, created_at) VALUES ($1,$2,$3,$4,$5)")
            .bind(id.to_string())
            .bind(kind.to_owned())
            .bind(actor.to_owned())
            .bind(params.to_string())
            .bind(now),
    )
    .await?;
    for (seq, payload) in payloads.iter().enumerate() {
        tx.execute(
            Stmt::new(
                "INSERT INTO job_unit (id, job_id, seq, payload, state, attempts, updated_at)
             VALUES ($1,$2,$3,$4,'pending',0,$5)",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(id.to_string())
            .bind(seq as i64)
            .bind(payload.clone())
            .bind(now),
        )
        .await?;
    }
    let detail = json!({"kind": kind, "units": payloads.len()});
    audit::append(tx, AuditDraft::new(actor, "job.create", format!("job:{id}")).detail(&detail));
    Ok(id)
}

fn claimed_from_row(r: &Row, token: &str) -> Result<ClaimedUnit> {
    Ok(ClaimedUnit {
        id: text(r, "id")?,
        job_id: parsed(r, "job_id")?,
        seq: int(r, "seq")?,
        payload: text(r, "payload")?,
        attempts: int(r, "attempts")?,
        lease_token: token.to_owned(),
    })
}

/// Claims up to `n` units (of `job`, or of any job) for `lease`; expired leases are taken over.
pub async fn claim(store: &Store, job: Option<JobId>, n: i64, lease: Duration) -> Result<Vec<ClaimedUnit>> {
    let token = uuid::Uuid::new_v4().to_string();
    let now = now_micros();
    let until = now + i64::try_from(lease.as_micros()).unwrap_or(i64::MAX / 2);
    let lock = match store.backend() {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE job_unit SET state = 'running', lease_token = $1, lease_until = $2, attempts = attempts + 1,
            updated_at = $3
         WHERE id IN (SELECT id FROM job_unit
                      WHERE ($4 IS NULL OR job_id = $4)
                        AND (state = 'pending' OR (state = 'running' AND lease_until < $3))
                      ORDER BY job_id, seq LIMIT $5 {lock})
         RETURNING id, job_id, seq, payload, attempts"
    );
    let mut tx = store.begin().await?;
    let rows = Stmt::new(sql)
        .bind(token.clone())
        .bind(until)
        .bind(now)
        .bind(job.map(|j| j.to_string()))
        .bind(n)
        .fetch_all(&mut tx)
        .await?;
    tx.commit().await?;
    let mut units = rows.iter().map(|r| claimed_from_row(r, &token)).collect::<Result<Vec<_>>>()?;
    units.sort_by_key(|u| (u.job_id, u.seq));
    Ok(units)
}

async fn finish(tx: &mut Tx, unit: &ClaimedUnit, state: &str, result: &str) -> Result<Completion> {
    let changed = tx
        .execute(
            Stmt::new(
                "UPDATE job_unit SET state = $3, result = $4, lease_until = NULL, updated_at = $5
         WHERE id = $1 AND lease_token = $2 AND state = 'running'",
            )
            .bind(unit.id.clone())
            .bind(unit.lease_token.clone())
            .bind(state.to_owned())
            .bind(result.to_owned())
            .bind(now_micros()),
        )
        .await?;
    if changed == 1 {
        return Ok(Completion::Done);
    }
    let row = Stmt::new("SELECT state, lease_token FROM job_unit WHERE id = $1")
        .bind(unit.id.clone())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("job unit {}", unit.id)))?;
    let same_lease = opt_text(&row, "lease_token")?.as_deref() == Some(unit.lease_token.as_str());
    if same_lease && text(&row, "state")? == state {
        Ok(Completion::AlreadyDone)
    } else {
        Err(StoreError::LeaseLost(unit.id.clone()))
    }
}

/// Marks a claimed unit done with `result` (idempotent for the same lease).
pub async fn complete(tx: &mut Tx, unit: &ClaimedUnit, result: &str) -> Result<Completion> {
    finish(tx, unit, "done", result).await
}

/// Marks a claimed unit failed for good with `error`, or (with `retry`) releases it for another
/// attempt.
pub async fn fail(tx: &mut Tx, unit: &ClaimedUnit, error: &str, retry: bool) -> Result<Completion> {
    if !retry {
        return finish(tx, unit, "failed", error).await;
    }
    let changed = tx.execute(Stmt::new(
        "UPDATE job_unit SET state = 'pending', result = $3, lease_token = NULL, lease_until = NULL, updated_at = $4
         WHERE id = $1 AND lease_token = $2 AND state = 'running'",
    )
    .bind(unit.id.clone())
    .bind(unit.lease_token.clone())
    .bind(error.to_owned())
    .bind(now_micros())
    )
    .await?;
    if changed == 1 { Ok(Completion::Done) } else { Err(StoreError::LeaseLost(unit.id.clone())) }
}

/// Unit counts of a job by state.
pub async fn progress(store: &Store, job: JobId) -> Result<JobProgress> {
    let rows = Stmt::new("SELECT state, COUNT(*) AS n FROM job_unit WHERE job_id = $1 GROUP BY state")
        .bind(job.to_string())
        .fetch_all(store)
        .await?;
    let mut p = JobProgress::default();
    for r in &rows {
        let n = int(r, "n")?;
        match text(r, "state")?.as_str() {
            "pending" => p.pending = n,
            "running" => p.running = n,
            "done" => p.done = n,
            "failed" => p.failed = n,
            other => return Err(StoreError::Corrupt(format!("job unit state {other}"))),
        }
    }
    Ok(p)
}

/// The units of a job in order, after position `after_seq` (from the first when `None`), at
/// most `limit`, for the report.
pub async fn report(
    store: &Store,
    job: JobId,
    after_seq: Option<i64>,
    limit: i64,
) -> Result<Vec<UnitReport>> {
    let rows = Stmt::new(
        "SELECT seq, payload, state, result, attempts FROM job_unit WHERE job_id = $1 AND seq > $2
         ORDER BY seq LIMIT $3",
    )
    .bind(job.to_string())
    .bind(after_seq.unwrap_or(-1))
    .bind(limit)
    .fetch_all(store)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(UnitReport {
                seq: int(r, "seq")?,
                payload: text(r, "payload")?,
                state: text(r, "state")?,
                result: opt_text(r, "result")?,
                attempts: int(r, "attempts")?,
            })
        })
        .collect()
}

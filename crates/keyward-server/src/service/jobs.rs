//! Bulk provisioning jobs: the server keeps the list of rows and who has done which, so a bulk
//! run survives a crash of the operator's tool and is resumed where it stopped.
//!
//! A job is the store's job queue (`keyward_store::jobs`): one unit per CSV row. The rows are
//! judged once, when the job is created: a row repeating an earlier person, a person Keyward does
//! not know, or a person who already holds a registered managed passkey gets a *verdict* in its
//! payload. Such a unit is settled by the server the first time a worker would have claimed it
//! (skipped → done, refused → failed), so workers only ever see rows to provision and the report
//! still lists every row in CSV order. The tool provisions the rest and reports each unit's
//! outcome under its lease.

use std::collections::HashSet;
use std::time::Duration;

use keyward_core::{JobId, PasskeyOrigin, PasskeyState};
use keyward_store::jobs::{self, ClaimedUnit, JobProgress, UnitReport};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::issuance::PersonRef;
use super::{Service, store_error};
use crate::error::ApiError;

/// The job kind of bulk provisioning.
pub const BULK_KIND: &str = "bulk-provision";
/// Most rows one bulk job may hold.
pub const MAX_ROWS: usize = 100_000;
/// Longest lease a worker may ask for.
pub const MAX_LEASE: Duration = Duration::from_secs(3600);

/// One row of a bulk job, as the tool parsed it from the CSV.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
pub struct BulkRow {
    /// The CSV line the row came from (for messages and the report).
    pub line: u64,
    /// The person's UPN.
    pub upn: String,
    /// The key's serial, when the CSV names one.
    pub serial: Option<String>,
    /// Display name of the passkey in Entra.
    pub display_name: Option<String>,
}

/// What the server decided about a row when the job was created.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
pub struct Verdict {
    /// `skipped` (nothing to do) or `refused` (cannot be done).
    pub outcome: String,
    /// Why, in words.
    pub reason: String,
}

/// A unit's payload: the row plus the server's verdict, if any.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
pub struct BulkUnit {
    /// The row.
    #[serde(flatten)]
    pub row: BulkRow,
    /// Set when the row is not to be provisioned.
    pub verdict: Option<Verdict>,
}

/// The judgement of rows at job creation.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct BulkPlan {
    /// The job.
    pub id: String,
    /// Rows in the job.
    pub rows: usize,
    /// Rows to provision.
    pub to_provision: usize,
    /// Rows skipped or refused, with the reason.
    pub settled: Vec<BulkUnit>,
}

/// A unit handed to a worker, as the API shows it.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct UnitLease {
    /// The unit id.
    pub unit: String,
    /// Position in the job.
    pub seq: i64,
    /// The row.
    pub row: BulkRow,
    /// Claims so far, this one included (more than 1: a previous worker stopped on it).
    pub attempts: i64,
    /// Proof of the lease, to send with the unit's result.
    pub lease_token: String,
}

/// A job's progress.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct JobStatus {
    /// The job.
    pub id: String,
    /// Units not yet claimed.
    pub pending: i64,
    /// Units leased to a worker.
    pub running: i64,
    /// Units done (provisioned or skipped).
    pub done: i64,
    /// Units failed for good.
    pub failed: i64,
}

impl JobStatus {
    fn new(id: JobId, p: JobProgress) -> Self {
        Self { id: id.to_string(), pending: p.pending, running: p.running, done: p.done, failed: p.failed }
    }
}

/// One row of the job report.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct UnitOutcome {
    /// Position in the job.
    pub seq: i64,
    /// The row.
    pub row: BulkRow,
    /// `pending`, `running`, `done` or `failed`.
    pub state: String,
    /// The worker's result (JSON text) or the error.
    pub result: Option<String>,
    /// Claims so far.
    pub attempts: i64,
}

fn unit_from(id: &str, token: &str) -> ClaimedUnit {
    // Completion checks only the unit id and its lease token.
    ClaimedUnit {
        id: id.to_owned(),
        job_id: JobId::new(),
        seq: 0,
        payload: String::new(),
        attempts: 0,
        lease_token: token.to_owned(),
    }
}

fn parse_unit(payload: &str) -> Result<BulkUnit, ApiError> {
    serde_json::from_str(payload).map_err(|e| ApiError::internal(format!("bulk unit payload: {e}")))
}

impl Service {
    /// Creates a bulk provisioning job from the rows; judges each row (duplicates, unknown
    /// people, people already holding a registered managed passkey).
    pub async fn create_bulk_job(&self, actor: &str, rows: Vec<BulkRow>) -> Result<BulkPlan, ApiError> {
        if rows.is_empty() {
            return Err(ApiError::BadRequest("the job has no rows; give at least one person".into()));
        }
        if rows.len() > MAX_ROWS {
            return Err(ApiError::BadRequest(format!(
                "{} rows is more than one job may hold ({MAX_ROWS}); split the CSV",
                rows.len()
            )));
        }
        let mut seen = HashSet::new();
        let mut units = Vec::with_capacity(rows.len());
        for row in rows {
            let key = row.upn.to_lowercase();
            let verdict = if !seen.insert(key) {
                Some(Verdict {
                    outcome: "skipped".into(),
                    reason: "the same person appears on an earlier line".into(),
                })
            } else {
                self.judge(&row.upn).await?
            };
            units.push(BulkUnit { row, verdict });
        }
        let payloads = units
            .iter()
            .map(|u| serde_json::to_string(u).map_err(ApiError::internal))
            .collect::<Result<Vec<_>, _>>()?;
        let params = serde_json::json!({"rows": units.len()});
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let id = jobs::create(&mut tx, actor, BULK_KIND, &params, &payloads).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        let settled: Vec<BulkUnit> = units.into_iter().filter(|u| u.verdict.is_some()).collect();
        Ok(BulkPlan {
            id: id.to_string(),
            rows: payloads.len(),
            to_provision: payloads.len() - settled.len(),
            settled,
        })
    }

    async fn judge(&self, upn: &str) -> Result<Option<Verdict>, ApiError> {
        let person = match self.find_person(&PersonRef::Upn(upn.to_owned())).await {
            Ok(p) => p,
            Err(ApiError::NotFound(_)) => {
                return Ok(Some(Verdict {
                    outcome: "refused".into(),
                    reason: format!("{upn} is not a person Keyward knows; sync people from Entra first"),
                }));
            }
            Err(e) => return Err(e),
        };
        if !person.enabled || person.deleted_in_entra {
            return Ok(Some(Verdict {
                outcome: "refused".into(),
                reason: format!("{upn} is disabled or deleted in Entra"),
            }));
        }
        let passkeys =
            keyward_store::passkeys::list_by_person(&self.store, person.id).await.map_err(store_error)?;
        if passkeys.iter().any(|p| p.state == PasskeyState::Registered && p.origin == PasskeyOrigin::Managed)
        {
            return Ok(Some(Verdict {
                outcome: "skipped".into(),
                reason: "already has a registered passkey issued by Keyward".into(),
            }));
        }
        Ok(None)
    }

    /// Claims up to `n` units of the job to provision under a lease; units the server judged
    /// at creation are settled on the way and never handed out.
    pub async fn claim_units(&self, job: JobId, n: i64, lease: Duration) -> Result<Vec<UnitLease>, ApiError> {
        self.job_status(job).await?;
        let lease = lease.clamp(Duration::from_secs(1), MAX_LEASE);
        let n = n.clamp(1, 1000);
        loop {
            let claimed = jobs::claim(&self.store, Some(job), n, lease).await.map_err(store_error)?;
            if claimed.is_empty() {
                return Ok(Vec::new());
            }
            let mut out = Vec::new();
            let mut tx = self.store.begin().await.map_err(store_error)?;
            for unit in claimed {
                let parsed = parse_unit(&unit.payload)?;
                match &parsed.verdict {
                    Some(v) => {
                        let result =
                            serde_json::json!({"outcome": v.outcome, "reason": v.reason}).to_string();
                        if v.outcome == "skipped" {
                            jobs::complete(&mut tx, &unit, &result).await.map_err(store_error)?;
                        } else {
                            jobs::fail(&mut tx, &unit, &result, false).await.map_err(store_error)?;
                        }
                    }
                    None => out.push(UnitLease {
                        unit: unit.id.clone(),
                        seq: unit.seq,
                        row: parsed.row,
                        attempts: unit.attempts,
                        lease_token: unit.lease_token.clone(),
                    }),
                }
            }
            tx.commit().await.map_err(store_error)?;
            if !out.is_empty() {
                return Ok(out);
            }
        }
    }

    /// Records a unit's outcome under its lease: done, failed for good, or (with `retry`)
    /// released for another attempt. Repeating the same completion is harmless.
    pub async fn finish_unit(
        &self,
        unit: &str,
        lease_token: &str,
        done: bool,
        result: &str,
        retry: bool,
    ) -> Result<(), ApiError> {
        let claimed = unit_from(unit, lease_token);
        let mut tx = self.store.begin().await.map_err(store_error)?;
        if done {
            jobs::complete(&mut tx, &claimed, result).await.map_err(store_error)?;
        } else {
            jobs::fail(&mut tx, &claimed, result, retry).await.map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)?;
        Ok(())
    }

    /// The job's progress; 404 for an unknown job.
    pub async fn job_status(&self, job: JobId) -> Result<JobStatus, ApiError> {
        let p = jobs::progress(&self.store, job).await.map_err(store_error)?;
        if p == JobProgress::default() {
            return Err(ApiError::NotFound(format!("job {job}")));
        }
        Ok(JobStatus::new(job, p))
    }

    /// Every row of the job with its outcome, in CSV order.
    pub async fn job_report(&self, job: JobId) -> Result<Vec<UnitOutcome>, ApiError> {
        let units: Vec<UnitReport> = jobs::report(&self.store, job).await.map_err(store_error)?;
        if units.is_empty() {
            return Err(ApiError::NotFound(format!("job {job}")));
        }
        units
            .into_iter()
            .map(|u| {
                Ok(UnitOutcome {
                    seq: u.seq,
                    row: parse_unit(&u.payload)?.row,
                    state: u.state,
                    result: u.result,
                    attempts: u.attempts,
                })
            })
            .collect()
    }
}

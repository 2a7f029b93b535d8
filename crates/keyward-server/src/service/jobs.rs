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

use keyward_core::{JobId, PasskeyOrigin, PasskeyState, Permission};
use keyward_proto::jobs::{BulkPlan, BulkRow, BulkUnit, JobStatus, UnitLease, UnitOutcome, Verdict};
use keyward_store::jobs::{self, ClaimedUnit, JobProgress, UnitReport};

use super::cursor::{self, Listed};
use super::issuance::PersonRef;
use super::{Caller, Service, ServiceError};

/// The job kind of bulk provisioning.
pub const BULK_KIND: &str = "bulk-provision";
/// Most rows one bulk job may hold.
pub const MAX_ROWS: usize = 100_000;
/// Longest lease a worker may ask for.
pub const MAX_LEASE: Duration = Duration::from_secs(3600);

fn job_status(id: JobId, p: JobProgress) -> JobStatus {
    JobStatus { id: id.to_string(), pending: p.pending, running: p.running, done: p.done, failed: p.failed }
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

fn parse_unit(payload: &str) -> Result<BulkUnit, ServiceError> {
    serde_json::from_str(payload).map_err(|e| ServiceError::internal(format!("bulk unit payload: {e}")))
}

impl Service {
    /// Creates a bulk provisioning job from the rows; judges each row (duplicates, unknown
    /// people, people already holding a registered managed passkey).
    pub async fn create_bulk_job(
        &self,
        caller: &Caller,
        rows: Vec<BulkRow>,
    ) -> Result<BulkPlan, ServiceError> {
        caller.require(Permission::JobsRun)?;
        if rows.is_empty() {
            return Err(ServiceError::Invalid("the job has no rows; give at least one person".into()));
        }
        if rows.len() > MAX_ROWS {
            return Err(ServiceError::Invalid(format!(
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
            .map(|u| serde_json::to_string(u).map_err(ServiceError::internal))
            .collect::<Result<Vec<_>, _>>()?;
        let params = serde_json::json!({"rows": units.len()});
        let mut tx = self.store.begin().await?;
        let id = jobs::create(&mut tx, &caller.actor(), BULK_KIND, &params, &payloads).await?;
        tx.commit().await?;
        let settled: Vec<BulkUnit> = units.into_iter().filter(|u| u.verdict.is_some()).collect();
        Ok(BulkPlan {
            id: id.to_string(),
            rows: payloads.len(),
            to_provision: payloads.len() - settled.len(),
            settled,
        })
    }

    async fn judge(&self, upn: &str) -> Result<Option<Verdict>, ServiceError> {
        let person = match self.find_person(&PersonRef::Upn(upn.to_owned())).await {
            Ok(p) => p,
            Err(ServiceError::NotFound(_) | ServiceError::UnknownPerson(_)) => {
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
        let passkeys = keyward_store::passkeys::list_by_person(&self.store, person.id).await?;
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
    pub async fn claim_units(
        &self,
        caller: &Caller,
        job: JobId,
        n: i64,
        lease: Duration,
    ) -> Result<Vec<UnitLease>, ServiceError> {
        self.job_status(caller, job).await?;
        let lease = lease.clamp(Duration::from_secs(1), MAX_LEASE);
        let n = n.clamp(1, 1000);
        loop {
            let claimed = jobs::claim(&self.store, Some(job), n, lease).await?;
            if claimed.is_empty() {
                return Ok(Vec::new());
            }
            let mut out = Vec::new();
            let mut tx = self.store.begin().await?;
            for unit in claimed {
                let parsed = parse_unit(&unit.payload)?;
                match &parsed.verdict {
                    Some(v) => {
                        let result =
                            serde_json::json!({"outcome": v.outcome, "reason": v.reason}).to_string();
                        if v.outcome == "skipped" {
                            jobs::complete(&mut tx, &unit, &result).await?;
                        } else {
                            jobs::fail(&mut tx, &unit, &result, false).await?;
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
            tx.commit().await?;
            if !out.is_empty() {
                return Ok(out);
            }
        }
    }

    /// Records a unit's outcome under its lease: `done`, `failed` for good, or `retry` (released
    /// for another attempt). Repeating the same completion is harmless.
    pub async fn finish_unit(
        &self,
        caller: &Caller,
        unit: &str,
        lease_token: &str,
        outcome: &str,
        result: &str,
    ) -> Result<(), ServiceError> {
        caller.require(Permission::JobsRun)?;
        let (done, retry) = match outcome {
            "done" => (true, false),
            "failed" => (false, false),
            "retry" => (false, true),
            other => {
                return Err(ServiceError::Invalid(format!("outcome {other:?} is not done, failed or retry")));
            }
        };
        let claimed = unit_from(unit, lease_token);
        let mut tx = self.store.begin().await?;
        if done {
            jobs::complete(&mut tx, &claimed, result).await?;
        } else {
            jobs::fail(&mut tx, &claimed, result, retry).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The job's progress.
    pub async fn job_status(&self, caller: &Caller, job: JobId) -> Result<JobStatus, ServiceError> {
        caller.require(Permission::JobsRun)?;
        let p = jobs::progress(&self.store, job).await?;
        if p == JobProgress::default() {
            return Err(ServiceError::NotFound(format!("job {job}")));
        }
        Ok(job_status(job, p))
    }

    /// One page of the job's rows with their outcomes, in CSV order.
    pub async fn job_report(
        &self,
        caller: &Caller,
        job: JobId,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Listed<UnitOutcome>, ServiceError> {
        self.job_status(caller, job).await?;
        let limit = cursor::limit(limit)?;
        let after_seq = match after {
            Some(c) => Some(cursor::decode(c, 1)?[0].parse::<i64>().map_err(|_| cursor::invalid())?),
            None => None,
        };
        let units: Vec<UnitReport> = jobs::report(&self.store, job, after_seq, limit + 1).await?;
        let rows = units
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
            .collect::<Result<Vec<_>, ServiceError>>()?;
        Ok(Listed::page(rows, limit, |u| cursor::encode(&[&u.seq.to_string()])))
    }
}

//! `/api/v1/jobs`: bulk provisioning jobs, their units, progress and report.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One row of a bulk job, as the tool parsed it from the CSV.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
pub struct BulkRow {
    /// The CSV line the row came from (for messages and the report).
    pub line: u32,
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

/// A new bulk provisioning job.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct BulkJobRequest {
    /// The rows, in CSV order.
    pub rows: Vec<BulkRow>,
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

/// What a worker asks for.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ClaimRequest {
    /// How many units (1–1000).
    pub count: i64,
    /// Lease length in seconds (1–3600); an unfinished unit goes to another worker after it.
    pub lease_secs: u64,
}

/// A unit handed to a worker.
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

/// A unit's outcome.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct UnitResult {
    /// The unit id.
    pub unit: String,
    /// The lease token of the claim.
    pub lease_token: String,
    /// `done`, `failed` or `retry` (release the unit for another attempt).
    pub outcome: String,
    /// Result (JSON text) or error; never a PIN.
    pub result: String,
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

//! `/api/v1/jobs`: bulk provisioning jobs — create from rows, claim units under a lease, report
//! each unit's outcome, progress and the per-row report. The work itself (the key, the PIN) is
//! done by the operator's tool; the server is the durable list of who is done.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use keyward_core::{JobId, Permission};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::actor;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson};
use crate::service::Service;
use crate::service::jobs::{BulkPlan, BulkRow, JobStatus, UnitLease, UnitOutcome};

pub(super) fn routes() -> OpenApiRouter<Arc<Service>> {
    OpenApiRouter::new()
        .routes(routes!(create_bulk_job))
        .routes(routes!(show_job))
        .routes(routes!(claim_units))
        .routes(routes!(finish_unit))
        .routes(routes!(job_report))
}

fn job_id(text: &str) -> Result<JobId, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound(format!("job {text:?}")))
}

/// A new bulk provisioning job.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct BulkJobRequest {
    /// The rows, in CSV order.
    pub rows: Vec<BulkRow>,
}

/// Create a bulk provisioning job; duplicate rows and people already holding a registered
/// managed passkey are recorded as skipped.
#[utoipa::path(post, path = "/api/v1/jobs/bulk", tag = "jobs", request_body = BulkJobRequest,
    security(("bearer" = ["jobs:run"])),
    responses((status = 201, body = BulkPlan), (status = 400, body = crate::error::ErrorBody)))]
async fn create_bulk_job(
    State(s): State<Arc<Service>>,
    caller: Caller,
    ApiJson(req): ApiJson<BulkJobRequest>,
) -> Result<(axum::http::StatusCode, ApiJson<BulkPlan>), ApiError> {
    let actor = actor(&caller, Permission::JobsRun)?;
    let plan = s.create_bulk_job(&actor, req.rows).await?;
    Ok((axum::http::StatusCode::CREATED, ApiJson(plan)))
}

/// A job's progress.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(("id" = String, Path)),
    security(("bearer" = ["jobs:run"])), responses((status = 200, body = JobStatus)))]
async fn show_job(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<JobStatus>, ApiError> {
    caller.require(Permission::JobsRun)?;
    Ok(ApiJson(s.job_status(job_id(&id)?).await?))
}

/// What a worker asks for.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct ClaimRequest {
    /// How many units (1–1000).
    pub count: i64,
    /// Lease length in seconds (1–3600); an unfinished unit goes to another worker after it.
    pub lease_secs: u64,
}

/// Claim units to provision under a lease (pending ones, and ones whose lease expired).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/claim", tag = "jobs", request_body = ClaimRequest,
    params(("id" = String, Path)), security(("bearer" = ["jobs:run"])),
    responses((status = 200, body = Vec<UnitLease>)))]
async fn claim_units(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ClaimRequest>,
) -> Result<ApiJson<Vec<UnitLease>>, ApiError> {
    caller.require(Permission::JobsRun)?;
    let units = s.claim_units(job_id(&id)?, req.count, Duration::from_secs(req.lease_secs)).await?;
    Ok(ApiJson(units))
}

/// A unit's outcome.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
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

/// Record a claimed unit's outcome (idempotent for the same lease).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/units", tag = "jobs", request_body = UnitResult,
    params(("id" = String, Path)), security(("bearer" = ["jobs:run"])),
    responses((status = 204), (status = 409, body = crate::error::ErrorBody)))]
async fn finish_unit(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UnitResult>,
) -> Result<axum::http::StatusCode, ApiError> {
    caller.require(Permission::JobsRun)?;
    job_id(&id)?;
    let (done, retry) = match req.outcome.as_str() {
        "done" => (true, false),
        "failed" => (false, false),
        "retry" => (false, true),
        other => {
            return Err(ApiError::BadRequest(format!("outcome {other:?} is not done, failed or retry")));
        }
    };
    s.finish_unit(&req.unit, &req.lease_token, done, &req.result, retry).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Every row of the job with its outcome, in CSV order.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/report", tag = "jobs", params(("id" = String, Path)),
    security(("bearer" = ["jobs:run"])), responses((status = 200, body = Vec<UnitOutcome>)))]
async fn job_report(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<Vec<UnitOutcome>>, ApiError> {
    caller.require(Permission::JobsRun)?;
    Ok(ApiJson(s.job_report(job_id(&id)?).await?))
}

//! `/api/v1/jobs`: bulk provisioning jobs — create from rows, claim units under a lease, report
//! each unit's outcome, progress and the per-row report. The work itself (the key, the PIN) is
//! done by the operator's tool; the server is the durable list of who is done.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use keyward_core::JobId;
use keyward_proto::jobs::{
    BulkJobRequest, BulkPlan, ClaimRequest, JobStatus, UnitLease, UnitOutcome, UnitResult,
};
use keyward_proto::{Page, PageQuery};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::service::{Caller, Service};

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

/// Create a bulk provisioning job; duplicate rows and people already holding a registered
/// managed passkey are recorded as skipped.
#[utoipa::path(post, path = "/api/v1/jobs/bulk", tag = "jobs", request_body = BulkJobRequest,
    responses((status = 201, body = BulkPlan), (status = 400, body = ErrorBody)))]
async fn create_bulk_job(
    State(s): State<Arc<Service>>,
    caller: Caller,
    ApiJson(req): ApiJson<BulkJobRequest>,
) -> Result<(axum::http::StatusCode, ApiJson<BulkPlan>), ApiError> {
    let plan = s.create_bulk_job(&caller, req.rows).await?;
    Ok((axum::http::StatusCode::CREATED, ApiJson(plan)))
}

/// A job's progress.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, body = JobStatus), (status = 404, body = ErrorBody)))]
async fn show_job(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<JobStatus>, ApiError> {
    Ok(ApiJson(s.job_status(&caller, job_id(&id)?).await?))
}

/// Claim units to provision under a lease (pending ones, and ones whose lease expired).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/claim", tag = "jobs", request_body = ClaimRequest,
    params(("id" = String, Path)), responses((status = 200, body = Vec<UnitLease>), (status = 404, body = ErrorBody)))]
async fn claim_units(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ClaimRequest>,
) -> Result<ApiJson<Vec<UnitLease>>, ApiError> {
    let lease = Duration::from_secs(req.lease_secs);
    Ok(ApiJson(s.claim_units(&caller, job_id(&id)?, req.count, lease).await?))
}

/// Record a claimed unit's outcome (idempotent for the same lease).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/units", tag = "jobs", request_body = UnitResult,
    params(("id" = String, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn finish_unit(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UnitResult>,
) -> Result<axum::http::StatusCode, ApiError> {
    job_id(&id)?;
    s.finish_unit(&caller, &req.unit, &req.lease_token, &req.outcome, &req.result).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// The job's rows with their outcomes, in CSV order, a page at a time.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/report", tag = "jobs", params(("id" = String, Path), PageQuery),
    responses((status = 200, body = Page<UnitOutcome>), (status = 404, body = ErrorBody)))]
async fn job_report(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<ApiJson<Page<UnitOutcome>>, ApiError> {
    let found = s.job_report(&caller, job_id(&id)?, q.after.as_deref(), q.limit).await?;
    Ok(ApiJson(Page { items: found.items, next: found.next }))
}

//! `/api/v1/audit`: list, export (JSON Lines) and verify the hash chain.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::IntoResponse;
use keyward_proto::Page;
use keyward_proto::audit::{AuditQuery, AuditView, ChainReport};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::render;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::service::{Caller, Service};

pub(super) fn routes() -> OpenApiRouter<Arc<Service>> {
    OpenApiRouter::new()
        .routes(routes!(list_audit))
        .routes(routes!(export_audit))
        .routes(routes!(verify_audit))
}

/// List audit events in chain order, a page at a time.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Page<AuditView>), (status = 400, body = ErrorBody)))]
async fn list_audit(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<ApiJson<Page<AuditView>>, ApiError> {
    let found = s.audit_events(&caller, q.subject, q.after_seq, q.after.as_deref(), q.limit).await?;
    Ok(ApiJson(render::page(found, render::audit_event)))
}

/// Export the whole audit trail as JSON Lines.
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit",
    responses((status = 200, content_type = "application/x-ndjson", body = String)))]
async fn export_audit(State(s): State<Arc<Service>>, caller: Caller) -> Result<impl IntoResponse, ApiError> {
    let body = s.export_audit(&caller).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/x-ndjson")], body))
}

/// Verify the audit hash chain.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", responses((status = 200, body = ChainReport)))]
async fn verify_audit(
    State(s): State<Arc<Service>>,
    caller: Caller,
) -> Result<ApiJson<ChainReport>, ApiError> {
    Ok(ApiJson(s.verify_audit(&caller).await?))
}

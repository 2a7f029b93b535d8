//! `/api/v1/audit`: list, export (JSON Lines) and verify the hash chain; sign its head (anchor)
//! and verify against an anchor.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::IntoResponse;
use keyward_core::audit::anchor::Anchor;
use keyward_proto::Page;
use keyward_proto::audit::{AuditAnchor, AuditQuery, AuditView, ChainReport};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::render;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::service::{Caller, Service};

pub(super) fn routes() -> OpenApiRouter<Arc<Service>> {
    OpenApiRouter::new()
        .routes(routes!(list_audit))
        .routes(routes!(export_audit))
        .routes(routes!(verify_audit, verify_audit_against))
        .routes(routes!(anchor_audit))
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

/// Verify the audit chain against an anchor made earlier by `GET /api/v1/audit/anchor`: detects
/// events deleted at or before the anchor and a chain recomputed or altered up to it.
#[utoipa::path(post, path = "/api/v1/audit/verify", tag = "audit", request_body = AuditAnchor,
    responses((status = 200, body = ChainReport), (status = 400, body = ErrorBody)))]
async fn verify_audit_against(
    State(s): State<Arc<Service>>,
    caller: Caller,
    ApiJson(anchor): ApiJson<AuditAnchor>,
) -> Result<ApiJson<ChainReport>, ApiError> {
    let anchor = from_wire(anchor)?;
    Ok(ApiJson(s.verify_audit_against(&caller, &anchor).await?))
}

/// Sign the audit chain's head (sequence number, hash, time) for keeping outside the database.
#[utoipa::path(get, path = "/api/v1/audit/anchor", tag = "audit",
    responses((status = 200, body = AuditAnchor), (status = 409, body = ErrorBody)))]
async fn anchor_audit(
    State(s): State<Arc<Service>>,
    caller: Caller,
) -> Result<ApiJson<AuditAnchor>, ApiError> {
    let a = s.audit_anchor(&caller).await?;
    Ok(ApiJson(AuditAnchor {
        format: a.format,
        seq: a.seq,
        hash: a.hash,
        at: a.at.format(&time::format_description::well_known::Rfc3339).map_err(ApiError::internal)?,
        key_id: a.key_id,
        mac: a.mac,
    }))
}

fn from_wire(a: AuditAnchor) -> Result<Anchor, ApiError> {
    let at = time::OffsetDateTime::parse(&a.at, &time::format_description::well_known::Rfc3339)
        .map_err(|_| ApiError::BadRequest(format!("the anchor's time {:?} is not RFC 3339", a.at)))?;
    Ok(Anchor { format: a.format, seq: a.seq, hash: a.hash, at, key_id: a.key_id, mac: a.mac })
}

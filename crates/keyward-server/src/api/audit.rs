//! `/api/v1/audit`: list, export (JSON Lines) and verify the hash chain.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::IntoResponse;
use keyward_core::Permission;
use keyward_store::StoreError;
use keyward_store::audit::{self, AuditFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::views::AuditView;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson};
use crate::service::{Service, store_error};

pub(super) fn routes() -> OpenApiRouter<Arc<Service>> {
    OpenApiRouter::new()
        .routes(routes!(list_audit))
        .routes(routes!(export_audit))
        .routes(routes!(verify_audit))
}

/// Filter of the audit list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Only events about this subject (e.g. `person:…`, `passkey:…`).
    pub subject: Option<String>,
    /// Only events after this sequence number.
    pub after: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// List audit events in chain order.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    security(("bearer" = ["audit:read"])), responses((status = 200, body = Vec<AuditView>)))]
async fn list_audit(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<ApiJson<Vec<AuditView>>, ApiError> {
    caller.require(Permission::AuditRead)?;
    let filter = AuditFilter {
        subject: q.subject,
        after_seq: q.after,
        limit: Some(q.limit.unwrap_or(100).clamp(1, 1000)),
    };
    let events = audit::list(&s.store, &filter).await.map_err(store_error)?;
    Ok(ApiJson(events.iter().map(AuditView::from).collect()))
}

/// Export the whole audit trail as JSON Lines.
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit",
    security(("bearer" = ["audit:export"])), responses((status = 200, content_type = "application/x-ndjson", body = String)))]
async fn export_audit(State(s): State<Arc<Service>>, caller: Caller) -> Result<impl IntoResponse, ApiError> {
    caller.require(Permission::AuditExport)?;
    let body = audit::export_jsonl(&s.store).await.map_err(store_error)?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/x-ndjson")], body))
}

/// The result of verifying the chain.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct ChainReport {
    /// The chain verifies.
    pub ok: bool,
    /// Events verified (up to the break).
    pub events: u64,
    /// Where and why the chain breaks.
    pub problem: Option<String>,
}

/// Verify the audit hash chain.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    security(("bearer" = ["audit:read"])), responses((status = 200, body = ChainReport)))]
async fn verify_audit(
    State(s): State<Arc<Service>>,
    caller: Caller,
) -> Result<ApiJson<ChainReport>, ApiError> {
    caller.require(Permission::AuditRead)?;
    Ok(ApiJson(match audit::verify(&s.store).await {
        Ok(n) => ChainReport { ok: true, events: n, problem: None },
        Err(StoreError::Chain(b)) => {
            ChainReport { ok: false, events: b.index as u64, problem: Some(b.to_string()) }
        }
        Err(e) => return Err(store_error(e)),
    }))
}

//! `/api/v1/keys` and `/api/v1/passkeys`: the inventory, lifecycle changes, revocation,
//! and `/api/v1/jobs/reconcile`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use keyward_core::{KeyState, PasskeyId, PasskeyOrigin, PasskeyState};
use keyward_proto::Page;
use keyward_proto::inventory::{
    KeyQuery, KeyStateChange, KeyStateResult, KeyView, NewKey, PasskeyQuery, PasskeyView, ReconcileReport,
    ReconcileRequest,
};
use keyward_proto::people::{RevokeRequest, RevokedCount};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::people::person_ref;
use super::{parse_aaguid, parse_name, render};
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::service::inventory::{self, PasskeyFilter};
use crate::service::{Caller, Service};

pub(super) fn routes() -> OpenApiRouter<Arc<Service>> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, add_key))
        .routes(routes!(show_key))
        .routes(routes!(set_key_state))
        .routes(routes!(revoke_key_passkeys))
        .routes(routes!(list_passkeys))
        .routes(routes!(revoke_passkey))
        .routes(routes!(run_reconcile))
}

/// The key inventory in serial order, a page at a time.
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", params(KeyQuery),
    responses((status = 200, body = Page<KeyView>), (status = 400, body = ErrorBody)))]
async fn list_keys(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Query(q): Query<KeyQuery>,
) -> Result<ApiJson<Page<KeyView>>, ApiError> {
    let state = q.state.as_deref().map(parse_name::<KeyState>).transpose()?;
    let found = s.keys(&caller, state, q.after.as_deref(), q.limit).await?;
    Ok(ApiJson(render::page(found, render::key)))
}

/// Add a key to the inventory.
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", request_body = NewKey,
    responses((status = 201, body = KeyView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn add_key(
    State(s): State<Arc<Service>>,
    caller: Caller,
    ApiJson(req): ApiJson<NewKey>,
) -> Result<(axum::http::StatusCode, ApiJson<KeyView>), ApiError> {
    let new = inventory::NewKey {
        serial: req.serial,
        aaguid: parse_aaguid(&req.aaguid)?,
        model: req.model,
        firmware: req.firmware,
    };
    let key = s.add_key(&caller, new).await?;
    Ok((axum::http::StatusCode::CREATED, ApiJson(render::key(&key))))
}

/// Show a key (by id or serial).
#[utoipa::path(get, path = "/api/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "Keyward id or serial")),
    responses((status = 200, body = KeyView), (status = 404, body = ErrorBody)))]
async fn show_key(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<KeyView>, ApiError> {
    Ok(ApiJson(render::key(&s.key(&caller, &id).await?)))
}

/// Change a key's state (lost, disposed and suspended keys have their passkeys revoked).
#[utoipa::path(post, path = "/api/v1/keys/{id}/state", tag = "keys", request_body = KeyStateChange,
    params(("id" = String, Path, description = "Keyward id or serial")),
    responses((status = 200, body = KeyStateResult), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn set_key_state(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<KeyStateChange>,
) -> Result<ApiJson<KeyStateResult>, ApiError> {
    let to = parse_name::<KeyState>(&req.state)?;
    let (key, revoked) = s.set_key_state(&caller, &id, to).await?;
    Ok(ApiJson(KeyStateResult { key: render::key(&key), revoked }))
}

/// Revoke every passkey on a key ("device removal").
#[utoipa::path(post, path = "/api/v1/keys/{id}/revoke-passkeys", tag = "keys", request_body = RevokeRequest,
    params(("id" = String, Path, description = "Keyward id or serial")),
    responses((status = 200, body = RevokedCount), (status = 404, body = ErrorBody)))]
async fn revoke_key_passkeys(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RevokeRequest>,
) -> Result<ApiJson<RevokedCount>, ApiError> {
    let reason = req.reason.unwrap_or_else(|| "device removal".into());
    Ok(ApiJson(RevokedCount { revoked: s.revoke_key_passkeys(&caller, &id, &reason).await? }))
}

/// List passkeys, oldest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/passkeys", tag = "passkeys", params(PasskeyQuery),
    responses((status = 200, body = Page<PasskeyView>), (status = 400, body = ErrorBody)))]
async fn list_passkeys(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Query(q): Query<PasskeyQuery>,
) -> Result<ApiJson<Page<PasskeyView>>, ApiError> {
    let person = q.person.as_deref().map(person_ref);
    let filter = PasskeyFilter {
        person: None,
        origin: q.origin.as_deref().map(parse_name::<PasskeyOrigin>).transpose()?,
        state: q.state.as_deref().map(parse_name::<PasskeyState>).transpose()?,
    };
    let found = s.passkeys(&caller, person.as_ref(), filter, q.after.as_deref(), q.limit).await?;
    Ok(ApiJson(render::page(found, render::passkey)))
}

/// Revoke one passkey (deleted from Entra, kept as revoked in Keyward).
#[utoipa::path(post, path = "/api/v1/passkeys/{id}/revoke", tag = "passkeys", request_body = RevokeRequest,
    params(("id" = String, Path)),
    responses((status = 200, body = PasskeyView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn revoke_passkey(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RevokeRequest>,
) -> Result<ApiJson<PasskeyView>, ApiError> {
    let id: PasskeyId = id.parse().map_err(|_| ApiError::NotFound(format!("passkey {id:?}")))?;
    let reason = req.reason.unwrap_or_else(|| "revoked by an operator".into());
    Ok(ApiJson(render::passkey(&s.revoke_passkey(&caller, id, &reason).await?)))
}

/// Compare Keyward's passkeys with Entra's and settle the differences.
#[utoipa::path(post, path = "/api/v1/jobs/reconcile", tag = "jobs", request_body = ReconcileRequest,
    responses((status = 200, body = ReconcileReport)))]
async fn run_reconcile(
    State(s): State<Arc<Service>>,
    caller: Caller,
    ApiJson(req): ApiJson<ReconcileRequest>,
) -> Result<ApiJson<ReconcileReport>, ApiError> {
    let person = req.person.as_deref().map(person_ref);
    Ok(ApiJson(s.reconcile(&caller, person.as_ref()).await?))
}

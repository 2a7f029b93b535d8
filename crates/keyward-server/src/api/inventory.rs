//! `/api/v1/keys` and `/api/v1/passkeys`: the inventory, lifecycle changes, revocation,
//! and `/api/v1/jobs/reconcile`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use keyward_core::{
    KeyState, PasskeyId, PasskeyOrigin, PasskeyState, Permission, SecurityKey, SecurityKeyId,
};
use keyward_store::{keys, passkeys};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::actor;
use super::people::{RevokeRequest, RevokedCount, person_ref};
use super::views::{KeyView, PasskeyView};
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson};
use crate::service::issuance::parse_aaguid;
use crate::service::reconcile::ReconcileReport;
use crate::service::{Service, store_error};

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

/// A key is named by Keyward's id or by serial.
async fn find_key(s: &Service, text: &str) -> Result<SecurityKey, ApiError> {
    let found = match text.parse::<SecurityKeyId>() {
        Ok(id) => keys::get(&s.store, id).await,
        Err(_) => keys::get_by_serial(&s.store, text).await,
    }
    .map_err(store_error)?;
    found.ok_or_else(|| ApiError::NotFound(format!("key {text:?}")))
}

/// Filter of the key list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct KeyQuery {
    /// Only keys in this state.
    pub state: Option<String>,
}

/// The key inventory.
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", params(KeyQuery),
    security(("bearer" = ["keys:read"])), responses((status = 200, body = Vec<KeyView>)))]
async fn list_keys(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Query(q): Query<KeyQuery>,
) -> Result<ApiJson<Vec<KeyView>>, ApiError> {
    caller.require(Permission::KeysRead)?;
    let state = match &q.state {
        Some(st) => Some(st.parse::<KeyState>().map_err(|e| ApiError::BadRequest(e.to_string()))?),
        None => None,
    };
    let list = keys::list(&s.store, state).await.map_err(store_error)?;
    Ok(ApiJson(list.iter().map(KeyView::from).collect()))
}

/// A key to add to the inventory.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct NewKey {
    /// Serial number.
    pub serial: Option<String>,
    /// Model AAGUID.
    pub aaguid: String,
    /// Model name (looked up in FIDO MDS when absent).
    pub model: Option<String>,
    /// Firmware version.
    pub firmware: Option<String>,
}

/// Add a key to the inventory.
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", request_body = NewKey,
    security(("bearer" = ["keys:manage"])), responses((status = 201, body = KeyView)))]
async fn add_key(
    State(s): State<Arc<Service>>,
    caller: Caller,
    ApiJson(req): ApiJson<NewKey>,
) -> Result<(axum::http::StatusCode, ApiJson<KeyView>), ApiError> {
    let actor = actor(&caller, Permission::KeysManage)?;
    let aaguid = parse_aaguid(&req.aaguid)?;
    let mut key = SecurityKey::new(req.serial, aaguid);
    key.model = req.model.or_else(|| {
        keyward_webauthn::mds::embedded().entry(&aaguid.to_string()).map(|e| e.description.clone())
    });
    key.firmware = req.firmware;
    let key = s.add_key(&actor, key).await?;
    Ok((axum::http::StatusCode::CREATED, ApiJson(KeyView::from(&key))))
}

/// Show a key (by id or serial).
#[utoipa::path(get, path = "/api/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "Keyward id or serial")),
    security(("bearer" = ["keys:read"])), responses((status = 200, body = KeyView)))]
async fn show_key(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<KeyView>, ApiError> {
    caller.require(Permission::KeysRead)?;
    Ok(ApiJson(KeyView::from(&find_key(&s, &id).await?)))
}

/// A lifecycle change.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct KeyStateChange {
    /// `available`, `issued`, `suspended`, `lost` or `disposed`.
    pub state: String,
}

/// The key after the change, and how many passkeys were revoked with it.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct KeyStateResult {
    /// The key.
    pub key: KeyView,
    /// Passkeys revoked (a lost, suspended or disposed key keeps none).
    pub revoked: usize,
}

/// Change a key's state (lost, disposed and suspended keys have their passkeys revoked).
#[utoipa::path(post, path = "/api/v1/keys/{id}/state", tag = "keys", request_body = KeyStateChange,
    params(("id" = String, Path, description = "Keyward id or serial")),
    security(("bearer" = ["keys:manage"])), responses((status = 200, body = KeyStateResult)))]
async fn set_key_state(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<KeyStateChange>,
) -> Result<ApiJson<KeyStateResult>, ApiError> {
    let actor = actor(&caller, Permission::KeysManage)?;
    let to: KeyState =
        req.state.parse().map_err(|e: keyward_core::UnknownName| ApiError::BadRequest(e.to_string()))?;
    let key = find_key(&s, &id).await?;
    let (key, revoked) = s.set_key_state(&actor, key.id, to).await?;
    Ok(ApiJson(KeyStateResult { key: KeyView::from(&key), revoked }))
}

/// Revoke every passkey on a key ("device removal").
#[utoipa::path(post, path = "/api/v1/keys/{id}/revoke-passkeys", tag = "keys", request_body = RevokeRequest,
    params(("id" = String, Path, description = "Keyward id or serial")),
    security(("bearer" = ["passkeys:revoke"])), responses((status = 200, body = RevokedCount)))]
async fn revoke_key_passkeys(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RevokeRequest>,
) -> Result<ApiJson<RevokedCount>, ApiError> {
    let actor = actor(&caller, Permission::PasskeysRevoke)?;
    let key = find_key(&s, &id).await?;
    let reason = req.reason.unwrap_or_else(|| "device removal".into());
    Ok(ApiJson(RevokedCount { revoked: s.revoke_key_passkeys(&actor, key.id, &reason).await? }))
}

/// Filter of the passkey list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct PasskeyQuery {
    /// Only this person's (id or UPN).
    pub person: Option<String>,
    /// `managed` or `discovered`.
    pub origin: Option<String>,
    /// `pending`, `registered` or `revoked`.
    pub state: Option<String>,
}

/// List passkeys.
#[utoipa::path(get, path = "/api/v1/passkeys", tag = "passkeys", params(PasskeyQuery),
    security(("bearer" = ["passkeys:read"])), responses((status = 200, body = Vec<PasskeyView>)))]
async fn list_passkeys(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Query(q): Query<PasskeyQuery>,
) -> Result<ApiJson<Vec<PasskeyView>>, ApiError> {
    caller.require(Permission::PasskeysRead)?;
    let origin = match &q.origin {
        Some(o) => Some(o.parse::<PasskeyOrigin>().map_err(|e| ApiError::BadRequest(e.to_string()))?),
        None => None,
    };
    let state = match &q.state {
        Some(o) => Some(o.parse::<PasskeyState>().map_err(|e| ApiError::BadRequest(e.to_string()))?),
        None => None,
    };
    let list = match &q.person {
        Some(p) => {
            let person = s.find_person(&person_ref(p)).await?;
            passkeys::list_by_person(&s.store, person.id).await
        }
        None => passkeys::list(&s.store).await,
    }
    .map_err(store_error)?;
    Ok(ApiJson(
        list.iter()
            .filter(|p| origin.is_none_or(|o| p.origin == o) && state.is_none_or(|st| p.state == st))
            .map(PasskeyView::from)
            .collect(),
    ))
}

/// Revoke one passkey (deleted from Entra, kept as revoked in Keyward).
#[utoipa::path(post, path = "/api/v1/passkeys/{id}/revoke", tag = "passkeys", request_body = RevokeRequest,
    params(("id" = String, Path)), security(("bearer" = ["passkeys:revoke"])),
    responses((status = 200, body = PasskeyView)))]
async fn revoke_passkey(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RevokeRequest>,
) -> Result<ApiJson<PasskeyView>, ApiError> {
    let actor = actor(&caller, Permission::PasskeysRevoke)?;
    let id: PasskeyId = id.parse().map_err(|_| ApiError::NotFound(format!("passkey {id:?}")))?;
    let reason = req.reason.unwrap_or_else(|| "revoked by an operator".into());
    Ok(ApiJson(PasskeyView::from(&s.revoke_passkey(&actor, id, &reason).await?)))
}

/// Whom to reconcile.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct ReconcileRequest {
    /// One person (id or UPN); everyone linked when absent.
    pub person: Option<String>,
}

/// Compare Keyward's passkeys with Entra's and settle the differences.
#[utoipa::path(post, path = "/api/v1/jobs/reconcile", tag = "jobs", request_body = ReconcileRequest,
    security(("bearer" = ["jobs:run"])), responses((status = 200, body = ReconcileReport)))]
async fn run_reconcile(
    State(s): State<Arc<Service>>,
    caller: Caller,
    ApiJson(req): ApiJson<ReconcileRequest>,
) -> Result<ApiJson<ReconcileReport>, ApiError> {
    let actor = actor(&caller, Permission::JobsRun)?;
    let person = match &req.person {
        Some(p) => Some(s.find_person(&person_ref(p)).await?.id),
        None => None,
    };
    Ok(ApiJson(s.reconcile(&actor, person).await?))
}

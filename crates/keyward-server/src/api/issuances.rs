//! `/api/v1/issuances`: create, approve, fetch creation options, complete, cancel, fail.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use keyward_core::{Channel, IssuanceId, IssuanceState, Permission};
use keyward_store::issuances;
use keyward_webauthn::b64;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::actor;
use super::people::person_ref;
use super::views::{IssuanceView, PasskeyView};
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson};
use crate::service::issuance::{Completion, NewIssuance};
use crate::service::{Service, store_error};

pub(super) fn routes() -> OpenApiRouter<Arc<Service>> {
    OpenApiRouter::new()
        .routes(routes!(create_issuance, list_issuances))
        .routes(routes!(show_issuance))
        .routes(routes!(approve_issuance))
        .routes(routes!(issuance_options))
        .routes(routes!(complete_issuance))
        .routes(routes!(cancel_issuance))
        .routes(routes!(fail_issuance))
        .routes(routes!(pin_handover))
}

fn issuance_id(text: &str) -> Result<IssuanceId, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound(format!("issuance {text:?}")))
}

/// A new issuance.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct CreateIssuance {
    /// Keyward person id or UPN.
    pub person: String,
    /// `operator` (default), `self-service` or `bulk`.
    pub channel: Option<String>,
    /// Serial of the key in hand, when known.
    pub serial: Option<String>,
}

/// Create an issuance for a person.
#[utoipa::path(post, path = "/api/v1/issuances", tag = "issuances", request_body = CreateIssuance,
    security(("bearer" = ["issuance:create"])),
    responses((status = 201, body = IssuanceView), (status = 422, body = crate::error::ErrorBody)))]
async fn create_issuance(
    State(s): State<Arc<Service>>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateIssuance>,
) -> Result<(axum::http::StatusCode, ApiJson<IssuanceView>), ApiError> {
    let actor = actor(&caller, Permission::IssuanceCreate)?;
    let channel = match req.channel.as_deref() {
        None => Channel::Operator,
        Some(c) => c.parse().map_err(|e: keyward_core::UnknownName| ApiError::BadRequest(e.to_string()))?,
    };
    let issuance = s
        .create_issuance(&actor, NewIssuance { person: person_ref(&req.person), channel, serial: req.serial })
        .await?;
    Ok((axum::http::StatusCode::CREATED, ApiJson(IssuanceView::from(&issuance))))
}

/// Filter of the issuance list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct IssuanceQuery {
    /// Only this person's (id or UPN).
    pub person: Option<String>,
    /// Only in this state.
    pub state: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// List issuances, newest first.
#[utoipa::path(get, path = "/api/v1/issuances", tag = "issuances", params(IssuanceQuery),
    security(("bearer" = ["issuance:read"])),
    responses((status = 200, body = Vec<IssuanceView>)))]
async fn list_issuances(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Query(q): Query<IssuanceQuery>,
) -> Result<ApiJson<Vec<IssuanceView>>, ApiError> {
    caller.require(Permission::IssuanceRead)?;
    let person = match &q.person {
        Some(p) => Some(s.find_person(&person_ref(p)).await?.id),
        None => None,
    };
    let state = match &q.state {
        Some(st) => Some(st.parse::<IssuanceState>().map_err(|e| ApiError::BadRequest(e.to_string()))?),
        None => None,
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let list = issuances::list(&s.store, person, state, limit).await.map_err(store_error)?;
    Ok(ApiJson(list.iter().map(IssuanceView::from).collect()))
}

/// Show one issuance.
#[utoipa::path(get, path = "/api/v1/issuances/{id}", tag = "issuances",
    params(("id" = String, Path)), security(("bearer" = ["issuance:read"])),
    responses((status = 200, body = IssuanceView)))]
async fn show_issuance(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<IssuanceView>, ApiError> {
    caller.require(Permission::IssuanceRead)?;
    Ok(ApiJson(IssuanceView::from(&s.issuance(issuance_id(&id)?).await?)))
}

/// Approve an issuance (not by its requester).
#[utoipa::path(post, path = "/api/v1/issuances/{id}/approve", tag = "issuances",
    params(("id" = String, Path)), security(("bearer" = ["issuance:approve"])),
    responses((status = 200, body = IssuanceView)))]
async fn approve_issuance(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<IssuanceView>, ApiError> {
    let actor = actor(&caller, Permission::IssuanceApprove)?;
    Ok(ApiJson(IssuanceView::from(&s.approve_issuance(&actor, issuance_id(&id)?).await?)))
}

/// What the client needs to make the credential.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct OptionsView {
    /// The issuance, now `options-issued`.
    pub issuance: IssuanceView,
    /// Entra's `webauthnCredentialCreationOptions`, unchanged.
    #[schema(value_type = Object)]
    pub creation_options: keyward_webauthn::graph::CredentialCreationOptions,
    /// Minimum PIN length the key must be set to.
    pub pin_min_length: u8,
    /// Whether the key must force a PIN change on first use.
    pub pin_force_change: bool,
    /// The person's UPN.
    pub upn: String,
}

/// Fetch Entra's creation options for the issuance.
#[utoipa::path(post, path = "/api/v1/issuances/{id}/options", tag = "issuances",
    params(("id" = String, Path)), security(("bearer" = ["issuance:create"])),
    responses((status = 200, body = OptionsView)))]
async fn issuance_options(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<OptionsView>, ApiError> {
    let actor = actor(&caller, Permission::IssuanceCreate)?;
    let o = s.issuance_options(&actor, issuance_id(&id)?).await?;
    Ok(ApiJson(OptionsView {
        issuance: IssuanceView::from(&o.issuance),
        creation_options: o.creation_options,
        pin_min_length: o.pin.min_length,
        pin_force_change: o.pin.force_change,
        upn: o.upn,
    }))
}

/// The registration the client made.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct CompleteRequest {
    /// clientDataJSON, base64url.
    pub client_data_json: String,
    /// attestationObject, base64url.
    pub attestation_object: String,
    /// The key's serial, when known.
    pub serial: Option<String>,
    /// The key's firmware, when known.
    pub firmware: Option<String>,
    /// Display name in Entra (cut to 30 characters keeping the serial).
    pub display_name: Option<String>,
}

/// A finished issuance.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct CompletedView {
    /// The issuance, `registered`.
    pub issuance: IssuanceView,
    /// The passkey, `registered`.
    pub passkey: PasskeyView,
}

/// Complete an issuance with the client's registration.
#[utoipa::path(post, path = "/api/v1/issuances/{id}/complete", tag = "issuances", request_body = CompleteRequest,
    params(("id" = String, Path)), security(("bearer" = ["issuance:create"])),
    responses((status = 200, body = CompletedView), (status = 422, body = crate::error::ErrorBody)))]
async fn complete_issuance(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CompleteRequest>,
) -> Result<ApiJson<CompletedView>, ApiError> {
    let actor = actor(&caller, Permission::IssuanceCreate)?;
    let decode = |what: &str, text: &str| {
        b64::decode_lenient(text).map_err(|_| ApiError::BadRequest(format!("{what} is not base64url")))
    };
    let completion = Completion {
        client_data_json: decode("client_data_json", &req.client_data_json)?,
        attestation_object: decode("attestation_object", &req.attestation_object)?,
        serial: req.serial,
        firmware: req.firmware,
        display_name: req.display_name,
    };
    let id = issuance_id(&id)?;
    // The completion runs as its own task: a client that disconnects mid-request drops this
    // handler, and must not cut the completion between Entra's registration and recording it
    // (that would leave a passkey in Entra that Keyward has only as pending).
    let service = s.clone();
    let done = tokio::spawn(async move { service.complete_issuance(&actor, id, completion).await })
        .await
        .map_err(|e| ApiError::Internal(format!("the completion task failed: {e}")))??;
    Ok(ApiJson(CompletedView {
        issuance: IssuanceView::from(&done.issuance),
        passkey: PasskeyView::from(&done.passkey),
    }))
}

/// Cancel an unfinished issuance.
#[utoipa::path(post, path = "/api/v1/issuances/{id}/cancel", tag = "issuances",
    params(("id" = String, Path)), security(("bearer" = ["issuance:cancel"])),
    responses((status = 200, body = IssuanceView)))]
async fn cancel_issuance(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<IssuanceView>, ApiError> {
    let actor = actor(&caller, Permission::IssuanceCancel)?;
    Ok(ApiJson(IssuanceView::from(&s.cancel_issuance(&actor, issuance_id(&id)?).await?)))
}

/// Why the client gave up.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct FailRequest {
    /// The reason, for the operator and the audit trail (never a PIN).
    pub reason: String,
}

/// Mark an issuance failed (the client could not make the credential).
#[utoipa::path(post, path = "/api/v1/issuances/{id}/fail", tag = "issuances", request_body = FailRequest,
    params(("id" = String, Path)), security(("bearer" = ["issuance:create"])),
    responses((status = 200, body = IssuanceView)))]
async fn fail_issuance(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<FailRequest>,
) -> Result<ApiJson<IssuanceView>, ApiError> {
    let actor = actor(&caller, Permission::IssuanceCreate)?;
    let reason: String = req.reason.chars().take(500).collect();
    Ok(ApiJson(IssuanceView::from(&s.fail_issuance(&actor, issuance_id(&id)?, &reason).await?)))
}

/// How a PIN was handed over (never the PIN itself).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct PinHandover {
    /// `terminal` (shown once), `letter` (encrypted PIN letter) or `user-chosen`.
    pub method: String,
    /// For letters: the file and the age recipient it was encrypted to.
    pub detail: Option<String>,
}

/// Record that the PIN of an issuance's key was handed over (audit only).
#[utoipa::path(post, path = "/api/v1/issuances/{id}/pin-handover", tag = "issuances", request_body = PinHandover,
    params(("id" = String, Path)), security(("bearer" = ["issuance:create"])),
    responses((status = 204)))]
async fn pin_handover(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PinHandover>,
) -> Result<axum::http::StatusCode, ApiError> {
    let actor = actor(&caller, Permission::IssuanceCreate)?;
    if !matches!(req.method.as_str(), "terminal" | "letter" | "user-chosen") {
        return Err(ApiError::BadRequest("method must be terminal, letter or user-chosen".into()));
    }
    let detail: Option<String> = req.detail.map(|d| d.chars().take(300).collect());
    s.record_pin_handover(&actor, issuance_id(&id)?, &req.method, detail.as_deref()).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

//! `/api/v1/issuances`: create, approve, fetch creation options, complete, cancel, fail.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use keyward_core::{Channel, IssuanceId, IssuanceState};
use keyward_proto::Page;
use keyward_proto::issuances::{
    CompleteRequest, CompletedView, CreateIssuance, FailRequest, IssuanceQuery, IssuanceView, OptionsView,
    PinHandover, SignInChallengeView, SignInProofRequest, SignInProofView,
};
use keyward_webauthn::b64;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::people::person_ref;
use super::{parse_name, render};
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::service::completion::Completion;
use crate::service::issuance::NewIssuance;
use crate::service::{Caller, Service};

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
        .routes(routes!(sign_in_options))
        .routes(routes!(sign_in))
}

fn issuance_id(text: &str) -> Result<IssuanceId, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound(format!("issuance {text:?}")))
}

/// Create an issuance for a person.
#[utoipa::path(post, path = "/api/v1/issuances", tag = "issuances", request_body = CreateIssuance,
    responses((status = 201, body = IssuanceView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn create_issuance(
    State(s): State<Arc<Service>>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateIssuance>,
) -> Result<(axum::http::StatusCode, ApiJson<IssuanceView>), ApiError> {
    let channel = req.channel.as_deref().map(parse_name::<Channel>).transpose()?.unwrap_or(Channel::Operator);
    let new = NewIssuance { person: person_ref(&req.person), channel, serial: req.serial };
    let issuance = s.create_issuance(&caller, new).await?;
    Ok((axum::http::StatusCode::CREATED, ApiJson(render::issuance(&issuance))))
}

/// List issuances, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/issuances", tag = "issuances", params(IssuanceQuery),
    responses((status = 200, body = Page<IssuanceView>), (status = 400, body = ErrorBody)))]
async fn list_issuances(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Query(q): Query<IssuanceQuery>,
) -> Result<ApiJson<Page<IssuanceView>>, ApiError> {
    let person = q.person.as_deref().map(person_ref);
    let state = q.state.as_deref().map(parse_name::<IssuanceState>).transpose()?;
    let found = s.issuances(&caller, person.as_ref(), state, q.after.as_deref(), q.limit).await?;
    Ok(ApiJson(render::page(found, render::issuance)))
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
    Ok(ApiJson(render::issuance(&s.issuance(&caller, issuance_id(&id)?).await?)))
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
    Ok(ApiJson(render::issuance(&s.approve_issuance(&caller, issuance_id(&id)?).await?)))
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
    let o = s.issuance_options(&caller, issuance_id(&id)?).await?;
    Ok(ApiJson(OptionsView {
        issuance: render::issuance(&o.issuance),
        creation_options: o.creation_options,
        pin_min_length: o.pin.min_length,
        pin_force_change: o.pin.force_change,
        upn: o.upn,
    }))
}

/// Complete an issuance with the client's registration.
#[utoipa::path(post, path = "/api/v1/issuances/{id}/complete", tag = "issuances", request_body = CompleteRequest,
    params(("id" = String, Path)), security(("bearer" = ["issuance:create"])),
    responses((status = 200, body = CompletedView), (status = 422, body = ErrorBody)))]
async fn complete_issuance(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CompleteRequest>,
) -> Result<ApiJson<CompletedView>, ApiError> {
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
    let done = tokio::spawn(async move { service.complete_issuance(&caller, id, completion).await })
        .await
        .map_err(|e| ApiError::Internal(format!("the completion task failed: {e}")))??;
    Ok(ApiJson(CompletedView {
        issuance: render::issuance(&done.issuance),
        passkey: render::passkey(&done.passkey),
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
    Ok(ApiJson(render::issuance(&s.cancel_issuance(&caller, issuance_id(&id)?).await?)))
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
    Ok(ApiJson(render::issuance(&s.fail_issuance(&caller, issuance_id(&id)?, &req.reason).await?)))
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
    s.record_pin_handover(&caller, issuance_id(&id)?, &req.method, req.detail.as_deref()).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// The tenant's passkey sign-in challenge for the person of a registered issuance, or why the
/// tenant offers none.
#[utoipa::path(post, path = "/api/v1/issuances/{id}/sign-in/options", tag = "issuances",
    params(("id" = String, Path)), security(("bearer" = ["issuance:create"])),
    responses((status = 200, body = SignInChallengeView)))]
async fn sign_in_options(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<SignInChallengeView>, ApiError> {
    Ok(ApiJson(s.sign_in_challenge(&caller, issuance_id(&id)?).await?))
}

/// Prove that the new passkey signs its person in: the tenant verifies the key's assertion.
#[utoipa::path(post, path = "/api/v1/issuances/{id}/sign-in", tag = "issuances", request_body = SignInProofRequest,
    params(("id" = String, Path)), security(("bearer" = ["issuance:create"])),
    responses((status = 200, body = SignInProofView)))]
async fn sign_in(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SignInProofRequest>,
) -> Result<ApiJson<SignInProofView>, ApiError> {
    Ok(ApiJson(s.prove_sign_in(&caller, issuance_id(&id)?, req).await?))
}

//! Administration: connector settings, enrollment policies, the tenant's FIDO2 policy, API
//! tokens.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use keyward_core::{EnrollmentMode, PinRules, Role};
use keyward_entra::ConnectorConfig;
use keyward_proto::admin::{
    CertificateCheck, ConnectionTestView, CreatedToken, NewToken, PolicyRequest, PolicyView, TokenView,
};
use keyward_proto::{Page, PageQuery};
use secrecy::{ExposeSecret, SecretString};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{parse_aaguid, parse_name, render};
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::service::policies::PolicyChange;
use crate::service::{Caller, Service};

pub(super) fn routes() -> OpenApiRouter<Arc<Service>> {
    OpenApiRouter::new()
        .routes(routes!(show_connector, set_connector))
        .routes(routes!(test_connector))
        .routes(routes!(validate_certificate))
        .routes(routes!(list_policies))
        .routes(routes!(set_policy, delete_policy))
        .routes(routes!(show_entra_policy, update_entra_policy))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// Show the connector settings (never the secret).
#[utoipa::path(get, path = "/api/v1/connector", tag = "connector", responses((status = 200, body = Object)))]
async fn show_connector(
    State(s): State<Arc<Service>>,
    caller: Caller,
) -> Result<ApiJson<serde_json::Value>, ApiError> {
    let view = match s.connector_settings(&caller).await? {
        Some(c) => serde_json::to_value(c).map_err(ApiError::internal)?,
        None => serde_json::json!({"configured": false}),
    };
    Ok(ApiJson(view))
}

/// Store new connector settings. The body is the connector configuration with its secret.
#[utoipa::path(put, path = "/api/v1/connector", tag = "connector", request_body = Object,
    responses((status = 204), (status = 400, body = ErrorBody)))]
async fn set_connector(
    State(s): State<Arc<Service>>,
    caller: Caller,
    ApiJson(config): ApiJson<ConnectorConfig>,
) -> Result<axum::http::StatusCode, ApiError> {
    s.set_connector(&caller, config).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Test connection: token, a Graph read, and the permissions granted.
#[utoipa::path(post, path = "/api/v1/connector/test", tag = "connector",
    responses((status = 200, body = ConnectionTestView), (status = 503, body = ErrorBody)))]
async fn test_connector(
    State(s): State<Arc<Service>>,
    caller: Caller,
) -> Result<ApiJson<ConnectionTestView>, ApiError> {
    let r = s.test_connector(&caller).await?;
    Ok(ApiJson(ConnectionTestView {
        ok: r.is_ok(),
        lines: r.lines(),
        granted_roles: r.granted_roles.clone(),
        missing: r.missing.iter().map(|m| m.permission.to_owned()).collect(),
    }))
}

/// Validate certificate: parses, key matches, dates, thumbprints to paste into Entra.
#[utoipa::path(post, path = "/api/v1/connector/validate-certificate", tag = "connector",
    request_body = CertificateCheck, responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
async fn validate_certificate(
    State(s): State<Arc<Service>>,
    caller: Caller,
    ApiJson(req): ApiJson<CertificateCheck>,
) -> Result<ApiJson<serde_json::Value>, ApiError> {
    let given = match (req.certificate_pem, req.private_key_pem) {
        (Some(c), Some(k)) => Some((c, SecretString::from(k))),
        (None, None) => None,
        _ => {
            return Err(ApiError::BadRequest(
                "give both certificate_pem and private_key_pem, or neither".into(),
            ));
        }
    };
    let report = s.validate_connector_certificate(&caller, given).await?;
    Ok(ApiJson(serde_json::to_value(report).map_err(ApiError::internal)?))
}

/// List enrollment policies by group, a page at a time.
#[utoipa::path(get, path = "/api/v1/enrollment-policies", tag = "policies", params(PageQuery),
    responses((status = 200, body = Page<PolicyView>), (status = 400, body = ErrorBody)))]
async fn list_policies(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<ApiJson<Page<PolicyView>>, ApiError> {
    let found = s.policies(&caller, q.after.as_deref(), q.limit).await?;
    Ok(ApiJson(render::page(found, render::policy)))
}

/// Create or replace the enrollment policy of a group.
#[utoipa::path(put, path = "/api/v1/enrollment-policies/{group}", tag = "policies", request_body = PolicyRequest,
    params(("group" = String, Path)),
    responses((status = 200, body = PolicyView), (status = 400, body = ErrorBody)))]
async fn set_policy(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(group): Path<String>,
    ApiJson(req): ApiJson<PolicyRequest>,
) -> Result<ApiJson<PolicyView>, ApiError> {
    let change = PolicyChange {
        mode: parse_name::<EnrollmentMode>(&req.mode)?,
        pin: PinRules { min_length: req.pin_min_length.unwrap_or(4), force_change: req.pin_force_change },
        allowed_aaguids: req
            .allowed_aaguids
            .iter()
            .map(|a| parse_aaguid(a))
            .collect::<Result<Vec<_>, _>>()?,
        max_passkeys_per_person: req.max_passkeys_per_person,
    };
    Ok(ApiJson(render::policy(&s.set_policy(&caller, &group, change).await?)))
}

/// Delete the enrollment policy of a group.
#[utoipa::path(delete, path = "/api/v1/enrollment-policies/{group}", tag = "policies",
    params(("group" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_policy(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(group): Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    s.delete_policy(&caller, &group).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// The tenant's FIDO2 method policy, as Graph returns it.
#[utoipa::path(get, path = "/api/v1/entra/fido2-policy", tag = "policies",
    responses((status = 200, body = Object), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn show_entra_policy(
    State(s): State<Arc<Service>>,
    caller: Caller,
) -> Result<ApiJson<serde_json::Value>, ApiError> {
    Ok(ApiJson(serde_json::to_value(s.entra_policy(&caller).await?).map_err(ApiError::internal)?))
}

/// Change the tenant's FIDO2 method policy: the body holds only the properties to change,
/// in Graph's names (e.g. `isAttestationEnforced`, `keyRestrictions`).
#[utoipa::path(patch, path = "/api/v1/entra/fido2-policy", tag = "policies", request_body = Object,
    responses((status = 200, body = Object), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn update_entra_policy(
    State(s): State<Arc<Service>>,
    caller: Caller,
    ApiJson(changes): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> Result<ApiJson<serde_json::Value>, ApiError> {
    let policy = s.update_entra_policy(&caller, changes).await?;
    Ok(ApiJson(serde_json::to_value(policy).map_err(ApiError::internal)?))
}

/// List API tokens by name (never the tokens themselves), a page at a time.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", params(PageQuery),
    responses((status = 200, body = Page<TokenView>), (status = 400, body = ErrorBody)))]
async fn list_tokens(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<ApiJson<Page<TokenView>>, ApiError> {
    let found = s.tokens(&caller, q.after.as_deref(), q.limit).await?;
    Ok(ApiJson(render::page(found, render::token)))
}

/// Create an API token.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_token(
    State(s): State<Arc<Service>>,
    caller: Caller,
    ApiJson(req): ApiJson<NewToken>,
) -> Result<(axum::http::StatusCode, ApiJson<CreatedToken>), ApiError> {
    let role = parse_name::<Role>(&req.role)?;
    let (rec, token) = s.create_token_for(&caller, &req.name, role, req.expires_in_days).await?;
    Ok((
        axum::http::StatusCode::CREATED,
        ApiJson(CreatedToken {
            name: rec.name,
            role: rec.role.to_string(),
            token: token.expose_secret().to_owned(),
            expires_at: rec.expires_at.map(super::render::rfc3339),
        }),
    ))
}

/// Whether a token may revoke itself.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct RevokeQuery {
    /// `true` to revoke the very token making the request (otherwise that is refused with 409).
    #[serde(default)]
    confirm_self: bool,
}

/// Revoke an API token. Revoking the token that makes the request needs `?confirm_self=true`.
#[utoipa::path(delete, path = "/api/v1/tokens/{name}", tag = "tokens",
    params(("name" = String, Path), RevokeQuery), responses((status = 204), (status = 404, body = ErrorBody),
    (status = 409, description = "the token is the caller's own and confirm_self was not given", body = ErrorBody)))]
async fn revoke_token(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<RevokeQuery>,
) -> Result<axum::http::StatusCode, ApiError> {
    s.revoke_token(&caller, &name, q.confirm_self).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

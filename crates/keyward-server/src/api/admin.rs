//! Administration: connector settings, enrollment policies, the tenant's FIDO2 policy, API
//! tokens.

use std::sync::Arc;

use axum::extract::{Path, State};
use keyward_core::{EnrollmentMode, EnrollmentPolicy, Permission, PinRules, PolicyId, Role};
use keyward_entra::ConnectorConfig;
use keyward_store::{policies, tokens};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::actor;
use super::views::PolicyView;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson};
use crate::service::issuance::parse_aaguid;
use crate::service::{Service, store_error};

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
#[utoipa::path(get, path = "/api/v1/connector", tag = "connector",
    security(("bearer" = ["connector:read"])), responses((status = 200, body = Object)))]
async fn show_connector(
    State(s): State<Arc<Service>>,
    caller: Caller,
) -> Result<ApiJson<serde_json::Value>, ApiError> {
    caller.require(Permission::ConnectorRead)?;
    let config = s.connector.load(&s.store).await?;
    let view = match config {
        Some(c) => serde_json::to_value(c.show()).map_err(ApiError::internal)?,
        None => serde_json::json!({"configured": false}),
    };
    Ok(ApiJson(view))
}

/// Store new connector settings. The body is the connector configuration with its secret.
#[utoipa::path(put, path = "/api/v1/connector", tag = "connector", request_body = Object,
    security(("bearer" = ["connector:manage"])), responses((status = 204)))]
async fn set_connector(
    State(s): State<Arc<Service>>,
    caller: Caller,
    ApiJson(config): ApiJson<ConnectorConfig>,
) -> Result<axum::http::StatusCode, ApiError> {
    let actor = actor(&caller, Permission::ConnectorManage)?;
    s.set_connector(&actor, config).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// The result of "Test connection".
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct ConnectionTestView {
    /// Everything works.
    pub ok: bool,
    /// One line per finding, with the fix.
    pub lines: Vec<String>,
    /// Application permissions granted in the token.
    pub granted_roles: Vec<String>,
    /// Permissions Keyward needs that are missing.
    pub missing: Vec<String>,
}

/// Test connection: token, a Graph read, and the permissions granted.
#[utoipa::path(post, path = "/api/v1/connector/test", tag = "connector",
    security(("bearer" = ["connector:manage"])), responses((status = 200, body = ConnectionTestView)))]
async fn test_connector(
    State(s): State<Arc<Service>>,
    caller: Caller,
) -> Result<ApiJson<ConnectionTestView>, ApiError> {
    caller.require(Permission::ConnectorManage)?;
    let r = s.test_connector().await?;
    Ok(ApiJson(ConnectionTestView {
        ok: r.is_ok(),
        lines: r.lines(),
        granted_roles: r.granted_roles.clone(),
        missing: r.missing.iter().map(|m| m.permission.to_owned()).collect(),
    }))
}

/// A certificate to validate; the stored one when both are absent.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct CertificateCheck {
    /// Certificate, PEM.
    pub certificate_pem: Option<String>,
    /// Private key, PEM.
    pub private_key_pem: Option<String>,
}

/// Validate certificate: parses, key matches, dates, thumbprints to paste into Entra.
#[utoipa::path(post, path = "/api/v1/connector/validate-certificate", tag = "connector",
    request_body = CertificateCheck,
    security(("bearer" = ["connector:manage"])), responses((status = 200, body = Object)))]
async fn validate_certificate(
    State(s): State<Arc<Service>>,
    caller: Caller,
    ApiJson(req): ApiJson<CertificateCheck>,
) -> Result<ApiJson<serde_json::Value>, ApiError> {
    caller.require(Permission::ConnectorManage)?;
    let given = match (req.certificate_pem, req.private_key_pem) {
        (Some(c), Some(k)) => Some((c, SecretString::from(k))),
        (None, None) => None,
        _ => {
            return Err(ApiError::BadRequest(
                "give both certificate_pem and private_key_pem, or neither".into(),
            ));
        }
    };
    let report = s.validate_connector_certificate(given).await?;
    Ok(ApiJson(serde_json::to_value(report).map_err(ApiError::internal)?))
}

/// List enrollment policies.
#[utoipa::path(get, path = "/api/v1/enrollment-policies", tag = "policies",
    security(("bearer" = ["policy:read"])), responses((status = 200, body = Vec<PolicyView>)))]
async fn list_policies(
    State(s): State<Arc<Service>>,
    caller: Caller,
) -> Result<ApiJson<Vec<PolicyView>>, ApiError> {
    caller.require(Permission::PolicyRead)?;
    let list = policies::list(&s.store).await.map_err(store_error)?;
    Ok(ApiJson(list.iter().map(PolicyView::from).collect()))
}

/// A group's enrollment policy.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct PolicyRequest {
    /// `disabled`, `optional` or `mandatory`.
    pub mode: String,
    /// Minimum PIN length (4–63; default 4).
    pub pin_min_length: Option<u8>,
    /// Force a PIN change on first use.
    #[serde(default)]
    pub pin_force_change: bool,
    /// Allowed model AAGUIDs; empty: any.
    #[serde(default)]
    pub allowed_aaguids: Vec<String>,
    /// Maximum registered passkeys per person.
    pub max_passkeys_per_person: Option<u32>,
}

/// Create or replace the enrollment policy of a group.
#[utoipa::path(put, path = "/api/v1/enrollment-policies/{group}", tag = "policies", request_body = PolicyRequest,
    params(("group" = String, Path)), security(("bearer" = ["policy:manage"])),
    responses((status = 200, body = PolicyView)))]
async fn set_policy(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(group): Path<String>,
    ApiJson(req): ApiJson<PolicyRequest>,
) -> Result<ApiJson<PolicyView>, ApiError> {
    let actor = actor(&caller, Permission::PolicyManage)?;
    let mode: EnrollmentMode =
        req.mode.parse().map_err(|e: keyward_core::UnknownName| ApiError::BadRequest(e.to_string()))?;
    let allowed = req.allowed_aaguids.iter().map(|a| parse_aaguid(a)).collect::<Result<Vec<_>, _>>()?;
    let existing = policies::get(&s.store, &group).await.map_err(store_error)?;
    let policy = EnrollmentPolicy {
        id: existing.map(|p| p.id).unwrap_or_else(PolicyId::new),
        group,
        mode,
        pin: PinRules { min_length: req.pin_min_length.unwrap_or(4), force_change: req.pin_force_change },
        allowed_aaguids: allowed,
        max_passkeys_per_person: req.max_passkeys_per_person,
    };
    Ok(ApiJson(PolicyView::from(&s.set_policy(&actor, policy).await?)))
}

/// Delete the enrollment policy of a group.
#[utoipa::path(delete, path = "/api/v1/enrollment-policies/{group}", tag = "policies",
    params(("group" = String, Path)), security(("bearer" = ["policy:manage"])), responses((status = 204)))]
async fn delete_policy(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(group): Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    let actor = actor(&caller, Permission::PolicyManage)?;
    s.delete_policy(&actor, &group).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// The tenant's FIDO2 method policy, as Graph returns it.
#[utoipa::path(get, path = "/api/v1/entra/fido2-policy", tag = "policies",
    security(("bearer" = ["policy:read"])), responses((status = 200, body = Object)))]
async fn show_entra_policy(
    State(s): State<Arc<Service>>,
    caller: Caller,
) -> Result<ApiJson<serde_json::Value>, ApiError> {
    caller.require(Permission::PolicyRead)?;
    Ok(ApiJson(serde_json::to_value(s.entra_policy().await?).map_err(ApiError::internal)?))
}

/// Change the tenant's FIDO2 method policy: the body holds only the properties to change,
/// in Graph's names (e.g. `isAttestationEnforced`, `keyRestrictions`).
#[utoipa::path(patch, path = "/api/v1/entra/fido2-policy", tag = "policies", request_body = Object,
    security(("bearer" = ["policy:manage"])), responses((status = 200, body = Object)))]
async fn update_entra_policy(
    State(s): State<Arc<Service>>,
    caller: Caller,
    ApiJson(changes): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> Result<ApiJson<serde_json::Value>, ApiError> {
    let actor = actor(&caller, Permission::PolicyManage)?;
    let policy = s.update_entra_policy(&actor, changes).await?;
    Ok(ApiJson(serde_json::to_value(policy).map_err(ApiError::internal)?))
}

/// An API token's record.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct TokenView {
    /// Unique name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Created.
    pub created_at: String,
    /// Revoked.
    pub revoked: bool,
}

/// List API tokens (never the tokens themselves).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    security(("bearer" = ["tokens:manage"])), responses((status = 200, body = Vec<TokenView>)))]
async fn list_tokens(
    State(s): State<Arc<Service>>,
    caller: Caller,
) -> Result<ApiJson<Vec<TokenView>>, ApiError> {
    caller.require(Permission::TokensManage)?;
    let list = tokens::list(&s.store).await.map_err(store_error)?;
    Ok(ApiJson(
        list.into_iter()
            .map(|t| TokenView {
                name: t.name,
                role: t.role.to_string(),
                created_at: t.created_at.to_string(),
                revoked: t.revoked_at.is_some(),
            })
            .collect(),
    ))
}

/// A new token.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct NewToken {
    /// Unique name (audit events show it).
    pub name: String,
    /// `admin`, `operator`, `helpdesk` or `auditor`.
    pub role: String,
}

/// A token, shown once.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct CreatedToken {
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// The token. Keyward keeps only its hash: it cannot be shown again.
    pub token: String,
}

/// Create an API token.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewToken,
    security(("bearer" = ["tokens:manage"])), responses((status = 201, body = CreatedToken)))]
async fn create_token(
    State(s): State<Arc<Service>>,
    caller: Caller,
    ApiJson(req): ApiJson<NewToken>,
) -> Result<(axum::http::StatusCode, ApiJson<CreatedToken>), ApiError> {
    let actor = actor(&caller, Permission::TokensManage)?;
    let role: Role =
        req.role.parse().map_err(|e: keyward_core::UnknownName| ApiError::BadRequest(e.to_string()))?;
    let (rec, token) = s.create_token(&actor, &req.name, role).await?;
    Ok((
        axum::http::StatusCode::CREATED,
        ApiJson(CreatedToken {
            name: rec.name,
            role: rec.role.to_string(),
            token: token.expose_secret().to_owned(),
        }),
    ))
}

/// Revoke an API token.
#[utoipa::path(delete, path = "/api/v1/tokens/{name}", tag = "tokens",
    params(("name" = String, Path)), security(("bearer" = ["tokens:manage"])), responses((status = 204)))]
async fn revoke_token(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    let actor = actor(&caller, Permission::TokensManage)?;
    s.revoke_token(&actor, &name).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

//! Security-info registration by the person (what My Sign-Ins does after a TAP sign-in):
//! `GET /{tenant}/securityinfo/passkey/creationOptions` and `POST /{tenant}/securityinfo/passkey`,
//! each with the bearer token of a sign-in for the registration scope
//! ([`super::user_token::REGISTRATION_SCOPE`]).
//!
//! Microsoft's own registration page talks to private APIs, so the paths are the emulator's
//! own; the bodies are Graph's (`webauthnCredentialCreationOptions`, and the `fido2Methods` POST
//! body), and the verification is Graph's, shared through [`crate::graph::fido2`]. Errors are
//! Graph-shaped; a missing or wrong token is 401 `InvalidAuthenticationToken`. Conditional Access
//! was applied when the token was issued, as in Entra.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::user_token::{UserAccessClaims, check_registration_token};
use crate::Sim;
use crate::graph::fido2::{options_for, register_passkey};
use crate::graph::{ApiVersion, GraphFailure, GraphResult};
use crate::registration::options;

fn signed_in(sim: &Sim, tenant: &str, headers: &HeaderMap) -> GraphResult<UserAccessClaims> {
    if !sim.read(|t| t.is_tenant(tenant)) {
        return Err(GraphFailure::resource_not_found(tenant));
    }
    let unauthenticated =
        |m: String| GraphFailure::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", m);
    let header = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    let token = header.strip_prefix("Bearer ").unwrap_or("").trim();
    if token.is_empty() {
        return Err(unauthenticated("Sign in first: the request has no bearer token.".into()));
    }
    check_registration_token(sim, token)
        .map_err(|e| unauthenticated(format!("Security-info registration refused: {e}.")))
}

/// `GET /{tenant}/securityinfo/passkey/creationOptions`: options for the signed-in person.
pub(super) async fn creation_options(
    State(sim): State<Sim>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = (|| {
        let claims = signed_in(&sim, &tenant, &headers)?;
        let minutes = options::timeout_minutes(ApiVersion::V1, None, "")?;
        options_for(&sim, &claims.oid, minutes)
    })();
    match result {
        Ok(body) => Json(body).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /{tenant}/securityinfo/passkey`: registers the passkey for the signed-in person.
pub(super) async fn register(
    State(sim): State<Sim>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = signed_in(&sim, &tenant, &headers)
        .and_then(|claims| register_passkey(&sim, ApiVersion::V1, &claims.oid, &body));
    match result {
        Ok((_, stored)) => {
            (StatusCode::CREATED, Json(serde_json::to_value(&stored.method).unwrap_or_default()))
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

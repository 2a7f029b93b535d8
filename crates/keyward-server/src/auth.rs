//! Who is calling an HTTP request, and the early refusal from the route table.
//!
//! The bearer token is resolved by the service ([`Service::authenticate`], with its short-lived
//! cache); this module only reads the header. Every `/api/v1` request is authenticated and
//! checked against the route's permission in [`crate::api::routes`] *before* its body is read, so
//! an unauthorised caller learns nothing from validation errors. The service checks the same
//! permission again when the handler calls it: the table is the early, documented answer; the
//! service's check is the one nothing can bypass.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use secrecy::SecretString;

use crate::api::routes::RoutePermissions;
use crate::error::ApiError;
use crate::service::{Caller, Service};

/// Authenticates the bearer token of a request.
async fn authenticate(parts: &Parts, service: &Service) -> Result<Caller, ApiError> {
    let header = parts.headers.get(axum::http::header::AUTHORIZATION).ok_or(ApiError::Unauthenticated)?;
    let value = header.to_str().map_err(|_| ApiError::Unauthenticated)?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or(ApiError::Unauthenticated)?;
    let token = SecretString::from(token.trim().to_owned());
    service.authenticate(&token).await?.ok_or(ApiError::Unauthenticated)
}

impl FromRequestParts<Arc<Service>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, service: &Arc<Service>) -> Result<Self, ApiError> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        authenticate(parts, service).await
    }
}

/// Middleware: authenticates and authorises every `/api/v1` request before its body is read.
/// Operations missing from the route table are refused (deny by default); the few public routes
/// are not under this layer.
pub async fn authorize(
    axum::extract::State((service, table)): axum::extract::State<(Arc<Service>, Arc<RoutePermissions>)>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let Some(path) = request.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str().to_owned())
    else {
        return next.run(request).await;
    };
    let (mut parts, body) = request.into_parts();
    let caller = match authenticate(&parts, &service).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let Some(permission) = table.get(parts.method.as_str(), &path) else {
        return ApiError::Forbidden(format!("{path} is not an operation this server offers to anyone"))
            .into_response();
    };
    if let Err(e) = caller.require(permission) {
        return ApiError::from(e).into_response();
    }
    parts.extensions.insert(caller);
    next.run(axum::extract::Request::from_parts(parts, body)).await
}

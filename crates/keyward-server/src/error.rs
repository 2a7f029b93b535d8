//! The one error type every API route returns, and its JSON shape.
//!
//! Every failure reaches the caller as `{"error": {"code": "…", "message": "…"}}` (the shape is
//! `keyward_proto::error::ErrorBody`) with a status that says whose move it is (4xx: fix the
//! request; 502: Entra said no; 503: Keyward is not set up yet or the database is away). The
//! service's [`ServiceError`] is mapped here, in one place; the HTTP layer adds only what HTTP
//! itself can get wrong (no token, a body that is not JSON or too large). Messages say what to do
//! next and never carry a secret; internal failures are logged with detail but answered with a
//! generic sentence.

use axum::Json;
use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
pub use keyward_proto::error::ErrorBody;
use keyward_proto::error::ErrorDetail;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::service::ServiceError;

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No or an unknown bearer token.
    #[error(
        "send `Authorization: Bearer <token>` with a valid API token; an administrator creates one with `keyward admin token create`"
    )]
    Unauthenticated,
    /// The token's role does not grant the permission.
    #[error("{0}")]
    Forbidden(String),
    /// Too many failed authentications from the caller's address; retry after the seconds given.
    #[error(
        "too many failed authentications from your address; wait {0} seconds, then retry with a valid API token"
    )]
    TooManyFailures(u64),
    /// The thing named in the path does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The thing named does not exist, said in a whole sentence with what to do.
    #[error("{0}")]
    Missing(String),
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The body is larger than the server accepts.
    #[error("the request body is larger than the server accepts (max_body_bytes)")]
    TooLarge,
    /// The request conflicts with the current state (e.g. a transition not allowed now).
    #[error("{0}")]
    Conflict(String),
    /// A policy (tenant, enrollment, key state) refuses the request.
    #[error("{0}")]
    Refused(String),
    /// Entra answered with an error or could not be reached.
    #[error("Entra ID: {0}")]
    Upstream(String),
    /// Keyward is not ready for this (e.g. the connector is not configured).
    #[error("{0}")]
    Unavailable(String),
    /// The Entra connector is not set up yet.
    #[error("{0}")]
    NotConfigured(String),
    /// A fault on our side; details are in the server log under the request id.
    #[error("internal error; the server log has the details")]
    Internal(String),
}

impl ApiError {
    /// HTTP status and stable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::TooManyFailures(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::NotFound(_) | Self::Missing(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::Refused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "refused"),
            Self::Upstream(_) => (StatusCode::BAD_GATEWAY, "entra_error"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::NotConfigured(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_configured"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// A store or other internal failure: logged in full, answered generically.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let Self::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let body = ErrorBody { error: ErrorDetail { code: code.to_owned(), message: self.to_string() } };
        let mut response = (status, Json(body)).into_response();
        if let Self::TooManyFailures(seconds) = self {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            e @ ServiceError::Forbidden { .. } => Self::Forbidden(e.to_string()),
            ServiceError::Protected(why) => Self::Forbidden(why),
            ServiceError::NotFound(what) => Self::NotFound(what),
            e @ ServiceError::UnknownPerson(_) => Self::Missing(e.to_string()),
            ServiceError::Invalid(why) => Self::BadRequest(why),
            ServiceError::Refused(why) => Self::Refused(why),
            ServiceError::Conflict(why) => Self::Conflict(why),
            ServiceError::Entra(why) => Self::Upstream(why),
            ServiceError::Unavailable(why) => Self::Unavailable(why),
            ServiceError::NotConfigured(why) => Self::NotConfigured(why),
            ServiceError::Store(e) => Self::internal(e),
            ServiceError::Internal(detail) => Self::Internal(detail),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Self::TooLarge,
            other => Self::BadRequest(format!("the JSON body is not valid: {}", other.body_text())),
        }
    }
}

/// `axum::Json` whose rejections answer in Keyward's error shape, and which takes a JSON object
/// only: serde's derive would also read a struct from an array of its fields in order
/// (`[null, null]` as a Temporary Access Pass request), which no client means.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        // Content type, size limit and syntax, as axum checks them.
        let Json(value) = Json::<serde_json::Value>::from_request(request, state).await?;
        if !value.is_object() {
            return Err(ApiError::BadRequest("the JSON body must be an object (`{…}`)".into()));
        }
        serde_json::from_value(value)
            .map(ApiJson)
            .map_err(|e| ApiError::BadRequest(format!("the JSON body is not valid: {e}")))
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

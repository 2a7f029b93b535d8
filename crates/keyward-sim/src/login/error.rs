//! Login error responses shaped like Entra's: the OAuth `error`, an `error_description`
//! that starts with the AADSTS code and ends with trace id, correlation id and timestamp,
//! the numeric `error_codes`, and the ids repeated as fields.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use keyward_webauthn::graph::TokenErrorBody;

/// A refused login request: HTTP status, OAuth error, AADSTS code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginError {
    /// HTTP status (400, or 401 for `invalid_client`).
    pub status: StatusCode,
    /// The OAuth `error` value, e.g. `invalid_client`.
    pub error: &'static str,
    /// The AADSTS code, e.g. 7000215.
    pub code: u64,
    /// The message after `AADSTSnnnnn: `.
    pub message: String,
    /// The caller's `client-request-id`, echoed as the correlation id when it is a GUID.
    pub correlation_id: Option<String>,
}

impl LoginError {
    /// A 400 error.
    pub fn bad_request(error: &'static str, code: u64, message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, error, code, message: message.into(), correlation_id: None }
    }

    /// A 401 `invalid_client` error.
    pub fn invalid_client(code: u64, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            code,
            message: message.into(),
            correlation_id: None,
        }
    }

    /// AADSTS900144: a required parameter is missing.
    pub fn missing(parameter: &str) -> Self {
        Self::bad_request(
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{parameter}'."),
        )
    }

    /// AADSTS90002: the tenant in the URL is not this tenant.
    pub fn unknown_tenant(tenant: &str) -> Self {
        Self::bad_request(
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are \
                 signing into the correct cloud. Check with your subscription administrator, this may \
                 happen if there are no active subscriptions for the tenant."
            ),
        )
    }

    /// AADSTS700016: the client id names no app of this tenant.
    pub fn unknown_app(client_id: &str, tenant: &str) -> Self {
        Self::bad_request(
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This \
                 can happen if the application has not been installed by the administrator of the tenant \
                 or consented to by any user in the tenant. You may have sent your authentication request \
                 to the wrong tenant."
            ),
        )
    }

    /// Echoes the caller's `client-request-id` (if it is a GUID) as the correlation id.
    pub fn correlated(mut self, headers: &HeaderMap) -> Self {
        self.correlation_id = correlation_from(headers);
        self
    }

    /// The JSON body, with fresh trace id and the correlation id filled in.
    pub fn body(&self) -> TokenErrorBody {
        let trace_id = uuid::Uuid::new_v4().to_string();
        let correlation_id = self.correlation_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let timestamp = timestamp();
        TokenErrorBody {
            error: self.error.into(),
            error_description: format!(
                "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
                self.code, self.message
            ),
            error_codes: vec![self.code],
            timestamp: Some(timestamp),
            trace_id: Some(trace_id),
            correlation_id: Some(correlation_id),
        }
    }

    /// The error as the HTML page the sign-in UI shows when it cannot redirect back.
    pub fn into_html(self) -> Response {
        let body = self.body();
        let page = format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Sign in - error</title></head>\
             <body><h1>Sorry, but we're having trouble signing you in.</h1><p id=\"error\">{}</p>\
             <pre id=\"details\">{}</pre></body></html>",
            super::html_escape(&format!("AADSTS{}: {}", self.code, self.message)),
            super::html_escape(&body.error_description),
        );
        let mut response = (self.status, Html(page)).into_response();
        no_store(response.headers_mut());
        response
    }
}

impl IntoResponse for LoginError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = (self.status, axum::Json(&body)).into_response();
        let headers = response.headers_mut();
        no_store(headers);
        if let Some(trace) = body.trace_id.as_deref().and_then(|t| HeaderValue::from_str(t).ok()) {
            headers.insert("x-ms-request-id", trace);
        }
        response
    }
}

/// Adds the cache headers Entra sends on every token response.
pub fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store, no-cache"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

fn correlation_from(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("client-request-id")?.to_str().ok()?;
    uuid::Uuid::parse_str(value).ok().map(|u| u.to_string())
}

/// `yyyy-MM-dd HH:mm:ssZ`, UTC, as in Entra error bodies.
pub fn timestamp() -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc().format(&format).unwrap_or_default()
}

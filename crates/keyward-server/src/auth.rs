//! Who is calling an HTTP request, and the early refusal from the route table.
//!
//! The bearer token is resolved by the service ([`Service::authenticate`], with its short-lived
//! cache); this module only reads the header. Every `/api/v1` request is authenticated and
//! checked against the route's permission in [`crate::api::routes`] *before* its body is read, so
//! an unauthorised caller learns nothing from validation errors. The service checks the same
//! permission again when the handler calls it: the table is the early, documented answer; the
//! service's check is the one nothing can bypass.
//!
//! Failed authentications are limited per client address ([`FailedAuths`]): after a few in a
//! minute the address is answered 429 without the token being looked up, so guessing costs the
//! database nothing (a token this server resolved recently still passes from there); the table of addresses is bounded, so a flood from many addresses costs a
//! fixed amount of memory. Every 401, 403 and 429 is counted for the audit chain
//! ([`record_refusals`], aggregated by `service::refusals`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use secrecy::SecretString;

use crate::api::routes::RoutePermissions;
use crate::error::ApiError;
use crate::service::{Caller, Service};

/// The bearer token of a request.
fn bearer(parts: &Parts) -> Result<SecretString, ApiError> {
    let header = parts.headers.get(axum::http::header::AUTHORIZATION).ok_or(ApiError::Unauthenticated)?;
    let value = header.to_str().map_err(|_| ApiError::Unauthenticated)?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or(ApiError::Unauthenticated)?;
    Ok(SecretString::from(token.trim().to_owned()))
}

/// Authenticates the bearer token of a request.
async fn authenticate(parts: &Parts, service: &Service) -> Result<Caller, ApiError> {
    let token = bearer(parts)?;
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

/// How many failed authentications an address may make per [`FAILURE_WINDOW`].
pub const FAILURES_ALLOWED: u32 = 10;
/// The window over which failed authentications are counted.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at once; newcomers beyond it share one bucket.
const MAX_ADDRESSES: usize = 4096;

/// Failed authentications per client address, in fixed windows.
#[derive(Debug, Default)]
pub struct FailedAuths(Mutex<HashMap<IpAddr, (Instant, u32)>>);

impl FailedAuths {
    /// How long `addr` must wait, when it has used up its failures in the current window.
    pub fn blocked_for(&self, addr: IpAddr) -> Option<Duration> {
        let table = self.0.lock().expect("failed-auth table poisoned");
        let (start, failures) = table.get(&addr).or_else(|| table.get(&OVERFLOW))?;
        let left = FAILURE_WINDOW.checked_sub(start.elapsed())?;
        (*failures >= FAILURES_ALLOWED).then_some(left)
    }

    /// Counts a failed authentication from `addr`.
    pub fn failed(&self, addr: IpAddr) {
        let mut table = self.0.lock().expect("failed-auth table poisoned");
        let now = Instant::now();
        if !table.contains_key(&addr) && table.len() >= MAX_ADDRESSES {
            table.retain(|_, (start, _)| now.duration_since(*start) < FAILURE_WINDOW);
        }
        let key = if table.contains_key(&addr) || table.len() < MAX_ADDRESSES { addr } else { OVERFLOW };
        let entry = table.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= FAILURE_WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    /// Addresses tracked now (for tests of the bound).
    pub fn tracked(&self) -> usize {
        self.0.lock().expect("failed-auth table poisoned").len()
    }
}

/// The bucket that addresses share once the table is full.
const OVERFLOW: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// What the authorisation middleware needs.
#[derive(Debug, Clone)]
pub struct AuthState {
    /// The service that resolves tokens.
    pub service: Arc<Service>,
    /// The route table.
    pub table: Arc<RoutePermissions>,
    /// Failed authentications per address.
    pub failures: Arc<FailedAuths>,
}

fn client_ip(request: &axum::extract::Request) -> Option<IpAddr> {
    request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// Middleware: authenticates and authorises every `/api/v1` request before its body is read.
/// Operations missing from the route table are refused (deny by default); the few public routes
/// are not under this layer.
pub async fn authorize(
    axum::extract::State(state): axum::extract::State<AuthState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let Some(path) = request.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str().to_owned())
    else {
        return next.run(request).await;
    };
    let AuthState { service, table, failures } = state;
    let ip = client_ip(&request);
    let (mut parts, body) = request.into_parts();
    // A limited address is not looked up in the store: only a token this server resolved
    // recently (a colleague's, on the same host as a misbehaving script) still passes.
    if let Some(wait) = ip.and_then(|ip| failures.blocked_for(ip)) {
        let Some(caller) = bearer(&parts).ok().and_then(|t| service.authenticate_cached(&t)) else {
            return ApiError::TooManyFailures(wait.as_secs().max(1)).into_response();
        };
        parts.extensions.insert(caller);
    }
    let caller = match parts.extensions.get::<Caller>().cloned() {
        Some(cached) => Ok(cached),
        None => authenticate(&parts, &service).await,
    };
    let caller = match caller {
        Ok(c) => c,
        Err(e) => {
            // Only a presented token that failed counts: a request without one costs nothing.
            let presented = parts.headers.contains_key(axum::http::header::AUTHORIZATION);
            if let (ApiError::Unauthenticated, Some(ip), true) = (&e, ip, presented) {
                failures.failed(ip);
            }
            return e.into_response();
        }
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

/// Middleware: counts every refused `/api/v1` request (401, 403, 429) for the audit chain.
pub async fn record_refusals(
    axum::extract::State(service): axum::extract::State<Arc<Service>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use crate::service::refusals::Refusal;
    let client = client_ip(&request).map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let operation = match request.extensions().get::<axum::extract::MatchedPath>() {
        Some(path) => format!("{} {}", request.method(), path.as_str()),
        None => format!("{} (no such operation)", request.method()),
    };
    let response = next.run(request).await;
    let refusal = match response.status() {
        axum::http::StatusCode::UNAUTHORIZED => Some(Refusal::Unauthenticated),
        axum::http::StatusCode::FORBIDDEN => Some(Refusal::Forbidden),
        axum::http::StatusCode::TOO_MANY_REQUESTS => Some(Refusal::RateLimited),
        _ => None,
    };
    if let Some(refusal) = refusal {
        service.refusals.note(refusal, &client, &operation);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_its_allowed_failures_and_others_are_not() {
        let table = FailedAuths::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..FAILURES_ALLOWED - 1 {
            table.failed(a);
        }
        assert_eq!(table.blocked_for(a), None);
        table.failed(a);
        assert!(table.blocked_for(a).is_some_and(|d| d <= FAILURE_WINDOW));
        assert_eq!(table.blocked_for(b), None);
    }

    #[test]
    fn the_table_of_addresses_stays_bounded() {
        let table = FailedAuths::default();
        for i in 0..(MAX_ADDRESSES as u32 + 5000) {
            table.failed(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)));
        }
        assert!(table.tracked() <= MAX_ADDRESSES + 1, "{}", table.tracked());
        // Newcomers share the overflow bucket, which fills and blocks like any address.
        let late = IpAddr::V4(Ipv4Addr::from(0x0b00_0000));
        assert!(table.blocked_for(late).is_some());
    }
}

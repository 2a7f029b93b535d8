//! Who is calling: API tokens, their roles, and the permission check every route makes.
//!
//! Tokens are made and stored by `keyward_store::tokens`: only their SHA-256 is kept, so a copy
//! of the database does not hand out access. Looking a token up on every request would make
//! the store the bottleneck of every read, so resolved tokens are cached in memory for a short
//! time; revoking a token through this server drops it from the cache at once, and other servers
//! on the same database see the revocation when their cache entry expires.
//!
//! Every handler takes a [`Caller`] and calls [`Caller::require`] before doing anything; the
//! OpenAPI document names the permission of each operation as its security scope, and the
//! permission-matrix test checks each route's behaviour against [`keyward_core::Role::allows`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use keyward_core::{ApiTokenId, Permission, Role};
use secrecy::SecretString;

use crate::error::ApiError;
use crate::service::Service;

/// How long a resolved token is trusted without asking the store again.
const CACHE_TTL: Duration = Duration::from_secs(30);

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's id (audit events name it).
    pub token_id: ApiTokenId,
    /// The token's name, for audit and logs.
    pub name: String,
    /// The role the token carries.
    pub role: Role,
}

impl Caller {
    /// Refuses with 403 unless the caller's role holds `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.role.allows(permission) {
            Ok(())
        } else {
            Err(ApiError::Forbidden { role: self.role.to_string(), action: permission.to_string() })
        }
    }

    /// How audit events name this caller.
    pub fn actor(&self) -> String {
        format!("token:{}", self.name)
    }
}

/// A short-lived cache of resolved tokens, keyed by hash.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, (Caller, Instant)>>,
}

impl TokenCache {
    fn get(&self, hash: &str) -> Option<Caller> {
        let entries = self.entries.lock().expect("token cache poisoned");
        entries.get(hash).filter(|(_, at)| at.elapsed() < CACHE_TTL).map(|(c, _)| c.clone())
    }

    fn put(&self, hash: String, caller: Caller) {
        let mut entries = self.entries.lock().expect("token cache poisoned");
        if entries.len() > 10_000 {
            entries.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
        }
        entries.insert(hash, (caller, Instant::now()));
    }

    /// Forgets a revoked token at once.
    pub fn forget(&self, token_id: ApiTokenId) {
        self.entries.lock().expect("token cache poisoned").retain(|_, (c, _)| c.token_id != token_id);
    }
}

/// Authenticates the bearer token of a request.
async fn authenticate(parts: &Parts, service: &Service) -> Result<Caller, ApiError> {
    let header = parts.headers.get(axum::http::header::AUTHORIZATION).ok_or(ApiError::Unauthenticated)?;
    let value = header.to_str().map_err(|_| ApiError::Unauthenticated)?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or(ApiError::Unauthenticated)?;
    let token = SecretString::from(token.trim().to_owned());
    let hash = keyward_store::tokens::token_hash(&token);
    if let Some(caller) = service.tokens.get(&hash) {
        return Ok(caller);
    }
    let caller = service.resolve_token(&token).await?.ok_or(ApiError::Unauthenticated)?;
    service.tokens.put(hash, caller.clone());
    Ok(caller)
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

/// The permission each API operation requires, read from the OpenAPI document's security
/// scopes, so the document and the enforcement cannot drift apart.
#[derive(Debug, Default)]
pub struct RoutePermissions(HashMap<(String, String), Permission>);

impl RoutePermissions {
    /// Reads `bearer` scopes from every operation of `doc`; panics on an unknown scope (a
    /// programming error caught by every test run).
    pub fn from_openapi(doc: &utoipa::openapi::OpenApi) -> Self {
        let mut table = HashMap::new();
        let json = serde_json::to_value(doc).expect("the OpenAPI document serialises");
        for (path, item) in json["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                let scope = op["security"][0]["bearer"][0].as_str();
                let Some(scope) = scope else { continue };
                let permission: Permission = scope
                    .parse()
                    .unwrap_or_else(|e| panic!("{method} {path} declares an unknown scope: {e}"));
                table.insert((method.to_uppercase(), path.clone()), permission);
            }
        }
        Self(table)
    }

    /// The permission of `method` on the route template `path`.
    pub fn get(&self, method: &str, path: &str) -> Option<Permission> {
        self.0.get(&(method.to_owned(), path.to_owned())).copied()
    }
}

/// Middleware: authenticates and authorises every `/api/v1` request *before* its body is read,
/// so an unauthorised caller learns nothing from validation errors. Operations without a
/// declared permission are refused (deny by default); the few public routes are not under it.
pub async fn authorize(
    axum::extract::State((service, table)): axum::extract::State<(Arc<Service>, Arc<RoutePermissions>)>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
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
        return ApiError::Forbidden { role: caller.role.to_string(), action: format!("call {path}") }
            .into_response();
    };
    if let Err(e) = caller.require(permission) {
        return e.into_response();
    }
    parts.extensions.insert(caller);
    next.run(axum::extract::Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_names_the_role_and_the_permission() {
        let c = Caller { token_id: ApiTokenId::new(), name: "t".into(), role: Role::Auditor };
        assert!(c.require(Permission::AuditRead).is_ok());
        let e = c.require(Permission::PasskeysRevoke).unwrap_err().to_string();
        assert!(e.contains("auditor") && e.contains("passkeys:revoke"), "{e}");
    }
}

//! Access tokens: issued by the token endpoint, checked on every Graph call.
//!
//! The emulator's access tokens are RS256 JWTs signed with its own key, carrying the
//! claims Graph app-only tokens carry (`aud`, `iss`, `tid`, `appid`, `roles`, `idtyp`).
//! Clients must treat them as opaque, as they must real Graph tokens; the emulator reads
//! them back to know which app calls and with which granted roles.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::Sim;
use crate::graph::GraphFailure;

/// The audience of Graph access tokens.
pub const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";
/// Lifetime of an access token, in seconds (as Entra: 3599).
pub const ACCESS_TOKEN_SECONDS: i64 = 3599;

/// Claims of an app-only Graph access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Audience: Graph.
    pub aud: String,
    /// Issuer: `https://sts.windows.net/{tid}/`.
    pub iss: String,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expiry.
    pub exp: i64,
    /// The calling app's client id.
    pub appid: String,
    /// Tenant id.
    pub tid: String,
    /// Granted application roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// `app` for app-only tokens.
    pub idtyp: String,
    /// Unique token id.
    pub uti: String,
    /// Token version.
    pub ver: String,
}

/// The authenticated caller of a Graph request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Client id of the app.
    pub app_id: String,
    /// Tenant id.
    pub tenant_id: String,
    /// Granted application roles.
    pub roles: Vec<String>,
}

impl Caller {
    /// Succeeds if the caller holds any of `roles`; otherwise the 403 Graph returns,
    /// naming the permissions that would allow the call.
    pub fn require_any(&self, roles: &[&str]) -> Result<(), GraphFailure> {
        if roles.iter().any(|r| self.roles.iter().any(|g| g.eq_ignore_ascii_case(r))) {
            Ok(())
        } else {
            Err(GraphFailure::new(
                StatusCode::FORBIDDEN,
                "Authorization_RequestDenied",
                format!(
                    "Insufficient privileges to complete the operation. The application needs one of these permissions: {}.",
                    roles.join(", ")
                ),
            ))
        }
    }
}

impl Sim {
    /// Issues an access token for an app of this tenant with its granted roles.
    pub fn issue_access_token(&self, client_id: &str, roles: Vec<String>) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let tid = self.read(|t| t.tenant_id.clone());
        let claims = AccessClaims {
            aud: GRAPH_AUDIENCE.into(),
            iss: format!("https://sts.windows.net/{tid}/"),
            iat: now,
            nbf: now,
            exp: now + ACCESS_TOKEN_SECONDS,
            appid: client_id.into(),
            tid,
            roles,
            idtyp: "app".into(),
            uti: uuid::Uuid::new_v4().simple().to_string(),
            ver: "1.0".into(),
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(self.keys().kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.keys().encoding)
            .unwrap_or_else(|e| panic!("signing an access token failed: {e}"))
    }

    /// Checks a bearer token as Graph would: signature, audience, issuer, expiry, tenant.
    pub fn check_access_token(&self, token: &str) -> Result<Caller, GraphFailure> {
        let tid = self.read(|t| t.tenant_id.clone());
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&[GRAPH_AUDIENCE, "00000003-0000-0000-c000-000000000000"]);
        validation.set_issuer(&[format!("https://sts.windows.net/{tid}/")]);
        validation.leeway = 0;
        let data =
            jsonwebtoken::decode::<AccessClaims>(token, &self.keys().decoding, &validation).map_err(|e| {
                let detail = match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                        "Lifetime validation failed, the token is expired."
                    }
                    jsonwebtoken::errors::ErrorKind::InvalidAudience => "Invalid audience.",
                    jsonwebtoken::errors::ErrorKind::InvalidIssuer => {
                        "Invalid issuer: the token was issued for another tenant."
                    }
                    _ => "Access token validation failure. Invalid signature or malformed token.",
                };
                unauthenticated(detail)
            })?;
        if !self.read(|t| t.find_app(&data.claims.appid).is_some()) {
            return Err(unauthenticated("The application of this token no longer exists in the tenant."));
        }
        Ok(Caller { app_id: data.claims.appid, tenant_id: data.claims.tid, roles: data.claims.roles })
    }
}

fn unauthenticated(message: &str) -> GraphFailure {
    GraphFailure::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message)
}

/// Middleware: rejects Graph calls without a valid bearer token; stores the [`Caller`].
pub async fn require_token(State(sim): State<Sim>, mut request: Request, next: Next) -> Response {
    let header =
        request.headers().get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    let token =
        header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")).unwrap_or("").trim();
    if token.is_empty() {
        return unauthenticated("Access token is empty.").into_response();
    }
    match sim.check_access_token(token) {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(failure) => failure.into_response(),
    }
}

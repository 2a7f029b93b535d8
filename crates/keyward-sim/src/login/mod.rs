//! The Entra login endpoints under `/{tenant}`: client-credentials tokens (secret or
//! certificate assertion) and OpenID Connect for the portal (docs/entra-graph-api.md §7, §10).
//!
//! Routes:
//!
//! * `POST /{tenant}/oauth2/v2.0/token` — `client_credentials` (secret in the body or by
//!   HTTP Basic, or a certificate `client_assertion` signed RS256 or PS256 and naming its
//!   certificate by `x5t` or `x5t#S256`) and `authorization_code` (with PKCE S256).
//! * `GET /{tenant}/v2.0/.well-known/openid-configuration` and
//!   `GET /{tenant}/discovery/v2.0/keys` — discovery document and JWKS.
//! * `GET /{tenant}/oauth2/v2.0/authorize` — a small sign-in page listing the enabled
//!   seeded users; `POST` on the same path is the pick, answered with a 302 to the
//!   redirect URI carrying `code` and `state` in the query (`response_mode=query` only).
//!
//! * `POST /{tenant}/passkey/signin/options` and `POST /{tenant}/passkey/signin` — passkey
//!   sign-in ([`passkey`]); `POST /{tenant}/tap/signin` — Temporary Access Pass sign-in; both
//!   answer with a person's tokens ([`user_token`]). The shapes are the emulator's own
//!   (`keyward_webauthn::signin`).
//! * `GET /{tenant}/securityinfo/passkey/creationOptions` and `POST /{tenant}/securityinfo/passkey`
//!   — the person registers a passkey with a token for security-info registration.
//!
//! Errors carry Entra's shape: `error`, `error_description` starting `AADSTSnnnnn: ` and
//! ending with trace id, correlation id and timestamp, `error_codes`, `timestamp`,
//! `trace_id`, `correlation_id` (a GUID `client-request-id` header is echoed as the
//! correlation id). Status 400, or 401 for `invalid_client`.
//!
//! Choices where the real service's behaviour is not documented (UNCONFIRMED), taking the
//! stricter reading:
//!
//! * **Clock skew** for client assertions: 30 s either side of `exp` / `nbf`.
//! * **Assertion claims**: `exp` and `jti` are required; `nbf` is honoured when present;
//!   `aud` may be a string or a one-element array and must name this emulator's token
//!   endpoint or `https://login.microsoftonline.com/{tenant id or domain}/oauth2/v2.0/token`.
//!   Wrong `aud` → AADSTS700023, `iss`/`sub` not the client id → AADSTS700021 (both from the
//!   Azure SDK troubleshooting tables, not the spec's error table).
//! * **Replayed `jti`** → 401 `invalid_client` AADSTS50013 (assertion invalid); a `jti` is
//!   remembered until its assertion's `exp` plus the skew. Missing `exp`/`jti` → AADSTS50013.
//! * **Malformed assertion** (not a JWT) → AADSTS50027; algorithms other than RS256/PS256,
//!   or a header without `x5t`/`x5t#S256` → AADSTS700027.
//! * **Both a secret and an assertion**, a Basic client id differing from the body's, or a
//!   wrong `client_assertion_type` → 400 `invalid_request` AADSTS9002313.
//! * **`/organizations`** is refused for `client_credentials` like `/common` and
//!   `/consumers` (AADSTS9001023). On the OIDC endpoints `/common` and `/organizations`
//!   stand for this tenant (the discovery `issuer` is then the `{tenantid}` template, as
//!   Entra's); `/consumers` is an unknown tenant (AADSTS90002).
//! * **Unsupported grant type** → `unsupported_grant_type` AADSTS70003.
//! * **Authorization codes**: the code is consumed by the first redemption attempt of an
//!   authenticated client, even one that then fails; a reused code → AADSTS54005, an
//!   expired one → AADSTS70008, an unknown one or one issued to another client →
//!   AADSTS70000 (`invalid_grant`); a redirect URI differing from the authorize request's
//!   → AADSTS50011. Redemption always requires client authentication (no public clients).
//!   A `code_verifier` sent for a code issued without a challenge is ignored.
//! * **PKCE**: only `S256`; `plain` is refused at authorize (`invalid_request`).
//! * **Authorize errors**: an unknown client (AADSTS700016), a redirect URI not registered
//!   (AADSTS50011) or a missing `client_id`/`redirect_uri` show an error page (400); later
//!   errors go back to the redirect URI as `error`/`error_description`/`state`
//!   (`response_type` other than `code` → `unsupported_response_type` AADSTS700054). A
//!   disabled user (AADSTS50057) or an unknown `user_id` (AADSTS50034) gets the error page.
//! * **The access token** returned by code redemption is an app-only token of the client
//!   with no roles (the emulator has no delegated Graph permissions); no refresh token is
//!   issued. The ID token's pairwise `sub` is base64url(SHA-256(client id ":" user id)).
//! * The JWKS entry has no `x5t`/`x5c` (the emulator's key has no certificate); the
//!   discovery document has no `userinfo_endpoint`.

mod conditional_access;
mod error;
mod oidc;
mod passkey;
mod security_info;
mod tap_signin;
mod token;
pub mod user_token;

use std::collections::BTreeMap;

use axum::Router;
use axum::routing::{get, post};
use keyward_webauthn::signin;

pub use error::LoginError;

use crate::Sim;

/// The `client_assertion_type` of a certificate credential (RFC 7523).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The only scope the client-credentials grant accepts here.
pub const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";
/// Lifetime of an authorization code, in seconds.
pub const CODE_SECONDS: i64 = 600;
/// Lifetime of an ID token, in seconds.
pub const ID_TOKEN_SECONDS: i64 = 3600;
/// Clock skew tolerated on client-assertion `exp` and `nbf`, in seconds.
pub const ASSERTION_LEEWAY_SECONDS: i64 = 30;

/// All login routes.
pub fn routes() -> Router<Sim> {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token::token))
        .route("/{tenant}/v2.0/.well-known/openid-configuration", get(oidc::discovery))
        .route("/{tenant}/discovery/v2.0/keys", get(oidc::jwks))
        .route("/{tenant}/oauth2/v2.0/authorize", get(oidc::authorize_page).post(oidc::authorize_pick))
}

/// The emulator's own sign-in routes: passkey and TAP sign-in, security-info registration.
pub fn sign_in_routes() -> Router<Sim> {
    Router::new()
        .route(&format!("/{{tenant}}/{}", signin::OPTIONS_PATH), post(passkey::options))
        .route(&format!("/{{tenant}}/{}", signin::ASSERTION_PATH), post(passkey::assertion))
        .route(&format!("/{{tenant}}/{}", signin::TAP_PATH), post(tap_signin::sign_in))
        .route("/{tenant}/securityinfo/passkey/creationOptions", get(security_info::creation_options))
        .route("/{tenant}/securityinfo/passkey", post(security_info::register))
}

/// How the `{tenant}` path segment resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TenantRef {
    /// This tenant, by GUID or domain.
    Own,
    /// `common` or `organizations` (multi-tenant aliases).
    Multi(String),
    /// `consumers`.
    Consumers,
}

/// Resolves the `{tenant}` segment; an unknown tenant is AADSTS90002.
pub(crate) fn resolve_tenant(sim: &Sim, tenant: &str) -> Result<TenantRef, LoginError> {
    if sim.read(|t| t.is_tenant(tenant)) {
        return Ok(TenantRef::Own);
    }
    match tenant.to_ascii_lowercase().as_str() {
        "common" | "organizations" => Ok(TenantRef::Multi(tenant.to_ascii_lowercase())),
        "consumers" => Ok(TenantRef::Consumers),
        _ => Err(LoginError::unknown_tenant(tenant)),
    }
}

/// Parses `application/x-www-form-urlencoded` text; the first occurrence of a name wins,
/// empty values count as absent.
pub(crate) fn parse_form(text: &[u8]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(text) {
        if !v.is_empty() {
            out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
    }
    out
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Current unix time in seconds.
pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            html_escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn forms_keep_the_first_non_empty_value() {
        let form = parse_form(b"a=1&a=2&b=&c=x+y%21");
        assert_eq!(form.get("a").map(String::as_str), Some("1"));
        assert!(!form.contains_key("b"));
        assert_eq!(form.get("c").map(String::as_str), Some("x y!"));
    }
}

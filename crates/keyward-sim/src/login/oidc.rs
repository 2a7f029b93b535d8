//! OpenID Connect for the portal: discovery, JWKS, the sign-in page (authorize, code +
//! PKCE) and code redemption giving an ID token.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use keyward_webauthn::conditional_access::Target;
use keyward_webauthn::graph::TokenResponse;
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::user_token::id_token;

use super::error::no_store;
use super::token::authenticate_client;
use super::{CODE_SECONDS, LoginError, TenantRef, html_escape, now, parse_form, resolve_tenant};
use crate::Sim;
use crate::auth::ACCESS_TOKEN_SECONDS;
use crate::seed::{SeedApp, SeedUser};
use crate::tenant::PendingCode;

/// Resolves a tenant for the OIDC endpoints: this tenant, or `common`/`organizations`.
fn oidc_tenant(sim: &Sim, tenant: &str) -> Result<TenantRef, LoginError> {
    match resolve_tenant(sim, tenant)? {
        TenantRef::Consumers => Err(LoginError::unknown_tenant(tenant)),
        other => Ok(other),
    }
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
pub(super) async fn discovery(
    State(sim): State<Sim>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let tenant_ref = match oidc_tenant(&sim, &tenant) {
        Ok(t) => t,
        Err(e) => return e.correlated(&headers).into_response(),
    };
    let base = sim.base_url();
    let tid = sim.read(|t| t.tenant_id.clone());
    let (segment, issuer_tid) = match &tenant_ref {
        TenantRef::Own => (tid.clone(), tid),
        TenantRef::Multi(name) => (name.clone(), "{tenantid}".to_owned()),
        TenantRef::Consumers => (tenant.clone(), tenant.clone()),
    };
    axum::Json(json!({
        "token_endpoint": format!("{base}/{segment}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{segment}/discovery/v2.0/keys"),
        "response_modes_supported": ["query"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{base}/{issuer_tid}/v2.0"),
        "request_uri_parameter_supported": false,
        "authorization_endpoint": format!("{base}/{segment}/oauth2/v2.0/authorize"),
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "nbf", "nonce", "name", "preferred_username", "oid", "tid", "ver"
        ],
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "tenant_region_scope": null,
        "cloud_instance_name": "keyward.sim",
    }))
    .into_response()
}

/// `GET /{tenant}/discovery/v2.0/keys`.
pub(super) async fn jwks(State(sim): State<Sim>, Path(tenant): Path<String>, headers: HeaderMap) -> Response {
    if let Err(e) = oidc_tenant(&sim, &tenant) {
        return e.correlated(&headers).into_response();
    }
    let base = sim.base_url();
    let tid = sim.read(|t| t.tenant_id.clone());
    let keys = sim.keys();
    axum::Json(json!({
        "keys": [{
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": keys.kid,
            "n": keys.n,
            "e": keys.e,
            "issuer": format!("{base}/{tid}/v2.0"),
        }]
    }))
    .into_response()
}

/// A validated authorize request.
struct AuthorizeRequest {
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// What went wrong with an authorize request: shown on the page, or sent back.
enum AuthorizeFailure {
    /// The redirect URI cannot be trusted: show an error page.
    Page(LoginError),
    /// Send `error` and `error_description` to the (trusted) redirect URI.
    Redirect { redirect_uri: String, state: Option<String>, error: Box<LoginError> },
}

impl AuthorizeFailure {
    fn into_response(self, headers: &HeaderMap) -> Response {
        match self {
            AuthorizeFailure::Page(e) => e.correlated(headers).into_html(),
            AuthorizeFailure::Redirect { redirect_uri, state, error } => {
                let body = error.correlated(headers).body();
                let mut pairs = vec![("error", body.error), ("error_description", body.error_description)];
                if let Some(state) = state {
                    pairs.push(("state", state));
                }
                redirect_with(&redirect_uri, &pairs)
            }
        }
    }
}

fn redirect_with(redirect_uri: &str, pairs: &[(&str, String)]) -> Response {
    let location = match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (k, v) in pairs {
                    query.append_pair(k, v);
                }
            }
            url.to_string()
        }
        Err(_) => redirect_uri.to_owned(),
    };
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    no_store(response.headers_mut());
    response
}

fn validate_authorize(
    sim: &Sim,
    tenant: &str,
    params: &BTreeMap<String, String>,
) -> Result<AuthorizeRequest, AuthorizeFailure> {
    oidc_tenant(sim, tenant).map_err(AuthorizeFailure::Page)?;
    let client_id =
        params.get("client_id").ok_or_else(|| AuthorizeFailure::Page(LoginError::missing("client_id")))?;
    let app = sim
        .read(|t| t.find_app(client_id).cloned())
        .ok_or_else(|| AuthorizeFailure::Page(LoginError::unknown_app(client_id, tenant)))?;
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or_else(|| AuthorizeFailure::Page(LoginError::missing("redirect_uri")))?;
    if !app.redirect_uris.iter().any(|r| r == redirect_uri) {
        return Err(AuthorizeFailure::Page(redirect_mismatch(redirect_uri, &app.client_id)));
    }
    let state = params.get("state").cloned();
    let back = |error: LoginError| AuthorizeFailure::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
        error: Box::new(error),
    };
    match params.get("response_type").map(String::as_str) {
        None => return Err(back(LoginError::missing("response_type"))),
        Some("code") => {}
        Some(other) => {
            return Err(back(LoginError::bad_request(
                "unsupported_response_type",
                700054,
                format!(
                    "response_type '{other}' is not enabled for the application; the emulator supports 'code' only."
                ),
            )));
        }
    }
    if let Some(mode) = params.get("response_mode").filter(|m| *m != "query") {
        return Err(back(LoginError::bad_request(
            "invalid_request",
            9002313,
            format!("Invalid request. response_mode '{mode}' is not supported by the emulator; use 'query'."),
        )));
    }
    let scope = params.get("scope").ok_or_else(|| back(LoginError::missing("scope")))?;
    let code_challenge = params.get("code_challenge").cloned();
    let code_challenge_method = params.get("code_challenge_method").cloned();
    if code_challenge.is_some() && code_challenge_method.as_deref() != Some("S256") {
        return Err(back(LoginError::bad_request(
            "invalid_request",
            9002313,
            "Invalid request. code_challenge_method must be 'S256' (the emulator refuses 'plain').",
        )));
    }
    Ok(AuthorizeRequest {
        client_id: app.client_id,
        redirect_uri: redirect_uri.clone(),
        scope: scope.clone(),
        state,
        nonce: params.get("nonce").cloned(),
        code_challenge,
        code_challenge_method,
    })
}

fn redirect_mismatch(redirect_uri: &str, client_id: &str) -> LoginError {
    LoginError::bad_request(
        "invalid_request",
        50011,
        format!(
            "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs \
             configured for the application '{client_id}'. Make sure the redirect URI sent in the request \
             matches one added to your application in the Azure portal."
        ),
    )
}

/// `GET /{tenant}/oauth2/v2.0/authorize`: the sign-in page listing the enabled users.
pub(super) async fn authorize_page(
    State(sim): State<Sim>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = parse_form(query.unwrap_or_default().as_bytes());
    let request = match validate_authorize(&sim, &tenant, &params) {
        Ok(r) => r,
        Err(f) => return f.into_response(&headers),
    };
    let users = sim.read(|t| {
        t.users
            .iter()
            .filter(|u| u.account_enabled)
            .map(|u| (u.id.clone(), u.user_principal_name.clone(), u.display_name.clone()))
            .collect::<Vec<_>>()
    });
    let hidden: String = [
        ("client_id", Some(&request.client_id)),
        ("redirect_uri", Some(&request.redirect_uri)),
        ("response_type", Some(&"code".to_owned())),
        ("scope", Some(&request.scope)),
        ("state", request.state.as_ref()),
        ("nonce", request.nonce.as_ref()),
        ("code_challenge", request.code_challenge.as_ref()),
        ("code_challenge_method", request.code_challenge_method.as_ref()),
    ]
    .iter()
    .filter_map(|(name, value)| {
        value.map(|v| format!("<input type=\"hidden\" name=\"{name}\" value=\"{}\">", html_escape(v)))
    })
    .collect();
    let action = format!("/{}/oauth2/v2.0/authorize", html_escape(&tenant));
    let mut items = String::new();
    for (id, upn, name) in &users {
        items.push_str(&format!(
            "<li><form method=\"post\" action=\"{action}\">{hidden}\
             <input type=\"hidden\" name=\"user_id\" value=\"{}\">\
             <button type=\"submit\" class=\"user\" data-upn=\"{}\">{} &lt;{}&gt;</button></form></li>",
            html_escape(id),
            html_escape(upn),
            html_escape(name),
            html_escape(upn),
        ));
    }
    let page = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Sign in to your account</title></head>\
         <body><h1>Pick an account</h1><p>keyward sim: choose a seeded user to sign in as.</p>\
         <ul id=\"users\">{items}</ul></body></html>"
    );
    let mut response = Html(page).into_response();
    no_store(response.headers_mut());
    response
}

/// `POST /{tenant}/oauth2/v2.0/authorize`: the user picked; 302 back with `code` and `state`.
pub(super) async fn authorize_pick(
    State(sim): State<Sim>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = parse_form(&body);
    let request = match validate_authorize(&sim, &tenant, &params) {
        Ok(r) => r,
        Err(f) => return f.into_response(&headers),
    };
    let Some(user_id) = params.get("user_id") else {
        return LoginError::missing("user_id").correlated(&headers).into_html();
    };
    let user = sim.read(|t| t.find_user(user_id).cloned());
    let user = match user {
        Some(u) if u.account_enabled => u,
        Some(u) => {
            return LoginError::bad_request(
                "invalid_grant",
                50057,
                format!("The user account {} is disabled.", u.user_principal_name),
            )
            .correlated(&headers)
            .into_html();
        }
        None => {
            return LoginError::bad_request(
                "invalid_request",
                50034,
                format!("The user account {user_id} does not exist in the directory."),
            )
            .correlated(&headers)
            .into_html();
        }
    };
    // The sign-in page stands for a password sign-in.
    if let Some(refused) = super::conditional_access::refusal(
        &sim,
        &user,
        Target::Resource,
        keyward_webauthn::conditional_access::COMBINATION_PASSWORD,
    ) {
        return refused.correlated(&headers).into_html();
    }
    let mut raw = [0u8; 48];
    rand::thread_rng().fill_bytes(&mut raw);
    let code = keyward_webauthn::b64::encode(&raw);
    let now = now();
    let pending = PendingCode {
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        user_id: user.id.clone(),
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
        scope: request.scope.clone(),
        expires: now + CODE_SECONDS,
    };
    sim.write(|t| {
        t.pending_codes.retain(|_, p| p.expires >= now);
        t.pending_codes.insert(code.clone(), pending);
    });
    let mut pairs = vec![("code", code)];
    if let Some(state) = request.state {
        pairs.push(("state", state));
    }
    redirect_with(&request.redirect_uri, &pairs)
}

/// Prefix marking a redeemed code in `pending_codes` (codes are base64url: no `:`).
const USED: &str = "used:";

/// The `authorization_code` grant: redeems a code for an ID token (and an access token).
pub(super) fn redeem_code(
    sim: &Sim,
    tenant: &str,
    headers: &HeaderMap,
    params: &BTreeMap<String, String>,
) -> Result<TokenResponse, LoginError> {
    let code = params.get("code").ok_or_else(|| LoginError::missing("code"))?;
    let redirect_uri = params.get("redirect_uri").ok_or_else(|| LoginError::missing("redirect_uri"))?;
    let app = authenticate_client(sim, tenant, headers, params)?;
    let now = now();
    let pending = take_code(sim, code)?;
    check_code(&pending, &app, redirect_uri, now)?;
    check_code_verifier(&pending, params)?;
    let user = signed_in_user(sim, &pending)?;
    let scopes: Vec<&str> = pending.scope.split_whitespace().collect();
    let id_token = if scopes.contains(&"openid") {
        Some(id_token(sim, &app.client_id, &user, pending.nonce.clone(), &["pwd"], now)?)
    } else {
        None
    };
    Ok(TokenResponse {
        token_type: "Bearer".into(),
        expires_in: ACCESS_TOKEN_SECONDS as u64,
        ext_expires_in: Some(ACCESS_TOKEN_SECONDS as u64),
        access_token: sim.issue_access_token(&app.client_id, vec![]),
        id_token,
        scope: Some(scopes.iter().filter(|s| **s != "offline_access").copied().collect::<Vec<_>>().join(" ")),
    })
}

/// Marks the code redeemed and returns what it was issued for; a code redeems once.
fn take_code(sim: &Sim, code: &str) -> Result<PendingCode, LoginError> {
    let taken = sim.write(|t| {
        if code.contains(':') {
            return Err(false);
        }
        if t.pending_codes.contains_key(&format!("{USED}{code}")) {
            return Err(true);
        }
        let pending = t.pending_codes.remove(code).ok_or(false)?;
        t.pending_codes.insert(format!("{USED}{code}"), pending.clone());
        Ok(pending)
    });
    match taken {
        Ok(p) => Ok(p),
        Err(true) => Err(LoginError::bad_request(
            "invalid_grant",
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an \
             existing refresh token.",
        )),
        Err(false) => Err(invalid_code("The code is unknown.")),
    }
}

/// The code must be unexpired, issued to this client and redeemed with its redirect URI.
fn check_code(pending: &PendingCode, app: &SeedApp, redirect_uri: &str, now: i64) -> Result<(), LoginError> {
    if pending.expires < now {
        return Err(LoginError::bad_request(
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. Send a new \
             interactive authorization request for this user and resource.",
        ));
    }
    if !pending.client_id.eq_ignore_ascii_case(&app.client_id) {
        return Err(invalid_code("The code was issued to another client."));
    }
    if pending.redirect_uri != redirect_uri {
        return Err(redirect_mismatch(redirect_uri, &app.client_id));
    }
    Ok(())
}

/// PKCE: with a code challenge, the code verifier's S256 must match it.
fn check_code_verifier(pending: &PendingCode, params: &BTreeMap<String, String>) -> Result<(), LoginError> {
    let Some(challenge) = &pending.code_challenge else { return Ok(()) };
    let verifier = params.get("code_verifier").ok_or_else(|| LoginError::missing("code_verifier"))?;
    let computed = keyward_webauthn::b64::encode(&Sha256::digest(verifier.as_bytes()));
    if &computed != challenge {
        return Err(LoginError::bad_request(
            "invalid_grant",
            501481,
            "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
        ));
    }
    Ok(())
}

/// The user who signed in for the code, if their account still exists and is enabled.
fn signed_in_user(sim: &Sim, pending: &PendingCode) -> Result<SeedUser, LoginError> {
    match sim.read(|t| t.find_user(&pending.user_id).cloned()) {
        Some(u) if u.account_enabled => Ok(u),
        _ => Err(LoginError::bad_request(
            "invalid_grant",
            50057,
            "The user account is disabled or no longer exists.",
        )),
    }
}

fn invalid_code(detail: &str) -> LoginError {
    LoginError::bad_request(
        "invalid_grant",
        70000,
        format!("The provided value for the 'code' parameter is not valid. {detail}"),
    )
}

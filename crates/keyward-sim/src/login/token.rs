//! `POST /{tenant}/oauth2/v2.0/token`: client authentication (secret or certificate
//! assertion) and the `client_credentials` and `authorization_code` grants.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use keyward_webauthn::graph::TokenResponse;
use serde::Deserialize;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::error::no_store;
use super::{
    ASSERTION_LEEWAY_SECONDS, GRAPH_DEFAULT_SCOPE, JWT_BEARER, LoginError, TenantRef, now, parse_form,
    resolve_tenant,
};
use crate::Sim;
use crate::auth::ACCESS_TOKEN_SECONDS;
use crate::seed::SeedApp;

/// The token endpoint.
pub(super) async fn token(
    State(sim): State<Sim>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match serve(&sim, &tenant, &headers, &body) {
        Ok(response) => {
            let mut response = axum::Json(response).into_response();
            no_store(response.headers_mut());
            response
        }
        Err(e) => e.correlated(&headers).into_response(),
    }
}

fn serve(sim: &Sim, tenant: &str, headers: &HeaderMap, body: &[u8]) -> Result<TokenResponse, LoginError> {
    let tenant_ref = resolve_tenant(sim, tenant)?;
    let is_form = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded")
    });
    let params = if is_form { parse_form(body) } else { BTreeMap::new() };
    let grant_type = params.get("grant_type").ok_or_else(|| LoginError::missing("grant_type"))?;
    match grant_type.as_str() {
        "client_credentials" => {
            if tenant_ref != TenantRef::Own {
                return Err(LoginError::bad_request(
                    "invalid_request",
                    9001023,
                    "The grant type is not supported over the /common, /consumers or /organizations \
                     endpoints. Please use the tenant-specific endpoint.",
                ));
            }
            client_credentials(sim, tenant, headers, &params)
        }
        "authorization_code" => {
            if tenant_ref == TenantRef::Consumers {
                return Err(LoginError::unknown_tenant(tenant));
            }
            super::oidc::redeem_code(sim, tenant, headers, &params)
        }
        other => Err(LoginError::bad_request(
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{other}'."),
        )),
    }
}

fn client_credentials(
    sim: &Sim,
    tenant: &str,
    headers: &HeaderMap,
    params: &BTreeMap<String, String>,
) -> Result<TokenResponse, LoginError> {
    let app = authenticate_client(sim, tenant, headers, params)?;
    let scope = params.get("scope").ok_or_else(|| LoginError::missing("scope"))?;
    if !scope.trim().ends_with("/.default") {
        return Err(LoginError::bad_request(
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a \
                 scope value with /.default suffixed to the resource identifier (application ID URI); \
                 use '{GRAPH_DEFAULT_SCOPE}'."
            ),
        ));
    }
    if scope.trim() != GRAPH_DEFAULT_SCOPE {
        return Err(LoginError::bad_request(
            "invalid_scope",
            70011,
            format!(
                "The provided value for the input parameter 'scope' is not valid. The scope {scope} is \
                 not valid. The emulator serves only Microsoft Graph: use '{GRAPH_DEFAULT_SCOPE}'."
            ),
        ));
    }
    Ok(TokenResponse {
        token_type: "Bearer".into(),
        expires_in: ACCESS_TOKEN_SECONDS as u64,
        ext_expires_in: Some(ACCESS_TOKEN_SECONDS as u64),
        access_token: sim.issue_access_token(&app.client_id, app.roles.clone()),
        id_token: None,
        scope: None,
    })
}

/// Identifies and authenticates the client of a token request (secret in the body or by
/// HTTP Basic, or a certificate assertion); returns its app registration.
pub(super) fn authenticate_client(
    sim: &Sim,
    tenant: &str,
    headers: &HeaderMap,
    params: &BTreeMap<String, String>,
) -> Result<SeedApp, LoginError> {
    let basic = basic_credentials(headers)?;
    let body_id = params.get("client_id");
    let client_id = match (&basic, body_id) {
        (Some((id, _)), Some(body)) if !id.eq_ignore_ascii_case(body) => {
            return Err(malformed("The client_id in the Authorization header differs from the body's."));
        }
        (Some((id, _)), _) => id.clone(),
        (None, Some(id)) => id.clone(),
        (None, None) => return Err(LoginError::missing("client_id")),
    };
    let app = sim
        .read(|t| t.find_app(&client_id).cloned())
        .ok_or_else(|| LoginError::unknown_app(&client_id, tenant))?;
    let secret = match (&basic, params.get("client_secret")) {
        (Some(_), Some(_)) => {
            return Err(malformed(
                "The client secret was sent both in the Authorization header and the body.",
            ));
        }
        (Some((_, s)), None) => Some(s.clone()),
        (None, s) => s.cloned(),
    };
    let assertion = params.get("client_assertion");
    match (secret, assertion) {
        (Some(_), Some(_)) => {
            Err(malformed("Only one client credential may be sent: a secret or an assertion."))
        }
        (None, None) => Err(LoginError::invalid_client(
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )),
        (Some(secret), None) => {
            let ok = app
                .client_secret
                .as_deref()
                .is_some_and(|s| constant_time_eq(s.as_bytes(), secret.as_bytes()));
            if ok {
                Ok(app)
            } else {
                Err(LoginError::invalid_client(
                    7000215,
                    format!(
                        "Invalid client secret provided. Ensure the secret being sent in the request is the \
                         client secret value, not the client secret ID, for a secret added to app '{}'.",
                        app.client_id
                    ),
                ))
            }
        }
        (None, Some(assertion)) => {
            match params.get("client_assertion_type") {
                None => return Err(LoginError::missing("client_assertion_type")),
                Some(t) if t != JWT_BEARER => {
                    return Err(malformed(format!("The client_assertion_type '{t}' is not supported.")));
                }
                Some(_) => {}
            }
            verify_assertion(sim, &app, assertion)?;
            Ok(app)
        }
    }
}

fn malformed(detail: impl std::fmt::Display) -> LoginError {
    LoginError::bad_request(
        "invalid_request",
        9002313,
        format!("Invalid request. Request is malformed or invalid. {detail}"),
    )
}

/// HTTP Basic client credentials (`client_id:client_secret`, each form-url-encoded).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, LoginError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| malformed("The Authorization header is not valid."))?;
    let Some(encoded) = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic ")) else {
        return Err(malformed("Only Basic client authentication is accepted in the Authorization header."));
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| malformed("The Basic credentials are not valid base64."))?;
    let (id, secret) =
        decoded.split_once(':').ok_or_else(|| malformed("The Basic credentials have no ':' separator."))?;
    Ok(Some((form_decode(id), form_decode(secret))))
}

fn form_decode(text: &str) -> String {
    let query = format!("v={text}");
    url::form_urlencoded::parse(query.as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let da = Sha256::digest(a);
    let db = Sha256::digest(b);
    da.iter().zip(db.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, Deserialize)]
struct AssertionClaims {
    #[serde(default)]
    aud: Option<serde_json::Value>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    exp: Option<serde_json::Number>,
    #[serde(default)]
    nbf: Option<serde_json::Number>,
    #[serde(default)]
    iat: Option<serde_json::Number>,
    #[serde(default)]
    jti: Option<String>,
}

/// An RFC 7519 NumericDate claim in whole seconds. Fractional values are valid NumericDates
/// (MSAL Python sends them) and are accepted, rounded down; `--strict` refuses them as the
/// emulator's first round did, so a client can check it sends integers.
fn numeric_date(
    name: &str,
    value: Option<&serde_json::Number>,
    strict: bool,
) -> Result<Option<i64>, LoginError> {
    let Some(value) = value else { return Ok(None) };
    if let Some(whole) = value.as_i64() {
        return Ok(Some(whole));
    }
    let invalid = |reason: String| {
        LoginError::invalid_client(
            50013,
            format!("Assertion is invalid. [Reason - The {name} claim {reason}.]"),
        )
    };
    if strict {
        return Err(invalid(format!(
            "is {value}, not an integer (the emulator runs with --strict, which refuses fractional NumericDates)"
        )));
    }
    match value.as_f64() {
        Some(seconds) if seconds.is_finite() && seconds.abs() < 1e15 => Ok(Some(seconds.floor() as i64)),
        _ => Err(invalid(format!("is {value}, not a NumericDate (seconds since 1970)"))),
    }
}

/// A registered certificate: its thumbprints and RSA key.
struct RegisteredCert {
    sha1: Vec<u8>,
    sha256: Vec<u8>,
    key: Option<DecodingKey>,
}

fn registered_certs(app: &SeedApp) -> Vec<RegisteredCert> {
    let mut out = Vec::new();
    for pem_text in &app.certificates_pem {
        let mut rest = pem_text.as_bytes();
        while let Ok((next, pem)) = x509_parser::pem::parse_x509_pem(rest) {
            if pem.label == "CERTIFICATE" {
                let der = &pem.contents;
                let key = pem.parse_x509().ok().and_then(|cert| match cert.public_key().parsed() {
                    Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => {
                        Some(DecodingKey::from_rsa_raw_components(
                            strip_zero(rsa.modulus),
                            strip_zero(rsa.exponent),
                        ))
                    }
                    _ => None,
                });
                out.push(RegisteredCert {
                    sha1: Sha1::digest(der).to_vec(),
                    sha256: Sha256::digest(der).to_vec(),
                    key,
                });
            }
            if next.len() == rest.len() {
                break;
            }
            rest = next;
        }
    }
    out
}

fn strip_zero(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len().saturating_sub(1));
    &bytes[start..]
}

fn signature_failure(detail: &str) -> LoginError {
    LoginError::invalid_client(
        700027,
        format!("Client assertion failed signature validation. [Reason - {detail}]"),
    )
}

/// Verifies a certificate client assertion: signature by a registered certificate, `aud`,
/// `iss`/`sub`, `exp`/`nbf`, and `jti` single use.
fn verify_assertion(sim: &Sim, app: &SeedApp, assertion: &str) -> Result<(), LoginError> {
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| LoginError::invalid_client(50027, "JWT token is invalid or malformed."))?;
    let certs = registered_certs(app);
    let key = signing_key(app, &header, &certs)?;
    let claims = verified_claims(assertion, key, header.alg)?;
    check_audience(sim, &claims)?;
    check_issuer(app, &claims)?;
    let now = now();
    let exp = check_lifetime(&claims, now, sim.options().strict)?;
    use_once(sim, claims.jti, exp, now)
}

/// The registered certificate key the header's thumbprint names, for an accepted algorithm.
fn signing_key<'c>(
    app: &SeedApp,
    header: &jsonwebtoken::Header,
    certs: &'c [RegisteredCert],
) -> Result<&'c DecodingKey, LoginError> {
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::PS256) {
        return Err(signature_failure(&format!(
            "The algorithm {:?} is not supported; use RS256 or PS256.",
            header.alg
        )));
    }
    let s256 = header.x5t_s256.as_deref().and_then(|t| keyward_webauthn::b64::decode_lenient(t).ok());
    let s1 = header.x5t.as_deref().and_then(|t| keyward_webauthn::b64::decode_lenient(t).ok());
    if s256.is_none() && s1.is_none() {
        return Err(signature_failure("The client assertion header has no x5t or x5t#S256 thumbprint."));
    }
    let cert = certs
        .iter()
        .find(|c| s256.as_deref() == Some(c.sha256.as_slice()) || s1.as_deref() == Some(c.sha1.as_slice()))
        .ok_or_else(|| {
            let shown = header.x5t_s256.clone().or(header.x5t.clone()).unwrap_or_default();
            LoginError::invalid_client(
                700027,
                format!(
                    "The certificate with identifier used to sign the client assertion is not registered on \
                     application. [Reason - The key was not found., Thumbprint of key used by client: \
                     '{shown}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see \
                     configured keys for app Id '{}'.]",
                    app.client_id
                ),
            )
        })?;
    cert.key.as_ref().ok_or_else(|| signature_failure("The registered certificate has no RSA key."))
}

/// The assertion's claims once its signature verified; the claims are checked by the caller.
fn verified_claims(
    assertion: &str,
    key: &DecodingKey,
    alg: Algorithm,
) -> Result<AssertionClaims, LoginError> {
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    let decoded =
        jsonwebtoken::decode::<AssertionClaims>(assertion, key, &validation).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature
            | jsonwebtoken::errors::ErrorKind::InvalidAlgorithm
            | jsonwebtoken::errors::ErrorKind::InvalidAlgorithmName
            | jsonwebtoken::errors::ErrorKind::InvalidKeyFormat
            | jsonwebtoken::errors::ErrorKind::RsaFailedSigning => {
                signature_failure("The signature is not valid.")
            }
            _ => LoginError::invalid_client(50013, format!("Assertion is invalid. [Reason - {e}]")),
        })?;
    Ok(decoded.claims)
}

/// `aud` must be this tenant's token endpoint (by id or domain, on the emulator or on Entra).
fn check_audience(sim: &Sim, claims: &AssertionClaims) -> Result<(), LoginError> {
    let (tid, domain, base) = sim.read(|t| (t.tenant_id.clone(), t.tenant_domain.clone(), sim.base_url()));
    let accepted: Vec<String> = [base.as_str(), "https://login.microsoftonline.com"]
        .iter()
        .flat_map(|host| {
            [&tid, &domain].map(|t| format!("{host}/{t}/oauth2/v2.0/token").to_ascii_lowercase())
        })
        .collect();
    let aud = match &claims.aud {
        Some(serde_json::Value::String(a)) => Some(a.clone()),
        Some(serde_json::Value::Array(items)) if items.len() == 1 => items[0].as_str().map(str::to_owned),
        _ => None,
    };
    if !aud.as_deref().is_some_and(|a| accepted.contains(&a.to_ascii_lowercase())) {
        return Err(LoginError::invalid_client(
            700023,
            format!(
                "Client assertion audience claim does not match Realm issuer. Expected '{}/{tid}/oauth2/v2.0/token', \
                 got '{}'.",
                base,
                aud.unwrap_or_default()
            ),
        ));
    }
    Ok(())
}

/// `iss` and `sub` must both be the client id.
fn check_issuer(app: &SeedApp, claims: &AssertionClaims) -> Result<(), LoginError> {
    let is_client = |v: &Option<String>| v.as_deref().is_some_and(|v| v.eq_ignore_ascii_case(&app.client_id));
    if !is_client(&claims.iss) || !is_client(&claims.sub) {
        return Err(LoginError::invalid_client(
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter. The iss and sub \
             claims must both be the client id.",
        ));
    }
    Ok(())
}

/// `exp` (required) and `nbf` must bracket `now`, give or take the leeway; returns `exp`.
/// `iat` is only checked to be a NumericDate.
fn check_lifetime(claims: &AssertionClaims, now: i64, strict: bool) -> Result<i64, LoginError> {
    let exp = numeric_date("exp", claims.exp.as_ref(), strict)?.ok_or_else(|| {
        LoginError::invalid_client(50013, "Assertion is invalid. [Reason - The exp claim is required.]")
    })?;
    let nbf = numeric_date("nbf", claims.nbf.as_ref(), strict)?;
    numeric_date("iat", claims.iat.as_ref(), strict)?;
    let out_of_range =
        now > exp + ASSERTION_LEEWAY_SECONDS || nbf.is_some_and(|nbf| nbf > now + ASSERTION_LEEWAY_SECONDS);
    if out_of_range {
        return Err(LoginError::invalid_client(
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid \
                 from {}, expiry time of assertion {}.",
                iso(now),
                nbf.map(iso).unwrap_or_else(|| "(none)".into()),
                iso(exp)
            ),
        ));
    }
    Ok(exp)
}

/// `jti` (required) must not have been seen before; it is remembered until the assertion expires.
fn use_once(sim: &Sim, jti: Option<String>, exp: i64, now: i64) -> Result<(), LoginError> {
    let jti = jti.filter(|j| !j.is_empty()).ok_or_else(|| {
        LoginError::invalid_client(50013, "Assertion is invalid. [Reason - The jti claim is required.]")
    })?;
    let fresh = sim.write(|t| {
        t.seen_assertion_ids.retain(|_, until| *until >= now);
        if t.seen_assertion_ids.contains_key(&jti) {
            false
        } else {
            t.seen_assertion_ids.insert(jti.clone(), exp + ASSERTION_LEEWAY_SECONDS);
            true
        }
    });
    if !fresh {
        return Err(LoginError::invalid_client(
            50013,
            format!(
                "Assertion is invalid. [Reason - The client assertion with jti '{jti}' was already used.]"
            ),
        ));
    }
    Ok(())
}

fn iso(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

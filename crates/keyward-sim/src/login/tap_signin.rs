//! Temporary Access Pass sign-in: `POST /{tenant}/tap/signin` (the emulator's own shape,
//! `keyward_webauthn::signin::TapSignInRequest`) checks the pass against the digest kept when it
//! was created, its start and lifetime, the TAP method policy, one-time use and Conditional
//! Access, and answers with tokens. A one-time pass is spent under the tenant lock, so two
//! racing sign-ins cannot both use it.
//!
//! Every refusal about the pass itself is AADSTS50126 with a message naming the reason (the
//! emulator's choice; Entra's codes for an expired or spent pass are unknown).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use keyward_webauthn::conditional_access::{COMBINATIONS_TAP, Target};
use keyward_webauthn::graph::TokenResponse;
use keyward_webauthn::signin::TapSignInRequest;
use sha2::{Digest, Sha256};

use super::passkey::unknown_user;
use super::user_token::{access_token, id_token, is_registration_scope};
use super::{LoginError, TenantRef, now, resolve_tenant};
use crate::Sim;
use crate::auth::ACCESS_TOKEN_SECONDS;
use crate::graph::tap::{pass_digest, usability};
use crate::seed::SeedUser;

fn invalid_pass(detail: &str) -> LoginError {
    LoginError::bad_request("invalid_grant", 50126, format!("Error validating credentials: {detail}"))
}

/// `POST /{tenant}/tap/signin`.
pub(super) async fn sign_in(
    State(sim): State<Sim>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = (|| {
        if resolve_tenant(&sim, &tenant)? != TenantRef::Own {
            return Err(LoginError::unknown_tenant(&tenant));
        }
        let request: TapSignInRequest = serde_json::from_slice(&body).map_err(|e| {
            LoginError::bad_request("invalid_request", 900144, format!("The request body is not valid: {e}"))
        })?;
        tap_sign_in(&sim, &tenant, &request)
    })();
    super::passkey::respond_tokens(&headers, result)
}

fn tap_sign_in(sim: &Sim, tenant: &str, request: &TapSignInRequest) -> Result<TokenResponse, LoginError> {
    if sim.read(|t| t.find_app(&request.client_id).is_none()) {
        return Err(LoginError::unknown_app(&request.client_id, tenant));
    }
    let user = sim
        .read(|t| t.find_user(&request.username).cloned())
        .ok_or_else(|| unknown_user(&request.username))?;
    if !user.account_enabled {
        return Err(LoginError::bad_request(
            "invalid_grant",
            50057,
            format!("The user account {} is disabled.", user.user_principal_name),
        ));
    }
    let key = user.id.to_ascii_lowercase();
    let now = now();
    let (tap, policy) = sim.read(|t| (t.taps.get(&key).cloned(), t.tap_policy.clone()));
    let tap = tap.ok_or_else(|| invalid_pass("the user has no Temporary Access Pass."))?;
    let given = pass_digest(&tap.id, &request.temporary_access_pass);
    let matches = tap.pass_sha256.as_deref().is_some_and(|kept| same(kept, &given));
    if !matches {
        return Err(invalid_pass("the Temporary Access Pass is not correct."));
    }
    match usability(&tap, &policy, now) {
        (true, _) => {}
        (false, "OneTimeUsed") => {
            return Err(invalid_pass("the one-time Temporary Access Pass was already used."));
        }
        (false, "Expired") => return Err(invalid_pass("the Temporary Access Pass has expired.")),
        (false, "NotYetValid") => return Err(invalid_pass("the Temporary Access Pass is not valid yet.")),
        (false, reason) => {
            return Err(invalid_pass(&format!("the Temporary Access Pass is unusable ({reason}).")));
        }
    }
    let scope = request.scope.clone().unwrap_or_else(|| "openid profile".into());
    let target = if is_registration_scope(&scope) { Target::RegisterSecurityInfo } else { Target::Resource };
    let combination = if tap.is_usable_once { COMBINATIONS_TAP[0] } else { COMBINATIONS_TAP[1] };
    if let Some(e) = super::conditional_access::refusal(sim, &user, target, combination) {
        return Err(e);
    }
    if tap.is_usable_once {
        let spent = sim.write(|t| match t.taps.get_mut(&key) {
            Some(kept) if kept.id == tap.id && !kept.used => {
                kept.used = true;
                true
            }
            _ => false,
        });
        if !spent {
            return Err(invalid_pass("the one-time Temporary Access Pass was already used."));
        }
    }
    user_tokens(sim, &request.client_id, &user, &scope, "tap", now)
}

/// Compares two digests without an early exit.
fn same(a: &str, b: &str) -> bool {
    let (da, db) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    da.iter().zip(db.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The tokens of a person's sign-in with `amr` (`fido`, `tap`): an access token for `scope`,
/// and an ID token when `openid` is asked for.
pub(super) fn user_tokens(
    sim: &Sim,
    client_id: &str,
    user: &SeedUser,
    scope: &str,
    amr: &str,
    now: i64,
) -> Result<TokenResponse, LoginError> {
    let openid = scope.split_whitespace().any(|s| s == "openid");
    Ok(TokenResponse {
        token_type: "Bearer".into(),
        expires_in: ACCESS_TOKEN_SECONDS as u64,
        ext_expires_in: Some(ACCESS_TOKEN_SECONDS as u64),
        access_token: access_token(sim, client_id, user, scope, amr, now)?,
        id_token: if openid { Some(id_token(sim, client_id, user, None, &[amr], now)?) } else { None },
        scope: Some(scope.to_owned()),
    })
}

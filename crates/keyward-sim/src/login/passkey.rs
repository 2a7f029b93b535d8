//! Passkey sign-in: `POST /{tenant}/passkey/signin/options` hands out a sealed, single-use
//! challenge; `POST /{tenant}/passkey/signin` verifies a WebAuthn assertion for
//! `login.microsoft.com` and answers with tokens. The shapes are the emulator's own
//! (`keyward_webauthn::signin`): Microsoft's sign-in page does not publish one.
//!
//! Verification order (WebAuthn §7.2): client data (type, challenge, origin), authenticator
//! data (rp id hash, UP and UV), the credential (registered through Graph, not deleted), the
//! user (handle and hint), the signature (webauthn-rs-core's COSE key check against the key
//! stored at registration), the signature counter, the account, Conditional Access. The
//! challenge is spent and the counter raised together under the tenant lock, re-checked
//! there, so two racing sign-ins with one challenge or one counter value cannot both pass.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use keyward_webauthn::conditional_access::{COMBINATION_FIDO2, Target};
use keyward_webauthn::graph::TokenResponse;
use keyward_webauthn::signin::{AssertionOptions, AssertionOptionsRequest, AssertionRequest};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use webauthn_rs_core::proto::COSEKey;

use super::error::no_store;
use super::{LoginError, TenantRef, now, resolve_tenant};
use crate::Sim;
use crate::seed::SeedUser;
use crate::tenant::StoredFido2Method;

/// How long a sign-in challenge is valid, in seconds.
pub const SIGN_IN_CHALLENGE_SECONDS: i64 = 300;
const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;

/// What the emulator seals in a sign-in challenge.
#[derive(Debug, Serialize, Deserialize)]
struct SignInChallenge {
    /// Always `signin`, so a registration challenge cannot be used here.
    kind: String,
    client_id: String,
    login_hint: Option<String>,
    expires: i64,
    nonce: String,
}

/// An AADSTS50012 refusal of an assertion (the emulator's choice of code; Entra's is unknown).
fn refused(detail: impl std::fmt::Display) -> LoginError {
    LoginError::bad_request("invalid_grant", 50012, format!("Authentication failed: {detail}"))
}

/// A token answer, or the error, with the no-store headers.
pub(super) fn respond_tokens(headers: &HeaderMap, result: Result<TokenResponse, LoginError>) -> Response {
    respond(headers, result)
}

fn respond<T: Serialize>(headers: &HeaderMap, result: Result<T, LoginError>) -> Response {
    match result {
        Ok(body) => {
            let mut response = axum::Json(body).into_response();
            no_store(response.headers_mut());
            response
        }
        Err(e) => e.correlated(headers).into_response(),
    }
}

fn own_tenant(sim: &Sim, tenant: &str) -> Result<(), LoginError> {
    match resolve_tenant(sim, tenant)? {
        TenantRef::Own => Ok(()),
        _ => Err(LoginError::bad_request(
            "invalid_request",
            9001023,
            "Passkey sign-in needs the tenant-specific endpoint, not /common, /organizations or /consumers.",
        )),
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, LoginError> {
    serde_json::from_slice(body).map_err(|e| {
        LoginError::bad_request(
            "invalid_request",
            900144,
            format!("The request body is not the expected JSON object: {e}"),
        )
    })
}

/// `POST /{tenant}/passkey/signin/options`.
pub(super) async fn options(
    State(sim): State<Sim>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(&headers, build_options(&sim, &tenant, &body))
}

fn build_options(sim: &Sim, tenant: &str, body: &[u8]) -> Result<AssertionOptions, LoginError> {
    own_tenant(sim, tenant)?;
    let request: AssertionOptionsRequest = parse_json(body)?;
    if sim.read(|t| t.find_app(&request.client_id).is_none()) {
        return Err(LoginError::unknown_app(&request.client_id, tenant));
    }
    if let Some(hint) = &request.login_hint {
        sim.read(|t| t.find_user(hint).cloned()).ok_or_else(|| unknown_user(hint))?;
    }
    let claims = SignInChallenge {
        kind: "signin".into(),
        client_id: request.client_id,
        login_hint: request.login_hint,
        expires: now() + SIGN_IN_CHALLENGE_SECONDS,
        nonce: uuid::Uuid::new_v4().simple().to_string(),
    };
    let plain = serde_json::to_vec(&claims).unwrap_or_default();
    Ok(AssertionOptions {
        challenge: keyward_webauthn::b64::encode(&sim.keys().seal(&plain)),
        rp_id: keyward_webauthn::ENTRA_RP_ID.into(),
        timeout: (SIGN_IN_CHALLENGE_SECONDS * 1000) as u64,
        user_verification: "required".into(),
        allow_credentials: vec![],
    })
}

pub(super) fn unknown_user(who: &str) -> LoginError {
    LoginError::bad_request(
        "invalid_request",
        50034,
        format!("The user account {who} does not exist in the directory."),
    )
}

/// `POST /{tenant}/passkey/signin`.
pub(super) async fn assertion(
    State(sim): State<Sim>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(&headers, verify_assertion(&sim, &tenant, &body))
}

/// The decoded binary fields of an assertion.
struct Decoded {
    credential_id: Vec<u8>,
    client_data_json: Vec<u8>,
    authenticator_data: Vec<u8>,
    signature: Vec<u8>,
    user_handle: Option<Vec<u8>>,
}

fn decode(request: &AssertionRequest) -> Result<Decoded, LoginError> {
    let field = |name: &str, text: &str| {
        keyward_webauthn::b64::decode_lenient(text)
            .map_err(|_| refused(format!("credential.response.{name} is not base64url.")))
    };
    let r = &request.credential.response;
    Ok(Decoded {
        credential_id: keyward_webauthn::b64::decode_lenient(&request.credential.id)
            .map_err(|_| refused("credential.id is not base64url."))?,
        client_data_json: field("clientDataJSON", &r.client_data_json)?,
        authenticator_data: field("authenticatorData", &r.authenticator_data)?,
        signature: field("signature", &r.signature)?,
        user_handle: r.user_handle.as_deref().map(|h| field("userHandle", h)).transpose()?,
    })
}

fn verify_assertion(sim: &Sim, tenant: &str, body: &[u8]) -> Result<TokenResponse, LoginError> {
    own_tenant(sim, tenant)?;
    let request: AssertionRequest = parse_json(body)?;
    let now = now();
    let decoded = decode(&request)?;
    let (challenge_text, challenge) = check_client_data(sim, &request, &decoded.client_data_json, now)?;
    let counter = check_authenticator_data(&decoded.authenticator_data)?;
    let (user, method) = find_credential(sim, &decoded.credential_id)?;
    check_user(sim, &user, &challenge, decoded.user_handle.as_deref())?;
    check_signature(&method, &decoded)?;
    check_counter(method.sign_count, counter)?;
    if !user.account_enabled {
        return Err(LoginError::bad_request(
            "invalid_grant",
            50057,
            format!("The user account {} is disabled.", user.user_principal_name),
        ));
    }
    let scope = request.scope.clone().unwrap_or_else(|| "openid profile".into());
    let target = if super::user_token::is_registration_scope(&scope) {
        Target::RegisterSecurityInfo
    } else {
        Target::Resource
    };
    if let Some(e) = super::conditional_access::refusal(sim, &user, target, COMBINATION_FIDO2) {
        return Err(e);
    }
    commit(sim, &user, &decoded.credential_id, &challenge_text, challenge.expires, counter)?;
    super::tap_signin::user_tokens(sim, &request.client_id, &user, &scope, "fido", now)
}

/// Client data: `webauthn.get`, a sign-in challenge this emulator sealed for this client, not
/// expired nor spent, Entra's origin (a trailing slash is accepted unless `--strict`, as at
/// registration), not cross-origin.
fn check_client_data(
    sim: &Sim,
    request: &AssertionRequest,
    client_data_json: &[u8],
    now: i64,
) -> Result<(String, SignInChallenge), LoginError> {
    let client: Value = serde_json::from_slice(client_data_json)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| refused("clientDataJSON is not a JSON object."))?;
    if client.get("type").and_then(Value::as_str) != Some("webauthn.get") {
        return Err(refused("clientDataJSON.type must be webauthn.get."));
    }
    let text = client.get("challenge").and_then(Value::as_str).unwrap_or("").to_owned();
    let challenge = keyward_webauthn::b64::decode_lenient(&text)
        .ok()
        .and_then(|sealed| sim.keys().open(&sealed))
        .and_then(|plain| serde_json::from_slice::<SignInChallenge>(&plain).ok())
        .filter(|c| c.kind == "signin")
        .ok_or_else(|| {
            refused("clientDataJSON.challenge was not issued by this tenant's sign-in options; ask for new options.")
        })?;
    if now >= challenge.expires {
        return Err(refused("the sign-in challenge expired; ask for new options."));
    }
    if !challenge.client_id.eq_ignore_ascii_case(&request.client_id) {
        return Err(refused("the sign-in challenge was issued to another application."));
    }
    if sim.read(|t| t.used_sign_in_challenges.contains_key(&text)) {
        return Err(refused(
            "the sign-in challenge was already used (replayed assertion); ask for new options.",
        ));
    }
    let origin = client.get("origin").and_then(Value::as_str).unwrap_or("");
    let strict = sim.options().strict;
    let accepted = origin == keyward_webauthn::ENTRA_ORIGIN
        || (!strict && origin.strip_suffix('/') == Some(keyward_webauthn::ENTRA_ORIGIN));
    if !accepted {
        return Err(refused(format!(
            "clientDataJSON.origin must be {} (got '{origin}').",
            keyward_webauthn::ENTRA_ORIGIN
        )));
    }
    if client.get("crossOrigin").and_then(Value::as_bool) == Some(true) {
        return Err(refused("clientDataJSON.crossOrigin must be false."));
    }
    Ok((text, challenge))
}

/// Authenticator data: SHA-256 of `login.microsoft.com`, user present and verified; returns
/// the signature counter.
fn check_authenticator_data(auth_data: &[u8]) -> Result<u32, LoginError> {
    if auth_data.len() < 37 {
        return Err(refused("authenticatorData is shorter than 37 bytes."));
    }
    if auth_data[..32] != Sha256::digest(keyward_webauthn::ENTRA_RP_ID.as_bytes())[..] {
        return Err(refused(format!(
            "authenticatorData.rpIdHash is not SHA-256 of {}.",
            keyward_webauthn::ENTRA_RP_ID
        )));
    }
    let flags = auth_data[32];
    if flags & FLAG_UP == 0 {
        return Err(refused("authenticatorData flags: user present (UP) must be set."));
    }
    if flags & FLAG_UV == 0 {
        return Err(refused("user verification is required (the UV flag is not set): use the key's PIN."));
    }
    Ok(u32::from_be_bytes([auth_data[33], auth_data[34], auth_data[35], auth_data[36]]))
}

/// The registered passkey with this credential id, and its owner; a deleted passkey is gone.
fn find_credential(sim: &Sim, credential_id: &[u8]) -> Result<(SeedUser, StoredFido2Method), LoginError> {
    let encoded = keyward_webauthn::b64::encode(credential_id);
    sim.read(|t| {
        t.fido2_methods.iter().find_map(|(user_id, methods)| {
            let method = methods.iter().find(|m| m.credential_id == encoded)?;
            Some((t.find_user(user_id)?.clone(), method.clone()))
        })
    })
    .ok_or_else(|| {
        refused(
            "no passkey with this credential id is registered in the tenant (it was never registered, or it \
             was deleted).",
        )
    })
}

/// The user handle (when sent) must be the owner's, and the hinted user (when named) the owner.
fn check_user(
    sim: &Sim,
    owner: &SeedUser,
    challenge: &SignInChallenge,
    user_handle: Option<&[u8]>,
) -> Result<(), LoginError> {
    match user_handle {
        Some(handle) if handle != sim.keys().user_handle(&owner.id).as_slice() => {
            return Err(refused(
                "the user handle does not belong to the owner of this passkey (wrong user).",
            ));
        }
        None if challenge.login_hint.is_none() => {
            return Err(refused(
                "the assertion has no user handle: a discoverable credential must return it when no user was named.",
            ));
        }
        _ => {}
    }
    if let Some(hint) = &challenge.login_hint {
        let named = sim.read(|t| t.find_user(hint).map(|u| u.id.clone()));
        if !named.is_some_and(|id| id.eq_ignore_ascii_case(&owner.id)) {
            return Err(refused(format!("this passkey belongs to another user than {hint} (wrong user).")));
        }
    }
    Ok(())
}

/// The signature over authenticatorData ‖ SHA-256(clientDataJSON), with the stored key.
fn check_signature(method: &StoredFido2Method, decoded: &Decoded) -> Result<(), LoginError> {
    let cose = keyward_webauthn::b64::decode_lenient(&method.public_key_cose)
        .ok()
        .and_then(|bytes| serde_cbor_2::from_slice::<serde_cbor_2::Value>(&bytes).ok())
        .and_then(|value| COSEKey::try_from(&value).ok())
        .ok_or_else(|| refused("the stored public key of this passkey cannot be read."))?;
    let mut signed = decoded.authenticator_data.clone();
    signed.extend_from_slice(&Sha256::digest(&decoded.client_data_json));
    match cose.verify_signature(&decoded.signature, &signed) {
        Ok(true) => Ok(()),
        _ => Err(refused("the assertion signature does not verify with the passkey's public key.")),
    }
}

/// The counter must grow, unless the authenticator keeps none (stored and received both 0).
fn check_counter(stored: u32, received: u32) -> Result<(), LoginError> {
    if (stored != 0 || received != 0) && received <= stored {
        return Err(refused(format!(
            "the signature counter did not increase ({received} after {stored}): a replayed assertion or a \
             cloned authenticator."
        )));
    }
    Ok(())
}

/// Spends the challenge and stores the counter, re-checking both under the lock.
fn commit(
    sim: &Sim,
    user: &SeedUser,
    credential_id: &[u8],
    challenge: &str,
    expires: i64,
    counter: u32,
) -> Result<(), LoginError> {
    let encoded = keyward_webauthn::b64::encode(credential_id);
    let now = now();
    sim.write(|t| {
        t.used_sign_in_challenges.retain(|_, until| *until >= now);
        if t.used_sign_in_challenges.contains_key(challenge) {
            return Err(refused("the sign-in challenge was already used (replayed assertion)."));
        }
        let method = t
            .fido2_methods
            .get_mut(&user.id.to_ascii_lowercase())
            .and_then(|methods| methods.iter_mut().find(|m| m.credential_id == encoded))
            .ok_or_else(|| refused("the passkey was deleted during the sign-in."))?;
        check_counter(method.sign_count, counter)?;
        method.sign_count = counter;
        t.used_sign_in_challenges.insert(challenge.to_owned(), expires);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_must_grow_unless_the_key_keeps_none() {
        let table = [(0, 0, true), (0, 1, true), (5, 6, true), (5, 5, false), (5, 4, false), (5, 0, false)];
        for (stored, received, ok) in table {
            assert_eq!(check_counter(stored, received).is_ok(), ok, "{stored} → {received}");
        }
    }

    #[test]
    fn authenticator_data_needs_the_rp_hash_up_and_uv() {
        let mut data = Sha256::digest(b"login.microsoft.com").to_vec();
        data.extend_from_slice(&[FLAG_UP | FLAG_UV, 0, 0, 0, 7]);
        assert_eq!(check_authenticator_data(&data).unwrap(), 7);
        let mut no_uv = data.clone();
        no_uv[32] = FLAG_UP;
        assert!(check_authenticator_data(&no_uv).unwrap_err().message.contains("user verification"));
        let mut other_rp = data.clone();
        other_rp[0] ^= 1;
        assert!(check_authenticator_data(&other_rp).is_err());
        assert!(check_authenticator_data(&data[..36]).is_err());
    }
}

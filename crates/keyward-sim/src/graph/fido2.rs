//! Graph `fido2Methods` and `methods` endpoints (docs/entra-graph-api.md §1–§3).
//!
//! Handlers are thin: check the permission, find the user, and hand the work to
//! [`crate::registration`]. Registration verifies on a snapshot taken under the read lock
//! and commits under the write lock, re-checking the two facts that may have changed in
//! between (challenge already used, credential registered concurrently), so verification
//! never holds the tenant lock. `/me/…` is deliberately absent: self-service provisioning
//! is unsupported and falls through to the 400 fallback.

use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::graph::users::{resolve_user, user_key};
use crate::graph::{ApiVersion, GraphFailure, GraphResult, with_context};
use crate::registration::{self, RegistrationContext, options, policy, verify};
use crate::seed::SeedUser;
use crate::tenant::StoredFido2Method;
use crate::{MethodIds, Sim};

/// Permissions that allow provisioning and deleting passkeys.
pub const WRITE_ROLES: &[&str] =
    &["UserAuthMethod-Passkey.ReadWrite.All", "UserAuthenticationMethod.ReadWrite.All"];
/// Permissions that allow reading passkeys.
pub const READ_ROLES: &[&str] = &[
    "UserAuthMethod-Passkey.ReadWrite.All",
    "UserAuthenticationMethod.ReadWrite.All",
    "UserAuthMethod-Passkey.Read.All",
    "UserAuthenticationMethod.Read.All",
];
/// The id every user's password method has (docs/entra-graph-api.md §3).
pub const PASSWORD_METHOD_ID: &str = "28c10230-6103-485e-b985-444c60001490";

/// The routes of this module.
pub fn routes() -> Router<Sim> {
    Router::new()
        .route("/users/{user}/authentication/fido2Methods", get(list).post(register))
        .route("/users/{user}/authentication/fido2Methods/{segment}", get(get_segment).delete(delete))
        .route("/users/{user}/authentication/methods", get(all_methods))
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn methods_context(user: &SeedUser, tail: &str) -> String {
    format!("users('{}')/authentication/{tail}", user.id)
}

fn method_json(method: &StoredFido2Method) -> Value {
    serde_json::to_value(&method.method).unwrap_or(Value::Null)
}

/// The method named `id`: by its method id, or (unless method ids are opaque) by a credential
/// id in any encoding.
fn find_method<'m>(
    methods: &'m [StoredFido2Method],
    id: &str,
    ids: MethodIds,
) -> Option<&'m StoredFido2Method> {
    let exact = methods.iter().find(|m| m.method.id == id);
    if ids == MethodIds::Opaque {
        return exact;
    }
    exact.or_else(|| {
        methods.iter().find(|m| {
            keyward_webauthn::b64::decode_lenient(&m.credential_id)
                .is_ok_and(|raw| keyward_webauthn::b64::credential_id_matches(id, &raw))
        })
    })
}

async fn list(
    State(sim): State<Sim>,
    Extension(version): Extension<ApiVersion>,
    Extension(caller): Extension<Caller>,
    Path(user): Path<String>,
) -> GraphResult<Response> {
    caller.require_any(READ_ROLES)?;
    let user = resolve_user(&sim, &user)?;
    let value: Vec<Value> = sim.read(|t| t.methods_of(&user.id).iter().map(method_json).collect());
    let body = with_context(version, &methods_context(&user, "fido2Methods"), json!({ "value": value }));
    Ok(Json(body).into_response())
}

async fn get_segment(
    State(sim): State<Sim>,
    Extension(version): Extension<ApiVersion>,
    Extension(caller): Extension<Caller>,
    Path((user, segment)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> GraphResult<Response> {
    if let Some(inline) = options::parse_segment(&segment) {
        return creation_options(
            &sim,
            version,
            &caller,
            &user,
            inline.as_deref(),
            query.as_deref().unwrap_or(""),
        );
    }
    caller.require_any(READ_ROLES)?;
    let user = resolve_user(&sim, &user)?;
    let method = sim
        .read(|t| find_method(t.methods_of(&user.id), &segment, sim.options().method_ids).cloned())
        .ok_or_else(|| {
            GraphFailure::item_not_found(format!("The fido2AuthenticationMethod '{segment}' was not found."))
        })?;
    let body = with_context(version, &methods_context(&user, "fido2Methods/$entity"), method_json(&method));
    Ok(Json(body).into_response())
}

fn creation_options(
    sim: &Sim,
    version: ApiVersion,
    caller: &Caller,
    user: &str,
    inline: Option<&str>,
    query: &str,
) -> GraphResult<Response> {
    caller.require_any(WRITE_ROLES)?;
    if sim.read(|t| t.find_user(&user_key(user)).is_none()) {
        return Err(GraphFailure::resource_not_found(user));
    }
    let minutes = options::timeout_minutes(version, inline, query)?;
    let body = options_for(sim, user, minutes)?;
    let body = with_context(version, "microsoft.graph.webauthnCredentialCreationOptions", body);
    Ok(Json(body).into_response())
}

async fn register(
    State(sim): State<Sim>,
    Extension(version): Extension<ApiVersion>,
    Extension(caller): Extension<Caller>,
    Path(user): Path<String>,
    body: Bytes,
) -> GraphResult<Response> {
    caller.require_any(WRITE_ROLES)?;
    let (user, stored) = register_passkey(&sim, version, &user, &body)?;
    let body = with_context(version, &methods_context(&user, "fido2Methods/$entity"), method_json(&stored));
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Verifies a registration body for `user` (object id or UPN) and stores the passkey; shared
/// by Graph's POST and the emulator's security-info registration.
pub(crate) fn register_passkey(
    sim: &Sim,
    version: ApiVersion,
    user: &str,
    body: &[u8],
) -> GraphResult<(SeedUser, StoredFido2Method)> {
    let keys = sim.keys();
    let ctx = sim
        .read(|t| {
            let user = t.find_user(&user_key(user))?.clone();
            let existing_credential_ids = t
                .methods_of(&user.id)
                .iter()
                .filter_map(|m| keyward_webauthn::b64::decode_lenient(&m.credential_id).ok())
                .collect();
            Some(RegistrationContext {
                keys,
                version,
                policy: t.fido2_policy.clone(),
                attestation_roots_pem: t.attestation_roots_pem.clone(),
                aaguid_models: t.aaguid_models.clone(),
                existing_credential_ids,
                user,
                strict: sim.options().strict,
            })
        })
        .ok_or_else(|| GraphFailure::resource_not_found(user))?;
    let mut verified = registration::verify_registration(&ctx, body, SystemTime::now())?;
    if sim.options().method_ids == MethodIds::Opaque {
        verified.stored.method.id = uuid::Uuid::new_v4().to_string();
    }
    let user_id = ctx.user.id.to_ascii_lowercase();
    let stored = sim.write(|t| {
        // Entra registered two credentials from one set of options (DSInternals.Passkeys' live
        // test); only `--strict` keeps challenges single-use.
        if ctx.strict && t.used_challenges.contains(&verified.challenge_nonce) {
            return Err(verify::challenge_used());
        }
        let raw = &verified.credential_id;
        if t.methods_of(&user_id)
            .iter()
            .any(|m| keyward_webauthn::b64::decode_lenient(&m.credential_id).is_ok_and(|c| c == *raw))
        {
            return Err(verify::duplicate());
        }
        t.used_challenges.insert(verified.challenge_nonce.clone());
        t.fido2_methods.entry(user_id.clone()).or_default().push(verified.stored.clone());
        Ok(verified.stored.clone())
    })?;
    Ok((ctx.user, stored))
}

/// Creation options for `user` (object id or UPN), after the policy checks that do not depend
/// on the credential; shared by Graph and the emulator's security-info registration.
pub(crate) fn options_for(sim: &Sim, user: &str, minutes: i64) -> GraphResult<Value> {
    let (user, policy, existing, encoding) = sim
        .read(|t| {
            let user = t.find_user(&user_key(user))?.clone();
            let existing = t.methods_of(&user.id).to_vec();
            Some((user, t.fido2_policy.clone(), existing, t.exclude_credential_encoding))
        })
        .ok_or_else(|| GraphFailure::resource_not_found(user))?;
    // The stricter reading: refuse early what registration would refuse for any credential.
    policy::check_user(&policy, &user)?;
    let body = options::build(sim.keys(), &user, &existing, encoding, minutes, unix_now());
    Ok(serde_json::to_value(body).unwrap_or(Value::Null))
}

async fn delete(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Path((user, segment)): Path<(String, String)>,
) -> GraphResult<Response> {
    caller.require_any(WRITE_ROLES)?;
    let user = resolve_user(&sim, &user)?;
    let user_id = user.id.to_ascii_lowercase();
    sim.write(|t| {
        let id = find_method(t.methods_of(&user_id), &segment, sim.options().method_ids)
            .map(|m| m.method.id.clone());
        match (id, t.fido2_methods.get_mut(&user_id)) {
            (Some(id), Some(methods)) => {
                methods.retain(|m| m.method.id != id);
                Ok(())
            }
            _ => Err(GraphFailure::item_not_found(format!(
                "The fido2AuthenticationMethod '{segment}' was not found."
            ))),
        }
    })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn all_methods(
    State(sim): State<Sim>,
    Extension(version): Extension<ApiVersion>,
    Extension(caller): Extension<Caller>,
    Path(user): Path<String>,
) -> GraphResult<Response> {
    caller.require_any(READ_ROLES)?;
    let user = resolve_user(&sim, &user)?;
    let mut value = vec![json!({
        "@odata.type": "#microsoft.graph.passwordAuthenticationMethod",
        "id": PASSWORD_METHOD_ID,
        "password": null,
        "createdDateTime": null,
    })];
    sim.read(|t| {
        for method in t.methods_of(&user.id) {
            let mut item = serde_json::Map::new();
            item.insert("@odata.type".into(), "#microsoft.graph.fido2AuthenticationMethod".into());
            if let Value::Object(fields) = method_json(method) {
                item.extend(fields);
            }
            value.push(Value::Object(item));
        }
        if let Some(tap) = t.taps.get(&user.id.to_ascii_lowercase()) {
            value.push(json!({
                "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
                "id": tap.id,
            }));
        }
    });
    let body = with_context(version, &methods_context(&user, "methods"), json!({ "value": value }));
    Ok(Json(body).into_response())
}

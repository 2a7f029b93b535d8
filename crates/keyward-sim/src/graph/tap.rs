//! Temporary Access Pass methods (docs/entra-graph-api.md §5): create, list, get, delete.
//!
//! The pass is shown once, in the create response, and never kept: the emulator stores
//! only when it starts and how long it lives, as the real service returns `null` for the
//! pass afterwards. One pass per user; creating a new one replaces the old. The policy's
//! include and exclude targets decide who may be issued one, as for FIDO2.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Json, Router};
use keyward_webauthn::policy::{MethodState, TapPolicy, TemporaryAccessPass, TemporaryAccessPassRequest};
use rand::Rng;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Sim;
use crate::auth::Caller;
use crate::graph::users::resolve_user;
use crate::graph::{ApiVersion, GraphFailure, GraphResult, with_context};
use crate::registration::policy::targets;
use crate::seed::SeedUser;
use crate::tenant::StoredTap;

const WRITE: &[&str] = &["UserAuthenticationMethod.ReadWrite.All", "UserAuthMethod-TAP.ReadWrite.All"];
const READ: &[&str] = &[
    "UserAuthenticationMethod.ReadWrite.All",
    "UserAuthMethod-TAP.ReadWrite.All",
    "UserAuthenticationMethod.Read.All",
    "UserAuthMethod-TAP.Read.All",
];
const ENTITY: &str = "#microsoft.graph.temporaryAccessPassAuthenticationMethod";

/// The routes of this module.
pub fn routes() -> Router<Sim> {
    Router::new()
        .route("/users/{user}/authentication/temporaryAccessPassMethods", get(list).post(create))
        .route("/users/{user}/authentication/temporaryAccessPassMethods/{id}", get(get_one).delete(delete))
}

fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix).ok().and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_default()
}

/// SHA-256 of the method id and the pass, hex: what the emulator keeps to check a sign-in.
pub fn pass_digest(method_id: &str, pass: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(method_id.as_bytes());
    h.update([0u8]);
    h.update(pass.as_bytes());
    hex::encode(h.finalize())
}

/// Whether a pass is usable now, and why (the `methodUsabilityReason` values).
pub fn usability(tap: &StoredTap, policy: &TapPolicy, now: i64) -> (bool, &'static str) {
    if policy.state == MethodState::Disabled {
        (false, "DisabledByPolicy")
    } else if tap.used {
        (false, "OneTimeUsed")
    } else if now < tap.start {
        (false, "NotYetValid")
    } else if now >= tap.start + i64::from(tap.lifetime_in_minutes) * 60 {
        (false, "Expired")
    } else {
        (true, "EnabledByPolicy")
    }
}

/// The Graph entity of a stored pass (the pass itself only when just created).
pub fn entity(tap: &StoredTap, policy: &TapPolicy, pass: Option<String>, now: i64) -> TemporaryAccessPass {
    let (is_usable, reason) = usability(tap, policy, now);
    TemporaryAccessPass {
        id: tap.id.clone(),
        temporary_access_pass: pass,
        created_date_time: rfc3339(tap.created),
        start_date_time: rfc3339(tap.start),
        lifetime_in_minutes: tap.lifetime_in_minutes,
        is_usable_once: tap.is_usable_once,
        is_usable,
        method_usability_reason: reason.into(),
    }
}

fn rendered(version: ApiVersion, value: &TemporaryAccessPass) -> Value {
    let mut v = serde_json::to_value(value).unwrap_or_default();
    if let Some(map) = v.as_object_mut() {
        map.insert("@odata.type".into(), ENTITY.into());
    }
    with_context(version, "microsoft.graph.temporaryAccessPassAuthenticationMethod", v)
}

fn find_user_id(sim: &Sim, user: &str) -> GraphResult<String> {
    Ok(resolve_user(sim, user)?.id.to_ascii_lowercase())
}

/// Refuses a pass for a user the policy excludes or does not include (403, as FIDO2 does).
fn check_targets(policy: &TapPolicy, user: &SeedUser) -> GraphResult<()> {
    if policy.exclude_targets.iter().any(|t| targets(user, &t.id, t.target_type)) {
        return Err(GraphFailure::forbidden(
            "The user is in excludeTargets of the Temporary Access Pass authentication method policy.",
        ));
    }
    if !policy.include_targets.iter().any(|t| targets(user, &t.id, t.target_type)) {
        return Err(GraphFailure::forbidden(
            "The user is not in includeTargets of the Temporary Access Pass authentication method policy.",
        ));
    }
    Ok(())
}

/// A pass of `length` characters from an alphabet without look-alikes.
fn generate_pass(length: u32) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789+-=#@";
    let mut rng = rand::thread_rng();
    (0..length).map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())])).collect()
}

async fn create(
    State(sim): State<Sim>,
    Extension(version): Extension<ApiVersion>,
    Extension(caller): Extension<Caller>,
    Path(user): Path<String>,
    body: axum::body::Bytes,
) -> GraphResult<(StatusCode, Json<Value>)> {
    caller.require_any(WRITE)?;
    let user = resolve_user(&sim, &user)?;
    let user_id = user.id.to_ascii_lowercase();
    let request: TemporaryAccessPassRequest = if body.is_empty() {
        TemporaryAccessPassRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            GraphFailure::bad_request(format!(
                "The body is not a temporaryAccessPassAuthenticationMethod: {e}"
            ))
        })?
    };
    let policy = sim.read(|t| t.tap_policy.clone());
    if policy.state == MethodState::Disabled {
        return Err(GraphFailure::bad_request(
            "Temporary Access Pass is disabled by the authentication methods policy.",
        ));
    }
    check_targets(&policy, &user)?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let start = match &request.start_date_time {
        None => now,
        Some(text) => OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|_| {
                GraphFailure::bad_request(format!("startDateTime '{text}' is not an ISO 8601 date-time."))
            })?
            .unix_timestamp(),
    };
    let lifetime = request.lifetime_in_minutes.unwrap_or(policy.default_lifetime_in_minutes);
    if !(10..=43200).contains(&lifetime)
        || !(policy.minimum_lifetime_in_minutes..=policy.maximum_lifetime_in_minutes).contains(&lifetime)
    {
        return Err(GraphFailure::bad_request(format!(
            "lifetimeInMinutes {lifetime} is outside the policy's range {}–{} minutes.",
            policy.minimum_lifetime_in_minutes, policy.maximum_lifetime_in_minutes
        )));
    }
    if policy.is_usable_once && request.is_usable_once == Some(false) {
        return Err(GraphFailure::bad_request(
            "The policy allows only one-time passes: isUsableOnce cannot be false.",
        ));
    }
    let stored = StoredTap {
        id: uuid::Uuid::new_v4().to_string(),
        created: now,
        start,
        lifetime_in_minutes: lifetime,
        is_usable_once: policy.is_usable_once || request.is_usable_once.unwrap_or(false),
        pass_sha256: None,
        used: false,
    };
    let pass = generate_pass(policy.default_length);
    let stored = StoredTap { pass_sha256: Some(pass_digest(&stored.id, &pass)), ..stored };
    sim.write(|t| t.taps.insert(user_id, stored.clone()));
    Ok((StatusCode::CREATED, Json(rendered(version, &entity(&stored, &policy, Some(pass), now)))))
}

async fn list(
    State(sim): State<Sim>,
    Extension(version): Extension<ApiVersion>,
    Extension(caller): Extension<Caller>,
    Path(user): Path<String>,
) -> GraphResult<Json<Value>> {
    caller.require_any(READ)?;
    let user_id = find_user_id(&sim, &user)?;
    let (tap, policy) = sim.read(|t| (t.taps.get(&user_id).cloned(), t.tap_policy.clone()));
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let value: Vec<Value> =
        tap.iter().map(|tap| rendered(version, &entity(tap, &policy, None, now))).collect();
    Ok(Json(json!({
        "@odata.context": format!("https://graph.microsoft.com/{}/$metadata#users('{user_id}')/authentication/temporaryAccessPassMethods", version.segment()),
        "value": value,
    })))
}

async fn get_one(
    State(sim): State<Sim>,
    Extension(version): Extension<ApiVersion>,
    Extension(caller): Extension<Caller>,
    Path((user, id)): Path<(String, String)>,
) -> GraphResult<Json<Value>> {
    caller.require_any(READ)?;
    let user_id = find_user_id(&sim, &user)?;
    let (tap, policy) = sim.read(|t| (t.taps.get(&user_id).cloned(), t.tap_policy.clone()));
    let tap = tap.filter(|t| t.id.eq_ignore_ascii_case(&id)).ok_or_else(|| not_found(&id))?;
    Ok(Json(rendered(version, &entity(&tap, &policy, None, OffsetDateTime::now_utc().unix_timestamp()))))
}

fn not_found(id: &str) -> GraphFailure {
    GraphFailure::item_not_found(format!("No Temporary Access Pass with id '{id}' exists for this user."))
}

async fn delete(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Path((user, id)): Path<(String, String)>,
) -> GraphResult<StatusCode> {
    caller.require_any(WRITE)?;
    let user_id = find_user_id(&sim, &user)?;
    sim.write(|t| match t.taps.get(&user_id) {
        Some(tap) if tap.id.eq_ignore_ascii_case(&id) => {
            t.taps.remove(&user_id);
            Ok(StatusCode::NO_CONTENT)
        }
        _ => Err(not_found(&id)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usability_reasons() {
        let tap = StoredTap {
            id: "x".into(),
            created: 0,
            start: 1000,
            lifetime_in_minutes: 60,
            is_usable_once: false,
            pass_sha256: None,
            used: false,
        };
        let policy = TapPolicy::default();
        assert_eq!(usability(&tap, &policy, 999), (false, "NotYetValid"));
        assert_eq!(usability(&tap, &policy, 1000), (true, "EnabledByPolicy"));
        assert_eq!(usability(&tap, &policy, 1000 + 3600), (false, "Expired"));
        let off = TapPolicy { state: MethodState::Disabled, ..TapPolicy::default() };
        assert_eq!(usability(&tap, &off, 1500), (false, "DisabledByPolicy"));
    }

    #[test]
    fn passes_have_the_policy_length() {
        let pass = generate_pass(12);
        assert_eq!(pass.chars().count(), 12);
        assert_ne!(pass, generate_pass(12));
    }
}

//! The authentication-methods policy (docs/entra-graph-api.md §4): read, patch and reset the FIDO2 and
//! Temporary Access Pass configurations.
//!
//! A PATCH is merged into the current configuration as JSON and the result must still be
//! a valid configuration; it is then checked against the documented limits (at most three
//! passkey profiles, a default profile that exists, no opting out of profiles once in,
//! 20 KB in all). A PATCH that fails any check changes nothing.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Json, Router};
use keyward_webauthn::policy::{Fido2Policy, TapPolicy};
use serde_json::{Value, json};

use crate::Sim;
use crate::auth::Caller;
use crate::graph::{ApiVersion, GraphFailure, GraphResult, with_context};

const READ: &[&str] =
    &["Policy.Read.AuthenticationMethod", "Policy.ReadWrite.AuthenticationMethod", "Policy.Read.All"];
const WRITE: &[&str] = &["Policy.ReadWrite.AuthenticationMethod"];
const FIDO2_TYPE: &str = "#microsoft.graph.fido2AuthenticationMethodConfiguration";
const TAP_TYPE: &str = "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration";
const MAX_POLICY_BYTES: usize = 20 * 1024;
const MAX_PROFILES: usize = 3;

/// The routes of this module.
pub fn routes() -> Router<Sim> {
    Router::new().route("/policies/authenticationMethodsPolicy", get(whole_policy)).route(
        "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/{method}",
        get(get_method).patch(patch_method).delete(reset_method),
    )
}

/// Which configuration a URL segment names (`fido2`, `FIDO2`, `('Fido2')`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Fido2,
    Tap,
}

fn method_of(segment: &str) -> GraphResult<Method> {
    let name = segment.trim_start_matches("('").trim_end_matches("')").to_ascii_lowercase();
    match name.as_str() {
        "fido2" => Ok(Method::Fido2),
        "temporaryaccesspass" => Ok(Method::Tap),
        _ => Err(GraphFailure::item_not_found(format!(
            "The authentication method configuration '{segment}' is not emulated (fido2, temporaryAccessPass)."
        ))),
    }
}

fn render(method: Method, fido2: &Fido2Policy, tap: &TapPolicy) -> Value {
    let (kind, mut value) = match method {
        Method::Fido2 => (FIDO2_TYPE, serde_json::to_value(fido2).unwrap_or_default()),
        Method::Tap => (TAP_TYPE, serde_json::to_value(tap).unwrap_or_default()),
    };
    if let Some(map) = value.as_object_mut() {
        map.insert("@odata.type".into(), kind.into());
    }
    value
}

async fn whole_policy(
    State(sim): State<Sim>,
    Extension(version): Extension<ApiVersion>,
    Extension(caller): Extension<Caller>,
) -> GraphResult<Json<Value>> {
    caller.require_any(READ)?;
    let (fido2, tap) = sim.read(|t| (t.fido2_policy.clone(), t.tap_policy.clone()));
    let body = json!({
        "id": "authenticationMethodsPolicy",
        "displayName": "Authentication Methods Policy",
        "policyVersion": "1.5",
        "authenticationMethodConfigurations": [render(Method::Fido2, &fido2, &tap), render(Method::Tap, &fido2, &tap)],
    });
    Ok(Json(with_context(version, "policies/authenticationMethodsPolicy/$entity", body)))
}

async fn get_method(
    State(sim): State<Sim>,
    Extension(version): Extension<ApiVersion>,
    Extension(caller): Extension<Caller>,
    Path(segment): Path<String>,
) -> GraphResult<Json<Value>> {
    caller.require_any(READ)?;
    let method = method_of(&segment)?;
    let (fido2, tap) = sim.read(|t| (t.fido2_policy.clone(), t.tap_policy.clone()));
    Ok(Json(with_context(
        version,
        "authenticationMethodConfigurations/$entity",
        render(method, &fido2, &tap),
    )))
}

fn invalid(message: impl Into<String>) -> GraphFailure {
    GraphFailure::bad_request(message)
}

/// Merges `patch` into `current` (top-level keys replace; `@odata.*` keys are dropped).
fn merged(current: &Value, patch: &Value) -> Value {
    let mut out = current.clone();
    if let (Some(out), Some(patch)) = (out.as_object_mut(), patch.as_object()) {
        for (k, v) in patch {
            if !k.starts_with("@odata.") {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

/// Checks the documented limits of a FIDO2 configuration after a change.
pub fn check_fido2(before: &Fido2Policy, after: &Fido2Policy) -> Result<(), String> {
    if !after.id.eq_ignore_ascii_case("Fido2") {
        return Err("The id of the FIDO2 configuration is 'Fido2' and cannot be changed.".into());
    }
    if after.passkey_profiles.len() > MAX_PROFILES {
        return Err(format!(
            "At most {MAX_PROFILES} passkey profiles are allowed, including the default profile."
        ));
    }
    if !before.passkey_profiles.is_empty() && after.passkey_profiles.is_empty() {
        return Err(
            "Opting in to passkey profiles is irreversible: passkeyProfiles cannot be emptied.".into()
        );
    }
    let mut ids = std::collections::BTreeSet::new();
    for profile in &after.passkey_profiles {
        if !ids.insert(profile.id.to_ascii_lowercase()) {
            return Err(format!("Passkey profile id '{}' appears twice.", profile.id));
        }
        for kind in profile.passkey_types.split(',').map(str::trim) {
            if !matches!(kind, "deviceBound" | "synced") {
                return Err(format!("passkeyTypes value '{kind}' is not one of deviceBound, synced."));
            }
        }
        if profile.attestation_enforcement
            == keyward_webauthn::policy::AttestationEnforcement::RegistrationOnly
            && profile.passkey_types.split(',').any(|k| k.trim() == "synced")
        {
            return Err(format!(
                "Passkey profile '{}' enforces attestation and also targets synced passkeys, which cannot be attested.",
                profile.name
            ));
        }
    }
    if let Some(default) = &after.default_passkey_profile
        && !ids.contains(&default.to_ascii_lowercase())
    {
        return Err(format!("defaultPasskeyProfile '{default}' is not one of passkeyProfiles."));
    }
    for target in &after.include_targets {
        for profile in &target.allowed_passkey_profiles {
            if !ids.contains(&profile.to_ascii_lowercase()) {
                return Err(format!(
                    "includeTargets '{}' allows unknown passkey profile '{profile}'.",
                    target.id
                ));
            }
        }
    }
    Ok(())
}

/// Checks the documented limits of a TAP configuration.
pub fn check_tap(tap: &TapPolicy) -> Result<(), String> {
    if !(8..=48).contains(&tap.default_length) {
        return Err("defaultLength must be between 8 and 48.".into());
    }
    let (min, max, default) =
        (tap.minimum_lifetime_in_minutes, tap.maximum_lifetime_in_minutes, tap.default_lifetime_in_minutes);
    if !(10..=43200).contains(&min) || !(10..=43200).contains(&max) || min > max {
        return Err(
            "minimumLifetimeInMinutes and maximumLifetimeInMinutes must be 10–43200, minimum ≤ maximum."
                .into(),
        );
    }
    if !(min..=max).contains(&default) {
        return Err("defaultLifetimeInMinutes must lie between the minimum and maximum lifetimes.".into());
    }
    Ok(())
}

async fn patch_method(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Path(segment): Path<String>,
    body: axum::body::Bytes,
) -> GraphResult<StatusCode> {
    caller.require_any(WRITE)?;
    let method = method_of(&segment)?;
    if body.len() > MAX_POLICY_BYTES {
        return Err(invalid(format!("The policy exceeds the size limit of {MAX_POLICY_BYTES} bytes.")));
    }
    let patch: Value =
        serde_json::from_slice(&body).map_err(|e| invalid(format!("The body is not JSON: {e}")))?;
    let expected = match method {
        Method::Fido2 => FIDO2_TYPE,
        Method::Tap => TAP_TYPE,
    };
    if patch.get("@odata.type").and_then(Value::as_str) != Some(expected) {
        return Err(invalid(format!("The body must include \"@odata.type\": \"{expected}\".")));
    }
    sim.write(|t| match method {
        Method::Fido2 => {
            let current = serde_json::to_value(&t.fido2_policy).unwrap_or_default();
            let next: Fido2Policy = serde_json::from_value(merged(&current, &patch))
                .map_err(|e| invalid(format!("The FIDO2 configuration is not valid: {e}")))?;
            check_fido2(&t.fido2_policy, &next).map_err(invalid)?;
            t.fido2_policy = next;
            Ok(StatusCode::NO_CONTENT)
        }
        Method::Tap => {
            let current = serde_json::to_value(&t.tap_policy).unwrap_or_default();
            let next: TapPolicy = serde_json::from_value(merged(&current, &patch))
                .map_err(|e| invalid(format!("The Temporary Access Pass configuration is not valid: {e}")))?;
            check_tap(&next).map_err(invalid)?;
            t.tap_policy = next;
            Ok(StatusCode::NO_CONTENT)
        }
    })
}

async fn reset_method(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Path(segment): Path<String>,
) -> GraphResult<StatusCode> {
    caller.require_any(WRITE)?;
    let method = method_of(&segment)?;
    sim.write(|t| match method {
        Method::Fido2 => t.fido2_policy = Fido2Policy::default(),
        Method::Tap => t.tap_policy = TapPolicy::default(),
    });
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_webauthn::policy::{AttestationEnforcement, KeyRestrictions, PasskeyProfile};

    fn profile(id: &str, types: &str, attest: AttestationEnforcement) -> PasskeyProfile {
        PasskeyProfile {
            id: id.into(),
            name: id.into(),
            passkey_types: types.into(),
            attestation_enforcement: attest,
            key_restrictions: KeyRestrictions::default(),
        }
    }

    #[test]
    fn profile_rules() {
        let base = Fido2Policy::default();
        let ok = |p: Vec<PasskeyProfile>| Fido2Policy { passkey_profiles: p, ..Fido2Policy::default() };
        let d = AttestationEnforcement::Disabled;
        let r = AttestationEnforcement::RegistrationOnly;
        let cases: Vec<(Fido2Policy, Option<&str>)> = vec![
            (ok(vec![profile("a", "deviceBound,synced", d)]), None),
            (ok(vec![profile("a", "deviceBound", r)]), None),
            (ok(vec![profile("a", "deviceBound,synced", r)]), Some("cannot be attested")),
            (ok(vec![profile("a", "x", d)]), Some("not one of deviceBound")),
            (
                ok(vec![
                    profile("a", "synced", d),
                    profile("b", "synced", d),
                    profile("c", "synced", d),
                    profile("d", "synced", d),
                ]),
                Some("At most 3"),
            ),
            (ok(vec![profile("a", "synced", d), profile("A", "synced", d)]), Some("appears twice")),
            (
                Fido2Policy {
                    default_passkey_profile: Some("zz".into()),
                    ..ok(vec![profile("a", "synced", d)])
                },
                Some("not one of passkeyProfiles"),
            ),
        ];
        for (after, expected) in cases {
            let result = check_fido2(&base, &after);
            match expected {
                None => assert!(result.is_ok(), "{result:?}"),
                Some(text) => {
                    assert!(result.as_ref().is_err_and(|e| e.contains(text)), "{result:?} vs {text}")
                }
            }
        }
        let opted_in = ok(vec![profile("a", "synced", d)]);
        assert!(check_fido2(&opted_in, &base).unwrap_err().contains("irreversible"));
    }

    #[test]
    fn tap_policy_bounds() {
        assert!(check_tap(&TapPolicy::default()).is_ok());
        assert!(check_tap(&TapPolicy { default_length: 7, ..TapPolicy::default() }).is_err());
        assert!(check_tap(&TapPolicy { default_lifetime_in_minutes: 500, ..TapPolicy::default() }).is_err());
        assert!(
            check_tap(&TapPolicy { maximum_lifetime_in_minutes: 50000, ..TapPolicy::default() }).is_err()
        );
    }

    #[test]
    fn configuration_names_are_case_insensitive() {
        for name in ["fido2", "FIDO2", "('Fido2')", "temporaryAccessPass"] {
            assert!(method_of(name).is_ok(), "{name}");
        }
        assert!(method_of("sms").is_err());
    }
}

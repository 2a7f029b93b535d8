//! The FIDO2 authentication-method policy and Temporary Access Pass shapes (docs/entra-graph-api.md §4, §5).
//!
//! The policy is read and patched as a whole by Keyward and enforced by the emulator, so
//! one typed shape serves both. Deprecated legacy fields (`isAttestationEnforced`,
//! `keyRestrictions`) are kept beside passkey profiles, as the real service still
//! returns both until October 2027.

use serde::{Deserialize, Serialize};

/// `fido2AuthenticationMethodConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fido2Policy {
    /// Always `Fido2`.
    #[serde(default = "fido2_id")]
    pub id: String,
    /// `enabled` | `disabled`.
    pub state: MethodState,
    /// Must be true for the provisioning API to work (Graph known issue).
    #[serde(default)]
    pub is_self_service_registration_allowed: bool,
    /// Legacy attestation switch (deprecated in favour of passkey profiles).
    #[serde(default)]
    pub is_attestation_enforced: bool,
    /// Legacy AAGUID allow/block list.
    #[serde(default)]
    pub key_restrictions: KeyRestrictions,
    /// Who may use the method.
    #[serde(default)]
    pub include_targets: Vec<IncludeTarget>,
    /// Who may not, overriding includes.
    #[serde(default)]
    pub exclude_targets: Vec<ExcludeTarget>,
    /// The id of the baseline profile, once profiles are opted in to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_passkey_profile: Option<String>,
    /// Passkey profiles (at most 3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passkey_profiles: Vec<PasskeyProfile>,
}

fn fido2_id() -> String {
    "Fido2".into()
}

/// `authenticationMethodState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MethodState {
    /// The method can be used.
    Enabled,
    /// The method cannot be used.
    Disabled,
}

/// `fido2KeyRestrictions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRestrictions {
    /// Whether the list applies.
    #[serde(default)]
    pub is_enforced: bool,
    /// `allow` or `block`.
    #[serde(default)]
    pub enforcement_type: EnforcementType,
    /// AAGUIDs, dashed.
    #[serde(default)]
    pub aa_guids: Vec<String>,
}

/// Whether an AAGUID list allows or blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EnforcementType {
    /// Only listed AAGUIDs may register.
    Allow,
    /// Listed AAGUIDs may not register.
    #[default]
    Block,
}

/// `passkeyAuthenticationMethodTarget`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncludeTarget {
    /// Group id, or `all_users`.
    pub id: String,
    /// `group` (or `user`, not recommended).
    pub target_type: TargetType,
    /// Whether the user is nudged to register.
    #[serde(default)]
    pub is_registration_required: bool,
    /// Passkey profile ids this target may satisfy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_passkey_profiles: Vec<String>,
}

/// `excludeTarget`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExcludeTarget {
    /// Group id.
    pub id: String,
    /// `group` or `user`.
    pub target_type: TargetType,
}

/// `authenticationMethodTargetType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TargetType {
    /// A single user.
    User,
    /// A group (or `all_users`).
    Group,
}

/// `passkeyProfile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasskeyProfile {
    /// Profile id (a GUID).
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Flags: `deviceBound`, `synced`, comma-separated.
    #[serde(default = "default_passkey_types")]
    pub passkey_types: String,
    /// `disabled` | `registrationOnly`.
    #[serde(default = "default_attestation_enforcement")]
    pub attestation_enforcement: AttestationEnforcement,
    /// AAGUID allow/block list of this profile.
    #[serde(default)]
    pub key_restrictions: KeyRestrictions,
}

fn default_passkey_types() -> String {
    "deviceBound,synced".into()
}

fn default_attestation_enforcement() -> AttestationEnforcement {
    AttestationEnforcement::Disabled
}

/// `attestationEnforcement` of a passkey profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttestationEnforcement {
    /// No attestation required.
    Disabled,
    /// A packed chain to a FIDO MDS root is required at registration.
    RegistrationOnly,
}

impl Default for Fido2Policy {
    /// The policy of a new tenant: enabled for all users, self-service on, nothing enforced.
    fn default() -> Self {
        Self {
            id: fido2_id(),
            state: MethodState::Enabled,
            is_self_service_registration_allowed: true,
            is_attestation_enforced: false,
            key_restrictions: KeyRestrictions::default(),
            include_targets: all_users(),
            exclude_targets: vec![],
            default_passkey_profile: None,
            passkey_profiles: vec![],
        }
    }
}

/// `temporaryAccessPassAuthenticationMethod`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemporaryAccessPass {
    /// Method id (GUID).
    pub id: String,
    /// The pass itself: only in the create response, `null` afterwards.
    pub temporary_access_pass: Option<String>,
    /// Creation time.
    pub created_date_time: String,
    /// When the pass becomes usable.
    pub start_date_time: String,
    /// Lifetime in minutes (10–43 200).
    pub lifetime_in_minutes: u32,
    /// Whether it can be used once only.
    pub is_usable_once: bool,
    /// Whether it can be used now.
    pub is_usable: bool,
    /// `EnabledByPolicy`, `DisabledByPolicy`, `Expired`, `NotYetValid`, `OneTimeUsed`.
    pub method_usability_reason: String,
}

/// The body of a TAP create request; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemporaryAccessPassRequest {
    /// When the pass becomes usable (default now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date_time: Option<String>,
    /// Lifetime in minutes (default from policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_in_minutes: Option<u32>,
    /// One-time use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_usable_once: Option<bool>,
}

/// `temporaryAccessPassAuthenticationMethodConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TapPolicy {
    /// Always `TemporaryAccessPass`.
    #[serde(default = "tap_id")]
    pub id: String,
    /// `enabled` | `disabled`.
    pub state: MethodState,
    /// Pass length, 8–48.
    pub default_length: u32,
    /// Default lifetime in minutes.
    pub default_lifetime_in_minutes: u32,
    /// Minimum lifetime in minutes (≥ 10).
    pub minimum_lifetime_in_minutes: u32,
    /// Maximum lifetime in minutes (≤ 43 200).
    pub maximum_lifetime_in_minutes: u32,
    /// When true, every pass is one-time.
    pub is_usable_once: bool,
    /// Who may be issued a pass (`all_users` when the field is absent).
    #[serde(default = "all_users")]
    pub include_targets: Vec<IncludeTarget>,
    /// Who may not, overriding includes.
    #[serde(default)]
    pub exclude_targets: Vec<ExcludeTarget>,
}

/// One include target: the group `all_users`.
fn all_users() -> Vec<IncludeTarget> {
    vec![IncludeTarget {
        id: "all_users".into(),
        target_type: TargetType::Group,
        is_registration_required: false,
        allowed_passkey_profiles: vec![],
    }]
}

fn tap_id() -> String {
    "TemporaryAccessPass".into()
}

impl Default for TapPolicy {
    /// The documented example defaults: enabled, length 8, 60 min default, 60–480 allowed.
    fn default() -> Self {
        Self {
            id: tap_id(),
            state: MethodState::Enabled,
            default_length: 8,
            default_lifetime_in_minutes: 60,
            minimum_lifetime_in_minutes: 60,
            maximum_lifetime_in_minutes: 480,
            is_usable_once: false,
            include_targets: all_users(),
            exclude_targets: vec![],
        }
    }
}

/// The members a PATCH of the FIDO2 policy may carry (Graph's names).
pub const PATCHABLE_MEMBERS: &[&str] = &[
    "state",
    "isSelfServiceRegistrationAllowed",
    "isAttestationEnforced",
    "keyRestrictions",
    "includeTargets",
    "excludeTargets",
    "defaultPasskeyProfile",
    "passkeyProfiles",
];

/// Checks a PATCH of the FIDO2 policy before it is sent: only [`PATCHABLE_MEMBERS`], each of
/// the type [`Fido2Policy`] gives it. The error says which member is wrong and how.
pub fn check_policy_patch(changes: &serde_json::Map<String, serde_json::Value>) -> Result<(), String> {
    if let Some(unknown) = changes.keys().find(|k| !PATCHABLE_MEMBERS.contains(&k.as_str())) {
        return Err(format!(
            "the FIDO2 policy has no member {unknown:?} that can be changed; use {}",
            PATCHABLE_MEMBERS.join(", ")
        ));
    }
    let mut whole = serde_json::Map::new();
    whole.insert("state".into(), "enabled".into());
    whole.extend(changes.clone());
    serde_json::from_value::<Fido2Policy>(serde_json::Value::Object(whole))
        .map(|_| ())
        .map_err(|e| format!("the FIDO2 policy change is not valid: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_patch_body() {
        let json = r##"{"@odata.type":"#microsoft.graph.fido2AuthenticationMethodConfiguration","id":"Fido2","state":"disabled",
         "isSelfServiceRegistrationAllowed":true,"isAttestationEnforced":true,
         "keyRestrictions":{"isEnforced":false,"enforcementType":"block","aaGuids":[]},
         "includeTargets":[{"targetType":"group","id":"all_users","isRegistrationRequired":false,
                            "allowedPasskeyProfiles":["00000000-0000-0000-0000-000000000001"]}],
         "excludeTargets":[],
         "passkeyProfiles":[{"id":"00000000-0000-0000-0000-000000000001","name":"Default passkey profile",
           "passkeyTypes":"deviceBound,synced","attestationEnforcement":"disabled",
           "keyRestrictions":{"isEnforced":false,"enforcementType":"allow","aaGuids":[]}}]}"##;
        let policy: Fido2Policy = serde_json::from_str(json).unwrap();
        assert_eq!(policy.state, MethodState::Disabled);
        assert_eq!(policy.passkey_profiles[0].attestation_enforcement, AttestationEnforcement::Disabled);
        assert_eq!(policy.include_targets[0].allowed_passkey_profiles.len(), 1);
    }

    #[test]
    fn policy_patches_are_checked_member_by_member() {
        let patch = |v: serde_json::Value| check_policy_patch(v.as_object().unwrap());
        assert_eq!(patch(serde_json::json!({"isAttestationEnforced": true})), Ok(()));
        assert_eq!(patch(serde_json::json!({})), Ok(()));
        let wrong_type = patch(serde_json::json!({"isAttestationEnforced": 0})).unwrap_err();
        assert!(wrong_type.contains("expected a boolean"), "{wrong_type}");
        let unknown = patch(serde_json::json!({"isAttestationEnforcedd": true})).unwrap_err();
        assert!(
            unknown.contains("\"isAttestationEnforcedd\"") && unknown.contains("keyRestrictions"),
            "{unknown}"
        );
        assert!(patch(serde_json::json!({"state": "sometimes"})).is_err());
    }
}

//! The FIDO2 method policy as registration enforces it (docs/entra-graph-api.md §4.3).
//!
//! Two halves: checks that depend only on the user (method state, self-service switch,
//! guest, include/exclude targets), which creationOptions applies too so a client learns
//! early; and checks on the credential (attestation enforcement, AAGUID restrictions,
//! passkey types). With passkey profiles the user is allowed when the passkey satisfies
//! at least one profile they are scoped to; without profiles the legacy fields apply.

use keyward_webauthn::policy::{
    AttestationEnforcement, EnforcementType, Fido2Policy, KeyRestrictions, MethodState, PasskeyProfile,
    TargetType,
};

use crate::graph::GraphFailure;
use crate::seed::SeedUser;

/// The credential facts the policy judges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialFacts<'a> {
    /// AAGUID, dashed lowercase.
    pub aaguid: &'a str,
    /// Whether the statement was `packed` with an x5c chain verified to a trusted root.
    pub packed_chain_trusted: bool,
    /// The attestation format.
    pub fmt: &'a str,
    /// Backup eligible (synced passkey).
    pub synced: bool,
}

fn in_group(user: &SeedUser, id: &str) -> bool {
    id.eq_ignore_ascii_case("all_users") || user.groups.iter().any(|g| g.eq_ignore_ascii_case(id))
}

/// Whether a policy target (a user id, a group id or `all_users`) names `user`.
pub fn targets(user: &SeedUser, id: &str, kind: TargetType) -> bool {
    match kind {
        TargetType::User => id.eq_ignore_ascii_case(&user.id),
        TargetType::Group => in_group(user, id),
    }
}

/// The checks that do not depend on the credential, in the order they are reported.
pub fn check_user(policy: &Fido2Policy, user: &SeedUser) -> Result<(), GraphFailure> {
    if policy.state == MethodState::Disabled {
        return Err(GraphFailure::forbidden(
            "The FIDO2 authentication method is disabled in the authentication methods policy (state: disabled).",
        ));
    }
    if !policy.is_self_service_registration_allowed {
        return Err(GraphFailure::forbidden(
            "isSelfServiceRegistrationAllowed is false in the FIDO2 policy: the FIDO2 provisioning API requires \
             self-service setup to be enabled (Graph known issue).",
        ));
    }
    if user.user_type.eq_ignore_ascii_case("Guest") {
        return Err(GraphFailure::bad_request("Guest users (userType Guest) cannot register passkeys."));
    }
    if policy.exclude_targets.iter().any(|t| targets(user, &t.id, t.target_type)) {
        return Err(GraphFailure::forbidden(
            "The user is in excludeTargets of the FIDO2 authentication method policy.",
        ));
    }
    if !policy.include_targets.iter().any(|t| targets(user, &t.id, t.target_type)) {
        return Err(GraphFailure::forbidden(
            "The user is not in includeTargets of the FIDO2 authentication method policy.",
        ));
    }
    Ok(())
}

/// Why a passkey fails one set of rules (legacy settings or one profile); `None` if it passes.
fn judge(
    enforced: bool,
    restrictions: &KeyRestrictions,
    passkey_types: Option<&str>,
    facts: &CredentialFacts<'_>,
) -> Option<String> {
    if let Some(types) = passkey_types {
        let wanted = if facts.synced { "synced" } else { "deviceBound" };
        if !types.split(',').any(|t| t.trim().eq_ignore_ascii_case(wanted)) {
            return Some(format!(
                "passkeyType {wanted} is not allowed by passkeyTypes '{types}'{}",
                if facts.synced { " (the backup-eligible flag marks a synced passkey)" } else { "" }
            ));
        }
    }
    if enforced && !facts.packed_chain_trusted {
        return Some(format!(
            "attestation is enforced: only packed attestation with a certificate chain to a trusted FIDO MDS \
             root is accepted (got fmt '{}'{})",
            facts.fmt,
            if facts.fmt == "packed" { " without a trusted chain" } else { "" }
        ));
    }
    if restrictions.is_enforced {
        let listed = restrictions.aa_guids.iter().any(|a| a.trim().eq_ignore_ascii_case(facts.aaguid));
        match restrictions.enforcement_type {
            EnforcementType::Allow if !listed => {
                return Some(format!("AAGUID {} is not in the allow list of keyRestrictions", facts.aaguid));
            }
            EnforcementType::Block if listed => {
                return Some(format!("AAGUID {} is blocked by keyRestrictions", facts.aaguid));
            }
            _ => {}
        }
    }
    None
}

/// The passkey profiles `user` is scoped to (the default profile when targets name none).
pub fn profiles_for<'p>(policy: &'p Fido2Policy, user: &SeedUser) -> Vec<&'p PasskeyProfile> {
    let mut ids: Vec<&str> = policy
        .include_targets
        .iter()
        .filter(|t| targets(user, &t.id, t.target_type))
        .flat_map(|t| t.allowed_passkey_profiles.iter().map(String::as_str))
        .collect();
    if ids.is_empty() {
        match &policy.default_passkey_profile {
            Some(default) => ids.push(default.as_str()),
            None => return policy.passkey_profiles.first().into_iter().collect(),
        }
    }
    policy.passkey_profiles.iter().filter(|p| ids.iter().any(|id| id.eq_ignore_ascii_case(&p.id))).collect()
}

/// The checks on the credential; a refusal is 400 naming the rule (and the profile).
pub fn check_credential(
    policy: &Fido2Policy,
    user: &SeedUser,
    facts: &CredentialFacts<'_>,
) -> Result<(), GraphFailure> {
    if policy.passkey_profiles.is_empty() {
        return match judge(policy.is_attestation_enforced, &policy.key_restrictions, None, facts) {
            None => Ok(()),
            Some(reason) => {
                Err(GraphFailure::bad_request(format!("The passkey is refused by policy: {reason}.")))
            }
        };
    }
    let profiles = profiles_for(policy, user);
    let mut reasons = Vec::new();
    for profile in &profiles {
        let enforced = profile.attestation_enforcement == AttestationEnforcement::RegistrationOnly;
        match judge(enforced, &profile.key_restrictions, Some(&profile.passkey_types), facts) {
            None => return Ok(()),
            Some(reason) => {
                reasons.push(format!("passkey profile '{}' ({}): {reason}", profile.name, profile.id))
            }
        }
    }
    if reasons.is_empty() {
        reasons.push("the user is scoped to no existing passkey profile".into());
    }
    Err(GraphFailure::bad_request(format!(
        "The passkey satisfies none of the passkey profiles the user is scoped to: {}.",
        reasons.join("; ")
    )))
}

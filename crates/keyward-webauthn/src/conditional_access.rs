//! Conditional Access policies as Graph v1.0 returns them (`/identity/conditionalAccess/policies`,
//! `conditionalAccessPolicy`), reduced to the fields that decide whether a person can sign in
//! with a Temporary Access Pass to register a passkey, and sign in with that passkey afterwards.
//!
//! The emulator enforces these policies and `doctor` reads them, so one typed shape serves both
//! (as for the method policies in [`crate::policy`]). Unknown fields are ignored: the real entity
//! has many more (session controls, locations, platforms, risk levels) that Keyward does not judge.

use serde::{Deserialize, Serialize};

/// The user action "Register security information" (`includeUserActions`).
pub const REGISTER_SECURITY_INFO: &str = "urn:user:registersecurityinfo";
/// The built-in authentication strength "Phishing-resistant MFA".
pub const PHISHING_RESISTANT_STRENGTH_ID: &str = "00000000-0000-0000-0000-000000000004";
/// The `allowedCombinations` value of a passkey (FIDO2) sign-in.
pub const COMBINATION_FIDO2: &str = "fido2";
/// The `allowedCombinations` values of a Temporary Access Pass sign-in.
pub const COMBINATIONS_TAP: [&str; 2] = ["temporaryAccessPassOneTime", "temporaryAccessPassMultiUse"];
/// The `allowedCombinations` value of a password-only sign-in.
pub const COMBINATION_PASSWORD: &str = "password";

/// `conditionalAccessPolicy` (the fields Keyward reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionalAccessPolicy {
    /// Policy id (GUID).
    pub id: String,
    /// Name shown in the portal.
    #[serde(default)]
    pub display_name: String,
    /// `enabled`, `disabled` or `enabledForReportingButNotEnforced`.
    pub state: String,
    /// Who and what the policy applies to.
    pub conditions: ConditionalAccessConditions,
    /// What a sign-in must satisfy; `None` when the policy only has session controls.
    #[serde(default)]
    pub grant_controls: Option<GrantControls>,
}

/// `conditionalAccessConditionSet` (users and applications only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionalAccessConditions {
    /// Users, groups and exclusions.
    #[serde(default)]
    pub users: ConditionalAccessUsers,
    /// Resources (applications) or user actions.
    #[serde(default)]
    pub applications: ConditionalAccessApplications,
    /// `all`, `browser`, `mobileAppsAndDesktopClients`, …
    #[serde(default)]
    pub client_app_types: Vec<String>,
}

/// `conditionalAccessUsers`: ids, or `All` / `None` / `GuestsOrExternalUsers` in `includeUsers`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionalAccessUsers {
    /// User ids or `All`.
    #[serde(default)]
    pub include_users: Vec<String>,
    /// User ids excluded.
    #[serde(default)]
    pub exclude_users: Vec<String>,
    /// Group ids included.
    #[serde(default)]
    pub include_groups: Vec<String>,
    /// Group ids excluded.
    #[serde(default)]
    pub exclude_groups: Vec<String>,
}

/// `conditionalAccessApplications`: app ids or `All`, or user actions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionalAccessApplications {
    /// Application ids, `All`, `Office365` or `None`.
    #[serde(default)]
    pub include_applications: Vec<String>,
    /// Application ids excluded.
    #[serde(default)]
    pub exclude_applications: Vec<String>,
    /// `urn:user:registersecurityinfo`, `urn:user:registerdevice`.
    #[serde(default)]
    pub include_user_actions: Vec<String>,
}

/// `conditionalAccessGrantControls`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantControls {
    /// `AND` or `OR`.
    #[serde(default)]
    pub operator: String,
    /// `block`, `mfa`, `compliantDevice`, …
    #[serde(default)]
    pub built_in_controls: Vec<String>,
    /// The authentication strength a sign-in must meet.
    #[serde(default)]
    pub authentication_strength: Option<AuthenticationStrength>,
}

/// `authenticationStrengthPolicy` as expanded in a policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationStrength {
    /// Strength id (built-in ones are `00000000-0000-0000-0000-00000000000N`).
    pub id: String,
    /// Name, e.g. `Phishing-resistant MFA`.
    #[serde(default)]
    pub display_name: String,
    /// Method combinations that satisfy it, e.g. `fido2`, `temporaryAccessPassOneTime`.
    #[serde(default)]
    pub allowed_combinations: Vec<String>,
}

/// What a sign-in is for: a resource (any application) or registering security info.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Access to a resource (the policies that name applications apply).
    Resource,
    /// The user action "Register security information".
    RegisterSecurityInfo,
}

impl ConditionalAccessPolicy {
    /// Whether the policy is enforced (report-only and disabled policies are not).
    pub fn is_enforced(&self) -> bool {
        self.state.eq_ignore_ascii_case("enabled")
    }

    /// Whether the policy applies to a user (by object id and group ids).
    pub fn applies_to_user(&self, user_id: &str, groups: &[String]) -> bool {
        let u = &self.conditions.users;
        let eq = |list: &[String], id: &str| list.iter().any(|x| x.eq_ignore_ascii_case(id));
        let in_groups = |list: &[String]| groups.iter().any(|g| eq(list, g));
        if eq(&u.exclude_users, user_id) || in_groups(&u.exclude_groups) {
            return false;
        }
        eq(&u.include_users, "All") || eq(&u.include_users, user_id) || in_groups(&u.include_groups)
    }

    /// Whether the policy applies to a sign-in for `target`: a policy names either
    /// applications or user actions, never both.
    pub fn applies_to(&self, target: Target) -> bool {
        let a = &self.conditions.applications;
        match target {
            Target::Resource => a.include_applications.iter().any(|x| x.eq_ignore_ascii_case("All")),
            Target::RegisterSecurityInfo => {
                a.include_user_actions.iter().any(|x| x.eq_ignore_ascii_case(REGISTER_SECURITY_INFO))
            }
        }
    }

    /// Whether the policy blocks access outright.
    pub fn blocks(&self) -> bool {
        self.grant_controls
            .as_ref()
            .is_some_and(|g| g.built_in_controls.iter().any(|c| c.eq_ignore_ascii_case("block")))
    }

    /// Whether a sign-in with `combination` (e.g. `fido2`) satisfies the policy's grant.
    /// A policy without an authentication strength is satisfied unless it blocks (the other
    /// built-in controls, such as compliant device, are not judged).
    pub fn satisfied_by(&self, combination: &str) -> bool {
        if self.blocks() {
            return false;
        }
        match self.grant_controls.as_ref().and_then(|g| g.authentication_strength.as_ref()) {
            None => true,
            Some(strength) => strength
                .allowed_combinations
                .iter()
                .any(|c| c.split(',').map(str::trim).all(|part| part.eq_ignore_ascii_case(combination))),
        }
    }

    /// Whether any of the TAP combinations satisfies the policy.
    pub fn accepts_tap(&self) -> bool {
        COMBINATIONS_TAP.iter().any(|c| self.satisfied_by(c))
    }
}

/// The first enforced policy that applies to the user and target and that `combination` does
/// not satisfy; `None` when the sign-in may go ahead.
pub fn first_refusal<'p>(
    policies: &'p [ConditionalAccessPolicy],
    user_id: &str,
    groups: &[String],
    target: Target,
    combination: &str,
) -> Option<&'p ConditionalAccessPolicy> {
    policies.iter().find(|p| {
        p.is_enforced()
            && p.applies_to_user(user_id, groups)
            && p.applies_to(target)
            && !p.satisfied_by(combination)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: serde_json::Value) -> ConditionalAccessPolicy {
        serde_json::from_value(json).unwrap()
    }

    fn phishing_resistant_for_all() -> ConditionalAccessPolicy {
        policy(serde_json::json!({
            "id": "p1", "displayName": "Phishing-resistant for all", "state": "enabled",
            "conditions": { "users": { "includeUsers": ["All"], "excludeUsers": ["break-glass"] },
                            "applications": { "includeApplications": ["All"] } },
            "grantControls": { "operator": "OR", "builtInControls": [],
                "authenticationStrength": { "id": PHISHING_RESISTANT_STRENGTH_ID,
                    "allowedCombinations": ["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor"] } }
        }))
    }

    fn tap_for_registration() -> ConditionalAccessPolicy {
        policy(serde_json::json!({
            "id": "p2", "state": "enabled",
            "conditions": { "users": { "includeUsers": ["All"] },
                            "applications": { "includeUserActions": [REGISTER_SECURITY_INFO] } },
            "grantControls": { "operator": "OR",
                "authenticationStrength": { "id": "custom",
                    "allowedCombinations": ["fido2", "temporaryAccessPassOneTime", "temporaryAccessPassMultiUse"] } }
        }))
    }

    #[test]
    fn the_seed_scenario_refuses_password_everywhere_and_tap_outside_registration() {
        let policies = [phishing_resistant_for_all(), tap_for_registration()];
        let refused =
            |target, combination| first_refusal(&policies, "u1", &[], target, combination).is_some();
        let table = [
            (Target::Resource, COMBINATION_PASSWORD, true),
            (Target::Resource, "temporaryAccessPassOneTime", true),
            (Target::Resource, COMBINATION_FIDO2, false),
            (Target::RegisterSecurityInfo, "temporaryAccessPassOneTime", false),
            (Target::RegisterSecurityInfo, "temporaryAccessPassMultiUse", false),
            (Target::RegisterSecurityInfo, COMBINATION_PASSWORD, true),
            (Target::RegisterSecurityInfo, COMBINATION_FIDO2, false),
        ];
        for (target, combination, expected) in table {
            assert_eq!(refused(target, combination), expected, "{target:?} with {combination}");
        }
        assert!(
            first_refusal(&policies, "break-glass", &[], Target::Resource, COMBINATION_PASSWORD).is_none()
        );
    }

    #[test]
    fn disabled_and_report_only_policies_are_not_enforced_and_block_refuses_everything() {
        let mut p = phishing_resistant_for_all();
        p.state = "enabledForReportingButNotEnforced".into();
        assert!(first_refusal(&[p], "u1", &[], Target::Resource, COMBINATION_PASSWORD).is_none());
        let mut block = tap_for_registration();
        block.grant_controls =
            Some(GrantControls { built_in_controls: vec!["block".into()], ..Default::default() });
        assert!(block.blocks() && !block.accepts_tap() && !block.satisfied_by(COMBINATION_FIDO2));
        assert!(tap_for_registration().accepts_tap());
        assert!(!phishing_resistant_for_all().accepts_tap());
    }

    #[test]
    fn groups_include_and_exclude() {
        let mut p = phishing_resistant_for_all();
        p.conditions.users = ConditionalAccessUsers {
            include_groups: vec!["g1".into()],
            exclude_groups: vec!["g2".into()],
            ..Default::default()
        };
        assert!(p.applies_to_user("u", &["G1".into()]));
        assert!(!p.applies_to_user("u", &["g1".into(), "g2".into()]));
        assert!(!p.applies_to_user("u", &[]));
    }
}

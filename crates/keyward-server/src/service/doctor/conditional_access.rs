//! The Conditional Access half of doctor: policies Keyward can see that would stop the person
//! from using what Keyward issues — a policy that blocks them outright, one whose authentication
//! strength a passkey does not meet, or one for registering security info that a Temporary
//! Access Pass does not meet (the `keyward tap issue` onboarding path would then fail).
//!
//! Registration itself is an app-only Graph call, which these policies do not govern, so only an
//! outright block is a blocking finding; the others are warnings. The rules are
//! `keyward_webauthn::conditional_access`, the same the emulator enforces. Reading the policies
//! needs `Policy.Read.All`; without it doctor says what it could not check.

use keyward_entra::Connector;
use keyward_webauthn::conditional_access::{COMBINATION_FIDO2, ConditionalAccessPolicy, Target};

use super::DoctorReport;

/// Who the policies are judged for: a user (object id and group ids) or, without one, everyone
/// (`includeUsers: All`).
pub(super) struct Who<'a> {
    /// Object id, when a person was named.
    pub user_id: Option<&'a str>,
    /// Group ids of the user.
    pub groups: &'a [String],
}

impl Who<'_> {
    fn covered_by(&self, p: &ConditionalAccessPolicy) -> bool {
        match self.user_id {
            Some(id) => p.applies_to_user(id, self.groups),
            None => p.conditions.users.include_users.iter().any(|u| u.eq_ignore_ascii_case("All")),
        }
    }
}

/// Reads the tenant's Conditional Access policies and reports what would stop the person.
pub(super) async fn findings(connector: &Connector, who: &Who<'_>, r: &mut DoctorReport) {
    match connector.list_conditional_access_policies().await {
        Ok(policies) => judge(&policies, who, r),
        Err(e) => r.warn(
            "ca.read",
            format!("cannot read the tenant's Conditional Access policies: {e}"),
            "grant the app Policy.Read.All with admin consent, so doctor can see a Conditional Access block",
        ),
    }
}

/// The findings for `policies` as they apply to `who`.
pub(super) fn judge(policies: &[ConditionalAccessPolicy], who: &Who<'_>, r: &mut DoctorReport) {
    let mut problems = 0;
    for p in policies.iter().filter(|p| p.is_enforced() && who.covered_by(p)) {
        let name = format!("'{}' ({})", p.display_name, p.id);
        let resources = p.applies_to(Target::Resource);
        let registration = p.applies_to(Target::RegisterSecurityInfo);
        if !resources && !registration {
            continue;
        }
        if p.blocks() {
            problems += 1;
            let what = if resources { "every resource" } else { "registering security info" };
            r.block(
                "ca.block",
                format!("Conditional Access policy {name} blocks access to {what}: the person cannot sign in with the passkey"),
                format!("exclude the person (or their group) from policy {name}, or set it to report-only"),
            );
            continue;
        }
        if registration && !p.accepts_tap() {
            problems += 1;
            r.warn(
                "ca.tap-onboarding",
                format!(
                    "Conditional Access policy {name} requires an authentication strength a Temporary Access Pass \
                     does not meet to register security info: onboarding with `keyward tap issue` will fail"
                ),
                format!(
                    "add temporaryAccessPassOneTime (and temporaryAccessPassMultiUse) to the allowed combinations of \
                     the strength in {name}, or provision the key at the desk (`keyward provision`)"
                ),
            );
        }
        if resources && !p.satisfied_by(COMBINATION_FIDO2) {
            problems += 1;
            r.warn(
                "ca.passkey",
                format!(
                    "Conditional Access policy {name} requires an authentication strength a passkey (fido2) does \
                     not meet: the person cannot reach resources with the new passkey alone"
                ),
                format!("add fido2 to the allowed combinations of the strength in {name}"),
            );
        }
    }
    if problems == 0 {
        r.ok(
            "ca",
            format!(
                "{} Conditional Access policies; none blocks the person, the passkey or TAP onboarding",
                policies.len()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use keyward_webauthn::conditional_access::REGISTER_SECURITY_INFO;
    use serde_json::json;

    use super::*;

    fn policy(targets: serde_json::Value, grant: serde_json::Value) -> ConditionalAccessPolicy {
        serde_json::from_value(json!({
            "id": "p", "displayName": "P", "state": "enabled",
            "conditions": { "users": { "includeUsers": ["All"], "excludeUsers": ["vip"] }, "applications": targets },
            "grantControls": grant,
        }))
        .unwrap()
    }

    fn strength(combinations: &[&str]) -> serde_json::Value {
        json!({ "operator": "OR", "authenticationStrength": { "id": "s", "allowedCombinations": combinations } })
    }

    #[test]
    fn each_policy_gives_the_finding_an_operator_can_act_on() {
        let all = json!({ "includeApplications": ["All"] });
        let register = json!({ "includeUserActions": [REGISTER_SECURITY_INFO] });
        let block = json!({ "builtInControls": ["block"] });
        let table = [
            (policy(all.clone(), strength(&["fido2"])), "ca"),
            (policy(all.clone(), block.clone()), "ca.block"),
            (policy(register.clone(), block), "ca.block"),
            (policy(register.clone(), strength(&["fido2"])), "ca.tap-onboarding"),
            (policy(register, strength(&["fido2", "temporaryAccessPassOneTime"])), "ca"),
            (policy(all, strength(&["password,sms"])), "ca.passkey"),
        ];
        for (p, check) in table {
            let mut r = DoctorReport::default();
            judge(std::slice::from_ref(&p), &Who { user_id: Some("u1"), groups: &[] }, &mut r);
            assert_eq!(r.findings.len(), 1, "{p:?}: {r:?}");
            assert_eq!(r.findings[0].check, check, "{p:?}");
            let mut excluded = DoctorReport::default();
            judge(&[p], &Who { user_id: Some("vip"), groups: &[] }, &mut excluded);
            assert_eq!(excluded.findings[0].check, "ca", "an excluded user is not affected");
        }
    }
}

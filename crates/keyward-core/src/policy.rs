//! Enrollment policy per group, and the effective policy of a person in several groups.
//!
//! **Strictest wins.** When a person is in several groups with policies, the effective policy is:
//! the most demanding mode (`mandatory` over `optional` over `disabled`), the longest minimum PIN
//! length, a forced PIN change if any policy forces it, the smallest per-person passkey limit, and
//! the AAGUIDs allowed by *every* policy that restricts AAGUIDs (an empty list means "any model";
//! if the restricting policies have no AAGUID in common, no model is allowed and issuance is
//! refused with that reason). A person in no group with a policy gets `None`: the server's
//! default applies.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::PolicyId;

named_enum! {
    /// Whether people in a group enroll passkeys.
    pub enum EnrollmentMode: "enrollment mode" {
        /// No enrollment through Keyward.
        Disabled = "disabled",
        /// People may enroll.
        Optional = "optional",
        /// People must enroll (reported as missing coverage until they do).
        Mandatory = "mandatory",
    }
}

/// PIN rules applied when a key is prepared for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinRules {
    /// Minimum PIN length in Unicode code points (CTAP minimum is 4).
    pub min_length: u8,
    /// Whether the key is set to force a PIN change on first use.
    pub force_change: bool,
}

impl Default for PinRules {
    fn default() -> Self {
        Self { min_length: 4, force_change: false }
    }
}

/// The enrollment policy of one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentPolicy {
    /// Keyward's id.
    pub id: PolicyId,
    /// The group (Entra group id or name) this policy applies to.
    pub group: String,
    /// Enrollment mode.
    pub mode: EnrollmentMode,
    /// PIN rules.
    pub pin: PinRules,
    /// Allowed authenticator models; empty means any.
    pub allowed_aaguids: Vec<Uuid>,
    /// Maximum number of registered passkeys per person; `None` means no limit.
    pub max_passkeys_per_person: Option<u32>,
}

/// The policy that applies to one person after combining their groups' policies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectivePolicy {
    /// Most demanding mode.
    pub mode: EnrollmentMode,
    /// Strictest PIN rules.
    pub pin: PinRules,
    /// `None`: any model; `Some(list)`: only these (possibly none).
    pub allowed_aaguids: Option<Vec<Uuid>>,
    /// Smallest limit, if any policy sets one.
    pub max_passkeys_per_person: Option<u32>,
}

impl EffectivePolicy {
    /// Whether a key model may be enrolled under this policy.
    pub fn allows_aaguid(&self, aaguid: &Uuid) -> bool {
        self.allowed_aaguids.as_ref().is_none_or(|list| list.contains(aaguid))
    }

    /// Whether a person who already has `registered` passkeys may get another one.
    pub fn allows_another(&self, registered: u32) -> bool {
        self.max_passkeys_per_person.is_none_or(|max| registered < max)
    }
}

impl EnrollmentPolicy {
    /// Combines the policies of the groups `groups` (a person's groups); strictest wins, see the
    /// module docs. Returns `None` if none of the groups has a policy.
    pub fn effective<'a>(
        policies: impl IntoIterator<Item = &'a EnrollmentPolicy>,
        groups: &[String],
    ) -> Option<EffectivePolicy> {
        let mut out: Option<EffectivePolicy> = None;
        for p in policies.into_iter().filter(|p| groups.contains(&p.group)) {
            let restrict = (!p.allowed_aaguids.is_empty()).then(|| p.allowed_aaguids.clone());
            out = Some(match out {
                None => EffectivePolicy {
                    mode: p.mode,
                    pin: p.pin.clone(),
                    allowed_aaguids: restrict,
                    max_passkeys_per_person: p.max_passkeys_per_person,
                },
                Some(e) => EffectivePolicy {
                    mode: e.mode.max(p.mode),
                    pin: PinRules {
                        min_length: e.pin.min_length.max(p.pin.min_length),
                        force_change: e.pin.force_change || p.pin.force_change,
                    },
                    allowed_aaguids: match (e.allowed_aaguids, restrict) {
                        (None, r) | (r, None) => r,
                        (Some(a), Some(b)) => Some(a.into_iter().filter(|x| b.contains(x)).collect()),
                    },
                    max_passkeys_per_person: match (e.max_passkeys_per_person, p.max_passkeys_per_person) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    },
                },
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(
        group: &str,
        mode: EnrollmentMode,
        min: u8,
        force: bool,
        aaguids: &[u128],
        max: Option<u32>,
    ) -> EnrollmentPolicy {
        EnrollmentPolicy {
            id: PolicyId::new(),
            group: group.into(),
            mode,
            pin: PinRules { min_length: min, force_change: force },
            allowed_aaguids: aaguids.iter().map(|&n| Uuid::from_u128(n)).collect(),
            max_passkeys_per_person: max,
        }
    }

    #[test]
    fn strictest_wins_across_groups() {
        use EnrollmentMode::*;
        let policies = [
            policy("staff", Optional, 6, false, &[1, 2, 3], Some(3)),
            policy("admins", Mandatory, 8, true, &[2, 3, 4], None),
            policy("contractors", Disabled, 4, false, &[], Some(1)),
            policy("finance", Optional, 10, false, &[], None),
        ];
        let groups = |g: &[&str]| g.iter().map(|s| s.to_string()).collect::<Vec<_>>();

        let e = EnrollmentPolicy::effective(&policies, &groups(&["staff", "admins"])).unwrap();
        assert_eq!(e.mode, Mandatory);
        assert_eq!(e.pin, PinRules { min_length: 8, force_change: true });
        assert_eq!(e.allowed_aaguids, Some(vec![Uuid::from_u128(2), Uuid::from_u128(3)]));
        assert!(e.allows_aaguid(&Uuid::from_u128(3)) && !e.allows_aaguid(&Uuid::from_u128(1)));
        assert_eq!(e.max_passkeys_per_person, Some(3));

        let e =
            EnrollmentPolicy::effective(&policies, &groups(&["contractors", "finance", "other"])).unwrap();
        assert_eq!(e.mode, Optional);
        assert_eq!(e.pin.min_length, 10);
        assert_eq!(e.allowed_aaguids, None, "no group restricts models");
        assert!(e.allows_aaguid(&Uuid::from_u128(99)));
        assert!(e.allows_another(0) && !e.allows_another(1));

        assert_eq!(EnrollmentPolicy::effective(&policies, &groups(&["other"])), None);
    }

    #[test]
    fn disjoint_aaguid_lists_allow_no_model() {
        let policies = [
            policy("a", EnrollmentMode::Optional, 4, false, &[1], None),
            policy("b", EnrollmentMode::Optional, 4, false, &[2], None),
        ];
        let e = EnrollmentPolicy::effective(&policies, &["a".into(), "b".into()]).unwrap();
        assert_eq!(e.allowed_aaguids, Some(vec![]));
        assert!(!e.allows_aaguid(&Uuid::from_u128(1)) && !e.allows_aaguid(&Uuid::from_u128(2)));
    }
}

//! Entra's registration rules: would the tenant accept this key for this user?
//!
//! Keyward asks the question in three places — the check before the Graph POST, `doctor`, and
//! `keyward inspect` — and they must give the same answer, so the rules live here once, as a
//! pure function over the tenant's [`Fido2Policy`], the user ([`Subject`]) and what the key sent
//! ([`KeyFacts`]). Callers do the I/O (reading the policy, resolving group membership, checking a
//! certificate chain) and map the [`Verdict`] to their own words. The emulator (`keyward-sim`)
//! keeps its own implementation on purpose: it is the referee, and a table test runs the same
//! cases (`tests/data/entra_rules.json`) against both.
//!
//! The rules (docs/entra-graph-api.md §4.3, §11):
//!
//! * **The method**: the Passkey (FIDO2) method must be enabled, and the self-service switch on
//!   (the provisioning API requires it — a Graph known issue).
//! * **Targets**: an exclude target naming the user or one of their groups refuses, whatever the
//!   include targets say; otherwise some include target must name the user, one of their groups,
//!   or `all_users`.
//! * **Which rules the key must meet.** Without passkey profiles, the legacy fields
//!   (`isAttestationEnforced`, `keyRestrictions`). With passkey profiles, the profiles the user is
//!   scoped to: those listed in `allowedPasskeyProfiles` of the include targets that match the
//!   user; when those list none, the default profile (`defaultPasskeyProfile`, or the first
//!   profile when it is unset). The key is accepted when it satisfies **at least one** of them.
//! * **Legacy fields beside profiles are ignored.** The spec says only that the default profile
//!   is created on opt-in and mirrors the legacy settings, and that the legacy fields are
//!   deprecated; it does not say whether they are still enforced once profiles exist. The
//!   emulator ignores them, and so does this function (a user scoped to a profile without
//!   restrictions registers a key the legacy block list names).
//! * **Within one rule set**: passkey types (device-bound or synced, where a profile names
//!   them), attestation enforcement (only `packed` with a chain to a FIDO MDS root of the
//!   model), and the AAGUID allow or block list (compared as UUIDs, so case does not matter).
//!
//! Guests and disabled accounts are facts about the account, not the FIDO2 policy; callers
//! check them where they read the account.

mod refusal;

pub use refusal::Refusal;

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::policy::{
    AttestationEnforcement, EnforcementType, Fido2Policy, KeyRestrictions, MethodState, TargetType,
};

/// The user a registration is for, as far as the policy's targets can see.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The user's Entra object id.
    pub user_id: &'a str,
    /// Ids of the groups the user belongs to (at least those in [`targeted_groups`]).
    pub groups: &'a [String],
}

impl Subject<'_> {
    fn is_targeted_by(&self, id: &str, kind: TargetType) -> bool {
        match kind {
            TargetType::User => id.eq_ignore_ascii_case(self.user_id),
            TargetType::Group => {
                id.eq_ignore_ascii_case("all_users") || self.groups.iter().any(|g| g.eq_ignore_ascii_case(id))
            }
        }
    }
}

/// What attestation the key sent, as far as enforcement is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attestation {
    /// `none`, self attestation (no certificate chain), or a format other than `packed`.
    NoPackedChain,
    /// A `packed` chain whose root the caller did not check (Entra checks it).
    UncheckedChain,
    /// A `packed` chain that does not reach a FIDO MDS root of the key's model.
    UntrustedChain,
    /// A `packed` chain that reaches a FIDO MDS root of the key's model.
    TrustedChain,
}

impl Attestation {
    /// Reads the evidence off an attestation statement whose chain was not verified.
    pub fn unchecked(fmt: &str, has_chain: bool) -> Self {
        if fmt == "packed" && has_chain { Self::UncheckedChain } else { Self::NoPackedChain }
    }

    /// Whether it can meet enforced attestation (an unchecked chain is given the benefit).
    pub fn meets_enforcement(self) -> bool {
        matches!(self, Self::UncheckedChain | Self::TrustedChain)
    }
}

/// Device-bound (a security key) or synced (backup eligible).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PasskeyType {
    /// Bound to one authenticator.
    DeviceBound,
    /// Backup eligible: may be copied to other devices.
    Synced,
}

impl PasskeyType {
    /// The spelling in `passkeyTypes`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeviceBound => "deviceBound",
            Self::Synced => "synced",
        }
    }
}

/// What the key sent that the rules look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyFacts {
    /// The model's AAGUID.
    pub aaguid: Uuid,
    /// The attestation evidence.
    pub attestation: Attestation,
    /// Device-bound or synced.
    pub passkey_type: PasskeyType,
}

/// Which set of rules is meant: the legacy settings or one passkey profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleSetName {
    /// `isAttestationEnforced` and `keyRestrictions` of the policy (no profiles in use).
    Legacy,
    /// A passkey profile.
    Profile {
        /// The profile's id.
        id: String,
        /// Its display name.
        name: String,
    },
}

impl fmt::Display for RuleSetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Legacy => f.write_str("the FIDO2 policy"),
            Self::Profile { name, .. } => write!(f, "passkey profile '{name}'"),
        }
    }
}

/// One set of rules a key must satisfy.
#[derive(Debug, Clone)]
pub struct RuleSet<'a> {
    /// Which one.
    pub name: RuleSetName,
    /// Whether attestation is enforced at registration.
    pub attestation_enforced: bool,
    /// The AAGUID allow or block list.
    pub restrictions: &'a KeyRestrictions,
    /// The allowed passkey types (`None` for the legacy settings, which allow both).
    pub passkey_types: Option<&'a str>,
}

impl RuleSet<'_> {
    /// Whether this rule set can refuse a key for its model or attestation.
    pub fn restricts_models(&self) -> bool {
        self.attestation_enforced || self.restrictions.is_enforced
    }

    /// Every reason this rule set refuses `key` (empty when it accepts it).
    pub fn refusals(&self, key: &KeyFacts) -> Vec<Refusal> {
        let mut out = Vec::new();
        if let Some(types) = self.passkey_types
            && !types.split(',').any(|t| t.trim().eq_ignore_ascii_case(key.passkey_type.as_str()))
        {
            out.push(Refusal::PasskeyType {
                rule_set: self.name.clone(),
                allowed: types.to_owned(),
                sent: key.passkey_type,
            });
        }
        if self.attestation_enforced && !key.attestation.meets_enforcement() {
            out.push(Refusal::Attestation {
                rule_set: self.name.clone(),
                aaguid: key.aaguid,
                sent: key.attestation,
            });
        }
        if self.restrictions.is_enforced {
            let listed = self
                .restrictions
                .aa_guids
                .iter()
                .any(|a| Uuid::parse_str(a.trim()).is_ok_and(|a| a == key.aaguid));
            match self.restrictions.enforcement_type {
                EnforcementType::Allow if !listed => {
                    out.push(Refusal::AaguidNotAllowed { rule_set: self.name.clone(), aaguid: key.aaguid })
                }
                EnforcementType::Block if listed => {
                    out.push(Refusal::AaguidBlocked { rule_set: self.name.clone(), aaguid: key.aaguid })
                }
                _ => {}
            }
        }
        out
    }
}

/// Whether Entra would accept the registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted; the rule set the key satisfied.
    Accepted(RuleSetName),
    /// Refused, with every reason, in the order a registration meets them.
    Refused(Vec<Refusal>),
}

impl Verdict {
    /// Whether the registration would be accepted.
    pub fn accepted(&self) -> bool {
        matches!(self, Self::Accepted(_))
    }

    /// The reasons for a refusal (empty when accepted).
    pub fn refusals(&self) -> &[Refusal] {
        match self {
            Self::Accepted(_) => &[],
            Self::Refused(reasons) => reasons,
        }
    }
}

/// The groups whose membership the verdict depends on: group targets other than `all_users`.
///
/// A caller resolves the user's membership of these (and only these) for [`Subject::groups`].
pub fn targeted_groups(policy: &Fido2Policy) -> Vec<&str> {
    let include = policy.include_targets.iter().map(|t| (t.id.as_str(), t.target_type));
    let exclude = policy.exclude_targets.iter().map(|t| (t.id.as_str(), t.target_type));
    let mut ids: Vec<&str> = include
        .chain(exclude)
        .filter(|(id, kind)| *kind == TargetType::Group && !id.eq_ignore_ascii_case("all_users"))
        .map(|(id, _)| id)
        .collect();
    ids.sort_unstable_by_key(|id| id.to_ascii_lowercase());
    ids.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    ids
}

/// The method's state and the self-service switch, which no user or key can get past.
pub fn method_refusals(policy: &Fido2Policy) -> Vec<Refusal> {
    let mut out = Vec::new();
    if policy.state == MethodState::Disabled {
        out.push(Refusal::MethodDisabled);
    }
    if !policy.is_self_service_registration_allowed {
        out.push(Refusal::SelfServiceOff);
    }
    out
}

/// The include and exclude targets for `user`.
pub fn target_refusals(policy: &Fido2Policy, user: &Subject<'_>) -> Vec<Refusal> {
    let mut out = Vec::new();
    if let Some(t) = policy.exclude_targets.iter().find(|t| user.is_targeted_by(&t.id, t.target_type)) {
        out.push(Refusal::Excluded { target: t.id.clone() });
    }
    if !policy.include_targets.iter().any(|t| user.is_targeted_by(&t.id, t.target_type)) {
        out.push(Refusal::NotTargeted);
    }
    out
}

/// The rule sets a key must satisfy one of: the legacy settings without profiles, else the
/// profiles `user` is scoped to (every profile when no user is given). Empty when the user is
/// scoped to no existing profile.
pub fn rule_sets<'a>(policy: &'a Fido2Policy, user: Option<&Subject<'_>>) -> Vec<RuleSet<'a>> {
    if policy.passkey_profiles.is_empty() {
        return vec![RuleSet {
            name: RuleSetName::Legacy,
            attestation_enforced: policy.is_attestation_enforced,
            restrictions: &policy.key_restrictions,
            passkey_types: None,
        }];
    }
    let mut ids: Vec<&str> = match user {
        Some(user) => policy
            .include_targets
            .iter()
            .filter(|t| user.is_targeted_by(&t.id, t.target_type))
            .flat_map(|t| t.allowed_passkey_profiles.iter().map(String::as_str))
            .collect(),
        None => policy.passkey_profiles.iter().map(|p| p.id.as_str()).collect(),
    };
    if ids.is_empty() {
        match &policy.default_passkey_profile {
            Some(default) => ids.push(default),
            None => ids.extend(policy.passkey_profiles.first().map(|p| p.id.as_str())),
        }
    }
    policy
        .passkey_profiles
        .iter()
        .filter(|p| ids.iter().any(|id| id.eq_ignore_ascii_case(&p.id)))
        .map(|p| RuleSet {
            name: RuleSetName::Profile { id: p.id.clone(), name: p.name.clone() },
            attestation_enforced: p.attestation_enforcement == AttestationEnforcement::RegistrationOnly,
            restrictions: &p.key_restrictions,
            passkey_types: Some(&p.passkey_types),
        })
        .collect()
}

/// The key against rule sets: accepted by the first it satisfies, else every set's reasons.
pub fn judge_key(sets: &[RuleSet<'_>], key: &KeyFacts) -> Verdict {
    if sets.is_empty() {
        return Verdict::Refused(vec![Refusal::NoPasskeyProfile]);
    }
    let mut reasons = Vec::new();
    for set in sets {
        let refusals = set.refusals(key);
        if refusals.is_empty() {
            return Verdict::Accepted(set.name.clone());
        }
        reasons.extend(refusals);
    }
    Verdict::Refused(reasons)
}

/// Whether Entra would accept a registration of `key` for `user` under `policy`.
///
/// Without a user (`keyward inspect` has only the body), the targets are not judged and the key
/// passes when any passkey profile accepts it.
pub fn judge(policy: &Fido2Policy, user: Option<&Subject<'_>>, key: &KeyFacts) -> Verdict {
    let mut reasons = method_refusals(policy);
    if let Some(user) = user {
        reasons.extend(target_refusals(policy, user));
    }
    let by_key = judge_key(&rule_sets(policy, user), key);
    match by_key {
        Verdict::Accepted(name) if reasons.is_empty() => Verdict::Accepted(name),
        verdict => {
            reasons.extend(verdict.refusals().iter().cloned());
            Verdict::Refused(reasons)
        }
    }
}

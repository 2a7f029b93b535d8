//! Why Entra would refuse a registration: one variant per rule, each with its user-facing text,
//! a stable check name (doctor's and inspect's `check` field) and what to change in the tenant.

use std::fmt;

use uuid::Uuid;

use super::{Attestation, PasskeyType, RuleSetName};

/// One reason a registration would be refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The Passkey (FIDO2) method is disabled.
    MethodDisabled,
    /// `isSelfServiceRegistrationAllowed` is off, which the provisioning API needs.
    SelfServiceOff,
    /// An exclude target names the user or one of their groups.
    Excluded {
        /// The exclude target's id.
        target: String,
    },
    /// No include target names the user, their groups or all users.
    NotTargeted,
    /// Profiles are in use but the user is scoped to none that exists.
    NoPasskeyProfile,
    /// The rule set does not allow this passkey type.
    PasskeyType {
        /// The rule set that refused.
        rule_set: RuleSetName,
        /// Its `passkeyTypes`.
        allowed: String,
        /// What the key made.
        sent: PasskeyType,
    },
    /// The rule set enforces attestation and the key's does not meet it.
    Attestation {
        /// The rule set that refused.
        rule_set: RuleSetName,
        /// The key model.
        aaguid: Uuid,
        /// What the key sent.
        sent: Attestation,
    },
    /// The model is not on the rule set's AAGUID allow list.
    AaguidNotAllowed {
        /// The rule set that refused.
        rule_set: RuleSetName,
        /// The key model.
        aaguid: Uuid,
    },
    /// The model is on the rule set's AAGUID block list.
    AaguidBlocked {
        /// The rule set that refused.
        rule_set: RuleSetName,
        /// The key model.
        aaguid: Uuid,
    },
}

impl Refusal {
    /// A stable name of the rule, e.g. `policy.aaguid` or `user.excluded`.
    pub fn check(&self) -> &'static str {
        match self {
            Self::MethodDisabled => "policy.state",
            Self::SelfServiceOff => "policy.self-service",
            Self::Excluded { .. } => "user.excluded",
            Self::NotTargeted => "user.not-targeted",
            Self::NoPasskeyProfile => "policy.passkey-profile",
            Self::PasskeyType { .. } => "policy.passkey-type",
            Self::Attestation { .. } => "policy.attestation",
            Self::AaguidNotAllowed { .. } | Self::AaguidBlocked { .. } => "policy.aaguid",
        }
    }

    /// The rule set (legacy settings or passkey profile) that refused, for key rules.
    pub fn rule_set(&self) -> Option<&RuleSetName> {
        match self {
            Self::PasskeyType { rule_set, .. }
            | Self::Attestation { rule_set, .. }
            | Self::AaguidNotAllowed { rule_set, .. }
            | Self::AaguidBlocked { rule_set, .. } => Some(rule_set),
            _ => None,
        }
    }

    /// What to change in the tenant (or which key to use) so the registration passes.
    pub fn fix(&self) -> String {
        match self {
            Self::MethodDisabled => {
                "enable it: Entra admin centre > Authentication methods > Passkey (FIDO2)".into()
            }
            Self::SelfServiceOff => {
                "turn on \"Allow self-service set up\" in the Passkey (FIDO2) policy".into()
            }
            Self::Excluded { .. } => {
                "remove the user (or their group) from the method's excluded targets".into()
            }
            Self::NotTargeted => {
                "add the user or one of their groups to the method's targets (or target all users)".into()
            }
            Self::NoPasskeyProfile => {
                "allow a passkey profile on the user's include target, or set a default passkey profile"
                    .into()
            }
            Self::PasskeyType { rule_set, sent, .. } => {
                format!("add {} to the passkey types of {rule_set}", sent.as_str())
            }
            Self::Attestation { rule_set, .. } => format!(
                "use a FIDO-certified key model listed in MDS, or turn off attestation enforcement in {rule_set}"
            ),
            Self::AaguidNotAllowed { rule_set, aaguid } => {
                format!("add {aaguid} to the allowed AAGUIDs of {rule_set}, or use an allowed model")
            }
            Self::AaguidBlocked { rule_set, aaguid } => {
                format!("remove {aaguid} from the blocked AAGUIDs of {rule_set}, or use another model")
            }
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MethodDisabled => {
                f.write_str("the Passkey (FIDO2) authentication method is disabled in the tenant")
            }
            Self::SelfServiceOff => f.write_str(
                "isSelfServiceRegistrationAllowed is off; Graph refuses provisioning then (known issue)",
            ),
            Self::Excluded { target } => {
                write!(f, "the user is excluded from the Passkey (FIDO2) method by exclude target {target}")
            }
            Self::NotTargeted => {
                f.write_str("the user is not in any include target of the Passkey (FIDO2) method")
            }
            Self::NoPasskeyProfile => f.write_str("the user is scoped to no existing passkey profile"),
            Self::PasskeyType { rule_set, allowed, sent: PasskeyType::DeviceBound } => write!(
                f,
                "{rule_set} allows passkey types '{allowed}', not device-bound passkeys on security keys"
            ),
            Self::PasskeyType { rule_set, allowed, sent: PasskeyType::Synced } => write!(
                f,
                "{rule_set} allows passkey types '{allowed}', not synced passkeys (the key set the \
                 backup-eligible flag)"
            ),
            Self::Attestation { rule_set, aaguid, sent: Attestation::NoPackedChain } => write!(
                f,
                "{rule_set} enforces attestation, but key model {aaguid} sent no packed attestation with a \
                 certificate chain (none, self attestation or another format)"
            ),
            Self::Attestation { rule_set, aaguid, .. } => write!(
                f,
                "{rule_set} enforces attestation, but the attestation of key model {aaguid} does not chain to a \
                 FIDO MDS root (the model is not in MDS, or the key sends no certificate chain)"
            ),
            Self::AaguidNotAllowed { rule_set, aaguid } => {
                write!(f, "key model {aaguid} is not in the AAGUID allow list of {rule_set}")
            }
            Self::AaguidBlocked { rule_set, aaguid } => {
                write!(f, "key model {aaguid} is blocked by the AAGUID block list of {rule_set}")
            }
        }
    }
}

//! Entra's registration rules as data: the table in
//! `crates/keyward-webauthn/tests/data/entra_rules.json`, read once for its two users — the pure
//! function's table test in `keyward-webauthn` and the emulator's test over HTTP in
//! `keyward-sim` — so that both read the same cases the same way.
//!
//! Each case names a user, a key (AAGUID, the attestation it sends, the passkey type), the
//! members of the tenant's FIDO2 policy that differ from a new tenant's, and the reasons it is
//! refused (none: accepted).

use keyward_webauthn::entra_rules::{Attestation, KeyFacts, PasskeyType, Subject};
use keyward_webauthn::policy::Fido2Policy;
use serde::Deserialize;
use serde_json::Value;

/// The table's text, compiled in.
pub const TABLE_JSON: &str = include_str!("../../keyward-webauthn/tests/data/entra_rules.json");

/// The whole table.
#[derive(Debug, Deserialize)]
pub struct Table {
    /// The tenant's groups the users are members of.
    pub groups: Vec<Group>,
    /// The users the cases register for.
    pub users: Vec<User>,
    /// The cases, in order.
    pub cases: Vec<Case>,
}

/// A group of the tenant.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// Its object id.
    pub id: String,
    /// Its display name.
    pub display_name: String,
}

/// A user of the tenant.
#[derive(Debug, Deserialize)]
pub struct User {
    /// Their object id.
    pub id: String,
    /// A short name (the UPN's local part in the emulator).
    pub name: String,
    /// The object ids of the groups they are in.
    pub groups: Vec<String>,
}

impl User {
    /// The user as the rules see them.
    pub fn subject(&self) -> Subject<'_> {
        Subject { user_id: &self.id, groups: &self.groups }
    }
}

/// One case: a registration and the verdict it must get.
#[derive(Debug, Deserialize)]
pub struct Case {
    /// What the case shows.
    pub name: String,
    /// The object id of the user it registers for.
    pub user: String,
    /// The key that registers.
    pub key: CaseKey,
    /// Members of the tenant's FIDO2 policy laid over a new tenant's, key by key.
    pub policy: serde_json::Map<String, Value>,
    /// Each reason for a refusal as `check` or `check: rule set`; empty when accepted.
    #[serde(default)]
    pub refused: Vec<String>,
}

/// The key of a case: what the test authenticator sends.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseKey {
    /// The model's AAGUID.
    pub aaguid: uuid::Uuid,
    /// The attestation statement it makes.
    pub attestation: Sent,
    /// Device-bound or synced.
    pub passkey_type: PasskeyType,
}

/// The attestation statement the test authenticator makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sent {
    /// fmt `none`.
    None,
    /// `packed` signed by the credential key, no x5c.
    #[serde(rename = "self")]
    SelfAttested,
    /// `packed` with a chain to a root the tenant does not trust.
    UntrustedChain,
    /// `packed` with a chain to a root the tenant trusts.
    TrustedChain,
}

impl Table {
    /// The table, parsed.
    pub fn load() -> Self {
        serde_json::from_str(TABLE_JSON).expect("entra_rules.json is a valid rule table")
    }

    /// The user a case registers for.
    pub fn user_of(&self, case: &Case) -> &User {
        self.users
            .iter()
            .find(|u| u.id == case.user)
            .unwrap_or_else(|| panic!("{}: user {} is not in the table", case.name, case.user))
    }
}

impl Case {
    /// A new tenant's policy with the case's members laid over it.
    pub fn tenant_policy(&self) -> Fido2Policy {
        let mut base = serde_json::to_value(Fido2Policy::default()).expect("the policy serializes");
        for (k, v) in &self.policy {
            base[k] = v.clone();
        }
        serde_json::from_value(base).unwrap_or_else(|e| panic!("{}: policy: {e}", self.name))
    }
}

impl CaseKey {
    /// What the rules know of the key.
    pub fn facts(&self) -> KeyFacts {
        let attestation = match self.attestation {
            Sent::None | Sent::SelfAttested => Attestation::NoPackedChain,
            Sent::UntrustedChain => Attestation::UntrustedChain,
            Sent::TrustedChain => Attestation::TrustedChain,
        };
        KeyFacts { aaguid: self.aaguid, attestation, passkey_type: self.passkey_type }
    }
}

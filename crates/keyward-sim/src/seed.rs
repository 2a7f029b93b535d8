//! The tenant seed: the JSON a `keyward sim` starts from.
//!
//! A seed names the tenant, its app registrations (with the application roles granted to
//! each), its users and groups, and its authentication-method policies. Test attestation
//! CAs (for software authenticators) are added here rather than baked into the FIDO
//! metadata, so that the shipped MDS roots stay exactly what the FIDO Alliance publishes.

use std::collections::BTreeMap;

use keyward_webauthn::conditional_access::ConditionalAccessPolicy;
use keyward_webauthn::policy::{Fido2Policy, TapPolicy};
use serde::{Deserialize, Serialize};

/// A whole tenant as the emulator starts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seed {
    /// Free text ignored by the emulator, for documenting a seed file.
    #[serde(rename = "$comment", default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The tenant GUID.
    pub tenant_id: String,
    /// The tenant's initial domain, accepted in place of the GUID in login URLs.
    #[serde(default = "default_domain")]
    pub tenant_domain: String,
    /// App registrations that may obtain tokens.
    #[serde(default)]
    pub apps: Vec<SeedApp>,
    /// Users.
    #[serde(default)]
    pub users: Vec<SeedUser>,
    /// Groups (membership is listed on each user).
    #[serde(default)]
    pub groups: Vec<SeedGroup>,
    /// The FIDO2 authentication-method policy.
    #[serde(default)]
    pub fido2_policy: Fido2Policy,
    /// The Temporary Access Pass policy.
    #[serde(default)]
    pub tap_policy: TapPolicy,
    /// Extra attestation roots (PEM), e.g. the CA of a software authenticator under test.
    #[serde(default)]
    pub attestation_roots_pem: Vec<String>,
    /// Extra AAGUID → model names, for authenticators not in the FIDO metadata.
    #[serde(default)]
    pub aaguid_models: BTreeMap<String, String>,
    /// How credential ids are encoded in `excludeCredentials` (docs/entra-graph-api.md §1.4).
    #[serde(default)]
    pub exclude_credential_encoding: IdEncoding,
    /// Conditional Access policies (Graph v1.0 `conditionalAccessPolicy` shape), enforced at
    /// sign-in and listed at `/identity/conditionalAccess/policies`.
    #[serde(default)]
    pub conditional_access_policies: Vec<ConditionalAccessPolicy>,
}

fn default_domain() -> String {
    "contoso.onmicrosoft.com".into()
}

/// Encodings Entra has been seen to use for credential ids in `excludeCredentials`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum IdEncoding {
    /// base64url without padding (the documented v1.0 form).
    #[default]
    Base64url,
    /// base64url with a trailing padding digit (the beta / .NET form).
    PadDigit,
    /// standard base64 with `=` padding (seen in 2024 captures).
    Base64,
    /// standard base64 without padding (the v1.0 doc's 2026 example).
    Base64NoPad,
    /// One response mixing forms, id by id in turn: standard base64 with `=`, the padding
    /// digit form, standard base64 without padding (Entra was seen to put `=`-padded ids
    /// beside digit-suffixed ones in one list; docs/entra-graph-api.md §1.4).
    Mixed,
}

/// An app registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedApp {
    /// The application (client) id.
    pub client_id: String,
    /// Display name.
    #[serde(default)]
    pub display_name: String,
    /// A client secret, if the app has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Certificates (PEM) whose keys may sign client assertions.
    #[serde(default)]
    pub certificates_pem: Vec<String>,
    /// Granted application roles, e.g. `UserAuthMethod-Passkey.ReadWrite.All`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Redirect URIs allowed for the authorization-code flow (portal sign-in).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedUser {
    /// Object id (GUID).
    pub id: String,
    /// UPN.
    pub user_principal_name: String,
    /// Display name.
    pub display_name: String,
    /// Whether sign-in is allowed.
    #[serde(default = "yes")]
    pub account_enabled: bool,
    /// `Member` or `Guest`.
    #[serde(default = "member")]
    pub user_type: String,
    /// Mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
    /// Ids of the groups the user belongs to.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Built-in directory roles the user holds, by display name (`Global Administrator`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directory_roles: Vec<String>,
}

fn yes() -> bool {
    true
}

fn member() -> String {
    "Member".into()
}

/// A group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedGroup {
    /// Object id (GUID).
    pub id: String,
    /// Display name.
    pub display_name: String,
}

impl Seed {
    /// Checks what serde cannot: unique ids and UPNs, known group references.
    pub fn validate(&self) -> Result<(), String> {
        let mut ids = std::collections::BTreeSet::new();
        let mut upns = std::collections::BTreeSet::new();
        for user in &self.users {
            if !ids.insert(user.id.to_ascii_lowercase()) {
                return Err(format!("user id {} appears twice", user.id));
            }
            if !upns.insert(user.user_principal_name.to_ascii_lowercase()) {
                return Err(format!("userPrincipalName {} appears twice", user.user_principal_name));
            }
            for role in &user.directory_roles {
                if crate::graph::roles::template_id(role).is_none() {
                    let known: Vec<&str> =
                        crate::graph::roles::BUILT_IN_ROLES.iter().map(|(n, _)| *n).collect();
                    return Err(format!(
                        "user {} holds directory role {role:?}, which the emulator does not know; use one of: {}",
                        user.user_principal_name,
                        known.join(", ")
                    ));
                }
            }
            for group in &user.groups {
                if !self.groups.iter().any(|g| g.id.eq_ignore_ascii_case(group)) {
                    return Err(format!(
                        "user {} is in group {group}, which is not in `groups`",
                        user.user_principal_name
                    ));
                }
            }
        }
        let mut clients = std::collections::BTreeSet::new();
        for app in &self.apps {
            if !clients.insert(app.client_id.to_ascii_lowercase()) {
                return Err(format!("app clientId {} appears twice", app.client_id));
            }
        }
        Ok(())
    }

    /// The documented example seed printed by `keyward sim --example-seed`.
    pub fn example() -> Self {
        serde_json::from_str(EXAMPLE_SEED).unwrap_or_else(|e| panic!("the example seed is invalid: {e}"))
    }
}

/// The example seed, as text (it doubles as documentation of the format).
pub const EXAMPLE_SEED: &str = include_str!("example-seed.json");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_seed_parses_and_validates() {
        let seed = Seed::example();
        seed.validate().unwrap();
        assert!(seed.users.iter().any(|u| u.user_type == "Guest"));
    }

    #[test]
    fn unknown_fields_are_refused_so_typos_are_not_silently_ignored() {
        let err = serde_json::from_str::<Seed>(r#"{"tenantId":"t","userz":[]}"#).unwrap_err();
        assert!(err.to_string().contains("userz"), "{err}");
    }

    #[test]
    fn duplicate_upns_are_refused() {
        let mut seed = Seed::example();
        let mut twin = seed.users[0].clone();
        twin.id = "00000000-0000-0000-0000-00000000ffff".into();
        seed.users.push(twin);
        assert!(seed.validate().unwrap_err().contains("appears twice"));
    }
}

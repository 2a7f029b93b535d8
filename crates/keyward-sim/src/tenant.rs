//! The emulated tenant's live state, and its persistence with `--state FILE`.
//!
//! Everything a Graph or login call can change lives in [`TenantState`]. It is held in
//! memory behind one lock; when a state file is configured, every mutation is written
//! through (to a temporary file renamed over the old one, so a crash never leaves a torn
//! file) before the response is sent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use keyward_webauthn::conditional_access::ConditionalAccessPolicy;
use keyward_webauthn::graph::Fido2Method;
use keyward_webauthn::policy::{Fido2Policy, TapPolicy};
use serde::{Deserialize, Serialize};

use crate::keys::SimKeys;
use crate::seed::{IdEncoding, Seed, SeedApp, SeedGroup, SeedUser};

/// A registered FIDO2 method with what the emulator keeps beyond the Graph entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredFido2Method {
    /// The Graph entity, as returned by list and get.
    pub method: Fido2Method,
    /// The credential id, raw bytes as base64url.
    pub credential_id: String,
    /// The credential public key (COSE), base64url, for a later sign-in emulation.
    pub public_key_cose: String,
    /// Transports reported at registration.
    #[serde(default)]
    pub transports: Vec<String>,
    /// The signature counter last seen (registration or sign-in); a sign-in must raise it
    /// unless the authenticator keeps no counter (both zero).
    #[serde(default)]
    pub sign_count: u32,
}

/// A Temporary Access Pass as kept by the emulator (the pass itself is never kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredTap {
    /// Method id.
    pub id: String,
    /// Creation time (unix seconds).
    pub created: i64,
    /// Start time (unix seconds).
    pub start: i64,
    /// Lifetime in minutes.
    pub lifetime_in_minutes: u32,
    /// One-time use.
    pub is_usable_once: bool,
    /// SHA-256 of the method id and the pass, hex, so a sign-in can check the pass without
    /// the emulator keeping it (absent in state files from before TAP sign-in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_sha256: Option<String>,
    /// A one-time pass was used to sign in.
    #[serde(default)]
    pub used: bool,
}

/// An authorization code handed out by the sign-in page, waiting for redemption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingCode {
    /// The client that asked.
    pub client_id: String,
    /// The redirect URI the code was sent to (must match on redemption).
    pub redirect_uri: String,
    /// The user who signed in.
    pub user_id: String,
    /// PKCE challenge (S256), if any.
    pub code_challenge: Option<String>,
    /// The nonce to put in the ID token.
    pub nonce: Option<String>,
    /// Requested scopes.
    pub scope: String,
    /// Expiry (unix seconds).
    pub expires: i64,
}

/// Everything that can change while the emulator runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantState {
    /// Tenant GUID.
    pub tenant_id: String,
    /// Tenant domain.
    pub tenant_domain: String,
    /// App registrations.
    pub apps: Vec<SeedApp>,
    /// Users, in creation order (the order of list pages).
    pub users: Vec<SeedUser>,
    /// Groups.
    pub groups: Vec<SeedGroup>,
    /// FIDO2 method policy.
    pub fido2_policy: Fido2Policy,
    /// TAP policy.
    pub tap_policy: TapPolicy,
    /// Extra attestation roots from the seed.
    pub attestation_roots_pem: Vec<String>,
    /// Extra AAGUID model names from the seed.
    pub aaguid_models: BTreeMap<String, String>,
    /// excludeCredentials id encoding.
    pub exclude_credential_encoding: IdEncoding,
    /// FIDO2 methods by user id (lowercase).
    pub fido2_methods: BTreeMap<String, Vec<StoredFido2Method>>,
    /// TAPs by user id (lowercase); at most one per user.
    pub taps: BTreeMap<String, StoredTap>,
    /// Client-assertion `jti`s already seen, with their expiry (replay protection).
    pub seen_assertion_ids: BTreeMap<String, i64>,
    /// Registration challenges already used (single-use, the stricter reading).
    pub used_challenges: BTreeSet<String>,
    /// Authorization codes awaiting redemption.
    pub pending_codes: BTreeMap<String, PendingCode>,
    /// Sign-in challenges already answered (single use), with their expiry.
    #[serde(default)]
    pub used_sign_in_challenges: BTreeMap<String, i64>,
    /// Conditional Access policies (Graph v1.0 shape).
    #[serde(default)]
    pub conditional_access_policies: Vec<ConditionalAccessPolicy>,
    /// The emulator's own keys, kept so tokens and challenges survive a restart.
    pub keys: SimKeys,
}

impl TenantState {
    /// A fresh tenant from a validated seed.
    pub fn from_seed(seed: Seed) -> Result<Self, String> {
        seed.validate()?;
        Ok(Self {
            tenant_id: seed.tenant_id,
            tenant_domain: seed.tenant_domain,
            apps: seed.apps,
            users: seed.users,
            groups: seed.groups,
            fido2_policy: seed.fido2_policy,
            tap_policy: seed.tap_policy,
            attestation_roots_pem: seed.attestation_roots_pem,
            aaguid_models: seed.aaguid_models,
            exclude_credential_encoding: seed.exclude_credential_encoding,
            fido2_methods: BTreeMap::new(),
            taps: BTreeMap::new(),
            seen_assertion_ids: BTreeMap::new(),
            used_challenges: BTreeSet::new(),
            pending_codes: BTreeMap::new(),
            used_sign_in_challenges: BTreeMap::new(),
            conditional_access_policies: seed.conditional_access_policies,
            keys: SimKeys::generate(),
        })
    }

    /// Whether `name` (GUID or domain, any case) names this tenant.
    pub fn is_tenant(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case(&self.tenant_id) || name.eq_ignore_ascii_case(&self.tenant_domain)
    }

    /// Finds a user by object id or UPN (case-insensitive), as Graph's `/users/{id|upn}`.
    pub fn find_user(&self, id_or_upn: &str) -> Option<&SeedUser> {
        self.users.iter().find(|u| {
            u.id.eq_ignore_ascii_case(id_or_upn) || u.user_principal_name.eq_ignore_ascii_case(id_or_upn)
        })
    }

    /// Finds an app registration by client id.
    pub fn find_app(&self, client_id: &str) -> Option<&SeedApp> {
        self.apps.iter().find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    }

    /// The FIDO2 methods of a user (by object id).
    pub fn methods_of(&self, user_id: &str) -> &[StoredFido2Method] {
        self.fido2_methods.get(&user_id.to_ascii_lowercase()).map(Vec::as_slice).unwrap_or_default()
    }

    /// Loads a state file written by [`TenantState::save`].
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read state file {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("state file {} is not valid: {e}", path.display()))
    }

    /// Writes the state atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        let tmp: PathBuf = path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| format!("cannot replace {}: {e}", path.display()))
    }
}

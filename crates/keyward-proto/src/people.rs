//! `/api/v1/people`: people, their Entra link, sync, and Temporary Access Passes.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::inventory::{KeyView, PasskeyView};

/// A person as the API shows them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PersonView {
    /// Keyward's id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// User principal name.
    pub upn: String,
    /// Entra object id, when linked.
    pub entra_object_id: Option<String>,
    /// `object-id` or `upn`, when linked.
    pub link_method: Option<String>,
    /// Whether the Entra account is enabled.
    pub enabled: bool,
    /// Whether the sync found the account deleted in Entra.
    pub deleted_in_entra: bool,
    /// Where the record came from (`entra-sync`, `manual`, `import`).
    pub source: String,
    /// Groups used for enrollment policy.
    pub groups: Vec<String>,
}

/// A person with their keys and passkeys.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PersonDetail {
    /// The person.
    pub person: PersonView,
    /// Security keys holding their passkeys.
    pub keys: Vec<KeyView>,
    /// Their passkeys, managed and discovered.
    pub passkeys: Vec<PasskeyView>,
}

/// Query of the people list, in UPN order.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
pub struct PeopleQuery {
    /// Only people whose UPN or display name contains this text (case-insensitive).
    pub search: Option<String>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// Page size (1–1000, default 100).
    pub limit: Option<u32>,
}

/// How to link a person: exactly one of the two.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct LinkRequest {
    /// The Entra object id (a GUID).
    pub object_id: Option<String>,
    /// A UPN to look up in Entra.
    pub upn: Option<String>,
    /// Link to an account whose UPN is not the person's own (admin only; audited).
    #[serde(default)]
    pub allow_other_upn: bool,
    /// Relink a person who holds passkeys or open issuances under another account: revoke
    /// and cancel them first (admin only).
    #[serde(default)]
    pub revoke_existing: bool,
}

/// What to sync.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct SyncRequest {
    /// Only the members of this Entra group (display name); all users when absent.
    pub group: Option<String>,
}

/// What a sync did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct SyncReport {
    /// Users read from Entra.
    pub seen: usize,
    /// People created.
    pub created: usize,
    /// People whose details changed.
    pub updated: usize,
    /// Linked people not found in Entra any more.
    pub deleted: usize,
    /// People whose account is disabled.
    pub disabled: usize,
    /// Passkeys revoked because their owner left.
    pub revoked: usize,
}

/// Why passkeys are revoked.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct RevokeRequest {
    /// Recorded in the audit trail.
    pub reason: Option<String>,
}

/// How many passkeys were revoked.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct RevokedCount {
    /// Count.
    pub revoked: usize,
}

/// A Temporary Access Pass request.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct TapRequest {
    /// Lifetime in minutes, 10 to 43200 (within the tenant's TAP policy).
    #[schema(minimum = 10, maximum = 43200)]
    pub lifetime_minutes: Option<u32>,
    /// Usable once.
    pub once: Option<bool>,
}

/// A Temporary Access Pass, shown once.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct TapView {
    /// The pass. It is not stored by Keyward and cannot be shown again.
    pub pass: String,
    /// Lifetime in minutes.
    pub lifetime_minutes: u32,
    /// Usable once.
    pub once: bool,
    /// When it starts.
    pub start: String,
}

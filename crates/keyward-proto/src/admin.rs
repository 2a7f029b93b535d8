//! Administration: the connector, enrollment policies, API tokens.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The result of "Test connection".
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ConnectionTestView {
    /// Everything works.
    pub ok: bool,
    /// One line per finding, with the fix.
    pub lines: Vec<String>,
    /// Application permissions granted in the token.
    pub granted_roles: Vec<String>,
    /// Permissions Keyward needs that are missing.
    pub missing: Vec<String>,
}

/// A certificate to validate; the stored one when both are absent.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct CertificateCheck {
    /// Certificate, PEM.
    pub certificate_pem: Option<String>,
    /// Private key, PEM.
    pub private_key_pem: Option<String>,
}

/// An enrollment policy.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PolicyView {
    /// Keyward's id.
    pub id: String,
    /// The group it applies to.
    pub group: String,
    /// `disabled`, `optional` or `mandatory`.
    pub mode: String,
    /// Minimum PIN length.
    pub pin_min_length: u8,
    /// Force a PIN change on first use.
    pub pin_force_change: bool,
    /// Allowed model AAGUIDs; empty: any.
    pub allowed_aaguids: Vec<String>,
    /// Maximum registered passkeys per person.
    pub max_passkeys_per_person: Option<u32>,
}

/// A group's enrollment policy.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct PolicyRequest {
    /// `disabled`, `optional` or `mandatory`.
    pub mode: String,
    /// Minimum PIN length (4–63; default 4).
    pub pin_min_length: Option<u8>,
    /// Force a PIN change on first use.
    #[serde(default)]
    pub pin_force_change: bool,
    /// Allowed model AAGUIDs; empty: any.
    #[serde(default)]
    pub allowed_aaguids: Vec<String>,
    /// Maximum registered passkeys per person.
    pub max_passkeys_per_person: Option<u32>,
}

/// An API token's record.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct TokenView {
    /// Unique name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Created.
    pub created_at: String,
    /// Last used, to within a minute; absent when never used.
    #[serde(default)]
    pub last_used_at: Option<String>,
    /// Revoked.
    pub revoked: bool,
    /// When it stops working; absent for tokens made before tokens expired.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// A new token.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct NewToken {
    /// Unique name (audit events show it).
    pub name: String,
    /// `admin`, `operator`, `helpdesk` or `auditor`.
    pub role: String,
    /// Days until the token stops working (1–3650); the server's default when absent.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// A token, shown once.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct CreatedToken {
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// The token. Keyward keeps only its hash: it cannot be shown again.
    pub token: String,
    /// When it stops working.
    #[serde(default)]
    pub expires_at: Option<String>,
}

//! `/api/v1/keys` and `/api/v1/passkeys`: the inventory of security keys and passkeys.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A security key in the inventory.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyView {
    /// Keyward's id.
    pub id: String,
    /// Serial number, when the key exposes one.
    pub serial: Option<String>,
    /// Model AAGUID.
    pub aaguid: String,
    /// Model name.
    pub model: Option<String>,
    /// Firmware version.
    pub firmware: Option<String>,
    /// `available`, `issued`, `suspended`, `lost`, `disposed`.
    pub state: String,
}

/// A passkey.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PasskeyView {
    /// Keyward's id.
    pub id: String,
    /// The Entra method id, once registered.
    pub entra_method_id: Option<String>,
    /// Credential id (base64url).
    pub credential_id: String,
    /// The person it belongs to.
    pub person_id: String,
    /// The key it lives on (none for software passkeys).
    pub security_key_id: Option<String>,
    /// Model AAGUID.
    pub aaguid: String,
    /// Model name.
    pub model: Option<String>,
    /// Display name in Entra.
    pub display_name: String,
    /// `pending`, `registered`, `revoked`.
    pub state: String,
    /// `managed` (issued by Keyward) or `discovered`.
    pub origin: String,
    /// When it was created.
    pub created_at: String,
}

/// Filter of the key list, in serial order.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
pub struct KeyQuery {
    /// Only keys in this state.
    pub state: Option<String>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// Page size (1–1000, default 100).
    pub limit: Option<u32>,
}

/// A key to add to the inventory.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct NewKey {
    /// Serial number.
    pub serial: Option<String>,
    /// Model AAGUID.
    pub aaguid: String,
    /// Model name (looked up in FIDO MDS when absent).
    pub model: Option<String>,
    /// Firmware version.
    pub firmware: Option<String>,
}

/// A lifecycle change.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct KeyStateChange {
    /// `available`, `issued`, `suspended`, `lost` or `disposed`.
    pub state: String,
}

/// The key after the change, and how many passkeys were revoked with it.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct KeyStateResult {
    /// The key.
    pub key: KeyView,
    /// Passkeys revoked (a lost, suspended or disposed key keeps none).
    pub revoked: usize,
}

/// Filter of the passkey list, oldest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
pub struct PasskeyQuery {
    /// Only this person's (id or UPN).
    pub person: Option<String>,
    /// `managed` or `discovered`.
    pub origin: Option<String>,
    /// `pending`, `registered` or `revoked`.
    pub state: Option<String>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// Page size (1–1000, default 100).
    pub limit: Option<u32>,
}

/// Whom to reconcile.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct ReconcileRequest {
    /// One person (id or UPN); everyone linked when absent.
    pub person: Option<String>,
}

/// What reconcile did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ReconcileReport {
    /// People compared.
    pub people: usize,
    /// Pending passkeys found registered in Entra.
    pub finished: usize,
    /// Pending passkeys that never reached Entra.
    pub abandoned: usize,
    /// Registered passkeys deleted in Entra, now revoked.
    pub revoked: usize,
    /// Methods in Entra that Keyward did not issue, now recorded.
    pub discovered: usize,
    /// People whose methods could not be read (with the reason).
    pub errors: Vec<String>,
}

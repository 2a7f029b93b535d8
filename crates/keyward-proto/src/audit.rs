//! `/api/v1/audit`: the audit trail and its chain check.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// One audit event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditView {
    /// Position in the chain.
    pub seq: i64,
    /// Who did it.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub subject: String,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    /// Details (JSON text).
    pub detail: String,
    /// When.
    pub at: String,
    /// Hash of the previous event.
    pub prev_hash: String,
    /// This event's hash.
    pub hash: String,
}

/// Filter of the audit list, in chain order.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Only events about this subject (e.g. `person:…`, `passkey:…`).
    pub subject: Option<String>,
    /// Only events after this sequence number.
    pub after_seq: Option<i64>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// Page size (1–1000, default 100).
    pub limit: Option<u32>,
}

/// The result of verifying the chain.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ChainReport {
    /// The chain verifies.
    pub ok: bool,
    /// Events verified (up to the break).
    pub events: u64,
    /// Where and why the chain breaks.
    pub problem: Option<String>,
}

/// A signed head of the audit chain (`keyward audit anchor`), to keep outside the database and
/// give back to `POST /api/v1/audit/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditAnchor {
    /// `keyward-audit-anchor v1`.
    pub format: String,
    /// The head event's sequence number (0 for an empty chain).
    pub seq: i64,
    /// The head event's hash.
    pub hash: String,
    /// When the anchor was made (RFC 3339).
    pub at: String,
    /// The id of the server secret key that signed it.
    pub key_id: String,
    /// HMAC-SHA256 (hex) under the anchor subkey of that key.
    pub mac: String,
}

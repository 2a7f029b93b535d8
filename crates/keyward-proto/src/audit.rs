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

//! The body of every error response.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The JSON body of every error response: `{"error": {"code": "…", "message": "…"}}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Code and message of an error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable machine-readable code (`not_found`, `refused`, `conflict`, `entra_error`, …).
    pub code: String,
    /// What went wrong and what to do next.
    pub message: String,
}

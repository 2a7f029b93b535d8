//! What a service operation can fail with, in the service's own terms.
//!
//! The service knows nothing of HTTP: the API maps each variant to a status code, a web view to
//! a message in place, the scheduler to a log line. Messages say what to do next in words any of
//! those callers can show; they never carry a secret (errors from lower layers are built from
//! their `Display`, which those layers keep free of secrets) and never name an API path or a CLI
//! command, which only the caller knows.

use keyward_core::Permission;
use keyward_store::StoreError;

/// A failed service operation.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The caller does not hold the permission.
    #[error("{caller} may not {permission}; ask an administrator for a token with a role that may")]
    Forbidden {
        /// Who asked (`role auditor`, `system:scheduler`).
        caller: String,
        /// What was refused.
        permission: Permission,
    },
    /// The person is protected (a directory administrator, say) and the caller may not act
    /// for them.
    #[error("{0}")]
    Protected(String),
    /// The thing named does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// No person has this UPN in Keyward (yet).
    #[error("person with UPN {0} not found in Keyward; sync people from Entra first, or check the spelling")]
    UnknownPerson(String),
    /// A value in the request is not valid (what and why).
    #[error("{0}")]
    Invalid(String),
    /// A rule (tenant policy, enrollment policy, key state) refuses the request.
    #[error("{0}")]
    Refused(String),
    /// The request conflicts with the current state (a transition not allowed now, a duplicate).
    #[error("{0}")]
    Conflict(String),
    /// Entra answered with an error or could not be reached.
    #[error("Entra ID: {0}")]
    Entra(String),
    /// The Entra connector is not configured (or is disabled); an administrator sets it up.
    #[error("{0}")]
    NotConfigured(String),
    /// Keyward is not ready for this (the database is busy or away).
    #[error("{0}")]
    Unavailable(String),
    /// The database failed in a way retrying will not mend (corrupt data, a broken chain).
    #[error("{0}")]
    Store(StoreError),
    /// A fault on our side.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// A fault on our side, from anything displayable.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }

    /// A failed Graph call about a person: Entra refusing the values sent (400) is the caller's
    /// input at fault, and a user Entra does not have (404) means the person's link is stale —
    /// both the caller can act on, with Entra's reason; anything else is Entra's failure.
    pub fn from_graph(e: &keyward_entra::GraphError) -> Self {
        match e.status() {
            Some(400) => Self::Invalid(format!("Entra ID refused the request: {e}")),
            Some(404) => Self::Conflict(format!(
                "Entra ID has no such user, so the person's link is out of date; relink the person: {e}"
            )),
            _ => Self::Entra(e.to_string()),
        }
    }
}

impl From<StoreError> for ServiceError {
    /// The store's refusals are the service's; the rest stays a store failure.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(what),
            e @ (StoreError::Duplicate(_)
            | StoreError::StaleIssuance { .. }
            | StoreError::Key(_)
            | StoreError::Passkey(_)
            | StoreError::Issuance(_)
            | StoreError::LeaseLost(_)) => Self::Conflict(e.to_string()),
            e @ (StoreError::Busy(_) | StoreError::Database(_) | StoreError::Sqlite(_)) => {
                Self::Unavailable(e.to_string())
            }
            e => Self::Store(e),
        }
    }
}

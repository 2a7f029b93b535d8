//! Passkeys (FIDO2 credentials registered in Entra) that Keyward issued or found.
//!
//! A managed passkey is recorded as `pending` before the registration POST to Graph (so a crash
//! leaves a record the reconcile job can finish), becomes `registered` once Entra returns a method
//! id, and `revoked` when deleted. Passkeys found in Entra that Keyward did not issue are recorded
//! as `discovered`, already registered.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ids::{PasskeyId, PersonId, SecurityKeyId};

named_enum! {
    /// Lifecycle state of a passkey.
    pub enum PasskeyState: "passkey state" {
        /// Recorded before the registration call; not yet confirmed by Entra.
        Pending = "pending",
        /// Registered in Entra (has a method id).
        Registered = "registered",
        /// Deleted in Entra or abandoned before registration.
        Revoked = "revoked",
    }
}

named_enum! {
    /// Whether Keyward issued the passkey or found it in Entra.
    pub enum PasskeyOrigin: "passkey origin" {
        /// Issued through Keyward.
        Managed = "managed",
        /// Found in Entra by reconcile; not issued by Keyward.
        Discovered = "discovered",
    }
}

/// Errors of the passkey lifecycle rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasskeyError {
    /// The requested state change is not allowed.
    #[error("a {from} passkey cannot become {to}; passkeys go pending → registered → revoked")]
    IllegalTransition {
        /// Current state.
        from: PasskeyState,
        /// Requested state.
        to: PasskeyState,
    },
}

impl PasskeyState {
    /// Checks a move from `self` to `to`: pending → registered | revoked, registered → revoked.
    pub fn transition(self, to: PasskeyState) -> Result<PasskeyState, PasskeyError> {
        use PasskeyState::*;
        match (self, to) {
            (Pending, Registered) | (Pending, Revoked) | (Registered, Revoked) => Ok(to),
            _ => Err(PasskeyError::IllegalTransition { from: self, to }),
        }
    }
}

/// A passkey registered (or being registered) in Entra for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passkey {
    /// Keyward's id.
    pub id: PasskeyId,
    /// Entra's fido2AuthenticationMethod id, once registered.
    pub entra_method_id: Option<String>,
    /// The WebAuthn credential id, base64url without padding.
    pub credential_id: String,
    /// Whose passkey it is.
    pub person_id: PersonId,
    /// The physical key it lives on; `None` for software passkeys or when unknown.
    pub security_key_id: Option<SecurityKeyId>,
    /// Authenticator model id.
    pub aaguid: Uuid,
    /// Model name as Entra reports it.
    pub model: Option<String>,
    /// Display name in Entra.
    pub display_name: String,
    /// When Keyward recorded it (or Entra created it, for discovered passkeys).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Lifecycle state.
    pub state: PasskeyState,
    /// Managed or discovered.
    pub origin: PasskeyOrigin,
}

impl Passkey {
    /// Moves the passkey to `to` if the lifecycle allows it.
    pub fn transition(&mut self, to: PasskeyState) -> Result<(), PasskeyError> {
        self.state = self.state.transition(to)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PasskeyState::*;

    #[test]
    fn transition_table() {
        let allowed = [(Pending, Registered), (Pending, Revoked), (Registered, Revoked)];
        for &from in PasskeyState::ALL {
            for &to in PasskeyState::ALL {
                assert_eq!(from.transition(to).is_ok(), allowed.contains(&(from, to)), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn a_revoked_passkey_stays_revoked() {
        let err = Revoked.transition(Registered).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a revoked passkey cannot become registered; passkeys go pending → registered → revoked"
        );
    }
}

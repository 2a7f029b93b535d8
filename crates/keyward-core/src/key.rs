//! Physical security keys in the inventory and their lifecycle.
//!
//! States: `available → issued → suspended | lost | disposed`. A suspended key can be reinstated
//! (back to issued) or returned to stock; a key that was lost or disposed of is never issued again —
//! a found "lost" key may hold an attacker's credentials, so it can only be disposed of.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::SecurityKeyId;

named_enum! {
    /// Lifecycle state of a physical security key.
    pub enum KeyState: "key state" {
        /// In stock, may be issued.
        Available = "available",
        /// Handed to a person and carrying their passkey(s).
        Issued = "issued",
        /// Temporarily blocked (e.g. left at home); may be reinstated.
        Suspended = "suspended",
        /// Reported lost or stolen; never issued again.
        Lost = "lost",
        /// Destroyed or retired; never issued again.
        Disposed = "disposed",
    }
}

/// Errors of the key lifecycle rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The requested state change is not allowed from the current state.
    #[error("a {from} key cannot become {to}; allowed from {from}: {allowed}")]
    IllegalTransition {
        /// Current state.
        from: KeyState,
        /// Requested state.
        to: KeyState,
        /// The allowed next states, comma separated (or "none").
        allowed: String,
    },
    /// The key cannot be used for a new issuance.
    #[error("this key is {0} and cannot be issued; use a key that is available in the inventory")]
    NotIssuable(KeyState),
}

impl KeyState {
    /// The states this state may move to.
    pub fn next_states(self) -> &'static [KeyState] {
        use KeyState::*;
        match self {
            Available => &[Issued, Lost, Disposed],
            Issued => &[Available, Suspended, Lost, Disposed],
            Suspended => &[Issued, Available, Lost, Disposed],
            Lost => &[Disposed],
            Disposed => &[],
        }
    }

    /// Checks a move from `self` to `to`, returning `to` when it is allowed.
    pub fn transition(self, to: KeyState) -> Result<KeyState, KeyError> {
        if self.next_states().contains(&to) {
            Ok(to)
        } else {
            Err(KeyError::IllegalTransition { from: self, to, allowed: names(self.next_states()) })
        }
    }

    /// Whether the key is gone for good (lost or disposed).
    pub const fn is_retired(self) -> bool {
        matches!(self, KeyState::Lost | KeyState::Disposed)
    }
}

fn names(states: &[KeyState]) -> String {
    if states.is_empty() {
        return "none".into();
    }
    states.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// A physical security key known to the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityKey {
    /// Keyward's id.
    pub id: SecurityKeyId,
    /// Serial number, when the key exposes one.
    pub serial: Option<String>,
    /// Authenticator model id (AAGUID).
    pub aaguid: Uuid,
    /// Model name (from FIDO MDS or the vendor).
    pub model: Option<String>,
    /// Firmware version, when known.
    pub firmware: Option<String>,
    /// Lifecycle state.
    pub state: KeyState,
}

impl SecurityKey {
    /// A new key in stock.
    pub fn new(serial: Option<String>, aaguid: Uuid) -> Self {
        Self {
            id: SecurityKeyId::new(),
            serial,
            aaguid,
            model: None,
            firmware: None,
            state: KeyState::Available,
        }
    }

    /// Moves the key to `to` if the lifecycle allows it.
    pub fn transition(&mut self, to: KeyState) -> Result<(), KeyError> {
        self.state = self.state.transition(to)?;
        Ok(())
    }

    /// Whether a new passkey may be put on this key: it must be available or already issued
    /// (a second passkey for the same holder); suspended, lost and disposed keys are refused.
    pub fn ensure_issuable(&self) -> Result<(), KeyError> {
        match self.state {
            KeyState::Available | KeyState::Issued => Ok(()),
            s => Err(KeyError::NotIssuable(s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use KeyState::*;

    /// Every (from, to) pair and whether it is allowed.
    #[test]
    fn transition_table() {
        let allowed = [
            (Available, Issued),
            (Available, Lost),
            (Available, Disposed),
            (Issued, Available),
            (Issued, Suspended),
            (Issued, Lost),
            (Issued, Disposed),
            (Suspended, Issued),
            (Suspended, Available),
            (Suspended, Lost),
            (Suspended, Disposed),
            (Lost, Disposed),
        ];
        for &from in KeyState::ALL {
            for &to in KeyState::ALL {
                let expect = allowed.contains(&(from, to));
                assert_eq!(from.transition(to).is_ok(), expect, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn lost_and_disposed_keys_are_never_issued_again() {
        for retired in [Lost, Disposed] {
            let mut k = SecurityKey::new(Some("S1".into()), Uuid::nil());
            k.state = retired;
            assert_eq!(k.ensure_issuable(), Err(KeyError::NotIssuable(retired)));
            assert!(k.transition(Issued).is_err());
            assert!(k.transition(Available).is_err());
            assert_eq!(k.state, retired);
        }
    }

    #[test]
    fn illegal_move_names_the_allowed_ones() {
        let err = Lost.transition(Issued).unwrap_err();
        assert_eq!(err.to_string(), "a lost key cannot become issued; allowed from lost: disposed");
        let err = Disposed.transition(Available).unwrap_err();
        assert!(err.to_string().ends_with("allowed from disposed: none"));
    }
}

//! What went wrong in a provisioning, and what was undone.
//!
//! A provisioning touches three places — the Keyward server, Entra (through it) and the key —
//! so an error alone is not enough for the operator: they must know whether the issuance was
//! marked failed on the server and whether the credential made on the key was removed again,
//! to decide between "just run it again" and "clean up by hand". Every error says both.

use std::fmt;

/// Which step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Creating the issuance on the server.
    CreateIssuance,
    /// Fetching the creation options.
    Options,
    /// Resetting the key.
    Reset,
    /// Setting the PIN.
    SetPin,
    /// Raising the key's minimum PIN length.
    MinPinLength,
    /// Getting a PIN token.
    PinToken,
    /// makeCredential.
    MakeCredential,
    /// Registering the passkey in Entra through the server.
    Complete,
    /// The getAssertion self-test.
    SelfTest,
    /// Signing in to the tenant with the new passkey.
    SignIn,
    /// Forcing a PIN change.
    ForcePinChange,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CreateIssuance => "creating the issuance",
            Self::Options => "fetching the registration options",
            Self::Reset => "resetting the key",
            Self::SetPin => "setting the PIN",
            Self::MinPinLength => "setting the key's minimum PIN length",
            Self::PinToken => "getting a PIN token from the key",
            Self::MakeCredential => "making the passkey on the key",
            Self::Complete => "registering the passkey in Entra",
            Self::SelfTest => "the sign-in self-test with the new passkey",
            Self::SignIn => "signing in to the tenant with the new passkey",
            Self::ForcePinChange => "forcing a PIN change on the key",
        })
    }
}

/// What happened to the issuance on the server after a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuanceCleanup {
    /// No issuance had been created.
    NoneCreated,
    /// Marked failed (by us or already by the server).
    MarkedFailed {
        /// The issuance id.
        id: String,
    },
    /// Left as it is because Entra may have registered the passkey (outcome unknown).
    LeftForReconcile {
        /// The issuance id.
        id: String,
    },
    /// Could not be marked failed.
    NotMarked {
        /// The issuance id.
        id: String,
        /// Why.
        reason: String,
    },
}

/// What happened to the credential on the key after a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCleanup {
    /// No credential had been made.
    NoneMade,
    /// The credential was deleted with credentialManagement.
    Removed,
    /// Kept on purpose: Entra may hold it (outcome unknown), so removing it could orphan a
    /// registered passkey.
    Kept {
        /// Its id, base64url.
        credential_id: String,
    },
    /// The credential is still on the key.
    NotRemoved {
        /// Its id, base64url, for `keyward device credentials --delete`.
        credential_id: String,
        /// Why.
        reason: String,
    },
}

/// What happened to a passkey Entra had already registered (only a failure after the
/// registration, i.e. the self-test or the forced PIN change, leaves one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasskeyCleanup {
    /// Entra had not registered it.
    NoneRegistered,
    /// Revoked through the server (removed from Entra).
    Revoked,
    /// Still registered.
    NotRevoked {
        /// Keyward's passkey id.
        id: String,
        /// Why.
        reason: String,
    },
}

/// A failed provisioning: the step, the cause, what to do, and what was cleaned up.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// A step failed; see `issuance` and `key` for what was undone.
    #[error("{step} failed: {cause}. {hint}{issuance}{key}{passkey}")]
    Failed {
        /// The step.
        step: Step,
        /// The cause, without secrets.
        cause: String,
        /// What to do next.
        hint: String,
        /// The issuance's fate.
        issuance: IssuanceCleanup,
        /// The credential's fate.
        key: KeyCleanup,
        /// The fate of a passkey already registered in Entra.
        passkey: PasskeyCleanup,
    },
}

impl ProvisionError {
    /// Whether the issuance ended up marked failed on the server.
    pub fn issuance_marked_failed(&self) -> bool {
        let Self::Failed { issuance, .. } = self;
        matches!(issuance, IssuanceCleanup::MarkedFailed { .. })
    }

    /// Whether a credential made on the key was removed again (`None`: none had been made).
    pub fn credential_removed(&self) -> Option<bool> {
        let Self::Failed { key, .. } = self;
        match key {
            KeyCleanup::NoneMade => None,
            KeyCleanup::Removed => Some(true),
            KeyCleanup::NotRemoved { .. } | KeyCleanup::Kept { .. } => Some(false),
        }
    }

    /// The step that failed.
    pub fn step(&self) -> Step {
        let Self::Failed { step, .. } = self;
        *step
    }
}

impl fmt::Display for IssuanceCleanup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoneCreated => f.write_str(" No issuance was created."),
            Self::MarkedFailed { id } => write!(f, " The issuance {id} was marked failed."),
            Self::LeftForReconcile { id } => write!(
                f,
                " The issuance {id} stays open: run `keyward passkeys reconcile` to learn whether Entra \
                 registered the passkey."
            ),
            Self::NotMarked { id, reason } => write!(
                f,
                " The issuance {id} could NOT be marked failed ({reason}); cancel it with \
                 `POST /api/v1/issuances/{id}/cancel` once the server is reachable."
            ),
        }
    }
}

impl fmt::Display for KeyCleanup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoneMade => f.write_str(" No credential was made on the key."),
            Self::Removed => f.write_str(" The credential made on the key was removed from it."),
            Self::Kept { credential_id } => write!(
                f,
                " The credential stays on the key because Entra may hold it; if reconcile does not show \
                 the passkey as registered, remove it with `keyward device credentials --delete {credential_id}`."
            ),
            Self::NotRemoved { credential_id, reason } => write!(
                f,
                " The credential made on the key could NOT be removed ({reason}); remove it with \
                 `keyward device credentials --delete {credential_id}`."
            ),
        }
    }
}

impl fmt::Display for PasskeyCleanup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoneRegistered => Ok(()),
            Self::Revoked => f.write_str(" The passkey already registered in Entra was revoked."),
            Self::NotRevoked { id, reason } => write!(
                f,
                " The passkey already registered in Entra could NOT be revoked ({reason}); revoke it with \
                 `keyward passkeys revoke {id}`."
            ),
        }
    }
}

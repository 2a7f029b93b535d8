//! Client errors, each worded as the operator's next step.
//!
//! PIN_INVALID is enriched with the retries left (the client asks the key right away), because
//! "wrong PIN, 2 tries left" is what stops an operator from locking a key by accident. PINs
//! never appear in any message.

use crate::hid::HidError;
use crate::status::CtapStatus;

/// Anything that can go wrong talking to a security key.
#[derive(Debug, thiserror::Error)]
pub enum CtapError {
    /// Framing, channel or transport failure.
    #[error(transparent)]
    Hid(#[from] HidError),
    /// Wrong PIN, with the retries the key still allows.
    #[error("wrong PIN: {retries_left} tries left before the key locks for good; check the PIN and retry")]
    PinInvalid {
        /// Retries left on the key.
        retries_left: u8,
    },
    /// Any other CTAP status.
    #[error("{} (CTAP status {:#04x})", .0.operator_message(), .0.code())]
    Status(CtapStatus),
    /// The answer could not be decoded.
    #[error("the security key sent an answer Keyward cannot read ({0}); re-insert it and retry")]
    Malformed(String),
    /// The key supports neither PIN protocol 1 nor 2.
    #[error("the security key supports no PIN protocol Keyward knows (1 or 2); use another key model")]
    NoPinProtocol,
    /// setPIN on a key that already has one (NOT_ALLOWED on setPIN).
    #[error("the security key already has a PIN; use change-pin with the current PIN instead")]
    PinAlreadySet,
    /// reset outside the power-up window (NOT_ALLOWED on reset).
    #[error(
        "the security key only allows a reset within seconds of being plugged in: remove and re-insert \
         it, then run the reset again right away and touch the key (this erases all its passkeys)"
    )]
    ResetWindow,
    /// Selection was asked for with no key to choose from.
    #[error("no security key is plugged in; insert one and retry")]
    NoKey,
    /// The PIN is too short or too long before it is even sent.
    #[error("the PIN must have at least {min} characters and at most 63 bytes; choose another PIN")]
    PinLength {
        /// The key's minimum length.
        min: u8,
    },
}

impl CtapError {
    /// The CTAP status behind this error, if the key sent one.
    pub fn status(&self) -> Option<CtapStatus> {
        match self {
            Self::PinInvalid { .. } => Some(CtapStatus::PinInvalid),
            Self::PinAlreadySet | Self::ResetWindow => Some(CtapStatus::NotAllowed),
            Self::Status(s) => Some(*s),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every status an operator meets while provisioning, and the words that tell them what to
    /// do next: (error, phrases that must appear).
    #[test]
    fn operator_messages_say_what_to_do() {
        let rows: Vec<(CtapError, &[&str])> = vec![
            (CtapError::PinInvalid { retries_left: 2 }, &["wrong PIN", "2 tries left", "retry"]),
            (CtapError::Status(CtapStatus::PinBlocked), &["blocked", "reset", "erases"]),
            (CtapError::Status(CtapStatus::PinAuthBlocked), &["remove and re-insert the key"]),
            (CtapError::Status(CtapStatus::PinPolicyViolation), &["choose a longer"]),
            (CtapError::Status(CtapStatus::UpRequired), &["touch the key"]),
            (CtapError::Status(CtapStatus::UserActionTimeout), &["touch the key"]),
            (CtapError::Status(CtapStatus::OperationDenied), &["touch the key"]),
            (CtapError::ResetWindow, &["re-insert", "right away", "erases"]),
            (CtapError::Status(CtapStatus::KeyStoreFull), &["remove unused passkeys", "reset"]),
            (CtapError::Status(CtapStatus::NotAllowed), &["does not allow"]),
            (CtapError::PinAlreadySet, &["change-pin"]),
            (CtapError::Status(CtapStatus::CredentialExcluded), &["already holds a passkey", "another key"]),
            (CtapError::Status(CtapStatus::PuatRequired), &["enter the PIN"]),
            (CtapError::Status(CtapStatus::PinNotSet), &["set a PIN first"]),
        ];
        for (err, phrases) in rows {
            let text = err.to_string();
            for p in phrases {
                assert!(text.contains(p), "{err:?}: {text:?} lacks {p:?}");
            }
        }
        assert_eq!(CtapError::ResetWindow.status(), Some(CtapStatus::NotAllowed));
        assert_eq!(CtapError::PinInvalid { retries_left: 1 }.status(), Some(CtapStatus::PinInvalid));
    }
}

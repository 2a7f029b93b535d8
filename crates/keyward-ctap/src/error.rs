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
            Self::Status(s) => Some(*s),
            _ => None,
        }
    }
}

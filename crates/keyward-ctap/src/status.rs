//! CTAP 2.1 status codes and what the operator should do about each.
//!
//! The key answers every CBOR request with one status byte. The codes are few and stable, so
//! they are one enum with the code and the operator's next step kept side by side; unknown
//! codes survive as `Unknown(u8)` so a newer key never crashes the client.

macro_rules! statuses {
    ($( $name:ident = $code:literal => $msg:literal ),* $(,)?) => {
        /// A CTAP2 status byte (CTAP 2.1 §8.2).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum CtapStatus {
            $( #[doc = $msg] $name, )*
            /// A status code this client does not know.
            Unknown(u8),
        }

        impl CtapStatus {
            /// Decodes a status byte.
            pub fn from_code(code: u8) -> Self {
                match code {
                    $( $code => Self::$name, )*
                    c => Self::Unknown(c),
                }
            }

            /// The status byte.
            pub fn code(self) -> u8 {
                match self {
                    $( Self::$name => $code, )*
                    Self::Unknown(c) => c,
                }
            }

            /// What the operator should know or do.
            pub fn operator_message(self) -> &'static str {
                match self {
                    $( Self::$name => $msg, )*
                    Self::Unknown(_) => "the security key returned an unknown error; update Keyward or try another key",
                }
            }
        }
    };
}

statuses! {
    Success = 0x00 => "success",
    InvalidCommand = 0x01 => "the security key does not support this command; it may be too old for FIDO2 provisioning",
    InvalidParameter = 0x02 => "the security key rejected a parameter; this is a Keyward bug, please report it",
    InvalidLength = 0x03 => "the security key rejected the message length; re-insert it and retry",
    InvalidSeq = 0x04 => "USB packets arrived out of order; re-insert the key and retry",
    Timeout = 0x05 => "the security key timed out receiving the message; re-insert it and retry",
    ChannelBusy = 0x06 => "the security key is busy with another program; close other FIDO tools and retry",
    LockRequired = 0x0A => "the security key is locked by another program; close other FIDO tools and retry",
    InvalidChannel = 0x0B => "the USB channel is no longer valid; re-insert the key and retry",
    CborUnexpectedType = 0x11 => "the security key rejected the request encoding; this is a Keyward bug, please report it",
    InvalidCbor = 0x12 => "the security key could not parse the request; this is a Keyward bug, please report it",
    MissingParameter = 0x14 => "the security key expected a parameter that was not sent; this is a Keyward bug, please report it",
    LimitExceeded = 0x15 => "a list sent to the key is longer than it supports; retry with fewer excluded credentials",
    FpDatabaseFull = 0x17 => "the key's fingerprint storage is full; remove a fingerprint and retry",
    LargeBlobStorageFull = 0x18 => "the key's large-blob storage is full",
    CredentialExcluded = 0x19 => "this key already holds a passkey for this account; use another key or revoke the existing passkey first",
    Processing = 0x21 => "the security key is still processing; wait and retry",
    InvalidCredential = 0x22 => "the credential is not valid on this key",
    UserActionPending = 0x23 => "the key is waiting for the user; touch it",
    OperationPending = 0x24 => "the key is busy with another operation; wait and retry",
    NoOperations = 0x25 => "no pending operation on the key",
    UnsupportedAlgorithm = 0x26 => "the key does not support ES256; use a different key model",
    OperationDenied = 0x27 => "the operation was denied on the key (touch refused); retry and touch the key when it blinks",
    KeyStoreFull = 0x28 => "the key has no room for another passkey; remove unused passkeys (credential management) or reset the key",
    UnsupportedOption = 0x2B => "the key does not support a requested option; check the key model against the policy",
    InvalidOption = 0x2C => "the key rejected an option value; this is a Keyward bug, please report it",
    KeepaliveCancel = 0x2D => "the operation was cancelled",
    NoCredentials = 0x2E => "the key holds no matching passkey for this site",
    UserActionTimeout = 0x2F => "nobody touched the key in time; retry and touch the key when it blinks",
    NotAllowed = 0x30 => "the key does not allow this now (for a reset: re-insert the key and reset within a few seconds; for set PIN: a PIN is already set)",
    PinInvalid = 0x31 => "wrong PIN; check the PIN and retry (each wrong try uses up a retry)",
    PinBlocked = 0x32 => "the PIN is blocked after too many wrong tries; the key must be reset, which erases all its passkeys",
    PinAuthInvalid = 0x33 => "the key rejected the PIN authentication; get a new PIN token (re-enter the PIN) and retry",
    PinAuthBlocked = 0x34 => "three wrong PINs in a row: remove and re-insert the key, then retry",
    PinNotSet = 0x35 => "the key has no PIN yet; set a PIN first",
    PuatRequired = 0x36 => "the key requires PIN verification for this; enter the PIN",
    PinPolicyViolation = 0x37 => "the PIN does not meet the key's rules (length or complexity); choose a longer or less trivial PIN",
    RequestTooLarge = 0x39 => "the request is too large for the key; retry with fewer excluded credentials",
    ActionTimeout = 0x3A => "the key timed out; retry",
    UpRequired = 0x3B => "the key needs a touch (user presence); retry and touch the key when it blinks",
    UvBlocked = 0x3C => "built-in user verification is blocked; use the PIN instead",
    IntegrityFailure = 0x3D => "the key reported an integrity failure; stop using this key",
    InvalidSubcommand = 0x3E => "the key does not support this sub-command; it may need a firmware update",
    UvInvalid = 0x3F => "built-in user verification failed; retry",
    UnauthorizedPermission = 0x40 => "the PIN token lacks the permission for this operation; this is a Keyward bug, please report it",
    Other = 0x7F => "the key reported an unspecified error; re-insert it and retry",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in 0..=255u8 {
            assert_eq!(CtapStatus::from_code(code).code(), code);
        }
        assert_eq!(CtapStatus::from_code(0x34), CtapStatus::PinAuthBlocked);
        assert!(CtapStatus::PinAuthBlocked.operator_message().contains("re-insert"));
    }
}

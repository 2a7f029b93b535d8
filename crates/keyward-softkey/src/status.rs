//! The CTAP 2.1 status codes this authenticator returns.
//!
//! Kept separate from the client's enum on purpose: the soft key is an independent
//! implementation of the spec, so a wrong code on one side shows up as a failing test instead
//! of being shared silently.

/// A CTAP2 status code returned by the soft authenticator (CTAP 2.1 §8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    /// The command byte is unknown.
    InvalidCommand = 0x01,
    /// A parameter has the wrong value.
    InvalidParameter = 0x02,
    /// A parameter has the wrong length.
    InvalidLength = 0x03,
    /// A CBOR value has the wrong type.
    CborUnexpectedType = 0x11,
    /// The request is not valid CBOR.
    InvalidCbor = 0x12,
    /// A required parameter is missing.
    MissingParameter = 0x14,
    /// A list is longer than allowed.
    LimitExceeded = 0x15,
    /// The exclude list names a credential on this key.
    CredentialExcluded = 0x19,
    /// No supported algorithm was offered.
    UnsupportedAlgorithm = 0x26,
    /// The user refused presence.
    OperationDenied = 0x27,
    /// No room for another discoverable credential.
    KeyStoreFull = 0x28,
    /// An option is not supported.
    UnsupportedOption = 0x2B,
    /// An option has an invalid value.
    InvalidOption = 0x2C,
    /// The host cancelled.
    KeepaliveCancel = 0x2D,
    /// No credential matches.
    NoCredentials = 0x2E,
    /// Nobody touched the key.
    UserActionTimeout = 0x2F,
    /// Not allowed in the current state.
    NotAllowed = 0x30,
    /// Wrong PIN.
    PinInvalid = 0x31,
    /// PIN retries exhausted.
    PinBlocked = 0x32,
    /// pinUvAuthParam did not verify.
    PinAuthInvalid = 0x33,
    /// Three consecutive wrong PINs; needs a power cycle.
    PinAuthBlocked = 0x34,
    /// No PIN set.
    PinNotSet = 0x35,
    /// A pinUvAuthToken is required.
    PuatRequired = 0x36,
    /// The PIN breaks the length/complexity policy.
    PinPolicyViolation = 0x37,
    /// User presence is required.
    UpRequired = 0x3B,
    /// The sub-command is unknown.
    InvalidSubcommand = 0x3E,
    /// The token lacks a needed permission.
    UnauthorizedPermission = 0x40,
    /// Anything else.
    Other = 0x7F,
}

/// Result of a CTAP command handler.
pub type CtapResult<T> = Result<T, Status>;

//! Keyward's CTAP 2.1 client: talks to FIDO2 security keys to set PINs and create passkeys.
//!
//! Layers, bottom up: [`transport`] moves 64-byte reports (in-memory; [`socket`] for a soft
//! key in another process; [`usb`] for real keys through hidapi), [`hid`] does CTAPHID
//! framing and channels, [`status`] names every CTAP status with an operator message, [`pin`]
//! implements PIN/UV auth protocols 1 and 2, [`client`] runs clientPIN, selection and reset,
//! [`credential`] makeCredential/getAssertion with their extensions, [`select`](mod@select) picks one of
//! several keys by touch, and [`admin`] adds authenticatorConfig and credential management.
//! Everything is synchronous because hidapi is; async callers use `spawn_blocking`.

pub mod admin;
pub mod cbor;
pub mod client;
pub mod credential;
pub mod entra;
pub mod entra_signin;
pub mod error;
pub mod hid;
pub mod pin;
pub mod select;
pub mod socket;
pub mod status;
pub mod transport;
pub mod usb;

pub use admin::{CredsMetadata, MinPinLength, RpEntry, StoredCredential};
pub use client::{Client, Info, PinToken};
pub use credential::{
    Assertion, Attestation, AuthData, ExtensionOutputs, GetAssertion, HmacSecretInput, HmacSecretOutput,
    MakeCredential,
};
pub use entra_signin::EntraSignIn;
pub use error::CtapError;
pub use hid::{HidDevice, HidError, Timeouts};
pub use pin::{PinProtocol, SharedSecret};
pub use select::select;
pub use socket::{SocketAddrError, SocketAddress, SocketTransport};
pub use status::CtapStatus;
pub use transport::{MemoryDeviceEnd, MemoryTransport, Transport, TransportError};
pub use usb::{FIDO_USAGE_PAGE, UsbError, UsbKey, UsbTransport};

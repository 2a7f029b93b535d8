//! WebAuthn data and the Microsoft Graph passkey wire format.
//!
//! This crate holds *wire types only*: the JSON shapes Graph sends and accepts for
//! `fido2Methods`, the collected client data a browser would build, and the lenient
//! base64 decoding that real Entra responses force on every client. Logic that acts on
//! these types lives in the crates that own it (the emulator verifies, the connector
//! calls, the CTAP client signs), so that the emulator shares nothing with the
//! connector except these shapes and can therefore catch the connector's mistakes.

pub mod attestation;
pub mod b64;
pub mod client_data;
pub mod graph;
pub mod mds;
pub mod policy;
pub mod registration;

/// The relying-party id Entra uses for every tenant.
pub const ENTRA_RP_ID: &str = "login.microsoft.com";
/// The origin every working client puts in `clientDataJSON` (no trailing slash).
pub const ENTRA_ORIGIN: &str = "https://login.microsoft.com";

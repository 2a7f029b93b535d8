//! WebAuthn data and the Microsoft Graph passkey wire format.
//!
//! This crate holds the shapes both sides of a registration agree on: the JSON Graph sends and
//! accepts for `fido2Methods`, the collected client data a browser would build, the lenient
//! base64 decoding that real Entra responses force on every client, the FIDO metadata, and
//! pure functions over that data — reading an attestation object (`attestation`), turning
//! Entra's creation options into a registration plan and the POST body (`registration`), and
//! deciding whether the tenant's policy accepts a key for a user (`entra_rules`).
//! Verification, calls and signing live in the crates that own them (the emulator verifies, the
//! connector calls, the CTAP client signs), so the emulator shares nothing with the connector
//! but these shapes — it reads attestation objects with its own code — and can therefore catch
//! the connector's mistakes.

pub mod attestation;
pub mod b64;
pub mod client_data;
pub mod conditional_access;
pub mod entra_rules;
pub mod graph;
pub mod mds;
pub mod policy;
pub mod registration;
pub mod signin;

/// The relying-party id Entra uses for every tenant.
pub const ENTRA_RP_ID: &str = "login.microsoft.com";
/// The origin every working client puts in `clientDataJSON` (no trailing slash).
pub const ENTRA_ORIGIN: &str = "https://login.microsoft.com";

//! `keyward-entra`: Keyward's connector to Microsoft Entra ID and Microsoft Graph.
//!
//! It is the only part of Keyward that talks to Entra. [`Connector`] holds the settings
//! ([`config`]), a token cache ([`token`]: client secret or certificate assertion) and a
//! Graph client ([`graph`]: `client-request-id` on every call, `Retry-After`-aware retries,
//! paging, a redacted HTTP debug log), and offers typed operations ([`ops`]), `$batch` fan-out
//! ([`batch`]), crash-safe passkey registration ([`register`]), and the operator's
//! "Test connection" ([`connection`]) and "Validate certificate" ([`certificate`]).
//!
//! Wire shapes come from `keyward-webauthn`; the connector shares nothing else with the
//! emulator (`keyward-sim`), which its tests run against over loopback HTTP.

#![deny(missing_docs)]

pub mod batch;
pub mod certificate;
pub mod config;
pub mod connection;
pub mod error;
pub mod graph;
#[cfg(test)]
mod hostile_tests;
pub mod ops;
pub mod redact;
pub mod register;
pub mod retry;
pub mod signin;
pub mod token;

pub use config::{ApiVersion, AssertionMode, ConnectorConfig, Credential, RetryPolicy};
pub use error::{CertificateError, ConfigError, GraphError, TokenError};
pub use graph::{Connector, Retry};
pub use register::{Registered, RegistrationError, RegistrationPath};

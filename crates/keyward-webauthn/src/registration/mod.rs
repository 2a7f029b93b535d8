//! From Entra's creation options to the Graph registration body, with no transport in between.
//!
//! Registering a passkey with Entra is a browser ceremony without a browser: Keyward builds
//! the `clientDataJSON` itself, asks a security key for a credential over CTAP, and posts the
//! result to Graph. This module holds the two transport-neutral halves of that ceremony:
//!
//! * [`plan`] turns `fido2Methods/creationOptions` into a [`RegistrationPlan`]: the exact
//!   client data and its hash, and the requirements the key must meet (resident key, user
//!   verification, algorithms, extensions, excluded credentials). The CTAP client maps a plan
//!   to makeCredential; nothing here knows about CTAP.
//! * [`body`] turns the key's attestation object into the `POST …/fido2Methods` body, with the
//!   attestation object passed through byte for byte and a display name that fits Graph's
//!   30-character limit ([`display_name`]).
//!
//! No crate was taken for the client side: `webauthn-authenticator-rs` builds client data
//! from a normalised URL and so sends the origin with a trailing slash that strict verifiers
//! reject, and the passkey-rs client drives its own authenticator trait rather
//! than a CTAP key we already hold a PIN token for. The rules are Entra's, from real captures
//! (docs/entra-graph-api.md §1.3–§2.3), and small.

pub mod body;
pub mod display_name;
pub mod own;
pub mod plan;

pub use body::{BodyError, PreparedRegistration, registration_body};
pub use display_name::{fit_display_name, marked_display_name};
pub use own::OwnRegistration;
pub use plan::{Algorithm, CredProtect, PlanError, PlanWarning, RegistrationPlan};

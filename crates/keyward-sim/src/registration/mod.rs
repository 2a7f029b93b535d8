//! Passkey registration as Entra performs it: creation options, challenges, verification
//! of the attestation and the FIDO2 method policy.
//!
//! This is the core of the emulator: a client that passes it must pass the real service,
//! so every rule docs/entra-graph-api.md names (§2.3, §4.3, §11, §13) is enforced, where the service's
//! behaviour is unknown the stricter reading is taken (the list in the crate docs), and
//! every refusal names the rule broken so a failing client learns what to fix. The HTTP
//! layer (`graph::fido2`) only snapshots state, calls [`verify::verify_registration`] —
//! pure and lock-free, so concurrent registrations verify in parallel — and commits.

mod attestation;
pub mod cbor;
pub mod challenge;
pub mod options;
pub mod policy;
mod untrusted_packed;
pub mod verify;

pub use challenge::seal_challenge;
pub use verify::{RegistrationContext, VerifiedRegistration, verify_registration};

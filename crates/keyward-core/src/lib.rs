//! Keyward's domain: the types and rules every other crate agrees on.
//!
//! This crate is deliberately free of async and I/O (docs/architecture.md §2): the store persists these
//! types, the server exposes them, and the rules that decide what may happen to a person, a key, a
//! passkey or an issuance live here once, where plain unit tests can cover every case.

#[macro_use]
mod text;

pub mod audit;
pub mod ids;
pub mod issuance;
pub mod key;
pub mod passkey;
pub mod person;
pub mod policy;
pub mod rbac;

pub use audit::{AuditDraft, AuditEvent, ChainBreak, ChainBreakReason, Outcome, verify_chain};
pub use ids::{ApiTokenId, IssuanceId, JobId, PasskeyId, PersonId, PolicyId, SecurityKeyId};
pub use issuance::{Channel, Issuance, IssuanceError, IssuanceState};
pub use key::{KeyError, KeyState, SecurityKey};
pub use passkey::{Passkey, PasskeyError, PasskeyOrigin, PasskeyState};
pub use person::{
    ExternalRefSlot, ExternalRefs, LinkMethod, MAX_UPN_CHARS, Person, PersonError, PersonSource,
    is_plausible_upn,
};
pub use policy::{EffectivePolicy, EnrollmentMode, EnrollmentPolicy, PinRules};
pub use rbac::{Permission, Role};
pub use text::UnknownName;

//! The test attestation CA now lives in `keyward_testkit::attestation_ca`; this re-export keeps
//! test files that still include it with `#[path = "support/attestation_ca.rs"]` building until
//! they import the testkit directly.

pub use keyward_testkit::attestation_ca::*;

//! Test support for Keyward's crates, written once: the test attestation CA, the emulator tenants
//! the tests seed, temporary databases, and the stack of the emulator plus a Keyward server on
//! loopback. Not published; crates take it under `[dev-dependencies]` only (the server's
//! `issuance_driver` example is the one non-test user), so the dependency cycles it makes
//! (keyward-server's tests → testkit → keyward-server) stay in test builds.
//!
//! Each part sits behind a feature so a crate builds only what it tests with:
//! - always: [`attestation_ca`], a CA and a `packed` attestation certificate (rcgen + p256), and
//!   [`log`], an in-memory `tracing` writer for the tests that search the log for secrets;
//! - `sim`: [`seed`], the emulator's tenant as the tests seed it, and [`sim`], the emulator
//!   started on loopback with an app token for its Graph API;
//! - `rules-table`: [`rules_table`], the table of Entra's registration rules that the pure
//!   function and the emulator are both held to;
//! - `hostile`: [`hostile`], generators of hostile bytes, CBOR and JSON and the property runner
//!   that `bench/fuzz.sh` reads;
//! - `database`: [`database`], a uniquely named SQLite file or PostgreSQL database, removed on drop;
//! - `stack`: [`stack`], the emulator and a Keyward server over loopback with one API token per
//!   role, and [`desk`], a soft key behind Keyward's CTAP client.
//!
//! The emulator's own tests take only the CA and `sim`, so they never build the server they
//! referee; the store's tests take only `database`.

pub mod attestation_ca;
#[cfg(feature = "database")]
pub mod database;
#[cfg(feature = "desk")]
pub mod desk;
#[cfg(feature = "hostile")]
pub mod hostile;
pub mod log;
pub mod python;
#[cfg(feature = "rules-table")]
pub mod rules_table;
#[cfg(feature = "sim")]
pub mod seed;
#[cfg(feature = "sim")]
pub mod sim;
#[cfg(feature = "stack")]
pub mod stack;
pub mod tls;

pub use attestation_ca::{TestCa, test_ca};

//! Keyward's persistence: one set of repository functions over SQLite (the embedded default) and
//! PostgreSQL (for scale-out), with migrations for both, a lease-based job queue and the
//! hash-chained audit trail.
//!
//! Shape of the API: read functions take `&Store`; every mutation takes a [`Tx`] and an `actor`
//! and appends its audit event through [`audit::append`] in that same transaction, so a change
//! and its audit record commit (or vanish) together. Open with [`Store::open`]; see [`db`] for how one
//! repository function runs on both backends.

pub mod audit;
pub mod connector;
pub mod db;
pub mod error;
pub mod issuances;
pub mod jobs;
pub mod keys;
mod lite;
pub mod passkeys;
pub mod people;
mod pg;
pub mod policies;
pub mod secret;
pub mod stmt;
pub mod tokens;
pub mod write;

pub use db::{Backend, Store, Tx, to_micros};
pub use error::{Result, StoreError};
pub use secret::{SecretError, SecretKey};
pub use stmt::{Reader, Row, Stmt, Value};

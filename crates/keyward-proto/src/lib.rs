//! The Core API's wire types (`/api/v1`): what a request carries and what a response shows.
//!
//! The server renders into these and the CLI's typed client reads them, so the two cannot drift
//! apart without a compile error. They change only with the API version, not with the domain
//! rules (those are `keyward-core`'s): enum values are the domain's stable text names
//! (`options-issued`, `self-service`), times are RFC 3339 text, ids are text. Nothing here has
//! behaviour beyond serde and the OpenAPI schema (`utoipa`), so the crate depends on neither the
//! server nor the store.

pub mod admin;
pub mod audit;
pub mod doctor;
pub mod error;
pub mod inventory;
pub mod issuances;
pub mod jobs;
pub mod page;
pub mod people;

pub use page::{Page, PageQuery};

//! Graph fido2 endpoints.

use axum::Router;

use crate::Sim;

/// The routes of this module.
pub fn routes() -> Router<Sim> {
    Router::new()
}

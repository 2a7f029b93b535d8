//! The Entra login endpoints under `/{tenant}`: client-credentials tokens (secret or
//! certificate assertion) and OpenID Connect for the portal (spec §7, §10).

use axum::Router;

use crate::Sim;

/// All login routes.
pub fn routes() -> Router<Sim> {
    Router::new()
}

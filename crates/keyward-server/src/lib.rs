//! Keyward's CMS server: the Core API over one service layer, with RBAC, audit and metrics.
//!
//! The layering follows kanidm: `api` turns HTTP into calls on [`service::Service`] and back, and
//! nothing else. The service layer is the only place that decides anything: the API, the web views
//! to come and the background jobs all call it, so a rule (an authorisation, an audit event, the
//! order of "record, then call Entra") is written once. The service talks to the database through
//! `keyward-store` and to Entra through `keyward-entra`; it never speaks CTAP (the client does).

pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod metrics;
pub mod service;

use std::sync::Arc;

use tokio::net::TcpListener;

pub use config::ServerConfig;
pub use error::ApiError;
pub use service::Service;

/// Starts serving `service` on `listener` until `shutdown` resolves.
pub async fn serve(
    service: Arc<Service>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = api::router(service);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

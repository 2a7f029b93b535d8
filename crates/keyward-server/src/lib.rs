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
pub mod secret_key;
pub mod service;
pub mod tls;

use std::sync::Arc;

use tokio::net::TcpListener;

pub use config::ServerConfig;
pub use error::ApiError;
pub use service::{Caller, Service, ServiceError};

/// Runs sync (with its leaver handling) and then reconcile every `sync_interval_minutes`, so a
/// leaver's passkeys leave Entra without anyone asking. It acts as the system caller
/// `system:scheduler`, allowed only what those jobs need. A run that fails (Entra unreachable,
/// connector not configured yet) is logged and retried at the next tick. With several servers
/// on one database each runs the schedule; both jobs are idempotent, so the cost is Graph
/// reads, not wrong data.
pub fn spawn_scheduler(service: Arc<Service>) -> Option<tokio::task::JoinHandle<()>> {
    let minutes = service.config.sync_interval_minutes;
    if minutes == 0 {
        return None;
    }
    let caller = Caller::system("scheduler", service::caller::SCHEDULER);
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(minutes * 60));
        tick.tick().await;
        loop {
            tick.tick().await;
            match service.sync_people(&caller, None).await {
                Ok(r) => tracing::info!(
                    seen = r.seen,
                    disabled = r.disabled,
                    deleted = r.deleted,
                    revoked = r.revoked,
                    "scheduled sync"
                ),
                Err(e) => tracing::warn!("scheduled sync failed: {e}"),
            }
            match service.reconcile(&caller, None).await {
                Ok(r) => tracing::info!(
                    finished = r.finished,
                    revoked = r.revoked,
                    discovered = r.discovered,
                    "scheduled reconcile"
                ),
                Err(e) => tracing::warn!("scheduled reconcile failed: {e}"),
            }
        }
    }))
}

/// Starts serving `service` on `listener` until `shutdown` resolves.
pub async fn serve(
    service: Arc<Service>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let flusher = spawn_refusal_flush(service.clone());
    let app = api::router(service.clone());
    let served = axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await;
    flusher.abort();
    flush_last_refusals(&service).await;
    served
}

/// At shutdown: the refused requests counted since the last minute's event.
pub(crate) async fn flush_last_refusals(service: &Service) {
    if let Err(e) = service.flush_refusals().await {
        tracing::warn!("could not record the last refused requests in the audit trail: {e}");
    }
}

/// Writes the refused requests counted in the last minute to the audit chain, every minute.
pub(crate) fn spawn_refusal_flush(service: Arc<Service>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = service.flush_refusals().await {
                tracing::warn!("could not record refused requests in the audit trail: {e}");
            }
        }
    })
}

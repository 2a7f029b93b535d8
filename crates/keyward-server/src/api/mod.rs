//! The Core API, `/api/v1`: HTTP in, service call, JSON out.
//!
//! Handlers are grouped by area, one module each. Every handler takes a [`Caller`] and calls
//! `require` with its permission first; the same permission is declared as the operation's
//! security scope in the OpenAPI document (served at `/api/v1/openapi.json`, generated from these
//! handlers by `utoipa`), which is what the permission-matrix test walks.

pub mod admin;
pub mod audit;
pub mod doctor;
pub mod inventory;
pub mod issuances;
pub mod jobs;
pub mod people;
pub mod views;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::auth::{self, Caller, RoutePermissions};
use crate::metrics;
use crate::service::Service;

#[derive(OpenApi)]
#[openapi(
    info(title = "Keyward Core API", description = "Issue and manage passkeys in Microsoft Entra ID on behalf of users."),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token from `keyward admin token create`"))
                    .build(),
            ),
        );
    }
}

/// The whole application: API, OpenAPI document, health and metrics.
pub fn router(service: Arc<Service>) -> Router {
    let (api, doc) = openapi_router().split_for_parts();
    let permissions = Arc::new(RoutePermissions::from_openapi(&doc));
    let doc = Arc::new(doc);
    let metrics_state = service.metrics.clone();
    let api = api
        .route_layer(axum::middleware::from_fn_with_state((service.clone(), permissions), auth::authorize))
        .layer(DefaultBodyLimit::max(service.config.max_body_bytes));
    let public = Router::new()
        .route("/api/v1/openapi.json", get(move || async move { Json(doc.as_ref().clone()) }))
        .route("/healthz", get(healthz));
    api.merge(public)
        .with_state(service)
        .merge(Router::new().route("/metrics", get(metrics::serve)).with_state(metrics_state.clone()))
        .layer(axum::middleware::from_fn_with_state(metrics_state, metrics::record))
}

/// The routes with their OpenAPI descriptions.
pub fn openapi_router() -> OpenApiRouter<Arc<Service>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(people::routes())
        .merge(issuances::routes())
        .merge(inventory::routes())
        .merge(admin::routes())
        .merge(audit::routes())
        .merge(doctor::routes())
        .merge(jobs::routes())
}

/// The OpenAPI document (for the CLI's `keyward api openapi` and the tests).
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi_router().split_for_parts().1
}

/// `GET /healthz`: the database answers.
async fn healthz(State(service): State<Arc<Service>>) -> impl IntoResponse {
    match sqlx_ping(&service).await {
        Ok(()) => (axum::http::StatusCode::OK, Json(serde_json::json!({"status": "ok"}))),
        Err(e) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "unavailable", "reason": e})),
        ),
    }
}

async fn sqlx_ping(service: &Service) -> Result<(), String> {
    keyward_store::people::count(&service.store).await.map(|_| ()).map_err(|e| e.to_string())
}

/// Shorthand used by handlers: the caller's audit name after the permission check.
pub(crate) fn actor(
    caller: &Caller,
    permission: keyward_core::Permission,
) -> Result<String, crate::ApiError> {
    caller.require(permission)?;
    Ok(caller.actor())
}

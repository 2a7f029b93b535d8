//! `GET /identity/conditionalAccess/policies` and `/{id}` (Graph v1.0 `conditionalAccessPolicy`),
//! so a client such as `doctor` can see what the emulator enforces at sign-in. Read only: the
//! policies come from the seed. `Policy.Read.All` is the least-privileged permission the v1.0
//! reference lists; `Policy.Read.ConditionalAccess` and `Policy.ReadWrite.ConditionalAccess`
//! also read.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

use crate::Sim;
use crate::auth::Caller;
use crate::graph::{ApiVersion, GraphFailure, GraphResult, with_context};

const READ: &[&str] =
    &["Policy.Read.All", "Policy.Read.ConditionalAccess", "Policy.ReadWrite.ConditionalAccess"];
const ENTITY: &str = "#microsoft.graph.conditionalAccessPolicy";

/// The routes of this module.
pub fn routes() -> Router<Sim> {
    Router::new()
        .route("/identity/conditionalAccess/policies", get(list))
        .route("/identity/conditionalAccess/policies/{id}", get(get_one))
}

fn rendered(policy: &keyward_webauthn::conditional_access::ConditionalAccessPolicy) -> Value {
    let mut value = serde_json::to_value(policy).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("@odata.type".into(), ENTITY.into());
    }
    value
}

async fn list(
    State(sim): State<Sim>,
    Extension(version): Extension<ApiVersion>,
    Extension(caller): Extension<Caller>,
) -> GraphResult<Json<Value>> {
    caller.require_any(READ)?;
    let value: Vec<Value> = sim.read(|t| t.conditional_access_policies.iter().map(rendered).collect());
    Ok(Json(json!({
        "@odata.context": format!(
            "https://graph.microsoft.com/{}/$metadata#identity/conditionalAccess/policies",
            version.segment()
        ),
        "value": value,
    })))
}

async fn get_one(
    State(sim): State<Sim>,
    Extension(version): Extension<ApiVersion>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> GraphResult<Json<Value>> {
    caller.require_any(READ)?;
    let policy = sim
        .read(|t| t.conditional_access_policies.iter().find(|p| p.id.eq_ignore_ascii_case(&id)).map(rendered))
        .ok_or_else(|| GraphFailure::resource_not_found(&id))?;
    Ok(Json(with_context(version, "identity/conditionalAccess/policies/$entity", policy)))
}

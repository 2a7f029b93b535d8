//! Directory roles and their members (`/directoryRoles`, `/directoryRoles/{id}/members`):
//! what Keyward reads to know who is protected (Global Administrators and the like).
//!
//! As in Entra, only *activated* roles are listed: a role appears once somebody holds it. Users
//! hold roles by display name in the seed (`directoryRoles`); each role's template id is the one
//! Microsoft documents for every tenant (the built-in roles reference), and its object id in the
//! tenant is derived from the tenant and the template, so it is stable across restarts.
//! Reading needs `RoleManagement.Read.Directory` (or a broader directory permission), as Graph's
//! permission reference lists for `GET /directoryRoles`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

use crate::Sim;
use crate::auth::Caller;
use crate::graph::users::{member_items, page, select_list};
use crate::graph::{ApiVersion, GraphFailure, GraphResult};
use crate::seed::SeedUser;

/// Roles that allow reading directory roles and their members.
pub const READ_ROLES: &[&str] = &[
    "RoleManagement.Read.Directory",
    "RoleManagement.ReadWrite.Directory",
    "RoleManagement.Read.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// The built-in roles the emulator knows, with the template ids Microsoft documents.
pub const BUILT_IN_ROLES: &[(&str, &str)] = &[
    ("Global Administrator", "62e90394-69f5-4237-9190-012177145e10"),
    ("Privileged Authentication Administrator", "7be44c8a-adaf-4e2a-84d6-ab2649e08a13"),
    ("Privileged Role Administrator", "e8611ab8-c189-46e8-94e1-60213ab1f814"),
    ("Authentication Administrator", "c4e39bd9-1100-46d3-8c65-fb160da0071f"),
    ("Security Administrator", "194ae4cb-b126-40b2-bd5b-6091b380977d"),
    ("Helpdesk Administrator", "729827e3-9c14-49f7-bb1b-9608f156bbb8"),
    ("User Administrator", "fe930be7-5e62-47db-91af-98c3a49a38b1"),
];

/// The template id of a built-in role, by display name.
pub fn template_id(role: &str) -> Option<&'static str> {
    BUILT_IN_ROLES.iter().find(|(name, _)| name.eq_ignore_ascii_case(role)).map(|(_, id)| *id)
}

/// The routes of this module.
pub fn routes() -> Router<Sim> {
    Router::new()
        .route("/directoryRoles", get(list_roles))
        .route("/directoryRoles/{role}/members", get(role_members))
}

/// A role's object id in the tenant: derived from the tenant and the template.
fn role_object_id(tenant_id: &str, template: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{tenant_id}/{template}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

/// The activated roles: (object id, display name, template id), in the table's order.
fn activated(tenant_id: &str, users: &[SeedUser]) -> Vec<(String, &'static str, &'static str)> {
    BUILT_IN_ROLES
        .iter()
        .filter(|(name, _)| {
            users.iter().any(|u| u.directory_roles.iter().any(|r| r.eq_ignore_ascii_case(name)))
        })
        .map(|(name, template)| (role_object_id(tenant_id, template), *name, *template))
        .collect()
}

async fn list_roles(
    State(sim): State<Sim>,
    Extension(version): Extension<ApiVersion>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<HashMap<String, String>>,
) -> GraphResult<Json<Value>> {
    caller.require_any(READ_ROLES)?;
    let roles = sim.read(|t| activated(&t.tenant_id, &t.users));
    let items = roles
        .into_iter()
        .map(|(id, name, template)| {
            json!({"id": id, "deletedDateTime": null, "description": name, "displayName": name, "roleTemplateId": template})
        })
        .collect();
    let mut query = query;
    query.remove("$select");
    Ok(Json(page(&sim, version, "/directoryRoles", &query, "directoryRoles", items)?))
}

async fn role_members(
    State(sim): State<Sim>,
    Extension(version): Extension<ApiVersion>,
    Extension(caller): Extension<Caller>,
    Path(role): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> GraphResult<Json<Value>> {
    caller.require_any(READ_ROLES)?;
    let select = select_list(&query)?;
    let members = sim.read(|t| {
        let found =
            activated(&t.tenant_id, &t.users).into_iter().find(|(id, _, _)| id.eq_ignore_ascii_case(&role));
        found.map(|(_, name, _)| {
            t.users
                .iter()
                .filter(|u| u.directory_roles.iter().any(|r| r.eq_ignore_ascii_case(name)))
                .cloned()
                .collect::<Vec<_>>()
        })
    });
    let Some(members) = members else { return Err(GraphFailure::resource_not_found(&role)) };
    let items = member_items(&members, select.as_deref());
    let path = format!("/directoryRoles/{role}/members");
    Ok(Json(page(&sim, version, &path, &query, "directoryObjects", items)?))
}

//! `/api/v1/people`: look-up, Entra link, sync, revoke all of a person's passkeys, TAP.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use keyward_core::{Permission, PersonId};
use keyward_store::{keys, passkeys, people};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::actor;
use super::views::{KeyView, Page, PasskeyView, PersonDetail, PersonView};
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson};
use crate::service::issuance::PersonRef;
use crate::service::people::SyncReport;
use crate::service::{Service, store_error};

pub(super) fn routes() -> OpenApiRouter<Arc<Service>> {
    OpenApiRouter::new()
        .routes(routes!(list_people))
        .routes(routes!(show_person))
        .routes(routes!(link_person))
        .routes(routes!(sync_people))
        .routes(routes!(revoke_person_passkeys))
        .routes(routes!(issue_tap))
}

/// A person is named by Keyward's id or by UPN.
pub(crate) fn person_ref(text: &str) -> PersonRef {
    match text.parse::<PersonId>() {
        Ok(id) => PersonRef::Id(id),
        Err(_) => PersonRef::Upn(text.to_owned()),
    }
}

/// Query of the people list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct PeopleQuery {
    /// Substring of the UPN or display name.
    pub search: Option<String>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// Page size (1–1000, default 100).
    pub limit: Option<i64>,
}

/// List or search people.
#[utoipa::path(get, path = "/api/v1/people", tag = "people", params(PeopleQuery),
    security(("bearer" = ["people:read"])),
    responses((status = 200, body = Page<PersonView>)))]
async fn list_people(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Query(q): Query<PeopleQuery>,
) -> Result<ApiJson<Page<PersonView>>, ApiError> {
    caller.require(Permission::PeopleRead)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest("limit must be between 1 and 1000".into()));
    }
    let found = match &q.search {
        Some(text) => people::search(&s.store, text, limit).await,
        None => people::list(&s.store, q.after.as_deref(), limit).await,
    }
    .map_err(store_error)?;
    let next = (q.search.is_none() && found.len() as i64 == limit)
        .then(|| found.last().map(|p| p.upn.clone()))
        .flatten();
    Ok(ApiJson(Page { items: found.iter().map(|p| PersonView::new(p, s.slot)).collect(), next }))
}

/// Show a person (by id or UPN) with their keys and passkeys.
#[utoipa::path(get, path = "/api/v1/people/{id}", tag = "people",
    params(("id" = String, Path, description = "Keyward id or UPN")),
    security(("bearer" = ["people:read"])),
    responses((status = 200, body = PersonDetail), (status = 404, body = crate::error::ErrorBody)))]
async fn show_person(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<PersonDetail>, ApiError> {
    caller.require(Permission::PeopleRead)?;
    let person = s.find_person(&person_ref(&id)).await?;
    let passkeys = passkeys::list_by_person(&s.store, person.id).await.map_err(store_error)?;
    let mut key_views: Vec<KeyView> = Vec::new();
    for key_id in passkeys.iter().filter_map(|p| p.security_key_id) {
        if key_views.iter().any(|k| k.id == key_id.to_string()) {
            continue;
        }
        if let Some(k) = keys::get(&s.store, key_id).await.map_err(store_error)? {
            key_views.push(KeyView::from(&k));
        }
    }
    Ok(ApiJson(PersonDetail {
        person: PersonView::new(&person, s.slot),
        keys: key_views,
        passkeys: passkeys.iter().map(PasskeyView::from).collect(),
    }))
}

/// How to link a person: exactly one of the two.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct LinkRequest {
    /// The Entra object id (a GUID).
    pub object_id: Option<String>,
    /// A UPN to look up in Entra.
    pub upn: Option<String>,
}

/// Set a person's Entra link by object id or by UPN match.
#[utoipa::path(put, path = "/api/v1/people/{id}/link", tag = "people", request_body = LinkRequest,
    params(("id" = String, Path, description = "Keyward id or UPN")),
    security(("bearer" = ["people:link"])),
    responses((status = 200, body = PersonView)))]
async fn link_person(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<LinkRequest>,
) -> Result<ApiJson<PersonView>, ApiError> {
    let actor = actor(&caller, Permission::PeopleLink)?;
    let person = s.find_person(&person_ref(&id)).await?;
    let linked = s.link_person(&actor, person.id, req.object_id.as_deref(), req.upn.as_deref()).await?;
    Ok(ApiJson(PersonView::new(&linked, s.slot)))
}

/// What to sync.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct SyncRequest {
    /// Only the members of this Entra group (display name); all users when absent.
    pub group: Option<String>,
}

/// Sync people from Entra (leavers included).
#[utoipa::path(post, path = "/api/v1/people/sync", tag = "people", request_body = SyncRequest,
    security(("bearer" = ["people:sync"])),
    responses((status = 200, body = SyncReport)))]
async fn sync_people(
    State(s): State<Arc<Service>>,
    caller: Caller,
    ApiJson(req): ApiJson<SyncRequest>,
) -> Result<ApiJson<SyncReport>, ApiError> {
    let actor = actor(&caller, Permission::PeopleSync)?;
    Ok(ApiJson(s.sync_people(&actor, req.group.as_deref()).await?))
}

/// Why passkeys are revoked.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct RevokeRequest {
    /// Recorded in the audit trail.
    pub reason: Option<String>,
}

/// How many passkeys were revoked.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct RevokedCount {
    /// Count.
    pub revoked: usize,
}

/// Revoke all of a person's passkeys.
#[utoipa::path(post, path = "/api/v1/people/{id}/revoke-passkeys", tag = "people", request_body = RevokeRequest,
    params(("id" = String, Path, description = "Keyward id or UPN")),
    security(("bearer" = ["passkeys:revoke"])),
    responses((status = 200, body = RevokedCount)))]
async fn revoke_person_passkeys(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RevokeRequest>,
) -> Result<ApiJson<RevokedCount>, ApiError> {
    let actor = actor(&caller, Permission::PasskeysRevoke)?;
    let person = s.find_person(&person_ref(&id)).await?;
    let reason = req.reason.unwrap_or_else(|| "revoked by an operator".into());
    Ok(ApiJson(RevokedCount { revoked: s.revoke_person_passkeys(&actor, person.id, &reason).await? }))
}

/// A Temporary Access Pass request.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct TapRequest {
    /// Lifetime in minutes (within the tenant's TAP policy).
    pub lifetime_minutes: Option<u32>,
    /// Usable once.
    pub once: Option<bool>,
}

/// A Temporary Access Pass, shown once.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct TapView {
    /// The pass. It is not stored by Keyward and cannot be shown again.
    pub pass: String,
    /// Lifetime in minutes.
    pub lifetime_minutes: u32,
    /// Usable once.
    pub once: bool,
    /// When it starts.
    pub start: String,
}

/// Issue a Temporary Access Pass for onboarding.
#[utoipa::path(post, path = "/api/v1/people/{id}/tap", tag = "people", request_body = TapRequest,
    params(("id" = String, Path, description = "Keyward id or UPN")),
    security(("bearer" = ["tap:issue"])),
    responses((status = 200, body = TapView)))]
async fn issue_tap(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<TapRequest>,
) -> Result<ApiJson<TapView>, ApiError> {
    use secrecy::ExposeSecret;
    let actor = actor(&caller, Permission::TapIssue)?;
    let person = s.find_person(&person_ref(&id)).await?;
    let (method, pass) = s.issue_tap(&actor, person.id, req.lifetime_minutes, req.once).await?;
    Ok(ApiJson(TapView {
        pass: pass.expose_secret().to_owned(),
        lifetime_minutes: method.lifetime_in_minutes,
        once: method.is_usable_once,
        start: method.start_date_time,
    }))
}

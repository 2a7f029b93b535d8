//! `/api/v1/people`: look-up, Entra link, sync, revoke all of a person's passkeys, TAP.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use keyward_core::PersonId;
use keyward_proto::Page;
use keyward_proto::people::{
    LinkRequest, PeopleQuery, PersonDetail, PersonView, RevokeRequest, RevokedCount, SyncReport, SyncRequest,
    TapRequest, TapView,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::render;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::service::issuance::PersonRef;
use crate::service::people::LinkChange;
use crate::service::{Caller, Service};

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

/// List or search people, in UPN order, a page at a time.
#[utoipa::path(get, path = "/api/v1/people", tag = "people", params(PeopleQuery),
    responses((status = 200, body = Page<PersonView>), (status = 400, body = ErrorBody)))]
async fn list_people(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Query(q): Query<PeopleQuery>,
) -> Result<ApiJson<Page<PersonView>>, ApiError> {
    let found = s.people(&caller, q.search.as_deref(), q.after.as_deref(), q.limit).await?;
    Ok(ApiJson(render::page(found, |p| render::person(p, s.slot))))
}

/// Show a person (by id or UPN) with their keys and passkeys.
#[utoipa::path(get, path = "/api/v1/people/{id}", tag = "people",
    params(("id" = String, Path, description = "Keyward id or UPN")),
    responses((status = 200, body = PersonDetail), (status = 404, body = ErrorBody)))]
async fn show_person(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<PersonDetail>, ApiError> {
    let record = s.person(&caller, &person_ref(&id)).await?;
    Ok(ApiJson(render::person_detail(&record, s.slot)))
}

/// Set a person's Entra link by object id or by UPN match.
#[utoipa::path(put, path = "/api/v1/people/{id}/link", tag = "people", request_body = LinkRequest,
    params(("id" = String, Path, description = "Keyward id or UPN")),
    responses((status = 200, body = PersonView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn link_person(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<LinkRequest>,
) -> Result<ApiJson<PersonView>, ApiError> {
    let change = LinkChange {
        object_id: req.object_id,
        upn: req.upn,
        allow_other_upn: req.allow_other_upn,
        revoke_existing: req.revoke_existing,
    };
    let linked = s.link_person(&caller, &person_ref(&id), &change).await?;
    Ok(ApiJson(render::person(&linked, s.slot)))
}

/// Sync people from Entra (leavers included).
#[utoipa::path(post, path = "/api/v1/people/sync", tag = "people", request_body = SyncRequest,
    responses((status = 200, body = SyncReport)))]
async fn sync_people(
    State(s): State<Arc<Service>>,
    caller: Caller,
    ApiJson(req): ApiJson<SyncRequest>,
) -> Result<ApiJson<SyncReport>, ApiError> {
    Ok(ApiJson(s.sync_people(&caller, req.group.as_deref()).await?))
}

/// Revoke all of a person's passkeys.
#[utoipa::path(post, path = "/api/v1/people/{id}/revoke-passkeys", tag = "people", request_body = RevokeRequest,
    params(("id" = String, Path, description = "Keyward id or UPN")),
    responses((status = 200, body = RevokedCount)))]
async fn revoke_person_passkeys(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RevokeRequest>,
) -> Result<ApiJson<RevokedCount>, ApiError> {
    let reason = req.reason.unwrap_or_else(|| "revoked by an operator".into());
    Ok(ApiJson(RevokedCount { revoked: s.revoke_person_passkeys(&caller, &person_ref(&id), &reason).await? }))
}

/// Issue a Temporary Access Pass for onboarding.
#[utoipa::path(post, path = "/api/v1/people/{id}/tap", tag = "people", request_body = TapRequest,
    params(("id" = String, Path, description = "Keyward id or UPN")),
    responses((status = 200, body = TapView)))]
async fn issue_tap(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<TapRequest>,
) -> Result<ApiJson<TapView>, ApiError> {
    use secrecy::ExposeSecret;
    let (method, pass) = s.issue_tap(&caller, &person_ref(&id), req.lifetime_minutes, req.once).await?;
    Ok(ApiJson(TapView {
        pass: pass.expose_secret().to_owned(),
        lifetime_minutes: method.lifetime_in_minutes,
        once: method.is_usable_once,
        start: method.start_date_time,
    }))
}

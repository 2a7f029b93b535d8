//! `/api/v1/doctor`: every reason a registration would fail, before a key is touched.
//!
//! A read-only diagnosis, so it needs only `people:read`: a helpdesk agent runs it as well as an
//! operator. The checks themselves are [`crate::service::doctor`]'s.

use std::sync::Arc;

use axum::extract::{Query, State};
use keyward_core::Permission;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiJson};
use crate::service::Service;
use crate::service::doctor::{DoctorQuery, DoctorReport};
use crate::service::issuance::parse_aaguid;

pub(super) fn routes() -> OpenApiRouter<Arc<Service>> {
    OpenApiRouter::new().routes(routes!(doctor))
}

/// What doctor examines; every part is optional.
#[derive(Debug, Deserialize, IntoParams)]
pub struct DoctorParams {
    /// The person to provision: Keyward id or UPN.
    pub person: Option<String>,
    /// The key model's AAGUID.
    pub aaguid: Option<String>,
    /// The key's serial.
    pub serial: Option<String>,
}

/// Diagnose a registration: connector, tenant policy, person, enrollment policy and key.
#[utoipa::path(get, path = "/api/v1/doctor", tag = "doctor", params(DoctorParams),
    security(("bearer" = ["people:read"])),
    responses((status = 200, body = DoctorReport), (status = 400, body = crate::error::ErrorBody)))]
async fn doctor(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Query(q): Query<DoctorParams>,
) -> Result<ApiJson<DoctorReport>, ApiError> {
    caller.require(Permission::PeopleRead)?;
    let aaguid = q.aaguid.as_deref().map(parse_aaguid).transpose()?;
    let query = DoctorQuery { person: q.person, aaguid, serial: q.serial };
    Ok(ApiJson(s.doctor(&query).await?))
}

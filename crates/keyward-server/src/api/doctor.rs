//! `/api/v1/doctor`: every reason a registration would fail, before a key is touched.
//!
//! A read-only diagnosis, so it needs only `people:read`: a helpdesk agent runs it as well as an
//! operator. The checks themselves are [`crate::service::doctor`]'s.

use std::sync::Arc;

use axum::extract::{Query, State};
use keyward_proto::doctor::{DoctorParams, DoctorReport};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::parse_aaguid;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::service::doctor::DoctorQuery;
use crate::service::{Caller, Service};

pub(super) fn routes() -> OpenApiRouter<Arc<Service>> {
    OpenApiRouter::new().routes(routes!(doctor))
}

/// Diagnose a registration: connector, tenant policy, person, enrollment policy and key.
#[utoipa::path(get, path = "/api/v1/doctor", tag = "doctor", params(DoctorParams),
    responses((status = 200, body = DoctorReport), (status = 400, body = ErrorBody)))]
async fn doctor(
    State(s): State<Arc<Service>>,
    caller: Caller,
    Query(q): Query<DoctorParams>,
) -> Result<ApiJson<DoctorReport>, ApiError> {
    let aaguid = q.aaguid.as_deref().map(parse_aaguid).transpose()?;
    let query = DoctorQuery { person: q.person, aaguid, serial: q.serial };
    Ok(ApiJson(s.doctor(&caller, &query).await?))
}

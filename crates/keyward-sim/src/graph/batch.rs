//! JSON batching (docs/entra-graph-api.md §8.2): up to 20 requests in one `POST /$batch`.
//!
//! Each inner request is dispatched through the same router as a top-level call, with
//! the outer request's `Authorization`, so permissions and throttling apply to each one
//! individually: a throttled inner request gets its own 429 and `Retry-After` inside a
//! batch that itself answers 200. `dependsOn` orders execution; when a request a
//! dependent waits on fails, the dependent answers 424 Failed Dependency without running.
//! A malformed batch (too many requests, duplicate or missing ids, a body without a
//! `Content-Type`, an unknown or circular dependency) is refused whole with 400.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::routing::post;
use axum::{Extension, Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tower::ServiceExt;

use crate::Sim;
use crate::graph::{ApiVersion, GraphFailure, GraphResult};

/// The most requests one batch may hold.
pub const MAX_REQUESTS: usize = 20;

/// The routes of this module.
pub fn routes() -> Router<Sim> {
    Router::new().route("/$batch", post(batch))
}

#[derive(Debug, Deserialize)]
struct BatchBody {
    requests: Vec<InnerRequest>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InnerRequest {
    id: Option<String>,
    method: Option<String>,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    depends_on: Vec<String>,
}

/// A validated inner request.
struct Planned {
    id: String,
    method: Method,
    url: String,
    headers: BTreeMap<String, String>,
    body: Option<Vec<u8>>,
    depends_on: Vec<String>,
}

fn plan(body: BatchBody) -> Result<Vec<Planned>, String> {
    if body.requests.is_empty() {
        return Err("The batch holds no requests.".into());
    }
    if body.requests.len() > MAX_REQUESTS {
        return Err(format!(
            "A batch holds at most {MAX_REQUESTS} requests; this one holds {}.",
            body.requests.len()
        ));
    }
    let mut seen = BTreeSet::new();
    let mut planned = Vec::with_capacity(body.requests.len());
    for (index, r) in body.requests.into_iter().enumerate() {
        let id = r.id.filter(|s| !s.is_empty()).ok_or_else(|| format!("Request {index} has no id."))?;
        if !seen.insert(id.to_ascii_lowercase()) {
            return Err(format!("Request id '{id}' appears more than once (ids are case-insensitive)."));
        }
        let method = r
            .method
            .as_deref()
            .and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
            .ok_or_else(|| format!("Request '{id}' has no valid method."))?;
        let url = r.url.filter(|u| !u.is_empty()).ok_or_else(|| format!("Request '{id}' has no url."))?;
        if url.contains("://") {
            return Err(format!(
                "Request '{id}' has an absolute url; batch urls are relative to the version, e.g. /users/{{id}}."
            ));
        }
        let body = match r.body {
            None | Some(Value::Null) => None,
            Some(body) => {
                if !r.headers.keys().any(|k| k.eq_ignore_ascii_case("content-type")) {
                    return Err(format!("Request '{id}' has a body but no Content-Type header."));
                }
                Some(match body {
                    Value::String(text) => base64::engine::general_purpose::STANDARD
                        .decode(text.as_bytes())
                        .unwrap_or_else(|_| text.into_bytes()),
                    other => serde_json::to_vec(&other).map_err(|e| e.to_string())?,
                })
            }
        };
        planned.push(Planned { id, method, url, headers: r.headers, body, depends_on: r.depends_on });
    }
    for p in &planned {
        for dep in &p.depends_on {
            if !seen.contains(&dep.to_ascii_lowercase()) {
                return Err(format!("Request '{}' depends on '{dep}', which is not in the batch.", p.id));
            }
        }
    }
    Ok(planned)
}

/// Execution order honouring `dependsOn`; `Err` on a cycle.
fn order(planned: &[Planned]) -> Result<Vec<usize>, String> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::with_capacity(planned.len());
    while out.len() < planned.len() {
        let before = out.len();
        for (i, p) in planned.iter().enumerate() {
            if out.contains(&i) {
                continue;
            }
            if p.depends_on.iter().all(|d| done.contains(&d.to_ascii_lowercase())) {
                out.push(i);
                done.insert(p.id.to_ascii_lowercase());
            }
        }
        if out.len() == before {
            return Err("The batch's dependsOn references form a cycle.".into());
        }
    }
    Ok(out)
}

async fn batch(
    State(sim): State<Sim>,
    Extension(version): Extension<ApiVersion>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> GraphResult<Json<Value>> {
    let parsed: BatchBody = serde_json::from_slice(&body)
        .map_err(|e| GraphFailure::bad_request(format!("The batch body is not valid: {e}")))?;
    let planned = plan(parsed).map_err(GraphFailure::bad_request)?;
    let sequence = order(&planned).map_err(GraphFailure::bad_request)?;
    let authorization = headers.get(axum::http::header::AUTHORIZATION).cloned();
    let mut statuses: BTreeMap<String, u16> = BTreeMap::new();
    let mut responses = Vec::with_capacity(planned.len());
    for index in sequence {
        let p = &planned[index];
        let failed_dependency =
            p.depends_on.iter().any(|d| statuses.get(&d.to_ascii_lowercase()).is_none_or(|s| *s >= 400));
        let (status, headers, body) = if failed_dependency {
            let failure = GraphFailure::new(
                StatusCode::FAILED_DEPENDENCY,
                "FailedDependency",
                "A request this one depends on failed, so it was not run.",
            );
            (424, Map::new(), serde_json::to_value(failure.body(None)).unwrap_or_default())
        } else {
            run_one(&sim, version, p, authorization.clone()).await
        };
        statuses.insert(p.id.to_ascii_lowercase(), status);
        let mut entry = json!({"id": p.id, "status": status, "headers": headers});
        if !body.is_null() {
            entry["body"] = body;
        }
        responses.push(entry);
    }
    Ok(Json(json!({ "responses": responses })))
}

async fn run_one(
    sim: &Sim,
    version: ApiVersion,
    p: &Planned,
    authorization: Option<HeaderValue>,
) -> (u16, Map<String, Value>, Value) {
    let path = format!("/{}/{}", version.segment(), p.url.trim_start_matches('/'));
    let mut builder = Request::builder().method(p.method.clone()).uri(&path);
    for (name, value) in &p.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    if let Some(auth) = authorization {
        builder = builder.header(axum::http::header::AUTHORIZATION, auth);
    }
    let request = match builder.body(p.body.clone().map(Body::from).unwrap_or_else(Body::empty)) {
        Ok(r) => r,
        Err(e) => {
            let failure =
                GraphFailure::bad_request(format!("Request '{}' is not a valid HTTP request: {e}", p.id));
            return (400, Map::new(), serde_json::to_value(failure.body(None)).unwrap_or_default());
        }
    };
    let response = match sim.router().oneshot(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = response.status().as_u16();
    let mut headers = Map::new();
    for (name, value) in response.headers() {
        let keep = matches!(name.as_str(), "content-type" | "retry-after" | "location")
            || name.as_str().starts_with("x-ms-throttle");
        if keep && let Ok(v) = value.to_str() {
            headers.insert(name.as_str().to_owned(), v.into());
        }
    }
    let bytes = axum::body::to_bytes(response.into_body(), 4 * 1024 * 1024).await.unwrap_or_default();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(base64::engine::general_purpose::STANDARD.encode(&bytes)))
    };
    (status, headers, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: Value) -> BatchBody {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn malformed_batches_are_refused_whole_with_a_reason() {
        let many: Vec<Value> =
            (0..21).map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users"})).collect();
        let cases = [
            (json!({"requests": []}), "no requests"),
            (json!({"requests": many}), "at most 20"),
            (
                json!({"requests": [{"id": "a", "method": "GET", "url": "/users"}, {"id": "A", "method": "GET", "url": "/users"}]}),
                "more than once",
            ),
            (json!({"requests": [{"method": "GET", "url": "/users"}]}), "no id"),
            (
                json!({"requests": [{"id": "1", "method": "POST", "url": "/users", "body": {"a": 1}}]}),
                "no Content-Type",
            ),
            (
                json!({"requests": [{"id": "1", "method": "GET", "url": "/users", "dependsOn": ["9"]}]}),
                "not in the batch",
            ),
            (
                json!({"requests": [{"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/users"}]}),
                "absolute url",
            ),
        ];
        for (input, reason) in cases {
            let err = plan(body(input.clone())).err().unwrap_or_default();
            assert!(err.contains(reason), "{input} → {err}");
        }
    }

    #[test]
    fn dependencies_order_execution_and_cycles_are_refused() {
        let planned = plan(body(json!({"requests": [
            {"id": "2", "method": "GET", "url": "/users", "dependsOn": ["1"]},
            {"id": "1", "method": "GET", "url": "/users"},
        ]})))
        .unwrap();
        assert_eq!(order(&planned).unwrap(), [1, 0]);
        let cyclic = plan(body(json!({"requests": [
            {"id": "1", "method": "GET", "url": "/users", "dependsOn": ["2"]},
            {"id": "2", "method": "GET", "url": "/users", "dependsOn": ["1"]},
        ]})))
        .unwrap();
        assert!(order(&cyclic).unwrap_err().contains("cycle"));
    }
}

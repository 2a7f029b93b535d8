//! The permission matrix: every operation of the OpenAPI document, called by every role and
//! without a token, over HTTP. The document's scopes come from the server's route table; they are
//! compared first with the list written out below, so a route given the wrong permission fails
//! here even when the roles happen to agree. A role the matrix (`Role::allows`) refuses gets 403 — before the
//! body is even read, so the test sends an empty body — and a role it allows never gets 401 or
//! 403. Without a token every operation is 401. The public routes stay public.

use keyward_core::{Permission, Role};
use keyward_testkit::stack::*;
use serde_json::{Value, json};

/// Every operation and the permission it must require, written out by hand.
const EXPECTED: &[(&str, &str, &str)] = &[
    ("GET", "/api/v1/people", "people:read"),
    ("GET", "/api/v1/people/{id}", "people:read"),
    ("PUT", "/api/v1/people/{id}/link", "people:link"),
    ("POST", "/api/v1/people/sync", "people:sync"),
    ("POST", "/api/v1/people/{id}/revoke-passkeys", "passkeys:revoke"),
    ("POST", "/api/v1/people/{id}/tap", "tap:issue"),
    ("GET", "/api/v1/issuances", "issuance:read"),
    ("POST", "/api/v1/issuances", "issuance:create"),
    ("GET", "/api/v1/issuances/{id}", "issuance:read"),
    ("POST", "/api/v1/issuances/{id}/approve", "issuance:approve"),
    ("POST", "/api/v1/issuances/{id}/options", "issuance:create"),
    ("POST", "/api/v1/issuances/{id}/complete", "issuance:create"),
    ("POST", "/api/v1/issuances/{id}/cancel", "issuance:cancel"),
    ("POST", "/api/v1/issuances/{id}/fail", "issuance:create"),
    ("POST", "/api/v1/issuances/{id}/pin-handover", "issuance:create"),
    ("POST", "/api/v1/issuances/{id}/sign-in/options", "issuance:create"),
    ("POST", "/api/v1/issuances/{id}/sign-in", "issuance:create"),
    ("GET", "/api/v1/keys", "keys:read"),
    ("POST", "/api/v1/keys", "keys:manage"),
    ("GET", "/api/v1/keys/{id}", "keys:read"),
    ("POST", "/api/v1/keys/{id}/state", "keys:manage"),
    ("POST", "/api/v1/keys/{id}/revoke-passkeys", "passkeys:revoke"),
    ("GET", "/api/v1/passkeys", "passkeys:read"),
    ("POST", "/api/v1/passkeys/{id}/revoke", "passkeys:revoke"),
    ("GET", "/api/v1/connector", "connector:read"),
    ("PUT", "/api/v1/connector", "connector:manage"),
    ("POST", "/api/v1/connector/test", "connector:manage"),
    ("POST", "/api/v1/connector/validate-certificate", "connector:manage"),
    ("GET", "/api/v1/enrollment-policies", "policy:read"),
    ("PUT", "/api/v1/enrollment-policies/{group}", "policy:manage"),
    ("DELETE", "/api/v1/enrollment-policies/{group}", "policy:manage"),
    ("GET", "/api/v1/entra/fido2-policy", "policy:read"),
    ("PATCH", "/api/v1/entra/fido2-policy", "policy:manage"),
    ("GET", "/api/v1/tokens", "tokens:manage"),
    ("POST", "/api/v1/tokens", "tokens:manage"),
    ("DELETE", "/api/v1/tokens/{name}", "tokens:manage"),
    ("GET", "/api/v1/audit", "audit:read"),
    ("GET", "/api/v1/audit/export", "audit:export"),
    ("GET", "/api/v1/audit/verify", "audit:read"),
    ("POST", "/api/v1/audit/verify", "audit:read"),
    ("GET", "/api/v1/audit/anchor", "audit:read"),
    ("GET", "/api/v1/doctor", "people:read"),
    ("POST", "/api/v1/jobs/reconcile", "jobs:run"),
    ("POST", "/api/v1/jobs/bulk", "jobs:run"),
    ("GET", "/api/v1/jobs/{id}", "jobs:run"),
    ("POST", "/api/v1/jobs/{id}/claim", "jobs:run"),
    ("POST", "/api/v1/jobs/{id}/units", "jobs:run"),
    ("GET", "/api/v1/jobs/{id}/report", "jobs:run"),
];

fn concrete(path: &str) -> String {
    path.replace("{id}", "00000000-0000-4000-8000-000000000000")
        .replace("{group}", "no-such-group")
        .replace("{name}", "no-such-token")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_enforces_the_role_matrix() {
    let stack = Stack::start(StackOptions::sqlite()).await;
    let doc: Value = stack
        .http
        .get(format!("{}/api/v1/openapi.json", stack.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let scope = op["security"][0]["bearer"][0]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} declares no permission"));
            let permission: Permission = scope.parse().unwrap();
            operations.push((method.to_uppercase(), path.clone(), permission));
        }
    }
    let mut documented: Vec<(String, String, String)> =
        operations.iter().map(|(m, p, perm)| (m.clone(), p.clone(), perm.to_string())).collect();
    let mut expected: Vec<(String, String, String)> =
        EXPECTED.iter().map(|(m, p, perm)| (m.to_string(), p.to_string(), perm.to_string())).collect();
    documented.sort();
    expected.sort();
    assert_eq!(documented, expected, "the OpenAPI scopes differ from the permissions this test expects");
    // Every permission of the matrix guards at least one route, except those that refine a
    // route's permission for some of its requests (checked in service_permissions.rs).
    let refinements = keyward_server::api::routes::REFINEMENTS;
    for p in Permission::ALL.iter().filter(|p| !refinements.contains(p)) {
        assert!(operations.iter().any(|(_, _, q)| q == p), "no route requires {p}");
    }

    let mut checked = 0;
    for (method, path, permission) in &operations {
        let url = format!("{}{}", stack.url, concrete(path));
        let body = matches!(method.as_str(), "POST" | "PUT" | "PATCH").then(|| json!({}));
        // No token.
        let mut req = stack.http.request(method.parse().unwrap(), &url);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let status = req.send().await.unwrap().status().as_u16();
        assert!(status == 401 || status == 429, "{method} {path} without a token: {status}");
        // A wrong token.
        let status = stack
            .http
            .request(method.parse().unwrap(), &url)
            .bearer_auth("kw_not-a-token")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        // 401, or 429 once this address has failed authentication too often in a minute.
        assert!(status == 401 || status == 429, "{method} {path} with an unknown token: {status}");
        for role in Role::ALL {
            let (status, response) = stack.call(*role, method, &concrete(path), body.clone()).await;
            if role.allows(*permission) {
                assert!(
                    status != 401 && status != 403,
                    "{role} may {permission} but {method} {path} said {status}: {response}"
                );
            } else {
                assert_eq!(
                    status, 403,
                    "{role} may not {permission} but {method} {path} said {status}: {response}"
                );
                let message = response["error"]["message"].as_str().unwrap();
                assert!(
                    message.contains(role.as_str()) && message.contains(permission.as_str()),
                    "{message}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, operations.len() * Role::ALL.len());

    // Public routes.
    for path in ["/healthz", "/metrics", "/api/v1/openapi.json"] {
        let status = stack.http.get(format!("{}{path}", stack.url)).send().await.unwrap().status().as_u16();
        assert_eq!(status, 200, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_stops_working_at_once() {
    let stack = Stack::start(StackOptions::sqlite()).await;
    let (status, _) = stack.call(Role::Helpdesk, "GET", "/api/v1/people", None).await;
    assert_eq!(status, 200);
    let (status, _) = stack.call(Role::Admin, "DELETE", "/api/v1/tokens/helpdesk", None).await;
    assert_eq!(status, 204);
    let (status, body) = stack.call(Role::Helpdesk, "GET", "/api/v1/people", None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("keyward admin token create"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revokes_itself_only_when_it_says_so() {
    let stack = Stack::start(StackOptions::sqlite()).await;
    let (status, body) = stack.call(Role::Admin, "DELETE", "/api/v1/tokens/admin", None).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("?confirm_self=true"), "{body}");
    // Refused means unchanged: the token still works.
    let (status, _) = stack.call(Role::Admin, "GET", "/api/v1/tokens", None).await;
    assert_eq!(status, 200);
    // Another token of the same role is no self-revocation.
    let (status, _) = stack.call(Role::Admin, "DELETE", "/api/v1/tokens/operator", None).await;
    assert_eq!(status, 204);
    let (status, _) = stack.call(Role::Admin, "DELETE", "/api/v1/tokens/admin?confirm_self=true", None).await;
    assert_eq!(status, 204);
    let (status, _) = stack.call(Role::Admin, "GET", "/api/v1/tokens", None).await;
    assert_eq!(status, 401);
}

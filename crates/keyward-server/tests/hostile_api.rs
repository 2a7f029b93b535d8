//! Hostile request bodies, over loopback HTTP against a real server with the emulator behind
//! it: whatever JSON (or non-JSON) an admin token posts to any operation that takes a body, the
//! answer is a 2xx or a 4xx with the error body — never a 5xx, never a dropped connection.
//!
//! `bench/fuzz.sh` runs this at 100 000 cases (`PROPTEST_CASES`); `cargo test` at 256.

use keyward_core::Role;
use keyward_testkit::hostile::{self, check};
use keyward_testkit::stack::*;
use proptest::prelude::*;
use serde_json::{Value, json};

/// Every operation with a request body: method, path (`{id}` is filled per case), the body's
/// members. `PUT /connector` is left out: a body it accepts replaces the connector, after which
/// Graph is out of reach and 502 is the right answer.
const OPERATIONS: &[(&str, &str, &[&str])] = &[
    ("PUT", "/api/v1/people/{id}/link", &["object_id", "upn", "slot", "force"]),
    ("POST", "/api/v1/people/sync", &["group"]),
    ("POST", "/api/v1/people/{id}/revoke-passkeys", &["reason"]),
    ("POST", "/api/v1/people/{id}/tap", &["lifetime_minutes", "once"]),
    ("POST", "/api/v1/issuances", &["person", "channel", "serial"]),
    ("POST", "/api/v1/issuances/{id}/approve", &[]),
    ("POST", "/api/v1/issuances/{id}/options", &[]),
    (
        "POST",
        "/api/v1/issuances/{id}/complete",
        &["client_data_json", "attestation_object", "serial", "firmware", "display_name"],
    ),
    ("POST", "/api/v1/issuances/{id}/cancel", &["reason"]),
    ("POST", "/api/v1/issuances/{id}/fail", &["reason"]),
    ("POST", "/api/v1/issuances/{id}/pin-handover", &["method", "detail"]),
    ("POST", "/api/v1/keys", &["serial", "aaguid", "model", "firmware"]),
    ("POST", "/api/v1/keys/{id}/state", &["state", "reason"]),
    ("POST", "/api/v1/keys/{id}/revoke-passkeys", &["reason"]),
    ("POST", "/api/v1/passkeys/{id}/revoke", &["reason"]),
    ("POST", "/api/v1/connector/validate-certificate", &["certificate_pem", "private_key_pem"]),
    (
        "PUT",
        "/api/v1/enrollment-policies/{id}",
        &["mode", "pin_min_length", "pin_force_change", "allowed_aaguids", "max_passkeys_per_person"],
    ),
    (
        "PATCH",
        "/api/v1/entra/fido2-policy",
        &["isAttestationEnforced", "keyRestrictions", "isSelfServiceRegistrationAllowed", "state"],
    ),
    ("POST", "/api/v1/tokens", &["name", "role"]),
    ("POST", "/api/v1/jobs/reconcile", &["person"]),
    ("POST", "/api/v1/jobs/bulk", &["rows"]),
    ("POST", "/api/v1/jobs/{id}/claim", &["count", "lease_secs"]),
    ("POST", "/api/v1/jobs/{id}/units", &["unit", "lease_token", "outcome", "result"]),
];

/// A body: an object with the operation's members (hostile values), any JSON, or not JSON.
#[derive(Debug, Clone)]
enum Body {
    Json(Value),
    Raw(Vec<u8>),
}

#[test]
fn hostile_api_bodies() {
    let stack = Stack::start_blocking(StackOptions::sqlite());
    let (status, _) = stack.block_on(stack.call(Role::Admin, "POST", "/api/v1/people/sync", Some(json!({}))));
    assert_eq!(status, 200);
    let (status, issuance) = stack.block_on(stack.call(
        Role::Admin,
        "POST",
        "/api/v1/issuances",
        Some(json!({"person": ADELE_UPN})),
    ));
    assert_eq!(status, 201, "{issuance}");
    let (_, people) = stack.block_on(stack.call(Role::Admin, "GET", "/api/v1/people", None));
    let ids = vec![
        people["items"][0]["id"].as_str().expect("a person").to_owned(),
        issuance["id"].as_str().expect("an issuance").to_owned(),
        uuid::Uuid::new_v4().to_string(),
        "Finance".to_owned(),
        "a%20b%00".to_owned(),
        "9223372036854775808".to_owned(),
    ];
    let operation = prop::sample::select((0..OPERATIONS.len()).collect::<Vec<_>>());
    let case = (operation, prop::sample::select(ids), any::<u8>()).prop_flat_map(|(op, id, pick)| {
        let (_, _, members) = OPERATIONS[op];
        let body = match pick % 8 {
            0 => hostile::json().prop_map(Body::Json).boxed(),
            1 => hostile::bytes(64).prop_map(Body::Raw).boxed(),
            _ => hostile::json_object_with(members).prop_map(Body::Json).boxed(),
        };
        (Just(op), Just(id), body)
    });
    let http = reqwest::Client::new();
    check("api-bodies", case, |(op, id, body)| {
        let (method, path, _) = OPERATIONS[op];
        let url = format!("{}{}", stack.url, path.replace("{id}", &id));
        let bytes = match &body {
            Body::Json(v) => serde_json::to_vec(v).expect("JSON"),
            Body::Raw(b) => b.clone(),
        };
        let request = http
            .request(method.parse().expect("a method"), &url)
            .bearer_auth(&stack.tokens[&Role::Admin])
            .header("content-type", "application/json")
            .body(bytes);
        let (status, text) = stack
            .block_on(async {
                let response = request.send().await.map_err(|e| format!("{method} {url}: {e}"))?;
                let status = response.status().as_u16();
                Ok::<_, String>((status, response.text().await.unwrap_or_default()))
            })
            .map_err(TestCaseError::fail)?;
        prop_assert!(status < 500, "{} {} answered {}: {}", method, url, status, text);
        if status >= 400 {
            let error: Value =
                serde_json::from_str(&text).map_err(|_| TestCaseError::fail(format!("{status}: {text}")))?;
            prop_assert!(error["error"]["message"].is_string(), "{}", text);
        }
        Ok(())
    });
}

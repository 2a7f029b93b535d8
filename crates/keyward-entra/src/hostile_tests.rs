//! Hostile Graph and token-endpoint answers: whatever a broken proxy or a hostile endpoint sends
//! back — error bodies of any shape, 2xx bodies that are not what the operation expects, access
//! tokens that are not JWTs — the connector turns into a typed error with the secrets redacted,
//! and never panics.
//!
//! These sit inside the crate because the readers (`graph::parse`, `graph::service_error`) are
//! crate-private; `bench/fuzz.sh` runs them at 100 000 cases each (`PROPTEST_CASES`).

use keyward_testkit::hostile::{self, check};
use keyward_webauthn::graph::{
    Collection, CredentialCreationOptions, Fido2Method, TokenErrorBody, TokenResponse,
};
use keyward_webauthn::policy::{Fido2Policy, TemporaryAccessPass};
use proptest::prelude::*;
use reqwest::Method;
use serde_json::{Value, json};

use crate::graph::{GraphResponse, parse, service_error};
use crate::ops::{Group, User};
use crate::token::{AccessToken, granted_roles};

/// A Graph error body: the documented shape with hostile members, any JSON, or any text.
fn error_body() -> impl Strategy<Value = String> {
    prop_oneof![
        hostile::json_object_with(&["code", "message", "innerError"])
            .prop_map(|inner| json!({ "error": inner }).to_string()),
        hostile::json().prop_map(|v| v.to_string()),
        hostile::text(),
        // A token echoed back in an error, which must never reach the message.
        "[a-z ]{0,10}"
            .prop_map(|p| format!("{p} eyJhbGciOiJub25lIn0.eyJzZWNyZXQiOjF9.c2lnbmF0dXJl trailing")),
    ]
}

#[test]
fn hostile_graph_error_bodies() {
    check("graph-error-bodies", (error_body(), 100u16..600), |(text, status)| {
        let error =
            service_error(&Method::POST, "/users/x/authentication", status, &text, "-".into(), "c".into());
        let shown = error.to_string();
        prop_assert!(!shown.contains("eyJzZWNyZXQiOjF9"), "a token reached the message: {shown}");
        prop_assert_eq!(error.status(), Some(status));
        Ok(())
    });
}

#[test]
fn hostile_graph_success_bodies() {
    check("graph-success-bodies", hostile::json(), |body| {
        let response = |body: &Value| GraphResponse {
            status: 200,
            body: body.clone(),
            request_id: "r".into(),
            attempts: 1,
        };
        let path = "https://graph.microsoft.com/v1.0/users/x";
        let _ = parse::<User>(&Method::GET, path, response(&body));
        let _ = parse::<Group>(&Method::GET, path, response(&body));
        let _ = parse::<Collection<Fido2Method>>(&Method::GET, path, response(&body));
        let _ = parse::<CredentialCreationOptions>(&Method::GET, path, response(&body));
        let _ = parse::<Fido2Policy>(&Method::GET, path, response(&body));
        let _ = parse::<TemporaryAccessPass>(&Method::POST, path, response(&body));
        let _ = serde_json::from_value::<TokenResponse>(body.clone());
        let _ = serde_json::from_value::<TokenErrorBody>(body);
        Ok(())
    });
}

/// An access token: three base64url segments whose middle one is any JSON, or any text.
fn access_token() -> impl Strategy<Value = String> {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    prop_oneof![
        (hostile::json(), hostile::bytes(16)).prop_map(move |(claims, sig)| format!(
            "eyJhbGciOiJSUzI1NiJ9.{}.{}",
            b64(claims.to_string().as_bytes()),
            b64(&sig)
        )),
        hostile::json_object_with(&["roles", "aud", "exp"]).prop_map(move |claims| format!(
            "eyJhbGciOiJSUzI1NiJ9.{}.c2ln",
            b64(claims.to_string().as_bytes())
        )),
        hostile::text(),
    ]
}

#[test]
fn hostile_access_tokens() {
    check("access-token-claims", access_token(), |token| {
        let _ = granted_roles(&AccessToken::for_tests(token));
        Ok(())
    });
}

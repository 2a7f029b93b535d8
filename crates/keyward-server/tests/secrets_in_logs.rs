//! Tokens, secrets, passes and PINs never reach the log, even at TRACE with the connector's
//! HTTP debug log on: the whole run's log (server, connector, store, HTTP stack) is captured
//! and searched for every secret that passed through it.

use keyward_core::Role;
use keyward_entra::ConnectorConfig;
use keyward_testkit::log::CapturedLog;
use keyward_testkit::stack::*;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_secret_is_logged_at_trace() {
    let log = CapturedLog::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let stack = Stack::start(StackOptions::sqlite()).await;
    let mut connector = ConnectorConfig::with_secret(
        &stack.sim.sim.read(|t| t.tenant_id.clone()),
        APP,
        SecretString::from(APP_SECRET),
    )
    .pointed_at(&stack.sim.base_url);
    connector.http_debug = true;
    stack.service.set_connector(&keyward_server::Caller::host("test"), connector).await.unwrap();

    stack.call(Role::Operator, "POST", "/api/v1/people/sync", Some(json!({}))).await;
    let mut desk = stack.soft_key();
    let (status, done) = provision(&stack, &mut desk, ADELE_UPN, "SK-LOG").await;
    assert_eq!(status, 200, "{done}");
    let (status, tap) =
        stack.call(Role::Helpdesk, "POST", &format!("/api/v1/people/{ADELE_UPN}/tap"), Some(json!({}))).await;
    assert_eq!(status, 200, "{tap}");
    let pass = tap["pass"].as_str().unwrap().to_owned();
    let (status, test) = stack.call(Role::Admin, "POST", "/api/v1/connector/test", None).await;
    assert_eq!(status, 200, "{test}");
    let (status, shown) = stack.call(Role::Admin, "GET", "/api/v1/connector", None).await;
    assert_eq!(status, 200);
    assert!(!shown.to_string().contains(APP_SECRET), "the connector view shows the secret: {shown}");

    let text = log.text();
    assert!(text.len() > 10_000, "the log captured too little to mean anything ({} bytes)", text.len());
    assert!(text.contains("fido2Methods"), "the HTTP debug log is not on");
    let mut secrets: Vec<(String, String)> = vec![
        ("client secret".into(), APP_SECRET.into()),
        ("temporary access pass".into(), pass),
        ("PIN".into(), desk.pin.expose_secret().to_owned()),
    ];
    for (role, token) in &stack.tokens {
        secrets.push((format!("{role} API token"), token.clone()));
        secrets.push((format!("{role} API token body"), token.trim_start_matches("kw_").to_owned()));
    }
    for (what, secret) in &secrets {
        assert!(!text.contains(secret.as_str()), "the {what} appears in the log");
    }
    // No bearer token or assertion of any kind: JWTs start with a base64url JSON header.
    // No bearer token or assertion of any kind: a JWT is `eyJ…` base64url, a dot, more, a dot.
    // (clientDataJSON also starts with `eyJ` in base64url, but has no dots: it may be logged.)
    if let Some(jwt) = find_jwt(&text) {
        panic!("a JWT (access token, ID token or client assertion) appears in the log: {}…", &jwt[..20]);
    }
}

fn find_jwt(text: &str) -> Option<&str> {
    let b64 = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut rest = text;
    while let Some(at) = rest.find("eyJ") {
        let candidate = &rest[at..];
        let len = candidate.find(|c: char| !(b64(c) || c == '.')).unwrap_or(candidate.len());
        let token = &candidate[..len];
        if token.split('.').filter(|part| part.len() >= 4).count() >= 2 {
            return Some(token);
        }
        rest = &candidate[3..];
    }
    None
}

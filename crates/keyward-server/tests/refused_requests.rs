//! Refused requests: failed authentication is limited per address (429, without reaching the
//! database) in bounded memory, every refusal reaches the audit chain aggregated, and tokens
//! expire.

use keyward_core::Role;
use keyward_testkit::stack::*;
use serde_json::json;

/// The process's resident memory, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("a VmRSS line");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("a number of KiB")
}

async fn guess(stack: &Stack, n: usize) -> Vec<u16> {
    let mut statuses = Vec::with_capacity(n);
    for i in 0..n {
        let (status, _) =
            call_api(&stack.http, &stack.url, &format!("kw_guess{i}"), "GET", "/api/v1/people", None).await;
        statuses.push(status);
    }
    statuses
}

#[tokio::test]
async fn ten_thousand_failed_authentications_are_answered_429_in_flat_memory() {
    let stack = Stack::start(StackOptions::sqlite()).await;
    let first = guess(&stack, 1_000).await;
    assert!(
        first[..keyward_server::auth::FAILURES_ALLOWED as usize].iter().all(|s| *s == 401),
        "{:?}",
        &first[..12]
    );
    assert!(first[keyward_server::auth::FAILURES_ALLOWED as usize..].iter().all(|s| *s == 429));
    let before = rss_kib();
    let rest = guess(&stack, 9_000).await;
    let after = rss_kib();
    assert!(rest.iter().all(|s| *s == 429));
    assert!(after.saturating_sub(before) < 8 * 1024, "memory grew from {before} KiB to {after} KiB");

    // A 429 says when to come back; a valid token from elsewhere is not affected, but from the
    // blocked address it waits too (the address, not the token, is what failed).
    let response =
        stack.http.get(format!("{}/api/v1/people", stack.url)).bearer_auth("kw_x").send().await.unwrap();
    assert_eq!(response.status(), 429);
    let wait: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");

    // Ten thousand refusals are one event in the chain, not ten thousand.
    let recorded = stack.service.flush_refusals().await.unwrap();
    assert!(recorded >= 10_001, "{recorded}");
    let export = stack.service.export_audit(&keyward_server::Caller::host("test")).await.unwrap();
    let refused: Vec<&str> = export.lines().filter(|l| l.contains("\"api.refused\"")).collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("unauthenticated") && refused[0].contains("rate-limited"), "{}", refused[0]);
}

#[tokio::test]
async fn forbidden_requests_are_counted_by_operation_and_written_once() {
    let stack = Stack::start(StackOptions::sqlite()).await;
    for _ in 0..3 {
        let (status, _) = stack.call(Role::Auditor, "POST", "/api/v1/people/sync", Some(json!({}))).await;
        assert_eq!(status, 403);
    }
    assert_eq!(stack.service.flush_refusals().await.unwrap(), 3);
    assert_eq!(stack.service.flush_refusals().await.unwrap(), 0, "a quiet window writes nothing");
    let (_, events) = stack.call(Role::Auditor, "GET", "/api/v1/audit?subject=api", None).await;
    let items = events["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{events}");
    let detail: serde_json::Value = serde_json::from_str(items[0]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["refused"][0]["operation"], "POST /api/v1/people/sync");
    assert_eq!(detail["refused"][0]["refusal"], "forbidden");
    assert_eq!(detail["refused"][0]["count"], 3);
}

#[tokio::test]
async fn tokens_expire_and_their_list_says_when_and_when_last_used() {
    let stack = Stack::start(StackOptions::sqlite()).await;
    let body = json!({"name": "ci", "role": "operator", "expires_in_days": 1});
    let (status, created) = stack.call(Role::Admin, "POST", "/api/v1/tokens", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert!(created["expires_at"].as_str().is_some(), "{created}");
    let (status, refused) = stack
        .call(
            Role::Admin,
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "x", "role": "operator", "expires_in_days": 0})),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    let token = created["token"].as_str().unwrap();
    let (status, _) = call_api(&stack.http, &stack.url, token, "GET", "/api/v1/people", None).await;
    assert_eq!(status, 200);
    let (_, list) = stack.call(Role::Admin, "GET", "/api/v1/tokens", None).await;
    let ci = list["items"].as_array().unwrap().iter().find(|t| t["name"] == "ci").unwrap().clone();
    assert!(ci["last_used_at"].as_str().is_some() && ci["expires_at"].as_str().is_some(), "{ci}");

    // Once its time has passed, a token is refused like an unknown one.
    let past = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let mut tx = stack.service.store.begin().await.unwrap();
    let (_, old) = keyward_store::tokens::create(&mut tx, "test", "old", Role::Operator, past).await.unwrap();
    tx.commit().await.unwrap();
    let old = secrecy::ExposeSecret::expose_secret(&old).to_owned();
    let (status, _) = call_api(&stack.http, &stack.url, &old, "GET", "/api/v1/people", None).await;
    assert_eq!(status, 401);
}

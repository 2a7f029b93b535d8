//! Bad input gets a clear error and changes nothing: an oversized body, malformed JSON, bad
//! base64, a corrupt attestation, another issuance's challenge, an expired challenge, a
//! completion before options, a disabled or unlinked person, an unknown state name, invented
//! HTTP methods.

use keyward_core::{Person, PersonSource, Role};
use keyward_testkit::stack::*;
use serde_json::{Value, json};

/// Creates an issuance for Adele and fetches its options; returns (id, options body).
async fn open_issuance(stack: &Stack) -> (String, Value) {
    let (status, issuance) =
        stack.call(Role::Operator, "POST", "/api/v1/issuances", Some(json!({"person": ADELE_UPN}))).await;
    assert_eq!(status, 201, "{issuance}");
    let id = issuance["id"].as_str().unwrap().to_owned();
    let (status, options) =
        stack.call(Role::Operator, "POST", &format!("/api/v1/issuances/{id}/options"), None).await;
    assert_eq!(status, 200, "{options}");
    (id, options)
}

async fn state_of(stack: &Stack, id: &str) -> String {
    let (_, i) = stack.call(Role::Auditor, "GET", &format!("/api/v1/issuances/{id}"), None).await;
    i["state"].as_str().unwrap().to_owned()
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_completions_are_refused_and_leave_the_issuance_open() {
    let stack = Stack::start(StackOptions::sqlite()).await;
    stack.call(Role::Operator, "POST", "/api/v1/people/sync", Some(json!({}))).await;
    let mut desk = stack.soft_key();
    let (id, options) = open_issuance(&stack).await;
    let (cdj, att) = desk.make_credential(&options["creation_options"]);
    let complete = format!("/api/v1/issuances/{id}/complete");

    // A body over the limit (256 KiB by default) is answered 413 with a message. 300 KiB fits
    // in the socket buffers, so the client always gets to read the answer.
    // A completion whose client data is `len` bytes of filler.
    let post_padded = |len: usize| {
        let filler = "A".repeat(len);
        stack
            .http
            .post(format!("{}{complete}", stack.url))
            .bearer_auth(&stack.tokens[&Role::Operator])
            .header("content-type", "application/json")
            .body(format!(r#"{{"client_data_json":"{filler}","attestation_object":""}}"#))
            .send()
    };
    let response = post_padded(300 * 1024).await.unwrap();
    assert_eq!(response.status().as_u16(), 413);
    let body: Value = response.json().await.unwrap();
    assert!(message(&body).contains("max_body_bytes"), "{body}");

    // 10 MB: the server answers 413 as soon as it sees the length and closes the connection; the
    // client may still be writing and then sees the connection closed instead of the answer.
    // Either way it is refused and nothing changes (checked below with the other cases).
    let sent = post_padded(10 * 1024 * 1024).await;
    match sent {
        Ok(response) => assert_eq!(response.status().as_u16(), 413),
        Err(e) => assert!(e.is_request(), "{e}"),
    }
    assert_eq!(state_of(&stack, &id).await, "options-issued");

    // Not JSON.
    let response = stack
        .http
        .post(format!("{}{complete}", stack.url))
        .bearer_auth(&stack.tokens[&Role::Operator])
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(message(&body).contains("JSON"), "{body}");

    type Case = (&'static str, Value, u16, &'static str);
    let cases: Vec<Case> = vec![
        (
            "bad base64",
            json!({"client_data_json": "%%%", "attestation_object": b64(&att)}),
            400,
            "not base64url",
        ),
        (
            "corrupt attestation",
            json!({"client_data_json": b64(&cdj), "attestation_object": b64(b"\xa1\x63fmt\x64none")}),
            422,
            "attestation object",
        ),
        (
            "truncated attestation",
            json!({"client_data_json": b64(&cdj), "attestation_object": b64(&att[..att.len() / 2])}),
            422,
            "",
        ),
        (
            "another challenge",
            json!({
                "client_data_json": b64(&String::from_utf8(cdj.clone()).unwrap().replacen("\"challenge\":\"", "\"challenge\":\"x", 1).into_bytes()),
                "attestation_object": b64(&att),
            }),
            422,
            "challenge",
        ),
        ("missing field", json!({"client_data_json": b64(&cdj)}), 400, "attestation_object"),
    ];
    for (name, body, status, needle) in cases {
        let (got, response) = stack.call(Role::Operator, "POST", &complete, Some(body)).await;
        assert_eq!(got, status, "{name}: {response}");
        assert!(message(&response).contains(needle), "{name}: {response}");
        assert_eq!(state_of(&stack, &id).await, "options-issued", "{name} changed the issuance");
        assert!(stack.sim_methods(ADELE).is_empty(), "{name} registered something");
    }
    let (_, pk) = stack.call(Role::Auditor, "GET", "/api/v1/passkeys", None).await;
    assert_eq!(pk["items"], json!([]), "a refused completion recorded a passkey");
    let (_, events) = stack.call(Role::Auditor, "GET", "/api/v1/audit?limit=1000", None).await;
    let events = events["items"].clone();
    assert!(events.as_array().unwrap().iter().any(|e| e["action"] == "issuance.complete-refused"));

    // The good body still completes the same issuance.
    let body = json!({"client_data_json": b64(&cdj), "attestation_object": b64(&att)});
    let (status, done) = stack.call(Role::Operator, "POST", &complete, Some(body)).await;
    assert_eq!(status, 200, "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_challenge_expires_the_issuance() {
    let stack = Stack::start(StackOptions::sqlite()).await;
    stack.call(Role::Operator, "POST", "/api/v1/people/sync", Some(json!({}))).await;
    let mut desk = stack.soft_key();
    let (id, options) = open_issuance(&stack).await;
    let (cdj, att) = desk.make_credential(&options["creation_options"]);
    sqlx::query("UPDATE issuance SET challenge_expires_at = 1 WHERE id = $1")
        .bind(&id)
        .execute(stack.service.store.pool())
        .await
        .unwrap();
    let body = json!({"client_data_json": b64(&cdj), "attestation_object": b64(&att)});
    let (status, response) =
        stack.call(Role::Operator, "POST", &format!("/api/v1/issuances/{id}/complete"), Some(body)).await;
    assert_eq!(status, 422, "{response}");
    assert!(message(&response).contains("expired"), "{response}");
    assert_eq!(state_of(&stack, &id).await, "expired");
    assert!(stack.sim_methods(ADELE).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuance_refuses_people_and_requests_it_cannot_serve() {
    let stack = Stack::start(StackOptions::sqlite()).await;
    stack.call(Role::Operator, "POST", "/api/v1/people/sync", Some(json!({}))).await;
    let mut tx = stack.service.store.begin().await.unwrap();
    let unlinked = Person::new("Nobody Linked", "nobody@contoso.onmicrosoft.com", PersonSource::Manual);
    keyward_store::people::insert(&mut tx, "test", &unlinked).await.unwrap();
    tx.commit().await.unwrap();

    let cases = [
        (json!({"person": "megan.bowen@contoso.onmicrosoft.com"}), 422, "disabled"),
        (json!({"person": "nobody@contoso.onmicrosoft.com"}), 422, "link"),
        (json!({"person": "ghost@contoso.onmicrosoft.com"}), 404, "sync people from entra"),
        (json!({"person": ADELE_UPN, "channel": "carrier-pigeon"}), 400, "operator"),
        (json!({"serial": "x"}), 400, "person"),
    ];
    for (body, status, needle) in cases {
        let (got, response) =
            stack.call(Role::Operator, "POST", "/api/v1/issuances", Some(body.clone())).await;
        assert_eq!(got, status, "{body}: {response}");
        assert!(message(&response).to_lowercase().contains(needle), "{body}: {response}");
    }
    let (_, list) = stack.call(Role::Auditor, "GET", "/api/v1/issuances", None).await;
    assert_eq!(list["items"], json!([]), "a refused request created an issuance");

    // Completing before options, and an unknown issuance.
    let (_, issuance) =
        stack.call(Role::Operator, "POST", "/api/v1/issuances", Some(json!({"person": ADELE_UPN}))).await;
    let id = issuance["id"].as_str().unwrap();
    let body = json!({"client_data_json": "e30", "attestation_object": "oA"});
    let (status, response) = stack
        .call(Role::Operator, "POST", &format!("/api/v1/issuances/{id}/complete"), Some(body.clone()))
        .await;
    assert_eq!(status, 409, "{response}");
    assert!(message(&response).contains("fetch creation options first"), "{response}");
    let (status, _) =
        stack.call(Role::Operator, "POST", "/api/v1/issuances/not-an-id/complete", Some(body)).await;
    assert_eq!(status, 404);
    let (status, response) = stack.call(Role::Auditor, "GET", "/api/v1/keys?state=misplaced", None).await;
    assert_eq!(status, 400);
    assert!(message(&response).contains("available"), "{response}");
}

/// Invented HTTP methods are answered and counted, but under one `other` label: a thousand of them
/// leave `/metrics` no larger than one does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_methods_add_no_metrics_labels() {
    let stack = Stack::start(StackOptions::sqlite()).await;
    let send = |method: String| {
        let request = stack.http.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), &stack.url);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let metrics = || async {
        stack.http.get(format!("{}/metrics", stack.url)).send().await.unwrap().text().await.unwrap()
    };
    assert_ne!(send("INVENTED0".into()).await, 200);
    let after_one = metrics().await;
    assert!(after_one.contains("method=\"other\""), "{after_one}");
    for i in 1..1000 {
        send(format!("INVENTED{i}")).await;
    }
    let after_fifty = metrics().await;
    assert!(!after_fifty.contains("INVENTED"), "an invented method became a label");
    // The label sets of the request metrics, without the histogram's bucket label.
    let label_sets = |text: &str| -> std::collections::BTreeSet<String> {
        text.lines()
            .filter_map(|l| Some(l.split_once('{')?.1.split_once('}')?.0))
            .filter(|labels| labels.contains("method="))
            .map(|labels| labels.split(',').filter(|l| !l.starts_with("le=")).collect::<Vec<_>>().join(","))
            .collect()
    };
    let added: Vec<String> = label_sets(&after_fifty).difference(&label_sets(&after_one)).cloned().collect();
    // Reading /metrics is itself counted once the first read has answered; nothing else is new.
    assert!(added.iter().all(|l| l.contains("route=\"/metrics\"")), "label sets added: {added:?}");
}

/// Hostile bodies an OpenAPI fuzzer sent: each is answered 400 with what to fix, and nothing
/// is written (the audit trail and Adele's record are as before). Before, the first two reached
/// Graph and came back as 502s, and the last two were accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_are_refused_before_they_reach_graph_or_the_database() {
    let stack = Stack::start(StackOptions::sqlite()).await;
    let (status, synced) = stack.call(Role::Admin, "POST", "/api/v1/people/sync", Some(json!({}))).await;
    assert_eq!(status, 200, "{synced}");
    let adele = format!("/api/v1/people/{ADELE_UPN}");
    let tap = format!("{adele}/tap");
    let link = format!("{adele}/link");
    let row = |line: Value| json!({"rows": [{"line": line, "upn": ADELE_UPN}]});
    let cases: Vec<(Role, &str, &str, Value, &str)> = vec![
        (Role::Admin, "POST", &tap, json!({"lifetime_minutes": 2_147_483_648u64}), "out of range"),
        (Role::Admin, "POST", &tap, json!({"lifetime_minutes": 9}), "10 to 43200"),
        (Role::Admin, "POST", &tap, json!([null, null]), "must be an object"),
        (Role::Admin, "PUT", &link, json!({"upn": ""}), "not a user principal name"),
        (Role::Admin, "PUT", &link, json!({"upn": "ada lovelace@contoso.com"}), "not a user principal name"),
        (
            Role::Admin,
            "PUT",
            &link,
            json!({"upn": format!("{}@contoso.com", "a".repeat(200))}),
            "at most 113",
        ),
        (Role::Admin, "POST", "/api/v1/jobs/bulk", row(json!(9_223_372_036_854_775_808u64)), "not valid"),
        (Role::Admin, "POST", "/api/v1/jobs/bulk", row(json!(-1)), "not valid"),
    ];
    let audit_len = || async {
        let (status, page) = stack.call(Role::Auditor, "GET", "/api/v1/audit?limit=1000", None).await;
        assert_eq!(status, 200, "{page}");
        page["items"].as_array().unwrap().len()
    };
    let events_before = audit_len().await;
    let (status, adele_before) = stack.call(Role::Auditor, "GET", &adele, None).await;
    assert_eq!(status, 200, "{adele_before}");
    for (role, method, path, body, says) in cases {
        let (status, answer) = stack.call(role, method, path, Some(body.clone())).await;
        assert_eq!(status, 400, "{method} {path} {body}: {answer}");
        assert!(message(&answer).contains(says), "{method} {path} {body}: {answer}");
    }
    assert_eq!(audit_len().await, events_before, "a refused request wrote to the audit trail");
    let (_, adele_after) = stack.call(Role::Auditor, "GET", &adele, None).await;
    assert_eq!(adele_after, adele_before);
}

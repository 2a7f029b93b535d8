//! Graph directory, policy, TAP, batching, throttling, faults and persistence, driven
//! over real HTTP on loopback.

use std::time::Duration;

use keyward_sim::faults::FaultSpec;
use keyward_sim::seed::Seed;
use keyward_sim::server::{RunningSim, spawn};
use keyward_sim::throttle::ThrottleProfile;
use keyward_sim::{Sim, SimOptions};
use keyward_testkit::seed::ENGINEERING;
use keyward_testkit::sim::start;
use serde_json::{Value, json};

const ALL_ROLES: &[&str] = &[
    "User.Read.All",
    "GroupMember.Read.All",
    "Policy.ReadWrite.AuthenticationMethod",
    "UserAuthenticationMethod.ReadWrite.All",
    "UserAuthMethod-Passkey.ReadWrite.All",
];

/// The example tenant plus `extra` numbered users, all in Engineering.
fn seed_with_users(extra: usize) -> Seed {
    keyward_testkit::seed::with_users(extra, |_, user| user.groups = vec![ENGINEERING.into()])
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    fn new(sim: &RunningSim, roles: &[&str]) -> Self {
        let app = sim.sim.read(|t| t.apps[0].client_id.clone());
        let token = sim.sim.issue_access_token(&app, roles.iter().map(|r| r.to_string()).collect());
        Self { http: reqwest::Client::new(), base: sim.base_url.clone(), token }
    }
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let url = if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.base) };
        let mut req =
            self.http.request(method, url).bearer_auth(&self.token).header("client-request-id", "cafe-1");
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        (status, headers, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
    async fn get(&self, path: &str) -> (u16, Value) {
        let (s, _, b) = self.call(reqwest::Method::GET, path, None).await;
        (s, b)
    }
    /// A GET with `ConsistencyLevel: eventual` (Graph's advanced queries).
    async fn get_eventual(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("ConsistencyLevel", "eventual")
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn every_response_carries_correlation_ids_and_errors_have_the_graph_shape() {
    let sim = start(Seed::example(), SimOptions::default()).await;
    let client = Client::new(&sim, ALL_ROLES);
    let (status, headers, body) =
        client.call(reqwest::Method::GET, "/v1.0/users/nobody@contoso.onmicrosoft.com", None).await;
    assert_eq!(status, 404);
    assert_eq!(headers["client-request-id"], "cafe-1");
    let request_id = headers["request-id"].to_str().unwrap();
    assert_eq!(body["error"]["code"], "Request_ResourceNotFound");
    assert_eq!(body["error"]["innerError"]["request-id"], request_id);
    assert_eq!(body["error"]["innerError"]["client-request-id"], "cafe-1");
    assert_eq!(body["error"]["innerError"]["date"].as_str().unwrap().len(), 19);
    assert!(headers.contains_key("x-ms-ags-diagnostic"));
}

#[tokio::test]
async fn tokens_are_required_and_roles_are_enforced() {
    let sim = start(Seed::example(), SimOptions::default()).await;
    let http = reqwest::Client::new();
    let resp = http.get(format!("{}/v1.0/users", sim.base_url)).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    let resp =
        http.get(format!("{}/v1.0/users", sim.base_url)).bearer_auth("not.a.token").send().await.unwrap();
    assert_eq!(resp.status(), 401);

    let reader = Client::new(&sim, &["User.Read.All"]);
    let (status, body) = reader
        .get("/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2")
        .await;
    assert_eq!(status, 403);
    assert!(body["error"]["message"].as_str().unwrap().contains("Policy.ReadWrite.AuthenticationMethod"));
}

#[tokio::test]
async fn users_get_select_filter_and_page() {
    let sim = start(seed_with_users(250), SimOptions::default()).await;
    let client = Client::new(&sim, ALL_ROLES);

    let (status, user) = client.get("/v1.0/users/adele.vance@contoso.onmicrosoft.com").await;
    assert_eq!(status, 200);
    assert_eq!(user["displayName"], "Adele Vance");
    assert!(user.get("accountEnabled").is_none(), "accountEnabled is only returned with $select");

    let (_, user) =
        client.get("/v1.0/users/5a2c8fa7-e162-4d34-b70b-6c8bad2e4f56?$select=id,accountEnabled").await;
    assert_eq!(user["accountEnabled"], false);
    assert!(user["@odata.context"].as_str().unwrap().ends_with("#users(id,accountEnabled)/$entity"));
    assert!(user.get("displayName").is_none());

    let (status, found) =
        client.get("/v1.0/users?$filter=userPrincipalName eq 'ALEX.WILBER@contoso.onmicrosoft.com'").await;
    assert_eq!(status, 200);
    assert_eq!(found["value"].as_array().unwrap().len(), 1);

    let (status, err) = client.get("/v1.0/users?$top=1000").await;
    assert_eq!(status, 400);
    assert!(err["error"]["message"].as_str().unwrap().contains("between 1 and 999"));
    let (status, _) = client.get("/v1.0/users?$skip=5").await;
    assert_eq!(status, 400);
    let (status, err) = client.get("/v1.0/users?$select=favouriteColour").await;
    assert_eq!(status, 400);
    assert!(err["error"]["message"].as_str().unwrap().contains("favouriteColour"));

    // Paging: 255 users, 100 per page by default, nextLink followed verbatim keeps $select.
    let mut seen = Vec::new();
    let mut next = Some(format!("{}/v1.0/users?$select=id,userPrincipalName", sim.base_url));
    while let Some(url) = next {
        let (status, page) = client.get(&url).await;
        assert_eq!(status, 200);
        for u in page["value"].as_array().unwrap() {
            assert!(u.get("displayName").is_none());
            seen.push(u["id"].as_str().unwrap().to_owned());
        }
        next = page["@odata.nextLink"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), 255);
    seen.dedup();
    assert_eq!(seen.len(), 255);

    let (status, members) =
        client.get("/v1.0/groups/1c8e4b63-ad2e-4f90-b3c7-2e4d6f8a0b12/members?$top=999").await;
    assert_eq!(status, 200);
    assert_eq!(members["value"].as_array().unwrap().len(), 251);
    assert_eq!(members["value"][0]["@odata.type"], "#microsoft.graph.user");
    let (_, groups) = client.get("/beta/groups?$filter=displayName eq 'Finance'").await;
    assert_eq!(groups["value"][0]["id"], "0b7f3a52-9c1d-4e8f-a2b6-1d3c5e7f9a01");
}

/// Graph's advanced-query rules: `$search`, `$count` and `$orderby` with `$filter` need
/// `ConsistencyLevel: eventual` (errors as seen in microsoft-graph-toolkit #3028 and
/// microsoft-graph-docs-contrib #2716); plain `$orderby` on displayName does not.
#[tokio::test]
async fn users_search_count_and_orderby_need_consistency_level_eventual() {
    let sim = start(Seed::example(), SimOptions::default()).await;
    let client = Client::new(&sim, ALL_ROLES);
    let message = |body: &Value| body["error"]["message"].as_str().unwrap_or("").to_owned();
    #[rustfmt::skip]
    let refused: Vec<(&str, &str, &str)> = vec![
        ("/v1.0/users?$search=\"displayName:adele\"", "Request_UnsupportedQuery",
         "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'"),
        ("/v1.0/users?$count=true", "Request_BadRequest", "$count is not currently supported."),
        ("/v1.0/users?$orderby=displayName&$filter=accountEnabled eq true", "Request_UnsupportedQuery", "Sorting not supported"),
    ];
    for (path, code, text) in refused {
        let (status, body) = client.get(path).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some(code)), "{path}: {body}");
        assert!(message(&body).starts_with(text), "{path}: {body}");
    }

    let names = |body: &Value| -> Vec<String> {
        body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["displayName"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, sorted) = client.get("/v1.0/users?$orderby=displayName desc&$top=2").await;
    assert_eq!(status, 200, "{sorted}");
    assert_eq!(names(&sorted), ["Pradeep Gupta", "Partner Guest"]);

    let (status, found) = client
        .get_eventual("/v1.0/users?$search=\"displayName:van\" OR \"displayName:bow\"&$count=true")
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(names(&found), ["Adele Vance", "Megan Bowen"]);
    assert_eq!(found["@odata.count"], 2);
    let (status, both) = client
        .get_eventual("/v1.0/users?$filter=accountEnabled eq true&$orderby=userPrincipalName&$count=true")
        .await;
    assert_eq!(status, 200, "{both}");
    assert_eq!(both["@odata.count"], 4);
    assert_eq!(names(&both)[0], "Adele Vance");
    sim.stop().await;
}

#[tokio::test]
async fn fido2_policy_read_patch_reset_and_bad_patches_change_nothing() {
    let sim = start(Seed::example(), SimOptions::default()).await;
    let client = Client::new(&sim, ALL_ROLES);
    let path = "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2";
    let (status, before) = client.get(path).await;
    assert_eq!(status, 200);
    assert_eq!(before["id"], "Fido2");
    assert_eq!(before["@odata.type"], "#microsoft.graph.fido2AuthenticationMethodConfiguration");

    let patch = json!({"@odata.type": "#microsoft.graph.fido2AuthenticationMethodConfiguration", "isAttestationEnforced": true,
        "keyRestrictions": {"isEnforced": true, "enforcementType": "allow", "aaGuids": ["cb69481e-8ff7-4039-93ec-0a2729a154a8"]}});
    let (status, _, _) = client.call(reqwest::Method::PATCH, path, Some(patch)).await;
    assert_eq!(status, 204);
    let (_, after) = client
        .get("/beta/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/('Fido2')")
        .await;
    assert_eq!(after["isAttestationEnforced"], true);
    assert_eq!(after["keyRestrictions"]["enforcementType"], "allow");
    assert_eq!(after["excludeTargets"], before["excludeTargets"], "unpatched fields are kept");

    let bad = [
        json!({"isAttestationEnforced": false}),
        json!({"@odata.type": "#microsoft.graph.fido2AuthenticationMethodConfiguration", "state": "sometimes"}),
        json!({"@odata.type": "#microsoft.graph.fido2AuthenticationMethodConfiguration", "passkeyProfiles": [
            {"id": "1", "name": "a", "passkeyTypes": "synced", "attestationEnforcement": "registrationOnly"}]}),
    ];
    for patch in bad {
        let (status, _, body) = client.call(reqwest::Method::PATCH, path, Some(patch.clone())).await;
        assert_eq!(status, 400, "{patch}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
        let (_, now) = client.get(path).await;
        assert_eq!(now["isAttestationEnforced"], true, "a refused patch changed the policy: {patch}");
    }

    let (status, _, _) = client.call(reqwest::Method::DELETE, path, None).await;
    assert_eq!(status, 204);
    let (_, reset) = client.get(path).await;
    assert_eq!(reset["isAttestationEnforced"], false);
    assert_eq!(reset["includeTargets"][0]["id"], "all_users");

    let (status, whole) = client.get("/v1.0/policies/authenticationMethodsPolicy").await;
    assert_eq!(status, 200);
    assert_eq!(whole["authenticationMethodConfigurations"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn temporary_access_pass_lifecycle_and_policy_bounds() {
    let sim = start(Seed::example(), SimOptions::default()).await;
    let client = Client::new(&sim, ALL_ROLES);
    let base = "/v1.0/users/adele.vance@contoso.onmicrosoft.com/authentication/temporaryAccessPassMethods";
    let (status, _, created) = client
        .call(reqwest::Method::POST, base, Some(json!({"lifetimeInMinutes": 60, "isUsableOnce": true})))
        .await;
    assert_eq!(status, 201);
    assert_eq!(created["temporaryAccessPass"].as_str().unwrap().len(), 8);
    assert_eq!(created["isUsable"], true);
    assert_eq!(created["methodUsabilityReason"], "EnabledByPolicy");
    let id = created["id"].as_str().unwrap().to_owned();

    let (_, list) = client.get(base).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    assert_eq!(list["value"][0]["temporaryAccessPass"], Value::Null, "the pass is shown only once");

    // A second pass replaces the first.
    let (_, _, second) = client
        .call(reqwest::Method::POST, base, Some(json!({"startDateTime": "2099-01-01T00:00:00Z"})))
        .await;
    assert_eq!(second["methodUsabilityReason"], "NotYetValid");
    let (status, _) = client.get(&format!("{base}/{id}")).await;
    assert_eq!(status, 404);

    for (body, reason) in [
        (json!({"lifetimeInMinutes": 5}), "outside the policy"),
        (json!({"lifetimeInMinutes": 481}), "outside the policy"),
        (json!({"startDateTime": "tomorrow"}), "ISO 8601"),
    ] {
        let (status, _, err) = client.call(reqwest::Method::POST, base, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}");
        assert!(err["error"]["message"].as_str().unwrap().contains(reason), "{err}");
    }
    let second_id = second["id"].as_str().unwrap();
    let (status, _, _) = client.call(reqwest::Method::DELETE, &format!("{base}/{second_id}"), None).await;
    assert_eq!(status, 204);
    let (_, list) = client.get(base).await;
    assert!(list["value"].as_array().unwrap().is_empty());
}

/// The TAP policy's includeTargets and excludeTargets decide who may be issued a pass.
#[tokio::test]
async fn temporary_access_passes_follow_the_policy_targets() {
    let sim = start(Seed::example(), SimOptions::default()).await;
    let client = Client::new(&sim, ALL_ROLES);
    let (status, policy) =
        client.get("/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass").await;
    assert_eq!(status, 200);
    assert_eq!(policy["includeTargets"][0]["id"], "all_users", "{policy}");
    let finance = "0b7f3a52-9c1d-4e8f-a2b6-1d3c5e7f9a01";
    let exclusions = "2d9f5c74-be3f-4a01-84d8-3f5e7a9b1c23";
    let patch = json!({
        "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration",
        "includeTargets": [
            {"targetType": "group", "id": finance, "isRegistrationRequired": false},
            {"targetType": "group", "id": exclusions, "isRegistrationRequired": false}
        ],
        "excludeTargets": [{"targetType": "group", "id": exclusions}],
    });
    let (status, _, body) = client
        .call(
            reqwest::Method::PATCH,
            "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass",
            Some(patch),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let pass_for = |upn: &str| format!("/v1.0/users/{upn}/authentication/temporaryAccessPassMethods");
    #[rustfmt::skip]
    let cases = [
        ("included by group", "adele.vance@contoso.onmicrosoft.com", 201, ""),
        ("not included", "alex.wilber@contoso.onmicrosoft.com", 403, "not in includeTargets"),
        ("included and excluded", "pradeep.gupta@contoso.onmicrosoft.com", 403, "in excludeTargets"),
    ];
    for (name, upn, want, text) in cases {
        let (status, _, body) = client.call(reqwest::Method::POST, &pass_for(upn), Some(json!({}))).await;
        assert_eq!(status, want, "{name}: {body}");
        assert!(body["error"]["message"].as_str().unwrap_or("").contains(text), "{name}: {body}");
    }
    sim.stop().await;
}

#[tokio::test]
async fn batch_runs_each_request_and_fails_dependents_with_424() {
    let sim = start(Seed::example(), SimOptions::default()).await;
    let client = Client::new(&sim, ALL_ROLES);
    let body = json!({"requests": [
        {"id": "1", "method": "GET", "url": "/users/adele.vance@contoso.onmicrosoft.com?$select=id"},
        {"id": "2", "method": "GET", "url": "/users/ghost@contoso.onmicrosoft.com"},
        {"id": "3", "method": "GET", "url": "users?$top=2", "dependsOn": ["1"]},
        {"id": "4", "method": "GET", "url": "/users", "dependsOn": ["2"]},
        {"id": "5", "method": "POST", "url": "/users/adele.vance@contoso.onmicrosoft.com/authentication/temporaryAccessPassMethods",
         "headers": {"Content-Type": "application/json"}, "body": {"lifetimeInMinutes": 60}}
    ]});
    let (status, _, result) = client.call(reqwest::Method::POST, "/v1.0/$batch", Some(body)).await;
    assert_eq!(status, 200);
    let by_id =
        |id: &str| result["responses"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(by_id("1")["status"], 200);
    assert_eq!(by_id("1")["body"]["id"], "3e0a6d85-cf40-4b12-95e9-4a6f8b0c2d34");
    assert_eq!(by_id("2")["status"], 404);
    assert_eq!(by_id("3")["status"], 200);
    assert_eq!(by_id("4")["status"], 424);
    assert_eq!(by_id("5")["status"], 201);

    let (status, _, err) = client
        .call(reqwest::Method::POST, "/v1.0/$batch", Some(json!({"requests": [{"id": "1", "method": "GET", "url": "/users"}, {"id": "1", "method": "GET", "url": "/users"}]})))
        .await;
    assert_eq!(status, 400);
    assert!(err["error"]["message"].as_str().unwrap().contains("more than once"));
}

#[tokio::test]
async fn throttling_answers_429_with_retry_after_and_honouring_it_succeeds() {
    let options =
        SimOptions { throttle: ThrottleProfile::parse("writes=3/1s").unwrap(), ..SimOptions::default() };
    let sim = start(Seed::example(), options).await;
    let client = Client::new(&sim, ALL_ROLES);
    let path = "/v1.0/users/adele.vance@contoso.onmicrosoft.com/authentication/temporaryAccessPassMethods";
    for _ in 0..3 {
        let (status, headers, _) = client.call(reqwest::Method::POST, path, Some(json!({}))).await;
        assert_eq!(status, 201);
        assert_eq!(headers["x-ms-resource-unit"], "1");
    }
    let (status, headers, body) = client.call(reqwest::Method::POST, path, Some(json!({}))).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], "TooManyRequests");
    assert_eq!(headers["x-ms-throttle-information"], "WriteLimitExceeded");
    assert!(headers["x-ms-throttle-scope"].to_str().unwrap().starts_with("Tenant_Application/Write/"));
    let wait: f64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait > 0.0 && wait < 2.0, "{wait}");
    tokio::time::sleep(Duration::from_secs_f64(wait + 0.05)).await;
    let (status, _, _) = client.call(reqwest::Method::POST, path, Some(json!({}))).await;
    assert_eq!(status, 201, "waiting Retry-After is enough");

    // Inside a batch each request is throttled on its own; the batch answers 200.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let requests: Vec<Value> = (0..5)
        .map(|i| json!({"id": i.to_string(), "method": "POST", "url": path.trim_start_matches("/v1.0"), "headers": {"Content-Type": "application/json"}, "body": {}}))
        .collect();
    let (status, _, result) =
        client.call(reqwest::Method::POST, "/v1.0/$batch", Some(json!({"requests": requests}))).await;
    assert_eq!(status, 200);
    let statuses: Vec<u64> =
        result["responses"].as_array().unwrap().iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 3, "{statuses:?}");
    let throttled = result["responses"].as_array().unwrap().iter().find(|r| r["status"] == 429).unwrap();
    assert!(throttled["headers"]["retry-after"].is_string());
}

#[tokio::test]
async fn faults_are_seeded_and_lost_writes_are_committed() {
    let options = SimOptions { faults: FaultSpec::parse("lost=1,seed=3").unwrap(), ..SimOptions::default() };
    let sim = start(Seed::example(), options).await;
    let client = Client::new(&sim, ALL_ROLES);
    let url = format!(
        "{}/v1.0/users/adele.vance@contoso.onmicrosoft.com/authentication/temporaryAccessPassMethods",
        sim.base_url
    );
    let result = client.http.post(&url).bearer_auth(&client.token).json(&json!({})).send().await;
    assert!(result.is_err(), "the response must be lost");
    // ...but the write happened: reads are never lost.
    let (status, list) = client.get(&url).await;
    assert_eq!(status, 200);
    assert_eq!(list["value"].as_array().unwrap().len(), 1);

    let options = SimOptions {
        faults: FaultSpec::parse("503=0.5,seed=11,retry-after=2").unwrap(),
        ..SimOptions::default()
    };
    let sim = start(Seed::example(), options).await;
    let client = Client::new(&sim, ALL_ROLES);
    let mut unavailable = 0;
    for _ in 0..40 {
        let (status, headers, body) = client.call(reqwest::Method::GET, "/v1.0/users?$top=1", None).await;
        if status == 503 {
            unavailable += 1;
            assert_eq!(headers["retry-after"], "2");
            assert_eq!(headers["client-request-id"], "cafe-1");
            assert_eq!(body["error"]["code"], "serviceNotAvailable");
        } else {
            assert_eq!(status, 200);
        }
    }
    assert!((10..=30).contains(&unavailable), "{unavailable} of 40");
}

#[tokio::test]
async fn latency_is_added_to_every_call() {
    let options = SimOptions { latency: Duration::from_millis(150), ..SimOptions::default() };
    let sim = start(Seed::example(), options).await;
    let client = Client::new(&sim, ALL_ROLES);
    let started = std::time::Instant::now();
    let (status, _) = client.get("/v1.0/users?$top=1").await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn state_file_keeps_changes_and_tokens_across_restarts() {
    let dir = std::env::temp_dir().join(format!("keyward-sim-state-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("tenant.json");
    let options = SimOptions { state_file: Some(state.clone()), ..SimOptions::default() };
    let sim = start(Seed::example(), options.clone()).await;
    let client = Client::new(&sim, ALL_ROLES);
    let path = "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2";
    let patch = json!({"@odata.type": "#microsoft.graph.fido2AuthenticationMethodConfiguration", "state": "disabled"});
    assert_eq!(client.call(reqwest::Method::PATCH, path, Some(patch)).await.0, 204);
    let token = client.token.clone();
    sim.stop().await;

    // The seed says enabled; the state file wins, and the old token is still valid.
    let sim = start(Seed::example(), options).await;
    let client = Client { base: sim.base_url.clone(), token, http: reqwest::Client::new() };
    let (status, policy) = client.get(path).await;
    assert_eq!(status, 200);
    assert_eq!(policy["state"], "disabled");
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(
        !text.contains("sim-secret-change-me") || text.contains("clientSecret"),
        "state is the tenant, as seeded"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn unknown_segments_get_graphs_bad_request() {
    let sim = start(Seed::example(), SimOptions::default()).await;
    let client = Client::new(&sim, ALL_ROLES);
    let (status, body) = client.get("/v1.0/me/authentication/fido2Methods").await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("fido2Methods"));
}

#[tokio::test]
async fn tls_serves_with_a_certificate_clients_can_pin() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = keyward_sim::server::SelfSignedTls::generate().unwrap();
    let pem = tls.certificate_pem.clone();
    let sim = spawn(
        Sim::new(Seed::example(), SimOptions::default()).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        Some(tls),
    )
    .await
    .unwrap();
    assert!(sim.base_url.starts_with("https://"));
    let trusting = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let tenant = sim.sim.read(|t| t.tenant_id.clone());
    let url = format!("{}/{tenant}/v2.0/.well-known/openid-configuration", sim.base_url);
    assert_eq!(trusting.get(&url).send().await.unwrap().status(), 200);
    assert!(reqwest::Client::new().get(&url).send().await.is_err(), "an untrusted certificate is refused");
}

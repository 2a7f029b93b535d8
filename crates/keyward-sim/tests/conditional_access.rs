//! Conditional Access as in the seed scenario, over real HTTP on loopback: phishing-resistant
//! authentication strength for every resource, and a TAP accepted for registering security info.
//! Password sign-in (the sign-in page) is refused, a TAP works only for registration, and
//! Keyward's onboarding path — a TAP issued through Graph, as `keyward tap issue` does, then the
//! person registers a passkey signed in with it — ends with a passkey accepted everywhere.
//! Run in default and `--strict` mode (no rule here differs between them).

use keyward_sim::SimOptions;
use keyward_sim::seed::Seed;
use keyward_sim::server::RunningSim;
use keyward_testkit::desk::{AAGUID, MODEL, SoftDesk};
use keyward_testkit::seed::{ADELE, ADELE_UPN, APP, READER, READER_SECRET, TENANT, trust_ca};
use keyward_testkit::sim::{app_token, install_crypto, start, unthrottled};
use keyward_testkit::{TestCa, test_ca};
use keyward_webauthn::registration::{RegistrationPlan, registration_body};
use serde_json::{Value, json};

const REGISTRATION_SCOPE: &str = "https://mysignins.microsoft.com/.default";
const REDIRECT: &str = "http://127.0.0.1:8443/auth/callback";

fn ca() -> &'static TestCa {
    static CA: std::sync::OnceLock<TestCa> = std::sync::OnceLock::new();
    CA.get_or_init(|| test_ca(AAGUID, "Authenticator Attestation"))
}

/// The seed scenario's two policies.
pub fn scenario_policies() -> Value {
    json!([
        {
            "id": "6a1e0f3c-0000-4000-8000-000000000001",
            "displayName": "Require phishing-resistant MFA for all resources",
            "state": "enabled",
            "conditions": {
                "users": { "includeUsers": ["All"] },
                "applications": { "includeApplications": ["All"] },
                "clientAppTypes": ["all"]
            },
            "grantControls": {
                "operator": "OR", "builtInControls": [],
                "authenticationStrength": {
                    "id": "00000000-0000-0000-0000-000000000004",
                    "displayName": "Phishing-resistant MFA",
                    "allowedCombinations": ["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor"]
                }
            }
        },
        {
            "id": "6a1e0f3c-0000-4000-8000-000000000002",
            "displayName": "TAP for registering security info",
            "state": "enabled",
            "conditions": {
                "users": { "includeUsers": ["All"] },
                "applications": { "includeUserActions": ["urn:user:registersecurityinfo"] }
            },
            "grantControls": {
                "operator": "OR",
                "authenticationStrength": {
                    "id": "7b3c1d2e-0000-4000-8000-000000000003",
                    "displayName": "Passkey or TAP",
                    "allowedCombinations": ["fido2", "temporaryAccessPassOneTime", "temporaryAccessPassMultiUse"]
                }
            }
        }
    ])
}

async fn sim(strict: bool, with_policies: bool) -> RunningSim {
    let mut seed = Seed::example();
    trust_ca(&mut seed, ca(), AAGUID, MODEL);
    if with_policies {
        seed.conditional_access_policies = serde_json::from_value(scenario_policies()).unwrap();
    }
    start(seed, SimOptions { strict, ..unthrottled() }).await
}

fn http() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn post(sim: &RunningSim, path: &str, body: &Value) -> (u16, Value) {
    let response = http().post(format!("{}/{TENANT}/{path}", sim.base_url)).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A TAP for Adele through Graph, as Keyward's `tap issue` asks for it.
async fn issue_tap(sim: &RunningSim) -> String {
    let http = http();
    let token = app_token(&http, &sim.base_url).await;
    let url = format!("{}/v1.0/users/{ADELE}/authentication/temporaryAccessPassMethods", sim.base_url);
    let response =
        http.post(url).bearer_auth(token).json(&json!({ "isUsableOnce": true })).send().await.unwrap();
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["temporaryAccessPass"].as_str().unwrap().to_owned()
}

async fn tap_sign_in(sim: &RunningSim, pass: &str, scope: Option<&str>) -> (u16, Value) {
    let mut body = json!({ "clientId": APP, "username": ADELE_UPN, "temporaryAccessPass": pass });
    if let Some(scope) = scope {
        body["scope"] = scope.into();
    }
    post(sim, "tap/signin", &body).await
}

fn code(body: &Value) -> u64 {
    body["error_codes"][0].as_u64().unwrap_or(0)
}

/// The sign-in page's pick: a password sign-in as far as Conditional Access is concerned.
async fn password_sign_in(sim: &RunningSim) -> (u16, String) {
    let form = [
        ("client_id", APP),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid"),
        ("user_id", ADELE),
    ];
    let response = http()
        .post(format!("{}/{TENANT}/oauth2/v2.0/authorize", sim.base_url))
        .form(&form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Registers a passkey for the person signed in with `token` at the security-info endpoints.
async fn register_with(sim: &RunningSim, desk: &mut SoftDesk, token: &str) -> (u16, Value) {
    let http = http();
    let base = format!("{}/{TENANT}/securityinfo/passkey", sim.base_url);
    let response = http.get(format!("{base}/creationOptions")).bearer_auth(token).send().await.unwrap();
    if response.status() != 200 {
        return (response.status().as_u16(), response.json().await.unwrap_or(Value::Null));
    }
    let options: Value = response.json().await.unwrap();
    let (plan, attestation_object): (RegistrationPlan, Vec<u8>) = desk.register(&options);
    let prepared = registration_body(&plan, &attestation_object, "Registered with a TAP", None).unwrap();
    let response = http.post(&base).bearer_auth(token).json(&prepared.request).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

async fn passkey_sign_in(sim: &RunningSim, desk: &mut SoftDesk, scope: &str) -> (u16, Value) {
    let (status, options) = post(sim, "passkey/signin/options", &json!({ "clientId": APP })).await;
    assert_eq!(status, 200, "{options}");
    let signed = desk.sign_in(options["challenge"].as_str().unwrap(), None);
    post(
        sim,
        "passkey/signin",
        &json!({ "clientId": APP, "scope": scope, "credential": signed.to_credential() }),
    )
    .await
}

#[tokio::test]
async fn onboarding_with_a_tap_works_under_the_seed_scenarios_conditional_access() {
    for strict in [false, true] {
        let sim = sim(strict, true).await;
        // Password sign-in is refused.
        let (status, page) = password_sign_in(&sim).await;
        assert_eq!(status, 400, "strict={strict}: {page}");
        assert!(page.contains("AADSTS53003"), "{page}");
        assert!(page.contains("Require phishing-resistant MFA for all resources"), "{page}");

        // The TAP does not give access to resources…
        let pass = issue_tap(&sim).await;
        let (status, body) = tap_sign_in(&sim, &pass, None).await;
        assert_eq!((status, code(&body)), (400, 53003), "{body}");
        // …but signs in for registering security info (the refusal above did not spend it).
        let (status, tokens) = tap_sign_in(&sim, &pass, Some(REGISTRATION_SCOPE)).await;
        assert_eq!(status, 200, "{tokens}");
        let registration_token = tokens["access_token"].as_str().unwrap().to_owned();

        // The person registers a passkey signed in with the TAP.
        let mut desk = SoftDesk::with_ca(ca());
        let (status, method) = register_with(&sim, &mut desk, &registration_token).await;
        assert_eq!(status, 201, "{method}");
        assert_eq!(method["displayName"], "Registered with a TAP");
        let http = http();
        let app = app_token(&http, &sim.base_url).await;
        let methods = keyward_testkit::sim::fido2_methods(&http, &sim.base_url, &app, ADELE).await;
        assert_eq!(methods.len(), 1, "the passkey is Adele's in Graph: {methods:?}");

        // The one-time TAP is spent; the passkey is accepted everywhere.
        let (status, body) = tap_sign_in(&sim, &pass, Some(REGISTRATION_SCOPE)).await;
        assert_eq!((status, code(&body)), (400, 50126), "{body}");
        for scope in ["openid profile", REGISTRATION_SCOPE] {
            let (status, tokens) = passkey_sign_in(&sim, &mut desk, scope).await;
            assert_eq!(status, 200, "strict={strict}, scope {scope}: {tokens}");
        }
        sim.stop().await;
    }
}

#[tokio::test]
async fn without_the_policies_the_same_sign_ins_are_accepted_and_only_a_registration_token_registers() {
    let sim = sim(false, false).await;
    let (status, page) = password_sign_in(&sim).await;
    assert_eq!(status, 302, "no policy, no refusal: {page}");
    let pass = issue_tap(&sim).await;
    let (status, tokens) = tap_sign_in(&sim, &pass, None).await;
    assert_eq!(status, 200, "{tokens}");
    // A token for resources does not register security info.
    let mut desk = SoftDesk::with_ca(ca());
    let (status, body) = register_with(&sim, &mut desk, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("not for security-info registration"),
        "{body}"
    );
    let (status, _) = register_with(&sim, &mut desk, "not-a-token").await;
    assert_eq!(status, 401);
    sim.stop().await;
}

#[tokio::test]
async fn graph_lists_the_policies_to_an_app_with_policy_read_all_only() {
    let sim = sim(false, true).await;
    let http = http();
    let token = app_token(&http, &sim.base_url).await;
    let url = format!("{}/v1.0/identity/conditionalAccess/policies", sim.base_url);
    let list: Value = http.get(&url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    let value = list["value"].as_array().unwrap();
    assert_eq!(value.len(), 2, "{list}");
    assert_eq!(value[0]["@odata.type"], "#microsoft.graph.conditionalAccessPolicy");
    assert_eq!(value[0]["grantControls"]["authenticationStrength"]["allowedCombinations"][1], "fido2");
    let one = http
        .get(format!("{url}/{}", value[1]["id"].as_str().unwrap()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let reader: Value = http
        .post(format!("{}/{TENANT}/oauth2/v2.0/token", sim.base_url))
        .form(&[
            ("client_id", READER),
            ("client_secret", READER_SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let denied = http.get(&url).bearer_auth(reader["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(denied.status(), 403);
    let body: Value = denied.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("Policy.Read.All"), "{body}");
    sim.stop().await;
}

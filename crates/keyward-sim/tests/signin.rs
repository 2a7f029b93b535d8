//! Proof of sign-in at the emulator, over real HTTP on loopback: a passkey registered through
//! Graph signs its person in (assertion options, then a WebAuthn assertion made by Keyward's
//! soft key behind Keyward's CTAP client), and a Temporary Access Pass signs in once within its
//! lifetime. Every refusal is a row of a table, run in default and `--strict` mode.

use keyward_sim::SimOptions;
use keyward_sim::server::RunningSim;
use keyward_testkit::desk::{AAGUID, MODEL, SoftDesk};
use keyward_testkit::seed::{ADELE, ADELE_UPN, ALEX, ALEX_UPN, APP, TENANT, trust_ca};
use keyward_testkit::sim::{app_token, install_crypto, start, unthrottled};
use keyward_testkit::{TestCa, test_ca};
use keyward_webauthn::registration::{RegistrationPlan, registration_body};
use keyward_webauthn::signin::AssertionCredential;
use serde_json::{Value, json};

fn ca() -> &'static TestCa {
    static CA: std::sync::OnceLock<TestCa> = std::sync::OnceLock::new();
    CA.get_or_init(|| test_ca(AAGUID, "Authenticator Attestation"))
}

fn options(strict: bool) -> SimOptions {
    SimOptions { strict, ..unthrottled() }
}

async fn sim(strict: bool) -> RunningSim {
    let mut seed = keyward_sim::seed::Seed::example();
    trust_ca(&mut seed, ca(), AAGUID, MODEL);
    start(seed, options(strict)).await
}

fn http() -> reqwest::Client {
    install_crypto();
    reqwest::Client::new()
}

/// Registers a passkey on `desk` for `user` through Graph; returns its credential id and method id.
async fn register(sim: &RunningSim, desk: &mut SoftDesk, user: &str) -> (Vec<u8>, String) {
    let http = http();
    let token = app_token(&http, &sim.base_url).await;
    let url = format!("{}/v1.0/users/{user}/authentication/fido2Methods", sim.base_url);
    let options: Value = http
        .get(format!("{url}/creationOptions"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (plan, attestation_object): (RegistrationPlan, Vec<u8>) = desk.register(&options);
    let prepared = registration_body(&plan, &attestation_object, "Sign-in test key", None).unwrap();
    let response = http.post(&url).bearer_auth(&token).json(&prepared.request).send().await.unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let method: Value = response.json().await.unwrap();
    (prepared.credential_id, method["id"].as_str().unwrap().to_owned())
}

async fn post(sim: &RunningSim, path: &str, body: &Value) -> (u16, Value) {
    let response = http().post(format!("{}/{TENANT}/{path}", sim.base_url)).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn challenge(sim: &RunningSim, login_hint: Option<&str>) -> String {
    let mut body = json!({ "clientId": APP });
    if let Some(hint) = login_hint {
        body["loginHint"] = hint.into();
    }
    let (status, options) = post(sim, "passkey/signin/options", &body).await;
    assert_eq!(status, 200, "{options}");
    assert_eq!(options["rpId"], "login.microsoft.com");
    assert_eq!(options["userVerification"], "required");
    assert_eq!(options["allowCredentials"], json!([]));
    options["challenge"].as_str().unwrap().to_owned()
}

async fn sign_in(sim: &RunningSim, credential: &AssertionCredential) -> (u16, Value) {
    post(sim, "passkey/signin", &json!({ "clientId": APP, "credential": credential })).await
}

/// The error code and description of a refused sign-in.
fn refusal(body: &Value) -> (u64, String) {
    (
        body["error_codes"][0].as_u64().unwrap_or(0),
        body["error_description"].as_str().unwrap_or("").to_owned(),
    )
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&keyward_webauthn::b64::decode_lenient(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn a_registered_passkey_signs_its_person_in_with_tokens_in_both_modes() {
    for strict in [false, true] {
        let sim = sim(strict).await;
        let mut desk = SoftDesk::with_ca(ca());
        let (credential_id, _) = register(&sim, &mut desk, ADELE).await;
        let signed = desk.sign_in(&challenge(&sim, None).await, None);
        assert_eq!(signed.credential_id, credential_id);
        let (status, tokens) = sign_in(&sim, &signed.to_credential()).await;
        assert_eq!(status, 200, "strict={strict}: {tokens}");
        let id = claims(tokens["id_token"].as_str().unwrap());
        assert_eq!(id["oid"], ADELE);
        assert_eq!(id["preferred_username"], ADELE_UPN);
        assert_eq!(id["aud"], APP);
        assert_eq!(id["amr"], json!(["fido"]));
        let access = claims(tokens["access_token"].as_str().unwrap());
        assert_eq!((access["oid"].as_str(), access["idtyp"].as_str()), (Some(ADELE), Some("user")));
        // With a login hint naming her, the same passkey signs her in again.
        let signed = desk.sign_in(&challenge(&sim, Some(ADELE_UPN)).await, None);
        assert_eq!(sign_in(&sim, &signed.to_credential()).await.0, 200);
        sim.stop().await;
    }
}

/// One way to break a sign-in, and what the emulator must answer.
struct Case {
    name: &'static str,
    /// Expected (default, strict): `None` is accepted, `Some(text)` refused naming `text`.
    expect: (Option<&'static str>, Option<&'static str>),
}

const FLIP_SIGNATURE: &str = "tampered signature";
const FLIP_AUTH_DATA: &str = "tampered authenticator data";
const FLIP_CLIENT_DATA: &str = "tampered client data";
const WRONG_USER_HINT: &str = "wrong user (hint)";
const WRONG_USER_HANDLE: &str = "wrong user (handle)";
const REPLAYED: &str = "replayed assertion";
const OLD_COUNTER: &str = "non-increasing counter";
const REVOKED: &str = "revoked passkey";
const ORIGIN_SLASH: &str = "origin with trailing slash";
const NO_UV: &str = "no user verification";
const FOREIGN_CHALLENGE: &str = "forged challenge";

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: FLIP_SIGNATURE,
            expect: (Some("signature does not verify"), Some("signature does not verify")),
        },
        Case {
            name: FLIP_AUTH_DATA,
            expect: (Some("signature does not verify"), Some("signature does not verify")),
        },
        Case {
            name: FLIP_CLIENT_DATA,
            expect: (Some("signature does not verify"), Some("signature does not verify")),
        },
        Case { name: WRONG_USER_HINT, expect: (Some("wrong user"), Some("wrong user")) },
        Case { name: WRONG_USER_HANDLE, expect: (Some("wrong user"), Some("wrong user")) },
        Case { name: REPLAYED, expect: (Some("already used"), Some("already used")) },
        Case {
            name: OLD_COUNTER,
            expect: (Some("counter did not increase"), Some("counter did not increase")),
        },
        Case {
            name: REVOKED,
            expect: (Some("no passkey with this credential id"), Some("no passkey with this credential id")),
        },
        Case { name: ORIGIN_SLASH, expect: (None, Some("origin must be")) },
        Case {
            name: NO_UV,
            expect: (Some("user verification is required"), Some("user verification is required")),
        },
        Case {
            name: FOREIGN_CHALLENGE,
            expect: (Some("not issued by this tenant"), Some("not issued by this tenant")),
        },
    ]
}

/// Changes one bit of a base64url field (nothing is signed again).
fn flip(field: &mut String, at: usize) {
    let mut bytes = keyward_webauthn::b64::decode_lenient(field).unwrap();
    let at = at.min(bytes.len() - 1);
    bytes[at] ^= 0x01;
    *field = keyward_webauthn::b64::encode(&bytes);
}

/// The assertion of one case, made by the soft key (broken afterwards where the case says so).
async fn case_assertion(sim: &RunningSim, desk: &mut SoftDesk, case: &str) -> AssertionCredential {
    match case {
        FLIP_SIGNATURE | FLIP_AUTH_DATA | FLIP_CLIENT_DATA => {
            let mut c = desk.sign_in(&challenge(sim, None).await, None).to_credential();
            match case {
                FLIP_SIGNATURE => flip(&mut c.response.signature, 20),
                FLIP_AUTH_DATA => flip(&mut c.response.authenticator_data, 36),
                _ => {
                    // Same challenge and origin, one more space: the JSON still reads the same.
                    let mut text =
                        keyward_webauthn::b64::decode_lenient(&c.response.client_data_json).unwrap();
                    text.insert(1, b' ');
                    c.response.client_data_json = keyward_webauthn::b64::encode(&text);
                }
            }
            c
        }
        WRONG_USER_HINT => desk.sign_in(&challenge(sim, Some(ALEX_UPN)).await, None).to_credential(),
        REVOKED => desk.sign_in(&challenge(sim, None).await, None).to_credential(),
        WRONG_USER_HANDLE => {
            let mut c = desk.sign_in(&challenge(sim, None).await, None).to_credential();
            c.response.user_handle = Some(keyward_webauthn::b64::encode(b"OF:someone-else"));
            c
        }
        REPLAYED => {
            let c = desk.sign_in(&challenge(sim, None).await, None).to_credential();
            assert_eq!(sign_in(sim, &c).await.0, 200, "the first use of the assertion is accepted");
            c
        }
        OLD_COUNTER => {
            let older = desk.sign_in(&challenge(sim, None).await, None).to_credential();
            let newer = desk.sign_in(&challenge(sim, None).await, None).to_credential();
            assert_eq!(sign_in(sim, &newer).await.0, 200, "the newer assertion is accepted");
            older
        }
        ORIGIN_SLASH => {
            signed_with_client_data(sim, desk, |c| c["origin"] = "https://login.microsoft.com/".into()).await
        }
        NO_UV => desk_without_uv(sim, desk).await,
        FOREIGN_CHALLENGE => {
            signed_with_client_data(sim, desk, |c| {
                c["challenge"] = keyward_webauthn::b64::encode(&[7u8; 80]).into()
            })
            .await
        }
        other => panic!("no case {other}"),
    }
}

/// An assertion over client data changed by `change` (signed correctly by the key).
async fn signed_with_client_data(
    sim: &RunningSim,
    desk: &mut SoftDesk,
    change: impl Fn(&mut Value),
) -> AssertionCredential {
    use keyward_ctap::client::PERMISSION_GA;
    let mut client = json!({
        "type": "webauthn.get",
        "challenge": challenge(sim, None).await,
        "origin": "https://login.microsoft.com",
        "crossOrigin": false,
    });
    change(&mut client);
    let token =
        desk.client.get_pin_uv_auth_token(&desk.pin, PERMISSION_GA, Some("login.microsoft.com")).unwrap();
    assertion(desk, serde_json::to_vec(&client).unwrap(), Some(&token))
}

/// The key's assertion over `client_data_json`, with user verification when given a PIN token.
fn assertion(
    desk: &mut SoftDesk,
    client_data_json: Vec<u8>,
    token: Option<&keyward_ctap::PinToken>,
) -> AssertionCredential {
    use sha2::Digest;
    let hash: [u8; 32] = sha2::Sha256::digest(&client_data_json).into();
    let a = desk.client.get_assertion("login.microsoft.com", &hash, &[], token).unwrap();
    keyward_ctap::EntraSignIn {
        credential_id: a.credential_id,
        client_data_json,
        authenticator_data: a.auth_data,
        signature: a.signature,
        user_handle: a.user_id,
    }
    .to_credential()
}

/// An assertion made without a PIN token: the key signs with UP only.
async fn desk_without_uv(sim: &RunningSim, desk: &mut SoftDesk) -> AssertionCredential {
    let client_data_json =
        keyward_webauthn::client_data::CollectedClientData::entra_get(&challenge(sim, None).await)
            .to_json_bytes();
    assertion(desk, client_data_json, None)
}

#[tokio::test]
async fn refusals_table_in_default_and_strict_mode() {
    for strict in [false, true] {
        for case in cases() {
            let sim = sim(strict).await;
            let mut desk = SoftDesk::with_ca(ca());
            let (_, method_id) = register(&sim, &mut desk, ADELE).await;
            // Alex has a passkey too (on another key), so "wrong user" names a real person.
            register(&sim, &mut SoftDesk::with_ca(ca()), ALEX).await;
            if case.name == REVOKED {
                let http = http();
                let token = app_token(&http, &sim.base_url).await;
                let url =
                    format!("{}/v1.0/users/{ADELE}/authentication/fido2Methods/{method_id}", sim.base_url);
                assert_eq!(http.delete(url).bearer_auth(token).send().await.unwrap().status(), 204);
            }
            let assertion = case_assertion(&sim, &mut desk, case.name).await;
            let (status, body) = sign_in(&sim, &assertion).await;
            let expected = if strict { case.expect.1 } else { case.expect.0 };
            match expected {
                None => assert_eq!(status, 200, "{} (strict={strict}) must be accepted: {body}", case.name),
                Some(text) => {
                    let (code, description) = refusal(&body);
                    assert_eq!(status, 400, "{} (strict={strict}): {body}", case.name);
                    assert_eq!(code, 50012, "{} (strict={strict}): {description}", case.name);
                    assert!(description.contains(text), "{} (strict={strict}): {description}", case.name);
                    assert!(body.get("access_token").is_none());
                }
            }
            sim.stop().await;
        }
    }
}

#[tokio::test]
async fn the_options_refuse_an_unknown_app_or_user_and_the_sign_in_refuses_another_app() {
    let sim = sim(false).await;
    let (status, body) =
        post(&sim, "passkey/signin/options", &json!({ "clientId": "00000000-0000-0000-0000-000000000001" }))
            .await;
    assert_eq!((status, refusal(&body).0), (400, 700016));
    let (status, body) = post(
        &sim,
        "passkey/signin/options",
        &json!({ "clientId": APP, "loginHint": "nobody@contoso.onmicrosoft.com" }),
    )
    .await;
    assert_eq!((status, refusal(&body).0), (400, 50034));
    let mut desk = SoftDesk::with_ca(ca());
    register(&sim, &mut desk, ADELE).await;
    let signed = desk.sign_in(&challenge(&sim, None).await, None);
    let reader = keyward_testkit::seed::READER;
    let (status, body) =
        post(&sim, "passkey/signin", &json!({ "clientId": reader, "credential": signed.to_credential() }))
            .await;
    assert_eq!(status, 400);
    assert!(refusal(&body).1.contains("another application"), "{body}");
    sim.stop().await;
}

// ------------------------------------------------------------------ Temporary Access Pass

async fn issue_tap(sim: &RunningSim, user: &str, body: Value) -> String {
    let http = http();
    let token = app_token(&http, &sim.base_url).await;
    let url = format!("{}/v1.0/users/{user}/authentication/temporaryAccessPassMethods", sim.base_url);
    let response = http.post(url).bearer_auth(token).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    created["temporaryAccessPass"].as_str().unwrap().to_owned()
}

async fn tap_sign_in(sim: &RunningSim, user: &str, pass: &str) -> (u16, Value) {
    post(sim, "tap/signin", &json!({ "clientId": APP, "username": user, "temporaryAccessPass": pass })).await
}

#[tokio::test]
async fn a_one_time_pass_signs_in_once_and_a_multi_use_pass_again() {
    for strict in [false, true] {
        let sim = sim(strict).await;
        let once = issue_tap(&sim, ADELE, json!({ "isUsableOnce": true })).await;
        let (status, tokens) = tap_sign_in(&sim, ADELE_UPN, &once).await;
        assert_eq!(status, 200, "{tokens}");
        assert_eq!(claims(tokens["id_token"].as_str().unwrap())["amr"], json!(["tap"]));
        let (status, body) = tap_sign_in(&sim, ADELE_UPN, &once).await;
        assert_eq!((status, refusal(&body).0), (400, 50126));
        assert!(refusal(&body).1.contains("already used"), "{body}");

        let multi = issue_tap(&sim, ALEX, json!({ "isUsableOnce": false })).await;
        assert_eq!(tap_sign_in(&sim, ALEX_UPN, &multi).await.0, 200);
        assert_eq!(tap_sign_in(&sim, ALEX_UPN, &multi).await.0, 200);
        let (status, body) = tap_sign_in(&sim, ALEX_UPN, "Wrong-pass-1").await;
        assert_eq!((status, refusal(&body).0), (400, 50126));
        assert!(refusal(&body).1.contains("not correct"), "{body}");
        let (status, body) = tap_sign_in(&sim, ADELE_UPN, &multi).await;
        assert_eq!(status, 400, "Alex's pass does not sign Adele in: {body}");
        sim.stop().await;
    }
}

#[tokio::test]
async fn a_pass_outside_its_lifetime_is_refused() {
    let sim = sim(false).await;
    let future = time::OffsetDateTime::now_utc() + time::Duration::hours(2);
    let start = future.format(&time::format_description::well_known::Rfc3339).unwrap();
    let pass = issue_tap(&sim, ADELE, json!({ "startDateTime": start })).await;
    let (status, body) = tap_sign_in(&sim, ADELE_UPN, &pass).await;
    assert_eq!(status, 400);
    assert!(refusal(&body).1.contains("not valid yet"), "{body}");
    // Expired: move the stored pass's start back past its lifetime.
    sim.sim.write(|t| {
        let tap = t.taps.get_mut(ADELE).unwrap();
        tap.start -= 3 * 3600 + i64::from(tap.lifetime_in_minutes) * 60;
    });
    let (status, body) = tap_sign_in(&sim, ADELE_UPN, &pass).await;
    assert_eq!(status, 400);
    assert!(refusal(&body).1.contains("expired"), "{body}");
    sim.stop().await;
}

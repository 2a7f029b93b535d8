//! A passkey registration end to end, as an operator's run makes it: creation options from the
//! Entra emulator over HTTP, makeCredential through our CTAP client on the soft key (with a PIN
//! token, over the in-memory CTAPHID transport), the Graph body posted back, and the same
//! registration verified by Duo's py_webauthn (`python/verify_registration.py`), so neither our
//! emulator nor our client is the only judge of what we produce.
//!
//! The interpreter comes from `KEYWARD_PYTHON`, else the workspace venv (`.venv/bin/python`).
//! If neither exists the test fails (it never skips): run `.ci/run`, or create the venv with
//! `python3 -m venv .venv && .venv/bin/pip install -r python/requirements.txt`.

use std::path::{Path, PathBuf};
use std::process::Command;

use keyward_ctap::CtapStatus;
use keyward_ctap::entra::EntraError;
use keyward_sim::SimOptions;
use keyward_sim::seed::{IdEncoding, Seed};
use keyward_sim::server::RunningSim;
use keyward_testkit::desk::{AAGUID, MODEL, SoftDesk};
use keyward_testkit::seed::{ADELE, trust_ca};
use keyward_testkit::sim::app_token;
use keyward_testkit::test_ca;
use keyward_webauthn::graph::{CredentialCreationOptions, MAX_DISPLAY_NAME_CHARS};
use keyward_webauthn::registration::{RegistrationPlan, registration_body};
use keyward_webauthn::{ENTRA_ORIGIN, ENTRA_RP_ID, b64};
use serde_json::{Value, json};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("KEYWARD_PYTHON") {
        let p = PathBuf::from(p);
        assert!(
            p.exists(),
            "KEYWARD_PYTHON={} does not exist; point it at a python with webauthn",
            p.display()
        );
        return p;
    }
    let venv = workspace().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "no python for the py_webauthn check: set KEYWARD_PYTHON, run .ci/run, or create the venv with \
         `python3 -m venv .venv && .venv/bin/pip install -r python/requirements.txt` in {}",
        workspace().display()
    );
    venv
}

/// What `verify_registration.py` said: its exit code and stdout.
struct PyVerdict {
    code: i32,
    stdout: String,
}

impl PyVerdict {
    fn line(&self, key: &str) -> Option<&str> {
        self.stdout.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
    }
}

fn py_webauthn(body: &Value, challenge: &str, roots_pem: &str, tag: &str) -> PyVerdict {
    let input = json!({
        "body": body,
        "expectedChallenge": challenge,
        "expectedOrigin": ENTRA_ORIGIN,
        "expectedRpId": ENTRA_RP_ID,
        "rootsPem": [roots_pem],
    });
    let path = std::env::temp_dir().join(format!("keyward-reg-e2e-{}-{tag}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_vec(&input).unwrap()).unwrap();
    let out = Command::new(python())
        .arg(workspace().join("python/verify_registration.py"))
        .arg(&path)
        .output()
        .expect("running the python interpreter");
    let _ = std::fs::remove_file(&path);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 1,
        "verify_registration.py failed to run ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    PyVerdict { code, stdout }
}

/// The emulator with Adele's tenant, attestation enforced, the soft key's CA trusted, and
/// excludeCredentials ids in the .NET digit-suffix form (the hardest one to decode).
async fn start_sim(ca: &keyward_testkit::TestCa) -> RunningSim {
    let mut seed = Seed::example();
    trust_ca(&mut seed, ca, AAGUID, MODEL);
    seed.fido2_policy.is_attestation_enforced = true;
    seed.exclude_credential_encoding = IdEncoding::PadDigit;
    keyward_testkit::sim::start(seed, SimOptions::default()).await
}

async fn creation_options(
    http: &reqwest::Client,
    sim: &RunningSim,
    token: &str,
) -> CredentialCreationOptions {
    let url = format!("{}/v1.0/users/{ADELE}/authentication/fido2Methods/creationOptions", sim.base_url);
    let response = http.get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn post(http: &reqwest::Client, sim: &RunningSim, token: &str, body: &Value) -> (u16, Value) {
    let url = format!("{}/v1.0/users/{ADELE}/authentication/fido2Methods", sim.base_url);
    let response = http.post(url).bearer_auth(token).json(body).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soft_key_registration_is_accepted_by_the_sim_and_verified_by_py_webauthn() {
    let ca = test_ca(AAGUID, "Authenticator Attestation");
    let sim = start_sim(&ca).await;
    let http = reqwest::Client::new();
    let token = app_token(&http, &sim.base_url).await;

    // 1. Creation options over HTTP, read into a plan.
    let options = creation_options(&http, &sim, &token).await;
    let plan = RegistrationPlan::from_creation_options(&options).unwrap();
    assert!(plan.warnings.is_empty() && plan.exclude_credentials.is_empty());

    // 2. makeCredential through our client on the soft key, UV through a PIN token.
    let mut desk = SoftDesk::with_ca(&ca);
    let pin_token = desk.make_credential_token();
    let registration = desk.client.register_for_entra(&plan, &pin_token).unwrap();
    assert!(registration.warnings.is_empty(), "{:?}", registration.warnings);
    assert_eq!(registration.attestation.fmt, "packed");
    let attestation_object = registration.attestation.attestation_object();

    // 3. The Graph body; the name is cut to 30 characters and keeps the serial.
    let prepared =
        registration_body(&plan, &attestation_object, "Keyward Soft Key for Adele Vance", Some("SK-000417"))
            .unwrap();
    let body = serde_json::to_value(&prepared.request).unwrap();
    let display_name = body["displayName"].as_str().unwrap().to_owned();
    assert!(display_name.chars().count() <= MAX_DISPLAY_NAME_CHARS && display_name.ends_with("(SK-000417)"));
    assert_eq!(prepared.aaguid, AAGUID);

    // 4. Tampered client data: one byte of the challenge changed. py_webauthn refuses it both
    //    against the real challenge and against the tampered one (the signature no longer
    //    covers it), and the sim refuses it without burning the challenge.
    let mut tampered_json = plan.client_data_json.clone();
    let at = String::from_utf8(tampered_json.clone()).unwrap().find("\"challenge\":\"").unwrap() + 13;
    tampered_json[at] = if tampered_json[at] == b'A' { b'B' } else { b'A' };
    let tampered_challenge =
        serde_json::from_slice::<Value>(&tampered_json).unwrap()["challenge"].as_str().unwrap().to_owned();
    let mut tampered = body.clone();
    tampered["publicKeyCredential"]["response"]["clientDataJSON"] = b64::encode(&tampered_json).into();
    let challenge = options.public_key.challenge.as_str();
    for (expected, why) in [(challenge, "challenge"), (tampered_challenge.as_str(), "signature")] {
        let verdict = py_webauthn(&tampered, expected, &ca.ca_pem, "tampered");
        println!("{why}: {}", verdict.stdout.trim());
        assert_eq!(verdict.code, 1, "{why}: py_webauthn must reject:\n{}", verdict.stdout);
        assert!(
            verdict.stdout.starts_with("rejected:") && verdict.stdout.contains(why),
            "{why}: {}",
            verdict.stdout
        );
    }
    let (status, answer) = post(&http, &sim, &token, &tampered).await;
    assert_eq!(status, 400, "the sim must reject tampered client data: {answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("challenge"), "{answer}");

    // 5. The real registration: accepted by the sim (attestation enforced) …
    let (status, created) = post(&http, &sim, &token, &body).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["aaGuid"], uuid::Uuid::from_bytes(AAGUID).to_string());
    assert_eq!(created["model"], MODEL);
    assert_eq!(created["attestationLevel"], "attested");
    assert_eq!(created["passkeyType"], "deviceBound");
    assert_eq!(created["displayName"], display_name.as_str());
    assert_eq!(created["id"], b64::encode_with_pad_digit(&prepared.credential_id).as_str());

    // … and by py_webauthn, with Entra's challenge, origin and rp id and the CA as the root.
    let verdict = py_webauthn(&body, challenge, &ca.ca_pem, "good");
    assert_eq!(verdict.code, 0, "py_webauthn rejected our registration:\n{}", verdict.stdout);
    assert_eq!(verdict.line("aaguid"), Some(uuid::Uuid::from_bytes(AAGUID).to_string().as_str()));
    assert_eq!(verdict.line("credential_id"), Some(b64::encode(&prepared.credential_id).as_str()));
    assert_eq!(verdict.line("fmt"), Some("packed"));
    assert_eq!(verdict.line("user_verified"), Some("true"));

    // 6. The same key again: Entra now lists the credential (digit-suffix encoded) in
    //    excludeCredentials, so the key refuses instead of replacing Adele's passkey.
    let options = creation_options(&http, &sim, &token).await;
    let plan = RegistrationPlan::from_creation_options(&options).unwrap();
    assert!(plan.exclude_credentials.contains(&prepared.credential_id));
    match desk.client.register_for_entra(&plan, &pin_token) {
        Err(EntraError::Ctap(e)) => assert_eq!(e.status(), Some(CtapStatus::CredentialExcluded)),
        other => panic!("a second registration on the same key must be refused: {other:?}"),
    }
    assert_eq!(desk.key.state().resident_count(), 1);
}

/// Entra mixes id forms within one `excludeCredentials` list (`=`-padded standard base64 beside
/// digit-suffixed ids). Three keys registered for Adele, then the options list all three in the
/// emulator's mixed form: each of the three keys refuses to register again, a new key does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_exclude_list_stops_every_key_already_registered() {
    let ca = test_ca(AAGUID, "Authenticator Attestation");
    let mut seed = Seed::example();
    trust_ca(&mut seed, &ca, AAGUID, MODEL);
    seed.exclude_credential_encoding = IdEncoding::Mixed;
    let sim = keyward_testkit::sim::start(seed, SimOptions::default()).await;
    let http = reqwest::Client::new();
    let token = app_token(&http, &sim.base_url).await;

    let mut desks: Vec<SoftDesk> = (0..3).map(|_| SoftDesk::with_ca(&ca)).collect();
    for (i, desk) in desks.iter_mut().enumerate() {
        let plan =
            RegistrationPlan::from_creation_options(&creation_options(&http, &sim, &token).await).unwrap();
        let pin_token = desk.make_credential_token();
        let registration = desk.client.register_for_entra(&plan, &pin_token).unwrap();
        let object = registration.attestation.attestation_object();
        let prepared = registration_body(&plan, &object, &format!("Mixed list key {i}"), None).unwrap();
        let (status, created) =
            post(&http, &sim, &token, &serde_json::to_value(&prepared.request).unwrap()).await;
        assert_eq!(status, 201, "key {i}: {created}");
    }

    let options = creation_options(&http, &sim, &token).await;
    let ids: Vec<&str> = options.public_key.exclude_credentials.iter().map(|d| d.id.as_str()).collect();
    println!("excludeCredentials ids: {ids:?}");
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_eq!(ids[0].len() % 4, 0, "the first id is padded standard base64: {ids:?}");
    assert!(ids[1].ends_with(['0', '1', '2']), "the second id has a padding digit: {ids:?}");
    let plan = RegistrationPlan::from_creation_options(&options).unwrap();
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    for (i, desk) in desks.iter_mut().enumerate() {
        let pin_token = desk.make_credential_token();
        match desk.client.register_for_entra(&plan, &pin_token) {
            Err(EntraError::Ctap(e)) => {
                assert_eq!(e.status(), Some(CtapStatus::CredentialExcluded), "key {i}")
            }
            other => panic!("key {i} is registered already and must refuse: {other:?}"),
        }
    }
    let mut new_key = SoftDesk::with_ca(&ca);
    let pin_token = new_key.make_credential_token();
    new_key.client.register_for_entra(&plan, &pin_token).expect("a key not in the list registers");
}

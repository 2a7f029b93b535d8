//! The rule table of `keyward-webauthn` (`tests/data/entra_rules.json`) against the emulator
//! over HTTP: for each case the emulator runs on loopback with the case's policy and user, a
//! registration with the case's AAGUID, attestation and passkey type is POSTed to
//! `…/authentication/fido2Methods`, and the emulator's verdict (201, or a 400/403 refusal) must
//! equal both the table's and `entra_rules::judge`'s. The emulator keeps its own implementation of
//! the rules on purpose, so this is where the two are held to one answer.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciborium::Value as Cbor;
use keyward_sim::seed::{Seed, SeedGroup, SeedUser};
use keyward_sim::server::spawn;
use keyward_sim::{Sim, SimOptions};
use keyward_testkit::attestation_ca::{TestCa, test_ca};
use keyward_testkit::rules_table::{CaseKey, Sent, Table};
use keyward_webauthn::entra_rules::{PasskeyType, judge};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const APP: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";

/// The example tenant plus the table's users and groups, trusting `roots`.
fn seed(table: &Table, roots: Vec<String>) -> Seed {
    let mut seed = Seed::example();
    seed.groups.extend(
        table.groups.iter().map(|g| SeedGroup { id: g.id.clone(), display_name: g.display_name.clone() }),
    );
    seed.users.extend(table.users.iter().map(|u| SeedUser {
        id: u.id.clone(),
        user_principal_name: format!("{}@contoso.onmicrosoft.com", u.name),
        display_name: u.name.clone(),
        account_enabled: true,
        user_type: "Member".into(),
        mail: None,
        groups: u.groups.clone(),
        directory_roles: vec![],
    }));
    seed.attestation_roots_pem = roots;
    seed
}

/// Attestation CAs per AAGUID: one the seed trusts, one it does not.
struct Cas {
    trusted: BTreeMap<uuid::Uuid, TestCa>,
    untrusted: BTreeMap<uuid::Uuid, TestCa>,
}

impl Cas {
    fn for_table(table: &Table) -> Self {
        let mut cas = Self { trusted: BTreeMap::new(), untrusted: BTreeMap::new() };
        for case in &table.cases {
            let a = case.key.aaguid;
            cas.trusted.entry(a).or_insert_with(|| test_ca(*a.as_bytes(), "Authenticator Attestation"));
            cas.untrusted.entry(a).or_insert_with(|| test_ca(*a.as_bytes(), "Authenticator Attestation"));
        }
        cas
    }
}

const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const AT: u8 = 0x40;

/// A registration body for `key`, answering `challenge`, made by a fresh P-256 credential.
fn registration(key: &CaseKey, challenge: &str, cas: &Cas) -> Value {
    let cred_key = SigningKey::random(&mut rand::thread_rng());
    let mut cred_id = vec![0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut cred_id);
    let client_data = serde_json::to_vec(&json!({
        "type": "webauthn.create", "challenge": challenge,
        "origin": "https://login.microsoft.com", "crossOrigin": false
    }))
    .unwrap();
    let point = cred_key.verifying_key().to_encoded_point(false);
    let cose = Cbor::Map(vec![
        (Cbor::Integer(1.into()), Cbor::Integer(2.into())),
        (Cbor::Integer(3.into()), Cbor::Integer((-7).into())),
        (Cbor::Integer((-1).into()), Cbor::Integer(1.into())),
        (Cbor::Integer((-2).into()), Cbor::Bytes(point.x().unwrap().to_vec())),
        (Cbor::Integer((-3).into()), Cbor::Bytes(point.y().unwrap().to_vec())),
    ]);
    let flags = UP | UV | AT | if key.passkey_type == PasskeyType::Synced { BE } else { 0 };
    let mut auth_data = Sha256::digest(b"login.microsoft.com").to_vec();
    auth_data.push(flags);
    auth_data.extend_from_slice(&0u32.to_be_bytes());
    auth_data.extend_from_slice(key.aaguid.as_bytes());
    auth_data.extend_from_slice(&(cred_id.len() as u16).to_be_bytes());
    auth_data.extend_from_slice(&cred_id);
    ciborium::into_writer(&cose, &mut auth_data).unwrap();
    let text = |s: &str| Cbor::Text(s.into());
    let signed = [auth_data.as_slice(), &Sha256::digest(&client_data)[..]].concat();
    let sign = |k: &SigningKey| {
        let sig: Signature = k.sign(&signed);
        Cbor::Bytes(sig.to_der().as_bytes().to_vec())
    };
    let alg = (text("alg"), Cbor::Integer((-7).into()));
    let chain = |ca: &TestCa| {
        vec![
            alg.clone(),
            (text("sig"), sign(&ca.attestation_key)),
            (text("x5c"), Cbor::Array(vec![Cbor::Bytes(ca.attestation_der.clone())])),
        ]
    };
    let (fmt, statement) = match key.attestation {
        Sent::None => ("none", vec![]),
        Sent::SelfAttested => ("packed", vec![alg.clone(), (text("sig"), sign(&cred_key))]),
        Sent::TrustedChain => ("packed", chain(&cas.trusted[&key.aaguid])),
        Sent::UntrustedChain => ("packed", chain(&cas.untrusted[&key.aaguid])),
    };
    let object = Cbor::Map(vec![
        (text("fmt"), text(fmt)),
        (text("attStmt"), Cbor::Map(statement)),
        (text("authData"), Cbor::Bytes(auth_data)),
    ]);
    let mut attestation = vec![];
    ciborium::into_writer(&object, &mut attestation).unwrap();
    json!({
        "displayName": "Rule table key",
        "publicKeyCredential": {
            "id": URL_SAFE_NO_PAD.encode(&cred_id),
            "response": {
                "clientDataJSON": URL_SAFE_NO_PAD.encode(&client_data),
                "attestationObject": URL_SAFE_NO_PAD.encode(&attestation)
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_agrees_with_the_rule_table() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let table = Table::load();
    let cas = Cas::for_table(&table);
    let roots = cas.trusted.values().map(|ca| ca.ca_pem.clone()).collect();
    let sim = Sim::new(seed(&table, roots), SimOptions::default()).unwrap();
    let running = spawn(sim, "127.0.0.1:0".parse().unwrap(), None).await.unwrap();
    let token = running.sim.issue_access_token(APP, vec!["UserAuthMethod-Passkey.ReadWrite.All".into()]);
    let http = reqwest::Client::new();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    for case in &table.cases {
        let user = table.user_of(case);
        let policy = case.tenant_policy();
        let expected = judge(&policy, Some(&user.subject()), &case.key.facts());
        assert_eq!(
            expected.accepted(),
            case.refused.is_empty(),
            "{}: the table and the function differ",
            case.name
        );
        running.sim.write(|t| t.fido2_policy = policy);
        let challenge = keyward_sim::registration::seal_challenge(&running.sim, &user.id, now + 300);
        let body = registration(&case.key, &challenge, &cas);
        let response = http
            .post(format!("{}/v1.0/users/{}/authentication/fido2Methods", running.base_url, user.id))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let accepted = match status {
            201 => true,
            400 | 403 => false,
            other => panic!("{}: unexpected status {other}: {text}", case.name),
        };
        // A refusal must come from the policy, not from a registration this test built wrong.
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned));
        let by_policy =
            message.as_deref().is_some_and(|m| m.contains("polic") || m.contains("passkey profile"));
        assert!(accepted || by_policy, "{}: refused for another reason: {status} {text}", case.name);
        assert_eq!(
            accepted,
            expected.accepted(),
            "{}: the emulator answered {status} {text}; the rules say {expected:?}",
            case.name
        );
    }
}

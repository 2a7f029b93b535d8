//! Hostile registrations: whatever a client posts to `fido2Methods` — a body of any JSON shape,
//! damaged clientDataJSON, damaged or arbitrary attestation objects — the emulator refuses it
//! with a Graph error, never panics, and still accepts the undamaged registration.
//!
//! `bench/fuzz.sh` runs these at 100 000 cases each (`PROPTEST_CASES`); `cargo test` at 256.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyward_sim::graph::ApiVersion;
use keyward_sim::keys::{LoadedKeys, SimKeys};
use keyward_sim::registration::{RegistrationContext, cbor, challenge, verify_registration};
use keyward_testkit::hostile::{self, check};
use keyward_testkit::test_ca;
use keyward_webauthn::policy::Fido2Policy;
use proptest::prelude::*;
use serde_json::{Value, json};

const AAGUID: [u8; 16] = *b"KeywardFuzzKey01";

/// Which part of a valid registration body a case replaces.
#[derive(Debug, Clone)]
enum Damage {
    /// The whole body.
    Body(Value),
    /// clientDataJSON's bytes (still base64url-encoded in the body).
    ClientData(Vec<u8>),
    /// The attestation object's bytes.
    Attestation(Vec<u8>),
    /// One member of `publicKeyCredential` or its `response`, replaced by any JSON.
    Member(&'static str, Value),
}

#[test]
fn hostile_sim_registrations() {
    let keys = LoadedKeys::load(&SimKeys::generate()).expect("keys");
    let user = keyward_sim::seed::Seed::example().users[0].clone();
    let ca = test_ca(AAGUID, "Authenticator Attestation");
    let ctx = RegistrationContext {
        keys: &keys,
        version: ApiVersion::V1,
        user: user.clone(),
        policy: Fido2Policy { is_attestation_enforced: true, ..Default::default() },
        attestation_roots_pem: vec![ca.ca_pem.clone()],
        aaguid_models: BTreeMap::new(),
        existing_credential_ids: vec![],
        strict: false,
    };
    let now = SystemTime::now();
    let expires = now.duration_since(UNIX_EPOCH).expect("after 1970").as_secs() as i64 + 3600;
    let made = ca.packed_registration(
        AAGUID,
        "login.microsoft.com",
        "https://login.microsoft.com",
        &challenge::issue(&keys, &user.id, expires),
    );
    let body = |client_data: &[u8], attestation: &[u8]| {
        json!({
            "displayName": "Fuzz key",
            "publicKeyCredential": {
                "id": URL_SAFE_NO_PAD.encode(&made.credential_id),
                "response": {
                    "clientDataJSON": URL_SAFE_NO_PAD.encode(client_data),
                    "attestationObject": URL_SAFE_NO_PAD.encode(attestation),
                }
            }
        })
    };
    let valid = body(&made.client_data_json, &made.attestation_object);
    let bytes = |v: &Value| serde_json::to_vec(v).expect("JSON");
    assert!(verify_registration(&ctx, &bytes(&valid), now).is_ok(), "the undamaged registration verifies");

    let client_data: Value = serde_json::from_slice(&made.client_data_json).expect("JSON");
    let damage = prop_oneof![
        1 => hostile::json().prop_map(Damage::Body),
        2 => prop_oneof![
            hostile::mutated(made.client_data_json.clone()),
            hostile::json_object_with(&["type", "challenge", "origin", "crossOrigin"])
                .prop_map(|v| serde_json::to_vec(&v).expect("JSON")),
            (prop::sample::select(vec!["type", "challenge", "origin", "crossOrigin"]), hostile::json())
                .prop_map({
                    let client_data = client_data.clone();
                    move |(member, v)| {
                        let mut c = client_data.clone();
                        c[member] = v;
                        serde_json::to_vec(&c).expect("JSON")
                    }
                }),
        ].prop_map(Damage::ClientData),
        3 => prop_oneof![3 => hostile::mutated(made.attestation_object.clone()), 1 => hostile::cbor_bytes()]
            .prop_map(Damage::Attestation),
        1 => (prop::sample::select(vec!["id", "response", "displayName", "clientExtensionResults", "type"]),
              hostile::json()).prop_map(|(m, v)| Damage::Member(m, v)),
    ];
    check("sim-registration", damage, |damage| {
        let posted = match damage {
            Damage::Body(v) => v,
            Damage::ClientData(c) => body(&c, &made.attestation_object),
            Damage::Attestation(a) => body(&made.client_data_json, &a),
            Damage::Member("displayName", v) => {
                let mut b = valid.clone();
                b["displayName"] = v;
                b
            }
            Damage::Member(m, v) => {
                let mut b = valid.clone();
                b["publicKeyCredential"][m] = v;
                b
            }
        };
        let sent = bytes(&posted);
        match verify_registration(&ctx, &sent, now) {
            // A damaged body may still be the valid one (a mutation that changed nothing, an
            // extra member Graph ignores); anything accepted must carry this credential.
            Ok(verified) => prop_assert_eq!(verified.credential_id, made.credential_id.clone()),
            Err(failure) => prop_assert!(failure.status.as_u16() >= 400, "{:?}", failure),
        }
        Ok(())
    });
}

#[test]
fn hostile_sim_cbor_reader() {
    check("sim-cbor", hostile::cbor_bytes(), |bytes| {
        if let Ok((value, used)) = cbor::read(&bytes) {
            prop_assert!(used <= bytes.len());
            let _ = cbor::get_text_key(&value, "fmt");
            let _ = cbor::get_int_key(&value, 3);
        }
        let _ = cbor::read_exact(&bytes);
        Ok(())
    });
}

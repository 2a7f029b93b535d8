//! Hostile input to the WebAuthn and Graph readers: attestation objects (from a key, or pasted
//! into `keyward inspect`), clientDataJSON, Graph's creation options and lenient base64. Each
//! either reads its input or returns its typed error; none panics.
//!
//! `bench/fuzz.sh` runs these at 100 000 cases each (`PROPTEST_CASES`); `cargo test` at 256.

use keyward_testkit::hostile::{self, check};
use keyward_testkit::test_ca;
use keyward_webauthn::attestation::AttestationObject;
use keyward_webauthn::client_data::CollectedClientData;
use keyward_webauthn::graph::CredentialCreationOptions;
use keyward_webauthn::registration::{RegistrationPlan, fit_display_name, registration_body};
use keyward_webauthn::{ENTRA_ORIGIN, ENTRA_RP_ID, b64};
use proptest::prelude::*;
use serde_json::{Value, json};

const AAGUID: [u8; 16] = *b"KeywardFuzzKey01";

/// A real `packed` attestation object, the starting point for damaged ones.
fn valid_attestation_object() -> Vec<u8> {
    let ca = test_ca(AAGUID, "Authenticator Attestation");
    ca.packed_registration(AAGUID, ENTRA_RP_ID, ENTRA_ORIGIN, "Y2hhbGxlbmdl").attestation_object
}

fn options() -> Value {
    json!({
        "challengeTimeoutDateTime": "2030-01-01T00:00:00Z",
        "publicKey": {
            "rp": {"id": ENTRA_RP_ID, "name": "Microsoft"},
            "user": {"id": "dXNlcg", "name": "ada@contoso.com", "displayName": "Ada"},
            "challenge": "Y2hhbGxlbmdl",
            "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
            "extensions": {"hmacCreateSecret": true}
        }
    })
}

#[test]
fn hostile_attestation_objects() {
    let valid = valid_attestation_object();
    let parsed = AttestationObject::parse(&valid).expect("the valid object parses");
    assert_eq!(parsed.auth_data.attested.as_ref().map(|a| a.aaguid), Some(AAGUID));
    let plan = RegistrationPlan::from_creation_options(&serde_json::from_value(options()).unwrap()).unwrap();
    let inputs = prop_oneof![2 => hostile::mutated(valid.clone()), 1 => hostile::cbor_bytes()];
    check("attestation-object", inputs, |bytes| {
        match AttestationObject::parse(&bytes) {
            Ok(object) => {
                let _ = object.x5c();
                let _ = object.statement_alg();
                let _ = object.auth_data.aaguid_string();
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        let _ = registration_body(&plan, &bytes, "Ada's key", Some("SN-1"));
        Ok(())
    });
}

#[test]
fn hostile_client_data_json() {
    let inputs = prop_oneof![
        hostile::bytes(120),
        hostile::json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        hostile::json_object_with(&["type", "challenge", "origin", "crossOrigin"])
            .prop_map(|v| serde_json::to_vec(&v).unwrap()),
    ];
    check("client-data-json", (inputs, hostile::text()), |(bytes, challenge)| {
        let _ = serde_json::from_slice::<CollectedClientData>(&bytes);
        // What Keyward writes reads back as itself.
        let data = CollectedClientData::entra_create(&challenge);
        let back: CollectedClientData =
            serde_json::from_slice(&data.to_json_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, data);
        Ok(())
    });
}

/// Creation options with every member replaced, now and then, by something hostile.
fn hostile_options() -> impl Strategy<Value = Value> {
    let members =
        ["rp", "user", "challenge", "pubKeyCredParams", "excludeCredentials", "extensions", "timeout"];
    (
        proptest::collection::vec((prop::sample::select(members.to_vec()), hostile::json()), 0..4),
        hostile::json(),
    )
        .prop_map(|(replaced, whole)| {
            if replaced.is_empty() {
                return whole;
            }
            let mut o = options();
            for (member, value) in replaced {
                o["publicKey"][member] = value;
            }
            o
        })
}

#[test]
fn hostile_graph_creation_options() {
    check("graph-creation-options", hostile_options(), |value| {
        if let Ok(options) = serde_json::from_value::<CredentialCreationOptions>(value) {
            let _ = RegistrationPlan::from_creation_options(&options);
        }
        Ok(())
    });
}

#[test]
fn hostile_base64_and_display_names() {
    let raw = proptest::collection::vec(any::<u8>(), 1..64);
    check(
        "base64-and-names",
        (hostile::text(), raw, prop::option::of(hostile::text())),
        |(text, raw, serial)| {
            let _ = b64::decode_lenient(&text);
            let _ = b64::credential_id_candidates(&text);
            // Whatever Keyward encodes (never nothing: an empty id is refused) decodes back to itself.
            let encoded = b64::encode(&raw);
            prop_assert_eq!(b64::decode_lenient(&encoded).ok(), Some(raw.clone()));
            prop_assert!(b64::credential_id_matches(&encoded, &raw));
            let fitted = fit_display_name(&text, serial.as_deref());
            prop_assert!(fitted.chars().count() <= 30, "{fitted:?}");
            Ok(())
        },
    );
}

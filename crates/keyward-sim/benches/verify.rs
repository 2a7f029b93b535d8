//! Cost of verifying one registration with a `packed` full-chain attestation, using the
//! pure verification function (no HTTP, no lock): challenge opening, every WebAuthn rule,
//! the statement signature, the certificate requirements and the chain to the seed root.
//!
//! Target: at least 2 000 registrations per second on one core, so that the emulator is
//! never the bottleneck of a bulk-provisioning benchmark.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciborium::Value as Cbor;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use keyward_sim::graph::ApiVersion;
use keyward_sim::keys::{LoadedKeys, SimKeys};
use keyward_sim::registration::{RegistrationContext, challenge, verify_registration};
use keyward_webauthn::policy::Fido2Policy;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use sha2::{Digest, Sha256};

const AAGUID: [u8; 16] = *b"KeywardBenchKey1";

#[path = "../tests/support/attestation_ca.rs"]
mod attestation_ca;

/// A POST body for `challenge`, attested `packed` with a full chain.
fn packed_body(challenge: &str, attestation_key: &SigningKey, attestation_der: &[u8]) -> Vec<u8> {
    let cdj = serde_json::to_vec(&serde_json::json!({
        "type": "webauthn.create", "challenge": challenge,
        "origin": "https://login.microsoft.com", "crossOrigin": false
    }))
    .expect("json");
    let cred_key = SigningKey::random(&mut rand::thread_rng());
    let point = cred_key.verifying_key().to_encoded_point(false);
    let cose = Cbor::Map(vec![
        (Cbor::Integer(1.into()), Cbor::Integer(2.into())),
        (Cbor::Integer(3.into()), Cbor::Integer((-7).into())),
        (Cbor::Integer((-1).into()), Cbor::Integer(1.into())),
        (Cbor::Integer((-2).into()), Cbor::Bytes(point.x().expect("x").to_vec())),
        (Cbor::Integer((-3).into()), Cbor::Bytes(point.y().expect("y").to_vec())),
    ]);
    let cred_id = [0x5au8; 32];
    let mut auth_data = Sha256::digest(b"login.microsoft.com").to_vec();
    auth_data.push(0x45);
    auth_data.extend_from_slice(&[0, 0, 0, 0]);
    auth_data.extend_from_slice(&AAGUID);
    auth_data.extend_from_slice(&32u16.to_be_bytes());
    auth_data.extend_from_slice(&cred_id);
    ciborium::into_writer(&cose, &mut auth_data).expect("cbor");
    let signed = [auth_data.as_slice(), &Sha256::digest(&cdj)[..]].concat();
    let sig: Signature = attestation_key.sign(&signed);
    let text = |s: &str| Cbor::Text(s.into());
    let object = Cbor::Map(vec![
        (text("fmt"), text("packed")),
        (
            text("attStmt"),
            Cbor::Map(vec![
                (text("alg"), Cbor::Integer((-7).into())),
                (text("sig"), Cbor::Bytes(sig.to_der().as_bytes().to_vec())),
                (text("x5c"), Cbor::Array(vec![Cbor::Bytes(attestation_der.to_vec())])),
            ]),
        ),
        (text("authData"), Cbor::Bytes(auth_data)),
    ]);
    let mut att = vec![];
    ciborium::into_writer(&object, &mut att).expect("cbor");
    serde_json::to_vec(&serde_json::json!({
        "displayName": "Bench key",
        "publicKeyCredential": {
            "id": URL_SAFE_NO_PAD.encode(cred_id),
            "response": { "clientDataJSON": URL_SAFE_NO_PAD.encode(&cdj), "attestationObject": URL_SAFE_NO_PAD.encode(&att) }
        }
    }))
    .expect("json")
}

fn bench(c: &mut Criterion) {
    let keys = LoadedKeys::load(&SimKeys::generate()).expect("keys");
    let user = keyward_sim::seed::Seed::example().users[0].clone();
    let attestation_ca::TestCa { ca_pem, attestation_key, attestation_der } =
        attestation_ca::test_ca(AAGUID, "Authenticator Attestation");
    let policy = Fido2Policy { is_attestation_enforced: true, ..Default::default() };
    let ctx = RegistrationContext {
        keys: &keys,
        version: ApiVersion::V1,
        user: user.clone(),
        policy,
        attestation_roots_pem: vec![ca_pem],
        aaguid_models: BTreeMap::new(),
        existing_credential_ids: vec![],
        strict: false,
    };
    let now = SystemTime::now();
    let expires = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0) + 3600;
    let body = packed_body(&challenge::issue(&keys, &user.id, expires), &attestation_key, &attestation_der);
    let verified = verify_registration(&ctx, &body, now).expect("the bench registration must verify");
    assert_eq!(verified.stored.method.attestation_level.as_deref(), Some("attested"));

    // A plain-loop estimate, printed in registrations per second.
    let n = 2000;
    let start = Instant::now();
    for _ in 0..n {
        black_box(verify_registration(&ctx, black_box(&body), now).is_ok());
    }
    let rate = f64::from(n) / start.elapsed().as_secs_f64();
    println!("packed full-chain verification: {rate:.0} registrations/s on one core (target >= 2000)");

    let mut group = c.benchmark_group("registration");
    group.throughput(Throughput::Elements(1));
    group.bench_function("verify_packed_full_chain", |b| {
        b.iter(|| verify_registration(&ctx, black_box(&body), now).is_ok())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

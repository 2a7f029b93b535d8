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
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use keyward_sim::graph::ApiVersion;
use keyward_sim::keys::{LoadedKeys, SimKeys};
use keyward_sim::registration::{RegistrationContext, challenge, verify_registration};
use keyward_testkit::{TestCa, test_ca};
use keyward_webauthn::policy::Fido2Policy;

const AAGUID: [u8; 16] = *b"KeywardBenchKey1";

/// A POST body for `challenge`, attested `packed` with a full chain from `ca`.
fn packed_body(challenge: &str, ca: &TestCa) -> Vec<u8> {
    let made =
        ca.packed_registration(AAGUID, "login.microsoft.com", "https://login.microsoft.com", challenge);
    serde_json::to_vec(&serde_json::json!({
        "displayName": "Bench key",
        "publicKeyCredential": {
            "id": URL_SAFE_NO_PAD.encode(&made.credential_id),
            "response": {
                "clientDataJSON": URL_SAFE_NO_PAD.encode(&made.client_data_json),
                "attestationObject": URL_SAFE_NO_PAD.encode(&made.attestation_object),
            }
        }
    }))
    .expect("json")
}

fn bench(c: &mut Criterion) {
    let keys = LoadedKeys::load(&SimKeys::generate()).expect("keys");
    let user = keyward_sim::seed::Seed::example().users[0].clone();
    let ca = test_ca(AAGUID, "Authenticator Attestation");
    let policy = Fido2Policy { is_attestation_enforced: true, ..Default::default() };
    let ctx = RegistrationContext {
        keys: &keys,
        version: ApiVersion::V1,
        user: user.clone(),
        policy,
        attestation_roots_pem: vec![ca.ca_pem.clone()],
        aaguid_models: BTreeMap::new(),
        existing_credential_ids: vec![],
        strict: false,
    };
    let now = SystemTime::now();
    let expires = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0) + 3600;
    let body = packed_body(&challenge::issue(&keys, &user.id, expires), &ca);
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

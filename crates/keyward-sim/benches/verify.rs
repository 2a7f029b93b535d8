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

/// A P-256 public key as rcgen needs it to certify a key it does not hold.
struct P256Public(Vec<u8>);

impl rcgen::PublicKeyData for P256Public {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

/// A CA PEM, an attestation key and its certificate (packed requirements, AAGUID extension).
fn test_ca() -> (String, SigningKey, Vec<u8>) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::default();
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Keyward Bench Root");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    ca_params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    ca_params.not_after = rcgen::date_time_ymd(2099, 1, 1);
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = SigningKey::random(&mut rand::thread_rng());
    let public = P256Public(key.verifying_key().to_encoded_point(false).as_bytes().to_vec());
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(rcgen::DnType::CountryName, "SE");
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "Keyward Bench Vendor");
    params.distinguished_name.push(rcgen::DnType::OrganizationalUnitName, "Authenticator Attestation");
    params.distinguished_name.push(rcgen::DnType::CommonName, "Keyward Bench Key");
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2099, 1, 1);
    let mut ext = vec![0x04, 0x10];
    ext.extend_from_slice(&AAGUID);
    params.custom_extensions =
        vec![rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 45724, 1, 1, 4], ext)];
    let cert = params.signed_by(&public, &issuer).expect("attestation cert");
    (ca_cert.pem(), key, cert.der().to_vec())
}

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
    let (ca_pem, attestation_key, attestation_der) = test_ca();
    let policy = Fido2Policy { is_attestation_enforced: true, ..Default::default() };
    let ctx = RegistrationContext {
        keys: &keys,
        version: ApiVersion::V1,
        user: user.clone(),
        policy,
        attestation_roots_pem: vec![ca_pem],
        aaguid_models: BTreeMap::new(),
        existing_credential_ids: vec![],
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

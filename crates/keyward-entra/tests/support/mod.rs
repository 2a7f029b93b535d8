//! Shared test harness: the Entra emulator started in-process on loopback, connector
//! configurations pointed at it, RSA test certificates, and an independent test
//! authenticator (p256 + an rcgen attestation CA, copied from the emulator's registration
//! tests) that turns creation options into a valid `packed` registration body.

#![allow(dead_code, unused_imports)]

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciborium::Value as Cbor;
use keyward_entra::{ApiVersion, AssertionMode, Connector, ConnectorConfig, Credential, RetryPolicy};
use keyward_sim::seed::{Seed, SeedUser};
use keyward_sim::server::{RunningSim, spawn};
use keyward_sim::{Sim, SimOptions};
use keyward_webauthn::graph::{
    AttestationResponse, CredentialCreationOptions, Fido2RegistrationRequest, PublicKeyCredential,
};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use sha2::{Digest, Sha256};

#[path = "../../../keyward-sim/tests/support/attestation_ca.rs"]
mod attestation_ca;
pub use attestation_ca::{TestCa, test_ca};

pub const TENANT: &str = "8f5d2c1e-4b7a-4e3f-9a61-2d0c5b7e9f13";
pub const CLIENT: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
pub const SECRET: &str = "sim-secret-change-me";
pub const READER: &str = "2b0a9bde-77f3-4c0e-8f0a-5d1e2c3b4a59";
pub const READER_SECRET: &str = "sim-reader-secret";
pub const ADELE: &str = "3e0a6d85-cf40-4b12-95e9-4a6f8b0c2d34";
pub const ADELE_UPN: &str = "adele.vance@contoso.onmicrosoft.com";
pub const MEGAN_UPN: &str = "megan.bowen@contoso.onmicrosoft.com";
pub const ENGINEERING: &str = "1c8e4b63-ad2e-4f90-b3c7-2e4d6f8a0b12";
pub const AAGUID: [u8; 16] = *b"KeywardTestKey01";

/// The example tenant plus `extra` users in Engineering, trusting `ca` for attestation.
pub fn seed(extra: usize, ca: Option<&TestCa>) -> Seed {
    let mut seed = Seed::example();
    for i in 0..extra {
        seed.users.push(SeedUser {
            id: format!("00000000-0000-4000-8000-{i:012}"),
            user_principal_name: format!("user{i:04}@contoso.onmicrosoft.com"),
            display_name: format!("User {i:04}"),
            account_enabled: i % 7 != 0,
            user_type: "Member".into(),
            mail: None,
            groups: vec![ENGINEERING.into()],
        });
    }
    if let Some(ca) = ca {
        seed.attestation_roots_pem = vec![ca.ca_pem.clone()];
        seed.aaguid_models.insert(uuid::Uuid::from_bytes(AAGUID).to_string(), "Keyward Test Key".into());
    }
    seed
}

/// Starts the emulator on a free loopback port.
pub async fn start(seed: Seed, options: SimOptions) -> RunningSim {
    let _ = rustls::crypto::ring::default_provider().install_default();
    spawn(Sim::new(seed, options).unwrap(), "127.0.0.1:0".parse().unwrap(), None).await.unwrap()
}

/// Fast retries so fault tests finish quickly.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 8,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
    }
}

/// A configuration for the sim with the given credential.
pub fn config(sim: &RunningSim, client_id: &str, credential: Credential) -> ConnectorConfig {
    let mut config = ConnectorConfig::new(TENANT, client_id, credential).pointed_at(&sim.base_url);
    config.retry = fast_retry();
    config
}

/// A connector for the main app with its secret.
pub fn connector(sim: &RunningSim) -> Connector {
    Connector::new(config(sim, CLIENT, secret(SECRET))).unwrap()
}

/// A connector for the main app on beta with a challenge timeout.
pub fn beta_connector(sim: &RunningSim, minutes: u32) -> Connector {
    let mut c = config(sim, CLIENT, secret(SECRET));
    c.api_version = ApiVersion::Beta;
    c.challenge_timeout_minutes = Some(minutes);
    Connector::new(c).unwrap()
}

pub fn secret(value: &str) -> Credential {
    Credential::Secret { client_secret: value.to_owned().into() }
}

/// An RSA key and a self-signed certificate for it.
pub struct TestCert {
    pub key_pem: String,
    pub cert_pem: String,
    pub der: Vec<u8>,
}

impl TestCert {
    /// A certificate valid from `not_before` to `not_after` (years, months, days).
    pub fn generate(name: &str, not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> Self {
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let key_pem = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let kp = rcgen::KeyPair::from_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let cert = params.self_signed(&kp).unwrap();
        Self { key_pem, cert_pem: cert.pem(), der: cert.der().to_vec() }
    }

    /// A certificate valid 2024–2099.
    pub fn good(name: &str) -> Self {
        Self::generate(name, (2024, 1, 1), (2099, 1, 1))
    }

    pub fn credential(&self, mode: AssertionMode) -> Credential {
        Credential::Certificate {
            certificate_pem: self.cert_pem.clone(),
            private_key_pem: self.key_pem.clone().into(),
            mode,
        }
    }

    pub fn sha1_hex(&self) -> String {
        hex::encode_upper(<sha1::Sha1 as Digest>::digest(&self.der))
    }
}

/// A test authenticator's registration answer to `options`, `packed` with a full chain.
pub fn register_body(
    options: &CredentialCreationOptions,
    ca: &TestCa,
    name: &str,
) -> (Fido2RegistrationRequest, Vec<u8>) {
    let mut cred_id = vec![0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut cred_id);
    let cred_key = SigningKey::random(&mut rand::thread_rng());
    let client_data = serde_json::to_vec(&serde_json::json!({
        "type": "webauthn.create",
        "challenge": options.public_key.challenge,
        "origin": keyward_webauthn::ENTRA_ORIGIN,
        "crossOrigin": false,
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
    let mut cose_bytes = vec![];
    ciborium::into_writer(&cose, &mut cose_bytes).unwrap();
    let mut auth_data = Sha256::digest(options.public_key.rp.id.as_bytes()).to_vec();
    auth_data.push(0x01 | 0x04 | 0x40); // UP | UV | AT
    auth_data.extend_from_slice(&0u32.to_be_bytes());
    auth_data.extend_from_slice(&AAGUID);
    auth_data.extend_from_slice(&(cred_id.len() as u16).to_be_bytes());
    auth_data.extend_from_slice(&cred_id);
    auth_data.extend_from_slice(&cose_bytes);
    let signed = [auth_data.as_slice(), &Sha256::digest(&client_data)[..]].concat();
    let sig: Signature = ca.attestation_key.sign(&signed);
    let text = |s: &str| Cbor::Text(s.into());
    let object = Cbor::Map(vec![
        (text("fmt"), text("packed")),
        (
            text("attStmt"),
            Cbor::Map(vec![
                (text("alg"), Cbor::Integer((-7).into())),
                (text("sig"), Cbor::Bytes(sig.to_der().as_bytes().to_vec())),
                (text("x5c"), Cbor::Array(vec![Cbor::Bytes(ca.attestation_der.clone())])),
            ]),
        ),
        (text("authData"), Cbor::Bytes(auth_data)),
    ]);
    let mut att = vec![];
    ciborium::into_writer(&object, &mut att).unwrap();
    let request = Fido2RegistrationRequest {
        display_name: Some(name.into()),
        public_key_credential: PublicKeyCredential {
            id: URL_SAFE_NO_PAD.encode(&cred_id),
            response: AttestationResponse {
                client_data_json: URL_SAFE_NO_PAD.encode(&client_data),
                attestation_object: URL_SAFE_NO_PAD.encode(&att),
            },
            client_extension_results: None,
        },
    };
    (request, cred_id)
}

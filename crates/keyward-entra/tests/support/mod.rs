//! Shared harness of the connector's tests: the emulator (from `keyward-testkit`) with the
//! example tenant, connector configurations pointed at it, RSA test certificates, and the
//! testkit's independent test authenticator turned into a Graph registration body.

#![allow(dead_code, unused_imports)]

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyward_entra::{ApiVersion, AssertionMode, Connector, ConnectorConfig, Credential, RetryPolicy};
use keyward_sim::seed::Seed;
use keyward_sim::server::RunningSim;
use keyward_webauthn::graph::{
    AttestationResponse, CredentialCreationOptions, Fido2RegistrationRequest, PublicKeyCredential,
};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use sha2::Digest;

pub use keyward_testkit::seed::{
    ADELE, ADELE_UPN, APP as CLIENT, APP_SECRET as SECRET, ENGINEERING, MEGAN_UPN, READER, READER_SECRET,
    TENANT,
};
pub use keyward_testkit::sim::start;
pub use keyward_testkit::{TestCa, test_ca};

pub const AAGUID: [u8; 16] = *b"KeywardTestKey01";

/// The example tenant plus `extra` users in Engineering (every seventh disabled), trusting `ca`
/// for attestation.
pub fn seed(extra: usize, ca: Option<&TestCa>) -> Seed {
    let mut seed = keyward_testkit::seed::with_users(extra, |i, user| {
        user.account_enabled = i % 7 != 0;
        user.groups = vec![ENGINEERING.into()];
    });
    if let Some(ca) = ca {
        keyward_testkit::seed::trust_ca(&mut seed, ca, AAGUID, "Keyward Test Key");
    }
    seed
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
    let public_key = &options.public_key;
    let made = ca.packed_registration(
        AAGUID,
        &public_key.rp.id,
        keyward_webauthn::ENTRA_ORIGIN,
        &public_key.challenge,
    );
    let request = Fido2RegistrationRequest {
        display_name: Some(name.into()),
        public_key_credential: PublicKeyCredential {
            id: URL_SAFE_NO_PAD.encode(&made.credential_id),
            response: AttestationResponse {
                client_data_json: URL_SAFE_NO_PAD.encode(&made.client_data_json),
                attestation_object: URL_SAFE_NO_PAD.encode(&made.attestation_object),
            },
            client_extension_results: None,
        },
    };
    (request, made.credential_id)
}

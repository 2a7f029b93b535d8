//! Shared set-up for the conformance tests: a client wired to a fresh soft key over the
//! in-memory transport, and the requests the tests reuse.
#![allow(dead_code)] // each test file uses a different subset

use std::time::Duration;

use ciborium::value::Value;
use keyward_ctap::{AuthData, Client, HidDevice, MakeCredential, MemoryTransport, Timeouts};
use keyward_softkey::{Config, SoftKey};
use p256::ecdsa::VerifyingKey;
use secrecy::SecretString;
use sha2::{Digest, Sha256};

/// The RP every test registers for.
pub const RP: &str = "login.microsoft.com";

/// Timeouts short enough for tests, long enough for a loaded CI machine.
pub fn timeouts() -> Timeouts {
    Timeouts { idle: Duration::from_secs(5), transaction: Duration::from_secs(10) }
}

/// A client on a new soft key.
pub fn setup(config: Config) -> (Client<MemoryTransport>, SoftKey) {
    let (host, dev) = MemoryTransport::pair();
    let key = SoftKey::spawn(config, dev.from_host, dev.to_host);
    (Client::new(HidDevice::open(host, timeouts()).unwrap()), key)
}

/// A PIN as the client takes it.
pub fn pin(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

/// A discoverable, hmac-secret, credProtect 2 registration for `user` at [`RP`].
pub fn request(user: &[u8]) -> MakeCredential {
    MakeCredential {
        client_data_hash: Sha256::digest(b"{\"type\":\"webauthn.create\"}").into(),
        rp_id: RP.into(),
        rp_name: Some("Microsoft".into()),
        user_id: user.to_vec(),
        user_name: Some("ada@contoso.com".into()),
        user_display_name: Some("Ada".into()),
        resident_key: true,
        hmac_secret: true,
        cred_protect: Some(2),
        ..MakeCredential::default()
    }
}

/// The credential public key in authenticator data, as a verifying key.
pub fn verifying_key(auth: &AuthData) -> VerifyingKey {
    let Some(Value::Map(m)) = &auth.public_key else { panic!("no public key") };
    let get = |k: i64| {
        m.iter().find(|(key, _)| key.as_integer() == Some(k.into())).unwrap().1.as_bytes().unwrap().clone()
    };
    let point = p256::EncodedPoint::from_affine_coordinates(
        get(-2).as_slice().into(),
        get(-3).as_slice().into(),
        false,
    );
    VerifyingKey::from_encoded_point(&point).unwrap()
}

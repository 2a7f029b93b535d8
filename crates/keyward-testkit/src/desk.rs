//! The operator's desk in-process: Keyward's soft key (`keyward-softkey`) behind Keyward's own
//! CTAP client over the in-memory CTAPHID transport, with a PIN set, attesting `packed` with the
//! test CA's certificate so the emulator (seeded with [`crate::seed::trust_ca`]) accepts it.

use std::time::Duration;

use keyward_ctap::client::{PERMISSION_GA, PERMISSION_MC};
use keyward_ctap::{Client, EntraSignIn, HidDevice, MemoryTransport, PinToken, Timeouts};
use keyward_softkey::{Attestation, Config, SoftKey};
use keyward_webauthn::ENTRA_RP_ID;
use keyward_webauthn::registration::RegistrationPlan;
use secrecy::SecretString;
use serde_json::Value;

use crate::attestation_ca::TestCa;

/// The soft key's AAGUID in the stacks (`KeywardSoftKey01`).
pub const AAGUID: [u8; 16] = *b"KeywardSoftKey01";
/// The model name the stacks' seed gives [`AAGUID`].
pub const MODEL: &str = "Keyward Soft Key (test CA)";
/// The PIN a desk sets on its key unless told otherwise.
pub const PIN: &str = "271828";

/// A soft key configuration for `aaguid` attesting `packed` with `ca`'s certificate (no
/// intermediates); other settings are the soft key's defaults.
pub fn packed_config(ca: &TestCa, aaguid: [u8; 16]) -> Config {
    Config {
        aaguid,
        attestation: Attestation::Packed {
            key: ca.attestation_key.clone(),
            x5c: vec![ca.attestation_der.clone()],
        },
        ..Config::default()
    }
}

/// Keyward's CTAP client on a running soft key, with the key's PIN.
pub struct SoftDesk {
    /// The client.
    pub client: Client<MemoryTransport>,
    /// The key (its state can be inspected).
    pub key: SoftKey,
    /// The key's PIN.
    pub pin: SecretString,
}

impl SoftDesk {
    /// Starts a soft key with `config`, opens it with our client and sets `pin`.
    pub fn open(config: Config, pin: &str) -> Self {
        let (host, dev) = MemoryTransport::pair();
        let key = SoftKey::spawn(config, dev.from_host, dev.to_host);
        let timeouts = Timeouts { idle: Duration::from_secs(5), transaction: Duration::from_secs(10) };
        let mut client = Client::new(HidDevice::open(host, timeouts).expect("the soft key answers INIT"));
        let pin = SecretString::from(pin.to_owned());
        client.set_pin(&pin).expect("a fresh soft key takes a PIN");
        Self { client, key, pin }
    }

    /// A soft key of model [`AAGUID`] attested by `ca`, PIN [`PIN`].
    pub fn with_ca(ca: &TestCa) -> Self {
        Self::open(packed_config(ca, AAGUID), PIN)
    }

    /// A PIN token for makeCredential on Entra's RP id.
    pub fn make_credential_token(&mut self) -> PinToken {
        self.client
            .get_pin_uv_auth_token(&self.pin, PERMISSION_MC, Some(ENTRA_RP_ID))
            .expect("the desk's PIN is accepted")
    }

    /// Makes the credential Entra's creation options (JSON) ask for; returns the plan (with the
    /// client data) and the attestation object.
    pub fn register(&mut self, creation_options: &Value) -> (RegistrationPlan, Vec<u8>) {
        let options = serde_json::from_value(creation_options.clone()).expect("Entra's creation options");
        let plan = RegistrationPlan::from_creation_options(&options).expect("a registration plan");
        let token = self.make_credential_token();
        let made = self.client.register_for_entra(&plan, &token).expect("the soft key makes the credential");
        let attestation_object = made.attestation.attestation_object();
        (plan, attestation_object)
    }

    /// Signs in to Entra: answers the sign-in `challenge` with the key's passkey `credential` (or
    /// its first), verified with the desk's PIN.
    pub fn sign_in(&mut self, challenge: &str, credential: Option<&[u8]>) -> EntraSignIn {
        let token = self
            .client
            .get_pin_uv_auth_token(&self.pin, PERMISSION_GA, Some(ENTRA_RP_ID))
            .expect("the desk's PIN is accepted");
        self.client.sign_in_for_entra(challenge, &token, credential).expect("the soft key signs in")
    }

    /// [`SoftDesk::register`], returning (clientDataJSON, attestationObject).
    pub fn make_credential(&mut self, creation_options: &Value) -> (Vec<u8>, Vec<u8>) {
        let (plan, attestation_object) = self.register(creation_options);
        (plan.client_data_json, attestation_object)
    }
}

//! Signing in to Entra with a passkey, as a browser would: the client data for the tenant's
//! challenge (`webauthn.get`, origin `https://login.microsoft.com`), then a getAssertion for
//! `login.microsoft.com` with an empty allow list (Entra's sign-in uses discoverable
//! credentials) and user verification through a PIN token.
//!
//! When the key holds several passkeys for Entra (several people, or an old one), the key
//! answers with the first and counts the others; the caller may name the credential it wants, and
//! the others are walked with getNextAssertion until it comes (a browser would show a picker).

use keyward_webauthn::client_data::CollectedClientData;
use keyward_webauthn::signin::{AssertionCredential, AssertionResponse};
use keyward_webauthn::{ENTRA_RP_ID, b64};
use sha2::{Digest, Sha256};

use crate::client::{Client, PinToken};
use crate::credential::GetAssertion;
use crate::error::CtapError;
use crate::transport::Transport;

/// The parts of a passkey sign-in the relying party verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraSignIn {
    /// The credential that answered.
    pub credential_id: Vec<u8>,
    /// The clientDataJSON bytes the key signed the hash of.
    pub client_data_json: Vec<u8>,
    /// Authenticator data.
    pub authenticator_data: Vec<u8>,
    /// DER ECDSA signature over authenticator data ‖ SHA-256(clientDataJSON).
    pub signature: Vec<u8>,
    /// The user handle stored with the credential (Entra's opaque id of the person).
    pub user_handle: Option<Vec<u8>>,
}

impl EntraSignIn {
    /// The sign-in as WebAuthn's JSON (`AuthenticationResponseJSON`): what the tenant verifies.
    pub fn to_credential(&self) -> AssertionCredential {
        AssertionCredential {
            id: b64::encode(&self.credential_id),
            response: AssertionResponse {
                client_data_json: b64::encode(&self.client_data_json),
                authenticator_data: b64::encode(&self.authenticator_data),
                signature: b64::encode(&self.signature),
                user_handle: self.user_handle.as_deref().map(b64::encode),
            },
        }
    }
}

impl<T: Transport> Client<T> {
    /// Answers Entra's sign-in `challenge` (base64url, as the tenant sent it) with a discoverable
    /// credential for `login.microsoft.com`, verified with `token` (permission getAssertion).
    /// With `credential`, that passkey answers; without, the key's first.
    pub fn sign_in_for_entra(
        &mut self,
        challenge: &str,
        token: &PinToken,
        credential: Option<&[u8]>,
    ) -> Result<EntraSignIn, CtapError> {
        let client_data_json = CollectedClientData::entra_get(challenge).to_json_bytes();
        let req = GetAssertion {
            rp_id: ENTRA_RP_ID.into(),
            client_data_hash: Sha256::digest(&client_data_json).into(),
            allow_list: vec![],
            hmac_secret: None,
        };
        let mut assertion = self.get_assertion_with(&req, Some(token))?;
        let count = assertion.number_of_credentials.unwrap_or(1);
        let mut seen = 1;
        while let Some(want) = credential
            && assertion.credential_id != want
        {
            if seen >= count {
                return Err(CtapError::Malformed(
                    "the key holds no passkey for login.microsoft.com with the wanted credential id".into(),
                ));
            }
            assertion = self.get_next_assertion()?;
            seen += 1;
        }
        Ok(EntraSignIn {
            credential_id: assertion.credential_id,
            client_data_json,
            authenticator_data: assertion.auth_data,
            signature: assertion.signature,
            user_handle: assertion.user_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use keyward_softkey::{Config, SoftKey};
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::{Signature, VerifyingKey};
    use secrecy::SecretString;

    use super::*;
    use crate::client::{PERMISSION_GA, PERMISSION_MC};
    use crate::{HidDevice, MakeCredential, MemoryTransport, Timeouts};

    fn soft_key() -> (Client<MemoryTransport>, SoftKey, SecretString) {
        let (host, dev) = MemoryTransport::pair();
        let soft = SoftKey::spawn(Config::default(), dev.from_host, dev.to_host);
        let timeouts = Timeouts { idle: Duration::from_secs(5), transaction: Duration::from_secs(10) };
        let mut key = Client::new(HidDevice::open(host, timeouts).unwrap());
        let pin = SecretString::from("314159".to_owned());
        key.set_pin(&pin).unwrap();
        (key, soft, pin)
    }

    fn make(key: &mut Client<MemoryTransport>, pin: &SecretString, user: u8) -> (Vec<u8>, VerifyingKey) {
        let token = key.get_pin_uv_auth_token(pin, PERMISSION_MC, Some(ENTRA_RP_ID)).unwrap();
        let req = MakeCredential {
            client_data_hash: [user; 32],
            rp_id: ENTRA_RP_ID.into(),
            user_id: vec![user; 16],
            user_name: Some(format!("user{user}")),
            resident_key: true,
            ..MakeCredential::default()
        };
        let parsed = key.make_credential(&req, Some(&token)).unwrap().parsed().unwrap();
        let pk = crate::pin::parse_cose_key(&parsed.public_key.unwrap()).unwrap();
        (parsed.credential_id.unwrap(), VerifyingKey::from(&pk))
    }

    #[test]
    fn the_assertion_signs_webauthn_get_client_data_with_uv_and_the_wanted_credential() {
        let (mut key, _soft, pin) = soft_key();
        let (id_a, pk_a) = make(&mut key, &pin, 1);
        let (id_b, _) = make(&mut key, &pin, 2);
        let token = key.get_pin_uv_auth_token(&pin, PERMISSION_GA, Some(ENTRA_RP_ID)).unwrap();
        let signed = key.sign_in_for_entra("Y2hhbGxlbmdl", &token, Some(&id_a)).unwrap();
        assert_eq!(signed.credential_id, id_a);
        assert_eq!(signed.user_handle.as_deref(), Some(&[1u8; 16][..]));
        let client: serde_json::Value = serde_json::from_slice(&signed.client_data_json).unwrap();
        assert_eq!(client["type"], "webauthn.get");
        assert_eq!(client["challenge"], "Y2hhbGxlbmdl");
        assert_eq!(client["origin"], "https://login.microsoft.com");
        assert_eq!(signed.authenticator_data[..32], Sha256::digest(ENTRA_RP_ID.as_bytes())[..]);
        assert_eq!(signed.authenticator_data[32] & 0x05, 0x05, "UP and UV");
        let mut message = signed.authenticator_data.clone();
        message.extend_from_slice(&Sha256::digest(&signed.client_data_json));
        pk_a.verify(&message, &Signature::from_der(&signed.signature).unwrap()).unwrap();

        let token = key.get_pin_uv_auth_token(&pin, PERMISSION_GA, Some(ENTRA_RP_ID)).unwrap();
        let newest = key.sign_in_for_entra("Y2hhbGxlbmdl", &token, None).unwrap();
        assert_eq!(newest.credential_id, id_b, "without a wanted id the key's first answers");
        let token = key.get_pin_uv_auth_token(&pin, PERMISSION_GA, Some(ENTRA_RP_ID)).unwrap();
        let missing = key.sign_in_for_entra("Y2hhbGxlbmdl", &token, Some(&[9u8; 32]));
        assert!(matches!(missing, Err(CtapError::Malformed(_))), "{missing:?}");
    }

    #[test]
    fn the_counter_grows_with_every_sign_in() {
        let (mut key, _soft, pin) = soft_key();
        let (id, _) = make(&mut key, &pin, 1);
        let counter = |s: &EntraSignIn| u32::from_be_bytes(s.authenticator_data[33..37].try_into().unwrap());
        let token = key.get_pin_uv_auth_token(&pin, PERMISSION_GA, Some(ENTRA_RP_ID)).unwrap();
        let first = key.sign_in_for_entra("YQ", &token, Some(&id)).unwrap();
        let token = key.get_pin_uv_auth_token(&pin, PERMISSION_GA, Some(ENTRA_RP_ID)).unwrap();
        let second = key.sign_in_for_entra("YQ", &token, Some(&id)).unwrap();
        assert!(counter(&second) > counter(&first));
    }
}

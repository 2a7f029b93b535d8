//! The sign-in self-test after a registration: a getAssertion for `login.microsoft.com` with
//! the new credential alone in the allow list and user verification through a PIN token, whose
//! signature is checked against the public key from the key's own attestation.
//!
//! This proves, before the key leaves the desk, that the key will sign in with the PIN the
//! person receives and with the credential Entra now holds. The check is done here with `p256`
//! rather than by asking Entra (no sign-in endpoint takes a bare assertion).

use keyward_ctap::client::PERMISSION_GA;
use keyward_ctap::{Attestation, Client, Transport};
use keyward_webauthn::ENTRA_RP_ID;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use rand::RngCore;
use secrecy::SecretString;
use sha2::{Digest, Sha256};

/// Why the self-test failed.
#[derive(Debug, thiserror::Error)]
pub enum SelfTestError {
    /// The attestation lacks the credential's public key.
    #[error("the key's answer to makeCredential has no usable credential public key ({0})")]
    NoPublicKey(String),
    /// The key failed the getAssertion.
    #[error("the key refused to sign in with the new passkey ({0})")]
    Ctap(#[from] keyward_ctap::CtapError),
    /// A different credential answered.
    #[error("the key answered with a different credential than the one just made")]
    WrongCredential,
    /// User verification flag not set.
    #[error("the key signed without user verification although a PIN token was given")]
    NotVerified,
    /// The signature does not verify.
    #[error("the key's signature does not verify with the credential's public key")]
    BadSignature,
}

/// The credential id and public key of a fresh attestation.
pub fn credential_of(attestation: &Attestation) -> Result<(Vec<u8>, VerifyingKey), SelfTestError> {
    let parsed = attestation.parsed().map_err(|e| SelfTestError::NoPublicKey(e.to_string()))?;
    let id = parsed.credential_id.ok_or_else(|| SelfTestError::NoPublicKey("no credential id".into()))?;
    let cose = parsed.public_key.ok_or_else(|| SelfTestError::NoPublicKey("no public key".into()))?;
    let pk =
        keyward_ctap::pin::parse_cose_key(&cose).map_err(|e| SelfTestError::NoPublicKey(e.to_string()))?;
    Ok((id, VerifyingKey::from(&pk)))
}

/// Signs a fresh challenge with the credential and verifies the signature.
pub fn self_test<T: Transport>(
    key: &mut Client<T>,
    pin: &SecretString,
    credential_id: &[u8],
    public_key: &VerifyingKey,
) -> Result<(), SelfTestError> {
    let mut challenge = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut challenge);
    let client_data_hash: [u8; 32] = Sha256::digest(challenge).into();
    let token = key.get_pin_uv_auth_token(pin, PERMISSION_GA, Some(ENTRA_RP_ID))?;
    let assertion =
        key.get_assertion(ENTRA_RP_ID, &client_data_hash, &[credential_id.to_vec()], Some(&token))?;
    if assertion.credential_id != credential_id {
        return Err(SelfTestError::WrongCredential);
    }
    let flags = *assertion.auth_data.get(32).ok_or(SelfTestError::BadSignature)?;
    if flags & 0x04 == 0 {
        return Err(SelfTestError::NotVerified);
    }
    let signature = Signature::from_der(&assertion.signature).map_err(|_| SelfTestError::BadSignature)?;
    let mut signed = assertion.auth_data.clone();
    signed.extend_from_slice(&client_data_hash);
    public_key.verify(&signed, &signature).map_err(|_| SelfTestError::BadSignature)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use keyward_ctap::client::PERMISSION_MC;
    use keyward_ctap::{HidDevice, MakeCredential, MemoryTransport, Timeouts};
    use keyward_softkey::{Config, SoftKey};

    use super::*;

    fn make(key: &mut Client<MemoryTransport>, pin: &SecretString, user: u8) -> Attestation {
        let token = key.get_pin_uv_auth_token(pin, PERMISSION_MC, Some(ENTRA_RP_ID)).unwrap();
        let req = MakeCredential {
            client_data_hash: [user; 32],
            rp_id: ENTRA_RP_ID.into(),
            user_id: vec![user; 16],
            user_name: Some(format!("user{user}")),
            resident_key: true,
            ..MakeCredential::default()
        };
        key.make_credential(&req, Some(&token)).unwrap()
    }

    #[test]
    fn the_self_test_accepts_the_new_credential_and_rejects_a_wrong_key_or_id() {
        let (host, dev) = MemoryTransport::pair();
        let _soft = SoftKey::spawn(Config::default(), dev.from_host, dev.to_host);
        let timeouts = Timeouts { idle: Duration::from_secs(5), transaction: Duration::from_secs(10) };
        let mut key = Client::new(HidDevice::open(host, timeouts).unwrap());
        let pin = SecretString::from("270318".to_owned());
        key.set_pin(&pin).unwrap();
        let (id_a, pk_a) = credential_of(&make(&mut key, &pin, 1)).unwrap();
        let (id_b, pk_b) = credential_of(&make(&mut key, &pin, 2)).unwrap();

        self_test(&mut key, &pin, &id_a, &pk_a).unwrap();
        self_test(&mut key, &pin, &id_b, &pk_b).unwrap();
        assert!(matches!(self_test(&mut key, &pin, &id_a, &pk_b), Err(SelfTestError::BadSignature)));
        assert!(matches!(self_test(&mut key, &pin, &[7u8; 32], &pk_a), Err(SelfTestError::Ctap(_))));
        let wrong_pin = SecretString::from("999000".to_owned());
        assert!(matches!(self_test(&mut key, &wrong_pin, &id_a, &pk_a), Err(SelfTestError::Ctap(_))));
    }
}

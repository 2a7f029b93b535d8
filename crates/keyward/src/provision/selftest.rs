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

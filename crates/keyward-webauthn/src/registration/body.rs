//! The `POST …/fido2Methods` body from a plan and the key's attestation object.
//!
//! The attestation object is passed on exactly as the key produced it (re-encoding CBOR can
//! change bytes the attestation signature covers); the credential id is read from its
//! authenticator data, so the body can never name a different credential than the one the
//! key signed. Before anything is sent, the authenticator data is checked against the plan
//! (relying party hash, user presence and verification, attested credential data): those
//! are the mistakes Graph would only answer with a generic 400.
//!
//! Parsing is [`crate::attestation`]'s; this module only decides what Entra needs from it.

use ciborium::Value;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::display_name::fit_display_name;
use super::plan::RegistrationPlan;
use crate::attestation::{AttestationObject, AttestationParseError};
use crate::b64;
use crate::graph::{AttestationResponse, Fido2RegistrationRequest, PublicKeyCredential};

/// The display name sent when neither a name nor a serial is known.
pub const UNNAMED_KEY: &str = "Security key";

/// The key's answer cannot be registered with Entra as it is.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The bytes are not a valid attestation object.
    #[error(
        "the security key's attestation object cannot be read ({0}); re-insert the key and retry, and \
         report the key model if it persists"
    )]
    Malformed(#[from] AttestationParseError),
    /// The authenticator data has no attested credential (AT flag clear).
    #[error(
        "the security key answered without a new credential (no attested credential data); re-insert \
         the key and retry, and report the key model if it persists"
    )]
    NoCredential,
    /// The key signed for another relying party.
    #[error(
        "the security key created the passkey for another site than login.microsoft.com; make sure the \
         security key (not Windows Hello or a phone) answered, and retry"
    )]
    WrongRelyingParty,
    /// UP or UV flag missing.
    #[error(
        "the security key did not verify the user (flags {flags:#04x}: UP and UV are required); set a PIN \
         on the key, enter it, touch the key, and retry"
    )]
    NotVerified {
        /// The flags byte of the authenticator data.
        flags: u8,
    },
}

/// A registration ready to post, with what the caller records about it.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedRegistration {
    /// The Graph request body.
    pub request: Fido2RegistrationRequest,
    /// The new credential's id (to find or delete it on the key if Graph refuses it).
    pub credential_id: Vec<u8>,
    /// The authenticator's AAGUID from the authenticator data.
    pub aaguid: [u8; 16],
}

/// Builds the Graph body: attestation object unchanged, client data as planned, credential id
/// from the authenticator data, display name fitted to 30 characters with the serial kept.
pub fn registration_body(
    plan: &RegistrationPlan,
    attestation_object: &[u8],
    display_name: &str,
    serial: Option<&str>,
) -> Result<PreparedRegistration, BodyError> {
    let parsed = AttestationObject::parse(attestation_object)?;
    let auth = &parsed.auth_data;
    if auth.rp_id_hash != <[u8; 32]>::from(Sha256::digest(plan.rp_id.as_bytes())) {
        return Err(BodyError::WrongRelyingParty);
    }
    if !(auth.flags.up() && auth.flags.uv()) {
        return Err(BodyError::NotVerified { flags: auth.flags.0 });
    }
    let credential = auth.attested.as_ref().ok_or(BodyError::NoCredential)?;
    // A browser reports hmacCreateSecret when it was asked for; credProtect has no client output.
    let client_extension_results = plan.hmac_secret.then(|| {
        let enabled = auth
            .extensions
            .as_ref()
            .and_then(Value::as_map)
            .and_then(|m| m.iter().find(|(k, _)| k.as_text() == Some("hmac-secret")))
            .and_then(|(_, v)| v.as_bool())
            .unwrap_or(false);
        json!({ "hmacCreateSecret": enabled })
    });
    let request = Fido2RegistrationRequest {
        // Graph refuses a body without a displayName ("…a displayName and publicKeyCredential…",
        // msgraph-beta-sdk-dotnet #941), so an empty name becomes a generic one.
        display_name: Some(fit_display_name(display_name, serial))
            .filter(|n| !n.is_empty())
            .or_else(|| Some(UNNAMED_KEY.to_owned())),
        public_key_credential: PublicKeyCredential {
            id: b64::encode(&credential.credential_id),
            response: AttestationResponse {
                client_data_json: b64::encode(&plan.client_data_json),
                attestation_object: b64::encode(attestation_object),
            },
            client_extension_results,
        },
    };
    Ok(PreparedRegistration {
        request,
        credential_id: credential.credential_id.clone(),
        aaguid: credential.aaguid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::CredentialCreationOptions;

    const FLAG_UP: u8 = 0x01;
    const FLAG_UV: u8 = 0x04;
    const FLAG_AT: u8 = 0x40;
    const FLAG_ED: u8 = 0x80;

    fn plan() -> RegistrationPlan {
        let options: CredentialCreationOptions = serde_json::from_value(json!({
            "challengeTimeoutDateTime": "2026-11-23T12:00:00Z",
            "publicKey": {
                "rp": {"id": "login.microsoft.com", "name": "Microsoft"},
                "user": {"id": "T0Y6AQID", "name": "adele@contoso.com", "displayName": "Adele Vance"},
                "challenge": "Y2hhbGxlbmdl",
                "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
                "extensions": {"hmacCreateSecret": true}
            }
        }))
        .unwrap();
        RegistrationPlan::from_creation_options(&options).unwrap()
    }

    fn cbor(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(v, &mut out).unwrap();
        out
    }

    /// Authenticator data for `rp` with `flags`, a 20-byte credential id and a COSE key.
    fn auth_data(rp: &str, flags: u8, extensions: Option<Value>) -> Vec<u8> {
        let mut out = Sha256::digest(rp.as_bytes()).to_vec();
        out.push(flags);
        out.extend_from_slice(&7u32.to_be_bytes());
        out.extend_from_slice(b"KeywardTestKey01");
        out.extend_from_slice(&20u16.to_be_bytes());
        out.extend_from_slice(&[0xC1; 20]);
        let key = Value::Map(vec![
            (Value::Integer(1.into()), Value::Integer(2.into())),
            (Value::Integer(3.into()), Value::Integer((-7).into())),
        ]);
        out.extend(cbor(&key));
        if let Some(ext) = extensions {
            out.extend(cbor(&ext));
        }
        out
    }

    /// An attestation object whose map is deliberately not in canonical order.
    fn attestation_object(auth_data: Vec<u8>) -> Vec<u8> {
        cbor(&Value::Map(vec![
            (Value::Text("authData".into()), Value::Bytes(auth_data)),
            (Value::Text("fmt".into()), Value::Text("none".into())),
            (Value::Text("attStmt".into()), Value::Map(vec![])),
        ]))
    }

    const OK_FLAGS: u8 = FLAG_UP | FLAG_UV | FLAG_AT;

    #[test]
    fn the_body_carries_the_bytes_unchanged_and_the_id_from_auth_data() {
        let plan = plan();
        let hmac = Value::Map(vec![(Value::Text("hmac-secret".into()), Value::Bool(true))]);
        let att = attestation_object(auth_data("login.microsoft.com", OK_FLAGS | FLAG_ED, Some(hmac)));
        let prepared =
            registration_body(&plan, &att, "YubiKey 5 NFC for Alice Smith", Some("12345678")).unwrap();
        let body = serde_json::to_value(&prepared.request).unwrap();
        assert_eq!(
            body,
            json!({
                "displayName": "YubiKey 5…ice Smith (12345678)",
                "publicKeyCredential": {
                    "id": b64::encode(&[0xC1; 20]),
                    "response": {
                        "clientDataJSON": b64::encode(&plan.client_data_json),
                        "attestationObject": b64::encode(&att),
                    },
                    "clientExtensionResults": {"hmacCreateSecret": true}
                }
            })
        );
        assert_eq!(prepared.credential_id, [0xC1; 20]);
        let unnamed = registration_body(&plan, &att, "  ", None).unwrap();
        assert_eq!(unnamed.request.display_name.as_deref(), Some(UNNAMED_KEY));
        let serial_only = registration_body(&plan, &att, "", Some("12345678")).unwrap();
        assert_eq!(serial_only.request.display_name.as_deref(), Some("12345678"));
        assert_eq!(&prepared.aaguid, b"KeywardTestKey01");
    }

    #[test]
    fn hmac_secret_not_granted_or_not_asked() {
        let mut plan = plan();
        let att = attestation_object(auth_data("login.microsoft.com", OK_FLAGS, None));
        let prepared = registration_body(&plan, &att, "Key", None).unwrap();
        assert_eq!(
            prepared.request.public_key_credential.client_extension_results,
            Some(json!({"hmacCreateSecret": false}))
        );
        plan.hmac_secret = false;
        let prepared = registration_body(&plan, &att, "Key", None).unwrap();
        assert_eq!(prepared.request.public_key_credential.client_extension_results, None);
    }

    #[test]
    fn answers_entra_would_refuse_are_caught_before_posting() {
        let plan = plan();
        let mut truncated = auth_data("login.microsoft.com", OK_FLAGS, None);
        truncated.truncate(78); // inside the COSE key
        let cases: Vec<(&str, Vec<u8>, BodyError)> = vec![
            (
                "other rp",
                attestation_object(auth_data("example.com", OK_FLAGS, None)),
                BodyError::WrongRelyingParty,
            ),
            (
                "no UV",
                attestation_object(auth_data("login.microsoft.com", FLAG_UP | FLAG_AT, None)),
                BodyError::NotVerified { flags: FLAG_UP | FLAG_AT },
            ),
            (
                "no UP",
                attestation_object(auth_data("login.microsoft.com", FLAG_UV | FLAG_AT, None)),
                BodyError::NotVerified { flags: FLAG_UV | FLAG_AT },
            ),
            (
                "no AT",
                attestation_object(auth_data("login.microsoft.com", FLAG_UP | FLAG_UV, None)[..37].to_vec()),
                BodyError::NoCredential,
            ),
            (
                "truncated",
                attestation_object(truncated),
                BodyError::Malformed(AttestationParseError::PublicKey),
            ),
            (
                "not a map",
                cbor(&Value::Array(vec![])),
                BodyError::Malformed(AttestationParseError::Member("map")),
            ),
        ];
        for (name, att, want) in cases {
            assert_eq!(registration_body(&plan, &att, "Key", None), Err(want), "{name}");
        }
    }
}

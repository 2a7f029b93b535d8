//! Microsoft Graph shapes for passkey provisioning (docs/entra-graph-api.md §1–§5, §9).
//!
//! Field names follow the Graph CSDL exactly (camelCase). Unknown `@odata.*` keys are
//! ignored on input; every optional field a real response may omit is an `Option` or
//! has a default, so a client never fails on a response the real service would send.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `webauthnCredentialCreationOptions`, the answer of `fido2Methods/creationOptions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialCreationOptions {
    /// When the challenge stops being accepted (ISO 8601, UTC).
    pub challenge_timeout_date_time: String,
    /// The WebAuthn creation options to hand to the authenticator.
    pub public_key: PublicKeyCreationOptions,
}

/// `webauthnPublicKeyCredentialCreationOptions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeyCreationOptions {
    /// The relying party (`login.microsoft.com`, `Microsoft`).
    pub rp: RpEntity,
    /// The user the credential is for, with Entra's opaque user handle.
    pub user: UserEntity,
    /// The opaque challenge, base64url without padding.
    pub challenge: String,
    /// Algorithms the service accepts, in preference order.
    #[serde(default)]
    pub pub_key_cred_params: Vec<CredentialParameters>,
    /// Timeout in milliseconds; Entra often sends 0.
    #[serde(default)]
    pub timeout: Option<u32>,
    /// Credentials already registered for the user.
    #[serde(default)]
    pub exclude_credentials: Vec<CredentialDescriptor>,
    /// Authenticator requirements.
    #[serde(default)]
    pub authenticator_selection: Option<AuthenticatorSelection>,
    /// Attestation conveyance preference (`direct`).
    #[serde(default)]
    pub attestation: Option<String>,
    /// Client extension inputs (an open type in Graph).
    #[serde(default)]
    pub extensions: Option<ExtensionInputs>,
}

/// `webauthnPublicKeyCredentialRpEntity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpEntity {
    /// The RP id.
    pub id: String,
    /// The RP display name.
    pub name: String,
}

/// `webauthnPublicKeyCredentialUserEntity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserEntity {
    /// The user handle, base64url without padding.
    pub id: String,
    /// The user's UPN.
    pub name: String,
    /// The user's display name.
    pub display_name: String,
}

/// `webauthnPublicKeyCredentialParameters`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialParameters {
    /// Always `public-key`.
    #[serde(rename = "type")]
    pub kind: String,
    /// COSE algorithm identifier (-7 ES256, -257 RS256).
    pub alg: i64,
}

/// `webauthnPublicKeyCredentialDescriptor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialDescriptor {
    /// Always `public-key`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The credential id, in one of the encodings of docs/entra-graph-api.md §1.4: decode leniently.
    pub id: String,
    /// Transports hinted by the service.
    #[serde(default)]
    pub transports: Vec<String>,
}

/// `webauthnAuthenticatorSelectionCriteria`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticatorSelection {
    /// `cross-platform` in every real capture.
    #[serde(default)]
    pub authenticator_attachment: Option<String>,
    /// Always true in practice.
    #[serde(default)]
    pub require_resident_key: bool,
    /// Always `required` in practice.
    #[serde(default)]
    pub user_verification: Option<String>,
}

/// The extension inputs Entra has been observed to send.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionInputs {
    /// Request the hmac-secret extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_create_secret: Option<bool>,
    /// Fail if the authenticator cannot apply the credProtect level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforce_credential_protection_policy: Option<bool>,
    /// `userVerificationOptional` | `userVerificationOptionalWithCredentialIDList` | `userVerificationRequired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_protection_policy: Option<String>,
}

/// The body of `POST …/fido2Methods`, as every working client sends it.
///
/// `rawId`, `type`, `authenticatorAttachment` and `@odata.type` are deliberately absent:
/// Graph has rejected bodies carrying them (DSInternals.Passkeys stopped sending them for that reason).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fido2RegistrationRequest {
    /// Display name of the key; at most [`MAX_DISPLAY_NAME_CHARS`] characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The credential produced by the authenticator.
    pub public_key_credential: PublicKeyCredential,
}

/// The longest `displayName` Keyward sends and the emulator accepts (docs/entra-graph-api.md §2.2, §14).
pub const MAX_DISPLAY_NAME_CHARS: usize = 30;

/// `webauthnPublicKeyCredential` (write-only on Graph).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeyCredential {
    /// Credential id, base64url without padding.
    pub id: String,
    /// The attestation response.
    pub response: AttestationResponse,
    /// Client extension outputs (open type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_extension_results: Option<Value>,
}

/// `webauthnAuthenticatorAttestationResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttestationResponse {
    /// base64url of the client data JSON bytes.
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    /// base64url of the CBOR attestation object.
    pub attestation_object: String,
}

/// `fido2AuthenticationMethod`, as returned by register, list and get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fido2Method {
    /// The method id (credential id in base64url with a padding digit).
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Creation time.
    #[serde(default)]
    pub created_date_time: Option<String>,
    /// Authenticator AAGUID, dashed lowercase.
    #[serde(default)]
    pub aa_guid: Option<String>,
    /// Model name from FIDO metadata.
    #[serde(default)]
    pub model: Option<String>,
    /// SHA-1 thumbprints of the attestation certificates.
    #[serde(default)]
    pub attestation_certificates: Vec<String>,
    /// `attested` | `notAttested`.
    #[serde(default)]
    pub attestation_level: Option<String>,
    /// `deviceBound` | `synced`.
    #[serde(default)]
    pub passkey_type: Option<String>,
}

/// A Graph collection response page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collection<T> {
    /// The items of this page.
    pub value: Vec<T>,
    /// The URL of the next page, to follow verbatim.
    #[serde(rename = "@odata.nextLink", default, skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
}

/// The Graph error body (docs/entra-graph-api.md §9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphErrorBody {
    /// The error.
    pub error: GraphError,
}

/// The `error` object of a Graph error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphError {
    /// Machine-readable code, e.g. `badRequest`.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Correlation details.
    #[serde(rename = "innerError", default, skip_serializing_if = "Option::is_none")]
    pub inner_error: Option<GraphInnerError>,
}

/// The `innerError` object: correlation ids and a timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphInnerError {
    /// `yyyy-MM-ddTHH:mm:ss`, UTC.
    #[serde(default)]
    pub date: Option<String>,
    /// The service's id for the request.
    #[serde(rename = "request-id", default)]
    pub request_id: Option<String>,
    /// The id the client sent, echoed.
    #[serde(rename = "client-request-id", default)]
    pub client_request_id: Option<String>,
}

/// The error body of the Entra token endpoint (docs/entra-graph-api.md §7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenErrorBody {
    /// OAuth error, e.g. `invalid_client`.
    pub error: String,
    /// Text starting with the AADSTS code.
    pub error_description: String,
    /// Numeric AADSTS codes.
    #[serde(default)]
    pub error_codes: Vec<u64>,
    /// `yyyy-MM-dd HH:mm:ssZ`.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// Trace id.
    #[serde(default)]
    pub trace_id: Option<String>,
    /// Correlation id.
    #[serde(default)]
    pub correlation_id: Option<String>,
}

/// A successful token response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// `Bearer`.
    pub token_type: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// Extended lifetime in seconds.
    #[serde(default)]
    pub ext_expires_in: Option<u64>,
    /// The access token (opaque to clients).
    pub access_token: String,
    /// Present on authorization-code redemption with the `openid` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// Granted scopes (authorization code only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_real_beta_capture_with_mixed_id_encodings() {
        let json = r#"{
          "@odata.context": "https://graph.microsoft.com/beta/$metadata#microsoft.graph.webauthnCredentialCreationOptions",
          "challengeTimeoutDateTime": "2024-06-13T11:26:35Z",
          "publicKey": {
            "rp": {"id": "login.microsoft.com", "name": "Microsoft"},
            "user": {"id": "T0Y6mho3vwFprE6aslBq9b2Qjz7Ixbn0PntEPkHirHimyfAtmz4xoilu6sNoiPFkmvxW", "name": "john@contoso.com", "displayName": "John Doe"},
            "challenge": "ZXlKaGJHY2lPaUpTVTBFdFQwRkZVQzB5TlRZaUxDSmxibU1pT2lKQk1qVTJSME5OSWl3aWVEVmpJanBi",
            "pubKeyCredParams": [{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -257}],
            "timeout": 60000,
            "excludeCredentials": [
              {"type": "public-key", "id": "TZ2KrDEawbrIGQsnheGZ/BG9Nfnb7blSGwQYMGyJIhM=", "transports": []},
              {"type": "public-key", "id": "GshyINLMaOOwqt1LNUi0gQ==", "transports": ["usb", "nfc"]}
            ],
            "authenticatorSelection": {"authenticatorAttachment": "cross-platform", "requireResidentKey": true, "userVerification": "required"},
            "attestation": "direct",
            "extensions": {"hmacCreateSecret": true, "enforceCredentialProtectionPolicy": true, "credentialProtectionPolicy": "userVerificationOptional"}
          }
        }"#;
        let options: CredentialCreationOptions = serde_json::from_str(json).unwrap();
        assert_eq!(options.public_key.rp.id, crate::ENTRA_RP_ID);
        let ids: Vec<usize> = options
            .public_key
            .exclude_credentials
            .iter()
            .map(|c| crate::b64::credential_id_candidates(&c.id).unwrap()[0].len())
            .collect();
        assert_eq!(ids, [32, 16]);
    }

    #[test]
    fn registration_body_never_carries_fields_graph_rejects() {
        let body = Fido2RegistrationRequest {
            display_name: Some("YubiKey 5 NFC 12345678".into()),
            public_key_credential: PublicKeyCredential {
                id: "abc".into(),
                response: AttestationResponse {
                    client_data_json: "e30".into(),
                    attestation_object: "oA".into(),
                },
                client_extension_results: None,
            },
        };
        let text = serde_json::to_string(&body).unwrap();
        for banned in ["rawId", "\"type\"", "authenticatorAttachment", "@odata.type"] {
            assert!(!text.contains(banned), "{banned} in {text}");
        }
        assert!(text.contains("\"clientDataJSON\""));
    }
}

//! The wire shapes of the emulator's sign-in endpoints (`keyward sim`): passkey sign-in
//! (assertion options, then the assertion) and Temporary Access Pass sign-in.
//!
//! Microsoft does not publish how its own sign-in page carries a WebAuthn assertion, so these
//! shapes are the emulator's own (marked so in its list of choices). They follow the WebAuthn
//! JSON serialisation (`PublicKeyCredentialRequestOptionsJSON`, `AuthenticationResponseJSON`)
//! so that any WebAuthn client can drive them. The connector and the emulator share them.

use serde::{Deserialize, Serialize};

/// Path, under `/{tenant}`, of the assertion options endpoint.
pub const OPTIONS_PATH: &str = "passkey/signin/options";
/// Path, under `/{tenant}`, of the assertion endpoint.
pub const ASSERTION_PATH: &str = "passkey/signin";
/// Path, under `/{tenant}`, of the Temporary Access Pass sign-in endpoint.
pub const TAP_PATH: &str = "tap/signin";

/// `POST …/passkey/signin/options`: who asks, and optionally who is expected to sign in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssertionOptionsRequest {
    /// The application the person signs in to.
    pub client_id: String,
    /// UPN or object id of the person expected; the assertion must then be theirs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_hint: Option<String>,
}

/// The answer: WebAuthn request options for discoverable credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssertionOptions {
    /// base64url; sealed by the emulator, single use, bound to the client and the hint.
    pub challenge: String,
    /// Always `login.microsoft.com`.
    pub rp_id: String,
    /// Milliseconds.
    pub timeout: u64,
    /// Always `required`.
    pub user_verification: String,
    /// Always empty: the credential is discovered on the authenticator.
    #[serde(default)]
    pub allow_credentials: Vec<serde_json::Value>,
}

/// `POST …/passkey/signin`: the assertion, and what the token is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssertionRequest {
    /// The application the person signs in to (the one the options were asked for).
    pub client_id: String,
    /// Requested scopes, space-separated (default `openid profile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The credential's answer, as `navigator.credentials.get()` returns it in JSON.
    pub credential: AssertionCredential,
}

/// `AuthenticationResponseJSON` (the fields the emulator reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssertionCredential {
    /// The credential id, base64url.
    pub id: String,
    /// The authenticator's answer.
    pub response: AssertionResponse,
}

/// `AuthenticatorAssertionResponseJSON`, every field base64url.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssertionResponse {
    /// The collected client data (`webauthn.get`).
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    /// Authenticator data.
    pub authenticator_data: String,
    /// Signature over authenticator data ‖ SHA-256(clientDataJSON).
    pub signature: String,
    /// The user handle stored with a discoverable credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_handle: Option<String>,
}

/// `POST …/tap/signin`: a person signs in with a Temporary Access Pass.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TapSignInRequest {
    /// The application the person signs in to.
    pub client_id: String,
    /// UPN (or object id).
    pub username: String,
    /// The pass (a secret: never logged, see the `Debug` impl).
    pub temporary_access_pass: String,
    /// Requested scopes, space-separated (default `openid profile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl std::fmt::Debug for TapSignInRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapSignInRequest")
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("temporary_access_pass", &"[redacted]")
            .field("scope", &self.scope)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assertion_json_uses_the_webauthn_field_names() {
        let body = AssertionRequest {
            client_id: "c".into(),
            scope: None,
            credential: AssertionCredential {
                id: "aWQ".into(),
                response: AssertionResponse {
                    client_data_json: "Y2Q".into(),
                    authenticator_data: "YWQ".into(),
                    signature: "c2ln".into(),
                    user_handle: Some("dWg".into()),
                },
            },
        };
        let json = serde_json::to_value(&body).unwrap();
        let response = &json["credential"]["response"];
        assert_eq!(response["clientDataJSON"], "Y2Q");
        assert_eq!(response["authenticatorData"], "YWQ");
        assert_eq!(response["userHandle"], "dWg");
        assert_eq!(json["clientId"], "c");
    }

    #[test]
    fn a_tap_request_never_prints_its_pass() {
        let req = TapSignInRequest {
            client_id: "c".into(),
            username: "u".into(),
            temporary_access_pass: "Secret#Pass1".into(),
            scope: None,
        };
        assert!(!format!("{req:?}").contains("Secret#Pass1"));
    }
}

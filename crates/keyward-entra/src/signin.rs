//! Proof of sign-in: asks the tenant for passkey sign-in options, and hands it the key's
//! assertion, so Keyward knows a new passkey signs its person in before the key leaves the desk.
//!
//! Entra does not publish a sign-in endpoint that takes a bare WebAuthn assertion; `keyward sim`
//! offers one (shapes in `keyward_webauthn::signin`). A tenant without it answers the options
//! request with 404 (or 405, or something that is not the options): that is [`SignInOffer::NotOffered`],
//! which callers report and carry on from, never a failure. The tokens of a successful sign-in
//! are read for the person's identity and then dropped: they are never logged nor kept.

use keyward_webauthn::graph::{TokenErrorBody, TokenResponse};
use keyward_webauthn::signin::{
    ASSERTION_PATH, AssertionCredential, AssertionOptions, AssertionOptionsRequest, AssertionRequest,
    OPTIONS_PATH,
};
use serde::Deserialize;

use crate::graph::Connector;

/// Whether the tenant offers passkey sign-in to Keyward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInOffer {
    /// It does: the options to answer.
    Offered(AssertionOptions),
    /// It does not (real Entra); the reason, for the operator.
    NotOffered(String),
}

/// The person the tenant signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// Object id (`oid`).
    pub object_id: String,
    /// UPN (`preferred_username`).
    pub upn: String,
    /// How (`amr`), e.g. `fido`.
    pub method: String,
}

/// Why a proof of sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// No answer from the tenant.
    #[error("the tenant's sign-in endpoint did not answer ({0}); check the connector's authority URL")]
    Transport(String),
    /// The tenant refused the sign-in.
    #[error("the tenant refused the sign-in: {0}")]
    Refused(String),
    /// The tenant's answer could not be read.
    #[error("the tenant's sign-in answer could not be read ({0})")]
    Unexpected(String),
}

#[derive(Deserialize)]
struct IdClaims {
    oid: String,
    #[serde(default)]
    preferred_username: String,
    #[serde(default)]
    amr: Vec<String>,
}

impl Connector {
    fn sign_in_url(&self, path: &str) -> String {
        format!("{}/{}/{path}", self.config.authority_url.trim_end_matches('/'), self.config.tenant_id)
    }

    /// Asks the tenant for passkey sign-in options for `login_hint` (UPN or object id).
    pub async fn passkey_sign_in_options(&self, login_hint: &str) -> Result<SignInOffer, SignInError> {
        let body = AssertionOptionsRequest {
            client_id: self.config.client_id.clone(),
            login_hint: Some(login_hint.to_owned()),
        };
        let url = self.sign_in_url(OPTIONS_PATH);
        let response = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| SignInError::Transport(e.to_string()))?;
        let status = response.status();
        if matches!(status.as_u16(), 404 | 405 | 501) {
            return Ok(SignInOffer::NotOffered(format!(
                "the tenant has no passkey sign-in endpoint for Keyward (HTTP {} from {url}); Entra does not \
                 publish one",
                status.as_u16()
            )));
        }
        let text = response.text().await.map_err(|e| SignInError::Transport(e.to_string()))?;
        if !status.is_success() {
            // An AADSTS answer is the tenant refusing; anything else is a tenant without the endpoint.
            if serde_json::from_str::<TokenErrorBody>(&text).is_ok() {
                return Err(SignInError::Refused(describe_error(status.as_u16(), &text)));
            }
            return Ok(SignInOffer::NotOffered(format!(
                "the tenant has no passkey sign-in endpoint for Keyward (HTTP {} from {url})",
                status.as_u16()
            )));
        }
        match serde_json::from_str::<AssertionOptions>(&text) {
            Ok(options) => Ok(SignInOffer::Offered(options)),
            Err(_) => Ok(SignInOffer::NotOffered(format!(
                "the tenant's answer at {url} is not passkey sign-in options; it does not offer a proof of sign-in"
            ))),
        }
    }

    /// Hands the tenant the key's assertion; on success, who was signed in.
    pub async fn passkey_sign_in(&self, credential: AssertionCredential) -> Result<SignedIn, SignInError> {
        let body = AssertionRequest {
            client_id: self.config.client_id.clone(),
            scope: Some("openid profile".into()),
            credential,
        };
        let response = self
            .http
            .post(self.sign_in_url(ASSERTION_PATH))
            .json(&body)
            .send()
            .await
            .map_err(|e| SignInError::Transport(e.to_string()))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| SignInError::Transport(e.to_string()))?;
        if !status.is_success() {
            return Err(SignInError::Refused(describe_error(status.as_u16(), &text)));
        }
        let tokens: TokenResponse = serde_json::from_str(&text)
            .map_err(|_| SignInError::Unexpected("not a token response".into()))?;
        let id_token = tokens.id_token.ok_or_else(|| SignInError::Unexpected("no ID token".into()))?;
        let claims = id_claims(&id_token)?;
        Ok(SignedIn {
            object_id: claims.oid,
            upn: claims.preferred_username,
            method: claims.amr.first().cloned().unwrap_or_default(),
        })
    }
}

/// The ID token's claims. Its signature is not checked here: the token comes straight from the
/// tenant over the connector's TLS channel, and only names who signed in.
fn id_claims(jwt: &str) -> Result<IdClaims, SignInError> {
    let payload =
        jwt.split('.').nth(1).ok_or_else(|| SignInError::Unexpected("ID token is not a JWT".into()))?;
    keyward_webauthn::b64::decode_lenient(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| SignInError::Unexpected("ID token claims".into()))
}

/// The AADSTS description of an error answer, without trace and correlation ids.
fn describe_error(status: u16, text: &str) -> String {
    match serde_json::from_str::<TokenErrorBody>(text) {
        Ok(body) => body.error_description.lines().next().unwrap_or(&body.error).to_owned(),
        Err(_) => format!("HTTP {status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_descriptions_keep_the_aadsts_line_only() {
        let body = r#"{"error":"invalid_grant","error_description":"AADSTS50012: Authentication failed: x.\r\nTrace ID: t\r\nCorrelation ID: c","error_codes":[50012]}"#;
        assert_eq!(describe_error(400, body), "AADSTS50012: Authentication failed: x.");
        assert_eq!(describe_error(502, "<html>"), "HTTP 502");
    }
}

//! Registering a passkey (`POST …/fido2Methods`) without ever registering it twice or losing
//! track of it.
//!
//! A create is never retried blindly. A 429 is safe to repeat (not processed). After an
//! *ambiguous* failure — a timeout, a dropped connection, a 5xx — the POST may or may not have
//! been committed, so the connector lists the user's FIDO2 methods and looks for its own
//! registration (`OwnRegistration`: the credential id in any encoding Entra uses for method
//! ids, or the marked display name sent with it, so nothing rests on how Entra forms method
//! ids). Found: the registration happened, and that method is the result. Not found:
//! the POST is sent once more, and if that is ambiguous too the outcome is reported as
//! unknown for a later reconcile. A clear refusal (4xx) is reported as such; a 409 after an
//! ambiguous first attempt is resolved by the same lookup.

use keyward_webauthn::b64;
use keyward_webauthn::graph::{Fido2Method, Fido2RegistrationRequest};
use keyward_webauthn::registration::OwnRegistration;
use reqwest::Method;

use crate::error::GraphError;
use crate::graph::{Connector, Retry, parse};
use crate::ops::fido2_path;

/// How a successful registration came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationPath {
    /// The POST was answered 201.
    Created,
    /// The POST's answer was lost, but the method was found in the user's list.
    FoundAfterLostAnswer,
    /// The first POST was not committed; the single retry was answered 201 (or found).
    CreatedOnRetry,
}

/// A registered passkey and how we know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The method as Graph describes it (id, AAGUID, model, …).
    pub method: Fido2Method,
    /// How the outcome was established.
    pub path: RegistrationPath,
}

/// A registration that did not (knowably) succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    /// The credential id in the request is not base64.
    #[error("the credential id in the registration is not base64url: the client sent a malformed credential")]
    BadCredentialId,
    /// Graph refused the registration (e.g. policy, expired challenge, attestation).
    #[error("Entra refused the registration: {0}")]
    Refused(GraphError),
    /// The outcome is unknown even after checking: reconcile later before retrying.
    #[error(
        "the registration's outcome is unknown ({0}); the method list could not confirm it — run reconcile for this user before trying again"
    )]
    Unknown(GraphError),
}

impl Connector {
    /// Registers a passkey for `user`, resolving ambiguous failures by listing the user's
    /// methods and matching the credential id.
    pub async fn register_fido2(
        &self,
        user: &str,
        request: &Fido2RegistrationRequest,
    ) -> Result<Registered, RegistrationError> {
        let credential_id = b64::decode_lenient(&request.public_key_credential.id)
            .map_err(|_| RegistrationError::BadCredentialId)?;
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let own = OwnRegistration {
            credential_id,
            display_name: request.display_name.clone().unwrap_or_default(),
            aaguid: None,
            // Entra's clock and ours may differ a little; the name's marker does the rest.
            not_before: now as i64 - 600,
        };
        let body = serde_json::to_value(request).map_err(|_| RegistrationError::BadCredentialId)?;
        let path = fido2_path(user);
        let first = match self.post_once(&path, &body).await {
            Ok(method) => return Ok(Registered { method, path: RegistrationPath::Created }),
            Err(e) if e.is_ambiguous() => e,
            Err(e) => return Err(RegistrationError::Refused(e)),
        };
        tracing::warn!(user, "registration POST ambiguous ({first}); checking the user's methods");
        match self.find_credential(user, &own).await {
            Ok(Some(method)) => {
                return Ok(Registered { method, path: RegistrationPath::FoundAfterLostAnswer });
            }
            Ok(None) => {}
            Err(_) => return Err(RegistrationError::Unknown(first)),
        }
        match self.post_once(&path, &body).await {
            Ok(method) => Ok(Registered { method, path: RegistrationPath::CreatedOnRetry }),
            Err(second) if second.is_ambiguous() || second.status() == Some(409) => {
                match self.find_credential(user, &own).await {
                    Ok(Some(method)) => Ok(Registered { method, path: RegistrationPath::CreatedOnRetry }),
                    _ => Err(RegistrationError::Unknown(second)),
                }
            }
            Err(second) => Err(RegistrationError::Refused(second)),
        }
    }

    /// The user's method that is `own` registration (see [`OwnRegistration`]), if registered.
    pub async fn find_credential(
        &self,
        user: &str,
        own: &OwnRegistration,
    ) -> Result<Option<Fido2Method>, GraphError> {
        let methods = self.list_fido2_methods(user).await?;
        Ok(methods.into_iter().find(|m| own.matches(m)))
    }

    async fn post_once(&self, path: &str, body: &serde_json::Value) -> Result<Fido2Method, GraphError> {
        let response = self.request(Method::POST, path, Some(body), Retry::ThrottleOnly).await?;
        parse(&Method::POST, path, response)
    }
}

//! `/api/v1/issuances`: request, approve, creation options, complete, cancel, fail.

use keyward_webauthn::graph::CredentialCreationOptions;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::inventory::PasskeyView;

/// An issuance request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IssuanceView {
    /// Keyward's id.
    pub id: String,
    /// Who receives the passkey.
    pub person_id: String,
    /// Who asked for it.
    pub requester: String,
    /// `operator`, `self-service` or `bulk`.
    pub channel: String,
    /// Whether approval is needed before options are issued.
    pub approval_required: bool,
    /// Who approved.
    pub approved_by: Option<String>,
    /// The key, when known.
    pub security_key_id: Option<String>,
    /// The Entra account (object id) the passkey goes to, fixed when the issuance was created.
    #[serde(default)]
    pub entra_object_id: Option<String>,
    /// The person's UPN when the issuance was created.
    #[serde(default)]
    pub entra_upn: Option<String>,
    /// When the challenge expires.
    pub challenge_expires_at: Option<String>,
    /// `requested`, `approved`, `options-issued`, `registered`, `failed`, `cancelled`, `expired`.
    pub state: String,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// Created.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

/// A new issuance.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct CreateIssuance {
    /// Keyward person id or UPN.
    pub person: String,
    /// `operator` (default), `self-service` or `bulk`.
    pub channel: Option<String>,
    /// Serial of the key in hand, when known.
    pub serial: Option<String>,
}

/// Filter of the issuance list, newest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
pub struct IssuanceQuery {
    /// Only this person's (id or UPN).
    pub person: Option<String>,
    /// Only in this state.
    pub state: Option<String>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// Page size (1–1000, default 100).
    pub limit: Option<u32>,
}

/// What the client needs to make the credential.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct OptionsView {
    /// The issuance, now `options-issued`.
    pub issuance: IssuanceView,
    /// Entra's `webauthnCredentialCreationOptions`, unchanged.
    #[schema(value_type = Object)]
    pub creation_options: CredentialCreationOptions,
    /// Minimum PIN length the key must be set to.
    pub pin_min_length: u8,
    /// Whether the key must force a PIN change on first use.
    pub pin_force_change: bool,
    /// The person's UPN.
    pub upn: String,
}

/// The registration the client made.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct CompleteRequest {
    /// clientDataJSON, base64url.
    pub client_data_json: String,
    /// attestationObject, base64url.
    pub attestation_object: String,
    /// The key's serial, when known.
    pub serial: Option<String>,
    /// The key's firmware, when known.
    pub firmware: Option<String>,
    /// Display name in Entra (cut to 30 characters keeping the serial).
    pub display_name: Option<String>,
}

/// A finished issuance.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct CompletedView {
    /// The issuance, `registered`.
    pub issuance: IssuanceView,
    /// The passkey, `registered`.
    pub passkey: PasskeyView,
}

/// Why the client gave up.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct FailRequest {
    /// The reason, for the operator and the audit trail (never a PIN).
    pub reason: String,
}

/// How a PIN was handed over (never the PIN itself).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct PinHandover {
    /// `terminal` (shown once), `letter` (encrypted PIN letter) or `user-chosen`.
    pub method: String,
    /// For letters: the file and the age recipient it was encrypted to.
    pub detail: Option<String>,
}

/// `POST /api/v1/issuances/{id}/sign-in/options`: whether the tenant offers a proof of sign-in,
/// and the challenge to answer when it does.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignInChallengeView {
    /// The tenant offers passkey sign-in to Keyward (`keyward sim` does; Entra does not publish it).
    pub offered: bool,
    /// The challenge (base64url) to sign for `login.microsoft.com`, when offered.
    pub challenge: Option<String>,
    /// Why no proof is possible, when not offered.
    pub note: Option<String>,
}

/// `POST /api/v1/issuances/{id}/sign-in`: the key's answer to the challenge (WebAuthn
/// `AuthenticationResponseJSON` fields, each base64url).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignInProofRequest {
    /// The credential that answered.
    pub credential_id: String,
    /// The clientDataJSON (`webauthn.get`).
    pub client_data_json: String,
    /// Authenticator data.
    pub authenticator_data: String,
    /// Signature.
    pub signature: String,
    /// The user handle stored with the credential.
    pub user_handle: Option<String>,
}

/// The tenant signed the person in with the passkey.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignInProofView {
    /// The person the tenant signed in (UPN, from the ID token).
    pub upn: String,
    /// Their Entra object id (from the ID token).
    pub object_id: String,
    /// How they signed in, as the tenant reports it (`fido`).
    pub method: String,
}

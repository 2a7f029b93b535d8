//! Tokens issued to a signed-in person: the v2.0 ID token (portal sign-in, passkey and TAP
//! sign-in) and the delegated access token of a passkey or TAP sign-in.
//!
//! The access token says how the person signed in (`amr`) and what it is for: a token for
//! [`REGISTRATION_SCOPE`] has the security-info audience and is the only kind the emulator's
//! security-info registration accepts; any other scope gets a Graph token without roles
//! (delegated Graph permissions are not emulated, so Graph answers it with 403).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ID_TOKEN_SECONDS, LoginError};
use crate::Sim;
use crate::auth::{ACCESS_TOKEN_SECONDS, GRAPH_AUDIENCE};
use crate::seed::SeedUser;

/// The resource whose token registers security info (My Sign-Ins; the audience Entra uses
/// for it is unknown).
pub const REGISTRATION_AUDIENCE: &str = "https://mysignins.microsoft.com";
/// The scope a client asks for to register security info.
pub const REGISTRATION_SCOPE: &str = "https://mysignins.microsoft.com/.default";

/// Claims of an emulator ID token (v2.0).
#[derive(Debug, Serialize)]
struct IdClaims {
    aud: String,
    iss: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
    oid: String,
    tid: String,
    sub: String,
    preferred_username: String,
    name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    amr: Vec<String>,
    ver: String,
    uti: String,
}

/// A v2.0 ID token for `user` issued to `client_id`, signed with the emulator's key.
pub(crate) fn id_token(
    sim: &Sim,
    client_id: &str,
    user: &SeedUser,
    nonce: Option<String>,
    amr: &[&str],
    now: i64,
) -> Result<String, LoginError> {
    let tid = sim.read(|t| t.tenant_id.clone());
    let sub_input = format!("{}:{}", client_id.to_ascii_lowercase(), user.id.to_ascii_lowercase());
    let claims = IdClaims {
        aud: client_id.to_owned(),
        iss: format!("{}/{tid}/v2.0", sim.base_url()),
        iat: now,
        nbf: now,
        exp: now + ID_TOKEN_SECONDS,
        nonce,
        oid: user.id.clone(),
        tid,
        sub: keyward_webauthn::b64::encode(&Sha256::digest(sub_input.as_bytes())),
        preferred_username: user.user_principal_name.clone(),
        name: user.display_name.clone(),
        amr: amr.iter().map(|s| (*s).to_owned()).collect(),
        ver: "2.0".into(),
        uti: uuid::Uuid::new_v4().simple().to_string(),
    };
    sign(sim, &claims)
}

/// Claims of a delegated access token from a passkey or TAP sign-in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserAccessClaims {
    /// Graph, or [`REGISTRATION_AUDIENCE`].
    pub aud: String,
    /// `https://sts.windows.net/{tid}/`.
    pub iss: String,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expiry.
    pub exp: i64,
    /// The client the person signed in to.
    pub appid: String,
    /// Tenant id.
    pub tid: String,
    /// The person's object id.
    pub oid: String,
    /// The person's UPN.
    pub upn: String,
    /// Granted scopes, space-separated.
    pub scp: String,
    /// How the person signed in: `fido` (passkey) or `tap`.
    pub amr: Vec<String>,
    /// `user`.
    pub idtyp: String,
    /// Unique token id.
    pub uti: String,
    /// Token version.
    pub ver: String,
}

/// A delegated access token for `user` signed in to `client_id` with `amr`, for `scope`.
pub(crate) fn access_token(
    sim: &Sim,
    client_id: &str,
    user: &SeedUser,
    scope: &str,
    amr: &str,
    now: i64,
) -> Result<String, LoginError> {
    let tid = sim.read(|t| t.tenant_id.clone());
    let registration = is_registration_scope(scope);
    let claims = UserAccessClaims {
        aud: if registration { REGISTRATION_AUDIENCE } else { GRAPH_AUDIENCE }.into(),
        iss: format!("https://sts.windows.net/{tid}/"),
        iat: now,
        nbf: now,
        exp: now + ACCESS_TOKEN_SECONDS,
        appid: client_id.to_owned(),
        tid,
        oid: user.id.clone(),
        upn: user.user_principal_name.clone(),
        scp: if registration { "SecurityInfo.Register".into() } else { scope.to_owned() },
        amr: vec![amr.to_owned()],
        idtyp: "user".into(),
        uti: uuid::Uuid::new_v4().simple().to_string(),
        ver: "1.0".into(),
    };
    sign(sim, &claims)
}

/// Whether a requested scope asks for security-info registration.
pub(crate) fn is_registration_scope(scope: &str) -> bool {
    scope.split_whitespace().any(|s| s.eq_ignore_ascii_case(REGISTRATION_SCOPE))
}

/// Reads back a security-info token: signature, issuer, expiry and the registration audience.
pub fn check_registration_token(sim: &Sim, token: &str) -> Result<UserAccessClaims, String> {
    let tid = sim.read(|t| t.tenant_id.clone());
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[REGISTRATION_AUDIENCE]);
    validation.set_issuer(&[format!("https://sts.windows.net/{tid}/")]);
    validation.leeway = 0;
    jsonwebtoken::decode::<UserAccessClaims>(token, &sim.keys().decoding, &validation)
        .map(|d| d.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidAudience => format!(
                "the token is not for security-info registration: sign in with the scope '{REGISTRATION_SCOPE}'"
            ),
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => "the token is expired: sign in again".into(),
            _ => "the token is not valid (signature, issuer or format)".into(),
        })
}

fn sign<T: Serialize>(sim: &Sim, claims: &T) -> Result<String, LoginError> {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(sim.keys().kid.clone());
    jsonwebtoken::encode(&header, claims, &sim.keys().encoding)
        .map_err(|e| LoginError::bad_request("server_error", 90015, format!("Signing a token failed: {e}")))
}

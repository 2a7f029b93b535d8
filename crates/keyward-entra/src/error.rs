//! Errors of the connector, each saying what the operator should do next.
//!
//! Entra's own texts (AADSTS descriptions, Graph messages) are precise but assume the reader
//! knows the portal; the Display text here names the setting to fix. Every Graph error keeps
//! the service's `request-id` (and our `client-request-id`) because that is what Microsoft
//! support asks for. No variant ever holds a secret, token or assertion.

/// A setting that cannot work, found without the network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The client id is not a GUID.
    #[error(
        "client id `{0}` is not a GUID: copy the Application (client) ID from the app registration's Overview page"
    )]
    ClientId(String),
    /// The tenant id is empty or malformed.
    #[error(
        "tenant id `{0}` is not usable: give the Directory (tenant) ID GUID or the tenant's initial domain"
    )]
    TenantId(String),
    /// A base URL does not parse.
    #[error("{0} `{1}` is not an http(s) URL, e.g. https://login.microsoftonline.com")]
    Url(&'static str, String),
    /// A custom timeout with v1.0.
    #[error(
        "a challenge timeout of {0} minutes needs Graph API version `beta`: v1.0 fixes it at 5 minutes; switch apiVersion to beta or remove challengeTimeoutMinutes"
    )]
    TimeoutNeedsBeta(u32),
    /// A timeout outside 5–43 200.
    #[error("challenge timeout {0} minutes is out of range: choose between 5 and 43200 (30 days)")]
    TimeoutRange(u32),
    /// Zero attempts.
    #[error("retry.maxAttempts must be at least 1")]
    Attempts,
}

/// Obtaining an access token failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// AADSTS7000215.
    #[error(
        "Entra rejected the client secret (AADSTS7000215): paste the secret's Value (not its Secret ID) from App registrations > Certificates & secrets"
    )]
    WrongSecret,
    /// AADSTS7000222.
    #[error(
        "the client secret has expired (AADSTS7000222): create a new secret in the app registration and update the connector"
    )]
    SecretExpired,
    /// AADSTS700016.
    #[error(
        "application {client_id} was not found in tenant {tenant} (AADSTS700016): check the client id, and that the app is registered (and consented) in this tenant"
    )]
    UnknownApp {
        /// The configured client id.
        client_id: String,
        /// The configured tenant.
        tenant: String,
    },
    /// AADSTS90002.
    #[error(
        "tenant `{0}` does not exist at this authority (AADSTS90002): check the tenant id and the authority URL (national cloud?)"
    )]
    UnknownTenant(String),
    /// AADSTS700027 naming a thumbprint Entra does not know.
    #[error(
        "Entra does not know the certificate (AADSTS700027): upload it to the app registration (Certificates & secrets > Certificates); its SHA-1 thumbprint is {sha1_hex}"
    )]
    CertificateNotRegistered {
        /// Uppercase hex SHA-1 of the certificate, as the portal shows it.
        sha1_hex: String,
    },
    /// The local certificate is expired or not yet valid.
    #[error(
        "the connector certificate is not valid now ({0}): renew it, upload the new one to the app registration and update the connector"
    )]
    CertificateNotValidNow(String),
    /// The certificate or key in the settings cannot be used.
    #[error("the connector certificate or private key is unusable: {0}")]
    BadCertificate(String),
    /// The assertion was refused for another reason (time range, audience, …).
    #[error("Entra refused the certificate assertion (AADSTS{code}): {hint}")]
    AssertionRejected {
        /// AADSTS code.
        code: u64,
        /// What to check.
        hint: String,
    },
    /// AADSTS7000112.
    #[error(
        "the application is disabled in the tenant (AADSTS7000112): enable it under Enterprise applications > Properties"
    )]
    AppDisabled,
    /// Any other AADSTS error.
    #[error("Entra refused the token request ({error}, AADSTS{code}): {description}")]
    Refused {
        /// OAuth error.
        error: String,
        /// AADSTS code (0 if none).
        code: u64,
        /// The first line of Entra's description.
        description: String,
    },
    /// The token endpoint could not be reached or answered nonsense.
    #[error("cannot reach the token endpoint {endpoint}: {detail} (check authorityUrl and the network)")]
    Unreachable {
        /// The endpoint called.
        endpoint: String,
        /// What went wrong.
        detail: String,
    },
}

/// A Graph call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// No token.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Graph answered with an error status.
    #[error(transparent)]
    Service(Box<ServiceFailure>),
    /// The exchange failed without an HTTP answer (timeout, reset).
    #[error("{method} {path}: no answer from Graph ({detail}); client-request-id {client_request_id}")]
    Transport {
        /// HTTP method.
        method: String,
        /// Path called.
        path: String,
        /// What happened.
        detail: String,
        /// Whether it was a timeout.
        timeout: bool,
        /// The id we sent.
        client_request_id: String,
    },
    /// A 2xx answer whose body did not have the expected shape.
    #[error("{method} {path}: unexpected answer from Graph ({detail}); request-id {request_id}")]
    Unexpected {
        /// HTTP method.
        method: String,
        /// Path called.
        path: String,
        /// What was wrong.
        detail: String,
        /// The service's `request-id`.
        request_id: String,
    },
    /// A paging link points outside the configured Graph (the token is not sent there).
    #[error("Graph returned a next page link outside {expected}: `{link}`; refusing to send the token there")]
    ForeignLink {
        /// The configured Graph root.
        expected: String,
        /// The link.
        link: String,
    },
}

/// An error answer from Graph, with its correlation ids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{method} {path}: Graph answered {status} {code}: {message}{hint} (request-id {request_id}, client-request-id {client_request_id})"
)]
pub struct ServiceFailure {
    /// HTTP method.
    pub method: String,
    /// Path called (no query secrets exist in Graph URLs).
    pub path: String,
    /// HTTP status.
    pub status: u16,
    /// Graph error code.
    pub code: String,
    /// Graph error message.
    pub message: String,
    /// Our advice, may be empty.
    pub hint: String,
    /// The service's `request-id` header (or from the body), `-` if none.
    pub request_id: String,
    /// The id we sent.
    pub client_request_id: String,
}

impl GraphError {
    /// The HTTP status, when Graph answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            GraphError::Service(f) => Some(f.status),
            _ => None,
        }
    }

    /// The Graph error code, when Graph answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            GraphError::Service(f) => Some(&f.code),
            _ => None,
        }
    }

    /// The service's `request-id`, when Graph answered.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            GraphError::Service(f) => Some(&f.request_id),
            GraphError::Unexpected { request_id, .. } => Some(request_id),
            _ => None,
        }
    }

    /// Whether the outcome of a write is unknown: no answer, or a 5xx.
    pub fn is_ambiguous(&self) -> bool {
        match self {
            GraphError::Transport { .. } => true,
            GraphError::Service(f) => f.status >= 500,
            _ => false,
        }
    }
}

/// Advice for a Graph status and code, appended to the message.
pub(crate) fn advice(status: u16, code: &str, message: &str) -> String {
    let lower = message.to_ascii_lowercase();
    let about_policy = !lower.contains("permission") && lower.contains("authentication method policy");
    match (status, code) {
        (403, _) if about_policy => " — the tenant's FIDO2 method policy refuses this user or request; see `keyward policy show` and run `keyward doctor --user UPN` for the fix".into(),
        (401, _) => " — the access token was refused; check the tenant id and that the authority matches this Graph".into(),
        (403, _) => " — grant the app the missing application permission and admin consent (run `keyward connector test`)".into(),
        (429, _) => " — throttled longer than the retry budget; lower concurrency or raise retry.maxAttempts".into(),
        (404, _) => String::new(),
        (s, _) if s >= 500 => " — transient service failure; retry later".into(),
        _ => String::new(),
    }
}

/// Validating a certificate could not even start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// No certificate PEM block.
    #[error(
        "no PEM CERTIFICATE block found: paste the certificate as -----BEGIN CERTIFICATE----- … (PEM, not DER or PFX)"
    )]
    NoCertificate,
    /// The certificate does not parse.
    #[error("the certificate does not parse as X.509: {0}")]
    Certificate(String),
    /// The private key does not parse.
    #[error(
        "the private key does not parse (expected an unencrypted RSA key, PEM PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`)"
    )]
    PrivateKey,
}

#[cfg(test)]
mod advice_tests {
    use super::advice;

    #[test]
    fn a_403_is_explained_by_what_graph_said() {
        let cases = [
            (
                "Insufficient privileges. The application needs one of these permissions: Policy.Read.All.",
                "permission",
            ),
            ("The user is in excludeTargets of the FIDO2 authentication method policy.", "keyward doctor"),
            (
                "The user is not in includeTargets of the FIDO2 authentication method policy.",
                "keyward policy show",
            ),
            ("Forbidden", "permission"),
        ];
        for (message, needle) in cases {
            let hint = advice(403, "accessDenied", message);
            assert!(hint.contains(needle), "{message}: {hint}");
        }
    }
}

//! App-only access tokens from the Entra token endpoint (client-credentials grant), with a
//! client secret or a certificate assertion (RFC 7523).
//!
//! The assertion is a JWT signed with the certificate's RSA key: PS256 with an `x5t#S256`
//! header by default, RS256 with `x5t` as a compatibility mode; `aud` is the token endpoint,
//! `iss` = `sub` = client id, a random `jti`, `nbf`/`iat` now and `exp` ten minutes on.
//! `jsonwebtoken` (rust_crypto backend) signs it; we hand it a PKCS#1 DER we derived with
//! `rsa`, so PKCS#8 and PKCS#1 PEM keys both work.
//!
//! Secrets are held as `SecretString` and raw answers as `Zeroizing<String>`, wiped on drop.
//! One copy is not ours to wipe: `jsonwebtoken::EncodingKey` keeps the PKCS#1 DER in a plain
//! `Vec` while an assertion is signed (the crate offers no zeroizing key type); it lives only
//! for the duration of one signature.
//!
//! Tokens are cached until five minutes before expiry (half the lifetime for very short
//! tokens). The cache sits behind one async mutex held across the refresh, so concurrent
//! callers wait for the one refresh in flight instead of each asking Entra. AADSTS errors are
//! mapped to [`TokenError`] variants that say what to fix.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::certificate::{self, ParsedCertificate};
use crate::config::{AssertionMode, ConnectorConfig, Credential};
use crate::error::TokenError;
use crate::redact;
use crate::retry;

/// How long before expiry a cached token is replaced.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// Lifetime of a client assertion.
const ASSERTION_SECONDS: i64 = 600;

/// An access token; its value is only reachable through [`AccessToken::secret`].
#[derive(Clone)]
pub struct AccessToken {
    value: SecretString,
    /// When the token expires (monotonic clock).
    pub expires_at: Instant,
}

impl AccessToken {
    /// The bearer value, for the `Authorization` header.
    pub fn secret(&self) -> &str {
        self.value.expose_secret()
    }

    /// A token with this value, valid for an hour (for the crate's tests).
    #[cfg(test)]
    pub(crate) fn for_tests(value: String) -> Self {
        Self { value: SecretString::from(value), expires_at: Instant::now() + Duration::from_secs(3600) }
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AccessToken([REDACTED], expires in {:?})",
            self.expires_at.saturating_duration_since(Instant::now())
        )
    }
}

#[derive(Clone)]
struct Cached {
    token: AccessToken,
    refresh_at: Instant,
}

/// Fetches and caches tokens for one connector configuration.
#[derive(Clone)]
pub struct TokenClient {
    http: reqwest::Client,
    config: Arc<ConnectorConfig>,
    cache: Arc<tokio::sync::Mutex<Option<Cached>>>,
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: i64,
    iat: i64,
    exp: i64,
}

impl TokenClient {
    /// A token client sharing `http` (timeouts and TLS come from it).
    pub fn new(http: reqwest::Client, config: Arc<ConnectorConfig>) -> Self {
        Self { http, config, cache: Arc::new(tokio::sync::Mutex::new(None)) }
    }

    /// A valid token: the cached one, or a fresh one (one refresh for all concurrent callers).
    pub async fn token(&self) -> Result<AccessToken, TokenError> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref()
            && Instant::now() < cached.refresh_at
        {
            return Ok(cached.token.clone());
        }
        let (token, lifetime) = self.fetch().await?;
        let refresh_at = token.expires_at - refresh_margin(lifetime);
        *cache = Some(Cached { token: token.clone(), refresh_at });
        Ok(token)
    }

    /// Drops the cached token (after Graph refused it with 401).
    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    async fn fetch(&self) -> Result<(AccessToken, Duration), TokenError> {
        let config = &self.config;
        let endpoint = config.token_endpoint();
        let scope = config.graph_scope();
        let (secret_field, secret_value): (&str, SecretString) = match &config.credential {
            Credential::Secret { client_secret } => ("client_secret", client_secret.clone()),
            Credential::Certificate { certificate_pem, private_key_pem, mode } => {
                ("client_assertion", self.assertion(&endpoint, certificate_pem, private_key_pem, *mode)?)
            }
        };
        let mut fields: Vec<(&str, &str)> = vec![
            ("client_id", &config.client_id),
            ("scope", &scope),
            ("grant_type", "client_credentials"),
            (secret_field, secret_value.expose_secret()),
        ];
        if secret_field == "client_assertion" {
            fields.push(("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"));
        }
        let policy = &config.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let client_request_id = uuid::Uuid::new_v4().to_string();
            if config.http_debug {
                tracing::debug!(
                    target: "keyward_entra::http",
                    %client_request_id, attempt, "POST {endpoint} form: {}", redact::form(&fields)
                );
            }
            let sent = self
                .http
                .post(&endpoint)
                .header("client-request-id", &client_request_id)
                .timeout(policy.request_timeout)
                .form(&fields)
                .send()
                .await;
            let response = match sent {
                Ok(r) => r,
                Err(e) if attempt < policy.max_attempts => {
                    tracing::warn!(%client_request_id, attempt, "token endpoint unreachable ({e}); retrying");
                    tokio::time::sleep(retry::backoff(policy, attempt)).await;
                    continue;
                }
                Err(e) => return Err(unreachable(&endpoint, e.to_string())),
            };
            let status = response.status().as_u16();
            let wait = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(retry::parse_retry_after);
            // The answer holds the access token in clear: wiped when dropped.
            let text = zeroize::Zeroizing::new(
                response.text().await.map_err(|e| unreachable(&endpoint, e.to_string()))?,
            );
            if config.http_debug {
                tracing::debug!(target: "keyward_entra::http", %client_request_id, status, "token response: {}", redact::body(&text));
            }
            if (status == 429 || status >= 500) && attempt < policy.max_attempts {
                let wait =
                    wait.unwrap_or_else(|| retry::backoff(policy, attempt)).min(policy.max_retry_after);
                tokio::time::sleep(wait).await;
                continue;
            }
            if (200..300).contains(&status) {
                let parsed: keyward_webauthn::graph::TokenResponse = serde_json::from_str(&text)
                    .map_err(|e| unreachable(&endpoint, format!("token response does not parse: {e}")))?;
                let lifetime = Duration::from_secs(parsed.expires_in);
                let token = AccessToken {
                    value: SecretString::from(parsed.access_token),
                    expires_at: Instant::now() + lifetime,
                };
                return Ok((token, lifetime));
            }
            return Err(self.map_error(status, &text, &endpoint));
        }
    }

    fn assertion(
        &self,
        endpoint: &str,
        certificate_pem: &str,
        private_key_pem: &SecretString,
        mode: AssertionMode,
    ) -> Result<SecretString, TokenError> {
        let cert = certificate::parse_certificate(certificate_pem)
            .map_err(|e| TokenError::BadCertificate(e.to_string()))?;
        let now = certificate::now();
        check_validity(&cert, now)?;
        let key = certificate::parse_private_key(private_key_pem)
            .map_err(|e| TokenError::BadCertificate(e.to_string()))?;
        let der = key.to_pkcs1_der().map_err(|e| TokenError::BadCertificate(e.to_string()))?;
        let encoding = EncodingKey::from_rsa_der(der.as_bytes());
        let mut header = match mode {
            AssertionMode::Ps256 => {
                let mut h = Header::new(Algorithm::PS256);
                h.x5t_s256 = Some(keyward_webauthn::b64::encode(&cert.sha256()));
                h
            }
            AssertionMode::Rs256 => {
                let mut h = Header::new(Algorithm::RS256);
                h.x5t = Some(keyward_webauthn::b64::encode(&cert.sha1()));
                h
            }
        };
        header.typ = Some("JWT".into());
        let claims = AssertionClaims {
            aud: endpoint,
            iss: &self.config.client_id,
            sub: &self.config.client_id,
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: now,
            iat: now,
            exp: now + ASSERTION_SECONDS,
        };
        jsonwebtoken::encode(&header, &claims, &encoding)
            .map(SecretString::from)
            .map_err(|e| TokenError::BadCertificate(format!("cannot sign the assertion: {e}")))
    }

    fn map_error(&self, status: u16, text: &str, endpoint: &str) -> TokenError {
        let Ok(body) = serde_json::from_str::<keyward_webauthn::graph::TokenErrorBody>(text) else {
            return unreachable(endpoint, format!("HTTP {status} without an Entra error body"));
        };
        let code = body.error_codes.first().copied().unwrap_or(0);
        let first_line = body.error_description.lines().next().unwrap_or("").to_owned();
        let config = &self.config;
        match code {
            7000215 => TokenError::WrongSecret,
            7000222 => TokenError::SecretExpired,
            700016 => TokenError::UnknownApp {
                client_id: config.client_id.clone(),
                tenant: config.tenant_id.clone(),
            },
            90002 => TokenError::UnknownTenant(config.tenant_id.clone()),
            7000112 => TokenError::AppDisabled,
            700027 if first_line.contains("not registered") || first_line.contains("thumbprint") => {
                let sha1_hex = match &config.credential {
                    Credential::Certificate { certificate_pem, .. } => {
                        certificate::parse_certificate(certificate_pem)
                            .map(|c| hex::encode_upper(c.sha1()))
                            .unwrap_or_default()
                    }
                    Credential::Secret { .. } => String::new(),
                };
                TokenError::CertificateNotRegistered { sha1_hex }
            }
            700024 => TokenError::AssertionRejected {
                code,
                hint: "the assertion's time range was refused: check this machine's clock (NTP)".into(),
            },
            700023 => TokenError::AssertionRejected {
                code,
                hint: "the assertion audience does not match: check authorityUrl and tenantId".into(),
            },
            700027 | 50013 | 50027 | 700021 => TokenError::AssertionRejected {
                code,
                hint: format!(
                    "{first_line} — check that the certificate uploaded to the app is this one and the key matches (run `keyward connector validate-cert`)"
                ),
            },
            _ => TokenError::Refused { error: body.error, code, description: first_line },
        }
    }
}

fn check_validity(cert: &ParsedCertificate, now: i64) -> Result<(), TokenError> {
    if now > cert.not_after {
        return Err(TokenError::CertificateNotValidNow(format!(
            "expired {}",
            certificate::rfc3339(cert.not_after)
        )));
    }
    if now < cert.not_before {
        return Err(TokenError::CertificateNotValidNow(format!(
            "valid only from {}",
            certificate::rfc3339(cert.not_before)
        )));
    }
    Ok(())
}

/// How long before expiry a token of `lifetime` is replaced: five minutes, or half the
/// lifetime for tokens shorter than ten minutes.
fn refresh_margin(lifetime: Duration) -> Duration {
    REFRESH_MARGIN.min(lifetime / 2)
}

fn unreachable(endpoint: &str, detail: String) -> TokenError {
    TokenError::Unreachable { endpoint: endpoint.to_owned(), detail }
}

/// The `roles` claim of an access token, read without verifying the signature.
///
/// Only for tokens this connector just received from its authority over TLS; never for a
/// token presented by someone else.
pub fn granted_roles(token: &AccessToken) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Roles {
        #[serde(default)]
        roles: Vec<String>,
    }
    jsonwebtoken::dangerous::insecure_decode_claims::<Roles>(token.secret())
        .map(|claims| claims.roles)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_replaced_five_minutes_early_or_at_half_life() {
        let cases = [(3599, 300), (600, 300), (300, 150), (60, 30), (0, 0)];
        for (lifetime, margin) in cases {
            assert_eq!(
                refresh_margin(Duration::from_secs(lifetime)),
                Duration::from_secs(margin),
                "{lifetime}"
            );
        }
    }
}

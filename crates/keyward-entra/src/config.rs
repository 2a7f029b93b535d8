//! Connector settings, with the fields the Veridium Entra connector has (so an operator who
//! knows that product finds the same knobs): enabled, HTTP debug, client and tenant id, a
//! client secret or a client certificate with its private key, the creationOptions challenge
//! timeout, the Graph API version and the authority / Graph base URLs (national clouds, or
//! `keyward sim`).
//!
//! Secrets are `secrecy::SecretString`: they never appear in `Debug` output, and
//! serialising a configuration (the "show" view, or a settings export) leaves them out —
//! [`ConnectorConfig::show`] says only whether one is set. The store keeps them encrypted
//! on its own; it reads them with `expose_secret` from the credential.

use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// The public-cloud login authority.
pub const PUBLIC_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The public-cloud Graph host.
pub const PUBLIC_GRAPH: &str = "https://graph.microsoft.com";
/// The shortest and longest challenge timeout beta's creationOptions accepts (minutes).
pub const CHALLENGE_TIMEOUT_RANGE: std::ops::RangeInclusive<u32> = 5..=43_200;

/// Graph API version the typed operations call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiVersion {
    /// `v1.0`, the GA API (creationOptions challenge fixed at 5 minutes).
    #[default]
    #[serde(rename = "v1.0")]
    V1,
    /// `beta`, needed for a custom challenge timeout (up to 30 days).
    #[serde(rename = "beta")]
    Beta,
}

impl ApiVersion {
    /// The URL path segment (`v1.0` or `beta`).
    pub fn segment(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1.0",
            ApiVersion::Beta => "beta",
        }
    }
}

/// How a certificate client assertion is signed and names its certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AssertionMode {
    /// PS256 with an `x5t#S256` header (what Entra recommends).
    #[default]
    Ps256,
    /// RS256 with an `x5t` (SHA-1) header, for tenants or proxies that need the old form.
    Rs256,
}

/// The app's credential: a client secret, or a certificate with its private key (PEM).
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Credential {
    /// A client secret (the secret's *value* from the Entra portal).
    #[serde(rename_all = "camelCase")]
    Secret {
        /// The secret value; never serialised.
        #[serde(skip_serializing)]
        client_secret: SecretString,
    },
    /// A certificate uploaded to the app registration, and its RSA private key.
    #[serde(rename_all = "camelCase")]
    Certificate {
        /// The certificate, PEM (public).
        certificate_pem: String,
        /// The private key, PEM (PKCS#8 or PKCS#1); never serialised.
        #[serde(skip_serializing)]
        private_key_pem: SecretString,
        /// Signature mode of the assertion.
        #[serde(default)]
        mode: AssertionMode,
    },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Secret { .. } => f.write_str("Credential::Secret([REDACTED])"),
            Credential::Certificate { mode, .. } => {
                write!(f, "Credential::Certificate {{ mode: {mode:?}, private_key: [REDACTED] }}")
            }
        }
    }
}

/// Retry behaviour of the Graph client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// First backoff when the service gives no `Retry-After`.
    #[serde(with = "millis")]
    pub base_delay: Duration,
    /// Longest backoff without `Retry-After`.
    #[serde(with = "millis")]
    pub max_delay: Duration,
    /// Longest `Retry-After` honoured; a longer one ends the call with the error.
    #[serde(with = "millis")]
    pub max_retry_after: Duration,
    /// Timeout of one HTTP exchange.
    #[serde(with = "millis")]
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
            request_timeout: Duration::from_secs(30),
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// Everything the connector needs to reach one Entra tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorConfig {
    /// Whether Keyward talks to Entra at all.
    #[serde(default)]
    pub enabled: bool,
    /// Log every HTTP exchange (redacted) at DEBUG level.
    #[serde(default)]
    pub http_debug: bool,
    /// The application (client) id of the app registration.
    pub client_id: String,
    /// The directory (tenant) id or initial domain.
    pub tenant_id: String,
    /// The app's credential.
    pub credential: Credential,
    /// creationOptions challenge timeout in minutes (beta only; 5–43 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge_timeout_minutes: Option<u32>,
    /// Graph API version.
    #[serde(default)]
    pub api_version: ApiVersion,
    /// Login authority, e.g. `https://login.microsoftonline.us` or the sim's base URL.
    #[serde(default = "public_authority")]
    pub authority_url: String,
    /// Graph base URL without the version, e.g. `https://graph.microsoft.us`.
    #[serde(default = "public_graph")]
    pub graph_url: String,
    /// Retry behaviour.
    #[serde(default)]
    pub retry: RetryPolicy,
}

fn public_authority() -> String {
    PUBLIC_AUTHORITY.into()
}

fn public_graph() -> String {
    PUBLIC_GRAPH.into()
}

/// The configuration as shown to an operator: no secret, only whether one is set.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorView {
    /// See [`ConnectorConfig::enabled`].
    pub enabled: bool,
    /// See [`ConnectorConfig::http_debug`].
    pub http_debug: bool,
    /// See [`ConnectorConfig::client_id`].
    pub client_id: String,
    /// See [`ConnectorConfig::tenant_id`].
    pub tenant_id: String,
    /// `secret` or `certificate`.
    pub credential_kind: &'static str,
    /// Whether a secret or private key is stored.
    pub secret_set: bool,
    /// The certificate, PEM, when the credential is a certificate.
    pub certificate_pem: Option<String>,
    /// Assertion mode, when the credential is a certificate.
    pub assertion_mode: Option<AssertionMode>,
    /// See [`ConnectorConfig::challenge_timeout_minutes`].
    pub challenge_timeout_minutes: Option<u32>,
    /// See [`ConnectorConfig::api_version`].
    pub api_version: ApiVersion,
    /// See [`ConnectorConfig::authority_url`].
    pub authority_url: String,
    /// See [`ConnectorConfig::graph_url`].
    pub graph_url: String,
}

impl ConnectorConfig {
    /// A public-cloud configuration with a client secret and default settings.
    pub fn with_secret(tenant_id: &str, client_id: &str, secret: SecretString) -> Self {
        Self::new(tenant_id, client_id, Credential::Secret { client_secret: secret })
    }

    /// A public-cloud configuration with the given credential and default settings.
    pub fn new(tenant_id: &str, client_id: &str, credential: Credential) -> Self {
        Self {
            enabled: true,
            http_debug: false,
            client_id: client_id.into(),
            tenant_id: tenant_id.into(),
            credential,
            challenge_timeout_minutes: None,
            api_version: ApiVersion::V1,
            authority_url: PUBLIC_AUTHORITY.into(),
            graph_url: PUBLIC_GRAPH.into(),
            retry: RetryPolicy::default(),
        }
    }

    /// Points both authority and Graph at one base URL (what `keyward sim` serves).
    pub fn pointed_at(mut self, base_url: &str) -> Self {
        self.authority_url = base_url.trim_end_matches('/').into();
        self.graph_url = base_url.trim_end_matches('/').into();
        self
    }

    /// Checks the settings that can be checked without the network.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if uuid::Uuid::parse_str(&self.client_id).is_err() {
            return Err(ConfigError::ClientId(self.client_id.clone()));
        }
        if self.tenant_id.trim().is_empty() || self.tenant_id.contains('/') {
            return Err(ConfigError::TenantId(self.tenant_id.clone()));
        }
        for (name, value) in [("authorityUrl", &self.authority_url), ("graphUrl", &self.graph_url)] {
            let parsed = url::Url::parse(value).map_err(|_| ConfigError::Url(name, value.clone()))?;
            if !matches!(parsed.scheme(), "https" | "http") {
                return Err(ConfigError::Url(name, value.clone()));
            }
        }
        if let Some(minutes) = self.challenge_timeout_minutes {
            if self.api_version == ApiVersion::V1 && minutes != 5 {
                return Err(ConfigError::TimeoutNeedsBeta(minutes));
            }
            if !CHALLENGE_TIMEOUT_RANGE.contains(&minutes) {
                return Err(ConfigError::TimeoutRange(minutes));
            }
        }
        if self.retry.max_attempts == 0 {
            return Err(ConfigError::Attempts);
        }
        Ok(())
    }

    /// The token endpoint: `{authority}/{tenant}/oauth2/v2.0/token`.
    pub fn token_endpoint(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.authority_url.trim_end_matches('/'), self.tenant_id)
    }

    /// The Graph root of the configured version, e.g. `https://graph.microsoft.com/v1.0`.
    pub fn graph_root(&self) -> String {
        format!("{}/{}", self.graph_url.trim_end_matches('/'), self.api_version.segment())
    }

    /// The `.default` scope of the Graph this configuration talks to.
    ///
    /// National-cloud Graph hosts have their own resource; any other host (the sim, a
    /// proxy) stands for the public Graph.
    pub fn graph_scope(&self) -> String {
        let host = url::Url::parse(&self.graph_url).ok().and_then(|u| u.host_str().map(str::to_owned));
        match host.as_deref() {
            Some(
                h @ ("graph.microsoft.us" | "dod-graph.microsoft.us" | "microsoftgraph.chinacloudapi.cn"),
            ) => format!("https://{h}/.default"),
            _ => format!("{PUBLIC_GRAPH}/.default"),
        }
    }

    /// The configuration without secrets, for display.
    pub fn show(&self) -> ConnectorView {
        let (kind, cert, mode) = match &self.credential {
            Credential::Secret { .. } => ("secret", None, None),
            Credential::Certificate { certificate_pem, mode, .. } => {
                ("certificate", Some(certificate_pem.clone()), Some(*mode))
            }
        };
        let secret_set = match &self.credential {
            Credential::Secret { client_secret } => {
                !secrecy::ExposeSecret::expose_secret(client_secret).is_empty()
            }
            Credential::Certificate { private_key_pem, .. } => {
                !secrecy::ExposeSecret::expose_secret(private_key_pem).is_empty()
            }
        };
        ConnectorView {
            enabled: self.enabled,
            http_debug: self.http_debug,
            client_id: self.client_id.clone(),
            tenant_id: self.tenant_id.clone(),
            credential_kind: kind,
            secret_set,
            certificate_pem: cert,
            assertion_mode: mode,
            challenge_timeout_minutes: self.challenge_timeout_minutes,
            api_version: self.api_version,
            authority_url: self.authority_url.clone(),
            graph_url: self.graph_url.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: &str = "8f5d2c1e-4b7a-4e3f-9a61-2d0c5b7e9f13";
    const CLIENT: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";

    #[test]
    fn secrets_never_serialise_nor_debug_print() {
        let config = ConnectorConfig::with_secret(TENANT, CLIENT, "s3cr3t-value".into());
        let json = serde_json::to_string(&config).unwrap();
        let shown = serde_json::to_string(&config.show()).unwrap();
        let debug = format!("{config:?}");
        for text in [&json, &shown, &debug] {
            assert!(!text.contains("s3cr3t-value"), "{text}");
        }
        assert!(shown.contains("\"secretSet\":true"));
    }

    #[test]
    fn parses_the_settings_file_shape_with_defaults() {
        let json = format!(
            r#"{{"clientId":"{CLIENT}","tenantId":"{TENANT}","apiVersion":"beta","challengeTimeoutMinutes":60,
               "credential":{{"kind":"secret","clientSecret":"x"}}}}"#
        );
        let config: ConnectorConfig = serde_json::from_str(&json).unwrap();
        config.validate().unwrap();
        assert_eq!(config.graph_root(), "https://graph.microsoft.com/beta");
        assert_eq!(
            config.token_endpoint(),
            format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token")
        );
        assert_eq!(config.retry, RetryPolicy::default());
    }

    #[test]
    fn validation_rules() {
        let base = ConnectorConfig::with_secret(TENANT, CLIENT, "x".into());
        type Change = Box<dyn Fn(&mut ConnectorConfig)>;
        let cases: Vec<(&str, Change, Option<&str>)> = vec![
            ("defaults are valid", Box::new(|_| {}), None),
            ("client id must be a GUID", Box::new(|c| c.client_id = "keyward".into()), Some("GUID")),
            ("30 days needs beta", Box::new(|c| c.challenge_timeout_minutes = Some(43_200)), Some("beta")),
            (
                "beta accepts 30 days",
                Box::new(|c| {
                    c.api_version = ApiVersion::Beta;
                    c.challenge_timeout_minutes = Some(43_200)
                }),
                None,
            ),
            (
                "beta refuses 4 minutes",
                Box::new(|c| {
                    c.api_version = ApiVersion::Beta;
                    c.challenge_timeout_minutes = Some(4)
                }),
                Some("5 and 43200"),
            ),
            ("authority must be a URL", Box::new(|c| c.authority_url = "login".into()), Some("authorityUrl")),
        ];
        for (name, change, expected) in cases {
            let mut config = base.clone();
            change(&mut config);
            match (config.validate(), expected) {
                (Ok(()), None) => {}
                (Err(e), Some(text)) => assert!(e.to_string().contains(text), "{name}: {e}"),
                (got, want) => panic!("{name}: got {got:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn national_clouds_get_their_own_scope_and_the_sim_gets_the_public_one() {
        let mut config = ConnectorConfig::with_secret(TENANT, CLIENT, "x".into());
        assert_eq!(config.graph_scope(), "https://graph.microsoft.com/.default");
        config.graph_url = "https://graph.microsoft.us".into();
        assert_eq!(config.graph_scope(), "https://graph.microsoft.us/.default");
        let config = config.pointed_at("http://127.0.0.1:4000/");
        assert_eq!(config.graph_scope(), "https://graph.microsoft.com/.default");
        assert_eq!(config.graph_root(), "http://127.0.0.1:4000/v1.0");
    }
}

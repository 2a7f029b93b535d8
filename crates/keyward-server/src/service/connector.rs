//! The Entra connector's settings as data: stored encrypted, shown without secrets, changed
//! through the API, and turned into a live [`Connector`] on demand.
//!
//! Settings live in the database, not in `keyward.toml`, so that several servers on one
//! PostgreSQL share them and an administrator changes them without a restart. Each server keeps
//! the built connector (and its token cache) for a short time and rebuilds it when it expires or
//! when it changed the settings itself.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use keyward_core::{ExternalRefSlot, Permission};
use keyward_entra::certificate::{CertificateReport, validate_certificate};
use keyward_entra::config::{ApiVersion, AssertionMode, ConnectorView};
use keyward_entra::connection::ConnectionReport;
use keyward_entra::{Connector, ConnectorConfig, Credential};
use keyward_store::connector::{self as stored, ConnectorSettings};
use keyward_store::secret::SecretKey;
use keyward_store::{Store, Tx};
use keyward_webauthn::policy::Fido2Policy;
use secrecy::SecretString;

use super::{Caller, Service, ServiceError};

/// How long a built connector is used before the settings are read again.
const RELOAD_AFTER: Duration = Duration::from_secs(30);
/// How long the tenant's FIDO2 policy is trusted for local checks.
const POLICY_TTL: Duration = Duration::from_secs(60);

/// The connector of this server, built lazily from the stored settings.
pub struct ConnectorSlot {
    key: SecretKey,
    built: Mutex<Option<(Instant, Connector)>>,
    policy: Mutex<Option<(Instant, Fido2Policy)>>,
}

impl std::fmt::Debug for ConnectorSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectorSlot")
    }
}

impl ConnectorSlot {
    /// A slot that decrypts stored secrets with `key`.
    pub fn new(key: SecretKey) -> Self {
        Self { key, built: Mutex::new(None), policy: Mutex::new(None) }
    }

    /// The key that encrypts the stored secrets.
    pub(crate) fn key(&self) -> &SecretKey {
        &self.key
    }

    /// The live connector, or 503 saying how to configure it.
    pub async fn get(&self, store: &Store) -> Result<Connector, ServiceError> {
        if let Some((at, c)) = self.built.lock().expect("connector slot poisoned").as_ref()
            && at.elapsed() < RELOAD_AFTER
        {
            return Ok(c.clone());
        }
        let config = self.load(store).await?.ok_or_else(|| {
            ServiceError::NotConfigured(
                "the Entra connector is not configured; an administrator sets its tenant, client id and credential first".into(),
            )
        })?;
        if !config.enabled {
            return Err(ServiceError::NotConfigured(
                "the Entra connector is disabled; enable it in the connector settings".into(),
            ));
        }
        let connector = Connector::new(config)
            .map_err(|e| ServiceError::Unavailable(format!("the connector settings are not usable: {e}")))?;
        *self.built.lock().expect("connector slot poisoned") = Some((Instant::now(), connector.clone()));
        Ok(connector)
    }

    /// The stored settings with secrets decrypted, if any are stored.
    pub async fn load(&self, store: &Store) -> Result<Option<ConnectorConfig>, ServiceError> {
        let Some(s) = stored::load(store, &self.key).await? else { return Ok(None) };
        Ok(Some(from_settings(s)))
    }

    /// Validates and stores new settings (secrets encrypted) in `tx`, audited by the store.
    pub async fn save(
        &self,
        tx: &mut Tx,
        actor: &str,
        config: &ConnectorConfig,
        slot: ExternalRefSlot,
    ) -> Result<(), ServiceError> {
        config.validate().map_err(|e| ServiceError::Invalid(e.to_string()))?;
        for (what, url) in [("authority", &config.authority_url), ("Graph", &config.graph_url)] {
            https_unless_loopback(what, url)?;
        }
        stored::save(tx, actor, &self.key, &to_settings(config, slot)).await?;
        self.invalidate();
        Ok(())
    }

    /// Drops the built connector and cached policy (after a settings change).
    pub fn invalidate(&self) {
        *self.built.lock().expect("connector slot poisoned") = None;
        *self.policy.lock().expect("connector slot poisoned") = None;
    }

    /// The tenant's FIDO2 method policy, cached for a minute (local checks read it on every
    /// completion; a bulk run must not spend Graph quota re-reading it).
    pub async fn tenant_policy(&self, connector: &Connector) -> Result<Fido2Policy, ServiceError> {
        if let Some((at, p)) = self.policy.lock().expect("connector slot poisoned").as_ref()
            && at.elapsed() < POLICY_TTL
        {
            return Ok(p.clone());
        }
        let policy = connector.get_fido2_policy().await.map_err(|e| ServiceError::Entra(e.to_string()))?;
        *self.policy.lock().expect("connector slot poisoned") = Some((Instant::now(), policy.clone()));
        Ok(policy)
    }

    /// Forgets the cached tenant policy (after Keyward changed it).
    pub fn forget_policy(&self) {
        *self.policy.lock().expect("connector slot poisoned") = None;
    }
}

impl Service {
    /// The connector settings without their secrets; `None` when none are stored.
    pub async fn connector_settings(&self, caller: &Caller) -> Result<Option<ConnectorView>, ServiceError> {
        caller.require(Permission::ConnectorRead)?;
        Ok(self.connector.load(&self.store).await?.map(|c| c.show()))
    }

    /// Stores new connector settings, audited (never with the secret).
    pub async fn set_connector(&self, caller: &Caller, config: ConnectorConfig) -> Result<(), ServiceError> {
        caller.require(Permission::ConnectorManage)?;
        let mut tx = self.store.begin().await?;
        self.connector.save(&mut tx, &caller.actor(), &config, self.slot).await?;
        tx.commit().await?;
        Ok(())
    }

    /// "Test connection": token, a Graph read, and the permissions granted.
    pub async fn test_connector(&self, caller: &Caller) -> Result<ConnectionReport, ServiceError> {
        caller.require(Permission::ConnectorManage)?;
        let connector = self.connector.get(&self.store).await?;
        Ok(connector.test_connection().await)
    }

    /// "Validate certificate" for a PEM pair, or for the stored certificate when none is given.
    pub async fn validate_connector_certificate(
        &self,
        caller: &Caller,
        given: Option<(String, SecretString)>,
    ) -> Result<CertificateReport, ServiceError> {
        caller.require(Permission::ConnectorManage)?;
        let (cert, key) = match given {
            Some(pair) => pair,
            None => self.stored_certificate().await?,
        };
        validate_certificate(&cert, &key).map_err(|e| ServiceError::Invalid(e.to_string()))
    }

    /// The stored connector certificate and key.
    async fn stored_certificate(&self) -> Result<(String, SecretString), ServiceError> {
        let config = self.connector.load(&self.store).await?.ok_or_else(|| {
            ServiceError::Unavailable("no connector settings are stored; pass the certificate and key".into())
        })?;
        match config.credential {
            Credential::Certificate { certificate_pem, private_key_pem, .. } => {
                Ok((certificate_pem, private_key_pem))
            }
            Credential::Secret { .. } => Err(ServiceError::Invalid(
                "the connector uses a client secret; pass a certificate and key to validate".into(),
            )),
        }
    }
}

/// A connector URL must be `https`, or `http` to a loopback address (the emulator, a local
/// proxy): the client secret or assertion and the Graph token travel on it.
fn https_unless_loopback(what: &str, url: &str) -> Result<(), ServiceError> {
    let parsed = url::Url::parse(url)
        .map_err(|_| ServiceError::Invalid(format!("the {what} URL {url:?} is not a URL")))?;
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(ServiceError::Invalid(format!(
            "the {what} URL {url} must use https (plain http only to this machine: 127.0.0.1, ::1 or localhost), as the connector's credentials travel on it"
        ))),
    }
}

fn to_settings(c: &ConnectorConfig, slot: ExternalRefSlot) -> ConnectorSettings {
    let (client_secret, certificate_pem, private_key_pem) = match &c.credential {
        Credential::Secret { client_secret } => (Some(client_secret.clone()), None, None),
        Credential::Certificate { certificate_pem, private_key_pem, .. } => {
            (None, Some(certificate_pem.clone()), Some(private_key_pem.clone()))
        }
    };
    ConnectorSettings {
        enabled: c.enabled,
        http_debug: c.http_debug,
        tenant_id: c.tenant_id.clone(),
        client_id: c.client_id.clone(),
        client_secret,
        certificate_pem,
        private_key_pem,
        challenge_timeout_min: c.challenge_timeout_minutes.map(i64::from).unwrap_or(0),
        graph_version: c.api_version.segment().to_owned(),
        authority_url: c.authority_url.clone(),
        graph_url: c.graph_url.clone(),
        external_ref_slot: slot,
    }
}

fn from_settings(s: ConnectorSettings) -> ConnectorConfig {
    let empty = || SecretString::from(String::new());
    let credential = match (s.certificate_pem, s.private_key_pem) {
        (Some(certificate_pem), Some(private_key_pem)) => {
            Credential::Certificate { certificate_pem, private_key_pem, mode: AssertionMode::default() }
        }
        _ => Credential::Secret { client_secret: s.client_secret.unwrap_or_else(empty) },
    };
    let mut c = ConnectorConfig::new(&s.tenant_id, &s.client_id, credential);
    c.enabled = s.enabled;
    c.http_debug = s.http_debug;
    c.challenge_timeout_minutes = u32::try_from(s.challenge_timeout_min).ok().filter(|m| *m > 0);
    c.api_version =
        if s.graph_version == ApiVersion::Beta.segment() { ApiVersion::Beta } else { ApiVersion::V1 };
    c.authority_url = s.authority_url;
    c.graph_url = s.graph_url;
    c
}

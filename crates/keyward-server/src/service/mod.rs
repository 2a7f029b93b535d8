//! The one service layer: every decision the server makes, called by the API, the web views and
//! the background jobs alike.
//!
//! Each operation takes the [`Caller`], checks the caller's permission itself, writes its state
//! change and audit event in one store transaction, and — where Entra is involved — records its
//! intent *before* the Graph call and the result after it (docs/architecture.md), so a crash at
//! any point leaves a row that [`reconcile`] can finish or undo. Failures are [`ServiceError`]s;
//! reads page with a cursor ([`cursor`]) and filter in SQL.

pub mod audit;
pub mod caller;
pub mod completion;
pub mod connector;
pub mod cursor;
pub mod doctor;
pub mod error;
pub mod inventory;
pub mod issuance;
pub mod jobs;
pub mod local_check;
pub mod people;
pub mod policies;
pub mod reconcile;
pub mod sign_in;
pub mod tokens;

use std::sync::Arc;

use keyward_core::ExternalRefSlot;
use keyward_store::{Store, StoreError, secret::SecretKey};

pub use caller::Caller;
pub use error::ServiceError;

use crate::config::ServerConfig;
use crate::metrics::Metrics;
use tokens::TokenCache;

/// The server's state and the operations on it.
#[derive(Debug)]
pub struct Service {
    /// The database.
    pub store: Store,
    /// Start-up configuration.
    pub config: ServerConfig,
    /// Which external-reference slot holds the Entra object id.
    pub slot: ExternalRefSlot,
    /// Resolved API tokens.
    pub(crate) tokens: TokenCache,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The Entra connector, built from the stored settings.
    pub connector: connector::ConnectorSlot,
    /// Enrollment policies, read at most every few seconds (every issuance step needs them).
    pub(crate) policies: std::sync::Mutex<Option<(std::time::Instant, Vec<keyward_core::EnrollmentPolicy>)>>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The secret key could not be read or created.
    #[error("{0}")]
    SecretKey(String),
}

impl Service {
    /// Opens the database (creating and migrating it), loads or creates the secret key, and
    /// builds the service.
    pub async fn open(config: ServerConfig) -> Result<Arc<Self>, StartError> {
        let key = load_or_create_secret_key(&config)?;
        let store = Store::open(&config.database_url()).await?;
        let slot = ExternalRefSlot::new(config.external_ref_slot)
            .map_err(|e| StartError::SecretKey(e.to_string()))?;
        Ok(Arc::new(Self {
            store,
            slot,
            tokens: TokenCache::default(),
            metrics: Arc::new(Metrics::default()),
            connector: connector::ConnectorSlot::new(key),
            policies: std::sync::Mutex::new(None),
            config,
        }))
    }

    /// Whether the database answers (for `/healthz`); the reason when it does not.
    pub async fn database_ready(&self) -> Result<(), ServiceError> {
        keyward_store::people::count(&self.store).await?;
        Ok(())
    }
}

/// The key that encrypts stored secrets: `KEYWARD_SECRET_KEY`, else the key file, created with
/// mode 0600 on first start.
fn load_or_create_secret_key(config: &ServerConfig) -> Result<SecretKey, StartError> {
    if std::env::var_os("KEYWARD_SECRET_KEY").is_some() {
        return SecretKey::from_env("KEYWARD_SECRET_KEY").map_err(|e| StartError::SecretKey(e.to_string()));
    }
    let path = config.secret_key_path();
    if !path.exists() {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StartError::SecretKey(format!("cannot create {}: {e}", dir.display())))?;
        }
        let key = SecretKey::generate();
        key.write_new_file(&path).map_err(|e| StartError::SecretKey(e.to_string()))?;
        tracing::info!(path = %path.display(), "created a new secret key for stored secrets; back it up");
    }
    SecretKey::from_file(&path).map_err(|e| StartError::SecretKey(e.to_string()))
}

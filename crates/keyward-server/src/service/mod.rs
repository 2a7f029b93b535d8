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
pub mod protected;
pub mod reconcile;
pub mod refusals;
pub mod rotation;
pub mod sign_in;
pub mod tokens;

use std::sync::Arc;

use keyward_core::ExternalRefSlot;
use keyward_store::{Store, StoreError};

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
    /// Who is protected (members of the configured roles and groups), read at most every minute.
    pub(crate) protected: protected::ProtectedCache,
    /// Refused API requests, counted until the next `api.refused` audit event.
    pub refusals: refusals::RefusalLog,
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
        let keys = crate::secret_key::load_or_create(&config).map_err(StartError::SecretKey)?;
        let store = Store::open(&config.database_url()).await?.with_audit_keys(keys.audit_keys());
        let slot = ExternalRefSlot::new(config.external_ref_slot)
            .map_err(|e| StartError::SecretKey(e.to_string()))?;
        Ok(Arc::new(Self {
            store,
            slot,
            tokens: TokenCache::default(),
            metrics: Arc::new(Metrics::default()),
            connector: connector::ConnectorSlot::new(keys.current),
            policies: std::sync::Mutex::new(None),
            protected: protected::ProtectedCache::default(),
            refusals: refusals::RefusalLog::default(),
            config,
        }))
    }

    /// Appends one audit event in its own transaction: the intent before an Entra call, or
    /// its outcome after, when no other state changes with it.
    pub(crate) async fn record(&self, draft: keyward_core::AuditDraft) -> Result<(), ServiceError> {
        let mut tx = self.store.begin().await?;
        keyward_store::audit::append(&mut tx, draft);
        tx.commit().await?;
        Ok(())
    }

    /// Whether the database answers (for `/healthz`); the reason when it does not.
    pub async fn database_ready(&self) -> Result<(), ServiceError> {
        keyward_store::people::count(&self.store).await?;
        Ok(())
    }
}

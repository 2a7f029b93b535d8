//! The store's error type: what went wrong, phrased so an operator knows what to do next.

use keyward_core::{ChainBreak, IssuanceError, IssuanceState, KeyError, PasskeyError, UnknownName};

/// Errors returned by the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed a statement.
    #[error("database error: {0}; check that the database is reachable and its disk is not full")]
    Database(#[from] sqlx::Error),
    /// The SQLite database refused or failed a statement.
    #[error("database error: {0}; check that the database file is writable and its disk is not full")]
    Sqlite(#[from] rusqlite::Error),
    /// Another write held the database longer than a writer waits.
    #[error(
        "the database was busy with another change for {0:?}; retry, and if it persists look for a stuck job"
    )]
    Busy(std::time::Duration),
    /// Applying the schema migrations failed.
    #[error("database migration failed: {0}; restore the previous Keyward version or the database backup")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database URL is not one Keyward understands.
    #[error("unsupported database URL \"{0}\"; use sqlite://PATH or postgres://USER@HOST/DB")]
    BadUrl(String),
    /// The SQLite file or its directory could not be created.
    #[error("cannot create the database file at {path}: {source}; check the data directory's permissions")]
    CreateFile {
        /// The file or directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A looked-up record does not exist.
    #[error("{0} not found; check the id and list the existing records")]
    NotFound(String),
    /// A record with the same unique value already exists.
    #[error("{0} already exists; choose another name or update the existing one")]
    Duplicate(String),
    /// The issuance changed between reading and writing (another request moved it).
    #[error("issuance {id} is no longer {expected} (now {actual}); reload it and retry")]
    StaleIssuance {
        /// The issuance id.
        id: String,
        /// The state the caller expected.
        expected: IssuanceState,
        /// The state found.
        actual: IssuanceState,
    },
    /// A stored value is not valid (the row was edited by hand or by a newer version).
    #[error("stored data is invalid: {0}; check whether a newer Keyward version wrote this database")]
    Corrupt(String),
    /// A name read from the database is unknown.
    #[error(transparent)]
    UnknownName(#[from] UnknownName),
    /// A security-key rule refused the change.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A passkey rule refused the change.
    #[error(transparent)]
    Passkey(#[from] PasskeyError),
    /// An issuance rule refused the change.
    #[error(transparent)]
    Issuance(#[from] IssuanceError),
    /// The audit chain does not verify.
    #[error(transparent)]
    Chain(#[from] ChainBreak),
    /// Encrypting or decrypting a stored secret failed, or the key is unusable.
    #[error(transparent)]
    Secret(#[from] crate::secret::SecretError),
    /// An audit anchor is unusable (wrong format, unknown key, bad signature).
    #[error(transparent)]
    Anchor(#[from] keyward_core::audit::anchor::AnchorError),
    /// The store was opened without the server's key, which anchors need.
    #[error(
        "this store was opened without the server's secret key; make and check anchors through the server (`keyward audit anchor`)"
    )]
    NoAuditKey,
    /// A job unit's lease was lost (another worker took it over after expiry).
    #[error("job unit {0} is now held by another worker; drop this result, the other worker will finish it")]
    LeaseLost(String),
}

/// Shorthand for store results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// Maps a unique-constraint violation to [`StoreError::Duplicate`] naming `what`.
    pub(crate) fn unique(e: impl Into<StoreError>, what: impl FnOnce() -> String) -> Self {
        match e.into() {
            StoreError::Database(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                StoreError::Duplicate(what())
            }
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
                if matches!(
                    f.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                ) =>
            {
                StoreError::Duplicate(what())
            }
            e => e,
        }
    }
}

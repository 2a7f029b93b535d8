//! Opening the database, the transaction type, and row conversions shared by the repositories.
//!
//! **Why the sqlx `Any` driver.** Keyward runs on SQLite by default and on PostgreSQL when the URL
//! says `postgres://`. The alternatives were (a) an enum over a `SqlitePool` and a `PgPool` with a
//! macro expanding every query twice, or (b) `Any`. `Any` gives one compiled code path per query:
//! the SQL is written once with `$1` placeholders (SQLite accepts `$NNN` too), every column is a
//! portable type (`TEXT`, `BIGINT`, booleans as 0/1 `BIGINT`, times as Unix microseconds), and the
//! few statements that must differ (the claim's `FOR UPDATE SKIP LOCKED`, PostgreSQL's advisory
//! lock) branch on [`Backend`]. The price — no compile-time checked queries and no native
//! UUID/timestamp types — is paid once in the small row helpers below, and the same integration
//! tests run on both backends to catch any divergence.
//!
//! SQLite transactions are opened with `BEGIN IMMEDIATE`, taking the write lock at the start: a
//! deferred transaction that reads and then writes can fail with "database is locked" when two
//! writers race, and WAL mode cannot upgrade a stale read snapshot. Holding the lock from the start
//! also keeps the audit chain linear. PostgreSQL uses ordinary transactions and an advisory lock for
//! the audit chain (see [`crate::audit`]).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyConnection, AnyPool, ConnectOptions, Executor, Row};
use time::OffsetDateTime;

use crate::error::{Result, StoreError};

/// One set of migrations for both backends: the schema uses only types both understand alike,
/// so two copies could only drift apart.
static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// The database: a connection pool and which backend it is.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The last audit event this process committed (`seq`, `hash`): a hint that saves a read per
    /// append, checked by the append itself (see [`crate::audit`]).
    pub(crate) audit_head: AuditHead,
}

/// A shared, possibly stale hint of the audit chain's head.
pub(crate) type AuditHead = std::sync::Arc<std::sync::Mutex<Option<(i64, String)>>>;

/// A database transaction; every mutation takes one so that it and its audit event commit together.
pub struct Tx {
    inner: sqlx::Transaction<'static, Any>,
    backend: Backend,
    /// The store's head hint, updated when this transaction commits.
    pub(crate) audit_head: AuditHead,
    /// The head after this transaction's own appends, once it has appended (it holds the lock).
    pub(crate) own_head: Option<(i64, String)>,
    /// Whether this transaction holds the PostgreSQL audit lock.
    pub(crate) audit_locked: bool,
}

impl Tx {
    /// The connection to run statements on.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.inner
    }

    /// Which backend this transaction runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Commits the transaction.
    pub async fn commit(self) -> Result<()> {
        self.inner.commit().await?;
        if let Some(head) = self.own_head {
            *self.audit_head.lock().unwrap_or_else(|p| p.into_inner()) = Some(head);
        }
        Ok(())
    }

    /// Rolls the transaction back (dropping it does the same).
    pub async fn rollback(self) -> Result<()> {
        Ok(self.inner.rollback().await?)
    }
}

impl Store {
    /// Opens (and migrates) the database at `url`: `postgres://…`/`postgresql://…` for PostgreSQL,
    /// `sqlite://PATH`, `sqlite:PATH` or a plain file path for SQLite. A SQLite file and its parent
    /// directory are created on first start; it runs in WAL mode with a 5 s busy timeout.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = AnyConnectOptions::from_str(url)?.disable_statement_logging();
            let pool = AnyPoolOptions::new().max_connections(16).connect_with(opts).await?;
            MIGRATIONS.run(&pool).await?;
            return Ok(Store { pool, backend: Backend::Postgres, audit_head: AuditHead::default() });
        }
        let path = sqlite_path(url)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|source| StoreError::CreateFile { path: dir.display().to_string(), source })?;
        }
        let any_url = format!("sqlite://{}?mode=rwc", path.display());
        let opts = AnyConnectOptions::from_str(&any_url)?.disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        MIGRATIONS.run(&pool).await?;
        Ok(Store { pool, backend: Backend::Sqlite, audit_head: AuditHead::default() })
    }

    /// Which backend this store uses.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool, for read-only queries.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a write transaction (`BEGIN IMMEDIATE` on SQLite).
    pub async fn begin(&self) -> Result<Tx> {
        let inner = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(Tx {
            inner,
            backend: self.backend,
            audit_head: self.audit_head.clone(),
            own_head: None,
            audit_locked: false,
        })
    }

    /// Closes all connections (waits for checked-out ones to return).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The file path in a SQLite URL (or a bare path).
fn sqlite_path(url: &str) -> Result<PathBuf> {
    let rest = if let Some(r) = url.strip_prefix("sqlite://") {
        r
    } else if let Some(r) = url.strip_prefix("sqlite:") {
        r
    } else if url.contains("://") {
        return Err(StoreError::BadUrl(url.to_owned()));
    } else {
        url
    };
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::BadUrl(url.to_owned()));
    }
    Ok(Path::new(path).to_path_buf())
}

/// Now, as stored (Unix microseconds).
pub(crate) fn now_micros() -> i64 {
    to_micros(OffsetDateTime::now_utc())
}

/// A time as stored (Unix microseconds).
pub(crate) fn to_micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

/// A stored time back as UTC.
pub(crate) fn from_micros(us: i64) -> OffsetDateTime {
    keyward_core::audit::from_micros(us)
}

/// Reads a text column.
pub(crate) fn text(r: &AnyRow, col: &str) -> Result<String> {
    Ok(r.try_get::<String, _>(col)?)
}

/// Reads a nullable text column.
pub(crate) fn opt_text(r: &AnyRow, col: &str) -> Result<Option<String>> {
    Ok(r.try_get::<Option<String>, _>(col)?)
}

/// Reads an integer column.
pub(crate) fn int(r: &AnyRow, col: &str) -> Result<i64> {
    Ok(r.try_get::<i64, _>(col)?)
}

/// Reads a nullable integer column.
pub(crate) fn opt_int(r: &AnyRow, col: &str) -> Result<Option<i64>> {
    Ok(r.try_get::<Option<i64>, _>(col)?)
}

/// Reads a 0/1 flag column.
pub(crate) fn flag(r: &AnyRow, col: &str) -> Result<bool> {
    Ok(int(r, col)? != 0)
}

/// Parses a text column into `T` (ids, enum names, UUIDs).
pub(crate) fn parsed<T: FromStr>(r: &AnyRow, col: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    let s = text(r, col)?;
    s.parse().map_err(|e: T::Err| StoreError::Corrupt(format!("column {col} = {s:?}: {e}")))
}

/// Parses a nullable text column into `T`.
pub(crate) fn opt_parsed<T: FromStr>(r: &AnyRow, col: &str) -> Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    match opt_text(r, col)? {
        None => Ok(None),
        Some(s) => {
            s.parse().map(Some).map_err(|e: T::Err| StoreError::Corrupt(format!("column {col} = {s:?}: {e}")))
        }
    }
}

/// Reads a JSON text column.
pub(crate) fn json<T: serde::de::DeserializeOwned>(r: &AnyRow, col: &str) -> Result<T> {
    let s = text(r, col)?;
    serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("column {col}: {e}")))
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub(crate) fn like_pattern(q: &str) -> String {
    let mut out = String::with_capacity(q.len() + 2);
    out.push('%');
    for c in q.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_and_paths() {
        for (url, path) in [
            ("sqlite://data/keyward.db", "data/keyward.db"),
            ("sqlite:///var/lib/keyward/k.db?mode=rwc", "/var/lib/keyward/k.db"),
            ("sqlite:k.db", "k.db"),
            ("/tmp/x/keyward.db", "/tmp/x/keyward.db"),
        ] {
            assert_eq!(sqlite_path(url).unwrap(), PathBuf::from(path), "{url}");
        }
        for bad in ["mysql://h/db", "sqlite::memory:", "sqlite://"] {
            assert!(matches!(sqlite_path(bad), Err(StoreError::BadUrl(_))), "{bad}");
        }
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("Ada_L%"), "%ada\\_l\\%%");
    }
}

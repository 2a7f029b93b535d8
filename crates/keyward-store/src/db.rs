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
//! also keeps the audit chain linear. The `BEGIN` is not sent on its own: it travels with the
//! transaction's first statement (and the `COMMIT` with its last, see [`crate::audit`]; a batched
//! transaction's writes go with the `COMMIT` too, see [`crate::write`]), because
//! every request to a SQLite connection's thread costs two thread wake-ups — on this project's
//! 2-core machine more CPU than the statement itself. PostgreSQL uses ordinary transactions and an advisory lock for
//! the audit chain (see [`crate::audit`]).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use sqlx::any::{AnyArguments, AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AnyPool, ConnectOptions, Executor, Row, TransactionManager};
use time::OffsetDateTime;

use crate::conn::{Conn, LocalPool, SQLITE_CONNECTIONS, sqlite_pragmas};

use crate::error::{Result, StoreError};
use crate::write::Write;

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
    /// SQLite only: the connections the repositories use (see [`crate::conn`]).
    local: Option<Arc<LocalPool>>,
    backend: Backend,
    /// The last audit event this process committed (`seq`, `hash`): a hint that saves a read per
    /// append, checked by the append itself (see [`crate::audit`]).
    pub(crate) audit_head: AuditHead,
}

/// A shared, possibly stale hint of the audit chain's head.
pub(crate) type AuditHead = std::sync::Arc<std::sync::Mutex<Option<(i64, String)>>>;

/// A database transaction; every mutation takes one so that it and its audit event commit together.
///
/// On SQLite the transaction is Keyward's own (`BEGIN IMMEDIATE` … `COMMIT`, without sqlx's
/// transaction manager) so that the commit can travel with the audit events' `INSERT` as one
/// request to the connection's thread (see [`crate::audit`]); on PostgreSQL it is sqlx's.
pub struct Tx {
    /// The connection; `None` only once a dropped transaction has handed it to its rollback.
    conn: Option<Conn>,
    /// SQLite: `BEGIN IMMEDIATE` is still to be sent, with the first statement.
    pub(crate) begin_pending: bool,
    /// Whether `BEGIN` was sent and neither `COMMIT` nor `ROLLBACK` succeeded yet.
    open: bool,
    backend: Backend,
    /// The store's head hint, updated when this transaction commits.
    pub(crate) audit_head: AuditHead,
    /// Batched transactions on SQLite: writes are kept until the next statement that must run at
    /// once (see [`crate::write`]).
    batched: bool,
    /// The writes kept so far.
    pub(crate) deferred: Vec<Write>,
    /// Audit events appended in this transaction, written by [`Tx::commit`].
    pub(crate) pending_audit: Vec<keyward_core::AuditDraft>,
    /// The chain's head once this transaction's events are written.
    pub(crate) committed_head: Option<(i64, String)>,
}

/// A statement for [`Tx::execute`] and [`Tx::fetch_optional`].
pub type TxQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

impl Tx {
    /// The connection, inside the transaction: a pending `BEGIN` and the batched writes are sent
    /// first. Statements whose result is a change count or one row go through [`Tx::execute`] /
    /// [`Tx::fetch_optional`] instead, which send those with them.
    pub async fn conn(&mut self) -> Result<&mut AnyConnection> {
        if self.begin_pending || !self.deferred.is_empty() {
            self.flush_and_run(None).await??;
        }
        Ok(self.raw())
    }

    /// The connection, whether or not the transaction has begun.
    pub(crate) fn raw(&mut self) -> &mut AnyConnection {
        self.conn.as_mut().expect("a transaction holds its connection until it is dropped")
    }

    /// Notes that `BEGIN` is being sent: from here until `COMMIT` or `ROLLBACK` succeeds the
    /// connection must not go back to the pool as it is (a request cancelled half-way may have begun).
    pub(crate) fn mark_begun(&mut self) {
        self.begin_pending = false;
        self.open = true;
        if let Some(conn) = self.conn.as_mut() {
            conn.set_reusable(false);
        }
    }

    /// Runs one statement in the transaction; returns the number of rows it changed.
    pub async fn execute(&mut self, query: TxQuery<'_>) -> Result<u64> {
        if !self.begin_pending && self.deferred.is_empty() {
            return Ok(query.execute(self.raw()).await?.rows_affected());
        }
        Ok(self.flush_and_run(Some(query)).await??.0)
    }

    /// Runs one statement in the transaction and returns its first row, if any (e.g. `RETURNING`).
    pub async fn fetch_optional(&mut self, query: TxQuery<'_>) -> Result<Option<AnyRow>> {
        if !self.begin_pending && self.deferred.is_empty() {
            return Ok(query.fetch_optional(self.raw()).await?);
        }
        Ok(self.flush_and_run(Some(query)).await??.1)
    }

    /// Runs a write: at once, or — in a batched transaction on SQLite — with the next statement
    /// that must run at once (see [`crate::write`]), in which case its error is reported there.
    pub(crate) async fn write(&mut self, w: Write) -> Result<()> {
        if self.batched && self.backend == Backend::Sqlite {
            self.deferred.push(w);
            return Ok(());
        }
        let Write { sql, bind, on_error, unchanged } = w;
        let changed = self.execute(bind(sqlx::query(&sql))).await.map_err(on_error)?;
        match unchanged {
            Some(explain) if changed == 0 => Err(explain(self).await),
            _ => Ok(()),
        }
    }

    /// Which backend this transaction runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Writes the transaction's audit events and commits.
    pub async fn commit(mut self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => crate::audit::flush(&mut self, Some("COMMIT")).await?,
            Backend::Postgres => {
                crate::audit::flush(&mut self, None).await?;
                Manager::commit(self.raw()).await?;
            }
        }
        self.finished();
        if let Some(head) = self.committed_head.take() {
            *self.audit_head.lock().unwrap_or_else(|p| p.into_inner()) = Some(head);
        }
        Ok(())
    }

    /// Rolls the transaction back (dropping it does the same).
    pub async fn rollback(mut self) -> Result<()> {
        match self.backend {
            // Nothing was sent: nothing to undo.
            Backend::Sqlite if self.begin_pending => self.deferred.clear(),
            Backend::Sqlite => {
                self.raw().execute("ROLLBACK").await?;
            }
            Backend::Postgres => Manager::rollback(self.raw()).await?,
        }
        self.finished();
        Ok(())
    }

    /// The transaction is over and the connection may be reused.
    fn finished(&mut self) {
        self.open = false;
        self.begin_pending = false;
        if let Some(conn) = self.conn.as_mut() {
            conn.set_reusable(true);
        }
    }
}

impl Drop for Tx {
    /// A transaction dropped without commit (an error, a cancelled request) is rolled back. On
    /// PostgreSQL sqlx queues the rollback on the connection; on SQLite a task runs `ROLLBACK` and
    /// then lets the connection be reused. Where no task can run, or the rollback fails, the
    /// connection is closed instead, which rolls back too.
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        let Some(mut conn) = self.conn.take() else { return };
        match self.backend {
            Backend::Postgres => Manager::start_rollback(&mut conn),
            Backend::Sqlite => {
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move {
                        if conn.execute("ROLLBACK").await.is_ok() {
                            conn.set_reusable(true);
                        }
                    });
                }
            }
        }
    }
}

/// The transaction manager behind [`Tx`] (sqlx's, for the `Any` driver).
type Manager = <Any as sqlx::Database>::TransactionManager;

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
            return Ok(Store {
                pool,
                backend: Backend::Postgres,
                audit_head: AuditHead::default(),
                local: None,
            });
        }
        let path = sqlite_path(url)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|source| StoreError::CreateFile { path: dir.display().to_string(), source })?;
        }
        let any_url = format!("sqlite://{}?mode=rwc", path.display());
        let opts = AnyConnectOptions::from_str(&any_url)?.disable_statement_logging();
        // The sqlx pool serves migrations and `pool()`; the repositories use the local pool below.
        let pool = AnyPoolOptions::new()
            .max_connections(2)
            .after_connect(|conn, _| Box::pin(async move { sqlite_pragmas(conn).await }))
            .connect_with(opts.clone())
            .await?;
        MIGRATIONS.run(&pool).await?;
        let local = Arc::new(LocalPool::new(opts, SQLITE_CONNECTIONS));
        Ok(Store { pool, backend: Backend::Sqlite, audit_head: AuditHead::default(), local: Some(local) })
    }

    /// A connection for a few statements: from the local pool on SQLite, from sqlx's pool on
    /// PostgreSQL. It goes back when dropped.
    pub async fn conn(&self) -> Result<Conn> {
        match &self.local {
            None => Ok(Conn::Pooled(self.pool.acquire().await?)),
            Some(local) => Ok(Conn::Local(local.acquire().await?)),
        }
    }

    /// Which backend this store uses.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// sqlx's connection pool, for ad-hoc statements (tests, maintenance); the repositories use
    /// [`Store::conn`].
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a write transaction. On SQLite that is `BEGIN IMMEDIATE`, sent with the
    /// transaction's first statement (see the module docs).
    pub async fn begin(&self) -> Result<Tx> {
        self.begin_tx(false).await
    }

    /// Begins a write transaction whose writes, on SQLite, are sent together with its next
    /// statement that must run at once — usually its commit — so a write's error (a duplicate, a
    /// stale state) is reported there rather than by the write's own call (see [`crate::write`]).
    pub async fn begin_batched(&self) -> Result<Tx> {
        self.begin_tx(true).await
    }

    async fn begin_tx(&self, batched: bool) -> Result<Tx> {
        let mut conn = self.conn().await?;
        if self.backend == Backend::Postgres {
            Manager::begin(&mut conn, None).await?;
        }
        Ok(Tx {
            conn: Some(conn),
            begin_pending: self.backend == Backend::Sqlite,
            open: self.backend == Backend::Postgres,
            backend: self.backend,
            audit_head: self.audit_head.clone(),
            batched,
            deferred: Vec::new(),
            pending_audit: Vec::new(),
            committed_head: None,
        })
    }

    /// Closes all connections (waits for checked-out ones of sqlx's pool to return).
    pub async fn close(&self) {
        if let Some(local) = &self.local {
            local.close().await;
        }
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

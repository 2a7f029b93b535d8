//! Opening the database and the transaction type, over either backend.
//!
//! **One set of repository functions.** Keyward runs on SQLite by default and on PostgreSQL when
//! the URL says `postgres://`. Each repository function writes its SQL once, with `$1`
//! placeholders, as a [`Stmt`] over portable column types (see [`crate::stmt`]); the store runs it
//! on PostgreSQL through sqlx's `Any` driver and on SQLite through rusqlite in the caller's thread
//! (see [`crate::lite`] for why not sqlx there). The few statements that must differ (the claim's
//! `FOR UPDATE SKIP LOCKED`, PostgreSQL's advisory lock) branch on [`Backend`]. The price — no
//! compile-time checked queries, no native UUID/timestamp types — is paid once in the row
//! helpers of [`crate::stmt`], and the same integration tests run on both backends to catch any
//! divergence. Migrations are sqlx's on both.
//!
//! SQLite transactions are opened with `BEGIN IMMEDIATE`, taking the write lock at the start: a
//! deferred transaction that reads and then writes can fail with "database is locked" when two
//! writers race, and WAL mode cannot upgrade a stale read snapshot. Holding the lock from the start
//! also keeps the audit chain linear. PostgreSQL uses ordinary transactions and an advisory lock
//! for the audit chain (see [`crate::audit`]).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, ConnectOptions, Executor, TransactionManager};
use time::OffsetDateTime;

use crate::audit::AuditKeys;
use crate::error::{Result, StoreError};
use crate::lite::{self, Lite, WriterGuard};
use crate::pg;
use crate::stmt::{Reader, Row, Stmt};
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

/// The database: sqlx's pool, and on SQLite Keyward's own connections.
#[derive(Debug, Clone)]
pub struct Store {
    /// sqlx's pool: the repositories' connections on PostgreSQL; on SQLite only migrations and
    /// [`Store::pool`].
    pool: AnyPool,
    /// SQLite only: the connections the repositories use (see [`crate::lite`]).
    lite: Option<Arc<Lite>>,
    /// The last audit event this process committed (`seq`, `hash`): a hint that saves a read per
    /// append, checked by the append itself (see [`crate::audit`]).
    pub(crate) audit_head: AuditHead,
    /// The keys that seal the audit chain and sign its anchors (none: plain SHA-256, see
    /// [`crate::audit`]).
    pub(crate) audit_keys: Arc<AuditKeys>,
}

/// A shared, possibly stale hint of the audit chain's head.
pub(crate) type AuditHead = std::sync::Arc<std::sync::Mutex<Option<(i64, String)>>>;

/// A transaction's connection.
enum Link {
    /// From sqlx's pool (PostgreSQL).
    Pg(PoolConnection<Any>),
    /// SQLite's writer connection, taken with the first statement (so a transaction begun
    /// ahead of a slow step holds up no other writer) and held until the transaction ends.
    Lite { lite: Arc<Lite>, writer: Option<WriterGuard> },
}

/// A database transaction; every mutation takes one so that it and its audit event commit together.
///
/// On SQLite it holds the store's writer connection from `BEGIN IMMEDIATE`, sent with its first
/// statement, to `COMMIT` (see [`crate::lite`]); on PostgreSQL it is sqlx's transaction on a
/// pooled connection.
pub struct Tx {
    link: Link,
    /// Whether `BEGIN` succeeded and neither `COMMIT` nor `ROLLBACK` did yet.
    open: bool,
    /// The store's head hint, updated when this transaction commits.
    pub(crate) audit_head: AuditHead,
    /// Audit events appended in this transaction, written by [`Tx::commit`].
    pub(crate) pending_audit: Vec<keyward_core::AuditDraft>,
    /// The chain's head once this transaction's events are written.
    pub(crate) committed_head: Option<(i64, String)>,
    /// The store's audit keys (the current chain key seals this transaction's events).
    pub(crate) audit_keys: Arc<AuditKeys>,
}

impl Tx {
    /// Runs one statement in the transaction; returns the number of rows it changed.
    pub async fn execute(&mut self, stmt: Stmt) -> Result<u64> {
        Ok(self.run(stmt, false).await?.0)
    }

    async fn run(&mut self, stmt: Stmt, first_only: bool) -> Result<(u64, Vec<Row>)> {
        match &mut self.link {
            Link::Lite { lite, writer } => {
                if writer.is_none() {
                    let w = lite.writer().await?;
                    lite::command(lite::held(&w), "BEGIN IMMEDIATE")?;
                    *writer = Some(w);
                    self.open = true;
                }
                let w = writer.as_ref().expect("taken above");
                lite::run(lite::held(w), &stmt, first_only)
            }
            Link::Pg(conn) => pg::run(conn, &stmt, first_only).await,
        }
    }

    /// Runs a write; when it fails, or changed no row where it must change one, returns the error
    /// the write names (see [`Write`]).
    pub(crate) async fn write(&mut self, w: Write) -> Result<()> {
        let Write { stmt, on_error, unchanged } = w;
        let changed = self.execute(stmt).await.map_err(on_error)?;
        match unchanged {
            Some(explain) if changed == 0 => Err(explain(self).await),
            _ => Ok(()),
        }
    }

    /// Which backend this transaction runs on.
    pub fn backend(&self) -> Backend {
        match self.link {
            Link::Lite { .. } => Backend::Sqlite,
            Link::Pg(_) => Backend::Postgres,
        }
    }

    /// Writes the transaction's audit events and commits.
    pub async fn commit(mut self) -> Result<()> {
        crate::audit::flush(&mut self).await?;
        match &mut self.link {
            // Nothing was sent: nothing to commit.
            Link::Lite { writer: None, .. } => {}
            Link::Lite { writer: Some(w), .. } => lite::command(lite::held(w), "COMMIT")?,
            Link::Pg(conn) => Manager::commit(conn).await?,
        }
        self.open = false;
        if let Some(head) = self.committed_head.take() {
            *self.audit_head.lock().unwrap_or_else(|p| p.into_inner()) = Some(head);
        }
        Ok(())
    }

    /// Rolls the transaction back (dropping it does the same).
    pub async fn rollback(mut self) -> Result<()> {
        match &mut self.link {
            Link::Lite { writer: None, .. } => {}
            Link::Lite { writer: Some(w), .. } => lite::command(lite::held(w), "ROLLBACK")?,
            Link::Pg(conn) => Manager::rollback(conn).await?,
        }
        self.open = false;
        Ok(())
    }
}

impl Reader for &mut Tx {
    async fn rows(self, stmt: Stmt, first_only: bool) -> Result<Vec<Row>> {
        Ok(self.run(stmt, first_only).await?.1)
    }
}

impl Drop for Tx {
    /// A transaction dropped without commit (an error, a cancelled request) is rolled back: on
    /// PostgreSQL sqlx queues the rollback on the connection; on SQLite it runs here, and if it
    /// fails the writer connection is closed, which rolls back too.
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        match &mut self.link {
            Link::Pg(conn) => Manager::start_rollback(conn),
            Link::Lite { writer: None, .. } => {}
            Link::Lite { writer: Some(w), .. } => {
                if lite::command(lite::held(w), "ROLLBACK").is_err() {
                    w.take();
                }
            }
        }
    }
}

/// The transaction manager behind [`Tx`] on PostgreSQL (sqlx's, for the `Any` driver).
type Manager = <Any as sqlx::Database>::TransactionManager;

impl Store {
    /// Opens (and migrates) the database at `url`: `postgres://…`/`postgresql://…` for PostgreSQL,
    /// `sqlite://PATH`, `sqlite:PATH` or a plain file path for SQLite. A SQLite file and its parent
    /// directory are created on first start, for the owner only (file 0600, directory 0700; an
    /// existing file others could read is narrowed to 0600, and SQLite gives its `-wal` and
    /// `-shm` files the database file's mode); it runs in WAL mode with a 5 s busy timeout.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = AnyConnectOptions::from_str(url)?.disable_statement_logging();
            let pool = AnyPoolOptions::new().max_connections(16).connect_with(opts).await?;
            MIGRATIONS.run(&pool).await?;
            return Ok(Store {
                pool,
                audit_head: AuditHead::default(),
                lite: None,
                audit_keys: Arc::default(),
            });
        }
        let path = sqlite_path(url)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir)
                .map_err(|source| StoreError::CreateFile { path: dir.display().to_string(), source })?;
        }
        create_private_file(&path)
            .map_err(|source| StoreError::CreateFile { path: path.display().to_string(), source })?;
        let any_url = format!("sqlite://{}?mode=rwc", path.display());
        let opts = AnyConnectOptions::from_str(&any_url)?.disable_statement_logging();
        // sqlx's pool creates the file and migrates it, and serves `pool()`; the repositories use
        // `lite` (see `crate::lite`).
        let pool = AnyPoolOptions::new()
            .max_connections(2)
            .after_connect(|conn, _| Box::pin(async move { sqlite_pragmas(conn).await }))
            .connect_with(opts)
            .await?;
        MIGRATIONS.run(&pool).await?;
        let lite = Arc::new(Lite::new(&path));
        Ok(Store { pool, audit_head: AuditHead::default(), lite: Some(lite), audit_keys: Arc::default() })
    }

    /// The store with the keys that seal the audit chain and sign anchors (the server sets them
    /// from its secret key; without them events get plain SHA-256 hashes, see [`crate::audit`]).
    pub fn with_audit_keys(mut self, keys: AuditKeys) -> Store {
        self.audit_keys = Arc::new(keys);
        self
    }

    /// The keys the audit chain is sealed and anchored with.
    pub fn audit_keys(&self) -> &AuditKeys {
        &self.audit_keys
    }

    /// Which backend this store uses.
    pub fn backend(&self) -> Backend {
        if self.lite.is_some() { Backend::Sqlite } else { Backend::Postgres }
    }

    /// sqlx's connection pool, for ad-hoc statements (tests, maintenance); the repositories run
    /// their statements through [`Stmt`].
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Runs one write outside any transaction (it commits on its own); returns the number of rows
    /// it changed. On SQLite it waits for the writer connection like a transaction does.
    pub async fn execute(&self, stmt: Stmt) -> Result<u64> {
        match &self.lite {
            Some(lite) => Ok(lite::run(lite::held(&lite.writer().await?), &stmt, false)?.0),
            None => Ok(pg::run(&mut *self.pool.acquire().await?, &stmt, false).await?.0),
        }
    }

    /// Begins a write transaction. On SQLite that is `BEGIN IMMEDIATE` on the writer connection,
    /// sent with the transaction's first statement (see [`crate::lite`]).
    pub async fn begin(&self) -> Result<Tx> {
        let link = match &self.lite {
            Some(lite) => Link::Lite { lite: lite.clone(), writer: None },
            None => {
                let mut conn = self.pool.acquire().await?;
                Manager::begin(&mut conn, None).await?;
                Link::Pg(conn)
            }
        };
        Ok(Tx {
            open: matches!(link, Link::Pg(_)),
            link,
            audit_head: self.audit_head.clone(),
            pending_audit: Vec::new(),
            committed_head: None,
            audit_keys: self.audit_keys.clone(),
        })
    }

    /// Closes all connections (waits for checked-out ones of sqlx's pool to return).
    pub async fn close(&self) {
        if let Some(lite) = &self.lite {
            lite.close();
        }
        self.pool.close().await;
    }
}

impl Reader for &Store {
    async fn rows(self, stmt: Stmt, first_only: bool) -> Result<Vec<Row>> {
        match &self.lite {
            Some(lite) => lite.read(&stmt, first_only),
            None => Ok(pg::run(&mut *self.pool.acquire().await?, &stmt, first_only).await?.1),
        }
    }
}

/// Settings sqlx's SQLite connections get: [`lite::SETTINGS`], as Keyward's own connections.
async fn sqlite_pragmas(conn: &mut AnyConnection) -> std::result::Result<(), sqlx::Error> {
    conn.execute(lite::SETTINGS).await.map(drop)
}

/// Creates `dir` and its missing parents; those it creates are for the owner only (0700).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates the database file 0600 if missing (before SQLite does, with the umask's mode), and
/// narrows it and its `-wal` and `-shm` files when group or others can read them.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    drop(options.open(path)?);
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        if let Ok(meta) = std::fs::metadata(&name)
            && meta.permissions().mode() & 0o077 != 0
        {
            let narrowed = meta.permissions().mode() & 0o700;
            std::fs::set_permissions(&name, std::fs::Permissions::from_mode(narrowed))?;
        }
    }
    Ok(())
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

/// A time as stored (Unix microseconds): what keyset cursors over times must carry.
pub fn to_micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

/// A stored time back as UTC.
pub(crate) fn from_micros(us: i64) -> OffsetDateTime {
    keyward_core::audit::from_micros(us)
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

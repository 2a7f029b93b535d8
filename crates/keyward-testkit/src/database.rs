//! Temporary databases: a SQLite file in a fresh directory, or a uniquely named PostgreSQL
//! database, so tests run in parallel without colliding and leave nothing behind.
//!
//! PostgreSQL is reached at `KEYWARD_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`, trust auth); each database is created through that
//! admin connection as `keyward_test_<random>` and dropped `WITH (FORCE)`. A missing PostgreSQL
//! fails the test with a hint; it is never skipped, because a skipped backend would hide a
//! divergence between the two.

use std::path::{Path, PathBuf};

use sqlx::{Connection, Executor};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

impl Backend {
    /// Reads "sqlite" or "postgres".
    pub fn named(name: &str) -> Self {
        match name {
            "sqlite" => Backend::Sqlite,
            "postgres" => Backend::Postgres,
            other => panic!("unknown backend {other:?}: use \"sqlite\" or \"postgres\""),
        }
    }
}

/// Where the admin connection for creating test databases goes.
pub fn postgres_admin_url() -> String {
    std::env::var("KEYWARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `url` (a PostgreSQL URL) with its database part replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    let cut = base.rfind('/').expect("the PostgreSQL URL has a /database part");
    format!("{}/{db}", &base[..cut])
}

/// A path for a new SQLite database, `keyward.db` in a fresh (not yet created) directory.
pub fn sqlite_path() -> PathBuf {
    std::env::temp_dir().join(format!("keyward-test-{}", uuid::Uuid::new_v4())).join("keyward.db")
}

async fn admin() -> sqlx::PgConnection {
    let url = postgres_admin_url();
    sqlx::PgConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!(
            "cannot reach PostgreSQL at {url}: {e}; start it with \
             `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` or set KEYWARD_TEST_POSTGRES"
        )
    })
}

/// The URL of a new, empty database of `backend` ("sqlite" or "postgres"); remove it with
/// [`remove_database`].
pub async fn empty_database(backend: &str) -> String {
    match Backend::named(backend) {
        Backend::Sqlite => format!("sqlite://{}", sqlite_path().display()),
        Backend::Postgres => {
            let name = format!("keyward_test_{}", uuid::Uuid::new_v4().simple());
            admin()
                .await
                .execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create test database");
            with_database(&postgres_admin_url(), &name)
        }
    }
}

/// Removes a database made by [`empty_database`]: the SQLite file's directory, or the PostgreSQL
/// database (its remaining connections are ended).
pub async fn remove_database(url: &str) {
    if let Some(path) = url.strip_prefix("sqlite://") {
        if let Some(dir) = Path::new(path).parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    } else {
        let name = url.rsplit('/').next().expect("a database name");
        admin()
            .await
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await
            .expect("drop test database");
    }
}

/// A database made by [`empty_database`] and removed when this is dropped.
pub struct TempDatabase {
    url: String,
}

impl TempDatabase {
    /// Creates a new, empty database of `backend`.
    pub async fn create(backend: Backend) -> Self {
        let name = match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        Self { url: empty_database(name).await }
    }

    /// [`TempDatabase::create`] for a test without a runtime of its own.
    pub fn create_blocking(backend: Backend) -> Self {
        on_fresh_runtime(move || Self::create(backend))
    }

    /// The database's URL, as `keyward serve --database-url` and `Store::open` take it.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let url = std::mem::take(&mut self.url);
        // Dropping may happen inside a runtime, where blocking on another future is not allowed;
        // and a failure here must not turn a failing test's unwinding into an abort.
        let removal = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(remove_database(&url));
        });
        let _ = removal.join();
    }
}

/// Runs the future `make` returns to completion on a new thread with its own runtime.
fn on_fresh_runtime<T, F, Fut>(make: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
{
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(make())
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

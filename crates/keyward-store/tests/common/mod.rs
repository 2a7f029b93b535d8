//! Test harness: runs one test body on a fresh SQLite file and on a fresh PostgreSQL database.
//!
//! PostgreSQL is reached at `KEYWARD_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`,
//! trust auth); each test creates its own `keyward_test_<random>` database and drops it afterwards,
//! so tests run in parallel without colliding. A missing PostgreSQL fails the test with a hint — it
//! is not skipped, because a skipped backend would hide divergence.

#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;

use keyward_store::Store;
use sqlx::{Connection, Executor};

/// Where the admin connection for creating test databases goes.
pub fn postgres_admin_url() -> String {
    std::env::var("KEYWARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn with_database(url: &str, db: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    let cut = base.rfind('/').expect("postgres URL has a /database part");
    format!("{}/{db}", &base[..cut])
}

/// A temporary SQLite path under a fresh directory.
pub fn sqlite_path() -> PathBuf {
    std::env::temp_dir().join(format!("keyward-store-test-{}", uuid::Uuid::new_v4())).join("keyward.db")
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
    match backend {
        "sqlite" => format!("sqlite://{}", sqlite_path().display()),
        "postgres" => {
            let name = format!("keyward_test_{}", uuid::Uuid::new_v4().simple());
            admin()
                .await
                .execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create test database");
            with_database(&postgres_admin_url(), &name)
        }
        other => panic!("unknown backend {other}"),
    }
}

/// Removes a database made by [`empty_database`].
pub async fn remove_database(url: &str) {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let _ = std::fs::remove_dir_all(std::path::Path::new(path).parent().unwrap());
    } else {
        let name = url.rsplit('/').next().unwrap();
        admin()
            .await
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await
            .expect("drop test database");
    }
}

/// Runs `body` on a fresh store of `backend` ("sqlite" or "postgres"), then removes the database.
pub async fn run<F, Fut>(backend: &str, body: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let url = empty_database(backend).await;
    let store = Store::open(&url).await.unwrap_or_else(|e| panic!("open {backend} store: {e}"));
    let outcome = tokio::spawn(body(store.clone())).await;
    store.close().await;
    remove_database(&url).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Adds the key `serial` in a transaction of its own, failing if that takes 3 s — far below
/// SQLite's 5 s busy timeout, so a write lock left behind by an earlier transaction fails it.
pub async fn commit_key_promptly(store: &Store, serial: &str, waited_for: &str) {
    let next_writer = async {
        let mut tx = store.begin().await.unwrap();
        keyward_store::keys::insert(
            &mut tx,
            "token:t",
            &keyward_core::SecurityKey::new(Some(serial.into()), uuid::Uuid::nil()),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    };
    tokio::time::timeout(std::time::Duration::from_secs(3), next_writer)
        .await
        .unwrap_or_else(|_| panic!("the next writer waited for {waited_for}"));
}

/// Declares `NAME_sqlite` and `NAME_postgres` tests running the async fn `NAME(store)`.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::run("sqlite", super::$name).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::run("postgres", super::$name).await;
                }
            )+
        }
    };
}

//! Test harness: runs one test body on a fresh SQLite file and on a fresh PostgreSQL database
//! (made and removed by `keyward_testkit::database`, where the PostgreSQL address is described).
//! A missing PostgreSQL fails the test with a hint; it is not skipped, because a skipped backend
//! would hide divergence.

#![allow(dead_code, unused_imports)]

use std::future::Future;

use keyward_store::Store;
pub use keyward_testkit::database::{empty_database, remove_database, sqlite_path};

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

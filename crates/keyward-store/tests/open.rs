//! Opening a SQLite store creates the file and its directory on first start, in WAL mode, and
//! reopening keeps the data (migrations are not re-applied destructively).

mod common;

use keyward_core::{Person, PersonSource};
use keyward_store::{Store, StoreError, people};
use sqlx::Row;

#[tokio::test]
async fn first_start_creates_the_sqlite_file_in_wal_mode() {
    let path = common::sqlite_path();
    assert!(!path.parent().unwrap().exists());
    let store = Store::open(&format!("sqlite://{}", path.display())).await.unwrap();
    assert!(path.exists(), "database file created");
    let mode: String = sqlx::query("PRAGMA journal_mode").fetch_one(store.pool()).await.unwrap().get(0);
    assert_eq!(mode, "wal");
    let timeout: i64 = sqlx::query("PRAGMA busy_timeout").fetch_one(store.pool()).await.unwrap().get(0);
    assert_eq!(timeout, 5000);

    let p = Person::new("Ada Lovelace", "ada@contoso.example", PersonSource::Manual);
    let mut tx = store.begin().await.unwrap();
    people::insert(&mut tx, "test", &p).await.unwrap();
    tx.commit().await.unwrap();
    store.close().await;

    // A bare path works too, and the data is still there.
    let again = Store::open(path.to_str().unwrap()).await.unwrap();
    assert_eq!(people::get(&again, p.id).await.unwrap().unwrap().upn, "ada@contoso.example");
    again.close().await;
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn unsupported_urls_are_refused_with_the_accepted_forms() {
    let err = Store::open("mysql://localhost/keyward").await.unwrap_err();
    assert!(matches!(err, StoreError::BadUrl(_)));
    assert!(err.to_string().contains("sqlite://PATH or postgres://"));
}

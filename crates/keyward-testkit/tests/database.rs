//! The temporary databases clean up after themselves: a test that leaks a PostgreSQL database per
//! run fills the shared server, and a leaked SQLite directory fills `/tmp`. Run with
//! `cargo test -p keyward-testkit --features database` (the workspace's tests enable it).

use keyward_testkit::database::{Backend, TempDatabase, postgres_admin_url};
use sqlx::{Connection, Row};

async fn postgres_has(name: &str) -> bool {
    let mut admin = sqlx::PgConnection::connect(&postgres_admin_url()).await.expect("PostgreSQL is running");
    let row = sqlx::query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut admin)
        .await
        .expect("pg_database is readable");
    row.get::<i64, _>("n") == 1
}

#[tokio::test]
async fn a_postgres_database_exists_while_held_and_is_gone_after_drop_even_with_a_connection_open() {
    let database = TempDatabase::create(Backend::Postgres).await;
    let name = database.url().rsplit('/').next().unwrap().to_owned();
    assert!(name.starts_with("keyward_test_"), "{name}");
    assert!(postgres_has(&name).await, "{name} was not created");
    let mut open =
        sqlx::PgConnection::connect(database.url()).await.expect("the new database takes connections");
    sqlx::query("CREATE TABLE t (x int)").execute(&mut open).await.unwrap();
    drop(database);
    assert!(!postgres_has(&name).await, "{name} is still there after drop");
}

#[tokio::test]
async fn two_postgres_databases_have_different_names() {
    let (a, b) =
        (TempDatabase::create(Backend::Postgres).await, TempDatabase::create(Backend::Postgres).await);
    assert_ne!(a.url(), b.url());
}

#[test]
fn a_sqlite_database_directory_is_gone_after_drop() {
    let database = TempDatabase::create_blocking(Backend::Sqlite);
    let path = std::path::PathBuf::from(database.url().strip_prefix("sqlite://").expect("a sqlite URL"));
    let dir = path.parent().unwrap().to_owned();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&path, b"not really a database").unwrap();
    drop(database);
    assert!(!dir.exists(), "{} is still there after drop", dir.display());
}

//! A database written by an earlier Keyward keeps its data when a newer one opens it: migration 3
//! rebuilds `audit_event` (without the index on `hash`) and swaps the issuance index, and the
//! audit chain written before it still verifies, lists the same and grows.

mod common;

use keyward_core::audit::GENESIS_HASH;
use keyward_core::{AuditDraft, AuditEvent};
use keyward_store::Store;
use keyward_store::audit::{self, AuditFilter};
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use time::OffsetDateTime;

/// The schema as Keyward left it before migration 3: migrations 1 and 2 only.
async fn migrator_before_3() -> (Migrator, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("keyward-migrations-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for name in ["0001_initial.sql", "0002_issuance_challenge.sql"] {
        std::fs::copy(shipped.join(name), dir.join(name)).unwrap();
    }
    (Migrator::new(dir.as_path()).await.unwrap(), dir)
}

/// Writes `ev` with plain SQL, as a Keyward of any version would have.
async fn insert_raw(pool: &sqlx::AnyPool, ev: &AuditEvent) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_event (seq, actor, action, subject, outcome, detail, at, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(ev.seq)
    .bind(ev.actor.clone())
    .bind(ev.action.clone())
    .bind(ev.subject.clone())
    .bind(ev.outcome.as_str())
    .bind(ev.detail.clone())
    .bind(ev.at_micros())
    .bind(ev.prev_hash.clone())
    .bind(ev.hash.clone())
    .execute(pool)
    .await
    .map(drop)
}

async fn upgrade_keeps_the_audit_chain(backend: &str) {
    sqlx::any::install_default_drivers();
    let url = common::empty_database(backend).await;
    let pool_url = match url.strip_prefix("sqlite://") {
        Some(path) => {
            std::fs::create_dir_all(std::path::Path::new(path).parent().unwrap()).unwrap();
            format!("{url}?mode=rwc")
        }
        None => url.clone(),
    };
    let (old, old_dir) = migrator_before_3().await;
    let pool = AnyPoolOptions::new().max_connections(1).connect(&pool_url).await.unwrap();
    old.run(&pool).await.unwrap();
    let mut written = Vec::new();
    let mut prev = GENESIS_HASH.to_owned();
    for (seq, action) in [(1, "person.created"), (2, "issuance.created"), (3, "key.state-changed")] {
        let ev = AuditDraft::new("token:admin", action, format!("person:{seq}")).seal(
            seq,
            &prev,
            OffsetDateTime::now_utc(),
        );
        insert_raw(&pool, &ev).await.unwrap();
        prev = ev.hash.clone();
        written.push(ev);
    }
    pool.close().await;
    std::fs::remove_dir_all(old_dir).unwrap();

    let store = Store::open(&url).await.unwrap();
    assert_eq!(audit::verify(&store).await.unwrap(), 3, "the chain written before the upgrade verifies");
    assert_eq!(audit::list(&store, &AuditFilter::default()).await.unwrap(), written);
    let mut tx = store.begin().await.unwrap();
    audit::append(&mut tx, AuditDraft::new("token:admin", "key.created", "key:1"));
    tx.commit().await.unwrap();
    assert_eq!(audit::verify(&store).await.unwrap(), 4, "and grows after it");
    let events = audit::list(&store, &AuditFilter::default()).await.unwrap();
    assert_eq!(events[3].prev_hash, written[2].hash);

    // An event that would fork the chain (a second event at seq 2) is still refused, now by the
    // primary key alone.
    let fork = AuditDraft::new("token:admin", "person.deleted", "person:2").seal(
        2,
        &written[0].hash,
        OffsetDateTime::now_utc(),
    );
    let err = insert_raw(store.pool(), &fork).await.unwrap_err();
    assert!(err.as_database_error().is_some_and(|e| e.is_unique_violation()), "{err}");
    assert_eq!(audit::verify(&store).await.unwrap(), 4);
    store.close().await;
    common::remove_database(&url).await;
}

#[tokio::test]
async fn upgrade_keeps_the_audit_chain_sqlite() {
    upgrade_keeps_the_audit_chain("sqlite").await;
}

#[tokio::test]
async fn upgrade_keeps_the_audit_chain_postgres() {
    upgrade_keeps_the_audit_chain("postgres").await;
}

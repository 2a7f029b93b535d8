//! The audit chain on both backends: linear under concurrent writers, tamper detection naming the
//! row, and atomicity with the change it records.

mod common;

use keyward_core::{AuditDraft, ChainBreakReason, KeyState, SecurityKey};
use keyward_store::audit::{self, AuditFilter};
use keyward_store::{Store, StoreError, keys};
use uuid::Uuid;

/// 20 writers, each adding a key (which appends an audit event) in its own transaction at the same
/// time: every event is stored, seq 1..=20 without gaps, and the chain verifies.
async fn concurrent_appends_keep_the_chain_linear(store: Store) {
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = store.begin().await.unwrap();
            keys::insert(&mut tx, "token:t", &SecurityKey::new(Some(format!("SN-{i}")), Uuid::nil()))
                .await
                .unwrap();
            tokio::task::yield_now().await;
            audit::append(&mut tx, AuditDraft::new("token:t", "test.extra", format!("n:{i}"))).await.unwrap();
            tx.commit().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(audit::verify(&store).await.unwrap(), 40);
    let events = audit::list(&store, &AuditFilter { limit: Some(1000), ..Default::default() }).await.unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=40).collect::<Vec<i64>>());
    assert_eq!(keys::list(&store, None).await.unwrap().len(), 20);
}

/// Altering one stored row makes verification fail, naming that row.
async fn tampering_with_a_row_is_detected_and_named(store: Store) {
    for i in 0..8 {
        let mut tx = store.begin().await.unwrap();
        audit::append(&mut tx, AuditDraft::new("user:ada", "key.lost", format!("key:{i}"))).await.unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(audit::verify(&store).await.unwrap(), 8);
    sqlx::query("UPDATE audit_event SET actor = 'user:mallory' WHERE seq = 5")
        .execute(store.pool())
        .await
        .unwrap();
    match audit::verify(&store).await {
        Err(StoreError::Chain(b)) => {
            assert_eq!((b.seq, b.index, b.reason), (5, 4, ChainBreakReason::HashMismatch));
            assert!(b.to_string().contains("event #5"), "{b}");
        }
        other => panic!("expected a chain break at event 5, got {other:?}"),
    }
    // Deleting a row is named too (the first row after the gap).
    sqlx::query("UPDATE audit_event SET actor = 'user:ada' WHERE seq = 5")
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(audit::verify(&store).await.unwrap(), 8);
    sqlx::query("DELETE FROM audit_event WHERE seq = 3").execute(store.pool()).await.unwrap();
    match audit::verify(&store).await {
        Err(StoreError::Chain(b)) => assert_eq!(b.seq, 4),
        other => panic!("expected a chain break at event 4, got {other:?}"),
    }
}

/// A rolled-back change leaves neither the change nor its audit event.
async fn rollback_discards_change_and_audit_together(store: Store) {
    let key = SecurityKey::new(Some("SN-R".into()), Uuid::nil());
    let mut tx = store.begin().await.unwrap();
    keys::insert(&mut tx, "token:t", &key).await.unwrap();
    tx.rollback().await.unwrap();
    assert!(keys::get(&store, key.id).await.unwrap().is_none());
    assert!(audit::list(&store, &AuditFilter::default()).await.unwrap().is_empty());

    let mut tx = store.begin().await.unwrap();
    keys::insert(&mut tx, "token:t", &key).await.unwrap();
    tx.commit().await.unwrap();
    // An illegal state change in the same transaction fails and writes no event.
    let mut tx = store.begin().await.unwrap();
    keys::set_state(&mut tx, "token:t", key.id, KeyState::Lost).await.unwrap();
    assert!(keys::set_state(&mut tx, "token:t", key.id, KeyState::Issued).await.is_err());
    tx.commit().await.unwrap();
    let events = audit::list(&store, &AuditFilter::default()).await.unwrap();
    assert_eq!(events.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["key.create", "key.lost"]);
    let exported = audit::export_jsonl(&store).await.unwrap();
    assert_eq!(exported.lines().count(), 2);
    assert!(exported.contains("\"action\":\"key.lost\""));
}

on_both!(
    concurrent_appends_keep_the_chain_linear,
    tampering_with_a_row_is_detected_and_named,
    rollback_discards_change_and_audit_together,
);

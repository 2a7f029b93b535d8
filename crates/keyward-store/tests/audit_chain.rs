//! The audit chain on both backends: linear under concurrent writers, tamper detection naming the
//! row, and atomicity with the change it records.

mod common;

use keyward_core::{AuditDraft, ChainBreakReason, KeyState, SecurityKey};
use keyward_store::audit::{self, AuditFilter};
use keyward_store::{Stmt, Store, StoreError, keys};
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
            audit::append(&mut tx, AuditDraft::new("token:t", "test.extra", format!("n:{i}")));
            tx.commit().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(audit::verify(&store).await.unwrap(), 40);
    let events = audit::list(&store, &AuditFilter { limit: Some(1000), ..Default::default() }).await.unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=40).collect::<Vec<i64>>());
    assert_eq!(keys::list(&store, None, None, 100).await.unwrap().len(), 20);
}

/// Altering one stored row makes verification fail, naming that row.
async fn tampering_with_a_row_is_detected_and_named(store: Store) {
    for i in 0..8 {
        let mut tx = store.begin().await.unwrap();
        audit::append(&mut tx, AuditDraft::new("user:ada", "key.lost", format!("key:{i}")));
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

/// This store remembers the head it last committed, to save a read per append; a writer it does
/// not know about (another server on the same database) and a rolled-back append must not make
/// it fork the chain.
async fn a_stale_head_hint_never_forks_the_chain(store: Store) {
    let mut tx = store.begin().await.unwrap();
    audit::append(&mut tx, AuditDraft::new("a", "first", "s"));
    tx.commit().await.unwrap();
    // Another server appends event 2 directly.
    let first = audit::list(&store, &AuditFilter::default()).await.unwrap().remove(0);
    let other =
        AuditDraft::new("other-server", "second", "s").seal(2, &first.hash, time::OffsetDateTime::now_utc());
    sqlx::query(
        "INSERT INTO audit_event (seq, actor, action, subject, outcome, detail, at, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(other.seq)
    .bind(&other.actor)
    .bind(&other.action)
    .bind(&other.subject)
    .bind(other.outcome.as_str())
    .bind(&other.detail)
    .bind(other.at_micros())
    .bind(&other.prev_hash)
    .bind(&other.hash)
    .execute(store.pool())
    .await
    .unwrap();
    // A rolled-back append, then two in one transaction.
    let mut tx = store.begin().await.unwrap();
    audit::append(&mut tx, AuditDraft::new("a", "rolled-back", "s"));
    tx.rollback().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    audit::append(&mut tx, AuditDraft::new("a", "third", "s"));
    audit::append(&mut tx, AuditDraft::new("a", "fourth", "s"));
    tx.commit().await.unwrap();
    let events = audit::list(&store, &AuditFilter::default()).await.unwrap();
    let (third, fourth) = (&events[2], &events[3]);
    assert_eq!(
        (third.action.as_str(), third.seq, third.prev_hash.as_str()),
        ("third", 3, other.hash.as_str())
    );
    assert_eq!(
        (fourth.action.as_str(), fourth.seq, fourth.prev_hash.as_str()),
        ("fourth", 4, third.hash.as_str())
    );
    assert_eq!(audit::verify(&store).await.unwrap(), 4);
}

/// A transaction's events are written together at commit, several statements' worth when there
/// are many (a sync of thousands of people is one transaction): all of them land, in order,
/// after events already there, and the chain verifies.
async fn a_transaction_with_thousands_of_events_commits_them_all(store: Store) {
    let mut tx = store.begin().await.unwrap();
    audit::append(&mut tx, AuditDraft::new("a", "before", "s"));
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    for i in 0..1_234 {
        audit::append(&mut tx, AuditDraft::new("sync", "person.sync", format!("person:{i}")));
    }
    tx.commit().await.unwrap();
    assert_eq!(audit::verify(&store).await.unwrap(), 1_235);
    let last =
        audit::list(&store, &AuditFilter { after_seq: Some(1_234), ..Default::default() }).await.unwrap();
    assert_eq!((last[0].seq, last[0].subject.as_str()), (1_235, "person:1233"));
}

/// A transaction dropped without commit or rollback (a request cancelled half-way, an error
/// returned with `?`) leaves neither its change nor its event, and does not keep the write lock
/// from the next writer — however many are dropped in a row.
async fn a_dropped_transaction_rolls_back_and_frees_the_write_lock(store: Store) {
    for i in 0..12 {
        let mut tx = store.begin().await.unwrap();
        keys::insert(&mut tx, "token:t", &SecurityKey::new(Some(format!("SN-D{i}")), Uuid::nil()))
            .await
            .unwrap();
        drop(tx);
    }
    common::commit_key_promptly(&store, "SN-KEPT", "a dropped transaction's lock").await;
    for i in 0..12 {
        assert!(keys::get_by_serial(&store, &format!("SN-D{i}")).await.unwrap().is_none());
    }
    assert!(keys::get_by_serial(&store, "SN-KEPT").await.unwrap().is_some());
    let events = audit::list(&store, &AuditFilter::default()).await.unwrap();
    assert_eq!(events.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["key.create"]);
    assert_eq!(audit::verify(&store).await.unwrap(), 1);
}

/// A statement's change count is its own, even when it is the first of its transaction (on SQLite
/// the `BEGIN` goes just before it, and SQLite reports the connection's last count): an update that
/// matches nothing says 0 right after one that changed three rows — or a stale-state check built
/// on it would let a lost race pass as a success.
async fn a_first_statements_change_count_is_its_own(store: Store) {
    let mut tx = store.begin().await.unwrap();
    for i in 0..3 {
        keys::insert(&mut tx, "token:t", &SecurityKey::new(Some(format!("SN-C{i}")), Uuid::nil()))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let all = tx.execute(Stmt::new("UPDATE security_key SET model = 'M1'")).await.unwrap();
    assert_eq!(all, 3);
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let none = Stmt::new("UPDATE security_key SET model = 'M2' WHERE serial = $1").bind("SN-NONE");
    assert_eq!(tx.execute(none).await.unwrap(), 0);
    let one = Stmt::new("UPDATE security_key SET model = 'M2' WHERE serial = $1").bind("SN-C1");
    assert_eq!(tx.execute(one).await.unwrap(), 1);
    tx.commit().await.unwrap();
    assert_eq!(keys::get_by_serial(&store, "SN-C1").await.unwrap().unwrap().model.as_deref(), Some("M2"));
}

/// A transaction takes the write lock with its first statement, not before: one begun and not yet
/// used does not hold up another writer, and then commits its own change normally.
async fn a_transaction_that_sent_nothing_holds_no_lock(store: Store) {
    let mut idle = store.begin().await.unwrap();
    common::commit_key_promptly(&store, "SN-OTHER", "a transaction that had sent nothing").await;
    keys::insert(&mut idle, "token:t", &SecurityKey::new(Some("SN-IDLE".into()), Uuid::nil())).await.unwrap();
    idle.commit().await.unwrap();
    // Begun and committed (or rolled back) with nothing in it: no error, nothing written.
    store.begin().await.unwrap().commit().await.unwrap();
    store.begin().await.unwrap().rollback().await.unwrap();
    assert_eq!(audit::verify(&store).await.unwrap(), 2);
}

/// A transaction whose first statement fails (here a duplicate serial; on SQLite the `BEGIN`
/// went just before it) rolls back cleanly and leaves the lock free and the chain intact.
async fn a_failed_first_statement_rolls_back_cleanly(store: Store) {
    let mut tx = store.begin().await.unwrap();
    keys::insert(&mut tx, "token:t", &SecurityKey::new(Some("SN-DUP".into()), Uuid::nil())).await.unwrap();
    tx.commit().await.unwrap();
    for _ in 0..3 {
        let mut tx = store.begin().await.unwrap();
        let dup =
            keys::insert(&mut tx, "token:t", &SecurityKey::new(Some("SN-DUP".into()), Uuid::nil())).await;
        assert!(matches!(dup, Err(StoreError::Duplicate(_))), "{dup:?}");
        tx.rollback().await.unwrap();
    }
    common::commit_key_promptly(&store, "SN-AFTER", "a rolled-back transaction's lock").await;
    assert_eq!(audit::verify(&store).await.unwrap(), 2);
}

on_both!(
    a_failed_first_statement_rolls_back_cleanly,
    a_first_statements_change_count_is_its_own,
    a_transaction_that_sent_nothing_holds_no_lock,
    a_dropped_transaction_rolls_back_and_frees_the_write_lock,
    a_stale_head_hint_never_forks_the_chain,
    a_transaction_with_thousands_of_events_commits_them_all,
    concurrent_appends_keep_the_chain_linear,
    tampering_with_a_row_is_detected_and_named,
    rollback_discards_change_and_audit_together,
);

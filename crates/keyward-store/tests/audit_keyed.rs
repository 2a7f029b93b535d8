//! The keyed audit chain and its anchors on both backends: events sealed with the server's key,
//! plain events of older releases still verifying before the switch, and the two attacks a key
//! alone cannot catch — the newest events deleted, the chain recomputed without the key —
//! detected against an anchor.

mod common;

use keyward_core::audit::anchor::Anchor;
use keyward_core::audit::{AuditEvent, GENESIS_HASH};
use keyward_core::{AuditDraft, ChainBreakReason};
use keyward_store::audit::{self, AuditFilter, AuditKeys};
use keyward_store::{SecretKey, Store, StoreError};

fn keys_of(key: &SecretKey) -> AuditKeys {
    use keyward_core::audit::MacKeys;
    AuditKeys { chain: MacKeys::new(key.audit_mac_key(), []), anchor: MacKeys::new(key.anchor_mac_key(), []) }
}

async fn append(store: &Store, n: usize) {
    for i in 0..n {
        let mut tx = store.begin().await.unwrap();
        audit::append(&mut tx, AuditDraft::new("user:ada", "key.lost", format!("key:{i}")));
        tx.commit().await.unwrap();
    }
}

async fn events(store: &Store) -> Vec<AuditEvent> {
    audit::list(store, &AuditFilter { limit: Some(1000), ..Default::default() }).await.unwrap()
}

fn break_reason(result: Result<u64, StoreError>) -> ChainBreakReason {
    match result {
        Err(StoreError::Chain(b)) => b.reason,
        other => panic!("expected a chain break, got {other:?}"),
    }
}

/// Rewrites every stored event from `from_seq` on as someone without the key would: contents
/// changed by `edit`, hashes recomputed with plain SHA-256 from genesis.
async fn recompute_without_the_key(store: &Store, edit: impl Fn(&mut AuditEvent)) {
    let mut prev = GENESIS_HASH.to_owned();
    for mut ev in events(store).await {
        edit(&mut ev);
        ev.prev_hash = prev.clone();
        ev.hash = ev.compute_hash();
        prev = ev.hash.clone();
        sqlx::query("UPDATE audit_event SET detail = $1, prev_hash = $2, hash = $3 WHERE seq = $4")
            .bind(&ev.detail)
            .bind(&ev.prev_hash)
            .bind(&ev.hash)
            .bind(ev.seq)
            .execute(store.pool())
            .await
            .unwrap();
    }
}

/// A keyed store seals with HMAC; a store without the key cannot verify (or forge) those events.
async fn events_are_sealed_with_the_key(store: Store) {
    let key = SecretKey::generate();
    let keyed = store.clone().with_audit_keys(keys_of(&key));
    append(&keyed, 3).await;
    let evs = events(&keyed).await;
    assert!(evs.iter().all(|e| e.hash.starts_with(&format!("hmac:{}:", key.id()))), "{:?}", evs[0].hash);
    assert_eq!(audit::verify(&keyed).await.unwrap(), 3);
    assert_eq!(break_reason(audit::verify(&store).await), ChainBreakReason::UnknownKey);
    let other = store.clone().with_audit_keys(keys_of(&SecretKey::generate()));
    assert_eq!(break_reason(audit::verify(&other).await), ChainBreakReason::UnknownKey);
    assert!(matches!(audit::anchor(&store).await, Err(StoreError::NoAuditKey)));
}

/// A database of an older release (plain events) keeps verifying after the server starts sealing
/// with its key; the first keyed event links to the last plain one.
async fn plain_events_before_the_switch_still_verify(store: Store) {
    append(&store, 2).await;
    let keyed = store.clone().with_audit_keys(keys_of(&SecretKey::generate()));
    append(&keyed, 2).await;
    let evs = events(&keyed).await;
    assert_eq!(evs.iter().map(AuditEvent::is_keyed).collect::<Vec<_>>(), [false, false, true, true]);
    assert_eq!(evs[2].prev_hash, evs[1].hash);
    assert_eq!(audit::verify(&keyed).await.unwrap(), 4);
}

/// The newest events deleted (at and before the anchor): the chain itself still verifies, the
/// anchor catches it; events after a good anchor are fine.
async fn truncation_is_detected_against_an_anchor(store: Store) {
    let keyed = store.with_audit_keys(keys_of(&SecretKey::generate()));
    append(&keyed, 5).await;
    let anchor = audit::anchor(&keyed).await.unwrap();
    assert_eq!(anchor.seq, 5);
    append(&keyed, 2).await;
    assert_eq!(audit::verify_against(&keyed, &anchor).await.unwrap(), 7, "a good chain verifies");

    sqlx::query("DELETE FROM audit_event WHERE seq >= $1").bind(4_i64).execute(keyed.pool()).await.unwrap();
    assert_eq!(audit::verify(&keyed).await.unwrap(), 3, "without the anchor nothing shows");
    assert_eq!(
        break_reason(audit::verify_against(&keyed, &anchor).await),
        ChainBreakReason::Truncated { last: 3 }
    );
    // New events refill the deleted positions: still caught, as a different event #5.
    append(&keyed, 3).await;
    assert_eq!(break_reason(audit::verify_against(&keyed, &anchor).await), ChainBreakReason::AnchorMismatch);
}

/// An event before the anchor edited and every hash recomputed without the key (as plain
/// SHA-256, which verifies like an old release's chain): the anchor catches it. An anchor with an
/// edited head or a forged signature is refused.
async fn recomputation_is_detected_against_an_anchor(store: Store) {
    let keyed = store.with_audit_keys(keys_of(&SecretKey::generate()));
    append(&keyed, 4).await;
    let anchor = audit::anchor(&keyed).await.unwrap();
    recompute_without_the_key(&keyed, |ev| {
        if ev.seq == 2 {
            ev.detail = "{\"covered\":\"up\"}".into();
        }
    })
    .await;
    assert_eq!(audit::verify(&keyed).await.unwrap(), 4, "a plain chain alone verifies");
    assert_eq!(break_reason(audit::verify_against(&keyed, &anchor).await), ChainBreakReason::AnchorMismatch);

    let mut forged = anchor.clone();
    forged.hash = events(&keyed).await[3].hash.clone();
    assert!(matches!(audit::verify_against(&keyed, &forged).await, Err(StoreError::Anchor(_))));
    let foreign = Anchor::sign(
        4,
        &forged.hash,
        time::OffsetDateTime::now_utc(),
        &SecretKey::generate().anchor_mac_key(),
    );
    assert!(matches!(audit::verify_against(&keyed, &foreign).await, Err(StoreError::Anchor(_))));
}

/// A broken chain gets no anchor.
async fn a_broken_chain_is_not_anchored(store: Store) {
    let keyed = store.with_audit_keys(keys_of(&SecretKey::generate()));
    append(&keyed, 3).await;
    sqlx::query("UPDATE audit_event SET actor = 'user:mallory' WHERE seq = 2")
        .execute(keyed.pool())
        .await
        .unwrap();
    assert!(matches!(audit::anchor(&keyed).await, Err(StoreError::Chain(_))));
}

on_both!(
    events_are_sealed_with_the_key,
    plain_events_before_the_switch_still_verify,
    truncation_is_detected_against_an_anchor,
    recomputation_is_detected_against_an_anchor,
    a_broken_chain_is_not_anchored,
);

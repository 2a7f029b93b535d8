//! The job queue on both backends: leases, take-over after a crash, idempotent completion, and
//! concurrent claimers never sharing a unit.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use keyward_store::jobs::{self, Completion, JobProgress};
use keyward_store::{Store, StoreError};

async fn new_job(store: &Store, n: usize) -> keyward_core::JobId {
    let payloads: Vec<String> = (0..n).map(|i| format!("{{\"upn\":\"u{i}@contoso.example\"}}")).collect();
    let mut tx = store.begin().await.unwrap();
    let id = jobs::create(
        &mut tx,
        "token:bulk",
        "bulk-provision",
        &serde_json::json!({"concurrency": 2}),
        &payloads,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

async fn crashed_workers_units_are_taken_over_and_completion_is_idempotent(store: Store) {
    let job = new_job(&store, 4).await;
    // Worker A claims two units with a short lease and "crashes" after finishing one.
    let a = jobs::claim(&store, Some(job), 2, Duration::from_millis(300)).await.unwrap();
    assert_eq!(a.iter().map(|u| u.seq).collect::<Vec<_>>(), [0, 1]);
    let mut tx = store.begin().await.unwrap();
    assert_eq!(jobs::complete(&mut tx, &a[0], "ok").await.unwrap(), Completion::Done);
    tx.commit().await.unwrap();
    // Retrying the same completion is harmless.
    let mut tx = store.begin().await.unwrap();
    assert_eq!(jobs::complete(&mut tx, &a[0], "ok").await.unwrap(), Completion::AlreadyDone);
    tx.commit().await.unwrap();

    // Before the lease expires, B only gets the untouched units.
    let b = jobs::claim(&store, Some(job), 10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(b.iter().map(|u| u.seq).collect::<Vec<_>>(), [2, 3]);
    assert!(jobs::claim(&store, Some(job), 10, Duration::from_secs(60)).await.unwrap().is_empty());

    tokio::time::sleep(Duration::from_millis(400)).await;
    let c = jobs::claim(&store, Some(job), 10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        c.iter().map(|u| (u.seq, u.attempts)).collect::<Vec<_>>(),
        [(1, 2)],
        "expired lease taken over"
    );

    // A (back from the dead) may not complete the unit C now holds.
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(jobs::complete(&mut tx, &a[1], "late").await, Err(StoreError::LeaseLost(_))));
    assert_eq!(jobs::complete(&mut tx, &c[0], "ok").await.unwrap(), Completion::Done);
    jobs::fail(&mut tx, &b[0], "Entra said 404", true).await.unwrap();
    jobs::fail(&mut tx, &b[1], "user not found", false).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        jobs::progress(&store, job).await.unwrap(),
        JobProgress { pending: 1, running: 0, done: 2, failed: 1 }
    );
    let retry = jobs::claim(&store, Some(job), 10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(retry.iter().map(|u| (u.seq, u.attempts)).collect::<Vec<_>>(), [(2, 2)]);
    let report = jobs::report(&store, job, None, 1000).await.unwrap();
    assert_eq!(report[3].result.as_deref(), Some("user not found"));
    assert_eq!(report[3].state, "failed");
}

async fn concurrent_claimers_never_share_a_unit(store: Store) {
    let job = new_job(&store, 60).await;
    let mut workers = Vec::new();
    for _ in 0..6 {
        let store = store.clone();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let units = jobs::claim(&store, Some(job), 3, Duration::from_secs(60)).await.unwrap();
                if units.is_empty() {
                    return mine;
                }
                let mut tx = store.begin().await.unwrap();
                for u in &units {
                    assert_eq!(jobs::complete(&mut tx, u, "ok").await.unwrap(), Completion::Done);
                }
                tx.commit().await.unwrap();
                mine.extend(units.into_iter().map(|u| u.seq));
            }
        }));
    }
    let mut seen = HashSet::new();
    for w in workers {
        for seq in w.await.unwrap() {
            assert!(seen.insert(seq), "unit {seq} was handed to two workers");
        }
    }
    assert_eq!(seen.len(), 60);
    assert_eq!(jobs::progress(&store, job).await.unwrap().done, 60);
}

on_both!(
    crashed_workers_units_are_taken_over_and_completion_is_idempotent,
    concurrent_claimers_never_share_a_unit
);

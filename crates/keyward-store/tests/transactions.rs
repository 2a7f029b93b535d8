//! Transactions on both backends: an issuance step's writes land together with the commit, and a
//! write that fails — a duplicate, a stale state, a refused move — fails the transaction with the
//! error that names why (read inside the transaction), leaving nothing behind and the writer free.

mod common;

use keyward_core::{
    Channel, Issuance, IssuanceState, Passkey, PasskeyId, PasskeyOrigin, PasskeyState, Person, PersonSource,
    SecurityKey,
};
use keyward_store::audit::{self, AuditFilter};
use keyward_store::{Stmt, Store, StoreError, Tx, Value, issuances, keys, passkeys, people};
use time::OffsetDateTime;
use uuid::Uuid;

/// A person with an issuance waiting for creation options, committed.
async fn person_with_issuance(store: &Store) -> (Person, Issuance) {
    let person = Person::new("Ada", "ada@contoso.example", PersonSource::Manual);
    let issuance = Issuance::new(person.id, "user:ada", Channel::SelfService, false);
    let mut tx = store.begin().await.unwrap();
    people::insert(&mut tx, "op", &person).await.unwrap();
    issuances::create(&mut tx, "op", &issuance).await.unwrap();
    tx.commit().await.unwrap();
    (person, issuance)
}

fn pending_passkey(person: &Person, credential_id: &str) -> Passkey {
    Passkey {
        id: PasskeyId::new(),
        entra_method_id: None,
        credential_id: credential_id.into(),
        person_id: person.id,
        security_key_id: None,
        aaguid: Uuid::nil(),
        model: None,
        display_name: "Security key".into(),
        created_at: OffsetDateTime::now_utc(),
        state: PasskeyState::Pending,
        origin: PasskeyOrigin::Managed,
    }
}

/// Runs `writes` in a transaction and commits; the first error, from a write or the commit.
async fn in_tx(
    store: &Store,
    writes: impl AsyncFnOnce(&mut Tx) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut tx = store.begin().await.unwrap();
    writes(&mut tx).await?;
    tx.commit().await
}

async fn actions(store: &Store) -> Vec<String> {
    audit::list(store, &AuditFilter::default()).await.unwrap().into_iter().map(|e| e.action).collect()
}

/// An issuance step's writes — passkey recorded, issuance moved, then registered — commit together
/// with their audit events, which chain after the earlier ones.
async fn a_transaction_commits_every_write_and_event(store: Store) {
    let (person, mut issuance) = person_with_issuance(&store).await;
    let passkey = pending_passkey(&person, "Y3JlZC0x");
    issuance.transition(IssuanceState::OptionsIssued).unwrap();
    issuance.challenge = Some("Y2hhbGxlbmdl".into());
    in_tx(&store, async |tx| {
        passkeys::insert(tx, "op", &passkey).await?;
        issuances::transition(tx, "op", IssuanceState::Requested, &issuance).await
    })
    .await
    .unwrap();
    let mut registered = None;
    issuance.transition(IssuanceState::Registered).unwrap();
    in_tx(&store, async |tx| {
        registered = Some(passkeys::mark_registered(tx, "op", &passkey, "method-1", Some("Model")).await?);
        issuances::transition(tx, "op", IssuanceState::OptionsIssued, &issuance).await
    })
    .await
    .unwrap();
    let stored = passkeys::get(&store, passkey.id).await.unwrap().unwrap();
    assert_eq!(Some(&stored), registered.as_ref(), "the returned passkey is the stored one");
    assert_eq!(
        (stored.state, stored.entra_method_id.as_deref()),
        (PasskeyState::Registered, Some("method-1"))
    );
    let stored = issuances::get(&store, issuance.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.state, stored.challenge.as_deref()),
        (IssuanceState::Registered, Some("Y2hhbGxlbmdl"))
    );
    assert_eq!(
        actions(&store).await,
        [
            "person.create",
            "issuance.create",
            "passkey.record",
            "issuance.options-issued",
            "passkey.registered",
            "issuance.registered",
        ]
    );
    assert_eq!(audit::verify(&store).await.unwrap(), 6);
}

/// A duplicate credential id fails the transaction as `Duplicate`, and the write before it in the
/// same transaction (the issuance's move) is not kept either.
async fn a_duplicate_fails_the_whole_transaction(store: Store) {
    let (person, mut issuance) = person_with_issuance(&store).await;
    let first = pending_passkey(&person, "Y3JlZC0x");
    in_tx(&store, async |tx| passkeys::insert(tx, "op", &first).await).await.unwrap();
    issuance.transition(IssuanceState::OptionsIssued).unwrap();
    let again = pending_passkey(&person, "Y3JlZC0x");
    let outcome = in_tx(&store, async |tx| {
        issuances::transition(tx, "op", IssuanceState::Requested, &issuance).await?;
        passkeys::insert(tx, "op", &again).await
    })
    .await;
    match outcome {
        Err(StoreError::Duplicate(what)) => assert!(what.contains("Y3JlZC0x"), "{what}"),
        other => panic!("expected a duplicate credential, got {other:?}"),
    }
    assert_eq!(issuances::get(&store, issuance.id).await.unwrap().unwrap().state, IssuanceState::Requested);
    assert!(passkeys::get(&store, again.id).await.unwrap().is_none());
    common::commit_key_promptly(&store, "SN-AFTER", "a failed transaction's lock").await;
    assert_eq!(actions(&store).await, ["person.create", "issuance.create", "passkey.record", "key.create"]);
    assert_eq!(audit::verify(&store).await.unwrap(), 4);
}

/// A move from a state the issuance is no longer in fails as `StaleIssuance` naming the state it
/// is in (read inside the failed transaction), and a passkey move that is not allowed from the
/// stored state as a passkey rule.
async fn stale_moves_fail_with_the_actual_state(store: Store) {
    let (person, mut issuance) = person_with_issuance(&store).await;
    issuance.transition(IssuanceState::OptionsIssued).unwrap();
    in_tx(&store, async |tx| issuances::transition(tx, "op-a", IssuanceState::Requested, &issuance).await)
        .await
        .unwrap();
    let late = in_tx(&store, async |tx| {
        issuances::transition(tx, "op-b", IssuanceState::Requested, &issuance).await
    })
    .await;
    match late {
        Err(StoreError::StaleIssuance { expected, actual, .. }) => {
            assert_eq!((expected, actual), (IssuanceState::Requested, IssuanceState::OptionsIssued))
        }
        other => panic!("expected a stale issuance, got {other:?}"),
    }
    let passkey = pending_passkey(&person, "Y3JlZC0y");
    let registered = async |tx: &mut Tx| {
        passkeys::insert(tx, "op", &passkey).await?;
        passkeys::mark_registered(tx, "op", &passkey, "method-2", None).await.map(drop)
    };
    in_tx(&store, registered).await.unwrap();
    let again =
        in_tx(&store, async |tx| passkeys::discard_pending(tx, "op", &passkey, "x").await.map(drop)).await;
    assert!(matches!(again, Err(StoreError::Passkey(_))), "{again:?}");
    let missing = Passkey { id: PasskeyId::new(), ..passkey.clone() };
    let gone = in_tx(&store, async |tx| passkeys::revoke(tx, "op", &missing, "x").await.map(drop)).await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
    assert_eq!(passkeys::get(&store, passkey.id).await.unwrap().unwrap().state, PasskeyState::Registered);
    common::commit_key_promptly(&store, "SN-AFTER", "a failed transaction's lock").await;
    assert_eq!(audit::verify(&store).await.unwrap(), 6);
}

/// A read inside a transaction (here also the key read of `set_state`) sees the transaction's
/// earlier writes.
async fn a_read_in_a_transaction_sees_its_writes(store: Store) {
    let key = SecurityKey::new(Some("SN-B1".into()), Uuid::nil());
    let mut tx = store.begin().await.unwrap();
    keys::insert(&mut tx, "op", &key).await.unwrap();
    let (person, mut issuance) = person_with_issuance_in(&mut tx).await;
    issuance.security_key_id = Some(key.id);
    issuance.transition(IssuanceState::OptionsIssued).unwrap();
    issuances::transition(&mut tx, "op", IssuanceState::Requested, &issuance).await.unwrap();
    let row = Stmt::new("SELECT state FROM issuance WHERE id = $1")
        .bind(issuance.id.to_string())
        .fetch_one(&mut tx)
        .await
        .unwrap();
    assert_eq!(row.get("state").unwrap(), &Value::Text("options-issued".into()));
    let issued = keys::set_state(&mut tx, "op", key.id, keyward_core::KeyState::Issued).await.unwrap();
    assert_eq!(issued.state, keyward_core::KeyState::Issued);
    tx.commit().await.unwrap();
    assert_eq!(issuances::get(&store, issuance.id).await.unwrap().unwrap().security_key_id, Some(key.id));
    assert_eq!(passkeys::list_by_person(&store, person.id).await.unwrap().len(), 0);
    assert_eq!(audit::verify(&store).await.unwrap(), 5);
}

async fn person_with_issuance_in(tx: &mut Tx) -> (Person, Issuance) {
    let person = Person::new("Grace", "grace@contoso.example", PersonSource::Manual);
    let issuance = Issuance::new(person.id, "user:grace", Channel::SelfService, false);
    people::insert(tx, "op", &person).await.unwrap();
    issuances::create(tx, "op", &issuance).await.unwrap();
    (person, issuance)
}

/// Writes of a transaction dropped or rolled back leave nothing, and hold no lock.
async fn uncommitted_writes_are_dropped_with_the_transaction(store: Store) {
    let (person, _) = person_with_issuance(&store).await;
    let mut tx = store.begin().await.unwrap();
    let dropped = pending_passkey(&person, "Y3JlZC0z");
    passkeys::insert(&mut tx, "op", &dropped).await.unwrap();
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    let rolled_back = pending_passkey(&person, "Y3JlZC00");
    passkeys::insert(&mut tx, "op", &rolled_back).await.unwrap();
    tx.rollback().await.unwrap();
    common::commit_key_promptly(&store, "SN-AFTER", "a failed transaction's lock").await;
    assert!(passkeys::list_by_person(&store, person.id).await.unwrap().is_empty());
    assert_eq!(audit::verify(&store).await.unwrap(), 3);
}

/// A read beside an open transaction neither waits for it nor sees its writes; once it commits,
/// the next read sees them (on SQLite, reads borrow the writer's connection only while no
/// transaction holds it).
async fn reads_beside_a_transaction_see_only_committed_writes(store: Store) {
    let (person, _) = person_with_issuance(&store).await;
    let mut tx = store.begin().await.unwrap();
    passkeys::insert(&mut tx, "op", &pending_passkey(&person, "Y3JlZC01")).await.unwrap();
    let during =
        tokio::time::timeout(std::time::Duration::from_secs(2), passkeys::list_by_person(&store, person.id))
            .await
            .expect("a read must not wait for an open transaction")
            .unwrap();
    assert!(during.is_empty(), "uncommitted passkey visible: {during:?}");
    tx.commit().await.unwrap();
    assert_eq!(passkeys::list_by_person(&store, person.id).await.unwrap().len(), 1);
    assert_eq!(audit::verify(&store).await.unwrap(), 3);
}

on_both!(
    a_transaction_commits_every_write_and_event,
    a_duplicate_fails_the_whole_transaction,
    stale_moves_fail_with_the_actual_state,
    a_read_in_a_transaction_sees_its_writes,
    uncommitted_writes_are_dropped_with_the_transaction,
    reads_beside_a_transaction_see_only_committed_writes,
);

/// SQLite has one writer at a time: a writer that waits longer than the busy timeout for the one
/// before it (here the same task holds both, which would otherwise wait for ever) gets
/// `StoreError::Busy` — an error that says to retry — and the first transaction is unharmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_kept_waiting_gets_busy_instead_of_hanging_sqlite() {
    common::run("sqlite", a_writer_kept_waiting_gets_busy).await;
}

async fn a_writer_kept_waiting_gets_busy(store: Store) {
    let mut first = store.begin().await.unwrap();
    keys::insert(&mut first, "op", &SecurityKey::new(Some("SN-FIRST".into()), Uuid::nil())).await.unwrap();
    let second = async {
        let mut tx = store.begin().await?;
        keys::insert(&mut tx, "op", &SecurityKey::new(Some("SN-SECOND".into()), Uuid::nil())).await?;
        tx.commit().await
    };
    let waited = tokio::time::timeout(std::time::Duration::from_secs(15), second)
        .await
        .expect("the second writer must give up, not hang");
    match waited {
        Err(e @ StoreError::Busy(_)) => assert!(e.to_string().contains("retry"), "{e}"),
        other => panic!("expected Busy, got {other:?}"),
    }
    first.commit().await.unwrap();
    assert!(keys::get_by_serial(&store, "SN-FIRST").await.unwrap().is_some());
    assert!(keys::get_by_serial(&store, "SN-SECOND").await.unwrap().is_none());
    common::commit_key_promptly(&store, "SN-AFTER", "a writer that gave up").await;
}

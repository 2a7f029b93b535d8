//! The repositories on both backends: people (sync upsert, look-ups, search, paging, links,
//! leavers), keys, passkeys, issuances (optimistic transitions), enrollment policies, and the
//! keyset paging of every list.

mod common;

use keyward_core::issuance::hash_collection_code;
use keyward_core::{
    Channel, EnrollmentMode, EnrollmentPolicy, ExternalRefSlot, Issuance, IssuanceId, IssuanceState,
    KeyState, LinkMethod, Passkey, PasskeyId, PasskeyOrigin, PasskeyState, Person, PersonId, PersonSource,
    PinRules, PolicyId, SecurityKey,
};
use keyward_store::audit::{self, AuditFilter};
use keyward_store::people::{EntraUser, Upserted};
use keyward_store::{Store, StoreError, issuances, keys, passkeys, people, policies};
use secrecy::SecretString;
use time::OffsetDateTime;
use uuid::Uuid;

const OID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

fn entra_user(oid: &str, upn: &str) -> EntraUser {
    EntraUser {
        object_id: oid.into(),
        upn: upn.into(),
        display_name: "Grace Hopper".into(),
        enabled: true,
        groups: vec!["staff".into()],
    }
}

async fn commit<T>(store: &Store, f: impl AsyncFnOnce(&mut keyward_store::Tx) -> T) -> T {
    let mut tx = store.begin().await.unwrap();
    let out = f(&mut tx).await;
    tx.commit().await.unwrap();
    out
}

async fn people_sync_links_and_leavers(store: Store) {
    let slot = ExternalRefSlot::new(3).unwrap();
    // A person created by hand is linked by UPN when the sync finds them (case-insensitive).
    let manual = Person::new("G. Hopper", "Grace@Contoso.example", PersonSource::Manual);
    commit(&store, async |tx| people::insert(tx, "op", &manual).await.unwrap()).await;
    let (p, what) = commit(&store, async |tx| {
        people::upsert_from_entra(tx, "sync", slot, &entra_user(OID, "grace@contoso.example")).await
    })
    .await
    .unwrap();
    assert_eq!((what, p.id, p.link_method), (Upserted::Updated, manual.id, Some(LinkMethod::Upn)));
    assert_eq!(p.entra_object_id(slot), Some(OID));
    // Same data again: nothing to do, no audit event.
    let before = audit::list(&store, &AuditFilter::default()).await.unwrap().len();
    let (_, what) = commit(&store, async |tx| {
        people::upsert_from_entra(tx, "sync", slot, &entra_user(OID, "grace@contoso.example")).await
    })
    .await
    .unwrap();
    assert_eq!(what, Upserted::Unchanged);
    assert_eq!(audit::list(&store, &AuditFilter::default()).await.unwrap().len(), before);
    // A renamed UPN is followed through the object id.
    let (p2, what) = commit(&store, async |tx| {
        people::upsert_from_entra(tx, "sync", slot, &entra_user(OID, "grace.h@contoso.example")).await
    })
    .await
    .unwrap();
    assert_eq!((what, p2.id, p2.upn.as_str()), (Upserted::Updated, p.id, "grace.h@contoso.example"));
    // A new Entra user is created and linked by object id.
    let oid2 = Uuid::new_v4().to_string();
    let (newp, what) = commit(&store, async |tx| {
        people::upsert_from_entra(tx, "sync", slot, &entra_user(&oid2, "alan@contoso.example")).await
    })
    .await
    .unwrap();
    assert_eq!(
        (what, newp.link_method, newp.source),
        (Upserted::Created, Some(LinkMethod::ObjectId), PersonSource::Entra)
    );

    // Look-ups.
    assert_eq!(people::get(&store, p.id).await.unwrap().unwrap().upn, "grace.h@contoso.example");
    assert_eq!(people::get_by_upn(&store, "GRACE.H@contoso.example").await.unwrap().unwrap().id, p.id);
    assert_eq!(people::get_by_object_id(&store, slot, &OID.to_uppercase()).await.unwrap().unwrap().id, p.id);
    assert!(people::get_by_object_id(&store, ExternalRefSlot::FIRST, OID).await.unwrap().is_none());
    assert_eq!(people::get(&store, p.id).await.unwrap().unwrap().groups, ["staff"]);

    // Search (wildcards in the query are literal) and paging.
    for i in 0..5 {
        let q = Person::new(format!("Tester {i}"), format!("t{i}_x@contoso.example"), PersonSource::Import);
        commit(&store, async |tx| people::insert(tx, "import", &q).await.unwrap()).await;
    }
    assert_eq!(people::list(&store, Some("TESTER"), None, 50).await.unwrap().len(), 5);
    assert_eq!(people::list(&store, Some("3_x"), None, 50).await.unwrap().len(), 1);
    assert_eq!(people::list(&store, Some("%"), None, 50).await.unwrap().len(), 0);
    let page1 = people::list(&store, None, None, 4).await.unwrap();
    let page2 = people::list(&store, None, Some(&page1[3].upn), 4).await.unwrap();
    assert_eq!((page1.len(), page2.len()), (4, 3));
    assert_eq!(page1[0].upn, "alan@contoso.example");
    assert_eq!(people::count(&store).await.unwrap(), 7);
    let linked: Vec<_> =
        people::list_linked(&store, slot).await.unwrap().into_iter().map(|p| p.upn).collect();
    assert_eq!(linked, ["alan@contoso.example", "grace.h@contoso.example"]);
    assert!(people::list_linked(&store, ExternalRefSlot::FIRST).await.unwrap().is_empty());
    let dup = Person::new("X", "ALAN@contoso.example", PersonSource::Manual);
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(people::insert(&mut tx, "op", &dup).await, Err(StoreError::Duplicate(_))));
    drop(tx);

    // Manual link, disable, leaver.
    let other = Uuid::new_v4().to_string();
    let link = people::Link {
        object_id: &other,
        method: LinkMethod::ObjectId,
        previous: None,
        entra_upn: "x@contoso.example",
        upn_override: false,
    };
    let linked =
        commit(&store, async |tx| people::set_link(tx, "op", page1[1].id, slot, &link).await).await.unwrap();
    assert_eq!(linked.entra_object_id(slot), Some(other.as_str()));
    // One Entra account, one person: a second link to the same object id is refused.
    let mut tx = store.begin().await.unwrap();
    let twice = people::set_link(&mut tx, "op", page1[0].id, slot, &link).await;
    assert!(matches!(&twice, Err(StoreError::Duplicate(what)) if what.contains(&other)), "{twice:?}");
    drop(tx);
    commit(&store, async |tx| people::set_enabled(tx, "sync", p.id, false).await.unwrap()).await;
    assert!(!people::get(&store, p.id).await.unwrap().unwrap().enabled);
    commit(&store, async |tx| people::mark_deleted(tx, "sync", newp.id).await.unwrap()).await;
    let gone = people::get(&store, newp.id).await.unwrap().unwrap();
    assert!(gone.deleted_in_entra && !gone.enabled);
    assert!(gone.issuable_object_id(slot).is_err());
    let actions: Vec<String> = audit::list(
        &store,
        &AuditFilter { subject: Some(format!("person:{}", newp.id)), ..Default::default() },
    )
    .await
    .unwrap()
    .into_iter()
    .map(|e| e.action)
    .collect();
    assert_eq!(actions, ["person.create", "person.deleted-in-entra"]);
    assert_eq!(
        audit::verify(&store).await.unwrap() as usize,
        audit::list(&store, &AuditFilter { limit: Some(1000), ..Default::default() }).await.unwrap().len()
    );
}

async fn keys_and_passkeys_lifecycle(store: Store) {
    let person = Person::new("Ada", "ada@contoso.example", PersonSource::Manual);
    commit(&store, async |tx| people::insert(tx, "op", &person).await.unwrap()).await;
    let aaguid = Uuid::parse_str("cb69481e-8ff7-4039-93ec-0a2729a154a8").unwrap();
    let mut key = SecurityKey::new(Some("YK-0001".into()), aaguid);
    key.model = Some("YubiKey 5 NFC".into());
    commit(&store, async |tx| keys::insert(tx, "op", &key).await.unwrap()).await;
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        keys::insert(&mut tx, "op", &SecurityKey::new(Some("YK-0001".into()), aaguid)).await,
        Err(StoreError::Duplicate(_))
    ));
    drop(tx);
    assert_eq!(keys::get_by_serial(&store, "YK-0001").await.unwrap().unwrap(), key);

    let pk = Passkey {
        id: PasskeyId::new(),
        entra_method_id: None,
        credential_id: "Y3JlZC0x".into(),
        person_id: person.id,
        security_key_id: Some(key.id),
        aaguid,
        model: key.model.clone(),
        display_name: "YubiKey 5 NFC (YK-0001)".into(),
        created_at: OffsetDateTime::now_utc(),
        state: PasskeyState::Pending,
        origin: PasskeyOrigin::Managed,
    };
    commit(&store, async |tx| {
        passkeys::insert(tx, "op", &pk).await.unwrap();
        keys::set_state(tx, "op", key.id, KeyState::Issued).await.unwrap();
    })
    .await;
    let reg = commit(&store, async |tx| {
        passkeys::mark_registered(tx, "op", &pk, "method-123", Some("Entra's model name")).await
    })
    .await
    .unwrap();
    assert_eq!((reg.state, reg.entra_method_id.as_deref()), (PasskeyState::Registered, Some("method-123")));
    assert_eq!(reg.model.as_deref(), Some("Entra's model name"), "Entra's model name is recorded");
    // What the move returns is what is stored (it is built, not read back).
    assert_eq!(passkeys::get(&store, pk.id).await.unwrap().unwrap(), reg);
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        passkeys::mark_registered(&mut tx, "op", &Passkey { id: PasskeyId::new(), ..pk.clone() }, "m", None)
            .await,
        Err(StoreError::NotFound(_))
    ));
    drop(tx);
    let found = passkeys::find_by_credential_id(&store, "Y3JlZC0x").await.unwrap().unwrap();
    assert_eq!((found.id, found.state), (pk.id, PasskeyState::Registered));
    assert_eq!(passkeys::list_by_person(&store, person.id).await.unwrap().len(), 1);
    assert_eq!(passkeys::list_by_key(&store, key.id).await.unwrap()[0].id, pk.id);
    assert_eq!(keys::list(&store, Some(KeyState::Issued), None, 100).await.unwrap().len(), 1);
    assert!(keys::list(&store, Some(KeyState::Available), None, 100).await.unwrap().is_empty());

    // Key reported lost → passkey revoked; neither can go back.
    commit(&store, async |tx| {
        keys::set_state(tx, "helpdesk", key.id, KeyState::Lost).await.unwrap();
        passkeys::revoke(tx, "helpdesk", &reg, "key lost").await.unwrap();
    })
    .await;
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        keys::set_state(&mut tx, "op", key.id, KeyState::Issued).await,
        Err(StoreError::Key(_))
    ));
    assert!(matches!(passkeys::revoke(&mut tx, "op", &reg, "again").await, Err(StoreError::Passkey(_))));
    drop(tx);
    let stored = keys::get(&store, key.id).await.unwrap().unwrap();
    assert_eq!(stored.state, KeyState::Lost);

    // A pending passkey whose registration never reached Entra is discarded; a registered one is not.
    let mut pending = pk.clone();
    pending.id = PasskeyId::new();
    pending.credential_id = "Y3JlZC0y".into();
    pending.security_key_id = None;
    commit(&store, async |tx| passkeys::insert(tx, "op", &pending).await.unwrap()).await;
    let gone =
        commit(&store, async |tx| passkeys::discard_pending(tx, "op", &pending, "challenge expired").await)
            .await
            .unwrap();
    assert_eq!(gone.state, PasskeyState::Revoked);
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(passkeys::discard_pending(&mut tx, "op", &reg, "x").await, Err(StoreError::Passkey(_))));
    drop(tx);
    assert_eq!(passkeys::list(&store, Default::default(), None, 100).await.unwrap().len(), 2);
    assert!(stored.ensure_issuable().is_err());
    assert_eq!(passkeys::get(&store, pk.id).await.unwrap().unwrap().state, PasskeyState::Revoked);
    audit::verify(&store).await.unwrap();
}

async fn issuance_transitions_are_optimistic(store: Store) {
    let person = Person::new("Ada", "ada@contoso.example", PersonSource::Manual);
    commit(&store, async |tx| people::insert(tx, "op", &person).await.unwrap()).await;
    let mut iss = Issuance::new(person.id, "user:ada", Channel::SelfService, true);
    iss.collection_code_hash = Some(hash_collection_code(&SecretString::from("K7Q2-9XPA")));
    commit(&store, async |tx| issuances::create(tx, "user:ada", &iss).await.unwrap()).await;
    let found = issuances::find_by_collection_code_hash(
        &store,
        &hash_collection_code(&SecretString::from("K7Q2-9XPA")),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(found.id, iss.id);

    // Two operators approve at once from the same read: one wins, the other is told to reload.
    let mut a = found.clone();
    a.approve("op-a").unwrap();
    let mut b = found.clone();
    b.approve("op-b").unwrap();
    commit(&store, async |tx| issuances::transition(tx, "op-a", IssuanceState::Requested, &a).await.unwrap())
        .await;
    let mut tx = store.begin().await.unwrap();
    match issuances::transition(&mut tx, "op-b", IssuanceState::Requested, &b).await {
        Err(StoreError::StaleIssuance { expected, actual, .. }) => {
            assert_eq!((expected, actual), (IssuanceState::Requested, IssuanceState::Approved))
        }
        other => panic!("expected a stale issuance, got {other:?}"),
    }
    drop(tx);
    let mut cur = issuances::get(&store, iss.id).await.unwrap().unwrap();
    assert_eq!(cur.approved_by.as_deref(), Some("op-a"));

    // An illegal move is refused even if the caller built it by hand.
    let mut forged = cur.clone();
    forged.state = IssuanceState::Registered;
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        issuances::transition(&mut tx, "op", IssuanceState::Approved, &forged).await,
        Err(StoreError::Issuance(_))
    ));
    drop(tx);

    cur.transition(IssuanceState::OptionsIssued).unwrap();
    cur.challenge_expires_at = Some(OffsetDateTime::now_utc() + time::Duration::minutes(5));
    assert_eq!(issuances::get(&store, iss.id).await.unwrap().unwrap().challenge, None);
    cur.challenge = Some("dGhlLWNoYWxsZW5nZQ".into());
    commit(&store, async |tx| {
        issuances::transition(tx, "user:ada", IssuanceState::Approved, &cur).await.unwrap();
    })
    .await;
    assert_eq!(
        issuances::get(&store, iss.id).await.unwrap().unwrap().challenge.as_deref(),
        Some("dGhlLWNoYWxsZW5nZQ")
    );
    cur.fail("Entra rejected the attestation").unwrap();
    commit(&store, async |tx| {
        issuances::transition(tx, "system", IssuanceState::OptionsIssued, &cur).await.unwrap()
    })
    .await;
    let stored = issuances::get(&store, iss.id).await.unwrap().unwrap();
    assert_eq!(stored.state, IssuanceState::Failed);
    // The joined read gives the same issuance and its person (every issuance step reads both).
    let (joined, owner) = issuances::get_with_person(&store, iss.id).await.unwrap().unwrap();
    assert_eq!((joined.state, joined.challenge.clone()), (stored.state, stored.challenge.clone()));
    assert_eq!(
        (owner.id, owner.upn.as_str(), owner.groups.clone()),
        (person.id, "ada@contoso.example", person.groups.clone())
    );
    assert!(issuances::get_with_person(&store, IssuanceId::new()).await.unwrap().is_none());
    assert_eq!(stored.failure_reason.as_deref(), Some("Entra rejected the attestation"));
    assert_eq!(
        stored.challenge_expires_at.map(|t| t.unix_timestamp()),
        cur.challenge_expires_at.map(|t| t.unix_timestamp())
    );
    assert_eq!(issuances::list(&store, Some(person.id), None, None, 10).await.unwrap().len(), 1);
    assert_eq!(issuances::list(&store, None, Some(IssuanceState::Failed), None, 10).await.unwrap().len(), 1);
    assert!(
        issuances::list(&store, None, Some(IssuanceState::Requested), None, 10).await.unwrap().is_empty()
    );
    let actions: Vec<String> = audit::list(
        &store,
        &AuditFilter { subject: Some(format!("issuance:{}", iss.id)), ..Default::default() },
    )
    .await
    .unwrap()
    .into_iter()
    .map(|e| e.action)
    .collect();
    assert_eq!(
        actions,
        ["issuance.create", "issuance.approved", "issuance.options-issued", "issuance.failed"]
    );
}

async fn enrollment_policies_per_group(store: Store) {
    let p1 = EnrollmentPolicy {
        id: PolicyId::new(),
        group: "staff".into(),
        mode: EnrollmentMode::Optional,
        pin: PinRules { min_length: 6, force_change: false },
        allowed_aaguids: vec![Uuid::from_u128(1), Uuid::from_u128(2)],
        max_passkeys_per_person: Some(2),
    };
    let mut p2 = p1.clone();
    p2.id = PolicyId::new();
    p2.group = "admins".into();
    p2.mode = EnrollmentMode::Mandatory;
    p2.pin = PinRules { min_length: 8, force_change: true };
    p2.allowed_aaguids = vec![];
    p2.max_passkeys_per_person = None;
    commit(&store, async |tx| {
        policies::upsert(tx, "admin", &p1).await.unwrap();
        policies::upsert(tx, "admin", &p2).await.unwrap();
    })
    .await;
    assert_eq!(policies::get(&store, "staff").await.unwrap().unwrap(), p1);
    assert_eq!(policies::get_by_id(&store, p2.id).await.unwrap().unwrap(), p2);
    // Setting a group's policy again replaces it.
    let mut p1b = p1.clone();
    p1b.pin.min_length = 10;
    commit(&store, async |tx| policies::upsert(tx, "admin", &p1b).await.unwrap()).await;
    let all = policies::list(&store, None, 100).await.unwrap();
    assert_eq!(all.len(), 2);
    let eff = EnrollmentPolicy::effective(&all, &["staff".into(), "admins".into()]).unwrap();
    assert_eq!((eff.mode, eff.pin.min_length, eff.pin.force_change), (EnrollmentMode::Mandatory, 10, true));
    assert_eq!(eff.max_passkeys_per_person, Some(2));
    assert!(commit(&store, async |tx| policies::delete(tx, "admin", "admins").await.unwrap()).await);
    assert!(!commit(&store, async |tx| policies::delete(tx, "admin", "admins").await.unwrap()).await);
    assert_eq!(policies::list(&store, None, 100).await.unwrap().len(), 1);
}

async fn lists_page_by_keyset_with_filters_in_sql(store: Store) {
    let person = Person::new("Ada", "ada@contoso.example", PersonSource::Manual);
    commit(&store, async |tx| people::insert(tx, "op", &person).await.unwrap()).await;
    let aaguid = Uuid::parse_str("cb69481e-8ff7-4039-93ec-0a2729a154a8").unwrap();
    // Keys: serial order, keys without a serial first, ties broken by id; two a page.
    for serial in [Some("K-3"), None, Some("K-1"), None, Some("K-2")] {
        let key = SecurityKey::new(serial.map(str::to_owned), aaguid);
        commit(&store, async |tx| keys::insert(tx, "op", &key).await.unwrap()).await;
    }
    let mut keys_seen: Vec<SecurityKey> = Vec::new();
    loop {
        let last = keys_seen.last().map(|k| (k.serial.clone().unwrap_or_default(), k.id));
        let page = keys::list(&store, None, last.as_ref().map(|(s, id)| (s.as_str(), *id)), 2).await.unwrap();
        let full = page.len() == 2;
        keys_seen.extend(page);
        if !full {
            break;
        }
    }
    let shown: Vec<_> = keys_seen.iter().map(|k| k.serial.as_deref()).collect();
    assert_eq!(shown, [None, None, Some("K-1"), Some("K-2"), Some("K-3")]);
    assert!(keys_seen[0].id.to_string() < keys_seen[1].id.to_string());

    // Passkeys: oldest first, four with the same creation time; the state filter is SQL's.
    let at = OffsetDateTime::now_utc();
    for i in 0..7 {
        let pk = Passkey {
            id: PasskeyId::new(),
            entra_method_id: None,
            credential_id: format!("cred-{i}"),
            person_id: person.id,
            security_key_id: None,
            aaguid,
            model: None,
            display_name: format!("key {i}"),
            created_at: if i < 4 { at } else { at + time::Duration::seconds(i) },
            state: if i % 2 == 0 { PasskeyState::Pending } else { PasskeyState::Registered },
            origin: PasskeyOrigin::Managed,
        };
        commit(&store, async |tx| passkeys::insert(tx, "op", &pk).await.unwrap()).await;
    }
    for (filter, expected) in [
        (passkeys::PasskeyFilter::default(), 7),
        (passkeys::PasskeyFilter { state: Some(PasskeyState::Pending), ..Default::default() }, 4),
        (passkeys::PasskeyFilter { person: Some(PersonId::new()), ..Default::default() }, 0),
    ] {
        let mut seen: Vec<Passkey> = Vec::new();
        loop {
            let last = seen.last().map(|p| (keyward_store::to_micros(p.created_at), p.id));
            let page = passkeys::list(&store, filter, last, 3).await.unwrap();
            let full = page.len() == 3;
            seen.extend(page);
            if !full {
                break;
            }
        }
        assert_eq!(seen.len(), expected, "{filter:?}: every passkey exactly once");
        assert!(filter.state.is_none_or(|st| seen.iter().all(|p| p.state == st)));
        let order: Vec<_> =
            seen.iter().map(|p| (keyward_store::to_micros(p.created_at), p.id.to_string())).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "oldest first, ties by id: {order:?}");
    }

    // Issuances: newest first, two a page.
    for _ in 0..5 {
        let iss = Issuance::new(person.id, "op", Channel::Operator, false);
        commit(&store, async |tx| issuances::create(tx, "op", &iss).await.unwrap()).await;
    }
    let mut seen: Vec<Issuance> = Vec::new();
    loop {
        let last = seen.last().map(|i| (keyward_store::to_micros(i.created_at), i.id));
        let page = issuances::list(&store, None, None, last, 2).await.unwrap();
        let full = page.len() == 2;
        seen.extend(page);
        if !full {
            break;
        }
    }
    assert_eq!(seen.len(), 5);
    let order: Vec<_> =
        seen.iter().map(|i| (keyward_store::to_micros(i.created_at), i.id.to_string())).collect();
    assert!(order.windows(2).all(|w| w[0] > w[1]), "newest first: {order:?}");
}

on_both!(
    lists_page_by_keyset_with_filters_in_sql,
    people_sync_links_and_leavers,
    keys_and_passkeys_lifecycle,
    issuance_transitions_are_optimistic,
    enrollment_policies_per_group,
);

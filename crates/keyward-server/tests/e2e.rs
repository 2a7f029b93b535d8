//! Issuance end to end over loopback HTTP: `keyward sim`, the server (SQLite, then PostgreSQL)
//! and our CTAP client on the soft key, driven through the Core API as the operator tool does.
//! The passkey shows up in the emulated Entra with its AAGUID and model; revoking the key deletes
//! it there; the audit chain verifies, and stops verifying once a row is altered.

use keyward_core::Role;
use keyward_testkit::stack::*;
use serde_json::json;

async fn issuance_end_to_end(backend: Backend) {
    let stack = Stack::start(if backend == Backend::Sqlite {
        StackOptions::sqlite()
    } else {
        StackOptions::postgres()
    })
    .await;
    let (status, report) = stack.call(Role::Operator, "POST", "/api/v1/people/sync", Some(json!({}))).await;
    assert_eq!(status, 200, "{report}");
    assert!(report["created"].as_u64().unwrap() >= 4, "{report}");

    let mut desk = stack.soft_key();
    let (status, done) = provision(&stack, &mut desk, ADELE_UPN, "SK-0001").await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["issuance"]["state"], "registered");
    assert_eq!(done["passkey"]["state"], "registered");

    // Visible in Entra with the AAGUID and the model.
    let methods = stack.sim_methods(ADELE);
    assert_eq!(methods.len(), 1, "{methods:?}");
    assert_eq!(methods[0]["aaGuid"], uuid::Uuid::from_bytes(AAGUID).to_string());
    assert_eq!(methods[0]["model"], MODEL);
    // The serial, then Keyward's marker (how it finds its own passkey after a lost answer).
    assert!(methods[0]["displayName"].as_str().unwrap().contains("(SK-0001) #"), "{methods:?}");
    assert_eq!(done["passkey"]["entra_method_id"], methods[0]["id"]);

    // The person shows the key and the passkey.
    let (status, person) =
        stack.call(Role::Helpdesk, "GET", &format!("/api/v1/people/{ADELE_UPN}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(person["keys"][0]["serial"], "SK-0001");
    assert_eq!(person["keys"][0]["state"], "issued");
    assert_eq!(person["passkeys"][0]["origin"], "managed");

    // Reporting the key lost revokes its passkey in Entra.
    let (status, lost) = stack
        .call(Role::Operator, "POST", "/api/v1/keys/SK-0001/state", Some(json!({"state": "lost"})))
        .await;
    assert_eq!(status, 200, "{lost}");
    assert_eq!(lost["revoked"], 1);
    assert!(stack.sim_methods(ADELE).is_empty(), "the passkey is still in Entra");
    let (_, person) = stack.call(Role::Helpdesk, "GET", &format!("/api/v1/people/{ADELE_UPN}"), None).await;
    assert_eq!(person["passkeys"][0]["state"], "revoked");

    // A lost key is refused at issuance.
    let (status, refused) = stack
        .call(
            Role::Operator,
            "POST",
            "/api/v1/issuances",
            Some(json!({"person": ADELE_UPN, "serial": "SK-0001"})),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("lost"), "{refused}");

    // The audit chain verifies; altering one row breaks it, and the break is named.
    let (status, chain) = stack.call(Role::Auditor, "GET", "/api/v1/audit/verify", None).await;
    assert_eq!(status, 200);
    assert_eq!(chain["ok"], true, "{chain}");
    assert!(chain["events"].as_u64().unwrap() > 10, "{chain}");
    sqlx::query("UPDATE audit_event SET actor = 'someone-else' WHERE seq = 5")
        .execute(stack.service.store.pool())
        .await
        .unwrap();
    let (_, chain) = stack.call(Role::Auditor, "GET", "/api/v1/audit/verify", None).await;
    assert_eq!(chain["ok"], false, "{chain}");
    assert!(chain["problem"].as_str().unwrap().contains("event #5"), "{chain}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuance_end_to_end_on_sqlite() {
    issuance_end_to_end(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuance_end_to_end_on_postgres() {
    issuance_end_to_end(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leavers_lose_their_passkeys_and_reconcile_settles_differences() {
    let stack = Stack::start(StackOptions::sqlite()).await;
    stack.call(Role::Admin, "POST", "/api/v1/people/sync", Some(json!({}))).await;
    let mut desk = stack.soft_key();
    let alex = "alex.wilber@contoso.onmicrosoft.com";
    let alex_id = "4f1b7e96-d051-4c23-a6fa-5b7a9c1d3e45";
    for (who, serial) in [(ADELE_UPN, "SK-A"), (alex, "SK-B")] {
        let (status, done) = provision(&stack, &mut desk, who, serial).await;
        assert_eq!(status, 200, "{done}");
    }

    // A passkey registered in Entra behind Keyward's back is discovered; one deleted in Entra is
    // marked revoked.
    let foreign = stack.sim_methods(ADELE)[0].clone();
    stack.sim.sim.write(|t| {
        let mut copy = t.fido2_methods[ADELE][0].clone();
        copy.method.id = "foreign-method-id".into();
        copy.method.display_name = Some("Someone else's key".into());
        copy.credential_id = "Zm9yZWlnbg".into();
        t.fido2_methods.get_mut(ADELE).unwrap().push(copy);
        t.fido2_methods.get_mut(alex_id).unwrap().clear();
    });
    let (status, report) =
        stack.call(Role::Operator, "POST", "/api/v1/jobs/reconcile", Some(json!({}))).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!((report["discovered"].as_u64(), report["revoked"].as_u64()), (Some(1), Some(1)), "{report}");
    let (_, again) = stack.call(Role::Operator, "POST", "/api/v1/jobs/reconcile", Some(json!({}))).await;
    assert_eq!((again["discovered"].as_u64(), again["revoked"].as_u64()), (Some(0), Some(0)), "{again}");
    let (_, unmanaged) = stack.call(Role::Auditor, "GET", "/api/v1/passkeys?origin=discovered", None).await;
    let unmanaged = unmanaged["items"].clone();
    assert_eq!(unmanaged.as_array().unwrap().len(), 1, "{unmanaged}");
    assert_ne!(foreign["id"], "foreign-method-id");

    // Adele leaves: disabled in Entra. The next sync marks her disabled and revokes her passkeys.
    stack.sim.sim.write(|t| t.users.iter_mut().find(|u| u.id == ADELE).unwrap().account_enabled = false);
    let (status, report) = stack.call(Role::Operator, "POST", "/api/v1/people/sync", Some(json!({}))).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["revoked"], 2, "the managed and the discovered passkey: {report}");
    assert!(stack.sim_methods(ADELE).is_empty());
    let (_, person) = stack.call(Role::Helpdesk, "GET", &format!("/api/v1/people/{ADELE_UPN}"), None).await;
    assert_eq!(person["person"]["enabled"], false);
    let (_, events) = stack.call(Role::Auditor, "GET", "/api/v1/audit?limit=1000", None).await;
    let events = events["items"].clone();
    assert!(events.as_array().unwrap().iter().any(|e| e["action"] == "passkey.revoke"), "{events}");
}

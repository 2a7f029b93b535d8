//! An approval means what it says: each attack of the "trust" issue, reproduced over the Core API
//! against the emulator and shown refused.
//!
//! - an issuance approved for one Entra account cannot go to another after a relink;
//! - a person cannot be linked to another person's account (nor two people to one account);
//! - a relink while passkeys or open issuances exist needs an admin who revokes them first;
//! - protected people (directory administrators) get a TAP or a passkey only from an admin, and
//!   with approval on, only with a second admin's approval;
//! - helpdesk TAPs are single-use and short.

use keyward_core::{LinkMethod, Role};
use keyward_testkit::seed::{ALEX, ALEX_UPN};
use keyward_testkit::stack::*;
use serde_json::{Value, json};

/// Adele's second account: an Entra user whose UPN is not Adele's.
const ADELE_TWO: &str = "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d";
const ADELE_TWO_UPN: &str = "adele.two@contoso.onmicrosoft.com";
/// A Global Administrator.
const ROOT: &str = "0a9b8c7d-6e5f-4d3c-8b2a-1f0e9d8c7b6a";
const ROOT_UPN: &str = "root.admin@contoso.onmicrosoft.com";

async fn stack(approval: bool) -> Stack {
    Stack::start(StackOptions {
        seed: Box::new(|seed| {
            let user = |id: &str, upn: &str, name: &str, roles: &[&str]| keyward_sim::seed::SeedUser {
                id: id.into(),
                user_principal_name: upn.into(),
                display_name: name.into(),
                directory_roles: roles.iter().map(|r| r.to_string()).collect(),
                ..keyward_testkit::seed::numbered_user(0)
            };
            seed.users.push(user(ADELE_TWO, ADELE_TWO_UPN, "Adele Two", &[]));
            seed.users.push(user(ROOT, ROOT_UPN, "Root Admin", &["Global Administrator"]));
        }),
        server: Box::new(move |config| config.approval_required = approval),
        ..StackOptions::sqlite()
    })
    .await
}

async fn sync(stack: &Stack, group: Option<&str>) {
    let body = match group {
        Some(g) => json!({"group": g}),
        None => json!({}),
    };
    let (status, report) = stack.call(Role::Operator, "POST", "/api/v1/people/sync", Some(body)).await;
    assert_eq!(status, 200, "{report}");
}

fn message(body: &Value) -> String {
    body["error"]["message"].as_str().unwrap_or_default().to_owned()
}

async fn link(stack: &Stack, role: Role, who: &str, body: Value) -> (u16, Value) {
    stack.call(role, "PUT", &format!("/api/v1/people/{who}/link"), Some(body)).await
}

#[tokio::test]
async fn an_approved_issuance_cannot_follow_a_relink_to_another_account() {
    let stack = stack(true).await;
    sync(&stack, Some("Finance")).await; // Adele only: her second account stays unlinked.
    let (status, issuance) =
        stack.call(Role::Operator, "POST", "/api/v1/issuances", Some(json!({"person": ADELE_UPN}))).await;
    assert_eq!(status, 201, "{issuance}");
    assert_eq!(issuance["entra_object_id"], ADELE, "the issuance names the account");
    assert_eq!(issuance["entra_upn"], ADELE_UPN);
    let id = issuance["id"].as_str().unwrap().to_owned();
    let (status, approved) =
        stack.call(Role::Admin, "POST", &format!("/api/v1/issuances/{id}/approve"), None).await;
    assert_eq!(status, 200, "{approved}");

    // The attack as first seen: the link changes under the approved issuance (here straight in
    // the database, as any path that changes a link would). Options and completion refuse.
    let person = keyward_store::people::get_by_upn(&stack.service.store, ADELE_UPN).await.unwrap().unwrap();
    let relink = keyward_store::people::Link {
        object_id: ADELE_TWO,
        method: LinkMethod::ObjectId,
        previous: Some(ADELE),
        entra_upn: ADELE_TWO_UPN,
        upn_override: true,
    };
    let mut tx = stack.service.store.begin().await.unwrap();
    keyward_store::people::set_link(&mut tx, "test", person.id, stack.service.slot, &relink).await.unwrap();
    tx.commit().await.unwrap();
    let (status, refused) =
        stack.call(Role::Operator, "POST", &format!("/api/v1/issuances/{id}/options"), None).await;
    assert_eq!(status, 409, "{refused}");
    assert!(message(&refused).contains(ADELE) && message(&refused).contains(ADELE_TWO), "{refused}");
    assert!(stack.sim_methods(ADELE_TWO).is_empty());
    // Put the link back: the issuance proceeds for the account it was approved for.
    let back = keyward_store::people::Link { object_id: ADELE, previous: Some(ADELE_TWO), ..relink };
    let mut tx = stack.service.store.begin().await.unwrap();
    keyward_store::people::set_link(&mut tx, "test", person.id, stack.service.slot, &back).await.unwrap();
    tx.commit().await.unwrap();
    let (status, options) =
        stack.call(Role::Operator, "POST", &format!("/api/v1/issuances/{id}/options"), None).await;
    assert_eq!(status, 200, "{options}");

    // Through the API, a relink is refused while the issuance is open…
    let (status, refused) = link(&stack, Role::Helpdesk, ADELE_UPN, json!({"object_id": ADELE_TWO})).await;
    assert_eq!(status, 422, "another person's account is refused: {refused}");
    assert!(message(&refused).contains("not as adele.vance"), "{refused}");
    let override_body = json!({"object_id": ADELE_TWO, "allow_other_upn": true});
    let (status, refused) = link(&stack, Role::Helpdesk, ADELE_UPN, override_body.clone()).await;
    assert_eq!(status, 403, "only an admin overrides: {refused}");
    let (status, refused) = link(&stack, Role::Admin, ADELE_UPN, override_body).await;
    assert_eq!(status, 409, "open issuances block a relink: {refused}");
    assert!(message(&refused).contains("revoke_existing"), "{refused}");

    // …and an admin who asks for it gets the issuance cancelled first, all of it audited.
    let body = json!({"object_id": ADELE_TWO, "allow_other_upn": true, "revoke_existing": true});
    let (status, linked) = link(&stack, Role::Admin, ADELE_UPN, body).await;
    assert_eq!(status, 200, "{linked}");
    assert_eq!(linked["entra_object_id"], ADELE_TWO);
    let (_, issuance) = stack.call(Role::Operator, "GET", &format!("/api/v1/issuances/{id}"), None).await;
    assert_eq!(issuance["state"], "cancelled");
    let (_, events) =
        stack.call(Role::Auditor, "GET", &format!("/api/v1/audit?subject=person:{}", person.id), None).await;
    let relinked = events["items"].as_array().unwrap().iter().find(|e| e["action"] == "person.relink");
    let detail: Value =
        serde_json::from_str(relinked.expect("a relink event")["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["previous_object_id"], ADELE);
    assert_eq!(detail["upn_override"], true);
}

#[tokio::test]
async fn a_person_is_linked_to_their_own_account_and_one_account_to_one_person() {
    let stack = stack(false).await;
    sync(&stack, None).await;
    // Another person's UPN is refused for an operator…
    let (status, refused) = link(&stack, Role::Operator, ADELE_UPN, json!({"upn": ALEX_UPN})).await;
    assert_eq!(status, 422, "{refused}");
    // …and for an admin who overrides, because Alex already holds that account.
    let body = json!({"upn": ALEX_UPN, "allow_other_upn": true});
    let (status, refused) = link(&stack, Role::Admin, ADELE_UPN, body).await;
    assert_eq!(status, 409, "{refused}");
    assert!(message(&refused).contains(ALEX_UPN), "{refused}");
    // An object id that Entra does not know is refused before it is stored.
    let unknown = "11111111-2222-4333-8444-555555555555";
    let (status, refused) = link(&stack, Role::Operator, ADELE_UPN, json!({"object_id": unknown})).await;
    assert_eq!(status, 404, "{refused}");
    // Linking to the account one already has changes nothing.
    let (status, same) = link(&stack, Role::Operator, ADELE_UPN, json!({"object_id": ADELE})).await;
    assert_eq!(status, 200, "{same}");
    let (_, alex) = stack.call(Role::Helpdesk, "GET", &format!("/api/v1/people/{ALEX_UPN}"), None).await;
    assert_eq!(alex["person"]["entra_object_id"], ALEX, "{alex}");
}

#[tokio::test]
async fn a_relink_with_passkeys_needs_an_admin_who_revokes_them_in_entra_first() {
    let stack = stack(false).await;
    sync(&stack, Some("Finance")).await;
    let mut desk = stack.soft_key();
    let (status, done) = provision(&stack, &mut desk, ADELE_UPN, "SK-TRUST-1").await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(stack.sim_methods(ADELE).len(), 1);
    let body = json!({"object_id": ADELE_TWO, "allow_other_upn": true});
    let (status, refused) = link(&stack, Role::Admin, ADELE_UPN, body).await;
    assert_eq!(status, 409, "{refused}");
    assert!(message(&refused).contains("1 registered passkey"), "{refused}");
    assert_eq!(stack.sim_methods(ADELE).len(), 1, "a refused relink touches nothing");
    let body = json!({"object_id": ADELE_TWO, "allow_other_upn": true, "revoke_existing": true});
    let (status, linked) = link(&stack, Role::Admin, ADELE_UPN, body).await;
    assert_eq!(status, 200, "{linked}");
    assert!(stack.sim_methods(ADELE).is_empty(), "the old account's passkey is gone from Entra");
}

#[tokio::test]
async fn protected_people_get_taps_and_passkeys_only_from_admins() {
    let stack = stack(true).await;
    sync(&stack, None).await;
    let tap = |role: Role, who: &str, body: Value| {
        let path = format!("/api/v1/people/{who}/tap");
        let stack = &stack;
        async move { stack.call(role, "POST", &path, Some(body)).await }
    };
    // Helpdesk and operators are refused for a Global Administrator; Entra is never asked.
    for role in [Role::Helpdesk, Role::Operator] {
        let (status, refused) = tap(role, ROOT_UPN, json!({})).await;
        assert_eq!(status, 403, "{role}: {refused}");
        assert!(message(&refused).contains("protected"), "{refused}");
    }
    assert!(stack.sim.sim.read(|t| !t.taps.contains_key(ROOT)), "no TAP reached Entra");
    let (status, refused) =
        stack.call(Role::Operator, "POST", "/api/v1/issuances", Some(json!({"person": ROOT_UPN}))).await;
    assert_eq!(status, 403, "{refused}");
    // An admin may.
    let (status, issued) = tap(Role::Admin, ROOT_UPN, json!({"lifetime_minutes": 60})).await;
    assert_eq!(status, 200, "{issued}");

    // With approval on, the second person must be an admin too.
    let (status, issuance) =
        stack.call(Role::Admin, "POST", "/api/v1/issuances", Some(json!({"person": ROOT_UPN}))).await;
    assert_eq!(status, 201, "{issuance}");
    let id = issuance["id"].as_str().unwrap();
    let (status, refused) =
        stack.call(Role::Operator, "POST", &format!("/api/v1/issuances/{id}/approve"), None).await;
    assert_eq!(status, 403, "{refused}");
    let (status, second) = stack
        .call(Role::Admin, "POST", "/api/v1/tokens", Some(json!({"name": "admin2", "role": "admin"})))
        .await;
    assert_eq!(status, 201, "{second}");
    let second = second["token"].as_str().unwrap();
    let approve = format!("/api/v1/issuances/{id}/approve");
    let (status, approved) = call_api(&stack.http, &stack.url, second, "POST", &approve, None).await;
    assert_eq!(status, 200, "{approved}");

    // Everyone else is not protected: helpdesk helps them, within the helpdesk limits.
    let (status, refused) = tap(Role::Helpdesk, ADELE_UPN, json!({"lifetime_minutes": 120})).await;
    assert_eq!(status, 422, "{refused}");
    assert!(message(&refused).contains("at most 60 minutes"), "{refused}");
    let (status, refused) = tap(Role::Helpdesk, ADELE_UPN, json!({"once": false})).await;
    assert_eq!(status, 422, "{refused}");
    let (status, issued) = tap(Role::Helpdesk, ADELE_UPN, json!({})).await;
    assert_eq!(status, 200, "{issued}");
    assert_eq!(issued["once"], true);
    assert_eq!(issued["lifetime_minutes"], 60);
    // The intent and the outcome are both in the chain.
    let (_, events) = stack.call(Role::Auditor, "GET", "/api/v1/audit?limit=1000", None).await;
    let actions: Vec<&str> =
        events["items"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.windows(2).any(|w| w == ["tap.issue.intent", "tap.issue"]), "{actions:?}");
}

#[tokio::test]
async fn when_protection_cannot_be_read_only_an_admin_acts() {
    let stack = Stack::start(StackOptions {
        seed: Box::new(|seed| seed.apps[0].roles.retain(|r| r != "RoleManagement.Read.Directory")),
        ..StackOptions::sqlite()
    })
    .await;
    sync(&stack, None).await;
    let (status, refused) =
        stack.call(Role::Helpdesk, "POST", &format!("/api/v1/people/{ADELE_UPN}/tap"), Some(json!({}))).await;
    assert_eq!(status, 403, "{refused}");
    assert!(message(&refused).contains("RoleManagement.Read.Directory"), "{refused}");
    let (status, issued) =
        stack.call(Role::Admin, "POST", &format!("/api/v1/people/{ADELE_UPN}/tap"), Some(json!({}))).await;
    assert_eq!(status, 200, "{issued}");
}

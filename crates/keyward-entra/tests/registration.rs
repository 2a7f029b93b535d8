//! Passkey registration and removal against the emulator over loopback, with real `packed`
//! attestations: a plain registration, one whose answer is lost (committed, connection
//! dropped) which must end with exactly one method, a refusal, and `$batch` deletes.

mod support;

use keyward_entra::{RegistrationError, RegistrationPath};
use keyward_sim::SimOptions;
use keyward_sim::faults::FaultSpec;
use keyward_webauthn::b64;
use support::*;

#[tokio::test]
async fn a_registration_is_created_with_model_and_aaguid() {
    let ca = test_ca(AAGUID, "Authenticator Attestation");
    let sim = start(seed(0, Some(&ca)), SimOptions::default()).await;
    let connector = connector(&sim);
    let options = connector.creation_options(ADELE_UPN).await.unwrap();
    let (body, cred_id) = register_body(&options, &ca, "YubiKey 12345678");
    let registered = connector.register_fido2(ADELE_UPN, &body).await.unwrap();
    assert_eq!(registered.path, RegistrationPath::Created);
    assert_eq!(registered.method.model.as_deref(), Some("Keyward Test Key"));
    assert_eq!(
        registered.method.aa_guid.as_deref(),
        Some(uuid::Uuid::from_bytes(AAGUID).to_string().as_str())
    );
    assert!(b64::credential_id_matches(&registered.method.id, &cred_id));
    let fetched = connector.get_fido2_method(ADELE, &registered.method.id).await.unwrap();
    assert_eq!(fetched, registered.method);

    // Replaying the same body is refused (duplicate / used challenge), not retried.
    let err = connector.register_fido2(ADELE_UPN, &body).await.unwrap_err();
    let RegistrationError::Refused(inner) = &err else { panic!("{err:?}") };
    assert_eq!(inner.status(), Some(409));
    assert_eq!(connector.list_fido2_methods(ADELE).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_lost_answer_is_resolved_by_listing_and_never_registers_twice() {
    let ca = test_ca(AAGUID, "Authenticator Attestation");
    let faults = FaultSpec::parse("lost=1,seed=1").unwrap();
    let sim = start(seed(0, Some(&ca)), SimOptions { faults, ..SimOptions::default() }).await;
    let connector = connector(&sim);
    for round in 0..3 {
        let options = connector.creation_options(ADELE).await.unwrap();
        let (body, cred_id) = register_body(&options, &ca, &format!("Key {round}"));
        let registered = connector.register_fido2(ADELE, &body).await.unwrap();
        assert_eq!(registered.path, RegistrationPath::FoundAfterLostAnswer, "round {round}");
        assert!(b64::credential_id_matches(&registered.method.id, &cred_id));
        let in_sim = sim.sim.read(|t| t.methods_of(ADELE).to_vec());
        assert_eq!(in_sim.len(), round + 1, "exactly one method per registration");
        assert_eq!(in_sim.iter().filter(|m| m.method.id == registered.method.id).count(), 1);
    }
}

#[tokio::test]
async fn a_refused_registration_says_why_and_is_not_retried() {
    let ca = test_ca(AAGUID, "Authenticator Attestation");
    let sim = start(seed(0, Some(&ca)), SimOptions::default()).await;
    let connector = connector(&sim);
    let options = connector.creation_options(ADELE).await.unwrap();
    let (mut body, _) = register_body(&options, &ca, "Key");
    body.public_key_credential.response.client_data_json = b64::encode(
        br#"{"type":"webauthn.create","challenge":"AAAA","origin":"https://login.microsoft.com"}"#,
    );
    let err = connector.register_fido2(ADELE, &body).await.unwrap_err();
    let RegistrationError::Refused(inner) = &err else { panic!("{err:?}") };
    assert_eq!(inner.status(), Some(400));
    assert!(inner.request_id().is_some());
    assert!(connector.list_fido2_methods(ADELE).await.unwrap().is_empty());
}

#[tokio::test]
async fn several_methods_are_deleted_in_one_batch_with_per_item_results() {
    let ca = test_ca(AAGUID, "Authenticator Attestation");
    let sim = start(seed(0, Some(&ca)), SimOptions::default()).await;
    let connector = connector(&sim);
    let mut targets = Vec::new();
    for i in 0..4 {
        let options = connector.creation_options(ADELE).await.unwrap();
        let (body, _) = register_body(&options, &ca, &format!("Key {i}"));
        targets.push((ADELE.to_owned(), connector.register_fido2(ADELE, &body).await.unwrap().method.id));
    }
    targets.push((ADELE.to_owned(), "bm90LWEtbWV0aG9k0".to_owned()));
    let results = connector.delete_fido2_methods(&targets).await.unwrap();
    let statuses: Vec<u16> = results.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [204, 204, 204, 204, 404]);
    assert!(results[4].error_code().is_some());
    assert!(connector.list_fido2_methods(ADELE).await.unwrap().is_empty());

    let lists = connector
        .list_fido2_methods_of(&[ADELE.to_owned(), "ghost@contoso.onmicrosoft.com".to_owned()])
        .await
        .unwrap();
    assert_eq!(lists[0].as_ref().unwrap().len(), 0);
    assert_eq!(lists[1].as_ref().unwrap_err().status, 404);
}

#[tokio::test]
async fn throttled_batch_items_are_sent_again_after_retry_after() {
    let ca = test_ca(AAGUID, "Authenticator Attestation");
    let sim = start(seed(0, Some(&ca)), SimOptions::default()).await;
    let connector = connector(&sim);
    let mut targets = Vec::new();
    for i in 0..5 {
        let options = connector.creation_options(ADELE).await.unwrap();
        let (body, _) = register_body(&options, &ca, &format!("Key {i}"));
        targets.push((ADELE.to_owned(), connector.register_fido2(ADELE, &body).await.unwrap().method.id));
    }
    drop(connector);
    // A second emulator view with a tight write quota over the same tenant state.
    let state = sim.sim.read(|t| t.clone());
    let throttled = keyward_sim::Sim::from_state(
        state,
        SimOptions {
            throttle: keyward_sim::throttle::ThrottleProfile::parse("writes=2/1s").unwrap(),
            ..SimOptions::default()
        },
    )
    .unwrap();
    let running = keyward_sim::server::spawn(throttled, "127.0.0.1:0".parse().unwrap(), None).await.unwrap();
    let connector = support::connector(&running);
    let results = connector.delete_fido2_methods(&targets).await.unwrap();
    assert!(results.iter().all(|r| r.is_success()), "{results:?}");
    assert!(results.iter().filter(|r| r.repeated).count() >= 3, "throttled items were sent again");
    assert!(running.sim.read(|t| t.methods_of(ADELE).is_empty()));
}

#[tokio::test]
async fn dropped_connections_end_in_exactly_one_method_per_reported_success() {
    let ca = test_ca(AAGUID, "Authenticator Attestation");
    let faults = FaultSpec::parse("reset=0.3,504=0.1,lost=0.2,seed=7,retry-after=0.01").unwrap();
    let sim = start(seed(0, Some(&ca)), SimOptions { faults, ..SimOptions::default() }).await;
    let connector = connector(&sim);
    let mut paths = Vec::new();
    let mut registered_ids = Vec::new();
    for i in 0..16 {
        let options = connector.creation_options(ADELE).await.unwrap();
        let (body, cred_id) = register_body(&options, &ca, &format!("Key {i}"));
        match connector.register_fido2(ADELE, &body).await {
            Ok(r) => {
                assert!(b64::credential_id_matches(&r.method.id, &cred_id));
                paths.push(r.path);
                registered_ids.push(r.method.id);
            }
            Err(RegistrationError::Unknown(e)) => assert!(e.is_ambiguous(), "{e}"),
            Err(e) => panic!("registration {i}: {e}"),
        }
    }
    let in_sim: Vec<String> =
        sim.sim.read(|t| t.methods_of(ADELE).iter().map(|m| m.method.id.clone()).collect());
    for id in &registered_ids {
        assert_eq!(in_sim.iter().filter(|m| *m == id).count(), 1, "every reported success is in Entra once");
    }
    for path in
        [RegistrationPath::Created, RegistrationPath::FoundAfterLostAnswer, RegistrationPath::CreatedOnRetry]
    {
        assert!(paths.contains(&path), "{path:?} not exercised: {paths:?}");
    }
}

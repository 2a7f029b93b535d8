//! Graph operations against the emulator over loopback: users and groups with `$select` and
//! paging, creation options per API version, the FIDO2 policy, TAP, throttling with
//! `Retry-After`, injected 503s, errors carrying `request-id`, and the redacted debug log.

mod support;

use std::time::{Duration, Instant};

use keyward_entra::Connector;
use keyward_sim::SimOptions;
use keyward_sim::faults::FaultSpec;
use keyward_sim::throttle::ThrottleProfile;
use keyward_testkit::log::CapturedLog;
use keyward_webauthn::policy::TemporaryAccessPassRequest;
use secrecy::ExposeSecret;
use serde_json::json;
use support::*;

#[tokio::test]
async fn users_are_read_with_select_and_every_page_is_followed() {
    let sim = start(seed(255, None), SimOptions::default()).await;
    let connector = connector(&sim);

    let megan = connector.get_user(MEGAN_UPN, &[]).await.unwrap();
    assert_eq!(megan.account_enabled, Some(false), "accountEnabled is selected by default");
    let guest = connector.get_user("guest_partner.example#EXT#@contoso.onmicrosoft.com", &[]).await.unwrap();
    assert_eq!(guest.user_type.as_deref(), Some("Guest"), "a UPN with # is encoded in the path");

    let users = connector.list_users(&["id", "userPrincipalName", "accountEnabled"], 100).await.unwrap();
    assert_eq!(users.len(), 260, "255 extra users + 5 seeded, over three pages");
    let mut ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 260, "no user twice");
    assert!(users.iter().all(|u| u.account_enabled.is_some() && u.display_name.is_none()), "$select kept");
    assert_eq!(users.iter().filter(|u| u.account_enabled == Some(false)).count(), 38);

    let group = connector.find_group_by_name("Engineering").await.unwrap().unwrap();
    assert_eq!(group.id, ENGINEERING);
    assert_eq!(connector.find_group_by_name("O'Brien's team").await.unwrap(), None, "quotes are escaped");
    let members = connector.list_group_members(&group.id, &["id", "userPrincipalName"]).await.unwrap();
    assert_eq!(members.len(), 256);
}

#[tokio::test]
async fn errors_carry_request_ids_and_advice() {
    let sim = start(seed(0, None), SimOptions::default()).await;
    let connector = connector(&sim);
    let err = connector.get_user("nobody@contoso.onmicrosoft.com", &[]).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(err.code(), Some("Request_ResourceNotFound"));
    let request_id = err.request_id().unwrap();
    assert!(uuid::Uuid::parse_str(request_id).is_ok(), "{request_id}");
    assert!(err.to_string().contains(request_id));

    let reader = Connector::new(config(&sim, READER, secret(READER_SECRET))).unwrap();
    let err = reader.get_fido2_policy().await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert!(err.to_string().contains("grant the app the missing application permission"), "{err}");
}

#[tokio::test]
async fn creation_options_follow_the_api_version() {
    let sim = start(seed(0, None), SimOptions::default()).await;
    let v1 = connector(&sim).creation_options(ADELE_UPN).await.unwrap();
    let beta = beta_connector(&sim, 43_200).creation_options(ADELE).await.unwrap();
    let minutes_left = |stamp: &str| {
        let t = time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339).unwrap();
        (t - time::OffsetDateTime::now_utc()).whole_minutes()
    };
    assert!((4..=5).contains(&minutes_left(&v1.challenge_timeout_date_time)));
    assert!((43_199..=43_200).contains(&minutes_left(&beta.challenge_timeout_date_time)));
    assert_eq!(beta.public_key.rp.id, keyward_webauthn::ENTRA_RP_ID);
}

#[tokio::test]
async fn fido2_policy_is_read_and_patched() {
    let sim = start(seed(0, None), SimOptions::default()).await;
    let connector = connector(&sim);
    let before = connector.get_fido2_policy().await.unwrap();
    assert!(!before.is_attestation_enforced);
    let mut changes = serde_json::Map::new();
    changes.insert("isAttestationEnforced".into(), json!(true));
    connector.update_fido2_policy(changes).await.unwrap();
    let after = connector.get_fido2_policy().await.unwrap();
    assert!(after.is_attestation_enforced);
    assert_eq!(after.exclude_targets, before.exclude_targets);
}

#[tokio::test]
async fn throttled_writes_wait_for_retry_after_and_succeed() {
    let options =
        SimOptions { throttle: ThrottleProfile::parse("writes=2/1s").unwrap(), ..SimOptions::default() };
    let sim = start(seed(0, None), options).await;
    let connector = connector(&sim);
    let started = Instant::now();
    for i in 0..5 {
        let mut changes = serde_json::Map::new();
        changes.insert("isAttestationEnforced".into(), json!(i % 2 == 0));
        connector.update_fido2_policy(changes).await.unwrap_or_else(|e| panic!("write {i}: {e}"));
    }
    // 2 writes per second: writes 3..5 must each wait for the bucket (Retry-After ≈ 0.5 s).
    assert!(started.elapsed() >= Duration::from_millis(1200), "{:?}", started.elapsed());
    assert!(connector.get_fido2_policy().await.unwrap().is_attestation_enforced);
}

#[tokio::test]
async fn injected_503s_are_retried_until_the_read_succeeds() {
    let faults = FaultSpec::parse("503=0.4,504=0.1,seed=5,retry-after=0.02").unwrap();
    let sim = start(seed(0, None), SimOptions { faults, ..SimOptions::default() }).await;
    let connector = connector(&sim);
    for _ in 0..20 {
        let user = connector.get_user(ADELE_UPN, &["id"]).await.unwrap();
        assert_eq!(user.id, ADELE);
    }
}

#[tokio::test]
async fn retries_stop_after_max_attempts_with_the_services_error() {
    let faults = FaultSpec::parse("503=1,retry-after=0.01").unwrap();
    let sim = start(seed(0, None), SimOptions { faults, ..SimOptions::default() }).await;
    let mut c = config(&sim, CLIENT, secret(SECRET));
    c.retry.max_attempts = 3;
    let err = Connector::new(c).unwrap().get_user(ADELE, &[]).await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(err.code(), Some("serviceNotAvailable"));
}

#[tokio::test(flavor = "current_thread")]
async fn the_trace_log_never_shows_secrets_tokens_assertions_or_passes() {
    let captured = CapturedLog::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let cert = TestCert::good("keyward-connector");
    let mut seed = seed(0, None);
    seed.apps[0].certificates_pem = vec![cert.cert_pem.clone()];
    let sim = start(seed, SimOptions::default()).await;

    let mut with_secret = config(&sim, CLIENT, secret(SECRET));
    with_secret.http_debug = true;
    let with_secret = Connector::new(with_secret).unwrap();
    let mut with_cert = config(&sim, CLIENT, cert.credential(keyward_entra::AssertionMode::Ps256));
    with_cert.http_debug = true;
    let with_cert = Connector::new(with_cert).unwrap();

    let mut secrets = vec![SECRET.to_owned()];
    for connector in [&with_secret, &with_cert] {
        secrets.push(connector.tokens().token().await.unwrap().secret().to_owned());
        connector.get_user(ADELE_UPN, &[]).await.unwrap();
        let tap = connector.create_tap(ADELE, &TemporaryAccessPassRequest::default()).await.unwrap();
        assert_eq!(tap.pass.expose_secret().len(), 8);
        secrets.push(tap.pass.expose_secret().to_owned());
        assert!(!format!("{tap:?}").contains(tap.pass.expose_secret()), "Debug shows no pass");
    }
    let log = captured.text();
    assert!(log.contains("client_assertion=[REDACTED]"), "the debug log was on and covered the assertion");
    assert!(log.contains("temporaryAccessPass\":\"[REDACTED]"), "the TAP response was logged, redacted");
    assert!(log.contains("client-request-id"), "correlation ids are logged");
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "a secret reached the log");
    }
    assert!(!log.contains("eyJ"), "no JWT (access token or client assertion) reached the log");
    assert!(!log.contains("BEGIN"), "no PEM reached the log");
}

#[tokio::test]
async fn fan_out_reads_go_in_batches_of_twenty_with_results_in_request_order() {
    let sim = start(seed(45, None), SimOptions::default()).await;
    let connector = connector(&sim);
    let mut users: Vec<String> = (0..45).map(|i| format!("00000000-0000-4000-8000-{i:012}")).collect();
    users.insert(30, "ghost@contoso.onmicrosoft.com".into());
    let lists = connector.list_fido2_methods_of(&users).await.unwrap();
    assert_eq!(lists.len(), 46, "the emulator refuses batches over 20, so 46 reads took three batches");
    for (i, list) in lists.iter().enumerate() {
        match list {
            Ok(methods) => assert!(methods.is_empty() && i != 30),
            Err(result) => assert_eq!((i, result.status), (30, 404)),
        }
    }
}

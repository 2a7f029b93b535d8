//! Conformance, error paths: every status the operator must understand, produced by the soft
//! key and read back by our client, with the message the operator will see.

mod common;

use std::time::Duration;

use common::{RP, pin, request, setup};
use keyward_ctap::client::{PERMISSION_ACFG, PERMISSION_MC};
use keyward_ctap::{CtapError, CtapStatus, MinPinLength};
use keyward_softkey::{Config, PresencePolicy};

#[test]
fn pin_retries_lockout_and_block() {
    let (mut c, key) = setup(Config::default());
    assert!(matches!(c.set_pin(&pin("12")), Err(CtapError::PinLength { min: 4 })));
    c.set_pin(&pin("1234")).unwrap();
    assert_eq!(c.set_pin(&pin("5678")).unwrap_err().status(), Some(CtapStatus::NotAllowed));
    assert_eq!(c.get_retries().unwrap(), 8);
    // Expected outcome of each wrong PIN, with re-insertion after every PIN_AUTH_BLOCKED.
    let expected = [
        Some(7),
        Some(6),
        None, // 3rd consecutive → PIN_AUTH_BLOCKED (5 left)
        Some(4),
        Some(3),
        None, // (2 left)
        Some(1),
    ];
    for (i, want) in expected.iter().enumerate() {
        let err = c.get_pin_uv_auth_token(&pin("0000"), PERMISSION_MC, Some(RP)).unwrap_err();
        match want {
            Some(n) => assert!(
                matches!(err, CtapError::PinInvalid { retries_left } if retries_left == *n),
                "try {i}: {err}"
            ),
            None => {
                assert_eq!(err.status(), Some(CtapStatus::PinAuthBlocked), "try {i}");
                assert!(err.to_string().contains("re-insert"));
                // Even the right PIN is refused until the key is re-inserted.
                let again = c.get_pin_token(&pin("1234")).unwrap_err();
                assert_eq!(again.status(), Some(CtapStatus::PinAuthBlocked));
                key.reinsert();
            }
        }
    }
    // A correct PIN restores the counter.
    c.get_pin_token(&pin("1234")).unwrap();
    assert_eq!(c.get_retries().unwrap(), 8);
    // Eight wrong PINs in total block it for good.
    for i in 0..8 {
        if i % 3 == 0 {
            key.reinsert();
        }
        let _ = c.get_pin_token(&pin("9999"));
    }
    assert_eq!(c.get_retries().unwrap(), 0);
    let err = c.get_pin_token(&pin("1234")).unwrap_err();
    assert_eq!(err.status(), Some(CtapStatus::PinBlocked));
    assert!(err.to_string().contains("reset"));
}

#[test]
fn status_table() {
    // (case, expected status)
    let (mut c, key) = setup(Config {
        max_resident_keys: 1,
        reset_window: Duration::from_millis(50),
        attestation: keyward_softkey::Attestation::None,
        ..Config::default()
    });
    let mut no_pin = request(b"u1");
    no_pin.cred_protect = None;
    let att = c.make_credential(&no_pin, None).unwrap();
    assert_eq!(att.fmt, "none");
    let cases: Vec<(&str, Result<(), CtapError>, CtapStatus)> = vec![
        ("key store full", c.make_credential(&request(b"u2"), None).map(|_| ()), CtapStatus::KeyStoreFull),
        (
            "no credentials",
            c.get_assertion("other.example", &[0; 32], &[], None).map(|_| ()),
            CtapStatus::NoCredentials,
        ),
        ("token without PIN", c.get_pin_token(&pin("1234")).map(|_| ()), CtapStatus::PinNotSet),
        (
            "reset too late",
            {
                std::thread::sleep(Duration::from_millis(80));
                c.reset()
            },
            CtapStatus::NotAllowed,
        ),
        ("getNextAssertion without getAssertion", c.get_next_assertion().map(|_| ()), CtapStatus::NotAllowed),
    ];
    for (name, got, want) in cases {
        assert_eq!(got.unwrap_err().status(), Some(want), "{name}");
    }
    // NOT_ALLOWED on reset is worded as the re-insert-and-retry it needs.
    assert!(matches!(c.reset(), Err(CtapError::ResetWindow)));
    assert!(c.reset().unwrap_err().to_string().contains("re-insert"));
    key.state().set_presence_policy(keyward_softkey::PresencePolicy::Deny(Duration::from_millis(250)));
    key.reinsert();
    assert_eq!(c.reset().unwrap_err().status(), Some(CtapStatus::OperationDenied));
}

#[test]
fn set_pin_twice_and_pin_policy_violations() {
    let (mut c, _key) = setup(Config::default());
    c.set_pin(&pin("1234")).unwrap();
    let err = c.set_pin(&pin("5678")).unwrap_err();
    assert!(matches!(err, CtapError::PinAlreadySet), "{err}");
    assert_eq!(err.status(), Some(CtapStatus::NotAllowed));
    assert!(err.to_string().contains("change-pin"));
    // With a forced change the new PIN must differ from the old one: PIN_POLICY_VIOLATION.
    let t = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_ACFG, None).unwrap();
    c.set_min_pin_length(&t, &MinPinLength { force_change_pin: true, ..MinPinLength::default() }).unwrap();
    let err = c.change_pin(&pin("1234"), &pin("1234")).unwrap_err();
    assert_eq!(err.status(), Some(CtapStatus::PinPolicyViolation));
    assert!(err.to_string().contains("choose a longer or less trivial PIN"), "{err}");
    let err = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_MC, Some(RP)).unwrap_err();
    assert_eq!(err.status(), Some(CtapStatus::PinPolicyViolation));
}

/// Touch refused or never given: (policy, expected status, words the operator must read).
#[test]
fn user_presence_denied_or_timed_out() {
    let rows = [
        (PresencePolicy::Deny(Duration::from_millis(150)), CtapStatus::OperationDenied, "touch the key"),
        (PresencePolicy::Ignore(Duration::from_millis(150)), CtapStatus::UserActionTimeout, "touch the key"),
    ];
    for (policy, want, words) in rows {
        let (mut c, key) = setup(Config::default());
        key.state().set_presence_policy(policy);
        let err = c.make_credential(&request(b"u"), None).unwrap_err();
        assert_eq!(err.status(), Some(want), "{policy:?}");
        assert!(err.to_string().contains(words), "{err}");
        assert_eq!(key.state().resident_count(), 0, "nothing stored without a touch");
    }
}

//! The operator's "Test connection" and "Validate certificate".

mod support;

use keyward_entra::certificate::{Problem, Validity, validate_certificate, validate_certificate_at};
use keyward_entra::{AssertionMode, CertificateError, Connector};
use keyward_sim::SimOptions;
use support::*;

#[tokio::test]
async fn test_connection_names_each_missing_permission() {
    let mut seed = seed(0, None);
    seed.apps[0].roles.retain(|r| r != "Policy.ReadWrite.AuthenticationMethod");
    let sim = start(seed, SimOptions::default()).await;
    let report = connector(&sim).test_connection().await;
    assert_eq!(report.token, Ok(()));
    assert_eq!(report.graph_read, Ok(()));
    let missing: Vec<&str> = report.missing.iter().map(|m| m.permission).collect();
    assert_eq!(missing, ["Policy.ReadWrite.AuthenticationMethod"]);
    assert!(!report.is_ok());
    assert!(
        report
            .lines()
            .iter()
            .any(|l| l.contains("Policy.ReadWrite.AuthenticationMethod") && l.contains("admin consent"))
    );

    // The reporting app only has User.Read.All.
    let reader = Connector::new(config(&sim, READER, secret(READER_SECRET))).unwrap().test_connection().await;
    assert_eq!(reader.missing.len(), 4, "{:?}", reader.missing);

    let good = start(support::seed(0, None), SimOptions::default()).await;
    let report = connector(&good).test_connection().await;
    assert!(report.is_ok(), "{:?}", report.lines());

    let bad = Connector::new(config(&good, CLIENT, secret("wrong"))).unwrap().test_connection().await;
    assert!(bad.token.unwrap_err().contains("AADSTS7000215"));
}

/// Doctor's report uses the cached token; only the explicit test asks for a new one.
#[tokio::test]
async fn only_the_explicit_test_asks_for_a_new_token() {
    let sim = start(seed(0, None), SimOptions::default()).await;
    let connector = connector(&sim);
    let first = connector.tokens().token().await.unwrap();
    assert!(connector.connection_report().await.is_ok());
    let after_report = connector.tokens().token().await.unwrap();
    assert_eq!(after_report.secret(), first.secret(), "the report kept the cached token");
    assert!(connector.test_connection().await.is_ok());
    let after_test = connector.tokens().token().await.unwrap();
    assert_ne!(after_test.secret(), first.secret(), "the explicit test fetched a new token");
}

#[test]
fn validate_certificate_reports_dates_key_match_and_thumbprints() {
    let good = TestCert::good("keyward-connector");
    let expired = TestCert::generate("old", (2020, 1, 1), (2021, 1, 1));
    let future = TestCert::generate("future", (2090, 1, 1), (2095, 1, 1));
    let soon = TestCert::generate("soon", (2024, 1, 1), (2026, 12, 1));
    let now = time::macros::datetime!(2026 - 11 - 23 12:00 UTC).unix_timestamp();
    let cases: Vec<(&str, &str, &str, Validity, Vec<Problem>)> = vec![
        ("good", &good.cert_pem, &good.key_pem, Validity::Valid, vec![]),
        ("expired", &expired.cert_pem, &expired.key_pem, Validity::Expired, vec![Problem::Expired]),
        (
            "not yet valid",
            &future.cert_pem,
            &future.key_pem,
            Validity::NotYetValid,
            vec![Problem::NotYetValid],
        ),
        (
            "expires in 7 days",
            &soon.cert_pem,
            &soon.key_pem,
            Validity::ExpiresSoon { days_left: 7 },
            vec![Problem::ExpiresSoon],
        ),
        (
            "someone else's key",
            &good.cert_pem,
            &expired.key_pem,
            Validity::Valid,
            vec![Problem::KeyDoesNotMatch],
        ),
    ];
    for (name, cert, key, validity, problems) in cases {
        let report = validate_certificate_at(cert, &key.to_owned().into(), now).unwrap();
        assert_eq!(report.validity, validity, "{name}");
        assert_eq!(report.problems, problems, "{name}");
        assert_eq!(report.key_matches, !problems.contains(&Problem::KeyDoesNotMatch), "{name}");
        assert_eq!(report.is_usable(), problems.iter().all(|p| *p == Problem::ExpiresSoon), "{name}");
    }

    let report = validate_certificate(&good.cert_pem, &good.key_pem.clone().into()).unwrap();
    assert_eq!(report.sha1_thumbprint, good.sha1_hex(), "the SHA-1 thumbprint the portal shows");
    assert_eq!(report.sha1_thumbprint.len(), 40);
    assert_eq!(report.sha256_thumbprint.len(), 64);

    assert_eq!(
        validate_certificate("no pem here", &good.key_pem.clone().into()),
        Err(CertificateError::NoCertificate)
    );
    assert_eq!(
        validate_certificate(&good.cert_pem, &"garbage".to_owned().into()),
        Err(CertificateError::PrivateKey)
    );
}

#[tokio::test]
async fn the_thumbprints_reported_are_the_ones_the_emulator_accepts() {
    let cert = TestCert::good("keyward-connector");
    let report = validate_certificate(&cert.cert_pem, &cert.key_pem.clone().into()).unwrap();
    let mut seed = seed(0, None);
    seed.apps[0].certificates_pem = vec![cert.cert_pem.clone()];
    let sim = start(seed, SimOptions::default()).await;
    let registered = sim.sim.read(|t| t.apps[0].certificates_pem[0].clone());
    let from_sim = validate_certificate(&registered, &cert.key_pem.clone().into()).unwrap();
    assert_eq!(report.x5t, from_sim.x5t);
    for mode in [AssertionMode::Ps256, AssertionMode::Rs256] {
        let connector = Connector::new(config(&sim, CLIENT, cert.credential(mode))).unwrap();
        connector.tokens().token().await.unwrap_or_else(|e| panic!("{mode:?}: {e}"));
    }
}

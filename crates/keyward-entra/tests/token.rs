//! Tokens from the emulator's login endpoint over loopback: client secret, certificate
//! assertions in both modes, cache reuse and shared refresh, and AADSTS errors turned into
//! messages that say what to fix.

mod support;

use keyward_entra::token::granted_roles;
use keyward_entra::{AssertionMode, Connector, TokenError};
use keyward_sim::SimOptions;
use support::*;

#[tokio::test]
async fn secret_and_both_certificate_modes_get_working_tokens() {
    let cert = TestCert::good("keyward-connector");
    let mut seed = seed(0, None);
    seed.apps[0].certificates_pem = vec![cert.cert_pem.clone()];
    let sim = start(seed, SimOptions::default()).await;
    let credentials = [
        ("secret", secret(SECRET)),
        ("PS256 + x5t#S256", cert.credential(AssertionMode::Ps256)),
        ("RS256 + x5t", cert.credential(AssertionMode::Rs256)),
    ];
    for (name, credential) in credentials {
        let connector = Connector::new(config(&sim, CLIENT, credential)).unwrap();
        let token = connector.tokens().token().await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(granted_roles(&token).contains(&"User.Read.All".to_string()), "{name}");
        let user = connector.get_user(ADELE_UPN, &[]).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(user.id, ADELE, "{name}");
    }
}

#[tokio::test]
async fn a_cached_token_is_reused_and_concurrent_callers_share_one_refresh() {
    let sim = start(seed(0, None), SimOptions::default()).await;
    let connector = connector(&sim);
    let calls = (0..8).map(|_| {
        let c = connector.clone();
        tokio::spawn(async move { c.tokens().token().await.unwrap().secret().to_owned() })
    });
    let mut tokens = Vec::new();
    for call in calls {
        tokens.push(call.await.unwrap());
    }
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "every concurrent caller got the one token of a single refresh");
    let again = connector.tokens().token().await.unwrap();
    assert_eq!(again.secret(), tokens[0], "the cached token is reused");
    connector.tokens().invalidate().await;
    let fresh = connector.tokens().token().await.unwrap();
    assert_ne!(fresh.secret(), tokens[0], "after invalidation a new token is fetched");
}

#[tokio::test]
async fn login_errors_say_what_to_fix() {
    let registered = TestCert::good("keyward-connector");
    let stranger = TestCert::good("stranger");
    let mut seed = seed(0, None);
    seed.apps[0].certificates_pem = vec![registered.cert_pem.clone()];
    let sim = start(seed, SimOptions::default()).await;

    let wrong_secret = Connector::new(config(&sim, CLIENT, secret("not-the-secret"))).unwrap();
    let err = wrong_secret.tokens().token().await.unwrap_err();
    assert_eq!(err, TokenError::WrongSecret);
    assert!(err.to_string().contains("paste the secret's Value"), "{err}");
    assert!(!err.to_string().contains("not-the-secret"));

    let unknown_app = "11111111-2222-3333-4444-555555555555";
    let err = Connector::new(config(&sim, unknown_app, secret(SECRET)))
        .unwrap()
        .tokens()
        .token()
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::UnknownApp { .. }), "{err:?}");
    assert!(err.to_string().contains(unknown_app), "{err}");

    let mut wrong_tenant = config(&sim, CLIENT, secret(SECRET));
    wrong_tenant.tenant_id = "fabrikam.onmicrosoft.com".into();
    let err = Connector::new(wrong_tenant).unwrap().tokens().token().await.unwrap_err();
    assert!(matches!(err, TokenError::UnknownTenant(_)), "{err:?}");
    assert!(err.to_string().contains("check the tenant id"), "{err}");

    let err = Connector::new(config(&sim, CLIENT, stranger.credential(AssertionMode::Ps256)))
        .unwrap()
        .tokens()
        .token()
        .await
        .unwrap_err();
    assert_eq!(err, TokenError::CertificateNotRegistered { sha1_hex: stranger.sha1_hex() }, "{err}");
    assert!(err.to_string().contains("upload it to the app registration"), "{err}");

    let expired = TestCert::generate("old", (2020, 1, 1), (2021, 1, 1));
    let err = Connector::new(config(&sim, CLIENT, expired.credential(AssertionMode::Ps256)))
        .unwrap()
        .tokens()
        .token()
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::CertificateNotValidNow(_)), "{err:?}");
    assert!(err.to_string().contains("expired 2021-01-01"), "{err}");
}

/// A redirect is never followed: a 307 from the token endpoint would have the client resend
/// its form, secret included, wherever the `Location` points. The token and Graph calls share
/// one HTTP client, so this holds for both.
#[tokio::test]
async fn a_redirect_from_the_token_endpoint_is_not_followed() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    let elsewhere = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let elsewhere_url = format!("http://{}", elsewhere.local_addr().unwrap());
    let reached = Arc::new(AtomicBool::new(false));
    let flag = reached.clone();
    tokio::spawn(async move {
        if elsewhere.accept().await.is_ok() {
            flag.store(true, Ordering::SeqCst);
        }
    });
    let redirector = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirector_url = format!("http://{}", redirector.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = redirector.accept().await {
            let mut buf = vec![0u8; 16 * 1024];
            let _ = socket.read(&mut buf).await;
            let answer = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {elsewhere_url}/token\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });

    let mut config =
        keyward_entra::ConnectorConfig::new(TENANT, CLIENT, secret(SECRET)).pointed_at(&redirector_url);
    config.retry = fast_retry();
    let error = Connector::new(config).unwrap().tokens().token().await.unwrap_err();
    assert!(error.to_string().contains("307"), "the error names the redirect: {error}");
    assert!(!reached.load(Ordering::SeqCst), "the token request was sent where the redirect pointed");
}

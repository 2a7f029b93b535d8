//! `keyward serve` over TLS on loopback, with certificates from a private test CA: a client that
//! trusts the CA is served; with a client CA, a client certificate from that CA is accepted, none
//! at all too (tokens authenticate API clients), and one from a foreign CA fails the handshake.

use std::sync::Arc;

use keyward_server::{ServerConfig, Service, tls};
use keyward_testkit::tls::TlsFiles;

async fn start(dir: &std::path::Path, files: &TlsFiles, client_ca: bool) -> String {
    let config =
        ServerConfig { data_dir: dir.join("data"), sync_interval_minutes: 0, ..ServerConfig::default() };
    let service: Arc<Service> = Service::open(config).await.unwrap();
    let acceptor =
        tls::acceptor(&files.server_cert, &files.server_key, client_ca.then_some(files.ca.as_path()))
            .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(tls::serve_tls(service, listener, acceptor, std::future::pending()));
    url
}

fn client(files: &TlsFiles, identity: Option<&std::path::Path>) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&files.ca).unwrap()).unwrap();
    let mut b = reqwest::Client::builder().tls_certs_only([ca]);
    if let Some(p) = identity {
        b = b.identity(reqwest::Identity::from_pem(&std::fs::read(p).unwrap()).unwrap());
    }
    b.build().unwrap()
}

#[tokio::test]
async fn a_client_trusting_the_ca_is_served_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let files = TlsFiles::write(dir.path());
    let url = start(dir.path(), &files, false).await;
    let status = client(&files, None).get(format!("{url}/healthz")).send().await.unwrap().status();
    assert_eq!(status, 200);
    // A client that does not trust the CA refuses the server.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let other = reqwest::Client::builder().tls_certs_only([]).build().unwrap();
    assert!(other.get(format!("{url}/healthz")).send().await.is_err());
    // Plain HTTP to the TLS port gets no answer.
    let plain = url.replace("https://", "http://");
    assert!(
        reqwest::Client::new()
            .get(format!("{plain}/healthz"))
            .send()
            .await
            .map(|r| r.status() != 200)
            .unwrap_or(true)
    );
}

#[tokio::test]
async fn client_certificates_are_verified_against_the_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let files = TlsFiles::write(dir.path());
    let url = start(dir.path(), &files, true).await;
    let health = format!("{url}/healthz");
    let ours = client(&files, Some(&files.client)).get(&health).send().await.unwrap();
    assert_eq!(ours.status(), 200);
    let none = client(&files, None).get(&health).send().await.unwrap();
    assert_eq!(none.status(), 200, "a client certificate is requested, not required");
    let foreign = client(&files, Some(&files.foreign_client)).get(&health).send().await;
    assert!(foreign.is_err(), "a certificate from a foreign CA must fail the handshake: {foreign:?}");
}

#[tokio::test]
async fn connector_urls_use_https_except_on_loopback() {
    use keyward_entra::{ConnectorConfig, Credential};
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        data_dir: dir.path().join("data"),
        sync_interval_minutes: 0,
        ..ServerConfig::default()
    };
    let service = Service::open(config).await.unwrap();
    let admin = keyward_server::Caller::host("test");
    let with = |authority: &str, graph: &str| {
        let mut c = ConnectorConfig::new(
            "11111111-2222-3333-4444-555555555555",
            "66666666-7777-8888-9999-000000000000",
            Credential::Secret { client_secret: secrecy::SecretString::from("s") },
        );
        c.authority_url = authority.into();
        c.graph_url = graph.into();
        c
    };
    let cases = [
        ("https://login.example", "https://graph.example", true),
        ("http://127.0.0.1:9", "http://[::1]:9", true),
        ("http://localhost:9", "https://graph.example", true),
        ("http://login.example", "https://graph.example", false),
        ("https://login.example", "http://10.0.0.1", false),
    ];
    for (authority, graph, ok) in cases {
        let result = service.set_connector(&admin, with(authority, graph)).await;
        assert_eq!(result.is_ok(), ok, "{authority} {graph}: {result:?}");
        if let Err(e) = result {
            assert!(e.to_string().contains("must use https"), "{e}");
        }
    }
}

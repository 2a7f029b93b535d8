//! Secrets bound to their purpose, seen from the server: a connector URL edited in the database
//! makes decryption fail before any request leaves; `rotate-key` moves every secret to a new key
//! the restarted server reads (and the old key no longer opens); the key file, the data
//! directory and the database are the owner's alone.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use keyward_entra::{ConnectorConfig, Credential};
use keyward_server::{Caller, ServerConfig, Service, ServiceError};
use keyward_store::SecretKey;
use secrecy::{ExposeSecret, SecretString};

const SECRET: &str = "Qx8~client-secret-value-4711";

/// A loopback listener that counts the connections made to it.
async fn counting_listener() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });
    (url, count)
}

fn config(dir: &std::path::Path) -> ServerConfig {
    ServerConfig { data_dir: dir.join("data"), sync_interval_minutes: 0, ..ServerConfig::default() }
}

fn connector(url: &str) -> ConnectorConfig {
    let mut c = ConnectorConfig::new(
        "11111111-2222-3333-4444-555555555555",
        "66666666-7777-8888-9999-000000000000",
        Credential::Secret { client_secret: SecretString::from(SECRET) },
    );
    c.authority_url = url.to_owned();
    c.graph_url = url.to_owned();
    c
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn a_connector_url_edited_in_the_database_fails_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::open(config(dir.path())).await.unwrap();
    let admin = Caller::host("test");
    let (good, good_hits) = counting_listener().await;
    let (evil, evil_hits) = counting_listener().await;
    service.set_connector(&admin, connector(&good)).await.unwrap();

    // Someone with write access to the database, but not the key, redirects the token request.
    sqlx::query("UPDATE connector_settings SET authority_url = $1")
        .bind(&evil)
        .execute(service.store.pool())
        .await
        .unwrap();
    let err = service.test_connector(&admin).await.unwrap_err();
    assert!(err.to_string().contains("cannot decrypt the stored client_secret_enc"), "{err}");
    assert!(err.to_string().contains("changed outside Keyward"), "{err}");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(evil_hits.load(Ordering::SeqCst), 0, "a request reached the attacker's endpoint");
    assert_eq!(good_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn rotate_key_moves_the_secrets_to_a_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let admin = Caller::host("test");
    let (url, _) = counting_listener().await;
    let service = Service::open(config(dir.path())).await.unwrap();
    service.set_connector(&admin, connector(&url)).await.unwrap();
    let key_file = service.config.secret_key_path();
    let old = SecretKey::from_file(&key_file).unwrap();

    let rotated = service.rotate_secret_key(&admin).await.unwrap();
    assert_eq!((rotated.old_id.as_str(), rotated.values), (old.id(), 1));
    assert_eq!(rotated.kept, dir.path().join(format!("data/secret.key.old-{}", old.id())));
    assert_eq!(mode(&rotated.kept), 0o600);
    assert_eq!(SecretKey::from_file(&rotated.kept).unwrap().id(), old.id());
    service.store.close().await;
    drop(service);

    // The restarted server reads the secret with the new key; its audit events sealed under the
    // old key still verify (the kept file is read beside the key file).
    let service = Service::open(config(dir.path())).await.unwrap();
    let new = SecretKey::from_file(&key_file).unwrap();
    assert_eq!(new.id(), rotated.new_id);
    let loaded = service.connector.load(&service.store).await.unwrap().unwrap();
    match loaded.credential {
        Credential::Secret { client_secret } => assert_eq!(client_secret.expose_secret(), SECRET),
        other => panic!("expected a client secret, got {other:?}"),
    }
    let report = service.verify_audit(&admin).await.unwrap();
    assert!(report.ok, "{:?}", report.problem);
    let err = keyward_store::connector::load(&service.store, &old).await.unwrap_err();
    assert!(err.to_string().contains(&format!("encrypted under secret key {}", new.id())), "{err}");
}

#[tokio::test]
async fn the_key_file_and_the_database_are_the_owners_alone() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::open(config(dir.path())).await.unwrap();
    let data = dir.path().join("data");
    // A transaction, so that SQLite has made its -wal and -shm files.
    service.create_token(&Caller::host("test"), "probe", keyward_core::Role::Auditor).await.unwrap();
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("secret.key")), 0o600);
    for file in ["keyward.db", "keyward.db-wal", "keyward.db-shm"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    service.store.close().await;
    drop(service);

    std::fs::set_permissions(data.join("secret.key"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = Service::open(config(dir.path())).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("can be read by other users") && text.contains("chmod 600"), "{text}");
}

#[tokio::test]
async fn rotation_refuses_to_run_over_an_unfinished_one() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::open(config(dir.path())).await.unwrap();
    let pending = dir.path().join("data/secret.key.new");
    std::fs::write(&pending, "left over").unwrap();
    let err = service.rotate_secret_key(&Caller::host("test")).await.unwrap_err();
    assert!(matches!(err, ServiceError::Conflict(_)), "{err}");
    assert_eq!(std::fs::read_to_string(&pending).unwrap(), "left over", "nothing overwritten");
}

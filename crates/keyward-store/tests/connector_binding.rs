//! Connector secrets are bound to the settings row they belong to, on both backends: a row edited
//! in the database (without the key) no longer decrypts; values of the first release still do and
//! come out of a key rotation in the current form; after rotation only the new key opens them.

mod common;

use keyward_core::ExternalRefSlot;
use keyward_store::connector::{self, ConnectorSettings};
use keyward_store::{SecretError, SecretKey, Store, StoreError};
use secrecy::{ExposeSecret, SecretString};
use sqlx::Row;

const CLIENT_SECRET: &str = "Qx8~client-secret-value-4711";

fn settings() -> ConnectorSettings {
    ConnectorSettings {
        enabled: true,
        http_debug: false,
        tenant_id: "11111111-2222-3333-4444-555555555555".into(),
        client_id: "66666666-7777-8888-9999-000000000000".into(),
        client_secret: Some(SecretString::from(CLIENT_SECRET)),
        certificate_pem: None,
        private_key_pem: None,
        challenge_timeout_min: 5,
        graph_version: "v1.0".into(),
        authority_url: "https://login.microsoftonline.com".into(),
        graph_url: "https://graph.microsoft.com".into(),
        external_ref_slot: ExternalRefSlot::new(1).unwrap(),
    }
}

async fn save(store: &Store, key: &SecretKey) {
    let mut tx = store.begin().await.unwrap();
    connector::save(&mut tx, "token:admin", key, &settings()).await.unwrap();
    tx.commit().await.unwrap();
}

async fn raw(store: &Store, sql: &str) {
    sqlx::query(sql).execute(store.pool()).await.unwrap();
}

/// Each bound column edited in the database makes the secret undecryptable, with the error that
/// says so; the unbound switches stay editable.
async fn editing_the_row_in_the_database_breaks_decryption(store: Store) {
    let key = SecretKey::generate();
    let edits = [
        "UPDATE connector_settings SET authority_url = 'https://evil.example'",
        "UPDATE connector_settings SET graph_url = 'https://evil.example'",
        "UPDATE connector_settings SET tenant_id = 'aaaaaaaa-2222-3333-4444-555555555555'",
        "UPDATE connector_settings SET client_id = 'bbbbbbbb-7777-8888-9999-000000000000'",
        "UPDATE connector_settings SET graph_version = 'beta'",
        "UPDATE connector_settings SET certificate_pem = 'x'",
    ];
    for edit in edits {
        save(&store, &key).await;
        raw(&store, edit).await;
        match connector::load(&store, &key).await {
            Err(StoreError::Secret(SecretError::Decrypt(col))) => {
                assert_eq!(col, "client_secret_enc", "{edit}")
            }
            other => panic!("{edit}: expected a decryption error, got {other:?}"),
        }
    }
    save(&store, &key).await;
    raw(&store, "UPDATE connector_settings SET enabled = 0, http_debug = 1, challenge_timeout_min = 9").await;
    let loaded = connector::load(&store, &key).await.unwrap().unwrap();
    assert_eq!(loaded.client_secret.unwrap().expose_secret(), CLIENT_SECRET);
    assert!(!loaded.enabled);
}

/// A `v1` value (the first release: raw key, column name bound) still loads; rotation re-encrypts
/// it as `v2` under the new key, audited, and the old key no longer opens it.
async fn first_release_values_load_and_rotation_rewrites_them(store: Store) {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use base64::Engine;
    let raw_key = [5u8; 32];
    let old = SecretKey::from_bytes(raw_key);
    save(&store, &old).await;
    let nonce = [1u8; 12];
    let ct = aes_gcm::Aes256Gcm::new(&raw_key.into())
        .encrypt(&nonce.into(), Payload { msg: CLIENT_SECRET.as_bytes(), aad: b"client_secret_enc" })
        .unwrap();
    let v1 =
        format!("v1:{}", base64::engine::general_purpose::STANDARD.encode([nonce.as_slice(), &ct].concat()));
    sqlx::query("UPDATE connector_settings SET client_secret_enc = $1")
        .bind(&v1)
        .execute(store.pool())
        .await
        .unwrap();
    let loaded = connector::load(&store, &old).await.unwrap().unwrap();
    assert_eq!(loaded.client_secret.unwrap().expose_secret(), CLIENT_SECRET);

    let new = SecretKey::generate();
    let mut tx = store.begin().await.unwrap();
    assert_eq!(connector::rekey(&mut tx, "host:root", &old, &new).await.unwrap(), 1);
    tx.commit().await.unwrap();
    let stored: String = sqlx::query("SELECT client_secret_enc FROM connector_settings")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get("client_secret_enc");
    assert!(stored.starts_with(&format!("v2:{}:", new.id())), "{stored}");
    let loaded = connector::load(&store, &new).await.unwrap().unwrap();
    assert_eq!(loaded.client_secret.unwrap().expose_secret(), CLIENT_SECRET);
    assert!(matches!(
        connector::load(&store, &old).await,
        Err(StoreError::Secret(SecretError::WrongKey { .. }))
    ));
    let audit = keyward_store::audit::export_jsonl(&store).await.unwrap();
    let last = audit.lines().last().unwrap();
    assert!(
        last.contains("secret_key.rotate") && last.contains(new.id()) && last.contains(old.id()),
        "{last}"
    );
    assert!(!audit.contains(CLIENT_SECRET));
}

/// A rotation that fails half-way (a value does not decrypt under the old key) changes nothing.
async fn a_failed_rotation_changes_nothing(store: Store) {
    let key = SecretKey::generate();
    save(&store, &key).await;
    let before = keyward_store::audit::export_jsonl(&store).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let err = connector::rekey(&mut tx, "host:root", &SecretKey::generate(), &SecretKey::generate()).await;
    assert!(matches!(err, Err(StoreError::Secret(SecretError::WrongKey { .. }))), "{err:?}");
    drop(tx);
    assert!(connector::load(&store, &key).await.unwrap().is_some());
    assert_eq!(keyward_store::audit::export_jsonl(&store).await.unwrap(), before);
}

on_both!(
    editing_the_row_in_the_database_breaks_decryption,
    first_release_values_load_and_rotation_rewrites_them,
    a_failed_rotation_changes_nothing,
);

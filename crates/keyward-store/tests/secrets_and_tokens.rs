//! Connector secrets are encrypted at rest and API tokens are stored only as hashes, on both
//! backends; the tests read the raw columns to prove it.

mod common;

use keyward_core::{ExternalRefSlot, Role};
use keyward_store::connector::{self, ConnectorSettings};
use keyward_store::{SecretKey, Store, StoreError, tokens};
use secrecy::{ExposeSecret, SecretString};
use sqlx::Row;

const CLIENT_SECRET: &str = "Qx8~client-secret-value-4711";
const PRIVATE_KEY: &str =
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";

fn settings() -> ConnectorSettings {
    ConnectorSettings {
        enabled: true,
        http_debug: false,
        tenant_id: "11111111-2222-3333-4444-555555555555".into(),
        client_id: "66666666-7777-8888-9999-000000000000".into(),
        client_secret: Some(SecretString::from(CLIENT_SECRET)),
        certificate_pem: Some("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into()),
        private_key_pem: Some(SecretString::from(PRIVATE_KEY)),
        challenge_timeout_min: 5,
        graph_version: "beta".into(),
        authority_url: "https://login.microsoftonline.com".into(),
        graph_url: "https://graph.microsoft.com".into(),
        external_ref_slot: ExternalRefSlot::new(2).unwrap(),
    }
}

async fn connector_secrets_are_encrypted_at_rest(store: Store) {
    let key = SecretKey::generate();
    assert!(connector::load(&store, &key).await.unwrap().is_none());
    let mut tx = store.begin().await.unwrap();
    connector::save(&mut tx, "token:admin", &key, &settings()).await.unwrap();
    tx.commit().await.unwrap();

    let raw = sqlx::query("SELECT client_secret_enc, private_key_enc FROM connector_settings")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let secret_col: String = raw.try_get("client_secret_enc").unwrap();
    let key_col: String = raw.try_get("private_key_enc").unwrap();
    let sealed = format!("v2:{}:", key.id());
    assert!(secret_col.starts_with(&sealed) && key_col.starts_with(&sealed), "{secret_col}");
    assert!(!secret_col.contains("client-secret") && !key_col.contains("PRIVATE KEY"));
    let audit = keyward_store::audit::export_jsonl(&store).await.unwrap();
    assert!(
        !audit.contains(CLIENT_SECRET) && !audit.contains("MIIEvQ"),
        "secrets leaked into the audit trail"
    );

    let loaded = connector::load(&store, &key).await.unwrap().unwrap();
    assert_eq!(loaded.client_secret.unwrap().expose_secret(), CLIENT_SECRET);
    assert_eq!(loaded.private_key_pem.unwrap().expose_secret(), PRIVATE_KEY);
    assert_eq!(loaded.external_ref_slot.number(), 2);
    assert_eq!(loaded.graph_version, "beta");
    assert!(!format!("{:?}", connector::load(&store, &key).await.unwrap()).contains(CLIENT_SECRET));

    // A different key cannot read them, and says what to do.
    let err = connector::load(&store, &SecretKey::generate()).await.unwrap_err();
    assert!(matches!(err, StoreError::Secret(_)), "{err}");
    assert!(err.to_string().contains("use the key file it was saved with"), "{err}");

    // Saving again replaces the single row.
    let mut s = settings();
    s.client_secret = None;
    let mut tx = store.begin().await.unwrap();
    connector::save(&mut tx, "token:admin", &key, &s).await.unwrap();
    tx.commit().await.unwrap();
    assert!(connector::load(&store, &key).await.unwrap().unwrap().client_secret.is_none());
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM connector_settings")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get("n");
    assert_eq!(n, 1);
}

async fn api_tokens_are_stored_hashed_and_revocable(store: Store) {
    let mut tx = store.begin().await.unwrap();
    let expires = time::OffsetDateTime::now_utc() + time::Duration::days(90);
    let (rec, token) = tokens::create(&mut tx, "cli:setup", "ci", Role::Operator, expires).await.unwrap();
    tx.commit().await.unwrap();
    assert!(token.expose_secret().starts_with("kw_") && token.expose_secret().len() > 40);

    let hash: String = sqlx::query("SELECT token_hash FROM api_token")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get("token_hash");
    assert_eq!(hash, tokens::token_hash(&token));
    let row = sqlx::query("SELECT id, name, role, token_hash FROM api_token")
        .fetch_one(store.pool())
        .await
        .unwrap();
    for col in ["id", "name", "role", "token_hash"] {
        let v: String = row.get(col);
        assert!(!v.contains(token.expose_secret()), "the token itself is stored in column {col}");
    }

    let found = tokens::authenticate(&store, &token).await.unwrap().expect("token accepted");
    assert_eq!((found.id, found.role, found.name.as_str()), (rec.id, Role::Operator, "ci"));
    let first_use = found.last_used_at.expect("the use is recorded");
    // Within the recording precision a use writes nothing; after it, the new time is stored.
    let t0 = first_use.unix_timestamp_nanos() as i64 / 1000;
    let precision = tokens::LAST_USED_PRECISION.as_micros() as i64;
    let soon = tokens::authenticate_at(&store, &token, t0 + precision / 2).await.unwrap().unwrap();
    assert_eq!(soon.last_used_at, Some(first_use));
    assert_eq!(tokens::list(&store, None, 100).await.unwrap()[0].last_used_at, Some(first_use));
    let later = tokens::authenticate_at(&store, &token, t0 + precision).await.unwrap().unwrap();
    let stored = tokens::list(&store, None, 100).await.unwrap()[0].last_used_at.unwrap();
    assert_eq!(later.last_used_at, Some(stored));
    assert_eq!((stored - first_use).whole_seconds(), tokens::LAST_USED_PRECISION.as_secs() as i64);
    assert!(tokens::authenticate(&store, &SecretString::from("kw_wrong")).await.unwrap().is_none());
    // Past its expiry the token is refused like an unknown one.
    let expiry = expires.unix_timestamp_nanos() as i64 / 1000;
    assert!(tokens::authenticate_at(&store, &token, expiry - 1).await.unwrap().is_some());
    assert!(tokens::authenticate_at(&store, &token, expiry).await.unwrap().is_none());

    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tokens::create(&mut tx, "cli:setup", "ci", Role::Admin, expires).await,
        Err(StoreError::Duplicate(_))
    ));
    drop(tx);

    let mut tx = store.begin().await.unwrap();
    assert!(tokens::revoke(&mut tx, "token:admin", "ci").await.unwrap());
    assert!(!tokens::revoke(&mut tx, "token:admin", "ci").await.unwrap());
    tx.commit().await.unwrap();
    assert!(tokens::authenticate(&store, &token).await.unwrap().is_none());
    assert!(tokens::list(&store, None, 100).await.unwrap()[0].revoked_at.is_some());
    let audit = keyward_store::audit::export_jsonl(&store).await.unwrap();
    assert!(!audit.contains(token.expose_secret()));
    assert!(audit.contains("token.create") && audit.contains("token.revoke"));
}

on_both!(connector_secrets_are_encrypted_at_rest, api_tokens_are_stored_hashed_and_revocable);

//! The Entra connector's settings: one row, with the client secret and the certificate's private
//! key encrypted under a [`SecretKey`] (see [`crate::secret`]); the certificate itself is public
//! and stored as PEM.

use keyward_core::{AuditDraft, ExternalRefSlot};
use secrecy::SecretString;
use serde_json::json;

use crate::audit;
use crate::db::{Store, Tx, now_micros};
use crate::error::{Result, StoreError};
use crate::secret::SecretKey;
use crate::stmt::{Stmt, flag, int, opt_text, text};

/// Connector configuration as stored (secrets decrypted into [`SecretString`], which never prints).
#[derive(Debug, Clone)]
pub struct ConnectorSettings {
    /// Whether the connector may call Entra.
    pub enabled: bool,
    /// Whether to log HTTP exchanges (redacted).
    pub http_debug: bool,
    /// Directory (tenant) id.
    pub tenant_id: String,
    /// Application (client) id.
    pub client_id: String,
    /// Client secret, when authenticating with a secret.
    pub client_secret: Option<SecretString>,
    /// Client certificate (PEM), when authenticating with a certificate.
    pub certificate_pem: Option<String>,
    /// The certificate's private key (PEM).
    pub private_key_pem: Option<SecretString>,
    /// Requested creationOptions challenge timeout, minutes.
    pub challenge_timeout_min: i64,
    /// Graph API version: `v1.0` or `beta`.
    pub graph_version: String,
    /// Login authority base URL.
    pub authority_url: String,
    /// Graph base URL.
    pub graph_url: String,
    /// External-reference slot that holds the Entra object id.
    pub external_ref_slot: ExternalRefSlot,
}

const SECRET_COL: &str = "client_secret_enc";
const KEY_COL: &str = "private_key_enc";

/// Saves the settings, encrypting the secrets with `key`.
pub async fn save(tx: &mut Tx, actor: &str, key: &SecretKey, s: &ConnectorSettings) -> Result<()> {
    tx.execute(Stmt::new(
        "INSERT INTO connector_settings (id, enabled, http_debug, tenant_id, client_id, client_secret_enc,
            certificate_pem, private_key_enc, challenge_timeout_min, graph_version, authority_url, graph_url,
            external_ref_slot, updated_at)
         VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (id) DO UPDATE SET enabled = excluded.enabled, http_debug = excluded.http_debug,
            tenant_id = excluded.tenant_id, client_id = excluded.client_id,
            client_secret_enc = excluded.client_secret_enc, certificate_pem = excluded.certificate_pem,
            private_key_enc = excluded.private_key_enc, challenge_timeout_min = excluded.challenge_timeout_min,
            graph_version = excluded.graph_version, authority_url = excluded.authority_url,
            graph_url = excluded.graph_url, external_ref_slot = excluded.external_ref_slot,
            updated_at = excluded.updated_at",
    )
    .bind(s.enabled as i64)
    .bind(s.http_debug as i64)
    .bind(s.tenant_id.clone())
    .bind(s.client_id.clone())
    .bind(s.client_secret.as_ref().map(|v| key.encrypt(SECRET_COL, v)))
    .bind(s.certificate_pem.clone())
    .bind(s.private_key_pem.as_ref().map(|v| key.encrypt(KEY_COL, v)))
    .bind(s.challenge_timeout_min)
    .bind(s.graph_version.clone())
    .bind(s.authority_url.clone())
    .bind(s.graph_url.clone())
    .bind(i64::from(s.external_ref_slot.number()))
    .bind(now_micros())
    )
    .await?;
    let detail = json!({
        "enabled": s.enabled, "tenant_id": s.tenant_id, "client_id": s.client_id,
        "auth": if s.certificate_pem.is_some() { "certificate" } else { "secret" },
        "graph_version": s.graph_version, "graph_url": s.graph_url,
    });
    audit::append(tx, AuditDraft::new(actor, "connector.update", "connector").detail(&detail));
    Ok(())
}

/// Loads the settings, decrypting the secrets with `key`; `None` before the first save.
pub async fn load(store: &Store, key: &SecretKey) -> Result<Option<ConnectorSettings>> {
    let Some(r) = Stmt::new("SELECT * FROM connector_settings WHERE id = 1").fetch_optional(store).await?
    else {
        return Ok(None);
    };
    let decrypt = |col: &str| -> Result<Option<SecretString>> {
        opt_text(&r, col)?.map(|v| key.decrypt(col, &v).map_err(StoreError::from)).transpose()
    };
    let slot = int(&r, "external_ref_slot")?;
    Ok(Some(ConnectorSettings {
        enabled: flag(&r, "enabled")?,
        http_debug: flag(&r, "http_debug")?,
        tenant_id: text(&r, "tenant_id")?,
        client_id: text(&r, "client_id")?,
        client_secret: decrypt(SECRET_COL)?,
        certificate_pem: opt_text(&r, "certificate_pem")?,
        private_key_pem: decrypt(KEY_COL)?,
        challenge_timeout_min: int(&r, "challenge_timeout_min")?,
        graph_version: text(&r, "graph_version")?,
        authority_url: text(&r, "authority_url")?,
        graph_url: text(&r, "graph_url")?,
        external_ref_slot: u8::try_from(slot)
            .ok()
            .and_then(|n| ExternalRefSlot::new(n).ok())
            .ok_or_else(|| StoreError::Corrupt(format!("external_ref_slot {slot}")))?,
    }))
}

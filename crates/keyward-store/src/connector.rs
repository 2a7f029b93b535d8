//! The Entra connector's settings: one row, with the client secret and the certificate's private
//! key encrypted under a [`SecretKey`] (see [`crate::secret`]); the certificate itself is public
//! and stored as PEM.
//!
//! **What a secret is bound to.** The encrypted values carry, as AES-GCM associated data, the
//! settings that decide where the secret goes and what it proves: tenant id, client id, authority
//! URL, Graph URL, Graph version, authentication mode (secret or certificate), the SHA-256 of the
//! certificate PEM when there is one, and the column name ([`binding`]). Someone who can write the
//! database but does not hold the key cannot point the connector at their own endpoint and keep
//! the secret: after such an edit [`load`] fails, before any request is made. The switches that
//! do not send the secret anywhere (enabled, HTTP debug, challenge timeout, reference slot) are
//! not bound, so they stay editable without re-entering it.

use keyward_core::{AuditDraft, ExternalRefSlot};
use secrecy::SecretString;
use serde_json::json;
use sha2::{Digest, Sha256};

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

/// The settings a stored secret is bound to (see the module doc).
struct Bound<'a> {
    tenant_id: &'a str,
    client_id: &'a str,
    authority_url: &'a str,
    graph_url: &'a str,
    graph_version: &'a str,
    certificate_pem: Option<&'a str>,
}

impl<'a> Bound<'a> {
    fn of(s: &'a ConnectorSettings) -> Self {
        Bound {
            tenant_id: &s.tenant_id,
            client_id: &s.client_id,
            authority_url: &s.authority_url,
            graph_url: &s.graph_url,
            graph_version: &s.graph_version,
            certificate_pem: s.certificate_pem.as_deref(),
        }
    }

    /// The associated data for `column`: a version tag and each field as an 8-byte big-endian
    /// length and its bytes (unambiguous, as in the audit chain).
    fn binding(&self, column: &str) -> Vec<u8> {
        let (mode, cert_hash) = match self.certificate_pem {
            Some(pem) => ("certificate", hex::encode(Sha256::digest(pem.as_bytes()))),
            None => ("secret", String::new()),
        };
        let mut out = Vec::new();
        for field in [
            "keyward-connector-secret v2",
            column,
            self.tenant_id,
            self.client_id,
            self.authority_url,
            self.graph_url,
            self.graph_version,
            mode,
            &cert_hash,
        ] {
            out.extend_from_slice(&(field.len() as u64).to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
        out
    }
}

/// Saves the settings, encrypting the secrets with `key`.
pub async fn save(tx: &mut Tx, actor: &str, key: &SecretKey, s: &ConnectorSettings) -> Result<()> {
    let bound = Bound::of(s);
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
    .bind(s.client_secret.as_ref().map(|v| key.encrypt(&bound.binding(SECRET_COL), v)))
    .bind(s.certificate_pem.clone())
    .bind(s.private_key_pem.as_ref().map(|v| key.encrypt(&bound.binding(KEY_COL), v)))
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

/// Loads the settings, decrypting the secrets with `key`; `None` before the first save. Fails
/// when a secret does not decrypt under the row as stored (see the module doc).
pub async fn load(store: &Store, key: &SecretKey) -> Result<Option<ConnectorSettings>> {
    let Some(r) = Stmt::new("SELECT * FROM connector_settings WHERE id = 1").fetch_optional(store).await?
    else {
        return Ok(None);
    };
    let mut s = settings_from_row(&r)?;
    let bound = Bound::of(&s);
    let decrypt = |col: &str| -> Result<Option<SecretString>> {
        opt_text(&r, col)?
            .map(|v| key.decrypt(col, &bound.binding(col), &v).map_err(StoreError::from))
            .transpose()
    };
    let (secret, private_key) = (decrypt(SECRET_COL)?, decrypt(KEY_COL)?);
    s.client_secret = secret;
    s.private_key_pem = private_key;
    Ok(Some(s))
}

/// The row's settings, secrets left out.
fn settings_from_row(r: &crate::stmt::Row) -> Result<ConnectorSettings> {
    let slot = int(r, "external_ref_slot")?;
    Ok(ConnectorSettings {
        enabled: flag(r, "enabled")?,
        http_debug: flag(r, "http_debug")?,
        tenant_id: text(r, "tenant_id")?,
        client_id: text(r, "client_id")?,
        client_secret: None,
        certificate_pem: opt_text(r, "certificate_pem")?,
        private_key_pem: None,
        challenge_timeout_min: int(r, "challenge_timeout_min")?,
        graph_version: text(r, "graph_version")?,
        authority_url: text(r, "authority_url")?,
        graph_url: text(r, "graph_url")?,
        external_ref_slot: u8::try_from(slot)
            .ok()
            .and_then(|n| ExternalRefSlot::new(n).ok())
            .ok_or_else(|| StoreError::Corrupt(format!("external_ref_slot {slot}")))?,
    })
}

/// Re-encrypts every stored secret from `old` to `new` in `tx` (for `keyward admin rotate-key`),
/// audited as `secret_key.rotate`; returns how many values were re-encrypted. Values still in the
/// first release's `v1` form come out as `v2`.
pub async fn rekey(tx: &mut Tx, actor: &str, old: &SecretKey, new: &SecretKey) -> Result<usize> {
    let row = Stmt::new("SELECT * FROM connector_settings WHERE id = 1").fetch_optional(&mut *tx).await?;
    let mut count = 0;
    if let Some(r) = row {
        let s = settings_from_row(&r)?;
        let bound = Bound::of(&s);
        let mut values = Vec::new();
        for col in [SECRET_COL, KEY_COL] {
            let value = match opt_text(&r, col)? {
                Some(v) => {
                    let plain = old.decrypt(col, &bound.binding(col), &v)?;
                    count += 1;
                    Some(new.encrypt(&bound.binding(col), &plain))
                }
                None => None,
            };
            values.push(value);
        }
        let [secret, private_key] = <[Option<String>; 2]>::try_from(values).expect("two columns");
        tx.execute(
            Stmt::new(
                "UPDATE connector_settings SET client_secret_enc = $1, private_key_enc = $2, updated_at = $3
                 WHERE id = 1",
            )
            .bind(secret)
            .bind(private_key)
            .bind(now_micros()),
        )
        .await?;
    }
    let detail = json!({ "old_key_id": old.id(), "new_key_id": new.id(), "values": count });
    audit::append(tx, AuditDraft::new(actor, "secret_key.rotate", "secret_key").detail(&detail));
    Ok(count)
}

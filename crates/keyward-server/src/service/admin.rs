//! The smaller operations: key inventory, enrollment policies, the tenant's FIDO2 policy,
//! Temporary Access Passes, the audit trail, API tokens and connector settings.

use keyward_core::{
    AuditDraft, EnrollmentPolicy, KeyState, Outcome, PersonId, Role, SecurityKey, SecurityKeyId,
};
use keyward_entra::ConnectorConfig;
use keyward_entra::certificate::{CertificateReport, validate_certificate};
use keyward_entra::connection::ConnectionReport;
use keyward_store::tokens::ApiToken;
use keyward_store::{audit, keys, policies, tokens};
use keyward_webauthn::policy::{Fido2Policy, TemporaryAccessPass, TemporaryAccessPassRequest};
use secrecy::SecretString;

use super::{Service, store_error};
use crate::error::ApiError;

impl Service {
    /// Adds a key to the inventory as `available`.
    pub async fn add_key(&self, actor: &str, key: SecurityKey) -> Result<SecurityKey, ApiError> {
        let mut tx = self.store.begin().await.map_err(store_error)?;
        keys::insert(&mut tx, actor, &key).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(key)
    }

    /// Moves a key to another lifecycle state; a key reported lost or disposed has its
    /// passkeys revoked first ("device removal"), so the key cannot sign in anywhere.
    pub async fn set_key_state(
        &self,
        actor: &str,
        id: SecurityKeyId,
        to: KeyState,
    ) -> Result<(SecurityKey, usize), ApiError> {
        let key = keys::get(&self.store, id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ApiError::NotFound(format!("key {id}")))?;
        key.state.transition(to).map_err(|e| ApiError::Conflict(e.to_string()))?;
        let revoked = if matches!(to, KeyState::Lost | KeyState::Disposed | KeyState::Suspended) {
            self.revoke_key_passkeys(actor, id, &format!("key {to}")).await?
        } else {
            0
        };
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let key = keys::set_state(&mut tx, actor, id, to).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok((key, revoked))
    }

    /// Creates or replaces a group's enrollment policy.
    pub async fn set_policy(
        &self,
        actor: &str,
        policy: EnrollmentPolicy,
    ) -> Result<EnrollmentPolicy, ApiError> {
        if policy.pin.min_length < 4 || policy.pin.min_length > 63 {
            return Err(ApiError::BadRequest(
                "pin_min_length must be between 4 and 63 (the CTAP limits)".into(),
            ));
        }
        let mut tx = self.store.begin().await.map_err(store_error)?;
        policies::upsert(&mut tx, actor, &policy).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        self.forget_policies();
        policies::get(&self.store, &policy.group)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ApiError::internal("policy vanished after saving"))
    }

    /// Deletes a group's enrollment policy.
    pub async fn delete_policy(&self, actor: &str, group: &str) -> Result<(), ApiError> {
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let found = policies::delete(&mut tx, actor, group).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        self.forget_policies();
        if found { Ok(()) } else { Err(ApiError::NotFound(format!("enrollment policy of group {group:?}"))) }
    }

    /// The tenant's FIDO2 method policy, read fresh.
    pub async fn entra_policy(&self) -> Result<Fido2Policy, ApiError> {
        let connector = self.connector.get(&self.store).await?;
        self.connector.forget_policy();
        self.connector.tenant_policy(&connector).await
    }

    /// Changes the tenant's FIDO2 method policy (only the given properties), audited.
    pub async fn update_entra_policy(
        &self,
        actor: &str,
        changes: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Fido2Policy, ApiError> {
        let connector = self.connector.get(&self.store).await?;
        let detail = serde_json::Value::Object(changes.clone());
        // The write lock is not held across the Graph call: audit the outcome right after it.
        let result = connector.update_fido2_policy(changes).await;
        let outcome = if result.is_ok() { Outcome::Success } else { Outcome::Failure };
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let draft = AuditDraft::new(actor, "entra-policy.update", "entra:fido2-policy")
            .outcome(outcome)
            .detail(&detail);
        audit::append(&mut tx, draft);
        tx.commit().await.map_err(store_error)?;
        result.map_err(|e| ApiError::Upstream(e.to_string()))?;
        self.entra_policy().await
    }

    /// Issues a Temporary Access Pass; the pass is returned once and never stored or logged.
    pub async fn issue_tap(
        &self,
        actor: &str,
        person: PersonId,
        lifetime_minutes: Option<u32>,
        once: Option<bool>,
    ) -> Result<(TemporaryAccessPass, SecretString), ApiError> {
        let p = self.find_person(&super::issuance::PersonRef::Id(person)).await?;
        let oid = p.issuable_object_id(self.slot).map_err(|e| ApiError::Refused(e.to_string()))?.to_owned();
        let connector = self.connector.get(&self.store).await?;
        let request = TemporaryAccessPassRequest {
            start_date_time: None,
            lifetime_in_minutes: lifetime_minutes,
            is_usable_once: once,
        };
        let issued =
            connector.create_tap(&oid, &request).await.map_err(|e| ApiError::Upstream(e.to_string()))?;
        let detail = serde_json::json!({
            "lifetime_minutes": issued.method.lifetime_in_minutes,
            "once": issued.method.is_usable_once,
        });
        let mut tx = self.store.begin().await.map_err(store_error)?;
        audit::append(
            &mut tx,
            AuditDraft::new(actor, "tap.issue", format!("person:{person}")).detail(&detail),
        );
        tx.commit().await.map_err(store_error)?;
        Ok((issued.method, issued.pass))
    }

    /// Creates an API token; the token is returned once.
    pub async fn create_token(
        &self,
        actor: &str,
        name: &str,
        role: Role,
    ) -> Result<(ApiToken, SecretString), ApiError> {
        if name.trim().is_empty() || name.len() > 64 {
            return Err(ApiError::BadRequest("a token name is 1–64 characters".into()));
        }
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let created = tokens::create(&mut tx, actor, name, role).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(created)
    }

    /// Revokes the token named `name` at once on this server.
    pub async fn revoke_token(&self, actor: &str, name: &str) -> Result<(), ApiError> {
        let all = tokens::list(&self.store).await.map_err(store_error)?;
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let found = tokens::revoke(&mut tx, actor, name).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        if !found {
            return Err(ApiError::NotFound(format!("live token named {name:?}")));
        }
        for t in all.iter().filter(|t| t.name == name) {
            self.forget_token(t.id);
        }
        Ok(())
    }

    /// Stores new connector settings, audited (never with the secret).
    pub async fn set_connector(&self, actor: &str, config: ConnectorConfig) -> Result<(), ApiError> {
        let mut tx = self.store.begin().await.map_err(store_error)?;
        self.connector.save(&mut tx, actor, &config, self.slot).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(())
    }

    /// "Test connection": token, a Graph read, and the permissions granted.
    pub async fn test_connector(&self) -> Result<ConnectionReport, ApiError> {
        let connector = self.connector.get(&self.store).await?;
        Ok(connector.test_connection().await)
    }

    /// "Validate certificate" for a PEM pair, or for the stored certificate when none is given.
    pub async fn validate_connector_certificate(
        &self,
        given: Option<(String, SecretString)>,
    ) -> Result<CertificateReport, ApiError> {
        let (cert, key) = match given {
            Some(pair) => pair,
            None => {
                let config = self.connector.load(&self.store).await?.ok_or_else(|| {
                    ApiError::Unavailable(
                        "no connector settings are stored; pass the certificate and key".into(),
                    )
                })?;
                match config.credential {
                    keyward_entra::Credential::Certificate { certificate_pem, private_key_pem, .. } => {
                        (certificate_pem, private_key_pem)
                    }
                    keyward_entra::Credential::Secret { .. } => {
                        return Err(ApiError::BadRequest(
                            "the connector uses a client secret; pass a certificate and key to validate"
                                .into(),
                        ));
                    }
                }
            }
        };
        validate_certificate(&cert, &key).map_err(|e| ApiError::BadRequest(e.to_string()))
    }
}

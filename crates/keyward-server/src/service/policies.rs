//! Policies: Keyward's enrollment policies per group, and the tenant's FIDO2 method policy in
//! Entra.

use keyward_core::{AuditDraft, EnrollmentMode, EnrollmentPolicy, Outcome, Permission, PinRules, PolicyId};
use keyward_store::policies;
use keyward_webauthn::policy::Fido2Policy;
use uuid::Uuid;

use super::cursor::{self, Listed};
use super::{Caller, Service, ServiceError};

/// A group's enrollment policy as an administrator sets it.
#[derive(Debug, Clone)]
pub struct PolicyChange {
    /// Disabled, optional or mandatory.
    pub mode: EnrollmentMode,
    /// PIN rules the key is set up with.
    pub pin: PinRules,
    /// Allowed models; empty: any.
    pub allowed_aaguids: Vec<Uuid>,
    /// Most registered passkeys a person may hold.
    pub max_passkeys_per_person: Option<u32>,
}

impl Service {
    /// One page of enrollment policies, by group name.
    pub async fn policies(
        &self,
        caller: &Caller,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Listed<EnrollmentPolicy>, ServiceError> {
        caller.require(Permission::PolicyRead)?;
        let limit = cursor::limit(limit)?;
        let after = after.map(|c| cursor::decode(c, 1)).transpose()?;
        let rows = policies::list(&self.store, after.as_ref().map(|k| k[0].as_str()), limit + 1).await?;
        Ok(Listed::page(rows, limit, |p| cursor::encode(&[&p.group])))
    }

    /// Creates or replaces a group's enrollment policy.
    pub async fn set_policy(
        &self,
        caller: &Caller,
        group: &str,
        change: PolicyChange,
    ) -> Result<EnrollmentPolicy, ServiceError> {
        caller.require(Permission::PolicyManage)?;
        if !(4..=63).contains(&change.pin.min_length) {
            return Err(ServiceError::Invalid(
                "pin_min_length must be between 4 and 63 (the CTAP limits)".into(),
            ));
        }
        let existing = policies::get(&self.store, group).await?;
        let policy = EnrollmentPolicy {
            id: existing.map(|p| p.id).unwrap_or_else(PolicyId::new),
            group: group.to_owned(),
            mode: change.mode,
            pin: change.pin,
            allowed_aaguids: change.allowed_aaguids,
            max_passkeys_per_person: change.max_passkeys_per_person,
        };
        let mut tx = self.store.begin().await?;
        policies::upsert(&mut tx, &caller.actor(), &policy).await?;
        tx.commit().await?;
        self.forget_policies();
        policies::get(&self.store, group)
            .await?
            .ok_or_else(|| ServiceError::internal("policy vanished after saving"))
    }

    /// Deletes a group's enrollment policy.
    pub async fn delete_policy(&self, caller: &Caller, group: &str) -> Result<(), ServiceError> {
        caller.require(Permission::PolicyManage)?;
        let mut tx = self.store.begin().await?;
        let found = policies::delete(&mut tx, &caller.actor(), group).await?;
        tx.commit().await?;
        self.forget_policies();
        if found {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!("enrollment policy of group {group:?}")))
        }
    }

    /// The tenant's FIDO2 method policy, read fresh.
    pub async fn entra_policy(&self, caller: &Caller) -> Result<Fido2Policy, ServiceError> {
        caller.require(Permission::PolicyRead)?;
        self.fresh_entra_policy().await
    }

    async fn fresh_entra_policy(&self) -> Result<Fido2Policy, ServiceError> {
        let connector = self.connector.get(&self.store).await?;
        self.connector.forget_policy();
        self.connector.tenant_policy(&connector).await
    }

    /// Changes the tenant's FIDO2 method policy (only the given properties), audited.
    pub async fn update_entra_policy(
        &self,
        caller: &Caller,
        changes: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Fido2Policy, ServiceError> {
        caller.require(Permission::PolicyManage)?;
        keyward_webauthn::policy::check_policy_patch(&changes).map_err(ServiceError::Invalid)?;
        let connector = self.connector.get(&self.store).await?;
        let actor = caller.actor();
        let subject = "entra:fido2-policy";
        let detail = serde_json::Value::Object(changes.clone());
        // The intent is in the chain before Entra is asked, the outcome right after (no write
        // lock is held across the Graph call), so a crash between them leaves the intent.
        self.record(AuditDraft::new(&actor, "entra-policy.update.intent", subject).detail(&detail)).await?;
        let result = connector.update_fido2_policy(changes).await;
        let (outcome, detail) = match &result {
            Ok(_) => (Outcome::Success, detail),
            Err(e) => (Outcome::Failure, serde_json::json!({"changes": detail, "error": e.to_string()})),
        };
        self.record(AuditDraft::new(actor, "entra-policy.update", subject).outcome(outcome).detail(&detail))
            .await?;
        // The whole change is the caller's: Graph refusing it (400) is their input's fault.
        result.map_err(|e| ServiceError::from_graph(&e))?;
        self.fresh_entra_policy().await
    }
}

//! Protected people: the members of configured Entra directory roles and groups (Global
//! Administrator, Privileged Authentication Administrator, a break-glass group) get a passkey or a
//! Temporary Access Pass only from an admin, and, when approval is on, with a second admin's
//! approval. A helpdesk token must not be able to take over a directory administrator's account
//! with a TAP.
//!
//! Membership is read from Graph (`/directoryRoles` and their members, the members of each
//! protected group) and kept for a minute as one set of object ids, so a bulk run does not read
//! the roles once per person. When Graph cannot say who is protected (a permission missing, Entra
//! away), the person is treated as protected: a non-admin is refused with the reason, and an
//! admin is not slowed down at all (an admin may act for anyone).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use keyward_core::{Issuance, Person};

use super::{Caller, Service, ServiceError};

/// How long the set of protected object ids is reused.
const PROTECTED_CACHE: Duration = Duration::from_secs(60);

/// The protected object ids, when last read.
#[derive(Debug, Default)]
pub(crate) struct ProtectedCache(std::sync::Mutex<Option<(Instant, HashSet<String>)>>);

impl Service {
    /// The object ids of every member of the protected roles and groups (cached a minute).
    async fn protected_ids(&self) -> Result<HashSet<String>, ServiceError> {
        if let Some((at, ids)) = self.protected.0.lock().expect("protected cache poisoned").as_ref()
            && at.elapsed() < PROTECTED_CACHE
        {
            return Ok(ids.clone());
        }
        let connector = self.connector.get(&self.store).await?;
        let unreadable = |what: &str, e: keyward_entra::GraphError| {
            ServiceError::Entra(format!(
                "cannot tell whether the person is protected: reading {what} failed ({e}); grant the app \
                 RoleManagement.Read.Directory and GroupMember.Read.All, or ask an admin to do this"
            ))
        };
        let mut ids = HashSet::new();
        let wanted = &self.config.protected_roles;
        if !wanted.is_empty() {
            let roles =
                connector.list_directory_roles().await.map_err(|e| unreadable("directory roles", e))?;
            for role in roles.iter().filter(|r| {
                r.display_name.as_deref().is_some_and(|n| wanted.iter().any(|w| w.eq_ignore_ascii_case(n)))
                    || r.role_template_id
                        .as_deref()
                        .is_some_and(|t| wanted.iter().any(|w| w.eq_ignore_ascii_case(t)))
            }) {
                let members = connector
                    .list_directory_role_members(&role.id)
                    .await
                    .map_err(|e| unreadable("the members of a directory role", e))?;
                ids.extend(members.into_iter().map(|m| m.to_ascii_lowercase()));
            }
        }
        for name in &self.config.protected_groups {
            let group =
                connector.find_group_by_name(name).await.map_err(|e| unreadable("a protected group", e))?;
            let Some(group) = group else {
                return Err(ServiceError::Refused(format!(
                    "the protected group {name:?} does not exist in Entra; fix protected_groups in the configuration"
                )));
            };
            let members = connector
                .list_group_members(&group.id, &["id"])
                .await
                .map_err(|e| unreadable("the members of a protected group", e))?;
            ids.extend(members.into_iter().map(|m| m.id.to_ascii_lowercase()));
        }
        *self.protected.0.lock().expect("protected cache poisoned") = Some((Instant::now(), ids.clone()));
        Ok(ids)
    }

    /// Whether `person` is protected; `None` config lists mean nobody is.
    async fn is_protected(&self, person: &Person) -> Result<bool, ServiceError> {
        if self.config.protected_roles.is_empty() && self.config.protected_groups.is_empty() {
            return Ok(false);
        }
        let Some(oid) = person.entra_object_id(self.slot) else { return Ok(false) };
        Ok(self.protected_ids().await?.contains(&oid.to_ascii_lowercase()))
    }

    /// Refuses `what` (a TAP, a passkey) for a protected person unless the caller is an admin.
    pub(crate) async fn require_admin_if_protected(
        &self,
        caller: &Caller,
        person: &Person,
        what: &str,
    ) -> Result<(), ServiceError> {
        if caller.is_admin() {
            return Ok(());
        }
        let protected = self.is_protected(person).await.map_err(|e| match e {
            ServiceError::Entra(why) => ServiceError::Protected(why),
            e => e,
        })?;
        if protected {
            return Err(ServiceError::Protected(format!(
                "{} is a protected person (a member of a protected directory role or group): only an admin may issue {what} for them",
                person.upn
            )));
        }
        Ok(())
    }

    /// Refuses the approval of an issuance for a protected person unless the approver is an
    /// admin (the second admin: the requester cannot approve their own issuance anyway).
    pub(crate) async fn require_admin_approval_if_protected(
        &self,
        caller: &Caller,
        issuance: &Issuance,
        person: &Person,
    ) -> Result<(), ServiceError> {
        if !issuance.approval_required {
            return Ok(());
        }
        self.require_admin_if_protected(caller, person, "the approval of a passkey").await
    }

    /// Forgets the protected set (tests; after a configuration change).
    pub fn forget_protected(&self) {
        *self.protected.0.lock().expect("protected cache poisoned") = None;
    }
}

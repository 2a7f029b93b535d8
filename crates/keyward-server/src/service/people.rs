//! People: look-up, Entra links, sync from Entra, leavers, and revoking passkeys.
//!
//! Sync reads users with `$select` (so `accountEnabled` is present) and pages through them, then
//! reads the members of every group that has an enrollment policy, so each person's groups are
//! known without one `memberOf` call per user. A linked person whom a full sync no longer finds is
//! marked deleted in Entra; a disabled account is marked disabled. Both are leavers: when
//! `revoke_on_leave` is set, their managed passkeys are revoked (deleted from Entra where the
//! account still exists), each with an audit event.

use std::collections::{HashMap, HashSet};

use keyward_core::{LinkMethod, Passkey, PasskeyId, PasskeyState, Person, PersonId, SecurityKeyId};
use keyward_entra::ops::{USER_SELECT, User};
use keyward_store::people::{EntraUser, Upserted};
use keyward_store::{passkeys, people};

use super::{Service, store_error};
use crate::error::ApiError;
use crate::metrics::Metrics;

/// What a sync did.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct SyncReport {
    /// Users read from Entra.
    pub seen: usize,
    /// People created.
    pub created: usize,
    /// People whose details changed.
    pub updated: usize,
    /// Linked people not found in Entra any more.
    pub deleted: usize,
    /// People whose account is disabled.
    pub disabled: usize,
    /// Passkeys revoked because their owner left.
    pub revoked: usize,
}

impl Service {
    /// Links a person to an Entra account, by object id or by looking the UPN up in Entra.
    pub async fn link_person(
        &self,
        actor: &str,
        id: PersonId,
        object_id: Option<&str>,
        upn: Option<&str>,
    ) -> Result<Person, ApiError> {
        let (oid, method) = match (object_id, upn) {
            (Some(oid), None) => {
                uuid::Uuid::parse_str(oid).map_err(|_| {
                    ApiError::BadRequest(format!("{oid:?} is not an Entra object id (a GUID)"))
                })?;
                (oid.to_owned(), LinkMethod::ObjectId)
            }
            (None, Some(upn)) => {
                let connector = self.connector.get(&self.store).await?;
                let user = connector.get_user(upn, USER_SELECT).await.map_err(|e| {
                    if e.status() == Some(404) {
                        ApiError::NotFound(format!("Entra user {upn}"))
                    } else {
                        ApiError::Upstream(e.to_string())
                    }
                })?;
                (user.id, LinkMethod::Upn)
            }
            _ => return Err(ApiError::BadRequest("give exactly one of `object_id` or `upn`".into())),
        };
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let person =
            people::set_link(&mut tx, actor, id, self.slot, &oid, method).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(person)
    }

    /// Syncs people from Entra: all users, or the members of one group.
    pub async fn sync_people(&self, actor: &str, group: Option<&str>) -> Result<SyncReport, ApiError> {
        let connector = self.connector.get(&self.store).await?;
        let upstream = |e: keyward_entra::GraphError| ApiError::Upstream(e.to_string());
        let users: Vec<User> = match group {
            Some(name) => {
                let g = connector
                    .find_group_by_name(name)
                    .await
                    .map_err(upstream)?
                    .ok_or_else(|| ApiError::NotFound(format!("Entra group {name:?}")))?;
                connector.list_group_members(&g.id, USER_SELECT).await.map_err(upstream)?
            }
            None => connector.list_users(USER_SELECT, 999).await.map_err(upstream)?,
        };
        // Groups that matter: those with an enrollment policy.
        let mut groups_of: HashMap<String, Vec<String>> = HashMap::new();
        for policy in self.enrollment_policies().await? {
            let Some(g) = connector.find_group_by_name(&policy.group).await.map_err(upstream)? else {
                continue;
            };
            for member in connector.list_group_members(&g.id, &["id"]).await.map_err(upstream)? {
                groups_of.entry(member.id).or_default().push(policy.group.clone());
            }
        }
        let mut report = SyncReport { seen: users.len(), ..Default::default() };
        let mut seen_ids = HashSet::new();
        let mut leavers = Vec::new();
        let mut tx = self.store.begin().await.map_err(store_error)?;
        for u in &users {
            let Some(upn) = u.user_principal_name.clone() else { continue };
            seen_ids.insert(u.id.clone());
            let entra = EntraUser {
                object_id: u.id.clone(),
                upn: upn.clone(),
                display_name: u.display_name.clone().unwrap_or(upn),
                enabled: u.account_enabled.unwrap_or(true),
                groups: groups_of.get(&u.id).cloned().unwrap_or_default(),
            };
            let (person, what) =
                people::upsert_from_entra(&mut tx, actor, self.slot, &entra).await.map_err(store_error)?;
            match what {
                Upserted::Created => report.created += 1,
                Upserted::Updated => report.updated += 1,
                Upserted::Unchanged => {}
            }
            if !person.enabled {
                report.disabled += 1;
                leavers.push(person);
            }
        }
        if group.is_none() {
            for person in people::list_linked(&self.store, self.slot).await.map_err(store_error)? {
                let gone = person.entra_object_id(self.slot).is_some_and(|oid| !seen_ids.contains(oid));
                if gone && !person.deleted_in_entra {
                    people::mark_deleted(&mut tx, actor, person.id).await.map_err(store_error)?;
                    report.deleted += 1;
                    leavers.push(Person { deleted_in_entra: true, ..person });
                }
            }
        }
        tx.commit().await.map_err(store_error)?;
        if self.config.revoke_on_leave {
            for person in leavers {
                report.revoked +=
                    self.revoke_person_passkeys(actor, person.id, "left the organisation").await?;
            }
        }
        Ok(report)
    }

    /// Revokes one passkey: deleted from Entra (already gone is fine), then recorded revoked.
    pub async fn revoke_passkey(
        &self,
        actor: &str,
        id: PasskeyId,
        reason: &str,
    ) -> Result<Passkey, ApiError> {
        let passkey = passkeys::get(&self.store, id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ApiError::NotFound(format!("passkey {id}")))?;
        if passkey.state == PasskeyState::Revoked {
            return Err(ApiError::Conflict(format!("passkey {id} is already revoked")));
        }
        let revoked = self.revoke_many(actor, vec![passkey], reason).await?;
        revoked
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::Upstream(format!("Entra did not delete passkey {id}")))
    }

    /// Revokes every registered passkey of a person; returns how many.
    pub async fn revoke_person_passkeys(
        &self,
        actor: &str,
        id: PersonId,
        reason: &str,
    ) -> Result<usize, ApiError> {
        let all = passkeys::list_by_person(&self.store, id).await.map_err(store_error)?;
        let live: Vec<Passkey> = all.into_iter().filter(|p| p.state == PasskeyState::Registered).collect();
        Ok(self.revoke_many(actor, live, reason).await?.len())
    }

    /// Revokes every registered passkey on a key ("device removal"); returns how many.
    pub async fn revoke_key_passkeys(
        &self,
        actor: &str,
        id: SecurityKeyId,
        reason: &str,
    ) -> Result<usize, ApiError> {
        let all = passkeys::list_by_key(&self.store, id).await.map_err(store_error)?;
        let live: Vec<Passkey> = all.into_iter().filter(|p| p.state == PasskeyState::Registered).collect();
        Ok(self.revoke_many(actor, live, reason).await?.len())
    }

    /// Deletes the passkeys from Entra with `$batch` and records each one that is gone.
    async fn revoke_many(
        &self,
        actor: &str,
        list: Vec<Passkey>,
        reason: &str,
    ) -> Result<Vec<Passkey>, ApiError> {
        if list.is_empty() {
            return Ok(vec![]);
        }
        let mut to_delete = Vec::new();
        let mut owners: HashMap<PersonId, Person> = HashMap::new();
        for p in &list {
            if !owners.contains_key(&p.person_id)
                && let Some(person) = people::get(&self.store, p.person_id).await.map_err(store_error)?
            {
                owners.insert(p.person_id, person);
            }
            let owner = owners.get(&p.person_id);
            let oid = owner.filter(|o| !o.deleted_in_entra).and_then(|o| o.entra_object_id(self.slot));
            if let (Some(oid), Some(method)) = (oid, &p.entra_method_id) {
                to_delete.push((p.id, oid.to_owned(), method.clone()));
            }
        }
        let mut failed: HashSet<PasskeyId> = HashSet::new();
        let mut first_error = None;
        if !to_delete.is_empty() {
            let connector = self.connector.get(&self.store).await?;
            let pairs: Vec<(String, String)> =
                to_delete.iter().map(|(_, u, m)| (u.clone(), m.clone())).collect();
            let results = connector
                .delete_fido2_methods(&pairs)
                .await
                .map_err(|e| ApiError::Upstream(e.to_string()))?;
            for ((id, _, _), r) in to_delete.iter().zip(results) {
                if !r.is_success_or_gone() {
                    failed.insert(*id);
                    first_error.get_or_insert_with(|| {
                        format!("status {} {}", r.status, r.error_code().unwrap_or(""))
                    });
                }
            }
        }
        let mut done = Vec::new();
        let mut tx = self.store.begin().await.map_err(store_error)?;
        for p in list.into_iter().filter(|p| !failed.contains(&p.id)) {
            done.push(passkeys::revoke(&mut tx, actor, &p, reason).await.map_err(store_error)?);
            Metrics::count(&self.metrics.revocations, "revoked");
        }
        tx.commit().await.map_err(store_error)?;
        if let Some(e) = first_error
            && done.is_empty()
        {
            return Err(ApiError::Upstream(format!("Entra refused to delete the passkey: {e}")));
        }
        Ok(done)
    }
}

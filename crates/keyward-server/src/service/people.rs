//! People: look-up, Entra links, sync from Entra, leavers, and revoking passkeys.
//!
//! Sync reads users with `$select` (so `accountEnabled` is present) and pages through them, then
//! reads the members of every group that has an enrollment policy, so each person's groups are
//! known without one `memberOf` call per user. A linked person whom a full sync no longer finds is
//! marked deleted in Entra; a disabled account is marked disabled. Both are leavers: when
//! `revoke_on_leave` is set, their managed passkeys are revoked (deleted from Entra where the
//! account still exists), each with an audit event.

use std::collections::{HashMap, HashSet};

use keyward_core::{
    AuditDraft, LinkMethod, Passkey, PasskeyId, PasskeyState, Permission, Person, PersonId, SecurityKey,
};
use keyward_entra::ops::{USER_SELECT, User};
use keyward_proto::people::SyncReport;
use keyward_store::people::{EntraUser, Upserted};
use keyward_store::{audit, keys, passkeys, people};
use keyward_webauthn::policy::{TemporaryAccessPass, TemporaryAccessPassRequest};
use secrecy::SecretString;

use super::cursor::{self, Listed};
use super::issuance::PersonRef;
use super::{Caller, Service, ServiceError};
use crate::metrics::Metrics;

/// A person with the keys and passkeys Keyward holds for them.
#[derive(Debug, Clone)]
pub struct PersonRecord {
    /// The person.
    pub person: Person,
    /// The keys holding any of their passkeys.
    pub keys: Vec<SecurityKey>,
    /// Their passkeys, managed and discovered, oldest first.
    pub passkeys: Vec<Passkey>,
}

impl Service {
    /// One page of people in UPN order, those whose UPN or display name contains `search`.
    pub async fn people(
        &self,
        caller: &Caller,
        search: Option<&str>,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Listed<Person>, ServiceError> {
        caller.require(Permission::PeopleRead)?;
        let limit = cursor::limit(limit)?;
        let after = after.map(|c| cursor::decode(c, 1)).transpose()?;
        let after_upn = after.as_ref().map(|k| k[0].as_str());
        let rows = people::list(&self.store, search, after_upn, limit + 1).await?;
        Ok(Listed::page(rows, limit, |p| cursor::encode(&[&p.upn])))
    }

    /// A person (by id or UPN) with their keys and passkeys.
    pub async fn person(&self, caller: &Caller, who: &PersonRef) -> Result<PersonRecord, ServiceError> {
        caller.require(Permission::PeopleRead)?;
        let person = self.find_person(who).await?;
        let passkeys = passkeys::list_by_person(&self.store, person.id).await?;
        let keys = keys::list_by_person(&self.store, person.id).await?;
        Ok(PersonRecord { person, keys, passkeys })
    }

    /// Links a person to an Entra account, by object id or by looking the UPN up in Entra.
    pub async fn link_person(
        &self,
        caller: &Caller,
        who: &PersonRef,
        object_id: Option<&str>,
        upn: Option<&str>,
    ) -> Result<Person, ServiceError> {
        caller.require(Permission::PeopleLink)?;
        if let Some(upn) = upn {
            check_upn(upn)?;
        }
        let id = self.find_person(who).await?.id;
        let (oid, method) = match (object_id, upn) {
            (Some(oid), None) => {
                uuid::Uuid::parse_str(oid).map_err(|_| {
                    ServiceError::Invalid(format!("{oid:?} is not an Entra object id (a GUID)"))
                })?;
                (oid.to_owned(), LinkMethod::ObjectId)
            }
            (None, Some(upn)) => {
                let connector = self.connector.get(&self.store).await?;
                let user = connector.get_user(upn, USER_SELECT).await.map_err(|e| {
                    if e.status() == Some(404) {
                        ServiceError::NotFound(format!("Entra user {upn}"))
                    } else {
                        ServiceError::Entra(e.to_string())
                    }
                })?;
                (user.id, LinkMethod::Upn)
            }
            _ => return Err(ServiceError::Invalid("give exactly one of `object_id` or `upn`".into())),
        };
        let mut tx = self.store.begin().await?;
        let person = people::set_link(&mut tx, &caller.actor(), id, self.slot, &oid, method).await?;
        tx.commit().await?;
        Ok(person)
    }

    /// Syncs people from Entra: all users, or the members of one group.
    pub async fn sync_people(
        &self,
        caller: &Caller,
        group: Option<&str>,
    ) -> Result<SyncReport, ServiceError> {
        caller.require(Permission::PeopleSync)?;
        let actor = &caller.actor();
        let connector = self.connector.get(&self.store).await?;
        let upstream = |e: keyward_entra::GraphError| ServiceError::Entra(e.to_string());
        let users: Vec<User> = match group {
            Some(name) => {
                let g = connector
                    .find_group_by_name(name)
                    .await
                    .map_err(upstream)?
                    .ok_or_else(|| ServiceError::NotFound(format!("Entra group {name:?}")))?;
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
        let mut tx = self.store.begin().await?;
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
            let (person, what) = people::upsert_from_entra(&mut tx, actor, self.slot, &entra).await?;
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
            for person in people::list_linked(&self.store, self.slot).await? {
                let gone = person.entra_object_id(self.slot).is_some_and(|oid| !seen_ids.contains(oid));
                if gone && !person.deleted_in_entra {
                    people::mark_deleted(&mut tx, actor, person.id).await?;
                    report.deleted += 1;
                    leavers.push(Person { deleted_in_entra: true, ..person });
                }
            }
        }
        tx.commit().await?;
        if self.config.revoke_on_leave {
            for person in leavers {
                report.revoked +=
                    self.revoke_all_of_person(actor, person.id, "left the organisation").await?;
            }
        }
        Ok(report)
    }

    /// Issues a Temporary Access Pass; the pass is returned once and never stored or logged.
    pub async fn issue_tap(
        &self,
        caller: &Caller,
        who: &PersonRef,
        lifetime_minutes: Option<u32>,
        once: Option<bool>,
    ) -> Result<(TemporaryAccessPass, SecretString), ServiceError> {
        caller.require(Permission::TapIssue)?;
        if let Some(minutes) = lifetime_minutes
            && !TAP_LIFETIME_MINUTES.contains(&minutes)
        {
            return Err(ServiceError::Invalid(format!(
                "lifetime_minutes {minutes} is out of range: a Temporary Access Pass lives 10 to 43200 minutes (30 days), within the tenant's TAP policy"
            )));
        }
        let p = self.find_person(who).await?;
        let oid =
            p.issuable_object_id(self.slot).map_err(|e| ServiceError::Refused(e.to_string()))?.to_owned();
        let connector = self.connector.get(&self.store).await?;
        let request = TemporaryAccessPassRequest {
            start_date_time: None,
            lifetime_in_minutes: lifetime_minutes,
            is_usable_once: once,
        };
        let issued = connector.create_tap(&oid, &request).await.map_err(|e| ServiceError::from_graph(&e))?;
        let detail = serde_json::json!({
            "lifetime_minutes": issued.method.lifetime_in_minutes,
            "once": issued.method.is_usable_once,
        });
        let mut tx = self.store.begin().await?;
        let subject = format!("person:{}", p.id);
        audit::append(&mut tx, AuditDraft::new(caller.actor(), "tap.issue", subject).detail(&detail));
        tx.commit().await?;
        Ok((issued.method, issued.pass))
    }

    /// Revokes one passkey: deleted from Entra (already gone is fine), then recorded revoked.
    pub async fn revoke_passkey(
        &self,
        caller: &Caller,
        id: PasskeyId,
        reason: &str,
    ) -> Result<Passkey, ServiceError> {
        caller.require(Permission::PasskeysRevoke)?;
        let actor = &caller.actor();
        let passkey = passkeys::get(&self.store, id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("passkey {id}")))?;
        if passkey.state == PasskeyState::Revoked {
            return Err(ServiceError::Conflict(format!("passkey {id} is already revoked")));
        }
        let revoked = self.revoke_many(actor, vec![passkey], reason).await?;
        revoked
            .into_iter()
            .next()
            .ok_or_else(|| ServiceError::Entra(format!("Entra did not delete passkey {id}")))
    }

    /// Revokes every registered passkey of a person (by id or UPN); returns how many.
    pub async fn revoke_person_passkeys(
        &self,
        caller: &Caller,
        who: &PersonRef,
        reason: &str,
    ) -> Result<usize, ServiceError> {
        caller.require(Permission::PasskeysRevoke)?;
        let id = self.find_person(who).await?.id;
        self.revoke_all_of_person(&caller.actor(), id, reason).await
    }

    /// Revokes every registered passkey of a person on behalf of an operation that checked its
    /// own permission (a sync's leavers).
    async fn revoke_all_of_person(
        &self,
        actor: &str,
        id: PersonId,
        reason: &str,
    ) -> Result<usize, ServiceError> {
        let all = passkeys::list_by_person(&self.store, id).await?;
        let live: Vec<Passkey> = all.into_iter().filter(|p| p.state == PasskeyState::Registered).collect();
        Ok(self.revoke_many(actor, live, reason).await?.len())
    }

    /// Revokes every registered passkey on a key (by id or serial: "device removal"); returns
    /// how many.
    pub async fn revoke_key_passkeys(
        &self,
        caller: &Caller,
        key: &str,
        reason: &str,
    ) -> Result<usize, ServiceError> {
        caller.require(Permission::PasskeysRevoke)?;
        let id = self.find_key(key).await?.id;
        self.revoke_all_on_key(&caller.actor(), id, reason).await
    }

    /// Revokes every registered passkey on a key for an operation that checked its own
    /// permission (a key reported lost).
    pub(crate) async fn revoke_all_on_key(
        &self,
        actor: &str,
        id: keyward_core::SecurityKeyId,
        reason: &str,
    ) -> Result<usize, ServiceError> {
        let all = passkeys::list_by_key(&self.store, id).await?;
        let live: Vec<Passkey> = all.into_iter().filter(|p| p.state == PasskeyState::Registered).collect();
        Ok(self.revoke_many(actor, live, reason).await?.len())
    }

    /// Deletes the passkeys from Entra with `$batch` and records each one that is gone.
    async fn revoke_many(
        &self,
        actor: &str,
        list: Vec<Passkey>,
        reason: &str,
    ) -> Result<Vec<Passkey>, ServiceError> {
        if list.is_empty() {
            return Ok(vec![]);
        }
        let mut to_delete = Vec::new();
        let mut owners: HashMap<PersonId, Person> = HashMap::new();
        for p in &list {
            if !owners.contains_key(&p.person_id)
                && let Some(person) = people::get(&self.store, p.person_id).await?
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
                .map_err(|e| ServiceError::Entra(e.to_string()))?;
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
        let mut tx = self.store.begin().await?;
        for p in list.into_iter().filter(|p| !failed.contains(&p.id)) {
            done.push(passkeys::revoke(&mut tx, actor, &p, reason).await?);
            Metrics::count(&self.metrics.revocations, "revoked");
        }
        tx.commit().await?;
        if let Some(e) = first_error
            && done.is_empty()
        {
            return Err(ServiceError::Entra(format!("Entra refused to delete the passkey: {e}")));
        }
        Ok(done)
    }
}

/// The lifetimes Graph allows a Temporary Access Pass, in minutes (the TAP policy's minimum and
/// maximum lifetime both range over 10 to 43200); the tenant's policy may narrow it further.
pub const TAP_LIFETIME_MINUTES: std::ops::RangeInclusive<u32> = 10..=43_200;

/// Refuses what cannot be a user principal name before it reaches a Graph URL.
fn check_upn(upn: &str) -> Result<(), ServiceError> {
    if keyward_core::is_plausible_upn(upn) {
        return Ok(());
    }
    let shown: String = upn.chars().take(keyward_core::MAX_UPN_CHARS).collect();
    Err(ServiceError::Invalid(format!(
        "{shown:?} is not a user principal name: give one like ada@contoso.com (at most {} characters, no spaces)",
        keyward_core::MAX_UPN_CHARS
    )))
}

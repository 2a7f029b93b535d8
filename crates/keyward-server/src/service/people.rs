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
    AuditDraft, LinkMethod, Outcome, Passkey, PasskeyId, PasskeyState, Permission, Person, PersonId,
    SecurityKey,
};
use keyward_entra::ops::{USER_SELECT, User};
use keyward_proto::people::SyncReport;
use keyward_store::people::{EntraUser, Upserted};
use keyward_store::{keys, passkeys, people};
use keyward_webauthn::policy::{TemporaryAccessPass, TemporaryAccessPassRequest};
use secrecy::SecretString;

use super::cursor::{self, Listed};
use super::issuance::PersonRef;
use super::{Caller, Service, ServiceError};
use crate::metrics::Metrics;

/// How to link a person to an Entra account: exactly one of `object_id` and `upn`.
#[derive(Debug, Clone, Default)]
pub struct LinkChange {
    /// The account's object id.
    pub object_id: Option<String>,
    /// A UPN to look the account up by.
    pub upn: Option<String>,
    /// Link to an account whose UPN is not the person's own (admin only; audited).
    pub allow_other_upn: bool,
    /// Relink a person who holds passkeys or open issuances: revoke and cancel them first
    /// (admin only).
    pub revoke_existing: bool,
}

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
    ///
    /// The account is read from Entra either way, and its UPN must be the person's own (an admin
    /// may override, audited); an object id already linked to another person is refused. A
    /// person who already holds passkeys or open issuances under another account is relinked
    /// only by an admin who asks for them to be revoked and cancelled first: otherwise the
    /// passkeys would stay live on the old account with nobody managing them.
    pub async fn link_person(
        &self,
        caller: &Caller,
        who: &PersonRef,
        change: &LinkChange,
    ) -> Result<Person, ServiceError> {
        caller.require(Permission::PeopleLink)?;
        if change.allow_other_upn || change.revoke_existing {
            caller.require(Permission::PeopleRelink)?;
        }
        let key = match (change.object_id.as_deref(), change.upn.as_deref()) {
            (Some(oid), None) => {
                uuid::Uuid::parse_str(oid).map_err(|_| {
                    ServiceError::Invalid(format!("{oid:?} is not an Entra object id (a GUID)"))
                })?;
                oid
            }
            (None, Some(upn)) => {
                check_upn(upn)?;
                upn
            }
            _ => return Err(ServiceError::Invalid("give exactly one of `object_id` or `upn`".into())),
        };
        let person = self.find_person(who).await?;
        let connector = self.connector.get(&self.store).await?;
        let user = connector.get_user(key, USER_SELECT).await.map_err(|e| {
            if e.status() == Some(404) {
                ServiceError::NotFound(format!("Entra user {key}"))
            } else {
                ServiceError::Entra(e.to_string())
            }
        })?;
        let entra_upn = user.user_principal_name.clone().unwrap_or_default();
        if !entra_upn.eq_ignore_ascii_case(&person.upn) && !change.allow_other_upn {
            return Err(ServiceError::Refused(format!(
                "the Entra account {} signs in as {entra_upn:?}, not as {}: a person is linked to their own account; \
                 an admin may link it anyway with allow_other_upn, which is audited",
                user.id, person.upn
            )));
        }
        let oid = uuid::Uuid::parse_str(&user.id)
            .map_err(|_| {
                ServiceError::Entra(format!("Entra answered an object id that is not a GUID: {:?}", user.id))
            })?
            .hyphenated()
            .to_string();
        if let Some(other) = people::get_by_object_id(&self.store, self.slot, &oid).await?
            && other.id != person.id
        {
            return Err(ServiceError::Conflict(format!(
                "Entra account {oid} is already linked to {}; unlink that person first",
                other.upn
            )));
        }
        let previous = person.entra_object_id(self.slot).map(str::to_owned);
        if previous.as_deref() == Some(oid.as_str()) {
            return Ok(person);
        }
        if previous.is_some() {
            self.clear_before_relink(caller, &person, change.revoke_existing).await?;
        }
        let method = if change.object_id.is_some() { LinkMethod::ObjectId } else { LinkMethod::Upn };
        let link = people::Link {
            object_id: &oid,
            method,
            previous: previous.as_deref(),
            entra_upn: &entra_upn,
            upn_override: !entra_upn.eq_ignore_ascii_case(&person.upn),
        };
        let mut tx = self.store.begin().await?;
        let person = people::set_link(&mut tx, &caller.actor(), person.id, self.slot, &link).await?;
        tx.commit().await?;
        Ok(person)
    }

    /// Before a relink: refuses while the person holds passkeys or open issuances under their
    /// current account, unless `revoke` (an admin's explicit choice), which revokes the passkeys
    /// in Entra and cancels the issuances first.
    async fn clear_before_relink(
        &self,
        caller: &Caller,
        person: &Person,
        revoke: bool,
    ) -> Result<(), ServiceError> {
        let held = passkeys::list_by_person(&self.store, person.id).await?;
        if held.iter().any(|p| p.state == PasskeyState::Pending) {
            return Err(ServiceError::Conflict(format!(
                "{} has a registration whose outcome is not known yet; reconcile their passkeys before relinking",
                person.upn
            )));
        }
        let live = held.iter().filter(|p| p.state == PasskeyState::Registered).count();
        let open = self.open_issuances_of(person.id).await?;
        if live + open.len() == 0 {
            return Ok(());
        }
        if !revoke {
            return Err(ServiceError::Conflict(format!(
                "{} holds {live} registered passkey(s) and {} open issuance(s) under their current Entra account; \
                 an admin may relink with revoke_existing, which revokes and cancels them first",
                person.upn,
                open.len()
            )));
        }
        let actor = caller.actor();
        self.revoke_all_of_person(&actor, person.id, "relinked to another Entra account").await?;
        for mut issuance in open {
            let from = issuance.state;
            issuance
                .transition(keyward_core::IssuanceState::Cancelled)
                .map_err(|e| ServiceError::Conflict(e.to_string()))?;
            self.save_transition(&actor, &issuance, from).await?;
        }
        let left = passkeys::list_by_person(&self.store, person.id).await?;
        if left.iter().any(|p| p.state == PasskeyState::Registered) {
            return Err(ServiceError::Entra(format!(
                "not every passkey of {} could be revoked in Entra; the link is unchanged, try again",
                person.upn
            )));
        }
        Ok(())
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
    ///
    /// The intent is audited before Entra is asked and the outcome after, success or failure.
    /// A protected person gets a TAP only from an admin; a helpdesk token's TAPs are single-use
    /// and at most the configured lifetime.
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
        let (lifetime_minutes, once) = self.tap_limits_for(caller, lifetime_minutes, once)?;
        let p = self.find_person(who).await?;
        let oid =
            p.issuable_object_id(self.slot).map_err(|e| ServiceError::Refused(e.to_string()))?.to_owned();
        self.require_admin_if_protected(caller, &p, "a Temporary Access Pass").await?;
        let connector = self.connector.get(&self.store).await?;
        let request = TemporaryAccessPassRequest {
            start_date_time: None,
            lifetime_in_minutes: lifetime_minutes,
            is_usable_once: once,
        };
        let actor = caller.actor();
        let subject = format!("person:{}", p.id);
        let intent =
            serde_json::json!({"object_id": oid, "lifetime_minutes": lifetime_minutes, "once": once});
        self.record(AuditDraft::new(&actor, "tap.issue.intent", &subject).detail(&intent)).await?;
        let issued = match connector.create_tap(&oid, &request).await {
            Ok(issued) => issued,
            Err(e) => {
                let detail = serde_json::json!({"object_id": oid, "error": e.to_string()});
                let failed = AuditDraft::new(&actor, "tap.issue", &subject).outcome(Outcome::Failure);
                self.record(failed.detail(&detail)).await?;
                return Err(ServiceError::from_graph(&e));
            }
        };
        let detail = serde_json::json!({
            "object_id": oid,
            "lifetime_minutes": issued.method.lifetime_in_minutes,
            "once": issued.method.is_usable_once,
        });
        self.record(AuditDraft::new(actor, "tap.issue", subject).detail(&detail)).await?;
        Ok((issued.method, issued.pass))
    }

    /// The lifetime and single use a caller's TAP gets: a helpdesk token's are capped at the
    /// configured lifetime and always single-use; others get what they asked for.
    fn tap_limits_for(
        &self,
        caller: &Caller,
        lifetime_minutes: Option<u32>,
        once: Option<bool>,
    ) -> Result<(Option<u32>, Option<bool>), ServiceError> {
        if caller.role() != Some(keyward_core::Role::Helpdesk) {
            return Ok((lifetime_minutes, once));
        }
        let max = self.config.helpdesk_tap_max_minutes;
        if once == Some(false) {
            return Err(ServiceError::Refused(
                "a helpdesk Temporary Access Pass is always single-use; leave `once` out or ask an operator"
                    .into(),
            ));
        }
        match lifetime_minutes {
            Some(m) if m > max => Err(ServiceError::Refused(format!(
                "a helpdesk Temporary Access Pass lives at most {max} minutes; ask for {max} or less, or ask an operator"
            ))),
            Some(m) => Ok((Some(m), Some(true))),
            None => Ok((Some(max.min(60)), Some(true))),
        }
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
            // The intent, before Entra is asked: which methods of which accounts, and why.
            let mut tx = self.store.begin().await?;
            for (id, oid, method) in &to_delete {
                let detail =
                    serde_json::json!({"object_id": oid, "entra_method_id": method, "reason": reason});
                let draft = AuditDraft::new(actor, "passkey.revoke.intent", passkeys::subject(*id));
                keyward_store::audit::append(&mut tx, draft.detail(&detail));
            }
            tx.commit().await?;
            let connector = self.connector.get(&self.store).await?;
            let pairs: Vec<(String, String)> =
                to_delete.iter().map(|(_, u, m)| (u.clone(), m.clone())).collect();
            let results = match connector.delete_fido2_methods(&pairs).await {
                Ok(results) => results,
                Err(e) => {
                    let mut tx = self.store.begin().await?;
                    for (id, _, _) in &to_delete {
                        let draft = AuditDraft::new(actor, "passkey.revoke", passkeys::subject(*id))
                            .outcome(Outcome::Failure)
                            .detail(&serde_json::json!({"reason": reason, "error": e.to_string()}));
                        keyward_store::audit::append(&mut tx, draft);
                    }
                    tx.commit().await?;
                    return Err(ServiceError::Entra(e.to_string()));
                }
            };
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
        for id in &failed {
            let draft =
                AuditDraft::new(actor, "passkey.revoke", passkeys::subject(*id)).outcome(Outcome::Failure);
            let detail = serde_json::json!({"reason": reason, "error": first_error});
            keyward_store::audit::append(&mut tx, draft.detail(&detail));
        }
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

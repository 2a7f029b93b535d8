//! Reconcile: make Keyward's passkey records agree with Entra's methods.
//!
//! For each linked person it compares the passkeys Keyward holds with the user's FIDO2 methods
//! (read with `$batch`, twenty users per call):
//! * a `pending` passkey whose credential is in Entra was registered but the answer was lost: it
//!   becomes `registered` with Entra's method id and its issuance `registered`;
//! * a `pending` passkey not in Entra whose challenge has expired never made it: the pending row is
//!   discarded and the issuance `failed` ("registration never reached Entra");
//! * a `registered` passkey missing from Entra was deleted there: it becomes `revoked`;
//! * a method Keyward does not know is recorded as a `discovered` passkey.
//!
//! Every change is one audited transaction; running reconcile twice changes nothing the second
//! time.

use keyward_core::{
    IssuanceState, KeyState, Passkey, PasskeyId, PasskeyOrigin, PasskeyState, Permission, Person, PersonId,
};
use keyward_proto::inventory::ReconcileReport;
use keyward_store::{issuances, keys, passkeys, people};
use keyward_webauthn::graph::Fido2Method;
use time::OffsetDateTime;
use uuid::Uuid;

use super::issuance::PersonRef;
use super::{Caller, Service, ServiceError};

impl Service {
    /// Reconciles one person (by id or UPN), or everyone linked when `person` is `None`.
    pub async fn reconcile(
        &self,
        caller: &Caller,
        person: Option<&PersonRef>,
    ) -> Result<ReconcileReport, ServiceError> {
        caller.require(Permission::JobsRun)?;
        let person = match person {
            Some(r) => Some(self.find_person(r).await?.id),
            None => None,
        };
        self.reconcile_as(&caller.actor(), person).await
    }

    /// Reconciles for an operation that checked its own permission (failing an issuance whose
    /// person has a pending passkey).
    pub(crate) async fn reconcile_as(
        &self,
        actor: &str,
        person: Option<PersonId>,
    ) -> Result<ReconcileReport, ServiceError> {
        let people: Vec<Person> = match person {
            Some(id) => vec![self.find_person(&PersonRef::Id(id)).await?],
            None => people::list_linked(&self.store, self.slot).await?,
        };
        let people: Vec<Person> = people
            .into_iter()
            .filter(|p| !p.deleted_in_entra && p.entra_object_id(self.slot).is_some())
            .collect();
        let connector = self.connector.get(&self.store).await?;
        let mut report = ReconcileReport { people: people.len(), ..Default::default() };
        for chunk in people.chunks(20) {
            let ids: Vec<String> =
                chunk.iter().map(|p| p.entra_object_id(self.slot).unwrap_or_default().to_owned()).collect();
            let results = connector
                .list_fido2_methods_of(&ids)
                .await
                .map_err(|e| ServiceError::Entra(e.to_string()))?;
            for (person, result) in chunk.iter().zip(results) {
                match result {
                    Ok(methods) => self.reconcile_person(actor, person, &methods, &mut report).await?,
                    Err(r) => report.errors.push(format!("{}: Graph status {}", person.upn, r.status)),
                }
            }
        }
        Ok(report)
    }

    async fn reconcile_person(
        &self,
        actor: &str,
        person: &Person,
        methods: &[Fido2Method],
        report: &mut ReconcileReport,
    ) -> Result<(), ServiceError> {
        let ours = passkeys::list_by_person(&self.store, person.id).await?;
        let matches = |p: &Passkey, m: &Fido2Method| {
            p.entra_method_id.as_deref() == Some(m.id.as_str())
                || super::completion::own_registration(p).matches(m)
        };
        let now = OffsetDateTime::now_utc();
        for p in &ours {
            let found = methods.iter().find(|m| matches(p, m));
            match (p.state, found) {
                (PasskeyState::Pending, Some(m)) => {
                    self.finish_pending(actor, p, &m.id).await?;
                    report.finished += 1;
                }
                (PasskeyState::Pending, None) if self.pending_expired(p, now).await? => {
                    self.abandon_pending(actor, p).await?;
                    report.abandoned += 1;
                }
                (PasskeyState::Registered, None) => {
                    let mut tx = self.store.begin().await?;
                    passkeys::revoke(&mut tx, actor, p, "deleted in Entra").await?;
                    tx.commit().await?;
                    report.revoked += 1;
                }
                _ => {}
            }
        }
        for m in
            methods.iter().filter(|m| !ours.iter().any(|p| p.state != PasskeyState::Revoked && matches(p, m)))
        {
            if ours.iter().any(|p| matches(p, m)) {
                continue; // a revoked record of the same credential: do not rediscover
            }
            let aaguid = m.aa_guid.as_deref().and_then(|a| Uuid::parse_str(a).ok()).unwrap_or_default();
            let discovered = Passkey {
                id: PasskeyId::new(),
                entra_method_id: Some(m.id.clone()),
                credential_id: m.id.clone(),
                person_id: person.id,
                security_key_id: None,
                aaguid,
                model: m.model.clone(),
                display_name: m.display_name.clone().unwrap_or_default(),
                created_at: now,
                state: PasskeyState::Registered,
                origin: PasskeyOrigin::Discovered,
            };
            let mut tx = self.store.begin().await?;
            passkeys::insert(&mut tx, actor, &discovered).await?;
            tx.commit().await?;
            report.discovered += 1;
        }
        Ok(())
    }

    /// The issuance that produced a pending passkey (the newest options-issued one of the person).
    async fn issuance_of(&self, p: &Passkey) -> Result<Option<keyward_core::Issuance>, ServiceError> {
        let list = issuances::list(&self.store, Some(p.person_id), None, None, 1000).await?;
        Ok(list
            .into_iter()
            .filter(|i| i.state == IssuanceState::OptionsIssued)
            .find(|i| i.security_key_id == p.security_key_id || p.security_key_id.is_none()))
    }

    async fn pending_expired(&self, p: &Passkey, now: OffsetDateTime) -> Result<bool, ServiceError> {
        Ok(match self.issuance_of(p).await? {
            Some(i) => i.challenge_expired(now),
            None => now - p.created_at > time::Duration::hours(1),
        })
    }

    async fn finish_pending(&self, actor: &str, p: &Passkey, method_id: &str) -> Result<(), ServiceError> {
        let issuance = self.issuance_of(p).await?;
        let mut tx = self.store.begin().await?;
        passkeys::mark_registered(&mut tx, actor, p, method_id, None).await?;
        if let Some(mut i) = issuance {
            let from = i.state;
            i.transition(IssuanceState::Registered).map_err(|e| ServiceError::Conflict(e.to_string()))?;
            issuances::transition(&mut tx, actor, from, &i).await?;
        }
        if let Some(kid) = p.security_key_id
            && let Some(k) = keys::get(&self.store, kid).await?
            && k.state == KeyState::Available
        {
            keys::set_state(&mut tx, actor, kid, KeyState::Issued).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn abandon_pending(&self, actor: &str, p: &Passkey) -> Result<(), ServiceError> {
        let issuance = self.issuance_of(p).await?;
        let reason = "the registration never reached Entra and its challenge expired";
        let mut tx = self.store.begin().await?;
        passkeys::discard_pending(&mut tx, actor, p, reason).await?;
        if let Some(mut i) = issuance {
            let from = i.state;
            i.fail(reason).map_err(|e| ServiceError::Conflict(e.to_string()))?;
            issuances::transition(&mut tx, actor, from, &i).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

//! Issuance: request → (approve) → creation options → complete, crash-safe.
//!
//! The order of every step is "write, then call": the options are fetched only for an issuance
//! that is recorded; a completion first passes the local checks, then records a `pending` passkey
//! with its credential id, and only then POSTs to Graph. If the server dies after the POST, the
//! pending row is what [`reconcile`](super::reconcile) matches against the user's methods in
//! Entra to finish the job; if the POST never happened, reconcile fails the issuance once the
//! challenge has expired. Entra itself is never asked to register the same credential twice:
//! the connector resolves ambiguous answers by looking the credential up first. The completion
//! itself, step by step, is [`completion`](super::completion)'s.

use keyward_core::{
    AuditDraft, Channel, EffectivePolicy, EnrollmentMode, EnrollmentPolicy, Issuance, IssuanceId,
    IssuanceState, PasskeyOrigin, PasskeyState, Permission, Person, PersonId, PinRules, SecurityKey,
};
use keyward_store::{issuances, keys, passkeys, people, policies};
use keyward_webauthn::graph::CredentialCreationOptions;
use time::OffsetDateTime;

use super::cursor::{self, Listed};
use super::{Caller, Service, ServiceError};
use crate::metrics::Metrics;

/// How long enrollment policies are cached.
const POLICY_CACHE: std::time::Duration = std::time::Duration::from_secs(5);

/// Who an issuance is for: Keyward's person id or a UPN.
#[derive(Debug, Clone)]
pub enum PersonRef {
    /// Keyward's id.
    Id(PersonId),
    /// User principal name.
    Upn(String),
}

/// What a caller asks for when creating an issuance.
#[derive(Debug, Clone)]
pub struct NewIssuance {
    /// The person.
    pub person: PersonRef,
    /// Operator, self-service or bulk.
    pub channel: Channel,
    /// The key's serial, when the operator has it in hand.
    pub serial: Option<String>,
}

/// What the client needs to make the credential.
#[derive(Debug, Clone)]
pub struct IssuanceOptions {
    /// The issuance, now `options-issued`.
    pub issuance: Issuance,
    /// Entra's creation options, unchanged.
    pub creation_options: CredentialCreationOptions,
    /// The PIN rules the key must be set up with.
    pub pin: PinRules,
    /// The person's UPN (for the display name and the PIN letter).
    pub upn: String,
}

impl Service {
    /// Looks a person up by id or UPN, for operations that checked their own permission.
    pub(crate) async fn find_person(&self, r: &PersonRef) -> Result<Person, ServiceError> {
        let found = match r {
            PersonRef::Id(id) => people::get(&self.store, *id).await,
            PersonRef::Upn(upn) => people::get_by_upn(&self.store, upn).await,
        }?;
        found.ok_or_else(|| match r {
            PersonRef::Id(id) => ServiceError::NotFound(format!("person {id}")),
            PersonRef::Upn(upn) => ServiceError::UnknownPerson(upn.clone()),
        })
    }

    /// The enrollment policy that applies to `person`, if any of their groups has one.
    pub(crate) async fn effective_policy(
        &self,
        person: &Person,
    ) -> Result<Option<EffectivePolicy>, ServiceError> {
        let all = self.enrollment_policies().await?;
        Ok(EnrollmentPolicy::effective(&all, &person.groups))
    }

    /// All enrollment policies, cached for a few seconds: every issuance step consults them and
    /// they change rarely. A change made through this server is seen at once; one made through
    /// another server on the same database within [`POLICY_CACHE`].
    pub(crate) async fn enrollment_policies(&self) -> Result<Vec<EnrollmentPolicy>, ServiceError> {
        if let Some((at, list)) = self.policies.lock().expect("policy cache poisoned").as_ref()
            && at.elapsed() < POLICY_CACHE
        {
            return Ok(list.clone());
        }
        let list = policies::list(&self.store, None, i64::MAX).await?;
        *self.policies.lock().expect("policy cache poisoned") =
            Some((std::time::Instant::now(), list.clone()));
        Ok(list)
    }

    /// Forgets the cached enrollment policies (after a change).
    pub(crate) fn forget_policies(&self) {
        *self.policies.lock().expect("policy cache poisoned") = None;
    }

    /// Checks everything Keyward knows before an issuance is created: link, account state,
    /// enrollment policy and its key limit, and the key.
    async fn check_issuable(&self, person: &Person, key: Option<&SecurityKey>) -> Result<(), ServiceError> {
        person.issuable_object_id(self.slot).map_err(|e| ServiceError::Refused(e.to_string()))?;
        if let Some(policy) = self.effective_policy(person).await? {
            if policy.mode == EnrollmentMode::Disabled {
                return Err(ServiceError::Refused(format!(
                    "enrollment is disabled for {}'s groups by the enrollment policy",
                    person.upn
                )));
            }
            let registered = if policy.max_passkeys_per_person.is_some() {
                self.registered_count(person.id).await?
            } else {
                0
            };
            if !policy.allows_another(registered) {
                return Err(ServiceError::Refused(format!(
                    "{} already has {registered} registered passkeys, the enrollment policy's limit; revoke one first",
                    person.upn
                )));
            }
        }
        if let Some(key) = key {
            key.ensure_issuable().map_err(|e| ServiceError::Refused(e.to_string()))?;
            let holders = passkeys::list_by_key(&self.store, key.id).await?;
            if let Some(other) =
                holders.iter().find(|p| p.state == PasskeyState::Registered && p.person_id != person.id)
            {
                return Err(ServiceError::Refused(format!(
                    "key {} is already issued to another person (passkey {}); revoke it or use another key",
                    key.serial.as_deref().unwrap_or("?"),
                    other.id
                )));
            }
        }
        Ok(())
    }

    async fn has_pending_passkey(&self, person: PersonId) -> Result<bool, ServiceError> {
        let all = passkeys::list_by_person(&self.store, person).await?;
        Ok(all.iter().any(|p| p.state == PasskeyState::Pending && p.origin == PasskeyOrigin::Managed))
    }

    /// A person's issuances that have not finished.
    pub(super) async fn open_issuances_of(&self, person: PersonId) -> Result<Vec<Issuance>, ServiceError> {
        Ok(issuances::list_open_by_person(&self.store, person).await?)
    }

    async fn registered_count(&self, person: PersonId) -> Result<u32, ServiceError> {
        let all = passkeys::list_by_person(&self.store, person).await?;
        Ok(all.iter().filter(|p| p.state == PasskeyState::Registered).count() as u32)
    }

    /// Creates an issuance for a person.
    pub async fn create_issuance(&self, caller: &Caller, req: NewIssuance) -> Result<Issuance, ServiceError> {
        caller.require(Permission::IssuanceCreate)?;
        let actor = &caller.actor();
        let person = self.find_person(&req.person).await?;
        let key = match &req.serial {
            Some(serial) => keys::get_by_serial(&self.store, serial).await?,
            None => None,
        };
        self.check_issuable(&person, key.as_ref()).await?;
        self.require_admin_if_protected(caller, &person, "a passkey").await?;
        let object_id =
            person.issuable_object_id(self.slot).map_err(|e| ServiceError::Refused(e.to_string()))?;
        let mut issuance = Issuance::new(person.id, actor, req.channel, self.config.approval_required)
            .bind_to(object_id, &person.upn);
        issuance.security_key_id = key.map(|k| k.id);
        let mut tx = self.store.begin().await?;
        issuances::create(&mut tx, actor, &issuance).await?;
        tx.commit().await?;
        Ok(issuance)
    }

    /// An issuance.
    pub async fn issuance(&self, caller: &Caller, id: IssuanceId) -> Result<Issuance, ServiceError> {
        caller.require(Permission::IssuanceRead)?;
        self.load_issuance(id).await
    }

    /// One page of issuances, newest first, optionally one person's and in one state.
    pub async fn issuances(
        &self,
        caller: &Caller,
        person: Option<&PersonRef>,
        state: Option<IssuanceState>,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Listed<Issuance>, ServiceError> {
        caller.require(Permission::IssuanceRead)?;
        let person = match person {
            Some(r) => Some(self.find_person(r).await?.id),
            None => None,
        };
        let limit = cursor::limit(limit)?;
        let after = after.map(|c| cursor::decode(c, 2)).transpose()?;
        let before = match &after {
            Some(k) => Some((
                k[0].parse::<i64>().map_err(|_| cursor::invalid())?,
                k[1].parse().map_err(|_| cursor::invalid())?,
            )),
            None => None,
        };
        let rows = issuances::list(&self.store, person, state, before, limit + 1).await?;
        Ok(Listed::page(rows, limit, |i| {
            cursor::encode(&[&keyward_store::to_micros(i.created_at).to_string(), &i.id.to_string()])
        }))
    }

    /// Refuses when the person's Entra link is no longer the account the issuance was created
    /// (and approved) for.
    pub(super) fn check_still_bound(&self, issuance: &Issuance, person: &Person) -> Result<(), ServiceError> {
        issuance
            .check_bound(person.entra_object_id(self.slot))
            .map_err(|e| ServiceError::Conflict(e.to_string()))
    }

    /// Loads an issuance, for operations that checked their own permission.
    async fn load_issuance(&self, id: IssuanceId) -> Result<Issuance, ServiceError> {
        issuances::get(&self.store, id).await?.ok_or_else(|| ServiceError::NotFound(format!("issuance {id}")))
    }

    /// Loads an issuance and the person it is for, in one read.
    pub(super) async fn issuance_with_person(
        &self,
        id: IssuanceId,
    ) -> Result<(Issuance, Person), ServiceError> {
        issuances::get_with_person(&self.store, id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("issuance {id}")))
    }

    /// Saves a transition of `issuance` from `from` in its own transaction.
    pub(super) async fn save_transition(
        &self,
        actor: &str,
        issuance: &Issuance,
        from: IssuanceState,
    ) -> Result<(), ServiceError> {
        let mut tx = self.store.begin().await?;
        issuances::transition(&mut tx, actor, from, issuance).await?;
        tx.commit().await?;
        if matches!(issuance.state, IssuanceState::Failed | IssuanceState::Cancelled | IssuanceState::Expired)
        {
            Metrics::count(&self.metrics.issuances, issuance.state.as_str());
        }
        Ok(())
    }

    /// Approves an issuance (four eyes: not by its requester).
    pub async fn approve_issuance(&self, caller: &Caller, id: IssuanceId) -> Result<Issuance, ServiceError> {
        caller.require(Permission::IssuanceApprove)?;
        let actor = &caller.actor();
        let (mut issuance, person) = self.issuance_with_person(id).await?;
        self.check_still_bound(&issuance, &person)?;
        self.require_admin_approval_if_protected(caller, &issuance, &person).await?;
        let from = issuance.state;
        issuance.approve(actor).map_err(|e| ServiceError::Conflict(e.to_string()))?;
        self.save_transition(actor, &issuance, from).await?;
        Ok(issuance)
    }

    /// Cancels an issuance that has not finished.
    pub async fn cancel_issuance(&self, caller: &Caller, id: IssuanceId) -> Result<Issuance, ServiceError> {
        caller.require(Permission::IssuanceCancel)?;
        let actor = &caller.actor();
        let mut issuance = self.load_issuance(id).await?;
        let from = issuance.state;
        issuance.transition(IssuanceState::Cancelled).map_err(|e| ServiceError::Conflict(e.to_string()))?;
        self.save_transition(actor, &issuance, from).await?;
        Ok(issuance)
    }

    /// Marks an issuance failed with the client's reason (e.g. the key refused the PIN).
    ///
    /// A person with a pending passkey (a completion whose answer from Entra was lost) is
    /// reconciled first: if Entra has the passkey, the issuance is registered, not failed. One
    /// still unknown refuses the failure, so a client starting again cannot register twice.
    pub async fn fail_issuance(
        &self,
        caller: &Caller,
        id: IssuanceId,
        reason: &str,
    ) -> Result<Issuance, ServiceError> {
        caller.require(Permission::IssuanceCreate)?;
        let actor = &caller.actor();
        let reason: String = reason.chars().take(500).collect();
        let mut issuance = self.load_issuance(id).await?;
        if self.has_pending_passkey(issuance.person_id).await? {
            self.reconcile_as(actor, Some(issuance.person_id)).await?;
            issuance = self.load_issuance(id).await?;
            if self.has_pending_passkey(issuance.person_id).await? {
                return Err(ServiceError::Conflict(format!(
                    "a registration for this person is still pending: Entra's answer was lost and the passkey is not in Entra yet; \
                     reconcile the person's passkeys once the challenge has expired, then fail issuance {id}"
                )));
            }
        }
        let from = issuance.state;
        issuance.fail(&reason).map_err(|e| ServiceError::Conflict(e.to_string()))?;
        self.save_transition(actor, &issuance, from).await?;
        Ok(issuance)
    }

    /// Fetches Entra's creation options for the issuance and records them.
    pub async fn issuance_options(
        &self,
        caller: &Caller,
        id: IssuanceId,
    ) -> Result<IssuanceOptions, ServiceError> {
        caller.require(Permission::IssuanceCreate)?;
        let actor = &caller.actor();
        let (mut issuance, person) = self.issuance_with_person(id).await?;
        let from = issuance.state;
        if from == IssuanceState::OptionsIssued {
            // A client that lost the options may ask again; it gets a fresh challenge.
        } else {
            IssuanceState::transition(from, IssuanceState::OptionsIssued, issuance.approval_required)
                .map_err(|e| ServiceError::Conflict(e.to_string()))?;
        }
        let key = match issuance.security_key_id {
            Some(k) => keys::get(&self.store, k).await?,
            None => None,
        };
        self.check_still_bound(&issuance, &person)?;
        self.check_issuable(&person, key.as_ref()).await?;
        self.require_admin_if_protected(caller, &person, "a passkey").await?;
        let object_id =
            person.issuable_object_id(self.slot).map_err(|e| ServiceError::Refused(e.to_string()))?;
        let connector = self.connector.get(&self.store).await?;
        let options =
            connector.creation_options(object_id).await.map_err(|e| ServiceError::Entra(e.to_string()))?;
        let expires = OffsetDateTime::parse(
            &options.challenge_timeout_date_time,
            &time::format_description::well_known::Rfc3339,
        )
        .ok();
        if from != IssuanceState::OptionsIssued {
            issuance
                .transition(IssuanceState::OptionsIssued)
                .map_err(|e| ServiceError::Conflict(e.to_string()))?;
        }
        issuance.challenge_expires_at = expires;
        issuance.challenge = Some(options.public_key.challenge.clone());
        self.save_transition(actor, &issuance, from).await?;
        let pin = self.effective_policy(&person).await?.map(|p| p.pin).unwrap_or_default();
        Ok(IssuanceOptions { issuance, creation_options: options, pin, upn: person.upn })
    }
}

impl Service {
    /// Audits that the PIN of an issuance's key was handed over, and how; the PIN itself never
    /// reaches the server.
    pub async fn record_pin_handover(
        &self,
        caller: &Caller,
        id: IssuanceId,
        method: &str,
        detail: Option<&str>,
    ) -> Result<(), ServiceError> {
        caller.require(Permission::IssuanceCreate)?;
        let actor = &caller.actor();
        if !matches!(method, "terminal" | "letter" | "user-chosen") {
            return Err(ServiceError::Invalid("method must be terminal, letter or user-chosen".into()));
        }
        let detail: Option<String> = detail.map(|d| d.chars().take(300).collect());
        let issuance = self.load_issuance(id).await?;
        let audit = serde_json::json!({"method": method, "detail": detail, "person": issuance.person_id});
        let draft = AuditDraft::new(actor, "pin.handover", issuances::subject(id)).detail(&audit);
        let mut tx = self.store.begin().await?;
        keyward_store::audit::append(&mut tx, draft);
        tx.commit().await?;
        Ok(())
    }
}

//! Issuance: request → (approve) → creation options → complete, crash-safe.
//!
//! The order of every step is "write, then call": the options are fetched only for an issuance
//! that is recorded; a completion first passes the local checks, then records a `pending` passkey
//! with its credential id, and only then POSTs to Graph. If the server dies after the POST, the
//! pending row is what [`reconcile`](super::reconcile) matches against the user's methods in
//! Entra to finish the job; if the POST never happened, reconcile fails the issuance once the
//! challenge has expired. Entra itself is never asked to register the same credential twice:
//! the connector resolves ambiguous answers by looking the credential up first.

use keyward_core::{
    AuditDraft, Channel, EffectivePolicy, EnrollmentMode, EnrollmentPolicy, Issuance, IssuanceId,
    IssuanceState, KeyState, Outcome, Passkey, PasskeyId, PasskeyOrigin, PasskeyState, Person, PersonId,
    PinRules, SecurityKey,
};
use keyward_entra::{Registered, RegistrationError, RegistrationPath};
use keyward_store::{StoreError, issuances, keys, passkeys, people, policies};
use keyward_webauthn::b64;
use keyward_webauthn::graph::{
    AttestationResponse, CredentialCreationOptions, Fido2RegistrationRequest, PublicKeyCredential,
};
use time::OffsetDateTime;
use uuid::Uuid;

use super::local_check::{self, Expectation};
use super::{Service, store_error};
use crate::error::ApiError;
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

/// The registration the client made.
#[derive(Debug, Clone)]
pub struct Completion {
    /// clientDataJSON bytes, exactly as hashed.
    pub client_data_json: Vec<u8>,
    /// attestationObject bytes, as the key returned them.
    pub attestation_object: Vec<u8>,
    /// The key's serial, when known.
    pub serial: Option<String>,
    /// The key's firmware version, when known.
    pub firmware: Option<String>,
    /// The passkey's display name in Entra (cut to 30 characters keeping the serial).
    pub display_name: Option<String>,
}

/// A finished issuance.
#[derive(Debug, Clone)]
pub struct Completed {
    /// The issuance, `registered`.
    pub issuance: Issuance,
    /// The passkey, `registered`.
    pub passkey: Passkey,
}

impl Service {
    /// Looks a person up by id or UPN.
    pub async fn find_person(&self, r: &PersonRef) -> Result<Person, ApiError> {
        let found = match r {
            PersonRef::Id(id) => people::get(&self.store, *id).await,
            PersonRef::Upn(upn) => people::get_by_upn(&self.store, upn).await,
        }
        .map_err(store_error)?;
        found.ok_or_else(|| {
            ApiError::NotFound(match r {
                PersonRef::Id(id) => format!("person {id}"),
                PersonRef::Upn(upn) => format!("person with UPN {upn} (run `keyward people sync` first)"),
            })
        })
    }

    /// The enrollment policy that applies to `person`, if any of their groups has one.
    pub async fn effective_policy(&self, person: &Person) -> Result<Option<EffectivePolicy>, ApiError> {
        let all = self.enrollment_policies().await?;
        Ok(EnrollmentPolicy::effective(&all, &person.groups))
    }

    /// All enrollment policies, cached for a few seconds: every issuance step consults them and
    /// they change rarely. A change made through this server is seen at once; one made through
    /// another server on the same database within [`POLICY_CACHE`].
    pub async fn enrollment_policies(&self) -> Result<Vec<EnrollmentPolicy>, ApiError> {
        if let Some((at, list)) = self.policies.lock().expect("policy cache poisoned").as_ref()
            && at.elapsed() < POLICY_CACHE
        {
            return Ok(list.clone());
        }
        let list = policies::list(&self.store).await.map_err(store_error)?;
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
    async fn check_issuable(&self, person: &Person, key: Option<&SecurityKey>) -> Result<(), ApiError> {
        person.issuable_object_id(self.slot).map_err(|e| ApiError::Refused(e.to_string()))?;
        if let Some(policy) = self.effective_policy(person).await? {
            if policy.mode == EnrollmentMode::Disabled {
                return Err(ApiError::Refused(format!(
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
                return Err(ApiError::Refused(format!(
                    "{} already has {registered} registered passkeys, the enrollment policy's limit; revoke one first",
                    person.upn
                )));
            }
        }
        if let Some(key) = key {
            key.ensure_issuable().map_err(|e| ApiError::Refused(e.to_string()))?;
            let holders = passkeys::list_by_key(&self.store, key.id).await.map_err(store_error)?;
            if let Some(other) =
                holders.iter().find(|p| p.state == PasskeyState::Registered && p.person_id != person.id)
            {
                return Err(ApiError::Refused(format!(
                    "key {} is already issued to another person (passkey {}); revoke it or use another key",
                    key.serial.as_deref().unwrap_or("?"),
                    other.id
                )));
            }
        }
        Ok(())
    }

    async fn has_pending_passkey(&self, person: PersonId) -> Result<bool, ApiError> {
        let all = passkeys::list_by_person(&self.store, person).await.map_err(store_error)?;
        Ok(all.iter().any(|p| p.state == PasskeyState::Pending && p.origin == PasskeyOrigin::Managed))
    }

    async fn registered_count(&self, person: PersonId) -> Result<u32, ApiError> {
        let all = passkeys::list_by_person(&self.store, person).await.map_err(store_error)?;
        Ok(all.iter().filter(|p| p.state == PasskeyState::Registered).count() as u32)
    }

    /// Creates an issuance for a person.
    pub async fn create_issuance(&self, actor: &str, req: NewIssuance) -> Result<Issuance, ApiError> {
        let person = self.find_person(&req.person).await?;
        let key = match &req.serial {
            Some(serial) => keys::get_by_serial(&self.store, serial).await.map_err(store_error)?,
            None => None,
        };
        self.check_issuable(&person, key.as_ref()).await?;
        let mut issuance = Issuance::new(person.id, actor, req.channel, self.config.approval_required);
        issuance.security_key_id = key.map(|k| k.id);
        let mut tx = self.store.begin().await.map_err(store_error)?;
        issuances::create(&mut tx, actor, &issuance).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(issuance)
    }

    /// Loads an issuance.
    pub async fn issuance(&self, id: IssuanceId) -> Result<Issuance, ApiError> {
        issuances::get(&self.store, id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ApiError::NotFound(format!("issuance {id}")))
    }

    /// Loads an issuance and the person it is for, in one read.
    async fn issuance_with_person(&self, id: IssuanceId) -> Result<(Issuance, Person), ApiError> {
        issuances::get_with_person(&self.store, id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ApiError::NotFound(format!("issuance {id}")))
    }

    /// Saves a transition of `issuance` from `from` in its own transaction.
    async fn save_transition(
        &self,
        actor: &str,
        issuance: &Issuance,
        from: IssuanceState,
    ) -> Result<(), ApiError> {
        let mut tx = self.store.begin().await.map_err(store_error)?;
        issuances::transition(&mut tx, actor, from, issuance).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        if matches!(issuance.state, IssuanceState::Failed | IssuanceState::Cancelled | IssuanceState::Expired)
        {
            Metrics::count(&self.metrics.issuances, issuance.state.as_str());
        }
        Ok(())
    }

    /// Approves an issuance (four eyes: not by its requester).
    pub async fn approve_issuance(&self, actor: &str, id: IssuanceId) -> Result<Issuance, ApiError> {
        let mut issuance = self.issuance(id).await?;
        let from = issuance.state;
        issuance.approve(actor).map_err(|e| ApiError::Conflict(e.to_string()))?;
        self.save_transition(actor, &issuance, from).await?;
        Ok(issuance)
    }

    /// Cancels an issuance that has not finished.
    pub async fn cancel_issuance(&self, actor: &str, id: IssuanceId) -> Result<Issuance, ApiError> {
        let mut issuance = self.issuance(id).await?;
        let from = issuance.state;
        issuance.transition(IssuanceState::Cancelled).map_err(|e| ApiError::Conflict(e.to_string()))?;
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
        actor: &str,
        id: IssuanceId,
        reason: &str,
    ) -> Result<Issuance, ApiError> {
        let mut issuance = self.issuance(id).await?;
        if self.has_pending_passkey(issuance.person_id).await? {
            self.reconcile(actor, Some(issuance.person_id)).await?;
            issuance = self.issuance(id).await?;
            if self.has_pending_passkey(issuance.person_id).await? {
                return Err(ApiError::Conflict(format!(
                    "a registration for this person is still pending: Entra's answer was lost and the passkey is not in Entra yet; \
                     run `keyward passkeys reconcile` once the challenge has expired, then fail issuance {id}"
                )));
            }
        }
        let from = issuance.state;
        issuance.fail(reason).map_err(|e| ApiError::Conflict(e.to_string()))?;
        self.save_transition(actor, &issuance, from).await?;
        Ok(issuance)
    }

    /// Fetches Entra's creation options for the issuance and records them.
    pub async fn issuance_options(&self, actor: &str, id: IssuanceId) -> Result<IssuanceOptions, ApiError> {
        let (mut issuance, person) = self.issuance_with_person(id).await?;
        let from = issuance.state;
        if from == IssuanceState::OptionsIssued {
            // A client that lost the options may ask again; it gets a fresh challenge.
        } else {
            IssuanceState::transition(from, IssuanceState::OptionsIssued, issuance.approval_required)
                .map_err(|e| ApiError::Conflict(e.to_string()))?;
        }
        let key = match issuance.security_key_id {
            Some(k) => keys::get(&self.store, k).await.map_err(store_error)?,
            None => None,
        };
        self.check_issuable(&person, key.as_ref()).await?;
        let object_id = person.issuable_object_id(self.slot).map_err(|e| ApiError::Refused(e.to_string()))?;
        let connector = self.connector.get(&self.store).await?;
        let options =
            connector.creation_options(object_id).await.map_err(|e| ApiError::Upstream(e.to_string()))?;
        let expires = OffsetDateTime::parse(
            &options.challenge_timeout_date_time,
            &time::format_description::well_known::Rfc3339,
        )
        .ok();
        if from != IssuanceState::OptionsIssued {
            issuance
                .transition(IssuanceState::OptionsIssued)
                .map_err(|e| ApiError::Conflict(e.to_string()))?;
        }
        issuance.challenge_expires_at = expires;
        issuance.challenge = Some(options.public_key.challenge.clone());
        self.save_transition(actor, &issuance, from).await?;
        let pin = self.effective_policy(&person).await?.map(|p| p.pin).unwrap_or_default();
        Ok(IssuanceOptions { issuance, creation_options: options, pin, upn: person.upn })
    }

    /// Checks the client's registration locally, records the passkey as pending, registers it in
    /// Entra and records the result.
    pub async fn complete_issuance(
        &self,
        actor: &str,
        id: IssuanceId,
        c: Completion,
    ) -> Result<Completed, ApiError> {
        let (mut issuance, person) = self.issuance_with_person(id).await?;
        if issuance.state != IssuanceState::OptionsIssued {
            return Err(ApiError::Conflict(format!(
                "issuance {id} is {}, not options-issued; fetch creation options first",
                issuance.state
            )));
        }
        if issuance.challenge_expired(OffsetDateTime::now_utc()) {
            let from = issuance.state;
            issuance.transition(IssuanceState::Expired).map_err(|e| ApiError::Conflict(e.to_string()))?;
            self.save_transition(actor, &issuance, from).await?;
            return Err(ApiError::Refused(
                "the challenge expired before the registration was completed; create a new issuance".into(),
            ));
        }
        let object_id =
            person.issuable_object_id(self.slot).map_err(|e| ApiError::Refused(e.to_string()))?.to_owned();
        let connector = self.connector.get(&self.store).await?;
        let tenant_policy = self.connector.tenant_policy(&connector).await?;
        let groups = super::doctor::targeted_groups_of(&connector, &tenant_policy, &object_id).await?;
        let enrollment = self.effective_policy(&person).await?;
        let mut key = match (&issuance.security_key_id, &c.serial) {
            (Some(k), _) => keys::get(&self.store, *k).await.map_err(store_error)?,
            (None, Some(serial)) => keys::get_by_serial(&self.store, serial).await.map_err(store_error)?,
            (None, None) => None,
        };
        let expect = Expectation {
            challenge: issuance.challenge.as_deref().unwrap_or_default(),
            tenant_policy: Some(&tenant_policy),
            user: Some(keyward_webauthn::entra_rules::Subject { user_id: &object_id, groups: &groups }),
            enrollment: enrollment.as_ref(),
            key: key.as_ref(),
        };
        let checked = match local_check::check(&c.client_data_json, &c.attestation_object, expect) {
            Ok(ok) => ok,
            Err(refusal) => {
                // The issuance stays open (a mixed-up or corrupt body must not let anyone cancel
                // someone else's issuance); the refusal is audited.
                let detail = serde_json::json!({"reason": refusal.to_string()});
                let draft =
                    AuditDraft::new(actor, "issuance.complete-refused", issuances::subject(issuance.id))
                        .outcome(Outcome::Failure)
                        .detail(&detail);
                let mut tx = self.store.begin().await.map_err(store_error)?;
                keyward_store::audit::append(&mut tx, draft);
                tx.commit().await.map_err(store_error)?;
                return Err(ApiError::Refused(refusal.to_string()));
            }
        };
        let model = keyward_webauthn::mds::embedded()
            .entry(&checked.aaguid.to_string())
            .map(|e| e.description.clone());
        let credential_id = b64::encode(&checked.credential_id);
        let display_name = keyward_webauthn::registration::fit_display_name(
            c.display_name.as_deref().or(model.as_deref()).unwrap_or("Security key"),
            c.serial.as_deref(),
        );

        // Record the intent (the pending passkey, and the key when it is new) before the POST. A
        // completion retried after an unknown outcome collides with its own pending passkey: it
        // reuses that one, and asks Entra whether the earlier POST landed before sending another.
        let mut passkey = Passkey {
            id: PasskeyId::new(),
            entra_method_id: None,
            credential_id: credential_id.clone(),
            person_id: person.id,
            security_key_id: None,
            aaguid: checked.aaguid,
            model: model.clone(),
            display_name: display_name.clone(),
            created_at: OffsetDateTime::now_utc(),
            state: PasskeyState::Pending,
            origin: PasskeyOrigin::Managed,
        };
        // The passkey, the issuance's key and their audit events commit together; a duplicate
        // credential fails the whole transaction.
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let mut new_key = None;
        if key.is_none() && c.serial.is_some() {
            let mut k = SecurityKey::new(c.serial.clone(), checked.aaguid);
            k.model = model.clone();
            k.firmware = c.firmware.clone();
            keys::insert(&mut tx, actor, &k).await.map_err(store_error)?;
            new_key = Some(k);
        }
        passkey.security_key_id = key.as_ref().or(new_key.as_ref()).map(|k| k.id);
        let key_learned = issuance.security_key_id.is_none() && passkey.security_key_id.is_some();
        let from = issuance.state;
        if key_learned {
            issuance.security_key_id = passkey.security_key_id;
        }
        let recorded = async {
            passkeys::insert(&mut tx, actor, &passkey).await?;
            if key_learned {
                issuances::transition(&mut tx, actor, from, &issuance).await?;
            }
            tx.commit().await
        }
        .await;
        let retry = match recorded {
            Ok(()) => {
                if new_key.is_some() {
                    key = new_key;
                }
                false
            }
            // The failed transaction was rolled back when it was dropped.
            Err(StoreError::Duplicate(_)) => {
                if key_learned {
                    issuance.security_key_id = None;
                }
                let existing = passkeys::find_by_credential_id(&self.store, &credential_id)
                    .await
                    .map_err(store_error)?
                    .ok_or_else(|| {
                        ApiError::Conflict("the credential changed while it was recorded; retry".into())
                    })?;
                if existing.state != PasskeyState::Pending || existing.person_id != person.id {
                    return Err(ApiError::Conflict(format!(
                        "this credential is already recorded as passkey {} ({}); make a new credential",
                        existing.id, existing.state
                    )));
                }
                passkey = existing;
                true
            }
            Err(e) => return Err(store_error(e)),
        };

        let body = Fido2RegistrationRequest {
            display_name: Some(display_name),
            public_key_credential: PublicKeyCredential {
                id: credential_id,
                response: AttestationResponse {
                    client_data_json: b64::encode(&c.client_data_json),
                    attestation_object: b64::encode(&c.attestation_object),
                },
                client_extension_results: None,
            },
        };
        let outcome = if retry {
            match connector.find_credential(&object_id, &checked.credential_id).await {
                Ok(Some(method)) => Ok(Registered { method, path: RegistrationPath::FoundAfterLostAnswer }),
                Ok(None) => connector.register_fido2(&object_id, &body).await,
                Err(e) => Err(RegistrationError::Unknown(e)),
            }
        } else {
            connector.register_fido2(&object_id, &body).await
        };
        match outcome {
            Ok(registered) => {
                let mut tx = self.store.begin().await.map_err(store_error)?;
                let model = registered.method.model.as_deref();
                passkey = passkeys::mark_registered(&mut tx, actor, &passkey, &registered.method.id, model)
                    .await
                    .map_err(store_error)?;
                let from = issuance.state;
                issuance
                    .transition(IssuanceState::Registered)
                    .map_err(|e| ApiError::Conflict(e.to_string()))?;
                issuances::transition(&mut tx, actor, from, &issuance).await.map_err(store_error)?;
                if let Some(k) = key.as_ref().filter(|k| k.state == KeyState::Available) {
                    keys::set_state(&mut tx, actor, k.id, KeyState::Issued).await.map_err(store_error)?;
                }
                tx.commit().await.map_err(store_error)?;
                Metrics::count(&self.metrics.issuances, "registered");
                Ok(Completed { issuance, passkey })
            }
            Err(RegistrationError::Unknown(e)) => Err(ApiError::Upstream(format!(
                "the registration's outcome is unknown ({e}); the passkey stays pending and `keyward passkeys reconcile` (or the next reconcile run) settles it — do not register this key again before that"
            ))),
            Err(e) => {
                let reason = e.to_string();
                let mut tx = self.store.begin().await.map_err(store_error)?;
                passkeys::discard_pending(&mut tx, actor, &passkey, &reason).await.map_err(store_error)?;
                let from = issuance.state;
                issuance.fail(reason.clone()).map_err(|e| ApiError::Conflict(e.to_string()))?;
                issuances::transition(&mut tx, actor, from, &issuance).await.map_err(store_error)?;
                tx.commit().await.map_err(store_error)?;
                Metrics::count(&self.metrics.issuances, "failed");
                Err(ApiError::Upstream(reason))
            }
        }
    }
}

impl Service {
    /// Audits that the PIN of an issuance's key was handed over, and how; the PIN itself never
    /// reaches the server.
    pub async fn record_pin_handover(
        &self,
        actor: &str,
        id: IssuanceId,
        method: &str,
        detail: Option<&str>,
    ) -> Result<(), ApiError> {
        let issuance = self.issuance(id).await?;
        let audit = serde_json::json!({"method": method, "detail": detail, "person": issuance.person_id});
        let draft = AuditDraft::new(actor, "pin.handover", issuances::subject(id)).detail(&audit);
        let mut tx = self.store.begin().await.map_err(store_error)?;
        keyward_store::audit::append(&mut tx, draft);
        tx.commit().await.map_err(store_error)?;
        Ok(())
    }
}

/// The AAGUID of a key model as a UUID, for callers holding text.
pub fn parse_aaguid(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::BadRequest(format!("{text:?} is not an AAGUID (a UUID)")))
}

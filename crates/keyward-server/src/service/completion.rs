//! Completing an issuance: the client's registration checked here, recorded as intent, sent to
//! Entra, and its outcome recorded — in that order, so a crash between any two steps leaves a row
//! that reconcile can finish or undo.
//!
//! The steps, each a function below: [`Service::open_for_completion`] (the issuance is waiting
//! for exactly this and its challenge has not expired), [`Service::check_before_post`] (the
//! local checks of `local_check`, a refusal audited and the issuance left open),
//! [`Service::record_intent`] (the pending passkey and a newly seen key, before any Graph call;
//! a retried completion finds its own pending passkey), [`register`] (the POST, or after a lost
//! answer a look-up first, so Entra never gets the same credential twice) and
//! [`Service::record_outcome`] (registered, failed, or left pending when the outcome is unknown).

use keyward_core::{
    AuditDraft, EffectivePolicy, Issuance, IssuanceId, IssuanceState, KeyState, Outcome, Passkey, PasskeyId,
    PasskeyOrigin, PasskeyState, Permission, Person, SecurityKey,
};
use keyward_entra::{Connector, Registered, RegistrationError, RegistrationPath};
use keyward_store::{StoreError, issuances, keys, passkeys};
use keyward_webauthn::b64;
use keyward_webauthn::graph::{AttestationResponse, Fido2RegistrationRequest, PublicKeyCredential};
use keyward_webauthn::policy::Fido2Policy;
use time::OffsetDateTime;

use super::local_check::{self, CheckedRegistration, Expectation};
use super::{Caller, Service, ServiceError};
use crate::metrics::Metrics;

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

/// The passkey recorded before the POST, and whether it was already recorded by an earlier
/// attempt whose answer was lost.
struct Intent {
    passkey: Passkey,
    retry: bool,
}

/// The rules a registration is checked against before the POST (see [`Service::rules_for`]).
struct Rules {
    tenant_policy: Fido2Policy,
    groups: Vec<String>,
    enrollment: Option<EffectivePolicy>,
}

impl Rules {
    /// The expectation for this issuance's challenge, user and key.
    fn expectation<'a>(
        &'a self,
        issuance: &'a Issuance,
        object_id: &'a str,
        key: Option<&'a SecurityKey>,
    ) -> Expectation<'a> {
        Expectation {
            challenge: issuance.challenge.as_deref().unwrap_or_default(),
            tenant_policy: Some(&self.tenant_policy),
            user: Some(keyward_webauthn::entra_rules::Subject { user_id: object_id, groups: &self.groups }),
            enrollment: self.enrollment.as_ref(),
            key,
        }
    }
}

impl Service {
    /// Checks the client's registration locally, records the passkey as pending, registers it in
    /// Entra and records the result.
    pub async fn complete_issuance(
        &self,
        caller: &Caller,
        id: IssuanceId,
        c: Completion,
    ) -> Result<Completed, ServiceError> {
        caller.require(Permission::IssuanceCreate)?;
        let actor = &caller.actor();
        let (mut issuance, person) = self.open_for_completion(actor, id).await?;
        let object_id = person
            .issuable_object_id(self.slot)
            .map_err(|e| ServiceError::Refused(e.to_string()))?
            .to_owned();
        let connector = self.connector.get(&self.store).await?;
        let mut key = match (&issuance.security_key_id, &c.serial) {
            (Some(k), _) => keys::get(&self.store, *k).await?,
            (None, Some(serial)) => keys::get_by_serial(&self.store, serial).await?,
            (None, None) => None,
        };
        let rules = self.rules_for(&connector, &person, &object_id).await?;
        let expect = rules.expectation(&issuance, &object_id, key.as_ref());
        let checked = self.check_before_post(actor, &issuance, expect, &c).await?;
        let intent = self.record_intent(actor, &mut issuance, &person, &mut key, &c, &checked).await?;
        let outcome = register(&connector, &object_id, &intent, &c).await;
        self.record_outcome(actor, issuance, intent.passkey, key, outcome).await
    }

    /// The issuance and its person, when the issuance waits for a registration and its challenge
    /// has not expired (an expired one is recorded as such).
    async fn open_for_completion(
        &self,
        actor: &str,
        id: IssuanceId,
    ) -> Result<(Issuance, Person), ServiceError> {
        let (mut issuance, person) = self.issuance_with_person(id).await?;
        self.check_still_bound(&issuance, &person)?;
        if issuance.state != IssuanceState::OptionsIssued {
            return Err(ServiceError::Conflict(format!(
                "issuance {id} is {}, not options-issued; fetch creation options first",
                issuance.state
            )));
        }
        if issuance.challenge_expired(OffsetDateTime::now_utc()) {
            let from = issuance.state;
            issuance.transition(IssuanceState::Expired).map_err(|e| ServiceError::Conflict(e.to_string()))?;
            self.save_transition(actor, &issuance, from).await?;
            return Err(ServiceError::Refused(
                "the challenge expired before the registration was completed; create a new issuance".into(),
            ));
        }
        Ok((issuance, person))
    }

    /// What the registration is judged against: the tenant's FIDO2 policy, the targeted groups
    /// the user is in, and Keyward's enrollment policy for the person.
    async fn rules_for(
        &self,
        connector: &Connector,
        person: &Person,
        object_id: &str,
    ) -> Result<Rules, ServiceError> {
        let tenant_policy = self.connector.tenant_policy(connector).await?;
        let groups = super::doctor::targeted_groups_of(connector, &tenant_policy, object_id).await?;
        let enrollment = self.effective_policy(person).await?;
        Ok(Rules { tenant_policy, groups, enrollment })
    }

    /// The local checks before the POST. A refusal is audited and leaves the issuance open: a
    /// mixed-up or corrupt body must not let anyone cancel someone else's issuance.
    async fn check_before_post(
        &self,
        actor: &str,
        issuance: &Issuance,
        expect: Expectation<'_>,
        c: &Completion,
    ) -> Result<CheckedRegistration, ServiceError> {
        let refusal = match local_check::check(&c.client_data_json, &c.attestation_object, expect) {
            Ok(checked) => return Ok(checked),
            Err(refusal) => refusal,
        };
        let detail = serde_json::json!({"reason": refusal.to_string()});
        let draft = AuditDraft::new(actor, "issuance.complete-refused", issuances::subject(issuance.id))
            .outcome(Outcome::Failure)
            .detail(&detail);
        let mut tx = self.store.begin().await?;
        keyward_store::audit::append(&mut tx, draft);
        tx.commit().await?;
        Err(ServiceError::Refused(refusal.to_string()))
    }

    /// Records the intent before the POST: the pending passkey and, when the completion names a
    /// key Keyward has not seen, the key — with their audit events, in one transaction. A
    /// completion retried after an unknown outcome collides with its own pending passkey and
    /// reuses it (`retry`); any other duplicate credential is refused.
    async fn record_intent(
        &self,
        actor: &str,
        issuance: &mut Issuance,
        person: &Person,
        key: &mut Option<SecurityKey>,
        c: &Completion,
        checked: &CheckedRegistration,
    ) -> Result<Intent, ServiceError> {
        let model = super::doctor::model_name(checked.aaguid);
        let credential_id = b64::encode(&checked.credential_id);
        let id = PasskeyId::new();
        let display_name = keyward_webauthn::registration::marked_display_name(
            c.display_name.as_deref().or(model.as_deref()).unwrap_or("Security key"),
            c.serial.as_deref(),
            &keyward_webauthn::registration::own::marker(&id.as_uuid()),
        );
        let mut passkey = Passkey {
            id,
            entra_method_id: None,
            credential_id: credential_id.clone(),
            person_id: person.id,
            security_key_id: None,
            aaguid: checked.aaguid,
            model: model.clone(),
            display_name,
            created_at: OffsetDateTime::now_utc(),
            state: PasskeyState::Pending,
            origin: PasskeyOrigin::Managed,
        };
        let mut tx = self.store.begin().await?;
        let mut new_key = None;
        if key.is_none() && c.serial.is_some() {
            let mut k = SecurityKey::new(c.serial.clone(), checked.aaguid);
            k.model = model;
            k.firmware = c.firmware.clone();
            keys::insert(&mut tx, actor, &k).await?;
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
                issuances::transition(&mut tx, actor, from, issuance).await?;
            }
            tx.commit().await
        }
        .await;
        match recorded {
            Ok(()) => {
                if new_key.is_some() {
                    *key = new_key;
                }
                Ok(Intent { passkey, retry: false })
            }
            // The failed transaction was rolled back when it was dropped.
            Err(StoreError::Duplicate(_)) => {
                if key_learned {
                    issuance.security_key_id = None;
                }
                let existing = self.own_pending_passkey(person, &credential_id).await?;
                Ok(Intent { passkey: existing, retry: true })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The pending passkey an earlier attempt of this person's completion recorded for the
    /// credential; anything else holding the credential is a conflict.
    async fn own_pending_passkey(
        &self,
        person: &Person,
        credential_id: &str,
    ) -> Result<Passkey, ServiceError> {
        let existing =
            passkeys::find_by_credential_id(&self.store, credential_id).await?.ok_or_else(|| {
                ServiceError::Conflict("the credential changed while it was recorded; retry".into())
            })?;
        if existing.state != PasskeyState::Pending || existing.person_id != person.id {
            return Err(ServiceError::Conflict(format!(
                "this credential is already recorded as passkey {} ({}); make a new credential",
                existing.id, existing.state
            )));
        }
        Ok(existing)
    }

    /// Records what Entra answered: registered (the passkey, the issuance and the key move on),
    /// refused (the pending passkey is discarded and the issuance fails), or unknown (the passkey
    /// stays pending for reconcile).
    async fn record_outcome(
        &self,
        actor: &str,
        mut issuance: Issuance,
        passkey: Passkey,
        key: Option<SecurityKey>,
        outcome: Result<Registered, RegistrationError>,
    ) -> Result<Completed, ServiceError> {
        match outcome {
            Ok(registered) => {
                let mut tx = self.store.begin().await?;
                let model = registered.method.model.as_deref();
                let passkey =
                    passkeys::mark_registered(&mut tx, actor, &passkey, &registered.method.id, model).await?;
                let from = issuance.state;
                issuance
                    .transition(IssuanceState::Registered)
                    .map_err(|e| ServiceError::Conflict(e.to_string()))?;
                issuances::transition(&mut tx, actor, from, &issuance).await?;
                if let Some(k) = key.as_ref().filter(|k| k.state == KeyState::Available) {
                    keys::set_state(&mut tx, actor, k.id, KeyState::Issued).await?;
                }
                tx.commit().await?;
                Metrics::count(&self.metrics.issuances, "registered");
                Ok(Completed { issuance, passkey })
            }
            Err(RegistrationError::Unknown(e)) => Err(ServiceError::Entra(format!(
                "the registration's outcome is unknown ({e}); the passkey stays pending until a reconcile (run one, or wait for the scheduled run) settles it — do not register this key again before that"
            ))),
            Err(e) => {
                let reason = e.to_string();
                let mut tx = self.store.begin().await?;
                passkeys::discard_pending(&mut tx, actor, &passkey, &reason).await?;
                let from = issuance.state;
                issuance.fail(reason.clone()).map_err(|e| ServiceError::Conflict(e.to_string()))?;
                issuances::transition(&mut tx, actor, from, &issuance).await?;
                tx.commit().await?;
                Metrics::count(&self.metrics.issuances, "failed");
                Err(ServiceError::Entra(reason))
            }
        }
    }
}

/// Sends the registration to Entra; after a lost answer (`retry`) it first asks whether the
/// earlier POST landed, so Entra is never asked to register the same credential twice.
async fn register(
    connector: &Connector,
    object_id: &str,
    intent: &Intent,
    c: &Completion,
) -> Result<Registered, RegistrationError> {
    let body = Fido2RegistrationRequest {
        display_name: Some(intent.passkey.display_name.clone()),
        public_key_credential: PublicKeyCredential {
            id: intent.passkey.credential_id.clone(),
            response: AttestationResponse {
                client_data_json: b64::encode(&c.client_data_json),
                attestation_object: b64::encode(&c.attestation_object),
            },
            client_extension_results: None,
        },
    };
    if intent.retry {
        let own = own_registration(&intent.passkey);
        match connector.find_credential(object_id, &own).await {
            Ok(Some(method)) => {
                return Ok(Registered { method, path: RegistrationPath::FoundAfterLostAnswer });
            }
            Ok(None) => {}
            Err(e) => return Err(RegistrationError::Unknown(e)),
        }
    }
    connector.register_fido2(object_id, &body).await
}

/// How `passkey` (recorded before its POST) is recognised in the user's method list.
pub(super) fn own_registration(passkey: &Passkey) -> keyward_webauthn::registration::OwnRegistration {
    keyward_webauthn::registration::OwnRegistration {
        credential_id: b64::decode_lenient(&passkey.credential_id).unwrap_or_default(),
        display_name: passkey.display_name.clone(),
        aaguid: Some(passkey.aaguid.to_string()),
        // Recorded before the POST; a minute of leeway for Entra's clock.
        not_before: passkey.created_at.unix_timestamp() - 60,
    }
}

//! One provisioning, start to finish: issuance, options, optional reset, PIN, minimum PIN
//! length, passkey, registration in Entra, sign-in self-test, sign-in at the tenant (where the
//! tenant offers it), forced PIN change.
//!
//! The flow is shared by `keyward provision` (one key at the desk) and bulk provisioning, so it
//! prints nothing itself: progress goes to an optional callback. The CTAP client is synchronous
//! (hidapi is); its calls are short and run inline on the caller's task.
//!
//! Order matters. The forced PIN change comes last because a key that must change its PIN
//! refuses PIN tokens, and the self-test needs one. Once makeCredential succeeded, any failure
//! removes the credential from the key again (credentialManagement), revokes the passkey if the
//! server had already registered it, and marks the issuance failed: a key never leaves the desk
//! holding a passkey Keyward does not know to be good. The one exception is a registration
//! whose outcome stays unknown after [`COMPLETE_ATTEMPTS`] tries: Entra may hold the passkey,
//! so the credential stays on the key and the issuance open until reconcile settles it —
//! deleting it could leave Entra with a registered passkey no key can use.

use keyward_ctap::client::{PERMISSION_ACFG, PERMISSION_CM, PERMISSION_GA, PERMISSION_MC};
use keyward_ctap::{Client, CtapStatus, MinPinLength, Transport};
use keyward_proto::inventory::PasskeyView;
use keyward_proto::issuances::{CompleteRequest, SignInProofRequest};
use keyward_webauthn::registration::RegistrationPlan;
use keyward_webauthn::{ENTRA_RP_ID, b64};
use secrecy::SecretString;

pub use super::error::ProvisionError;
use super::error::{IssuanceCleanup, KeyCleanup, PasskeyCleanup, Step};
use super::pin::{PinGenerator, check_given};
use super::selftest::{credential_of, self_test};
use crate::api_client::{ApiClient, ApiClientError};

/// How many times a complete with an unknown outcome is sent again.
const COMPLETE_ATTEMPTS: usize = 5;
/// How many fresh random PINs are tried when the key refuses one.
const PIN_ATTEMPTS: usize = 5;

/// Where the PIN comes from.
pub enum PinMode {
    /// Generated from a CSPRNG (length per profile and key, at least 6; charset per generator).
    Random,
    /// Chosen by the operator.
    Given(SecretString),
}

/// What to provision.
pub struct ProvisionRequest {
    /// The person (UPN or Keyward id).
    pub upn: String,
    /// The key's serial, for the inventory.
    pub serial: Option<String>,
    /// The PIN to set.
    pub pin: PinMode,
    /// Force a PIN change at first use; `None`: as the enrollment policy says.
    pub force_pin_change: Option<bool>,
    /// Reset the key first (erases its passkeys and PIN).
    pub reset: bool,
    /// `operator`, `self-service` or `bulk`.
    pub channel: &'static str,
    /// Display name in Entra (default: the server's).
    pub display_name: Option<String>,
}

/// A provisioned key.
pub struct Provisioned {
    /// The issuance id.
    pub issuance_id: String,
    /// The registered passkey.
    pub passkey: PasskeyView,
    /// The PIN set, for hand-over; `None` if the operator chose it.
    pub pin: Option<SecretString>,
    /// What the tenant said to a sign-in with the new passkey.
    pub sign_in: SignInOutcome,
}

/// The proof of sign-in at the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInOutcome {
    /// The tenant signed the person in with the new passkey.
    SignedIn {
        /// Who, as the tenant reported it.
        upn: String,
    },
    /// The tenant offers no sign-in endpoint to Keyward (Entra publishes none); why.
    NotOffered(String),
}

impl std::fmt::Display for SignInOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SignedIn { upn } => write!(f, "the tenant signed {upn} in with the new passkey"),
            Self::NotOffered(note) => write!(f, "no sign-in at the tenant: {note}"),
        }
    }
}

/// Re-opens a key after the operator re-plugged it (USB keys reset only right after power-up);
/// the error says what to do.
pub type Reopen<'a, T> = &'a (dyn Fn() -> anyhow::Result<Client<T>> + Sync);

/// Extra settings of [`provision_with`].
pub struct FlowOptions<'a, T: Transport> {
    /// How random PINs are made.
    pub generator: PinGenerator,
    /// Called with a line for each step, for progress display.
    pub progress: Option<&'a (dyn Fn(&str) + Sync)>,
    /// With `reset`: waits for the key to be re-plugged and opens it again, right before the
    /// reset (None: reset the open key directly, as for soft keys).
    pub reopen_for_reset: Option<Reopen<'a, T>>,
    /// Called with each PIN right before it is set on the key (the PIN letter is written
    /// here): if it fails, the PIN is not set and the run stops, so no key ever holds a PIN
    /// that nobody can read.
    pub before_pin_set: Option<BeforePinSet<'a>>,
}

/// Keeps a PIN before the key is given it (see [`FlowOptions::before_pin_set`]).
pub type BeforePinSet<'a> = &'a (dyn Fn(&SecretString) -> anyhow::Result<()> + Sync);

impl<T: Transport> Default for FlowOptions<'_, T> {
    fn default() -> Self {
        Self {
            generator: PinGenerator::default(),
            progress: None,
            reopen_for_reset: None,
            before_pin_set: None,
        }
    }
}

/// Provisions one key with default PIN generation and no progress output.
pub async fn provision_one<T: Transport>(
    api: &ApiClient,
    key: &mut Client<T>,
    req: &ProvisionRequest,
) -> Result<Provisioned, ProvisionError> {
    provision_with(api, key, req, &FlowOptions::default()).await
}

/// The state of a run, for cleaning up after a failure.
struct Run<'a, T: Transport> {
    api: &'a ApiClient,
    key: &'a mut Client<T>,
    issuance: Option<String>,
    credential: Option<Vec<u8>>,
    passkey: Option<String>,
    pin: Option<SecretString>,
    opts: &'a FlowOptions<'a, T>,
}

impl<T: Transport> Run<'_, T> {
    fn say(&self, line: &str) {
        if let Some(p) = self.opts.progress {
            p(line);
        }
    }

    /// Undoes what can be undone and builds the error.
    async fn fail(&mut self, step: Step, cause: impl ToString, hint: &str) -> ProvisionError {
        let cause = cause.to_string();
        let key = match (self.credential.take(), self.pin.as_ref()) {
            (None, _) => KeyCleanup::NoneMade,
            (Some(id), pin) => {
                let removed = pin
                    .ok_or_else(|| "no PIN".to_owned())
                    .and_then(|pin| {
                        self.key.get_pin_uv_auth_token(pin, PERMISSION_CM, None).map_err(|e| e.to_string())
                    })
                    .and_then(|t| self.key.delete_credential(&t, &id).map_err(|e| e.to_string()));
                match removed {
                    Ok(()) => KeyCleanup::Removed,
                    Err(reason) => KeyCleanup::NotRemoved { credential_id: b64::encode(&id), reason },
                }
            }
        };
        let passkey = match self.passkey.take() {
            None => PasskeyCleanup::NoneRegistered,
            Some(id) => {
                let reason = format!("provisioning failed after registration: {cause}");
                match self.api.revoke_passkey(&id, Some(reason)).await {
                    Ok(_) => PasskeyCleanup::Revoked,
                    Err(e) => PasskeyCleanup::NotRevoked { id, reason: e.to_string() },
                }
            }
        };
        let issuance = match self.issuance.clone() {
            None => IssuanceCleanup::NoneCreated,
            Some(id) => match self.api.fail_issuance(&id, &format!("{step} failed: {cause}")).await {
                Ok(_) => IssuanceCleanup::MarkedFailed { id },
                Err(e) => match self.api.issuance(&id).await {
                    Ok(v) if v.state == "failed" => IssuanceCleanup::MarkedFailed { id },
                    _ => IssuanceCleanup::NotMarked { id, reason: e.to_string() },
                },
            },
        };
        ProvisionError::Failed { step, cause, hint: hint.to_owned(), issuance, key, passkey }
    }
}

fn unknown_outcome(e: &ApiClientError) -> bool {
    matches!(e, ApiClientError::Api { status: 502, message, .. } if message.contains("outcome is unknown"))
}

/// Provisions one key: see the module documentation for the steps.
pub async fn provision_with<T: Transport>(
    api: &ApiClient,
    key: &mut Client<T>,
    req: &ProvisionRequest,
    opts: &FlowOptions<'_, T>,
) -> Result<Provisioned, ProvisionError> {
    let mut run = Run { api, key, issuance: None, credential: None, passkey: None, pin: None, opts };
    let issuance_id = run.create_issuance(req).await?;
    let (pin_policy, plan) = run.fetch_options(&issuance_id).await?;
    if req.reset {
        run.reset_key().await?;
    }
    let key = run.read_key(&pin_policy, req).await?;
    let (pin, handover) = run.set_pin(&req.pin, &key).await?;
    run.pin = Some(pin.clone());
    run.raise_min_pin_length(&key, pin_policy.min_length, &pin).await?;
    let made = run.make_passkey(&plan, &pin).await?;
    let passkey = run.register(&issuance_id, &plan, &made, req).await?;
    run.self_test_passkey(&pin, &made).await?;
    let sign_in = run.sign_in_at_tenant(&issuance_id, &pin, &made).await?;
    if key.force_pin_change {
        run.force_pin_change(&pin).await?;
    }
    Ok(Provisioned { issuance_id, passkey, pin: handover, sign_in })
}

/// What the enrollment policy asks of the PIN, as the server sends it with Entra's options.
struct PinPolicy {
    /// Minimum PIN length the key must be set to.
    min_length: u8,
    /// Whether the key must force a PIN change on first use.
    force_change: bool,
}

/// What the key says about its PIN, and what the PIN must be.
struct KeyFacts {
    /// The key already has a PIN.
    has_pin: bool,
    /// The enrollment policy's minimum PIN length.
    policy_min: usize,
    /// The key's own minimum PIN length.
    key_min: usize,
    /// The key supports authenticatorConfig setMinPINLength.
    can_set_min_pin_length: bool,
    /// The key's minimum PIN length, as it reports it.
    key_min_pin_length: u8,
    /// The PIN change is to be forced at first use.
    force_pin_change: bool,
}

/// The passkey made on the key: its attestation and the credential it names.
struct MadePasskey {
    registration: keyward_ctap::entra::EntraRegistration,
    credential_id: Vec<u8>,
    public_key: p256::ecdsa::VerifyingKey,
}

impl<T: Transport> Run<'_, T> {
    /// `Ok(value)`, or the error after undoing what can be undone.
    async fn check<V>(
        &mut self,
        result: Result<V, impl ToString>,
        step: Step,
        hint: &str,
    ) -> Result<V, ProvisionError> {
        match result {
            Ok(v) => Ok(v),
            Err(e) => Err(self.fail(step, e, hint).await),
        }
    }

    /// Creates the issuance the rest of the flow belongs to; returns its id.
    async fn create_issuance(&mut self, req: &ProvisionRequest) -> Result<String, ProvisionError> {
        self.say(&format!("creating the issuance for {}", req.upn));
        let created = self.api.create_issuance(&req.upn, req.serial.clone(), Some(req.channel)).await;
        let hint = "Check the UPN (people come from Entra with `keyward people sync`) and the API token.";
        let issuance = self.check(created, Step::CreateIssuance, hint).await?;
        self.issuance = Some(issuance.id.clone());
        Ok(issuance.id)
    }

    /// Entra's creation options for the issuance: the registration planned from them, and
    /// the policy's PIN rules that come with them.
    async fn fetch_options(
        &mut self,
        issuance_id: &str,
    ) -> Result<(PinPolicy, RegistrationPlan), ProvisionError> {
        self.say("fetching the registration options from Entra");
        let fetched = self.api.options(issuance_id).await;
        let hint =
            "If the issuance needs approval, have it approved and run again; otherwise check the connector.";
        let options = self.check(fetched, Step::Options, hint).await?;
        let planned = RegistrationPlan::from_creation_options(&options.creation_options);
        let plan = self.check(planned, Step::Options, "Entra's options cannot be used; report this.").await?;
        Ok((PinPolicy { min_length: options.pin_min_length, force_change: options.pin_force_change }, plan))
    }

    /// Resets the key, re-opening it first when it must be re-plugged (USB).
    async fn reset_key(&mut self) -> Result<(), ProvisionError> {
        if let Some(reopen) = self.opts.reopen_for_reset {
            let reopened = reopen().map_err(|e| format!("{e:#}"));
            let hint = "Re-plug the key when asked, within the time given, and run again.";
            *self.key = self.check(reopened, Step::Reset, hint).await?;
        }
        self.say("resetting the key (touch it if it blinks)");
        let reset = self.key.reset();
        let hint = "A USB key resets only within seconds of being plugged in: re-plug it and run again.";
        self.check(reset, Step::Reset, hint).await
    }

    /// Reads the key's PIN state and limits; refuses a forced PIN change the key cannot do.
    async fn read_key(
        &mut self,
        policy: &PinPolicy,
        req: &ProvisionRequest,
    ) -> Result<KeyFacts, ProvisionError> {
        let info = self.key.get_info();
        let info = self.check(info, Step::SetPin, "Check the key's connection and run again.").await?;
        let facts = KeyFacts {
            has_pin: info.options.get("clientPin") == Some(&true),
            policy_min: usize::from(policy.min_length),
            key_min: usize::from(info.min_pin_length),
            can_set_min_pin_length: info.options.get("authnrCfg") == Some(&true)
                && info.options.get("setMinPINLength") == Some(&true),
            key_min_pin_length: info.min_pin_length,
            force_pin_change: req.force_pin_change.unwrap_or(policy.force_change),
        };
        if facts.force_pin_change && !facts.can_set_min_pin_length {
            let hint = "This key model cannot force a PIN change (no authenticatorConfig setMinPINLength); \
                        provision without --force-pin-change or use another key.";
            return Err(self.fail(Step::ForcePinChange, "not supported by the key", hint).await);
        }
        Ok(facts)
    }

    /// Sets the PIN: the operator's (checked against the policy, or kept when the key has it)
    /// or a random one; returns it, and the random PIN again for hand-over.
    async fn set_pin(
        &mut self,
        mode: &PinMode,
        key: &KeyFacts,
    ) -> Result<(SecretString, Option<SecretString>), ProvisionError> {
        match mode {
            PinMode::Given(pin) => {
                let checked = check_given(pin, key.policy_min.max(key.key_min).max(4));
                self.check(checked, Step::SetPin, "Run again with another PIN.").await?;
                if key.has_pin {
                    self.say("the key already has a PIN: using the given one as its PIN");
                } else {
                    self.say("setting the PIN chosen by the operator");
                    self.keep_pin(pin).await?;
                    let set = self.key.set_pin(pin);
                    self.check(set, Step::SetPin, "The key refused this PIN; choose another.").await?;
                }
                Ok((pin.clone(), None))
            }
            PinMode::Random => {
                if key.has_pin {
                    let hint = "The key already has a PIN: run again with --reset to erase it (this deletes the \
                                key's passkeys), or with --pin prompt and the key's current PIN.";
                    return Err(self.fail(Step::SetPin, "the key already has a PIN", hint).await);
                }
                let pin = self.set_random_pin(key).await?;
                Ok((pin.clone(), Some(pin)))
            }
        }
    }

    /// Hands `pin` to [`FlowOptions::before_pin_set`]; on failure the PIN is not set.
    async fn keep_pin(&mut self, pin: &SecretString) -> Result<(), ProvisionError> {
        let Some(keep) = self.opts.before_pin_set else { return Ok(()) };
        let kept = keep(pin).map_err(|e| format!("{e:#}"));
        let hint = "The key's PIN was NOT set, so nothing is lost: fix the problem (the letter's path, the \
                    disk) and run again.";
        self.check(kept, Step::SetPin, hint).await
    }

    /// Sets a fresh random PIN, trying another when the key's PIN policy refuses one.
    async fn set_random_pin(&mut self, key: &KeyFacts) -> Result<SecretString, ProvisionError> {
        let length = self.opts.generator.length_for(key.policy_min, key.key_min);
        self.say(&format!("setting a random {length}-character PIN"));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let pin = self.opts.generator.generate(length);
            self.keep_pin(&pin).await?;
            match self.key.set_pin(&pin) {
                Ok(()) => return Ok(pin),
                Err(e) if e.status() == Some(CtapStatus::PinPolicyViolation) && attempt < PIN_ATTEMPTS => {
                    self.say("the key refused that PIN (its PIN policy); trying another");
                }
                Err(e) => {
                    let hint = "Check the key's PIN policy (`keyward device info`); --pin-length or \
                                --pin-charset alnum may help.";
                    return Err(self.fail(Step::SetPin, e, hint).await);
                }
            }
        }
    }

    /// Raises the key's minimum PIN length to the policy's, when the key can and is below it.
    async fn raise_min_pin_length(
        &mut self,
        key: &KeyFacts,
        policy_min: u8,
        pin: &SecretString,
    ) -> Result<(), ProvisionError> {
        if !key.can_set_min_pin_length || policy_min <= key.key_min_pin_length {
            return Ok(());
        }
        self.say(&format!("raising the key's minimum PIN length to {policy_min}"));
        let set = self.key.get_pin_uv_auth_token(pin, PERMISSION_ACFG, None).and_then(|t| {
            let req = MinPinLength { new_min_pin_length: Some(policy_min), ..MinPinLength::default() };
            self.key.set_min_pin_length(&t, &req)
        });
        self.check(set, Step::MinPinLength, "Reset the key and run again.").await
    }

    /// Makes the passkey on the key for Entra's options; from here on a failure deletes it.
    async fn make_passkey(
        &mut self,
        plan: &RegistrationPlan,
        pin: &SecretString,
    ) -> Result<MadePasskey, ProvisionError> {
        self.say("making the passkey on the key (touch it if it blinks)");
        let token = self.key.get_pin_uv_auth_token(pin, PERMISSION_MC, Some(ENTRA_RP_ID));
        let token = self.check(token, Step::PinToken, "Check the PIN and the key's retries.").await?;
        let made = self.key.register_for_entra(plan, &token);
        let made = self.check(made, Step::MakeCredential, "Use a key model Entra accepts.").await?;
        for w in &made.warnings {
            self.say(&format!("warning: {w}"));
        }
        let credential = credential_of(&made.attestation);
        let hint = "The key's answer is unusable; use another key.";
        let (credential_id, public_key) = self.check(credential, Step::MakeCredential, hint).await?;
        self.credential = Some(credential_id.clone());
        Ok(MadePasskey { registration: made, credential_id, public_key })
    }

    /// Registers the passkey in Entra through the server, asking again while Entra's answer is
    /// lost; when it stays lost, the credential and the issuance are left for reconcile.
    async fn register(
        &mut self,
        issuance_id: &str,
        plan: &RegistrationPlan,
        made: &MadePasskey,
        req: &ProvisionRequest,
    ) -> Result<PasskeyView, ProvisionError> {
        self.say("registering the passkey in Entra");
        let body = CompleteRequest {
            client_data_json: b64::encode(&plan.client_data_json),
            attestation_object: b64::encode(&made.registration.attestation.attestation_object()),
            serial: req.serial.clone(),
            firmware: None,
            display_name: req.display_name.clone(),
        };
        let mut attempt = 0;
        let done = loop {
            attempt += 1;
            match self.api.complete(issuance_id, &body).await {
                Ok(done) => break done,
                Err(e) if unknown_outcome(&e) && attempt < COMPLETE_ATTEMPTS => {
                    self.say("Entra's answer was lost; asking again");
                    tokio::time::sleep(std::time::Duration::from_millis(500 * attempt as u64)).await;
                }
                Err(e) if unknown_outcome(&e) => {
                    return Err(ProvisionError::Failed {
                        step: Step::Complete,
                        cause: e.to_string(),
                        hint: "Entra's answer was lost every time.".into(),
                        issuance: IssuanceCleanup::LeftForReconcile { id: issuance_id.to_owned() },
                        key: KeyCleanup::Kept { credential_id: b64::encode(&made.credential_id) },
                        passkey: PasskeyCleanup::NoneRegistered,
                    });
                }
                Err(e) => {
                    let hint = "Check that the tenant allows this person and this key model (FIDO2 method policy), \
                                then run again.";
                    return Err(self.fail(Step::Complete, e, hint).await);
                }
            }
        };
        self.passkey = Some(done.passkey.id.clone());
        Ok(done.passkey)
    }

    /// Signs in once with the new passkey: a key that cannot is not handed over.
    async fn self_test_passkey(
        &mut self,
        pin: &SecretString,
        made: &MadePasskey,
    ) -> Result<(), ProvisionError> {
        self.say("self-test: signing in with the new passkey");
        let tested = self_test(&mut *self.key, pin, &made.credential_id, &made.public_key);
        self.check(tested, Step::SelfTest, "The key is not fit to hand over; use another key.").await
    }

    /// Signs the person in at the tenant with the new passkey, where the tenant offers it (the
    /// key answers the tenant's challenge; the server hands the answer over and audits the
    /// proof). A refusal means the passkey does not work: the key is not handed over.
    async fn sign_in_at_tenant(
        &mut self,
        issuance_id: &str,
        pin: &SecretString,
        made: &MadePasskey,
    ) -> Result<SignInOutcome, ProvisionError> {
        let hint = "The passkey does not sign its person in at the tenant; use another key, or report this.";
        let offered = self.api.sign_in_options(issuance_id).await;
        let offered = self.check(offered, Step::SignIn, hint).await?;
        let Some(challenge) = offered.challenge.filter(|_| offered.offered) else {
            let note = offered.note.unwrap_or_else(|| "the tenant offers no passkey sign-in".into());
            self.say(&format!("sign-in at the tenant: not offered ({note})"));
            return Ok(SignInOutcome::NotOffered(note));
        };
        self.say("signing in at the tenant with the new passkey (touch the key if it blinks)");
        let token = self.key.get_pin_uv_auth_token(pin, PERMISSION_GA, Some(ENTRA_RP_ID));
        let token = self.check(token, Step::SignIn, hint).await?;
        let signed = self.key.sign_in_for_entra(&challenge, &token, Some(&made.credential_id));
        let signed = self.check(signed, Step::SignIn, hint).await?;
        let proof = SignInProofRequest {
            credential_id: b64::encode(&signed.credential_id),
            client_data_json: b64::encode(&signed.client_data_json),
            authenticator_data: b64::encode(&signed.authenticator_data),
            signature: b64::encode(&signed.signature),
            user_handle: signed.user_handle.as_deref().map(b64::encode),
        };
        let proved = self.api.prove_sign_in(issuance_id, &proof).await;
        let proved = self.check(proved, Step::SignIn, hint).await?;
        self.say(&format!("signed in at the tenant as {} with the new passkey", proved.upn));
        Ok(SignInOutcome::SignedIn { upn: proved.upn })
    }

    /// Makes the person change the PIN at first use (last: such a key refuses PIN tokens).
    async fn force_pin_change(&mut self, pin: &SecretString) -> Result<(), ProvisionError> {
        self.say("forcing a PIN change at first use");
        let set = self.key.get_pin_uv_auth_token(pin, PERMISSION_ACFG, None).and_then(|t| {
            self.key
                .set_min_pin_length(&t, &MinPinLength { force_change_pin: true, ..MinPinLength::default() })
        });
        let hint = "Run again, or provision without --force-pin-change.";
        self.check(set, Step::ForcePinChange, hint).await
    }
}

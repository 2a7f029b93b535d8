//! One provisioning, start to finish: issuance, options, optional reset, PIN, minimum PIN
//! length, passkey, registration in Entra, sign-in self-test, forced PIN change.
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

use keyward_ctap::client::{PERMISSION_ACFG, PERMISSION_CM, PERMISSION_MC};
use keyward_ctap::{Client, CtapStatus, MinPinLength, Transport};
use keyward_proto::inventory::PasskeyView;
use keyward_proto::issuances::CompleteRequest;
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
}

impl<T: Transport> Default for FlowOptions<'_, T> {
    fn default() -> Self {
        Self { generator: PinGenerator::default(), progress: None, reopen_for_reset: None }
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

    run.say(&format!("creating the issuance for {}", req.upn));
    let issuance = match api.create_issuance(&req.upn, req.serial.clone(), Some(req.channel)).await {
        Ok(i) => i,
        Err(e) => {
            let hint = "Check the UPN (people come from Entra with `keyward people sync`) and the API token.";
            return Err(run.fail(Step::CreateIssuance, e, hint).await);
        }
    };
    run.issuance = Some(issuance.id.clone());
    run.say("fetching the registration options from Entra");
    let options = match api.options(&issuance.id).await {
        Ok(o) => o,
        Err(e) => {
            let hint = "If the issuance needs approval, have it approved and run again; otherwise check the connector.";
            return Err(run.fail(Step::Options, e, hint).await);
        }
    };
    let plan = match RegistrationPlan::from_creation_options(&options.creation_options) {
        Ok(p) => p,
        Err(e) => {
            return Err(run.fail(Step::Options, e, "Entra's options cannot be used; report this.").await);
        }
    };

    if req.reset {
        if let Some(reopen) = opts.reopen_for_reset {
            match reopen() {
                Ok(client) => *run.key = client,
                Err(e) => {
                    let hint = "Re-plug the key when asked, within the time given, and run again.";
                    return Err(run.fail(Step::Reset, format!("{e:#}"), hint).await);
                }
            }
        }
        run.say("resetting the key (touch it if it blinks)");
        if let Err(e) = run.key.reset() {
            let hint = "A USB key resets only within seconds of being plugged in: re-plug it and run again.";
            return Err(run.fail(Step::Reset, e, hint).await);
        }
    }

    // The PIN.
    let info = match run.key.get_info() {
        Ok(i) => i,
        Err(e) => return Err(run.fail(Step::SetPin, e, "Check the key's connection and run again.").await),
    };
    let has_pin = info.options.get("clientPin") == Some(&true);
    let policy_min = usize::from(options.pin_min_length);
    let key_min = usize::from(info.min_pin_length);
    let force = req.force_pin_change.unwrap_or(options.pin_force_change);
    let config = info.options.get("authnrCfg") == Some(&true);
    if force && !(config && info.options.get("setMinPINLength") == Some(&true)) {
        let hint = "This key model cannot force a PIN change (no authenticatorConfig setMinPINLength); \
                    provision without --force-pin-change or use another key.";
        return Err(run.fail(Step::ForcePinChange, "not supported by the key", hint).await);
    }
    let (pin, handover) = match &req.pin {
        PinMode::Given(pin) => {
            if let Err(e) = check_given(pin, policy_min.max(key_min).max(4)) {
                return Err(run.fail(Step::SetPin, e, "Run again with another PIN.").await);
            }
            if has_pin {
                run.say("the key already has a PIN: using the given one as its PIN");
            } else {
                run.say("setting the PIN chosen by the operator");
                if let Err(e) = run.key.set_pin(pin) {
                    return Err(run.fail(Step::SetPin, e, "The key refused this PIN; choose another.").await);
                }
            }
            (pin.clone(), None)
        }
        PinMode::Random => {
            if has_pin {
                let hint = "The key already has a PIN: run again with --reset to erase it (this deletes the \
                            key's passkeys), or with --pin prompt and the key's current PIN.";
                return Err(run.fail(Step::SetPin, "the key already has a PIN", hint).await);
            }
            let length = opts.generator.length_for(policy_min, key_min);
            run.say(&format!("setting a random {length}-character PIN"));
            let mut attempt = 0;
            loop {
                attempt += 1;
                let pin = opts.generator.generate(length);
                match run.key.set_pin(&pin) {
                    Ok(()) => break (pin.clone(), Some(pin)),
                    Err(e)
                        if e.status() == Some(CtapStatus::PinPolicyViolation) && attempt < PIN_ATTEMPTS =>
                    {
                        run.say("the key refused that PIN (its PIN policy); trying another");
                    }
                    Err(e) => {
                        let hint = "Check the key's PIN policy (`keyward device info`); --pin-length or \
                                    --pin-charset alnum may help.";
                        return Err(run.fail(Step::SetPin, e, hint).await);
                    }
                }
            }
        }
    };
    run.pin = Some(pin.clone());

    if config
        && info.options.get("setMinPINLength") == Some(&true)
        && options.pin_min_length > info.min_pin_length
    {
        run.say(&format!("raising the key's minimum PIN length to {}", options.pin_min_length));
        let set = run.key.get_pin_uv_auth_token(&pin, PERMISSION_ACFG, None).and_then(|t| {
            let req =
                MinPinLength { new_min_pin_length: Some(options.pin_min_length), ..MinPinLength::default() };
            run.key.set_min_pin_length(&t, &req)
        });
        if let Err(e) = set {
            return Err(run.fail(Step::MinPinLength, e, "Reset the key and run again.").await);
        }
    }

    run.say("making the passkey on the key (touch it if it blinks)");
    let token = match run.key.get_pin_uv_auth_token(&pin, PERMISSION_MC, Some(ENTRA_RP_ID)) {
        Ok(t) => t,
        Err(e) => return Err(run.fail(Step::PinToken, e, "Check the PIN and the key's retries.").await),
    };
    let made = match run.key.register_for_entra(&plan, &token) {
        Ok(m) => m,
        Err(e) => return Err(run.fail(Step::MakeCredential, e, "Use a key model Entra accepts.").await),
    };
    for w in &made.warnings {
        run.say(&format!("warning: {w}"));
    }
    let (credential_id, public_key) = match credential_of(&made.attestation) {
        Ok(c) => c,
        Err(e) => {
            return Err(run
                .fail(Step::MakeCredential, e, "The key's answer is unusable; use another key.")
                .await);
        }
    };
    run.credential = Some(credential_id.clone());

    run.say("registering the passkey in Entra");
    let body = CompleteRequest {
        client_data_json: b64::encode(&plan.client_data_json),
        attestation_object: b64::encode(&made.attestation.attestation_object()),
        serial: req.serial.clone(),
        firmware: None,
        display_name: req.display_name.clone(),
    };
    let mut attempt = 0;
    let done = loop {
        attempt += 1;
        match api.complete(&issuance.id, &body).await {
            Ok(done) => break done,
            Err(e) if unknown_outcome(&e) && attempt < COMPLETE_ATTEMPTS => {
                run.say("Entra's answer was lost; asking again");
                tokio::time::sleep(std::time::Duration::from_millis(500 * attempt as u64)).await;
            }
            Err(e) if unknown_outcome(&e) => {
                let id = issuance.id.clone();
                let credential_id = b64::encode(&credential_id);
                let hint = "Entra's answer was lost every time.";
                return Err(ProvisionError::Failed {
                    step: Step::Complete,
                    cause: e.to_string(),
                    hint: hint.into(),
                    issuance: IssuanceCleanup::LeftForReconcile { id },
                    key: KeyCleanup::Kept { credential_id },
                    passkey: PasskeyCleanup::NoneRegistered,
                });
            }
            Err(e) => {
                let hint = "Check that the tenant allows this person and this key model (FIDO2 method policy), \
                            then run again.";
                return Err(run.fail(Step::Complete, e, hint).await);
            }
        }
    };
    run.passkey = Some(done.passkey.id.clone());

    run.say("self-test: signing in with the new passkey");
    if let Err(e) = self_test(run.key, &pin, &credential_id, &public_key) {
        return Err(run.fail(Step::SelfTest, e, "The key is not fit to hand over; use another key.").await);
    }

    if force {
        run.say("forcing a PIN change at first use");
        let set = run.key.get_pin_uv_auth_token(&pin, PERMISSION_ACFG, None).and_then(|t| {
            run.key
                .set_min_pin_length(&t, &MinPinLength { force_change_pin: true, ..MinPinLength::default() })
        });
        if let Err(e) = set {
            return Err(run
                .fail(Step::ForcePinChange, e, "Run again, or provision without --force-pin-change.")
                .await);
        }
    }
    Ok(Provisioned { issuance_id: issuance.id, passkey: done.passkey, pin: handover })
}

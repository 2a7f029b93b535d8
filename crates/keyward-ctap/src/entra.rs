//! Running an Entra [`RegistrationPlan`] on a security key: the checks a browser would make
//! before touching the key, and the makeCredential it would send.
//!
//! Every check here turns a late, generic failure into an early, specific one. Graph answers
//! a registration from an unsuitable key with a bare 400 after the key already holds a
//! credential; getInfo tells us beforehand whether the key can make a discoverable
//! credential, verify the user, use ES256, and apply the credProtect level Entra enforces.
//!
//! Long exclude lists are handled as Chromium does: a key accepts at most
//! `maxCredentialCountInList` ids per request, so longer lists are first checked in chunks
//! with a silent getAssertion (`up: false`, no touch), and makeCredential then carries only
//! the ids the key recognised. Dropping ids instead would let a key silently replace the
//! user's existing passkey (same RP and user handle), orphaning its Entra registration, so a
//! key that refuses the silent check (alwaysUv) stops the registration with a clear error.
//! The check cannot see credProtect level 3 credentials (they need UV to be found); Entra asks
//! for level 1.

use ciborium::value::Value;
use keyward_webauthn::registration::{Algorithm, CredProtect, PlanWarning, RegistrationPlan};

use crate::cbor::{get_int_key, imap, tmap};
use crate::client::{Client, PinToken, descriptor};
use crate::error::CtapError;
use crate::status::CtapStatus;
use crate::transport::Transport;
use crate::{Attestation, MakeCredential};

const CMD_GET_ASSERTION: u8 = 0x02;
const CMD_GET_INFO: u8 = 0x04;

/// The key cannot make the credential Entra asked for; each message names the fix.
#[derive(Debug, thiserror::Error)]
pub enum EntraError {
    /// The key failed a CTAP command.
    #[error(transparent)]
    Ctap(#[from] CtapError),
    /// No discoverable credentials (`rk` option absent or false).
    #[error(
        "this security key cannot store discoverable credentials (passkeys), which Entra requires; \
         use a FIDO2 key that supports resident keys"
    )]
    NoResidentKeys,
    /// The key has no PIN support at all.
    #[error(
        "this security key has no PIN support, and Entra requires user verification; use another key model"
    )]
    NoPinSupport,
    /// The key supports a PIN but none is set.
    #[error("this security key has no PIN yet; set one with `keyward device set-pin` and retry")]
    PinNotSet,
    /// Entra offered no algorithm that both the key and Keyward's client support.
    #[error(
        "no common signature algorithm: Entra offered {offered:?}, the key supports {key:?}, and Keyward \
         creates ES256 (-7) credentials; use a key that supports ES256"
    )]
    NoCommonAlgorithm {
        /// COSE ids Entra offered.
        offered: Vec<i64>,
        /// COSE ids the key lists in getInfo.
        key: Vec<i64>,
    },
    /// Entra enforces credProtect and the key lacks the extension.
    #[error(
        "Entra requires credential protection level {level} and this security key does not support \
         credProtect; use a CTAP 2.1 key, or turn off enforcement of the credential protection policy"
    )]
    CredProtectUnsupported {
        /// The level Entra requires.
        level: u8,
    },
    /// The exclude list is too long for one request and the key refused the silent check.
    #[error(
        "Entra lists {count} passkeys to exclude, more than this key checks at once ({max}), and the key \
         refused to check them without a touch ({}); registering unchecked could overwrite an existing \
         passkey: revoke the user's unused passkeys (`keyward passkeys list`) or turn off alwaysUv on the key",
        .status.operator_message()
    )]
    ExcludeListUnchecked {
        /// Ids to exclude (every reading of every id).
        count: usize,
        /// The key's maxCredentialCountInList.
        max: usize,
        /// What the key answered the silent getAssertion.
        status: CtapStatus,
    },
    /// Entra enforces credProtect and the key applied another level.
    #[error(
        "Entra requires credential protection level {asked} but the key applied {got:?}; the new credential \
         is on the key but unusable for Entra: delete it with `keyward device credentials --delete` and use \
         another key model"
    )]
    CredProtectNotApplied {
        /// The level asked for.
        asked: u8,
        /// The level the key reported, if any.
        got: Option<u8>,
    },
}

impl EntraError {
    /// The CTAP status behind this error, if the key sent one.
    pub fn status(&self) -> Option<CtapStatus> {
        match self {
            Self::Ctap(e) => e.status(),
            Self::ExcludeListUnchecked { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Something the operator should know about a registration that went ahead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntraWarning {
    /// Skipped while reading the creation options.
    #[error(transparent)]
    Plan(#[from] PlanWarning),
    /// hmac-secret asked for but not supported: Windows cannot sign in offline with this key.
    #[error(
        "this security key does not support hmac-secret, so Windows cannot use the passkey for offline \
         sign-in; the registration goes ahead without it"
    )]
    HmacSecretUnsupported,
    /// credProtect asked for, not enforced, not supported: the key's default applies.
    #[error(
        "this security key does not support credProtect; the passkey gets the key's default protection \
         instead of level {level} (Entra does not enforce it)"
    )]
    CredProtectUnsupported {
        /// The level Entra asked for.
        level: u8,
    },
}

/// A credential made for Entra, with what the operator should be told.
#[derive(Debug)]
pub struct EntraRegistration {
    /// The key's answer; `attestation_object()` goes into the Graph body unchanged.
    pub attestation: Attestation,
    /// Warnings from the plan and from the key's capabilities, in that order.
    pub warnings: Vec<EntraWarning>,
}

/// What getInfo says beyond [`crate::Info`]: algorithms and exclude-list limits.
struct Limits {
    algorithms: Option<Vec<i64>>,
    max_count_in_list: Option<usize>,
    max_id_length: Option<usize>,
}

impl<T: Transport> Client<T> {
    /// Makes the credential `plan` describes, with user verification through `token` (a PIN
    /// token with the makeCredential permission for `login.microsoft.com`).
    pub fn register_for_entra(
        &mut self,
        plan: &RegistrationPlan,
        token: &PinToken,
    ) -> Result<EntraRegistration, EntraError> {
        let info = self.get_info()?;
        let limits = self.limits()?;
        let mut warnings: Vec<EntraWarning> = plan.warnings.iter().cloned().map(EntraWarning::from).collect();

        if plan.resident_key && info.options.get("rk") != Some(&true) {
            return Err(EntraError::NoResidentKeys);
        }
        if plan.user_verification {
            match info.options.get("clientPin") {
                Some(true) => {}
                Some(false) => return Err(EntraError::PinNotSet),
                None => return Err(EntraError::NoPinSupport),
            }
        }
        // The client sends ES256 only; CTAP 2.0 keys without an algorithm list all do ES256.
        let key_algs = limits.algorithms.clone().unwrap_or_else(|| vec![Algorithm::Es256.cose()]);
        if !plan.algorithms.contains(&Algorithm::Es256) || !key_algs.contains(&Algorithm::Es256.cose()) {
            return Err(EntraError::NoCommonAlgorithm {
                offered: plan.algorithms.iter().map(|a| a.cose()).collect(),
                key: key_algs,
            });
        }
        let has = |ext: &str| info.extensions.iter().any(|e| e == ext);
        let hmac_secret = plan.hmac_secret && has("hmac-secret");
        if plan.hmac_secret && !hmac_secret {
            warnings.push(EntraWarning::HmacSecretUnsupported);
        }
        let cred_protect = match plan.cred_protect {
            Some(level) if !has("credProtect") => {
                if plan.enforce_cred_protect {
                    return Err(EntraError::CredProtectUnsupported { level: level.level() });
                }
                warnings.push(EntraWarning::CredProtectUnsupported { level: level.level() });
                None
            }
            other => other,
        };

        let exclude_list = self.exclude_list(plan, &limits)?;
        let request = MakeCredential {
            client_data_hash: plan.client_data_hash,
            rp_id: plan.rp_id.clone(),
            rp_name: Some(plan.rp_name.clone()),
            user_id: plan.user_id.clone(),
            user_name: Some(plan.user_name.clone()),
            user_display_name: Some(plan.user_display_name.clone()),
            exclude_list,
            resident_key: plan.resident_key,
            hmac_secret,
            cred_protect: cred_protect.map(CredProtect::level),
            ..MakeCredential::default()
        };
        let attestation = self.make_credential(&request, Some(token))?;
        if let (Some(asked), true) = (cred_protect, plan.enforce_cred_protect) {
            let got = applied_cred_protect(&attestation);
            if got != Some(asked.level()) {
                return Err(EntraError::CredProtectNotApplied { asked: asked.level(), got });
            }
        }
        Ok(EntraRegistration { attestation, warnings })
    }

    /// getInfo members [`crate::Info`] does not carry (algorithms 0x0A, list limits 0x07 and 0x08).
    fn limits(&mut self) -> Result<Limits, CtapError> {
        let m = self.call_map(CMD_GET_INFO, None)?;
        let uint = |k| {
            get_int_key(&m, k)
                .and_then(Value::as_integer)
                .and_then(|i| usize::try_from(i).ok())
                .filter(|&n| n > 0)
        };
        let algorithms = get_int_key(&m, 0x0A).and_then(Value::as_array).map(|list| {
            list.iter()
                .filter_map(Value::as_map)
                .filter_map(|p| {
                    p.iter()
                        .find(|(k, _)| k.as_text() == Some("alg"))
                        .and_then(|(_, v)| v.as_integer())
                        .and_then(|i| i64::try_from(i).ok())
                })
                .collect()
        });
        Ok(Limits { algorithms, max_count_in_list: uint(0x07), max_id_length: uint(0x08) })
    }

    /// The exclude list to send: every id if the key takes them in one request, else only the
    /// ids a silent preflight found on the key.
    fn exclude_list(&mut self, plan: &RegistrationPlan, limits: &Limits) -> Result<Vec<Vec<u8>>, EntraError> {
        // An id longer than the key's maximum cannot be one of its credentials.
        let ids: Vec<Vec<u8>> = plan
            .exclude_credentials
            .iter()
            .filter(|id| limits.max_id_length.is_none_or(|max| id.len() <= max))
            .cloned()
            .collect();
        let Some(max) = limits.max_count_in_list.filter(|&max| ids.len() > max) else { return Ok(ids) };
        let mut found = Vec::new();
        for chunk in ids.chunks(max) {
            let params = imap(vec![
                (1, Value::Text(plan.rp_id.clone())),
                (2, Value::Bytes(plan.client_data_hash.to_vec())),
                (3, Value::Array(chunk.iter().map(|id| descriptor(id)).collect())),
                (5, tmap(vec![("up", Value::Bool(false))])),
            ]);
            match self.call_map(CMD_GET_ASSERTION, Some(params)) {
                Ok(answer) => {
                    let id = get_int_key(&answer, 1)
                        .and_then(Value::as_map)
                        .and_then(|d| d.iter().find(|(k, _)| k.as_text() == Some("id")))
                        .and_then(|(_, v)| v.as_bytes())
                        .cloned()
                        .ok_or_else(|| {
                            CtapError::Malformed("preflight getAssertion without credential".into())
                        })?;
                    found.push(id);
                }
                Err(CtapError::Status(CtapStatus::NoCredentials)) => {}
                // alwaysUv keys refuse a check without a PIN token; never register unchecked.
                Err(CtapError::Status(status)) => {
                    return Err(EntraError::ExcludeListUnchecked { count: ids.len(), max, status });
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(found)
    }
}

/// The credProtect level in the authenticator data's extension outputs, if any.
fn applied_cred_protect(attestation: &Attestation) -> Option<u8> {
    let parsed = attestation.parsed().ok()?;
    let Some(Value::Map(ext)) = parsed.extensions else { return None };
    ext.iter()
        .find(|(k, _)| k.as_text() == Some("credProtect"))
        .and_then(|(_, v)| v.as_integer())
        .and_then(|i| u8::try_from(i).ok())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use keyward_softkey::{Config, SoftKey};
    use keyward_webauthn::graph::{
        AuthenticatorSelection, CredentialDescriptor, CredentialParameters, ExtensionInputs,
        PublicKeyCreationOptions, RpEntity, UserEntity,
    };
    use keyward_webauthn::{ENTRA_RP_ID, b64};
    use secrecy::SecretString;

    use super::*;
    use crate::client::PERMISSION_MC;
    use crate::{HidDevice, MemoryTransport, Timeouts};

    const PIN: &str = "314159";

    fn key() -> (Client<MemoryTransport>, SoftKey) {
        let (host, dev) = MemoryTransport::pair();
        let key = SoftKey::spawn(Config::default(), dev.from_host, dev.to_host);
        let timeouts = Timeouts { idle: Duration::from_secs(5), transaction: Duration::from_secs(10) };
        (Client::new(HidDevice::open(host, timeouts).unwrap()), key)
    }

    fn key_with_pin() -> (Client<MemoryTransport>, SoftKey, PinToken) {
        let (mut c, key) = key();
        let pin = SecretString::from(PIN.to_owned());
        c.set_pin(&pin).unwrap();
        let token = c.get_pin_uv_auth_token(&pin, PERMISSION_MC, Some(ENTRA_RP_ID)).unwrap();
        (c, key, token)
    }

    /// Entra's options as observed (docs/entra-graph-api.md §1.3), with `exclude` as excludeCredentials ids.
    fn options(exclude: &[String]) -> PublicKeyCreationOptions {
        let param = |alg| CredentialParameters { kind: "public-key".into(), alg };
        PublicKeyCreationOptions {
            rp: RpEntity { id: ENTRA_RP_ID.into(), name: "Microsoft".into() },
            user: UserEntity {
                id: b64::encode(b"OF:adele-handle"),
                name: "adele@contoso.com".into(),
                display_name: "Adele Vance".into(),
            },
            challenge: b64::encode(b"a challenge from Entra"),
            pub_key_cred_params: vec![param(-7), param(-257)],
            timeout: Some(0),
            exclude_credentials: exclude
                .iter()
                .map(|id| CredentialDescriptor {
                    kind: "public-key".into(),
                    id: id.clone(),
                    transports: vec![],
                })
                .collect(),
            authenticator_selection: Some(AuthenticatorSelection {
                authenticator_attachment: Some("cross-platform".into()),
                require_resident_key: true,
                user_verification: Some("required".into()),
            }),
            attestation: Some("direct".into()),
            extensions: Some(ExtensionInputs {
                hmac_create_secret: Some(true),
                enforce_credential_protection_policy: Some(true),
                credential_protection_policy: Some("userVerificationOptional".into()),
            }),
        }
    }

    fn plan(exclude: &[String]) -> RegistrationPlan {
        RegistrationPlan::from_public_key(&options(exclude)).unwrap()
    }

    #[test]
    fn entra_options_make_a_resident_verified_credential_with_the_extensions() {
        let (mut c, key, token) = key_with_pin();
        let plan = plan(&[]);
        let reg = c.register_for_entra(&plan, &token).unwrap();
        assert!(reg.warnings.is_empty(), "{:?}", reg.warnings);
        let auth = reg.attestation.parsed().unwrap();
        assert_eq!(auth.flags & 0x45, 0x45, "UP, UV and AT set");
        assert_eq!(auth.aaguid, Some(*b"keyward-softkey!"));
        let ext = auth.extensions.clone().unwrap();
        let ext = ext.as_map().unwrap();
        let get = |name: &str| ext.iter().find(|(k, _)| k.as_text() == Some(name)).map(|(_, v)| v.clone());
        assert_eq!(get("credProtect"), Some(Value::Integer(1.into())));
        assert_eq!(get("hmac-secret"), Some(Value::Bool(true)));
        assert_eq!(key.state().resident_count(), 1, "the credential is discoverable");
        // The client data hash the key signed is the plan's (checked by the Graph body builder).
        let body = keyward_webauthn::registration::registration_body(
            &plan,
            &reg.attestation.attestation_object(),
            "Soft key",
            None,
        )
        .unwrap();
        assert_eq!(Some(body.credential_id), auth.credential_id);
    }

    #[test]
    fn a_key_already_registered_for_the_user_refuses_in_every_id_encoding() {
        let (mut c, _key, token) = key_with_pin();
        let first = c.register_for_entra(&plan(&[]), &token).unwrap();
        let id = first.attestation.parsed().unwrap().credential_id.unwrap();
        let unrelated = |i: u8| b64::encode(&[i; 32]);
        // (name, excludeCredentials as Entra might send them)
        let cases: Vec<(&str, Vec<String>)> = vec![
            ("base64url", vec![b64::encode(&id)]),
            ("pad digit", vec![b64::encode_with_pad_digit(&id)]),
            ("among garbage", vec!["%%%".into(), unrelated(1), b64::encode(&id)]),
            // More ids than the key takes per request (16): found by the silent preflight.
            ("long list, id last", (0..40).map(unrelated).chain([b64::encode_with_pad_digit(&id)]).collect()),
        ];
        for (name, exclude) in cases {
            match c.register_for_entra(&plan(&exclude), &token) {
                Err(EntraError::Ctap(e)) => {
                    assert_eq!(e.status(), Some(CtapStatus::CredentialExcluded), "{name}")
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_long_exclude_list_without_this_keys_credential_still_registers() {
        let (mut c, key, token) = key_with_pin();
        let exclude: Vec<String> = (0..40u8).map(|i| b64::encode(&[i; 32])).chain(["%%%".into()]).collect();
        let reg = c.register_for_entra(&plan(&exclude), &token).unwrap();
        assert_eq!(reg.warnings.len(), 1, "the undecodable id is reported");
        assert!(matches!(
            reg.warnings[0],
            EntraWarning::Plan(PlanWarning::UndecodableExcludedCredential { index: 40, .. })
        ));
        assert_eq!(key.state().resident_count(), 1);
    }

    #[test]
    fn a_long_exclude_list_the_key_will_not_check_silently_stops_the_registration() {
        let (host, dev) = MemoryTransport::pair();
        let key = SoftKey::spawn(Config { always_uv: true, ..Config::default() }, dev.from_host, dev.to_host);
        let timeouts = Timeouts { idle: Duration::from_secs(5), transaction: Duration::from_secs(10) };
        let mut c = Client::new(HidDevice::open(host, timeouts).unwrap());
        let pin = SecretString::from(PIN.to_owned());
        c.set_pin(&pin).unwrap();
        let token = c.get_pin_uv_auth_token(&pin, PERMISSION_MC, Some(ENTRA_RP_ID)).unwrap();
        // Short lists go to makeCredential itself, which carries the PIN token: fine with alwaysUv.
        assert!(c.register_for_entra(&plan(&[b64::encode(&[9; 32])]), &token).is_ok());
        let exclude: Vec<String> = (0..40u8).map(|i| b64::encode(&[i; 32])).collect();
        match c.register_for_entra(&plan(&exclude), &token) {
            Err(e @ EntraError::ExcludeListUnchecked { count: 40, max: 16, .. }) => {
                assert_eq!(e.status(), Some(CtapStatus::PuatRequired));
                assert!(e.to_string().contains("revoke the user's unused passkeys"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(key.state().resident_count(), 1, "nothing was registered unchecked");
    }

    #[test]
    fn unsuitable_keys_and_options_are_refused_before_the_key_is_asked() {
        // A token from another key: the checks must fail before it is ever used.
        let (_other, _other_key, token) = key_with_pin();
        let (mut no_pin, no_pin_key) = key();
        assert!(matches!(no_pin.register_for_entra(&plan(&[]), &token), Err(EntraError::PinNotSet)));
        assert_eq!(no_pin_key.state().resident_count(), 0);

        let (mut c, key, token) = key_with_pin();
        let mut rs256_only = options(&[]);
        rs256_only.pub_key_cred_params.retain(|p| p.alg == -257);
        let plan = RegistrationPlan::from_public_key(&rs256_only).unwrap();
        match c.register_for_entra(&plan, &token) {
            Err(EntraError::NoCommonAlgorithm { offered, key }) => {
                assert_eq!((offered, key), (vec![-257], vec![-7]));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(key.state().resident_count(), 0);
    }
}

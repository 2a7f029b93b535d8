//! Entra's creation options, read the way a browser would, into what the key must be asked.
//!
//! The options are mostly fixed by Entra (docs/entra-graph-api.md §1.3), so the reading is strict where a
//! mistake would only surface later as Graph's generic 400 (relying party, challenge, user
//! handle, algorithms) and lenient where Entra itself is sloppy (`excludeCredentials` ids in
//! four encodings, one of them ambiguous). Undecodable exclude ids are skipped and reported
//! as a [`PlanWarning`], never fatal: DSInternals failed about 1 user in 50 on exactly that.

use sha2::{Digest, Sha256};

use crate::b64;
use crate::client_data::CollectedClientData;
use crate::graph::{CredentialCreationOptions, PublicKeyCreationOptions};

/// The largest user handle CTAP 2.1 allows (§6.1, `PublicKeyCredentialUserEntity.id`).
const MAX_USER_ID_BYTES: usize = 64;

/// A COSE signature algorithm Entra accepts for a passkey (docs/entra-graph-api.md §11.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256 (COSE -7).
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (COSE -257).
    Rs256,
}

impl Algorithm {
    /// The COSE algorithm identifier.
    pub fn cose(self) -> i64 {
        match self {
            Self::Es256 => -7,
            Self::Rs256 => -257,
        }
    }

    /// The algorithm for a COSE identifier, if Entra accepts it.
    pub fn from_cose(alg: i64) -> Option<Self> {
        match alg {
            -7 => Some(Self::Es256),
            -257 => Some(Self::Rs256),
            _ => None,
        }
    }
}

/// The CTAP 2.1 credProtect level (§12.1), named after Entra's `credentialProtectionPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CredProtect {
    /// Level 1: `userVerificationOptional`.
    UserVerificationOptional = 1,
    /// Level 2: `userVerificationOptionalWithCredentialIDList`.
    UserVerificationOptionalWithCredentialIdList = 2,
    /// Level 3: `userVerificationRequired`.
    UserVerificationRequired = 3,
}

impl CredProtect {
    /// The level number sent to the key.
    pub fn level(self) -> u8 {
        self as u8
    }

    /// Reads a WebAuthn `credentialProtectionPolicy` name (exact spelling, as Entra sends it).
    pub fn from_policy(name: &str) -> Option<Self> {
        match name {
            "userVerificationOptional" => Some(Self::UserVerificationOptional),
            "userVerificationOptionalWithCredentialIDList" => {
                Some(Self::UserVerificationOptionalWithCredentialIdList)
            }
            "userVerificationRequired" => Some(Self::UserVerificationRequired),
            _ => None,
        }
    }
}

/// Creation options Keyward cannot turn into a registration Entra would accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The relying party is not `login.microsoft.com`.
    #[error(
        "the creation options name relying party `{0}`, but Entra registrations are made for \
         `login.microsoft.com` (origin https://login.microsoft.com); fetch the options from the \
         Microsoft Graph endpoint of the tenant, not from another service"
    )]
    UnexpectedRelyingParty(String),
    /// The challenge is missing or not base64url.
    #[error(
        "the creation options carry no usable challenge (empty or not base64url); fetch new creation options"
    )]
    Challenge,
    /// The user handle is missing, not base64url, or longer than CTAP allows.
    #[error(
        "the creation options carry an unusable user handle ({0}); fetch new creation options, and \
         report it if it persists"
    )]
    UserHandle(&'static str),
    /// `pubKeyCredParams` offers neither ES256 nor RS256.
    #[error(
        "the creation options offer no algorithm Keyward supports (offered {offered:?}; supported: \
         -7 ES256, -257 RS256); check the tenant's passkey settings"
    )]
    NoSupportedAlgorithm {
        /// The COSE identifiers Entra offered.
        offered: Vec<i64>,
    },
    /// An enforced credential protection policy that Keyward does not know.
    #[error(
        "the creation options require credential protection policy `{0}`, which Keyward does not know; \
         update Keyward"
    )]
    UnknownCredProtect(String),
}

/// Something in the options that was skipped; the registration can go on, the operator should know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanWarning {
    /// An `excludeCredentials` id that is not base64 in any form Entra uses.
    #[error(
        "excludeCredentials[{index}] has an id that is not base64 in any form Entra uses (`{id}`); it was \
         skipped, so if that passkey is on this key it will be overwritten: check `keyward passkeys list` \
         for the user"
    )]
    UndecodableExcludedCredential {
        /// Position in `excludeCredentials`.
        index: usize,
        /// The id as Entra sent it (credential ids are public).
        id: String,
    },
    /// A credential protection policy Keyward does not know, which Entra does not enforce.
    #[error(
        "the creation options ask for credential protection policy `{0}`, which Keyward does not know; \
         it is not enforced, so the key's default protection is used"
    )]
    UnknownCredProtect(String),
}

/// What to ask the security key for, and the client data it signs over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationPlan {
    /// The clientDataJSON bytes, exactly as a browser would build them; sent to Graph verbatim.
    pub client_data_json: Vec<u8>,
    /// SHA-256 of [`Self::client_data_json`]: the clientDataHash the key signs.
    pub client_data_hash: [u8; 32],
    /// The relying party id (`login.microsoft.com`).
    pub rp_id: String,
    /// The relying party name (`Microsoft`).
    pub rp_name: String,
    /// Entra's opaque user handle, decoded.
    pub user_id: Vec<u8>,
    /// The user's UPN.
    pub user_name: String,
    /// The user's display name.
    pub user_display_name: String,
    /// Acceptable algorithms in Entra's order of preference; never empty.
    pub algorithms: Vec<Algorithm>,
    /// Always true: Entra registers discoverable credentials only, whatever the options say.
    pub resident_key: bool,
    /// Always true: Entra rejects registrations without the UV flag.
    pub user_verification: bool,
    /// Ask the key for the hmac-secret extension (Windows offline sign-in needs it).
    pub hmac_secret: bool,
    /// The credProtect level to ask for, if any.
    pub cred_protect: Option<CredProtect>,
    /// Fail rather than register without [`Self::cred_protect`] applied.
    pub enforce_cred_protect: bool,
    /// Every reading of every excluded credential id; a key holding one must refuse.
    pub exclude_credentials: Vec<Vec<u8>>,
    /// What was skipped while reading the options, for the operator.
    pub warnings: Vec<PlanWarning>,
}

impl RegistrationPlan {
    /// Reads a `creationOptions` response.
    pub fn from_creation_options(options: &CredentialCreationOptions) -> Result<Self, PlanError> {
        Self::from_public_key(&options.public_key)
    }

    /// Reads the `publicKey` member of a `creationOptions` response.
    pub fn from_public_key(pk: &PublicKeyCreationOptions) -> Result<Self, PlanError> {
        if pk.rp.id != crate::ENTRA_RP_ID {
            return Err(PlanError::UnexpectedRelyingParty(pk.rp.id.clone()));
        }
        // A browser decodes the challenge and re-encodes it as base64url without padding.
        let challenge = b64::decode_lenient(&pk.challenge).map_err(|_| PlanError::Challenge)?;
        let client_data_json = CollectedClientData::entra_create(&b64::encode(&challenge)).to_json_bytes();
        let client_data_hash = Sha256::digest(&client_data_json).into();

        let user_id = b64::decode_lenient(&pk.user.id).map_err(|_| PlanError::UserHandle("not base64url"))?;
        if user_id.len() > MAX_USER_ID_BYTES {
            return Err(PlanError::UserHandle("longer than the 64 bytes a security key accepts"));
        }

        let mut algorithms = Vec::new();
        for param in pk.pub_key_cred_params.iter().filter(|p| p.kind == "public-key") {
            if let Some(alg) = Algorithm::from_cose(param.alg)
                && !algorithms.contains(&alg)
            {
                algorithms.push(alg);
            }
        }
        if algorithms.is_empty() {
            let offered = pk.pub_key_cred_params.iter().map(|p| p.alg).collect();
            return Err(PlanError::NoSupportedAlgorithm { offered });
        }

        let mut warnings = Vec::new();
        let extensions = pk.extensions.clone().unwrap_or_default();
        let enforce = extensions.enforce_credential_protection_policy == Some(true);
        let cred_protect = match extensions.credential_protection_policy.as_deref() {
            None => None,
            Some(name) => match CredProtect::from_policy(name) {
                Some(level) => Some(level),
                None if enforce => return Err(PlanError::UnknownCredProtect(name.into())),
                None => {
                    warnings.push(PlanWarning::UnknownCredProtect(name.into()));
                    None
                }
            },
        };

        let mut exclude_credentials: Vec<Vec<u8>> = Vec::new();
        for (index, descriptor) in pk.exclude_credentials.iter().enumerate() {
            match b64::credential_id_candidates(&descriptor.id) {
                Ok(candidates) => {
                    for id in candidates {
                        if !exclude_credentials.contains(&id) {
                            exclude_credentials.push(id);
                        }
                    }
                }
                Err(_) => warnings
                    .push(PlanWarning::UndecodableExcludedCredential { index, id: descriptor.id.clone() }),
            }
        }

        Ok(Self {
            client_data_json,
            client_data_hash,
            rp_id: pk.rp.id.clone(),
            rp_name: pk.rp.name.clone(),
            user_id,
            user_name: pk.user.name.clone(),
            user_display_name: pk.user.display_name.clone(),
            algorithms,
            resident_key: true,
            user_verification: true,
            hmac_secret: extensions.hmac_create_secret == Some(true),
            enforce_cred_protect: enforce && cred_protect.is_some(),
            cred_protect,
            exclude_credentials,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// The options exactly as Entra (and keyward-sim) send them, as JSON to edit per case.
    fn entra_options() -> Value {
        json!({
            "challengeTimeoutDateTime": "2026-11-23T12:00:00Z",
            "publicKey": {
                "rp": {"id": "login.microsoft.com", "name": "Microsoft"},
                "user": {"id": "T0Y6AQID", "name": "adele@contoso.com", "displayName": "Adele Vance"},
                "challenge": "QTU1MzNDNzAtNkM3Ni00NTRDLUJDQ0YtRTREMDZCNTBFRTRE",
                "pubKeyCredParams": [{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -257}],
                "timeout": 0,
                "excludeCredentials": [],
                "authenticatorSelection": {
                    "authenticatorAttachment": "cross-platform",
                    "requireResidentKey": true,
                    "userVerification": "required"
                },
                "attestation": "direct",
                "extensions": {
                    "hmacCreateSecret": true,
                    "enforceCredentialProtectionPolicy": true,
                    "credentialProtectionPolicy": "userVerificationOptional"
                }
            }
        })
    }

    /// One table row: a case name, an edit of the `publicKey` JSON, the expected outcome.
    type Case<T> = (&'static str, fn(&mut Value), T);

    fn plan(edit: impl Fn(&mut Value)) -> Result<RegistrationPlan, PlanError> {
        let mut options = entra_options();
        edit(&mut options["publicKey"]);
        RegistrationPlan::from_creation_options(&serde_json::from_value(options).unwrap())
    }

    #[test]
    fn client_data_is_byte_exact_and_hashed() {
        let p = plan(|_| {}).unwrap();
        assert_eq!(
            String::from_utf8(p.client_data_json.clone()).unwrap(),
            r#"{"type":"webauthn.create","challenge":"QTU1MzNDNzAtNkM3Ni00NTRDLUJDQ0YtRTREMDZCNTBFRTRE","origin":"https://login.microsoft.com","crossOrigin":false}"#
        );
        assert_eq!(p.client_data_hash, <[u8; 32]>::from(Sha256::digest(&p.client_data_json)));
        assert_eq!((p.rp_id.as_str(), p.rp_name.as_str()), ("login.microsoft.com", "Microsoft"));
        assert_eq!(p.user_id, b"OF:\x01\x02\x03");
        assert_eq!(
            (p.user_name.as_str(), p.user_display_name.as_str()),
            ("adele@contoso.com", "Adele Vance")
        );
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn a_padded_or_standard_challenge_is_reencoded_as_a_browser_would() {
        // The bytes fb ff: "-_8" in base64url, "+/8=" in padded standard base64.
        for sent in ["-_8", "-_8=", "+/8=", "+/8"] {
            let p = plan(|pk| pk["challenge"] = sent.into()).unwrap();
            let text = String::from_utf8(p.client_data_json).unwrap();
            assert!(text.contains(r#""challenge":"-_8","#), "{sent}: {text}");
        }
        for bad in ["", "%%%", "a"] {
            assert_eq!(plan(|pk| pk["challenge"] = bad.into()), Err(PlanError::Challenge), "{bad:?}");
        }
    }

    #[test]
    fn relying_party_and_user_handle_rules() {
        let cases: [Case<Option<PlanError>>; 5] = [
            ("entra rp", |_| {}, None),
            (
                "other rp id",
                |pk| pk["rp"]["id"] = "login.microsoftonline.com".into(),
                Some(PlanError::UnexpectedRelyingParty("login.microsoftonline.com".into())),
            ),
            ("empty handle", |pk| pk["user"]["id"] = "".into(), Some(PlanError::UserHandle("not base64url"))),
            (
                "garbage handle",
                |pk| pk["user"]["id"] = "#!".into(),
                Some(PlanError::UserHandle("not base64url")),
            ),
            (
                "65-byte handle",
                |pk| pk["user"]["id"] = b64::encode(&[1u8; 65]).into(),
                Some(PlanError::UserHandle("longer than the 64 bytes a security key accepts")),
            ),
        ];
        for (name, edit, want) in cases {
            assert_eq!(plan(edit).err(), want, "{name}");
        }
    }

    #[test]
    fn algorithms_keep_entra_order_and_only_es256_rs256() {
        use Algorithm::{Es256, Rs256};
        // (pubKeyCredParams, the algorithms kept or the offered ids in the error)
        type Expected = Result<Vec<Algorithm>, Vec<i64>>;
        let cases: [(Value, Expected); 6] = [
            (
                json!([{"type":"public-key","alg":-7},{"type":"public-key","alg":-257}]),
                Ok(vec![Es256, Rs256]),
            ),
            (
                json!([{"type":"public-key","alg":-257},{"type":"public-key","alg":-7}]),
                Ok(vec![Rs256, Es256]),
            ),
            (json!([{"type":"public-key","alg":-8},{"type":"public-key","alg":-257}]), Ok(vec![Rs256])),
            (json!([{"type":"public-key","alg":-7},{"type":"public-key","alg":-7}]), Ok(vec![Es256])),
            (json!([{"type":"other","alg":-7},{"type":"public-key","alg":-8}]), Err(vec![-7, -8])),
            (json!([]), Err(vec![])),
        ];
        for (params, want) in cases {
            let got = plan(|pk| pk["pubKeyCredParams"] = params.clone());
            match want {
                Ok(algs) => assert_eq!(got.unwrap().algorithms, algs, "{params}"),
                Err(offered) => assert_eq!(got, Err(PlanError::NoSupportedAlgorithm { offered }), "{params}"),
            }
        }
    }

    #[test]
    fn resident_key_and_uv_are_required_even_when_the_options_are_weaker() {
        let weaker: [fn(&mut Value); 3] = [
            |pk| pk["authenticatorSelection"] = Value::Null,
            |pk| pk["authenticatorSelection"]["requireResidentKey"] = false.into(),
            |pk| pk["authenticatorSelection"]["userVerification"] = "discouraged".into(),
        ];
        for edit in weaker {
            let p = plan(edit).unwrap();
            assert!(p.resident_key && p.user_verification);
        }
    }

    #[test]
    fn extensions_map_to_hmac_secret_and_cred_protect() {
        use CredProtect::*;
        // (extensions, hmac_secret, cred_protect, enforce, warning?)
        let cases: Vec<(Value, bool, Option<CredProtect>, bool, bool)> = vec![
            (
                json!({"hmacCreateSecret": true, "enforceCredentialProtectionPolicy": true,
                       "credentialProtectionPolicy": "userVerificationOptional"}),
                true,
                Some(UserVerificationOptional),
                true,
                false,
            ),
            (
                json!({"credentialProtectionPolicy": "userVerificationOptionalWithCredentialIDList"}),
                false,
                Some(UserVerificationOptionalWithCredentialIdList),
                false,
                false,
            ),
            (
                json!({"hmacCreateSecret": false, "enforceCredentialProtectionPolicy": false,
                       "credentialProtectionPolicy": "userVerificationRequired"}),
                false,
                Some(UserVerificationRequired),
                false,
                false,
            ),
            // Enforcing without a policy enforces nothing.
            (json!({"enforceCredentialProtectionPolicy": true}), false, None, false, false),
            (json!({}), false, None, false, false),
            (Value::Null, false, None, false, false),
            // An unknown policy that is not enforced is skipped with a warning.
            (json!({"credentialProtectionPolicy": "userVerificationSometimes"}), false, None, false, true),
        ];
        for (ext, hmac, level, enforce, warned) in cases {
            let p = plan(|pk| pk["extensions"] = ext.clone()).unwrap();
            assert_eq!(
                (p.hmac_secret, p.cred_protect, p.enforce_cred_protect),
                (hmac, level, enforce),
                "{ext}"
            );
            assert_eq!(!p.warnings.is_empty(), warned, "{ext}");
        }
        assert_eq!(
            [
                UserVerificationOptional,
                UserVerificationOptionalWithCredentialIdList,
                UserVerificationRequired
            ]
            .map(CredProtect::level),
            [1, 2, 3]
        );
        let enforced_unknown = plan(|pk| {
            pk["extensions"] = json!({"enforceCredentialProtectionPolicy": true,
                                      "credentialProtectionPolicy": "userVerificationSometimes"})
        });
        assert_eq!(enforced_unknown, Err(PlanError::UnknownCredProtect("userVerificationSometimes".into())));
    }

    #[test]
    fn exclude_ids_decode_leniently_and_garbage_is_skipped_with_a_warning() {
        let id32 = [0xfbu8; 32];
        let id16: Vec<u8> = (1..=16).collect();
        let ids = json!([
            {"type": "public-key", "id": b64::encode(&id16), "transports": []},
            {"type": "public-key", "id": "%%not base64%%", "transports": ["usb"]},
            {"type": "public-key", "id": b64::encode_with_pad_digit(&id32), "transports": []},
            {"type": "public-key", "id": "AQIDBAUGBwgJCgsMDQ4PEA==", "transports": []},
            {"type": "public-key", "id": "", "transports": []}
        ]);
        let p = plan(|pk| pk["excludeCredentials"] = ids.clone()).unwrap();
        // The digit-suffix id is ambiguous: both readings are excluded; duplicates are sent once.
        assert!(p.exclude_credentials.contains(&id16));
        assert!(p.exclude_credentials.contains(&id32.to_vec()));
        assert_eq!(p.exclude_credentials.len(), 3, "16-byte id once, both readings of the 32-byte id");
        assert_eq!(
            p.warnings,
            [
                PlanWarning::UndecodableExcludedCredential { index: 1, id: "%%not base64%%".into() },
                PlanWarning::UndecodableExcludedCredential { index: 4, id: String::new() },
            ]
        );
        assert!(p.warnings[0].to_string().contains("excludeCredentials[1]"));
    }
}

//! What the server checks itself before it sends a registration to Entra.
//!
//! Entra verifies everything again, so why check here? Because a refused POST costs a write from
//! the tenant's quota, arrives as a terse Graph error, and — worse — happens after the key has
//! already made a credential. Checking locally gives the operator a reason in Keyward's words,
//! catches a body that does not belong to this issuance (replayed or mixed up in a bulk run), and
//! enforces rules Entra does not know about (the enrollment policy, lost and disposed keys).
//!
//! The rules, in the order they are checked (each a row of the table test below): client data is
//! `webauthn.create`, carries the challenge handed out for *this* issuance, the exact origin and
//! no cross-origin; the attestation object parses; rpIdHash is SHA-256 of `login.microsoft.com`;
//! UP and UV are set and credential data is present; the tenant's FIDO2 policy as Entra applies it
//! to this user and key (`keyward_webauthn::entra_rules`, the one implementation shared with
//! `doctor` and `keyward inspect`: method state, targets, the passkey profiles the user is scoped
//! to or the legacy settings, AAGUID lists, attestation, passkey type); the enrollment policy's
//! allowed models; the key is issuable.
//!
//! The attestation chain is not verified here (Entra does): a `packed` statement with a chain is
//! taken to meet enforced attestation, `none`, self attestation and other formats do not.

use keyward_core::{EffectivePolicy, SecurityKey};
use keyward_webauthn::attestation::{AttestationObject, AttestationParseError};
use keyward_webauthn::client_data::CollectedClientData;
use keyward_webauthn::entra_rules::{self, Attestation, KeyFacts, PasskeyType, Refusal, Subject};
use keyward_webauthn::policy::Fido2Policy;
use keyward_webauthn::{ENTRA_ORIGIN, ENTRA_RP_ID};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Why a registration was refused before it reached Entra.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LocalRefusal {
    /// clientDataJSON is not JSON of the expected shape.
    #[error("clientDataJSON is not valid client data: {0}")]
    ClientData(String),
    /// `type` is not `webauthn.create`.
    #[error("clientDataJSON type is {0:?}, expected \"webauthn.create\"")]
    WrongType(String),
    /// The challenge is not the one handed out for this issuance.
    #[error(
        "the challenge in clientDataJSON is not the one issued for this issuance; fetch new options and make the credential again"
    )]
    ChallengeMismatch,
    /// The origin is not exactly Entra's.
    #[error("origin {0:?} is not {ENTRA_ORIGIN} (exactly, without a trailing slash)")]
    Origin(String),
    /// crossOrigin is true.
    #[error("crossOrigin must be false")]
    CrossOrigin,
    /// The attestation object cannot be read.
    #[error("{0}")]
    Attestation(#[from] AttestationParseError),
    /// The credential is scoped to another RP.
    #[error("the credential was made for another relying party than {ENTRA_RP_ID}")]
    RpIdHash,
    /// UP flag clear.
    #[error("the key did not record user presence (touch)")]
    UserPresence,
    /// UV flag clear.
    #[error("the key did not verify the user (PIN); Entra requires user verification")]
    UserVerification,
    /// No attested credential data.
    #[error("the attestation object carries no credential")]
    NoCredential,
    /// The tenant's key restrictions refuse this model.
    #[error(
        "the tenant's FIDO2 policy does not allow this key model (AAGUID {0}): the key restrictions that apply to this user exclude it"
    )]
    TenantAaguid(Uuid),
    /// The tenant enforces attestation and there is none.
    #[error(
        "the tenant enforces attestation but the key sent `{0}` attestation; use a key with a packed attestation chain"
    )]
    AttestationRequired(String),
    /// The tenant's FIDO2 policy refuses the registration for another reason (method, targets,
    /// passkey profiles, passkey type), or for several.
    #[error("the tenant's FIDO2 policy refuses this registration: {}", describe(.0))]
    TenantPolicy(Vec<Refusal>),
    /// The enrollment policy does not allow the model.
    #[error("the enrollment policy of this person's group does not allow this key model (AAGUID {0})")]
    EnrollmentAaguid(Uuid),
    /// The security key may not be issued.
    #[error("{0}")]
    Key(String),
}

/// What the server knows when it checks a registration.
#[derive(Debug, Clone, Copy)]
pub struct Expectation<'a> {
    /// The challenge from the creation options handed out for this issuance.
    pub challenge: &'a str,
    /// The tenant's FIDO2 method policy, when it could be read.
    pub tenant_policy: Option<&'a Fido2Policy>,
    /// The user in Entra with their targeted groups; without it the targets are not judged and
    /// the key passes when any passkey profile accepts it.
    pub user: Option<Subject<'a>>,
    /// The person's effective enrollment policy, if any group has one.
    pub enrollment: Option<&'a EffectivePolicy>,
    /// The security key the passkey goes on, if known.
    pub key: Option<&'a SecurityKey>,
}

/// A registration that passed the local checks.
#[derive(Debug, Clone)]
pub struct CheckedRegistration {
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The model's AAGUID.
    pub aaguid: Uuid,
    /// Attestation format.
    pub fmt: String,
}

/// Checks a registration body against what this issuance handed out and the policies in force.
pub fn check(
    client_data_json: &[u8],
    attestation_object: &[u8],
    expect: Expectation<'_>,
) -> Result<CheckedRegistration, LocalRefusal> {
    let cd: CollectedClientData =
        serde_json::from_slice(client_data_json).map_err(|e| LocalRefusal::ClientData(e.to_string()))?;
    if cd.kind != "webauthn.create" {
        return Err(LocalRefusal::WrongType(cd.kind));
    }
    if cd.challenge != expect.challenge {
        return Err(LocalRefusal::ChallengeMismatch);
    }
    if cd.origin != ENTRA_ORIGIN {
        return Err(LocalRefusal::Origin(cd.origin));
    }
    if cd.cross_origin == Some(true) {
        return Err(LocalRefusal::CrossOrigin);
    }
    let att = AttestationObject::parse(attestation_object)?;
    let ad = &att.auth_data;
    if ad.rp_id_hash[..] != Sha256::digest(ENTRA_RP_ID.as_bytes())[..] {
        return Err(LocalRefusal::RpIdHash);
    }
    if !ad.flags.up() {
        return Err(LocalRefusal::UserPresence);
    }
    if !ad.flags.uv() {
        return Err(LocalRefusal::UserVerification);
    }
    let cred = ad.attested.as_ref().ok_or(LocalRefusal::NoCredential)?;
    let aaguid = Uuid::from_bytes(cred.aaguid);
    if let Some(policy) = expect.tenant_policy {
        check_tenant(policy, expect.user.as_ref(), aaguid, &att)?;
    }
    if let Some(enrollment) = expect.enrollment
        && !enrollment.allows_aaguid(&aaguid)
    {
        return Err(LocalRefusal::EnrollmentAaguid(aaguid));
    }
    if let Some(key) = expect.key {
        key.ensure_issuable().map_err(|e| LocalRefusal::Key(e.to_string()))?;
    }
    Ok(CheckedRegistration { credential_id: cred.credential_id.clone(), aaguid, fmt: att.fmt.clone() })
}

/// Each reason with what to change, for [`LocalRefusal::TenantPolicy`].
fn describe(reasons: &[Refusal]) -> String {
    let parts: Vec<String> = reasons.iter().map(|r| format!("{r} (fix: {})", r.fix())).collect();
    parts.join("; ")
}

/// The tenant-policy part, delegated to `entra_rules`; a single AAGUID or attestation reason
/// keeps its own variant (and message), anything else is reported with every reason.
fn check_tenant(
    policy: &Fido2Policy,
    user: Option<&Subject<'_>>,
    aaguid: Uuid,
    att: &AttestationObject,
) -> Result<(), LocalRefusal> {
    let passkey_type = if att.auth_data.flags.be() { PasskeyType::Synced } else { PasskeyType::DeviceBound };
    let key = KeyFacts {
        aaguid,
        attestation: Attestation::unchecked(&att.fmt, !att.x5c().is_empty()),
        passkey_type,
    };
    let verdict = entra_rules::judge(policy, user, &key);
    match verdict.refusals() {
        [] => Ok(()),
        [Refusal::AaguidNotAllowed { .. } | Refusal::AaguidBlocked { .. }] => {
            Err(LocalRefusal::TenantAaguid(aaguid))
        }
        [Refusal::Attestation { .. }] => Err(LocalRefusal::AttestationRequired(att.fmt.clone())),
        reasons => Err(LocalRefusal::TenantPolicy(reasons.to_vec())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ciborium::Value;
    use keyward_core::{EnrollmentMode, KeyState, PinRules};
    use keyward_webauthn::policy::{
        AttestationEnforcement, EnforcementType, ExcludeTarget, IncludeTarget, KeyRestrictions,
        PasskeyProfile, TargetType,
    };

    const AAGUID: [u8; 16] = [0x11; 16];

    fn attestation(flags: u8, rp: &str, fmt: &str, x5c: bool) -> Vec<u8> {
        let mut ad = Sha256::digest(rp.as_bytes()).to_vec();
        ad.push(flags);
        ad.extend_from_slice(&0u32.to_be_bytes());
        if flags & 0x40 != 0 {
            ad.extend_from_slice(&AAGUID);
            ad.extend_from_slice(&2u16.to_be_bytes());
            ad.extend_from_slice(&[9, 9]);
            let key = Value::Map(vec![(Value::Integer(3.into()), Value::Integer((-7).into()))]);
            ciborium::into_writer(&key, &mut ad).unwrap();
        }
        let mut stmt = vec![];
        if x5c {
            stmt.push((Value::Text("x5c".into()), Value::Array(vec![Value::Bytes(vec![0x30])])));
        }
        let obj = Value::Map(vec![
            (Value::Text("fmt".into()), Value::Text(fmt.into())),
            (Value::Text("attStmt".into()), Value::Map(stmt)),
            (Value::Text("authData".into()), Value::Bytes(ad)),
        ]);
        let mut out = vec![];
        ciborium::into_writer(&obj, &mut out).unwrap();
        out
    }

    fn client_data(kind: &str, challenge: &str, origin: &str, cross: bool) -> Vec<u8> {
        format!(r#"{{"type":"{kind}","challenge":"{challenge}","origin":"{origin}","crossOrigin":{cross}}}"#)
            .into_bytes()
    }

    #[test]
    fn every_local_rule_refuses_with_its_reason() {
        let aaguid = Uuid::from_bytes(AAGUID);
        let good_cd = client_data("webauthn.create", "CH", ENTRA_ORIGIN, false);
        let good_att = attestation(0x45, ENTRA_RP_ID, "packed", true);
        let allow_other = Fido2Policy {
            key_restrictions: KeyRestrictions {
                is_enforced: true,
                enforcement_type: EnforcementType::Allow,
                aa_guids: vec![Uuid::nil().to_string()],
            },
            ..Fido2Policy::default()
        };
        let block_this = Fido2Policy {
            key_restrictions: KeyRestrictions {
                is_enforced: true,
                enforcement_type: EnforcementType::Block,
                aa_guids: vec![aaguid.to_string().to_uppercase()],
            },
            ..Fido2Policy::default()
        };
        let not_enforced_block = Fido2Policy {
            key_restrictions: KeyRestrictions { is_enforced: false, ..block_this.key_restrictions.clone() },
            ..Fido2Policy::default()
        };
        let enforced = Fido2Policy { is_attestation_enforced: true, ..Fido2Policy::default() };
        let enrollment_other = EffectivePolicy {
            mode: EnrollmentMode::Mandatory,
            pin: PinRules::default(),
            allowed_aaguids: Some(vec![Uuid::nil()]),
            max_passkeys_per_person: None,
        };
        // A user scoped to a non-default profile while a legacy restriction (and the default
        // profile) block the model: the profile the user's target allows is the one that counts.
        let block = KeyRestrictions {
            is_enforced: true,
            enforcement_type: EnforcementType::Block,
            aa_guids: vec![aaguid.to_string()],
        };
        let profile = |id: &str, types: &str, restrictions: &KeyRestrictions| PasskeyProfile {
            id: id.into(),
            name: id.into(),
            passkey_types: types.into(),
            attestation_enforcement: AttestationEnforcement::Disabled,
            key_restrictions: restrictions.clone(),
        };
        let finance_profile = Fido2Policy {
            key_restrictions: block.clone(),
            passkey_profiles: vec![
                profile("default", "deviceBound", &block),
                profile("finance", "deviceBound", &KeyRestrictions::default()),
            ],
            default_passkey_profile: Some("default".into()),
            include_targets: vec![IncludeTarget {
                id: "finance-group".into(),
                target_type: TargetType::Group,
                is_registration_required: false,
                allowed_passkey_profiles: vec!["finance".into()],
            }],
            ..Fido2Policy::default()
        };
        let finance_groups = vec!["FINANCE-GROUP".to_owned()];
        let finance_user = Some(Subject { user_id: "u-fin", groups: &finance_groups });
        let other_user = Some(Subject { user_id: "u-other", groups: &[] });
        let excluded = Fido2Policy {
            exclude_targets: vec![ExcludeTarget { id: "u-other".into(), target_type: TargetType::User }],
            ..Fido2Policy::default()
        };
        let mut lost = SecurityKey::new(Some("1".into()), aaguid);
        lost.state = KeyState::Lost;
        let none =
            Expectation { challenge: "CH", tenant_policy: None, user: None, enrollment: None, key: None };

        type Case<'a> = (&'a str, Vec<u8>, Vec<u8>, Expectation<'a>, Option<LocalRefusal>);
        let cases: Vec<Case> = vec![
            ("good", good_cd.clone(), good_att.clone(), none, None),
            (
                "not json",
                b"{".to_vec(),
                good_att.clone(),
                none,
                Some(LocalRefusal::ClientData(String::new())),
            ),
            (
                "get type",
                client_data("webauthn.get", "CH", ENTRA_ORIGIN, false),
                good_att.clone(),
                none,
                Some(LocalRefusal::WrongType("webauthn.get".into())),
            ),
            (
                "other challenge",
                client_data("webauthn.create", "XX", ENTRA_ORIGIN, false),
                good_att.clone(),
                none,
                Some(LocalRefusal::ChallengeMismatch),
            ),
            (
                "trailing slash",
                client_data("webauthn.create", "CH", "https://login.microsoft.com/", false),
                good_att.clone(),
                none,
                Some(LocalRefusal::Origin("https://login.microsoft.com/".into())),
            ),
            (
                "cross origin",
                client_data("webauthn.create", "CH", ENTRA_ORIGIN, true),
                good_att.clone(),
                none,
                Some(LocalRefusal::CrossOrigin),
            ),
            (
                "garbage attestation",
                good_cd.clone(),
                vec![0xff],
                none,
                Some(LocalRefusal::Attestation(AttestationParseError::Member("map"))),
            ),
            (
                "other rp",
                good_cd.clone(),
                attestation(0x45, "example.com", "packed", true),
                none,
                Some(LocalRefusal::RpIdHash),
            ),
            (
                "no UP",
                good_cd.clone(),
                attestation(0x44, ENTRA_RP_ID, "packed", true),
                none,
                Some(LocalRefusal::UserPresence),
            ),
            (
                "no UV",
                good_cd.clone(),
                attestation(0x41, ENTRA_RP_ID, "packed", true),
                none,
                Some(LocalRefusal::UserVerification),
            ),
            (
                "no AT",
                good_cd.clone(),
                attestation(0x05, ENTRA_RP_ID, "packed", true),
                none,
                Some(LocalRefusal::NoCredential),
            ),
            (
                "tenant allow-list without it",
                good_cd.clone(),
                good_att.clone(),
                Expectation { tenant_policy: Some(&allow_other), ..none },
                Some(LocalRefusal::TenantAaguid(aaguid)),
            ),
            (
                "tenant block-list with it (any case)",
                good_cd.clone(),
                good_att.clone(),
                Expectation { tenant_policy: Some(&block_this), ..none },
                Some(LocalRefusal::TenantAaguid(aaguid)),
            ),
            (
                "block-list not enforced",
                good_cd.clone(),
                good_att.clone(),
                Expectation { tenant_policy: Some(&not_enforced_block), ..none },
                None,
            ),
            (
                "attestation enforced, none sent",
                good_cd.clone(),
                attestation(0x45, ENTRA_RP_ID, "none", false),
                Expectation { tenant_policy: Some(&enforced), ..none },
                Some(LocalRefusal::AttestationRequired("none".into())),
            ),
            (
                "attestation enforced, self attestation",
                good_cd.clone(),
                attestation(0x45, ENTRA_RP_ID, "packed", false),
                Expectation { tenant_policy: Some(&enforced), ..none },
                Some(LocalRefusal::AttestationRequired("packed".into())),
            ),
            (
                "attestation enforced, chain sent",
                good_cd.clone(),
                good_att.clone(),
                Expectation { tenant_policy: Some(&enforced), ..none },
                None,
            ),
            (
                "scoped to a non-default profile, legacy and default profile block the model",
                good_cd.clone(),
                attestation(0x45, ENTRA_RP_ID, "none", false),
                Expectation { tenant_policy: Some(&finance_profile), user: finance_user, ..none },
                None,
            ),
            (
                "not targeted, the default profile blocks the model",
                good_cd.clone(),
                good_att.clone(),
                Expectation { tenant_policy: Some(&finance_profile), user: other_user, ..none },
                Some(LocalRefusal::TenantPolicy(vec![])),
            ),
            (
                "synced passkey, the profile allows device-bound only",
                good_cd.clone(),
                attestation(0x4d, ENTRA_RP_ID, "none", false),
                Expectation { tenant_policy: Some(&finance_profile), user: finance_user, ..none },
                Some(LocalRefusal::TenantPolicy(vec![])),
            ),
            (
                "excluded user",
                good_cd.clone(),
                good_att.clone(),
                Expectation { tenant_policy: Some(&excluded), user: other_user, ..none },
                Some(LocalRefusal::TenantPolicy(vec![])),
            ),
            (
                "enrollment policy other model",
                good_cd.clone(),
                good_att.clone(),
                Expectation { enrollment: Some(&enrollment_other), ..none },
                Some(LocalRefusal::EnrollmentAaguid(aaguid)),
            ),
            (
                "lost key",
                good_cd.clone(),
                good_att.clone(),
                Expectation { key: Some(&lost), ..none },
                Some(LocalRefusal::Key(String::new())),
            ),
        ];
        for (name, cd, att, expect, want) in cases {
            let got = check(&cd, &att, expect);
            match (got, want) {
                (Ok(ok), None) => {
                    assert_eq!(ok.aaguid, aaguid, "{name}");
                    assert_eq!(ok.credential_id, [9, 9], "{name}");
                }
                (Err(e), Some(w)) => {
                    assert_eq!(std::mem::discriminant(&e), std::mem::discriminant(&w), "{name}: {e}");
                    if matches!(w, LocalRefusal::Key(_)) {
                        assert!(e.to_string().contains("lost"), "{name}: {e}");
                    }
                    if matches!(w, LocalRefusal::TenantPolicy(_)) {
                        assert!(e.to_string().contains("fix: "), "{name}: {e}");
                    }
                }
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }
}

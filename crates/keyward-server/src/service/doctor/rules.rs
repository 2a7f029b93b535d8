//! The key-model half of doctor: whether the tenant's rules for this user (the legacy settings
//! or the passkey profiles the user is scoped to) accept the key model, and why not — attestation
//! that would not chain to an MDS root, AAGUID allow and block lists, passkey types. The rules
//! themselves are `keyward_webauthn::entra_rules`, shared with the check before the POST and
//! `keyward inspect`; this module only turns its verdict into findings.
//!
//! Doctor has a model, not a registration: a model listed in the embedded FIDO MDS with roots is
//! taken to send a chain to them, any other model to send none that Entra would trust, and a
//! security key makes device-bound passkeys.

use keyward_webauthn::entra_rules::{self, Attestation, KeyFacts, PasskeyType, Refusal, Subject, Verdict};
use keyward_webauthn::mds;
use keyward_webauthn::policy::Fido2Policy;
use uuid::Uuid;

use super::DoctorReport;

/// The finding doctor reports for a refusal: its check, message and fix.
pub(super) fn block(r: &mut DoctorReport, refusal: &Refusal) {
    let fix = match refusal {
        Refusal::MethodDisabled => format!("{}, or `keyward policy set --state enabled`", refusal.fix()),
        Refusal::SelfServiceOff => format!("{}, or `keyward policy set --self-service on`", refusal.fix()),
        _ => refusal.fix(),
    };
    r.block(refusal.check(), refusal.to_string(), fix);
}

/// What doctor assumes a key of model `aaguid` sends.
fn key_of_model(aaguid: Uuid) -> KeyFacts {
    let chains = mds::embedded().entry(&aaguid.to_string()).is_some_and(|e| !e.attestation_roots.is_empty());
    KeyFacts {
        aaguid,
        attestation: if chains { Attestation::TrustedChain } else { Attestation::UntrustedChain },
        passkey_type: PasskeyType::DeviceBound,
    }
}

/// Attestation, AAGUID restrictions and passkey types against the key model, for `user` when
/// doctor found them in Entra.
pub(super) fn model_findings(
    policy: &Fido2Policy,
    user: Option<&Subject<'_>>,
    aaguid: Option<Uuid>,
    r: &mut DoctorReport,
) {
    let sets = entra_rules::rule_sets(policy, user);
    if sets.is_empty() {
        block(r, &Refusal::NoPasskeyProfile);
        return;
    }
    let Some(aaguid) = aaguid else {
        if sets.iter().any(|s| s.restricts_models()) {
            r.warn(
                "policy.model",
                "the tenant restricts key models or enforces attestation, and the key model is unknown",
                "run doctor with --key (reads the key's AAGUID) or --aaguid",
            );
        }
        return;
    };
    match entra_rules::judge_key(&sets, &key_of_model(aaguid)) {
        Verdict::Accepted(_) => {
            r.ok("policy.model", format!("the tenant's FIDO2 policy accepts key model {aaguid}"))
        }
        Verdict::Refused(reasons) => reasons.iter().for_each(|reason| block(r, reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::doctor::{Severity, model_name};
    use keyward_webauthn::policy::{
        AttestationEnforcement, EnforcementType, IncludeTarget, KeyRestrictions, PasskeyProfile, TargetType,
    };

    const YUBIKEY_5: &str = "cb69481e-8ff7-4039-93ec-0a2729a154a8";
    const FINANCE: &str = "0b7f3a52-9c1d-4e8f-a2b6-1d3c5e7f9a01";

    fn restrictions(kind: EnforcementType, list: &[&str]) -> KeyRestrictions {
        KeyRestrictions {
            is_enforced: true,
            enforcement_type: kind,
            aa_guids: list.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Default profile without rules, a Finance profile enforcing attestation for Finance.
    fn finance_profile() -> Fido2Policy {
        let profile = |id: &str, name: &str, enforcement| PasskeyProfile {
            id: id.into(),
            name: name.into(),
            passkey_types: "deviceBound".into(),
            attestation_enforcement: enforcement,
            key_restrictions: KeyRestrictions::default(),
        };
        Fido2Policy {
            passkey_profiles: vec![
                profile("d001", "Default", AttestationEnforcement::Disabled),
                profile("f001", "Finance", AttestationEnforcement::RegistrationOnly),
            ],
            default_passkey_profile: Some("d001".into()),
            include_targets: vec![IncludeTarget {
                id: FINANCE.into(),
                target_type: TargetType::Group,
                is_registration_required: false,
                allowed_passkey_profiles: vec!["f001".into()],
            }],
            ..Fido2Policy::default()
        }
    }

    /// One row of the model-rule table: name, tenant policy, user, key model, the finding
    /// expected first.
    type Row<'a> = (&'a str, Fido2Policy, Option<&'a Subject<'a>>, Option<Uuid>, &'a str);

    /// The blocking checks of doctor's model findings, or `ok` / `warning` when none block.
    fn findings(policy: &Fido2Policy, user: Option<&Subject<'_>>, aaguid: Option<Uuid>) -> Vec<String> {
        let mut r = DoctorReport::default();
        model_findings(policy, user, aaguid, &mut r);
        let blocking: Vec<String> = r
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Blocking)
            .map(|f| format!("{}: {}", f.check, f.message))
            .collect();
        if blocking.is_empty() {
            return r.findings.iter().map(|f| format!("{:?}", f.severity).to_lowercase()).collect();
        }
        blocking
    }

    #[test]
    fn each_model_rule_names_its_check() {
        let mds_model = Uuid::parse_str(YUBIKEY_5).unwrap();
        assert!(model_name(mds_model).is_some(), "the embedded MDS lists the YubiKey 5");
        let soft = Uuid::from_bytes(*b"KeywardSoftKey01");
        let enforced = Fido2Policy { is_attestation_enforced: true, ..Fido2Policy::default() };
        let allow_other = Fido2Policy {
            key_restrictions: restrictions(EnforcementType::Allow, &[YUBIKEY_5]),
            ..Fido2Policy::default()
        };
        let block_soft = Fido2Policy {
            key_restrictions: restrictions(EnforcementType::Block, &[&soft.to_string().to_uppercase()]),
            ..Fido2Policy::default()
        };
        let groups = vec![FINANCE.to_owned()];
        let finance = Subject { user_id: "u1", groups: &groups };
        let nobody = Subject { user_id: "u2", groups: &[] };
        let cases: Vec<Row<'_>> = vec![
            ("nothing enforced", Fido2Policy::default(), None, Some(soft), "ok"),
            ("attestation, MDS model", enforced.clone(), None, Some(mds_model), "ok"),
            (
                "attestation, unknown model",
                enforced.clone(),
                None,
                Some(soft),
                "policy.attestation: the FIDO2 policy",
            ),
            ("model unknown", enforced, None, None, "warning"),
            ("allow list without it", allow_other.clone(), None, Some(soft), "policy.aaguid: key model"),
            ("allow list with it", allow_other, None, Some(mds_model), "ok"),
            ("block list with it, any case", block_soft, None, Some(soft), "policy.aaguid: key model"),
            (
                "the profile of the user's target",
                finance_profile(),
                Some(&finance),
                Some(soft),
                "policy.attestation: passkey profile 'Finance'",
            ),
            ("the default profile for the untargeted", finance_profile(), Some(&nobody), Some(soft), "ok"),
        ];
        for (name, policy, user, aaguid, want) in cases {
            let got = findings(&policy, user, aaguid);
            assert!(got.len() == 1 && got[0].starts_with(want), "{name}: {got:?}");
        }
    }
}

//! The key-model half of doctor: the rules a passkey must satisfy (the legacy settings or the
//! passkey profiles a user is scoped to) and why a model fails them — attestation that would not
//! chain to an MDS root, AAGUID allow and block lists, passkey types. `keyward inspect` uses the
//! same judgement for a registration body it has verified itself.

use std::collections::HashSet;

use keyward_webauthn::mds;
use keyward_webauthn::policy::{AttestationEnforcement, EnforcementType, Fido2Policy, KeyRestrictions};
use uuid::Uuid;

use super::{DoctorReport, targets};

/// One set of rules a passkey must satisfy: the legacy settings or one passkey profile.
struct RuleSet<'a> {
    label: String,
    attestation_enforced: bool,
    restrictions: &'a KeyRestrictions,
    passkey_types: Option<&'a str>,
}

/// The rule sets that apply to the user (all of them when no user is given).
fn rule_sets<'a>(policy: &'a Fido2Policy, user: Option<(&str, &HashSet<String>)>) -> Vec<RuleSet<'a>> {
    if policy.passkey_profiles.is_empty() {
        return vec![RuleSet {
            label: "the FIDO2 policy".into(),
            attestation_enforced: policy.is_attestation_enforced,
            restrictions: &policy.key_restrictions,
            passkey_types: None,
        }];
    }
    let mut ids: Vec<&str> = match user {
        Some((uid, groups)) => policy
            .include_targets
            .iter()
            .filter(|t| targets(&t.id, t.target_type, uid, groups))
            .flat_map(|t| t.allowed_passkey_profiles.iter().map(String::as_str))
            .collect(),
        None => policy.passkey_profiles.iter().map(|p| p.id.as_str()).collect(),
    };
    if ids.is_empty() {
        match &policy.default_passkey_profile {
            Some(default) => ids.push(default),
            None => ids.extend(policy.passkey_profiles.first().map(|p| p.id.as_str())),
        }
    }
    policy
        .passkey_profiles
        .iter()
        .filter(|p| ids.iter().any(|id| id.eq_ignore_ascii_case(&p.id)))
        .map(|p| RuleSet {
            label: format!("passkey profile '{}'", p.name),
            attestation_enforced: p.attestation_enforcement == AttestationEnforcement::RegistrationOnly,
            restrictions: &p.key_restrictions,
            passkey_types: Some(&p.passkey_types),
        })
        .collect()
}

/// Why a (device-bound) passkey of model `aaguid` fails `rules`: (check, message, fix).
fn judge(rules: &RuleSet<'_>, aaguid: Uuid, chains: bool) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    let label = &rules.label;
    if let Some(types) = rules.passkey_types
        && !types.split(',').any(|t| t.trim().eq_ignore_ascii_case("deviceBound"))
    {
        out.push((
            "policy.passkey-type",
            format!("{label} allows passkey types '{types}', not device-bound passkeys on security keys"),
            format!("add deviceBound to the passkey types of {label}"),
        ));
    }
    if rules.attestation_enforced && !chains {
        out.push((
            "policy.attestation",
            format!(
                "{label} enforces attestation, but the attestation of key model {aaguid} does not chain to a FIDO \
                 MDS root (the model is not in MDS, or the key sends no certificate chain)"
            ),
            format!("use a FIDO-certified key model listed in MDS, or turn off attestation enforcement in {label}"),
        ));
    }
    if rules.restrictions.is_enforced {
        let listed =
            rules.restrictions.aa_guids.iter().any(|a| Uuid::parse_str(a.trim()).is_ok_and(|a| a == aaguid));
        match rules.restrictions.enforcement_type {
            EnforcementType::Allow if !listed => out.push((
                "policy.aaguid",
                format!("key model {aaguid} is not in the AAGUID allow list of {label}"),
                format!("add {aaguid} to the allowed AAGUIDs of {label}, or use an allowed model"),
            )),
            EnforcementType::Block if listed => out.push((
                "policy.aaguid",
                format!("key model {aaguid} is blocked by the AAGUID block list of {label}"),
                format!("remove {aaguid} from the blocked AAGUIDs of {label}, or use another model"),
            )),
            _ => {}
        }
    }
    out
}

/// Attestation, AAGUID restrictions and passkey types against the key model.
pub(super) fn model_findings(
    policy: &Fido2Policy,
    user_id: Option<&str>,
    groups: Option<&HashSet<String>>,
    aaguid: Option<Uuid>,
    r: &mut DoctorReport,
) {
    let sets = rule_sets(policy, user_id.zip(groups));
    if sets.is_empty() {
        r.block(
            "policy.passkey-profile",
            "the user is scoped to no existing passkey profile",
            "allow a passkey profile on the user's include target, or set a default passkey profile",
        );
        return;
    }
    let Some(aaguid) = aaguid else {
        if sets.iter().any(|s| s.attestation_enforced || s.restrictions.is_enforced) {
            r.warn(
                "policy.model",
                "the tenant restricts key models or enforces attestation, and the key model is unknown",
                "run doctor with --key (reads the key's AAGUID) or --aaguid",
            );
        }
        return;
    };
    let chains = mds::embedded().entry(&aaguid.to_string()).is_some_and(|e| !e.attestation_roots.is_empty());
    verdict(&sets, aaguid, chains, r);
}

/// Judges a registration of model `aaguid` against the tenant's FIDO2 policy as it applies to
/// any user (with passkey profiles: it passes when one profile accepts it). `chains_to_mds` says
/// whether its attestation chains to an MDS root (`keyward inspect` verifies the chain itself).
pub fn judge_registration(policy: &Fido2Policy, aaguid: Uuid, chains_to_mds: bool) -> DoctorReport {
    let mut r = DoctorReport::default();
    verdict(&rule_sets(policy, None), aaguid, chains_to_mds, &mut r);
    r
}

fn verdict(sets: &[RuleSet<'_>], aaguid: Uuid, chains: bool, r: &mut DoctorReport) {
    let verdicts: Vec<_> = sets.iter().map(|s| judge(s, aaguid, chains)).collect();
    if verdicts.iter().any(Vec::is_empty) {
        r.ok("policy.model", format!("the tenant's FIDO2 policy accepts key model {aaguid}"));
        return;
    }
    for (check, message, fix) in verdicts.into_iter().flatten() {
        r.block(check, message, fix);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::doctor::model_name;

    const YUBIKEY_5: &str = "cb69481e-8ff7-4039-93ec-0a2729a154a8";

    fn restrictions(kind: EnforcementType, list: &[&str]) -> KeyRestrictions {
        KeyRestrictions {
            is_enforced: true,
            enforcement_type: kind,
            aa_guids: list.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn each_model_rule_names_its_check() {
        let mds_model = Uuid::parse_str(YUBIKEY_5).unwrap();
        assert!(model_name(mds_model).is_some(), "the embedded MDS lists the YubiKey 5");
        let soft = Uuid::from_bytes(*b"KeywardSoftKey01");
        let none = KeyRestrictions::default();
        let allow_other = restrictions(EnforcementType::Allow, &[YUBIKEY_5]);
        let block_soft = restrictions(EnforcementType::Block, &[&soft.to_string().to_uppercase()]);
        let rule = |enforced, r, types| RuleSet {
            label: "x".into(),
            attestation_enforced: enforced,
            restrictions: r,
            passkey_types: types,
        };
        let cases: Vec<(&str, RuleSet<'_>, Uuid, Vec<&str>)> = vec![
            ("nothing enforced", rule(false, &none, None), soft, vec![]),
            ("attestation, MDS model", rule(true, &none, None), mds_model, vec![]),
            ("attestation, unknown model", rule(true, &none, None), soft, vec!["policy.attestation"]),
            ("allow list without it", rule(false, &allow_other, None), soft, vec!["policy.aaguid"]),
            ("allow list with it", rule(false, &allow_other, None), mds_model, vec![]),
            ("block list with it, any case", rule(false, &block_soft, None), soft, vec!["policy.aaguid"]),
            ("synced only", rule(false, &none, Some("synced")), soft, vec!["policy.passkey-type"]),
            ("device-bound allowed", rule(false, &none, Some("synced, deviceBound")), soft, vec![]),
        ];
        for (name, rules, aaguid, want) in cases {
            let chains = model_name(aaguid).is_some();
            let got: Vec<&str> = judge(&rules, aaguid, chains).iter().map(|(c, _, _)| *c).collect();
            assert_eq!(got, want, "{name}");
        }
    }
}

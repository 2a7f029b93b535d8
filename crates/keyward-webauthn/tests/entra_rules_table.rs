//! The rule table (`tests/data/entra_rules.json`) against the pure function: every case's
//! verdict, and for a refusal each reason with the rule set that gave it. The emulator runs the
//! same table over HTTP (`crates/keyward-sim/tests/entra_rules.rs`).

use keyward_webauthn::entra_rules::{Attestation, KeyFacts, PasskeyType, Subject, judge};
use keyward_webauthn::policy::Fido2Policy;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Table {
    users: Vec<User>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct User {
    id: String,
    groups: Vec<String>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    user: String,
    key: CaseKey,
    policy: serde_json::Map<String, Value>,
    #[serde(default)]
    refused: Vec<String>,
}

/// The key of a case: `attestation` is what the authenticator sends (`none`, `self`,
/// `untrusted-chain`, `trusted-chain`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CaseKey {
    aaguid: uuid::Uuid,
    attestation: String,
    passkey_type: PasskeyType,
}

impl CaseKey {
    fn facts(&self) -> KeyFacts {
        let attestation = match self.attestation.as_str() {
            "none" | "self" => Attestation::NoPackedChain,
            "untrusted-chain" => Attestation::UntrustedChain,
            "trusted-chain" => Attestation::TrustedChain,
            other => panic!("unknown attestation {other:?} in the table"),
        };
        KeyFacts { aaguid: self.aaguid, attestation, passkey_type: self.passkey_type }
    }
}

/// A new tenant's policy with the case's members laid over it.
fn policy(over: &serde_json::Map<String, Value>) -> Fido2Policy {
    let mut base = serde_json::to_value(Fido2Policy::default()).unwrap();
    for (k, v) in over {
        base[k] = v.clone();
    }
    serde_json::from_value(base).unwrap()
}

#[test]
fn every_case_of_the_rule_table() {
    let table: Table = serde_json::from_str(include_str!("data/entra_rules.json")).unwrap();
    assert!(table.cases.iter().any(|c| c.name.starts_with("DIVERGED")), "the diverging case is in the table");
    for case in &table.cases {
        let user = table.users.iter().find(|u| u.id == case.user).unwrap_or_else(|| panic!("{}", case.name));
        let subject = Subject { user_id: &user.id, groups: &user.groups };
        let verdict = judge(&policy(&case.policy), Some(&subject), &case.key.facts());
        let got: Vec<String> = verdict
            .refusals()
            .iter()
            .map(|r| match r.rule_set() {
                Some(set) => format!("{}: {set}", r.check()),
                None => r.check().to_owned(),
            })
            .collect();
        assert_eq!(got, case.refused, "{}: {verdict:?}", case.name);
        assert_eq!(verdict.accepted(), case.refused.is_empty(), "{}", case.name);
        for reason in verdict.refusals() {
            assert!(!reason.to_string().is_empty() && !reason.fix().is_empty(), "{}", case.name);
        }
    }
}

//! The rule table (`tests/data/entra_rules.json`) against the pure function: every case's
//! verdict, and for a refusal each reason with the rule set that gave it. The emulator runs the
//! same table over HTTP (`crates/keyward-sim/tests/entra_rules.rs`).

use keyward_testkit::rules_table::Table;
use keyward_webauthn::entra_rules::judge;

#[test]
fn every_case_of_the_rule_table() {
    let table = Table::load();
    assert!(table.cases.iter().any(|c| c.name.starts_with("DIVERGED")), "the diverging case is in the table");
    for case in &table.cases {
        let subject = table.user_of(case).subject();
        let verdict = judge(&case.tenant_policy(), Some(&subject), &case.key.facts());
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

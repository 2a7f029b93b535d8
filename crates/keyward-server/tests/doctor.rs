//! `GET /api/v1/doctor` against tenants seeded to fail: one tenant per failure cause, each must
//! be named with its check and a fix, and a healthy tenant must come back all ok.

use std::time::Duration;

use keyward_core::{Person, PersonSource, Role};
use keyward_entra::ConnectorConfig;
use keyward_sim::seed::Seed;
use keyward_testkit::stack::*;
use keyward_webauthn::policy::{EnforcementType, KeyRestrictions, MethodState};
use secrecy::SecretString;
use serde_json::{Value, json};

/// The seed's read-only reporting app (User.Read.All only).
const READER: &str = "2b0a9bde-77f3-4c0e-8f0a-5d1e2c3b4a59";
const PRADEEP: &str = "pradeep.gupta@contoso.onmicrosoft.com";
const MEGAN: &str = "megan.bowen@contoso.onmicrosoft.com";
const GUEST: &str = "guest_partner.example#EXT#@contoso.onmicrosoft.com";

fn soft_aaguid() -> String {
    uuid::Uuid::from_bytes(AAGUID).to_string()
}

async fn stack_with(seed: impl FnOnce(&mut Seed) + Send + 'static) -> Stack {
    let stack = Stack::start(StackOptions { seed: Box::new(seed), ..StackOptions::sqlite() }).await;
    let (status, body) = stack.call(Role::Admin, "POST", "/api/v1/people/sync", Some(json!({}))).await;
    assert_eq!(status, 200, "sync: {body}");
    stack
}

async fn doctor(stack: &Stack, person: &str, extra: &str) -> Value {
    let person = person.replace('#', "%23");
    let (status, body) =
        stack.call(Role::Helpdesk, "GET", &format!("/api/v1/doctor?person={person}{extra}"), None).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn blocking(report: &Value) -> Vec<(String, String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "blocking")
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_owned(),
                f["message"].as_str().unwrap().to_owned(),
                f["fix"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Asserts that `check` is among the blocking findings, with a fix mentioning `fix_word`.
fn assert_names(name: &str, report: &Value, check: &str, fix_word: &str) {
    let found = blocking(report);
    let hit = found.iter().find(|(c, _, _)| c == check);
    let (_, message, fix) = hit.unwrap_or_else(|| panic!("{name}: no blocking {check} in {report:#}"));
    assert!(
        fix.to_lowercase().contains(&fix_word.to_lowercase()),
        "{name}: the fix for {check} ({message}) should mention {fix_word:?}: {fix}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_tenant_is_all_ok() {
    let stack = stack_with(|_| {}).await;
    let report = doctor(&stack, ADELE_UPN, &format!("&aaguid={}&serial=SN-NEW", soft_aaguid())).await;
    let findings = report["findings"].as_array().unwrap();
    assert!(findings.len() >= 8, "{report:#}");
    for f in findings {
        assert_eq!(f["severity"], "ok", "{report:#}");
    }
    for check in
        ["connector.token", "connector.permission", "policy.state", "policy.self-service", "user.targets"]
    {
        assert!(findings.iter().any(|f| f["check"] == check), "{check} missing: {report:#}");
    }
}

/// Seed changes, one tenant each, and the check doctor must name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_policy_cause_is_named_with_its_fix() {
    type SeedFn = Box<dyn FnOnce(&mut Seed) + Send>;
    let soft = soft_aaguid();
    let soft2 = soft.clone();
    let cases: Vec<(&str, SeedFn, &str, &str, &str, &str)> = vec![
        (
            "method disabled",
            Box::new(|s: &mut Seed| s.fido2_policy.state = MethodState::Disabled),
            ADELE_UPN,
            "",
            "policy.state",
            "enable",
        ),
        (
            "self-service off",
            Box::new(|s: &mut Seed| s.fido2_policy.is_self_service_registration_allowed = false),
            ADELE_UPN,
            "",
            "policy.self-service",
            "self-service",
        ),
        ("user excluded", Box::new(|_: &mut Seed| {}), PRADEEP, "", "user.excluded", "excluded targets"),
        ("guest", Box::new(|_: &mut Seed| {}), GUEST, "", "user.guest", "home tenant"),
        ("disabled account", Box::new(|_: &mut Seed| {}), MEGAN, "", "user.disabled", "re-enable"),
        (
            "not targeted",
            Box::new(|s: &mut Seed| {
                s.fido2_policy.include_targets[0].id = "1c8e4b63-ad2e-4f90-b3c7-2e4d6f8a0b12".into();
            }),
            ADELE_UPN,
            "",
            "user.not-targeted",
            "targets",
        ),
        (
            "attestation enforced, soft key with self attestation",
            Box::new(|s: &mut Seed| s.fido2_policy.is_attestation_enforced = true),
            ADELE_UPN,
            "soft",
            "policy.attestation",
            "MDS",
        ),
        (
            "AAGUID blocked",
            Box::new(move |s: &mut Seed| {
                s.fido2_policy.key_restrictions = KeyRestrictions {
                    is_enforced: true,
                    enforcement_type: EnforcementType::Block,
                    aa_guids: vec![soft2],
                }
            }),
            ADELE_UPN,
            "soft",
            "policy.aaguid",
            "remove",
        ),
        (
            "allow list without it",
            Box::new(|s: &mut Seed| {
                s.fido2_policy.key_restrictions = KeyRestrictions {
                    is_enforced: true,
                    enforcement_type: EnforcementType::Allow,
                    aa_guids: vec!["cb69481e-8ff7-4039-93ec-0a2729a154a8".into()],
                }
            }),
            ADELE_UPN,
            "soft",
            "policy.aaguid",
            "allowed",
        ),
    ];
    for (name, seed, person, key, check, fix) in cases {
        let stack = stack_with(seed).await;
        let extra = if key == "soft" { format!("&aaguid={soft}") } else { String::new() };
        let report = doctor(&stack, person, &extra).await;
        assert_names(name, &report, check, fix);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlinked_person_is_named() {
    let stack = stack_with(|_| {}).await;
    let person = Person::new("Walk In", "walk.in@contoso.onmicrosoft.com", PersonSource::Manual);
    let mut tx = stack.service.store.begin().await.unwrap();
    keyward_store::people::insert(&mut tx, "test", &person).await.unwrap();
    tx.commit().await.unwrap();
    let report = doctor(&stack, "walk.in@contoso.onmicrosoft.com", "").await;
    assert_names("unlinked", &report, "user.link", "keyward people link");
    let report = doctor(&stack, "nobody@contoso.onmicrosoft.com", "").await;
    assert_names("unknown", &report, "user.keyward", "keyward people sync");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_enrollment_limit_and_a_lost_key_are_named() {
    let stack = stack_with(|_| {}).await;
    let (status, body) = stack
        .call(
            Role::Admin,
            "PUT",
            "/api/v1/enrollment-policies/Finance",
            Some(json!({"mode": "mandatory", "max_passkeys_per_person": 1})),
        )
        .await;
    assert!(status < 300, "{body}");
    let (status, body) = stack.call(Role::Admin, "POST", "/api/v1/people/sync", Some(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let before = doctor(&stack, ADELE_UPN, "").await;
    assert!(blocking(&before).is_empty(), "{before:#}");
    let mut desk = stack.soft_key();
    let (status, body) = provision(&stack, &mut desk, ADELE_UPN, "SN-ADELE").await;
    assert_eq!(status, 200, "{body}");
    let report = doctor(&stack, ADELE_UPN, "").await;
    assert_names("limit", &report, "enrollment.limit", "revoke");

    let (status, key) = stack
        .call(
            Role::Admin,
            "POST",
            "/api/v1/keys",
            Some(json!({"serial": "SN-LOST", "aaguid": soft_aaguid()})),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let id = key["id"].as_str().unwrap();
    let (status, body) = stack
        .call(Role::Admin, "POST", &format!("/api/v1/keys/{id}/state"), Some(json!({"state": "lost"})))
        .await;
    assert_eq!(status, 200, "{body}");
    let report = doctor(&stack, "alex.wilber@contoso.onmicrosoft.com", "&serial=SN-LOST").await;
    assert_names("lost key", &report, "key.state", "another key");
    assert_eq!(blocking(&report).len(), 1, "only the key blocks: {report:#}");

    let (status, key) = stack
        .call(
            Role::Admin,
            "POST",
            "/api/v1/keys",
            Some(json!({"serial": "SN-GONE", "aaguid": soft_aaguid()})),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let id = key["id"].as_str().unwrap();
    let (status, body) = stack
        .call(Role::Admin, "POST", &format!("/api/v1/keys/{id}/state"), Some(json!({"state": "disposed"})))
        .await;
    assert_eq!(status, 200, "{body}");
    let report = doctor(&stack, "alex.wilber@contoso.onmicrosoft.com", "&serial=SN-GONE").await;
    assert_names("disposed key", &report, "key.state", "another key");
    assert!(blocking(&report)[0].1.contains("disposed"), "{report:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_permissions_of_a_read_only_app_are_named() {
    let stack = stack_with(|_| {}).await;
    let mut connector = ConnectorConfig::with_secret(
        &stack.sim.sim.read(|t| t.tenant_id.clone()),
        READER,
        SecretString::from("sim-reader-secret"),
    )
    .pointed_at(&stack.sim.base_url);
    connector.retry.base_delay = Duration::from_millis(5);
    stack.service.set_connector(&keyward_server::Caller::host("test"), connector).await.unwrap();
    let report = doctor(&stack, ADELE_UPN, "").await;
    let found = blocking(&report);
    for permission in ["UserAuthenticationMethod.ReadWrite.All", "Policy.ReadWrite.AuthenticationMethod"] {
        assert!(
            found.iter().any(|(c, m, f)| c == "connector.permission"
                && m.contains(permission)
                && f.contains("admin consent")),
            "{permission}: {report:#}"
        );
    }

    let mut wrong = ConnectorConfig::with_secret(
        &stack.sim.sim.read(|t| t.tenant_id.clone()),
        APP,
        SecretString::from("not-the-secret"),
    )
    .pointed_at(&stack.sim.base_url);
    wrong.retry.base_delay = Duration::from_millis(5);
    stack.service.set_connector(&keyward_server::Caller::host("test"), wrong).await.unwrap();
    let report = doctor(&stack, ADELE_UPN, "").await;
    assert_names("wrong secret", &report, "connector.token", "client secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_aaguid_is_a_clear_400() {
    let stack = stack_with(|_| {}).await;
    let (status, body) = stack.call(Role::Helpdesk, "GET", "/api/v1/doctor?aaguid=nope", None).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("AAGUID"), "{body}");
}

/// Passkey profiles: the profile a user's include target allows is the one judged, so the same
/// soft key is refused for Adele (Finance, attestation enforced) and accepted for Alex (default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_profiles_are_judged_per_user() {
    use keyward_webauthn::policy::{AttestationEnforcement, IncludeTarget, PasskeyProfile, TargetType};
    let stack = stack_with(|s: &mut Seed| {
        let profile = |id: &str, name: &str, enforcement| PasskeyProfile {
            id: id.into(),
            name: name.into(),
            passkey_types: "deviceBound".into(),
            attestation_enforcement: enforcement,
            key_restrictions: KeyRestrictions::default(),
        };
        s.fido2_policy.passkey_profiles = vec![
            profile("00000000-0000-0000-0000-00000000d001", "Default", AttestationEnforcement::Disabled),
            profile(
                "00000000-0000-0000-0000-00000000f001",
                "Finance",
                AttestationEnforcement::RegistrationOnly,
            ),
        ];
        s.fido2_policy.default_passkey_profile = Some("00000000-0000-0000-0000-00000000d001".into());
        s.fido2_policy.include_targets.push(IncludeTarget {
            id: "0b7f3a52-9c1d-4e8f-a2b6-1d3c5e7f9a01".into(),
            target_type: TargetType::Group,
            is_registration_required: false,
            allowed_passkey_profiles: vec!["00000000-0000-0000-0000-00000000f001".into()],
        });
    })
    .await;
    let aaguid = format!("&aaguid={}", soft_aaguid());
    let adele = doctor(&stack, ADELE_UPN, &aaguid).await;
    assert_names("Finance profile", &adele, "policy.attestation", "MDS");
    assert!(blocking(&adele)[0].1.contains("passkey profile 'Finance'"), "{adele:#}");
    let alex = doctor(&stack, "alex.wilber@contoso.onmicrosoft.com", &aaguid).await;
    assert!(blocking(&alex).is_empty(), "{alex:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_enrollment_model_and_a_key_held_by_someone_else_are_named() {
    let stack = stack_with(|_| {}).await;
    let (status, body) = stack
        .call(
            Role::Admin,
            "PUT",
            "/api/v1/enrollment-policies/Finance",
            Some(json!({"mode": "optional", "allowed_aaguids": ["cb69481e-8ff7-4039-93ec-0a2729a154a8"]})),
        )
        .await;
    assert!(status < 300, "{body}");
    let (status, body) = stack.call(Role::Admin, "POST", "/api/v1/people/sync", Some(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let report = doctor(&stack, ADELE_UPN, &format!("&aaguid={}", soft_aaguid())).await;
    assert_names("enrollment model", &report, "enrollment.model", "enrollment policy");

    let mut desk = stack.soft_key();
    let (status, body) = provision(&stack, &mut desk, "alex.wilber@contoso.onmicrosoft.com", "SN-ALEX").await;
    assert_eq!(status, 200, "{body}");
    let report = doctor(&stack, "alex.wilber@contoso.onmicrosoft.com", "&serial=SN-ALEX").await;
    assert!(blocking(&report).is_empty(), "the holder may get a second passkey: {report:#}");
    let report = doctor(&stack, PRADEEP, "&serial=SN-ALEX").await;
    assert_names("someone else's key", &report, "key.holder", "another key");
}

/// A person named by Keyward id is looked up in Entra by their link, and an account Keyward
/// recorded as disabled is named on both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_named_by_id_is_checked_through_their_link() {
    let stack = stack_with(|_| {}).await;
    let (status, megan) = stack.call(Role::Helpdesk, "GET", &format!("/api/v1/people/{MEGAN}"), None).await;
    assert_eq!(status, 200, "{megan}");
    let id = megan["person"]["id"].as_str().or(megan["id"].as_str()).unwrap().to_owned();
    let report = doctor(&stack, &id, "").await;
    assert_names("disabled in Entra", &report, "user.disabled", "re-enable");
    assert_names("disabled in Keyward", &report, "user.keyward-disabled", "keyward people sync");
    assert!(blocking(&report).iter().all(|(c, _, _)| c != "user.entra"), "{report:#}");
}

fn ca_policy(
    name: &str,
    applications: Value,
    grant: Value,
) -> keyward_webauthn::conditional_access::ConditionalAccessPolicy {
    serde_json::from_value(json!({
        "id": uuid::Uuid::new_v4().to_string(), "displayName": name, "state": "enabled",
        "conditions": { "users": { "includeUsers": ["All"] }, "applications": applications },
        "grantControls": grant,
    }))
    .unwrap()
}

fn finding<'r>(report: &'r Value, check: &str) -> Option<&'r Value> {
    report["findings"].as_array().unwrap().iter().find(|f| f["check"] == check)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_access_blocks_keyward_can_see_are_named() {
    let phishing_resistant = json!({ "operator": "OR", "authenticationStrength": {
        "id": "00000000-0000-0000-0000-000000000004", "allowedCombinations": ["fido2", "windowsHelloForBusiness"] } });
    let register = json!({ "includeUserActions": ["urn:user:registersecurityinfo"] });
    let all = json!({ "includeApplications": ["All"] });

    // The seed scenario: phishing-resistant everywhere, TAP for registration. Nothing to report.
    let (p, r) = (phishing_resistant.clone(), register.clone());
    let stack = stack_with(move |seed| {
        let tap = json!({ "operator": "OR", "authenticationStrength": { "id": "custom",
            "allowedCombinations": ["fido2", "temporaryAccessPassOneTime"] } });
        seed.conditional_access_policies =
            vec![ca_policy("Phishing-resistant", all_apps(), p), ca_policy("TAP for registration", r, tap)];
    })
    .await;
    let report = doctor(&stack, ADELE_UPN, "").await;
    assert_eq!(finding(&report, "ca").map(|f| f["severity"].clone()), Some(json!("ok")), "{report:#}");

    // Registering security info needs phishing-resistant strength: a TAP cannot onboard.
    let stack = stack_with(move |seed| {
        seed.conditional_access_policies =
            vec![ca_policy("No TAP for registration", register, phishing_resistant)];
    })
    .await;
    let report = doctor(&stack, ADELE_UPN, "").await;
    let tap = finding(&report, "ca.tap-onboarding").unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(tap["severity"], "warning");
    assert!(tap["message"].as_str().unwrap().contains("No TAP for registration"), "{tap}");
    assert!(tap["fix"].as_str().unwrap().contains("temporaryAccessPassOneTime"), "{tap}");

    // A policy that blocks everyone is a blocking finding naming the policy.
    let stack = stack_with(move |seed| {
        seed.conditional_access_policies =
            vec![ca_policy("Block everyone", all, json!({ "operator": "OR", "builtInControls": ["block"] }))];
    })
    .await;
    let report = doctor(&stack, ADELE_UPN, "").await;
    assert_names("block policy", &report, "ca.block", "exclude");
    assert!(finding(&report, "ca.block").unwrap()["message"].as_str().unwrap().contains("Block everyone"));
}

fn all_apps() -> Value {
    json!({ "includeApplications": ["All"] })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_policy_read_all_doctor_says_what_it_could_not_check() {
    let stack = stack_with(|seed| seed.apps[0].roles.retain(|r| r != "Policy.Read.All")).await;
    let report = doctor(&stack, ADELE_UPN, "").await;
    let read = finding(&report, "ca.read").unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(read["severity"], "warning");
    assert!(read["fix"].as_str().unwrap().contains("Policy.Read.All"), "{read}");
}

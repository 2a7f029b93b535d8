//! `keyward doctor` and `keyward inspect` as the built binary, against the emulator and a Keyward
//! server (the testkit's stack): each failure cause set up in the tenant (through the seed's users,
//! the FIDO2 policy, enrollment policies, the key inventory and the connector) is named with its
//! fix and exit code 1; a healthy tenant is all ok with exit code 0. Inspect decodes a body the
//! soft key made, as JSON, CBOR and base64, and refuses damaged files with a clear error.

mod support;

use std::path::Path;

use keyward_softkey::{Attestation, Config};
use keyward_testkit::desk::SoftDesk;
use keyward_webauthn::b64;
use serde_json::{Value, json};
use support::*;

const PRADEEP: &str = "pradeep.gupta@contoso.onmicrosoft.com";
const MEGAN: &str = "megan.bowen@contoso.onmicrosoft.com";
const ALEX: &str = "alex.wilber@contoso.onmicrosoft.com";
const ADELE: &str = "adele.vance@contoso.onmicrosoft.com";
const GUEST: &str = "guest_partner.example#EXT#@contoso.onmicrosoft.com";

fn ready_stack() -> Stack {
    let stack = Stack::start();
    stack.configure_connector();
    let (status, body) = stack.call("POST", "/api/v1/people/sync", Some(json!({})));
    assert_eq!(status, 200, "{body}");
    stack
}

/// Runs doctor; asserts it exits 1 and names `check` as blocking with a fix.
fn assert_blocks(stack: &Stack, name: &str, args: &[&str], check: &str) {
    let mut all = vec!["doctor"];
    all.extend_from_slice(args);
    let r = stack.run(&all);
    assert!(!r.ok, "{name}: doctor should fail:\n{}", r.stdout);
    let line = r
        .stdout
        .lines()
        .position(|l| l.starts_with("BLOCKING") && l.contains(check))
        .unwrap_or_else(|| panic!("{name}: no BLOCKING {check}:\n{}", r.stdout));
    let next = r.stdout.lines().nth(line + 1).unwrap_or_default();
    assert!(next.trim_start().starts_with("fix: "), "{name}: {check} has no fix:\n{}", r.stdout);
    assert!(r.stderr.contains("would make the registration fail"), "{name}: {}", r.stderr);
}

fn patch_policy(stack: &Stack, body: Value) {
    let (status, answer) = stack.call("PATCH", "/api/v1/entra/fido2-policy", Some(body));
    assert_eq!(status, 200, "{answer}");
}

#[test]
fn doctor_names_each_failure_cause_with_its_fix() {
    let stack = ready_stack();
    let soft = aaguid();

    // Healthy: everything ok, exit 0, in text and JSON.
    let out = stack.ok(&["doctor", "--user", ADELE, "--aaguid", &soft, "--serial", "SN-NEW"]);
    assert!(out.contains("0 warning(s), 0 blocking"), "{out}");
    let json: Value =
        serde_json::from_str(&stack.ok(&["doctor", "--user", ADELE, "--aaguid", &soft, "--format", "json"]))
            .unwrap();
    let findings = json["findings"].as_array().unwrap();
    assert!(findings.len() >= 8 && findings.iter().all(|f| f["severity"] == "ok"), "{json:#}");

    // People the example tenant has.
    assert_blocks(&stack, "excluded", &["--user", PRADEEP], "user.excluded");
    assert_blocks(&stack, "guest", &["--user", GUEST], "user.guest");
    assert_blocks(&stack, "disabled", &["--user", MEGAN], "user.disabled");
    assert_blocks(&stack, "unknown", &["--user", "nobody@contoso.onmicrosoft.com"], "user.keyward");

    // The tenant's FIDO2 policy, one setting at a time.
    let policy_cases: Vec<(&str, Value, &str, Value)> = vec![
        ("method disabled", json!({"state": "disabled"}), "policy.state", json!({"state": "enabled"})),
        (
            "self-service off",
            json!({"isSelfServiceRegistrationAllowed": false}),
            "policy.self-service",
            json!({"isSelfServiceRegistrationAllowed": true}),
        ),
        (
            "attestation enforced",
            json!({"isAttestationEnforced": true}),
            "policy.attestation",
            json!({"isAttestationEnforced": false}),
        ),
        (
            "AAGUID blocked",
            json!({"keyRestrictions": {"isEnforced": true, "enforcementType": "block", "aaGuids": [soft]}}),
            "policy.aaguid",
            json!({"keyRestrictions": {"isEnforced": false, "enforcementType": "block", "aaGuids": []}}),
        ),
        (
            "allow list without it",
            json!({"keyRestrictions": {"isEnforced": true, "enforcementType": "allow",
                "aaGuids": ["cb69481e-8ff7-4039-93ec-0a2729a154a8"]}}),
            "policy.aaguid",
            json!({"keyRestrictions": {"isEnforced": false, "enforcementType": "block", "aaGuids": []}}),
        ),
        (
            "not targeted",
            json!({"includeTargets": [{"id": "1c8e4b63-ad2e-4f90-b3c7-2e4d6f8a0b12", "targetType": "group"}]}),
            "user.not-targeted",
            json!({"includeTargets": [{"id": "all_users", "targetType": "group"}]}),
        ),
    ];
    for (name, set, check, undo) in policy_cases {
        patch_policy(&stack, set);
        assert_blocks(&stack, name, &["--user", ADELE, "--aaguid", &soft], check);
        patch_policy(&stack, undo);
    }
    stack.ok(&["doctor", "--user", ADELE, "--aaguid", &soft]);

    // Keyward's own rules: the enrollment policy's key limit, a lost key.
    let (status, body) = stack.call(
        "PUT",
        "/api/v1/enrollment-policies/Finance",
        Some(json!({"mode": "mandatory", "max_passkeys_per_person": 1})),
    );
    assert!(status < 300, "{body}");
    stack.call("POST", "/api/v1/people/sync", Some(json!({})));
    stack.register_soft_passkey(ADELE, "SN-ADELE");
    assert_blocks(&stack, "key limit", &["--user", ADELE], "enrollment.limit");
    let (status, key) =
        stack.call("POST", "/api/v1/keys", Some(json!({"serial": "SN-LOST", "aaguid": soft})));
    assert_eq!(status, 201, "{key}");
    let id = key["id"].as_str().unwrap();
    let (status, body) =
        stack.call("POST", &format!("/api/v1/keys/{id}/state"), Some(json!({"state": "lost"})));
    assert_eq!(status, 200, "{body}");
    assert_blocks(&stack, "lost key", &["--user", ALEX, "--serial", "SN-LOST"], "key.state");

    // The connector with the seed's read-only app: the missing permissions are named.
    let reader = json!({
        "enabled": true, "clientId": "2b0a9bde-77f3-4c0e-8f0a-5d1e2c3b4a59", "tenantId": stack.tenant,
        "credential": {"kind": "secret", "clientSecret": "sim-reader-secret"},
        "authorityUrl": stack.sim_base, "graphUrl": stack.sim_base,
    });
    let (status, body) = stack.call("PUT", "/api/v1/connector", Some(reader));
    assert_eq!(status, 204, "{body}");
    assert_blocks(&stack, "read-only app", &["--user", ALEX], "connector.permission");
    let r = stack.run(&["doctor", "--user", ALEX]);
    assert!(r.stdout.contains("UserAuthenticationMethod.ReadWrite.All"), "{}", r.stdout);
}

#[test]
fn doctor_reads_the_model_from_the_key_on_the_desk() {
    let stack = ready_stack();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("key.sock");
    let mut serve = keyward();
    serve
        .args(["softkey", "serve", "--attestation", "self", "--aaguid", &aaguid(), "--listen"])
        .arg(format!("unix:{}", socket.display()))
        .env("KEYWARD_LOG", "warn");
    let (_key, _) = start(serve, "keyward softkey: listening on");
    let key = format!("soft:unix:{}", socket.display());
    let out = stack.ok(&["doctor", "--user", ADELE, "--key", &key]);
    assert!(out.contains(&aaguid()), "the model read with getInfo is shown: {out}");
    for check in ["key.fido2", "key.resident", "key.uv", "key.capacity"] {
        assert!(out.lines().any(|l| l.starts_with("ok") && l.contains(check)), "{check}: {out}");
    }
    patch_policy(&stack, json!({"isAttestationEnforced": true}));
    assert_blocks(&stack, "self attestation", &["--user", ADELE, "--key", &key], "policy.attestation");
}

/// A registration body made by the soft key for Alex: (Graph JSON body, attestationObject).
fn soft_key_body(stack: &Stack) -> (Value, Vec<u8>) {
    soft_key_body_with(stack, AAGUID, vec![stack.ca.attestation_der.clone()])
}

/// [`soft_key_body`] from a soft key of model `aaguid` that sends `x5c`.
fn soft_key_body_with(stack: &Stack, aaguid: [u8; 16], x5c: Vec<Vec<u8>>) -> (Value, Vec<u8>) {
    let (status, issuance) = stack.call("POST", "/api/v1/issuances", Some(json!({"person": ALEX})));
    assert_eq!(status, 201, "{issuance}");
    let id = issuance["id"].as_str().unwrap();
    let (status, options) = stack.call("POST", &format!("/api/v1/issuances/{id}/options"), None);
    assert_eq!(status, 200, "{options}");
    let config = Config {
        aaguid,
        attestation: Attestation::Packed { key: stack.ca.attestation_key.clone(), x5c },
        ..Config::default()
    };
    let (plan, att) = SoftDesk::open(config, "8642").register(&options["creation_options"]);
    let body = json!({
        "displayName": "Soft key",
        "publicKeyCredential": {"id": "x", "response": {
            "clientDataJSON": b64::encode(&plan.client_data_json),
            "attestationObject": b64::encode(&att),
        }},
    });
    (body, att)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

#[test]
fn inspect_decodes_soft_key_registrations_and_refuses_damaged_files() {
    let stack = ready_stack();
    let dir = tempfile::tempdir().unwrap();
    let (body, att) = soft_key_body(&stack);
    let json_file = write(dir.path(), "body.json", body.to_string().as_bytes());
    let cbor_file = write(dir.path(), "att.cbor", &att);
    let b64_file = write(dir.path(), "att.b64", format!("{}\n", b64::encode(&att)).as_bytes());

    for (file, source) in [(&json_file, "registration-body"), (&cbor_file, "cbor"), (&b64_file, "base64")] {
        let out = stack.ok(&["inspect", file, "--format", "json"]);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["source"], source, "{out}");
        assert_eq!(v["fmt"], "packed", "{out}");
        assert_eq!(v["aaguid"], aaguid(), "{out}");
        assert_eq!(v["flags"]["UP"], true, "{out}");
        assert_eq!(v["flags"]["UV"], true, "{out}");
        assert_eq!(v["algorithm"], "ES256 (-7)", "{out}");
        assert_eq!(v["rp_id_is_entra"], true, "{out}");
        assert_eq!(v["certificates"].as_array().unwrap().len(), 1, "{out}");
        assert!(
            v["certificates"][0]["subject"].as_str().unwrap().contains("Authenticator Attestation"),
            "{out}"
        );
        // The test CA is trusted by the sim but is not an MDS root.
        assert_eq!(v["chains_to_mds_root"], false, "{out}");
        assert!(v["chain"].as_str().unwrap().contains("not in the FIDO metadata"), "{out}");
    }
    let text = stack.ok(&["inspect", &json_file]);
    assert!(text.contains("flags:        UP=1 UV=1") && text.contains("webauthn.create"), "{text}");

    // Against the tenant's policy: accepted, then refused once attestation is enforced.
    let url = stack.url.clone();
    let out = stack.ok(&["inspect", &json_file, "--server", &url]);
    assert!(out.contains("policy.model"), "{out}");
    patch_policy(&stack, json!({"isAttestationEnforced": true}));
    let r = stack.run(&["inspect", &json_file, "--server", &url]);
    assert!(!r.ok && r.stdout.contains("BLOCKING policy.attestation"), "{}\n{}", r.stdout, r.stderr);

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated JSON", body.to_string().as_bytes()[..40].to_vec(), "not valid JSON"),
        ("JSON without attestation", br#"{"displayName":"x"}"#.to_vec(), "no attestation object"),
        ("damaged base64 field", br#"{"attestationObject":"***"}"#.to_vec(), "not base64"),
        ("truncated CBOR", att[..60].to_vec(), "attestation object"),
        ("garbage", vec![0x00, 0x01, 0xff, 0xfe], "not JSON, not a CBOR"),
        ("empty", vec![], "not JSON, not a CBOR"),
    ];
    for (name, bytes, want) in cases {
        let file = write(dir.path(), "bad", &bytes);
        let r = stack.run(&["inspect", &file]);
        assert!(!r.ok, "{name}: should fail:\n{}", r.stdout);
        assert!(r.stderr.contains(want), "{name}: {want:?} not in {}", r.stderr);
    }
    let r = stack.run(&["inspect", "/no/such/file"]);
    assert!(!r.ok && r.stderr.contains("cannot read /no/such/file"), "{}", r.stderr);
}

/// The DER of a PEM certificate.
fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    b64::decode_lenient(&body).unwrap()
}

#[test]
fn inspect_checks_the_chain_against_the_mds_roots_of_the_model() {
    let stack = ready_stack();
    let dir = tempfile::tempdir().unwrap();
    let yubikey = uuid::Uuid::parse_str("cb69481e-8ff7-4039-93ec-0a2729a154a8").unwrap();
    let att = stack.ca.attestation_der.clone();
    let root = pem_der(&stack.ca.ca_pem);
    let cases: Vec<(&str, Vec<Vec<u8>>, &str)> = vec![
        ("linked chain, foreign root", vec![att.clone(), root], "does not chain to any of the"),
        ("unlinked chain", vec![att.clone(), att.clone()], "certificate 0 is not signed by certificate 1"),
    ];
    for (name, x5c, want) in cases {
        let count = x5c.len();
        let (body, _) = soft_key_body_with(&stack, *yubikey.as_bytes(), x5c);
        let file = write(dir.path(), "body.json", body.to_string().as_bytes());
        let v: Value = serde_json::from_str(&stack.ok(&["inspect", &file, "--format", "json"])).unwrap();
        assert!(v["model"].as_str().unwrap().contains("YubiKey 5"), "{name}: {v:#}");
        assert_eq!(v["certificates"].as_array().unwrap().len(), count, "{name}: {v:#}");
        assert!(v["chain"].as_str().unwrap().contains(want), "{name}: {v:#}");
        assert_eq!(v["chains_to_mds_root"], false, "{name}: {v:#}");
    }
}

//! The operator's everyday commands, driven as a user would: the built `keyward` binary against the
//! emulator and a Keyward server (the testkit's stack). Each command's happy path, the reports in
//! every format checked for content, the errors a user meets first (no token, server down, a role
//! that may not) each saying what to do, and generated completions and man pages.

mod support;

use serde_json::Value;
use support::{CLIENT_ID, CLIENT_SECRET, MODEL, Stack, aaguid, isolated};

const ADELE: &str = "adele.vance@contoso.onmicrosoft.com";
const ALEX: &str = "alex.wilber@contoso.onmicrosoft.com";

/// A self-signed RSA certificate and its private key, PEM.
fn rsa_certificate() -> (String, String) {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let key_pem = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let pair = rcgen::KeyPair::from_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256).unwrap();
    let cert =
        rcgen::CertificateParams::new(vec!["keyward-test".to_owned()]).unwrap().self_signed(&pair).unwrap();
    (cert.pem(), key_pem)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

#[test]
fn connector_people_keys_policy_tap_and_audit_commands() {
    let stack = Stack::start();

    // Connector: set through the CLI (secret from the environment), then show and test.
    let set = isolated(&stack.dir)
        .env("KEYWARD_SERVER", &stack.url)
        .env("KEYWARD_TOKEN", &stack.token)
        .env("KEYWARD_CLIENT_SECRET", CLIENT_SECRET)
        .args(["connector", "set", "--tenant-id", &stack.tenant, "--client-id", CLIENT_ID])
        .args(["--authority", &stack.sim_base, "--graph", &stack.sim_base])
        .output()
        .unwrap();
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let show = stack.ok(&["connector", "show"]);
    assert!(show.contains(&stack.tenant) && show.contains(CLIENT_ID), "{show}");
    assert!(show.contains("secret stored  true") && show.contains(&stack.sim_base), "{show}");
    assert!(!show.contains(CLIENT_SECRET), "{show}");
    let test = stack.ok(&["connector", "test"]);
    assert!(test.contains("connection OK"), "{test}");
    let cert = stack.run(&["connector", "validate-cert"]);
    assert!(!cert.ok && cert.stderr.contains("client secret"), "{cert:?}");
    // A certificate to upload: thumbprints shown; a key that is not the certificate's is refused.
    let (cert_pem, key_pem) = rsa_certificate();
    let (_, other_key) = rsa_certificate();
    let files = [("cert.pem", &cert_pem), ("key.pem", &key_pem), ("other.pem", &other_key)];
    for (name, text) in files {
        std::fs::write(stack.dir.join(name), text).unwrap();
    }
    let path = |name: &str| stack.dir.join(name).to_str().unwrap().to_owned();
    let good =
        stack.ok(&["connector", "validate-cert", "--cert", &path("cert.pem"), "--key", &path("key.pem")]);
    assert!(good.contains("key matches       true") && good.contains("SHA-1 thumbprint"), "{good}");
    assert!(good.contains("upload the certificate to the app registration"), "{good}");
    let bad =
        stack.run(&["connector", "validate-cert", "--cert", &path("cert.pem"), "--key", &path("other.pem")]);
    assert!(!bad.ok && bad.stdout.contains("the private key does not belong to this certificate"), "{bad:?}");
    assert!(bad.stderr.contains("the certificate cannot be used; fix the problems above"), "{bad:?}");
    assert!(!bad.stdout.contains("PRIVATE KEY") && !bad.stderr.contains("PRIVATE KEY"), "{bad:?}");

    // Enrollment policy first, so the sync records group membership.
    let enrollment = stack.ok(&[
        "policy",
        "enrollment",
        "set",
        "Finance",
        "--mode",
        "optional",
        "--pin-min-length",
        "6",
        "--force-pin-change",
        "--max",
        "2",
    ]);
    assert!(enrollment.contains("Finance: optional, PIN at least 6 (changed on first use)"), "{enrollment}");
    assert!(enrollment.contains("at most 2 passkeys"), "{enrollment}");

    // People.
    let sync = stack.ok(&["people", "sync"]);
    assert!(sync.contains("synced: 5 read from Entra, 5 created"), "{sync}");
    let list = stack.ok(&["people", "list"]);
    assert!(list.starts_with("UPN") && list.contains(ADELE) && list.contains(ALEX), "{list}");
    let found = stack.ok(&["people", "list", "--search", "alex", "--format", "csv"]);
    assert_eq!(found.lines().count(), 2, "{found}");
    assert!(
        found.starts_with("upn,display_name,enabled,linked,groups,id\n") && found.contains(ALEX),
        "{found}"
    );
    let linked = stack.ok(&["people", "link", ADELE, "--upn", ADELE]);
    assert!(linked.contains(&format!("{ADELE} is linked to Entra object")), "{linked}");
    let unknown = stack.run(&["people", "show", "nobody@contoso.onmicrosoft.com"]);
    assert!(!unknown.ok && unknown.stderr.contains("not found"), "{unknown:?}");
    assert!(unknown.stderr.contains("run `keyward people sync`"), "{}", unknown.stderr);
    let no_key = stack.run(&["keys", "lost", "NO-SUCH-SERIAL"]);
    assert!(!no_key.ok && no_key.stderr.contains("`keyward keys list` shows the serials"), "{no_key:?}");

    // Keys.
    let added = stack.ok(&["keys", "add", "--serial", "CLI-1", "--aaguid", &aaguid(), "--model", MODEL]);
    assert!(added.contains("serial CLI-1), state available"), "{added}");
    let keys = stack.ok(&["keys", "list", "--state", "available"]);
    assert!(keys.contains("CLI-1") && keys.contains(&aaguid()), "{keys}");
    let key = json(&stack.ok(&["keys", "show", "CLI-1", "--format", "json"]));
    assert_eq!((key["serial"].as_str(), key["state"].as_str()), (Some("CLI-1"), Some("available")), "{key}");

    // One registration through the API; then the person and passkey views show it.
    let done = stack.register_soft_passkey(ADELE, "CLI-1");
    let passkey_id = done["passkey"]["id"].as_str().unwrap().to_owned();
    let person = stack.ok(&["people", "show", ADELE]);
    assert!(person.contains("registered  operator"), "the issuance history shows: {person}");
    assert!(person.contains("registered") && person.contains("CLI-1") && person.contains(MODEL), "{person}");
    let passkeys = stack.ok(&["passkeys", "list", "--user", ADELE]);
    assert!(
        passkeys.contains(ADELE) && passkeys.contains(&passkey_id) && passkeys.contains("managed"),
        "{passkeys}"
    );
    let unmanaged = stack.run(&["passkeys", "list", "--unmanaged", "--format", "json"]);
    assert!(unmanaged.ok && json(&unmanaged.stdout) == serde_json::json!([]), "{unmanaged:?}");
    let reconciled = stack.ok(&["passkeys", "reconcile", "--user", ADELE]);
    assert!(
        reconciled.contains("reconciled 1 people") && reconciled.contains("0 discovered"),
        "{reconciled}"
    );
    // A passkey registered in Entra behind Keyward's back: reconcile finds it, --unmanaged lists it.
    let method_id = stack.register_in_entra_directly(ALEX);
    let reconciled = stack.ok(&["passkeys", "reconcile"]);
    assert!(reconciled.contains("1 discovered"), "{reconciled}");
    let unmanaged = stack.ok(&["passkeys", "list", "--unmanaged"]);
    assert!(
        unmanaged.contains(ALEX) && unmanaged.contains("discovered") && !unmanaged.contains(ADELE),
        "{unmanaged}"
    );
    let unmanaged = json(&stack.ok(&["passkeys", "list", "--unmanaged", "--format", "json"]));
    assert_eq!(unmanaged[0]["entra_method_id"], method_id.as_str(), "{unmanaged}");

    // Entra FIDO2 policy: show, change one setting, refuse an empty change.
    let policy = stack.ok(&["policy", "show"]);
    assert!(policy.contains("state:                         enabled"), "{policy}");
    assert!(policy.contains("self-service registration:     yes"), "{policy}");
    assert!(
        policy.contains("excluded:                      2d9f5c74-be3f-4a01-84d8-3f5e7a9b1c23"),
        "{policy}"
    );
    assert!(policy.contains("Finance") && policy.contains("optional"), "{policy}");
    let enforced =
        stack.ok(&["policy", "set", "--enforce-attestation", "on", "--block", &aaguid().to_uppercase()]);
    assert!(enforced.contains("attestation enforced:          yes"), "{enforced}");
    assert!(enforced.contains(&format!("key restrictions:              block {}", aaguid())), "{enforced}");
    let raw = json(&stack.ok(&["policy", "show", "--json"]));
    assert_eq!(raw["entra_fido2_policy"]["isAttestationEnforced"], true, "{raw}");
    assert_eq!(
        raw["entra_fido2_policy"]["isSelfServiceRegistrationAllowed"], true,
        "only what was given changes"
    );
    let cleared = stack.ok(&["policy", "set", "--no-key-restrictions", "--enforce-attestation", "off"]);
    assert!(cleared.contains("key restrictions:              none"), "{cleared}");
    let empty = stack.run(&["policy", "set"]);
    assert!(!empty.ok && empty.stderr.contains("nothing to change"), "{empty:?}");

    // TAP: shown once.
    let tap = stack.ok(&["tap", "issue", "--user", ALEX, "--lifetime", "60", "--once"]);
    let pass = tap.lines().next().unwrap().rsplit(' ').next().unwrap();
    assert!(tap.starts_with(&format!("Temporary Access Pass for {ALEX}: ")) && pass.len() >= 8, "{tap}");
    assert!(tap.contains("valid for 60 minutes") && tap.contains("for one sign-in"), "{tap}");

    // Key lifecycle: passkey revoke, key revoke, lost, dispose, suspend.
    stack.register_soft_passkey(ALEX, "CLI-2");
    let revoked = stack.ok(&["passkeys", "revoke", &passkey_id, "--reason", "test"]);
    assert!(revoked.contains(&format!("passkey {passkey_id} is revoked")), "{revoked}");
    stack.register_soft_passkey(ADELE, "CLI-4");
    let leaver = stack.ok(&["people", "revoke", ADELE, "--reason", "left the company"]);
    assert!(
        leaver.contains(&format!("revoked 1 passkey(s) of {ADELE}")),
        "only the one not revoked yet: {leaver}"
    );
    let key_revoke = stack.ok(&["keys", "revoke", "CLI-2"]);
    assert!(key_revoke.contains("revoked 1 passkey(s) on key CLI-2"), "{key_revoke}");
    let suspended = stack.ok(&["keys", "suspend", "CLI-2"]);
    assert!(suspended.contains("(serial CLI-2) is now suspended; 0 passkey(s) revoked"), "{suspended}");
    let disposed = stack.ok(&["keys", "dispose", "CLI-1"]);
    assert!(disposed.contains("is now disposed"), "{disposed}");
    stack.ok(&["keys", "add", "--serial", "CLI-3", "--aaguid", &aaguid()]);
    let lost = stack.ok(&["keys", "lost", "CLI-3"]);
    assert!(lost.contains("(serial CLI-3) is now lost"), "{lost}");
    let keys = json(&stack.ok(&["keys", "list", "--format", "json"]));
    let states: Vec<(&str, &str)> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["serial"].as_str().unwrap(), k["state"].as_str().unwrap()))
        .collect();
    for want in [("CLI-1", "disposed"), ("CLI-2", "suspended"), ("CLI-3", "lost")] {
        assert!(states.contains(&want), "{states:?}");
    }
    let after = stack.ok(&["passkeys", "list", "--state", "registered", "--format", "json"]);
    let after = json(&after);
    let origins: Vec<&str> =
        after.as_array().unwrap().iter().map(|p| p["origin"].as_str().unwrap()).collect();
    assert_eq!(origins, ["discovered"], "every managed passkey was revoked: {after}");

    // Audit: list, verify, export.
    let audit = stack.ok(&["audit", "list", "--limit", "1000"]);
    assert!(audit.contains("entra-policy.update") && audit.contains("SEQ"), "{audit}");
    let verify = stack.ok(&["audit", "verify"]);
    assert!(verify.contains("audit chain intact"), "{verify}");
    let events = json(&stack.ok(&["audit", "list", "--limit", "1000", "--format", "json"]));
    let out = stack.dir.join("audit.jsonl");
    stack.ok(&["audit", "export", "--output", out.to_str().unwrap()]);
    let exported = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<Value> = exported.lines().map(json).collect();
    assert_eq!(lines.len(), events.as_array().unwrap().len());
    assert_eq!(lines.last().unwrap()["seq"], events.as_array().unwrap().last().unwrap()["seq"]);
    let later = json(&stack.ok(&["audit", "list", "--after", "3", "--limit", "2", "--format", "json"]));
    assert_eq!(
        later.as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect::<Vec<_>>(),
        [4, 5]
    );
    for secret in [CLIENT_SECRET, pass] {
        assert!(!exported.contains(secret), "the audit trail holds a secret");
    }
}

#[test]
fn reports_in_every_format_after_one_registration() {
    let stack = Stack::start();
    stack.configure_connector();
    stack.ok(&["policy", "enrollment", "set", "Finance", "--mode", "optional"]);
    stack.ok(&["people", "sync"]);
    stack.ok(&["keys", "add", "--serial", "SPARE-1", "--aaguid", &aaguid()]);
    stack.register_soft_passkey(ADELE, "REP-1");
    let people = json(&stack.ok(&["people", "list", "--format", "json"]));
    let enabled = people.as_array().unwrap().iter().filter(|p| p["enabled"] == true).count();
    let finance =
        people.as_array().unwrap().iter().filter(|p| p["groups"].to_string().contains("Finance")).count();
    assert!(enabled >= 3, "{people}");

    let table = stack.ok(&["report", "coverage"]);
    assert!(table.contains(&format!("passkey coverage: 1 of {enabled} enabled people")), "{table}");
    let csv = stack.ok(&["report", "coverage", "--format", "csv"]);
    assert!(csv.starts_with("scope,name,covered,people,percent\n"), "{csv}");
    let pct = |c: usize, n: usize| format!("{:.1}", (c as f64 * 1000.0 / n as f64).round() / 10.0);
    assert!(csv.contains(&format!("\noverall,all,1,{enabled},{}\n", pct(1, enabled))), "{csv}");
    assert!(csv.contains(&format!("\nmodel,{MODEL},1,{enabled},")), "{csv}");
    let report = json(&stack.ok(&["report", "coverage", "--format", "json"]));
    assert_eq!(
        (report["overall"]["covered"].as_u64(), report["overall"]["people"].as_u64()),
        (Some(1), Some(enabled as u64))
    );
    assert_eq!(report["by_model"][0]["name"], MODEL, "{report}");
    if finance > 0 {
        let group = &report["by_group"][0];
        assert_eq!(
            (group["name"].as_str(), group["people"].as_u64()),
            (Some("Finance"), Some(finance as u64)),
            "{report}"
        );
    }

    let inv_csv = stack.ok(&["report", "inventory", "--format", "csv"]);
    let header = "person,serial,aaguid,model,key_state,passkey_state,origin,passkey_id,key_id";
    assert!(inv_csv.starts_with(header), "{inv_csv}");
    let adele_row = inv_csv.lines().find(|l| l.starts_with(ADELE)).unwrap_or_else(|| panic!("{inv_csv}"));
    assert!(
        adele_row.starts_with(&format!("{ADELE},REP-1,{},{MODEL},issued,registered,managed,", aaguid())),
        "{adele_row}"
    );
    let spare = inv_csv.lines().find(|l| l.contains("SPARE-1")).unwrap();
    assert!(
        spare.starts_with(&format!(",SPARE-1,{},", aaguid())) && spare.contains(",available,,"),
        "{spare}"
    );
    let inv = json(&stack.ok(&["report", "inventory", "--format", "json"]));
    assert_eq!(inv.as_array().unwrap().len(), 2, "{inv}");
    assert_eq!(inv[0]["person"], ADELE);
    let inv_table = stack.ok(&["report", "inventory"]);
    assert!(
        inv_table.starts_with("PERSON") && inv_table.contains("REP-1") && inv_table.contains("SPARE-1"),
        "{inv_table}"
    );
}

#[test]
fn errors_say_what_to_do_next() {
    let home = tempfile::tempdir().unwrap();
    let run = |cmd: &mut std::process::Command| -> support::Ran { cmd.output().unwrap().into() };

    // No token anywhere.
    let no_token = run(isolated(home.path()).args(["people", "list"]));
    assert!(!no_token.ok, "{no_token:?}");
    assert!(no_token.stderr.contains("no API token: set KEYWARD_TOKEN"), "{}", no_token.stderr);
    assert!(no_token.stderr.contains("keyward admin token create"), "{}", no_token.stderr);

    // Server not running.
    let down = run(isolated(home.path()).env("KEYWARD_TOKEN", "kw_x").args([
        "keys",
        "list",
        "--server",
        "http://127.0.0.1:9",
    ]));
    assert!(!down.ok, "{down:?}");
    assert!(down.stderr.contains("cannot reach the Keyward server at http://127.0.0.1:9"), "{}", down.stderr);
    assert!(down.stderr.contains("is `keyward serve` running"), "{}", down.stderr);

    // A server elsewhere over plain HTTP: the token is not sent, and the message says why.
    let clear = run(isolated(home.path()).env("KEYWARD_TOKEN", "kw_x").args([
        "people",
        "list",
        "--server",
        "http://keyward.contoso.com:8080",
    ]));
    assert!(!clear.ok, "{clear:?}");
    assert!(clear.stderr.contains("refusing to send the API token"), "{}", clear.stderr);
    assert!(clear.stderr.contains("use https://"), "{}", clear.stderr);
    assert!(!clear.stderr.contains("kw_x"), "{}", clear.stderr);

    // A broken client file names itself.
    let file = home.path().join("client.toml");
    std::fs::write(&file, "server = 42\n").unwrap();
    let broken =
        run(isolated(home.path()).args(["audit", "verify", "--client-config", file.to_str().unwrap()]));
    assert!(!broken.ok && broken.stderr.contains("is not a valid client configuration"), "{broken:?}");

    let stack = Stack::start();
    // The token from the client file works, and a wrong one is refused with the fix.
    std::fs::write(&file, format!("server = \"{}\"\ntoken = \"{}\"\n", stack.url, stack.token)).unwrap();
    let from_file =
        run(isolated(home.path()).args(["audit", "verify", "--client-config", file.to_str().unwrap()]));
    assert!(from_file.ok && from_file.stdout.contains("audit chain intact"), "{from_file:?}");
    let wrong = stack.run_as("kw_not_a_token", &["keys", "list"]);
    assert!(!wrong.ok && wrong.stderr.contains("keyward admin token create"), "{wrong:?}");

    // A role that may not.
    let auditor = stack.token("reader", "auditor");
    let reads = stack.run_as(&auditor, &["audit", "verify"]);
    assert!(reads.ok, "{reads:?}");
    let refused = stack.run_as(&auditor, &["keys", "add", "--serial", "X", "--aaguid", &aaguid()]);
    assert!(!refused.ok, "{refused:?}");
    assert!(refused.stderr.contains("your role `auditor` may not"), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("ask an administrator for a token with a role that may"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("HTTP 403"), "{}", refused.stderr);

    // No connector yet: the Entra-facing commands say how to configure it.
    let show = stack.ok(&["connector", "show"]);
    assert!(show.contains("keyward connector set"), "{show}");
    let sync = stack.run(&["people", "sync"]);
    assert!(!sync.ok && sync.stderr.contains("connector"), "{sync:?}");
    assert!(sync.stderr.contains("keyward connector set"), "{}", sync.stderr);
    let policy = stack.run(&["policy", "show"]);
    assert!(policy.ok && policy.stdout.contains("Keyward enrollment policies"), "{policy:?}");
    assert!(policy.stderr.contains("cannot read the tenant's FIDO2 policy"), "{policy:?}");
}

#[test]
fn completions_and_man_pages_are_generated() {
    let home = tempfile::tempdir().unwrap();
    for (shell, marker) in
        [("bash", "_keyward()"), ("zsh", "#compdef keyward"), ("fish", "complete -c keyward")]
    {
        let out = isolated(home.path()).args(["completions", shell]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains(marker), "{shell}: {text}");
        for word in ["people", "passkeys", "coverage", "client-config"] {
            assert!(text.contains(word), "{shell} completion lacks {word}");
        }
    }
    let page = isolated(home.path()).arg("man").output().unwrap();
    let text = String::from_utf8_lossy(&page.stdout);
    assert!(page.status.success() && text.contains(".TH keyward 1") && text.contains("people"), "{text}");
    let dir = home.path().join("man");
    let out = isolated(home.path()).args(["man", "--out", dir.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for name in ["keyward.1", "keyward-people.1", "keyward-report.1", "keyward-policy-set.1"] {
        let page = std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(page.contains(".TH"), "{name}");
    }
}

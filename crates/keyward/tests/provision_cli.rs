//! `keyward provision` end to end, as an operator runs it: `keyward softkey serve` (the key),
//! `keyward sim` (Entra) and `keyward serve` (the server) as separate processes, driven by the
//! built binary. Each test checks what a person at the desk would notice — the PIN shown once
//! and working, the letter opening only with the right identity, a forced PIN change, a failed
//! provisioning leaving nothing behind — and that no PIN leaks into any other output or file.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use keyward_testkit::seed::{APP, APP_SECRET};
use serde_json::{Value, json};
use support::{Running, start_logged};

const BIN: &str = env!("CARGO_BIN_EXE_keyward");
const UPN: &str = "adele.vance@contoso.onmicrosoft.com";
const AAGUID: &str = "6b657977-6172-642d-7465-73742d6b6579";
const PASSPHRASE: &str = "provision test passphrase";

fn keyward() -> Command {
    let mut c = Command::new(BIN);
    c.env("KEYWARD_LOG", "trace")
        .env_remove("KEYWARD_PIN")
        .env_remove("KEYWARD_NEW_PIN")
        .env_remove("KEYWARD_SERVER")
        .env_remove("KEYWARD_TOKEN")
        .stdin(Stdio::null());
    c
}

/// The whole stack for one test, in its own temporary directory.
struct Stack {
    dir: PathBuf,
    url: String,
    token: String,
    sim_base: String,
    key: String,
    _procs: Vec<Running>,
    rt: tokio::runtime::Runtime,
}

impl Stack {
    /// Starts the soft key, the emulator (trusting the key's CA; `blocked` puts the key's AAGUID
    /// on the tenant's block list) and the server, and syncs people.
    fn start(blocked: bool) -> Self {
        Self::start_with(blocked, "")
    }

    /// [`Stack::start`] with `keyward sim --faults FAULTS`.
    fn start_with(blocked: bool, faults: &str) -> Self {
        Self::start_sim(blocked, faults, &[])
    }

    /// [`Stack::start_with`] with extra `keyward sim` arguments.
    fn start_sim(blocked: bool, faults: &str, sim_args: &[&str]) -> Self {
        let dir =
            std::env::temp_dir().join(format!("keyward-provision-cli-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("key.sock");
        let mut softkey = keyward();
        softkey
            .args(["softkey", "serve", "--init", "--aaguid", AAGUID, "--listen"])
            .arg(format!("unix:{}", socket.display()))
            .arg("--state")
            .arg(dir.join("key.kws"))
            .arg("--write-ca-cert")
            .arg(dir.join("ca.pem"))
            .env("KEYWARD_SOFTKEY_PASSPHRASE", PASSPHRASE);
        let (softkey, _) = start_logged(softkey, &dir.join("softkey.log"), "keyward softkey: listening on");

        let mut seed: Value = serde_json::from_str(keyward_sim::seed::EXAMPLE_SEED).unwrap();
        seed["attestationRootsPem"] = json!([std::fs::read_to_string(dir.join("ca.pem")).unwrap()]);
        seed["aaguidModels"][AAGUID] = json!("Keyward Soft Key (test)");
        if blocked {
            seed["fido2Policy"]["keyRestrictions"] =
                json!({"isEnforced": true, "enforcementType": "block", "aaGuids": [AAGUID]});
        }
        std::fs::write(dir.join("seed.json"), seed.to_string()).unwrap();
        let mut sim = keyward();
        sim.args(["sim", "--listen", "127.0.0.1:0", "--throttle", "off", "--seed"])
            .arg(dir.join("seed.json"));
        if !faults.is_empty() {
            sim.args(["--faults", faults]);
        }
        sim.args(sim_args);
        let (sim, authority) = start_logged(sim, &dir.join("sim.log"), "authority:");
        let (sim_base, tenant) = authority.rsplit_once('/').unwrap();
        let (sim_base, tenant) = (sim_base.to_owned(), tenant.to_owned());

        let db = format!("sqlite://{}", dir.join("keyward.db").display());
        let config = |cmd: &mut Command| {
            cmd.arg("--data-dir")
                .arg(&dir)
                .arg("--database-url")
                .arg(&db)
                .arg("--config")
                .arg(dir.join("none.toml"));
        };
        let mut create = keyward();
        create.arg("admin");
        config(&mut create);
        let out =
            create.args(["token", "create", "--name", "first-admin", "--role", "admin"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let mut serve = keyward();
        serve.args(["serve", "--listen", "127.0.0.1:0"]);
        config(&mut serve);
        let (server, url) = start_logged(serve, &dir.join("server.log"), "Keyward server listening on");

        let _ = rustls::crypto::ring::default_provider().install_default();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let stack = Stack {
            dir,
            url,
            token,
            sim_base,
            key: format!("soft:unix:{}", socket.display()),
            _procs: vec![softkey, sim, server],
            rt,
        };
        let connector = json!({
            "enabled": true, "clientId": APP, "tenantId": tenant,
            "credential": {"kind": "secret", "clientSecret": APP_SECRET},
            "authorityUrl": stack.sim_base, "graphUrl": stack.sim_base,
        });
        let (status, body) = stack.api("PUT", "/api/v1/connector", Some(connector));
        assert_eq!(status, 204, "{body}");
        let (status, report) = stack.api("POST", "/api/v1/people/sync", Some(json!({})));
        assert_eq!(status, 200, "{report}");
        stack
    }

    fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.rt.block_on(async {
            let http = reqwest::Client::new();
            let mut req =
                http.request(method.parse().unwrap(), format!("{}{path}", self.url)).bearer_auth(&self.token);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let response = req.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(Value::Null))
        })
    }

    /// The FIDO2 methods of a user as the emulated Entra holds them.
    fn entra_methods(&self, upn: &str) -> Vec<Value> {
        self.rt.block_on(async {
            let http = reqwest::Client::new();
            let token = keyward_testkit::sim::app_token(&http, &self.sim_base).await;
            keyward_testkit::sim::fido2_methods(&http, &self.sim_base, &token, upn).await
        })
    }

    /// Runs `keyward provision --user UPN --key … ARGS` with the server and token in the environment.
    fn provision(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = keyward();
        cmd.args(["provision", "--user", UPN, "--key", &self.key, "--server", &self.url, "--client-config"])
            .arg(self.dir.join("client.toml"))
            .args(args)
            .env("KEYWARD_TOKEN", &self.token);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// Runs `keyward device ARGS --key …`.
    fn device(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = keyward();
        cmd.arg("device").args(args).arg("--key").arg(&self.key);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn audit_actions(&self) -> Vec<Value> {
        let (status, events) = self.api("GET", "/api/v1/audit?limit=500", None);
        assert_eq!(status, 200, "{events}");
        events["items"].as_array().cloned().unwrap()
    }

    /// Asserts that `secret` is in no file of the test directory (logs, database, letters, state).
    fn assert_nowhere_on_disk(&self, secret: &str) {
        std::thread::sleep(std::time::Duration::from_millis(200));
        for entry in std::fs::read_dir(&self.dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "the PIN is in {}",
                    path.display()
                );
                assert!(!bytes.starts_with(b"%PDF"), "an unencrypted PDF is on disk: {}", path.display());
            }
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The PIN of the framed display: the non-empty line after "PIN for …".
fn shown_pin(stderr: &str) -> String {
    let mut lines = stderr.lines().skip_while(|l| !l.trim_start().starts_with("PIN for "));
    lines.next().unwrap_or_else(|| panic!("no framed PIN:\n{stderr}"));
    lines.find(|l| !l.trim().is_empty()).unwrap().trim().to_owned()
}

fn handovers(stack: &Stack) -> Vec<Value> {
    let events = stack.audit_actions();
    events.into_iter().filter(|e| e["action"] == "pin.handover").collect()
}

#[test]
fn random_pin_is_shown_once_works_and_the_passkey_is_in_entra() {
    let stack = Stack::start(false);
    let out = stack.provision(&["--pin", "random", "--pin-length", "12", "--serial", "SK-R1"], &[]);
    let (stdout, stderr) = text(&out);
    println!("{stderr}");
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("provision: registering the passkey in Entra"), "{stderr}");
    assert!(stderr.contains("Write it down or hand it over now"), "{stderr}");
    let pin = shown_pin(&stderr);
    assert_eq!(pin.len(), 12, "{pin}");
    assert!(pin.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(stderr.matches(&pin).count(), 1, "the PIN must be shown exactly once:\n{stderr}");
    assert!(!stdout.contains(&pin));

    // The passkey is in Entra and in Keyward, on key SK-R1.
    let methods = stack.entra_methods(UPN);
    assert_eq!(methods.len(), 1, "{methods:?}");
    let (_, passkeys) = stack.api("GET", &format!("/api/v1/passkeys?person={UPN}"), None);
    let passkeys = passkeys["items"].clone();
    assert_eq!(passkeys[0]["state"], "registered", "{passkeys}");
    assert_eq!(passkeys[0]["id"].as_str(), Some(stdout.trim()));
    let (status, key) = stack.api("GET", "/api/v1/keys/SK-R1", None);
    assert_eq!(status, 200, "{key}");

    // The PIN works: the person can change it.
    let changed = stack.device(&["change-pin"], &[("KEYWARD_PIN", &pin), ("KEYWARD_NEW_PIN", "5093172846")]);
    assert!(changed.status.success(), "{}", text(&changed).1);

    let h = handovers(&stack);
    assert_eq!(h.len(), 1, "{h:?}");
    assert!(h[0]["detail"].as_str().unwrap().contains("terminal"), "{h:?}");
    assert!(!h[0]["detail"].as_str().unwrap().contains(&pin));
    stack.assert_nowhere_on_disk(&pin);
}

#[test]
fn prompted_pin_from_keyward_pin_is_set_and_never_printed() {
    let stack = Stack::start(false);
    // Trivial or short PINs are refused before the key is touched.
    for bad in ["123456", "111111", "12"] {
        let out = stack.provision(&["--pin", "prompt"], &[("KEYWARD_PIN", bad)]);
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "{bad} must be refused");
        assert!(stderr.contains("choose"), "{stderr}");
        assert!(stderr.contains("No credential was made on the key"), "{stderr}");
    }
    let info = stack.device(&["info"], &[]);
    assert!(text(&info).0.contains("PIN:                 not set"), "{}", text(&info).0);

    let pin = "Tq7pin2958x";
    let out = stack.provision(&["--pin", "prompt"], &[("KEYWARD_PIN", pin)]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains(pin) && !stdout.contains(pin), "{stderr}");
    assert!(!stderr.contains("Write it down"), "an operator's PIN is not displayed:\n{stderr}");

    let listed = stack.device(&["credentials"], &[("KEYWARD_PIN", pin)]);
    let (list, err) = text(&listed);
    assert!(listed.status.success(), "{err}");
    assert!(
        list.contains("1 discoverable credentials") && list.contains("rp: login.microsoft.com"),
        "{list}"
    );
    let h = handovers(&stack);
    assert!(h.len() == 1 && h[0]["detail"].as_str().unwrap().contains("user-chosen"), "{h:?}");
    stack.assert_nowhere_on_disk(pin);
}

#[test]
fn the_letter_opens_with_the_identity_only_and_holds_the_working_pin() {
    let stack = Stack::start(false);
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let letter = stack.dir.join("adele.pdf.age");

    // A recipient that is not an age public key is refused before anything is touched.
    let bad = stack.provision(&["--letter", letter.to_str().unwrap(), "--recipient", "age1notakey"], &[]);
    let (_, stderr) = text(&bad);
    assert!(!bad.status.success() && stderr.contains("age-keygen"), "{stderr}");
    let (_, issuances) = stack.api("GET", &format!("/api/v1/issuances?person={UPN}"), None);
    let issuances = issuances["items"].clone();
    assert_eq!(issuances.as_array().map(Vec::len), Some(0), "{issuances}");
    let out = stack.provision(
        &[
            "--pin-length",
            "10",
            "--serial",
            "SK-L1",
            "--letter",
            letter.to_str().unwrap(),
            "--recipient",
            &recipient,
        ],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("Write it down"), "with a letter the PIN is not shown:\n{stderr}");

    let pdf = age::decrypt(&identity, &std::fs::read(&letter).unwrap()).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let body = String::from_utf8_lossy(&pdf);
    assert!(body.contains("(For: Adele Vance)") && body.contains(UPN) && body.contains("SK-L1"), "{body}");
    let at = body.find("(PIN: ").expect("no PIN in the letter") + 6;
    let pin: String = body[at..].chars().take_while(|c| *c != ')').collect();
    assert_eq!(pin.len(), 10, "{pin}");
    assert!(age::decrypt(&age::x25519::Identity::generate(), &std::fs::read(&letter).unwrap()).is_err());
    assert!(!stderr.contains(&pin) && !stdout.contains(&pin));

    let changed = stack.device(&["change-pin"], &[("KEYWARD_PIN", &pin), ("KEYWARD_NEW_PIN", "5093172846")]);
    assert!(changed.status.success(), "{}", text(&changed).1);
    let h = handovers(&stack);
    assert!(h.len() == 1 && h[0]["detail"].as_str().unwrap().contains("letter"), "{h:?}");
    stack.assert_nowhere_on_disk(&pin);
}

#[test]
fn a_forced_pin_change_blocks_the_key_until_the_pin_is_changed() {
    let stack = Stack::start(false);
    let out = stack.provision(&["--pin-length", "12", "--force-pin-change"], &[]);
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let pin = shown_pin(&stderr);

    let refused = stack.device(&["credentials"], &[("KEYWARD_PIN", &pin)]);
    let (_, err) = text(&refused);
    assert!(!refused.status.success());
    assert!(err.contains("change-pin"), "{err}");
    let changed = stack.device(&["change-pin"], &[("KEYWARD_PIN", &pin), ("KEYWARD_NEW_PIN", "5093172846")]);
    assert!(changed.status.success(), "{}", text(&changed).1);
    let listed = stack.device(&["credentials"], &[("KEYWARD_PIN", "5093172846")]);
    assert!(listed.status.success(), "{}", text(&listed).1);
    stack.assert_nowhere_on_disk(&pin);
}

#[test]
fn a_refused_registration_removes_the_credential_and_fails_the_issuance() {
    let stack = Stack::start(true);
    let pin = "Wm4pin8137z";
    let out = stack.provision(&["--pin", "prompt"], &[("KEYWARD_PIN", pin)]);
    let (stdout, stderr) = text(&out);
    println!("{stderr}");
    assert!(!out.status.success(), "a blocked AAGUID must fail:\n{stderr}");
    assert!(stderr.contains("registering the passkey in Entra failed"), "{stderr}");
    assert!(stderr.contains("was marked failed"), "{stderr}");
    assert!(stderr.contains("was removed from it"), "{stderr}");
    assert!(stdout.trim().is_empty() && !stderr.contains(pin), "{stderr}");

    let listed = stack.device(&["credentials"], &[("KEYWARD_PIN", pin)]);
    let (list, err) = text(&listed);
    assert!(listed.status.success(), "{err}");
    assert!(list.starts_with("0 discoverable credentials") && !list.contains("rp:"), "{list}");
    let (_, issuances) = stack.api("GET", &format!("/api/v1/issuances?person={UPN}"), None);
    let issuances = issuances["items"].clone();
    assert_eq!(issuances[0]["state"], "failed", "{issuances}");
    assert!(issuances[0]["failure_reason"].as_str().is_some_and(|r| !r.is_empty()), "{issuances}");
    assert!(stack.entra_methods(UPN).is_empty());
    assert!(handovers(&stack).is_empty());
    stack.assert_nowhere_on_disk(pin);
}

#[test]
fn a_key_with_a_pin_is_only_reprovisioned_after_a_reset() {
    let stack = Stack::start(false);
    let first = stack.provision(&["--pin-length", "12"], &[]);
    assert!(first.status.success(), "{}", text(&first).1);
    let old_pin = shown_pin(&text(&first).1);

    let again = stack.provision(&["--pin-length", "12"], &[]);
    let (_, stderr) = text(&again);
    assert!(!again.status.success());
    assert!(stderr.contains("already has a PIN") && stderr.contains("--reset"), "{stderr}");
    assert!(stderr.contains("No credential was made on the key"), "{stderr}");
    assert!(stderr.contains("issuance marked failed: yes"), "{stderr}");

    let reset = stack.provision(&["--pin-length", "12", "--reset"], &[]);
    let (_, stderr) = text(&reset);
    assert!(reset.status.success(), "{stderr}");
    assert!(stderr.contains("provision: resetting the key"), "{stderr}");
    let new_pin = shown_pin(&stderr);
    assert_ne!(new_pin, old_pin);
    let listed = stack.device(&["credentials"], &[("KEYWARD_PIN", &new_pin)]);
    let (list, err) = text(&listed);
    assert!(listed.status.success(), "{err}");
    assert!(
        list.starts_with("1 discoverable credentials"),
        "the reset must erase the first passkey:\n{list}"
    );
    let old = stack.device(&["credentials"], &[("KEYWARD_PIN", &old_pin)]);
    assert!(!old.status.success(), "the old PIN must no longer work");
    stack.assert_nowhere_on_disk(&new_pin);
}

#[test]
fn the_enrollment_policy_sets_the_pin_length_the_key_minimum_and_the_forced_change() {
    let stack = Stack::start(false);
    let finance = "Finance";
    let policy = json!({"mode": "optional", "pin_min_length": 9, "pin_force_change": true});
    let (status, body) = stack.api("PUT", &format!("/api/v1/enrollment-policies/{finance}"), Some(policy));
    assert_eq!(status, 200, "{body}");
    // Sync reads the members of groups with a policy.
    let (status, report) = stack.api("POST", "/api/v1/people/sync", Some(json!({})));
    assert_eq!(status, 200, "{report}");

    let out = stack.provision(&[], &[]);
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("raising the key's minimum PIN length to 9"), "{stderr}");
    assert!(stderr.contains("forcing a PIN change at first use"), "{stderr}");
    let pin = shown_pin(&stderr);
    assert_eq!(pin.len(), 9, "{pin}");

    let info = stack.device(&["info"], &[]);
    let (info, _) = text(&info);
    assert!(info.contains("min PIN length:      9") && info.contains("PIN change forced:   yes"), "{info}");
    let short = stack.device(&["change-pin"], &[("KEYWARD_PIN", &pin), ("KEYWARD_NEW_PIN", "50931728")]);
    assert!(!short.status.success(), "the key must refuse a PIN shorter than the policy's");
    let ok = stack.device(&["change-pin"], &[("KEYWARD_PIN", &pin), ("KEYWARD_NEW_PIN", "509317284")]);
    assert!(ok.status.success(), "{}", text(&ok).1);
    stack.assert_nowhere_on_disk(&pin);
}

#[test]
fn provisioning_survives_lost_answers_from_entra_with_exactly_one_passkey() {
    // Every Graph write is carried out and then its connection dropped; the server settles the
    // outcome by looking the credential up (or answers 502 "unknown outcome" and the flow
    // sends the same completion again).
    let stack = Stack::start_with(false, "lost=1");
    let out = stack.provision(&["--pin-length", "12"], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stack.entra_methods(UPN).len(), 1, "the passkey must be registered exactly once");
    let (_, passkeys) = stack.api("GET", &format!("/api/v1/passkeys?person={UPN}"), None);
    let passkeys = passkeys["items"].clone();
    assert_eq!(passkeys.as_array().unwrap().len(), 1, "{passkeys}");
    assert_eq!(passkeys[0]["state"], "registered", "{passkeys}");
    assert_eq!(passkeys[0]["id"].as_str(), Some(stdout.trim()));
}

#[test]
fn the_provisioned_passkey_signs_its_person_in_at_the_tenant() {
    let stack = Stack::start(false);
    let out = stack.provision(&["--pin", "prompt", "--serial", "SK-S1"], &[("KEYWARD_PIN", "602214")]);
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("proof of sign-in: the tenant signed {UPN} in with the new passkey")),
        "the operator is told the passkey signed its person in: {stderr}"
    );
    let proofs: Vec<Value> =
        stack.audit_actions().into_iter().filter(|e| e["action"] == "passkey.sign-in-proved").collect();
    assert_eq!(proofs.len(), 1, "{proofs:?}");
    assert!(proofs[0]["detail"].to_string().contains(UPN), "{proofs:?}");

    // Independently of Keyward: the key, opened afresh, signs Adele in at the emulator.
    use keyward_ctap::client::PERMISSION_GA;
    let socket = stack.key.strip_prefix("soft:").unwrap();
    let transport = keyward_ctap::SocketTransport::connect(socket).unwrap();
    let mut key = keyward_ctap::Client::new(
        keyward_ctap::HidDevice::open(transport, keyward_ctap::Timeouts::default()).unwrap(),
    );
    let pin = secrecy::SecretString::from("602214".to_owned());
    let tenant = keyward_testkit::seed::TENANT;
    // One sign-in at the emulator with the key: options, an assertion under a fresh PIN token.
    let mut sign_in = || {
        stack.rt.block_on(async {
            let http = reqwest::Client::new();
            let options: Value = http
                .post(format!("{}/{tenant}/passkey/signin/options", stack.sim_base))
                .json(&json!({ "clientId": APP }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let token = key.get_pin_uv_auth_token(&pin, PERMISSION_GA, Some("login.microsoft.com")).unwrap();
            let signed = key.sign_in_for_entra(options["challenge"].as_str().unwrap(), &token, None).unwrap();
            let response = http
                .post(format!("{}/{tenant}/passkey/signin", stack.sim_base))
                .json(&json!({ "clientId": APP, "credential": signed.to_credential() }))
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap_or(Value::Null))
        })
    };
    let (status, tokens) = sign_in();
    assert_eq!(status, 200, "{tokens}");
    let id_token = tokens["id_token"].as_str().unwrap();
    let claims: Value = serde_json::from_slice(
        &keyward_webauthn::b64::decode_lenient(id_token.split('.').nth(1).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(claims["preferred_username"], UPN);

    // Revoked through Keyward, the passkey no longer signs in.
    let (_, passkeys) = stack.api("GET", &format!("/api/v1/passkeys?person={UPN}"), None);
    let id = passkeys["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = stack.api("POST", &format!("/api/v1/passkeys/{id}/revoke"), Some(json!({})));
    assert!(status == 200 || status == 204, "{status} {body}");
    let (status, _) = sign_in();
    assert_eq!(status, 400, "a revoked passkey is refused");
}

#[test]
fn against_a_tenant_without_passkey_sign_in_provisioning_says_so_and_succeeds() {
    let stack = Stack::start_sim(false, "", &["--no-sign-in"]);
    let out = stack.provision(&["--pin", "prompt", "--serial", "SK-N1"], &[("KEYWARD_PIN", "602214")]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("proof of sign-in: no sign-in at the tenant"), "{stderr}");
    assert!(stderr.contains("HTTP 404"), "the operator learns why: {stderr}");
    let (_, passkeys) = stack.api("GET", &format!("/api/v1/passkeys?person={UPN}"), None);
    assert_eq!(passkeys["items"][0]["state"], "registered", "{passkeys}");
    assert_eq!(passkeys["items"][0]["id"].as_str(), Some(stdout.trim()));
    assert!(stack.audit_actions().iter().all(|e| e["action"] != "passkey.sign-in-proved"));
}

#[test]
fn a_letter_that_cannot_be_written_leaves_the_key_without_a_pin() {
    let stack = Stack::start(false);
    let recipient = age::x25519::Identity::generate().to_public().to_string();
    // The letter's path is a directory: its parent exists, but the file cannot be written.
    let letter = stack.dir.join("letters-dir");
    std::fs::create_dir_all(&letter).unwrap();
    let out = stack.provision(&["--letter", letter.to_str().unwrap(), "--recipient", &recipient], &[]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("cannot write the PIN letter"), "{stderr}");
    assert!(stderr.contains("PIN was NOT set"), "the operator is told the key has no PIN:\n{stderr}");
    let info = stack.device(&["info"], &[]);
    assert!(text(&info).0.contains("PIN:                 not set"), "{}", text(&info).0);
    let (_, issuances) = stack.api("GET", &format!("/api/v1/issuances?person={UPN}"), None);
    assert_eq!(issuances["items"][0]["state"], "failed", "{issuances}");
}

//! Shared harness for binary-level tests: `keyward sim` and `keyward serve` as child processes, the
//! first admin token from `keyward admin token create`, and a passkey registered through the Core
//! API with an in-process soft key whose attestation chains to a test CA the sim trusts.
//!
//! Each test file that needs a whole stack does `mod support;` and calls [`Stack::start`]; the
//! processes are killed and the temporary directory removed when the stack is dropped. Not every
//! file uses every helper, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use keyward_ctap::client::PERMISSION_MC;
use keyward_ctap::{Client, HidDevice, MemoryTransport, Timeouts};
use keyward_softkey::{Attestation, Config, SoftKey};
use keyward_webauthn::registration::RegistrationPlan;
use keyward_webauthn::{ENTRA_RP_ID, b64};
use secrecy::SecretString;
use serde_json::{Value, json};

#[path = "../../../keyward-sim/tests/support/attestation_ca.rs"]
pub mod attestation_ca;

/// The soft key's AAGUID in the test stack.
pub const AAGUID: [u8; 16] = *b"KeywardSoftKey01";
/// The model name the sim's seed gives [`AAGUID`].
pub const MODEL: &str = "Keyward Soft Key (test CA)";
/// The sim's Keyward app registration.
pub const CLIENT_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
/// Its client secret.
pub const CLIENT_SECRET: &str = "sim-secret-change-me";

/// The soft key's AAGUID as text.
pub fn aaguid() -> String {
    uuid::Uuid::from_bytes(AAGUID).to_string()
}

/// The built `keyward` binary.
pub fn keyward() -> Command {
    Command::new(env!("CARGO_BIN_EXE_keyward"))
}

/// A child process killed when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a command and returns it with the rest of the first stdout line starting with `prefix`.
pub fn start(mut cmd: Command, prefix: &str) -> (Running, String) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let found = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix(prefix).map(|rest| rest.trim().to_owned()))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?}"));
    std::thread::spawn(move || for _ in lines {});
    (Running(child), found)
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Ran {
    /// Exit status was 0.
    pub ok: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Ran {
    fn from(o: Output) -> Self {
        Self {
            ok: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// A `keyward` command with no client settings from the environment or the user's home: the
/// client file location is `home/keyward/client.toml`.
pub fn isolated(home: &std::path::Path) -> Command {
    let mut cmd = keyward();
    cmd.env_remove("KEYWARD_TOKEN")
        .env_remove("KEYWARD_SERVER")
        .env_remove("KEYWARD_CLIENT_SECRET")
        .env("XDG_CONFIG_HOME", home)
        .env("KEYWARD_LOG", "warn");
    cmd
}

/// A sim and a server, with an admin token.
pub struct Stack {
    /// Temporary directory (database, seed, client files).
    pub dir: PathBuf,
    /// The sim's base URL (authority and Graph).
    pub sim_base: String,
    /// The sim's tenant id.
    pub tenant: String,
    /// The server's base URL.
    pub url: String,
    /// An admin API token.
    pub token: String,
    /// The test CA the sim trusts.
    pub ca: attestation_ca::TestCa,
    database_url: String,
    _sim: Running,
    _server: Running,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Stack {
    /// Starts the sim with the example seed (plus the test CA and model name), and a server on
    /// SQLite; the connector is not configured yet.
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("keyward-stack-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = attestation_ca::test_ca(AAGUID, "Authenticator Attestation");
        let mut seed: Value = serde_json::from_str(keyward_sim::seed::EXAMPLE_SEED).unwrap();
        seed["attestationRootsPem"] = json!([ca.ca_pem]);
        seed["aaguidModels"][aaguid()] = json!(MODEL);
        let seed_path = dir.join("seed.json");
        std::fs::write(&seed_path, seed.to_string()).unwrap();

        let mut sim = keyward();
        sim.args(["sim", "--listen", "127.0.0.1:0", "--throttle", "off", "--seed"]).arg(&seed_path);
        let (sim, authority) = start(sim, "authority:");
        let (sim_base, tenant) = authority.rsplit_once('/').unwrap();
        let (sim_base, tenant) = (sim_base.to_owned(), tenant.to_owned());

        let database_url = format!("sqlite://{}", dir.join("keyward.db").display());
        let token = admin_token_in(&dir, &database_url, "first-admin", "admin");
        let mut serve = keyward();
        serve.args(["serve", "--listen", "127.0.0.1:0"]);
        server_args(&mut serve, &dir, &database_url);
        let (server, url) = start(serve, "Keyward server listening on");
        Self { dir, sim_base, tenant, url, token, ca, database_url, _sim: sim, _server: server }
    }

    /// Creates another API token with `role` (admin, operator, helpdesk, auditor).
    pub fn token(&self, name: &str, role: &str) -> String {
        admin_token_in(&self.dir, &self.database_url, name, role)
    }

    /// `keyward ARGS` against this server with the admin token from the environment.
    pub fn run(&self, args: &[&str]) -> Ran {
        self.run_as(&self.token, args)
    }

    /// `keyward ARGS` against this server with `token`.
    pub fn run_as(&self, token: &str, args: &[&str]) -> Ran {
        isolated(&self.dir)
            .env("KEYWARD_SERVER", &self.url)
            .env("KEYWARD_TOKEN", token)
            .args(args)
            .output()
            .unwrap()
            .into()
    }

    /// Like [`Stack::run`], and fails the test unless the command succeeded.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert!(r.ok, "keyward {args:?} failed:\n{}\n{}", r.stdout, r.stderr);
        r.stdout
    }

    /// Points the connector at the sim through the API (not through the CLI).
    pub fn configure_connector(&self) {
        let connector = json!({
            "enabled": true, "clientId": CLIENT_ID, "tenantId": self.tenant,
            "credential": {"kind": "secret", "clientSecret": CLIENT_SECRET},
            "authorityUrl": self.sim_base, "graphUrl": self.sim_base,
        });
        let (status, body) = self.call("PUT", "/api/v1/connector", Some(connector));
        assert_eq!(status, 204, "{body}");
    }

    /// One Core API call with the admin token.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
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

    /// Issues a passkey to `upn` on a fresh soft key with `serial` through the Core API; returns
    /// the completed issuance (`passkey` inside).
    pub fn register_soft_passkey(&self, upn: &str, serial: &str) -> Value {
        let (status, issuance) =
            self.call("POST", "/api/v1/issuances", Some(json!({"person": upn, "serial": serial})));
        assert_eq!(status, 201, "{issuance}");
        let id = issuance["id"].as_str().unwrap().to_owned();
        let (status, options) = self.call("POST", &format!("/api/v1/issuances/{id}/options"), None);
        assert_eq!(status, 200, "{options}");
        let (plan, attestation_object) = self.soft_key_credential(options["creation_options"].clone());
        let body = json!({
            "client_data_json": b64::encode(&plan.client_data_json),
            "attestation_object": b64::encode(&attestation_object),
            "serial": serial,
        });
        let (status, done) = self.call("POST", &format!("/api/v1/issuances/{id}/complete"), Some(body));
        assert_eq!(status, 200, "{done}");
        done
    }

    /// Makes a credential for Entra's creation options (JSON) on a fresh soft key with a PIN;
    /// returns the plan (client data) and the attestation object.
    pub fn soft_key_credential(&self, creation_options: Value) -> (RegistrationPlan, Vec<u8>) {
        let config = Config {
            aaguid: AAGUID,
            attestation: Attestation::Packed {
                key: self.ca.attestation_key.clone(),
                x5c: vec![self.ca.attestation_der.clone()],
            },
            ..Config::default()
        };
        let (host, dev) = MemoryTransport::pair();
        let _key = SoftKey::spawn(config, dev.from_host, dev.to_host);
        let timeouts = Timeouts { idle: Duration::from_secs(5), transaction: Duration::from_secs(10) };
        let mut client = Client::new(HidDevice::open(host, timeouts).unwrap());
        let pin = SecretString::from("8642".to_owned());
        client.set_pin(&pin).unwrap();
        let plan =
            RegistrationPlan::from_creation_options(&serde_json::from_value(creation_options).unwrap())
                .unwrap();
        let pin_token = client.get_pin_uv_auth_token(&pin, PERMISSION_MC, Some(ENTRA_RP_ID)).unwrap();
        let made = client.register_for_entra(&plan, &pin_token).unwrap();
        (plan, made.attestation.attestation_object())
    }

    /// Registers a passkey for `upn` straight in Entra (the sim), behind Keyward's back: what
    /// reconcile later finds as `discovered`. Returns Entra's method id.
    pub fn register_in_entra_directly(&self, upn: &str) -> String {
        let mut config = keyward_entra::ConnectorConfig::with_secret(
            &self.tenant,
            CLIENT_ID,
            SecretString::from(CLIENT_SECRET.to_owned()),
        );
        config.authority_url = self.sim_base.clone();
        config.graph_url = self.sim_base.clone();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let connector = keyward_entra::Connector::new(config).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let options = rt.block_on(connector.creation_options(upn)).unwrap();
        let (plan, attestation_object) = self.soft_key_credential(serde_json::to_value(&options).unwrap());
        let prepared = keyward_webauthn::registration::registration_body(
            &plan,
            &attestation_object,
            "Bought it myself",
            None,
        )
        .unwrap();
        let registered = rt.block_on(connector.register_fido2(upn, &prepared.request)).unwrap();
        registered.method.id
    }
}

fn server_args(cmd: &mut Command, dir: &std::path::Path, database_url: &str) {
    cmd.arg("--data-dir")
        .arg(dir)
        .arg("--database-url")
        .arg(database_url)
        .arg("--config")
        .arg(dir.join("none.toml"));
}

fn admin_token_in(dir: &std::path::Path, database_url: &str, name: &str, role: &str) -> String {
    let mut create = keyward();
    create.arg("admin");
    server_args(&mut create, dir, database_url);
    let out = create.args(["token", "create", "--name", name, "--role", role]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("kw_"), "{token}");
    token
}

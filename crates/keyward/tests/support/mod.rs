//! Shared harness for binary-level tests: the built `keyward` binary run as a user runs it, and
//! a stack to run it against — the emulator and a Keyward server on loopback from
//! `keyward-testkit` (the same stack the server's tests use), with an admin token.
//!
//! Each test file that needs a whole stack does `mod support;` and calls [`Stack::start`]; the
//! stack and its temporary directory go when it is dropped. Tests of the `keyward sim` and
//! `keyward serve` commands themselves start those as processes with [`start`]. Not every file
//! uses every helper, hence the `dead_code` and `unused_imports` allowances.
#![allow(dead_code, unused_imports)]

use std::io::{BufRead, BufReader, Lines};
use std::ops::Deref;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use keyward_core::Role;
use keyward_testkit::desk::SoftDesk;
use keyward_testkit::stack::{StackOptions, provision_as};
use keyward_webauthn::registration::RegistrationPlan;
use secrecy::SecretString;
use serde_json::Value;

pub use keyward_testkit::desk::{AAGUID, MODEL};
pub use keyward_testkit::seed::{APP as CLIENT_ID, APP_SECRET as CLIENT_SECRET};

/// The soft key's AAGUID as text.
pub fn aaguid() -> String {
    keyward_testkit::seed::aaguid_text(AAGUID)
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
pub fn start(cmd: Command, prefix: &str) -> (Running, String) {
    start_with(cmd, Stdio::null(), prefix, "", |lines| for _ in lines {})
}

/// Starts a command logging stderr to `log`; returns it with the first stdout line that starts
/// with `prefix`, the rest of stdout going to `log.out`.
pub fn start_logged(cmd: Command, log: &Path, prefix: &str) -> (Running, String) {
    let out = log.with_extension("out");
    let see = format!("; see {}", log.display());
    start_with(cmd, std::fs::File::create(log).unwrap().into(), prefix, &see, move |lines| {
        let text: Vec<String> = lines.map_while(Result::ok).collect();
        let _ = std::fs::write(out, text.join("\n"));
    })
}

/// Starts `cmd` with `stderr`, reads stdout up to the first line starting with `prefix` (failing
/// with `hint` appended when there is none), and hands the rest of stdout to `rest` on a thread.
fn start_with(
    mut cmd: Command,
    stderr: Stdio,
    prefix: &str,
    hint: &str,
    rest: impl FnOnce(Lines<BufReader<ChildStdout>>) + Send + 'static,
) -> (Running, String) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(stderr).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let found = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix(prefix).map(|rest| rest.trim().to_owned()))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?}{hint}"));
    std::thread::spawn(move || rest(lines));
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
        .env_remove("KEYWARD_CA_CERT")
        .env("XDG_CONFIG_HOME", home)
        .env("KEYWARD_LOG", "warn");
    cmd
}

/// The testkit's stack for the CLI: the connector not yet set, and the admin token and the
/// emulator's address at hand (the testkit's fields — `url`, `tenant`, `ca`, `dir` — through
/// `Deref`).
pub struct Stack {
    /// The emulator's base URL (authority and Graph).
    pub sim_base: String,
    /// An admin API token.
    pub token: String,
    inner: keyward_testkit::stack::Stack,
}

impl Deref for Stack {
    type Target = keyward_testkit::stack::Stack;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl Stack {
    /// Starts the emulator with the example seed (plus the test CA and model name), and a server
    /// on SQLite; the connector is not configured yet.
    pub fn start() -> Self {
        let inner = keyward_testkit::stack::Stack::start_blocking(StackOptions {
            connector: false,
            ..StackOptions::sqlite()
        });
        Self { sim_base: inner.sim.base_url.clone(), token: inner.admin_token().to_owned(), inner }
    }

    /// Creates another API token with `role` (admin, operator, helpdesk, auditor) with
    /// `keyward admin token create` on the server's database, as an administrator would.
    pub fn token(&self, name: &str, role: &str) -> String {
        let out = keyward()
            .arg("admin")
            .arg("--data-dir")
            .arg(&self.dir)
            .arg("--database-url")
            .arg(&self.database_url)
            .arg("--config")
            .arg(self.dir.join("none.toml"))
            .args(["token", "create", "--name", name, "--role", role])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert!(token.starts_with("kw_"), "{token}");
        token
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
        let (status, body) = self.call("PUT", "/api/v1/connector", Some(self.connector_body()));
        assert_eq!(status, 204, "{body}");
    }

    /// One Core API call with the admin token.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.block_on(self.inner.call(Role::Admin, method, path, body))
    }

    /// Issues a passkey to `upn` on a fresh soft key with `serial` through the Core API; returns
    /// the completed issuance (`passkey` inside).
    pub fn register_soft_passkey(&self, upn: &str, serial: &str) -> Value {
        let mut desk = SoftDesk::with_ca(&self.ca);
        let (status, done) = self.block_on(provision_as(&self.inner, Role::Admin, &mut desk, upn, serial));
        assert_eq!(status, 200, "{done}");
        done
    }

    /// Makes a credential for Entra's creation options (JSON) on a fresh soft key with a PIN;
    /// returns the plan (client data) and the attestation object.
    pub fn soft_key_credential(&self, creation_options: Value) -> (RegistrationPlan, Vec<u8>) {
        SoftDesk::with_ca(&self.ca).register(&creation_options)
    }

    /// Registers a passkey for `upn` straight in Entra (the sim), behind Keyward's back: what
    /// reconcile later finds as `discovered`. Returns Entra's method id.
    pub fn register_in_entra_directly(&self, upn: &str) -> String {
        let config = keyward_entra::ConnectorConfig::with_secret(
            &self.tenant,
            CLIENT_ID,
            SecretString::from(CLIENT_SECRET.to_owned()),
        )
        .pointed_at(&self.sim_base);
        let connector = keyward_entra::Connector::new(config).unwrap();
        let options = self.block_on(connector.creation_options(upn)).unwrap();
        let (plan, attestation_object) = self.soft_key_credential(serde_json::to_value(&options).unwrap());
        let prepared = keyward_webauthn::registration::registration_body(
            &plan,
            &attestation_object,
            "Bought it myself",
            None,
        )
        .unwrap();
        let registered = self.block_on(connector.register_fido2(upn, &prepared.request)).unwrap();
        registered.method.id
    }
}

//! The built `keyward` binary end to end: `keyward softkey serve` on a unix socket with an
//! encrypted state file, driven by `keyward device …` the way an operator would, including
//! killing and restarting the soft key. Every test also checks that no PIN ever shows up in
//! any output, with `KEYWARD_LOG=trace`.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use keyward_ctap::client::PERMISSION_MC;
use keyward_ctap::{Client, HidDevice, MakeCredential, SocketTransport, Timeouts};
use secrecy::SecretString;

const BIN: &str = env!("CARGO_BIN_EXE_keyward");
const PASSPHRASE: &str = "correct horse battery staple";
const PIN1: &str = "Q7pin4821first";
const PIN2: &str = "Z9pin7730second";
const WRONG_PIN: &str = "X1pin5555wrong";
const PINS: [&str; 3] = [PIN1, PIN2, WRONG_PIN];

/// Every line any process printed in a test, to check that no PIN leaked.
#[derive(Default, Clone)]
struct Transcript(Arc<Mutex<String>>);

impl Transcript {
    fn push(&self, s: &str) {
        self.0.lock().unwrap().push_str(s);
    }

    fn assert_no_pin(&self) {
        let all = self.0.lock().unwrap();
        assert!(!all.is_empty());
        for pin in PINS {
            assert!(!all.contains(pin), "a PIN was printed:\n{all}");
        }
    }
}

/// A `keyward softkey serve` child process.
struct SoftKey {
    child: Child,
    socket: PathBuf,
}

impl Drop for SoftKey {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base_command() -> Command {
    let mut c = Command::new(BIN);
    c.env("KEYWARD_LOG", "trace")
        .env_remove("KEYWARD_PIN")
        .env_remove("KEYWARD_NEW_PIN")
        .env_remove("KEYWARD_SOFTKEY_PASSPHRASE")
        .stdin(Stdio::null());
    c
}

/// Starts the soft key; returns its stderr when it exits instead of listening.
fn start(dir: &Path, init: bool, passphrase: &str, log: &Transcript) -> Result<SoftKey, String> {
    let socket = dir.join("key.sock");
    let mut cmd = base_command();
    cmd.args(["softkey", "serve", "--listen"])
        .arg(format!("unix:{}", socket.display()))
        .arg("--state")
        .arg(dir.join("key.kws"))
        .env("KEYWARD_SOFTKEY_PASSPHRASE", passphrase)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if init {
        cmd.arg("--init");
    }
    let mut child = cmd.spawn().expect("starting keyward softkey serve");
    // Drain stderr from the start so trace logging can never fill the pipe and stall the key.
    let mut stderr = child.stderr.take().unwrap();
    let err_log = log.clone();
    let stderr_reader = std::thread::spawn(move || {
        let mut err = String::new();
        let _ = stderr.read_to_string(&mut err);
        err_log.push(&err);
        err
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if stdout.read_line(&mut line).unwrap() == 0 {
            let err = stderr_reader.join().unwrap();
            assert!(!child.wait().unwrap().success(), "the soft key exited early but successfully");
            return Err(err);
        }
        log.push(&line);
        if line.starts_with("keyward softkey: listening on unix:") {
            break;
        }
    }
    let out_log = log.clone();
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stdout.read_to_string(&mut rest);
        out_log.push(&rest);
    });
    Ok(SoftKey { child, socket })
}

impl SoftKey {
    fn key_arg(&self) -> String {
        format!("soft:unix:{}", self.socket.display())
    }

    /// Runs `keyward device ARGS --key soft:unix:…` with the given environment.
    fn device(&self, args: &[&str], env: &[(&str, &str)], log: &Transcript) -> Output {
        let mut cmd = base_command();
        cmd.arg("device").args(args).arg("--key").arg(self.key_arg());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("running keyward device");
        log.push(&String::from_utf8_lossy(&out.stdout));
        log.push(&String::from_utf8_lossy(&out.stderr));
        out
    }

    fn ok(&self, args: &[&str], env: &[(&str, &str)], log: &Transcript) -> String {
        let out = self.device(args, env, log);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{args:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        stdout
    }

    fn fails(&self, args: &[&str], env: &[(&str, &str)], log: &Transcript) -> String {
        let out = self.device(args, env, log);
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Creates a discoverable credential the way a provisioning run would (our CTAP client).
    fn make_resident_credential(&self, pin: &str) {
        let transport = SocketTransport::connect(&format!("unix:{}", self.socket.display())).unwrap();
        let mut client = Client::new(HidDevice::open(transport, Timeouts::default()).unwrap());
        let pin = SecretString::from(pin.to_owned());
        let token = client.get_pin_uv_auth_token(&pin, PERMISSION_MC, Some("login.microsoft.com")).unwrap();
        let req = MakeCredential {
            client_data_hash: [7; 32],
            rp_id: "login.microsoft.com".into(),
            user_id: b"alice-handle".to_vec(),
            user_name: Some("alice@contoso.example".into()),
            user_display_name: Some("Alice".into()),
            resident_key: true,
            cred_protect: Some(2),
            ..MakeCredential::default()
        };
        client.make_credential(&req, Some(&token)).unwrap();
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

fn line_with<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix:?} line in:\n{text}"))
}

#[test]
fn device_commands_manage_a_soft_key_that_keeps_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let log = Transcript::default();
    let key = start(dir.path(), true, PASSPHRASE, &log).unwrap();

    let info = key.ok(&["info"], &[], &log);
    assert!(line_with(&info, "AAGUID:").contains("6b657977-6172-642d-736f-66746b657921"), "{info}");
    assert!(line_with(&info, "versions:").contains("FIDO_2_1"));
    assert!(line_with(&info, "PIN:").contains("not set"));
    assert!(line_with(&info, "min PIN length:").ends_with(" 4"));
    assert!(line_with(&info, "remaining resident keys:").ends_with(" 25"));
    assert!(line_with(&info, "options:").contains("clientPin=no"));

    assert!(key.ok(&["set-pin"], &[("KEYWARD_NEW_PIN", PIN1)], &log).contains("PIN set"));
    let again = key.fails(&["set-pin"], &[("KEYWARD_NEW_PIN", PIN2)], &log);
    assert!(again.contains("already has a PIN") && again.contains("change-pin"), "{again}");
    assert!(line_with(&key.ok(&["info"], &[], &log), "PIN:").contains("set, 8 retries left"));

    let wrong = key.fails(&["change-pin"], &[("KEYWARD_PIN", WRONG_PIN), ("KEYWARD_NEW_PIN", PIN2)], &log);
    assert!(wrong.contains("wrong PIN") && wrong.contains("7 tries left"), "{wrong}");
    let changed = key.ok(&["change-pin"], &[("KEYWARD_PIN", PIN1), ("KEYWARD_NEW_PIN", PIN2)], &log);
    assert!(changed.contains("PIN changed"));
    assert!(line_with(&key.ok(&["info"], &[], &log), "PIN:").contains("8 retries left"));

    let pin2 = [("KEYWARD_PIN", PIN2)];
    let cfg = key.ok(&["config", "--min-pin-length", "8", "--rp-id", "login.microsoft.com"], &pin2, &log);
    assert!(line_with(&cfg, "min PIN length:").ends_with(" 8"), "{cfg}");
    let shrink = key.fails(&["config", "--min-pin-length", "6"], &pin2, &log);
    assert!(shrink.contains("CTAP status"), "{shrink}");

    let creds = key.ok(&["credentials"], &pin2, &log);
    assert!(creds.starts_with("0 discoverable credentials, room for 25 more"), "{creds}");
    key.make_resident_credential(PIN2);
    let creds = key.ok(&["credentials"], &pin2, &log);
    assert!(creds.contains("rp: login.microsoft.com"), "{creds}");
    assert!(line_with(&creds, "  user:").contains("alice@contoso.example (Alice)"), "{creds}");
    assert!(creds.contains("credProtect:   2 "), "{creds}");
    let id = line_with(&creds, "    credential id:").rsplit(' ').next().unwrap().to_owned();
    assert_eq!(id.len(), 43, "32-byte id in unpadded base64url: {id}");

    // Pull the plug: everything above must have reached the state file already.
    key.kill();
    let key = start(dir.path(), false, PASSPHRASE, &log).unwrap();
    let info = key.ok(&["info"], &[], &log);
    assert!(line_with(&info, "PIN:").contains("set, 8 retries left"), "{info}");
    assert!(line_with(&info, "min PIN length:").ends_with(" 8"), "{info}");
    assert!(line_with(&info, "remaining resident keys:").ends_with(" 24"), "{info}");
    let creds = key.ok(&["credentials"], &pin2, &log);
    assert!(creds.contains(&id), "{creds}");
    let deleted = key.ok(&["credentials", "--delete", &id], &pin2, &log);
    assert!(deleted.contains(&format!("deleted credential {id}")));
    assert!(key.ok(&["credentials"], &pin2, &log).starts_with("0 discoverable credentials"));

    // A forced PIN change blocks everything else until the PIN is changed.
    let forced = key.ok(&["config", "--force-pin-change"], &pin2, &log);
    assert!(line_with(&forced, "PIN change forced:").ends_with("yes"), "{forced}");
    let blocked = key.fails(&["credentials"], &pin2, &log);
    assert!(blocked.contains("keyward device change-pin"), "{blocked}");
    key.ok(&["change-pin"], &[("KEYWARD_PIN", PIN2), ("KEYWARD_NEW_PIN", PIN1)], &log);
    assert!(line_with(&key.ok(&["info"], &[], &log), "PIN change forced:").ends_with("no"));
    key.ok(&["credentials"], &[("KEYWARD_PIN", PIN1)], &log);

    // A freshly started soft key is a freshly inserted key: reset is allowed right away.
    key.kill();
    let key = start(dir.path(), false, PASSPHRASE, &log).unwrap();
    let not_confirmed = key.fails(&["reset"], &[], &log);
    assert!(not_confirmed.contains("--yes"), "{not_confirmed}");
    assert!(key.ok(&["reset", "--yes"], &[], &log).contains("key reset"));
    key.kill();
    let key = start(dir.path(), false, PASSPHRASE, &log).unwrap();
    let info = key.ok(&["info"], &[], &log);
    assert!(line_with(&info, "PIN:").contains("not set"), "{info}");
    assert!(line_with(&info, "min PIN length:").ends_with(" 4"), "{info}");
    drop(key);

    log.assert_no_pin();
}

#[test]
fn wrong_passphrase_is_refused_and_the_state_file_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let log = Transcript::default();
    let key = start(dir.path(), true, PASSPHRASE, &log).unwrap();
    key.ok(&["set-pin"], &[("KEYWARD_NEW_PIN", PIN1)], &log);
    key.kill();
    let before = std::fs::read(dir.path().join("key.kws")).unwrap();

    let err = start(dir.path(), false, "not the passphrase", &log).err().expect("must not start");
    assert!(err.contains("wrong passphrase") && err.contains("KEYWARD_SOFTKEY_PASSPHRASE"), "{err}");
    assert_eq!(std::fs::read(dir.path().join("key.kws")).unwrap(), before);

    let key = start(dir.path(), false, PASSPHRASE, &log).unwrap();
    assert!(line_with(&key.ok(&["info"], &[], &log), "PIN:").contains("set, 8 retries left"));
    drop(key);
    log.assert_no_pin();
}

#[test]
fn damaged_or_missing_state_files_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let log = Transcript::default();
    let missing = start(dir.path(), false, PASSPHRASE, &log).err().expect("no file yet");
    assert!(missing.contains("--init"), "{missing}");

    start(dir.path(), true, PASSPHRASE, &log).unwrap().kill();
    let again = start(dir.path(), true, PASSPHRASE, &log).err().expect("--init must not overwrite");
    assert!(again.contains("already exists"), "{again}");

    let path = dir.path().join("key.kws");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
    let damaged = start(dir.path(), false, PASSPHRASE, &log).err().expect("truncated file");
    assert!(damaged.contains("damaged") && damaged.contains("truncated"), "{damaged}");
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_the_soft_key_and_removes_its_socket() {
    let dir = tempfile::tempdir().unwrap();
    let log = Transcript::default();
    let mut key = start(dir.path(), true, PASSPHRASE, &log).unwrap();
    assert!(key.socket.exists());
    let status = Command::new("kill").arg("-INT").arg(key.child.id().to_string()).status().unwrap();
    assert!(status.success());
    let exit = key.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(!key.socket.exists(), "the socket file is removed on Ctrl-C");
}

#[test]
fn device_commands_explain_unusable_keys() {
    let run = |args: &[&str]| {
        let out = base_command().arg("device").args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let gone = run(&["info", "--key", "soft:unix:/nonexistent/keyward.sock"]);
    assert!(gone.contains("keyward softkey serve"), "{gone}");
    let bad = run(&["info", "--key", "usb0"]);
    assert!(bad.contains("soft:unix:PATH"), "{bad}");
    let serial = run(&["info", "--key", "soft:unix:/tmp/x.sock", "--serial", "123"]);
    assert!(serial.contains("--serial only applies to --key hid"), "{serial}");
    // No USB key is plugged into a test machine: the answer must say what to check.
    let usb = run(&["info", "--key", "hid", "--serial", "no-such-serial"]);
    assert!(usb.contains("USB"), "{usb}");
}

//! The built `keyward` binary end to end: `keyward softkey serve` on a unix socket with an
//! encrypted state file, driven by `keyward device …` the way an operator would, including
//! killing and restarting the soft key. Every test also checks that no PIN ever shows up in
//! any output, with `KEYWARD_LOG=trace`.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use keyward_ctap::client::PERMISSION_MC;
use keyward_ctap::{Attestation, Client, HidDevice, MakeCredential, SocketTransport, Timeouts};
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
    start_with(dir, init, passphrase, &[], log)
}

/// [`start`] with extra `softkey serve` arguments.
fn start_with(
    dir: &Path,
    init: bool,
    passphrase: &str,
    extra: &[&str],
    log: &Transcript,
) -> Result<SoftKey, String> {
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
    cmd.args(extra);
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
    fn make_resident_credential(&self, pin: &str) -> Attestation {
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
        client.make_credential(&req, Some(&token)).unwrap()
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

/// The statement's x5c certificates and signature.
fn packed_statement(att: &Attestation) -> (Vec<Vec<u8>>, Vec<u8>) {
    use ciborium::value::Value;
    let stmt: Value = ciborium::de::from_reader(att.att_stmt_raw()).unwrap();
    let map = stmt.as_map().unwrap();
    let get = |k: &str| map.iter().find(|(key, _)| key.as_text() == Some(k)).map(|(_, v)| v.clone()).unwrap();
    let x5c = get("x5c").as_array().unwrap().iter().map(|c| c.as_bytes().unwrap().clone()).collect();
    (x5c, get("sig").as_bytes().unwrap().clone())
}

/// Checks a packed statement: leaf signed by `ca_pem`, AAGUID extension, signature by the leaf.
fn assert_chains_to(att: &Attestation, ca_pem: &str, aaguid: &[u8; 16]) {
    use p256::ecdsa::signature::Verifier;
    use p256::pkcs8::DecodePublicKey;
    use x509_parser::prelude::*;
    assert_eq!(att.fmt, "packed");
    let (x5c, sig) = packed_statement(att);
    let (_, pem) = x509_parser::pem::parse_x509_pem(ca_pem.as_bytes()).unwrap();
    let (_, ca) = X509Certificate::from_der(&pem.contents).unwrap();
    let (_, leaf) = X509Certificate::from_der(&x5c[0]).unwrap();
    leaf.verify_signature(Some(ca.public_key())).expect("the batch certificate is signed by the CA");
    let ext = leaf.extensions().iter().find(|e| e.oid.to_id_string() == "1.3.6.1.4.1.45724.1.1.4").unwrap();
    assert_eq!(&ext.value[2..], aaguid);
    let auth_data = att.auth_data.as_slice();
    assert_eq!(&auth_data[37..53], aaguid, "authenticator data carries the same AAGUID");
    let key = p256::ecdsa::VerifyingKey::from_public_key_der(leaf.public_key().raw).unwrap();
    let sig = p256::ecdsa::Signature::from_der(&sig).unwrap();
    key.verify(&[auth_data, &[7u8; 32][..]].concat(), &sig).expect("statement signed by the batch key");
}

#[test]
fn packed_attestation_chains_to_the_generated_or_supplied_ca() {
    let log = Transcript::default();
    let aaguid = "0a1b2c3d-4e5f-4061-8273-8495a6b7c8d9";
    let aaguid_bytes = *uuid::Uuid::parse_str(aaguid).unwrap().as_bytes();

    // Generated CA, its certificate written for the verifier.
    let dir = tempfile::tempdir().unwrap();
    let ca_out = dir.path().join("ca.pem");
    let ca_arg = ca_out.to_str().unwrap();
    let key =
        start_with(dir.path(), true, PASSPHRASE, &["--aaguid", aaguid, "--write-ca-cert", ca_arg], &log)
            .unwrap();
    key.ok(&["set-pin"], &[("KEYWARD_NEW_PIN", PIN1)], &log);
    let att = key.make_resident_credential(PIN1);
    assert_chains_to(&att, &std::fs::read_to_string(&ca_out).unwrap(), &aaguid_bytes);
    // The batch key and chain live in the state file: same chain after a restart.
    key.kill();
    let key = start(dir.path(), false, PASSPHRASE, &log).unwrap();
    let again = key.make_resident_credential(PIN1);
    assert_eq!(packed_statement(&again).0, packed_statement(&att).0);
    drop(key);

    // The operator's own CA.
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "Contoso Attestation CA");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = params.self_signed(&ca_key).unwrap();
    std::fs::write(dir.path().join("ca.crt"), ca_cert.pem()).unwrap();
    std::fs::write(dir.path().join("ca.key"), ca_key.serialize_pem()).unwrap();
    let cert_arg = dir.path().join("ca.crt");
    let key_arg = dir.path().join("ca.key");
    let args =
        ["--aaguid", aaguid, "--ca-cert", cert_arg.to_str().unwrap(), "--ca-key", key_arg.to_str().unwrap()];
    let key = start_with(dir.path(), true, PASSPHRASE, &args, &log).unwrap();
    key.ok(&["set-pin"], &[("KEYWARD_NEW_PIN", PIN1)], &log);
    assert_chains_to(&key.make_resident_credential(PIN1), &ca_cert.pem(), &aaguid_bytes);
    drop(key);

    // A key file that is not a key is refused before anything listens.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.crt"), ca_cert.pem()).unwrap();
    std::fs::write(dir.path().join("ca.key"), "not a key").unwrap();
    let bad_key = dir.path().join("ca.key");
    let bad = ["--ca-cert", cert_arg.to_str().unwrap(), "--ca-key", bad_key.to_str().unwrap()];
    let err = start_with(dir.path(), true, PASSPHRASE, &bad, &log).err().expect("bad CA key");
    assert!(err.contains("--ca-key"), "{err}");
    assert!(!dir.path().join("key.kws").exists(), "no state file for a key that never started");
    log.assert_no_pin();
}

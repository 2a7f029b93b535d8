//! `keyward bulk provision` as an operator runs it: the built binary against the emulator and a
//! Keyward server (the testkit's stack). Malformed CSVs are refused with the line named (before any server
//! is contacted); a soft-key run killed with SIGKILL part-way and resumed with `--resume`
//! provisions every person exactly once in the emulated Entra, and leaves no vault without a
//! registered passkey.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keyward_core::Role;
use keyward_sim::seed::SeedUser;
use keyward_testkit::seed::numbered_user;
use keyward_testkit::sim;
use keyward_testkit::stack::StackOptions;
use serde_json::{Value, json};

const PASSPHRASE: &str = "bulk test vault passphrase";

fn keyward(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyward"));
    cmd.env_remove("KEYWARD_TOKEN")
        .env_remove("KEYWARD_SERVER")
        .env("XDG_CONFIG_HOME", home)
        .env("KEYWARD_LOG", "warn")
        .env("KEYWARD_SOFTKEY_PASSPHRASE", PASSPHRASE);
    cmd
}

fn upn(i: usize) -> String {
    format!("bulk.user{i:03}@contoso.onmicrosoft.com")
}

/// The testkit's stack whose tenant has `users` extra people and 20 ms of Graph latency, the
/// connector set and people synced.
struct Stack(keyward_testkit::stack::Stack);

impl std::ops::Deref for Stack {
    type Target = keyward_testkit::stack::Stack;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Stack {
    fn start(users: usize) -> Self {
        let mut options = StackOptions::sqlite();
        options.sim.latency = Duration::from_millis(20);
        options.seed = Box::new(move |seed| {
            seed.users.extend((0..users).map(|i| SeedUser {
                user_principal_name: upn(i),
                display_name: format!("Bulk User {i}"),
                ..numbered_user(i)
            }));
        });
        let stack = Self(keyward_testkit::stack::Stack::start_blocking(options));
        let (status, body) = stack.call("POST", "/api/v1/people/sync", Some(json!({})));
        assert_eq!(status, 200, "{body}");
        stack
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.block_on(self.0.call(Role::Admin, method, path, body))
    }

    /// FIDO2 methods the emulated Entra holds for each of `upns`, read straight from its Graph API.
    fn entra_methods(&self, upns: &[String]) -> Vec<usize> {
        self.block_on(async {
            let http = reqwest::Client::new();
            let token = sim::app_token(&http, &self.sim.base_url).await;
            let mut counts = Vec::new();
            for upn in upns {
                counts.push(sim::fido2_methods(&http, &self.sim.base_url, &token, upn).await.len());
            }
            counts
        })
    }

    fn bulk(&self) -> Command {
        let mut cmd = keyward(&self.dir);
        cmd.env("KEYWARD_SERVER", &self.url)
            .env("KEYWARD_TOKEN", self.admin_token())
            .args(["bulk", "provision"]);
        cmd
    }
}

#[test]
fn malformed_csvs_are_refused_with_the_line_named() {
    let dir = std::env::temp_dir().join(format!("keyward-bulk-csv-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut garbage = vec![0u8; 10 * 1024 * 1024];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut garbage);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("wrong header", b"name,serial\nadele@contoso.com,1\n".to_vec(), "line 1: the header"),
        (
            "bad encoding",
            b"upn\nadele@contoso.com\nb\xE9a@contoso.com\n".to_vec(),
            "line 3: the file is not UTF-8",
        ),
        ("empty", Vec::new(), "the CSV file is empty"),
        ("10 MB garbage", garbage, "line 1:"),
        (
            "too-long field",
            format!("upn,serial\na@contoso.com,{}\n", "9".repeat(300)).into_bytes(),
            "line 2: the `serial` field",
        ),
    ];
    for (name, bytes, want) in cases {
        let path = dir.join("people.csv");
        std::fs::write(&path, &bytes).unwrap();
        let started = Instant::now();
        // No server runs at this address: the CSV is refused before any call.
        let out = keyward(&dir)
            .env("KEYWARD_SERVER", "http://127.0.0.1:9")
            .env("KEYWARD_TOKEN", "kw_unused")
            .args(["bulk", "provision", "--key", "soft:/nonexistent"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: accepted");
        assert!(stderr.contains(want), "{name}: {stderr}");
        assert!(!stderr.contains("cannot reach"), "{name}: the server was contacted: {stderr}");
        // Only a hang check (a 10 MB file must not be read forever); generous because the whole
        // suite runs at once on two cores.
        assert!(started.elapsed() < Duration::from_secs(60), "{name}: took {:?}", started.elapsed());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn job_status(stack: &Stack, job: &str) -> Value {
    let (status, body) = stack.call("GET", &format!("/api/v1/jobs/{job}"), None);
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn a_killed_soft_key_run_resumes_and_provisions_everyone_exactly_once() {
    const USERS: usize = 40;
    let stack = Stack::start(USERS);
    let keys = stack.dir.join("keys");
    let mut csv = String::from("\u{feff}UserPrincipalName,Serial,displayName\n");
    for i in 0..USERS {
        csv.push_str(&format!("{},SOFT-{i:03},\"Bulk, passkey {i}\"\n", upn(i)));
    }
    csv.push_str(&format!("{},SOFT-DUP,\n", upn(3)));
    let csv_path = stack.dir.join("people.csv");
    std::fs::write(&csv_path, csv).unwrap();
    // An earlier passkey: that person is skipped.
    let key_arg = format!("soft:{}", keys.display());
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();

    let mut first = stack.bulk();
    first
        .args(["--key", &key_arg, "--concurrency", "6", "--lease-secs", "3", "--pin-recipient", &recipient])
        .arg(&csv_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = first.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let job = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("job ").and_then(|r| r.split(':').next()).map(str::to_owned))
        .expect("the job id is printed");
    std::thread::spawn(move || for _ in lines {});
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = job_status(&stack, &job);
        if s["done"].as_i64().unwrap() >= 10 {
            break;
        }
        assert!(Instant::now() < deadline, "no progress: {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL: no cleanup, rows stay leased.
    child.wait().unwrap();
    let killed = job_status(&stack, &job);
    assert!(killed["pending"].as_i64().unwrap() > 0, "{killed}");
    assert!(killed["running"].as_i64().unwrap() > 0, "rows were in flight when killed: {killed}");

    let report = stack.dir.join("report.csv");
    let out = stack
        .bulk()
        .args(["--key", &key_arg, "--concurrency", "6", "--lease-secs", "3", "--resume", &job])
        .args(["--pin-recipient", &recipient, "--report"])
        .arg(&report)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let done = job_status(&stack, &job);
    assert_eq!(done["done"], json!(USERS + 1), "{done}");
    assert_eq!(done["failed"], json!(0), "{done}");

    // Entra: every person exactly one passkey.
    let upns: Vec<String> = (0..USERS).map(upn).collect();
    assert_eq!(stack.entra_methods(&upns), vec![1; USERS]);
    // Keyward: one registered passkey each, and a vault for each of them and nobody else.
    let (_, passkeys) = stack.call("GET", "/api/v1/passkeys?state=registered&limit=1000", None);
    let passkeys = passkeys["items"].clone();
    assert_eq!(passkeys.as_array().unwrap().len(), USERS, "{passkeys}");
    let mut vaults: Vec<String> = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".softkey"))
        .collect();
    vaults.sort();
    let want: Vec<String> = upns.iter().map(|u| format!("{u}.softkey")).collect();
    assert_eq!(vaults, want);
    // Each vault opens with its PIN and holds exactly the one credential Keyward registered.
    let registered: Vec<String> = passkeys
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["credential_id"].as_str().unwrap().to_owned())
        .collect();
    for upn in &upns {
        let (pin, credentials) = vault_credentials(&keys, upn, &identity);
        assert!(!text_contains_pin(&stack.dir.join("report.csv"), &pin), "{upn}: PIN in the report");
        assert_eq!(credentials.len(), 1, "{upn}: {credentials:?}");
        assert!(registered.contains(&credentials[0]), "{upn}: the credential on the key is not registered");
    }

    // The report: a line per CSV row, the duplicate skipped, no PIN anywhere.
    let text = std::fs::read_to_string(&report).unwrap();
    assert_eq!(text.lines().count(), USERS + 2, "{text}");
    assert!(
        text.lines().any(|l| l.starts_with(&format!("{},{},SOFT-DUP,done,skipped", USERS + 2, upn(3)))),
        "{text}"
    );
    assert_eq!(
        text.matches(",done,provisioned,").count() + text.matches(",done,already-done,").count(),
        USERS
    );

    // Rows in flight at the kill were taken over by the resumed run.
    assert!(
        text.lines().skip(1).any(|l| l.rsplit(',').next().unwrap().parse::<u32>().unwrap() >= 2),
        "{text}"
    );

    // Running it again changes nothing: the job is finished.
    let again = stack.bulk().args(["--key", &key_arg, "--resume", &job]).output().unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(stack.entra_methods(&upns), vec![1; USERS]);
}

#[test]
fn people_who_already_have_a_passkey_or_are_unknown_are_not_provisioned() {
    let stack = Stack::start(3);
    let keys = stack.dir.join("keys");
    let key_arg = format!("soft:{}", keys.display());
    let csv_path = stack.dir.join("first.csv");
    std::fs::write(&csv_path, format!("upn\n{}\n", upn(0))).unwrap();
    let out = stack.bulk().args(["--key", &key_arg]).arg(&csv_path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let csv_path = stack.dir.join("second.csv");
    std::fs::write(&csv_path, format!("upn\n{}\n{}\nnobody@contoso.onmicrosoft.com\n", upn(0), upn(1)))
        .unwrap();
    let report = stack.dir.join("second-report.csv");
    let out =
        stack.bulk().args(["--key", &key_arg]).arg(&csv_path).arg("--report").arg(&report).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the unknown person must fail the run: {stdout}");
    assert!(stdout.contains("already has a registered passkey"), "{stdout}");
    assert!(stdout.contains("sync people from Entra first"), "{stdout}");
    assert!(stderr.contains("--resume"), "{stderr}");
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(text.contains(&format!("2,{},,done,skipped", upn(0))), "{text}");
    assert!(text.contains(&format!("3,{},,done,provisioned", upn(1))), "{text}");
    assert!(text.contains("4,nobody@contoso.onmicrosoft.com,,failed,refused"), "{text}");
    assert_eq!(stack.entra_methods(&[upn(0), upn(1), upn(2)]), vec![1, 1, 0]);
}

fn text_contains_pin(path: &Path, pin: &str) -> bool {
    std::fs::read_to_string(path)
        .map(|t| t.contains(&format!(",{pin},")) || t.contains(&format!(",{pin}\n")))
        .unwrap_or(false)
}

/// Decrypts the person's PIN file, opens their vault and lists Entra credentials on it
/// (credential management, with the PIN): returns the PIN and the credential ids (base64url).
fn vault_credentials(keys: &Path, upn: &str, identity: &age::x25519::Identity) -> (String, Vec<String>) {
    use keyward_ctap::client::PERMISSION_CM;
    use secrecy::SecretString;
    use sha2::Digest;
    let sealed = std::fs::read(keys.join(format!("{upn}.pin.age"))).unwrap();
    let line = String::from_utf8(age::decrypt(identity, &sealed).unwrap()).unwrap();
    let (who, pin) = line.trim().split_once(',').unwrap();
    assert_eq!(who, upn);
    let (_, authenticator) = keyward_softkey::state::StateFile::open(
        &keys.join(format!("{upn}.softkey")),
        &SecretString::from(PASSPHRASE.to_owned()),
        keyward_softkey::Config::default(),
    )
    .unwrap();
    let socket = std::env::temp_dir().join(format!("kwbt-{}.sock", uuid::Uuid::new_v4().simple()));
    let listen = format!("unix:{}", socket.display());
    let _served = keyward_softkey::serve_authenticator(&listen, authenticator, None).unwrap();
    let transport = keyward_ctap::socket::SocketTransport::connect(&listen).unwrap();
    let mut client = keyward_ctap::Client::new(
        keyward_ctap::HidDevice::open(transport, keyward_ctap::Timeouts::default()).unwrap(),
    );
    let pin = SecretString::from(pin.to_owned());
    let token = client.get_pin_uv_auth_token(&pin, PERMISSION_CM, None).unwrap();
    let hash = sha2::Sha256::digest(keyward_webauthn::ENTRA_RP_ID.as_bytes());
    let ids = client
        .enumerate_credentials(&token, &hash)
        .map(|list| list.into_iter().map(|c| keyward_webauthn::b64::encode(&c.id)).collect())
        .unwrap_or_default();
    (secrecy::ExposeSecret::expose_secret(&pin).to_owned(), ids)
}

#[test]
fn ctrl_c_says_how_to_resume_and_the_resumed_run_finishes_the_job() {
    const USERS: usize = 8;
    let stack = Stack::start(USERS);
    let key_arg = format!("soft:{}", stack.dir.join("keys").display());
    let csv_path = stack.dir.join("people.csv");
    let csv: String =
        std::iter::once("upn\n".to_owned()).chain((0..USERS).map(|i| format!("{}\n", upn(i)))).collect();
    std::fs::write(&csv_path, csv).unwrap();
    // Two rows a second: still running when interrupted.
    let mut child = stack
        .bulk()
        .args(["--key", &key_arg, "--write-quota", "2", "--lease-secs", "2"])
        .arg(&csv_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let job = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("job ").and_then(|r| r.split(':').next()).map(str::to_owned))
        .unwrap();
    std::thread::spawn(move || for _ in lines {});
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("--resume {job}")), "{stderr}");
    let left = job_status(&stack, &job);
    assert!(left["pending"].as_i64().unwrap() > 0, "{left}");

    let out =
        stack.bulk().args(["--key", &key_arg, "--write-quota", "0", "--resume", &job]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(job_status(&stack, &job)["done"], json!(USERS));
    let upns: Vec<String> = (0..USERS).map(upn).collect();
    assert_eq!(stack.entra_methods(&upns), vec![1; USERS]);
}

#[test]
fn three_hundred_soft_key_users_are_provisioned_in_one_run() {
    const N: usize = 300;
    let stack = Stack::start(N);
    let keys = stack.dir.join("keys");
    let key_arg = format!("soft:{}", keys.display());
    let csv_path = stack.dir.join("all.csv");
    let mut csv = String::from("userPrincipalName,displayName\n");
    for i in 0..N {
        csv.push_str(&format!("{},Bulk User {i}\n", upn(i)));
    }
    std::fs::write(&csv_path, csv).unwrap();
    let report = stack.dir.join("all-report.csv");
    let out = stack
        .bulk()
        .args(["--key", &key_arg, "--concurrency", "16", "--write-quota", "0"])
        .arg(&csv_path)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let upns: Vec<String> = (0..N).map(upn).collect();
    assert_eq!(stack.entra_methods(&upns), vec![1; N], "each user has exactly one passkey in Entra");
    let text = std::fs::read_to_string(&report).unwrap();
    assert_eq!(text.lines().filter(|l| l.contains(",done,provisioned")).count(), N, "{text}");
    let vaults = std::fs::read_dir(&keys)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "softkey"))
        .count();
    assert_eq!(vaults, N);
}

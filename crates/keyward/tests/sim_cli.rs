//! `keyward sim` as a user runs it: the built binary, its output and its errors.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn keyward() -> Command {
    Command::new(env!("CARGO_BIN_EXE_keyward"))
}

fn temp_file(name: &str, contents: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("keyward-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn example_seed_is_valid_json_that_the_sim_accepts() {
    let out = keyward().args(["sim", "--example-seed"]).output().unwrap();
    assert!(out.status.success());
    let seed: keyward_sim::seed::Seed = serde_json::from_slice(&out.stdout).unwrap();
    seed.validate().unwrap();
    assert!(seed.comment.unwrap().contains("attestationRootsPem"), "the example documents its fields");
}

#[test]
fn sim_prints_its_urls_and_serves_the_tenant() {
    let seed = temp_file("seed.json", keyward_sim::seed::EXAMPLE_SEED);
    let mut child = keyward()
        .args(["sim", "--listen", "127.0.0.1:0", "--seed"])
        .arg(&seed)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut authority = None;
    // The reader lives until the sim is killed: dropping it closes the pipe, and the sim's next
    // line ("press Ctrl-C to stop") would then fail and end it before the request below.
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("authority: ") {
            authority = Some(url.trim().to_owned());
        }
        if line.starts_with("graph:") {
            break;
        }
    }
    let authority = authority.expect("the sim prints its authority URL");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let discovery: serde_json::Value = runtime.block_on(async {
        reqwest::get(format!("{authority}/v2.0/.well-known/openid-configuration"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    child.kill().unwrap();
    let _ = child.wait();
    drop(lines);
    assert!(discovery["token_endpoint"].as_str().unwrap().starts_with(&authority));
}

#[test]
fn bad_input_gets_an_error_that_says_what_to_do() {
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--seed".into(), temp_file("bad.json", "{\"tenantId\": 1}").display().to_string()],
            "--example-seed",
        ),
        (vec!["--seed".into(), "/nonexistent/seed.json".into()], "cannot read seed"),
        (vec!["--throttle".into(), "writes=fast".into()], "COUNT/SECONDS"),
        (vec!["--faults".into(), "503=7".into()], "between 0 and 1"),
    ];
    for (args, expected) in cases {
        let out = keyward().arg("sim").args(&args).args(["--listen", "127.0.0.1:0"]).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

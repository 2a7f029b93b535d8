//! The crate boundaries of docs/architecture.md, checked on every test run: the emulator
//! shares nothing with the other crates except the wire types of `keyward-webauthn`, so it can
//! catch the connector's mistakes instead of repeating them; the server's HTTP layer reaches the
//! database only through the service; the operator's CLI talks to the server only through the
//! Core API's wire types, never its code.

use std::collections::BTreeMap;
use std::path::Path;

/// Workspace crates each crate's `[dependencies]` (not dev-dependencies) names.
fn workspace_dependencies() -> BTreeMap<String, Vec<String>> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&crates).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else { continue };
        let name = text
            .lines()
            .find_map(|l| l.strip_prefix("name = \""))
            .and_then(|l| l.strip_suffix('"'))
            .unwrap()
            .to_owned();
        let mut section = String::new();
        let mut deps = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                section = line.to_owned();
            } else if section == "[dependencies]" && line.starts_with("keyward") {
                deps.push(line.split(['.', ' ', '=']).next().unwrap().to_owned());
            }
        }
        out.insert(name, deps);
    }
    out
}

#[test]
fn the_emulator_shares_only_wire_types() {
    let deps = workspace_dependencies();
    assert_eq!(deps["keyward-sim"], ["keyward-webauthn"], "keyward-sim may depend only on the wire types");
    // The binary runs the emulator (`keyward sim`); the testkit starts it for tests only.
    for (name, uses) in &deps {
        if name != "keyward" && name != "keyward-testkit" {
            assert!(!uses.iter().any(|d| d == "keyward-sim"), "{name} depends on keyward-sim");
        }
    }
}

#[test]
fn the_testkit_is_only_a_dev_dependency() {
    for (name, uses) in &workspace_dependencies() {
        assert!(
            !uses.iter().any(|d| d == "keyward-testkit"),
            "{name} depends on keyward-testkit: take it under [dev-dependencies] only"
        );
    }
}

#[test]
fn the_software_authenticator_does_not_share_code_with_the_client() {
    let deps = workspace_dependencies();
    if let Some(softkey) = deps.get("keyward-softkey") {
        assert!(!softkey.iter().any(|d| d == "keyward-ctap"), "keyward-softkey must not use the CTAP client");
    }
}

#[test]
fn the_http_layer_reaches_the_database_only_through_the_service() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../keyward-server/src");
    let mut files = vec![src.join("auth.rs"), src.join("error.rs")];
    for entry in std::fs::read_dir(src.join("api")).unwrap() {
        files.push(entry.unwrap().path());
    }
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("keyward_store"), "{} uses the store crate", file.display());
    }
}

#[test]
fn the_wire_types_depend_on_no_logic() {
    let deps = workspace_dependencies();
    assert_eq!(deps["keyward-proto"], ["keyward-webauthn"], "keyward-proto holds serde types only");
}

#[test]
fn the_operator_cli_talks_to_the_server_only_through_the_api() {
    let deps = workspace_dependencies();
    for forbidden in ["keyward-server", "keyward-store", "keyward-sim"] {
        assert!(!deps["keyward-cli"].iter().any(|d| d == forbidden), "keyward-cli depends on {forbidden}");
    }
    assert!(deps["keyward-cli"].iter().any(|d| d == "keyward-proto"), "keyward-cli speaks keyward-proto");
}

/// The binary must run on a machine without libudev: hidapi uses its pure-Rust hidraw backend
/// on Linux (root `Cargo.toml`), and a dependency that brought the C backend back would show
/// up here as a dynamic link to `libudev.so`.
#[cfg(target_os = "linux")]
#[test]
fn the_binary_does_not_link_libudev() {
    let binary = env!("CARGO_BIN_EXE_keyward");
    let out = std::process::Command::new("ldd")
        .arg(binary)
        .output()
        .expect("cannot run ldd (part of Debian's libc-bin): install it to run this test");
    let libraries = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ldd {binary} failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(
        libraries.contains("libc.so"),
        "ldd's output lists no libc; is this a dynamic binary?\n{libraries}"
    );
    assert!(
        !libraries.contains("libudev"),
        "{binary} links libudev; keep hidapi on its `linux-native-basic-udev` backend:\n{libraries}"
    );
}

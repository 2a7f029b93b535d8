//! The crate boundaries of docs/architecture.md §2, checked on every test run: the emulator
//! shares nothing with the other crates except the wire types of `keyward-webauthn`, so
//! it can catch the connector's mistakes instead of repeating them.

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
    for (name, uses) in &deps {
        if name != "keyward" {
            assert!(!uses.iter().any(|d| d == "keyward-sim"), "{name} depends on keyward-sim");
        }
    }
}

#[test]
fn the_software_authenticator_does_not_share_code_with_the_client() {
    let deps = workspace_dependencies();
    if let Some(softkey) = deps.get("keyward-softkey") {
        assert!(!softkey.iter().any(|d| d == "keyward-ctap"), "keyward-softkey must not use the CTAP client");
    }
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

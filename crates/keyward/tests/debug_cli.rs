//! `keyward debug panic`, the hidden way to force a panic: it must panic with a backtrace that
//! names Keyward's own source file and line, and stay out of `--help`.

use std::process::Command;

fn keyward() -> Command {
    Command::new(env!("CARGO_BIN_EXE_keyward"))
}

#[test]
fn debug_panic_backtrace_names_keywards_file_and_line() {
    let out = keyward().args(["debug", "panic"]).env("RUST_BACKTRACE", "1").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(101), "a panic exits with 101:\n{stderr}");
    assert!(stderr.contains("deliberate panic from `keyward debug panic`"), "{stderr}");
    // The "panicked at FILE:LINE" header comes from the panic's location, compiled into the
    // binary; only the frames' "at FILE:LINE" lines come from the debug information.
    let frame = stderr
        .lines()
        .map(str::trim_start)
        .filter_map(|l| l.strip_prefix("at "))
        .find(|l| l.contains("src/commands/debug.rs:"));
    assert!(frame.is_some(), "no backtrace frame names src/commands/debug.rs:LINE:\n{stderr}");
}

#[test]
fn debug_is_hidden_from_help() {
    let out = keyward().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("provision"), "{help}");
    assert!(!help.lines().any(|l| l.trim_start().starts_with("debug")), "{help}");
}

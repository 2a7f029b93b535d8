//! `keyward demo`, as the README's first command runs it (here with `--no-wait` so it ends after
//! the report): every demo person gets a registered passkey and signs in with it once at the
//! emulated tenant, the report says so, and the audit chain verifies.

use std::process::Command;

#[test]
fn the_demo_provisions_everyone_and_reports_full_coverage_of_its_people() {
    let out = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(["demo", "--no-wait", "--people", "12", "--listen", "127.0.0.1:0"])
        .env("KEYWARD_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    // 12 demo people plus the example tenant's four enabled accounts (one a guest), who are not provisioned.
    assert!(stdout.contains("passkey coverage: 12 of 16 enabled people"), "{stdout}");
    assert!(stdout.contains("Engineering"), "coverage by group is missing: {stdout}");
    assert!(stdout.contains("Keyward Soft Key (demo)"), "coverage by model is missing: {stdout}");
    assert!(stdout.contains("chain verified"), "{stdout}");
    assert!(stdout.contains("KEYWARD_SERVER=http://127.0.0.1:"), "{stdout}");
    assert!(
        stderr.contains("signed in at the emulated tenant with their new passkey: 12 of 12 people"),
        "each demo person signs in once with their passkey: {stderr}"
    );
}

//! Cross-check: Yubico's python-fido2 (an independent CTAP client) drives the soft key over a
//! unix socket via `python/ctap_crosscheck.py`. Our own client and soft key could share a
//! misreading of the spec; a third implementation cannot share it.
//!
//! The interpreter comes from `KEYWARD_PYTHON`, else the workspace venv (`.venv/bin/python`).
//! If neither exists the test fails (it never skips silently): run `.ci/run`, or create the venv.

use std::path::{Path, PathBuf};
use std::process::Command;

use keyward_softkey::{Config, serve};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("KEYWARD_PYTHON") {
        let p = PathBuf::from(p);
        assert!(p.exists(), "KEYWARD_PYTHON={} does not exist; point it at a python with fido2", p.display());
        return p;
    }
    let venv = workspace().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "no python for the python-fido2 cross-check: set KEYWARD_PYTHON, run .ci/run, or create the venv \
         with `python3 -m venv .venv && .venv/bin/pip install -r python/requirements.txt` in {}",
        workspace().display()
    );
    venv
}

#[test]
fn python_fido2_drives_the_soft_key() {
    let python = python();
    let dir = std::env::temp_dir().join(format!("keyward-softkey-py-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let listen = format!("unix:{}", dir.join("key.sock").display());
    let served = serve(&listen, Config::default()).unwrap();
    let out = Command::new(&python)
        .arg(workspace().join("python/ctap_crosscheck.py"))
        .arg(served.address())
        .output()
        .expect("running the python interpreter");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "ctap_crosscheck.py failed ({}):\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("crosscheck passed"), "{stdout}");
}

//! The Python interpreter the cross-checks run (python-fido2, py_webauthn, MSAL): `KEYWARD_PYTHON`,
//! else the workspace venv. A test that needs it fails, never skips, when neither exists.

use std::path::{Path, PathBuf};

/// The workspace root (this crate is `crates/keyward-testkit`).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The interpreter: `KEYWARD_PYTHON`, else `.venv/bin/python`; panics saying how to get one.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("KEYWARD_PYTHON") {
        let p = PathBuf::from(p);
        assert!(p.exists(), "KEYWARD_PYTHON={} does not exist; point it at the venv's python", p.display());
        return p;
    }
    let venv = workspace().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "no python for the cross-checks: set KEYWARD_PYTHON, run scripts/test --setup-only, or create the venv \
         with `python3 -m venv .venv && .venv/bin/pip install -r python/requirements.txt` in {}",
        workspace().display()
    );
    venv
}

/// A script in the workspace's `python/` directory.
pub fn script(name: &str) -> PathBuf {
    workspace().join("python").join(name)
}

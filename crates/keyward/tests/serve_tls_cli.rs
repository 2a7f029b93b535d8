//! `keyward serve` as a process over TLS, with certificates from a private test CA: the CLI
//! trusting that CA (`KEYWARD_CA_CERT`) talks to it over `https://127.0.0.1`, and not without it;
//! a non-loopback listen address without TLS is refused unless `--insecure-http`, which warns.

mod support;

use std::process::Command;

use keyward_testkit::tls::TlsFiles;
use support::{isolated, keyward, start};

fn config_args(cmd: &mut Command, dir: &std::path::Path) {
    cmd.arg("--data-dir").arg(dir.join("data")).arg("--config").arg(dir.join("none.toml"));
}

#[test]
fn the_cli_talks_to_a_tls_server_that_its_ca_vouches_for() {
    let dir = tempfile::tempdir().unwrap();
    let files = TlsFiles::write(dir.path());
    let mut create = keyward();
    create.arg("admin");
    config_args(&mut create, dir.path());
    let out = create.args(["token", "create", "--name", "ops", "--role", "auditor"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    let mut serve = keyward();
    serve.args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"]).arg(&files.server_cert);
    serve.arg("--tls-key").arg(&files.server_key).arg("--client-ca").arg(&files.ca);
    config_args(&mut serve, dir.path());
    let (_server, url) = start(serve, "Keyward server listening on");
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let verify = |ca: Option<&std::path::Path>| {
        let mut cmd = isolated(dir.path());
        cmd.env("KEYWARD_SERVER", &url).env("KEYWARD_TOKEN", &token);
        if let Some(ca) = ca {
            cmd.env("KEYWARD_CA_CERT", ca);
        }
        cmd.args(["audit", "verify"]).output().unwrap()
    };
    let trusted = verify(Some(&files.ca));
    assert!(trusted.status.success(), "{}", String::from_utf8_lossy(&trusted.stderr));
    assert!(String::from_utf8_lossy(&trusted.stdout).contains("audit chain intact"));
    let untrusted = verify(None);
    assert!(!untrusted.status.success());
    assert!(String::from_utf8_lossy(&untrusted.stderr).contains("cannot reach the Keyward server"));
}

#[test]
fn plain_http_beyond_loopback_needs_insecure_http() {
    let dir = tempfile::tempdir().unwrap();
    let mut refused = keyward();
    refused.args(["serve", "--listen", "0.0.0.0:0"]);
    config_args(&mut refused, dir.path());
    let out = refused.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to serve plain HTTP") && err.contains("--tls-cert"), "{err}");
    assert!(!dir.path().join("data").exists(), "refused before anything was created");

    let mut insisted = keyward();
    insisted.args(["serve", "--listen", "0.0.0.0:0", "--insecure-http"]);
    config_args(&mut insisted, dir.path());
    let log = dir.path().join("serve.log");
    let (_server, url) = support::start_logged(insisted, &log, "Keyward server listening on");
    assert!(url.starts_with("http://0.0.0.0:"), "{url}");
    let warned = std::fs::read_to_string(&log).unwrap();
    assert!(warned.contains("WARNING: serving plain HTTP"), "{warned}");
}

//! `keyward sim` + `keyward serve` as separate processes, on SQLite and on PostgreSQL: the first
//! token from `keyward admin token create`, the connector pointed at the emulator through the
//! API, people synced, and a passkey issued with the soft key through the API; then the same
//! passkey is seen in Entra and revoking the key removes it.

mod support;

use std::process::Command;

use keyward_sim::seed::Seed;
use keyward_testkit::database::{Backend, TempDatabase};
use keyward_testkit::desk::SoftDesk;
use keyward_testkit::seed::trust_ca;
use keyward_testkit::stack::call_api as call;
use keyward_testkit::test_ca;
use keyward_webauthn::b64;
use serde_json::json;
use support::{AAGUID, CLIENT_ID, CLIENT_SECRET, MODEL, keyward, start};

fn end_to_end(database_url: Option<String>) {
    let dir = std::env::temp_dir().join(format!("keyward-serve-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = test_ca(AAGUID, "Authenticator Attestation");
    let mut seed = Seed::example();
    trust_ca(&mut seed, &ca, AAGUID, MODEL);
    let seed_path = dir.join("seed.json");
    std::fs::write(&seed_path, serde_json::to_string(&seed).unwrap()).unwrap();

    let mut sim = keyward();
    sim.args(["sim", "--listen", "127.0.0.1:0", "--throttle", "off", "--seed"]).arg(&seed_path);
    let (_sim, authority) = start(sim, "authority:");
    let (sim_base, tenant) = authority.rsplit_once('/').unwrap();

    let database_url =
        database_url.unwrap_or_else(|| format!("sqlite://{}", dir.join("keyward.db").display()));
    let config_args = |cmd: &mut Command| {
        cmd.arg("--data-dir")
            .arg(&dir)
            .arg("--database-url")
            .arg(&database_url)
            .arg("--config")
            .arg(dir.join("none.toml"));
    };
    let mut create = keyward();
    create.args(["admin"]);
    config_args(&mut create);
    let out = create.args(["token", "create", "--name", "first-admin", "--role", "admin"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("kw_"), "{token}");

    let mut serve = keyward();
    serve.args(["serve", "--listen", "127.0.0.1:0"]);
    config_args(&mut serve);
    let (_server, url) = start(serve, "Keyward server listening on");

    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let connector = json!({
            "enabled": true, "clientId": CLIENT_ID, "tenantId": tenant,
            "credential": {"kind": "secret", "clientSecret": CLIENT_SECRET},
            "authorityUrl": sim_base, "graphUrl": sim_base,
        });
        let (status, body) = call(&http, &url, &token, "PUT", "/api/v1/connector", Some(connector)).await;
        assert_eq!(status, 204, "{body}");
        let (status, test) = call(&http, &url, &token, "POST", "/api/v1/connector/test", None).await;
        assert_eq!((status, &test["ok"]), (200, &json!(true)), "{test}");
        let (status, report) =
            call(&http, &url, &token, "POST", "/api/v1/people/sync", Some(json!({}))).await;
        assert_eq!(status, 200, "{report}");

        let upn = "adele.vance@contoso.onmicrosoft.com";
        let (status, issuance) = call(
            &http,
            &url,
            &token,
            "POST",
            "/api/v1/issuances",
            Some(json!({"person": upn, "serial": "CLI-1"})),
        )
        .await;
        assert_eq!(status, 201, "{issuance}");
        let id = issuance["id"].as_str().unwrap().to_owned();
        let (status, options) =
            call(&http, &url, &token, "POST", &format!("/api/v1/issuances/{id}/options"), None).await;
        assert_eq!(status, 200, "{options}");

        let (plan, attestation_object) = SoftDesk::with_ca(&ca).register(&options["creation_options"]);
        let body = json!({
            "client_data_json": b64::encode(&plan.client_data_json),
            "attestation_object": b64::encode(&attestation_object),
            "serial": "CLI-1",
        });
        let (status, done) =
            call(&http, &url, &token, "POST", &format!("/api/v1/issuances/{id}/complete"), Some(body)).await;
        assert_eq!(status, 200, "{done}");
        assert_eq!(done["passkey"]["model"], MODEL);

        let (status, lost) =
            call(&http, &url, &token, "POST", "/api/v1/keys/CLI-1/state", Some(json!({"state": "lost"})))
                .await;
        assert_eq!((status, &lost["revoked"]), (200, &json!(1)), "{lost}");
        let (_, chain) = call(&http, &url, &token, "GET", "/api/v1/audit/verify", None).await;
        assert_eq!(chain["ok"], true, "{chain}");
        let (_, person) = call(&http, &url, &token, "GET", &format!("/api/v1/people/{upn}"), None).await;
        assert_eq!(person["passkeys"][0]["state"], "revoked", "{person}");
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sim_and_serve_issue_and_revoke_on_sqlite() {
    end_to_end(None);
}

#[test]
fn sim_and_serve_issue_and_revoke_on_postgres() {
    let database = TempDatabase::create_blocking(Backend::Postgres);
    end_to_end(Some(database.url().to_owned()));
}

/// A database password on the command line would be in every user's process list: refused,
/// naming where to put it instead, before anything is created.
#[test]
fn a_database_url_with_a_password_is_refused_on_the_command_line() {
    let dir = std::env::temp_dir().join(format!("keyward-serve-cli-{}", uuid::Uuid::new_v4()));
    let out = keyward()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .args(["--database-url", "postgres://keyward:s3cret@127.0.0.1:5432/keyward"])
        .arg("--config")
        .arg(dir.join("none.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("KEYWARD_DATABASE_URL"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "the refusal repeats the password: {stderr}");
    assert!(!dir.exists(), "nothing is created");
}

//! The end-to-end stack for the server's tests: `keyward sim` and the Keyward server on loopback
//! HTTP, over SQLite or a fresh PostgreSQL database, with one API token per role, and an operator
//! that provisions a passkey on the soft key through the Core API exactly as the CLI does.
//!
//! PostgreSQL is reached at `KEYWARD_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`);
//! each stack creates `keyward_e2e_<random>` and drops it when the stack is dropped.

#![allow(dead_code)]

#[path = "../../../keyward-sim/tests/support/attestation_ca.rs"]
pub mod attestation_ca;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use keyward_core::Role;
use keyward_ctap::client::PERMISSION_MC;
use keyward_ctap::{Client, HidDevice, MemoryTransport, Timeouts};
use keyward_entra::ConnectorConfig;
use keyward_server::{ServerConfig, Service};
use keyward_sim::seed::{Seed, SeedUser};
use keyward_sim::server::{RunningSim, spawn};
use keyward_sim::{Sim, SimOptions};
use keyward_softkey::{Attestation, Config, SoftKey};
use keyward_webauthn::ENTRA_RP_ID;
use keyward_webauthn::registration::RegistrationPlan;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sqlx::{Connection, Executor};

/// The emulated tenant's app.
pub const APP: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
/// Its secret.
pub const APP_SECRET: &str = "sim-secret-change-me";
/// The soft key's AAGUID.
pub const AAGUID: [u8; 16] = *b"KeywardSoftKey01";
/// The model name the seed gives it.
pub const MODEL: &str = "Keyward Soft Key (test CA)";
/// Adele's object id in the example seed.
pub const ADELE: &str = "3e0a6d85-cf40-4b12-95e9-4a6f8b0c2d34";
/// Adele's UPN.
pub const ADELE_UPN: &str = "adele.vance@contoso.onmicrosoft.com";

/// Which database a stack runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

/// Knobs of a stack.
pub struct StackOptions {
    /// Database.
    pub backend: Backend,
    /// Emulator options (faults, throttling, latency).
    pub sim: SimOptions,
    /// Extra users `user{i}@contoso.onmicrosoft.com`.
    pub extra_users: usize,
    /// Changes to the seed.
    pub seed: Box<dyn FnOnce(&mut Seed) + Send>,
}

impl StackOptions {
    /// SQLite, no faults, throttling off, the example tenant.
    pub fn sqlite() -> Self {
        let mut sim = SimOptions::default();
        sim.throttle.enabled = false;
        Self { backend: Backend::Sqlite, sim, extra_users: 0, seed: Box::new(|_| {}) }
    }

    /// The same on PostgreSQL.
    pub fn postgres() -> Self {
        Self { backend: Backend::Postgres, ..Self::sqlite() }
    }
}

/// A running sim + server.
pub struct Stack {
    /// The emulator.
    pub sim: RunningSim,
    /// The server's service (for direct store access in assertions).
    pub service: Arc<Service>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// An HTTP client.
    pub http: reqwest::Client,
    /// One token per role.
    pub tokens: BTreeMap<Role, String>,
    /// The soft key's attestation CA.
    pub ca: attestation_ca::TestCa,
    /// The database URL.
    pub database_url: String,
    pg_database: Option<String>,
    data_dir: std::path::PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

fn postgres_admin_url() -> String {
    std::env::var("KEYWARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

async fn pg_admin() -> sqlx::PgConnection {
    let url = postgres_admin_url();
    sqlx::PgConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!(
            "cannot reach PostgreSQL at {url}: {e}; start it with \
             `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` or set KEYWARD_TEST_POSTGRES"
        )
    })
}

impl Stack {
    /// Starts the emulator and a server configured to use it, with an admin token made through
    /// the service (as `keyward admin token create` does) and one token per role made through
    /// the API.
    pub async fn start(options: StackOptions) -> Stack {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ca = attestation_ca::test_ca(AAGUID, "Authenticator Attestation");
        let mut seed = Seed::example();
        seed.attestation_roots_pem = vec![ca.ca_pem.clone()];
        seed.aaguid_models.insert(uuid::Uuid::from_bytes(AAGUID).to_string(), MODEL.into());
        for i in 0..options.extra_users {
            seed.users.push(SeedUser {
                id: uuid::Uuid::new_v4().to_string(),
                user_principal_name: format!("user{i:04}@contoso.onmicrosoft.com"),
                display_name: format!("User {i:04}"),
                account_enabled: true,
                user_type: "Member".into(),
                mail: None,
                groups: vec![],
            });
        }
        (options.seed)(&mut seed);
        let sim = Sim::new(seed, options.sim).unwrap();
        let sim = spawn(sim, "127.0.0.1:0".parse().unwrap(), None).await.unwrap();

        let data_dir = std::env::temp_dir().join(format!("keyward-server-test-{}", uuid::Uuid::new_v4()));
        let (database_url, pg_database) = match options.backend {
            Backend::Sqlite => (format!("sqlite://{}", data_dir.join("keyward.db").display()), None),
            Backend::Postgres => {
                let name = format!("keyward_e2e_{}", uuid::Uuid::new_v4().simple());
                pg_admin().await.execute(format!("CREATE DATABASE {name}").as_str()).await.unwrap();
                let base = postgres_admin_url();
                let cut = base.rfind('/').unwrap();
                (format!("{}/{name}", &base[..cut]), Some(name))
            }
        };
        let config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data_dir.clone(),
            database_url: Some(database_url.clone()),
            ..ServerConfig::default()
        };
        let service = Service::open(config).await.unwrap();
        let (_, admin) = service
            .create_token(&keyward_server::Caller::host("bootstrap"), "admin", Role::Admin)
            .await
            .unwrap();
        let mut connector = ConnectorConfig::with_secret(
            &sim.sim.read(|t| t.tenant_id.clone()),
            APP,
            SecretString::from(APP_SECRET),
        )
        .pointed_at(&sim.base_url);
        connector.retry.base_delay = Duration::from_millis(5);
        service.set_connector(&keyward_server::Caller::host("bootstrap"), connector).await.unwrap();

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(keyward_server::serve(service.clone(), listener, async move {
            let _ = stopped.await;
        }));
        let mut stack = Stack {
            sim,
            service,
            url,
            http: reqwest::Client::new(),
            tokens: BTreeMap::new(),
            ca,
            database_url,
            pg_database,
            data_dir,
            stop: Some(stop),
        };
        stack.tokens.insert(Role::Admin, admin.expose_secret().to_owned());
        for role in [Role::Operator, Role::Helpdesk, Role::Auditor] {
            let (status, body) = stack
                .call(
                    Role::Admin,
                    "POST",
                    "/api/v1/tokens",
                    Some(json!({"name": role.as_str(), "role": role.as_str()})),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            stack.tokens.insert(role, body["token"].as_str().unwrap().to_owned());
        }
        stack
    }

    /// One API call with `role`'s token; returns status and JSON body (`Null` when empty).
    pub async fn call(&self, role: Role, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.url))
            .bearer_auth(&self.tokens[&role]);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let response = req.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// A soft key with a packed attestation chain from the stack's CA, behind our client, PIN set.
    pub fn soft_key(&self) -> SoftDesk {
        let config = Config {
            aaguid: AAGUID,
            attestation: Attestation::Packed {
                key: self.ca.attestation_key.clone(),
                x5c: vec![self.ca.attestation_der.clone()],
            },
            max_resident_keys: 10_000,
            ..Config::default()
        };
        let (host, dev) = MemoryTransport::pair();
        let key = SoftKey::spawn(config, dev.from_host, dev.to_host);
        let timeouts = Timeouts { idle: Duration::from_secs(5), transaction: Duration::from_secs(10) };
        let mut client = Client::new(HidDevice::open(host, timeouts).unwrap());
        let pin = SecretString::from("271828".to_owned());
        client.set_pin(&pin).unwrap();
        SoftDesk { client, _key: key, pin }
    }

    /// The methods of a user in the sim.
    pub fn sim_methods(&self, user_id: &str) -> Vec<Value> {
        self.sim.sim.read(|t| {
            t.fido2_methods
                .get(&user_id.to_lowercase())
                .map(|list| list.iter().map(|m| serde_json::to_value(&m.method).unwrap()).collect())
                .unwrap_or_default()
        })
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
        if let Some(name) = self.pg_database.take() {
            let store = self.service.store.clone();
            // Dropping a database needs every connection gone; do it on a fresh thread and runtime.
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async move {
                    store.close().await;
                    let _ = pg_admin()
                        .await
                        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                        .await;
                });
            })
            .join()
            .ok();
        }
    }
}

/// The operator's desk: our CTAP client on a soft key with its PIN.
pub struct SoftDesk {
    /// The client.
    pub client: Client<MemoryTransport>,
    _key: SoftKey,
    /// The key's PIN.
    pub pin: SecretString,
}

impl SoftDesk {
    /// Makes the credential the options ask for; returns (clientDataJSON, attestationObject).
    pub fn make_credential(&mut self, creation_options: &Value) -> (Vec<u8>, Vec<u8>) {
        let options = serde_json::from_value(creation_options.clone()).unwrap();
        let plan = RegistrationPlan::from_creation_options(&options).unwrap();
        let token = self.client.get_pin_uv_auth_token(&self.pin, PERMISSION_MC, Some(ENTRA_RP_ID)).unwrap();
        let made = self.client.register_for_entra(&plan, &token).unwrap();
        (plan.client_data_json.clone(), made.attestation.attestation_object())
    }
}

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    keyward_webauthn::b64::encode(bytes)
}

/// Provisions one passkey for `person` through the API as the CLI does; returns the complete
/// call's status and body.
pub async fn provision(stack: &Stack, desk: &mut SoftDesk, person: &str, serial: &str) -> (u16, Value) {
    let (status, issuance) = stack
        .call(Role::Operator, "POST", "/api/v1/issuances", Some(json!({"person": person, "serial": serial})))
        .await;
    assert_eq!(status, 201, "create issuance: {issuance}");
    let id = issuance["id"].as_str().unwrap().to_owned();
    let (status, options) =
        stack.call(Role::Operator, "POST", &format!("/api/v1/issuances/{id}/options"), None).await;
    assert_eq!(status, 200, "options: {options}");
    let (cdj, att) = desk.make_credential(&options["creation_options"]);
    let body = json!({"client_data_json": b64(&cdj), "attestation_object": b64(&att), "serial": serial});
    stack.call(Role::Operator, "POST", &format!("/api/v1/issuances/{id}/complete"), Some(body)).await
}

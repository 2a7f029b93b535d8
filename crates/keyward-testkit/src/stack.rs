//! The end-to-end stack: the Entra emulator and a Keyward server on loopback HTTP, over SQLite or
//! a fresh PostgreSQL database, with one API token per role, and a soft key that provisions a
//! passkey through the Core API exactly as the CLI does.
//!
//! The server's tests start it in their own runtime ([`Stack::start`]); the CLI's tests, which
//! are synchronous and run the built `keyward` binary against it, start it on a runtime the stack
//! owns ([`Stack::start_blocking`]). Everything is torn down when the stack is dropped.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use keyward_core::Role;
use keyward_entra::ConnectorConfig;
use keyward_server::{ServerConfig, Service};
use keyward_sim::SimOptions;
use keyward_sim::seed::Seed;
use keyward_sim::server::RunningSim;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

pub use crate::database::Backend;
use crate::database::TempDatabase;
use crate::desk::{PIN, packed_config};
// What a test of the stack names most, so one `use keyward_testkit::stack::*` serves.
pub use crate::desk::{AAGUID, MODEL, SoftDesk};
pub use crate::seed::{ADELE, ADELE_UPN, APP, APP_SECRET};
use crate::seed::{numbered_user, trust_ca};
use crate::{TestCa, sim, test_ca};

/// Knobs of a stack.
pub struct StackOptions {
    /// Database.
    pub backend: Backend,
    /// Emulator options (faults, throttling, latency).
    pub sim: SimOptions,
    /// Extra users [`numbered_user`]`(0..extra_users)`.
    pub extra_users: usize,
    /// Changes to the seed (after the CA and the extra users are in).
    pub seed: Box<dyn FnOnce(&mut Seed) + Send>,
    /// Whether the server's connector is pointed at the emulator before the stack is handed over
    /// (as `keyward connector set` would); off for tests of setting it.
    pub connector: bool,
    /// Changes to the server's configuration (after the stack's listen address and database).
    pub server: Box<dyn FnOnce(&mut ServerConfig) + Send>,
}

impl StackOptions {
    /// SQLite, no faults, throttling off, the example tenant, the connector set.
    pub fn sqlite() -> Self {
        Self {
            backend: Backend::Sqlite,
            sim: sim::unthrottled(),
            extra_users: 0,
            seed: Box::new(|_| {}),
            connector: true,
            server: Box::new(|_| {}),
        }
    }

    /// The same on PostgreSQL.
    pub fn postgres() -> Self {
        Self { backend: Backend::Postgres, ..Self::sqlite() }
    }

    /// The same on `backend`.
    pub fn on(backend: Backend) -> Self {
        Self { backend, ..Self::sqlite() }
    }
}

/// A running emulator + server.
pub struct Stack {
    /// The emulator.
    pub sim: RunningSim,
    /// The emulated tenant's id.
    pub tenant: String,
    /// The server's service (for direct store access in assertions).
    pub service: Arc<Service>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// An HTTP client.
    pub http: reqwest::Client,
    /// One token per role.
    pub tokens: BTreeMap<Role, String>,
    /// The soft key's attestation CA, trusted by the emulator.
    pub ca: TestCa,
    /// The database URL.
    pub database_url: String,
    /// The server's data directory (the SQLite file lives here); a scratch directory for the
    /// test's own files too. Removed on drop.
    pub dir: PathBuf,
    database: Option<TempDatabase>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Stack {
    /// Starts the emulator and a server configured to use it, with an admin token made through
    /// the service (as `keyward admin token create` does) and one token per role made through
    /// the API.
    pub async fn start(options: StackOptions) -> Stack {
        sim::install_crypto();
        let ca = test_ca(AAGUID, "Authenticator Attestation");
        let mut seed = Seed::example();
        trust_ca(&mut seed, &ca, AAGUID, MODEL);
        seed.users.extend((0..options.extra_users).map(numbered_user));
        (options.seed)(&mut seed);
        let sim = sim::start(seed, options.sim).await;
        let tenant = sim.sim.read(|t| t.tenant_id.clone());

        let dir = std::env::temp_dir().join(format!("keyward-stack-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let database = match options.backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TempDatabase::create(Backend::Postgres).await),
        };
        let database_url = match &database {
            Some(database) => database.url().to_owned(),
            None => format!("sqlite://{}", dir.join("keyward.db").display()),
        };
        let mut config = ServerConfig {
            listen: "127.0.0.1:0".parse().expect("loopback address"),
            data_dir: dir.clone(),
            database_url: Some(database_url.clone()),
            ..ServerConfig::default()
        };
        (options.server)(&mut config);
        let service = Service::open(config).await.expect("the server opens its database");
        let (_, admin) = service
            .create_token(&keyward_server::Caller::host("bootstrap"), "admin", Role::Admin)
            .await
            .expect("an admin token");
        if options.connector {
            let mut connector = ConnectorConfig::with_secret(&tenant, APP, SecretString::from(APP_SECRET))
                .pointed_at(&sim.base_url);
            connector.retry.base_delay = Duration::from_millis(5);
            service
                .set_connector(&keyward_server::Caller::host("bootstrap"), connector)
                .await
                .expect("the connector is set");
        }

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free loopback port");
        let url = format!("http://{}", listener.local_addr().expect("a bound address"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(keyward_server::serve(service.clone(), listener, async move {
            let _ = stopped.await;
        }));
        let mut stack = Stack {
            sim,
            tenant,
            service,
            url,
            http: reqwest::Client::new(),
            tokens: BTreeMap::new(),
            ca,
            database_url,
            dir,
            database,
            stop: Some(stop),
            runtime: None,
        };
        stack.tokens.insert(Role::Admin, admin.expose_secret().to_owned());
        for role in [Role::Operator, Role::Helpdesk, Role::Auditor] {
            let body = json!({"name": role.as_str(), "role": role.as_str()});
            let (status, body) = stack.call(Role::Admin, "POST", "/api/v1/tokens", Some(body)).await;
            assert_eq!(status, 201, "{body}");
            stack.tokens.insert(role, body["token"].as_str().expect("a token").to_owned());
        }
        stack
    }

    /// [`Stack::start`] for a synchronous test: the stack runs on a runtime of its own, which
    /// [`Stack::block_on`] drives.
    pub fn start_blocking(options: StackOptions) -> Stack {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let mut stack = runtime.block_on(Stack::start(options));
        stack.runtime = Some(runtime);
        stack
    }

    /// Runs `future` on the stack's runtime (only for a stack from [`Stack::start_blocking`]).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.as_ref().expect("block_on needs a stack from Stack::start_blocking").block_on(future)
    }

    /// The admin's API token.
    pub fn admin_token(&self) -> &str {
        &self.tokens[&Role::Admin]
    }

    /// The connector settings pointing at the emulator, as `PUT /api/v1/connector` takes them.
    pub fn connector_body(&self) -> Value {
        json!({
            "enabled": true, "clientId": APP, "tenantId": self.tenant,
            "credential": {"kind": "secret", "clientSecret": APP_SECRET},
            "authorityUrl": self.sim.base_url, "graphUrl": self.sim.base_url,
        })
    }

    /// One API call with `role`'s token; see [`call_api`].
    pub async fn call(&self, role: Role, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        call_api(&self.http, &self.url, &self.tokens[&role], method, path, body).await
    }

    /// A soft key with a packed attestation chain from the stack's CA, behind our client, PIN set,
    /// room for 10 000 passkeys.
    pub fn soft_key(&self) -> SoftDesk {
        let config = keyward_softkey::Config { max_resident_keys: 10_000, ..packed_config(&self.ca, AAGUID) };
        SoftDesk::open(config, PIN)
    }

    /// The methods of a user in the emulated Entra, read from its state.
    pub fn sim_methods(&self, user_id: &str) -> Vec<Value> {
        self.sim.sim.read(|t| {
            t.fido2_methods
                .get(&user_id.to_lowercase())
                .map(|list| list.iter().map(|m| serde_json::to_value(&m.method).expect("JSON")).collect())
                .unwrap_or_default()
        })
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(database) = self.database.take() {
            let store = self.service.store.clone();
            // Dropping a database needs every connection gone; close the pool on a fresh thread
            // and runtime (this may run inside the test's runtime), then drop the database.
            let closing = std::thread::spawn(move || {
                let runtime =
                    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
                runtime.block_on(store.close());
                drop(database);
            });
            let _ = closing.join();
        }
    }
}

/// One Core API call to the server at `url` with the bearer `token`; returns status and JSON
/// body (`Null` when empty, the text when not JSON).
pub async fn call_api(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req =
        http.request(method.parse().expect("an HTTP method"), format!("{url}{path}")).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let response = req.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a response body");
    if text.is_empty() {
        return (status, Value::Null);
    }
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    keyward_webauthn::b64::encode(bytes)
}

/// Provisions one passkey for `person` on `desk`'s key through the API as the CLI does, with the
/// operator's token; returns the complete call's status and body.
pub async fn provision(stack: &Stack, desk: &mut SoftDesk, person: &str, serial: &str) -> (u16, Value) {
    provision_as(stack, Role::Operator, desk, person, serial).await
}

/// [`provision`] with `role`'s token.
pub async fn provision_as(
    stack: &Stack,
    role: Role,
    desk: &mut SoftDesk,
    person: &str,
    serial: &str,
) -> (u16, Value) {
    let body = json!({"person": person, "serial": serial});
    let (status, issuance) = stack.call(role, "POST", "/api/v1/issuances", Some(body)).await;
    assert_eq!(status, 201, "create issuance: {issuance}");
    let id = issuance["id"].as_str().expect("an issuance id").to_owned();
    let (status, options) = stack.call(role, "POST", &format!("/api/v1/issuances/{id}/options"), None).await;
    assert_eq!(status, 200, "options: {options}");
    let (cdj, att) = desk.make_credential(&options["creation_options"]);
    let body = json!({"client_data_json": b64(&cdj), "attestation_object": b64(&att), "serial": serial});
    stack.call(role, "POST", &format!("/api/v1/issuances/{id}/complete"), Some(body)).await
}

//! `keyward demo`: the whole product in one command, on an embedded default.
//!
//! It starts the Entra emulator with a demo tenant that trusts a freshly generated soft-key
//! attestation CA, a Keyward server on a temporary SQLite database, and then does what an
//! operator does: syncs people from Entra and provisions a passkey for each demo person on a
//! software security key, through the Core API and the same provisioning flow as `keyward
//! provision`. It prints the coverage report and keeps the server up, with its URL and an admin
//! token, until Ctrl-C. Nothing is written outside a temporary directory, which is removed at
//! the end.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use keyward_core::Role;
use keyward_ctap::{Client, HidDevice, MemoryTransport, Timeouts};
use keyward_entra::ConnectorConfig;
use keyward_server::{Caller, ServerConfig, Service};
use keyward_sim::seed::{Seed, SeedUser};
use keyward_sim::{Sim, SimOptions};
use keyward_softkey::ca::AttestationCa;
use keyward_softkey::{Config, SoftKey};
use secrecy::{ExposeSecret, SecretString};

use keyward_cli::api_client::{ApiClient, ClientConfig};
use keyward_cli::commands::provision::flow::{PinMode, ProvisionRequest, SignInOutcome, provision_one};

/// The demo soft key's AAGUID ("keyward-demo-key" in ASCII).
const DEMO_AAGUID: [u8; 16] = *b"keyward-demo-key";
/// The app registration of the example tenant (`keyward sim --example-seed`).
const DEMO_APP_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
/// Its client secret in the example tenant (an emulator's, not a real one).
const DEMO_APP_SECRET: &str = "sim-secret-change-me";
/// Its model name in the demo tenant.
const DEMO_MODEL: &str = "Keyward Soft Key (demo)";

const FIRST: &[&str] = &[
    "Ada", "Ben", "Chloe", "Dev", "Elif", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kara", "Liam", "Maya",
    "Nils", "Olu", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Uma", "Victor", "Wen", "Ximena", "Yusuf",
    "Zoe",
];
const LAST: &[&str] = &["Okafor", "Lindqvist", "Moreau", "Tanaka", "Kowalski", "Haddad", "Silva", "Novak"];

/// `keyward demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many demo people to provision.
    #[arg(long, default_value_t = 36, value_parser = clap::value_parser!(u16).range(1..=2000))]
    people: u16,
    /// Where the server listens (a free port is taken when this one is busy).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// Stop after the report instead of serving until Ctrl-C (for scripts and tests).
    #[arg(long)]
    no_wait: bool,
}

fn demo_seed(people: usize, ca_pem: &str) -> Seed {
    let mut seed = Seed::example();
    seed.attestation_roots_pem = vec![ca_pem.to_owned()];
    seed.aaguid_models.insert(uuid::Uuid::from_bytes(DEMO_AAGUID).to_string(), DEMO_MODEL.into());
    let group = seed.groups.iter().find(|g| g.display_name == "Engineering").map(|g| g.id.clone());
    for i in 0..people {
        let first = FIRST[i % FIRST.len()];
        let last = LAST[(i / FIRST.len() + i) % LAST.len()];
        let n = i / (FIRST.len() * LAST.len());
        let handle =
            if n == 0 { format!("{first}.{last}") } else { format!("{first}.{last}{n}") }.to_lowercase();
        seed.users.push(SeedUser {
            id: uuid::Uuid::new_v4().to_string(),
            user_principal_name: format!("{handle}@contoso.onmicrosoft.com"),
            display_name: format!("{first} {last}"),
            account_enabled: true,
            user_type: "Member".into(),
            mail: Some(format!("{handle}@contoso.example")),
            groups: group.iter().cloned().collect(),
            directory_roles: vec![],
        });
    }
    seed
}

/// Runs the demo.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("keyward-demo-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let result = demo(&args, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn demo(args: &DemoArgs, dir: &std::path::Path) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    eprintln!("Keyward demo: an emulated Entra tenant, a Keyward server and {} software keys.", args.people);
    let ca = AttestationCa::generate().context("cannot generate the demo attestation CA")?;
    let (sim, tenant) = start_emulator(args.people as usize, &ca).await?;
    let server = DemoServer::start(args.listen, dir, &tenant, &sim.base_url).await?;
    let api = ApiClient::new(&ClientConfig {
        server: server.url.clone(),
        token: Some(server.token.clone()),
        file: dir.join("client.toml"),
    })?;
    set_policy_and_sync(&api).await?;
    let people = demo_people(&api).await?;
    let failures = provision_everyone(&api, &ca, &people).await?;
    print_report(&api, &server).await?;
    if !args.no_wait {
        println!("The demo keeps running until you press Ctrl-C.");
        let _ = tokio::signal::ctrl_c().await;
    }
    server.stop().await;
    if failures.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{} of {} provisionings failed", failures.len(), people.len())
    }
}

/// The emulated tenant, trusting the demo's soft-key attestation CA; returns the running
/// emulator (it stops when dropped) and the tenant id.
async fn start_emulator(
    people: usize,
    ca: &AttestationCa,
) -> anyhow::Result<(keyward_sim::server::RunningSim, String)> {
    let seed = demo_seed(people, ca.certificate_pem());
    let tenant = seed.tenant_id.clone();
    let sim = Sim::new(seed, SimOptions::default()).map_err(anyhow::Error::msg)?;
    let sim = keyward_sim::server::spawn(sim, "127.0.0.1:0".parse()?, None).await?;
    eprintln!("  Entra emulator (keyward sim):   {}", sim.base_url);
    Ok((sim, tenant))
}

/// The Keyward server of the demo, on a temporary SQLite database, serving until stopped.
struct DemoServer {
    url: String,
    /// An admin API token.
    token: SecretString,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl DemoServer {
    /// Opens the database in `dir`, makes an admin token, points the connector at the emulator
    /// and serves on `listen` (or a free port when it is busy).
    async fn start(
        listen: std::net::SocketAddr,
        dir: &std::path::Path,
        tenant: &str,
        sim_url: &str,
    ) -> anyhow::Result<Self> {
        let config = ServerConfig { data_dir: dir.to_owned(), listen, ..ServerConfig::default() };
        let service = Service::open(config).await.context("cannot start the demo server")?;
        let demo = Caller::host("demo");
        let (_, token) = service.create_token(&demo, "demo-admin", Role::Admin).await?;
        let connector =
            ConnectorConfig::with_secret(tenant, DEMO_APP_ID, SecretString::from(DEMO_APP_SECRET))
                .pointed_at(sim_url);
        service.set_connector(&demo, connector).await?;
        let listener = match tokio::net::TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(_) => tokio::net::TcpListener::bind("127.0.0.1:0").await?,
        };
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(keyward_server::serve(service.clone(), listener, async move {
            let _ = stopped.await;
        }));
        eprintln!("  Keyward server (keyward serve): {url}");
        Ok(Self { url, token, stop, task })
    }

    /// Stops serving and waits for the server to finish.
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// The operator's set-up: Engineering's enrollment policy, then the people from Entra.
async fn set_policy_and_sync(api: &ApiClient) -> anyhow::Result<()> {
    let policy = keyward_proto::admin::PolicyRequest {
        mode: "mandatory".into(),
        pin_min_length: Some(6),
        pin_force_change: false,
        allowed_aaguids: vec![],
        max_passkeys_per_person: Some(2),
    };
    api.set_policy("Engineering", &policy).await?;
    eprintln!("  enrollment policy: Engineering is mandatory, PINs of 6 or more, at most 2 passkeys each");
    let report = api.sync_people(None).await?;
    eprintln!("  synced {} people from Entra ({} new)", report.seen, report.created);
    Ok(())
}

/// The demo people's UPNs: enabled members synced from Entra, without the example tenant's
/// own users and guests.
async fn demo_people(api: &ApiClient) -> anyhow::Result<Vec<String>> {
    Ok(api
        .people(Some("@contoso.onmicrosoft.com"), None, 1000)
        .await?
        .items
        .into_iter()
        .filter(|p| {
            p.enabled && p.source == "entra" && !p.upn.contains("#EXT#") && p.display_name.contains(' ')
        })
        .map(|p| p.upn)
        .filter(|upn| {
            !["adele.vance", "alex.wilber", "megan.bowen", "pradeep.gupta"].iter().any(|x| upn.starts_with(x))
        })
        .collect())
}

/// Provisions a fresh soft key for each person, with a progress bar; returns the failures.
async fn provision_everyone(
    api: &ApiClient,
    ca: &AttestationCa,
    people: &[String],
) -> anyhow::Result<Vec<String>> {
    let bar = ProgressBar::new(people.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("  provisioning {bar:30} {pos}/{len} people, ETA {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut failures = Vec::new();
    let mut signed_in = 0;
    for (i, upn) in people.iter().enumerate() {
        let attestation = ca.issue_batch(&DEMO_AAGUID)?.into_attestation();
        let (host, dev) = MemoryTransport::pair();
        let _key = SoftKey::spawn(
            Config { aaguid: DEMO_AAGUID, attestation, ..Config::default() },
            dev.from_host,
            dev.to_host,
        );
        let timeouts = Timeouts { idle: Duration::from_secs(5), transaction: Duration::from_secs(30) };
        let mut client = Client::new(HidDevice::open(host, timeouts)?);
        let request = ProvisionRequest {
            upn: upn.clone(),
            serial: Some(format!("DEMO-{:04}", i + 1)),
            pin: PinMode::Random,
            force_pin_change: None,
            reset: false,
            channel: "bulk",
            display_name: None,
        };
        bar.set_message(upn.clone());
        match provision_one(api, &mut client, &request).await {
            Ok(done) => signed_in += usize::from(matches!(done.sign_in, SignInOutcome::SignedIn { .. })),
            Err(e) => failures.push(format!("{upn}: {e}")),
        }
        bar.inc(1);
    }
    bar.finish_with_message("done");
    eprintln!(
        "  signed in at the emulated tenant with their new passkey: {signed_in} of {} people",
        people.len()
    );
    for f in &failures {
        eprintln!("  failed: {f}");
    }
    Ok(failures)
}

/// The coverage report, the audit chain's verdict, and how to reach the server.
async fn print_report(api: &ApiClient, server: &DemoServer) -> anyhow::Result<()> {
    println!();
    keyward_cli::commands::report::print_coverage(api, keyward_cli::commands::output::Format::Table).await?;
    let chain = api.verify_audit().await?;
    println!("Audit trail: {} events, chain {}", chain.events, if chain.ok { "verified" } else { "BROKEN" });
    println!();
    let url = &server.url;
    println!("Server:  {url}  (API {url}/api/v1, OpenAPI {url}/api/v1/openapi.json)");
    println!("Token:   export KEYWARD_SERVER={url} KEYWARD_TOKEN={}", server.token.expose_secret());
    println!("Try:     keyward report coverage   |   keyward passkeys list   |   keyward audit verify");
    Ok(())
}

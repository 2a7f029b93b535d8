//! Every subcommand of `keyward`, one module each, and the top-level parser ([`Cli`]) that
//! dispatches to them ([`run`]).
//!
//! Three kinds live here. The processes: `serve` (the CMS server), `sim` (the Entra emulator),
//! `softkey` (a software security key) and `demo` (all three at once). The server-host command
//! `admin`, which opens the server's database to make the first API token. And the operator's
//! commands — people, keys, passkeys, policy, TAP, reports, audit, the connector, doctor,
//! inspect, provision and bulk — which talk to a running `keyward serve` through the typed Core
//! API client ([`crate::api_client`]) and never to Graph directly (ARCHITECTURE §2): the server
//! holds the Entra credentials, enforces roles and writes the audit trail. What those share is
//! where the server and the token come from ([`ClientArgs`]) and how results are printed
//! ([`output`]); the commands that touch a key (`device`, `provision`, `doctor`, `bulk`) open
//! it through [`crate::desk_key`].

pub mod admin;
pub mod audit;
pub mod bulk;
pub mod completions;
pub mod connector;
pub mod demo;
pub mod device;
pub mod doctor;
pub mod inspect;
pub mod keys;
pub mod output;
pub mod passkeys;
pub mod people;
pub mod policy;
pub mod provision;
pub mod report;
pub mod serve;
pub mod sim;
pub mod softkey;
pub mod tap;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::api_client::{ApiClient, ApiClientError, ClientConfig};

/// Keyward issues passkeys into Microsoft Entra ID on behalf of users and manages them for life.
#[derive(Debug, Parser)]
#[command(name = "keyward", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Emulated tenant + server + soft keys: provision demo people end to end, report, keep serving.
    Demo(demo::DemoArgs),
    /// Run the Entra ID emulator alone (tenant seed file, --latency-ms, --throttle, --faults).
    Sim(sim::SimArgs),
    /// Run the software security key on a socket (`softkey serve --listen unix:PATH`).
    Softkey(softkey::SoftkeyArgs),
    /// Run the CMS server (configuration: keyward.toml and KEYWARD_* variables).
    Serve(serve::ServeArgs),
    /// Server-side administration on the server's host: API tokens.
    Admin(admin::AdminArgs),
    /// Look after a security key: info, set-pin, change-pin, reset, credentials, config.
    Device(device::DeviceArgs),
    /// Put a passkey for one person on a security key, set its PIN and hand the PIN over.
    Provision(provision::command::ProvisionArgs),
    /// Provision everyone in a CSV as a resumable server job (soft keys or USB keys).
    Bulk(bulk::BulkArgs),
    /// The server's connection to Entra ID: show, test, validate-cert, set.
    Connector(connector::ConnectorArgs),
    /// People Keyward issues passkeys to: sync from Entra, list, show, link, revoke.
    People(people::PeopleArgs),
    /// Inventory and lifecycle of physical keys: list, show, add, revoke, lost, dispose, suspend.
    Keys(keys::KeysArgs),
    /// Passkeys issued and found in Entra: list [--unmanaged], revoke, reconcile.
    Passkeys(passkeys::PasskeysArgs),
    /// Entra FIDO2 method policy (state, targets, self-service, attestation, AAGUIDs); enrollment policies.
    Policy(policy::PolicyArgs),
    /// Temporary Access Pass for onboarding: tap issue --user UPN.
    Tap(tap::TapArgs),
    /// Reports: coverage and inventory, as a table, CSV or JSON.
    Report(report::ReportArgs),
    /// The audit trail: list, verify, export.
    Audit(audit::AuditArgs),
    /// Every reason a registration would fail, with fixes, before any key is touched.
    Doctor(doctor::DoctorArgs),
    /// Decode a registration body or attestation object; check it against the tenant's policy.
    Inspect(inspect::InspectArgs),
    /// Print a shell completion script (bash, zsh, fish, …).
    Completions(completions::CompletionsArgs),
    /// Print the man page, or write one per command with --out DIR.
    Man(completions::ManArgs),
}

/// Runs the parsed command: `serve` on a runtime sized by its configuration, any other on a
/// default multi-threaded runtime.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Serve(args) = cli.command {
        // The server sizes its own runtime from its configuration (see `worker_threads`).
        return serve::run(args);
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(dispatch(cli.command))
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Demo(args) => demo::run(args).await,
        Command::Sim(args) => sim::run(args).await,
        Command::Softkey(args) => softkey::run(args).await,
        Command::Device(args) => device::run(args).await,
        Command::Provision(args) => provision::command::run(args).await,
        Command::Bulk(args) => bulk::run(args).await,
        Command::Serve(_) => unreachable!("served above on its own runtime"),
        Command::Admin(args) => admin::run(args).await,
        Command::Connector(args) => connector::run(args).await,
        Command::People(args) => people::run(args).await,
        Command::Keys(args) => keys::run(args).await,
        Command::Passkeys(args) => passkeys::run(args).await,
        Command::Policy(args) => policy::run(args).await,
        Command::Tap(args) => tap::run(args).await,
        Command::Report(args) => report::run(args).await,
        Command::Audit(args) => audit::run(args).await,
        Command::Doctor(args) => doctor::run(args).await,
        Command::Inspect(args) => inspect::run(args).await,
        Command::Completions(args) => {
            completions::completions(args, <Cli as clap::CommandFactory>::command())
        }
        Command::Man(args) => completions::man(args, <Cli as clap::CommandFactory>::command()),
    }
}

/// Where the server is and which client file holds the token; the token itself is never a flag.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// The Keyward server's URL [default: KEYWARD_SERVER, then client.toml, then http://127.0.0.1:8080].
    #[arg(long, global = true, value_name = "URL", help_heading = "Connection")]
    pub server: Option<String>,
    /// Client configuration file [default: ~/.config/keyward/client.toml]. The API token comes from
    /// KEYWARD_TOKEN or `token = "…"` in this file, never from the command line.
    #[arg(long, global = true, value_name = "FILE", help_heading = "Connection")]
    pub client_config: Option<PathBuf>,
}

impl ClientArgs {
    /// The API client for these settings; fails with the fix when no token is configured.
    pub fn client(&self) -> anyhow::Result<ApiClient> {
        let config = ClientConfig::resolve(self.server.as_deref(), self.client_config.clone())?;
        Ok(ApiClient::new(&config)?)
    }
}

/// Adds what to do when the server says the thing named does not exist (HTTP 404), e.g. which
/// command lists the valid names; other errors already carry their fix.
pub fn when_not_found(e: ApiClientError, next: &str) -> anyhow::Error {
    if e.status() == Some(404) { anyhow::anyhow!("{e}; {next}") } else { e.into() }
}

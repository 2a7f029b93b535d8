//! The `keyward` binary's command line: the top-level parser ([`Cli`]) and its dispatch
//! ([`run`]), with the binary's own commands, one module each.
//!
//! The binary's own commands run beside the server or are the server: `serve` (the CMS
//! server), `admin` (on the server's host, against its database: the first API token), `sim`
//! (the Entra emulator), `demo` (all of them at once), and shell completions and man pages. The operator's commands, which reach a
//! server only through the Core API, and the commands for the key on the desk are
//! `keyward-cli`'s; the parser puts them all on one command line.

pub mod admin;
pub mod completions;
pub mod debug;
pub mod demo;
pub mod serve;
pub mod sim;

use anyhow::Context;
use clap::{Parser, Subcommand};
use keyward_cli::commands::{
    audit, bulk, connector, device, doctor, inspect, keys, passkeys, people, policy, provision, report,
    softkey, tap,
};

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
    /// Checks on the binary itself (`debug panic`); hidden from `--help`.
    #[command(hide = true)]
    Debug(debug::DebugArgs),
}

/// Runs the parsed command line: `serve` on the runtime it sizes itself, everything else on a
/// default one.
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
        Command::Debug(args) => debug::run(args),
    }
}

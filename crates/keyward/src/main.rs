//! The `keyward` binary: the server, the emulator, the demo and the operator's commands.

mod api_client;
mod bulk;
mod commands;
mod demo_command;
mod device_command;
mod doctor_command;
mod inspect_command;
mod provision;
mod serve_command;
mod sim_command;
mod softkey_command;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: a request allocates and frees many small buffers (JSON,
/// headers, rows), and glibc's allocator was about a tenth of the server's CPU per issuance in a
/// profile; mimalloc's thread-local free lists make those calls cheap.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keyward issues passkeys into Microsoft Entra ID on behalf of users and manages them for life.
#[derive(Debug, Parser)]
#[command(name = "keyward", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Emulated tenant + server + soft keys: provision demo people end to end, report, keep serving.
    Demo(demo_command::DemoArgs),
    /// Run the Entra ID emulator alone (tenant seed file, --latency-ms, --throttle, --faults).
    Sim(sim_command::SimArgs),
    /// Run the software security key on a socket (`softkey serve --listen unix:PATH`).
    Softkey(softkey_command::SoftkeyArgs),
    /// Run the CMS server (configuration: keyward.toml and KEYWARD_* variables).
    Serve(serve_command::ServeArgs),
    /// Server-side administration on the server's host: API tokens.
    Admin(serve_command::AdminArgs),
    /// Look after a security key: info, set-pin, change-pin, reset, credentials, config.
    Device(device_command::DeviceArgs),
    /// Put a passkey for one person on a security key, set its PIN and hand the PIN over.
    Provision(provision::command::ProvisionArgs),
    /// Provision everyone in a CSV as a resumable server job (soft keys or USB keys).
    Bulk(bulk::BulkArgs),
    /// The server's connection to Entra ID: show, test, validate-cert, set.
    Connector(commands::connector::ConnectorArgs),
    /// People Keyward issues passkeys to: sync from Entra, list, show, link, revoke.
    People(commands::people::PeopleArgs),
    /// Inventory and lifecycle of physical keys: list, show, add, revoke, lost, dispose, suspend.
    Keys(commands::keys::KeysArgs),
    /// Passkeys issued and found in Entra: list [--unmanaged], revoke, reconcile.
    Passkeys(commands::passkeys::PasskeysArgs),
    /// Entra FIDO2 method policy (state, targets, self-service, attestation, AAGUIDs); enrollment policies.
    Policy(commands::policy::PolicyArgs),
    /// Temporary Access Pass for onboarding: tap issue --user UPN.
    Tap(commands::tap::TapArgs),
    /// Reports: coverage and inventory, as a table, CSV or JSON.
    Report(commands::report::ReportArgs),
    /// The audit trail: list, verify, export.
    Audit(commands::audit::AuditArgs),
    /// Every reason a registration would fail, with fixes, before any key is touched.
    Doctor(doctor_command::DoctorArgs),
    /// Decode a registration body or attestation object; check it against the tenant's policy.
    Inspect(inspect_command::InspectArgs),
    /// Print a shell completion script (bash, zsh, fish, …).
    Completions(commands::completions::CompletionsArgs),
    /// Print the man page, or write one per command with --out DIR.
    Man(commands::completions::ManArgs),
    /// Checks on the binary itself (`debug panic`); hidden from `--help`.
    #[command(hide = true)]
    Debug(commands::debug::DebugArgs),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEYWARD_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Command::Serve(args) = cli.command {
        // The server sizes its own runtime from its configuration (see `worker_threads`).
        return exit_code(serve_command::run(args));
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => demo_command::run(args).await,
            Command::Sim(args) => sim_command::run(args).await,
            Command::Softkey(args) => softkey_command::run(args).await,
            Command::Device(args) => device_command::run(args).await,
            Command::Provision(args) => provision::command::run(args).await,
            Command::Bulk(args) => bulk::run(args).await,
            Command::Serve(_) => unreachable!("served above on its own runtime"),
            Command::Admin(args) => serve_command::admin(args).await,
            Command::Connector(args) => commands::connector::run(args).await,
            Command::People(args) => commands::people::run(args).await,
            Command::Keys(args) => commands::keys::run(args).await,
            Command::Passkeys(args) => commands::passkeys::run(args).await,
            Command::Policy(args) => commands::policy::run(args).await,
            Command::Tap(args) => commands::tap::run(args).await,
            Command::Report(args) => commands::report::run(args).await,
            Command::Audit(args) => commands::audit::run(args).await,
            Command::Doctor(args) => doctor_command::run(args).await,
            Command::Inspect(args) => inspect_command::run(args).await,
            Command::Completions(args) => {
                commands::completions::completions(args, <Cli as clap::CommandFactory>::command())
            }
            Command::Man(args) => commands::completions::man(args, <Cli as clap::CommandFactory>::command()),
            Command::Debug(args) => commands::debug::run(args),
        }
    });
    exit_code(result)
}

fn exit_code(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

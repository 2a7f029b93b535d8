//! `keyward serve`: the CMS server, and `keyward admin token …`, run on the server's host
//! against its database to create the first API token (and any later one).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use keyward_core::Role;
use keyward_server::{Caller, ServerConfig, Service};
use secrecy::ExposeSecret;

/// Where the server's configuration comes from; shared by `serve` and `admin`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Configuration file (TOML); a missing file means defaults. `KEYWARD_*` variables override it.
    #[arg(long, default_value = "keyward.toml", env = "KEYWARD_CONFIG")]
    pub config: PathBuf,
    /// Directory for the SQLite database and the secret key (overrides the file).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// `sqlite://PATH` or `postgres://USER@HOST/DB` (overrides the file).
    #[arg(long)]
    pub database_url: Option<String>,
}

impl ConfigArgs {
    /// The configuration in force.
    pub fn load(&self) -> anyhow::Result<ServerConfig> {
        let mut config = ServerConfig::load(Some(&self.config))?;
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(url) = &self.database_url {
            config.database_url = Some(url.clone());
        }
        Ok(config)
    }
}

/// `keyward serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Address to listen on (overrides the file), e.g. 127.0.0.1:8080.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
}

/// Runs the server until Ctrl-C, on a runtime with the configured number of request threads.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = args.config.load()?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = config.worker_threads(cores);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config, threads))
}

async fn serve(config: keyward_server::ServerConfig, threads: usize) -> anyhow::Result<()> {
    let listen = config.listen;
    let database = config.database_url();
    let service = Service::open(config).await.context("cannot start the server")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}; is another server running there?"))?;
    let url = format!("http://{}", listener.local_addr()?);
    println!("Keyward server listening on {url}");
    println!("  API: {url}/api/v1 (OpenAPI document at {url}/api/v1/openapi.json)");
    println!("  database: {} ({threads} request threads)", redact_url(&database));
    println!("  first API token: keyward admin token create --name NAME --role admin");
    let scheduler = keyward_server::spawn_scheduler(service.clone());
    if scheduler.is_some() {
        println!("  sync and reconcile every {} minutes", service.config.sync_interval_minutes);
    }
    keyward_server::serve(service, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

/// A database URL without its password.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// `keyward admin …`.
#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// API tokens: create (printed once), list, revoke.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token; it is printed once on standard output and stored only as a hash.
    Create {
        /// A unique name; audit events show it as `token:NAME`.
        #[arg(long)]
        name: String,
        /// admin, operator, helpdesk or auditor.
        #[arg(long)]
        role: Role,
    },
    /// List tokens (never the tokens themselves).
    List,
    /// Revoke a token by name.
    Revoke {
        /// The token's name.
        name: String,
    },
}

/// Runs an admin command against the server's database.
pub async fn admin(args: AdminArgs) -> anyhow::Result<()> {
    let service = Service::open(args.config.load()?).await.context("cannot open the server's database")?;
    let host = Caller::host(whoami());
    match args.command {
        AdminCommand::Token(TokenCommand::Create { name, role }) => {
            let (_, token) = service.create_token(&host, &name, role).await?;
            eprintln!("Created token {name:?} with role {role}. Store it now: it cannot be shown again.");
            println!("{}", token.expose_secret());
        }
        AdminCommand::Token(TokenCommand::List) => {
            let mut after = None;
            loop {
                let page = service.tokens(&host, after.as_deref(), Some(1000)).await?;
                for t in &page.items {
                    let state = if t.revoked_at.is_some() { "revoked" } else { "live" };
                    println!("{:<24} {:<9} {state}", t.name, t.role.as_str());
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        AdminCommand::Token(TokenCommand::Revoke { name }) => {
            service.revoke_token(&host, &name).await?;
            println!("Revoked token {name:?}.");
        }
    }
    Ok(())
}

fn whoami() -> String {
    std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into())
}

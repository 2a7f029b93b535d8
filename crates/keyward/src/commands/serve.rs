//! `keyward serve`: the CMS server, with its configuration from `keyward.toml`, `KEYWARD_*`
//! variables and the flags of [`ConfigArgs`] (which `keyward admin` shares).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use keyward_server::{ServerConfig, Service};

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

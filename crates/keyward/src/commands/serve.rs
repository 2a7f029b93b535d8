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
    /// `sqlite://PATH` or `postgres://USER@HOST/DB` (overrides the file). A URL with a password
    /// is refused here (the process list shows it): give it in KEYWARD_DATABASE_URL or the file.
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
            if carries_password(url) {
                anyhow::bail!(
                    "--database-url carries a password, and a command line is readable by every user of this \
                     machine (ps, /proc); put the URL in KEYWARD_DATABASE_URL or in the configuration file instead"
                );
            }
            config.database_url = Some(url.clone());
        }
        Ok(config)
    }
}

/// Whether a database URL holds a password (`postgres://user:secret@host/db`).
fn carries_password(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| u.password().is_some_and(|p| !p.is_empty()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_password_in_a_database_url_is_recognised() {
        let cases = [
            ("postgres://keyward:s3cret@db.example/keyward", true),
            ("postgresql://keyward:p%40ss@127.0.0.1:5432/kw", true),
            ("postgres://keyward@db.example/keyward", false),
            ("postgres://keyward:@db.example/keyward", false),
            ("sqlite:///var/lib/keyward/keyward.db", false),
            ("sqlite://keyward-data/keyward.db", false),
        ];
        for (url, expected) in cases {
            assert_eq!(super::carries_password(url), expected, "{url}");
        }
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
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", env = "KEYWARD_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The TLS certificate's private key (PEM).
    #[arg(long, value_name = "FILE", env = "KEYWARD_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Ask clients for a certificate issued by this CA (PEM); clients without one still connect.
    #[arg(long, value_name = "FILE", env = "KEYWARD_CLIENT_CA", requires = "tls_cert")]
    client_ca: Option<PathBuf>,
    /// Serve plain HTTP on a non-loopback address (tokens and secrets cross the network in clear).
    #[arg(long, conflicts_with = "tls_cert")]
    insecure_http: bool,
}

/// Runs the server until Ctrl-C, on a runtime with the configured number of request threads.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = args.config.load()?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            keyward_server::tls::acceptor(cert, key, args.client_ca.as_deref())
                .map_err(anyhow::Error::msg)?,
        ),
        _ => {
            keyward_server::tls::plain_http_allowed(config.listen, args.insecure_http)
                .map_err(anyhow::Error::msg)?;
            if !config.listen.ip().is_loopback() {
                eprintln!(
                    "WARNING: serving plain HTTP on {} (--insecure-http): API tokens and connector secrets cross the network in clear",
                    config.listen
                );
                tracing::warn!(listen = %config.listen, "serving plain HTTP on a non-loopback address");
            }
            None
        }
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = config.worker_threads(cores);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config, threads, tls))
}

async fn serve(
    config: keyward_server::ServerConfig,
    threads: usize,
    tls: Option<keyward_server::tls::TlsAcceptor>,
) -> anyhow::Result<()> {
    let listen = config.listen;
    let database = config.database_url();
    let service = Service::open(config).await.context("cannot start the server")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}; is another server running there?"))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}", listener.local_addr()?);
    println!("Keyward server listening on {url}");
    println!("  API: {url}/api/v1 (OpenAPI document at {url}/api/v1/openapi.json)");
    println!("  database: {} ({threads} request threads)", redact_url(&database));
    println!("  first API token: keyward admin token create --name NAME --role admin");
    let scheduler = keyward_server::spawn_scheduler(service.clone());
    if scheduler.is_some() {
        println!("  sync and reconcile every {} minutes", service.config.sync_interval_minutes);
    }
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match tls {
        Some(acceptor) => keyward_server::tls::serve_tls(service, listener, acceptor, stop).await?,
        None => keyward_server::serve(service, listener, stop).await?,
    }
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

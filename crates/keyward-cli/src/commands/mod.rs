//! The operator's commands: provision and bulk, people, keys, passkeys, policy, TAP, reports,
//! audit, the connector, doctor, and the key on the desk (`device`, `softkey`).
//!
//! Every command that needs the server talks to a running `keyward serve` through the typed Core
//! API client ([`crate::api_client`]) and never to Graph directly (docs/architecture.md): the
//! server holds the Entra credentials, enforces roles and writes the audit trail. What the commands share is where
//! the server and the token come from ([`ClientArgs`]) and how results are printed
//! ([`output`]).

pub mod audit;
pub mod bulk;
pub mod connector;
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
pub mod softkey;
pub mod tap;

use std::path::PathBuf;

use crate::api_client::{ApiClient, ApiClientError, ClientConfig};

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

//! `keyward keys list|show|add|revoke|lost|dispose|suspend`: the inventory of physical keys.
//!
//! A key's lifecycle is the server's: marking it lost, disposed or suspended revokes its passkeys
//! there (in Entra first, then in Keyward), so the command only names the change and reports how
//! many passkeys went with it.

use clap::{Args, Subcommand};
use keyward_proto::inventory::KeyView;
use keyward_proto::inventory::NewKey;

use super::{ClientArgs, when_not_found};

const KEY_HINT: &str = "`keyward keys list` shows the serials and ids in the inventory";
use super::output::{self, Format, Table, or_dash};

/// `keyward keys …`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// List the keys in the inventory.
    List {
        /// Only keys in this state: available, issued, suspended, lost, disposed.
        #[arg(long, value_name = "S")]
        state: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Show one key.
    Show {
        /// Keyward id or serial number.
        key: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Add a key to the inventory (state `available`).
    Add {
        /// Serial number printed on or read from the key.
        #[arg(long, value_name = "S")]
        serial: String,
        /// The model's AAGUID (`keyward device info` shows it).
        #[arg(long, value_name = "A")]
        aaguid: String,
        /// Model name, when the metadata does not know it.
        #[arg(long, value_name = "M")]
        model: Option<String>,
    },
    /// Revoke every passkey on the key (in Entra and in Keyward); the key stays in service.
    Revoke {
        /// Keyward id or serial number.
        key: String,
        /// Why (kept in the audit trail).
        #[arg(long, value_name = "R")]
        reason: Option<String>,
    },
    /// Report the key lost: its passkeys are revoked.
    Lost {
        /// Keyward id or serial number.
        key: String,
    },
    /// Dispose of the key: its passkeys are revoked and it cannot be issued again.
    Dispose {
        /// Keyward id or serial number.
        key: String,
    },
    /// Suspend the key: its passkeys are revoked until it is re-issued.
    Suspend {
        /// Keyward id or serial number.
        key: String,
    },
}

/// Runs `keyward keys …`.
pub async fn run(args: KeysArgs) -> anyhow::Result<()> {
    let api = args.client.client()?;
    match args.command {
        KeysCommand::List { state, format } => {
            let keys = api.keys(state.as_deref()).await?;
            let mut table = key_table();
            for k in &keys {
                table.row(key_row(k));
            }
            if keys.is_empty() && format == Format::Table {
                eprintln!("no keys; add one with `keyward keys add --serial S --aaguid A`");
            }
            output::print(format, &table, &keys)?;
        }
        KeysCommand::Show { key, format } => {
            let k = api.key(&key).await.map_err(|e| when_not_found(e, KEY_HINT))?;
            let mut table = key_table();
            table.row(key_row(&k));
            output::print(format, &table, &k)?;
        }
        KeysCommand::Add { serial, aaguid, model } => {
            let k = api.add_key(&NewKey { serial: Some(serial), aaguid, model, firmware: None }).await?;
            println!("added key {} (serial {}), state {}", k.id, or_dash(k.serial.as_deref()), k.state);
        }
        KeysCommand::Revoke { key, reason } => {
            let n = api.revoke_key_passkeys(&key, reason).await.map_err(|e| when_not_found(e, KEY_HINT))?;
            println!("revoked {} passkey(s) on key {key}", n.revoked);
        }
        KeysCommand::Lost { key } => change_state(&api, &key, "lost").await?,
        KeysCommand::Dispose { key } => change_state(&api, &key, "disposed").await?,
        KeysCommand::Suspend { key } => change_state(&api, &key, "suspended").await?,
    }
    Ok(())
}

async fn change_state(api: &crate::api_client::ApiClient, key: &str, state: &str) -> anyhow::Result<()> {
    let r = api.set_key_state(key, state).await.map_err(|e| when_not_found(e, KEY_HINT))?;
    println!(
        "key {} (serial {}) is now {}; {} passkey(s) revoked",
        r.key.id,
        or_dash(r.key.serial.as_deref()),
        r.key.state,
        r.revoked
    );
    Ok(())
}

fn key_table() -> Table {
    Table::new(&["serial", "state", "model", "aaguid", "firmware", "id"])
}

fn key_row(k: &KeyView) -> Vec<String> {
    vec![
        or_dash(k.serial.as_deref()),
        k.state.clone(),
        or_dash(k.model.as_deref()),
        k.aaguid.clone(),
        or_dash(k.firmware.as_deref()),
        k.id.clone(),
    ]
}

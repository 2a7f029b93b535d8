//! `keyward device …`: look after the security key on this desk (or a soft key) — show what it
//! is, set or change its PIN, list and delete its passkeys, set its PIN policy, reset it.
//!
//! The key is opened and PINs are read through [`crate::desk_key`]: from the terminal without
//! echo, or — for scripts and tests — from `KEYWARD_PIN` (the current PIN) and `KEYWARD_NEW_PIN`
//! (the PIN to set); never from arguments, never printed, never logged. The CTAP client is
//! synchronous (hidapi is), so each command runs on a blocking thread.

use std::io::IsTerminal;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use keyward_ctap::client::{PERMISSION_ACFG, PERMISSION_CM};
use keyward_ctap::{Client, CtapStatus, MinPinLength, PinToken};
use secrecy::SecretString;

use crate::desk_key::{KeyTransport, NEW_PIN_ENV, PIN_ENV, open, read_pin, read_pin_to_set};

/// Options of `keyward device`.
#[derive(Debug, clap::Args)]
#[command(after_help = "PINs are typed without echo. For scripts, set KEYWARD_PIN (the current PIN) and \
KEYWARD_NEW_PIN (the PIN to set); PINs are never accepted as arguments and never printed or logged.")]
pub struct DeviceArgs {
    /// The key: `hid` (a USB security key) or `soft:unix:PATH` / `soft:tcp:HOST:PORT` (a
    /// `keyward softkey serve`). PINs come from the terminal, or KEYWARD_PIN / KEYWARD_NEW_PIN.
    #[arg(long, global = true, default_value = "hid")]
    key: String,
    /// With `--key hid`: the USB serial number of the key to use when several are plugged in.
    #[arg(long, global = true)]
    serial: Option<String>,
    #[command(subcommand)]
    command: DeviceCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DeviceCommand {
    /// Show the key's AAGUID, versions, options, PIN retries, PIN policy and free room.
    Info,
    /// Set the first PIN (from KEYWARD_NEW_PIN or typed twice).
    SetPin,
    /// Change the PIN (KEYWARD_PIN and KEYWARD_NEW_PIN, or typed).
    ChangePin,
    /// Erase every passkey and the PIN (a USB key must be re-plugged and touched within seconds).
    Reset {
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// List the discoverable credentials (passkeys) on the key, or delete one.
    Credentials {
        /// Delete the credential with this id (base64url, as listed).
        #[arg(long, value_name = "ID")]
        delete: Option<String>,
    },
    /// Change the key's policy (needs the PIN).
    Config(ConfigArgs),
}

#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("setting")
        .required(true)
        .multiple(true)
        .args(["min_pin_length", "rp_ids", "force_pin_change", "toggle_always_uv", "enable_enterprise_attestation"])
))]
struct ConfigArgs {
    /// Raise the minimum PIN length (it can only grow, until a reset).
    #[arg(long)]
    min_pin_length: Option<u8>,
    /// RP id allowed to read the minimum PIN length (repeatable).
    #[arg(long = "rp-id", value_name = "RP_ID")]
    rp_ids: Vec<String>,
    /// Make the user change the PIN before its next use.
    #[arg(long)]
    force_pin_change: bool,
    /// Switch "always require user verification" on or off.
    #[arg(long, conflicts_with_all = ["min_pin_length", "rp_ids", "force_pin_change", "enable_enterprise_attestation"])]
    toggle_always_uv: bool,
    /// Enable enterprise attestation.
    #[arg(long, conflicts_with_all = ["min_pin_length", "rp_ids", "force_pin_change"])]
    enable_enterprise_attestation: bool,
}

fn read_new_pin() -> anyhow::Result<SecretString> {
    read_pin_to_set(NEW_PIN_ENV, "new PIN: ", "repeat the new PIN: ")
}

fn token(client: &mut Client<KeyTransport>, permissions: u8) -> anyhow::Result<PinToken> {
    let pin = read_pin(PIN_ENV, "PIN: ")?;
    match client.get_pin_uv_auth_token(&pin, permissions, None) {
        Err(e)
            if e.status() == Some(CtapStatus::PinPolicyViolation)
                && client.get_info().is_ok_and(|i| i.force_pin_change) =>
        {
            bail!("the key requires a new PIN before anything else; run `keyward device change-pin` first")
        }
        r => Ok(r?),
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn info(client: &mut Client<KeyTransport>) -> anyhow::Result<()> {
    let info = client.get_info()?;
    println!("AAGUID:              {}", uuid::Uuid::from_bytes(info.aaguid));
    println!("versions:            {}", info.versions.join(", "));
    println!("extensions:          {}", info.extensions.join(", "));
    let protocols: Vec<String> = info.pin_protocols.iter().map(u64::to_string).collect();
    println!("PIN protocols:       {}", protocols.join(", "));
    let options: Vec<String> = info.options.iter().map(|(k, v)| format!("{k}={}", yes_no(*v))).collect();
    println!("options:             {}", options.join(" "));
    if info.options.get("clientPin") == Some(&true) {
        match client.get_retries() {
            Ok(n) => println!("PIN:                 set, {n} retries left"),
            Err(e) => println!("PIN:                 set (retries unknown: {e})"),
        }
    } else {
        println!("PIN:                 not set (set one with `keyward device set-pin`)");
    }
    println!("min PIN length:      {}", info.min_pin_length);
    println!("PIN change forced:   {}", yes_no(info.force_pin_change));
    match info.remaining_discoverable_credentials {
        Some(n) => println!("remaining resident keys: {n}"),
        None => println!("remaining resident keys: not reported"),
    }
    Ok(())
}

fn decode_id(id: &str) -> anyhow::Result<Vec<u8>> {
    let trimmed = id.trim_end_matches('=');
    URL_SAFE_NO_PAD.decode(trimmed).or_else(|_| STANDARD.decode(id)).with_context(|| {
        format!("credential id {id:?} is not base64url; copy it from `keyward device credentials`")
    })
}

fn cred_protect_name(level: Option<u8>) -> String {
    match level {
        Some(1) => "1 (userVerificationOptional)".into(),
        Some(2) => "2 (userVerificationOptionalWithCredentialIDList)".into(),
        Some(3) => "3 (userVerificationRequired)".into(),
        Some(n) => format!("{n} (unknown)"),
        None => "not reported".into(),
    }
}

fn credentials(client: &mut Client<KeyTransport>, delete: Option<&str>) -> anyhow::Result<()> {
    let token = token(client, PERMISSION_CM)?;
    if let Some(id) = delete {
        let bytes = decode_id(id)?;
        client.delete_credential(&token, &bytes)?;
        println!("deleted credential {}", URL_SAFE_NO_PAD.encode(&bytes));
        return Ok(());
    }
    let meta = client.creds_metadata(&token)?;
    println!("{} discoverable credentials, room for {} more", meta.existing, meta.remaining);
    for rp in client.enumerate_rps(&token)? {
        println!("rp: {}", rp.id);
        for c in client.enumerate_credentials(&token, &rp.id_hash)? {
            let name = c.user_name.as_deref().unwrap_or("(no name)");
            let display = c.user_display_name.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
            println!("  user: {name}{display}, handle {}", URL_SAFE_NO_PAD.encode(&c.user_id));
            println!("    credential id: {}", URL_SAFE_NO_PAD.encode(&c.id));
            println!("    credProtect:   {}", cred_protect_name(c.cred_protect));
        }
    }
    Ok(())
}

fn config(client: &mut Client<KeyTransport>, args: &ConfigArgs) -> anyhow::Result<()> {
    let token = token(client, PERMISSION_ACFG)?;
    if args.toggle_always_uv {
        client.toggle_always_uv(&token)?;
        let now = client.get_info()?.options.get("alwaysUv").copied().unwrap_or(false);
        println!("alwaysUv is now {}", if now { "on" } else { "off" });
    } else if args.enable_enterprise_attestation {
        client.enable_enterprise_attestation(&token)?;
        println!("enterprise attestation enabled");
    } else {
        let req = MinPinLength {
            new_min_pin_length: args.min_pin_length,
            rp_ids: args.rp_ids.clone(),
            force_change_pin: args.force_pin_change,
        };
        client.set_min_pin_length(&token, &req)?;
        let info = client.get_info()?;
        println!("min PIN length: {}", info.min_pin_length);
        println!("PIN change forced: {}", yes_no(info.force_pin_change));
        if !args.rp_ids.is_empty() {
            println!("RP ids that may read it: {}", args.rp_ids.join(", "));
        }
    }
    Ok(())
}

fn confirm_reset() -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!("reset erases every passkey and the PIN; pass --yes to confirm when not at a terminal");
    }
    eprint!("reset erases every passkey and the PIN on this key; type `reset` to go on: ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).context("reading the confirmation")?;
    if line.trim() != "reset" {
        bail!("not confirmed; nothing was changed");
    }
    Ok(())
}

fn run_blocking(args: DeviceArgs) -> anyhow::Result<()> {
    tracing::debug!(key = %args.key, command = ?args.command, "device command");
    if let DeviceCommand::Reset { yes: false } = args.command {
        confirm_reset()?;
    }
    let mut client = open(&args.key, args.serial.as_deref())?;
    match &args.command {
        DeviceCommand::Info => info(&mut client)?,
        DeviceCommand::SetPin => {
            if client.get_info()?.options.get("clientPin") == Some(&true) {
                bail!("the key already has a PIN; use `keyward device change-pin`");
            }
            client.set_pin(&read_new_pin()?)?;
            println!("PIN set");
        }
        DeviceCommand::ChangePin => {
            let current = read_pin(PIN_ENV, "current PIN: ")?;
            let new = read_new_pin()?;
            client.change_pin(&current, &new)?;
            println!("PIN changed");
        }
        DeviceCommand::Reset { .. } => {
            eprintln!("touch the key to confirm the reset");
            client.reset()?;
            println!("key reset: every passkey and the PIN are erased");
        }
        DeviceCommand::Credentials { delete } => credentials(&mut client, delete.as_deref())?,
        DeviceCommand::Config(c) => config(&mut client, c)?,
    }
    Ok(())
}

/// Runs one device command.
pub async fn run(args: DeviceArgs) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || run_blocking(args)).await.context("the device command panicked")?
}

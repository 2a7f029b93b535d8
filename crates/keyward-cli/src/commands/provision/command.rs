//! The `keyward provision` command line: opens the key, gets the PIN (random or typed), runs
//! [`super::flow`], and hands the PIN over — framed once on stderr, or in an encrypted letter
//! — then tells the server how it was handed over (never what it is).
//!
//! Keys are opened and typed PINs read with the same code as `keyward device`
//! ([`crate::desk_key`]), so `--key`, `KEYWARD_PIN` and the no-echo prompt behave the same in
//! both commands.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};

use super::flow::{FlowOptions, PinMode, ProvisionError, ProvisionRequest, Provisioned, provision_with};
use super::letter::{Letter, parse_recipient, write_encrypted};
use super::pin::{Charset, PinGenerator};
use crate::api_client::ApiClient;
use crate::commands::ClientArgs;
use crate::desk_key::{PIN_ENV, open, open_usb, read_pin_to_set};

/// How long a re-plugged USB key may take to show up again.
const REPLUG_WAIT: Duration = Duration::from_secs(30);

/// Where the PIN comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PinSource {
    /// Generated from a CSPRNG and shown once (or put in the letter).
    Random,
    /// Typed twice without echo, or taken from KEYWARD_PIN.
    Prompt,
}

/// Options of `keyward provision`.
#[derive(Debug, clap::Args)]
#[command(after_help = "The PIN is never an argument: it is generated, or typed without echo (KEYWARD_PIN \
for scripts). A random PIN is shown once on stderr, or only put in the encrypted --letter.")]
pub struct ProvisionArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The person (UPN), synced from Entra.
    #[arg(long, value_name = "UPN")]
    user: String,
    /// The key: `hid` (USB) or `soft:unix:PATH` / `soft:tcp:HOST:PORT` (`keyward softkey serve`).
    #[arg(long, default_value = "hid")]
    key: String,
    /// The key's serial (for the inventory; with `hid`, which key to use). Default: the USB serial.
    #[arg(long)]
    serial: Option<String>,
    /// Where the PIN comes from.
    #[arg(long, value_enum, default_value_t = PinSource::Random)]
    pin: PinSource,
    /// Length of a random PIN (never below the policy's and the key's minimum, nor 6).
    #[arg(long, value_parser = clap::value_parser!(u8).range(4..=63))]
    pin_length: Option<u8>,
    /// Symbols of a random PIN.
    #[arg(long, value_enum, default_value_t = Charset::Digits)]
    pin_charset: Charset,
    /// Make the person change the PIN at first use (default: as the enrollment policy says).
    #[arg(long)]
    force_pin_change: bool,
    /// Reset the key first: erases its passkeys and PIN (a USB key must be re-plugged).
    #[arg(long)]
    reset: bool,
    /// Write the PIN letter (PDF, age-encrypted) here instead of showing the PIN.
    #[arg(long, value_name = "FILE.pdf.age", requires = "recipient")]
    letter: Option<PathBuf>,
    /// The age X25519 recipient (`age1…`) the letter is encrypted to.
    #[arg(long, value_name = "AGE_PUBKEY", requires = "letter")]
    recipient: Option<String>,
    /// Display name of the passkey in Entra (default: model and serial).
    #[arg(long)]
    display_name: Option<String>,
}

fn progress(line: &str) {
    eprintln!("provision: {line}");
}

/// Reads a PIN the operator chooses: KEYWARD_PIN, or typed twice without echo.
fn read_chosen_pin() -> anyhow::Result<SecretString> {
    read_pin_to_set(PIN_ENV, "PIN for the key: ", "repeat the PIN: ")
}

/// Guides a USB reset: the key must be re-plugged, and is used again once it reappears with
/// the same serial (authenticatorReset only works within seconds of power-up).
fn replug(serial: Option<&str>) -> anyhow::Result<()> {
    let present = || {
        keyward_ctap::usb::list_keys()
            .map(|keys| keys.iter().any(|k| serial.is_none_or(|s| k.serial.as_deref() == Some(s))))
            .unwrap_or(false)
    };
    eprintln!("provision: remove and re-insert the key now (a reset is only allowed right after power-up)");
    let start = Instant::now();
    while present() {
        if start.elapsed() > REPLUG_WAIT {
            bail!(
                "the key was not removed within {} s; run again and re-plug it when asked",
                REPLUG_WAIT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    while !present() {
        if start.elapsed() > REPLUG_WAIT {
            bail!("the key did not come back within {} s; plug it in and run again", REPLUG_WAIT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("provision: the key is back; touch it when it blinks to confirm the reset");
    Ok(())
}

fn show_pin(name: &str, upn: &str, pin: &SecretString) {
    let rule = "=".repeat(64);
    eprintln!("{rule}");
    eprintln!("  PIN for {name} <{upn}>:");
    eprintln!();
    eprintln!("      {}", pin.expose_secret());
    eprintln!();
    eprintln!("  Write it down or hand it over now: it is shown only this once.");
    eprintln!("{rule}");
}

/// Runs `keyward provision`.
pub async fn run(args: ProvisionArgs) -> anyhow::Result<()> {
    check_args(&args)?;
    let api = args.client.client()?;
    let pin = match args.pin {
        PinSource::Random => PinMode::Random,
        PinSource::Prompt => PinMode::Given(read_chosen_pin()?),
    };
    // With a USB key the serial comes from the key itself unless given; a reset needs the key
    // re-plugged right before it (after the server accepted the issuance), and the same serial
    // must come back.
    let hid = args.key == "hid";
    let (mut key, serial) = if hid {
        let (client, usb) = open_usb(args.serial.as_deref())?;
        (client, args.serial.clone().or(usb.serial))
    } else {
        (open(&args.key, None)?, args.serial.clone())
    };
    let reopen = || -> anyhow::Result<_> {
        replug(serial.as_deref())?;
        Ok(open_usb(serial.as_deref())?.0)
    };
    let request = ProvisionRequest {
        upn: args.user.clone(),
        serial: serial.clone(),
        pin,
        force_pin_change: args.force_pin_change.then_some(true),
        reset: args.reset,
        channel: "operator",
        display_name: args.display_name.clone(),
    };
    let generator = PinGenerator { charset: args.pin_charset, length: args.pin_length.map(usize::from) };
    // The letter is written before the PIN is set (the flow calls this right before each
    // set_pin), so a key never holds a PIN that is in no letter; the model is not known yet.
    let name = display_name(&api, &args.user).await;
    let letter_written = std::sync::atomic::AtomicBool::new(false);
    let write_letter = |pin: &SecretString| -> anyhow::Result<()> {
        let (Some(path), Some(recipient)) = (&args.letter, &args.recipient) else { return Ok(()) };
        let letter = Letter { name: &name, upn: &args.user, serial: serial.as_deref(), model: None, pin };
        write_encrypted(path, recipient, &letter)?;
        letter_written.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    };
    let opts = FlowOptions {
        generator,
        progress: Some(&progress),
        reopen_for_reset: if hid && args.reset { Some(&reopen) } else { None },
        before_pin_set: Some(&write_letter),
    };
    let done = provision_with(&api, &mut key, &request, &opts).await.inspect_err(say_what_was_undone)?;
    progress(&format!(
        "passkey {} registered for {} (issuance {})",
        done.passkey.id, args.user, done.issuance_id
    ));
    progress(&format!("proof of sign-in: {}", done.sign_in));
    let written = letter_written.load(std::sync::atomic::Ordering::SeqCst);
    hand_over_pin(&api, &args, &request, &done, (&name, serial.as_deref()), written).await?;
    println!("{}", done.passkey.id);
    Ok(())
}

/// Refuses option combinations that cannot work, before the key or the server is touched.
fn check_args(args: &ProvisionArgs) -> anyhow::Result<()> {
    if args.pin == PinSource::Prompt && (args.pin_length.is_some() || args.pin_charset != Charset::Digits) {
        bail!("--pin-length and --pin-charset apply to --pin random only; drop them or use --pin random");
    }
    if let Some(r) = &args.recipient {
        parse_recipient(r)?;
    }
    if let Some(letter) = &args.letter {
        let dir = letter.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        if !dir.is_dir() {
            bail!("the directory of --letter {} does not exist; create it first", letter.display());
        }
    }
    Ok(())
}

/// After a failure: the step that failed and what was undone on the server and on the key.
fn say_what_was_undone(e: &ProvisionError) {
    let removed = match e.credential_removed() {
        None => "none was made",
        Some(true) => "yes",
        Some(false) => "NO",
    };
    let failed = if e.issuance_marked_failed() { "yes" } else { "no" };
    progress(&format!(
        "stopped at: {}; issuance marked failed: {failed}; credential removed from the key: {removed}",
        e.step()
    ));
}

/// The person's display name for the letter and the terminal (the UPN if the server has none).
async fn display_name(api: &ApiClient, upn: &str) -> String {
    api.person(upn).await.map(|p| p.person.display_name).unwrap_or_else(|_| upn.to_owned())
}

/// Hands the PIN over — in the encrypted letter (already written before the PIN was set,
/// unless the key kept a PIN it already had), or once on the terminal (a PIN the operator
/// chose is not shown) — and records how in the audit trail.
async fn hand_over_pin(
    api: &ApiClient,
    args: &ProvisionArgs,
    request: &ProvisionRequest,
    done: &Provisioned,
    (name, serial): (&str, Option<&str>),
    letter_written: bool,
) -> anyhow::Result<()> {
    let chosen = match &request.pin {
        PinMode::Given(p) => Some(p),
        PinMode::Random => None,
    };
    let Some(pin) = done.pin.as_ref().or(chosen) else { bail!("internal error: no PIN to hand over") };
    let (method, detail) = match (&args.letter, &args.recipient) {
        (Some(path), Some(recipient)) => {
            if !letter_written {
                let model = done.passkey.model.as_deref();
                let letter = Letter { name, upn: &args.user, serial, model, pin };
                write_encrypted(path, recipient, &letter)?;
            }
            progress(&format!("PIN letter written to {} (encrypted to {recipient})", path.display()));
            ("letter", Some(format!("{} for {recipient}", path.display())))
        }
        _ if done.pin.is_some() => {
            show_pin(name, &args.user, pin);
            ("terminal", None)
        }
        _ => ("user-chosen", None),
    };
    api.pin_handover(&done.issuance_id, method, detail)
        .await
        .context("the key is provisioned, but the PIN hand-over could not be recorded in the audit")?;
    Ok(())
}

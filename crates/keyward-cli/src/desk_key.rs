//! The security key on the operator's desk: open it by `--key hid|soft:…`, pick one of several
//! USB keys by serial or by touch, and read its PIN from the terminal or the environment.
//!
//! `keyward device`, `keyward provision`, `keyward doctor` and `keyward bulk provision --key hid`
//! all reach the key through here, so `--key`, `--serial`, `KEYWARD_PIN` and the no-echo prompt
//! behave the same in every command. PINs are never taken as arguments (visible in `ps` and
//! shell history), never printed and never logged: they live in `SecretString`s that zeroize on
//! drop, and only the CTAP client sees them. The CTAP client is synchronous (hidapi is).

use anyhow::{Context, bail};
use keyward_ctap::transport::Report;
use keyward_ctap::{
    Client, HidDevice, SocketTransport, Timeouts, Transport, TransportError, UsbKey, UsbTransport,
};
use secrecy::{ExposeSecret, SecretString};

/// Environment variable with the current PIN (for scripts; otherwise the PIN is prompted).
pub const PIN_ENV: &str = "KEYWARD_PIN";
/// Environment variable with the new PIN for set-pin and change-pin.
pub const NEW_PIN_ENV: &str = "KEYWARD_NEW_PIN";

/// The transports `--key` can name.
pub(crate) enum KeyTransport {
    Soft(SocketTransport),
    Usb(UsbTransport),
}

impl Transport for KeyTransport {
    fn send_report(&mut self, report: &Report) -> Result<(), TransportError> {
        match self {
            Self::Soft(t) => t.send_report(report),
            Self::Usb(t) => t.send_report(report),
        }
    }

    fn recv_report(&mut self, timeout: std::time::Duration) -> Result<Option<Report>, TransportError> {
        match self {
            Self::Soft(t) => t.recv_report(timeout),
            Self::Usb(t) => t.recv_report(timeout),
        }
    }
}

/// The key's `--key` spelling: `hid`, or `soft:` and a `keyward softkey serve` address.
pub(crate) fn open(key: &str, serial: Option<&str>) -> anyhow::Result<Client<KeyTransport>> {
    if let Some(addr) = key.strip_prefix("soft:") {
        if serial.is_some() {
            bail!("--serial only applies to --key hid");
        }
        let t = SocketTransport::connect(addr)
            .with_context(|| format!("is `keyward softkey serve --listen {addr}` running?"))?;
        client(KeyTransport::Soft(t))
    } else if key == "hid" {
        open_usb(serial).map(|(client, _)| client)
    } else {
        bail!("--key {key:?} is not a key; use hid, soft:unix:PATH or soft:tcp:HOST:PORT");
    }
}

/// Opens the USB key: the one with `serial`, the only one, or the one the operator touches;
/// returns it with its USB description (serial, product).
pub(crate) fn open_usb(serial: Option<&str>) -> anyhow::Result<(Client<KeyTransport>, UsbKey)> {
    let mut keys = plugged_in_keys(serial)?;
    if keys.len() == 1 {
        eprintln!("using {}", describe(&keys[0]));
        return Ok((open_one(&keys[0])?, keys.swap_remove(0)));
    }
    let winner = pick_by_touch(&keys)?;
    Ok((winner.0, keys.swap_remove(winner.1)))
}

/// The plugged-in FIDO keys (only the one with `serial`, when given); never empty.
fn plugged_in_keys(serial: Option<&str>) -> anyhow::Result<Vec<UsbKey>> {
    let mut keys = keyward_ctap::usb::list_keys()?;
    if let Some(serial) = serial {
        keys.retain(|k| k.serial.as_deref() == Some(serial));
        if keys.is_empty() {
            bail!(
                "no security key with serial {serial:?} is plugged in; check the serial and the USB connection"
            );
        }
    }
    if keys.is_empty() {
        bail!(
            "no FIDO security key found on USB; plug one in (on Linux, check /dev/hidraw* permissions) \
             or use --key soft:unix:PATH"
        );
    }
    Ok(keys)
}

/// Opens every key and keeps the one the operator touches, with its index in `keys`.
fn pick_by_touch(keys: &[UsbKey]) -> anyhow::Result<(Client<KeyTransport>, usize)> {
    eprintln!("{} security keys are plugged in; touch the one to use (or pass --serial):", keys.len());
    for k in keys {
        eprintln!("  {}", describe(k));
    }
    let mut clients = keys.iter().map(open_one).collect::<anyhow::Result<Vec<_>>>()?;
    let winner = keyward_ctap::select(&mut clients)?;
    eprintln!("using {}", describe(&keys[winner]));
    Ok((clients.swap_remove(winner), winner))
}

fn open_one(key: &UsbKey) -> anyhow::Result<Client<KeyTransport>> {
    client(KeyTransport::Usb(UsbTransport::open(key)?)).with_context(|| describe(key))
}

fn client(transport: KeyTransport) -> anyhow::Result<Client<KeyTransport>> {
    let hid =
        HidDevice::open(transport, Timeouts::default()).context("the key does not answer CTAPHID INIT")?;
    Ok(Client::new(hid))
}

/// A USB key as the operator sees it: product, serial and device path.
fn describe(key: &UsbKey) -> String {
    let name = key.product.as_deref().unwrap_or("FIDO key");
    match &key.serial {
        Some(serial) => format!("{name} (serial {serial}, {})", key.path),
        None => format!("{name} ({})", key.path),
    }
}

/// Reads a PIN from the variable `env` when it is set, else from the terminal without echo.
pub(crate) fn read_pin(env: &str, prompt: &str) -> anyhow::Result<SecretString> {
    if let Ok(v) = std::env::var(env) {
        return Ok(SecretString::from(v));
    }
    let v = rpassword::prompt_password(prompt)
        .with_context(|| format!("cannot read the PIN from the terminal; set {env} for scripts"))?;
    Ok(SecretString::from(v))
}

/// Reads a PIN to set on the key: the variable `env` when it is set, else typed twice without
/// echo (the two must match).
pub(crate) fn read_pin_to_set(env: &str, prompt: &str, repeat: &str) -> anyhow::Result<SecretString> {
    if std::env::var_os(env).is_some() {
        return read_pin(env, "");
    }
    let first = read_pin(env, prompt)?;
    let again = read_pin(env, repeat)?;
    if first.expose_secret() != again.expose_secret() {
        bail!("the two PINs differ; run the command again");
    }
    Ok(first)
}

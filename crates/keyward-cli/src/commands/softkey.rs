//! `keyward softkey serve`: the software authenticator as a process other programs reach over a
//! socket — or, on Linux, as a HID security key through `/dev/uhid` that every FIDO client on
//! the machine sees — optionally backed by an encrypted state file (a device-bound passkey vault).
//!
//! Touch is simulated: approved at once by default, or with `--touch signal` only when the
//! process gets SIGUSR1 while the key waits (what a test needs to pick one of two keys by touch).
//!
//! The passphrase comes from `KEYWARD_SOFTKEY_PASSPHRASE` or a no-echo prompt (`rpassword`),
//! never from the command line, where `ps` and shell history would show it. Settings that are
//! part of the device (AAGUID, attestation) are fixed when the state file is created with
//! `--init`; giving them when opening an existing file is refused rather than silently ignored.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use keyward_softkey::ca::AttestationCa;
use keyward_softkey::state::{KdfParams, StateFile};
use keyward_softkey::{Attestation, Authenticator, Config, PresencePolicy, ServeOptions, TouchButton};
use secrecy::{ExposeSecret, SecretString};

/// Environment variable holding the state file passphrase (for scripts and tests).
pub const PASSPHRASE_ENV: &str = "KEYWARD_SOFTKEY_PASSPHRASE";

/// Options of `keyward softkey`.
#[derive(Debug, clap::Args)]
pub struct SoftkeyArgs {
    #[command(subcommand)]
    command: SoftkeyCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SoftkeyCommand {
    /// Serve a soft key on a socket, or as a HID device, until Ctrl-C.
    Serve(ServeArgs),
}

/// How the simulated user touches the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TouchMode {
    /// Every touch request is approved at once.
    Auto,
    /// A touch request waits (up to 30 s) for SIGUSR1 to this process.
    Signal,
}

/// How long `--touch signal` waits for SIGUSR1 before USER_ACTION_TIMEOUT.
const SIGNAL_TOUCH_WAIT: Duration = Duration::from_secs(30);

/// Which attestation statement the soft key produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AttestationKind {
    /// packed with an x5c chain from a CA (generated, or --ca-cert/--ca-key).
    Packed,
    /// packed, signed by the credential key itself.
    #[value(name = "self")]
    SelfSigned,
    /// no attestation.
    None,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "The state file passphrase is typed without echo, or taken from \
KEYWARD_SOFTKEY_PASSPHRASE for scripts; it is never accepted as an argument.")]
struct ServeArgs {
    /// Where to listen: unix:PATH, tcp:HOST:PORT (loopback unless --allow-remote), or uhid (a
    /// HID security key through /dev/uhid, Linux).
    #[arg(long)]
    listen: String,
    /// Let tcp: listen on an address other machines reach (anyone who connects can use the key).
    #[arg(long)]
    allow_remote: bool,
    /// How touch requests are answered.
    #[arg(long, value_enum, default_value_t = TouchMode::Auto)]
    touch: TouchMode,
    /// With --listen uhid: the serial number the key reports (default: a random KW-XXXXXXXX).
    #[arg(long, value_name = "SERIAL")]
    hid_serial: Option<String>,
    /// With --listen uhid: the product name the key reports.
    #[arg(long, value_name = "NAME", default_value = "Keyward soft key")]
    hid_name: String,
    /// Keep the key's state in this file, encrypted with a passphrase read from
    /// KEYWARD_SOFTKEY_PASSPHRASE or the terminal.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Create the state file (a new, empty key) instead of opening it.
    #[arg(long, requires = "state")]
    init: bool,
    /// The key's AAGUID (default: the soft key's own, "keyward-softkey!").
    #[arg(long)]
    aaguid: Option<uuid::Uuid>,
    /// Attestation statement format (default: packed with a generated CA).
    #[arg(long, value_enum)]
    attestation: Option<AttestationKind>,
    /// PEM certificate of the CA that issues the attestation certificate.
    #[arg(long, requires = "ca_key")]
    ca_cert: Option<PathBuf>,
    /// PKCS#8 PEM private key of that CA.
    #[arg(long, requires = "ca_cert")]
    ca_key: Option<PathBuf>,
    /// Write the generated CA certificate here (so a verifier can trust it).
    #[arg(long)]
    write_ca_cert: Option<PathBuf>,
}

impl ServeArgs {
    fn sets_device_identity(&self) -> bool {
        self.aaguid.is_some()
            || self.attestation.is_some()
            || self.ca_cert.is_some()
            || self.write_ca_cert.is_some()
    }
}

fn passphrase(confirm: bool) -> anyhow::Result<SecretString> {
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        return Ok(SecretString::from(p));
    }
    let hint = || format!("cannot read the soft key passphrase from the terminal; set {PASSPHRASE_ENV}");
    let first = SecretString::from(rpassword::prompt_password("soft key passphrase: ").with_context(hint)?);
    if confirm {
        let again =
            SecretString::from(rpassword::prompt_password("repeat the passphrase: ").with_context(hint)?);
        if again.expose_secret() != first.expose_secret() {
            bail!("the two passphrases differ; run the command again");
        }
    }
    Ok(first)
}

fn attestation(args: &ServeArgs, aaguid: &[u8; 16]) -> anyhow::Result<Attestation> {
    let kind = args.attestation.unwrap_or(AttestationKind::Packed);
    if kind != AttestationKind::Packed && (args.ca_cert.is_some() || args.write_ca_cert.is_some()) {
        bail!("--ca-cert, --ca-key and --write-ca-cert only apply to --attestation packed");
    }
    Ok(match kind {
        AttestationKind::None => Attestation::None,
        AttestationKind::SelfSigned => Attestation::SelfSigned,
        AttestationKind::Packed => {
            let ca = match (&args.ca_cert, &args.ca_key) {
                (Some(cert), Some(key)) => {
                    let read = |p: &Path| {
                        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
                    };
                    AttestationCa::from_pem(&read(cert)?, &SecretString::from(read(key)?))?
                }
                _ => AttestationCa::generate()?,
            };
            if let Some(out) = &args.write_ca_cert {
                std::fs::write(out, ca.certificate_pem())
                    .with_context(|| format!("cannot write {}", out.display()))?;
                println!("attestation CA certificate: {}", out.display());
            }
            ca.issue_batch(aaguid)?.into_attestation()
        }
    })
}

fn fresh_authenticator(args: &ServeArgs) -> anyhow::Result<Authenticator> {
    let mut config = Config::default();
    if let Some(a) = args.aaguid {
        config.aaguid = *a.as_bytes();
    }
    config.attestation = attestation(args, &config.aaguid)?;
    Ok(Authenticator::new(config))
}

/// Runs the soft key until Ctrl-C (or SIGTERM).
pub async fn run(args: SoftkeyArgs) -> anyhow::Result<()> {
    let SoftkeyCommand::Serve(args) = args.command;
    let (authenticator, state_file) = match &args.state {
        None => (fresh_authenticator(&args)?, None),
        Some(path) if args.init => {
            let pass = passphrase(true)?;
            let a = fresh_authenticator(&args)?;
            let file = StateFile::create(path, &pass, KdfParams::default(), &a)?;
            (a, Some(file))
        }
        Some(path) => {
            if args.sets_device_identity() {
                bail!(
                    "--aaguid, --attestation, --ca-* and --write-ca-cert belong to a new key and are fixed when the state file is created; \
                     drop them, or use --init with a new --state file"
                );
            }
            let pass = passphrase(false)?;
            let (file, a) = StateFile::open(path, &pass, Config::default())?;
            (a, Some(file))
        }
    };
    let mut authenticator = authenticator;
    if args.touch == TouchMode::Signal {
        authenticator.set_presence_policy(PresencePolicy::OnRequest(SIGNAL_TOUCH_WAIT));
    }
    let button = authenticator.touch_button();
    let stop = StopSignals::install()?;
    let aaguid = uuid::Uuid::from_bytes(authenticator.device_aaguid());
    let state_file = state_file.map(Arc::new);
    let served = if args.listen == "uhid" {
        if args.allow_remote {
            bail!("--allow-remote applies to tcp: only");
        }
        #[cfg(target_os = "linux")]
        {
            Served::Hid(serve_hid(&args, authenticator, state_file)?)
        }
        #[cfg(not(target_os = "linux"))]
        bail!("--listen uhid needs Linux's /dev/uhid; listen on unix:PATH or tcp:127.0.0.1:PORT instead")
    } else {
        if args.hid_serial.is_some() {
            bail!("--hid-serial applies to --listen uhid only");
        }
        let options = ServeOptions { state_file, allow_remote: args.allow_remote };
        Served::Socket(keyward_softkey::serve_with(&args.listen, authenticator, options)?)
    };
    tracing::info!(address = served.address(), "soft key serving");
    println!("keyward softkey: listening on {}", served.address());
    println!("aaguid: {aaguid}");
    if let Some(path) = &args.state {
        println!("state: {} (encrypted)", path.display());
    }
    if args.touch == TouchMode::Signal {
        let pid = std::process::id();
        println!("touch: send SIGUSR1 to touch the key (kill -USR1 {pid}) while it waits");
    }
    println!("press Ctrl-C to stop");
    stop.wait(&button).await?;
    drop(served);
    println!("keyward softkey: stopped");
    Ok(())
}

/// The running key, on a socket or as a HID device; stops serving when dropped.
enum Served {
    Socket(keyward_softkey::Served),
    #[cfg(target_os = "linux")]
    Hid(keyward_softkey::uhid::ServedUhid),
}

impl Served {
    fn address(&self) -> String {
        match self {
            Self::Socket(s) => s.address().to_owned(),
            #[cfg(target_os = "linux")]
            Self::Hid(h) => format!("uhid (serial {}, name {:?})", h.identity().serial, h.identity().name),
        }
    }
}

#[cfg(target_os = "linux")]
fn serve_hid(
    args: &ServeArgs,
    authenticator: Authenticator,
    state_file: Option<Arc<StateFile>>,
) -> anyhow::Result<keyward_softkey::uhid::ServedUhid> {
    let serial = args
        .hid_serial
        .clone()
        .unwrap_or_else(|| format!("KW-{}", &uuid::Uuid::new_v4().simple().to_string()[..8].to_uppercase()));
    let identity = keyward_softkey::uhid::UhidIdentity { name: args.hid_name.clone(), serial };
    Ok(keyward_softkey::uhid::serve_uhid(authenticator, state_file, identity)?)
}

/// Signal handlers installed before the soft key announces itself, so a Ctrl-C sent as soon
/// as "listening" appears is never lost.
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    touch: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt()).context("installing the Ctrl-C handler")?,
                terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
                touch: signal(SignalKind::user_defined1())
                    .context("installing the SIGUSR1 (touch) handler")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Waits for Ctrl-C or SIGTERM, pressing `button` at every SIGUSR1 meanwhile.
    async fn wait(mut self, button: &TouchButton) -> anyhow::Result<()> {
        #[cfg(unix)]
        loop {
            tokio::select! {
                _ = self.interrupt.recv() => break,
                _ = self.terminate.recv() => break,
                _ = self.touch.recv() => button.press(),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = button;
            tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
        }
        Ok(())
    }
}

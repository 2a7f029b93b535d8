//! `keyward softkey serve`: the software authenticator as a process other programs reach over a
//! socket, optionally backed by an encrypted state file (a device-bound passkey vault).
//!
//! The passphrase comes from `KEYWARD_SOFTKEY_PASSPHRASE` or a no-echo prompt (`rpassword`),
//! never from the command line, where `ps` and shell history would show it. Settings that are
//! part of the device (AAGUID, attestation) are fixed when the state file is created with
//! `--init`; giving them when opening an existing file is refused rather than silently ignored.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use keyward_softkey::ca::AttestationCa;
use keyward_softkey::state::{KdfParams, StateFile};
use keyward_softkey::{Attestation, Authenticator, Config};
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
    /// Serve a soft key on a socket until Ctrl-C.
    Serve(ServeArgs),
}

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
    /// Where to listen: unix:PATH or tcp:HOST:PORT.
    #[arg(long)]
    listen: String,
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
    let stop = StopSignals::install()?;
    let aaguid = uuid::Uuid::from_bytes(authenticator.device_aaguid());
    let served = keyward_softkey::serve_authenticator(&args.listen, authenticator, state_file.map(Arc::new))?;
    tracing::info!(address = served.address(), "soft key serving");
    println!("keyward softkey: listening on {}", served.address());
    println!("aaguid: {aaguid}");
    if let Some(path) = &args.state {
        println!("state: {} (encrypted)", path.display());
    }
    println!("press Ctrl-C to stop");
    stop.wait().await?;
    drop(served);
    println!("keyward softkey: stopped");
    Ok(())
}

/// Signal handlers installed before the soft key announces itself, so a Ctrl-C sent as soon
/// as "listening" appears is never lost.
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt()).context("installing the Ctrl-C handler")?,
                terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn wait(mut self) -> anyhow::Result<()> {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
        Ok(())
    }
}

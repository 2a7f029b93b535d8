//! Soft keys for bulk runs: one device-bound software passkey vault per person,
//! `DIR/<upn>.softkey`, encrypted under `KEYWARD_SOFTKEY_PASSPHRASE`, served in-process on a
//! private unix socket while that person is provisioned.
//!
//! The vault is created *before* the issuance and the soft key saves every state change before
//! it answers (see `keyward_softkey::state`), so a crash at any point leaves a file that holds
//! every credential the key ever made. A resumed run therefore needs only the file and the
//! server: a registered passkey whose credential is in Keyward means the person is done; anything
//! else means the vault holds at most an unused credential, and the vault is deleted (with the
//! credential in it) before the person is provisioned on a fresh one. The soft key's credential
//! list is not public API, so deleting the whole vault is how the unused credential goes; the
//! vault belonged to nobody yet.
//!
//! Soft-key PINs go to `DIR/<upn>.pin.age`, encrypted to the operator's age recipient, only when
//! one is given (written before the key gets the PIN, so a crash never orphans a PIN); otherwise
//! they exist only as the PIN hash inside the encrypted vault.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use keyward_ctap::{Client, HidDevice, SocketTransport, Timeouts};
use keyward_softkey::ca::AttestationCa;
use keyward_softkey::state::{KdfParams, StateFile};
use keyward_softkey::{Authenticator, Config, Served};
use secrecy::{ExposeSecret, SecretString};

/// The environment variable holding the vaults' passphrase.
pub const PASSPHRASE_ENV: &str = "KEYWARD_SOFTKEY_PASSPHRASE";

static SOCKETS: AtomicU64 = AtomicU64::new(0);

/// The directory of soft-key vaults and what new ones are made from.
pub struct SoftKeys {
    dir: PathBuf,
    passphrase: SecretString,
    ca: AttestationCa,
    aaguid: [u8; 16],
    pin_recipient: Option<age::x25519::Recipient>,
}

/// A vault being served for one provisioning.
pub struct Vault {
    /// The CTAP client talking to it.
    pub client: Client<SocketTransport>,
    _served: Served,
}

impl SoftKeys {
    /// Opens (creating) `dir`; the attestation CA signs each new vault's batch certificate.
    pub fn new(
        dir: PathBuf,
        ca: AttestationCa,
        aaguid: [u8; 16],
        pin_recipient: Option<&str>,
    ) -> anyhow::Result<Self> {
        let passphrase = std::env::var(PASSPHRASE_ENV).map(SecretString::from).map_err(|_| {
            anyhow::anyhow!("set {PASSPHRASE_ENV} to the passphrase that encrypts the soft-key vaults")
        })?;
        if passphrase.expose_secret().is_empty() {
            anyhow::bail!("{PASSPHRASE_ENV} is empty; set a passphrase for the soft-key vaults");
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let pin_recipient = pin_recipient
            .map(crate::commands::provision::letter::parse_recipient)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--pin-recipient: {e}"))?;
        Ok(Self { dir, passphrase, ca, aaguid, pin_recipient })
    }

    /// The vault file of a person.
    pub fn vault_path(&self, upn: &str) -> PathBuf {
        self.dir.join(format!("{}.softkey", file_name(upn)))
    }

    fn pin_path(&self, upn: &str) -> PathBuf {
        self.dir.join(format!("{}.pin.age", file_name(upn)))
    }

    /// Whether the person has a vault.
    pub fn exists(&self, upn: &str) -> bool {
        self.vault_path(upn).exists()
    }

    /// Deletes a person's vault (and every credential in it) and PIN file.
    pub fn discard(&self, upn: &str) -> anyhow::Result<()> {
        for p in [self.vault_path(upn), self.pin_path(upn)] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("cannot delete {}", p.display())),
            }
        }
        Ok(())
    }

    /// Creates a fresh vault for the person and serves it; refuses to replace one.
    pub fn create(&self, upn: &str) -> anyhow::Result<Vault> {
        let attestation = self.ca.issue_batch(&self.aaguid)?.into_attestation();
        let authenticator =
            Authenticator::new(Config { aaguid: self.aaguid, attestation, ..Config::default() });
        let path = self.vault_path(upn);
        let file = StateFile::create(&path, &self.passphrase, KdfParams::default(), &authenticator)
            .with_context(|| format!("cannot create the soft key {}", path.display()))?;
        let socket = std::env::temp_dir().join(format!(
            "kwbulk-{}-{}.sock",
            std::process::id(),
            SOCKETS.fetch_add(1, Ordering::Relaxed)
        ));
        let listen = format!("unix:{}", socket.display());
        let served = keyward_softkey::serve_authenticator(&listen, authenticator, Some(Arc::new(file)))?;
        let transport = SocketTransport::connect(&listen)?;
        let hid = HidDevice::open(transport, Timeouts::default()).context("the soft key does not answer")?;
        Ok(Vault { client: Client::new(hid), _served: served })
    }

    /// Whether PINs are written to PIN files (`--pin-recipient`).
    pub fn keeps_pins(&self) -> bool {
        self.pin_recipient.is_some()
    }

    /// Writes the person's PIN, encrypted to the operator's recipient, if one was given.
    pub fn write_pin(&self, upn: &str, pin: &SecretString) -> anyhow::Result<bool> {
        let Some(recipient) = &self.pin_recipient else { return Ok(false) };
        let recipients: [&dyn age::Recipient; 1] = [recipient];
        let encryptor = age::Encryptor::with_recipients(recipients.into_iter())?;
        let mut encrypted = Vec::new();
        let mut writer = encryptor.wrap_output(&mut encrypted)?;
        writer.write_all(format!("{upn},{}\n", pin.expose_secret()).as_bytes())?;
        writer.finish()?;
        let path = self.pin_path(upn);
        write_new(&path, &encrypted).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(true)
    }
}

fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// A file name for a UPN: letters, digits, `@`, `.`, `-`, `_` kept, anything else `_`.
fn file_name(upn: &str) -> String {
    upn.chars()
        .map(|c| if c.is_ascii_alphanumeric() || "@.-_".contains(c) { c.to_ascii_lowercase() } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn vault_names_cannot_escape_the_directory() {
        for (upn, want) in [
            ("Adele.Vance@Contoso.com", "adele.vance@contoso.com"),
            ("../../etc/passwd@x.com", ".._.._etc_passwd@x.com"),
            ("a b#EXT#@x.com", "a_b_ext_@x.com"),
        ] {
            assert_eq!(super::file_name(upn), want);
        }
    }
}

//! Keyward's soft key: a CTAP 2.1 authenticator in software, with CTAPHID device framing.
//!
//! It exists so every CTAP path of Keyward can be tested without hardware, and so the demo can
//! provision a "key" end to end. It is an independent implementation of the spec (it shares no
//! code with `keyward-ctap`), so a misreading of the spec in one of them shows up as a failing
//! conformance test. Nothing is persisted unless a [`state::StateFile`] is given to
//! [`serve_authenticator`]; then the key is a passphrase-encrypted, device-bound passkey vault.

pub mod authenticator;
pub mod ca;
pub mod cbor;
pub mod client_pin;
pub mod config_cmd;
pub mod cred_mgmt;
pub mod credential;
pub mod hid;
pub mod pin_protocol;
pub mod serve;
pub mod state;
pub mod status;
pub mod touch;
#[cfg(target_os = "linux")]
pub mod uhid;

use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

pub use authenticator::{Attestation, Authenticator, Config, Immediate, Presence, PresencePolicy};
pub use serve::{ServeError, ServeOptions, Served, serve, serve_authenticator, serve_with};
pub use status::Status;
pub use touch::TouchButton;

/// A running soft key: the authenticator plus its CTAPHID device thread.
#[derive(Debug)]
pub struct SoftKey {
    state: Arc<Mutex<Authenticator>>,
    thread: Option<JoinHandle<()>>,
}

impl SoftKey {
    /// Starts a soft key serving reports on the given channels (the device end of an
    /// in-memory transport).
    pub fn spawn(config: Config, from_host: Receiver<hid::Report>, to_host: Sender<hid::Report>) -> Self {
        let state = Arc::new(Mutex::new(Authenticator::new(config)));
        let server = hid::HidServer::new(state.clone(), from_host, to_host);
        let thread = std::thread::Builder::new()
            .name("keyward-softkey".into())
            .spawn(move || server.run())
            .expect("spawning the soft key thread");
        Self { state, thread: Some(thread) }
    }

    /// Locks the authenticator state (for inspection or policy changes between requests).
    pub fn state(&self) -> MutexGuard<'_, Authenticator> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Simulates removing and re-inserting the key.
    pub fn reinsert(&self) {
        self.state().power_cycle();
    }

    /// Waits for the device thread to end (after the host end was dropped).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

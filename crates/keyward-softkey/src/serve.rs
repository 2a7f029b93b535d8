//! Serving the soft key on a stream socket (`unix:PATH` or `tcp:HOST:PORT`).
//!
//! Other processes (the python-fido2 cross-check, the demo CLI) reach the key the way they would
//! reach a USB key: 64 raw bytes per report in each direction, no prefix. The socket is only a
//! pipe; the existing CTAPHID device loop does all framing. One connection is served at a time,
//! like one host owning a USB key; the authenticator state (PIN, credentials) survives
//! reconnects, as it would survive a host re-opening the device.
//!
//! With a [`StateFile`], the state is saved after every CBOR command that changed it, before
//! the answer leaves the device (see [`crate::hid`]). A unix socket left behind by a killed soft
//! key is removed at the next start (only if nobody answers on it), and removed again on
//! shutdown.
//!
//! The socket has no authentication: whoever connects owns the key, as whoever holds a USB key
//! does. So `tcp:` binds loopback addresses only unless [`ServeOptions::allow_remote`] is set
//! (`keyward softkey serve --allow-remote`); a unix socket is guarded by its file permissions.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, ToSocketAddrs};
#[cfg(unix)]
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::authenticator::{Authenticator, Config};
use crate::hid::{HidServer, REPORT_LEN, Report};
use crate::state::StateFile;

/// Why the soft key could not start listening.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address has neither prefix.
    #[error("listen address {0:?} must be unix:PATH or tcp:HOST:PORT; fix the address")]
    Syntax(String),
    /// Unix sockets do not exist on this platform.
    #[error("unix sockets are not available on this platform; listen on tcp:HOST:PORT instead")]
    UnixUnsupported,
    /// A `tcp:` address other machines could reach, without [`ServeOptions::allow_remote`].
    #[error(
        "{0} is not a loopback address, and anyone who reaches the soft key can use it (it has no \
         authentication); listen on tcp:127.0.0.1:PORT, or pass --allow-remote if other machines must reach it"
    )]
    NotLoopback(String),
    /// Binding failed.
    #[error("could not listen on {addr} ({reason}); pick a free port or remove the stale socket file")]
    Bind {
        /// The address as given.
        addr: String,
        /// The OS error.
        reason: String,
    },
}

trait Conn: Read + Write + Send {
    fn try_clone_box(&self) -> std::io::Result<Box<dyn Conn>>;
}

impl Conn for std::net::TcpStream {
    fn try_clone_box(&self) -> std::io::Result<Box<dyn Conn>> {
        Ok(Box::new(self.try_clone()?))
    }
}

#[cfg(unix)]
impl Conn for std::os::unix::net::UnixStream {
    fn try_clone_box(&self) -> std::io::Result<Box<dyn Conn>> {
        Ok(Box::new(self.try_clone()?))
    }
}

enum Listener {
    #[cfg(unix)]
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener),
}

impl Listener {
    fn accept(&self) -> std::io::Result<Box<dyn Conn>> {
        match self {
            #[cfg(unix)]
            Self::Unix(l, _) => Ok(Box::new(l.accept()?.0)),
            Self::Tcp(l) => {
                let s = l.accept()?.0;
                s.set_nodelay(true)?;
                Ok(Box::new(s))
            }
        }
    }
}

/// A soft key listening on a socket; the accept loop runs on a background thread.
#[derive(Debug)]
pub struct Served {
    state: Arc<Mutex<Authenticator>>,
    address: String,
    unix_path: Option<PathBuf>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(path) = &self.unix_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Served {
    /// The address clients should connect to (for `tcp:…:0`, the port actually bound).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Locks the authenticator state (for inspection or policy changes between requests).
    pub fn state(&self) -> MutexGuard<'_, Authenticator> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How a soft key is served besides its address.
#[derive(Debug, Default)]
pub struct ServeOptions {
    /// Save every change here before answering.
    pub state_file: Option<Arc<StateFile>>,
    /// Let `tcp:` bind an address other machines can reach.
    pub allow_remote: bool,
}

/// Binds `listen` (`unix:PATH` or `tcp:HOST:PORT` on loopback) and serves a fresh soft key on
/// it, one connection at a time, until the process ends.
pub fn serve(listen: &str, config: Config) -> Result<Served, ServeError> {
    serve_authenticator(listen, Authenticator::new(config), None)
}

/// Refuses a `HOST:PORT` that resolves to anything but loopback addresses.
fn check_loopback(host_port: &str, listen: &str) -> Result<(), ServeError> {
    let addrs: Vec<_> = host_port
        .to_socket_addrs()
        .map_err(|e| ServeError::Bind { addr: listen.to_owned(), reason: e.to_string() })?
        .collect();
    if addrs.is_empty() || addrs.iter().any(|a| !a.ip().is_loopback()) {
        return Err(ServeError::NotLoopback(listen.to_owned()));
    }
    Ok(())
}

/// Removes a unix socket file that no process answers on (left by a killed soft key).
#[cfg(unix)]
fn remove_stale_socket(path: &str) {
    use std::os::unix::fs::FileTypeExt;
    let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    if is_socket
        && std::os::unix::net::UnixStream::connect(path)
            .is_err_and(|e| e.kind() == ErrorKind::ConnectionRefused)
    {
        let _ = std::fs::remove_file(path);
    }
}

/// Binds `listen` (`tcp:` on loopback only) and serves `authenticator` on it, one connection at
/// a time, until the returned [`Served`] is dropped or the process ends; with `state_file`,
/// every change is saved before the answer is sent.
pub fn serve_authenticator(
    listen: &str,
    authenticator: Authenticator,
    state_file: Option<Arc<StateFile>>,
) -> Result<Served, ServeError> {
    serve_with(listen, authenticator, ServeOptions { state_file, allow_remote: false })
}

/// [`serve_authenticator`] with every option.
pub fn serve_with(
    listen: &str,
    authenticator: Authenticator,
    options: ServeOptions,
) -> Result<Served, ServeError> {
    let ServeOptions { state_file, allow_remote } = options;
    let bind = |e: std::io::Error| ServeError::Bind { addr: listen.to_owned(), reason: e.to_string() };
    let (listener, address) = if let Some(path) = listen.strip_prefix("unix:").filter(|p| !p.is_empty()) {
        #[cfg(unix)]
        {
            remove_stale_socket(path);
            let l = UnixListener::bind(path).map_err(bind)?;
            (Listener::Unix(l, path.into()), listen.to_owned())
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            return Err(ServeError::UnixUnsupported);
        }
    } else if let Some(hp) = listen.strip_prefix("tcp:").filter(|hp| hp.rsplit_once(':').is_some()) {
        if !allow_remote {
            check_loopback(hp, listen)?;
        }
        let l = TcpListener::bind(hp).map_err(bind)?;
        let addr = format!("tcp:{}", l.local_addr().map_err(bind)?);
        (Listener::Tcp(l), addr)
    } else {
        return Err(ServeError::Syntax(listen.to_owned()));
    };
    #[cfg(unix)]
    let unix_path = match &listener {
        Listener::Unix(_, p) => Some(p.clone()),
        Listener::Tcp(_) => None,
    };
    #[cfg(not(unix))]
    let unix_path = None;
    let state = Arc::new(Mutex::new(authenticator));
    let shared = state.clone();
    std::thread::Builder::new()
        .name("keyward-softkey-listen".into())
        .spawn(move || accept_loop(listener, shared, state_file))
        .map_err(bind)?;
    Ok(Served { state, address, unix_path })
}

fn accept_loop(listener: Listener, state: Arc<Mutex<Authenticator>>, state_file: Option<Arc<StateFile>>) {
    loop {
        match listener.accept() {
            Ok(conn) => serve_connection(conn, state.clone(), state_file.clone()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Pumps reports between one connection and a CTAPHID device loop until the peer hangs up.
fn serve_connection(
    conn: Box<dyn Conn>,
    state: Arc<Mutex<Authenticator>>,
    state_file: Option<Arc<StateFile>>,
) {
    let Ok(mut writer) = conn.try_clone_box() else { return };
    let mut reader = conn;
    let (to_dev, from_host) = mpsc::channel::<Report>();
    let (to_host, from_dev) = mpsc::channel::<Report>();
    let pump_out = std::thread::spawn(move || {
        for r in from_dev {
            if writer.write_all(&r).is_err() {
                return;
            }
        }
    });
    let pump_in = std::thread::spawn(move || {
        let mut r = [0u8; REPORT_LEN];
        while reader.read_exact(&mut r).is_ok() {
            if to_dev.send(r).is_err() {
                return;
            }
        }
    });
    HidServer::new(state, from_host, to_host).with_state_file(state_file).run();
    let _ = pump_in.join();
    let _ = pump_out.join();
}

impl Drop for Listener {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Self::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    /// (address, --allow-remote, whether it binds): the soft key has no authentication, so only
    /// loopback is served unless remote access is asked for.
    #[test]
    fn tcp_binds_loopback_only_unless_remote_access_is_allowed() {
        let rows = [
            ("tcp:127.0.0.1:0", false, true),
            ("tcp:localhost:0", false, true),
            ("tcp:0.0.0.0:0", false, false),
            ("tcp:0.0.0.0:0", true, true),
        ];
        for (addr, allow_remote, binds) in rows {
            let options = ServeOptions { state_file: None, allow_remote };
            match (binds, serve_with(addr, Authenticator::new(Config::default()), options)) {
                (true, Ok(served)) => assert!(served.address().starts_with("tcp:"), "{addr}"),
                (false, Err(ServeError::NotLoopback(a))) => {
                    assert_eq!(a, addr);
                    let text = ServeError::NotLoopback(a).to_string();
                    assert!(text.contains("--allow-remote"), "the error says what to do: {text}");
                }
                (_, other) => panic!("{addr} (allow_remote {allow_remote}): {other:?}"),
            }
        }
        // The plain entry point is loopback-only too.
        assert!(matches!(serve("tcp:0.0.0.0:0", Config::default()), Err(ServeError::NotLoopback(_))));
    }
}

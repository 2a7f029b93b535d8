//! A CTAPHID transport over a stream socket (`unix:PATH` or `tcp:HOST:PORT`).
//!
//! This lets the client talk to a soft key in another process (the demo, or a python-fido2
//! cross-check) with exactly the framing a USB key uses: each report is 64 raw bytes in each
//! direction, with no length prefix and no report id, so nothing above [`Transport`] can tell
//! the difference. A read that times out mid-report keeps the partial bytes for the next call,
//! so a slow peer never desynchronises the stream.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::transport::{REPORT_LEN, Report, Transport, TransportError};

/// Why a socket address could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SocketAddrError {
    /// The address has neither prefix.
    #[error("socket address {0:?} must be unix:PATH or tcp:HOST:PORT; fix the address")]
    Syntax(String),
    /// Unix sockets do not exist on this platform.
    #[error("unix sockets are not available on this platform; use tcp:HOST:PORT")]
    UnixUnsupported,
    /// Connecting failed.
    #[error("could not connect to the soft key at {addr} ({reason}); check that it is running")]
    Connect {
        /// The address as given.
        addr: String,
        /// The OS error.
        reason: String,
    },
}

/// A parsed `unix:PATH` / `tcp:HOST:PORT` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketAddress {
    /// A unix domain socket path.
    Unix(std::path::PathBuf),
    /// A TCP `HOST:PORT`.
    Tcp(String),
}

impl std::str::FromStr for SocketAddress {
    type Err = SocketAddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix:").filter(|p| !p.is_empty()) {
            Ok(Self::Unix(path.into()))
        } else if let Some(hp) = s.strip_prefix("tcp:").filter(|hp| hp.rsplit_once(':').is_some()) {
            Ok(Self::Tcp(hp.to_owned()))
        } else {
            Err(SocketAddrError::Syntax(s.to_owned()))
        }
    }
}

#[derive(Debug)]
enum Stream {
    #[cfg(unix)]
    Unix(UnixStream),
    Tcp(TcpStream),
}

/// The host end of a stream-socket CTAPHID connection.
#[derive(Debug)]
pub struct SocketTransport {
    stream: Stream,
    partial: Vec<u8>,
}

impl SocketTransport {
    /// Connects to `unix:PATH` or `tcp:HOST:PORT`.
    pub fn connect(addr: &str) -> Result<Self, SocketAddrError> {
        let fail =
            |e: std::io::Error| SocketAddrError::Connect { addr: addr.to_owned(), reason: e.to_string() };
        let stream = match addr.parse::<SocketAddress>()? {
            #[cfg(unix)]
            SocketAddress::Unix(p) => Stream::Unix(UnixStream::connect(p).map_err(fail)?),
            #[cfg(not(unix))]
            SocketAddress::Unix(_) => return Err(SocketAddrError::UnixUnsupported),
            SocketAddress::Tcp(hp) => {
                let s = TcpStream::connect(hp).map_err(fail)?;
                s.set_nodelay(true).map_err(fail)?;
                Stream::Tcp(s)
            }
        };
        Ok(Self { stream, partial: Vec::with_capacity(REPORT_LEN) })
    }

    fn set_timeout(&self, t: Duration) -> std::io::Result<()> {
        match &self.stream {
            #[cfg(unix)]
            Stream::Unix(s) => s.set_read_timeout(Some(t)),
            Stream::Tcp(s) => s.set_read_timeout(Some(t)),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.stream {
            #[cfg(unix)]
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

fn io(e: std::io::Error) -> TransportError {
    match e.kind() {
        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof => {
            TransportError::Disconnected
        }
        _ => TransportError::Io(e.to_string()),
    }
}

impl Transport for SocketTransport {
    fn send_report(&mut self, report: &Report) -> Result<(), TransportError> {
        match &mut self.stream {
            #[cfg(unix)]
            Stream::Unix(s) => s.write_all(report),
            Stream::Tcp(s) => s.write_all(report),
        }
        .map_err(io)
    }

    fn recv_report(&mut self, timeout: Duration) -> Result<Option<Report>, TransportError> {
        let deadline = Instant::now() + timeout;
        while self.partial.len() < REPORT_LEN {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.set_timeout(left).map_err(io)?;
            let mut buf = [0u8; REPORT_LEN];
            let want = REPORT_LEN - self.partial.len();
            match self.read(&mut buf[..want]) {
                Ok(0) => return Err(TransportError::Disconnected),
                Ok(n) => self.partial.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return Ok(None),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io(e)),
            }
        }
        let mut r = [0u8; REPORT_LEN];
        r.copy_from_slice(&self.partial);
        self.partial.clear();
        Ok(Some(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        assert_eq!("unix:/tmp/k".parse::<SocketAddress>().unwrap(), SocketAddress::Unix("/tmp/k".into()));
        assert_eq!(
            "tcp:127.0.0.1:9".parse::<SocketAddress>().unwrap(),
            SocketAddress::Tcp("127.0.0.1:9".into())
        );
        for bad in ["", "unix:", "tcp:nohost", "/tmp/k", "udp:1:2"] {
            assert!(bad.parse::<SocketAddress>().is_err(), "{bad}");
        }
    }

    #[test]
    fn moves_whole_reports_over_tcp_even_when_split() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("tcp:{}", listener.local_addr().unwrap());
        let peer = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut r = [0u8; REPORT_LEN];
            s.read_exact(&mut r).unwrap();
            s.write_all(&r[..10]).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            s.write_all(&r[10..]).unwrap();
        });
        let mut t = SocketTransport::connect(&addr).unwrap();
        t.send_report(&[7u8; REPORT_LEN]).unwrap();
        assert_eq!(t.recv_report(Duration::from_millis(10)).unwrap(), None);
        assert_eq!(t.recv_report(Duration::from_secs(2)).unwrap(), Some([7u8; REPORT_LEN]));
        peer.join().unwrap();
        assert!(matches!(t.recv_report(Duration::from_secs(2)), Err(TransportError::Disconnected)));
    }
}

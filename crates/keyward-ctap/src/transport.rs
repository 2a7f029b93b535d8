//! The byte pipe under CTAPHID: something that moves one 64-byte HID report at a time.
//!
//! CTAPHID is defined in terms of fixed-size reports, so the trait is exactly that and nothing
//! more: the USB HID transport ([`crate::usb`], hidapi) only has to prepend the report id 0 on
//! write and read with a timeout; the in-memory transport used by tests and the demo is a pair of
//! channels. Framing, channels and retries live above this trait in [`crate::hid`].

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

/// Size of one CTAPHID report (full-speed USB HID, no report id).
pub const REPORT_LEN: usize = 64;

/// One CTAPHID report.
pub type Report = [u8; REPORT_LEN];

/// Failures of the report pipe itself (not of the protocol on top of it).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The device end is gone (unplugged, or the software key stopped).
    #[error("the security key was disconnected; plug it in again and retry")]
    Disconnected,
    /// The OS-level device reported an error.
    #[error("the security key could not be read or written ({0}); re-insert it and retry")]
    Io(String),
}

/// Moves single 64-byte reports to and from one authenticator.
pub trait Transport: Send {
    /// Sends one report to the device.
    fn send_report(&mut self, report: &Report) -> Result<(), TransportError>;
    /// Waits up to `timeout` for one report from the device; `Ok(None)` means the time ran out.
    fn recv_report(&mut self, timeout: Duration) -> Result<Option<Report>, TransportError>;
}

/// An in-memory transport: the host end of a pair of channels.
#[derive(Debug)]
pub struct MemoryTransport {
    to_device: Sender<Report>,
    from_device: Receiver<Report>,
}

/// The device end of an in-memory transport, handed to a software authenticator.
#[derive(Debug)]
pub struct MemoryDeviceEnd {
    /// Reports sent by the host.
    pub from_host: Receiver<Report>,
    /// Reports for the host.
    pub to_host: Sender<Report>,
}

impl MemoryTransport {
    /// Creates a connected host/device pair.
    pub fn pair() -> (MemoryTransport, MemoryDeviceEnd) {
        let (to_device, from_host) = mpsc::channel();
        let (to_host, from_device) = mpsc::channel();
        (MemoryTransport { to_device, from_device }, MemoryDeviceEnd { from_host, to_host })
    }
}

impl Transport for MemoryTransport {
    fn send_report(&mut self, report: &Report) -> Result<(), TransportError> {
        self.to_device.send(*report).map_err(|_| TransportError::Disconnected)
    }

    fn recv_report(&mut self, timeout: Duration) -> Result<Option<Report>, TransportError> {
        match self.from_device.recv_timeout(timeout) {
            Ok(r) => Ok(Some(r)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(TransportError::Disconnected),
        }
    }
}

//! CTAPHID framing, host side: channels, init/continuation packets, keep-alives, cancel.
//!
//! A CTAP message is cut into one init packet (CID, command with bit 7 set, 16-bit length, 57
//! data bytes) and up to 128 continuation packets (CID, sequence 0..=127, 59 data bytes), which
//! caps a message at 7 609 bytes. The host first sends INIT on the broadcast channel with a nonce
//! and gets its own channel id back; every later transaction runs on that channel. While the key
//! waits for a touch it sends KEEPALIVE every ~100 ms, so the host waits as long as keep-alives
//! keep coming (`Timeouts::idle`) but never longer than `Timeouts::transaction`. A cancel
//! request (a shared flag, so another thread can trip it) sends CANCEL and the key answers the
//! pending CBOR request with KEEPALIVE_CANCEL.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::RngCore;

use crate::transport::{REPORT_LEN, Report, Transport, TransportError};

/// The broadcast channel id, used only for INIT.
pub const BROADCAST_CID: u32 = 0xFFFF_FFFF;
/// Payload bytes in an init packet.
pub const INIT_DATA_LEN: usize = REPORT_LEN - 7;
/// Payload bytes in a continuation packet.
pub const CONT_DATA_LEN: usize = REPORT_LEN - 5;
/// Largest message CTAPHID can carry (one init + 128 continuation packets).
pub const MAX_MESSAGE_LEN: usize = INIT_DATA_LEN + 128 * CONT_DATA_LEN;

/// CTAPHID commands (without the init-packet bit 0x80).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum HidCommand {
    /// Echo the payload.
    Ping = 0x01,
    /// A CTAP1/U2F APDU.
    Msg = 0x03,
    /// Lock the device to one channel.
    Lock = 0x04,
    /// Allocate a channel.
    Init = 0x06,
    /// Make the key blink.
    Wink = 0x08,
    /// A CTAP2 CBOR request.
    Cbor = 0x10,
    /// Cancel the pending request on this channel.
    Cancel = 0x11,
    /// Device is still working (status byte follows).
    Keepalive = 0x3B,
    /// Framing error (error byte follows).
    Error = 0x3F,
}

impl HidCommand {
    /// Decodes a command byte (with or without bit 7).
    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b & 0x7F {
            0x01 => Self::Ping,
            0x03 => Self::Msg,
            0x04 => Self::Lock,
            0x06 => Self::Init,
            0x08 => Self::Wink,
            0x10 => Self::Cbor,
            0x11 => Self::Cancel,
            0x3B => Self::Keepalive,
            0x3F => Self::Error,
            _ => return None,
        })
    }
}

/// CTAPHID_ERROR codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HidErrorCode {
    /// The command is not supported.
    InvalidCmd,
    /// A parameter is invalid.
    InvalidPar,
    /// The length field is invalid.
    InvalidLen,
    /// A continuation packet arrived out of sequence.
    InvalidSeq,
    /// The message was not completed in time.
    MsgTimeout,
    /// Another channel is busy with a transaction.
    ChannelBusy,
    /// The device is locked to another channel.
    LockRequired,
    /// The channel id is not allocated.
    InvalidChannel,
    /// Unspecified device error.
    Other,
    /// A code this client does not know.
    Unknown(u8),
}

impl HidErrorCode {
    /// Decodes the error byte.
    pub fn from_byte(b: u8) -> Self {
        match b {
            0x01 => Self::InvalidCmd,
            0x02 => Self::InvalidPar,
            0x03 => Self::InvalidLen,
            0x04 => Self::InvalidSeq,
            0x05 => Self::MsgTimeout,
            0x06 => Self::ChannelBusy,
            0x0A => Self::LockRequired,
            0x0B => Self::InvalidChannel,
            0x7F => Self::Other,
            b => Self::Unknown(b),
        }
    }
}

/// KEEPALIVE status bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepaliveStatus {
    /// The key is processing.
    Processing,
    /// The key waits for a touch.
    UpNeeded,
    /// A status this client does not know.
    Other(u8),
}

impl KeepaliveStatus {
    fn from_byte(b: u8) -> Self {
        match b {
            1 => Self::Processing,
            2 => Self::UpNeeded,
            b => Self::Other(b),
        }
    }
}

/// Failures below CTAP: framing, channels, time-outs.
#[derive(Debug, thiserror::Error)]
pub enum HidError {
    /// The report pipe failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// No answer in time.
    #[error(
        "the security key did not answer within {0:?}; touch it if it blinks, otherwise re-insert it and retry"
    )]
    Timeout(Duration),
    /// The key reported a framing error.
    #[error("the security key rejected the USB message ({0:?}); re-insert it and retry")]
    Device(HidErrorCode),
    /// The key sent something that is not valid CTAPHID.
    #[error("the security key sent a malformed answer ({0}); re-insert it and retry")]
    Protocol(String),
    /// The request is larger than CTAPHID can carry.
    #[error("request of {0} bytes exceeds the CTAPHID limit; reduce the exclude list and retry")]
    MessageTooLarge(usize),
}

/// Splits a message into CTAPHID reports.
pub fn fragment(cid: u32, cmd: u8, payload: &[u8]) -> Result<Vec<Report>, HidError> {
    if payload.len() > MAX_MESSAGE_LEN {
        return Err(HidError::MessageTooLarge(payload.len()));
    }
    let mut out = Vec::new();
    let mut first = [0u8; REPORT_LEN];
    first[..4].copy_from_slice(&cid.to_be_bytes());
    first[4] = cmd | 0x80;
    first[5..7].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    let n = payload.len().min(INIT_DATA_LEN);
    first[7..7 + n].copy_from_slice(&payload[..n]);
    out.push(first);
    for (seq, chunk) in payload[n..].chunks(CONT_DATA_LEN).enumerate() {
        let mut r = [0u8; REPORT_LEN];
        r[..4].copy_from_slice(&cid.to_be_bytes());
        r[4] = seq as u8;
        r[5..5 + chunk.len()].copy_from_slice(chunk);
        out.push(r);
    }
    Ok(out)
}

/// Reassembles one message from an init packet and its continuation packets.
#[derive(Debug)]
pub struct Reassembly {
    /// Command of the message (without bit 7).
    pub cmd: u8,
    len: usize,
    next_seq: u8,
    /// Data received so far.
    pub data: Vec<u8>,
}

impl Reassembly {
    /// Starts from an init packet; `None` if the report is a continuation packet.
    pub fn start(report: &Report) -> Option<Self> {
        if report[4] & 0x80 == 0 {
            return None;
        }
        let len = u16::from_be_bytes([report[5], report[6]]) as usize;
        let n = len.min(INIT_DATA_LEN);
        Some(Self { cmd: report[4] & 0x7F, len, next_seq: 0, data: report[7..7 + n].to_vec() })
    }

    /// Declared message length.
    pub fn declared_len(&self) -> usize {
        self.len
    }

    /// True once all bytes are in.
    pub fn is_complete(&self) -> bool {
        self.data.len() >= self.len
    }

    /// Adds a continuation packet; `Err` on a sequence gap.
    pub fn push(&mut self, report: &Report) -> Result<(), HidErrorCode> {
        if report[4] & 0x80 != 0 || report[4] != self.next_seq {
            return Err(HidErrorCode::InvalidSeq);
        }
        self.next_seq += 1;
        let n = (self.len - self.data.len()).min(CONT_DATA_LEN);
        self.data.extend_from_slice(&report[5..5 + n]);
        Ok(())
    }
}

/// How long the host waits.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Longest silence (no report at all) before giving up.
    pub idle: Duration,
    /// Longest whole transaction, keep-alives included (touch waits).
    pub transaction: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { idle: Duration::from_secs(2), transaction: Duration::from_secs(60) }
    }
}

/// What the key said about itself in the INIT response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitInfo {
    /// The allocated channel.
    pub cid: u32,
    /// CTAPHID protocol version (2).
    pub protocol_version: u8,
    /// Device version major, minor, build.
    pub device_version: (u8, u8, u8),
    /// Capability flags (0x01 WINK, 0x04 CBOR, 0x08 NMSG).
    pub capabilities: u8,
}

impl InitInfo {
    /// True if the key speaks CTAP2 CBOR.
    pub fn supports_cbor(&self) -> bool {
        self.capabilities & 0x04 != 0
    }
}

/// Callback told about every keep-alive (for "touch your key" prompts).
pub type KeepaliveObserver = Box<dyn FnMut(KeepaliveStatus) + Send>;

/// A CTAPHID channel to one authenticator.
pub struct HidDevice<T: Transport> {
    transport: T,
    info: InitInfo,
    timeouts: Timeouts,
    cancel: Arc<AtomicBool>,
    observer: Option<KeepaliveObserver>,
}

impl<T: Transport> std::fmt::Debug for HidDevice<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HidDevice").field("info", &self.info).finish()
    }
}

const CHANNEL_BUSY_RETRIES: usize = 20;

impl<T: Transport> HidDevice<T> {
    /// Allocates a channel with INIT on the broadcast channel.
    pub fn open(transport: T, timeouts: Timeouts) -> Result<Self, HidError> {
        let mut dev = Self {
            transport,
            info: InitInfo {
                cid: BROADCAST_CID,
                protocol_version: 0,
                device_version: (0, 0, 0),
                capabilities: 0,
            },
            timeouts,
            cancel: Arc::new(AtomicBool::new(false)),
            observer: None,
        };
        let mut nonce = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut nonce);
        let resp = dev.transact(HidCommand::Init, &nonce)?;
        if resp.len() < 17 || resp[..8] != nonce {
            return Err(HidError::Protocol("INIT answer does not echo the nonce".into()));
        }
        let cid = u32::from_be_bytes([resp[8], resp[9], resp[10], resp[11]]);
        if cid == 0 || cid == BROADCAST_CID {
            return Err(HidError::Protocol(format!("INIT allocated reserved channel {cid:#x}")));
        }
        dev.info = InitInfo {
            cid,
            protocol_version: resp[12],
            device_version: (resp[13], resp[14], resp[15]),
            capabilities: resp[16],
        };
        Ok(dev)
    }

    /// The INIT response.
    pub fn info(&self) -> InitInfo {
        self.info
    }

    /// A flag that, when set from any thread, cancels the pending request.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }

    /// Installs a keep-alive observer.
    pub fn on_keepalive(&mut self, observer: KeepaliveObserver) {
        self.observer = Some(observer);
    }

    /// PING: the key must echo `data`.
    pub fn ping(&mut self, data: &[u8]) -> Result<(), HidError> {
        let echo = self.transact(HidCommand::Ping, data)?;
        if echo != data {
            return Err(HidError::Protocol("PING echo differs".into()));
        }
        Ok(())
    }

    /// WINK: make the key blink so the operator sees which one is meant.
    pub fn wink(&mut self) -> Result<(), HidError> {
        self.transact(HidCommand::Wink, &[]).map(|_| ())
    }

    /// MSG: one CTAP1/U2F APDU.
    pub fn msg(&mut self, apdu: &[u8]) -> Result<Vec<u8>, HidError> {
        self.transact(HidCommand::Msg, apdu)
    }

    /// CBOR: one CTAP2 request (command byte + CBOR); returns status byte + CBOR.
    pub fn cbor(&mut self, request: &[u8]) -> Result<Vec<u8>, HidError> {
        self.cancel.store(false, Ordering::SeqCst);
        self.transact(HidCommand::Cbor, request)
    }

    /// Runs one request/response exchange, retrying while another channel is busy.
    pub fn transact(&mut self, cmd: HidCommand, payload: &[u8]) -> Result<Vec<u8>, HidError> {
        let mut attempt = 0;
        loop {
            match self.transact_once(cmd, payload) {
                Err(HidError::Device(HidErrorCode::ChannelBusy)) if attempt < CHANNEL_BUSY_RETRIES => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                r => return r,
            }
        }
    }

    fn transact_once(&mut self, cmd: HidCommand, payload: &[u8]) -> Result<Vec<u8>, HidError> {
        let cid = self.info.cid;
        for r in fragment(cid, cmd as u8, payload)? {
            self.transport.send_report(&r)?;
        }
        let start = Instant::now();
        let mut last = Instant::now();
        let mut partial: Option<Reassembly> = None;
        let mut cancel_sent = false;
        loop {
            if !cancel_sent && cmd == HidCommand::Cbor && self.cancel.load(Ordering::SeqCst) {
                let r = fragment(cid, HidCommand::Cancel as u8, &[])?;
                self.transport.send_report(&r[0])?;
                cancel_sent = true;
            }
            if start.elapsed() > self.timeouts.transaction {
                return Err(HidError::Timeout(self.timeouts.transaction));
            }
            let wait = self.timeouts.idle.saturating_sub(last.elapsed());
            if wait.is_zero() {
                return Err(HidError::Timeout(self.timeouts.idle));
            }
            let Some(report) = self.transport.recv_report(wait.min(Duration::from_millis(50)))? else {
                continue;
            };
            last = Instant::now();
            if u32::from_be_bytes([report[0], report[1], report[2], report[3]]) != cid {
                continue; // another host's channel
            }
            if let Some(p) = partial.as_mut() {
                p.push(&report)
                    .map_err(|_| HidError::Protocol("continuation packet out of sequence".into()))?;
            } else {
                let Some(p) = Reassembly::start(&report) else {
                    continue; // stray continuation packet
                };
                if p.declared_len() > MAX_MESSAGE_LEN {
                    return Err(HidError::Protocol("answer longer than CTAPHID allows".into()));
                }
                match HidCommand::from_byte(p.cmd) {
                    Some(HidCommand::Keepalive) => {
                        let status = KeepaliveStatus::from_byte(p.data.first().copied().unwrap_or(0));
                        if let Some(obs) = self.observer.as_mut() {
                            obs(status);
                        }
                        continue;
                    }
                    Some(HidCommand::Error) => {
                        return Err(HidError::Device(HidErrorCode::from_byte(
                            p.data.first().copied().unwrap_or(0x7F),
                        )));
                    }
                    _ => partial = Some(p),
                }
            }
            if let Some(p) = partial.take_if(|p| p.is_complete()) {
                if p.cmd != cmd as u8 {
                    return Err(HidError::Protocol(format!(
                        "answer command {:#04x} does not match request {:#04x}",
                        p.cmd, cmd as u8
                    )));
                }
                return Ok(p.data);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_and_reassemble_round_trip() {
        for len in [0, 1, 57, 58, 116, 117, 1000, MAX_MESSAGE_LEN] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let reports = fragment(0x0102_0304, HidCommand::Cbor as u8, &payload).unwrap();
            let expected =
                if len <= INIT_DATA_LEN { 1 } else { 1 + (len - INIT_DATA_LEN).div_ceil(CONT_DATA_LEN) };
            assert_eq!(reports.len(), expected, "len {len}");
            let mut r = Reassembly::start(&reports[0]).unwrap();
            for c in &reports[1..] {
                r.push(c).unwrap();
            }
            assert!(r.is_complete());
            assert_eq!(r.data, payload);
        }
    }

    #[test]
    fn too_large_and_out_of_sequence_are_rejected() {
        assert!(matches!(
            fragment(1, 0x10, &vec![0; MAX_MESSAGE_LEN + 1]),
            Err(HidError::MessageTooLarge(_))
        ));
        let reports = fragment(1, 0x10, &[7; 200]).unwrap();
        let mut r = Reassembly::start(&reports[0]).unwrap();
        assert_eq!(r.push(&reports[2]), Err(HidErrorCode::InvalidSeq));
    }

    #[test]
    fn init_packet_layout() {
        let r = fragment(0xAABB_CCDD, HidCommand::Ping as u8, &[1, 2, 3]).unwrap();
        assert_eq!(&r[0][..7], &[0xAA, 0xBB, 0xCC, 0xDD, 0x81, 0, 3]);
        assert_eq!(&r[0][7..10], &[1, 2, 3]);
    }
}

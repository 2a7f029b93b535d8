//! CTAPHID framing, device side: answers INIT, PING, WINK, CBOR, CANCEL over 64-byte reports.
//!
//! The device allocates a fresh channel id for every INIT on the broadcast channel, reassembles
//! one message at a time (another channel that starts a message meanwhile gets CHANNEL_BUSY),
//! enforces sequence numbers and a 500 ms gap limit between packets, and while it waits for a
//! touch it sends KEEPALIVE(UPNEEDED) every 100 ms and watches for CANCEL. MSG (CTAP1/U2F) is
//! not supported and the INIT capabilities say so (NMSG).
//!
//! With a [`StateFile`] the device saves the key's state after every CBOR command, before the
//! answer leaves: a client that saw "PIN set" can kill the soft key right away and find the PIN
//! set after a restart. When that save fails the answer is withheld and the client gets
//! CTAP1_ERR_OTHER instead, so nobody learns the outcome of a command (a PIN guess, above all)
//! whose effect on the retry counter a restart would undo.

use std::collections::HashSet;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngCore;

use crate::authenticator::{Authenticator, Presence, PresencePolicy};
use crate::state::StateFile;
use crate::status::Status;
use crate::touch::TouchButton;

/// Size of one report.
pub const REPORT_LEN: usize = 64;
/// One report.
pub type Report = [u8; REPORT_LEN];
const BROADCAST: u32 = 0xFFFF_FFFF;
const INIT_DATA: usize = REPORT_LEN - 7;
const CONT_DATA: usize = REPORT_LEN - 5;
/// Largest message the device accepts.
pub const MAX_MESSAGE_LEN: usize = INIT_DATA + 128 * CONT_DATA;
const PACKET_GAP: Duration = Duration::from_millis(500);
const KEEPALIVE_EVERY: Duration = Duration::from_millis(100);

const CMD_PING: u8 = 0x01;
const CMD_MSG: u8 = 0x03;
const CMD_INIT: u8 = 0x06;
const CMD_WINK: u8 = 0x08;
const CMD_CBOR: u8 = 0x10;
const CMD_CANCEL: u8 = 0x11;
const CMD_KEEPALIVE: u8 = 0x3B;
const CMD_ERROR: u8 = 0x3F;

const ERR_INVALID_CMD: u8 = 0x01;
const ERR_INVALID_LEN: u8 = 0x03;
const ERR_INVALID_SEQ: u8 = 0x04;
const ERR_MSG_TIMEOUT: u8 = 0x05;
const ERR_CHANNEL_BUSY: u8 = 0x06;
const ERR_INVALID_CHANNEL: u8 = 0x0B;

const CAP_WINK: u8 = 0x01;
const CAP_CBOR: u8 = 0x04;
const CAP_NMSG: u8 = 0x08;

fn cid_of(r: &Report) -> u32 {
    u32::from_be_bytes([r[0], r[1], r[2], r[3]])
}

fn send(tx: &Sender<Report>, cid: u32, cmd: u8, payload: &[u8]) {
    let mut first = [0u8; REPORT_LEN];
    first[..4].copy_from_slice(&cid.to_be_bytes());
    first[4] = cmd | 0x80;
    first[5..7].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    let n = payload.len().min(INIT_DATA);
    first[7..7 + n].copy_from_slice(&payload[..n]);
    let _ = tx.send(first);
    for (seq, chunk) in payload[n..].chunks(CONT_DATA).enumerate() {
        let mut r = [0u8; REPORT_LEN];
        r[..4].copy_from_slice(&cid.to_be_bytes());
        r[4] = seq as u8;
        r[5..5 + chunk.len()].copy_from_slice(chunk);
        let _ = tx.send(r);
    }
}

fn send_error(tx: &Sender<Report>, cid: u32, code: u8) {
    send(tx, cid, CMD_ERROR, &[code]);
}

struct Pending {
    cid: u32,
    cmd: u8,
    len: usize,
    seq: u8,
    data: Vec<u8>,
    last: Instant,
}

/// The CTAPHID device loop for one soft authenticator.
pub struct HidServer {
    key: Arc<Mutex<Authenticator>>,
    from_host: Receiver<Report>,
    to_host: Sender<Report>,
    channels: HashSet<u32>,
    pending: Option<Pending>,
    state_file: Option<Arc<StateFile>>,
}

impl HidServer {
    /// Wires an authenticator to a pair of report channels.
    pub fn new(key: Arc<Mutex<Authenticator>>, from_host: Receiver<Report>, to_host: Sender<Report>) -> Self {
        Self { key, from_host, to_host, channels: HashSet::new(), pending: None, state_file: None }
    }

    /// Saves the key's state to `file` after every CBOR command, before answering.
    pub fn with_state_file(mut self, file: Option<Arc<StateFile>>) -> Self {
        self.state_file = file;
        self
    }

    /// Serves until the host end is dropped.
    pub fn run(mut self) {
        loop {
            let wait = match &self.pending {
                Some(p) => PACKET_GAP.saturating_sub(p.last.elapsed()).max(Duration::from_millis(1)),
                None => Duration::from_secs(3600),
            };
            match self.from_host.recv_timeout(wait) {
                Ok(r) => self.on_report(&r),
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(p) = self.pending.take_if(|p| p.last.elapsed() >= PACKET_GAP) {
                        send_error(&self.to_host, p.cid, ERR_MSG_TIMEOUT);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn on_report(&mut self, r: &Report) {
        let cid = cid_of(r);
        let is_init = r[4] & 0x80 != 0;
        if !is_init {
            let Some(p) = self.pending.as_mut().filter(|p| p.cid == cid) else {
                return; // spurious continuation packets are ignored
            };
            if r[4] != p.seq {
                self.pending = None;
                send_error(&self.to_host, cid, ERR_INVALID_SEQ);
                return;
            }
            p.seq += 1;
            p.last = Instant::now();
            let n = (p.len - p.data.len()).min(CONT_DATA);
            p.data.extend_from_slice(&r[5..5 + n]);
        } else {
            let cmd = r[4] & 0x7F;
            let len = u16::from_be_bytes([r[5], r[6]]) as usize;
            if cmd == CMD_INIT {
                // INIT aborts any pending transaction on the same channel (resync).
                if self.pending.as_ref().is_some_and(|p| p.cid == cid) {
                    self.pending = None;
                }
            } else if self.pending.as_ref().is_some_and(|p| p.cid != cid) {
                send_error(&self.to_host, cid, ERR_CHANNEL_BUSY);
                return;
            }
            if cid == 0
                || (cid == BROADCAST && cmd != CMD_INIT)
                || (cid != BROADCAST && !self.channels.contains(&cid))
            {
                send_error(&self.to_host, cid, ERR_INVALID_CHANNEL);
                return;
            }
            if len > MAX_MESSAGE_LEN {
                send_error(&self.to_host, cid, ERR_INVALID_LEN);
                return;
            }
            let n = len.min(INIT_DATA);
            self.pending =
                Some(Pending { cid, cmd, len, seq: 0, data: r[7..7 + n].to_vec(), last: Instant::now() });
        }
        if let Some(p) = self.pending.take_if(|p| p.data.len() >= p.len) {
            self.dispatch(p.cid, p.cmd, &p.data);
        }
    }

    fn dispatch(&mut self, cid: u32, cmd: u8, data: &[u8]) {
        match cmd {
            CMD_INIT => {
                if data.len() != 8 {
                    send_error(&self.to_host, cid, ERR_INVALID_LEN);
                    return;
                }
                let new_cid = if cid == BROADCAST {
                    let mut c;
                    loop {
                        c = rand::thread_rng().next_u32();
                        if c != 0 && c != BROADCAST && !self.channels.contains(&c) {
                            break;
                        }
                    }
                    self.channels.insert(c);
                    c
                } else {
                    cid
                };
                let mut resp = data.to_vec();
                resp.extend_from_slice(&new_cid.to_be_bytes());
                resp.extend_from_slice(&[2, 0, 1, 0, CAP_WINK | CAP_CBOR | CAP_NMSG]);
                send(&self.to_host, cid, CMD_INIT, &resp);
            }
            CMD_PING => send(&self.to_host, cid, CMD_PING, data),
            CMD_WINK => {
                self.key.lock().unwrap_or_else(|e| e.into_inner()).wink();
                send(&self.to_host, cid, CMD_WINK, &[]);
            }
            CMD_CANCEL => {} // nothing pending outside a CBOR request: no answer
            CMD_CBOR => {
                let key = self.key.clone();
                let mut auth = key.lock().unwrap_or_else(|e| e.into_inner());
                let policy = auth.presence_policy();
                let button = auth.touch_button();
                let mut presence =
                    HidPresence { cid, policy, button, from_host: &self.from_host, to_host: &self.to_host };
                let mut resp = auth.process(data, &mut presence);
                if let Some(file) = &self.state_file
                    && let Err(e) = file.save(&auth)
                {
                    // No channel back to the operator from here but the soft key's own stderr.
                    eprintln!("keyward softkey: {e}; the command was answered with an error instead");
                    resp = vec![Status::Other as u8];
                }
                drop(auth);
                send(&self.to_host, cid, CMD_CBOR, &resp);
            }
            CMD_MSG => send_error(&self.to_host, cid, ERR_INVALID_CMD),
            _ => send_error(&self.to_host, cid, ERR_INVALID_CMD),
        }
    }
}

/// Waits for the (simulated) touch while keeping the host informed and listening for CANCEL.
struct HidPresence<'a> {
    cid: u32,
    policy: PresencePolicy,
    button: TouchButton,
    from_host: &'a Receiver<Report>,
    to_host: &'a Sender<Report>,
}

impl Presence for HidPresence<'_> {
    fn confirm(&mut self) -> Result<(), Status> {
        let (delay, outcome) = match self.policy {
            PresencePolicy::Approve(d) => (d, Ok(())),
            PresencePolicy::Deny(d) => (d, Err(Status::OperationDenied)),
            PresencePolicy::Ignore(d) | PresencePolicy::OnRequest(d) => (d, Err(Status::UserActionTimeout)),
        };
        let on_request = matches!(self.policy, PresencePolicy::OnRequest(_));
        if on_request {
            self.button.clear();
        }
        let start = Instant::now();
        loop {
            send(self.to_host, self.cid, CMD_KEEPALIVE, &[2]);
            if on_request && self.button.take() {
                return Ok(());
            }
            let left = delay.saturating_sub(start.elapsed());
            if left.is_zero() {
                return outcome;
            }
            match self.from_host.recv_timeout(left.min(KEEPALIVE_EVERY)) {
                Ok(r) if cid_of(&r) == self.cid && r[4] == (CMD_CANCEL | 0x80) => {
                    return Err(Status::KeepaliveCancel);
                }
                Ok(r) if cid_of(&r) != self.cid && r[4] & 0x80 != 0 => {
                    send_error(self.to_host, cid_of(&r), ERR_CHANNEL_BUSY);
                }
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(Status::KeepaliveCancel),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, SoftKey};
    use std::sync::mpsc;

    fn packet(cid: u32, first: u8, rest: &[u8]) -> Report {
        let mut r = [0u8; REPORT_LEN];
        r[..4].copy_from_slice(&cid.to_be_bytes());
        r[4] = first;
        r[5..5 + rest.len()].copy_from_slice(rest);
        r
    }

    #[test]
    fn init_allocates_channel_and_rejects_unknown_ones() {
        let (to_dev, from_host) = mpsc::channel();
        let (to_host, from_dev) = mpsc::channel();
        let key = SoftKey::spawn(Config::default(), from_host, to_host);
        let nonce = [1, 2, 3, 4, 5, 6, 7, 8];
        let mut init = vec![0, 8];
        init.extend_from_slice(&nonce);
        to_dev.send(packet(BROADCAST, 0x86, &init)).unwrap();
        let r = from_dev.recv_timeout(Duration::from_secs(2)).unwrap();
        assert_eq!(&r[..7], &[0xFF, 0xFF, 0xFF, 0xFF, 0x86, 0, 17]);
        assert_eq!(&r[7..15], &nonce);
        let cid = u32::from_be_bytes([r[15], r[16], r[17], r[18]]);
        assert_eq!(r[23], CAP_WINK | CAP_CBOR | CAP_NMSG);
        // PING on the new channel echoes; PING on an unallocated one is INVALID_CHANNEL.
        to_dev.send(packet(cid, 0x81, &[0, 2, 9, 9])).unwrap();
        let r = from_dev.recv_timeout(Duration::from_secs(2)).unwrap();
        assert_eq!(&r[4..9], &[0x81, 0, 2, 9, 9]);
        to_dev.send(packet(cid ^ 1, 0x81, &[0, 1, 9])).unwrap();
        let r = from_dev.recv_timeout(Duration::from_secs(2)).unwrap();
        assert_eq!(&r[4..8], &[0xBF, 0, 1, ERR_INVALID_CHANNEL]);
        // A continuation packet out of sequence is INVALID_SEQ.
        to_dev.send(packet(cid, 0x81, &[0, 100])).unwrap();
        to_dev.send(packet(cid, 1, &[])).unwrap();
        let r = from_dev.recv_timeout(Duration::from_secs(2)).unwrap();
        assert_eq!(&r[4..8], &[0xBF, 0, 1, ERR_INVALID_SEQ]);
        // MSG is not supported (NMSG).
        to_dev.send(packet(cid, 0x83, &[0, 1, 0])).unwrap();
        let r = from_dev.recv_timeout(Duration::from_secs(2)).unwrap();
        assert_eq!(&r[4..8], &[0xBF, 0, 1, ERR_INVALID_CMD]);
        drop(to_dev);
        key.join();
    }

    /// Sends one CTAPHID message, split into an init and continuation packets.
    fn send_message(to_dev: &mpsc::Sender<Report>, cid: u32, cmd: u8, payload: &[u8]) {
        let (to_host, packets) = mpsc::channel();
        send(&to_host, cid, cmd, payload);
        drop(to_host);
        packets.iter().for_each(|p| to_dev.send(p).unwrap());
    }

    /// Receives one CTAPHID message (keep-alives skipped): its command byte and payload.
    fn recv_message(from_dev: &mpsc::Receiver<Report>) -> (u8, Vec<u8>) {
        loop {
            let first = from_dev.recv_timeout(Duration::from_secs(5)).unwrap();
            if first[4] == CMD_KEEPALIVE | 0x80 {
                continue;
            }
            let len = usize::from(u16::from_be_bytes([first[5], first[6]]));
            let mut data = first[7..7 + len.min(INIT_DATA)].to_vec();
            while data.len() < len {
                let r = from_dev.recv_timeout(Duration::from_secs(5)).unwrap();
                data.extend_from_slice(&r[5..5 + (len - data.len()).min(CONT_DATA)]);
            }
            return (first[4] & 0x7F, data);
        }
    }

    fn make_discoverable_credential(user_id: u8) -> Vec<u8> {
        use ciborium::value::Value;
        let text = |s: &str| Value::Text(s.into());
        let request = Value::Map(vec![
            (Value::Integer(1.into()), Value::Bytes(vec![7; 32])),
            (Value::Integer(2.into()), Value::Map(vec![(text("id"), text("example.com"))])),
            (
                Value::Integer(3.into()),
                Value::Map(vec![(text("id"), Value::Bytes(vec![user_id; 16])), (text("name"), text("a"))]),
            ),
            (
                Value::Integer(4.into()),
                Value::Array(vec![Value::Map(vec![
                    (text("alg"), Value::Integer((-7).into())),
                    (text("type"), text("public-key")),
                ])]),
            ),
            (Value::Integer(7.into()), Value::Map(vec![(text("rk"), Value::Bool(true))])),
        ]);
        let mut bytes = vec![0x01];
        ciborium::ser::into_writer(&request, &mut bytes).unwrap();
        bytes
    }

    #[test]
    fn a_failed_state_save_answers_with_an_error_instead_of_the_result() {
        use crate::state::{KdfParams, StateFile};
        let dir = tempfile::tempdir().unwrap();
        let vault = dir.path().join("vault");
        std::fs::create_dir(&vault).unwrap();
        let path = vault.join("key.kws");
        let pass = secrecy::SecretString::from("pw".to_owned());
        let fast = KdfParams { m_cost_kib: 64, t_cost: 1, p_cost: 1 };
        let key = Arc::new(Mutex::new(Authenticator::new(Config::default())));
        let file = StateFile::create(&path, &pass, fast, &key.lock().unwrap()).unwrap();
        let (to_dev, from_host) = mpsc::channel();
        let (to_host, from_dev) = mpsc::channel();
        let server = HidServer::new(key.clone(), from_host, to_host).with_state_file(Some(Arc::new(file)));
        let device = std::thread::spawn(move || server.run());
        send_message(&to_dev, BROADCAST, CMD_INIT, &[1, 2, 3, 4, 5, 6, 7, 8]);
        let (_, init) = recv_message(&from_dev);
        let cid = u32::from_be_bytes([init[8], init[9], init[10], init[11]]);

        // Saved: the client gets the credential, and a restart finds it.
        send_message(&to_dev, cid, CMD_CBOR, &make_discoverable_credential(1));
        let (cmd, answer) = recv_message(&from_dev);
        assert_eq!((cmd, answer[0]), (CMD_CBOR, 0x00), "{answer:?}");
        let (_, reopened) = StateFile::open(&path, &pass, Config::default()).unwrap();
        assert_eq!(reopened.resident_count(), 1);

        // The vault's directory is gone, so the next save fails: the client gets CTAP1_ERR_OTHER,
        // not the credential.
        std::fs::remove_dir_all(&vault).unwrap();
        send_message(&to_dev, cid, CMD_CBOR, &make_discoverable_credential(2));
        let (cmd, answer) = recv_message(&from_dev);
        assert_eq!((cmd, answer), (CMD_CBOR, vec![Status::Other as u8]));
        drop(to_dev);
        device.join().unwrap();
    }
}

//! Conformance, CTAPHID layer: PING, WINK, keep-alives while the key waits for a touch,
//! CANCEL, CHANNEL_BUSY between two channels, and selection across several keys.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{pin, request, setup, timeouts};
use keyward_ctap::hid::{HidCommand, KeepaliveStatus, fragment};
use keyward_ctap::transport::Report;
use keyward_ctap::{Client, CtapStatus, HidDevice, MemoryTransport, Transport, TransportError};
use keyward_softkey::{Config, PresencePolicy, SoftKey};

#[test]
fn ping_and_wink() {
    let (mut c, key) = setup(Config::default());
    for len in [0, 1, 57, 58, 1000] {
        c.hid().ping(&vec![0x5A; len]).unwrap();
    }
    c.hid().wink().unwrap();
    c.hid().wink().unwrap();
    assert_eq!(key.state().winks(), 2);
}

#[test]
fn keepalives_report_up_needed_while_waiting_for_touch() {
    let (mut c, key) = setup(Config::default());
    key.state().set_presence_policy(PresencePolicy::Approve(Duration::from_millis(350)));
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    c.hid().on_keepalive(Box::new(move |s| {
        assert_eq!(s, KeepaliveStatus::UpNeeded);
        counter.fetch_add(1, Ordering::SeqCst);
    }));
    c.make_credential(&request(b"ada"), None).unwrap();
    assert!(seen.load(Ordering::SeqCst) >= 3, "one keep-alive per ~100 ms of waiting");
}

#[test]
fn cancel_stops_a_request_waiting_for_touch() {
    let (mut c, key) = setup(Config::default());
    key.state().set_presence_policy(PresencePolicy::Approve(Duration::from_secs(8)));
    let flag = c.hid().cancel_flag();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        flag.store(true, Ordering::SeqCst);
    });
    let start = Instant::now();
    let err = c.make_credential(&request(b"ada"), None).unwrap_err();
    canceller.join().unwrap();
    assert_eq!(err.status(), Some(CtapStatus::KeepaliveCancel));
    assert!(start.elapsed() < Duration::from_secs(3), "cancelled, not timed out");
    assert_eq!(key.state().resident_count(), 0);
    // The channel is usable again right away.
    c.hid().ping(b"after cancel").unwrap();
}

/// Two host channels over one report pipe, as two programs sharing a USB key.
#[derive(Clone)]
struct Shared(Arc<Mutex<MemoryTransport>>);

impl Transport for Shared {
    fn send_report(&mut self, report: &Report) -> Result<(), TransportError> {
        self.0.lock().unwrap().send_report(report)
    }
    fn recv_report(&mut self, timeout: Duration) -> Result<Option<Report>, TransportError> {
        self.0.lock().unwrap().recv_report(timeout)
    }
}

#[test]
fn channel_busy_is_retried_until_the_other_channel_finishes() {
    let (host, dev) = MemoryTransport::pair();
    let _key = SoftKey::spawn(Config::default(), dev.from_host, dev.to_host);
    let shared = Shared(Arc::new(Mutex::new(host)));
    let mut other = HidDevice::open(shared.clone(), timeouts()).unwrap();
    let mut ours = HidDevice::open(shared.clone(), timeouts()).unwrap();
    // The other program starts a 200-byte PING and stalls after the first packet.
    let reports = fragment(other.info().cid, HidCommand::Ping as u8, &[7; 200]).unwrap();
    let mut raw = shared.clone();
    raw.send_report(&reports[0]).unwrap();
    let finisher = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(250));
        for r in &reports[1..] {
            raw.send_report(r).unwrap();
        }
    });
    let start = Instant::now();
    ours.ping(b"ours").unwrap();
    finisher.join().unwrap();
    assert!(start.elapsed() >= Duration::from_millis(200), "waited for the busy channel");
    other.ping(b"other channel still works").unwrap();
}

#[test]
fn selection_picks_the_touched_key_and_cancels_the_others() {
    let policies = [Duration::from_secs(6), Duration::from_millis(150), Duration::from_secs(6)];
    let mut keys = Vec::new();
    let mut clients: Vec<Client<MemoryTransport>> = Vec::new();
    for delay in policies {
        let (c, key) = setup(Config { presence: PresencePolicy::Approve(delay), ..Config::default() });
        clients.push(c);
        keys.push(key);
    }
    let start = Instant::now();
    assert_eq!(keyward_ctap::select(&mut clients).unwrap(), 1);
    assert!(start.elapsed() < Duration::from_secs(3), "the untouched keys were cancelled");
    // Each key is usable afterwards.
    for c in &mut clients {
        c.hid().ping(b"still here").unwrap();
    }
    let none: &mut [Client<MemoryTransport>] = &mut [];
    assert!(matches!(keyward_ctap::select(none), Err(keyward_ctap::CtapError::NoKey)));
    // A single key: selection is a touch.
    let (mut c, _key) = setup(Config::default());
    c.selection().unwrap();
    c.set_pin(&pin("1234")).unwrap();
}

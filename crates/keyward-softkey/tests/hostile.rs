//! Hostile input from a host: whatever a program on the other end of the soft key's socket
//! sends — CTAPHID reports on any channel with any lengths, CTAP commands with parameter maps
//! of any shape — the soft key answers with a CTAP status and never panics.
//!
//! `bench/fuzz.sh` runs these at 100 000 cases each (`PROPTEST_CASES`); `cargo test` at 256.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use keyward_softkey::hid::{HidServer, Report};
use keyward_softkey::{Authenticator, Config, Immediate, PresencePolicy};
use keyward_testkit::hostile::{self, check};
use proptest::prelude::*;

/// The CTAP command bytes the soft key knows, and a few it does not.
fn command() -> impl Strategy<Value = u8> {
    prop_oneof![
        prop::sample::select(vec![0x01u8, 0x02, 0x04, 0x06, 0x07, 0x08, 0x0A, 0x0B, 0x0D]),
        any::<u8>()
    ]
}

/// A CTAP request: a command byte and a parameter map (or any CBOR, or any bytes).
fn request() -> impl Strategy<Value = Vec<u8>> {
    let body = prop_oneof![
        6 => hostile::ctap_params().prop_map(|m| hostile::encode_cbor(&m)),
        2 => hostile::cbor_bytes(),
        1 => Just(Vec::new()),
    ];
    (command(), body).prop_map(|(cmd, body)| {
        let mut r = vec![cmd];
        r.extend(body);
        r
    })
}

#[test]
fn hostile_softkey_cbor_requests() {
    // Several requests in a row against one key, so a request can find the state an earlier
    // one left (a PIN set, credentials stored, an enumeration open).
    check("softkey-cbor", proptest::collection::vec(request(), 1..6), |requests| {
        let mut key = Authenticator::new(Config::default());
        let mut presence = Immediate(PresencePolicy::Approve(std::time::Duration::ZERO));
        for request in requests {
            let answer = key.process(&request, &mut presence);
            prop_assert!(!answer.is_empty(), "every answer starts with a status byte");
            if answer[0] == 0 && answer.len() > 1 {
                prop_assert!(
                    ciborium::from_reader::<ciborium::Value, _>(&answer[1..]).is_ok(),
                    "a success carries CBOR"
                );
            }
        }
        Ok(())
    });
}

/// A report from the host: on the broadcast channel, a channel INIT allocated, or any.
fn report() -> impl Strategy<Value = Report> {
    let cid = prop_oneof![2 => Just(0xFFFF_FFFFu32), 1 => any::<u32>(), 1 => Just(0)];
    let cmd = prop_oneof![
        prop::sample::select(vec![0x86u8, 0x81, 0x83, 0x88, 0x90, 0x91, 0xBB, 0xBF]),
        any::<u8>(),
    ];
    (cid, cmd, proptest::collection::vec(any::<u8>(), 59)).prop_map(|(cid, cmd, rest)| {
        let mut r = [0u8; 64];
        r[..4].copy_from_slice(&cid.to_be_bytes());
        r[4] = cmd;
        r[5..].copy_from_slice(&rest);
        r
    })
}

#[test]
fn hostile_softkey_ctaphid_reports() {
    check("softkey-ctaphid", proptest::collection::vec(report(), 0..16), |reports| {
        let key = Arc::new(Mutex::new(Authenticator::new(Config::default())));
        let (to_device, from_host) = mpsc::channel();
        let (to_host, from_device) = mpsc::channel();
        for r in reports {
            to_device.send(r).expect("the receiver is alive");
        }
        drop(to_device);
        // Runs in this thread until the queued reports are used up, so a panic is caught here.
        HidServer::new(key, from_host, to_host).run();
        for answer in from_device.try_iter() {
            prop_assert_eq!(answer.len(), 64);
        }
        Ok(())
    });
}

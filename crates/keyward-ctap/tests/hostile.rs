//! Hostile input from a security key: whatever a broken or malicious authenticator sends —
//! CTAPHID reports out of order, on other channels, with lengths that lie, and CTAP answers of
//! any shape — the client answers with a typed error and never panics or hangs.
//!
//! `bench/fuzz.sh` runs these at 100 000 cases each (`PROPTEST_CASES`); `cargo test` at 256.

use std::collections::VecDeque;
use std::time::Duration;

use keyward_ctap::hid::{self, BROADCAST_CID, HidCommand, MAX_MESSAGE_LEN, Reassembly};
use keyward_ctap::transport::{REPORT_LEN, Report};
use keyward_ctap::{
    AuthData, Client, GetAssertion, HidDevice, HidError, MakeCredential, Timeouts, Transport, TransportError,
};
use keyward_testkit::hostile::{self, check};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use secrecy::SecretString;

/// The channel the hostile key allocates.
const CID: u32 = 0x0102_0304;

/// A key that answers INIT correctly and then, for each later request, sends the next scripted
/// reply: a list of raw reports, or a CTAP answer framed as a CBOR message. When the script is
/// used up it disconnects, so no case can wait on a timeout.
struct HostileKey {
    replies: VecDeque<Reply>,
    outgoing: VecDeque<Report>,
    request: Option<Reassembly>,
}

#[derive(Debug, Clone)]
enum Reply {
    /// Reports sent exactly as given.
    Reports(Vec<Report>),
    /// A well-framed CBOR answer carrying these bytes (status byte and CBOR, or anything).
    Cbor(Vec<u8>),
}

impl HostileKey {
    fn new(replies: Vec<Reply>) -> Self {
        Self { replies: replies.into(), outgoing: VecDeque::new(), request: None }
    }

    fn open(replies: Vec<Reply>) -> Result<HidDevice<HostileKey>, HidError> {
        let timeouts = Timeouts { idle: Duration::from_secs(5), transaction: Duration::from_secs(5) };
        HidDevice::open(Self::new(replies), timeouts)
    }

    fn answer(&mut self, cid: u32, cmd: u8, payload: &[u8]) {
        if cid == BROADCAST_CID && cmd == HidCommand::Init as u8 {
            let mut init = payload.to_vec();
            init.extend_from_slice(&CID.to_be_bytes());
            init.extend_from_slice(&[2, 1, 0, 0, 0x05]);
            self.outgoing.extend(hid::fragment(cid, cmd, &init).expect("INIT answer fits"));
            return;
        }
        match self.replies.pop_front() {
            Some(Reply::Reports(reports)) => self.outgoing.extend(reports),
            Some(Reply::Cbor(body)) => {
                let body = &body[..body.len().min(MAX_MESSAGE_LEN)];
                self.outgoing.extend(hid::fragment(CID, HidCommand::Cbor as u8, body).expect("fits"));
            }
            None => {}
        }
    }
}

impl Transport for HostileKey {
    fn send_report(&mut self, report: &Report) -> Result<(), TransportError> {
        let cid = u32::from_be_bytes([report[0], report[1], report[2], report[3]]);
        if let Some(start) = Reassembly::start(report) {
            self.request = Some(start);
        } else if let Some(r) = self.request.as_mut() {
            r.push(report).map_err(|_| TransportError::Io("host sent a bad sequence".into()))?;
        }
        if let Some(done) = self.request.take_if(|r| r.is_complete()) {
            self.answer(cid, done.cmd, &done.data);
        }
        Ok(())
    }

    fn recv_report(&mut self, _timeout: Duration) -> Result<Option<Report>, TransportError> {
        self.outgoing.pop_front().map(Some).ok_or(TransportError::Disconnected)
    }
}

/// A report from the key: mostly on our channel, sometimes another host's or broadcast.
fn report() -> impl Strategy<Value = Report> {
    let cid = prop_oneof![8 => Just(CID), 1 => Just(BROADCAST_CID), 1 => any::<u32>()];
    (cid, any::<u8>(), proptest::collection::vec(any::<u8>(), REPORT_LEN - 5)).prop_map(|(cid, cmd, rest)| {
        let mut r = [0u8; REPORT_LEN];
        r[..4].copy_from_slice(&cid.to_be_bytes());
        r[4] = cmd;
        r[5..].copy_from_slice(&rest);
        r
    })
}

#[test]
fn hostile_ctaphid_frames() {
    let reports = proptest::collection::vec(report(), 0..12);
    check("ctaphid-frames", reports, |reports| {
        let mut dev = HostileKey::open(vec![Reply::Reports(reports)])
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        // Any answer is acceptable; only a panic or a hang is not.
        let _ = dev.cbor(&[0x04]);
        Ok(())
    });
}

#[test]
fn hostile_ctaphid_messages_round_trip_past_keepalives_and_other_channels() {
    let message = hostile::bytes(MAX_MESSAGE_LEN);
    let noise = proptest::collection::vec((any::<bool>(), any::<u8>()), 0..4);
    check("ctaphid-round-trip", (message, noise), |(message, noise)| {
        let mut reports = Vec::new();
        for (keepalive, status) in noise {
            let (cid, cmd) = if keepalive {
                (CID, HidCommand::Keepalive as u8)
            } else {
                (CID ^ 1, HidCommand::Cbor as u8)
            };
            reports.extend(hid::fragment(cid, cmd, &[status]).expect("one byte fits"));
        }
        reports.extend(hid::fragment(CID, HidCommand::Cbor as u8, &message).expect("within the limit"));
        let mut dev = HostileKey::open(vec![Reply::Reports(reports)])
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let answer = dev.cbor(&[0x04]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(answer, message);
        Ok(())
    });
}

/// A CTAP answer: status 0 and a CBOR map (most of the time), any status, or any bytes.
fn ctap_answer() -> impl Strategy<Value = Reply> {
    prop_oneof![
        6 => hostile::ctap_params().prop_map(|m| {
            let mut b = vec![0];
            b.extend(hostile::encode_cbor(&m));
            Reply::Cbor(b)
        }),
        2 => hostile::cbor_bytes().prop_map(|mut b| {
            b.insert(0, 0);
            Reply::Cbor(b)
        }),
        1 => hostile::bytes(8).prop_map(Reply::Cbor),
        1 => proptest::collection::vec(report(), 0..4).prop_map(Reply::Reports),
    ]
}

fn registration() -> MakeCredential {
    MakeCredential {
        client_data_hash: [7; 32],
        rp_id: "login.microsoft.com".into(),
        rp_name: Some("Microsoft".into()),
        user_id: b"user".to_vec(),
        user_name: Some("ada@contoso.com".into()),
        user_display_name: Some("Ada".into()),
        exclude_list: vec![],
        resident_key: true,
        hmac_secret: true,
        cred_protect: Some(2),
        min_pin_length: false,
        enterprise_attestation: None,
    }
}

#[test]
fn hostile_ctap_responses() {
    let answers = proptest::collection::vec(ctap_answer(), 1..24);
    check("ctap-responses", answers, |answers| {
        let dev = HostileKey::open(answers).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut client = Client::new(dev);
        // Every call reads one or more hostile answers; errors are expected, panics are not.
        let _ = client.get_info();
        let _ = client.get_retries();
        let _ = client.set_pin(&SecretString::from("1234".to_owned()));
        let _ = client.get_pin_token(&SecretString::from("1234".to_owned()));
        if let Ok(made) = client.make_credential(&registration(), None)
            && let Ok(auth) = made.parsed()
        {
            let _ = auth.extension_outputs();
        }
        let request = GetAssertion {
            rp_id: "login.microsoft.com".into(),
            client_data_hash: [9; 32],
            allow_list: vec![vec![1, 2, 3]],
            hmac_secret: None,
        };
        let _ = client.get_all_assertions(&request, None);
        let _ = client.get_next_assertion();
        Ok(())
    });
}

#[test]
fn hostile_authenticator_data() {
    check("authenticator-data", hostile::cbor_bytes(), |bytes| {
        let _ = AuthData::parse(&bytes);
        let _ = keyward_ctap::cbor::raw_int_map(&bytes);
        let _ = keyward_ctap::cbor::item_len(&bytes);
        Ok(())
    });
}

//! trussed's `fido-authenticator` run on the host, behind a [`Transport`] our client drives.
//!
//! The conformance suite pits our client against our own soft key, so a misreading of CTAP
//! shared by both sides would pass unnoticed. This harness runs an authenticator written by
//! other people (the Trussed/Nitrokey firmware app `fido-authenticator`, Apache-2.0 OR MIT)
//! on trussed's `virt` platform (RAM-backed littlefs, software crypto), with trussed's own
//! device-side CTAPHID pipe ([`pipe`]) in front of it. Our client sees nothing but 64-byte
//! reports, exactly as with a USB key.
//!
//! Threads: the authenticator is polled by `ctaphid-dispatch` on one thread, the client runs
//! on another, and they meet in the dispatch interchange owned by the pipe. Each call of
//! [`with_authenticator`] is a fresh, factory-new device whose uptime starts at zero, so the
//! reset power-up window applies as on a key that was just plugged in.

pub mod attestation;
mod pipe;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use ctaphid_dispatch::{Channel, DEFAULT_MESSAGE_SIZE, Dispatch};
use fido_authenticator::{Authenticator, Config, Conforming};
use keyward_ctap::transport::{Report, TransportError};
use keyward_ctap::{Client, HidDevice, Timeouts, Transport};
use trussed::backend::BackendId;
use trussed::platform::Platform as _;
use trussed::store::Store as _;
use trussed::types::PathBuf;
use trussed::virt::{self, StoreConfig};
use trussed_staging::virt::{BackendIds, Dispatcher};

/// Moves the virtual device's clock forward (past the reset window, for instance).
pub use trussed::virt::UptimeOffset;

use attestation::Batch;
use pipe::Pipe;

/// The largest CTAP message the pipe reassembles; advertised as maxMsgSize in getInfo.
const MAX_MSG_SIZE: usize = 3072;

/// How many discoverable credentials the authenticator may hold (small, to reach the limit).
pub const MAX_RESIDENT_CREDENTIALS: usize = 10;

/// Our [`Transport`] over trussed's CTAPHID pipe: reports go straight into the pipe's parser.
pub struct PipeTransport<'a> {
    pipe: Pipe<'a, DEFAULT_MESSAGE_SIZE>,
}

impl Transport for PipeTransport<'_> {
    fn send_report(&mut self, report: &Report) -> Result<(), TransportError> {
        self.pipe.push(report);
        Ok(())
    }

    fn recv_report(&mut self, timeout: Duration) -> Result<Option<Report>, TransportError> {
        let start = Instant::now();
        loop {
            if let Some(report) = self.pipe.pop() {
                return Ok(Some(report));
            }
            if start.elapsed() >= timeout {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Runs `f` with our client connected to a factory-new `fido-authenticator` without a batch
/// attestation key (it then attests with the credential's own key).
///
/// `f` also gets the device's uptime offset, to move its clock past the reset window.
pub fn with_authenticator<R, F>(f: F) -> R
where
    F: FnOnce(Client<PipeTransport<'_>>, UptimeOffset) -> R + Send,
    R: Send,
{
    run(None, f)
}

/// Like [`with_authenticator`], with `batch` provisioned as the vendor attestation key.
pub fn with_attested_authenticator<R, F>(batch: &Batch, f: F) -> R
where
    F: FnOnce(Client<PipeTransport<'_>>, UptimeOffset) -> R + Send,
    R: Send,
{
    run(Some(batch), f)
}

fn run<R, F>(batch: Option<&Batch>, f: F) -> R
where
    F: FnOnce(Client<PipeTransport<'_>>, UptimeOffset) -> R + Send,
    R: Send,
{
    virt::with_platform(StoreConfig::ram(), |mut platform| {
        let uptime = platform.user_interface().uptime_offset();
        if let Some(batch) = batch {
            // Where fido-authenticator looks for its attestation key and certificate.
            let store = platform.store();
            let ifs = store.ifs();
            let write = |path: &str, content: &[u8]| {
                let path = PathBuf::try_from(path).expect("a valid littlefs path");
                ifs.create_dir_all(path.parent().as_deref().expect("a parent directory"))
                    .and_then(|()| ifs.write(&path, content))
                    .expect("writing to the RAM filesystem");
            };
            write("fido/sec/00", &batch.trussed_key_file());
            write("fido/x5c/00", &batch.certificate_der);
        }
        platform.run_client_with_backends(
            "fido",
            Dispatcher::default(),
            &[BackendId::Custom(BackendIds::StagingBackend), BackendId::Core],
            |trussed| {
                let mut config = Config::new(MAX_MSG_SIZE);
                config.max_resident_credential_count =
                    Some(MAX_RESIDENT_CREDENTIALS.try_into().expect("a small limit"));
                // The virt platform's "button" answers at once; a long touch cannot be modelled.
                config.long_touch_for_reset = false;
                let mut authenticator = Authenticator::new(trussed, Conforming {}, config);
                let channel = Channel::<DEFAULT_MESSAGE_SIZE>::new();
                let (requester, responder) = channel.split().expect("a fresh channel splits");
                thread::scope(|s| {
                    let stop = Arc::new(AtomicBool::new(false));
                    let poller_stop = stop.clone();
                    let poller = s.spawn(move || {
                        let mut dispatch: Dispatch<'_, 'static, DEFAULT_MESSAGE_SIZE> =
                            Dispatch::new(responder);
                        while !poller_stop.load(Ordering::Relaxed) {
                            dispatch.poll(&mut [&mut authenticator]);
                            thread::sleep(Duration::from_millis(1));
                        }
                    });
                    let runner = s.spawn(move || {
                        let transport = PipeTransport { pipe: Pipe::new(requester) };
                        let timeouts =
                            Timeouts { idle: Duration::from_secs(5), transaction: Duration::from_secs(20) };
                        let hid = HidDevice::open(transport, timeouts).expect("CTAPHID INIT with trussed");
                        f(Client::new(hid), uptime)
                    });
                    let result = runner.join();
                    stop.store(true, Ordering::Relaxed);
                    poller.join().expect("the authenticator thread does not panic");
                    result.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
            },
        )
    })
}

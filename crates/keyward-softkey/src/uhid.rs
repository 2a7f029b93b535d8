//! Serving the soft key as a Linux HID device through `/dev/uhid`, so that every FIDO client on
//! the machine (libfido2, python-fido2, browsers, Keyward's own `--key hid`) sees a security key.
//!
//! The kernel's user-space HID driver takes one `struct uhid_event` per `write` and hands one
//! per `read` (`<linux/uhid.h>`, packed, native byte order: little-endian on every platform
//! Keyward ships for). The device announces itself with UHID_CREATE2 and the report descriptor
//! of a FIDO key ([`FIDO_REPORT_DESCRIPTOR`]: usage page 0xF1D0, usage 0x01, one 64-byte input
//! and one 64-byte output report, no report ids). A host's write to `/dev/hidrawN` arrives as
//! UHID_OUTPUT, whose data starts with the report id — always 0 here, as the descriptor has none
//! — followed by the 64-byte report; the device answers each report with UHID_INPUT2 carrying the
//! 64 bytes alone. Anything else is logged and dropped, as a real key's USB stack would drop a
//! short transfer. CTAPHID framing is the same device loop the socket transport uses
//! ([`crate::hid::HidServer`]).
//!
//! The events are laid out by hand as byte arrays written and read with a plain
//! [`std::fs::File`]: the workspace forbids `unsafe`, and the crates that wrap uhid do not fit.
//! `uhid-virt` (0.0.8, one maintainer) depends on `libc` and on `uhidrs-sys`, bindgen's copy of
//! the kernel structs, which its codec turns into bytes with `std::mem`/`std::slice` casts;
//! the crates it was forked from (`uhid-fs`, `tokio-linux-uhid`) are unmaintained. The layout is
//! small and fixed by the kernel's ABI; the unit tests pin every offset.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::authenticator::Authenticator;
use crate::hid::{HidServer, REPORT_LEN, Report};
use crate::state::StateFile;

/// The kernel's user-space HID device.
pub const UHID_PATH: &str = "/dev/uhid";

/// The report descriptor of a FIDO security key (CTAP 2.1 §11.2.8.1): FIDO Alliance usage
/// page, CTAPHID usage, 64 bytes in and 64 bytes out, no report ids.
pub const FIDO_REPORT_DESCRIPTOR: [u8; 34] = [
    0x06, 0xD0, 0xF1, // Usage Page (FIDO Alliance, 0xF1D0)
    0x09, 0x01, // Usage (CTAPHID)
    0xA1, 0x01, // Collection (Application)
    0x09, 0x20, //   Usage (Input Report Data)
    0x15, 0x00, //   Logical Minimum (0)
    0x26, 0xFF, 0x00, //   Logical Maximum (255)
    0x75, 0x08, //   Report Size (8 bits)
    0x95, 0x40, //   Report Count (64)
    0x81, 0x02, //   Input (Data, Variable, Absolute)
    0x09, 0x21, //   Usage (Output Report Data)
    0x15, 0x00, //   Logical Minimum (0)
    0x26, 0xFF, 0x00, //   Logical Maximum (255)
    0x75, 0x08, //   Report Size (8 bits)
    0x95, 0x40, //   Report Count (64)
    0x91, 0x02, //   Output (Data, Variable, Absolute)
    0xC0, // End Collection
];

/// `BUS_USB` from `<linux/input.h>`: hidapi and libfido2 treat the device as a USB key.
const BUS_USB: u16 = 0x03;
/// pid.codes' vendor id for open-source hardware, with its test product id.
const VENDOR_ID: u32 = 0x1209;
const PRODUCT_ID: u32 = 0x0001;

/// Event types of `enum uhid_event_type`.
const UHID_START: u32 = 2;
const UHID_OUTPUT: u32 = 6;
const UHID_GET_REPORT: u32 = 9;
const UHID_GET_REPORT_REPLY: u32 = 10;
const UHID_CREATE2: u32 = 11;
const UHID_INPUT2: u32 = 12;
const UHID_SET_REPORT: u32 = 13;
const UHID_SET_REPORT_REPLY: u32 = 14;
const UHID_DESTROY: u32 = 1;

/// `UHID_DATA_MAX` and `HID_MAX_DESCRIPTOR_SIZE`.
const DATA_MAX: usize = 4096;
/// `sizeof(struct uhid_event)`: the type and the largest member, `uhid_create2_req`
/// (name 128, phys 64, uniq 64, rd_size, bus, vendor, product, version, country, rd_data).
pub const EVENT_LEN: usize = 4 + 128 + 64 + 64 + 2 + 2 + 4 * 4 + DATA_MAX;
const NAME_LEN: usize = 128;
const UNIQ_LEN: usize = 64;
/// `EIO`, the error a GET_REPORT/SET_REPORT reply carries: a FIDO key has no feature reports.
const EIO: u16 = 5;

/// Why the soft key could not become a HID device.
#[derive(Debug, thiserror::Error)]
pub enum UhidError {
    /// /dev/uhid could not be opened.
    #[error(
        "cannot open {UHID_PATH} ({0}); load the uhid module (`modprobe uhid`) and run as a user who may \
         write {UHID_PATH} (root, or a udev rule)"
    )]
    Open(String),
    /// The kernel refused the device or stopped answering.
    #[error(
        "the kernel's uhid driver refused the soft key ({0}); check `dmesg` and that the hid module is loaded"
    )]
    Io(String),
    /// No HID driver took the device.
    #[error(
        "no HID driver started the soft key within {0} s; load hid-generic (`modprobe hid-generic`) and retry"
    )]
    NotStarted(u64),
    /// A name or serial does not fit the kernel's fields.
    #[error("the HID {what} {value:?} is too long (at most {max} bytes); choose a shorter one")]
    TooLong {
        /// Which field.
        what: &'static str,
        /// The value given.
        value: String,
        /// Room in the kernel's field, without the terminating NUL.
        max: usize,
    },
}

/// How the device introduces itself to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UhidIdentity {
    /// Product name (hidapi's product string, the kernel's HID_NAME).
    pub name: String,
    /// Serial number (hidapi's serial string, the kernel's HID_UNIQ).
    pub serial: String,
}

/// One event read from `/dev/uhid`, reduced to what the soft key acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A HID driver bound the device.
    Start,
    /// The host wrote an output report: the bytes after the event type, `size` of them.
    Output(Vec<u8>),
    /// The host asked for a feature/input report by control transfer; the request id.
    GetReport(u32),
    /// The host set a feature/output report by control transfer; the request id.
    SetReport(u32),
    /// Open, close, stop and anything newer: nothing to do.
    Other(u32),
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

fn put_str(
    event: &mut [u8],
    at: usize,
    room: usize,
    what: &'static str,
    value: &str,
) -> Result<(), UhidError> {
    // The kernel reads these as NUL-terminated strings.
    if value.len() >= room {
        return Err(UhidError::TooLong { what, value: value.to_owned(), max: room - 1 });
    }
    event[at..at + value.len()].copy_from_slice(value.as_bytes());
    Ok(())
}

/// UHID_CREATE2 for a FIDO key with this identity.
pub fn create2(identity: &UhidIdentity) -> Result<Vec<u8>, UhidError> {
    let mut e = vec![0u8; EVENT_LEN];
    e[..4].copy_from_slice(&UHID_CREATE2.to_le_bytes());
    let name_at = 4;
    let phys_at = name_at + NAME_LEN;
    let uniq_at = phys_at + 64;
    let rest_at = uniq_at + UNIQ_LEN;
    put_str(&mut e, name_at, NAME_LEN, "name", &identity.name)?;
    put_str(&mut e, phys_at, 64, "phys", "keyward-softkey")?;
    put_str(&mut e, uniq_at, UNIQ_LEN, "serial", &identity.serial)?;
    let descriptor_len = FIDO_REPORT_DESCRIPTOR.len() as u16;
    e[rest_at..rest_at + 2].copy_from_slice(&descriptor_len.to_le_bytes());
    e[rest_at + 2..rest_at + 4].copy_from_slice(&BUS_USB.to_le_bytes());
    e[rest_at + 4..rest_at + 8].copy_from_slice(&VENDOR_ID.to_le_bytes());
    e[rest_at + 8..rest_at + 12].copy_from_slice(&PRODUCT_ID.to_le_bytes());
    // version and country stay 0.
    let rd_at = rest_at + 20;
    e[rd_at..rd_at + FIDO_REPORT_DESCRIPTOR.len()].copy_from_slice(&FIDO_REPORT_DESCRIPTOR);
    Ok(e)
}

/// UHID_INPUT2 carrying one 64-byte input report to the host.
pub fn input2(report: &Report) -> Vec<u8> {
    let mut e = vec![0u8; EVENT_LEN];
    e[..4].copy_from_slice(&UHID_INPUT2.to_le_bytes());
    e[4..6].copy_from_slice(&(REPORT_LEN as u16).to_le_bytes());
    e[6..6 + REPORT_LEN].copy_from_slice(report);
    e
}

/// UHID_DESTROY: the device is unplugged.
pub fn destroy() -> Vec<u8> {
    let mut e = vec![0u8; EVENT_LEN];
    e[..4].copy_from_slice(&UHID_DESTROY.to_le_bytes());
    e
}

/// The refusal of a GET_REPORT (`get_report`) or SET_REPORT request with EIO.
pub fn refuse_report_request(request_id: u32, get_report: bool) -> Vec<u8> {
    let mut e = vec![0u8; EVENT_LEN];
    let kind = if get_report { UHID_GET_REPORT_REPLY } else { UHID_SET_REPORT_REPLY };
    e[..4].copy_from_slice(&kind.to_le_bytes());
    e[4..8].copy_from_slice(&request_id.to_le_bytes());
    e[8..10].copy_from_slice(&EIO.to_le_bytes());
    e
}

/// Decodes one event as read from `/dev/uhid` (`n` bytes of `buf`); `None` if it is shorter
/// than its type says.
pub fn decode(buf: &[u8]) -> Option<Event> {
    if buf.len() < 4 {
        return None;
    }
    Some(match u32_at(buf, 0) {
        UHID_START => Event::Start,
        UHID_OUTPUT => {
            // struct uhid_output_req { data[4096]; u16 size; u8 rtype; }
            let size_at = 4 + DATA_MAX;
            if buf.len() < size_at + 2 {
                return None;
            }
            let size = usize::from(u16::from_le_bytes([buf[size_at], buf[size_at + 1]])).min(DATA_MAX);
            Event::Output(buf[4..4 + size].to_vec())
        }
        UHID_GET_REPORT if buf.len() >= 8 => Event::GetReport(u32_at(buf, 4)),
        UHID_SET_REPORT if buf.len() >= 8 => Event::SetReport(u32_at(buf, 4)),
        UHID_GET_REPORT | UHID_SET_REPORT => return None,
        other => Event::Other(other),
    })
}

/// The CTAPHID report inside an output report: report id 0, then exactly 64 bytes.
pub fn output_report(data: &[u8]) -> Result<Report, String> {
    match data {
        [0, report @ ..] if report.len() == REPORT_LEN => Ok(report.try_into().expect("64 bytes")),
        [id, ..] if data.len() == REPORT_LEN + 1 => {
            Err(format!("an output report with report id {id}; a FIDO key has none (0 expected)"))
        }
        _ => Err(format!(
            "an output report of {} bytes; a FIDO key takes report id 0 and 64 bytes ({} in all)",
            data.len(),
            REPORT_LEN + 1
        )),
    }
}

/// A soft key plugged in as a HID device; unplugged when dropped.
#[derive(Debug)]
pub struct ServedUhid {
    state: Arc<Mutex<Authenticator>>,
    device: Arc<Mutex<File>>,
    identity: UhidIdentity,
}

impl ServedUhid {
    /// Locks the authenticator state.
    pub fn state(&self) -> MutexGuard<'_, Authenticator> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The name and serial the host sees.
    pub fn identity(&self) -> &UhidIdentity {
        &self.identity
    }
}

impl Drop for ServedUhid {
    fn drop(&mut self) {
        let mut device = self.device.lock().unwrap_or_else(|e| e.into_inner());
        let _ = device.write_all(&destroy());
    }
}

/// How long the kernel may take to bind a HID driver to a new device.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Creates the HID device and serves `authenticator` on it until the returned [`ServedUhid`]
/// is dropped; with `state_file`, every change is saved before the answer is sent. Returns once
/// a HID driver started the device (its `/dev/hidraw*` node follows right after).
pub fn serve_uhid(
    authenticator: Authenticator,
    state_file: Option<Arc<StateFile>>,
    identity: UhidIdentity,
) -> Result<ServedUhid, UhidError> {
    let create = create2(&identity)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(UHID_PATH)
        .map_err(|e| UhidError::Open(e.to_string()))?;
    let mut reader = file.try_clone().map_err(|e| UhidError::Io(e.to_string()))?;
    let device = Arc::new(Mutex::new(file));
    write_event(&device, &create).map_err(|e| UhidError::Io(e.to_string()))?;

    let state = Arc::new(Mutex::new(authenticator));
    let (to_dev, from_host) = mpsc::channel::<Report>();
    let (to_host, from_dev) = mpsc::channel::<Report>();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let replies = device.clone();
    std::thread::Builder::new()
        .name("keyward-uhid-read".into())
        .spawn(move || {
            let mut buf = vec![0u8; EVENT_LEN];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => return,
                };
                match decode(&buf[..n]) {
                    Some(Event::Start) => {
                        let _ = started_tx.send(());
                    }
                    Some(Event::Output(data)) => match output_report(&data) {
                        Ok(report) => {
                            if to_dev.send(report).is_err() {
                                return;
                            }
                        }
                        Err(why) => eprintln!("keyward softkey: dropped {why}"),
                    },
                    Some(Event::GetReport(id)) => {
                        let _ = write_event(&replies, &refuse_report_request(id, true));
                    }
                    Some(Event::SetReport(id)) => {
                        let _ = write_event(&replies, &refuse_report_request(id, false));
                    }
                    Some(Event::Other(_)) | None => {}
                }
            }
        })
        .map_err(|e| UhidError::Io(e.to_string()))?;
    let inputs = device.clone();
    std::thread::Builder::new()
        .name("keyward-uhid-write".into())
        .spawn(move || {
            for report in from_dev {
                if let Err(e) = write_event(&inputs, &input2(&report)) {
                    eprintln!("keyward softkey: the kernel refused an input report ({e})");
                }
            }
        })
        .map_err(|e| UhidError::Io(e.to_string()))?;
    let shared = state.clone();
    std::thread::Builder::new()
        .name("keyward-uhid-ctaphid".into())
        .spawn(move || HidServer::new(shared, from_host, to_host).with_state_file(state_file).run())
        .map_err(|e| UhidError::Io(e.to_string()))?;
    let served = ServedUhid { state, device, identity };
    match started_rx.recv_timeout(START_TIMEOUT) {
        Ok(()) => Ok(served),
        Err(RecvTimeoutError::Timeout) => Err(UhidError::NotStarted(START_TIMEOUT.as_secs())),
        Err(RecvTimeoutError::Disconnected) => {
            Err(UhidError::Io("the device was closed before a driver started it".into()))
        }
    }
}

fn write_event(device: &Mutex<File>, event: &[u8]) -> std::io::Result<()> {
    device.lock().unwrap_or_else(|e| e.into_inner()).write_all(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> UhidIdentity {
        UhidIdentity { name: "Keyward soft key".into(), serial: "KW-0001".into() }
    }

    #[test]
    fn event_size_is_the_kernels() {
        // sizeof(struct uhid_event) on Linux: 4 + sizeof(struct uhid_create2_req).
        assert_eq!(EVENT_LEN, 4376);
    }

    #[test]
    fn create2_puts_every_field_at_the_kernels_offset() {
        let e = create2(&identity()).unwrap();
        assert_eq!(e.len(), EVENT_LEN);
        assert_eq!(&e[..4], &[11, 0, 0, 0], "UHID_CREATE2");
        assert_eq!(&e[4..21], b"Keyward soft key\0", "name at 4");
        assert_eq!(&e[132..148], b"keyward-softkey\0", "phys at 132");
        assert_eq!(&e[196..204], b"KW-0001\0", "uniq at 196");
        assert_eq!(&e[260..262], &[34, 0], "rd_size at 260");
        assert_eq!(&e[262..264], &[3, 0], "bus at 262: USB");
        assert_eq!(&e[264..268], &[0x09, 0x12, 0, 0], "vendor at 264");
        assert_eq!(&e[268..272], &[1, 0, 0, 0], "product at 268");
        assert_eq!(&e[280..314], &FIDO_REPORT_DESCRIPTOR, "rd_data at 280");
        assert!(e[314..].iter().all(|b| *b == 0));
    }

    #[test]
    fn the_descriptor_is_a_fido_key_with_64_byte_reports() {
        let d = &FIDO_REPORT_DESCRIPTOR;
        assert_eq!(&d[..3], &[0x06, 0xD0, 0xF1], "usage page 0xF1D0");
        assert_eq!(&d[3..5], &[0x09, 0x01], "usage CTAPHID");
        assert_eq!(d.windows(2).filter(|w| *w == [0x95, 0x40]).count(), 2, "two reports of 64");
        assert!(!d.contains(&0x85), "no Report ID item");
    }

    #[test]
    fn names_that_do_not_fit_are_refused() {
        let long = UhidIdentity { name: "n".into(), serial: "s".repeat(64) };
        assert!(matches!(create2(&long), Err(UhidError::TooLong { what: "serial", max: 63, .. })));
        let long = UhidIdentity { name: "n".repeat(128), serial: "s".into() };
        assert!(matches!(create2(&long), Err(UhidError::TooLong { what: "name", .. })));
        assert!(create2(&UhidIdentity { name: "n".repeat(127), serial: "s".repeat(63) }).is_ok());
    }

    #[test]
    fn input2_carries_the_64_byte_report() {
        let mut report = [0u8; REPORT_LEN];
        report.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8 + 1);
        let e = input2(&report);
        assert_eq!(&e[..4], &[12, 0, 0, 0], "UHID_INPUT2");
        assert_eq!(&e[4..6], &[64, 0], "size");
        assert_eq!(&e[6..70], &report);
    }

    fn output_event(data: &[u8]) -> Vec<u8> {
        let mut e = vec![0u8; EVENT_LEN];
        e[..4].copy_from_slice(&UHID_OUTPUT.to_le_bytes());
        e[4..4 + data.len()].copy_from_slice(data);
        e[4100..4102].copy_from_slice(&(data.len() as u16).to_le_bytes());
        e[4102] = 1; // UHID_OUTPUT_REPORT
        e
    }

    /// (what, bytes the host wrote, the report the device acts on or None).
    #[test]
    fn output_reports_need_report_id_zero_and_64_bytes() {
        let mut with_id = vec![0u8; 65];
        with_id[1..5].copy_from_slice(&[0xFF; 4]);
        with_id[5] = 0x86;
        let mut want = [0u8; REPORT_LEN];
        want[..4].copy_from_slice(&[0xFF; 4]);
        want[4] = 0x86;
        let rows: [(&str, Vec<u8>, Option<Report>); 5] = [
            ("report id 0 and 64 bytes", with_id.clone(), Some(want)),
            ("report id dropped: 64 bytes", with_id[1..].to_vec(), None),
            ("numbered report", [vec![2], with_id[1..].to_vec()].concat(), None),
            ("short", vec![0; 10], None),
            ("long", vec![0; 66], None),
        ];
        for (what, data, want) in rows {
            let Some(Event::Output(got)) = decode(&output_event(&data)) else {
                panic!("{what}: not an output")
            };
            assert_eq!(got, data, "{what}");
            assert_eq!(output_report(&got).ok(), want, "{what}");
        }
    }

    #[test]
    fn events_are_told_apart_and_report_requests_refused() {
        let mut e = vec![0u8; EVENT_LEN];
        e[..4].copy_from_slice(&UHID_START.to_le_bytes());
        assert_eq!(decode(&e), Some(Event::Start));
        e[..4].copy_from_slice(&UHID_GET_REPORT.to_le_bytes());
        e[4..8].copy_from_slice(&77u32.to_le_bytes());
        assert_eq!(decode(&e), Some(Event::GetReport(77)));
        e[..4].copy_from_slice(&UHID_SET_REPORT.to_le_bytes());
        assert_eq!(decode(&e), Some(Event::SetReport(77)));
        e[..4].copy_from_slice(&4u32.to_le_bytes());
        assert_eq!(decode(&e), Some(Event::Other(4)), "UHID_OPEN");
        assert_eq!(decode(&e[..3]), None);
        assert_eq!(decode(&output_event(&[0; 65])[..100]), None, "truncated output");

        let reply = refuse_report_request(77, true);
        assert_eq!(&reply[..10], &[10, 0, 0, 0, 77, 0, 0, 0, 5, 0], "GET_REPORT_REPLY id 77, EIO");
        let reply = refuse_report_request(78, false);
        assert_eq!(&reply[..10], &[14, 0, 0, 0, 78, 0, 0, 0, 5, 0], "SET_REPORT_REPLY id 78, EIO");
        assert_eq!(&destroy()[..4], &[1, 0, 0, 0]);
    }
}

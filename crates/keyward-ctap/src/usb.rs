//! USB HID transport for real security keys, through the `hidapi` crate.
//!
//! FIDO keys expose a HID interface on usage page 0xF1D0 (usage 0x01, CTAPHID), so
//! enumeration filters the system's HID devices on that page; several keys may be plugged in
//! at once, and the operator tells them apart by product name and USB serial string (or picks
//! one by touch with [`crate::select::select`]). Each CTAPHID report is 64 bytes; hidapi's
//! `write` wants the HID report id in front, which is 0 for FIDO keys (they have no numbered
//! reports), so 65 bytes go down and 64 come back. `hidapi` was chosen over hand-written
//! hidraw/IOKit/Windows code because it already covers all three platforms; on Linux it uses
//! hidraw and links libudev (`libudev-dev` and `pkg-config` at build time, see `.ci/run`).

use std::ffi::CString;
use std::time::Duration;

use crate::transport::{REPORT_LEN, Report, Transport, TransportError};

/// The HID usage page of FIDO authenticators (FIDO Alliance, CTAPHID).
pub const FIDO_USAGE_PAGE: u16 = 0xF1D0;
/// The CTAPHID usage on [`FIDO_USAGE_PAGE`].
pub const FIDO_USAGE_CTAPHID: u16 = 0x01;

/// Why USB keys could not be listed or opened.
#[derive(Debug, thiserror::Error)]
pub enum UsbError {
    /// hidapi could not start (no HID subsystem access).
    #[error(
        "cannot access USB HID devices ({0}); on Linux check that your user may read /dev/hidraw* \
         (udev rules for FIDO keys) and retry"
    )]
    Init(String),
    /// The key at `path` could not be opened.
    #[error(
        "cannot open the security key at {path} ({reason}); re-insert it or check /dev/hidraw* permissions"
    )]
    Open {
        /// The HID path.
        path: String,
        /// What hidapi said.
        reason: String,
    },
}

/// One FIDO security key found on USB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbKey {
    /// OS path of the HID interface (e.g. /dev/hidraw3), used to open it.
    pub path: String,
    /// USB vendor id.
    pub vendor_id: u16,
    /// USB product id.
    pub product_id: u16,
    /// Product name string, if the key reports one.
    pub product: Option<String>,
    /// Manufacturer string, if the key reports one.
    pub manufacturer: Option<String>,
    /// USB serial number string, if the key reports one.
    pub serial: Option<String>,
}

/// The HID fields enumeration looks at, separated from hidapi's `DeviceInfo` (which cannot be
/// built outside hidapi) so the filter is testable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HidCandidate {
    /// The HID interface as a FIDO key, if it is one.
    pub key: UsbKey,
    /// HID usage page of the interface.
    pub usage_page: u16,
    /// HID usage of the interface.
    pub usage: u16,
}

/// Keeps the CTAPHID interfaces, once per path (macOS lists an interface once per usage).
pub fn fido_keys(candidates: impl IntoIterator<Item = HidCandidate>) -> Vec<UsbKey> {
    let mut out: Vec<UsbKey> = Vec::new();
    for c in candidates {
        let is_fido = c.usage_page == FIDO_USAGE_PAGE && c.usage == FIDO_USAGE_CTAPHID;
        if is_fido && !out.iter().any(|k| k.path == c.key.path) {
            out.push(c.key);
        }
    }
    out
}

/// Lists the FIDO security keys plugged in now (several at once are fine).
pub fn list_keys() -> Result<Vec<UsbKey>, UsbError> {
    let api = hidapi::HidApi::new().map_err(|e| UsbError::Init(e.to_string()))?;
    let nonempty = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
    Ok(fido_keys(api.device_list().map(|d| HidCandidate {
        key: UsbKey {
            path: d.path().to_string_lossy().into_owned(),
            vendor_id: d.vendor_id(),
            product_id: d.product_id(),
            product: nonempty(d.product_string()),
            manufacturer: nonempty(d.manufacturer_string()),
            serial: nonempty(d.serial_number()),
        },
        usage_page: d.usage_page(),
        usage: d.usage(),
    })))
}

/// The bytes hidapi writes for one report: report id 0, then the 64-byte report.
pub fn output_report(report: &Report) -> [u8; REPORT_LEN + 1] {
    let mut out = [0u8; REPORT_LEN + 1];
    out[1..].copy_from_slice(report);
    out
}

/// Reads an input report from what hidapi returned: exactly 64 bytes, or nothing.
pub fn input_report(buf: &[u8], n: usize) -> Result<Option<Report>, TransportError> {
    match n {
        0 => Ok(None),
        REPORT_LEN => Ok(Some(buf[..REPORT_LEN].try_into().expect("64 bytes"))),
        n => Err(TransportError::Io(format!("short HID report of {n} bytes"))),
    }
}

/// One opened USB security key.
pub struct UsbTransport {
    device: hidapi::HidDevice,
}

impl std::fmt::Debug for UsbTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UsbTransport")
    }
}

impl UsbTransport {
    /// Opens the key found by [`list_keys`].
    pub fn open(key: &UsbKey) -> Result<Self, UsbError> {
        let err = |reason: String| UsbError::Open { path: key.path.clone(), reason };
        let api = hidapi::HidApi::new().map_err(|e| UsbError::Init(e.to_string()))?;
        let path = CString::new(key.path.as_bytes()).map_err(|_| err("path contains a NUL byte".into()))?;
        let device = api.open_path(&path).map_err(|e| err(e.to_string()))?;
        Ok(Self { device })
    }
}

impl Transport for UsbTransport {
    fn send_report(&mut self, report: &Report) -> Result<(), TransportError> {
        let bytes = output_report(report);
        match self.device.write(&bytes) {
            Ok(n) if n >= REPORT_LEN => Ok(()),
            Ok(n) => Err(TransportError::Io(format!("wrote {n} of {} bytes", bytes.len()))),
            Err(e) => Err(TransportError::Io(e.to_string())),
        }
    }

    fn recv_report(&mut self, timeout: Duration) -> Result<Option<Report>, TransportError> {
        let mut buf = [0u8; REPORT_LEN];
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let n = self.device.read_timeout(&mut buf, ms).map_err(|e| TransportError::Io(e.to_string()))?;
        input_report(&buf, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(path: &str, usage_page: u16, usage: u16, serial: Option<&str>) -> HidCandidate {
        HidCandidate {
            key: UsbKey {
                path: path.into(),
                vendor_id: 0x1050,
                product_id: 0x0407,
                product: Some("YubiKey OTP+FIDO+CCID".into()),
                manufacturer: Some("Yubico".into()),
                serial: serial.map(str::to_owned),
            },
            usage_page,
            usage,
        }
    }

    /// (what, devices, expected paths): only CTAPHID interfaces survive, each path once.
    #[test]
    fn enumeration_keeps_fido_interfaces_only() {
        let rows: [(&str, Vec<HidCandidate>, Vec<&str>); 4] = [
            (
                "keyboard interface of a key is skipped",
                vec![candidate("/dev/hidraw0", 0x01, 0x06, None)],
                vec![],
            ),
            (
                "two keys at once, each with its serial",
                vec![
                    candidate("/dev/hidraw1", FIDO_USAGE_PAGE, 1, Some("111")),
                    candidate("/dev/hidraw0", 0x01, 0x06, None),
                    candidate("/dev/hidraw3", FIDO_USAGE_PAGE, 1, Some("333")),
                ],
                vec!["/dev/hidraw1", "/dev/hidraw3"],
            ),
            (
                "other usage on the FIDO page",
                vec![candidate("/dev/hidraw2", FIDO_USAGE_PAGE, 2, None)],
                vec![],
            ),
            (
                "an interface listed twice counts once",
                vec![
                    candidate("IOService:/a", FIDO_USAGE_PAGE, 1, None),
                    candidate("IOService:/a", FIDO_USAGE_PAGE, 1, None),
                ],
                vec!["IOService:/a"],
            ),
        ];
        for (what, devices, want) in rows {
            let got = fido_keys(devices);
            assert_eq!(got.iter().map(|k| k.path.as_str()).collect::<Vec<_>>(), want, "{what}");
        }
        let keys = fido_keys(vec![candidate("/dev/hidraw5", FIDO_USAGE_PAGE, 1, Some("9876543"))]);
        assert_eq!(keys[0].serial.as_deref(), Some("9876543"));
        assert_eq!(keys[0].product.as_deref(), Some("YubiKey OTP+FIDO+CCID"));
    }

    #[test]
    fn reports_get_report_id_zero_in_front_and_must_be_full() {
        let mut report = [0u8; REPORT_LEN];
        report.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8 + 1);
        let out = output_report(&report);
        assert_eq!(out.len(), 65);
        assert_eq!(out[0], 0, "report id");
        assert_eq!(&out[1..], &report);
        assert_eq!(input_report(&report, 64).unwrap(), Some(report));
        assert_eq!(input_report(&report, 0).unwrap(), None, "read timed out");
        assert!(input_report(&report, 10).is_err());
    }
}

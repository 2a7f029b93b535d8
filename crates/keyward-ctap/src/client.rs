//! The CTAP 2.1 client: getInfo, clientPIN (protocol 2, falling back to 1; getPinToken on
//! CTAP 2.0 keys), selection, reset. makeCredential/getAssertion live in [`crate::credential`].
//!
//! Requests are canonical CBOR built from `ciborium` values. PINs arrive as
//! `secrecy::SecretString`, are only exposed to hash or pad them, and the padded buffers are
//! zeroized. NOT_ALLOWED is turned into the specific error of the command that got it (reset
//! outside the power-up window, setPIN with a PIN already set), because the generic status
//! cannot tell the operator what to do.

use std::collections::BTreeMap;

use ciborium::value::Value;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::cbor::{encode, get_int_key, imap, int, tmap};
use crate::error::CtapError;
use crate::hid::HidDevice;
use crate::pin::{PinProtocol, SharedSecret, agree, parse_cose_key};
use crate::status::CtapStatus;
use crate::transport::Transport;

const CMD_GET_INFO: u8 = 0x04;
const CMD_CLIENT_PIN: u8 = 0x06;
const CMD_RESET: u8 = 0x07;
const CMD_SELECTION: u8 = 0x0B;

/// pinUvAuthToken permission: makeCredential.
pub const PERMISSION_MC: u8 = 0x01;
/// pinUvAuthToken permission: getAssertion.
pub const PERMISSION_GA: u8 = 0x02;
/// pinUvAuthToken permission: credentialManagement.
pub const PERMISSION_CM: u8 = 0x04;
/// pinUvAuthToken permission: authenticatorConfig.
pub const PERMISSION_ACFG: u8 = 0x20;

/// What getInfo reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Info {
    /// CTAP versions, e.g. FIDO_2_1.
    pub versions: Vec<String>,
    /// Supported extensions.
    pub extensions: Vec<String>,
    /// The model's AAGUID.
    pub aaguid: [u8; 16],
    /// Options (rk, up, clientPin, ...).
    pub options: BTreeMap<String, bool>,
    /// Supported PIN/UV auth protocols in the key's order of preference.
    pub pin_protocols: Vec<u64>,
    /// Minimum PIN length (4 if not reported).
    pub min_pin_length: u8,
    /// The PIN must be changed before use.
    pub force_pin_change: bool,
    /// Room left for discoverable credentials, if reported.
    pub remaining_discoverable_credentials: Option<u64>,
}

/// A pinUvAuthToken; its bytes are never printed.
pub struct PinToken {
    protocol: PinProtocol,
    value: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for PinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PinToken({:?}, [redacted])", self.protocol)
    }
}

impl PinToken {
    /// The protocol the token was obtained with.
    pub fn protocol(&self) -> PinProtocol {
        self.protocol
    }

    /// pinUvAuthParam of `msg` under this token.
    pub(crate) fn param(&self, msg: &[u8]) -> Vec<u8> {
        self.protocol.authenticate(&self.value, msg)
    }
}

pub use crate::credential::{
    Assertion, Attestation, AuthData, ExtensionOutputs, GetAssertion, HmacSecretInput, HmacSecretOutput,
    MakeCredential,
};

/// A CTAP2 client for one key.
#[derive(Debug)]
pub struct Client<T: Transport> {
    hid: HidDevice<T>,
    forced_protocol: Option<PinProtocol>,
    /// The hmac-secret shared secret of the last getAssertion, for getNextAssertion outputs.
    pub(crate) assertion_secret: Option<SharedSecret>,
    /// Whether the key has getPinUvAuthTokenUsingPinWithPermissions (learnt from getInfo).
    supports_permissions: Option<bool>,
}

impl<T: Transport> Client<T> {
    /// Wraps an opened CTAPHID channel.
    pub fn new(hid: HidDevice<T>) -> Self {
        Self { hid, forced_protocol: None, assertion_secret: None, supports_permissions: None }
    }

    /// Forces one PIN protocol instead of the best the key offers (tests, broken firmware).
    pub fn force_pin_protocol(&mut self, protocol: Option<PinProtocol>) {
        self.forced_protocol = protocol;
    }

    /// The underlying CTAPHID channel (PING, WINK, cancel flag).
    pub fn hid(&mut self) -> &mut HidDevice<T> {
        &mut self.hid
    }

    pub(crate) fn call(&mut self, cmd: u8, params: Option<Value>) -> Result<Vec<u8>, CtapError> {
        let mut req = vec![cmd];
        if let Some(p) = params {
            req.extend(encode(p));
        }
        let resp = self.hid.cbor(&req)?;
        let (&status, body) =
            resp.split_first().ok_or_else(|| CtapError::Malformed("empty answer".into()))?;
        match CtapStatus::from_code(status) {
            CtapStatus::Success => Ok(body.to_vec()),
            s => Err(CtapError::Status(s)),
        }
    }

    pub(crate) fn call_map(
        &mut self,
        cmd: u8,
        params: Option<Value>,
    ) -> Result<Vec<(Value, Value)>, CtapError> {
        let body = self.call(cmd, params)?;
        if body.is_empty() {
            return Ok(Vec::new());
        }
        match ciborium::de::from_reader(body.as_slice()) {
            Ok(Value::Map(m)) => Ok(m),
            _ => Err(CtapError::Malformed("answer is not a CBOR map".into())),
        }
    }

    /// authenticatorGetInfo.
    pub fn get_info(&mut self) -> Result<Info, CtapError> {
        let m = self.call_map(CMD_GET_INFO, None)?;
        let texts = |k| {
            get_int_key(&m, k)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_text().map(str::to_owned)).collect())
                .unwrap_or_default()
        };
        let uint = |k| get_int_key(&m, k).and_then(Value::as_integer).and_then(|i| u64::try_from(i).ok());
        Ok(Info {
            versions: texts(1),
            extensions: texts(2),
            aaguid: get_int_key(&m, 3)
                .and_then(Value::as_bytes)
                .and_then(|b| b.as_slice().try_into().ok())
                .ok_or_else(|| CtapError::Malformed("getInfo without AAGUID".into()))?,
            options: get_int_key(&m, 4)
                .and_then(Value::as_map)
                .map(|o| {
                    o.iter().filter_map(|(k, v)| Some((k.as_text()?.to_owned(), v.as_bool()?))).collect()
                })
                .unwrap_or_default(),
            pin_protocols: get_int_key(&m, 6)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter().filter_map(|v| v.as_integer().and_then(|i| u64::try_from(i).ok())).collect()
                })
                .unwrap_or_default(),
            min_pin_length: uint(13).map_or(4, |n| u8::try_from(n).unwrap_or(u8::MAX)),
            force_pin_change: get_int_key(&m, 12).and_then(Value::as_bool).unwrap_or(false),
            remaining_discoverable_credentials: uint(20),
        })
    }

    /// The PIN protocol to use: 2 if offered, else 1 (or the forced one).
    pub fn pin_protocol(&mut self) -> Result<PinProtocol, CtapError> {
        if let Some(p) = self.forced_protocol {
            return Ok(p);
        }
        let info = self.get_info()?;
        let offered: Vec<PinProtocol> =
            info.pin_protocols.iter().filter_map(|&n| PinProtocol::from_number(n)).collect();
        if offered.is_empty() && info.pin_protocols.is_empty() && info.options.contains_key("clientPin") {
            return Ok(PinProtocol::V1); // CTAP 2.0 keys may omit the list
        }
        [PinProtocol::V2, PinProtocol::V1]
            .into_iter()
            .find(|p| offered.contains(p))
            .ok_or(CtapError::NoPinProtocol)
    }

    fn pin_call(
        &mut self,
        protocol: Option<PinProtocol>,
        sub: u8,
        mut extra: Vec<(i64, Value)>,
    ) -> Result<Vec<(Value, Value)>, CtapError> {
        let mut params = vec![(2, int(sub.into()))];
        if let Some(p) = protocol {
            params.push((1, int(p.number().into())));
        }
        params.append(&mut extra);
        self.call_map(CMD_CLIENT_PIN, Some(imap(params)))
    }

    /// PIN retries left.
    pub fn get_retries(&mut self) -> Result<u8, CtapError> {
        let m = self.pin_call(None, 0x01, vec![])?;
        get_int_key(&m, 3)
            .and_then(Value::as_integer)
            .and_then(|i| u8::try_from(i).ok())
            .ok_or_else(|| CtapError::Malformed("getRetries without pinRetries".into()))
    }

    /// getKeyAgreement plus our half of the ECDH: (platform COSE key, shared secret).
    pub(crate) fn key_agreement(&mut self, p: PinProtocol) -> Result<(Value, SharedSecret), CtapError> {
        let m = self.pin_call(Some(p), 0x02, vec![])?;
        let device = parse_cose_key(
            get_int_key(&m, 1).ok_or_else(|| CtapError::Malformed("no key agreement".into()))?,
        )?;
        Ok(agree(p, &device))
    }

    /// The new PIN, checked against the key's length rules and zero-padded to 64 bytes.
    fn padded(&mut self, pin: &SecretString) -> Result<Zeroizing<Vec<u8>>, CtapError> {
        let info = self.get_info()?;
        let bytes = pin.expose_secret().as_bytes();
        if pin.expose_secret().chars().count() < usize::from(info.min_pin_length) || bytes.len() > 63 {
            return Err(CtapError::PinLength { min: info.min_pin_length });
        }
        let mut out = Zeroizing::new(vec![0u8; 64]);
        out[..bytes.len()].copy_from_slice(bytes);
        Ok(out)
    }

    /// LEFT(SHA-256(PIN), 16), the form in which a PIN is proven.
    fn pin_hash(pin: &SecretString) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(Sha256::digest(pin.expose_secret().as_bytes())[..16].to_vec())
    }

    /// Turns PIN_INVALID into "n tries left" (asking the key with getRetries).
    fn enrich(&mut self, e: CtapError) -> CtapError {
        match e {
            CtapError::Status(CtapStatus::PinInvalid) => match self.get_retries() {
                Ok(retries_left) => CtapError::PinInvalid { retries_left },
                Err(_) => e,
            },
            e => e,
        }
    }

    /// Sets the first PIN.
    pub fn set_pin(&mut self, pin: &SecretString) -> Result<(), CtapError> {
        // A key with a PIN answers PIN_AUTH_INVALID (CTAP 2.1) or NOT_ALLOWED (2.0); ask first so
        // the operator is told to change the PIN rather than that a token was wrong.
        if self.get_info()?.options.get("clientPin") == Some(&true) {
            return Err(CtapError::PinAlreadySet);
        }
        let p = self.pin_protocol()?;
        let padded = self.padded(pin)?;
        let (ka, shared) = self.key_agreement(p)?;
        let enc = shared.encrypt(&padded);
        let param = shared.authenticate(&enc);
        match self.pin_call(Some(p), 0x03, vec![(3, ka), (4, Value::Bytes(param)), (5, Value::Bytes(enc))]) {
            Err(CtapError::Status(CtapStatus::NotAllowed)) => Err(CtapError::PinAlreadySet),
            r => r.map(|_| ()),
        }
    }

    /// Changes the PIN.
    pub fn change_pin(&mut self, current: &SecretString, new: &SecretString) -> Result<(), CtapError> {
        let p = self.pin_protocol()?;
        let padded = self.padded(new)?;
        let (ka, shared) = self.key_agreement(p)?;
        let new_enc = shared.encrypt(&padded);
        let hash_enc = shared.encrypt(&Self::pin_hash(current));
        let param = shared.authenticate(&[new_enc.as_slice(), &hash_enc].concat());
        let r = self.pin_call(
            Some(p),
            0x04,
            vec![(3, ka), (4, Value::Bytes(param)), (5, Value::Bytes(new_enc)), (6, Value::Bytes(hash_enc))],
        );
        r.map(|_| ()).map_err(|e| self.enrich(e))
    }

    /// getPinToken (CTAP 2.0 style: implicit mc+ga permissions).
    pub fn get_pin_token(&mut self, pin: &SecretString) -> Result<PinToken, CtapError> {
        self.token(pin, 0x05, None, None)
    }

    /// getPinUvAuthTokenUsingPinWithPermissions (CTAP 2.1); on a key without the
    /// `pinUvAuthToken` option (CTAP 2.0) it falls back to getPinToken, whose token carries
    /// the makeCredential and getAssertion permissions implicitly.
    pub fn get_pin_uv_auth_token(
        &mut self,
        pin: &SecretString,
        permissions: u8,
        rp_id: Option<&str>,
    ) -> Result<PinToken, CtapError> {
        if self.supports_permissions.is_none() {
            let info = self.get_info()?;
            self.supports_permissions = Some(info.options.get("pinUvAuthToken") == Some(&true));
        }
        if self.supports_permissions == Some(false) {
            return self.get_pin_token(pin);
        }
        self.token(pin, 0x09, Some(permissions), rp_id)
    }

    fn token(
        &mut self,
        pin: &SecretString,
        sub: u8,
        permissions: Option<u8>,
        rp_id: Option<&str>,
    ) -> Result<PinToken, CtapError> {
        let p = self.pin_protocol()?;
        let (ka, shared) = self.key_agreement(p)?;
        let hash_enc = shared.encrypt(&Self::pin_hash(pin));
        let mut extra = vec![(3, ka), (6, Value::Bytes(hash_enc))];
        if let Some(perm) = permissions {
            extra.push((9, int(perm.into())));
        }
        if let Some(rp) = rp_id {
            extra.push((0x0A, Value::Text(rp.into())));
        }
        let m = self.pin_call(Some(p), sub, extra).map_err(|e| self.enrich(e))?;
        let enc = get_int_key(&m, 2)
            .and_then(Value::as_bytes)
            .ok_or_else(|| CtapError::Malformed("no pinUvAuthToken".into()))?;
        let value = shared
            .decrypt(enc)
            .filter(|v| v.len() == 16 || v.len() == 32)
            .ok_or_else(|| CtapError::Malformed("pinUvAuthToken does not decrypt".into()))?;
        Ok(PinToken { protocol: p, value })
    }

    /// authenticatorSelection: blinks the key and waits for a touch, so the operator can show
    /// which of several keys to use (see [`crate::select::select`] for several at once).
    pub fn selection(&mut self) -> Result<(), CtapError> {
        self.call(CMD_SELECTION, None).map(|_| ())
    }

    /// authenticatorReset: erases all credentials and the PIN (needs a touch soon after insertion).
    pub fn reset(&mut self) -> Result<(), CtapError> {
        match self.call(CMD_RESET, None) {
            Err(CtapError::Status(CtapStatus::NotAllowed)) => Err(CtapError::ResetWindow),
            r => r.map(|_| ()),
        }
    }
}

/// A PublicKeyCredentialDescriptor for a credential id.
pub(crate) fn descriptor(id: &[u8]) -> Value {
    tmap(vec![("id", Value::Bytes(id.to_vec())), ("type", Value::Text("public-key".into()))])
}

/// The credential id inside a PublicKeyCredentialDescriptor (under integer `key` of an answer
/// map), the inverse of [`descriptor`].
pub(crate) fn descriptor_id(answer: &[(Value, Value)], key: i64) -> Option<Vec<u8>> {
    let d = get_int_key(answer, key)?.as_map()?;
    d.iter().find(|(k, _)| k.as_text() == Some("id"))?.1.as_bytes().cloned()
}

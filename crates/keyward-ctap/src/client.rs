//! The CTAP 2.1 client: getInfo, clientPIN (protocol 2, falling back to 1), makeCredential,
//! getAssertion, reset.
//!
//! Requests are canonical CBOR built from `ciborium` values. PINs arrive as
//! `secrecy::SecretString`, are only exposed to hash or pad them, and the padded buffers are
//! zeroized. The makeCredential answer keeps the raw bytes of fmt/authData/attStmt so the
//! WebAuthn attestationObject is rebuilt without re-encoding anything the key signed or sent.

use std::collections::BTreeMap;

use ciborium::value::Value;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::cbor::{encode, get_int_key, get_text_key, imap, int, raw_int_map, tmap};
use crate::error::CtapError;
use crate::hid::HidDevice;
use crate::pin::{PinProtocol, encapsulate, parse_cose_key};
use crate::status::CtapStatus;
use crate::transport::Transport;

const CMD_MAKE_CREDENTIAL: u8 = 0x01;
const CMD_GET_ASSERTION: u8 = 0x02;
const CMD_GET_INFO: u8 = 0x04;
const CMD_CLIENT_PIN: u8 = 0x06;
const CMD_RESET: u8 = 0x07;

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

    pub(crate) fn param(&self, msg: &[u8]) -> Vec<u8> {
        self.protocol.authenticate(&self.value, msg)
    }
}

/// Parameters of makeCredential.
#[derive(Debug, Clone, Default)]
pub struct MakeCredential {
    /// SHA-256 of the clientDataJSON, computed by the caller.
    pub client_data_hash: [u8; 32],
    /// Relying party id (e.g. login.microsoft.com).
    pub rp_id: String,
    /// Relying party name.
    pub rp_name: Option<String>,
    /// User handle.
    pub user_id: Vec<u8>,
    /// User name (UPN).
    pub user_name: Option<String>,
    /// User display name.
    pub user_display_name: Option<String>,
    /// Credential ids that must not already be on the key.
    pub exclude_list: Vec<Vec<u8>>,
    /// Create a discoverable (resident) credential.
    pub resident_key: bool,
    /// Ask for the hmac-secret extension.
    pub hmac_secret: bool,
    /// credProtect level (1–3).
    pub cred_protect: Option<u8>,
}

/// The makeCredential answer, with raw bytes kept.
#[derive(Debug, Clone)]
pub struct Attestation {
    /// Attestation format ("packed", "none", ...).
    pub fmt: String,
    /// Authenticator data.
    pub auth_data: Vec<u8>,
    raw_fmt: Vec<u8>,
    raw_att_stmt: Vec<u8>,
    raw_auth_data: Vec<u8>,
}

impl Attestation {
    /// The WebAuthn attestationObject: the same three values under text keys, canonical order.
    pub fn attestation_object(&self) -> Vec<u8> {
        let mut out = vec![0xA3, 0x63];
        out.extend_from_slice(b"fmt");
        out.extend_from_slice(&self.raw_fmt);
        out.push(0x67);
        out.extend_from_slice(b"attStmt");
        out.extend_from_slice(&self.raw_att_stmt);
        out.push(0x68);
        out.extend_from_slice(b"authData");
        out.extend_from_slice(&self.raw_auth_data);
        out
    }

    /// The raw attStmt CBOR exactly as the key sent it.
    pub fn att_stmt_raw(&self) -> &[u8] {
        &self.raw_att_stmt
    }

    /// Parsed authenticator data.
    pub fn parsed(&self) -> Result<AuthData, CtapError> {
        AuthData::parse(&self.auth_data)
    }
}

/// Parsed authenticator data.
#[derive(Debug, Clone)]
pub struct AuthData {
    /// SHA-256 of the RP id.
    pub rp_id_hash: [u8; 32],
    /// Flags (UP 0x01, UV 0x04, BE 0x08, BS 0x10, AT 0x40, ED 0x80).
    pub flags: u8,
    /// Signature counter.
    pub sign_count: u32,
    /// AAGUID, when attested credential data is present.
    pub aaguid: Option<[u8; 16]>,
    /// Credential id, when present.
    pub credential_id: Option<Vec<u8>>,
    /// Credential public key (COSE), when present.
    pub public_key: Option<Value>,
    /// Extension outputs, when present.
    pub extensions: Option<Value>,
}

impl AuthData {
    /// Parses authenticator data.
    pub fn parse(b: &[u8]) -> Result<Self, CtapError> {
        let bad = |w: &str| CtapError::Malformed(format!("authenticator data: {w}"));
        if b.len() < 37 {
            return Err(bad("too short"));
        }
        let mut out = AuthData {
            rp_id_hash: b[..32].try_into().expect("32 bytes"),
            flags: b[32],
            sign_count: u32::from_be_bytes(b[33..37].try_into().expect("4 bytes")),
            aaguid: None,
            credential_id: None,
            public_key: None,
            extensions: None,
        };
        let mut rest = &b[37..];
        if out.flags & 0x40 != 0 {
            if rest.len() < 18 {
                return Err(bad("attested credential data too short"));
            }
            out.aaguid = Some(rest[..16].try_into().expect("16 bytes"));
            let n = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
            out.credential_id = Some(rest.get(18..18 + n).ok_or_else(|| bad("credential id"))?.to_vec());
            rest = &rest[18 + n..];
            out.public_key = Some(ciborium::de::from_reader(&mut rest).map_err(|_| bad("public key"))?);
        }
        if out.flags & 0x80 != 0 {
            out.extensions = Some(ciborium::de::from_reader(&mut rest).map_err(|_| bad("extensions"))?);
        }
        if !rest.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(out)
    }
}

/// One getAssertion answer.
#[derive(Debug, Clone)]
pub struct Assertion {
    /// The credential used.
    pub credential_id: Vec<u8>,
    /// Authenticator data (signed).
    pub auth_data: Vec<u8>,
    /// DER ECDSA signature over authData ‖ clientDataHash.
    pub signature: Vec<u8>,
    /// User handle, for discoverable credentials.
    pub user_id: Option<Vec<u8>>,
    /// Number of matching credentials, when the key reports it.
    pub number_of_credentials: Option<u64>,
}

/// A CTAP2 client for one key.
#[derive(Debug)]
pub struct Client<T: Transport> {
    hid: HidDevice<T>,
    forced_protocol: Option<PinProtocol>,
}

impl<T: Transport> Client<T> {
    /// Wraps an opened CTAPHID channel.
    pub fn new(hid: HidDevice<T>) -> Self {
        Self { hid, forced_protocol: None }
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

    fn key_agreement(&mut self, p: PinProtocol) -> Result<(Value, Zeroizing<Vec<u8>>), CtapError> {
        let m = self.pin_call(Some(p), 0x02, vec![])?;
        let device = parse_cose_key(
            get_int_key(&m, 1).ok_or_else(|| CtapError::Malformed("no key agreement".into()))?,
        )?;
        Ok(encapsulate(p, &device))
    }

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

    fn pin_hash(pin: &SecretString) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(Sha256::digest(pin.expose_secret().as_bytes())[..16].to_vec())
    }

    /// Turns PIN_INVALID into "n tries left".
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
        let p = self.pin_protocol()?;
        let padded = self.padded(pin)?;
        let (ka, shared) = self.key_agreement(p)?;
        let enc = p.encrypt(&shared, &padded);
        let param = p.authenticate(p.hmac_key(&shared), &enc);
        self.pin_call(Some(p), 0x03, vec![(3, ka), (4, Value::Bytes(param)), (5, Value::Bytes(enc))])?;
        Ok(())
    }

    /// Changes the PIN.
    pub fn change_pin(&mut self, current: &SecretString, new: &SecretString) -> Result<(), CtapError> {
        let p = self.pin_protocol()?;
        let padded = self.padded(new)?;
        let (ka, shared) = self.key_agreement(p)?;
        let new_enc = p.encrypt(&shared, &padded);
        let hash_enc = p.encrypt(&shared, &Self::pin_hash(current));
        let param = p.authenticate(p.hmac_key(&shared), &[new_enc.as_slice(), &hash_enc].concat());
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

    /// getPinUvAuthTokenUsingPinWithPermissions (CTAP 2.1).
    pub fn get_pin_uv_auth_token(
        &mut self,
        pin: &SecretString,
        permissions: u8,
        rp_id: Option<&str>,
    ) -> Result<PinToken, CtapError> {
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
        let hash_enc = p.encrypt(&shared, &Self::pin_hash(pin));
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
        let value = p
            .decrypt(&shared, enc)
            .filter(|v| v.len() == 16 || v.len() == 32)
            .ok_or_else(|| CtapError::Malformed("pinUvAuthToken does not decrypt".into()))?;
        Ok(PinToken { protocol: p, value })
    }

    /// authenticatorMakeCredential (ES256).
    pub fn make_credential(
        &mut self,
        req: &MakeCredential,
        token: Option<&PinToken>,
    ) -> Result<Attestation, CtapError> {
        let opt = |s: &Option<String>| s.clone().map(Value::Text);
        let mut rp = vec![("id", Value::Text(req.rp_id.clone()))];
        if let Some(n) = opt(&req.rp_name) {
            rp.push(("name", n));
        }
        let mut user = vec![("id", Value::Bytes(req.user_id.clone()))];
        if let Some(n) = opt(&req.user_name) {
            user.push(("name", n));
        }
        if let Some(n) = opt(&req.user_display_name) {
            user.push(("displayName", n));
        }
        let mut params = vec![
            (1, Value::Bytes(req.client_data_hash.to_vec())),
            (2, tmap(rp)),
            (3, tmap(user)),
            (4, Value::Array(vec![tmap(vec![("alg", int(-7)), ("type", Value::Text("public-key".into()))])])),
        ];
        if !req.exclude_list.is_empty() {
            params.push((5, Value::Array(req.exclude_list.iter().map(|id| descriptor(id)).collect())));
        }
        let mut ext = Vec::new();
        if let Some(level) = req.cred_protect {
            ext.push(("credProtect", int(level.into())));
        }
        if req.hmac_secret {
            ext.push(("hmac-secret", Value::Bool(true)));
        }
        if !ext.is_empty() {
            params.push((6, tmap(ext)));
        }
        if req.resident_key {
            params.push((7, tmap(vec![("rk", Value::Bool(true))])));
        }
        if let Some(t) = token {
            params.push((8, Value::Bytes(t.param(&req.client_data_hash))));
            params.push((9, int(t.protocol.number().into())));
        }
        let body = self.call(CMD_MAKE_CREDENTIAL, Some(imap(params)))?;
        let raw = raw_int_map(&body).ok_or_else(|| CtapError::Malformed("makeCredential answer".into()))?;
        let find = |k| raw.iter().find(|(key, _)| *key == k).map(|(_, v)| v.to_vec());
        let (raw_fmt, raw_auth_data, raw_att_stmt) = match (find(1), find(2), find(3)) {
            (Some(f), Some(a), Some(s)) => (f, a, s),
            _ => return Err(CtapError::Malformed("makeCredential answer lacks fmt/authData/attStmt".into())),
        };
        let fmt =
            ciborium::de::from_reader::<Value, _>(raw_fmt.as_slice()).ok().and_then(|v| v.into_text().ok());
        let auth_data = ciborium::de::from_reader::<Value, _>(raw_auth_data.as_slice())
            .ok()
            .and_then(|v| v.into_bytes().ok());
        match (fmt, auth_data) {
            (Some(fmt), Some(auth_data)) => {
                Ok(Attestation { fmt, auth_data, raw_fmt, raw_att_stmt, raw_auth_data })
            }
            _ => Err(CtapError::Malformed("makeCredential fmt/authData types".into())),
        }
    }

    /// authenticatorGetAssertion (first assertion only).
    pub fn get_assertion(
        &mut self,
        rp_id: &str,
        client_data_hash: &[u8; 32],
        allow_list: &[Vec<u8>],
        token: Option<&PinToken>,
    ) -> Result<Assertion, CtapError> {
        let mut params = vec![(1, Value::Text(rp_id.into())), (2, Value::Bytes(client_data_hash.to_vec()))];
        if !allow_list.is_empty() {
            params.push((3, Value::Array(allow_list.iter().map(|id| descriptor(id)).collect())));
        }
        if let Some(t) = token {
            params.push((6, Value::Bytes(t.param(client_data_hash))));
            params.push((7, int(t.protocol.number().into())));
        }
        let m = self.call_map(CMD_GET_ASSERTION, Some(imap(params)))?;
        let bad = || CtapError::Malformed("getAssertion answer".into());
        let bytes = |k| get_int_key(&m, k).and_then(Value::as_bytes).cloned();
        Ok(Assertion {
            credential_id: get_int_key(&m, 1)
                .and_then(Value::as_map)
                .and_then(|d| get_text_key(d, "id"))
                .and_then(Value::as_bytes)
                .cloned()
                .ok_or_else(bad)?,
            auth_data: bytes(2).ok_or_else(bad)?,
            signature: bytes(3).ok_or_else(bad)?,
            user_id: get_int_key(&m, 4)
                .and_then(Value::as_map)
                .and_then(|u| get_text_key(u, "id"))
                .and_then(Value::as_bytes)
                .cloned(),
            number_of_credentials: get_int_key(&m, 5)
                .and_then(Value::as_integer)
                .and_then(|i| u64::try_from(i).ok()),
        })
    }

    /// authenticatorReset: erases all credentials and the PIN (needs a touch soon after insertion).
    pub fn reset(&mut self) -> Result<(), CtapError> {
        self.call(CMD_RESET, None).map(|_| ())
    }
}

pub(crate) fn descriptor(id: &[u8]) -> Value {
    tmap(vec![("id", Value::Bytes(id.to_vec())), ("type", Value::Text("public-key".into()))])
}

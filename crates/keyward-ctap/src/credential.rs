//! makeCredential (0x01), getAssertion (0x02) and getNextAssertion (0x08) with the
//! extensions Entra and Keyward use: credProtect, hmac-secret, minPinLength, and enterprise
//! attestation.
//!
//! The makeCredential answer keeps the raw bytes of fmt/authData/attStmt so the WebAuthn
//! attestationObject is rebuilt without re-encoding anything the key signed or sent.
//! hmac-secret salts and outputs are secrets: they are encrypted on the wire with a shared
//! secret from a fresh key agreement (either PIN protocol), zeroized after use, and never
//! printed by `Debug`.

use ciborium::value::Value;
use zeroize::Zeroizing;

use crate::cbor::{get_int_key, get_text_key, imap, int, raw_int_map, tmap};
use crate::client::{Client, PinToken, descriptor, descriptor_id};
use crate::error::CtapError;
use crate::pin::{PinProtocol, SharedSecret};
use crate::transport::Transport;

const CMD_MAKE_CREDENTIAL: u8 = 0x01;
const CMD_GET_ASSERTION: u8 = 0x02;
const CMD_GET_NEXT_ASSERTION: u8 = 0x08;

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
    /// Ask for the minPinLength extension (the key answers only for RP ids it was told).
    pub min_pin_length: bool,
    /// Ask for enterprise attestation: 1 vendor-facilitated, 2 platform-managed.
    pub enterprise_attestation: Option<u8>,
}

/// The makeCredential answer, with raw bytes kept.
#[derive(Debug, Clone)]
pub struct Attestation {
    /// Attestation format ("packed", "none", ...).
    pub fmt: String,
    /// Authenticator data.
    pub auth_data: Vec<u8>,
    /// True when the key returned an enterprise attestation (epAtt).
    pub ep_att: bool,
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

/// Extension outputs of makeCredential, read from the authenticator data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtensionOutputs {
    /// credProtect level the key applied.
    pub cred_protect: Option<u8>,
    /// Whether hmac-secret was enabled for the credential.
    pub hmac_secret: Option<bool>,
    /// The key's minimum PIN length (only for RP ids allowed by setMinPINLength).
    pub min_pin_length: Option<u8>,
}

impl AuthData {
    /// The makeCredential extension outputs (all `None` without the ED flag).
    pub fn extension_outputs(&self) -> ExtensionOutputs {
        let Some(Value::Map(m)) = &self.extensions else {
            return ExtensionOutputs::default();
        };
        let small = |k| get_text_key(m, k).and_then(Value::as_integer).and_then(|i| u8::try_from(i).ok());
        ExtensionOutputs {
            cred_protect: small("credProtect"),
            hmac_secret: get_text_key(m, "hmac-secret").and_then(Value::as_bool),
            min_pin_length: small("minPinLength"),
        }
    }

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
    /// hmac-secret outputs, decrypted, when they were asked for.
    pub hmac_secret: Option<HmacSecretOutput>,
}

/// The salts for the hmac-secret extension at getAssertion; secrets, so never printed.
#[derive(Clone)]
pub struct HmacSecretInput {
    /// First salt.
    pub salt1: Zeroizing<[u8; 32]>,
    /// Optional second salt (for key rotation).
    pub salt2: Option<Zeroizing<[u8; 32]>>,
}

impl std::fmt::Debug for HmacSecretInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacSecretInput([redacted])")
    }
}

/// The decrypted hmac-secret outputs: HMAC-SHA-256(CredRandom, salt) per salt.
#[derive(Clone, PartialEq, Eq)]
pub struct HmacSecretOutput {
    /// Output for salt1.
    pub output1: Zeroizing<[u8; 32]>,
    /// Output for salt2, if a second salt was sent.
    pub output2: Option<Zeroizing<[u8; 32]>>,
}

impl std::fmt::Debug for HmacSecretOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacSecretOutput([redacted])")
    }
}

/// Parameters of getAssertion.
#[derive(Debug, Clone, Default)]
pub struct GetAssertion {
    /// Relying party id.
    pub rp_id: String,
    /// SHA-256 of the clientDataJSON.
    pub client_data_hash: [u8; 32],
    /// Credential ids to try; empty means discoverable credentials.
    pub allow_list: Vec<Vec<u8>>,
    /// Ask for hmac-secret outputs with these salts.
    pub hmac_secret: Option<HmacSecretInput>,
}

impl<T: Transport> Client<T> {
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
        if req.min_pin_length {
            ext.push(("minPinLength", Value::Bool(true)));
        }
        if !ext.is_empty() {
            params.push((6, tmap(ext)));
        }
        if req.resident_key {
            params.push((7, tmap(vec![("rk", Value::Bool(true))])));
        }
        if let Some(t) = token {
            params.push((8, Value::Bytes(t.param(&req.client_data_hash))));
            params.push((9, int(t.protocol().number().into())));
        }
        if let Some(ep) = req.enterprise_attestation {
            params.push((0x0A, int(ep.into())));
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
        let ep_att = find(4).is_some_and(|b| b == [0xF5]); // CBOR true
        match (fmt, auth_data) {
            (Some(fmt), Some(auth_data)) => {
                Ok(Attestation { fmt, auth_data, ep_att, raw_fmt, raw_att_stmt, raw_auth_data })
            }
            _ => Err(CtapError::Malformed("makeCredential fmt/authData types".into())),
        }
    }

    /// authenticatorGetAssertion (first assertion only; see [`Client::get_next_assertion`]).
    pub fn get_assertion(
        &mut self,
        rp_id: &str,
        client_data_hash: &[u8; 32],
        allow_list: &[Vec<u8>],
        token: Option<&PinToken>,
    ) -> Result<Assertion, CtapError> {
        let req = GetAssertion {
            rp_id: rp_id.into(),
            client_data_hash: *client_data_hash,
            allow_list: allow_list.to_vec(),
            hmac_secret: None,
        };
        self.get_assertion_with(&req, token)
    }

    /// authenticatorGetAssertion with every parameter, including hmac-secret salts: the salts
    /// are encrypted with a fresh shared secret, and the outputs decrypted with it (kept for
    /// [`Client::get_next_assertion`]).
    pub fn get_assertion_with(
        &mut self,
        req: &GetAssertion,
        token: Option<&PinToken>,
    ) -> Result<Assertion, CtapError> {
        let cdh = &req.client_data_hash;
        let mut params = vec![(1, Value::Text(req.rp_id.clone())), (2, Value::Bytes(cdh.to_vec()))];
        if !req.allow_list.is_empty() {
            params.push((3, Value::Array(req.allow_list.iter().map(|id| descriptor(id)).collect())));
        }
        self.assertion_secret = None;
        if let Some(salts) = &req.hmac_secret {
            let p = self.pin_protocol()?;
            let (ka, shared) = self.key_agreement(p)?;
            let mut plain = Zeroizing::new(salts.salt1.to_vec());
            if let Some(s2) = &salts.salt2 {
                plain.extend_from_slice(s2.as_ref());
            }
            let salt_enc = shared.encrypt(&plain);
            let salt_auth = shared.authenticate(&salt_enc);
            let mut input = vec![(1, ka), (2, Value::Bytes(salt_enc)), (3, Value::Bytes(salt_auth))];
            if p == PinProtocol::V2 {
                input.push((4, int(2))); // absent means protocol 1 (CTAP 2.0 keys reject unknown keys)
            }
            params.push((4, tmap(vec![("hmac-secret", imap(input))])));
            self.assertion_secret = Some(shared);
        }
        if let Some(t) = token {
            params.push((6, Value::Bytes(t.param(cdh))));
            params.push((7, int(t.protocol().number().into())));
        }
        let m = self.call_map(CMD_GET_ASSERTION, Some(imap(params)))?;
        self.parse_assertion(&m)
    }

    /// authenticatorGetNextAssertion: the next of `number_of_credentials` matches.
    pub fn get_next_assertion(&mut self) -> Result<Assertion, CtapError> {
        let m = self.call_map(CMD_GET_NEXT_ASSERTION, None)?;
        self.parse_assertion(&m)
    }

    /// getAssertion followed by getNextAssertion for every other matching credential.
    pub fn get_all_assertions(
        &mut self,
        req: &GetAssertion,
        token: Option<&PinToken>,
    ) -> Result<Vec<Assertion>, CtapError> {
        let first = self.get_assertion_with(req, token)?;
        let n = first.number_of_credentials.unwrap_or(1);
        let mut out = vec![first];
        for _ in 1..n {
            out.push(self.get_next_assertion()?);
        }
        Ok(out)
    }

    fn parse_assertion(&mut self, m: &[(Value, Value)]) -> Result<Assertion, CtapError> {
        let bad = || CtapError::Malformed("getAssertion answer".into());
        let bytes = |k| get_int_key(m, k).and_then(Value::as_bytes).cloned();
        let auth_data = bytes(2).ok_or_else(bad)?;
        let hmac_secret = match &self.assertion_secret {
            Some(shared) => hmac_outputs(shared, &AuthData::parse(&auth_data)?)?,
            None => None,
        };
        Ok(Assertion {
            credential_id: descriptor_id(m, 1).ok_or_else(bad)?,
            auth_data,
            signature: bytes(3).ok_or_else(bad)?,
            user_id: get_int_key(m, 4)
                .and_then(Value::as_map)
                .and_then(|u| get_text_key(u, "id"))
                .and_then(Value::as_bytes)
                .cloned(),
            number_of_credentials: get_int_key(m, 5)
                .and_then(Value::as_integer)
                .and_then(|i| u64::try_from(i).ok()),
            hmac_secret,
        })
    }
}

/// Decrypts the hmac-secret extension output of an assertion's authenticator data.
fn hmac_outputs(shared: &SharedSecret, auth: &AuthData) -> Result<Option<HmacSecretOutput>, CtapError> {
    let Some(Value::Map(m)) = &auth.extensions else {
        return Ok(None);
    };
    let Some(enc) = get_text_key(m, "hmac-secret").and_then(Value::as_bytes) else {
        return Ok(None);
    };
    let bad = || CtapError::Malformed("hmac-secret output does not decrypt".into());
    let plain = shared.decrypt(enc).ok_or_else(bad)?;
    let block = |r: std::ops::Range<usize>| {
        plain.get(r).map(|b| Zeroizing::new(<[u8; 32]>::try_from(b).expect("32-byte range")))
    };
    match plain.len() {
        32 | 64 => {
            Ok(Some(HmacSecretOutput { output1: block(0..32).ok_or_else(bad)?, output2: block(32..64) }))
        }
        _ => Err(bad()),
    }
}

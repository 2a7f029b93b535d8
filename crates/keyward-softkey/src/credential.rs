//! makeCredential (0x01), getAssertion (0x02) and getNextAssertion (0x08): ES256 credentials,
//! credProtect, hmac-secret (salts in, encrypted outputs back, both PIN protocols),
//! minPinLength, enterprise attestation, packed/none attestation.
//!
//! Authenticator data is rpIdHash ‖ flags ‖ signCount ‖ [aaguid ‖ len ‖ credId ‖ COSE key] ‖
//! [extensions]. BE/BS are always 0: a soft key bound to one machine is not a synced passkey,
//! and Entra's attestation policy cares. Every credential (discoverable or not) is kept in the
//! table, so credential ids are random handles rather than wrapped keys.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use ciborium::value::Value;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::authenticator::{Attestation, Authenticator, Credential, Presence};
use crate::cbor::{Args, as_i64, encode, imap, int, text_key, tmap};
use crate::client_pin::permission;
use crate::pin_protocol::{PinProtocol, cose_key, parse_cose_key, shared_secret};
use crate::status::{CtapResult, Status};

/// Longest exclude/allow list accepted.
pub const MAX_CREDENTIALS_IN_LIST: usize = 16;

const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;
const FLAG_AT: u8 = 0x40;
const FLAG_ED: u8 = 0x80;

/// How long getNextAssertion may follow getAssertion (CTAP 2.1 §6.3).
const NEXT_ASSERTION_WINDOW: Duration = Duration::from_secs(30);

/// A validated hmac-secret request: the protocol, the shared secret and the decrypted salts.
pub(crate) struct HmacRequest {
    protocol: PinProtocol,
    shared: Zeroizing<Vec<u8>>,
    salts: Zeroizing<Vec<u8>>,
}

/// What getNextAssertion continues: the request and the credentials not yet returned.
pub(crate) struct NextAssertions {
    rp_id: String,
    cdh: Vec<u8>,
    up: bool,
    uv: bool,
    hmac: Option<HmacRequest>,
    left: VecDeque<Vec<u8>>,
    started: Instant,
}

impl std::fmt::Debug for NextAssertions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NextAssertions({} left, [secrets redacted])", self.left.len())
    }
}

/// Reads `options` (key `key`) as (rk, up, uv) with defaults.
fn options(args: &Args, key: i64) -> CtapResult<(Option<bool>, Option<bool>, Option<bool>)> {
    let Some(map) = args.map(key)? else {
        return Ok((None, None, None));
    };
    let get = |name| text_key(map, name).map(|v| v.as_bool().ok_or(Status::CborUnexpectedType)).transpose();
    Ok((get("rk")?, get("up")?, get("uv")?))
}

/// Extracts credential ids from an exclude/allow list.
fn credential_ids(list: &[Value]) -> CtapResult<Vec<&[u8]>> {
    if list.len() > MAX_CREDENTIALS_IN_LIST {
        return Err(Status::LimitExceeded);
    }
    list.iter()
        .map(|d| {
            let m = d.as_map().ok_or(Status::CborUnexpectedType)?;
            let id = text_key(m, "id").and_then(Value::as_bytes).ok_or(Status::MissingParameter)?;
            Ok(id.as_slice())
        })
        .collect()
}

/// The parts of a makeCredential request checked before anything else (§6.1.2 steps 1–4).
struct MakeCredentialRequest<'a> {
    /// clientDataHash.
    cdh: &'a [u8],
    rp_id: String,
    /// The user entity (id, name, displayName).
    user: &'a [(Value, Value)],
    user_id: Vec<u8>,
    /// Whether a discoverable credential is asked for.
    rk: bool,
}

impl<'a> MakeCredentialRequest<'a> {
    /// Reads the required members, insists on ES256 and refuses `up: false` and `uv: true`.
    fn read(args: &'a Args) -> CtapResult<Self> {
        let cdh = args.bytes(1)?.ok_or(Status::MissingParameter)?;
        let rp = args.map(2)?.ok_or(Status::MissingParameter)?;
        let user = args.map(3)?.ok_or(Status::MissingParameter)?;
        let params = args.array(4)?.ok_or(Status::MissingParameter)?;
        let rp_id = text_key(rp, "id").and_then(Value::as_text).ok_or(Status::MissingParameter)?.to_owned();
        let user_id = text_key(user, "id").and_then(Value::as_bytes).ok_or(Status::MissingParameter)?.clone();
        if user_id.len() > 64 {
            return Err(Status::InvalidLength);
        }
        let es256 = params.iter().any(|p| {
            p.as_map().is_some_and(|m| {
                text_key(m, "alg").and_then(|a| as_i64(a).ok()) == Some(-7)
                    && text_key(m, "type").and_then(Value::as_text) == Some("public-key")
            })
        });
        if !es256 {
            return Err(Status::UnsupportedAlgorithm);
        }
        let (rk, up, uv_opt) = options(args, 7)?;
        if up == Some(false) {
            return Err(Status::InvalidOption);
        }
        if uv_opt == Some(true) {
            return Err(Status::InvalidOption); // no built-in UV: platforms must use the PIN
        }
        Ok(Self { cdh, rp_id, user, user_id, rk: rk.unwrap_or(false) })
    }

    /// Whether `c` is the discoverable credential a new one for this RP and user replaces.
    fn replaces(&self, c: &Credential) -> bool {
        c.discoverable && c.rp_id == self.rp_id && c.user_id == self.user_id
    }
}

/// The extensions a makeCredential request asks for.
struct RequestedExtensions {
    /// The credProtect level (1 when not asked).
    cred_protect: u8,
    /// Whether credProtect was asked (and so is echoed in the output).
    cred_protect_asked: bool,
    hmac_secret: bool,
    min_pin_length: bool,
}

impl RequestedExtensions {
    fn read(args: &Args) -> CtapResult<Self> {
        let ext = args.map(6)?.unwrap_or(&[]);
        let cred_protect = match text_key(ext, "credProtect") {
            Some(v) => {
                u8::try_from(as_i64(v)?).ok().filter(|l| (1..=3).contains(l)).ok_or(Status::InvalidOption)?
            }
            None => 1,
        };
        let hmac_secret = match text_key(ext, "hmac-secret") {
            Some(v) => v.as_bool().ok_or(Status::CborUnexpectedType)?,
            None => false,
        };
        Ok(Self {
            cred_protect,
            cred_protect_asked: text_key(ext, "credProtect").is_some(),
            hmac_secret,
            min_pin_length: text_key(ext, "minPinLength").and_then(Value::as_bool) == Some(true),
        })
    }
}

impl Authenticator {
    /// Checks pinUvAuthParam if present; returns whether UV was performed.
    fn pin_uv(
        &mut self,
        args: &Args,
        keys: (i64, i64),
        msg: &[u8],
        perm: u8,
        rp_id: &str,
    ) -> CtapResult<bool> {
        let Some(param) = args.bytes(keys.0)? else {
            return Ok(false);
        };
        let protocol = PinProtocol::from_number(args.uint(keys.1)?.ok_or(Status::MissingParameter)?)?;
        if self.pin_hash.is_none() {
            return Err(Status::PinNotSet);
        }
        self.verify_token(protocol, msg, param, perm, rp_id)?;
        Ok(true)
    }

    /// makeCredential (0x01): checks the request in the order CTAP 2.1 §6.1.2 gives, waits for
    /// the user's touch, then makes, stores and attests the new credential.
    pub(crate) fn make_credential(&mut self, args: &Args, presence: &mut dyn Presence) -> CtapResult<Value> {
        let req = MakeCredentialRequest::read(args)?;
        let uv = self.pin_uv(args, (8, 9), req.cdh, permission::MC, &req.rp_id)?;
        if !uv && self.pin_hash.is_some() && (req.rk || self.config.always_uv) {
            return Err(Status::PuatRequired);
        }
        self.refuse_excluded(args, &req.rp_id, uv, presence)?;
        let ext = RequestedExtensions::read(args)?;
        let enterprise_attestation = self.enterprise_attestation(args, &req.rp_id)?;
        self.check_room(&req)?;
        presence.confirm()?;
        self.credentials.retain(|c| !(req.rk && req.replaces(c)));

        let mut id = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut id);
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let cred_random = ext.hmac_secret.then(|| {
            let mut r = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut r);
            r
        });
        let ext_out = self.extension_outputs(&ext, &req.rp_id);
        let auth_data = self.attested_auth_data(&req.rp_id, uv, &id, &key, ext_out);
        let (fmt, att_stmt) = self.attestation_statement(&key, &auth_data, req.cdh);
        self.credentials.push(Credential {
            id,
            user_name: text_key(req.user, "name").and_then(Value::as_text).map(str::to_owned),
            user_display_name: text_key(req.user, "displayName").and_then(Value::as_text).map(str::to_owned),
            rp_id: req.rp_id,
            user_id: req.user_id,
            key,
            discoverable: req.rk,
            cred_protect: ext.cred_protect,
            cred_random,
            sign_count: 0,
        });
        let mut out = vec![(1, Value::Text(fmt.into())), (2, Value::Bytes(auth_data)), (3, att_stmt)];
        if enterprise_attestation {
            out.push((4, Value::Bool(true)));
        }
        Ok(imap(out))
    }

    /// With an exclude list naming a credential this key holds for the RP (and may reveal),
    /// the user touches the key and the request fails with CredentialExcluded.
    fn refuse_excluded(
        &self,
        args: &Args,
        rp_id: &str,
        uv: bool,
        presence: &mut dyn Presence,
    ) -> CtapResult<()> {
        let Some(list) = args.array(5)? else { return Ok(()) };
        let ids = credential_ids(list)?;
        let hit = self
            .credentials
            .iter()
            .any(|c| c.rp_id == rp_id && ids.contains(&c.id.as_slice()) && (c.cred_protect < 3 || uv));
        if hit {
            presence.confirm()?;
            return Err(Status::CredentialExcluded);
        }
        Ok(())
    }

    /// Whether to return an enterprise attestation (§6.1.2 step 9): only once enabled by
    /// authenticatorConfig; 1 = vendor-facilitated (RP ids configured on the key), 2 =
    /// platform-managed (any RP).
    fn enterprise_attestation(&self, args: &Args, rp_id: &str) -> CtapResult<bool> {
        match args.uint(0x0A)? {
            None => Ok(false),
            Some(_) if !self.enterprise_attestation => Err(Status::InvalidParameter),
            Some(1) => Ok(self.enterprise_rp_ids.iter().any(|id| id == rp_id)),
            Some(2) => Ok(true),
            Some(_) => Err(Status::InvalidOption),
        }
    }

    /// A new discoverable credential needs a free slot unless it replaces the user's old one.
    fn check_room(&self, req: &MakeCredentialRequest<'_>) -> CtapResult<()> {
        if req.rk
            && !self.credentials.iter().any(|c| req.replaces(c))
            && self.resident_count() >= self.config.max_resident_keys
        {
            return Err(Status::KeyStoreFull);
        }
        Ok(())
    }

    /// The extension outputs for the authenticator data: what was asked and is supported.
    fn extension_outputs(&self, ext: &RequestedExtensions, rp_id: &str) -> Vec<(&'static str, Value)> {
        let mut ext_out = Vec::new();
        if ext.cred_protect_asked {
            ext_out.push(("credProtect", int(ext.cred_protect.into())));
        }
        if ext.hmac_secret {
            ext_out.push(("hmac-secret", Value::Bool(true)));
        }
        if ext.min_pin_length && self.min_pin_length_rp_ids.iter().any(|id| id == rp_id) {
            ext_out.push(("minPinLength", int(self.config.min_pin_length.into())));
        }
        ext_out
    }

    /// rpIdHash ‖ flags ‖ signCount 0 ‖ aaguid ‖ len ‖ credId ‖ COSE key ‖ [extensions].
    fn attested_auth_data(
        &self,
        rp_id: &str,
        uv: bool,
        id: &[u8],
        key: &SigningKey,
        ext_out: Vec<(&'static str, Value)>,
    ) -> Vec<u8> {
        let mut flags = FLAG_UP | FLAG_AT;
        if uv {
            flags |= FLAG_UV;
        }
        if !ext_out.is_empty() {
            flags |= FLAG_ED;
        }
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(flags);
        auth_data.extend_from_slice(&0u32.to_be_bytes());
        auth_data.extend_from_slice(&self.config.aaguid);
        auth_data.extend_from_slice(&(id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(id);
        auth_data.extend(encode(cose_key(&(*key.verifying_key()).into(), -7)));
        if !ext_out.is_empty() {
            auth_data.extend(encode(tmap(ext_out)));
        }
        auth_data
    }

    /// The attestation format and statement over authData ‖ clientDataHash, as configured:
    /// none, packed self attestation, or packed with the attestation key and its chain.
    fn attestation_statement(&self, key: &SigningKey, auth_data: &[u8], cdh: &[u8]) -> (&'static str, Value) {
        let signed = [auth_data, cdh].concat();
        match &self.config.attestation {
            Attestation::None => ("none", Value::Map(vec![])),
            Attestation::SelfSigned => {
                let sig: Signature = key.sign(&signed);
                (
                    "packed",
                    tmap(vec![("alg", int(-7)), ("sig", Value::Bytes(sig.to_der().as_bytes().to_vec()))]),
                )
            }
            Attestation::Packed { key: att_key, x5c } => {
                let sig: Signature = att_key.sign(&signed);
                let chain = x5c.iter().map(|c| Value::Bytes(c.clone())).collect();
                (
                    "packed",
                    tmap(vec![
                        ("alg", int(-7)),
                        ("sig", Value::Bytes(sig.to_der().as_bytes().to_vec())),
                        ("x5c", Value::Array(chain)),
                    ]),
                )
            }
        }
    }

    pub(crate) fn get_assertion(&mut self, args: &Args, presence: &mut dyn Presence) -> CtapResult<Value> {
        let rp_id = args.text(1)?.ok_or(Status::MissingParameter)?.to_owned();
        let cdh = args.bytes(2)?.ok_or(Status::MissingParameter)?.to_vec();
        let (rk, up, uv_opt) = options(args, 5)?;
        if rk.is_some() {
            return Err(Status::UnsupportedOption);
        }
        if uv_opt == Some(true) {
            return Err(Status::InvalidOption);
        }
        let uv = self.pin_uv(args, (6, 7), &cdh, permission::GA, &rp_id)?;
        if !uv && self.config.always_uv && self.pin_hash.is_some() {
            return Err(Status::PuatRequired);
        }
        let allow = args.array(3)?.map(credential_ids).transpose()?;
        let hmac = match args.map(4)?.and_then(|ext| text_key(ext, "hmac-secret")) {
            Some(input) => Some(self.hmac_secret_request(input)?),
            None => None,
        };
        let mut matches: Vec<Vec<u8>> = self
            .credentials
            .iter()
            .filter(|c| c.rp_id == rp_id)
            .filter(|c| match &allow {
                Some(ids) => ids.contains(&c.id.as_slice()) && (c.cred_protect < 3 || uv),
                None => c.discoverable && (c.cred_protect < 2 || uv),
            })
            .map(|c| c.id.clone())
            .collect();
        let up = up.unwrap_or(true);
        if up {
            presence.confirm()?;
        }
        if matches.is_empty() {
            return Err(Status::NoCredentials);
        }
        matches.reverse(); // newest first
        let count = matches.len();
        if allow.is_some() {
            matches.truncate(1); // with an allow list the key picks one, no getNextAssertion
        }
        let mut pending =
            NextAssertions { rp_id, cdh, up, uv, hmac, left: matches.into(), started: Instant::now() };
        let first = pending.left.pop_front().expect("at least one match");
        let mut out = self.assertion(&pending, &first)?;
        if allow.is_none() && count > 1 {
            out.push((5, int(count as i64)));
            self.next_assertions = Some(pending);
        }
        Ok(imap(out))
    }

    /// getNextAssertion (0x08): the next credential of the last getAssertion, within 30 s.
    pub(crate) fn get_next_assertion(&mut self) -> CtapResult<Value> {
        let mut pending = self.next_assertions.take().ok_or(Status::NotAllowed)?;
        if pending.started.elapsed() > NEXT_ASSERTION_WINDOW {
            return Err(Status::NotAllowed);
        }
        let Some(id) = pending.left.pop_front() else {
            return Err(Status::NotAllowed);
        };
        let out = self.assertion(&pending, &id)?;
        if !pending.left.is_empty() {
            self.next_assertions = Some(pending);
        }
        Ok(imap(out))
    }

    /// Reads and checks the hmac-secret input (§12.5): key agreement, salts, their MAC.
    fn hmac_secret_request(&self, input: &Value) -> CtapResult<HmacRequest> {
        let m = input.as_map().ok_or(Status::CborUnexpectedType)?;
        let get = |k: i64| m.iter().find(|(key, _)| key.as_integer() == Some(k.into())).map(|(_, v)| v);
        let bytes = |k| get(k).ok_or(Status::MissingParameter)?.as_bytes().ok_or(Status::CborUnexpectedType);
        let protocol = match get(4) {
            Some(v) => {
                PinProtocol::from_number(u64::try_from(as_i64(v)?).map_err(|_| Status::InvalidParameter)?)?
            }
            None => PinProtocol::V1,
        };
        let platform = parse_cose_key(get(1).ok_or(Status::MissingParameter)?)?;
        let (salt_enc, salt_auth) = (bytes(2)?, bytes(3)?);
        let shared = shared_secret(protocol, &self.key_agreement, &platform);
        if !protocol.verify(protocol.hmac_key(&shared), salt_enc, salt_auth) {
            return Err(Status::PinAuthInvalid);
        }
        let salts = protocol.decrypt(&shared, salt_enc).ok_or(Status::InvalidLength)?;
        if salts.len() != 32 && salts.len() != 64 {
            return Err(Status::InvalidLength);
        }
        Ok(HmacRequest { protocol, shared, salts })
    }

    /// Signs one assertion for the credential `id` (which must still exist).
    fn assertion(&mut self, req: &NextAssertions, id: &[u8]) -> CtapResult<Vec<(i64, Value)>> {
        let cred = self.credentials.iter_mut().find(|c| c.id == id).ok_or(Status::NoCredentials)?;
        cred.sign_count += 1;
        let mut ext = Vec::new();
        if let (Some(h), Some(random)) = (&req.hmac, &cred.cred_random) {
            // Two CredRandoms per credential (§12.5): one with UV, one without, so a secret
            // obtained without the PIN never equals the one obtained with it.
            let cred_random = if req.uv { hmac_sha256(random, b"uv").to_vec() } else { random.to_vec() };
            let mut outputs = Zeroizing::new(Vec::with_capacity(64));
            for salt in h.salts.chunks(32) {
                outputs.extend_from_slice(&hmac_sha256(&cred_random, salt));
            }
            ext.push(("hmac-secret", Value::Bytes(h.protocol.encrypt(&h.shared, &outputs))));
        }
        let mut flags = 0;
        if req.up {
            flags |= FLAG_UP;
        }
        if req.uv {
            flags |= FLAG_UV;
        }
        if !ext.is_empty() {
            flags |= FLAG_ED;
        }
        let mut auth_data = Sha256::digest(req.rp_id.as_bytes()).to_vec();
        auth_data.push(flags);
        auth_data.extend_from_slice(&cred.sign_count.to_be_bytes());
        if !ext.is_empty() {
            auth_data.extend(encode(tmap(ext)));
        }
        let sig: Signature = cred.key.sign(&[auth_data.as_slice(), &req.cdh].concat());
        let mut out = vec![
            (
                1,
                tmap(vec![("id", Value::Bytes(cred.id.clone())), ("type", Value::Text("public-key".into()))]),
            ),
            (2, Value::Bytes(auth_data)),
            (3, Value::Bytes(sig.to_der().as_bytes().to_vec())),
        ];
        if cred.discoverable {
            let mut user = vec![("id", Value::Bytes(cred.user_id.clone()))];
            if req.uv {
                if let Some(n) = &cred.user_name {
                    user.push(("name", Value::Text(n.clone())));
                }
                if let Some(n) = &cred.user_display_name {
                    user.push(("displayName", Value::Text(n.clone())));
                }
            }
            out.push((4, tmap(user)));
        }
        Ok(out)
    }
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use p256::SecretKey;

    use super::*;
    use crate::authenticator::{CMD_GET_ASSERTION, CMD_GET_NEXT_ASSERTION, CMD_MAKE_CREDENTIAL, Immediate};
    use crate::{Config, PresencePolicy};

    fn call(a: &mut Authenticator, cmd: u8, body: Value) -> Result<Value, u8> {
        let mut req = vec![cmd];
        req.extend(encode(body));
        let resp = a.process(&req, &mut Immediate(PresencePolicy::Approve(Duration::ZERO)));
        match resp[0] {
            0 => Ok(ciborium::de::from_reader(&resp[1..]).unwrap()),
            s => Err(s),
        }
    }

    fn make(a: &mut Authenticator, user: &[u8]) {
        let req = imap(vec![
            (1, Value::Bytes(vec![1; 32])),
            (2, tmap(vec![("id", Value::Text("rp.example".into()))])),
            (3, tmap(vec![("id", Value::Bytes(user.to_vec()))])),
            (4, Value::Array(vec![tmap(vec![("alg", int(-7)), ("type", Value::Text("public-key".into()))])])),
            (6, tmap(vec![("hmac-secret", Value::Bool(true))])),
            (7, tmap(vec![("rk", Value::Bool(true))])),
        ]);
        call(a, CMD_MAKE_CREDENTIAL, req).unwrap();
    }

    /// getAssertion with an hmac-secret input built by hand, so it can be wrong on purpose.
    fn assert_with_salts(a: &mut Authenticator, salts: &[u8], break_auth: bool) -> Result<Value, u8> {
        let platform = SecretKey::random(&mut rand::rngs::OsRng);
        let shared = shared_secret(PinProtocol::V2, &platform, &a.key_agreement.public_key());
        let salt_enc = PinProtocol::V2.encrypt(&shared, salts);
        let mut salt_auth = PinProtocol::V2.authenticate(PinProtocol::V2.hmac_key(&shared), &salt_enc);
        if break_auth {
            salt_auth[0] ^= 1;
        }
        let input = imap(vec![
            (1, cose_key(&platform.public_key(), -25)),
            (2, Value::Bytes(salt_enc)),
            (3, Value::Bytes(salt_auth)),
            (4, int(2)),
        ]);
        let req = imap(vec![
            (1, Value::Text("rp.example".into())),
            (2, Value::Bytes(vec![2; 32])),
            (4, tmap(vec![("hmac-secret", input)])),
        ]);
        call(a, CMD_GET_ASSERTION, req)
    }

    /// (salts, saltAuth broken, expected status): what the key refuses before it computes.
    #[test]
    fn hmac_secret_input_is_checked() {
        let rows: [(&[u8], bool, Option<Status>); 4] = [
            (&[5; 32], false, None),
            (&[5; 64], false, None),
            (&[5; 32], true, Some(Status::PinAuthInvalid)),
            (&[5; 48], false, Some(Status::InvalidLength)),
        ];
        for (salts, broken, want) in rows {
            let mut a = Authenticator::new(Config::default());
            make(&mut a, b"u");
            let got = assert_with_salts(&mut a, salts, broken).err();
            assert_eq!(got, want.map(|s| s as u8), "{} salt bytes, broken {broken}", salts.len());
        }
    }

    #[test]
    fn get_next_assertion_only_right_after_get_assertion() {
        let mut a = Authenticator::new(Config::default());
        assert_eq!(call(&mut a, CMD_GET_NEXT_ASSERTION, imap(vec![])), Err(Status::NotAllowed as u8));
        make(&mut a, b"one");
        make(&mut a, b"two");
        assert!(assert_with_salts(&mut a, &[1; 32], false).is_ok());
        assert!(call(&mut a, CMD_GET_NEXT_ASSERTION, imap(vec![])).is_ok());
        assert_eq!(call(&mut a, CMD_GET_NEXT_ASSERTION, imap(vec![])), Err(Status::NotAllowed as u8));
        // Any other command in between ends the sequence.
        assert!(assert_with_salts(&mut a, &[1; 32], false).is_ok());
        make(&mut a, b"three");
        assert_eq!(call(&mut a, CMD_GET_NEXT_ASSERTION, imap(vec![])), Err(Status::NotAllowed as u8));
    }
}

//! makeCredential (0x01) and getAssertion (0x02): ES256 credentials, credProtect, hmac-secret,
//! packed/none attestation.
//!
//! Authenticator data is rpIdHash ‖ flags ‖ signCount ‖ [aaguid ‖ len ‖ credId ‖ COSE key] ‖
//! [extensions]. BE/BS are always 0: a soft key bound to one machine is not a synced passkey,
//! and Entra's attestation policy cares. Every credential (discoverable or not) is kept in the
//! table, so credential ids are random handles rather than wrapped keys.

use ciborium::value::Value;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::authenticator::{Attestation, Authenticator, Credential, Presence};
use crate::cbor::{Args, as_i64, encode, imap, int, text_key, tmap};
use crate::client_pin::permission;
use crate::pin_protocol::{PinProtocol, cose_key};
use crate::status::{CtapResult, Status};

/// Longest exclude/allow list accepted.
pub const MAX_CREDENTIALS_IN_LIST: usize = 16;

const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;
const FLAG_AT: u8 = 0x40;
const FLAG_ED: u8 = 0x80;

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

    pub(crate) fn make_credential(&mut self, args: &Args, presence: &mut dyn Presence) -> CtapResult<Value> {
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
        let rk = rk.unwrap_or(false);
        let uv = self.pin_uv(args, (8, 9), cdh, permission::MC, &rp_id)?;
        if !uv && self.pin_hash.is_some() && (rk || self.config.always_uv) {
            return Err(Status::PuatRequired);
        }
        if let Some(list) = args.array(5)? {
            let ids = credential_ids(list)?;
            let hit = self
                .credentials
                .iter()
                .any(|c| c.rp_id == rp_id && ids.contains(&c.id.as_slice()) && (c.cred_protect < 3 || uv));
            if hit {
                presence.confirm()?;
                return Err(Status::CredentialExcluded);
            }
        }
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
        let replaces = |c: &Credential| c.discoverable && c.rp_id == rp_id && c.user_id == user_id;
        if rk
            && !self.credentials.iter().any(replaces)
            && self.resident_count() >= self.config.max_resident_keys
        {
            return Err(Status::KeyStoreFull);
        }
        presence.confirm()?;
        self.credentials.retain(|c| !(rk && replaces(c)));

        let mut id = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut id);
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let cred_random = hmac_secret.then(|| {
            let mut r = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut r);
            r
        });
        let mut ext_out = Vec::new();
        if text_key(ext, "credProtect").is_some() {
            ext_out.push(("credProtect", int(cred_protect.into())));
        }
        if hmac_secret {
            ext_out.push(("hmac-secret", Value::Bool(true)));
        }
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
        auth_data.extend_from_slice(&id);
        auth_data.extend(encode(cose_key(&(*key.verifying_key()).into(), -7)));
        if !ext_out.is_empty() {
            auth_data.extend(encode(tmap(ext_out)));
        }
        let signed = [auth_data.as_slice(), cdh].concat();
        let (fmt, att_stmt) = match &self.config.attestation {
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
        };
        self.credentials.push(Credential {
            id,
            rp_id,
            user_id,
            user_name: text_key(user, "name").and_then(Value::as_text).map(str::to_owned),
            user_display_name: text_key(user, "displayName").and_then(Value::as_text).map(str::to_owned),
            key,
            discoverable: rk,
            cred_protect,
            cred_random,
            sign_count: 0,
        });
        Ok(imap(vec![(1, Value::Text(fmt.into())), (2, Value::Bytes(auth_data)), (3, att_stmt)]))
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
        let mut matches: Vec<usize> = self
            .credentials
            .iter()
            .enumerate()
            .filter(|(_, c)| c.rp_id == rp_id)
            .filter(|(_, c)| match &allow {
                Some(ids) => ids.contains(&c.id.as_slice()) && (c.cred_protect < 3 || uv),
                None => c.discoverable && (c.cred_protect < 2 || uv),
            })
            .map(|(i, _)| i)
            .collect();
        let up = up.unwrap_or(true);
        if matches.is_empty() {
            if up {
                presence.confirm()?;
            }
            return Err(Status::NoCredentials);
        }
        if up {
            presence.confirm()?;
        }
        matches.reverse(); // newest first
        let count = matches.len();
        let cred = &mut self.credentials[matches[0]];
        cred.sign_count += 1;
        let mut flags = 0;
        if up {
            flags |= FLAG_UP;
        }
        if uv {
            flags |= FLAG_UV;
        }
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(flags);
        auth_data.extend_from_slice(&cred.sign_count.to_be_bytes());
        let sig: Signature = cred.key.sign(&[auth_data.as_slice(), &cdh].concat());
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
            if uv {
                if let Some(n) = &cred.user_name {
                    user.push(("name", Value::Text(n.clone())));
                }
                if let Some(n) = &cred.user_display_name {
                    user.push(("displayName", Value::Text(n.clone())));
                }
            }
            out.push((4, tmap(user)));
        }
        if allow.is_none() && count > 1 {
            out.push((5, int(count as i64)));
        }
        Ok(imap(out))
    }
}

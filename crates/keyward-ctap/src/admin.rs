//! Key administration: authenticatorConfig (0x0D) and authenticatorCredentialManagement (0x0A).
//!
//! Provisioning needs both: an organisation's PIN policy (minimum length, forced change after
//! hand-over) is written with setMinPINLength, and a passkey left behind by a registration that
//! failed after makeCredential is found and removed with credential management. Each call needs
//! a PIN token with the matching permission ([`PERMISSION_ACFG`] / [`PERMISSION_CM`]).

use ciborium::value::Value;

use crate::cbor::{encode, get_int_key, get_text_key, imap, int, tmap};
use crate::client::{Client, PinToken, descriptor, descriptor_id};
#[cfg(doc)]
use crate::client::{PERMISSION_ACFG, PERMISSION_CM};
use crate::error::CtapError;
use crate::transport::Transport;

const CMD_CRED_MGMT: u8 = 0x0A;
const CMD_CONFIG: u8 = 0x0D;

/// Parameters of setMinPINLength; `None`/empty leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MinPinLength {
    /// The new minimum (may only grow).
    pub new_min_pin_length: Option<u8>,
    /// RP ids allowed to read the minimum through the minPinLength extension.
    pub rp_ids: Vec<String>,
    /// Require a PIN change before the next PIN token is issued.
    pub force_change_pin: bool,
}

/// Counts from getCredsMetadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredsMetadata {
    /// Discoverable credentials stored.
    pub existing: u64,
    /// How many more fit.
    pub remaining: u64,
}

/// One RP with discoverable credentials on the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpEntry {
    /// The RP id.
    pub id: String,
    /// SHA-256 of the RP id (used to enumerate its credentials).
    pub id_hash: Vec<u8>,
}

/// One discoverable credential as credential management reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCredential {
    /// Credential id.
    pub id: Vec<u8>,
    /// User handle.
    pub user_id: Vec<u8>,
    /// User name, if stored.
    pub user_name: Option<String>,
    /// Display name, if stored.
    pub user_display_name: Option<String>,
    /// The COSE public key.
    pub public_key: Value,
    /// credProtect level, if reported.
    pub cred_protect: Option<u8>,
}

fn malformed(what: &str) -> CtapError {
    CtapError::Malformed(format!("credential management answer without {what}"))
}

fn uint(m: &[(Value, Value)], k: i64) -> Option<u64> {
    get_int_key(m, k).and_then(Value::as_integer).and_then(|i| u64::try_from(i).ok())
}

fn rp_entry(m: &[(Value, Value)]) -> Result<RpEntry, CtapError> {
    let id = get_int_key(m, 3)
        .and_then(Value::as_map)
        .and_then(|rp| get_text_key(rp, "id"))
        .and_then(Value::as_text)
        .ok_or_else(|| malformed("rp"))?;
    let id_hash = get_int_key(m, 4).and_then(Value::as_bytes).ok_or_else(|| malformed("rpIDHash"))?;
    Ok(RpEntry { id: id.to_owned(), id_hash: id_hash.clone() })
}

fn stored_credential(m: &[(Value, Value)]) -> Result<StoredCredential, CtapError> {
    let user = get_int_key(m, 6).and_then(Value::as_map).ok_or_else(|| malformed("user"))?;
    let text = |k| get_text_key(user, k).and_then(Value::as_text).map(str::to_owned);
    Ok(StoredCredential {
        id: descriptor_id(m, 7).ok_or_else(|| malformed("credentialID"))?,
        user_id: get_text_key(user, "id")
            .and_then(Value::as_bytes)
            .cloned()
            .ok_or_else(|| malformed("user id"))?,
        user_name: text("name"),
        user_display_name: text("displayName"),
        public_key: get_int_key(m, 8).cloned().ok_or_else(|| malformed("publicKey"))?,
        cred_protect: uint(m, 0x0A).and_then(|n| u8::try_from(n).ok()),
    })
}

impl<T: Transport> Client<T> {
    fn config_call(&mut self, token: &PinToken, sub: u8, params: Option<Value>) -> Result<(), CtapError> {
        let mut msg = vec![0xFF; 32];
        msg.extend([CMD_CONFIG, sub]);
        let mut req = vec![(1, int(sub.into()))];
        if let Some(p) = params {
            msg.extend(encode(p.clone()));
            req.push((2, p));
        }
        req.push((3, int(token.protocol().number().into())));
        req.push((4, Value::Bytes(token.param(&msg))));
        self.call(CMD_CONFIG, Some(imap(req))).map(|_| ())
    }

    /// authenticatorConfig setMinPINLength (token needs [`PERMISSION_ACFG`]).
    pub fn set_min_pin_length(&mut self, token: &PinToken, req: &MinPinLength) -> Result<(), CtapError> {
        let mut params = Vec::new();
        if let Some(n) = req.new_min_pin_length {
            params.push((1, int(n.into())));
        }
        if !req.rp_ids.is_empty() {
            params.push((2, Value::Array(req.rp_ids.iter().map(|r| Value::Text(r.clone())).collect())));
        }
        if req.force_change_pin {
            params.push((3, Value::Bool(true)));
        }
        self.config_call(token, 0x03, Some(imap(params)))
    }

    /// authenticatorConfig toggleAlwaysUv (token needs [`PERMISSION_ACFG`]).
    pub fn toggle_always_uv(&mut self, token: &PinToken) -> Result<(), CtapError> {
        self.config_call(token, 0x02, None)
    }

    /// authenticatorConfig enableEnterpriseAttestation (token needs [`PERMISSION_ACFG`]).
    pub fn enable_enterprise_attestation(&mut self, token: &PinToken) -> Result<(), CtapError> {
        self.config_call(token, 0x01, None)
    }

    fn cm_call(
        &mut self,
        token: Option<&PinToken>,
        sub: u8,
        params: Option<Value>,
    ) -> Result<Vec<(Value, Value)>, CtapError> {
        let mut msg = vec![sub];
        let mut req = vec![(1, int(sub.into()))];
        if let Some(p) = params {
            msg.extend(encode(p.clone()));
            req.push((2, p));
        }
        if let Some(t) = token {
            req.push((3, int(t.protocol().number().into())));
            req.push((4, Value::Bytes(t.param(&msg))));
        }
        self.call_map(CMD_CRED_MGMT, Some(imap(req)))
    }

    /// getCredsMetadata (token needs [`PERMISSION_CM`], not bound to an RP).
    pub fn creds_metadata(&mut self, token: &PinToken) -> Result<CredsMetadata, CtapError> {
        let m = self.cm_call(Some(token), 0x01, None)?;
        Ok(CredsMetadata {
            existing: uint(&m, 1).ok_or_else(|| malformed("existing count"))?,
            remaining: uint(&m, 2).ok_or_else(|| malformed("remaining count"))?,
        })
    }

    /// enumerateRPsBegin/GetNextRP: every RP with discoverable credentials (empty if none).
    pub fn enumerate_rps(&mut self, token: &PinToken) -> Result<Vec<RpEntry>, CtapError> {
        let first = match self.cm_call(Some(token), 0x02, None) {
            Err(e) if e.status() == Some(crate::CtapStatus::NoCredentials) => return Ok(Vec::new()),
            r => r?,
        };
        let total = uint(&first, 5).ok_or_else(|| malformed("totalRPs"))?;
        let mut out = vec![rp_entry(&first)?];
        for _ in 1..total {
            out.push(rp_entry(&self.cm_call(None, 0x03, None)?)?);
        }
        Ok(out)
    }

    /// enumerateCredentialsBegin/GetNextCredential for one RP (by id hash; empty if none).
    pub fn enumerate_credentials(
        &mut self,
        token: &PinToken,
        rp_id_hash: &[u8],
    ) -> Result<Vec<StoredCredential>, CtapError> {
        let params = imap(vec![(1, Value::Bytes(rp_id_hash.to_vec()))]);
        let first = match self.cm_call(Some(token), 0x04, Some(params)) {
            Err(e) if e.status() == Some(crate::CtapStatus::NoCredentials) => return Ok(Vec::new()),
            r => r?,
        };
        let total = uint(&first, 9).ok_or_else(|| malformed("totalCredentials"))?;
        let mut out = vec![stored_credential(&first)?];
        for _ in 1..total {
            out.push(stored_credential(&self.cm_call(None, 0x05, None)?)?);
        }
        Ok(out)
    }

    /// deleteCredential: removes one discoverable credential (e.g. an orphan of a failed
    /// registration).
    pub fn delete_credential(&mut self, token: &PinToken, credential_id: &[u8]) -> Result<(), CtapError> {
        let params = imap(vec![(2, descriptor(credential_id))]);
        self.cm_call(Some(token), 0x06, Some(params)).map(|_| ())
    }

    /// updateUserInformation: replaces name and display name (the user id must match).
    pub fn update_user_information(
        &mut self,
        token: &PinToken,
        credential_id: &[u8],
        user_id: &[u8],
        name: Option<&str>,
        display_name: Option<&str>,
    ) -> Result<(), CtapError> {
        let mut user = vec![("id", Value::Bytes(user_id.to_vec()))];
        if let Some(n) = name {
            user.push(("name", Value::Text(n.into())));
        }
        if let Some(d) = display_name {
            user.push(("displayName", Value::Text(d.into())));
        }
        let params = imap(vec![(2, descriptor(credential_id)), (3, tmap(user))]);
        self.cm_call(Some(token), 0x07, Some(params)).map(|_| ())
    }
}

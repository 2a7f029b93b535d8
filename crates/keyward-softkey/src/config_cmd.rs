//! authenticatorConfig (0x0D): setMinPINLength, toggleAlwaysUv, enableEnterpriseAttestation.
//!
//! An organisation's PIN policy (minimum length, "change the PIN before first use") is set on
//! the key with this command after provisioning, so the soft key must enforce it the way real
//! keys do: the minimum may only grow, raising it above the current PIN's length forces a PIN
//! change, and while a change is forced no PIN token is issued (CTAP 2.1 §6.11).

use ciborium::value::Value;

use crate::authenticator::Authenticator;
use crate::cbor::{Args, as_i64, encode};
use crate::client_pin::permission;
use crate::pin_protocol::PinProtocol;
use crate::status::{CtapResult, Status};

/// Most RP ids accepted in minPinLengthRPIDs (getInfo key 0x10).
pub const MAX_RPIDS_FOR_MIN_PIN_LENGTH: usize = 4;

impl Authenticator {
    /// Checks a pinUvAuthParam over `msg` against the current token with `perm`, ignoring any
    /// RP binding; returns the RP id the token is bound to, if any.
    pub(crate) fn verify_unbound_token(
        &self,
        args: &Args,
        msg: &[u8],
        perm: u8,
    ) -> CtapResult<Option<String>> {
        let param = args.bytes(4)?.ok_or(Status::PuatRequired)?;
        let protocol = PinProtocol::from_number(args.uint(3)?.ok_or(Status::MissingParameter)?)?;
        let token = self.token.as_ref().ok_or(Status::PinAuthInvalid)?;
        if !protocol.verify(token.value.as_ref(), msg, param) || token.permissions & perm == 0 {
            return Err(Status::PinAuthInvalid);
        }
        Ok(token.rp_id.clone())
    }

    pub(crate) fn authenticator_config(&mut self, args: &Args) -> CtapResult<()> {
        let sub = args.uint(1)?.ok_or(Status::MissingParameter)?;
        let sub = u8::try_from(sub).map_err(|_| Status::InvalidSubcommand)?;
        let params = args.map(2)?;
        if self.pin_hash.is_some() || self.config.always_uv || args.get(4).is_some() {
            let mut msg = vec![0xFF; 32];
            msg.extend([0x0D, sub]);
            if let Some(p) = params {
                msg.extend(encode(Value::Map(p.to_vec())));
            }
            self.verify_unbound_token(args, &msg, permission::ACFG)?;
        }
        match sub {
            0x01 => {
                self.enterprise_attestation = true;
                Ok(())
            }
            0x02 => {
                self.config.always_uv = !self.config.always_uv;
                Ok(())
            }
            0x03 => self.set_min_pin_length(params.unwrap_or_default()),
            _ => Err(Status::InvalidSubcommand),
        }
    }

    fn set_min_pin_length(&mut self, params: &[(Value, Value)]) -> CtapResult<()> {
        let get = |k: i64| params.iter().find(|(key, _)| key.as_integer() == Some(k.into())).map(|(_, v)| v);
        let new_min = match get(1) {
            Some(v) => u8::try_from(as_i64(v)?).map_err(|_| Status::PinPolicyViolation)?,
            None => self.config.min_pin_length,
        };
        let rp_ids = match get(2) {
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_text().map(str::to_owned).ok_or(Status::CborUnexpectedType))
                .collect::<CtapResult<Vec<_>>>()?,
            Some(_) => return Err(Status::CborUnexpectedType),
            None => Vec::new(),
        };
        let force = match get(3) {
            Some(v) => v.as_bool().ok_or(Status::CborUnexpectedType)?,
            None => false,
        };
        if rp_ids.len() > MAX_RPIDS_FOR_MIN_PIN_LENGTH {
            return Err(Status::InvalidParameter);
        }
        if new_min < self.config.min_pin_length || new_min > 63 {
            return Err(Status::PinPolicyViolation);
        }
        if force && self.pin_hash.is_none() {
            return Err(Status::PinNotSet);
        }
        self.config.min_pin_length = new_min;
        if !rp_ids.is_empty() {
            self.min_pin_length_rp_ids = rp_ids;
        }
        if force || (self.pin_hash.is_some() && self.pin_length < new_min) {
            self.config.force_pin_change = true;
            self.token = None;
        }
        Ok(())
    }
}

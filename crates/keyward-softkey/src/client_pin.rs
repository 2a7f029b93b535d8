//! authenticatorClientPIN (0x06): PIN set/change, retries, key agreement, token issuance.
//!
//! The retry rules follow CTAP 2.1 §6.5.5: every PIN attempt first decrements the persistent
//! counter (so pulling the key mid-attempt still costs a try), a correct PIN restores 8, three
//! consecutive wrong PINs give PIN_AUTH_BLOCKED until a power cycle, and a counter of 0 is
//! PIN_BLOCKED for good (only reset helps). A wrong PIN also rotates the key-agreement key.

use ciborium::value::Value;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::authenticator::{Authenticator, MAX_CONSECUTIVE_MISMATCHES, MAX_PIN_RETRIES, Token};
use crate::cbor::{Args, imap, int};
use crate::pin_protocol::{PinProtocol, cose_key, parse_cose_key, shared_secret};
use crate::status::{CtapResult, Status};

/// Permission bits of a pinUvAuthToken.
pub mod permission {
    /// makeCredential.
    pub const MC: u8 = 0x01;
    /// getAssertion.
    pub const GA: u8 = 0x02;
    /// credentialManagement.
    pub const CM: u8 = 0x04;
    /// bioEnrollment.
    pub const BE: u8 = 0x08;
    /// largeBlobWrite.
    pub const LBW: u8 = 0x10;
    /// authenticatorConfig.
    pub const ACFG: u8 = 0x20;
}

const SUPPORTED_PERMISSIONS: u8 = permission::MC | permission::GA | permission::CM | permission::ACFG;

impl Authenticator {
    pub(crate) fn client_pin(&mut self, args: &Args) -> CtapResult<Value> {
        let sub = args.uint(2)?.ok_or(Status::MissingParameter)?;
        if sub == 0x01 {
            return Ok(imap(vec![
                (3, int(self.pin_retries.into())),
                (4, Value::Bool(self.mismatches >= MAX_CONSECUTIVE_MISMATCHES)),
            ]));
        }
        let protocol = PinProtocol::from_number(args.uint(1)?.ok_or(Status::MissingParameter)?)?;
        if self.ctap20_only && (protocol != PinProtocol::V1 || sub > 0x05) {
            return Err(if sub > 0x05 { Status::InvalidSubcommand } else { Status::InvalidParameter });
        }
        match sub {
            0x02 => Ok(imap(vec![(1, cose_key(&self.key_agreement.public_key(), -25))])),
            0x03 => self.set_pin(protocol, args).map(|_| Value::Map(vec![])),
            0x04 => self.change_pin(protocol, args).map(|_| Value::Map(vec![])),
            0x05 => {
                if args.get(9).is_some() || args.get(0x0A).is_some() {
                    return Err(Status::InvalidParameter);
                }
                self.issue_token(protocol, args, permission::MC | permission::GA, None)
            }
            0x09 => {
                let perms = args.uint(9)?.ok_or(Status::MissingParameter)?;
                let perms = u8::try_from(perms).map_err(|_| Status::InvalidParameter)?;
                if perms == 0 {
                    return Err(Status::InvalidParameter);
                }
                if perms & !SUPPORTED_PERMISSIONS != 0 {
                    return Err(Status::UnauthorizedPermission);
                }
                let rp_id = args.text(0x0A)?.map(str::to_owned);
                self.issue_token(protocol, args, perms, rp_id)
            }
            0x06 | 0x07 => Err(Status::InvalidSubcommand), // no built-in UV
            _ => Err(Status::InvalidSubcommand),
        }
    }

    fn shared(&self, protocol: PinProtocol, args: &Args) -> CtapResult<Zeroizing<Vec<u8>>> {
        let platform = parse_cose_key(args.get(3).ok_or(Status::MissingParameter)?)?;
        Ok(shared_secret(protocol, &self.key_agreement, &platform))
    }

    fn set_pin(&mut self, protocol: PinProtocol, args: &Args) -> CtapResult<()> {
        let param = args.bytes(4)?.ok_or(Status::MissingParameter)?;
        let new_pin_enc = args.bytes(5)?.ok_or(Status::MissingParameter)?;
        args.get(3).ok_or(Status::MissingParameter)?;
        if self.pin_hash.is_some() {
            // CTAP 2.1 §6.5.5.5 step 3 (CTAP 2.0 keys said NOT_ALLOWED here).
            return Err(Status::PinAuthInvalid);
        }
        let shared = self.shared(protocol, args)?;
        if !protocol.verify(protocol.hmac_key(&shared), new_pin_enc, param) {
            return Err(Status::PinAuthInvalid);
        }
        self.store_new_pin(protocol, &shared, new_pin_enc)
    }

    fn change_pin(&mut self, protocol: PinProtocol, args: &Args) -> CtapResult<()> {
        let param = args.bytes(4)?.ok_or(Status::MissingParameter)?;
        let new_pin_enc = args.bytes(5)?.ok_or(Status::MissingParameter)?;
        let pin_hash_enc = args.bytes(6)?.ok_or(Status::MissingParameter)?;
        if self.pin_hash.is_none() {
            return Err(Status::PinNotSet);
        }
        self.check_not_blocked()?;
        let shared = self.shared(protocol, args)?;
        let msg = [new_pin_enc, pin_hash_enc].concat();
        if !protocol.verify(protocol.hmac_key(&shared), &msg, param) {
            return Err(Status::PinAuthInvalid);
        }
        self.check_pin_hash(protocol, &shared, pin_hash_enc)?;
        let old = self.pin_hash;
        self.store_new_pin(protocol, &shared, new_pin_enc)?;
        if self.pin_hash == old {
            // CTAP 2.1: with forcePINChange the new PIN must differ from the old one.
            if self.config.force_pin_change {
                return Err(Status::PinPolicyViolation);
            }
        }
        self.config.force_pin_change = false;
        self.token = None;
        Ok(())
    }

    fn store_new_pin(&mut self, protocol: PinProtocol, shared: &[u8], enc: &[u8]) -> CtapResult<()> {
        let padded = protocol.decrypt(shared, enc).ok_or(Status::InvalidParameter)?;
        if padded.len() != 64 {
            return Err(Status::InvalidParameter);
        }
        let end = padded.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let pin = &padded[..end];
        if pin.len() > 63 {
            return Err(Status::PinPolicyViolation);
        }
        let pin = std::str::from_utf8(pin).map_err(|_| Status::PinPolicyViolation)?;
        if pin.chars().count() < usize::from(self.config.min_pin_length) {
            return Err(Status::PinPolicyViolation);
        }
        let mut hash = [0u8; 16];
        hash.copy_from_slice(&Sha256::digest(pin.as_bytes())[..16]);
        self.pin_hash = Some(hash);
        self.pin_length = u8::try_from(pin.chars().count()).unwrap_or(u8::MAX);
        self.pin_retries = MAX_PIN_RETRIES;
        self.mismatches = 0;
        Ok(())
    }

    fn check_not_blocked(&self) -> CtapResult<()> {
        if self.pin_retries == 0 {
            return Err(Status::PinBlocked);
        }
        if self.mismatches >= MAX_CONSECUTIVE_MISMATCHES {
            return Err(Status::PinAuthBlocked);
        }
        Ok(())
    }

    fn check_pin_hash(&mut self, protocol: PinProtocol, shared: &[u8], enc: &[u8]) -> CtapResult<()> {
        self.check_not_blocked()?;
        self.pin_retries -= 1;
        let given = protocol.decrypt(shared, enc).ok_or(Status::InvalidParameter)?;
        let stored = self.pin_hash.ok_or(Status::PinNotSet)?;
        if given.len() != 16 || !ct_eq(&given, &stored) {
            self.regenerate_key_agreement();
            self.mismatches += 1;
            if self.pin_retries == 0 {
                return Err(Status::PinBlocked);
            }
            if self.mismatches >= MAX_CONSECUTIVE_MISMATCHES {
                return Err(Status::PinAuthBlocked);
            }
            return Err(Status::PinInvalid);
        }
        self.pin_retries = MAX_PIN_RETRIES;
        self.mismatches = 0;
        Ok(())
    }

    fn issue_token(
        &mut self,
        protocol: PinProtocol,
        args: &Args,
        permissions: u8,
        rp_id: Option<String>,
    ) -> CtapResult<Value> {
        let pin_hash_enc = args.bytes(6)?.ok_or(Status::MissingParameter)?;
        args.get(3).ok_or(Status::MissingParameter)?;
        if self.pin_hash.is_none() {
            return Err(Status::PinNotSet);
        }
        self.check_not_blocked()?;
        let shared = self.shared(protocol, args)?;
        self.check_pin_hash(protocol, &shared, pin_hash_enc)?;
        if self.config.force_pin_change {
            return Err(Status::PinPolicyViolation);
        }
        let mut value = Zeroizing::new([0u8; 32]);
        rand::thread_rng().fill_bytes(value.as_mut());
        let enc = protocol.encrypt(&shared, value.as_ref());
        self.token = Some(Token { value, permissions, rp_id });
        Ok(imap(vec![(2, Value::Bytes(enc))]))
    }

    /// Verifies a pinUvAuthParam over `msg` for `permission` and binds/checks the RP id.
    pub(crate) fn verify_token(
        &mut self,
        protocol: PinProtocol,
        msg: &[u8],
        param: &[u8],
        permission: u8,
        rp_id: &str,
    ) -> CtapResult<()> {
        let token = self.token.as_mut().ok_or(Status::PinAuthInvalid)?;
        if !protocol.verify(token.value.as_ref(), msg, param) {
            return Err(Status::PinAuthInvalid);
        }
        if token.permissions & permission == 0 {
            return Err(Status::PinAuthInvalid);
        }
        match &token.rp_id {
            Some(bound) if bound != rp_id => return Err(Status::PinAuthInvalid),
            Some(_) => {}
            None => token.rp_id = Some(rp_id.to_owned()),
        }
        Ok(())
    }
}

/// Constant-time equality of two byte strings.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    diff == 0 && a.len() == b.len()
}

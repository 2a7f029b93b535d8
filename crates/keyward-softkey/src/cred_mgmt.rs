//! authenticatorCredentialManagement (0x0A): metadata, enumerate RPs and credentials, delete,
//! update user information.
//!
//! Keyward uses this to clean up half-finished registrations (makeCredential succeeded, the
//! Graph POST did not), so the soft key implements it per CTAP 2.1 §6.8: every sub-command but
//! the two "next" ones needs a token with the cm permission, an RP-bound token only sees its
//! RP, and an enumeration is a snapshot that any other command ends.

use std::collections::VecDeque;

use ciborium::value::Value;
use sha2::{Digest, Sha256};

use crate::authenticator::{Authenticator, Credential};
use crate::cbor::{Args, encode, imap, int, text_key, tmap};
use crate::client_pin::permission;
use crate::pin_protocol::cose_key;
use crate::status::{CtapResult, Status};

/// An enumeration in progress: the remaining answers and which kind they are.
#[derive(Debug, Default)]
pub(crate) struct Enumeration {
    /// 0x03 for RPs, 0x05 for credentials: the "next" sub-command that may continue it.
    pub next: u8,
    /// Answers still to hand out.
    pub left: VecDeque<Value>,
}

fn param(params: &[(Value, Value)], key: i64) -> Option<&Value> {
    params.iter().find(|(k, _)| k.as_integer() == Some(key.into())).map(|(_, v)| v)
}

fn descriptor_id(v: Option<&Value>) -> CtapResult<Vec<u8>> {
    let m = v.ok_or(Status::MissingParameter)?.as_map().ok_or(Status::CborUnexpectedType)?;
    Ok(text_key(m, "id").and_then(Value::as_bytes).ok_or(Status::MissingParameter)?.clone())
}

fn user_entity(c: &Credential) -> Value {
    let mut user = vec![("id", Value::Bytes(c.user_id.clone()))];
    if let Some(n) = &c.user_name {
        user.push(("name", Value::Text(n.clone())));
    }
    if let Some(d) = &c.user_display_name {
        user.push(("displayName", Value::Text(d.clone())));
    }
    tmap(user)
}

/// Whether an RP-bound token (`bound`) may see the credential: only discoverable ones, of its RP.
fn visible(c: &Credential, bound: Option<&str>) -> bool {
    c.discoverable && bound.is_none_or(|rp| rp == c.rp_id)
}

impl Authenticator {
    /// authenticatorCredentialManagement: continues an enumeration, or checks the PIN token
    /// and runs one sub-command.
    pub(crate) fn credential_management(&mut self, args: &Args) -> CtapResult<Value> {
        let sub = args.uint(1)?.ok_or(Status::MissingParameter)?;
        let sub = u8::try_from(sub).map_err(|_| Status::InvalidSubcommand)?;
        let params = args.map(2)?.unwrap_or_default();
        if sub == 0x03 || sub == 0x05 {
            return self.continue_enumeration(sub);
        }
        self.enumeration = None;
        if self.pin_hash.is_none() {
            return Err(Status::PinNotSet);
        }
        let mut msg = vec![sub];
        if let Some(p) = args.map(2)? {
            msg.extend(encode(Value::Map(p.to_vec())));
        }
        let bound = self.verify_unbound_token(args, &msg, permission::CM)?;
        let bound = bound.as_deref();
        match sub {
            0x01 | 0x02 if bound.is_some() => Err(Status::PinAuthInvalid),
            0x01 => Ok(self.credentials_metadata()),
            0x02 => self.enumerate_rps(),
            0x04 => self.enumerate_credentials(params, bound),
            0x06 => self.delete_credential(params, bound),
            0x07 => self.update_user_information(params, bound),
            _ => Err(Status::InvalidSubcommand),
        }
    }

    /// enumerateRPsGetNextRP (0x03) / enumerateCredentialsGetNextCredential (0x05): the next
    /// answer of the enumeration in progress, if it is of that kind.
    fn continue_enumeration(&mut self, sub: u8) -> CtapResult<Value> {
        let e = self.enumeration.as_mut().filter(|e| e.next == sub).ok_or(Status::NotAllowed)?;
        let next = e.left.pop_front().ok_or(Status::NotAllowed)?;
        if e.left.is_empty() {
            self.enumeration = None;
        }
        Ok(next)
    }

    /// getCredsMetadata (0x01): discoverable credentials held and room left.
    fn credentials_metadata(&self) -> Value {
        imap(vec![
            (1, int(self.resident_count() as i64)),
            (2, int(self.config.max_resident_keys.saturating_sub(self.resident_count()) as i64)),
        ])
    }

    /// enumerateRPsBegin (0x02): the first RP with discoverable credentials, and the count.
    fn enumerate_rps(&mut self) -> CtapResult<Value> {
        let mut rps: Vec<&str> = Vec::new();
        for c in self.credentials.iter().filter(|c| visible(c, None)) {
            if !rps.contains(&c.rp_id.as_str()) {
                rps.push(&c.rp_id);
            }
        }
        let total = rps.len() as i64;
        let mut left: VecDeque<Value> = rps
            .iter()
            .map(|rp| {
                imap(vec![
                    (3, tmap(vec![("id", Value::Text((*rp).into()))])),
                    (4, Value::Bytes(Sha256::digest(rp.as_bytes()).to_vec())),
                ])
            })
            .collect();
        self.start_enumeration(0x03, &mut left, total)
    }

    /// enumerateCredentialsBegin (0x04): the first credential of the RP whose id hash is
    /// given, and the count.
    fn enumerate_credentials(&mut self, params: &[(Value, Value)], bound: Option<&str>) -> CtapResult<Value> {
        let hash = param(params, 1).and_then(Value::as_bytes).ok_or(Status::MissingParameter)?;
        let mut left: VecDeque<Value> = self
            .credentials
            .iter()
            .filter(|c| visible(c, bound) && Sha256::digest(c.rp_id.as_bytes())[..] == hash[..])
            .map(|c| {
                imap(vec![
                    (6, user_entity(c)),
                    (
                        7,
                        tmap(vec![
                            ("id", Value::Bytes(c.id.clone())),
                            ("type", Value::Text("public-key".into())),
                        ]),
                    ),
                    (8, cose_key(&(*c.key.verifying_key()).into(), -7)),
                    (0x0A, int(c.cred_protect.into())),
                ])
            })
            .collect();
        let total = left.len() as i64;
        self.start_enumeration(0x05, &mut left, total)
    }

    /// deleteCredential (0x06).
    fn delete_credential(&mut self, params: &[(Value, Value)], bound: Option<&str>) -> CtapResult<Value> {
        let id = descriptor_id(param(params, 2))?;
        let i = self
            .credentials
            .iter()
            .position(|c| c.id == id && visible(c, bound))
            .ok_or(Status::NoCredentials)?;
        self.credentials.remove(i);
        Ok(Value::Map(vec![]))
    }

    /// updateUserInformation (0x07): new name and display name for the same user id.
    fn update_user_information(
        &mut self,
        params: &[(Value, Value)],
        bound: Option<&str>,
    ) -> CtapResult<Value> {
        let id = descriptor_id(param(params, 2))?;
        let user = param(params, 3).ok_or(Status::MissingParameter)?;
        let user = user.as_map().ok_or(Status::CborUnexpectedType)?;
        let text = |k| text_key(user, k).and_then(Value::as_text).map(str::to_owned);
        let user_id = text_key(user, "id").and_then(Value::as_bytes).ok_or(Status::MissingParameter)?;
        let c = self
            .credentials
            .iter_mut()
            .find(|c| c.id == id && c.discoverable)
            .ok_or(Status::NoCredentials)?;
        if bound.is_some_and(|rp| rp != c.rp_id) {
            return Err(Status::NoCredentials);
        }
        if c.user_id != *user_id {
            return Err(Status::InvalidParameter);
        }
        c.user_name = text("name");
        c.user_display_name = text("displayName");
        Ok(Value::Map(vec![]))
    }

    /// Hands out the first answer (with the total under `total_key`) and keeps the rest.
    fn start_enumeration(&mut self, next: u8, left: &mut VecDeque<Value>, total: i64) -> CtapResult<Value> {
        let Some(Value::Map(mut first)) = left.pop_front() else {
            return Err(Status::NoCredentials);
        };
        first.push((int(if next == 0x03 { 5 } else { 9 }), int(total)));
        if !left.is_empty() {
            self.enumeration = Some(Enumeration { next, left: std::mem::take(left) });
        }
        Ok(Value::Map(first))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::authenticator::{Config, Immediate, PresencePolicy};

    fn status(a: &mut Authenticator, cmd: u8, body: Value) -> u8 {
        let mut req = vec![cmd];
        req.extend(encode(body));
        a.process(&req, &mut Immediate(PresencePolicy::Approve(Duration::ZERO)))[0]
    }

    #[test]
    fn next_without_enumeration_and_without_pin_are_refused() {
        let mut a = Authenticator::new(Config::default());
        assert_eq!(status(&mut a, 0x0A, imap(vec![(1, int(0x03))])), Status::NotAllowed as u8);
        assert_eq!(status(&mut a, 0x0A, imap(vec![(1, int(0x05))])), Status::NotAllowed as u8);
        assert_eq!(status(&mut a, 0x0A, imap(vec![(1, int(0x01))])), Status::PinNotSet as u8);
        assert_eq!(status(&mut a, 0x0A, imap(vec![])), Status::MissingParameter as u8);
    }

    #[test]
    fn another_command_ends_an_enumeration() {
        let mut a = Authenticator::new(Config::default());
        let mut left = VecDeque::from(vec![imap(vec![(3, int(1))]), imap(vec![(3, int(2))])]);
        a.start_enumeration(0x03, &mut left.clone(), 2).unwrap();
        assert_eq!(status(&mut a, 0x0A, imap(vec![(1, int(0x05))])), Status::NotAllowed as u8);
        a.start_enumeration(0x03, &mut left, 2).unwrap();
        assert_eq!(status(&mut a, 0x04, imap(vec![])), 0);
        assert_eq!(status(&mut a, 0x0A, imap(vec![(1, int(0x03))])), Status::NotAllowed as u8);
    }
}

//! Anchors: a signed statement of the audit chain's head (sequence number, hash, time), printed
//! by `keyward audit anchor` and kept outside the database — with an external notary, in a
//! write-once bucket, in a ticket — so that what the chain's key cannot catch is caught later:
//! the newest events deleted (truncation), or the chain rewritten up to the anchor.
//!
//! **Signature: HMAC-SHA256, not Ed25519.** The anchor is signed with an HMAC under the anchor
//! subkey of the server's secret key (derived apart from the chain's and the encryption subkey).
//! Only the server verifies an anchor (it holds the chain it is compared with, and the key), so
//! a public-key signature would add a second algorithm and key-derivation step without a
//! verifier that could use it; and an Ed25519 key derived from the same secret would protect
//! nothing more against someone holding that secret. The signature's job is to stop a forged
//! anchor (for a chain recomputed by someone without the key) from being accepted; what stops
//! the holder of the key is the notary's copy, which cannot be changed after it was handed over.
//!
//! File format: one JSON object, `{"format": "keyward-audit-anchor v1", "seq", "hash", "at"
//! (RFC 3339), "key_id", "mac"}`, `mac` being the hex HMAC of the length-prefixed encoding of the
//! format, `seq`, `hash`, `at` (microseconds) and `key_id` (as in the chain, see [`super`]).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AuditEvent, ChainBreak, ChainBreakReason, MacKey, MacKeys};

/// The `format` field of every anchor this version writes.
pub const ANCHOR_FORMAT: &str = "keyward-audit-anchor v1";

/// A signed head of the audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    /// Always [`ANCHOR_FORMAT`].
    pub format: String,
    /// The head event's sequence number (0 for an empty chain).
    pub seq: i64,
    /// The head event's hash.
    pub hash: String,
    /// When the anchor was made.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The id of the secret key whose anchor subkey signed it.
    pub key_id: String,
    /// Hex HMAC-SHA256 over the fields above.
    pub mac: String,
}

/// Why an anchor cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorError {
    /// Not an anchor of a format this version reads.
    #[error(
        "the anchor's format is {0:?}, not \"keyward-audit-anchor v1\"; pass a file written by `keyward audit anchor`"
    )]
    Format(String),
    /// Signed under a key this server does not hold.
    #[error(
        "the anchor was signed under secret key {0}, which this server does not hold; keep old key files (secret.key.old-ID) beside the key file"
    )]
    UnknownKey(String),
    /// The signature does not match its contents.
    #[error("the anchor's signature does not match its contents: the anchor file was altered or forged")]
    BadSignature,
}

impl Anchor {
    /// Signs the head (`seq`, `hash`) at time `at` with `key` (the anchor subkey).
    pub fn sign(seq: i64, hash: &str, at: OffsetDateTime, key: &MacKey) -> Self {
        let at = super::truncate_to_micros(at);
        let mut anchor = Anchor {
            format: ANCHOR_FORMAT.to_owned(),
            seq,
            hash: hash.to_owned(),
            at,
            key_id: key.id().to_owned(),
            mac: String::new(),
        };
        anchor.mac = hex::encode(key.mac(&anchor.encoding()));
        anchor
    }

    /// Checks the format and the signature against the anchor keys in `keys`.
    pub fn check_signature(&self, keys: &MacKeys) -> Result<(), AnchorError> {
        if self.format != ANCHOR_FORMAT {
            return Err(AnchorError::Format(self.format.clone()));
        }
        let key = keys.get(&self.key_id).ok_or_else(|| AnchorError::UnknownKey(self.key_id.clone()))?;
        let tag = hex::decode(&self.mac).map_err(|_| AnchorError::BadSignature)?;
        if key.verify(&self.encoding(), &tag) { Ok(()) } else { Err(AnchorError::BadSignature) }
    }

    /// Compares the anchor with the chain as stored now: `at_seq` is the stored event at the
    /// anchor's sequence number (if any) and `last` the chain's last sequence number. The chain
    /// itself must have been verified separately.
    pub fn check_chain(&self, at_seq: Option<&AuditEvent>, last: i64) -> Result<(), ChainBreak> {
        let brk = |reason| Err(ChainBreak { index: self.seq.max(1) as usize - 1, seq: self.seq, reason });
        if self.seq == 0 {
            return Ok(());
        }
        match at_seq {
            None => brk(ChainBreakReason::Truncated { last }),
            Some(ev) if ev.hash != self.hash => brk(ChainBreakReason::AnchorMismatch),
            Some(_) => Ok(()),
        }
    }

    fn encoding(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for field in [self.format.as_bytes(), self.hash.as_bytes(), self.key_id.as_bytes()] {
            out.extend_from_slice(&(field.len() as u64).to_be_bytes());
            out.extend_from_slice(field);
        }
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&super::micros(self.at).to_be_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditDraft;

    fn ring() -> MacKeys {
        MacKeys::new(MacKey::new("k2", [2; 32]), [MacKey::new("k1", [1; 32])])
    }

    #[test]
    fn a_signed_anchor_checks_and_any_edit_breaks_it() {
        let key = MacKey::new("k1", [1; 32]);
        let anchor = Anchor::sign(7, "hmac:k1:abcd", OffsetDateTime::now_utc(), &key);
        assert_eq!(anchor.check_signature(&ring()), Ok(()), "an older key still checks");
        let text = serde_json::to_string(&anchor).unwrap();
        let back: Anchor = serde_json::from_str(&text).unwrap();
        assert_eq!(back.check_signature(&ring()), Ok(()), "survives its file form");

        type Edit = fn(&mut Anchor);
        let edits: &[(&str, Edit)] = &[
            ("seq", |a| a.seq = 6),
            ("hash", |a| a.hash = "hmac:k1:abce".into()),
            ("at", |a| a.at += time::Duration::seconds(1)),
            ("mac", |a| a.mac = "00".repeat(32)),
            ("mac not hex", |a| a.mac = "zz".into()),
        ];
        for (what, edit) in edits {
            let mut a = anchor.clone();
            edit(&mut a);
            assert_eq!(a.check_signature(&ring()), Err(AnchorError::BadSignature), "{what}");
        }
        let mut a = anchor.clone();
        a.key_id = "k9".into();
        assert_eq!(a.check_signature(&ring()), Err(AnchorError::UnknownKey("k9".into())));
        let mut a = anchor;
        a.format = "other".into();
        assert!(matches!(a.check_signature(&ring()), Err(AnchorError::Format(_))));
    }

    #[test]
    fn the_chain_must_still_hold_the_anchored_event() {
        let key = MacKey::new("k1", [1; 32]);
        let ev = AuditDraft::new("a", "b", "c").seal_with(
            Some(&key),
            3,
            super::super::GENESIS_HASH,
            OffsetDateTime::now_utc(),
        );
        let anchor = Anchor::sign(3, &ev.hash, OffsetDateTime::now_utc(), &key);
        assert_eq!(anchor.check_chain(Some(&ev), 5), Ok(()));
        let err = anchor.check_chain(None, 2).unwrap_err();
        assert_eq!(err.reason, ChainBreakReason::Truncated { last: 2 });
        let mut other = ev.clone();
        other.hash = other.compute_hash();
        assert_eq!(anchor.check_chain(Some(&other), 5).unwrap_err().reason, ChainBreakReason::AnchorMismatch);
        let empty = Anchor::sign(0, super::super::GENESIS_HASH, OffsetDateTime::now_utc(), &key);
        assert_eq!(empty.check_chain(None, 0), Ok(()));
    }
}

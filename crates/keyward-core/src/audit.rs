//! Hash-chained audit events, sealed with a key.
//!
//! Each event's `hash` covers a canonical encoding of all its fields and the previous event's
//! hash, so altering, removing or reordering any stored event breaks the chain from that point
//! on, and [`verify_chain`] names the first broken event.
//!
//! **Two chain versions.** Version 1 (the first releases) is plain SHA-256: anyone who can write
//! the database can recompute every hash after editing it. Version 2 is HMAC-SHA256 under the
//! audit subkey of the server's secret key (derived apart from the encryption subkey, see
//! `keyward_store::secret`), so recomputing needs that key. Each event says which it is in its
//! hash column: 64 hex digits for version 1, `hmac:<key id>:<64 hex digits>` for version 2, the
//! key id naming the secret key it was sealed under (older keys stay usable for verification
//! after `keyward admin rotate-key`, see [`keys`]). A database written by an older version keeps
//! its plain events; the first event sealed with a key simply links to the last plain one, so
//! that point is the switch, and no marker event is needed. After a keyed event a plain one is a
//! break ([`ChainBreakReason::Downgrade`]): someone without the key recomputed the tail. What a
//! key alone cannot catch — the newest events deleted, or the whole chain rewritten as plain —
//! an [`anchor`] held outside the database does.
//!
//! Canonical encoding: the ASCII tag (`keyward-audit-v1` or `keyward-audit-v2`), then `seq` and
//! `at` (Unix time in microseconds) as 8-byte big-endian signed integers, then `actor`, `action`,
//! `subject`, `outcome`, `detail` and `prev_hash`, each as an 8-byte big-endian length followed by
//! its UTF-8 bytes. Length prefixes make the encoding unambiguous (no field can borrow bytes from
//! the next); JSON was rejected because its key order and number formatting are not canonical
//! without an extra canonicalisation crate. `at` is kept to microseconds because that is what
//! both databases store losslessly.

pub mod anchor;
pub mod keys;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

pub use keys::{MacKey, MacKeys};

/// The `prev_hash` of the first event in a chain: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How a version-2 (keyed) hash begins: `hmac:<key id>:<hex>`.
const KEYED_PREFIX: &str = "hmac:";

named_enum! {
    /// How the audited action ended.
    pub enum Outcome: "audit outcome" {
        /// It was done.
        Success = "success",
        /// It was attempted and failed.
        Failure = "failure",
        /// The caller was not allowed to do it.
        Denied = "denied",
    }
}

/// What an audit event records, before it is placed in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditDraft {
    /// Who did it (e.g. `token:ci`, `user:ada@contoso.example`, `system:sync`).
    pub actor: String,
    /// What was done (e.g. `issuance.create`, `key.lost`).
    pub action: String,
    /// What it was done to (e.g. `person:<id>`).
    pub subject: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Further detail as JSON text; never secrets, PINs or tokens.
    pub detail: String,
}

impl AuditDraft {
    /// A successful action with empty detail (`{}`).
    pub fn new(actor: impl Into<String>, action: impl Into<String>, subject: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            action: action.into(),
            subject: subject.into(),
            outcome: Outcome::Success,
            detail: "{}".into(),
        }
    }

    /// Sets the outcome.
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// Sets the detail from any serialisable value.
    pub fn detail(mut self, detail: &impl Serialize) -> Self {
        self.detail = serde_json::to_string(detail).unwrap_or_else(|_| "{}".into());
        self
    }

    /// Places the draft in the chain after an event with hash `prev_hash`, at position `seq`,
    /// sealed with `key` (version 2), or with plain SHA-256 (version 1) when there is none.
    pub fn seal_with(
        self,
        key: Option<&MacKey>,
        seq: i64,
        prev_hash: &str,
        at: OffsetDateTime,
    ) -> AuditEvent {
        let mut ev = self.seal(seq, prev_hash, at);
        if let Some(key) = key {
            ev.hash = ev.compute_keyed_hash(key);
        }
        ev
    }

    /// Places the draft in the chain with a plain SHA-256 hash (version 1: what stores opened
    /// without the server's key write, and what older releases wrote).
    pub fn seal(self, seq: i64, prev_hash: &str, at: OffsetDateTime) -> AuditEvent {
        let at = truncate_to_micros(at);
        let mut ev = AuditEvent {
            seq,
            actor: self.actor,
            action: self.action,
            subject: self.subject,
            outcome: self.outcome,
            detail: self.detail,
            at,
            prev_hash: prev_hash.to_owned(),
            hash: String::new(),
        };
        ev.hash = ev.compute_hash();
        ev
    }
}

/// An audit event in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Position in the chain, starting at 1.
    pub seq: i64,
    /// Who did it.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub subject: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Detail as JSON text.
    pub detail: String,
    /// When (microsecond precision).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Hash of the previous event ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// SHA-256 (lower-case hex) of this event's canonical encoding (version 1), or
    /// `hmac:<key id>:` and its HMAC-SHA256 (version 2).
    pub hash: String,
}

impl AuditEvent {
    /// Microseconds since the Unix epoch of `at`, as stored and hashed.
    pub fn at_micros(&self) -> i64 {
        micros(self.at)
    }

    /// The SHA-256 (hex) of this event's canonical encoding, version 1 (ignores the stored `hash`).
    pub fn compute_hash(&self) -> String {
        hex::encode(Sha256::digest(self.encoding(b"keyward-audit-v1")))
    }

    /// The version-2 hash of this event under `key`: `hmac:<key id>:<hex>`.
    pub fn compute_keyed_hash(&self, key: &MacKey) -> String {
        let tag = key.mac(&self.encoding(b"keyward-audit-v2"));
        format!("{KEYED_PREFIX}{}:{}", key.id(), hex::encode(tag))
    }

    /// Whether this event was sealed with a key (version 2).
    pub fn is_keyed(&self) -> bool {
        keyed_id(&self.hash).is_some()
    }

    /// The canonical encoding (see the module doc) under version tag `tag`.
    fn encoding(&self, tag: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.detail.len());
        out.extend_from_slice(tag);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.at_micros().to_be_bytes());
        for field in [
            self.actor.as_str(),
            self.action.as_str(),
            self.subject.as_str(),
            self.outcome.as_str(),
            self.detail.as_str(),
            self.prev_hash.as_str(),
        ] {
            out.extend_from_slice(&(field.len() as u64).to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
        out
    }

    /// What this event's hash must be, given the keys the verifier holds.
    fn expected_hash(&self, keys: &MacKeys, after_keyed: bool) -> Result<String, ChainBreakReason> {
        match keyed_id(&self.hash) {
            Some(id) => keys.get(id).map(|k| self.compute_keyed_hash(k)).ok_or(ChainBreakReason::UnknownKey),
            None if after_keyed => Err(ChainBreakReason::Downgrade),
            None => Ok(self.compute_hash()),
        }
    }
}

/// The key id of a version-2 hash; `None` for a plain one.
fn keyed_id(hash: &str) -> Option<&str> {
    hash.strip_prefix(KEYED_PREFIX).and_then(|rest| rest.split_once(':')).map(|(id, _)| id)
}

/// Why the chain is broken at an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreakReason {
    /// The stored hash does not match the event's contents: the event was altered.
    #[error("its contents do not match its hash (the row was altered)")]
    HashMismatch,
    /// The event does not point at the previous event's hash: an event was removed or inserted.
    #[error("it does not follow the previous event (an event was removed, inserted or reordered)")]
    BrokenLink,
    /// A plain (unkeyed) hash follows a keyed one: the tail was recomputed without the key.
    #[error(
        "it carries a plain SHA-256 hash after events sealed with the server's key (the events from here on were recomputed without the key)"
    )]
    Downgrade,
    /// The event is sealed under a key this verifier does not hold.
    #[error(
        "it is sealed under a secret key this server does not hold (the key id is in its hash); keep the old key files (secret.key.old-ID) beside the key file"
    )]
    UnknownKey,
    /// The chain ends before the event an anchor names: events at or before it were deleted.
    #[error(
        "the chain ends at event #{last}, before the anchor's event (events at or before the anchor were deleted)"
    )]
    Truncated {
        /// The last event's sequence number (0 for an empty chain).
        last: i64,
    },
    /// The event an anchor names has another hash now: the chain was recomputed or altered.
    #[error(
        "its hash differs from the one the anchor recorded (events up to the anchor were altered, recomputed, or deleted and replaced)"
    )]
    AnchorMismatch,
    /// The sequence numbers are not consecutive.
    #[error("its sequence number is {found}, expected {expected} (an event is missing)")]
    BadSequence {
        /// The expected sequence number.
        expected: i64,
        /// The stored one.
        found: i64,
    },
}

/// The first place where an audit chain fails to verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "audit chain broken at event #{seq} (position {index}): {reason}; restore the audit table from a backup and investigate who changed it"
)]
pub struct ChainBreak {
    /// Index of the offending event in the slice given to [`verify_chain`].
    pub index: usize,
    /// Its sequence number.
    pub seq: i64,
    /// What is wrong with it.
    pub reason: ChainBreakReason,
}

/// Verifies a whole chain, starting from the genesis event, with the keys in `keys`.
pub fn verify_chain(keys: &MacKeys, events: &[AuditEvent]) -> Result<(), ChainBreak> {
    verify_chain_from(keys, GENESIS_HASH, 1, events)
}

/// Verifies a run of events that continues after an event with hash `prev_hash` and sequence
/// number `first_seq - 1` (for verifying a page of a long chain).
pub fn verify_chain_from(
    keys: &MacKeys,
    prev_hash: &str,
    first_seq: i64,
    events: &[AuditEvent],
) -> Result<(), ChainBreak> {
    let mut prev = prev_hash;
    for (index, ev) in events.iter().enumerate() {
        let expected = first_seq + index as i64;
        let fail = |reason| Err(ChainBreak { index, seq: ev.seq, reason });
        match ev.expected_hash(keys, keyed_id(prev).is_some()) {
            Ok(hash) if hash == ev.hash => {}
            Ok(_) => return fail(ChainBreakReason::HashMismatch),
            Err(reason) => return fail(reason),
        }
        if ev.seq != expected {
            return fail(ChainBreakReason::BadSequence { expected, found: ev.seq });
        }
        if ev.prev_hash != prev {
            return fail(ChainBreakReason::BrokenLink);
        }
        prev = &ev.hash;
    }
    Ok(())
}

fn micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

fn truncate_to_micros(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000).unwrap_or(t)
}

/// The UTC time for a stored microsecond timestamp.
pub fn from_micros(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: usize) -> Vec<AuditEvent> {
        keyed_chain(None, n)
    }

    fn keyed_chain(key: Option<&MacKey>, n: usize) -> Vec<AuditEvent> {
        let mut out: Vec<AuditEvent> = Vec::new();
        for i in 0..n {
            let prev = out.last().map_or(GENESIS_HASH.to_owned(), |e| e.hash.clone());
            let draft = AuditDraft::new("token:ci", "key.lost", format!("key:{i}"))
                .detail(&serde_json::json!({"serial": format!("S{i}")}));
            out.push(draft.seal_with(key, i as i64 + 1, &prev, OffsetDateTime::now_utc()));
        }
        out
    }

    #[test]
    fn a_fresh_chain_verifies() {
        assert_eq!(verify_chain(&MacKeys::none(), &chain(5)), Ok(()));
        assert_eq!(verify_chain(&MacKeys::none(), &[]), Ok(()));
    }

    #[test]
    fn every_field_is_covered_by_the_hash() {
        type Tamper = fn(&mut AuditEvent);
        let tampers: &[(&str, Tamper)] = &[
            ("actor", |e| e.actor.push('x')),
            ("action", |e| e.action = "key.found".into()),
            ("subject", |e| e.subject.push('x')),
            ("outcome", |e| e.outcome = Outcome::Denied),
            ("detail", |e| e.detail = "{}".into()),
            ("at", |e| e.at += time::Duration::microseconds(1)),
            ("seq", |e| e.seq += 10),
            ("prev_hash", |e| e.prev_hash = GENESIS_HASH.into()),
        ];
        for (field, tamper) in tampers {
            let mut events = chain(4);
            tamper(&mut events[2]);
            let err = verify_chain(&MacKeys::none(), &events).unwrap_err();
            assert_eq!((err.index, err.reason), (2, ChainBreakReason::HashMismatch), "{field}");
        }
    }

    #[test]
    fn removing_or_reordering_events_is_detected() {
        let mut events = chain(4);
        events.remove(1);
        let err = verify_chain(&MacKeys::none(), &events).unwrap_err();
        assert_eq!(err.index, 1);
        assert!(matches!(err.reason, ChainBreakReason::BadSequence { expected: 2, found: 3 }));

        let mut events = chain(3);
        events.swap(1, 2);
        assert_eq!(verify_chain(&MacKeys::none(), &events).unwrap_err().index, 1);
    }

    #[test]
    fn a_rehashed_altered_event_still_breaks_the_link() {
        let mut events = chain(3);
        events[1].detail = "{\"serial\":\"forged\"}".into();
        events[1].hash = events[1].compute_hash();
        let err = verify_chain(&MacKeys::none(), &events).unwrap_err();
        assert_eq!((err.index, err.reason), (2, ChainBreakReason::BrokenLink));
        assert!(err.to_string().contains("event #3"));
    }

    #[test]
    fn a_page_verifies_from_its_predecessor() {
        let events = chain(6);
        assert_eq!(verify_chain_from(&MacKeys::none(), &events[2].hash, 4, &events[3..]), Ok(()));
        assert!(verify_chain_from(&MacKeys::none(), GENESIS_HASH, 4, &events[3..]).is_err());
    }

    #[test]
    fn stored_microseconds_round_trip_to_the_same_hash() {
        let ev = chain(1).remove(0);
        let mut reloaded = ev.clone();
        reloaded.at = from_micros(ev.at_micros());
        assert_eq!(reloaded.compute_hash(), ev.hash);
    }

    #[test]
    fn a_keyed_chain_needs_its_key_and_refuses_a_plain_tail() {
        let key = MacKey::new("k1", [5; 32]);
        let ring = MacKeys::new(MacKey::new("k1", [5; 32]), []);
        let mut events = keyed_chain(Some(&key), 4);
        assert!(events.iter().all(AuditEvent::is_keyed) && events[0].hash.starts_with("hmac:k1:"));
        assert_eq!(verify_chain(&ring, &events), Ok(()));
        let err = verify_chain(&MacKeys::none(), &events).unwrap_err();
        assert_eq!((err.index, err.reason), (0, ChainBreakReason::UnknownKey));
        let other = MacKeys::new(MacKey::new("k1", [6; 32]), []);
        assert_eq!(verify_chain(&other, &events).unwrap_err().reason, ChainBreakReason::HashMismatch);

        // Someone without the key edits event 3 and recomputes the tail with plain SHA-256.
        events[2].detail = "{\"serial\":\"forged\"}".into();
        events[2].hash = events[2].compute_hash();
        events[3].prev_hash = events[2].hash.clone();
        events[3].hash = events[3].compute_hash();
        let err = verify_chain(&ring, &events).unwrap_err();
        assert_eq!((err.index, err.reason), (2, ChainBreakReason::Downgrade));
    }

    #[test]
    fn plain_events_before_the_switch_still_verify() {
        let key = MacKey::new("k1", [5; 32]);
        let ring = MacKeys::new(MacKey::new("k1", [5; 32]), []);
        let mut events = chain(3);
        let next = AuditDraft::new("token:ci", "key.lost", "key:3").seal_with(
            Some(&key),
            4,
            &events[2].hash,
            OffsetDateTime::now_utc(),
        );
        events.push(next);
        assert_eq!(verify_chain(&ring, &events), Ok(()));
        assert!(!events[2].is_keyed() && events[3].is_keyed());
    }
}

//! Refused API requests (401, 403, 429) in the audit chain, aggregated.
//!
//! One audit event per refused request would let anyone without a token write to the chain as
//! fast as they can send requests, so refusals are counted in memory by (what, client address,
//! operation) and written as one `api.refused` event per window (a minute, from the server's
//! scheduler, and at shutdown). The table holds at most [`MAX_KEYS`] distinct keys; refusals
//! beyond that are counted together as `overflow`, so a flood from many addresses costs a fixed
//! amount of memory and still shows in the chain.

use std::collections::BTreeMap;
use std::sync::Mutex;

use keyward_core::{AuditDraft, Outcome};
use serde::Serialize;

use super::{Service, ServiceError};

/// Distinct (what, client, operation) keys kept per window.
pub const MAX_KEYS: usize = 1024;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Refusal {
    /// No valid token (401).
    Unauthenticated,
    /// A token without the permission, or a protected person (403).
    Forbidden,
    /// Too many failed authentications from the address (429).
    RateLimited,
}

/// The refusals counted since the last flush.
#[derive(Debug, Default)]
pub struct RefusalLog(Mutex<Window>);

#[derive(Debug, Default)]
struct Window {
    counts: BTreeMap<(Refusal, String, String), u64>,
    overflow: u64,
    since: Option<time::OffsetDateTime>,
}

/// One line of an `api.refused` event.
#[derive(Debug, Serialize)]
struct Counted<'a> {
    refusal: Refusal,
    client: &'a str,
    operation: &'a str,
    count: u64,
}

impl RefusalLog {
    /// Counts one refusal of `operation` (`METHOD /path/template`) from `client`.
    pub fn note(&self, refusal: Refusal, client: &str, operation: &str) {
        let mut w = self.0.lock().expect("refusal log poisoned");
        w.since.get_or_insert_with(time::OffsetDateTime::now_utc);
        let key = (refusal, client.to_owned(), operation.to_owned());
        if let Some(n) = w.counts.get_mut(&key) {
            *n += 1;
        } else if w.counts.len() < MAX_KEYS {
            w.counts.insert(key, 1);
        } else {
            w.overflow += 1;
        }
    }

    fn take(&self) -> Window {
        std::mem::take(&mut *self.0.lock().expect("refusal log poisoned"))
    }
}

impl Service {
    /// Writes the refusals counted since the last flush as one `api.refused` audit event (none
    /// when there were none); returns how many refusals it recorded.
    pub async fn flush_refusals(&self) -> Result<u64, ServiceError> {
        let window = self.refusals.take();
        let total = window.counts.values().sum::<u64>() + window.overflow;
        if total == 0 {
            return Ok(0);
        }
        let lines: Vec<Counted> = window
            .counts
            .iter()
            .map(|((refusal, client, operation), count)| Counted {
                refusal: *refusal,
                client,
                operation,
                count: *count,
            })
            .collect();
        let detail = serde_json::json!({
            "since": window.since.map(|t| t.unix_timestamp()),
            "total": total,
            "refused": lines,
            "overflow": window.overflow,
        });
        let draft =
            AuditDraft::new("system:api", "api.refused", "api").outcome(Outcome::Failure).detail(&detail);
        self.record(draft).await?;
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_from_many_addresses_costs_a_fixed_table() {
        let log = RefusalLog::default();
        for i in 0..(MAX_KEYS + 500) {
            log.note(
                Refusal::Unauthenticated,
                &format!("10.0.{}.{}", i / 256, i % 256),
                "GET /api/v1/people",
            );
        }
        for _ in 0..3 {
            log.note(Refusal::Forbidden, "10.0.0.0", "GET /api/v1/people");
        }
        let w = log.take();
        assert_eq!(w.counts.len(), MAX_KEYS);
        assert_eq!(w.overflow, 500 + 3, "a new key beyond the table is overflow");
        assert_eq!(w.counts.values().sum::<u64>(), MAX_KEYS as u64);
        assert!(log.take().counts.is_empty(), "taking empties the window");
    }
}

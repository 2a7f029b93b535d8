//! When and how long to wait before trying a call again.
//!
//! Graph says how long to wait on 429 (and usually on 503/504) with `Retry-After`, in
//! seconds that may be fractional (`2.128`); honouring it exactly is what keeps a throttled
//! client from digging deeper, since throttled requests are still metered. Without the
//! header the wait is capped exponential backoff with "equal jitter" (half fixed, half
//! random) so that many workers hit by the same failure do not retry in lockstep.

use std::time::Duration;

use rand::Rng;

use crate::config::RetryPolicy;

/// Parses `Retry-After` as (fractional) seconds; HTTP-date forms are not sent by Graph.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// The backoff before attempt `attempt + 1` (attempt counts from 1) without `Retry-After`.
pub fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exp = policy.base_delay.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let capped = exp.min(policy.max_delay);
    let half = capped / 2;
    let jitter = rand::thread_rng().gen_range(0.0..=1.0);
    half + half.mul_f64(jitter)
}

/// Whether a status is worth retrying at all (the service said "later").
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 429 | 503 | 504)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_fractions_and_refuses_junk() {
        let cases = [
            ("2", Some(2000)),
            ("2.128", Some(2128)),
            (" 0.05 ", Some(50)),
            ("-1", None),
            ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ];
        for (input, millis) in cases {
            assert_eq!(parse_retry_after(input).map(|d| d.as_millis() as u64), millis, "{input}");
        }
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered_within_half() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        for (attempt, full) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (30, 1000)] {
            for _ in 0..50 {
                let d = backoff(&policy, attempt).as_millis() as u64;
                assert!((full / 2..=full).contains(&d), "attempt {attempt}: {d} ms");
            }
        }
        let spread: std::collections::BTreeSet<u128> =
            (0..20).map(|_| backoff(&policy, 5).as_micros()).collect();
        assert!(spread.len() > 1, "jitter must vary the wait");
    }
}

//! Graph throttling as documented for the identity service (docs/entra-graph-api.md §8.1).
//!
//! Each app in the tenant has two token buckets: resource units (3 500 / 5 000 / 8 000
//! per 10 s by tenant size) and writes (3 000 per 2 min 30 s). A request costs its
//! documented resource units (GET `users` 2, group members 3, other reads 1, writes
//! 1 RU + 1 write; `$select` −1, `$expand` +1, `$top` < 20 −1; at least 1). When a
//! bucket cannot pay, the answer is 429 with a fractional `Retry-After` and the
//! `x-ms-throttle-*` headers. Throttled requests are still charged ("usage is still
//! metered while throttled"), so a client that ignores `Retry-After` digs itself deeper;
//! a client that honours it loses nothing.
//!
//! Choice where the spec is ambiguous: the identity limits are applied to
//! authentication-method calls too (the stricter reading of §8.1).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bucket sizes and windows; parsed from `--throttle`.
#[derive(Debug, Clone, PartialEq)]
pub struct ThrottleProfile {
    /// Whether throttling applies at all.
    pub enabled: bool,
    /// Resource units per window; `None` means by tenant size (S/M/L).
    pub resource_units: Option<(f64, Duration)>,
    /// Writes per window.
    pub writes: (f64, Duration),
}

impl Default for ThrottleProfile {
    fn default() -> Self {
        Self { enabled: true, resource_units: None, writes: (3000.0, Duration::from_secs(150)) }
    }
}

impl ThrottleProfile {
    /// Parses `real`, `off`, or a comma list of `ru=N/SECSs`, `writes=N/SECSs`,
    /// `size=small|medium|large`, e.g. `writes=50/1s,ru=500/1s`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut profile = Self::default();
        let text = text.trim();
        if text.is_empty() || text == "real" {
            return Ok(profile);
        }
        if text == "off" {
            profile.enabled = false;
            return Ok(profile);
        }
        for item in text.split(',') {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("throttle item `{item}` is not KEY=VALUE (try `writes=50/1s`)"))?;
            match key.trim() {
                "ru" => profile.resource_units = Some(parse_rate(value)?),
                "writes" => profile.writes = parse_rate(value)?,
                "size" => {
                    profile.resource_units = Some((
                        match value.trim() {
                            "small" | "s" => 3500.0,
                            "medium" | "m" => 5000.0,
                            "large" | "l" => 8000.0,
                            other => {
                                return Err(format!("unknown tenant size `{other}` (small, medium, large)"));
                            }
                        },
                        Duration::from_secs(10),
                    ))
                }
                other => return Err(format!("unknown throttle key `{other}` (ru, writes, size)")),
            }
        }
        Ok(profile)
    }
}

fn parse_rate(value: &str) -> Result<(f64, Duration), String> {
    let (count, window) =
        value.split_once('/').ok_or_else(|| format!("rate `{value}` is not COUNT/SECONDSs (e.g. 50/1s)"))?;
    let count: f64 = count.trim().parse().map_err(|_| format!("`{count}` is not a number"))?;
    let secs: f64 = window
        .trim()
        .trim_end_matches('s')
        .parse()
        .map_err(|_| format!("`{window}` is not a duration in seconds (e.g. 1.5s)"))?;
    if count < 1.0 || secs <= 0.0 {
        return Err(format!("rate `{value}` must allow at least 1 per a positive window"));
    }
    Ok((count, Duration::from_secs_f64(secs)))
}

/// The documented resource-unit quota for a tenant of `users` users.
pub fn quota_for_tenant_size(users: usize) -> f64 {
    match users {
        0..50 => 3500.0,
        50..=500 => 5000.0,
        _ => 8000.0,
    }
}

#[derive(Debug)]
struct Bucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new((capacity, window): (f64, Duration)) -> Self {
        Self { capacity, per_second: capacity / window.as_secs_f64(), tokens: capacity, last: Instant::now() }
    }
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.last = now;
    }
    fn wait_for(&self, cost: f64) -> f64 {
        ((cost - self.tokens) / self.per_second).max(0.001)
    }
    fn used_fraction(&self) -> f64 {
        1.0 - self.tokens / self.capacity
    }
}

/// What a request costs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    /// Resource units.
    pub resource_units: f64,
    /// Whether it is a write.
    pub write: bool,
}

/// The documented cost of a Graph request.
pub fn cost_of(method: &axum::http::Method, path: &str, query: &str) -> Cost {
    let write = method != axum::http::Method::GET && method != axum::http::Method::HEAD;
    let mut units: i32 = if write {
        1
    } else {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match segments.as_slice() {
            [_, "users"] => 2,
            [_, "groups", _, "members"] => 3,
            [_, "groups", _, "transitiveMembers"] => 5,
            _ => 1,
        }
    };
    if !write {
        let query = query.to_ascii_lowercase();
        let has = |key: &str| query.split('&').any(|p| p.starts_with(key));
        if has("$select=") || has("%24select=") {
            units -= 1;
        }
        if has("$expand=") || has("%24expand=") {
            units += 1;
        }
        let top = query
            .split('&')
            .find_map(|p| p.strip_prefix("$top=").or_else(|| p.strip_prefix("%24top=")))
            .and_then(|v| v.parse::<u32>().ok());
        if top.is_some_and(|t| t < 20) {
            units -= 1;
        }
    }
    Cost { resource_units: f64::from(units.max(1)), write }
}

/// A 429 decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Throttled {
    /// Seconds to wait.
    pub retry_after: f64,
    /// `ResourceUnitLimitExceeded` or `WriteLimitExceeded`.
    pub information: &'static str,
    /// `Read`, `Write`.
    pub kind: &'static str,
}

/// What an admitted request reports in headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted {
    /// Resource units charged.
    pub resource_units: f64,
    /// Highest bucket usage after this request, when above 80 %.
    pub limit_percentage: Option<f64>,
}

/// The buckets of every app.
#[derive(Debug)]
pub struct Throttle {
    profile: ThrottleProfile,
    tenant_users: usize,
    apps: Mutex<HashMap<String, (Bucket, Bucket)>>,
}

impl Throttle {
    /// Buckets for a tenant of `tenant_users` users.
    pub fn new(profile: ThrottleProfile, tenant_users: usize) -> Self {
        Self { profile, tenant_users, apps: Mutex::new(HashMap::new()) }
    }

    /// Charges `cost` to `app`, or says how long to wait.
    pub fn charge(&self, app: &str, cost: Cost) -> Result<Admitted, Throttled> {
        if !self.profile.enabled {
            return Ok(Admitted { resource_units: cost.resource_units, limit_percentage: None });
        }
        let now = Instant::now();
        let mut apps = self.apps.lock().unwrap_or_else(|p| p.into_inner());
        let (ru, writes) = apps.entry(app.to_ascii_lowercase()).or_insert_with(|| {
            let ru = self
                .profile
                .resource_units
                .unwrap_or((quota_for_tenant_size(self.tenant_users), Duration::from_secs(10)));
            (Bucket::new(ru), Bucket::new(self.profile.writes))
        });
        ru.refill(now);
        writes.refill(now);
        let ru_short = ru.tokens < cost.resource_units;
        let write_short = cost.write && writes.tokens < 1.0;
        // Metered even when refused.
        ru.tokens -= cost.resource_units;
        if cost.write {
            writes.tokens -= 1.0;
        }
        if write_short {
            return Err(Throttled {
                retry_after: writes.wait_for(1.0),
                information: "WriteLimitExceeded",
                kind: "Write",
            });
        }
        if ru_short {
            return Err(Throttled {
                retry_after: ru.wait_for(cost.resource_units),
                information: "ResourceUnitLimitExceeded",
                kind: if cost.write { "ReadWrite" } else { "Read" },
            });
        }
        let used = ru.used_fraction().max(if cost.write { writes.used_fraction() } else { 0.0 });
        Ok(Admitted {
            resource_units: cost.resource_units,
            limit_percentage: (used > 0.8).then_some((used * 10.0).round() / 10.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    #[test]
    fn documented_costs() {
        let cases = [
            (Method::GET, "/v1.0/users", "", 2.0, false),
            (Method::GET, "/v1.0/users", "$select=id", 1.0, false),
            (Method::GET, "/v1.0/users", "$top=5", 1.0, false),
            (Method::GET, "/v1.0/users", "$select=id&$top=5", 1.0, false),
            (Method::GET, "/v1.0/users", "$expand=memberOf", 3.0, false),
            (Method::GET, "/v1.0/groups/g/members", "", 3.0, false),
            (Method::GET, "/v1.0/groups/g/transitiveMembers", "", 5.0, false),
            (Method::GET, "/v1.0/users/u", "", 1.0, false),
            (Method::GET, "/v1.0/users/u", "$select=id", 1.0, false),
            (Method::POST, "/v1.0/users/u/authentication/fido2Methods", "", 1.0, true),
            (Method::DELETE, "/beta/users/u/authentication/fido2Methods/x", "", 1.0, true),
        ];
        for (method, path, query, units, write) in cases {
            let cost = cost_of(&method, path, query);
            assert_eq!(cost, Cost { resource_units: units, write }, "{method} {path}?{query}");
        }
    }

    #[test]
    fn profiles_parse_and_bad_ones_say_why() {
        let p = ThrottleProfile::parse("writes=50/1s,ru=500/0.5s").unwrap();
        assert_eq!(p.writes, (50.0, Duration::from_secs(1)));
        assert_eq!(p.resource_units, Some((500.0, Duration::from_millis(500))));
        assert!(!ThrottleProfile::parse("off").unwrap().enabled);
        assert!(ThrottleProfile::parse("writes=fast").unwrap_err().contains("COUNT/SECONDS"));
        assert!(ThrottleProfile::parse("bogus=1/1s").unwrap_err().contains("unknown throttle key"));
    }

    #[test]
    fn write_quota_refuses_with_a_retry_after_that_is_enough() {
        let throttle = Throttle::new(ThrottleProfile::parse("writes=3/1s").unwrap(), 10);
        let write = Cost { resource_units: 1.0, write: true };
        for _ in 0..3 {
            throttle.charge("app", write).unwrap();
        }
        let refused = throttle.charge("app", write).unwrap_err();
        assert_eq!(refused.information, "WriteLimitExceeded");
        assert!(refused.retry_after > 0.3 && refused.retry_after <= 0.7, "{}", refused.retry_after);
        // Another app has its own buckets.
        throttle.charge("other", write).unwrap();
    }

    #[test]
    fn tenant_size_classes() {
        assert_eq!(quota_for_tenant_size(10), 3500.0);
        assert_eq!(quota_for_tenant_size(50), 5000.0);
        assert_eq!(quota_for_tenant_size(501), 8000.0);
    }
}

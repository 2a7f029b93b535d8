//! Fault injection (`--faults`): what a flaky network and an overloaded service do.
//!
//! `--faults "503=0.05,504=0.05,reset=0.02,lost=0.2,seed=7,retry-after=1"` makes each
//! Graph request, independently and with the given probabilities: answer 503 or 504 with
//! `Retry-After`; drop the connection before doing anything (`reset`); or — for writes
//! only — do the work and then drop the connection (`lost`: committed, but the caller
//! never hears). Rolls come from one RNG seeded by `seed`, so a run is reproducible for
//! the same sequence of requests.

use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Probabilities of each fault; parsed from `--faults`.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    /// 503 Service Unavailable with Retry-After.
    pub unavailable: f64,
    /// 504 Gateway Timeout with Retry-After.
    pub gateway_timeout: f64,
    /// Connection dropped before the request is processed.
    pub reset: f64,
    /// Write processed, then the connection dropped (POST, PATCH, DELETE).
    pub lost: f64,
    /// RNG seed.
    pub seed: u64,
    /// Retry-After seconds sent with 503/504.
    pub retry_after: f64,
}

impl Default for FaultSpec {
    fn default() -> Self {
        Self { unavailable: 0.0, gateway_timeout: 0.0, reset: 0.0, lost: 0.0, seed: 0, retry_after: 1.0 }
    }
}

impl FaultSpec {
    /// Parses `KEY=VALUE,…` with keys `503`, `504`, `reset`, `lost`, `seed`, `retry-after`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut spec = Self::default();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("fault item `{item}` is not KEY=VALUE (try `503=0.1`)"))?;
            let number = || -> Result<f64, String> {
                value.trim().parse::<f64>().map_err(|_| format!("`{value}` in `{item}` is not a number"))
            };
            let rate = || -> Result<f64, String> {
                let r = number()?;
                if (0.0..=1.0).contains(&r) {
                    Ok(r)
                } else {
                    Err(format!("rate in `{item}` must be between 0 and 1"))
                }
            };
            match key.trim() {
                "503" => spec.unavailable = rate()?,
                "504" => spec.gateway_timeout = rate()?,
                "reset" => spec.reset = rate()?,
                "lost" => spec.lost = rate()?,
                "seed" => {
                    spec.seed =
                        value.trim().parse().map_err(|_| format!("seed `{value}` is not a whole number"))?
                }
                "retry-after" => spec.retry_after = number()?,
                other => {
                    return Err(format!(
                        "unknown fault `{other}` (503, 504, reset, lost, seed, retry-after)"
                    ));
                }
            }
        }
        if spec.unavailable + spec.gateway_timeout + spec.reset + spec.lost > 1.0 {
            return Err("fault rates add up to more than 1".into());
        }
        Ok(spec)
    }

    /// Whether any fault can happen.
    pub fn any(&self) -> bool {
        self.unavailable + self.gateway_timeout + self.reset + self.lost > 0.0
    }
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Serve normally.
    None,
    /// Answer 503 with Retry-After.
    Unavailable(f64),
    /// Answer 504 with Retry-After.
    GatewayTimeout(f64),
    /// Drop the connection without processing.
    Reset,
    /// Process, then drop the connection.
    Lost,
}

/// The seeded dice.
#[derive(Debug)]
pub struct Faults {
    dice: Mutex<(FaultSpec, StdRng)>,
}

impl Faults {
    /// Dice for a spec.
    pub fn new(spec: FaultSpec) -> Self {
        let rng = StdRng::seed_from_u64(spec.seed);
        Self { dice: Mutex::new((spec, rng)) }
    }

    /// Replaces the spec (and reseeds), e.g. to turn faults on after a test's set-up.
    pub fn set(&self, spec: FaultSpec) {
        let rng = StdRng::seed_from_u64(spec.seed);
        *self.dice.lock().unwrap_or_else(|p| p.into_inner()) = (spec, rng);
    }

    /// Rolls for one request; `write` says whether `lost` can apply.
    pub fn roll(&self, write: bool) -> Fault {
        let mut dice = self.dice.lock().unwrap_or_else(|p| p.into_inner());
        let (s, rng) = &mut *dice;
        if !s.any() {
            return Fault::None;
        }
        let r: f64 = rng.r#gen();
        let mut edge = s.unavailable;
        if r < edge {
            return Fault::Unavailable(s.retry_after);
        }
        edge += s.gateway_timeout;
        if r < edge {
            return Fault::GatewayTimeout(s.retry_after);
        }
        edge += s.reset;
        if r < edge {
            return Fault::Reset;
        }
        edge += s.lost;
        if write && r < edge {
            return Fault::Lost;
        }
        Fault::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_with_reasons() {
        let spec = FaultSpec::parse("503=0.1, lost=0.2,seed=9").unwrap();
        assert_eq!((spec.unavailable, spec.lost, spec.seed), (0.1, 0.2, 9));
        assert!(FaultSpec::parse("503=2").unwrap_err().contains("between 0 and 1"));
        assert!(FaultSpec::parse("boom=0.1").unwrap_err().contains("unknown fault"));
        assert!(FaultSpec::parse("503=0.6,504=0.6").unwrap_err().contains("more than 1"));
    }

    #[test]
    fn same_seed_same_faults_and_rates_roughly_hold() {
        let spec = FaultSpec::parse("503=0.2,lost=0.2,seed=42").unwrap();
        let a: Vec<Fault> = {
            let f = Faults::new(spec.clone());
            (0..1000).map(|_| f.roll(true)).collect()
        };
        let b: Vec<Fault> = {
            let f = Faults::new(spec);
            (0..1000).map(|_| f.roll(true)).collect()
        };
        assert_eq!(a, b);
        let lost = a.iter().filter(|f| **f == Fault::Lost).count();
        assert!((150..250).contains(&lost), "{lost}");
    }

    #[test]
    fn reads_are_never_lost() {
        let faults = Faults::new(FaultSpec::parse("lost=1").unwrap());
        assert_eq!(faults.roll(false), Fault::None);
        assert_eq!(faults.roll(true), Fault::Lost);
    }
}

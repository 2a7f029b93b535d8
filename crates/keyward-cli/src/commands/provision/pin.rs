//! The PIN a provisioned key gets: generated from the operating system's CSPRNG, or typed by
//! the operator.
//!
//! A generated PIN is uniform over its charset (`rand`'s `OsRng` with rejection-free
//! `gen_range`), at least as long as the strictest of the enrollment policy, the key's
//! minPINLength and our floor of 6, and never one of the PINs people guess first: one symbol
//! repeated (`111111`), a run up or down (`123456`, `987654`) or a short pattern repeated
//! (`121212`, `123123`). Keys refuse such PINs too (PIN_POLICY_VIOLATION), but only some of
//! them, so the check is ours. PINs live in [`SecretString`]s from the moment they exist.

use rand::Rng;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};

/// The shortest PIN Keyward generates, whatever the policy says.
pub const DEFAULT_MIN_LENGTH: usize = 6;

/// Which symbols a generated PIN uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Charset {
    /// 0–9, easy to type on any keyboard.
    #[default]
    Digits,
    /// Letters and digits without look-alikes (no 0/O, 1/l/I).
    Alnum,
}

impl Charset {
    fn symbols(self) -> &'static [u8] {
        match self {
            Self::Digits => b"0123456789",
            Self::Alnum => b"23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ",
        }
    }
}

/// How random PINs are made: charset and the operator's wished length.
#[derive(Debug, Clone, Copy, Default)]
pub struct PinGenerator {
    /// Symbols to draw from.
    pub charset: Charset,
    /// Wished length; the result is never shorter than the policy and key minimums.
    pub length: Option<usize>,
}

impl PinGenerator {
    /// The length to generate for a policy minimum and a key minimum.
    pub fn length_for(&self, policy_min: usize, key_min: usize) -> usize {
        self.length.unwrap_or(0).max(policy_min).max(key_min).clamp(DEFAULT_MIN_LENGTH, 63)
    }

    /// A fresh random PIN of `length` symbols that is not trivial.
    pub fn generate(&self, length: usize) -> SecretString {
        let symbols = self.charset.symbols();
        loop {
            let pin: String =
                (0..length).map(|_| symbols[OsRng.gen_range(0..symbols.len())] as char).collect();
            let pin = SecretString::from(pin);
            if !is_trivial(pin.expose_secret()) {
                return pin;
            }
        }
    }
}

/// Whether a PIN is one people guess first: a repeated symbol, a run up or down, or a pattern
/// of up to three symbols repeated.
pub fn is_trivial(pin: &str) -> bool {
    let b = pin.as_bytes();
    if b.len() < 2 {
        return true;
    }
    let steps: Vec<i16> = b.windows(2).map(|w| i16::from(w[1]) - i16::from(w[0])).collect();
    let run = steps.iter().all(|&s| s == steps[0] && s.abs() <= 1);
    let pattern = (1..=3).any(|p| b.len() >= 2 * p && b.iter().enumerate().all(|(i, c)| *c == b[i % p]));
    run || pattern
}

/// Why a typed PIN cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PinInputError {
    /// Shorter than the policy or the key allows.
    #[error("the PIN is too short: this key and policy need at least {min} characters; choose a longer one")]
    TooShort {
        /// The minimum.
        min: usize,
    },
    /// Longer than CTAP allows (63 bytes).
    #[error("the PIN is too long: at most 63 bytes; choose a shorter one")]
    TooLong,
    /// Trivial.
    #[error(
        "the PIN is too easy to guess (a repeated digit, a run like 123456 or a repeated pattern); choose another"
    )]
    Trivial,
}

/// Checks a PIN the operator chose against the minimum length and the triviality rules.
pub fn check_given(pin: &SecretString, min: usize) -> Result<(), PinInputError> {
    let p = pin.expose_secret();
    if p.chars().count() < min {
        return Err(PinInputError::TooShort { min });
    }
    if p.len() > 63 {
        return Err(PinInputError::TooLong);
    }
    if is_trivial(p) {
        return Err(PinInputError::Trivial);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trivial_pins_are_recognised() {
        let table = [
            ("123456", true),
            ("654321", true),
            ("111111", true),
            ("000000", true),
            ("121212", true),
            ("123123", true),
            ("abcdef", true),
            ("aaaaaaaa", true),
            ("1", true),
            ("135790", false),
            ("271828", false),
            ("482910", false),
            ("12345a", false),
            ("Kx7m2p", false),
        ];
        for (pin, trivial) in table {
            assert_eq!(is_trivial(pin), trivial, "{pin}");
        }
    }

    #[test]
    fn generated_pins_respect_the_length_and_charset_and_differ() {
        let g = PinGenerator { charset: Charset::Digits, length: None };
        assert_eq!(g.length_for(4, 4), 6);
        assert_eq!(g.length_for(8, 4), 8);
        assert_eq!(g.length_for(4, 10), 10);
        assert_eq!(PinGenerator { length: Some(12), ..g }.length_for(8, 4), 12);
        assert_eq!(PinGenerator { length: Some(4), ..g }.length_for(4, 4), 6);
        let pins: Vec<String> = (0..50).map(|_| g.generate(6).expose_secret().to_owned()).collect();
        for p in &pins {
            assert_eq!(p.len(), 6);
            assert!(p.bytes().all(|c| c.is_ascii_digit()) && !is_trivial(p), "{p}");
        }
        let distinct: std::collections::BTreeSet<_> = pins.iter().collect();
        assert!(distinct.len() > 45, "random PINs repeat: {distinct:?}");
        let a = PinGenerator { charset: Charset::Alnum, length: None }.generate(10);
        assert!(a.expose_secret().bytes().all(|c| c.is_ascii_alphanumeric()));
        assert!(!a.expose_secret().contains(['0', 'O', '1', 'l', 'I']));
    }

    #[test]
    fn given_pins_are_checked() {
        let s = |p: &str| SecretString::from(p.to_owned());
        assert!(matches!(check_given(&s("2718"), 6), Err(PinInputError::TooShort { min: 6 })));
        assert!(matches!(check_given(&s("123456"), 6), Err(PinInputError::Trivial)));
        assert!(matches!(check_given(&s(&"7".repeat(64)), 6), Err(PinInputError::TooLong)));
        assert!(check_given(&s("271828"), 6).is_ok());
    }
}

//! Hostile input for the parsers that read outside bytes: generators of arbitrary and
//! nearly-valid bytes, CBOR and JSON, and [`check`], the one runner every parser's property goes
//! through.
//!
//! [`check`] takes its case count from proptest's own knob, `PROPTEST_CASES` (256 when unset, so
//! `cargo test` stays quick); `bench/fuzz.sh` sets it to 100 000 and reads the line [`check`]
//! prints — `fuzz <parser>: <cases> cases, <panics> panics` — for each parser. A panic in the
//! parser is caught, counted, and fails the property with proptest's shrunk input, so the report
//! names the smallest input that panicked. No failure file is written: a property that fails is
//! turned into a named regression test beside the parser.
//!
//! proptest rather than `arbitrary` + cargo-fuzz: it runs on stable Rust inside `cargo test`,
//! shrinks failures, and builds structured inputs (CBOR maps with the right keys, JSON objects
//! with the right members) that random bytes would almost never reach.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};

use ciborium::Value as Cbor;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value as Json;

/// Cases per property when `PROPTEST_CASES` is unset.
pub const DEFAULT_CASES: u32 = 256;

/// Runs `property` on inputs from `strategy` (`PROPTEST_CASES` of them, default
/// [`DEFAULT_CASES`]); prints `fuzz <parser>: N cases, P panics` and panics if any case failed
/// or panicked, with the smallest failing input proptest found.
pub fn check<S>(parser: &str, strategy: S, property: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(DEFAULT_CASES);
    let config = Config { cases, failure_persistence: None, max_shrink_iters: 2_000, ..Config::default() };
    let ran = AtomicU64::new(0);
    let panics = AtomicU64::new(0);
    let outcome = TestRunner::new(config).run(&strategy, |input| {
        ran.fetch_add(1, Ordering::Relaxed);
        match catch_unwind(AssertUnwindSafe(|| property(input))) {
            Ok(result) => result,
            Err(payload) => {
                panics.fetch_add(1, Ordering::Relaxed);
                let text = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                Err(TestCaseError::fail(format!("the parser panicked: {text}")))
            }
        }
    });
    println!(
        "fuzz {parser}: {} cases, {} panics",
        ran.load(Ordering::Relaxed),
        panics.load(Ordering::Relaxed)
    );
    if let Err(failure) = outcome {
        panic!("{parser}: {failure}");
    }
}

/// Up to `max` arbitrary bytes.
pub fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> + Clone {
    proptest::collection::vec(any::<u8>(), 0..=max)
}

/// `valid` damaged the ways a broken or hostile peer damages a message: cut short, bits
/// flipped, bytes inserted, lengths overwritten with extremes; sometimes left intact.
pub fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = valid.len();
    let edits = proptest::collection::vec((0..=len, any::<u8>(), 0u8..5), 0..6);
    (edits, 0..=len).prop_map(move |(edits, cut)| {
        let mut out = valid.clone();
        for (at, byte, kind) in edits {
            let at = at.min(out.len());
            match kind {
                0 if at < out.len() => out[at] ^= byte | 1,
                1 => out.insert(at, byte),
                2 if at < out.len() => {
                    out.remove(at);
                }
                // An extreme length or count: CBOR's 8-byte argument, all ones.
                3 => {
                    out.splice(at..at, [0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).for_each(drop)
                }
                _ if at < out.len() => out[at] = byte,
                _ => {}
            }
        }
        if cut < len / 4 {
            out.truncate(cut * 4);
        }
        out
    })
}

/// Integers at and around the edges of every width a parser might store them in.
pub fn edge_integer() -> impl Strategy<Value = i128> + Clone {
    prop_oneof![
        Just(0i128),
        Just(-1),
        Just(i128::from(u8::MAX) + 1),
        Just(i128::from(u16::MAX) + 1),
        Just(i128::from(i32::MAX) + 1),
        Just(i128::from(u32::MAX) + 1),
        Just(i128::from(i64::MAX)),
        Just(i128::from(i64::MAX) + 1),
        Just(i128::from(u64::MAX)),
        Just(i128::from(i64::MIN)),
        Just(-i128::from(u64::MAX) - 1),
        any::<i64>().prop_map(i128::from),
        (-300i128..300),
    ]
}

/// Any CBOR value, up to a few levels deep; map keys are mostly small integers (CTAP's
/// parameter maps) or short text (WebAuthn's), so parsers look past their first check.
pub fn cbor() -> impl Strategy<Value = Cbor> + Clone {
    let leaf = prop_oneof![
        edge_integer().prop_map(|i| Cbor::Integer(i.try_into().unwrap_or(0.into()))),
        bytes(80).prop_map(Cbor::Bytes),
        text().prop_map(Cbor::Text),
        any::<bool>().prop_map(Cbor::Bool),
        Just(Cbor::Null),
        any::<f64>().prop_map(Cbor::Float),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Cbor::Array),
            proptest::collection::vec((cbor_key(), inner.clone()), 0..8).prop_map(Cbor::Map),
            (any::<u64>(), inner).prop_map(|(tag, v)| Cbor::Tag(tag, Box::new(v))),
        ]
    })
}

/// A map key: a CTAP parameter number, a negative COSE label, or a WebAuthn member name.
fn cbor_key() -> impl Strategy<Value = Cbor> + Clone {
    prop_oneof![
        4 => (-8i64..24).prop_map(|k| Cbor::Integer(k.into())),
        2 => prop::sample::select(vec!["fmt", "authData", "attStmt", "alg", "sig", "x5c", "id", "name",
            "displayName", "type", "hmac-secret", "credProtect", "credBlob", "largeBlobKey", "minPinLength",
            "rk", "uv", "up", "plat", "clientPin", "pinUvAuthToken", "ecdaaKeyId"])
            .prop_map(|k| Cbor::Text(k.to_owned())),
        1 => text().prop_map(Cbor::Text),
    ]
}

/// A CTAP parameter map (integer keys 1..=15 with arbitrary values), as a command's body.
pub fn ctap_params() -> impl Strategy<Value = Cbor> + Clone {
    proptest::collection::vec((1i64..16, cbor()), 0..8).prop_map(|entries| {
        Cbor::Map(entries.into_iter().map(|(k, v)| (Cbor::Integer(k.into()), v)).collect())
    })
}

/// The CBOR encoding of `value`.
pub fn encode_cbor(value: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("CBOR into a Vec cannot fail");
    out
}

/// Arbitrary bytes, an arbitrary CBOR item, or an arbitrary CBOR item damaged.
pub fn cbor_bytes() -> impl Strategy<Value = Vec<u8>> + Clone {
    prop_oneof![
        bytes(200),
        cbor().prop_map(|v| encode_cbor(&v)),
        (cbor(), any::<usize>()).prop_map(|(v, cut)| {
            let mut b = encode_cbor(&v);
            b.truncate(cut % (b.len() + 1));
            b
        }),
    ]
}

/// Short text with the characters that break naive code: empty, quotes, separators, control
/// characters, non-ASCII, spreadsheet formula starters.
pub fn text() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        Just(String::new()),
        "[ -~]{0,24}",
        "[\u{0}-\u{1f}\"',;=+@\\-\t\r\n\u{80}-\u{10ffff}]{0,8}",
        "[a-z]{1,10}@[a-z]{1,8}\\.[a-z]{2,4}",
        ".{0,40}",
    ]
}

/// Any JSON value, a few levels deep, with edge numbers and hostile strings.
pub fn json() -> impl Strategy<Value = Json> + Clone {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        edge_integer().prop_map(json_integer),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)),
        text().prop_map(Json::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            proptest::collection::vec((text(), inner), 0..6)
                .prop_map(|members| Json::Object(members.into_iter().collect())),
        ]
    })
}

/// A JSON integer; outside i64/u64 it is written as a float, as a JSON parser would read it.
fn json_integer(i: i128) -> Json {
    if let Ok(v) = i64::try_from(i) {
        Json::from(v)
    } else if let Ok(v) = u64::try_from(i) {
        Json::from(v)
    } else {
        serde_json::Number::from_f64(i as f64).map_or(Json::Null, Json::Number)
    }
}

/// A JSON object with some of `members` (each holding any JSON value or an edge case of the
/// usual types) and sometimes a member nobody asked for: what a fuzzer reading the API's
/// schema sends.
pub fn json_object_with(members: &'static [&'static str]) -> impl Strategy<Value = Json> + Clone {
    let value = prop_oneof![
        3 => json(),
        1 => edge_integer().prop_map(json_integer),
        1 => Just(Json::String(String::new())),
        1 => "[a-z]{1,10}@[a-z]{1,8}\\.com".prop_map(Json::String),
        1 => "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}".prop_map(Json::String),
    ];
    // `select` needs something to choose from; an operation without members gets `{}` plus noise.
    let names: Vec<&'static str> = if members.is_empty() { vec!["_"] } else { members.to_vec() };
    (
        proptest::collection::vec((prop::sample::select(names), value), 0..=members.len()),
        prop::option::of(text()),
    )
        .prop_map(|(chosen, extra)| {
            let mut object: serde_json::Map<String, Json> =
                chosen.into_iter().map(|(k, v)| ((*k).to_owned(), v)).collect();
            if let Some(extra) = extra {
                object.insert(extra, Json::Null);
            }
            Json::Object(object)
        })
}

//! CBOR helpers for the client: building canonical requests, reading answers, and locating
//! the raw bytes of map values so the attestation statement is passed on byte for byte.

use ciborium::value::{Integer, Value};

/// Encodes a value after sorting its maps in CTAP2 canonical order.
pub fn encode(value: Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(&canonical(value), &mut out).expect("writing CBOR to a Vec");
    out
}

/// Sorts map entries recursively in CTAP2 canonical order (RFC 7049 §3.9 as CTAP 2.1 §8
/// uses it): by the encoded key, shorter encodings first, then bytewise.
pub fn canonical(value: Value) -> Value {
    fn key_order(key: &Value) -> (usize, Vec<u8>) {
        let mut encoded = Vec::new();
        ciborium::ser::into_writer(key, &mut encoded).expect("writing CBOR to a Vec");
        (encoded.len(), encoded)
    }
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        Value::Map(entries) => {
            let mut sorted: Vec<(Value, Value)> =
                entries.into_iter().map(|(k, v)| (k, canonical(v))).collect();
            sorted.sort_by_cached_key(|(k, _)| key_order(k));
            Value::Map(sorted)
        }
        other => other,
    }
}

/// A map with integer keys.
pub fn imap(entries: Vec<(i64, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (Value::Integer(k.into()), v)).collect())
}

/// A map with text keys.
pub fn tmap(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (Value::Text(k.into()), v)).collect())
}

/// An integer value.
pub fn int(i: i64) -> Value {
    Value::Integer(i.into())
}

/// The value under an integer key of a decoded map.
pub fn get_int_key(map: &[(Value, Value)], key: i64) -> Option<&Value> {
    let key = Integer::from(key);
    map.iter().find(|(k, _)| k.as_integer() == Some(key)).map(|(_, v)| v)
}

/// The value under a text key of a decoded map.
pub fn get_text_key<'a>(map: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    map.iter().find(|(k, _)| k.as_text() == Some(key)).map(|(_, v)| v)
}

/// Length argument and header size of the item at the start of `b`.
fn header(b: &[u8]) -> Option<(u8, u64, usize)> {
    let first = *b.first()?;
    let (major, info) = (first >> 5, first & 0x1F);
    let (arg, n) = match info {
        0..=23 => (u64::from(info), 1),
        24 => (u64::from(*b.get(1)?), 2),
        25 => (u64::from(u16::from_be_bytes(b.get(1..3)?.try_into().ok()?)), 3),
        26 => (u64::from(u32::from_be_bytes(b.get(1..5)?.try_into().ok()?)), 5),
        27 => (u64::from_be_bytes(b.get(1..9)?.try_into().ok()?), 9),
        _ => return None, // indefinite lengths never appear in CTAP2 canonical CBOR
    };
    Some((major, arg, n))
}

/// Byte length of the single CBOR item at the start of `b`.
pub fn item_len(b: &[u8]) -> Option<usize> {
    let (major, arg, mut n) = header(b)?;
    match major {
        0 | 1 | 7 => {}
        2 | 3 => n = n.checked_add(usize::try_from(arg).ok()?)?,
        4 | 5 => {
            let items = if major == 5 { arg.checked_mul(2)? } else { arg };
            for _ in 0..items {
                n += item_len(b.get(n..)?)?;
            }
        }
        6 => n += item_len(b.get(n..)?)?,
        _ => return None,
    }
    (n <= b.len()).then_some(n)
}

/// The raw encoded value of each small-integer key of a top-level CBOR map.
pub fn raw_int_map(b: &[u8]) -> Option<Vec<(i64, &[u8])>> {
    let (major, count, mut pos) = header(b)?;
    if major != 5 {
        return None;
    }
    let mut out = Vec::new();
    for _ in 0..count {
        let klen = item_len(b.get(pos..)?)?;
        let key: Value = ciborium::de::from_reader(&b[pos..pos + klen]).ok()?;
        pos += klen;
        let vlen = item_len(b.get(pos..)?)?;
        let key = key.as_integer().and_then(|i| i64::try_from(i).ok())?;
        out.push((key, &b[pos..pos + vlen]));
        pos += vlen;
    }
    (pos == b.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_values_are_found_byte_exactly() {
        let v = imap(vec![
            (1, Value::Text("packed".into())),
            (2, Value::Bytes(vec![7; 300])),
            (3, tmap(vec![("alg", int(-7)), ("x5c", Value::Array(vec![Value::Bytes(vec![1; 30])]))])),
        ]);
        let bytes = encode(v.clone());
        let raw = raw_int_map(&bytes).unwrap();
        assert_eq!(raw.len(), 3);
        let Value::Map(m) = v else { unreachable!() };
        for ((k, r), (_, val)) in raw.iter().zip(m) {
            let mut enc = Vec::new();
            ciborium::ser::into_writer(&val, &mut enc).unwrap();
            assert_eq!(*r, enc.as_slice(), "key {k}");
        }
        assert!(raw_int_map(&bytes[..bytes.len() - 1]).is_none());
    }
}

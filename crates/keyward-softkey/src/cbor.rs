//! Small CBOR helpers: typed access to CTAP's integer-keyed request maps and CTAP2 canonical
//! encoding of answers (map keys sorted shorter-first, then bytewise; minimal integer forms).

use ciborium::value::{Integer, Value};

use crate::status::{CtapResult, Status};

/// Encodes a value after sorting all its maps canonically.
pub fn encode(value: Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(&canonical(value), &mut out).expect("writing CBOR to a Vec");
    out
}

fn encode_raw(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out).expect("writing CBOR to a Vec");
    out
}

/// Sorts map entries recursively in CTAP2 canonical order.
pub fn canonical(value: Value) -> Value {
    match value {
        Value::Map(entries) => {
            let mut e: Vec<(Vec<u8>, Value, Value)> =
                entries.into_iter().map(|(k, v)| (encode_raw(&k), k, canonical(v))).collect();
            e.sort_by(|a, b| (a.0.len(), &a.0).cmp(&(b.0.len(), &b.0)));
            Value::Map(e.into_iter().map(|(_, k, v)| (k, v)).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        v => v,
    }
}

/// Builds a map with integer keys.
pub fn imap(entries: Vec<(i64, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (Value::Integer(k.into()), v)).collect())
}

/// Builds a map with text keys.
pub fn tmap(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (Value::Text(k.into()), v)).collect())
}

/// An integer value.
pub fn int(i: i64) -> Value {
    Value::Integer(i.into())
}

/// Looks up a text key in a decoded map.
pub fn text_key<'a>(map: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    map.iter().find(|(k, _)| k.as_text() == Some(key)).map(|(_, v)| v)
}

/// Reads an integer value as i64.
pub fn as_i64(v: &Value) -> CtapResult<i64> {
    v.as_integer().and_then(|i| i64::try_from(i).ok()).ok_or(Status::CborUnexpectedType)
}

/// The parameters of a CTAP command: a CBOR map with integer keys.
#[derive(Debug, Default)]
pub struct Args(Vec<(Value, Value)>);

impl Args {
    /// Decodes the parameter map (an empty body means no parameters).
    pub fn parse(body: &[u8]) -> CtapResult<Self> {
        if body.is_empty() {
            return Ok(Self::default());
        }
        match ciborium::de::from_reader::<Value, _>(body) {
            Ok(Value::Map(m)) => Ok(Self(m)),
            Ok(_) => Err(Status::CborUnexpectedType),
            Err(_) => Err(Status::InvalidCbor),
        }
    }

    /// The raw value under an integer key.
    pub fn get(&self, key: i64) -> Option<&Value> {
        let key = Integer::from(key);
        self.0.iter().find(|(k, _)| k.as_integer() == Some(key)).map(|(_, v)| v)
    }

    /// A byte-string parameter.
    pub fn bytes(&self, key: i64) -> CtapResult<Option<&[u8]>> {
        self.get(key)
            .map(|v| v.as_bytes().map(|b| b.as_slice()).ok_or(Status::CborUnexpectedType))
            .transpose()
    }

    /// A text parameter.
    pub fn text(&self, key: i64) -> CtapResult<Option<&str>> {
        self.get(key).map(|v| v.as_text().ok_or(Status::CborUnexpectedType)).transpose()
    }

    /// An unsigned integer parameter.
    pub fn uint(&self, key: i64) -> CtapResult<Option<u64>> {
        self.get(key)
            .map(|v| v.as_integer().and_then(|i| u64::try_from(i).ok()).ok_or(Status::CborUnexpectedType))
            .transpose()
    }

    /// A map parameter.
    pub fn map(&self, key: i64) -> CtapResult<Option<&[(Value, Value)]>> {
        self.get(key).map(|v| v.as_map().map(|m| m.as_slice()).ok_or(Status::CborUnexpectedType)).transpose()
    }

    /// An array parameter.
    pub fn array(&self, key: i64) -> CtapResult<Option<&[Value]>> {
        self.get(key)
            .map(|v| v.as_array().map(|a| a.as_slice()).ok_or(Status::CborUnexpectedType))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_orders_shorter_keys_first() {
        let v = tmap(vec![("authData", int(1)), ("fmt", int(2)), ("attStmt", int(3))]);
        let bytes = encode(v);
        let fmt = bytes.windows(3).position(|w| w == b"fmt").unwrap();
        let att = bytes.windows(7).position(|w| w == b"attStmt").unwrap();
        let auth = bytes.windows(8).position(|w| w == b"authData").unwrap();
        assert!(fmt < att && att < auth);
        let v = imap(vec![(-3, int(0)), (-1, int(0)), (3, int(0)), (1, int(0)), (-2, int(0))]);
        assert_eq!(
            encode(v)[1..].iter().step_by(2).copied().collect::<Vec<_>>(),
            vec![1, 3, 0x20, 0x21, 0x22]
        );
    }
}

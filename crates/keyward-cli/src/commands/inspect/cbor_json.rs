//! CBOR values as JSON, for showing authenticator extensions: byte strings become base64url,
//! map keys become their text, tags are shown by their content. Lossy on purpose — it is for
//! reading, never for re-encoding.

use ciborium::Value as Cbor;
use serde_json::Value;

/// The JSON rendering of a CBOR value.
pub fn to_json(v: Cbor) -> Value {
    match v {
        Cbor::Integer(i) => {
            let i = i128::from(i);
            i64::try_from(i).map(Value::from).unwrap_or_else(|_| Value::String(i.to_string()))
        }
        Cbor::Bytes(b) => Value::String(keyward_webauthn::b64::encode(&b)),
        Cbor::Float(f) => serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null),
        Cbor::Text(t) => Value::String(t),
        Cbor::Bool(b) => Value::Bool(b),
        Cbor::Null => Value::Null,
        Cbor::Tag(_, inner) => to_json(*inner),
        Cbor::Array(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Cbor::Map(entries) => Value::Object(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let key = match to_json(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

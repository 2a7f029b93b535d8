//! Redaction for the HTTP debug log.
//!
//! With `httpDebug` on, every exchange is logged with headers and bodies, because that is
//! what an operator needs when Entra says no. Bearer tokens, client secrets, client
//! assertions, PINs and Temporary Access Pass values must never reach a log, so values are
//! removed by *name* (JSON keys, form fields, headers) and, as a second line of defence,
//! anything shaped like a JWT (`eyJ…​.…​.…`) is masked wherever it appears in text.
//!
//! Hand-written instead of the `regex` crate: the JWT scan is a dozen lines, and a regex
//! engine for one pattern is a large dependency on the hot path of every logged call.

use serde_json::Value;

/// What replaces a removed value.
pub const REDACTED: &str = "[REDACTED]";

/// Keys whose values are secrets, compared case-insensitively with `-`/`_` ignored.
const SECRET_KEYS: &[&str] = &[
    "authorization",
    "clientsecret",
    "clientassertion",
    "accesstoken",
    "idtoken",
    "refreshtoken",
    "temporaryaccesspass",
    "pin",
    "newpin",
    "password",
    "codeverifier",
    "privatekey",
    "privatekeypem",
    "assertion",
];

/// Whether a header, form field or JSON key names a secret.
pub fn is_secret_key(key: &str) -> bool {
    let folded: String =
        key.chars().filter(|c| *c != '-' && *c != '_').map(|c| c.to_ascii_lowercase()).collect();
    SECRET_KEYS.contains(&folded.as_str())
}

/// A JSON value with every secret-named value replaced, and JWT-shaped strings masked.
pub fn json(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_secret_key(k) && !v.is_null() { Value::from(REDACTED) } else { json(v) };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(json).collect()),
        Value::String(s) => Value::String(text(s)),
        other => other.clone(),
    }
}

/// Form fields as `k=v&…` with secret fields replaced.
pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| if is_secret_key(k) { format!("{k}={REDACTED}") } else { format!("{k}={}", text(v)) })
        .collect::<Vec<_>>()
        .join("&")
}

/// A body of unknown type: JSON is redacted by key, anything else has JWTs masked.
pub fn body(raw: &str) -> String {
    match serde_json::from_str::<Value>(raw) {
        Ok(value) => json(&value).to_string(),
        Err(_) => text(raw),
    }
}

/// Headers as `name: value` lines with secret-named ones replaced.
pub fn headers(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .iter()
        .map(|(name, value)| {
            let value = if is_secret_key(name.as_str()) {
                REDACTED.to_owned()
            } else {
                text(value.to_str().unwrap_or("<binary>"))
            };
            format!("{name}: {value}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Masks every JWT-shaped run (`eyJ` + three base64url segments) in `s`.
pub fn text(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"eyJ")
            && let Some(len) = jwt_len(&bytes[i..])
        {
            out.push_str(REDACTED);
            i += len;
            continue;
        }
        let ch = s[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8().max(1);
    }
    out
}

/// The length of a JWT at the start of `b` (at least two dots, segments base64url).
fn jwt_len(b: &[u8]) -> Option<usize> {
    let is_b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    let mut dots = 0;
    let mut i = 0;
    while i < b.len() && (is_b64(b[i]) || b[i] == b'.') {
        if b[i] == b'.' {
            dots += 1;
        }
        i += 1;
    }
    (dots >= 2 && i > 20).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_removed_by_name_and_jwts_by_shape() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        let cases = [
            (r#"{"temporaryAccessPass":"Abc12345","id":"x"}"#, "Abc12345"),
            (r#"{"access_token":"opaque-token-value","expires_in":3599}"#, "opaque-token-value"),
            (r#"{"nested":[{"pin":"123456"}]}"#, "123456"),
            ("plain text with eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl inside", "c2lnbmF0dXJl"),
        ];
        for (input, secret) in cases {
            let out = body(input);
            assert!(!out.contains(secret), "{input} -> {out}");
            assert!(out.contains(REDACTED), "{out}");
        }
        assert_eq!(
            form(&[("client_id", "app"), ("client_secret", "s"), ("client_assertion", jwt)]),
            "client_id=app&client_secret=[REDACTED]&client_assertion=[REDACTED]"
        );
        assert_eq!(body(r#"{"id":"abc","displayName":"Key"}"#), r#"{"displayName":"Key","id":"abc"}"#);
    }
}

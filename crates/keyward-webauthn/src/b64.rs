//! Base64 as Entra really speaks it.
//!
//! Graph documents base64url without padding, but real responses and real clients also
//! use the standard alphabet, `=` padding, and the .NET `UrlTokenEncode` form where a
//! trailing digit says how many `=` were stripped (docs/entra-graph-api.md §1.4). Decoding therefore tries
//! each form in turn; encoding always emits base64url without padding.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// The input was not base64 in any form Entra is known to emit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not valid base64 or base64url (with or without padding, or with a padding digit)")]
pub struct DecodeError;

/// Encodes as base64url without padding (RFC 4648 §5), the form Graph documents.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Encodes in the .NET `UrlTokenEncode` form: base64url, padding replaced by a count digit.
pub fn encode_with_pad_digit(bytes: &[u8]) -> String {
    let padded = URL_SAFE.encode(bytes);
    let stripped = padded.trim_end_matches('=');
    format!("{stripped}{}", padded.len() - stripped.len())
}

/// Decodes base64url or standard base64, padded or not.
pub fn decode_lenient(text: &str) -> Result<Vec<u8>, DecodeError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DecodeError);
    }
    if text.contains(['+', '/']) {
        if text.ends_with('=') { STANDARD.decode(text) } else { STANDARD_NO_PAD.decode(text) }
    } else if text.ends_with('=') {
        URL_SAFE.decode(text)
    } else {
        URL_SAFE_NO_PAD.decode(text)
    }
    .map_err(|_| DecodeError)
}

/// Every reading of a credential id that Entra may have meant, most likely first.
///
/// A trailing `1` is ambiguous: `…X1` is both valid unpadded base64url and the
/// padding-digit form of `…X=`, and no rule tells them apart (DSInternals decodes the
/// first and so misreads every 32-byte id in that form). Callers that match ids — the
/// exclude list sent to a key, reconciling method ids — therefore try every candidate;
/// a wrong candidate can never match a real credential.
pub fn credential_id_candidates(text: &str) -> Result<Vec<Vec<u8>>, DecodeError> {
    let mut out = Vec::with_capacity(2);
    if let Ok(bytes) = decode_lenient(text) {
        out.push(bytes);
    }
    if let Some(bytes) = decode_pad_digit(text.trim())
        && !out.contains(&bytes)
    {
        out.push(bytes);
    }
    if out.is_empty() { Err(DecodeError) } else { Ok(out) }
}

/// Whether `text` (in any encoding Entra uses) is the credential id `id`.
pub fn credential_id_matches(text: &str, id: &[u8]) -> bool {
    credential_id_candidates(text).is_ok_and(|c| c.iter().any(|c| c == id))
}

fn decode_pad_digit(text: &str) -> Option<Vec<u8>> {
    let pad = match text.chars().last()? {
        '0' => 0,
        '1' => 1,
        '2' => 2,
        _ => return None,
    };
    let body = &text[..text.len() - 1];
    if body.is_empty() || body.contains(['+', '/', '=']) || !(body.len() + pad).is_multiple_of(4) {
        return None;
    }
    URL_SAFE.decode(format!("{body}{}", "=".repeat(pad))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_form_entra_emits() {
        // (input, expected bytes) — each row is a form seen in real responses (docs/entra-graph-api.md §1.4).
        let bytes: Vec<u8> = (0u8..48).map(|i| i.wrapping_mul(37).wrapping_add(250)).collect();
        let cases = [
            URL_SAFE_NO_PAD.encode(&bytes),
            URL_SAFE.encode(&bytes),
            STANDARD.encode(&bytes),
            STANDARD_NO_PAD.encode(&bytes),
            encode_with_pad_digit(&bytes),
        ];
        for case in cases {
            assert!(credential_id_matches(&case, &bytes), "input {case}");
        }
    }

    #[test]
    fn pad_digit_form_for_every_length_class() {
        for len in [16usize, 17, 18, 32, 33, 34] {
            let bytes = vec![0xfbu8; len];
            let encoded = encode_with_pad_digit(&bytes);
            assert!(credential_id_matches(&encoded, &bytes), "{encoded}");
        }
    }

    #[test]
    fn observed_digit_suffix_id_decodes_to_48_bytes() {
        let id = "XDjx9wXDrVWBmE2MbPSkXdeMERfv6gN98uxavJ0ZrSyT8jYUs2BHKjAmh4P_T3Av0";
        assert_eq!(credential_id_candidates(id).unwrap(), [URL_SAFE_NO_PAD.decode(&id[..64]).unwrap()]);
    }

    #[test]
    fn an_ambiguous_trailing_one_yields_both_readings() {
        let id = [7u8; 32];
        let candidates = credential_id_candidates(&encode_with_pad_digit(&id)).unwrap();
        assert_eq!(candidates.len(), 2);
        assert_eq!(candidates[1], id);
        assert_eq!(credential_id_candidates(&encode(&id)).unwrap(), [id.to_vec()]);
    }

    #[test]
    fn garbage_is_an_error_not_a_guess() {
        for bad in ["", "%%%%", "abc$", "a", "abcde3"] {
            assert_eq!(credential_id_candidates(bad), Err(DecodeError), "{bad}");
        }
    }
}

//! Recognising Keyward's own registration in a user's method list after Entra's answer was lost,
//! without assuming how Entra forms method ids.
//!
//! Public samples show method ids that look like the credential id in base64url with a padding
//! digit, but no Microsoft source says so, and Keyward's settlement of a lost answer must not
//! rest on it. Keyward therefore puts a short marker of its own into the passkey's display name
//! (`#` and four base32 letters taken from the passkey's Keyward id, within Graph's 30
//! characters), and a method is Keyward's when either its id reads as the credential id (cheap,
//! and right wherever the derived form holds) or its display name is exactly the one sent, its
//! AAGUID is the key's and it was created no earlier than Keyward recorded its intent. Two of
//! Keyward's passkeys share a marker with odds of one in a million, and then also need the same
//! name, model and time window.

use crate::b64;
use crate::graph::Fido2Method;

/// The marker for a passkey whose Keyward id is `id`: `#` and four base32 letters.
pub fn marker(id: &uuid::Uuid) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let bytes = id.as_bytes();
    // The last bytes of a v4 UUID are random (the version and variant bits are earlier).
    let n = u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
    let letters: String = (0..4).map(|i| ALPHABET[((n >> (i * 5)) & 31) as usize] as char).collect();
    format!("#{letters}")
}

/// What identifies one registration of Keyward's in a user's method list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnRegistration {
    /// The raw credential id.
    pub credential_id: Vec<u8>,
    /// The display name sent with the registration (carrying the marker).
    pub display_name: String,
    /// The key's AAGUID (lower-case), when known.
    pub aaguid: Option<String>,
    /// The earliest creation time the method can have, as Unix seconds.
    pub not_before: i64,
}

impl OwnRegistration {
    /// Whether `method` is this registration.
    pub fn matches(&self, method: &Fido2Method) -> bool {
        if b64::credential_id_matches(&method.id, &self.credential_id) {
            return true;
        }
        let named = method.display_name.as_deref() == Some(self.display_name.as_str())
            && self.display_name.contains('#');
        let model = match (&self.aaguid, &method.aa_guid) {
            (Some(ours), Some(theirs)) => ours.eq_ignore_ascii_case(theirs),
            (None, _) => true,
            (Some(_), None) => false,
        };
        let created = method.created_date_time.as_deref().and_then(unix_seconds);
        named && model && created.is_some_and(|t| t >= self.not_before)
    }
}

/// Seconds since 1970 of an ISO 8601 UTC time as Graph writes it (`2026-12-05T01:02:03Z`, with
/// or without fractions).
fn unix_seconds(text: &str) -> Option<i64> {
    let (date, time) = text.trim_end_matches('Z').split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (h, min) = (t.next()?.parse::<i64>().ok()?, t.next()?.parse::<i64>().ok()?);
    let sec = t.next()?.split('.').next()?.parse::<i64>().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + min * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(id: &str, name: &str, aaguid: &str, created: &str) -> Fido2Method {
        serde_json::from_value(serde_json::json!({
            "id": id, "displayName": name, "aaGuid": aaguid, "createdDateTime": created,
        }))
        .unwrap()
    }

    #[test]
    fn times_read_as_graph_writes_them() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("2026-12-05T01:02:03Z"), Some(1_796_432_523));
        assert_eq!(unix_seconds("2026-12-05T01:02:03.1234567Z"), Some(1_796_432_523));
        assert_eq!(unix_seconds("yesterday"), None);
    }

    #[test]
    fn markers_are_short_and_differ_between_passkeys() {
        let a = marker(&uuid::Uuid::new_v4());
        assert_eq!(a.len(), 5);
        assert!(a.starts_with('#'));
        let many: std::collections::HashSet<String> =
            (0..200).map(|_| marker(&uuid::Uuid::new_v4())).collect();
        assert!(many.len() > 190, "markers collide too often: {}", many.len());
    }

    /// (method id, display name, aaguid, created, matches)
    #[test]
    fn a_method_is_ours_by_credential_id_or_by_marked_name_model_and_time() {
        let cred = vec![7u8; 32];
        let ours = OwnRegistration {
            credential_id: cred.clone(),
            display_name: "YubiKey 5 (SK-1) #k7qx".into(),
            aaguid: Some("cb69481e-8ff7-4039-93ec-0a2729a154a8".into()),
            not_before: unix_seconds("2026-12-05T01:00:00Z").unwrap(),
        };
        let guid = "5b2f3c1e-0000-4000-8000-000000000001";
        let aaguid = "cb69481e-8ff7-4039-93ec-0a2729a154a8";
        let cases = [
            (b64::encode_with_pad_digit(&cred), "anything", "other", "2020-01-01T00:00:00Z", true),
            (guid.to_owned(), "YubiKey 5 (SK-1) #k7qx", aaguid, "2026-12-05T01:00:05Z", true),
            (
                guid.to_owned(),
                "YubiKey 5 (SK-1) #k7qx",
                "00000000-0000-0000-0000-000000000000",
                "2026-12-05T01:00:05Z",
                false,
            ),
            (guid.to_owned(), "YubiKey 5 (SK-1) #k7qx", aaguid, "2026-12-05T00:59:59Z", false),
            (guid.to_owned(), "YubiKey 5 (SK-1) #zzzz", aaguid, "2026-12-05T01:00:05Z", false),
        ];
        for (id, name, aaguid, created, expected) in cases {
            assert_eq!(
                ours.matches(&method(&id, name, aaguid, created)),
                expected,
                "{id} {name} {aaguid} {created}"
            );
        }
        // A name without a marker is never matched by name alone.
        let unmarked = OwnRegistration { display_name: "YubiKey 5 (SK-1)".into(), ..ours };
        assert!(!unmarked.matches(&method(guid, "YubiKey 5 (SK-1)", aaguid, "2026-12-05T01:00:05Z")));
    }
}

//! Collected client data (`clientDataJSON`), as a browser builds it for `create()` and `get()`.
//!
//! Entra compares bytes, not meaning, so the serialisation is fixed: keys in the order
//! `type`, `challenge`, `origin`, `crossOrigin`, compact JSON, no trailing slash on the
//! origin (a URL-normalising library that adds one is rejected by strict verifiers).

use serde::{Deserialize, Serialize};

/// The collected client data of a WebAuthn ceremony.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectedClientData {
    /// `webauthn.create` for registration, `webauthn.get` for assertion.
    #[serde(rename = "type")]
    pub kind: String,
    /// The challenge as base64url without padding, exactly as the relying party sent it.
    pub challenge: String,
    /// The origin of the caller, e.g. `https://login.microsoft.com`.
    pub origin: String,
    /// Whether the call came from a cross-origin iframe; absent in some clients' JSON.
    #[serde(rename = "crossOrigin", default, skip_serializing_if = "Option::is_none")]
    pub cross_origin: Option<bool>,
}

impl CollectedClientData {
    /// The client data for registering with Entra, for the given creation-options challenge.
    pub fn entra_create(challenge: &str) -> Self {
        Self {
            kind: "webauthn.create".into(),
            challenge: challenge.into(),
            origin: crate::ENTRA_ORIGIN.into(),
            cross_origin: Some(false),
        }
    }

    /// The client data for signing in to Entra with a passkey, for the request-options challenge.
    pub fn entra_get(challenge: &str) -> Self {
        Self {
            kind: "webauthn.get".into(),
            challenge: challenge.into(),
            origin: crate::ENTRA_ORIGIN.into(),
            cross_origin: Some(false),
        }
    }

    /// The exact bytes a browser would produce for this client data.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // serde_json keeps struct field order and writes compact JSON.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_spec_example_byte_for_byte() {
        let data = CollectedClientData::entra_create("QTU1MzNDNzAtNkM3Ni00NTRDLUJDQ0YtRTREMDZCNTBFRTRE");
        let encoded = crate::b64::encode(&data.to_json_bytes());
        // docs/entra-graph-api.md §12.2 (c): the well-formed clientDataJSON for the v1.0 example challenge.
        assert_eq!(
            encoded,
            "eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIiwiY2hhbGxlbmdlIjoiUVRVMU16TkROekF0TmtNM05pMDBOVFJETFVKRFEwWXRSVFJFTURaQ05UQkZSVFJFIiwib3JpZ2luIjoiaHR0cHM6Ly9sb2dpbi5taWNyb3NvZnQuY29tIiwiY3Jvc3NPcmlnaW4iOmZhbHNlfQ"
        );
    }
}

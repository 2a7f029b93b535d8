//! The attestation statement and its trust: the statement's signatures and format rules are
//! verified by `webauthn-rs-core`, and its certificate chain is checked against the FIDO MDS
//! roots of the AAGUID plus the seed's extra roots, with verdicts cached because a batch of keys
//! shares one attestation certificate. Kept apart from [`super::verify`], which enforces the
//! WebAuthn rules the emulator checks itself, because this half is about certificates.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use sha2::{Digest, Sha256};
use webauthn_rs_core::WebauthnCore;
use webauthn_rs_core::attestation::verify_attestation_ca_chain;
use webauthn_rs_core::error::WebauthnError;
use webauthn_rs_core::proto::{
    AttestationCaList, AttestationCaListBuilder, AttestationConveyancePreference,
    AuthenticatorAttestationResponseRaw, COSEAlgorithm, ParsedAttestationData, RegisterPublicKeyCredential,
    RegistrationState, UserVerificationPolicy,
};

use super::cbor::{self, Value as Cbor};
use crate::graph::GraphFailure;

fn bad(message: impl Into<String>) -> GraphFailure {
    GraphFailure::bad_request(message)
}

/// The webauthn-rs-core verifier and a registration-state template, built once.
struct Verifier {
    core: WebauthnCore,
    template: Value,
}

fn engine() -> Result<&'static Verifier, GraphFailure> {
    static ENGINE: OnceLock<Option<Verifier>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let origin = url::Url::parse(keyward_webauthn::ENTRA_ORIGIN).ok()?;
            let core = WebauthnCore::new_unsafe_experts_only(
                "Microsoft",
                keyward_webauthn::ENTRA_RP_ID,
                vec![origin],
                Duration::from_secs(300),
                Some(false),
                Some(false),
            );
            let builder = core
                .new_challenge_register_builder(b"template", "template", "template")
                .ok()?
                .attestation(AttestationConveyancePreference::Direct)
                .user_verification_policy(UserVerificationPolicy::Required)
                .credential_algorithms(vec![COSEAlgorithm::ES256, COSEAlgorithm::RS256])
                .require_resident_key(true);
            let (_, state) = core.generate_challenge_register(builder).ok()?;
            let template = serde_json::to_value(state).ok()?;
            Some(Verifier { core, template })
        })
        .as_ref()
        .ok_or_else(|| {
            GraphFailure::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "generalException",
                "The attestation verifier could not be initialised.",
            )
        })
}

fn attestation_failure(fmt: &str, error: &WebauthnError) -> GraphFailure {
    match error {
        WebauthnError::AttestationNotSupported => bad(format!(
            "attestationObject.fmt '{fmt}' is not a supported attestation format (packed, fido-u2f, tpm, \
             android-key, apple, none)."
        )),
        WebauthnError::CredentialCrossOrigin => bad("clientDataJSON.crossOrigin must be false."),
        other => bad(format!("The attestation statement (fmt '{fmt}') did not verify: {other}.")),
    }
}

/// The MDS model and attestation roots for an AAGUID, if MDS lists it.
fn mds_entry(aaguid: &str) -> Option<(String, Vec<Vec<u8>>)> {
    keyward_webauthn::mds::embedded()
        .entry(aaguid)
        .map(|e| (e.description.clone(), e.attestation_roots.clone()))
}

/// The trust anchors for an AAGUID: its MDS roots plus every seed root.
fn trust_anchors(aaguid: uuid::Uuid, mds_roots: &[Vec<u8>], seed_roots: &[String]) -> AttestationCaList {
    let mut builder = AttestationCaListBuilder::new();
    for der in mds_roots {
        // A malformed MDS root simply anchors nothing.
        let _ = builder.insert_device_der(der, aaguid, String::new(), BTreeMap::new());
    }
    let mut list = builder.build();
    for pem in seed_roots {
        if let Ok(extra) = AttestationCaList::try_from(pem.as_bytes()) {
            list.union(&extra);
        }
    }
    list
}

/// How long a chain verdict is reused before the chain is verified again.
const CHAIN_CACHE_SECONDS: u64 = 600;
const CHAIN_CACHE_MAX: usize = 10_000;

/// Whether the attestation chain reaches one of the anchors, with verdicts cached.
///
/// Real authenticators share one attestation certificate across a whole batch of keys,
/// so bulk provisioning verifies the same leaf against the same roots again and again;
/// the verdict depends only on the certificates, the anchors and the time, so it is
/// reused for a few minutes. This halves the CPU cost of a registration without
/// changing any outcome.
fn chain_is_trusted(
    data: &ParsedAttestationData,
    x5c: &[&[u8]],
    aaguid: uuid::Uuid,
    mds_roots: &[Vec<u8>],
    seed_roots: &[String],
    now: SystemTime,
) -> bool {
    type Cache = std::sync::Mutex<std::collections::HashMap<[u8; 32], (SystemTime, bool)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let mut key = Sha256::new();
    key.update(aaguid.as_bytes());
    for part in x5c
        .iter()
        .copied()
        .chain(mds_roots.iter().map(Vec::as_slice))
        .chain(seed_roots.iter().map(|p| p.as_bytes()))
    {
        key.update((part.len() as u64).to_be_bytes());
        key.update(part);
    }
    let key: [u8; 32] = key.finalize().into();
    let cache = CACHE.get_or_init(Default::default);
    let fresh = |at: SystemTime| now.duration_since(at).is_ok_and(|age| age.as_secs() < CHAIN_CACHE_SECONDS);
    if !x5c.is_empty()
        && let Some((at, verdict)) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key).copied()
        && fresh(at)
    {
        return verdict;
    }
    let anchors = trust_anchors(aaguid, mds_roots, seed_roots);
    let verdict =
        !anchors.is_empty() && matches!(verify_attestation_ca_chain(data, &anchors, now), Ok(Some(_)));
    if !x5c.is_empty() {
        let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CHAIN_CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, (now, verdict));
    }
    verdict
}

/// What the client sent for the statement to be verified.
pub(super) struct Statement<'a> {
    /// `publicKeyCredential.id` as sent.
    pub id: &'a str,
    /// The credential id from the authenticator data.
    pub raw_id: &'a [u8],
    /// The decoded `clientDataJSON`.
    pub client_data_json: &'a [u8],
    /// The decoded `attestationObject`.
    pub attestation_object: &'a [u8],
    /// The challenge the client data carries (already checked).
    pub challenge: &'a [u8],
    /// The attestation object's `fmt`.
    pub fmt: &'a str,
}

/// The attestation statement itself, verified by webauthn-rs-core; returns what it parsed.
pub(super) fn verify_statement(statement: &Statement<'_>) -> Result<ParsedAttestationData, GraphFailure> {
    let engine = engine()?;
    let mut state = engine.template.clone();
    if let Some(map) = state.as_object_mut() {
        map.insert("challenge".into(), Value::String(keyward_webauthn::b64::encode(statement.challenge)));
    }
    let state: RegistrationState = serde_json::from_value(state)
        .map_err(|e| bad(format!("The attestation statement could not be checked: {e}.")))?;
    let reg = RegisterPublicKeyCredential {
        id: statement.id.to_owned(),
        raw_id: statement.raw_id.to_vec(),
        response: AuthenticatorAttestationResponseRaw {
            attestation_object: statement.attestation_object.to_vec(),
            client_data_json: statement.client_data_json.to_vec(),
            transports: None,
        },
        type_: "public-key".into(),
        extensions: Default::default(),
    };
    let verified = engine
        .core
        .register_credential(&reg, &state, None)
        .map_err(|e| attestation_failure(statement.fmt, &e))?;
    Ok(verified.attestation.data)
}

/// What is known about the attestation's trust.
pub(super) struct Trust<'s> {
    /// The AAGUID's MDS description and roots, if MDS lists it.
    pub mds: Option<(String, Vec<Vec<u8>>)>,
    /// The statement's certificate chain (DER), leaf first.
    pub x5c: Vec<&'s [u8]>,
    /// Whether the chain reaches an MDS root of the AAGUID or a seed root.
    pub chain_trusted: bool,
}

/// Whether the statement's chain reaches an MDS root of this AAGUID or one of `seed_roots`.
pub(super) fn assess_trust<'s>(
    attestation: &ParsedAttestationData,
    att_stmt: &'s Cbor,
    aaguid: uuid::Uuid,
    seed_roots: &[String],
    now: SystemTime,
) -> Trust<'s> {
    let mds = mds_entry(&aaguid.hyphenated().to_string());
    let x5c: Vec<&[u8]> = match cbor::get_text_key(att_stmt, "x5c") {
        Some(Cbor::Array(items)) => items.iter().filter_map(|i| i.as_bytes().map(Vec::as_slice)).collect(),
        _ => vec![],
    };
    let chain_trusted = match attestation {
        ParsedAttestationData::Basic(chain) | ParsedAttestationData::AttCa(chain) if !chain.is_empty() => {
            let roots = mds.as_ref().map(|(_, r)| r.as_slice()).unwrap_or_default();
            chain_is_trusted(attestation, &x5c, aaguid, roots, seed_roots, now)
        }
        _ => false,
    };
    Trust { mds, x5c, chain_trusted }
}

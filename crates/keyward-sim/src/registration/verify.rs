//! Verifying a `POST …/fido2Methods` body: a pure function over a snapshot of the tenant,
//! the request bytes and the time, so the CPU work runs outside the state lock and can be
//! benchmarked without HTTP.
//!
//! Each WebAuthn rule is checked by the emulator itself, in a fixed order, so a refusal
//! names the exact rule (docs/entra-graph-api.md §2.3, §11); the attestation statement (signatures, packed
//! certificate requirements, AAGUID extension) is then verified by `webauthn-rs-core`,
//! and the certificate chain is checked against the FIDO MDS roots of the AAGUID plus the
//! seed's extra roots. The two checks that need live state — challenge single use and a
//! duplicate registered concurrently — are repeated by the caller under the write lock.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use keyward_webauthn::graph::{Fido2Method, MAX_DISPLAY_NAME_CHARS};
use keyward_webauthn::policy::Fido2Policy;
use serde_json::Value;
use sha1::Sha1;
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
use super::policy::{self, CredentialFacts};
use crate::graph::{ApiVersion, GraphFailure};
use crate::keys::LoadedKeys;
use crate::seed::SeedUser;
use crate::tenant::StoredFido2Method;

/// The body-shape error Graph returns for a missing or double-encoded entity (docs/entra-graph-api.md §2.5).
pub const MISSING_ENTITY: &str = "The request is missing a fido2AuthenticationMethod entity with a displayName \
     and publicKeyCredential in the request body. All other properties will be ignored.";

const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;
const FLAG_BE: u8 = 0x08;
const FLAG_BS: u8 = 0x10;
const FLAG_AT: u8 = 0x40;

/// What verification needs from the tenant, copied out under the read lock.
pub struct RegistrationContext<'a> {
    /// The emulator's keys (challenge sealing).
    pub keys: &'a LoadedKeys,
    /// The Graph version the request came in on.
    pub version: ApiVersion,
    /// The user the passkey is for.
    pub user: SeedUser,
    /// The FIDO2 method policy.
    pub policy: Fido2Policy,
    /// Extra trust roots from the seed (PEM).
    pub attestation_roots_pem: Vec<String>,
    /// Extra AAGUID → model names from the seed.
    pub aaguid_models: BTreeMap<String, String>,
    /// Raw credential ids already registered for the user.
    pub existing_credential_ids: Vec<Vec<u8>>,
}

/// A registration that passed every stateless check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRegistration {
    /// The challenge's nonce: the key under which it is marked used.
    pub challenge_nonce: String,
    /// The raw credential id.
    pub credential_id: Vec<u8>,
    /// What to store (and return, as `method`).
    pub stored: StoredFido2Method,
}

fn bad(message: impl Into<String>) -> GraphFailure {
    GraphFailure::bad_request(message)
}

fn missing_entity() -> GraphFailure {
    bad(MISSING_ENTITY)
}

fn required_text<'v>(object: &'v Value, path: &str, key: &str) -> Result<&'v str, GraphFailure> {
    match object.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(bad(format!("{path}{key} is required and must be a non-empty string.")))
        }
        Some(_) => Err(bad(format!("{path}{key} must be a string."))),
    }
}

fn decode_field(value: &str, name: &str) -> Result<Vec<u8>, GraphFailure> {
    keyward_webauthn::b64::decode_lenient(value)
        .map_err(|_| bad(format!("{name} is not valid base64url (or base64), with or without padding.")))
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

fn transports_of(response: &Value) -> Vec<String> {
    response
        .get("transports")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Verifies a registration body for the context's user at `now`; every refusal names its rule.
pub fn verify_registration(
    ctx: &RegistrationContext<'_>,
    body: &[u8],
    now: SystemTime,
) -> Result<VerifiedRegistration, GraphFailure> {
    let now_unix = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default();

    // 1. Body shape. `@odata.type`, `rawId`, `type`, `authenticatorAttachment` are ignored.
    let body: Value = serde_json::from_slice(body).map_err(|_| missing_entity())?;
    let Value::Object(_) = &body else { return Err(missing_entity()) };
    let credential = body.get("publicKeyCredential").filter(|v| v.is_object()).ok_or_else(missing_entity)?;
    let display_name = match body.get("displayName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad("displayName must be a string.")),
    };
    match &display_name {
        None if ctx.version == ApiVersion::Beta => {
            return Err(bad(format!("{MISSING_ENTITY} (beta requires displayName.)")));
        }
        Some(name) if name.chars().count() > MAX_DISPLAY_NAME_CHARS => {
            return Err(bad(format!(
                "displayName must be at most {MAX_DISPLAY_NAME_CHARS} characters (got {}).",
                name.chars().count()
            )));
        }
        _ => {}
    }
    let id_text = required_text(credential, "publicKeyCredential.", "id")?;
    let response = credential
        .get("response")
        .filter(|v| v.is_object())
        .ok_or_else(|| bad("publicKeyCredential.response is required and must be an object."))?;
    let cdj_text = required_text(response, "publicKeyCredential.response.", "clientDataJSON")?;
    let att_text = required_text(response, "publicKeyCredential.response.", "attestationObject")?;

    // 2. Policy checks that do not depend on the credential.
    policy::check_user(&ctx.policy, &ctx.user)?;

    // 3. Lenient decoding (docs/entra-graph-api.md §2.2: clients send base64url or padded standard base64).
    let id_candidates = keyward_webauthn::b64::credential_id_candidates(id_text).map_err(|_| {
        bad("publicKeyCredential.id is not valid base64url (or base64), with or without padding.")
    })?;
    let cdj = decode_field(cdj_text, "publicKeyCredential.response.clientDataJSON")?;
    let att = decode_field(att_text, "publicKeyCredential.response.attestationObject")?;

    // 4. Client data.
    let client: Value = serde_json::from_slice(&cdj)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| bad("clientDataJSON must be a JSON object (UTF-8)."))?;
    if client.get("type").and_then(Value::as_str) != Some("webauthn.create") {
        return Err(bad("clientDataJSON.type must be webauthn.create."));
    }
    let challenge_text = client
        .get("challenge")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("clientDataJSON.challenge is required."))?;
    let challenge_bytes =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(challenge_text).map_err(|_| {
            bad("clientDataJSON.challenge must be the creationOptions challenge, base64url without padding.")
        })?;
    let claims = super::challenge::open(ctx.keys, &challenge_bytes).ok_or_else(|| {
        bad("clientDataJSON.challenge was not issued by this service (it cannot be opened); use the challenge \
             from creationOptions.")
    })?;
    if !claims.user_id.eq_ignore_ascii_case(&ctx.user.id) {
        return Err(bad("clientDataJSON.challenge was issued for a different user."));
    }
    if now_unix >= claims.expires {
        return Err(bad(format!(
            "clientDataJSON.challenge expired at {} (challengeTimeoutDateTime); request new creationOptions.",
            super::options::iso_seconds(claims.expires)
        )));
    }
    let origin = client.get("origin").and_then(Value::as_str).unwrap_or("");
    if origin != keyward_webauthn::ENTRA_ORIGIN {
        return Err(bad(format!(
            "clientDataJSON.origin must be exactly {} (got '{origin}').",
            keyward_webauthn::ENTRA_ORIGIN
        )));
    }
    if client.get("crossOrigin").and_then(Value::as_bool) == Some(true) {
        return Err(bad("clientDataJSON.crossOrigin must be false."));
    }

    // 5. Attestation object and authenticator data.
    let object = cbor::read_exact(&att)
        .ok()
        .filter(|i| matches!(i, Cbor::Map(_)))
        .ok_or_else(|| bad("attestationObject must be a CBOR map with fmt, attStmt and authData."))?;
    let Some(Cbor::Text(fmt)) = cbor::get_text_key(&object, "fmt") else {
        return Err(bad("attestationObject.fmt is required and must be a text string."));
    };
    let Some(att_stmt @ Cbor::Map(_)) = cbor::get_text_key(&object, "attStmt") else {
        return Err(bad("attestationObject.attStmt is required and must be a map."));
    };
    let Some(Cbor::Bytes(auth_data)) = cbor::get_text_key(&object, "authData") else {
        return Err(bad("attestationObject.authData is required and must be a byte string."));
    };
    if auth_data.len() < 37 {
        return Err(bad("authenticatorData is shorter than 37 bytes."));
    }
    if auth_data[..32] != Sha256::digest(keyward_webauthn::ENTRA_RP_ID.as_bytes())[..] {
        return Err(bad(format!(
            "authenticatorData.rpIdHash must be SHA-256 of the rp id {}.",
            keyward_webauthn::ENTRA_RP_ID
        )));
    }
    let flags = auth_data[32];
    if flags & FLAG_UP == 0 {
        return Err(bad("authenticatorData flags: user present (UP) must be set."));
    }
    if flags & FLAG_UV == 0 {
        return Err(bad(
            "authenticatorData flags: user verified (UV) must be set (userVerification is required).",
        ));
    }
    if flags & FLAG_BS != 0 && flags & FLAG_BE == 0 {
        return Err(bad("authenticatorData flags: backup state (BS) is set without backup eligible (BE)."));
    }
    if flags & FLAG_AT == 0 || auth_data.len() < 55 {
        return Err(bad("authenticatorData flags: attested credential data (AT) must be present."));
    }
    let aaguid_bytes: [u8; 16] = auth_data[37..53]
        .try_into()
        .map_err(|_| bad("authenticatorData attested credential data is truncated."))?;
    let aaguid = uuid::Uuid::from_bytes(aaguid_bytes);
    let aaguid_text = aaguid.hyphenated().to_string();
    let id_len = usize::from(u16::from_be_bytes([auth_data[53], auth_data[54]]));
    let cred_id = auth_data
        .get(55..55 + id_len)
        .ok_or_else(|| bad("authenticatorData attested credential data is truncated."))?
        .to_vec();
    let key_bytes = &auth_data[55 + id_len..];
    let (cose_key, key_len) = cbor::read(key_bytes)
        .map_err(|_| bad("authenticatorData credential public key is not valid COSE."))?;
    let cose_bytes = &key_bytes[..key_len];
    if !id_candidates.contains(&cred_id) {
        return Err(bad("publicKeyCredential.id must equal the credential id in authenticatorData."));
    }
    match cbor::get_int_key(&cose_key, 3).and_then(cbor::as_int) {
        Some(-7 | -257) => {}
        Some(-8) => {
            return Err(bad(
                "The credential public key algorithm EdDSA (-8) is not supported: only ES256 (-7) and RS256 \
                 (-257) are accepted (pubKeyCredParams).",
            ));
        }
        Some(alg) => {
            return Err(bad(format!(
                "The credential public key algorithm {alg} is not allowed: only ES256 (-7) and RS256 (-257) \
                 are accepted (pubKeyCredParams)."
            )));
        }
        _ => return Err(bad("The credential public key has no algorithm (COSE key parameter 3).")),
    }

    // 6. The attestation statement itself, by webauthn-rs-core.
    let engine = engine()?;
    let mut state = engine.template.clone();
    if let Some(map) = state.as_object_mut() {
        map.insert("challenge".into(), Value::String(keyward_webauthn::b64::encode(&challenge_bytes)));
    }
    let state: RegistrationState = serde_json::from_value(state)
        .map_err(|e| bad(format!("The attestation statement could not be checked: {e}.")))?;
    let reg = RegisterPublicKeyCredential {
        id: id_text.to_owned(),
        raw_id: cred_id.clone(),
        response: AuthenticatorAttestationResponseRaw {
            attestation_object: att.clone(),
            client_data_json: cdj.clone(),
            transports: None,
        },
        type_: "public-key".into(),
        extensions: Default::default(),
    };
    let verified =
        engine.core.register_credential(&reg, &state, None).map_err(|e| attestation_failure(fmt, &e))?;

    // 7. Trust: the chain must reach an MDS root of this AAGUID or a seed root.
    let mds = mds_entry(&aaguid_text);
    let x5c: Vec<&[u8]> = match cbor::get_text_key(att_stmt, "x5c") {
        Some(Cbor::Array(items)) => items.iter().filter_map(|i| i.as_bytes().map(Vec::as_slice)).collect(),
        _ => vec![],
    };
    let chain_trusted = match &verified.attestation.data {
        ParsedAttestationData::Basic(chain) | ParsedAttestationData::AttCa(chain) if !chain.is_empty() => {
            let roots = mds.as_ref().map(|(_, r)| r.as_slice()).unwrap_or_default();
            chain_is_trusted(&verified.attestation.data, &x5c, aaguid, roots, &ctx.attestation_roots_pem, now)
        }
        _ => false,
    };
    let synced = flags & FLAG_BE != 0;
    let facts = CredentialFacts {
        aaguid: &aaguid_text,
        packed_chain_trusted: *fmt == "packed" && !x5c.is_empty() && chain_trusted,
        fmt,
        synced,
    };

    // 8. Policy on the credential, then duplicates known at snapshot time.
    policy::check_credential(&ctx.policy, &ctx.user, &facts)?;
    if ctx.existing_credential_ids.contains(&cred_id) {
        return Err(duplicate());
    }

    let model = mds.map(|(description, _)| description).or_else(|| {
        ctx.aaguid_models
            .iter()
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(&aaguid_text))
            .map(|(_, v)| v.clone())
    });
    let method = Fido2Method {
        id: keyward_webauthn::b64::encode_with_pad_digit(&cred_id),
        display_name,
        created_date_time: Some(super::options::iso_seconds(now_unix)),
        aa_guid: Some(aaguid_text.clone()),
        model,
        attestation_certificates: x5c.iter().map(|der| hex::encode(Sha1::digest(der))).collect(),
        attestation_level: Some(if chain_trusted { "attested" } else { "notAttested" }.into()),
        passkey_type: Some(if synced { "synced" } else { "deviceBound" }.into()),
    };
    Ok(VerifiedRegistration {
        challenge_nonce: claims.nonce,
        stored: StoredFido2Method {
            method,
            credential_id: keyward_webauthn::b64::encode(&cred_id),
            public_key_cose: keyward_webauthn::b64::encode(cose_bytes),
            transports: transports_of(response),
        },
        credential_id: cred_id,
    })
}

/// The 409 for a credential id the user already has.
pub fn duplicate() -> GraphFailure {
    GraphFailure::conflict(
        "A passkey with this credential id is already registered for the user (duplicate credential id).",
    )
}

/// The 400 for a challenge that was already used.
pub fn challenge_used() -> GraphFailure {
    bad(
        "clientDataJSON.challenge has already been used: challenges are single-use; request new creationOptions.",
    )
}

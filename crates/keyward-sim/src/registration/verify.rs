//! Verifying a `POST …/fido2Methods` body: a pure function over a snapshot of the tenant,
//! the request bytes and the time, so the CPU work runs outside the state lock and can be
//! benchmarked without HTTP.
//!
//! Each WebAuthn rule is checked by the emulator itself, in a fixed order, so a refusal
//! names the exact rule (docs/entra-graph-api.md §2.3, §11); the attestation statement and its certificate chain
//! are then verified by [`super::attestation`]. The two checks that need live state —
//! challenge single use and a duplicate registered concurrently — are repeated by the caller
//! under the write lock.

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::Engine as _;
use keyward_webauthn::graph::{Fido2Method, MAX_DISPLAY_NAME_CHARS};
use keyward_webauthn::policy::Fido2Policy;
use serde_json::Value;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use webauthn_rs_core::proto::ParsedAttestationData;

use super::attestation::{Statement, Trust, assess_trust, verify_statement};
use super::cbor::{self, Value as Cbor};
use super::policy::{self, CredentialFacts};
use super::untrusted_packed;
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
    /// `--strict`: exact origin, single-use challenges, packed certificates in the §8.2.1 profile.
    pub strict: bool,
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

/// Members of `publicKeyCredential` Graph refuses: DSInternals.Passkeys stopped sending exactly
/// these in "Fix passkey cloud registration issues" (May 2026), noting that only `id`,
/// `response` and `clientExtensionResults` are accepted.
const REFUSED_CREDENTIAL_MEMBERS: &[&str] = &["rawId", "type", "authenticatorAttachment"];
/// Members of `publicKeyCredential.response` refused for the same reason.
const REFUSED_RESPONSE_MEMBERS: &[&str] = &["transports", "publicKey", "authenticatorData"];

/// Refuses the members a browser's `PublicKeyCredential.toJSON()` adds but Graph does not take.
fn refuse_browser_members(credential: &Value, response: &Value) -> Result<(), GraphFailure> {
    let present = REFUSED_CREDENTIAL_MEMBERS
        .iter()
        .filter(|m| credential.get(**m).is_some())
        .map(|m| format!("publicKeyCredential.{m}"))
        .chain(
            REFUSED_RESPONSE_MEMBERS
                .iter()
                .filter(|m| response.get(**m).is_some())
                .map(|m| format!("publicKeyCredential.response.{m}")),
        )
        .collect::<Vec<_>>();
    if present.is_empty() {
        return Ok(());
    }
    Err(bad(format!(
        "{} cannot be sent: publicKeyCredential takes only id, response (clientDataJSON, \
         attestationObject) and clientExtensionResults. Remove the other members.",
        present.join(", ")
    )))
}

/// Verifies a registration body for the context's user at `now`; every refusal names its rule.
///
/// The steps run in the order Graph reports refusals: body shape, the user's policy, decoding,
/// client data, authenticator data, the attestation statement, trust, the credential's policy.
pub fn verify_registration(
    ctx: &RegistrationContext<'_>,
    body: &[u8],
    now: SystemTime,
) -> Result<VerifiedRegistration, GraphFailure> {
    let now_unix = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default();
    let body: Value = serde_json::from_slice(body).map_err(|_| missing_entity())?;
    let fields = read_body(&body, ctx.version)?;
    policy::check_user(&ctx.policy, &ctx.user)?;
    let decoded = decode_body(&fields)?;
    let challenge = check_client_data(ctx, &decoded.client_data_json, now_unix)?;
    let object = parse_attestation_object(&decoded.attestation_object)?;
    let statement = read_attestation_object(&object)?;
    let credential = read_attested_credential(statement.auth_data, &decoded.id_candidates)?;
    let attestation = match verify_statement(&Statement {
        id: fields.id,
        raw_id: &credential.id,
        client_data_json: &decoded.client_data_json,
        attestation_object: &decoded.attestation_object,
        challenge: &challenge.bytes,
        fmt: statement.fmt,
    }) {
        Ok(attestation) => attestation,
        // A certificate outside the §8.2.1 profile, but a good signature: not attested.
        Err(_)
            if !ctx.strict
                && statement.fmt == "packed"
                && untrusted_packed::signature_verifies(
                    statement.att_stmt,
                    statement.auth_data,
                    &decoded.client_data_json,
                ) =>
        {
            ParsedAttestationData::Uncertain
        }
        Err(refused) => return Err(refused),
    };
    let seed_roots = &ctx.attestation_roots_pem;
    let trust = assess_trust(&attestation, statement.att_stmt, credential.aaguid, seed_roots, now);
    policy::check_credential(&ctx.policy, &ctx.user, &credential_facts(statement.fmt, &credential, &trust))?;
    if ctx.existing_credential_ids.contains(&credential.id) {
        return Err(duplicate());
    }
    Ok(VerifiedRegistration {
        stored: stored_method(ctx, &fields, &credential, trust, now_unix),
        challenge_nonce: challenge.claims.nonce,
        credential_id: credential.id,
    })
}

/// The body's fields, as sent.
struct BodyFields<'b> {
    display_name: Option<String>,
    id: &'b str,
    client_data_json: &'b str,
    attestation_object: &'b str,
}

/// Body shape. `@odata.type` is ignored; the members a browser adds are refused.
fn read_body(body: &Value, version: ApiVersion) -> Result<BodyFields<'_>, GraphFailure> {
    let Value::Object(_) = body else { return Err(missing_entity()) };
    let credential = body.get("publicKeyCredential").filter(|v| v.is_object()).ok_or_else(missing_entity)?;
    let display_name = read_display_name(body, version)?;
    let id = required_text(credential, "publicKeyCredential.", "id")?;
    let response = credential
        .get("response")
        .filter(|v| v.is_object())
        .ok_or_else(|| bad("publicKeyCredential.response is required and must be an object."))?;
    let client_data_json = required_text(response, "publicKeyCredential.response.", "clientDataJSON")?;
    let attestation_object = required_text(response, "publicKeyCredential.response.", "attestationObject")?;
    refuse_browser_members(credential, response)?;
    Ok(BodyFields { display_name, id, client_data_json, attestation_object })
}

/// The passkey's display name: required on v1.0 and beta (an empty one counts as absent), as
/// the observed error text says (msgraph-beta-sdk-dotnet #941).
fn read_display_name(body: &Value, version: ApiVersion) -> Result<Option<String>, GraphFailure> {
    let display_name = match body.get("displayName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad("displayName must be a string.")),
    };
    match &display_name {
        None => {
            let hint = match version {
                ApiVersion::Beta => "beta",
                ApiVersion::V1 => "v1.0",
            };
            return Err(bad(format!("{MISSING_ENTITY} ({hint} requires displayName.)")));
        }
        Some(name) if name.chars().count() > MAX_DISPLAY_NAME_CHARS => {
            return Err(bad(format!(
                "displayName must be at most {MAX_DISPLAY_NAME_CHARS} characters (got {}).",
                name.chars().count()
            )));
        }
        _ => {}
    }
    Ok(display_name)
}

/// The body's binary fields, decoded.
struct DecodedBody {
    id_candidates: Vec<Vec<u8>>,
    client_data_json: Vec<u8>,
    attestation_object: Vec<u8>,
}

/// Lenient decoding (docs/entra-graph-api.md §2.2: clients send base64url or padded standard base64).
fn decode_body(fields: &BodyFields<'_>) -> Result<DecodedBody, GraphFailure> {
    let id_candidates = keyward_webauthn::b64::credential_id_candidates(fields.id).map_err(|_| {
        bad("publicKeyCredential.id is not valid base64url (or base64), with or without padding.")
    })?;
    let client_data_json =
        decode_field(fields.client_data_json, "publicKeyCredential.response.clientDataJSON")?;
    let attestation_object =
        decode_field(fields.attestation_object, "publicKeyCredential.response.attestationObject")?;
    Ok(DecodedBody { id_candidates, client_data_json, attestation_object })
}

/// The challenge the client signed: its bytes and what the emulator sealed in it.
struct SignedChallenge {
    bytes: Vec<u8>,
    claims: super::challenge::ChallengeClaims,
}

/// Client data: type, a challenge this emulator issued to this user and not expired,
/// Entra's origin, not cross-origin.
fn check_client_data(
    ctx: &RegistrationContext<'_>,
    client_data_json: &[u8],
    now_unix: i64,
) -> Result<SignedChallenge, GraphFailure> {
    let client: Value = serde_json::from_slice(client_data_json)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| bad("clientDataJSON must be a JSON object (UTF-8)."))?;
    if client.get("type").and_then(Value::as_str) != Some("webauthn.create") {
        return Err(bad("clientDataJSON.type must be webauthn.create."));
    }
    let challenge = open_challenge(ctx, &client, now_unix)?;
    let origin = client.get("origin").and_then(Value::as_str).unwrap_or("");
    // Entra accepted `https://login.microsoft.com/` in DSInternals.Passkeys' live test.
    let accepted = origin == keyward_webauthn::ENTRA_ORIGIN
        || (!ctx.strict && origin.strip_suffix('/') == Some(keyward_webauthn::ENTRA_ORIGIN));
    if !accepted {
        return Err(bad(format!(
            "clientDataJSON.origin must be exactly {} (got '{origin}').",
            keyward_webauthn::ENTRA_ORIGIN
        )));
    }
    if client.get("crossOrigin").and_then(Value::as_bool) == Some(true) {
        return Err(bad("clientDataJSON.crossOrigin must be false."));
    }
    Ok(challenge)
}

/// Opens the client data's challenge: sealed by this emulator, for this user, not expired.
fn open_challenge(
    ctx: &RegistrationContext<'_>,
    client: &Value,
    now_unix: i64,
) -> Result<SignedChallenge, GraphFailure> {
    let challenge_text = client
        .get("challenge")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("clientDataJSON.challenge is required."))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(challenge_text).map_err(|_| {
        bad("clientDataJSON.challenge must be the creationOptions challenge, base64url without padding.")
    })?;
    let claims = super::challenge::open(ctx.keys, &bytes).ok_or_else(|| {
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
    Ok(SignedChallenge { bytes, claims })
}

/// The attestation object, which must be a CBOR map.
fn parse_attestation_object(bytes: &[u8]) -> Result<Cbor, GraphFailure> {
    cbor::read_exact(bytes)
        .ok()
        .filter(|i| matches!(i, Cbor::Map(_)))
        .ok_or_else(|| bad("attestationObject must be a CBOR map with fmt, attStmt and authData."))
}

/// The three members of the attestation object.
struct AttestationParts<'o> {
    fmt: &'o str,
    att_stmt: &'o Cbor,
    auth_data: &'o [u8],
}

/// The attestation object's `fmt`, `attStmt` and `authData`, each of the right type.
fn read_attestation_object(object: &Cbor) -> Result<AttestationParts<'_>, GraphFailure> {
    let Some(Cbor::Text(fmt)) = cbor::get_text_key(object, "fmt") else {
        return Err(bad("attestationObject.fmt is required and must be a text string."));
    };
    let Some(att_stmt @ Cbor::Map(_)) = cbor::get_text_key(object, "attStmt") else {
        return Err(bad("attestationObject.attStmt is required and must be a map."));
    };
    let Some(Cbor::Bytes(auth_data)) = cbor::get_text_key(object, "authData") else {
        return Err(bad("attestationObject.authData is required and must be a byte string."));
    };
    Ok(AttestationParts { fmt, att_stmt, auth_data })
}

/// The new credential as the authenticator data describes it.
struct AttestedCredential<'a> {
    flags: u8,
    aaguid: uuid::Uuid,
    /// The AAGUID, dashed lowercase.
    aaguid_text: String,
    id: Vec<u8>,
    public_key_cose: &'a [u8],
    sign_count: u32,
}

/// Authenticator data: rp id hash, flags, attested credential data (matching the
/// body's id) and a public key with an accepted algorithm.
fn read_attested_credential<'a>(
    auth_data: &'a [u8],
    id_candidates: &[Vec<u8>],
) -> Result<AttestedCredential<'a>, GraphFailure> {
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
    check_flags(flags, auth_data.len())?;
    let aaguid_bytes: [u8; 16] = auth_data[37..53]
        .try_into()
        .map_err(|_| bad("authenticatorData attested credential data is truncated."))?;
    let aaguid = uuid::Uuid::from_bytes(aaguid_bytes);
    let id_len = usize::from(u16::from_be_bytes([auth_data[53], auth_data[54]]));
    let id = auth_data
        .get(55..55 + id_len)
        .ok_or_else(|| bad("authenticatorData attested credential data is truncated."))?
        .to_vec();
    let key_bytes = &auth_data[55 + id_len..];
    let (cose_key, key_len) = cbor::read(key_bytes)
        .map_err(|_| bad("authenticatorData credential public key is not valid COSE."))?;
    if !id_candidates.contains(&id) {
        return Err(bad("publicKeyCredential.id must equal the credential id in authenticatorData."));
    }
    check_algorithm(&cose_key)?;
    let aaguid_text = aaguid.hyphenated().to_string();
    let sign_count = u32::from_be_bytes([auth_data[33], auth_data[34], auth_data[35], auth_data[36]]);
    Ok(AttestedCredential {
        flags,
        aaguid,
        aaguid_text,
        id,
        public_key_cose: &key_bytes[..key_len],
        sign_count,
    })
}

/// The authenticator data flags: user present and verified, BS only with BE, attested data.
fn check_flags(flags: u8, auth_data_len: usize) -> Result<(), GraphFailure> {
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
    if flags & FLAG_AT == 0 || auth_data_len < 55 {
        return Err(bad("authenticatorData flags: attested credential data (AT) must be present."));
    }
    Ok(())
}

/// The credential key's COSE algorithm must be one Entra's pubKeyCredParams offer.
fn check_algorithm(cose_key: &Cbor) -> Result<(), GraphFailure> {
    match cbor::get_int_key(cose_key, 3).and_then(cbor::as_int) {
        Some(-7 | -257) => Ok(()),
        Some(-8) => Err(bad(
            "The credential public key algorithm EdDSA (-8) is not supported: only ES256 (-7) and RS256 \
             (-257) are accepted (pubKeyCredParams).",
        )),
        Some(alg) => Err(bad(format!(
            "The credential public key algorithm {alg} is not allowed: only ES256 (-7) and RS256 (-257) \
             are accepted (pubKeyCredParams)."
        ))),
        _ => Err(bad("The credential public key has no algorithm (COSE key parameter 3).")),
    }
}

/// What the credential policy judges.
fn credential_facts<'f>(
    fmt: &'f str,
    credential: &'f AttestedCredential<'_>,
    trust: &Trust<'_>,
) -> CredentialFacts<'f> {
    CredentialFacts {
        aaguid: &credential.aaguid_text,
        packed_chain_trusted: fmt == "packed" && !trust.x5c.is_empty() && trust.chain_trusted,
        fmt,
        synced: credential.flags & FLAG_BE != 0,
    }
}

/// The method as Graph stores and returns it, with the key material kept for sign-in.
fn stored_method(
    ctx: &RegistrationContext<'_>,
    fields: &BodyFields<'_>,
    credential: &AttestedCredential<'_>,
    trust: Trust<'_>,
    now_unix: i64,
) -> StoredFido2Method {
    let aaguid_text = &credential.aaguid_text;
    let model = trust.mds.map(|(description, _)| description).or_else(|| {
        ctx.aaguid_models
            .iter()
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(aaguid_text))
            .map(|(_, v)| v.clone())
    });
    let synced = credential.flags & FLAG_BE != 0;
    let method = Fido2Method {
        id: keyward_webauthn::b64::encode_with_pad_digit(&credential.id),
        display_name: fields.display_name.clone(),
        created_date_time: Some(super::options::iso_seconds(now_unix)),
        aa_guid: Some(aaguid_text.clone()),
        model,
        attestation_certificates: trust.x5c.iter().map(|der| hex::encode(Sha1::digest(der))).collect(),
        attestation_level: Some(if trust.chain_trusted { "attested" } else { "notAttested" }.into()),
        passkey_type: Some(if synced { "synced" } else { "deviceBound" }.into()),
    };
    StoredFido2Method {
        method,
        credential_id: keyward_webauthn::b64::encode(&credential.id),
        public_key_cose: keyward_webauthn::b64::encode(credential.public_key_cose),
        // The body cannot carry transports; what Entra lists instead is unknown.
        transports: Vec::new(),
        sign_count: credential.sign_count,
    }
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

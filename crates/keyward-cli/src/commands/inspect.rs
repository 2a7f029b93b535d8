//! `keyward inspect FILE`: what a registration body or an attestation object holds, and whether
//! the tenant would accept it.
//!
//! When Entra refuses a registration, the operator needs to see what the key actually sent:
//! attestation format, model (AAGUID, named from the embedded FIDO MDS), the flags, the
//! algorithm, extensions, credential id and the certificate chain — and whether that chain ends
//! at the MDS root of the key's own model, which is what Entra checks when attestation is
//! enforced. The input may be a Graph registration body (JSON, as `keyward` POSTs it), the Core
//! API's complete body, or a bare attestation object as CBOR or base64 text.
//!
//! Chain signatures are checked with `x509-parser`'s `verify` feature (ring underneath), the
//! same crate the tests use; `webauthn-rs-core` would verify the whole statement but needs a
//! registration state and challenge this command does not have.
//!
//! With `--policy` the tenant's FIDO2 policy judges the key through `keyward_webauthn::entra_rules`,
//! the function the server's check before the POST and `doctor` use. The body names no user, so
//! the targets are not judged and the key passes when any passkey profile accepts it.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use keyward_webauthn::attestation::{AttestationObject, AttestationParseError};
use keyward_webauthn::entra_rules::{self, Attestation, KeyFacts, PasskeyType, Verdict};
use keyward_webauthn::policy::Fido2Policy;
use keyward_webauthn::{ENTRA_RP_ID, b64, mds};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::commands::ClientArgs;

mod cbor_json;

/// Larger inputs are not registration bodies.
const MAX_INPUT: u64 = 1024 * 1024;

/// `keyward inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// A registration body (JSON) or an attestation object (CBOR, or base64/base64url text).
    file: PathBuf,
    /// Also check it against the tenant's FIDO2 policy (implied by --server).
    #[arg(long)]
    policy: bool,
    /// Output: readable text or JSON.
    #[arg(long, value_enum, default_value_t = InspectFormat::Text)]
    format: InspectFormat,
}

/// How the result is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum InspectFormat {
    /// Readable text.
    Text,
    /// JSON.
    Json,
}

/// Why a file could not be inspected.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The file cannot be read.
    #[error("cannot read {path}: {reason}; check the path")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// The file is too large to be a registration.
    #[error("{0} is larger than 1 MiB, which no registration body is; check that it is the right file")]
    TooLarge(String),
    /// Looks like JSON but does not parse.
    #[error("the file starts like JSON but is not valid JSON ({0}); is it truncated?")]
    Json(String),
    /// JSON without an attestation object.
    #[error(
        "the JSON has no attestation object (publicKeyCredential.response.attestationObject or attestation_object); give a Graph registration body or a raw attestation object"
    )]
    NoAttestation,
    /// A base64 field does not decode.
    #[error("`{0}` is not base64 or base64url; the body may be damaged")]
    Base64(&'static str),
    /// Neither JSON, CBOR nor base64.
    #[error(
        "the file is not JSON, not a CBOR attestation object and not base64 text; give a registration body or an attestationObject"
    )]
    Unrecognised,
    /// The attestation object does not parse.
    #[error("{0}; the file may be truncated or hold something else than an attestation object")]
    Attestation(AttestationParseError),
}

/// What the input was.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Source {
    RegistrationBody,
    Cbor,
    Base64,
}

/// How a check came out (the words doctor's report uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Severity {
    /// The check passed.
    Ok,
    /// The registration would be refused for this reason.
    Blocking,
}

/// One check's result, shaped like a doctor finding.
#[derive(Debug, Clone, Serialize)]
struct Finding {
    check: String,
    severity: Severity,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

/// One certificate of the x5c chain.
#[derive(Debug, Serialize)]
struct CertView {
    subject: String,
    issuer: String,
    not_before: String,
    not_after: String,
    valid_now: bool,
}

/// Everything shown.
#[derive(Debug, Serialize)]
struct Inspection {
    source: Source,
    fmt: String,
    aaguid: Option<String>,
    model: Option<String>,
    flags: Value,
    sign_count: u32,
    rp_id_is_entra: bool,
    algorithm: Option<String>,
    statement_algorithm: Option<String>,
    extensions: Option<Value>,
    credential_id: Option<String>,
    client_data: Option<Value>,
    certificates: Vec<CertView>,
    chain: String,
    chains_to_mds_root: bool,
    checks: Vec<Finding>,
    /// What the tenant's rules see of the key (the AAGUID is `aaguid`).
    #[serde(skip)]
    key: Option<KeyFacts>,
}

fn cose_alg(alg: i64) -> String {
    let name = match alg {
        -7 => "ES256",
        -8 => "EdDSA",
        -35 => "ES384",
        -36 => "ES512",
        -37 => "PS256",
        -257 => "RS256",
        _ => "unknown",
    };
    format!("{name} ({alg})")
}

/// Finds the first string member named one of `names`, anywhere in `v`.
fn find_str<'a>(v: &'a Value, names: &[&str]) -> Option<&'a str> {
    match v {
        Value::Object(map) => names
            .iter()
            .find_map(|n| map.get(*n).and_then(Value::as_str))
            .or_else(|| map.values().find_map(|c| find_str(c, names))),
        Value::Array(items) => items.iter().find_map(|c| find_str(c, names)),
        _ => None,
    }
}

/// What the input held: where it came from, the attestation object, clientDataJSON if any.
type Decoded = (Source, Vec<u8>, Option<Vec<u8>>);

/// Splits the input into its source kind, attestation object and clientDataJSON.
fn decode_input(bytes: &[u8]) -> Result<Decoded, InspectError> {
    let text = std::str::from_utf8(bytes).ok().map(str::trim);
    if let Some(t) = text.filter(|t| t.starts_with('{')) {
        let v: Value = serde_json::from_str(t).map_err(|e| InspectError::Json(e.to_string()))?;
        let att =
            find_str(&v, &["attestationObject", "attestation_object"]).ok_or(InspectError::NoAttestation)?;
        let att = b64::decode_lenient(att).map_err(|_| InspectError::Base64("attestationObject"))?;
        let cd = match find_str(&v, &["clientDataJSON", "client_data_json"]) {
            Some(cd) => Some(b64::decode_lenient(cd).map_err(|_| InspectError::Base64("clientDataJSON"))?),
            None => None,
        };
        return Ok((Source::RegistrationBody, att, cd));
    }
    // A CBOR map (major type 5) is how every attestation object starts.
    if bytes.first().is_some_and(|b| (0xa0..=0xbf).contains(b)) {
        return Ok((Source::Cbor, bytes.to_vec(), None));
    }
    if let Some(t) = text.filter(|t| !t.is_empty()) {
        let compact: String = t.chars().filter(|c| !c.is_whitespace()).collect();
        if let Ok(decoded) = b64::decode_lenient(&compact) {
            return Ok((Source::Base64, decoded, None));
        }
    }
    Err(InspectError::Unrecognised)
}

fn cert_view(c: &X509Certificate<'_>) -> CertView {
    CertView {
        subject: c.subject().to_string(),
        issuer: c.issuer().to_string(),
        not_before: c.validity().not_before.to_string(),
        not_after: c.validity().not_after.to_string(),
        valid_now: c.validity().is_valid(),
    }
}

/// Parses the x5c chain and says whether it is linked and ends at an MDS root of `aaguid`.
fn chain(x5c: &[Vec<u8>], aaguid: Option<&str>) -> (Vec<CertView>, String, bool) {
    let entry = aaguid.and_then(|a| mds::embedded().entry(a));
    verify_chain(x5c, entry.map(|e| (e.description.as_str(), e.attestation_roots.as_slice())))
}

/// Whether `x5c` is linked (each certificate signed by the next) and its last certificate is
/// signed by one of `roots` (the model's name and its root certificates, DER).
fn verify_chain(x5c: &[Vec<u8>], roots: Option<(&str, &[Vec<u8>])>) -> (Vec<CertView>, String, bool) {
    if x5c.is_empty() {
        return (vec![], "no certificate chain (self or no attestation)".into(), false);
    }
    let mut certs = Vec::new();
    for (i, der) in x5c.iter().enumerate() {
        match X509Certificate::from_der(der) {
            Ok((_, c)) => certs.push(c),
            Err(e) => return (vec![], format!("certificate {i} of x5c does not parse: {e}"), false),
        }
    }
    let views = certs.iter().map(cert_view).collect();
    for (i, pair) in certs.windows(2).enumerate() {
        if pair[0].verify_signature(Some(pair[1].public_key())).is_err() {
            return (views, format!("certificate {i} is not signed by certificate {}", i + 1), false);
        }
    }
    let Some((model, roots)) = roots else {
        return (views, "the AAGUID is not in the FIDO metadata (MDS): no root to chain to".into(), false);
    };
    let last = certs.last().expect("x5c is not empty");
    let chains = roots.iter().any(|der| {
        X509Certificate::from_der(der)
            .is_ok_and(|(_, root)| last.verify_signature(Some(root.public_key())).is_ok())
    });
    let verdict = if chains {
        format!("chains to the MDS root of {model}")
    } else {
        format!("does not chain to any of the {} MDS roots of {model}", roots.len())
    };
    (views, verdict, chains)
}

fn finding(check: &str, ok: bool, message: &str, fix: &str) -> Finding {
    Finding {
        check: check.into(),
        severity: if ok { Severity::Ok } else { Severity::Blocking },
        message: message.into(),
        fix: (!ok).then(|| fix.into()),
    }
}

fn inspect(bytes: &[u8]) -> Result<Inspection, InspectError> {
    let (source, att_bytes, cd) = decode_input(bytes)?;
    let att = AttestationObject::parse(&att_bytes).map_err(InspectError::Attestation)?;
    let ad = &att.auth_data;
    let f = ad.flags;
    let cred = ad.attested.as_ref();
    let aaguid = ad.aaguid_string();
    let model = aaguid.as_deref().and_then(|a| mds::embedded().entry(a)).map(|e| e.description.clone());
    let rp_ok = ad.rp_id_hash[..] == Sha256::digest(ENTRA_RP_ID.as_bytes())[..];
    let (certificates, verdict, chains) = chain(&att.x5c(), aaguid.as_deref());
    let checks = vec![
        finding(
            "rp-id",
            rp_ok,
            "made for login.microsoft.com",
            "make the credential with rp id login.microsoft.com",
        ),
        finding("user-presence", f.up(), "user presence (UP) set", "touch the key when it blinks"),
        finding(
            "user-verification",
            f.uv(),
            "user verified (UV) set",
            "make the credential with the PIN (Entra requires UV)",
        ),
        finding(
            "credential",
            f.at() && cred.is_some(),
            "attested credential data present",
            "send the attestationObject of a makeCredential",
        ),
    ];
    let client_data = cd.map(|cd| {
        serde_json::from_slice::<Value>(&cd).unwrap_or_else(|_| Value::String("(not JSON)".into()))
    });
    Ok(Inspection {
        source,
        fmt: att.fmt.clone(),
        aaguid,
        model,
        flags: serde_json::json!({"UP": f.up(), "UV": f.uv(), "BE": f.be(), "BS": f.bs(), "AT": f.at(), "ED": f.ed()}),
        sign_count: ad.sign_count,
        rp_id_is_entra: rp_ok,
        algorithm: cred.and_then(|c| c.alg).map(cose_alg),
        statement_algorithm: att.statement_alg().map(cose_alg),
        extensions: ad.extensions.clone().map(cbor_json::to_json),
        credential_id: cred.map(|c| b64::encode(&c.credential_id)),
        client_data,
        certificates,
        chain: verdict,
        chains_to_mds_root: chains && att.fmt == "packed",
        checks,
        key: cred.map(|c| KeyFacts {
            aaguid: uuid::Uuid::from_bytes(c.aaguid),
            attestation: match (att.fmt == "packed" && !att.x5c().is_empty(), chains) {
                (true, true) => Attestation::TrustedChain,
                (true, false) => Attestation::UntrustedChain,
                (false, _) => Attestation::NoPackedChain,
            },
            passkey_type: if f.be() { PasskeyType::Synced } else { PasskeyType::DeviceBound },
        }),
    })
}

fn print_text(i: &Inspection) {
    let or_dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    println!("input:        {}", serde_json::to_value(i.source).unwrap_or_default().as_str().unwrap_or("-"));
    println!("format:       {}", i.fmt);
    println!("AAGUID:       {}", or_dash(&i.aaguid));
    println!("model:        {}", i.model.clone().unwrap_or_else(|| "(not in FIDO MDS)".into()));
    let flags: Vec<String> = ["UP", "UV", "BE", "BS", "AT", "ED"]
        .iter()
        .map(|k| format!("{k}={}", if i.flags[*k] == true { 1 } else { 0 }))
        .collect();
    println!("flags:        {}", flags.join(" "));
    println!("sign count:   {}", i.sign_count);
    println!("algorithm:    {}", or_dash(&i.algorithm));
    println!("stmt alg:     {}", or_dash(&i.statement_algorithm));
    println!("extensions:   {}", i.extensions.as_ref().map(Value::to_string).unwrap_or_else(|| "-".into()));
    println!("credential:   {}", or_dash(&i.credential_id));
    if let Some(cd) = &i.client_data {
        println!("client data:  type={} origin={}", cd["type"], cd["origin"]);
    }
    println!("certificates: {}", i.certificates.len());
    for (n, c) in i.certificates.iter().enumerate() {
        println!("  [{n}] subject: {}", c.subject);
        println!("      issuer:  {}", c.issuer);
        println!(
            "      valid:   {} – {}{}",
            c.not_before,
            c.not_after,
            if c.valid_now { "" } else { " (NOT valid now)" }
        );
    }
    println!("chain:        {}", i.chain);
    for f in &i.checks {
        let label = match f.severity {
            Severity::Ok => "ok",
            Severity::Blocking => "BLOCKING",
        };
        println!("{label:<9}{:<22}{}", f.check, f.message);
        if let Some(fix) = &f.fix {
            println!("{:<31}fix: {fix}", "");
        }
    }
}

/// The tenant's verdict on the key, as findings: one `policy.model` ok, or each reason.
fn policy_findings(policy: &Fido2Policy, key: &KeyFacts) -> Vec<Finding> {
    match entra_rules::judge(policy, None, key) {
        Verdict::Accepted(_) => vec![Finding {
            check: "policy.model".into(),
            severity: Severity::Ok,
            message: format!("the tenant's FIDO2 policy accepts key model {}", key.aaguid),
            fix: None,
        }],
        Verdict::Refused(reasons) => reasons
            .iter()
            .map(|r| Finding {
                check: r.check().into(),
                severity: Severity::Blocking,
                message: r.to_string(),
                fix: Some(r.fix()),
            })
            .collect(),
    }
}

/// Runs `keyward inspect`.
pub async fn run(args: InspectArgs) -> anyhow::Result<()> {
    let path = args.file.display().to_string();
    let read_err = |e: std::io::Error| InspectError::Read { path: path.clone(), reason: e.to_string() };
    let len = std::fs::metadata(&args.file).map_err(read_err)?.len();
    if len > MAX_INPUT {
        return Err(InspectError::TooLarge(path).into());
    }
    let bytes = std::fs::read(&args.file).map_err(read_err)?;
    let mut result = inspect(&bytes)?;
    if args.policy || args.client.server.is_some() {
        let api = args.client.client()?;
        let policy: Fido2Policy = serde_json::from_value(api.entra_policy().await?)?;
        match result.key {
            Some(key) => {
                let judged = policy_findings(&policy, &key);
                result.checks.extend(judged);
            }
            None => {
                result.checks.push(finding("policy", false, "no AAGUID to judge", "inspect a registration"))
            }
        }
    }
    match args.format {
        InspectFormat::Text => print_text(&result),
        InspectFormat::Json => println!("{}", serde_json::to_string_pretty(&result)?),
    }
    let blocking = result.checks.iter().filter(|f| f.severity == Severity::Blocking).count();
    if blocking > 0 {
        anyhow::bail!("this registration would be refused: {blocking} check(s) fail; see the fixes above");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed root and a leaf it signed, DER.
    fn root_and_leaf() -> (Vec<u8>, Vec<u8>) {
        let root_key = rcgen::KeyPair::generate().unwrap();
        let mut root_params = rcgen::CertificateParams::new(vec![]).unwrap();
        root_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let root = root_params.self_signed(&root_key).unwrap();
        let issuer = rcgen::Issuer::new(root_params, root_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec![]).unwrap().signed_by(&leaf_key, &issuer).unwrap();
        (root.der().to_vec(), leaf.der().to_vec())
    }

    #[test]
    fn chain_verdicts() {
        let (root, leaf) = root_and_leaf();
        let (other_root, _) = root_and_leaf();
        let roots = [root.clone()];
        let others = [other_root];
        type Case<'a> = (&'a str, Vec<Vec<u8>>, Option<(&'a str, &'a [Vec<u8>])>, &'a str, bool);
        let cases: Vec<Case> = vec![
            (
                "leaf under its root",
                vec![leaf.clone()],
                Some(("M", &roots)),
                "chains to the MDS root of M",
                true,
            ),
            ("leaf and root sent", vec![leaf.clone(), root.clone()], Some(("M", &roots)), "chains to", true),
            (
                "foreign root",
                vec![leaf.clone()],
                Some(("M", &others)),
                "does not chain to any of the 1",
                false,
            ),
            ("model not in MDS", vec![leaf.clone()], None, "not in the FIDO metadata", false),
            ("no chain", vec![], Some(("M", &roots)), "no certificate chain", false),
            ("garbage", vec![vec![0x30, 0x01]], Some(("M", &roots)), "does not parse", false),
            ("reversed", vec![root.clone(), leaf.clone()], Some(("M", &roots)), "not signed by", false),
        ];
        for (name, x5c, roots, want, chains) in cases {
            let (_, verdict, got) = verify_chain(&x5c, roots);
            assert!(verdict.contains(want), "{name}: {verdict}");
            assert_eq!(got, chains, "{name}: {verdict}");
        }
    }

    #[test]
    fn inputs_are_recognised_by_shape() {
        let cases: Vec<(&str, &[u8], Result<&str, &str>)> = vec![
            (
                "graph body",
                br#"{"publicKeyCredential":{"response":{"attestationObject":"oA"}}}"#,
                Ok("RegistrationBody"),
            ),
            ("api body", br#" {"attestation_object":"oA","client_data_json":"e30"}"#, Ok("RegistrationBody")),
            ("cbor", &[0xa0], Ok("Cbor")),
            ("base64", b"oA==\n", Ok("Base64")),
            ("bad json", b"{\"a\":", Err("not valid JSON")),
            ("json without attestation", b"{}", Err("no attestation object")),
            ("binary", &[0x00, 0xff], Err("not JSON, not a CBOR")),
        ];
        for (name, input, want) in cases {
            match (decode_input(input), want) {
                (Ok((source, _, _)), Ok(kind)) => assert_eq!(format!("{source:?}"), kind, "{name}"),
                (Err(e), Err(text)) => assert!(e.to_string().contains(text), "{name}: {e}"),
                (got, want) => panic!("{name}: got {:?}, want {want:?}", got.map(|g| g.0)),
            }
        }
    }
}

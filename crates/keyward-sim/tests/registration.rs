//! Passkey registration against the emulator over real HTTP on loopback.
//!
//! Attestations are produced here by an independent test authenticator (p256 + an rcgen
//! CA), not by Keyward's own soft authenticator, so the emulator and Keyward's client
//! cannot share a mistake. One table test holds one case per registration rule.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ciborium::Value as Cbor;
use keyward_sim::server::{RunningSim, spawn};
use keyward_sim::{Sim, SimOptions};
use keyward_webauthn::policy::{
    AttestationEnforcement, EnforcementType, ExcludeTarget, Fido2Policy, IncludeTarget, KeyRestrictions,
    MethodState, PasskeyProfile, TargetType,
};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const APP: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
const READER: &str = "2b0a9bde-77f3-4c0e-8f0a-5d1e2c3b4a59";
const ADELE: &str = "3e0a6d85-cf40-4b12-95e9-4a6f8b0c2d34";
const ALEX: &str = "4f1b7e96-d051-4c23-a6fa-5b7a9c1d3e45";
const PRADEEP: &str = "6b3d90b8-f273-4e45-881c-7d9cbe3f5a67";
const GUEST: &str = "7c4ea1c9-0384-4f56-992d-8eadcf406b78";
const FINANCE: &str = "0b7f3a52-9c1d-4e8f-a2b6-1d3c5e7f9a01";
const EXCLUDED: &str = "2d9f5c74-be3f-4a01-84d8-3f5e7a9b1c23";
const AAGUID: [u8; 16] = *b"KeywardTestKey01";

// ---------------------------------------------------------------- test authenticator

use keyward_testkit::attestation_ca::{TestCa, test_ca, test_ca_with_aaguid_criticality};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fmt {
    PackedFull,
    PackedSelf,
    FidoU2f,
    None,
    Custom,
}

/// Every knob of one registration; `Reg::new` is valid, each case breaks one thing.
#[derive(Clone)]
struct Reg {
    fmt: Fmt,
    kind: String,
    challenge: String,
    origin: String,
    cross_origin: Option<bool>,
    rp_id: String,
    flags: u8,
    alg: i64,
    aaguid: [u8; 16],
    cred_key: SigningKey,
    cred_id: Vec<u8>,
    body_id: Option<String>,
    display_name: Option<String>,
    corrupt_signature: bool,
    standard_base64: bool,
}

const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const AT: u8 = 0x40;

impl Reg {
    fn new(challenge: &str, fmt: Fmt) -> Self {
        let mut cred_id = vec![0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut cred_id);
        Self {
            fmt,
            kind: "webauthn.create".into(),
            challenge: challenge.into(),
            origin: "https://login.microsoft.com".into(),
            cross_origin: Some(false),
            rp_id: "login.microsoft.com".into(),
            flags: UP | UV | AT,
            alg: -7,
            aaguid: if fmt == Fmt::FidoU2f { [0; 16] } else { AAGUID },
            cred_key: SigningKey::random(&mut rand::thread_rng()),
            cred_id,
            body_id: None,
            display_name: Some("Test key".into()),
            corrupt_signature: false,
            standard_base64: false,
        }
    }

    fn cose_key(&self) -> (Vec<u8>, Vec<u8>) {
        let point = self.cred_key.verifying_key().to_encoded_point(false);
        let (x, y) = (point.x().unwrap().to_vec(), point.y().unwrap().to_vec());
        let key = Cbor::Map(vec![
            (Cbor::Integer(1.into()), Cbor::Integer(2.into())),
            (Cbor::Integer(3.into()), Cbor::Integer(self.alg.into())),
            (Cbor::Integer((-1).into()), Cbor::Integer(1.into())),
            (Cbor::Integer((-2).into()), Cbor::Bytes(x.clone())),
            (Cbor::Integer((-3).into()), Cbor::Bytes(y.clone())),
        ]);
        let mut out = vec![];
        ciborium::into_writer(&key, &mut out).unwrap();
        ([vec![0x04], x, y].concat(), out)
    }

    fn client_data(&self) -> Vec<u8> {
        let mut map = serde_json::Map::new();
        map.insert("type".into(), self.kind.clone().into());
        map.insert("challenge".into(), self.challenge.clone().into());
        map.insert("origin".into(), self.origin.clone().into());
        if let Some(c) = self.cross_origin {
            map.insert("crossOrigin".into(), c.into());
        }
        serde_json::to_vec(&Value::Object(map)).unwrap()
    }

    fn auth_data(&self, cose: &[u8]) -> Vec<u8> {
        let mut out = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        out.push(self.flags);
        out.extend_from_slice(&0u32.to_be_bytes());
        if self.flags & AT != 0 {
            out.extend_from_slice(&self.aaguid);
            out.extend_from_slice(&(self.cred_id.len() as u16).to_be_bytes());
            out.extend_from_slice(&self.cred_id);
            out.extend_from_slice(cose);
        }
        out
    }

    /// The attestation object and client data, raw.
    fn build(&self, ca: &TestCa) -> (Vec<u8>, Vec<u8>) {
        let cdj = self.client_data();
        let cdh = Sha256::digest(&cdj);
        let (raw_key, cose) = self.cose_key();
        let auth_data = self.auth_data(&cose);
        let signed = [auth_data.as_slice(), &cdh[..]].concat();
        let sign = |key: &SigningKey, msg: &[u8]| {
            let sig: Signature = key.sign(msg);
            let mut der = sig.to_der().as_bytes().to_vec();
            if self.corrupt_signature {
                let last = der.len() - 1;
                der[last] ^= 0x55;
            }
            der
        };
        let text = |s: &str| Cbor::Text(s.into());
        let (fmt, stmt) = match self.fmt {
            Fmt::PackedFull => (
                "packed",
                vec![
                    (text("alg"), Cbor::Integer((-7).into())),
                    (text("sig"), Cbor::Bytes(sign(&ca.attestation_key, &signed))),
                    (text("x5c"), Cbor::Array(vec![Cbor::Bytes(ca.attestation_der.clone())])),
                ],
            ),
            Fmt::PackedSelf => (
                "packed",
                vec![
                    (text("alg"), Cbor::Integer(self.alg.into())),
                    (text("sig"), Cbor::Bytes(sign(&self.cred_key, &signed))),
                ],
            ),
            Fmt::FidoU2f => {
                let rp_hash = Sha256::digest(self.rp_id.as_bytes());
                let base = [&[0u8][..], &rp_hash[..], &cdh[..], self.cred_id.as_slice(), raw_key.as_slice()]
                    .concat();
                (
                    "fido-u2f",
                    vec![
                        (text("sig"), Cbor::Bytes(sign(&ca.attestation_key, &base))),
                        (text("x5c"), Cbor::Array(vec![Cbor::Bytes(ca.attestation_der.clone())])),
                    ],
                )
            }
            Fmt::None => ("none", vec![]),
            Fmt::Custom => ("keyward-custom", vec![]),
        };
        let object = Cbor::Map(vec![
            (text("fmt"), text(fmt)),
            (text("attStmt"), Cbor::Map(stmt)),
            (text("authData"), Cbor::Bytes(auth_data)),
        ]);
        let mut att = vec![];
        ciborium::into_writer(&object, &mut att).unwrap();
        (att, cdj)
    }

    fn body(&self, ca: &TestCa) -> Value {
        let (att, cdj) = self.build(ca);
        let enc =
            |b: &[u8]| if self.standard_base64 { STANDARD.encode(b) } else { URL_SAFE_NO_PAD.encode(b) };
        let mut body = json!({
            "publicKeyCredential": {
                "id": self.body_id.clone().unwrap_or_else(|| URL_SAFE_NO_PAD.encode(&self.cred_id)),
                "response": { "clientDataJSON": enc(&cdj), "attestationObject": enc(&att) },
                "clientExtensionResults": { "credProtect": 1, "hmacCreateSecret": true }
            }
        });
        if let Some(name) = &self.display_name {
            body["displayName"] = name.clone().into();
        }
        body
    }
}

// ---------------------------------------------------------------- emulator harness

fn seed(ca_pem: &str) -> keyward_sim::seed::Seed {
    let mut seed = keyward_sim::seed::Seed::example();
    seed.attestation_roots_pem = vec![ca_pem.to_owned()];
    seed.aaguid_models.insert(uuid::Uuid::from_bytes(AAGUID).to_string(), "Keyward Test Key".into());
    seed
}

struct Harness {
    running: RunningSim,
    http: reqwest::Client,
    token: String,
    reader_token: String,
    ca: TestCa,
}

impl Harness {
    async fn start() -> Self {
        Self::start_with(SimOptions::default()).await
    }

    async fn start_with(options: SimOptions) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ca = test_ca(AAGUID, "Authenticator Attestation");
        let sim = Sim::new(seed(&ca.ca_pem), options).unwrap();
        let running = spawn(sim, "127.0.0.1:0".parse().unwrap(), None).await.unwrap();
        let token = running.sim.issue_access_token(APP, vec!["UserAuthMethod-Passkey.ReadWrite.All".into()]);
        let reader_token = running.sim.issue_access_token(READER, vec!["User.Read.All".into()]);
        Self { running, http: reqwest::Client::new(), token, reader_token, ca }
    }

    fn url(&self, version: &str, path: &str) -> String {
        format!("{}/{version}{path}", self.running.base_url)
    }

    async fn call(&self, method: reqwest::Method, url: String, body: Option<&Value>) -> (u16, Value) {
        let mut request = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, version: &str, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, self.url(version, path), None).await
    }

    async fn post(&self, version: &str, user: &str, body: &Value) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            self.url(version, &format!("/users/{user}/authentication/fido2Methods")),
            Some(body),
        )
        .await
    }

    async fn challenge(&self, version: &str, user: &str) -> String {
        let (status, body) =
            self.get(version, &format!("/users/{user}/authentication/fido2Methods/creationOptions")).await;
        assert_eq!(status, 200, "{body}");
        body["publicKey"]["challenge"].as_str().unwrap().to_owned()
    }

    fn fresh_challenge(&self, user: &str) -> String {
        keyward_sim::registration::seal_challenge(&self.running.sim, user, now() + 300)
    }

    fn set_policy(&self, policy: Fido2Policy) {
        self.running.sim.write(|t| t.fido2_policy = policy);
    }
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn message(body: &Value) -> String {
    body["error"]["message"].as_str().unwrap_or_default().to_owned()
}

fn profile(
    id: &str,
    types: &str,
    attestation: AttestationEnforcement,
    restrictions: KeyRestrictions,
) -> PasskeyProfile {
    PasskeyProfile {
        id: id.into(),
        name: format!("profile {id}"),
        passkey_types: types.into(),
        attestation_enforcement: attestation,
        key_restrictions: restrictions,
    }
}

fn restrict(kind: EnforcementType, aaguids: &[&str]) -> KeyRestrictions {
    KeyRestrictions {
        is_enforced: true,
        enforcement_type: kind,
        aa_guids: aaguids.iter().map(|s| s.to_string()).collect(),
    }
}

fn with_profiles(profiles: Vec<PasskeyProfile>, allowed: &[&str]) -> Fido2Policy {
    let mut policy = Fido2Policy::default();
    policy.include_targets[0].allowed_passkey_profiles = allowed.iter().map(|s| s.to_string()).collect();
    policy.default_passkey_profile = profiles.first().map(|p| p.id.clone());
    policy.passkey_profiles = profiles;
    policy
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn creation_options_v1_and_beta_spellings_and_bounds() {
    let h = Harness::start().await;
    let base = format!("/users/{ADELE}/authentication/fido2Methods");

    let (status, body) = h.get("v1.0", &format!("{base}/creationOptions")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["@odata.context"],
        "https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.webauthnCredentialCreationOptions"
    );
    assert!(body.get("value").is_none());
    let pk = &body["publicKey"];
    assert_eq!(pk["rp"], json!({"id": "login.microsoft.com", "name": "Microsoft"}));
    assert_eq!(pk["user"]["name"], "adele.vance@contoso.onmicrosoft.com");
    assert_eq!(pk["user"]["displayName"], "Adele Vance");
    let handle = URL_SAFE_NO_PAD.decode(pk["user"]["id"].as_str().unwrap()).unwrap();
    assert!(handle.starts_with(b"OF:") && handle.len() == 51);
    assert_eq!(
        pk["pubKeyCredParams"],
        json!([{"type":"public-key","alg":-7},{"type":"public-key","alg":-257}])
    );
    assert_eq!(pk["timeout"], 0);
    assert_eq!(pk["excludeCredentials"], json!([]));
    assert_eq!(
        pk["authenticatorSelection"],
        json!({"authenticatorAttachment":"cross-platform","requireResidentKey":true,"userVerification":"required"})
    );
    assert_eq!(pk["attestation"], "direct");
    assert_eq!(
        pk["extensions"],
        json!({"hmacCreateSecret":true,"enforceCredentialProtectionPolicy":true,"credentialProtectionPolicy":"userVerificationOptional"})
    );
    let expiry = body["challengeTimeoutDateTime"].as_str().unwrap();
    assert!(expiry.ends_with('Z') && expiry.len() == 20, "{expiry}");
    let expiry = time::OffsetDateTime::parse(expiry, &time::format_description::well_known::Rfc3339).unwrap();
    assert!((expiry.unix_timestamp() - now() - 300).abs() <= 2);
    // The UPN works as well as the object id; unknown users are 404.
    let (status, _) = h
        .get("v1.0", "/users/adele.vance@contoso.onmicrosoft.com/authentication/fido2Methods/creationOptions")
        .await;
    assert_eq!(status, 200);
    let (status, body) = h
        .get("v1.0", "/users/nobody@contoso.onmicrosoft.com/authentication/fido2Methods/creationOptions")
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("Request_ResourceNotFound")));

    // v1.0 refuses the parameter in every spelling.
    for spelling in [
        "creationOptions(challengeTimeoutInMinutes=10)",
        "creationOptions?challengeTimeoutInMinutes=60",
        "creationOptions(challengeTimeoutInMinutes=@challengeTimeoutInMinutes)?challengeTimeoutInMinutes=60",
    ] {
        let (status, body) = h.get("v1.0", &format!("{base}/{spelling}")).await;
        assert_eq!(status, 400, "{spelling}");
        assert!(message(&body).contains("not supported in v1.0"), "{body}");
    }

    // beta: three spellings, bounds 5..=43200.
    for (spelling, minutes) in [
        ("creationOptions", 5),
        ("creationOptions(challengeTimeoutInMinutes=10)", 10),
        ("creationOptions?challengeTimeoutInMinutes=60", 60),
        (
            "creationOptions(challengeTimeoutInMinutes=@challengeTimeoutInMinutes)?challengeTimeoutInMinutes=43200",
            43200,
        ),
        ("creationOptions(challengeTimeoutInMinutes=5)", 5),
    ] {
        let (status, body) = h.get("beta", &format!("{base}/{spelling}")).await;
        assert_eq!(status, 200, "{spelling}: {body}");
        assert_eq!(
            body["@odata.context"],
            "https://graph.microsoft.com/beta/$metadata#microsoft.graph.webauthnCredentialCreationOptions"
        );
        let expiry = time::OffsetDateTime::parse(
            body["challengeTimeoutDateTime"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert!((expiry.unix_timestamp() - now() - minutes * 60).abs() <= 2, "{spelling}");
    }
    for spelling in [
        "creationOptions(challengeTimeoutInMinutes=4)",
        "creationOptions?challengeTimeoutInMinutes=43201",
        "creationOptions(challengeTimeoutInMinutes=@challengeTimeoutInMinutes)?challengeTimeoutInMinutes=4",
    ] {
        let (status, body) = h.get("beta", &format!("{base}/{spelling}")).await;
        assert_eq!(status, 400, "{spelling}");
        assert!(message(&body).contains("between 5 and 43200"), "{body}");
    }

    // Read-only callers may not ask for options; policy is applied early.
    let response = h
        .http
        .get(h.url("v1.0", &format!("{base}/creationOptions")))
        .bearer_auth(&h.reader_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let (status, body) =
        h.get("v1.0", &format!("/users/{GUEST}/authentication/fido2Methods/creationOptions")).await;
    assert_eq!(status, 400);
    assert!(message(&body).contains("Guest"), "{body}");
    // `/me` is not a route.
    let (status, _) = h.get("v1.0", "/me/authentication/fido2Methods/creationOptions").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_full_registration_then_list_get_methods_and_delete() {
    let h = Harness::start().await;
    let challenge = h.challenge("v1.0", ADELE).await;
    let reg = Reg::new(&challenge, Fmt::PackedFull);
    let (status, created) = h.post("v1.0", ADELE, &reg.body(&h.ca)).await;
    assert_eq!(status, 201, "{created}");
    let id = keyward_webauthn::b64::encode_with_pad_digit(&reg.cred_id);
    assert_eq!(created["id"], id.as_str());
    assert!(
        created["@odata.context"]
            .as_str()
            .unwrap()
            .starts_with("https://graph.microsoft.com/v1.0/$metadata#")
    );
    assert_eq!(created["displayName"], "Test key");
    assert_eq!(created["aaGuid"], uuid::Uuid::from_bytes(AAGUID).to_string());
    assert_eq!(created["model"], "Keyward Test Key");
    assert_eq!(created["attestationLevel"], "attested");
    assert_eq!(created["passkeyType"], "deviceBound");
    let thumb = hex::encode(<sha1::Sha1 as Digest>::digest(&h.ca.attestation_der));
    assert_eq!(created["attestationCertificates"], json!([thumb]));
    assert!(created["createdDateTime"].as_str().unwrap().ends_with('Z'));

    let base = format!("/users/{ADELE}/authentication");
    let (status, list) = h.get("v1.0", &format!("{base}/fido2Methods")).await;
    assert_eq!(status, 200);
    assert!(list["@odata.context"].as_str().unwrap().contains("fido2Methods"));
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    assert_eq!(list["value"][0]["id"], id.as_str());

    let (status, one) = h.get("v1.0", &format!("{base}/fido2Methods/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["aaGuid"], created["aaGuid"]);

    let (status, methods) =
        h.get("beta", "/users/adele.vance@contoso.onmicrosoft.com/authentication/methods").await;
    assert_eq!(status, 200, "{methods}");
    let types: Vec<&str> =
        methods["value"].as_array().unwrap().iter().map(|m| m["@odata.type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["#microsoft.graph.passwordAuthenticationMethod", "#microsoft.graph.fido2AuthenticationMethod"]
    );
    assert_eq!(methods["value"][0]["id"], "28c10230-6103-485e-b985-444c60001490");

    // The credential is now excluded in new options (the body carries no transports).
    let (_, options) = h.get("v1.0", &format!("{base}/fido2Methods/creationOptions")).await;
    assert_eq!(
        options["publicKey"]["excludeCredentials"],
        json!([{"type":"public-key","id":URL_SAFE_NO_PAD.encode(&reg.cred_id),"transports":[]}])
    );

    let (status, _) =
        h.call(reqwest::Method::DELETE, h.url("v1.0", &format!("{base}/fido2Methods/{id}")), None).await;
    assert_eq!(status, 204);
    let (status, body) = h.get("v1.0", &format!("{base}/fido2Methods/{id}")).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) =
        h.call(reqwest::Method::DELETE, h.url("v1.0", &format!("{base}/fido2Methods/{id}")), None).await;
    assert_eq!(status, 404);
    let (_, list) = h.get("v1.0", &format!("{base}/fido2Methods")).await;
    assert_eq!(list["value"], json!([]));
}

/// How a case changes the valid registration or the tenant.
type Mutate = Box<dyn Fn(&mut Reg, &Harness)>;

struct Case {
    rule: &'static str,
    version: &'static str,
    user: &'static str,
    policy: Option<Fido2Policy>,
    fmt: Fmt,
    mutate: Mutate,
    /// Replaces the JSON body entirely.
    raw_body: Option<Box<dyn Fn(Value) -> Value>>,
    status: u16,
    message: &'static str,
    /// The answer under `--strict`, where it differs.
    strict: Option<(u16, &'static str)>,
}

fn case(rule: &'static str, status: u16, message: &'static str) -> Case {
    Case {
        rule,
        version: "v1.0",
        user: ADELE,
        policy: None,
        fmt: Fmt::PackedFull,
        mutate: Box::new(|_, _| {}),
        raw_body: None,
        status,
        message,
        strict: None,
    }
}

impl Case {
    fn mutate(mut self, f: impl Fn(&mut Reg, &Harness) + 'static) -> Self {
        self.mutate = Box::new(f);
        self
    }
    fn body(mut self, f: impl Fn(Value) -> Value + 'static) -> Self {
        self.raw_body = Some(Box::new(f));
        self
    }
    fn policy(mut self, p: Fido2Policy) -> Self {
        self.policy = Some(p);
        self
    }
    fn fmt(mut self, f: Fmt) -> Self {
        self.fmt = f;
        self
    }
    fn user(mut self, u: &'static str) -> Self {
        self.user = u;
        self
    }
    fn version(mut self, v: &'static str) -> Self {
        self.version = v;
        self
    }
    fn strict(mut self, status: u16, message: &'static str) -> Self {
        self.strict = Some((status, message));
        self
    }
}

#[tokio::test]
async fn every_registration_rule_is_enforced_and_named() {
    registration_rules(false).await;
}

#[tokio::test]
async fn every_registration_rule_is_enforced_and_named_in_strict_mode() {
    registration_rules(true).await;
}

/// Posts every case's body to an emulator in default or `--strict` mode.
async fn registration_rules(strict: bool) {
    let h = Harness::start_with(SimOptions { strict, ..SimOptions::default() }).await;
    let aaguid = uuid::Uuid::from_bytes(AAGUID).to_string();
    let other_aaguid = "cb69481e-8ff7-4039-93ec-0a2729a154a8";
    let legacy = |f: &dyn Fn(&mut Fido2Policy)| {
        let mut p = Fido2Policy::default();
        f(&mut p);
        p
    };
    // A credential already registered for Adele (for the duplicate case).
    let existing = Reg::new(&h.fresh_challenge(ADELE), Fmt::None);
    let (status, body) = h.post("v1.0", ADELE, &existing.body(&h.ca)).await;
    assert_eq!(status, 201, "{body}");
    let existing_id = existing.cred_id.clone();
    let existing_key = existing.cred_key.clone();
    // A challenge already used by an accepted registration.
    let used = h.fresh_challenge(ADELE);
    let (status, body) = h.post("v1.0", ADELE, &Reg::new(&used, Fmt::None).body(&h.ca)).await;
    assert_eq!(status, 201, "{body}");

    let cases = vec![
        // Body shape.
        case("missing entity", 400, "missing a fido2AuthenticationMethod entity")
            .body(|_| json!({"displayName": "x"})),
        case("double-encoded entity", 400, "missing a fido2AuthenticationMethod entity")
            .body(|b| Value::String(b.to_string())),
        case("double-encoded publicKeyCredential", 400, "missing a fido2AuthenticationMethod entity").body(
            |mut b| {
                b["publicKeyCredential"] = Value::String(b["publicKeyCredential"].to_string());
                b
            },
        ),
        case("@odata.type accepted and ignored", 201, "").body(|mut b| {
            b["@odata.type"] = "#microsoft.graph.fido2AuthenticationMethod".into();
            b["publicKeyCredential"]["@odata.type"] = "#microsoft.graph.webauthnPublicKeyCredential".into();
            b
        }),
        case("displayName too long", 400, "displayName must be at most 30 characters")
            .mutate(|r, _| r.display_name = Some("x".repeat(31))),
        case("displayName 30 ok", 201, "").mutate(|r, _| r.display_name = Some("x".repeat(30))),
        case("v1.0 displayName required", 400, "with a displayName and publicKeyCredential")
            .mutate(|r, _| r.display_name = None),
        case("v1.0 empty displayName", 400, "with a displayName and publicKeyCredential")
            .mutate(|r, _| r.display_name = Some(String::new())),
        // Members DSInternals.Passkeys stopped sending ("Fix passkey cloud registration issues").
        case("rawId refused", 400, "publicKeyCredential.rawId cannot be sent").body(|mut b| {
            b["publicKeyCredential"]["rawId"] = b["publicKeyCredential"]["id"].clone();
            b
        }),
        case("type refused", 400, "publicKeyCredential.type cannot be sent").body(|mut b| {
            b["publicKeyCredential"]["type"] = "public-key".into();
            b
        }),
        case(
            "authenticatorAttachment refused",
            400,
            "publicKeyCredential.authenticatorAttachment cannot be sent",
        )
        .body(|mut b| {
            b["publicKeyCredential"]["authenticatorAttachment"] = "cross-platform".into();
            b
        }),
        case("transports refused", 400, "publicKeyCredential.response.transports cannot be sent").body(
            |mut b| {
                b["publicKeyCredential"]["response"]["transports"] = json!(["usb"]);
                b
            },
        ),
        case("beta displayName required", 400, "displayName")
            .version("beta")
            .mutate(|r, _| r.display_name = None),
        // Decoding.
        case("id not base64", 400, "publicKeyCredential.id is not valid base64")
            .mutate(|r, _| r.body_id = Some("%%%".into())),
        case("clientDataJSON not base64", 400, "clientDataJSON is not valid base64").body(|mut b| {
            b["publicKeyCredential"]["response"]["clientDataJSON"] = "***".into();
            b
        }),
        case("attestationObject not base64", 400, "attestationObject is not valid base64").body(|mut b| {
            b["publicKeyCredential"]["response"]["attestationObject"] = "a$b".into();
            b
        }),
        case("lenient: standard base64 padded", 201, "").mutate(|r, _| r.standard_base64 = true),
        case("lenient: id with padding digit", 201, "")
            .mutate(|r, _| r.body_id = Some(keyward_webauthn::b64::encode_with_pad_digit(&r.cred_id))),
        // Client data.
        case("type", 400, "clientDataJSON.type must be webauthn.create")
            .mutate(|r, _| r.kind = "webauthn.get".into()),
        case("forged challenge", 400, "not issued by this service")
            .mutate(|r, _| r.challenge = URL_SAFE_NO_PAD.encode([7u8; 64])),
        case("challenge of another user", 400, "issued for a different user")
            .mutate(|r, h| r.challenge = h.fresh_challenge(ALEX)),
        case("expired challenge", 400, "expired").mutate(|r, h| {
            r.challenge = keyward_sim::registration::seal_challenge(&h.running.sim, ADELE, now() - 1)
        }),
        // Entra registered two credentials from one set of options (DSInternals' live test).
        case("used challenge, new credential", 201, "")
            .strict(400, "already been used")
            .mutate(move |r, _| r.challenge = used.clone()),
        // Entra accepted the origin .NET's UriBuilder writes (DSInternals' live test).
        case("origin trailing slash", 201, "")
            .strict(400, "clientDataJSON.origin must be exactly https://login.microsoft.com")
            .mutate(|r, _| r.origin = "https://login.microsoft.com/".into()),
        case(
            "origin microsoftonline",
            400,
            "clientDataJSON.origin must be exactly https://login.microsoft.com",
        )
        .mutate(|r, _| r.origin = "https://login.microsoftonline.com".into()),
        case("crossOrigin", 400, "crossOrigin must be false").mutate(|r, _| r.cross_origin = Some(true)),
        // Authenticator data.
        case("rpIdHash", 400, "rpIdHash must be SHA-256 of the rp id login.microsoft.com")
            .mutate(|r, _| r.rp_id = "localhost".into()),
        case("UP", 400, "user present (UP)").mutate(|r, _| r.flags &= !UP),
        case("UV", 400, "user verified (UV)").mutate(|r, _| r.flags &= !UV),
        case("AT", 400, "attested credential data (AT)").fmt(Fmt::None).mutate(|r, _| r.flags &= !AT),
        case("credential id mismatch", 400, "publicKeyCredential.id must equal the credential id")
            .mutate(|r, _| r.body_id = Some(URL_SAFE_NO_PAD.encode([9u8; 32]))),
        case("EdDSA refused", 400, "EdDSA (-8) is not supported").fmt(Fmt::None).mutate(|r, _| r.alg = -8),
        case("ES384 refused", 400, "-35 is not allowed").fmt(Fmt::None).mutate(|r, _| r.alg = -35),
        // Attestation statement.
        case("packed signature", 400, "attestation statement (fmt 'packed') did not verify")
            .mutate(|r, _| r.corrupt_signature = true),
        case("packed self signature", 400, "attestation statement (fmt 'packed') did not verify")
            .fmt(Fmt::PackedSelf)
            .mutate(|r, _| r.corrupt_signature = true),
        case("fido-u2f signature", 400, "attestation statement (fmt 'fido-u2f') did not verify")
            .fmt(Fmt::FidoU2f)
            .mutate(|r, _| r.corrupt_signature = true),
        case("unknown format", 400, "not a supported attestation format").fmt(Fmt::Custom),
        case("fido-u2f accepted", 201, "").fmt(Fmt::FidoU2f),
        case("packed self accepted", 201, "").fmt(Fmt::PackedSelf),
        // Attestation enforcement.
        case("legacy enforcement refuses none", 400, "attestation is enforced")
            .fmt(Fmt::None)
            .policy(legacy(&|p| p.is_attestation_enforced = true)),
        case("legacy enforcement refuses self attestation", 400, "attestation is enforced")
            .fmt(Fmt::PackedSelf)
            .policy(legacy(&|p| p.is_attestation_enforced = true)),
        case("legacy enforcement refuses fido-u2f", 400, "attestation is enforced")
            .fmt(Fmt::FidoU2f)
            .policy(legacy(&|p| p.is_attestation_enforced = true)),
        case("legacy enforcement accepts a trusted packed chain", 201, "")
            .policy(legacy(&|p| p.is_attestation_enforced = true)),
        case("profile enforcement refuses none", 400, "attestation is enforced").fmt(Fmt::None).policy(
            with_profiles(
                vec![profile(
                    "p1",
                    "deviceBound,synced",
                    AttestationEnforcement::RegistrationOnly,
                    KeyRestrictions::default(),
                )],
                &[],
            ),
        ),
        // AAGUID restrictions.
        case("legacy allow list", 400, "is not in the allow list of keyRestrictions")
            .policy(legacy(&|p| p.key_restrictions = restrict(EnforcementType::Allow, &[other_aaguid]))),
        case("legacy block list", 400, "is blocked by keyRestrictions").policy({
            let a = aaguid.clone();
            legacy(&move |p| p.key_restrictions = restrict(EnforcementType::Block, &[a.as_str()]))
        }),
        case("legacy allow list accepts listed", 201, "").policy({
            let a = aaguid.to_uppercase();
            legacy(&move |p| p.key_restrictions = restrict(EnforcementType::Allow, &[a.as_str()]))
        }),
        case("profile block list", 400, "is blocked by keyRestrictions").policy(with_profiles(
            vec![profile(
                "p1",
                "deviceBound",
                AttestationEnforcement::Disabled,
                restrict(EnforcementType::Block, &[&aaguid]),
            )],
            &["p1"],
        )),
        case("one of several profiles suffices", 201, "").policy(with_profiles(
            vec![
                profile(
                    "p1",
                    "deviceBound",
                    AttestationEnforcement::Disabled,
                    restrict(EnforcementType::Block, &[&aaguid]),
                ),
                profile(
                    "p2",
                    "deviceBound",
                    AttestationEnforcement::Disabled,
                    restrict(EnforcementType::Allow, &[&aaguid]),
                ),
            ],
            &["p1", "p2"],
        )),
        case("profile not targeted falls back to default", 400, "is blocked by keyRestrictions").policy(
            with_profiles(
                vec![
                    profile(
                        "p1",
                        "deviceBound",
                        AttestationEnforcement::Disabled,
                        restrict(EnforcementType::Block, &[&aaguid]),
                    ),
                    profile(
                        "p2",
                        "deviceBound",
                        AttestationEnforcement::Disabled,
                        KeyRestrictions::default(),
                    ),
                ],
                &[],
            ),
        ),
        // Passkey type.
        case("synced refused by passkeyTypes", 400, "passkeyType synced is not allowed")
            .fmt(Fmt::None)
            .mutate(|r, _| r.flags |= BE)
            .policy(with_profiles(
                vec![profile(
                    "p1",
                    "deviceBound",
                    AttestationEnforcement::Disabled,
                    KeyRestrictions::default(),
                )],
                &["p1"],
            )),
        case("synced accepted without profiles", 201, "").fmt(Fmt::None).mutate(|r, _| r.flags |= BE),
        // Policy on the user.
        case("method disabled", 403, "disabled").policy(legacy(&|p| p.state = MethodState::Disabled)),
        case("self-service off", 403, "isSelfServiceRegistrationAllowed is false")
            .policy(legacy(&|p| p.is_self_service_registration_allowed = false)),
        case("not in includeTargets", 403, "not in includeTargets").user(ALEX).policy(legacy(&|p| {
            p.include_targets = vec![IncludeTarget {
                id: FINANCE.into(),
                target_type: TargetType::Group,
                is_registration_required: false,
                allowed_passkey_profiles: vec![],
            }]
        })),
        case("user target by id", 201, "").user(ALEX).policy(legacy(&|p| {
            p.include_targets = vec![IncludeTarget {
                id: ALEX.into(),
                target_type: TargetType::User,
                is_registration_required: false,
                allowed_passkey_profiles: vec![],
            }]
        })),
        case("in excludeTargets", 403, "excludeTargets").user(PRADEEP).policy(legacy(&|p| {
            p.exclude_targets = vec![ExcludeTarget { id: EXCLUDED.into(), target_type: TargetType::Group }]
        })),
        case("excluded by user target", 403, "excludeTargets").policy(legacy(&|p| {
            p.exclude_targets = vec![ExcludeTarget { id: ADELE.into(), target_type: TargetType::User }]
        })),
        case("guest", 400, "Guest users (userType Guest) cannot register passkeys").user(GUEST),
        // Duplicate.
        case("duplicate credential id", 409, "duplicate credential id").fmt(Fmt::None).mutate(move |r, _| {
            r.cred_id = existing_id.clone();
            r.cred_key = existing_key.clone();
        }),
    ];

    let mut failures = vec![];
    for c in &cases {
        h.set_policy(c.policy.clone().unwrap_or_default());
        let mut reg = Reg::new(&h.fresh_challenge(c.user), c.fmt);
        (c.mutate)(&mut reg, &h);
        let mut body = reg.body(&h.ca);
        if let Some(f) = &c.raw_body {
            body = f(body);
        }
        let (status, response) = h.post(c.version, c.user, &body).await;
        let text = message(&response);
        let (want_status, want_message) = match c.strict {
            Some(answer) if strict => answer,
            _ => (c.status, c.message),
        };
        if status != want_status || !text.contains(want_message) {
            failures.push(format!(
                "{} (strict: {strict}): expected {want_status} '{want_message}', got {status} {response}",
                c.rule
            ));
        }
        if status >= 400 {
            assert!(response["error"]["innerError"]["request-id"].is_string(), "{}: {response}", c.rule);
        }
    }
    h.set_policy(Fido2Policy::default());
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // Permissions and unknown users.
    let body = Reg::new(&h.fresh_challenge(ADELE), Fmt::None).body(&h.ca);
    let response = h
        .http
        .post(h.url("v1.0", &format!("/users/{ADELE}/authentication/fido2Methods")))
        .bearer_auth(&h.reader_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let (status, _) = h.post("v1.0", "00000000-0000-0000-0000-00000000dead", &body).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_chain_to_an_untrusted_root_is_not_attested_and_refused_when_enforced() {
    let h = Harness::start().await;
    let stranger = test_ca(AAGUID, "Authenticator Attestation");
    let reg = Reg::new(&h.fresh_challenge(ADELE), Fmt::PackedFull);
    let (status, created) = h.post("v1.0", ADELE, &reg.body(&stranger)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["attestationLevel"], "notAttested");
    assert_eq!(created["attestationCertificates"].as_array().unwrap().len(), 1);

    let policy = Fido2Policy { is_attestation_enforced: true, ..Default::default() };
    h.set_policy(policy);
    let reg = Reg::new(&h.fresh_challenge(ADELE), Fmt::PackedFull);
    let (status, body) = h.post("v1.0", ADELE, &reg.body(&stranger)).await;
    assert_eq!(status, 400);
    assert!(message(&body).contains("without a trusted chain"), "{body}");
}

/// Entra accepted a packed statement under a self-signed CA with a critical AAGUID extension
/// when attestation was not enforced (DSInternals.Passkeys' live test); `--strict` keeps the
/// WebAuthn §8.2.1 certificate requirements.
#[tokio::test]
async fn a_certificate_outside_the_packed_profile_is_accepted_unattested_unless_strict() {
    let bad_ou = test_ca(AAGUID, "Not Authenticator Attestation");
    let critical = test_ca_with_aaguid_criticality(AAGUID, "Authenticator Attestation", true);
    for strict in [false, true] {
        let h = Harness::start_with(SimOptions { strict, ..SimOptions::default() }).await;
        for (name, ca) in [("OU", &bad_ou), ("critical AAGUID extension", &critical)] {
            let reg = Reg::new(&h.fresh_challenge(ADELE), Fmt::PackedFull);
            let (status, body) = h.post("v1.0", ADELE, &reg.body(ca)).await;
            if strict {
                assert_eq!(status, 400, "{name}, strict: {body}");
                assert!(message(&body).contains("did not verify"), "{name}, strict: {body}");
            } else {
                assert_eq!(status, 201, "{name}: {body}");
                assert_eq!(body["attestationLevel"], "notAttested", "{name}: {body}");
            }
            // The signature is still checked.
            let mut forged = Reg::new(&h.fresh_challenge(ADELE), Fmt::PackedFull);
            forged.corrupt_signature = true;
            let (status, body) = h.post("v1.0", ADELE, &forged.body(ca)).await;
            assert_eq!(status, 400, "{name}, forged (strict: {strict}): {body}");
            assert!(message(&body).contains("did not verify"), "{name}, forged: {body}");
        }
        // Enforced attestation refuses it in either mode.
        h.set_policy(Fido2Policy { is_attestation_enforced: true, ..Default::default() });
        let reg = Reg::new(&h.fresh_challenge(ADELE), Fmt::PackedFull);
        let (status, body) = h.post("v1.0", ADELE, &reg.body(&critical)).await;
        assert_eq!(status, 400, "enforced (strict: {strict}): {body}");
    }
}

//! The Entra login endpoints of `keyward sim`, driven over real HTTP on loopback.

use std::collections::HashMap;
use std::sync::OnceLock;

/// A token request's form fields.
type Form = Vec<(&'static str, String)>;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use keyward_sim::seed::Seed;
use keyward_sim::server::{RunningSim, spawn};
use keyward_sim::{Sim, SimOptions};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const CLIENT: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
const SECRET: &str = "sim-secret-change-me";
const TID: &str = "8f5d2c1e-4b7a-4e3f-9a61-2d0c5b7e9f13";
const SCOPE: &str = "https://graph.microsoft.com/.default";
const REDIRECT: &str = "http://127.0.0.1:8443/auth/callback";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An RSA key with a self-signed certificate.
struct TestCert {
    key_pem: String,
    cert_pem: String,
    der: Vec<u8>,
}

impl TestCert {
    fn generate(name: &str) -> Self {
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let key_pem = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let kp = rcgen::KeyPair::from_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap().self_signed(&kp).unwrap();
        Self { key_pem, cert_pem: cert.pem(), der: cert.der().to_vec() }
    }

    fn x5t(&self) -> String {
        b64(&<sha1::Sha1 as Digest>::digest(&self.der))
    }

    fn x5t_s256(&self) -> String {
        b64(&Sha256::digest(&self.der))
    }
}

/// The registered certificate and one the app does not know.
fn certs() -> &'static (TestCert, TestCert) {
    static CERTS: OnceLock<(TestCert, TestCert)> = OnceLock::new();
    CERTS.get_or_init(|| (TestCert::generate("keyward-connector"), TestCert::generate("stranger")))
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

async fn start() -> RunningSim {
    start_with(SimOptions::default()).await
}

async fn start_with(options: SimOptions) -> RunningSim {
    let mut seed = Seed::example();
    seed.apps[0].certificates_pem = vec![certs().0.cert_pem.clone()];
    let sim = Sim::new(seed, options).unwrap();
    spawn(sim, "127.0.0.1:0".parse().unwrap(), None).await.unwrap()
}

fn client() -> reqwest::Client {
    // reqwest is built without a default TLS provider; it wants one even for plain http.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// How to build a client assertion.
#[derive(Clone)]
struct Assertion {
    alg: Algorithm,
    s256: bool,
    aud: String,
    iss: String,
    sub: String,
    exp_offset: i64,
    nbf_offset: i64,
    jti: String,
    /// Sign with the stranger's key (but name the thumbprint below).
    sign_with_stranger: bool,
    /// Name the stranger's certificate.
    thumbprint_of_stranger: bool,
    /// Write `exp`, `nbf` and `iat` with a fraction of a second, as MSAL Python does.
    fractional_times: bool,
}

impl Assertion {
    fn new(base_url: &str) -> Self {
        Self {
            alg: Algorithm::RS256,
            s256: false,
            aud: format!("{base_url}/{TID}/oauth2/v2.0/token"),
            iss: CLIENT.into(),
            sub: CLIENT.into(),
            exp_offset: 600,
            nbf_offset: 0,
            jti: uuid::Uuid::new_v4().to_string(),
            sign_with_stranger: false,
            thumbprint_of_stranger: false,
            fractional_times: false,
        }
    }

    fn sign(&self) -> String {
        let (ours, stranger) = certs();
        let named = if self.thumbprint_of_stranger { stranger } else { ours };
        let signer = if self.sign_with_stranger { stranger } else { ours };
        let mut header = Header::new(self.alg);
        if self.s256 {
            header.x5t_s256 = Some(named.x5t_s256());
        } else {
            header.x5t = Some(named.x5t());
        }
        let now = now();
        let time = |offset: i64| {
            if self.fractional_times { json!((now + offset) as f64 + 0.372_915) } else { json!(now + offset) }
        };
        let claims = json!({
            "aud": self.aud, "iss": self.iss, "sub": self.sub, "jti": self.jti,
            "nbf": time(self.nbf_offset), "iat": time(0), "exp": time(self.exp_offset),
        });
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_pem(signer.key_pem.as_bytes()).unwrap())
            .unwrap()
    }
}

fn assertion_form(assertion: &str) -> Vec<(&'static str, String)> {
    vec![
        ("client_id", CLIENT.into()),
        ("scope", SCOPE.into()),
        ("grant_type", "client_credentials".into()),
        ("client_assertion_type", JWT_BEARER.into()),
        ("client_assertion", assertion.into()),
    ]
}

fn secret_form() -> Vec<(&'static str, String)> {
    vec![
        ("client_id", CLIENT.into()),
        ("scope", SCOPE.into()),
        ("grant_type", "client_credentials".into()),
        ("client_secret", SECRET.into()),
    ]
}

async fn post_token(base_url: &str, tenant: &str, form: &[(&str, String)]) -> reqwest::Response {
    client().post(format!("{base_url}/{tenant}/oauth2/v2.0/token")).form(form).send().await.unwrap()
}

async fn jwks_key(base_url: &str) -> (String, DecodingKey) {
    let jwks: Value = client()
        .get(format!("{base_url}/{TID}/discovery/v2.0/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    let decoding =
        DecodingKey::from_rsa_components(key["n"].as_str().unwrap(), key["e"].as_str().unwrap()).unwrap();
    (key["kid"].as_str().unwrap().to_owned(), decoding)
}

/// Checks the Entra error shape and returns the body.
async fn expect_error(response: reqwest::Response, status: u16, error: &str, code: u64) -> Value {
    assert_eq!(response.status().as_u16(), status, "status for AADSTS{code}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(description.starts_with(&format!("AADSTS{code}: ")), "{description}");
    let trace = body["trace_id"].as_str().unwrap();
    let correlation = body["correlation_id"].as_str().unwrap();
    let timestamp = body["timestamp"].as_str().unwrap();
    assert!(
        description.ends_with(&format!(
            "\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {timestamp}"
        )),
        "{description}"
    );
    assert_eq!(timestamp.len(), "2016-01-09 02:02:12Z".len(), "{timestamp}");
    assert_eq!(&timestamp[10..11], " ");
    assert!(timestamp.ends_with('Z'));
    uuid::Uuid::parse_str(trace).unwrap();
    uuid::Uuid::parse_str(correlation).unwrap();
    body
}

async fn expect_token(response: reqwest::Response, base_url: &str) -> Value {
    assert_eq!(response.status(), 200);
    assert!(response.headers()["cache-control"].to_str().unwrap().contains("no-store"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    let (kid, key) = jwks_key(base_url).await;
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(jsonwebtoken::decode_header(token).unwrap().kid.as_deref(), Some(kid.as_str()));
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["https://graph.microsoft.com"]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation).unwrap().claims;
    assert_eq!(claims["tid"], TID);
    assert_eq!(claims["appid"], CLIENT);
    claims
}

#[tokio::test]
async fn client_secret_in_the_body_or_by_basic_auth_gives_a_token_with_roles_tid_appid() {
    let sim = start().await;
    let claims = expect_token(post_token(&sim.base_url, TID, &secret_form()).await, &sim.base_url).await;
    let roles = claims["roles"].as_array().unwrap();
    assert!(roles.contains(&json!("UserAuthMethod-Passkey.ReadWrite.All")), "{claims}");
    assert_eq!(claims["idtyp"], "app");

    // The tenant domain works in place of the GUID, and HTTP Basic carries the secret.
    let response = client()
        .post(format!("{}/contoso.onmicrosoft.com/oauth2/v2.0/token", sim.base_url))
        .basic_auth(CLIENT, Some(SECRET))
        .form(&[("scope", SCOPE), ("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    expect_token(response, &sim.base_url).await;
    sim.stop().await;
}

#[tokio::test]
async fn certificate_assertions_rs256_with_x5t_and_ps256_with_x5t_s256_are_accepted() {
    let sim = start().await;
    let rs256 = Assertion::new(&sim.base_url).sign();
    expect_token(post_token(&sim.base_url, TID, &assertion_form(&rs256)).await, &sim.base_url).await;

    let ps256 = Assertion { alg: Algorithm::PS256, s256: true, ..Assertion::new(&sim.base_url) }.sign();
    expect_token(post_token(&sim.base_url, TID, &assertion_form(&ps256)).await, &sim.base_url).await;

    // A connector configured for the real authority signs for login.microsoftonline.com.
    for tenant in [TID, "contoso.onmicrosoft.com"] {
        let real = Assertion {
            aud: format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"),
            ..Assertion::new(&sim.base_url)
        }
        .sign();
        expect_token(post_token(&sim.base_url, TID, &assertion_form(&real)).await, &sim.base_url).await;
    }
    sim.stop().await;
}

/// RFC 7519 NumericDate may be fractional and MSAL Python sends such times; Entra accepts them.
#[tokio::test]
async fn fractional_assertion_times_are_accepted_by_default_and_refused_in_strict_mode() {
    let sim = start().await;
    let fractional = Assertion { fractional_times: true, ..Assertion::new(&sim.base_url) }.sign();
    expect_token(post_token(&sim.base_url, TID, &assertion_form(&fractional)).await, &sim.base_url).await;
    // Fractional times still get the time-range check.
    let expired = Assertion {
        fractional_times: true,
        exp_offset: -120,
        nbf_offset: -700,
        ..Assertion::new(&sim.base_url)
    }
    .sign();
    expect_error(
        post_token(&sim.base_url, TID, &assertion_form(&expired)).await,
        401,
        "invalid_client",
        700024,
    )
    .await;
    sim.stop().await;

    let strict = start_with(SimOptions { strict: true, ..SimOptions::default() }).await;
    let fractional = Assertion { fractional_times: true, ..Assertion::new(&strict.base_url) }.sign();
    let body = expect_error(
        post_token(&strict.base_url, TID, &assertion_form(&fractional)).await,
        401,
        "invalid_client",
        50013,
    )
    .await;
    assert!(body["error_description"].as_str().unwrap().contains("--strict"), "{body}");
    let whole = Assertion::new(&strict.base_url).sign();
    expect_token(post_token(&strict.base_url, TID, &assertion_form(&whole)).await, &strict.base_url).await;
    strict.stop().await;
}

#[tokio::test]
async fn token_requests_breaking_a_rule_are_refused_with_its_aadsts_code() {
    let sim = start().await;
    let base = sim.base_url.clone();
    let with = |name: &'static str, value: &str| {
        let mut form = secret_form();
        form.retain(|(k, _)| *k != name);
        if !value.is_empty() {
            form.push((name, value.to_owned()));
        }
        form
    };
    let signed = |a: Assertion| assertion_form(&a.sign());
    let a = || Assertion::new(&base);
    #[rustfmt::skip]
    let cases: Vec<(&str, &str, Form, u16, &str, u64)> = vec![
        ("bad secret", TID, with("client_secret", "wrong"), 401, "invalid_client", 7000215),
        ("unknown client", TID, with("client_id", "00000000-0000-0000-0000-000000000001"), 400, "unauthorized_client", 700016),
        ("no credential", TID, with("client_secret", ""), 401, "invalid_client", 7000218),
        ("no grant_type", TID, with("grant_type", ""), 400, "invalid_request", 900144),
        ("unsupported grant", TID, with("grant_type", "password"), 400, "unsupported_grant_type", 70003),
        ("scope without /.default", TID, with("scope", "https://graph.microsoft.com/User.Read"), 400, "invalid_scope", 1002012),
        ("bare resource", TID, with("scope", "https://graph.microsoft.com"), 400, "invalid_scope", 1002012),
        ("another resource", TID, with("scope", "https://vault.azure.net/.default"), 400, "invalid_scope", 70011),
        ("two resources", TID, with("scope", "https://graph.microsoft.com/.default https://vault.azure.net/.default"), 400, "invalid_scope", 70011),
        ("unknown tenant", "fabrikam.onmicrosoft.com", secret_form(), 400, "invalid_request", 90002),
        ("common", "common", secret_form(), 400, "invalid_request", 9001023),
        ("consumers", "consumers", secret_form(), 400, "invalid_request", 9001023),
        ("wrong thumbprint", TID, signed(Assertion { sign_with_stranger: true, thumbprint_of_stranger: true, ..a() }), 401, "invalid_client", 700027),
        ("forged signature", TID, signed(Assertion { sign_with_stranger: true, ..a() }), 401, "invalid_client", 700027),
        ("forged PS256", TID, signed(Assertion { alg: Algorithm::PS256, s256: true, sign_with_stranger: true, ..a() }), 401, "invalid_client", 700027),
        ("expired", TID, signed(Assertion { exp_offset: -120, nbf_offset: -700, ..a() }), 401, "invalid_client", 700024),
        ("not yet valid", TID, signed(Assertion { nbf_offset: 300, ..a() }), 401, "invalid_client", 700024),
        ("wrong audience", TID, signed(Assertion { aud: "https://login.microsoftonline.com/common/oauth2/v2.0/token".into(), ..a() }), 401, "invalid_client", 700023),
        ("v1 audience", TID, signed(Assertion { aud: format!("{base}/{TID}/oauth2/token"), ..a() }), 401, "invalid_client", 700023),
        ("wrong issuer", TID, signed(Assertion { iss: "someone-else".into(), ..a() }), 401, "invalid_client", 700021),
        ("wrong subject", TID, signed(Assertion { sub: "someone-else".into(), ..a() }), 401, "invalid_client", 700021),
        ("empty jti", TID, signed(Assertion { jti: String::new(), ..a() }), 401, "invalid_client", 50013),
        ("malformed assertion", TID, assertion_form("not-a-jwt"), 401, "invalid_client", 50027),
    ];
    for (name, tenant, form, status, error, code) in cases {
        let response = post_token(&base, tenant, &form).await;
        let status_seen = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            (status_seen, body["error"].as_str(), body["error_codes"][0].as_u64()),
            (status, Some(error), Some(code)),
            "case {name}: {body}"
        );
    }
    // The full shape, once, with the client-request-id echoed as the correlation id.
    let correlation = "0f5e1b3a-1111-4222-8333-944455556666";
    let response = client()
        .post(format!("{base}/{TID}/oauth2/v2.0/token"))
        .header("client-request-id", correlation)
        .form(&with("client_secret", "wrong"))
        .send()
        .await
        .unwrap();
    let body = expect_error(response, 401, "invalid_client", 7000215).await;
    assert_eq!(body["correlation_id"], correlation);
    sim.stop().await;
}

#[tokio::test]
async fn a_replayed_assertion_jti_is_refused_but_a_fresh_one_works() {
    let sim = start().await;
    let assertion = Assertion::new(&sim.base_url);
    let first = assertion.sign();
    expect_token(post_token(&sim.base_url, TID, &assertion_form(&first)).await, &sim.base_url).await;
    // Same jti, even re-signed, is a replay.
    let again = assertion.sign();
    let body = expect_error(
        post_token(&sim.base_url, TID, &assertion_form(&again)).await,
        401,
        "invalid_client",
        50013,
    )
    .await;
    assert!(body["error_description"].as_str().unwrap().contains("already used"), "{body}");
    let fresh = Assertion::new(&sim.base_url).sign();
    expect_token(post_token(&sim.base_url, TID, &assertion_form(&fresh)).await, &sim.base_url).await;
    sim.stop().await;
}

#[tokio::test]
async fn discovery_and_jwks_describe_the_tenant() {
    let sim = start().await;
    let base = &sim.base_url;
    for tenant in [TID, "contoso.onmicrosoft.com"] {
        let doc: Value = client()
            .get(format!("{base}/{tenant}/v2.0/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc["issuer"], format!("{base}/{TID}/v2.0"));
        assert_eq!(doc["authorization_endpoint"], format!("{base}/{TID}/oauth2/v2.0/authorize"));
        assert_eq!(doc["token_endpoint"], format!("{base}/{TID}/oauth2/v2.0/token"));
        assert_eq!(doc["jwks_uri"], format!("{base}/{TID}/discovery/v2.0/keys"));
        assert_eq!(doc["response_types_supported"], json!(["code"]));
        assert_eq!(doc["subject_types_supported"], json!(["pairwise"]));
        assert_eq!(doc["id_token_signing_alg_values_supported"], json!(["RS256"]));
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        let methods = doc["token_endpoint_auth_methods_supported"].as_array().unwrap();
        for m in ["client_secret_post", "private_key_jwt", "client_secret_basic"] {
            assert!(methods.contains(&json!(m)));
        }
        assert!(doc["scopes_supported"].as_array().unwrap().contains(&json!("openid")));
    }
    let common: Value = client()
        .get(format!("{base}/common/v2.0/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(common["issuer"], format!("{base}/{{tenantid}}/v2.0"));
    let unknown = client()
        .get(format!("{base}/nope.example/v2.0/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    expect_error(unknown, 400, "invalid_request", 90002).await;

    let (kid, _) = jwks_key(base).await;
    assert!(!kid.is_empty());
    sim.stop().await;
}

/// Opens the sign-in page, picks `user_id`, and returns the redirect's query.
async fn sign_in(base: &str, user_id: &str, challenge: &str, nonce: &str) -> HashMap<String, String> {
    let params = [
        ("client_id", CLIENT),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("response_mode", "query"),
        ("scope", "openid profile email"),
        ("state", "st<a>te&1"),
        ("nonce", nonce),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    let page =
        client().get(format!("{base}/{TID}/oauth2/v2.0/authorize")).query(&params).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("adele.vance@contoso.onmicrosoft.com"), "{html}");
    assert!(html.contains("Alex Wilber"));
    assert!(!html.contains("megan.bowen"), "disabled users are not offered");
    assert!(html.contains("st&lt;a&gt;te&amp;1") && !html.contains("st<a>te"), "state is escaped");
    let mut form: Vec<(&str, &str)> = params.to_vec();
    form.push(("user_id", user_id));
    let response =
        client().post(format!("{base}/{TID}/oauth2/v2.0/authorize")).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 302, "{:?}", response.text().await);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(REDIRECT), "{location}");
    location.query_pairs().into_owned().collect()
}

fn redeem_form(code: &str, verifier: &str) -> Vec<(&'static str, String)> {
    vec![
        ("client_id", CLIENT.into()),
        ("grant_type", "authorization_code".into()),
        ("code", code.into()),
        ("redirect_uri", REDIRECT.into()),
        ("code_verifier", verifier.into()),
        ("client_secret", SECRET.into()),
    ]
}

#[tokio::test]
async fn sign_in_with_pkce_gives_an_id_token_verified_by_the_jwks_and_the_code_is_single_use() {
    let sim = start().await;
    let base = sim.base_url.clone();
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = b64(&Sha256::digest(verifier.as_bytes()));
    let adele = "3e0a6d85-cf40-4b12-95e9-4a6f8b0c2d34";
    let query = sign_in(&base, adele, &challenge, "n-0S6_WzA2Mj").await;
    assert_eq!(query.get("state").map(String::as_str), Some("st<a>te&1"));
    let code = query.get("code").unwrap().clone();

    let response = post_token(&base, TID, &redeem_form(&code, verifier)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    let id_token = body["id_token"].as_str().unwrap();
    let (kid, key) = jwks_key(&base).await;
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), Some(kid.as_str()));
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[CLIENT]);
    validation.set_issuer(&[format!("{base}/{TID}/v2.0")]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "nbf"]);
    let claims = jsonwebtoken::decode::<Value>(id_token, &key, &validation).unwrap().claims;
    assert_eq!(claims["oid"], adele);
    assert_eq!(claims["tid"], TID);
    assert_eq!(claims["preferred_username"], "adele.vance@contoso.onmicrosoft.com");
    assert_eq!(claims["name"], "Adele Vance");
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["ver"], "2.0");
    let sub = claims["sub"].as_str().unwrap();
    assert_eq!(sub.len(), 43);
    assert_ne!(sub, adele);

    // The same code again.
    let reused = post_token(&base, TID, &redeem_form(&code, verifier)).await;
    expect_error(reused, 400, "invalid_grant", 54005).await;
    sim.stop().await;
}

#[tokio::test]
async fn code_redemption_and_sign_in_rules_are_enforced() {
    let sim = start().await;
    let base = sim.base_url.clone();
    let verifier = "a-verifier-of-sufficient-length-0123456789abcdef";
    let challenge = b64(&Sha256::digest(verifier.as_bytes()));
    let adele = "3e0a6d85-cf40-4b12-95e9-4a6f8b0c2d34";

    // Wrong PKCE verifier.
    let code = sign_in(&base, adele, &challenge, "n1").await["code"].clone();
    let wrong =
        post_token(&base, TID, &redeem_form(&code, "another-verifier-entirely-0123456789abcdefgh")).await;
    expect_error(wrong, 400, "invalid_grant", 501481).await;

    // Redirect URI differing from the authorize request's.
    let code = sign_in(&base, adele, &challenge, "n2").await["code"].clone();
    let mut form = redeem_form(&code, verifier);
    form.retain(|(k, _)| *k != "redirect_uri");
    form.push(("redirect_uri", "http://localhost:8443/auth/callback".into()));
    expect_error(post_token(&base, TID, &form).await, 400, "invalid_request", 50011).await;

    // A confidential client must authenticate to redeem.
    let code = sign_in(&base, adele, &challenge, "n3").await["code"].clone();
    let mut form = redeem_form(&code, verifier);
    form.retain(|(k, _)| *k != "client_secret");
    expect_error(post_token(&base, TID, &form).await, 401, "invalid_client", 7000218).await;

    // An unknown code.
    let unknown = post_token(&base, TID, &redeem_form("bm90LWEtY29kZQ", verifier)).await;
    expect_error(unknown, 400, "invalid_grant", 70000).await;

    // Authorize with a redirect URI the app does not have: an error page, no redirect.
    let page = client()
        .get(format!("{base}/{TID}/oauth2/v2.0/authorize"))
        .query(&[
            ("client_id", CLIENT),
            ("response_type", "code"),
            ("redirect_uri", "https://evil.example/<cb>"),
            ("scope", "openid"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 400);
    let html = page.text().await.unwrap();
    assert!(html.contains("AADSTS50011"), "{html}");
    assert!(html.contains("https://evil.example/&lt;cb&gt;") && !html.contains("<cb>"), "escaped: {html}");

    // A disabled user cannot sign in, even by posting the pick directly.
    let megan = "5a2c8fa7-e162-4d34-b70b-6c8bad2e4f56";
    let response = client()
        .post(format!("{base}/{TID}/oauth2/v2.0/authorize"))
        .form(&[
            ("client_id", CLIENT),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("user_id", megan),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("AADSTS50057"));

    // Errors after the redirect URI is trusted go back to it.
    let response = client()
        .get(format!("{base}/{TID}/oauth2/v2.0/authorize"))
        .query(&[
            ("client_id", CLIENT),
            ("response_type", "token"),
            ("redirect_uri", REDIRECT),
            ("state", "s"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    let query: HashMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(query["error"], "unsupported_response_type");
    assert_eq!(query["state"], "s");
    sim.stop().await;
}

//! An independent OAuth client library obtains a token from the emulator with a certificate
//! client assertion: MSAL Python (`python/msal_certificate_token.py`), which writes `exp`, `nbf`
//! and `iat` with fractions of a second (RFC 7519 NumericDate allows it; Entra accepts it). The
//! script records the claims MSAL signed, so the test checks the times were fractional; `--strict`
//! refuses the very same client (AADSTS50013), which shows the fractions are what is tested.
//!
//! The emulator runs with TLS (MSAL only takes an https authority) and the script trusts its
//! self-signed certificate. The interpreter is `KEYWARD_PYTHON` or the workspace venv.

use std::process::Command;

use keyward_sim::seed::Seed;
use keyward_sim::server::{SelfSignedTls, spawn};
use keyward_sim::{Sim, SimOptions};
use keyward_testkit::seed::{APP, TENANT};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::{Value, json};

/// MSAL's answer against an emulator in `strict` mode or not.
async fn msal_against(strict: bool) -> Value {
    keyward_testkit::sim::install_crypto();
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let key_pem = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let signer = rcgen::KeyPair::from_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["keyward-connector".to_owned()])
        .unwrap()
        .self_signed(&signer)
        .unwrap();
    let mut seed = Seed::example();
    seed.apps[0].certificates_pem = vec![cert.pem()];
    let sim = Sim::new(seed, SimOptions { strict, ..keyward_testkit::sim::unthrottled() }).unwrap();
    let tls = SelfSignedTls::generate().unwrap();
    let dir = std::env::temp_dir().join(format!("keyward-msal-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), &tls.certificate_pem).unwrap();
    let running = spawn(sim, "127.0.0.1:0".parse().unwrap(), Some(tls)).await.unwrap();
    let input = json!({
        "authority": format!("{}/{TENANT}", running.base_url),
        "clientId": APP,
        "privateKey": key_pem,
        "certificate": cert.pem(),
        "caBundle": dir.join("ca.pem"),
    });
    std::fs::write(dir.join("input.json"), input.to_string()).unwrap();
    let script = keyward_testkit::python::script("msal_certificate_token.py");
    let python = keyward_testkit::python::python();
    let input_path = dir.join("input.json");
    let out = tokio::task::spawn_blocking(move || Command::new(python).arg(script).arg(input_path).output())
        .await
        .unwrap()
        .unwrap();
    running.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the MSAL script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn is_fractional(v: &Value) -> bool {
    v.as_f64().is_some_and(|f| f.fract() != 0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_gets_a_token_with_fractional_times_by_default_and_is_refused_in_strict_mode() {
    let answer = msal_against(false).await;
    assert_eq!(answer["ok"], true, "MSAL got no token: {answer}");
    let claims = &answer["claims"];
    assert!(
        is_fractional(&claims["exp"]) && is_fractional(&claims["iat"]),
        "MSAL sent whole seconds: {answer}"
    );
    assert!(answer["header"]["alg"] == "PS256" || answer["header"]["alg"] == "RS256", "{answer}");

    let strict = msal_against(true).await;
    assert_eq!(strict["ok"], false, "{strict}");
    assert_eq!(strict["error_codes"], json!([50013]), "{strict}");
    assert!(strict["error"].as_str().unwrap_or("").contains("not an integer"), "{strict}");
}

//! The emulator on a free loopback port, and the Graph access token a test uses to look at the
//! emulated tenant behind Keyward's back (what Entra holds, not what Keyward says it holds).

use keyward_sim::seed::Seed;
use keyward_sim::server::{RunningSim, spawn};
use keyward_sim::{Sim, SimOptions};
use serde_json::Value;

use crate::seed::{APP, APP_SECRET, TENANT_DOMAIN};

/// Starts the emulator with `seed` and `options` on a free loopback port (plain HTTP).
pub async fn start(seed: Seed, options: SimOptions) -> RunningSim {
    install_crypto();
    let sim = Sim::new(seed, options).expect("the test seed is valid");
    spawn(sim, "127.0.0.1:0".parse().expect("loopback address"), None)
        .await
        .expect("the emulator binds a free loopback port")
}

/// [`SimOptions::default`] with throttling off: tests that are not about throttling must not be
/// slowed or failed by it.
pub fn unthrottled() -> SimOptions {
    let mut options = SimOptions::default();
    options.throttle.enabled = false;
    options
}

/// Installs rustls' ring provider for the process (reqwest and the emulator need one; a second
/// call is a no-op).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An app-only Graph token for Keyward's app ([`APP`]) from the emulator at `base_url`
/// (client-credentials grant).
pub async fn app_token(http: &reqwest::Client, base_url: &str) -> String {
    let response = http
        .post(format!("{base_url}/{TENANT_DOMAIN}/oauth2/v2.0/token"))
        .form(&[
            ("client_id", APP),
            ("client_secret", APP_SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .expect("the emulator's token endpoint answers");
    assert_eq!(response.status(), 200, "the emulator refused Keyward's app a token");
    let body: Value = response.json().await.expect("a JSON token response");
    body["access_token"].as_str().expect("an access_token").to_owned()
}

/// The FIDO2 methods the emulated Entra at `base_url` holds for `user` (object id or UPN), read
/// from its Graph API with `token` (see [`app_token`]).
pub async fn fido2_methods(http: &reqwest::Client, base_url: &str, token: &str, user: &str) -> Vec<Value> {
    let list: Value = http
        .get(format!("{base_url}/v1.0/users/{user}/authentication/fido2Methods"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the emulator's Graph API answers")
        .json()
        .await
        .expect("a JSON list");
    list["value"].as_array().cloned().unwrap_or_else(|| panic!("not a method list: {list}"))
}

//! The typed client of the Core API that every operator command uses.
//!
//! Operator commands reach the server only through its HTTP API (docs/architecture.md), with the
//! wire types the server renders (`keyward-proto`), so a change to the API shows up here as a
//! compile error rather than a runtime surprise; the client does not depend on the server. Lists
//! come a page at a time; [`ApiClient`] follows the cursors where a command needs the whole list. Where the server and
//! API token come from is [`ClientConfig`]: flags and environment first, then
//! `~/.config/keyward/client.toml`. The token is never a command-line argument (it would show in
//! the process list).

use std::path::PathBuf;

use keyward_proto::Page;
use keyward_proto::admin::{CertificateCheck, ConnectionTestView, PolicyRequest, PolicyView};
use keyward_proto::audit::{AuditAnchor, AuditView, ChainReport};
use keyward_proto::doctor::DoctorReport;
use keyward_proto::inventory::{
    KeyStateResult, KeyView, NewKey, PasskeyView, ReconcileReport, ReconcileRequest,
};
use keyward_proto::issuances::{
    CompleteRequest, CompletedView, CreateIssuance, FailRequest, IssuanceView, OptionsView, PinHandover,
    SignInChallengeView, SignInProofRequest, SignInProofView,
};
use keyward_proto::jobs::{
    BulkJobRequest, BulkPlan, BulkRow, ClaimRequest, JobStatus, UnitLease, UnitOutcome, UnitResult,
};
use keyward_proto::people::{
    LinkRequest, PersonDetail, PersonView, RevokeRequest, RevokedCount, SyncReport, SyncRequest, TapRequest,
    TapView,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Why an API call failed, in words that say what to do.
#[derive(Debug, thiserror::Error)]
pub enum ApiClientError {
    /// The server could not be reached.
    #[error(
        "cannot reach the Keyward server at {url}: {reason}; is `keyward serve` running, and is --server (or KEYWARD_SERVER) right?"
    )]
    Unreachable {
        /// The server URL.
        url: String,
        /// The transport error.
        reason: String,
    },
    /// The server URL would have the API token travel in clear, or is not an HTTP URL.
    #[error(
        "refusing to send the API token to {url}: use https://, or http:// only for a server on this machine (127.0.0.1, [::1] or localhost)"
    )]
    InsecureServer {
        /// The server URL.
        url: String,
    },
    /// The server answered with an error.
    #[error("{message} (HTTP {status}, {code})")]
    Api {
        /// HTTP status.
        status: u16,
        /// Keyward's error code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The answer was not what this version of the client expects.
    #[error(
        "the server's answer to {what} could not be read ({reason}); are the client and the server the same version?"
    )]
    Decode {
        /// The call.
        what: String,
        /// What was wrong.
        reason: String,
    },
    /// No token configured.
    #[error(
        "no API token: set KEYWARD_TOKEN or put `token = \"…\"` in {0} (an administrator creates one with `keyward admin token create`)"
    )]
    NoToken(String),
}

impl ApiClientError {
    /// The HTTP status, for callers that react to a specific one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Where the server is and how to authenticate.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL, e.g. `http://127.0.0.1:8080`.
    pub server: String,
    /// The API token.
    pub token: Option<SecretString>,
    /// The file the settings were read from (for messages).
    pub file: PathBuf,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientFile {
    server: Option<String>,
    token: Option<String>,
}

impl ClientConfig {
    /// The default location of the client file.
    pub fn default_file() -> PathBuf {
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("keyward").join("client.toml")
    }

    /// Resolves the settings: `server` flag, then `KEYWARD_SERVER`, then the file, then
    /// `http://127.0.0.1:8080`; the token from `KEYWARD_TOKEN`, then the file.
    pub fn resolve(server_flag: Option<&str>, file: Option<PathBuf>) -> anyhow::Result<Self> {
        let file = file.unwrap_or_else(Self::default_file);
        let parsed: ClientFile = match std::fs::read_to_string(&file) {
            Ok(text) => toml::from_str(&text).map_err(|e| {
                anyhow::anyhow!("{} is not a valid client configuration: {}", file.display(), e.message())
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ClientFile::default(),
            Err(e) => anyhow::bail!("cannot read {}: {e}", file.display()),
        };
        let server = server_flag
            .map(str::to_owned)
            .or_else(|| std::env::var("KEYWARD_SERVER").ok())
            .or(parsed.server)
            .unwrap_or_else(|| "http://127.0.0.1:8080".into());
        let token = std::env::var("KEYWARD_TOKEN").ok().or(parsed.token).map(SecretString::from);
        Ok(Self { server: server.trim_end_matches('/').to_owned(), token, file })
    }
}

/// A client of one Keyward server.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: SecretString,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient").field("base", &self.base).finish_non_exhaustive()
    }
}

/// The token goes over TLS, or in clear only to a server on this machine (loopback).
fn check_transport(server: &str) -> Result<(), ApiClientError> {
    let insecure = || ApiClientError::InsecureServer { url: server.to_owned() };
    let url = url::Url::parse(server).map_err(|_| insecure())?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(insecure()),
    }
}

/// The variable naming a PEM file of CA certificates to trust for the server, besides the
/// system's (a server whose certificate comes from a private CA).
pub const CA_CERT_ENV: &str = "KEYWARD_CA_CERT";

/// The certificates of the PEM file `path`.
fn server_ca(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, ApiClientError> {
    let bad = |reason: String| ApiClientError::Unreachable {
        url: format!("{CA_CERT_ENV}={}", path.display()),
        reason: format!("{reason}; point {CA_CERT_ENV} at the server's CA certificate (PEM)"),
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in the file".into()));
    }
    Ok(certs)
}

/// Percent-encodes a path segment (UPNs contain `@` and may contain `#`).
fn seg(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>().replace('+', "%20")
}

impl ApiClient {
    /// A client for the resolved configuration.
    pub fn new(config: &ClientConfig) -> Result<Self, ApiClientError> {
        let token =
            config.token.clone().ok_or_else(|| ApiClientError::NoToken(config.file.display().to_string()))?;
        check_transport(&config.server)?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder =
            reqwest::Client::builder().user_agent(concat!("keyward/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = std::env::var_os(CA_CERT_ENV) {
            builder = builder.tls_certs_merge(server_ca(std::path::Path::new(&path))?);
        }
        let http = builder
            .build()
            .map_err(|e| ApiClientError::Unreachable { url: config.server.clone(), reason: e.to_string() })?;
        Ok(Self { http, base: config.server.clone(), token })
    }

    /// One call; `body` is sent as JSON; the answer is decoded as `T` (`()` accepts an empty one).
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, ApiClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url).bearer_auth(self.token.expose_secret());
        if let Some(b) = body {
            req = req.json(b);
        }
        let response = req
            .send()
            .await
            .map_err(|e| ApiClientError::Unreachable { url: self.base.clone(), reason: e.to_string() })?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ApiClientError::Unreachable { url: self.base.clone(), reason: e.to_string() })?;
        if !(200..300).contains(&status) {
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let code = body["error"]["code"].as_str().unwrap_or("unknown").to_owned();
            let mut message = body["error"]["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(300).collect());
            if code == "not_configured" {
                message.push_str(" (with `keyward connector set`)");
            }
            return Err(ApiClientError::Api { status, code, message });
        }
        let bytes = if bytes.is_empty() { &b"null"[..] } else { &bytes[..] };
        serde_json::from_slice(bytes)
            .map_err(|e| ApiClientError::Decode { what: format!("{method} {path}"), reason: e.to_string() })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiClientError> {
        self.call(reqwest::Method::GET, path, None::<&Value>).await
    }

    /// Every item of a paged list, following the `next` cursors (1000 a page).
    async fn all<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, ApiClientError> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let cursor = after.as_deref().map(|a| format!("&after={}", seg(a))).unwrap_or_default();
            let page: Page<T> = self.get(&format!("{path}{sep}limit=1000{cursor}")).await?;
            items.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(items),
            }
        }
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, ApiClientError> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    // People.

    /// A person (by id or UPN) with keys and passkeys.
    pub async fn person(&self, who: &str) -> Result<PersonDetail, ApiClientError> {
        self.get(&format!("/api/v1/people/{}", seg(who))).await
    }

    /// A page of people; `search` filters by UPN or name.
    pub async fn people(
        &self,
        search: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<PersonView>, ApiClientError> {
        let mut q = format!("?limit={limit}");
        if let Some(s) = search {
            q.push_str(&format!("&search={}", seg(s)));
        }
        if let Some(a) = after {
            q.push_str(&format!("&after={}", seg(a)));
        }
        self.get(&format!("/api/v1/people{q}")).await
    }

    /// Syncs people from Entra.
    pub async fn sync_people(&self, group: Option<String>) -> Result<SyncReport, ApiClientError> {
        self.post("/api/v1/people/sync", &SyncRequest { group }).await
    }

    /// Links a person by object id or UPN.
    pub async fn link_person(&self, who: &str, body: &LinkRequest) -> Result<PersonView, ApiClientError> {
        self.call(reqwest::Method::PUT, &format!("/api/v1/people/{}/link", seg(who)), Some(body)).await
    }

    /// Issues a Temporary Access Pass.
    pub async fn tap(
        &self,
        who: &str,
        lifetime_minutes: Option<u32>,
        once: Option<bool>,
    ) -> Result<TapView, ApiClientError> {
        self.post(&format!("/api/v1/people/{}/tap", seg(who)), &TapRequest { lifetime_minutes, once }).await
    }

    /// Revokes all of a person's passkeys.
    pub async fn revoke_person(
        &self,
        who: &str,
        reason: Option<String>,
    ) -> Result<RevokedCount, ApiClientError> {
        self.post(&format!("/api/v1/people/{}/revoke-passkeys", seg(who)), &RevokeRequest { reason }).await
    }

    // Issuance.

    /// Creates an issuance.
    pub async fn create_issuance(
        &self,
        person: &str,
        serial: Option<String>,
        channel: Option<&str>,
    ) -> Result<IssuanceView, ApiClientError> {
        let body = CreateIssuance { person: person.to_owned(), channel: channel.map(str::to_owned), serial };
        self.post("/api/v1/issuances", &body).await
    }

    /// An issuance.
    pub async fn issuance(&self, id: &str) -> Result<IssuanceView, ApiClientError> {
        self.get(&format!("/api/v1/issuances/{}", seg(id))).await
    }

    /// Issuances of a person (id or UPN), newest first.
    pub async fn issuances_of(&self, person: &str) -> Result<Vec<IssuanceView>, ApiClientError> {
        self.all(&format!("/api/v1/issuances?person={}", seg(person))).await
    }

    /// Fetches creation options.
    pub async fn options(&self, id: &str) -> Result<OptionsView, ApiClientError> {
        self.post(&format!("/api/v1/issuances/{}/options", seg(id)), &json!({})).await
    }

    /// Completes an issuance.
    pub async fn complete(&self, id: &str, body: &CompleteRequest) -> Result<CompletedView, ApiClientError> {
        self.post(&format!("/api/v1/issuances/{}/complete", seg(id)), body).await
    }

    /// Marks an issuance failed.
    pub async fn fail_issuance(&self, id: &str, reason: &str) -> Result<IssuanceView, ApiClientError> {
        self.post(&format!("/api/v1/issuances/{}/fail", seg(id)), &FailRequest { reason: reason.to_owned() })
            .await
    }

    /// Records how the PIN of an issuance's key was handed over (never the PIN itself).
    pub async fn pin_handover(
        &self,
        id: &str,
        method: &str,
        detail: Option<String>,
    ) -> Result<(), ApiClientError> {
        let body = PinHandover { method: method.to_owned(), detail };
        self.post(&format!("/api/v1/issuances/{}/pin-handover", seg(id)), &body).await
    }

    /// The tenant's passkey sign-in challenge for a registered issuance's person, or why none.
    pub async fn sign_in_options(&self, id: &str) -> Result<SignInChallengeView, ApiClientError> {
        self.post(&format!("/api/v1/issuances/{}/sign-in/options", seg(id)), &json!({})).await
    }

    /// Hands the key's answer to the tenant through the server: proof that the passkey signs in.
    pub async fn prove_sign_in(
        &self,
        id: &str,
        proof: &SignInProofRequest,
    ) -> Result<SignInProofView, ApiClientError> {
        self.post(&format!("/api/v1/issuances/{}/sign-in", seg(id)), proof).await
    }

    // Keys and passkeys.

    /// The key inventory, optionally in one state.
    pub async fn keys(&self, state: Option<&str>) -> Result<Vec<KeyView>, ApiClientError> {
        match state {
            Some(s) => self.all(&format!("/api/v1/keys?state={}", seg(s))).await,
            None => self.all("/api/v1/keys").await,
        }
    }

    /// A key by id or serial.
    pub async fn key(&self, id: &str) -> Result<KeyView, ApiClientError> {
        self.get(&format!("/api/v1/keys/{}", seg(id))).await
    }

    /// Adds a key to the inventory.
    pub async fn add_key(&self, key: &NewKey) -> Result<KeyView, ApiClientError> {
        self.post("/api/v1/keys", key).await
    }

    /// Changes a key's state.
    pub async fn set_key_state(&self, id: &str, state: &str) -> Result<KeyStateResult, ApiClientError> {
        self.post(&format!("/api/v1/keys/{}/state", seg(id)), &json!({ "state": state })).await
    }

    /// Passkeys, filtered.
    pub async fn passkeys(
        &self,
        person: Option<&str>,
        origin: Option<&str>,
        state: Option<&str>,
    ) -> Result<Vec<PasskeyView>, ApiClientError> {
        let mut q = Vec::new();
        if let Some(p) = person {
            q.push(format!("person={}", seg(p)));
        }
        if let Some(o) = origin {
            q.push(format!("origin={}", seg(o)));
        }
        if let Some(s) = state {
            q.push(format!("state={}", seg(s)));
        }
        let q = if q.is_empty() { String::new() } else { format!("?{}", q.join("&")) };
        self.all(&format!("/api/v1/passkeys{q}")).await
    }

    /// Revokes one passkey.
    pub async fn revoke_passkey(
        &self,
        id: &str,
        reason: Option<String>,
    ) -> Result<PasskeyView, ApiClientError> {
        self.post(&format!("/api/v1/passkeys/{}/revoke", seg(id)), &RevokeRequest { reason }).await
    }

    /// Runs reconcile for one person or everyone.
    pub async fn reconcile(&self, person: Option<String>) -> Result<ReconcileReport, ApiClientError> {
        self.post("/api/v1/jobs/reconcile", &ReconcileRequest { person }).await
    }

    // Policy, connector, audit.

    /// Enrollment policies.
    pub async fn policies(&self) -> Result<Vec<PolicyView>, ApiClientError> {
        self.all("/api/v1/enrollment-policies").await
    }

    /// Sets a group's enrollment policy.
    pub async fn set_policy(
        &self,
        group: &str,
        policy: &PolicyRequest,
    ) -> Result<PolicyView, ApiClientError> {
        self.call(reqwest::Method::PUT, &format!("/api/v1/enrollment-policies/{}", seg(group)), Some(policy))
            .await
    }

    /// The tenant's FIDO2 method policy as Graph shows it.
    pub async fn entra_policy(&self) -> Result<Value, ApiClientError> {
        self.get("/api/v1/entra/fido2-policy").await
    }

    /// Changes the tenant's FIDO2 method policy.
    pub async fn update_entra_policy(&self, changes: &Value) -> Result<Value, ApiClientError> {
        self.call(reqwest::Method::PATCH, "/api/v1/entra/fido2-policy", Some(changes)).await
    }

    /// The connector settings without secrets.
    pub async fn connector(&self) -> Result<Value, ApiClientError> {
        self.get("/api/v1/connector").await
    }

    /// Tests the connection to Entra.
    pub async fn test_connector(&self) -> Result<ConnectionTestView, ApiClientError> {
        self.post("/api/v1/connector/test", &json!({})).await
    }

    /// A page of audit events in chain order: after sequence number `after_seq`, and after the
    /// page cursor `after`.
    pub async fn audit(
        &self,
        after_seq: Option<i64>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<AuditView>, ApiClientError> {
        let mut q = format!("?limit={limit}");
        if let Some(seq) = after_seq {
            q.push_str(&format!("&after_seq={seq}"));
        }
        if let Some(a) = after {
            q.push_str(&format!("&after={}", seg(a)));
        }
        self.get(&format!("/api/v1/audit{q}")).await
    }

    /// Every reason a registration for `person` with this key model and serial would fail.
    pub async fn doctor(
        &self,
        person: Option<&str>,
        aaguid: Option<&str>,
        serial: Option<&str>,
    ) -> Result<DoctorReport, ApiClientError> {
        let query: Vec<String> = [("person", person), ("aaguid", aaguid), ("serial", serial)]
            .iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k}={}", seg(v))))
            .collect();
        self.get(&format!("/api/v1/doctor?{}", query.join("&"))).await
    }

    /// Verifies the audit chain.
    pub async fn verify_audit(&self) -> Result<ChainReport, ApiClientError> {
        self.get("/api/v1/audit/verify").await
    }

    /// Verifies the audit chain against an anchor made earlier.
    pub async fn verify_audit_against(&self, anchor: &AuditAnchor) -> Result<ChainReport, ApiClientError> {
        self.post("/api/v1/audit/verify", anchor).await
    }

    /// A signed head of the audit chain.
    pub async fn audit_anchor(&self) -> Result<AuditAnchor, ApiClientError> {
        self.get("/api/v1/audit/anchor").await
    }

    /// Revokes every passkey on a key (by id or serial); the key keeps its state.
    pub async fn revoke_key_passkeys(
        &self,
        id: &str,
        reason: Option<String>,
    ) -> Result<RevokedCount, ApiClientError> {
        self.post(&format!("/api/v1/keys/{}/revoke-passkeys", seg(id)), &RevokeRequest { reason }).await
    }

    /// Stores new connector settings; `body` is the connector configuration with its secret.
    pub async fn set_connector(&self, body: &impl Serialize) -> Result<(), ApiClientError> {
        let _: Value = self.call(reqwest::Method::PUT, "/api/v1/connector", Some(body)).await?;
        Ok(())
    }

    /// Validates a connector certificate and key (the stored ones when both are absent).
    pub async fn validate_certificate(&self, check: &CertificateCheck) -> Result<Value, ApiClientError> {
        self.post("/api/v1/connector/validate-certificate", check).await
    }

    // Bulk jobs.

    /// Creates a bulk provisioning job from CSV rows.
    pub async fn create_bulk_job(&self, rows: Vec<BulkRow>) -> Result<BulkPlan, ApiClientError> {
        self.post("/api/v1/jobs/bulk", &BulkJobRequest { rows }).await
    }

    /// A job's progress.
    pub async fn job(&self, id: &str) -> Result<JobStatus, ApiClientError> {
        self.get(&format!("/api/v1/jobs/{}", seg(id))).await
    }

    /// Claims up to `count` units of a job under a lease of `lease_secs`.
    pub async fn claim_units(
        &self,
        id: &str,
        count: i64,
        lease_secs: u64,
    ) -> Result<Vec<UnitLease>, ApiClientError> {
        let body = ClaimRequest { count, lease_secs };
        self.post(&format!("/api/v1/jobs/{}/claim", seg(id)), &body).await
    }

    /// Records a claimed unit's outcome (`done`, `failed` or `retry`).
    pub async fn finish_unit(&self, id: &str, result: &UnitResult) -> Result<(), ApiClientError> {
        self.post(&format!("/api/v1/jobs/{}/units", seg(id)), result).await
    }

    /// Every row of a job with its outcome.
    pub async fn job_report(&self, id: &str) -> Result<Vec<UnitOutcome>, ApiClientError> {
        self.all(&format!("/api/v1/jobs/{}/report", seg(id))).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_token_travels_in_clear_only_to_this_machine() {
        let cases = [
            ("https://keyward.contoso.com", true),
            ("https://10.0.0.5:8443", true),
            ("http://127.0.0.1:8080", true),
            ("http://127.1.2.3:8080", true),
            ("http://[::1]:8080", true),
            ("http://localhost:8080", true),
            ("http://keyward.contoso.com", false),
            ("http://10.0.0.5:8080", false),
            ("http://localhost.contoso.com", false),
            ("ftp://127.0.0.1", false),
            ("keyward.contoso.com", false),
            ("", false),
        ];
        for (url, allowed) in cases {
            assert_eq!(super::check_transport(url).is_ok(), allowed, "{url}");
        }
    }
}

//! `keyward connector show|test|validate-cert|set`: the server's connection to Entra ID.
//!
//! The client secret or private key goes from this terminal to the server once and is never a
//! command-line argument (it would show in the process list and shell history): the secret comes
//! from `KEYWARD_CLIENT_SECRET` or a no-echo prompt, the private key from a file. Both are held in
//! `SecretString`s and only exposed while the request body is serialised.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use keyward_proto::admin::CertificateCheck;
use secrecy::{ExposeSecret, SecretString};
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::ClientArgs;
use super::output::or_dash;
use crate::api_client::ApiClient;

/// `keyward connector …`.
#[derive(Debug, Args)]
pub struct ConnectorArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: ConnectorCommand,
}

/// Graph API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ApiVersion {
    /// The GA API.
    #[value(name = "v1.0")]
    V1,
    /// Needed for a custom challenge timeout.
    Beta,
}

#[derive(Debug, Subcommand)]
enum ConnectorCommand {
    /// Show the connector settings (never the secret).
    Show,
    /// Get a token and read from Graph; lists missing permissions with the fix.
    Test,
    /// Check a certificate and key (or the stored ones): key match, dates, thumbprints for Entra.
    ValidateCert {
        /// Certificate, PEM file.
        #[arg(long, value_name = "PEM", requires = "key")]
        cert: Option<PathBuf>,
        /// Private key, PEM file.
        #[arg(long, value_name = "PEM", requires = "cert")]
        key: Option<PathBuf>,
    },
    /// Store new connector settings (the client secret from KEYWARD_CLIENT_SECRET or a prompt).
    Set(SetArgs),
}

/// Options of `keyward connector set`.
#[derive(Debug, Args)]
struct SetArgs {
    /// Directory (tenant) id or initial domain.
    #[arg(long)]
    tenant_id: String,
    /// Application (client) id of the app registration.
    #[arg(long)]
    client_id: String,
    /// Authenticate with this certificate (PEM file) instead of a client secret.
    #[arg(long, value_name = "PEM", requires = "key")]
    cert: Option<PathBuf>,
    /// The certificate's private key (PEM file).
    #[arg(long, value_name = "PEM", requires = "cert")]
    key: Option<PathBuf>,
    /// Graph API version (default: the current setting, else v1.0).
    #[arg(long, value_enum)]
    api_version: Option<ApiVersion>,
    /// Login authority URL (national clouds, the emulator); default: the current one.
    #[arg(long, value_name = "URL", requires = "graph")]
    authority: Option<String>,
    /// Graph base URL; default: the current one.
    #[arg(long, value_name = "URL", requires = "authority")]
    graph: Option<String>,
}

fn expose<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose_secret())
}

/// The body of `PUT /api/v1/connector`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConnectorBody<'a> {
    enabled: bool,
    tenant_id: &'a str,
    client_id: &'a str,
    credential: CredentialBody<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authority_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    graph_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    challenge_timeout_minutes: Option<u64>,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum CredentialBody<'a> {
    #[serde(rename_all = "camelCase")]
    Secret {
        #[serde(serialize_with = "expose")]
        client_secret: &'a SecretString,
    },
    #[serde(rename_all = "camelCase")]
    Certificate {
        certificate_pem: &'a str,
        #[serde(serialize_with = "expose")]
        private_key_pem: &'a SecretString,
    },
}

fn read(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The connector's credential as read from this terminal, owned until the request is sent.
enum Credential {
    Secret(SecretString),
    Certificate { certificate_pem: String, private_key_pem: SecretString },
}

impl Credential {
    /// The certificate and key files when given, else the client secret (environment or prompt).
    fn read(cert: Option<PathBuf>, key: Option<PathBuf>) -> anyhow::Result<Self> {
        match (cert, key) {
            (Some(c), Some(k)) => Ok(Self::Certificate {
                certificate_pem: read(&c)?,
                private_key_pem: SecretString::from(read(&k)?),
            }),
            _ => Ok(Self::Secret(client_secret()?)),
        }
    }

    fn body(&self) -> CredentialBody<'_> {
        match self {
            Self::Secret(client_secret) => CredentialBody::Secret { client_secret },
            Self::Certificate { certificate_pem, private_key_pem } => {
                CredentialBody::Certificate { certificate_pem, private_key_pem }
            }
        }
    }
}

/// Runs `keyward connector …`.
pub async fn run(args: ConnectorArgs) -> anyhow::Result<()> {
    let api = args.client.client()?;
    match args.command {
        ConnectorCommand::Show => show(&api).await,
        ConnectorCommand::Test => test(&api).await,
        ConnectorCommand::ValidateCert { cert, key } => validate_cert(&api, cert, key).await,
        ConnectorCommand::Set(set_args) => set(&api, set_args).await,
    }
}

/// `connector show`: the settings, never the secret.
async fn show(api: &ApiClient) -> anyhow::Result<()> {
    let c = api.connector().await?;
    if c["configured"] == Value::Bool(false) {
        println!(
            "no connector settings; store them with `keyward connector set --tenant-id … --client-id …`"
        );
        return Ok(());
    }
    let s = |k: &str| or_dash(c[k].as_str());
    for (label, value) in [
        ("enabled", c["enabled"].to_string()),
        ("tenant id", s("tenantId")),
        ("client id", s("clientId")),
        ("credential", s("credentialKind")),
        ("secret stored", c["secretSet"].to_string()),
        ("api version", s("apiVersion")),
        ("authority", s("authorityUrl")),
        ("graph", s("graphUrl")),
    ] {
        println!("{label:<15}{value}");
    }
    Ok(())
}

/// `connector test`: the server's findings; fails when a permission is missing.
async fn test(api: &ApiClient) -> anyhow::Result<()> {
    let r = api.test_connector().await?;
    for line in &r.lines {
        println!("{line}");
    }
    if !r.granted_roles.is_empty() {
        println!("granted: {}", r.granted_roles.join(", "));
    }
    if !r.ok {
        anyhow::bail!(
            "the connection test failed{}; fix the findings above in the app registration and run `keyward connector test` again",
            if r.missing.is_empty() {
                String::new()
            } else {
                format!(" (missing: {})", r.missing.join(", "))
            }
        );
    }
    println!("connection OK");
    Ok(())
}

/// `connector validate-cert`: the server's verdict on the given (or stored) certificate.
async fn validate_cert(api: &ApiClient, cert: Option<PathBuf>, key: Option<PathBuf>) -> anyhow::Result<()> {
    let check = match (cert, key) {
        (Some(c), Some(k)) => {
            CertificateCheck { certificate_pem: Some(read(&c)?), private_key_pem: Some(read(&k)?) }
        }
        _ => CertificateCheck::default(),
    };
    let r = api.validate_certificate(&check).await?;
    drop(check);
    let s = |k: &str| or_dash(r[k].as_str());
    for (label, value) in [
        ("subject", s("subject")),
        ("issuer", s("issuer")),
        ("not before", s("notBefore")),
        ("not after", s("notAfter")),
        ("key matches", r["keyMatches"].to_string()),
        ("SHA-1 thumbprint", s("sha1Thumbprint")),
        ("SHA-256", s("sha256Thumbprint")),
    ] {
        println!("{label:<18}{value}");
    }
    let problems: Vec<String> = r["problems"]
        .as_array()
        .map(|a| a.iter().map(|p| problem_text(p.as_str().unwrap_or("?"))).collect())
        .unwrap_or_default();
    for p in &problems {
        println!("problem: {p}");
    }
    let blocking = r["problems"].as_array().is_some_and(|a| a.iter().any(|p| p != "expiresSoon"));
    if blocking {
        anyhow::bail!("the certificate cannot be used; fix the problems above");
    }
    println!("upload the certificate to the app registration; Entra lists it by the SHA-1 thumbprint above");
    Ok(())
}

/// `connector set`: stores new settings; what is not given keeps its current value.
async fn set(api: &ApiClient, args: SetArgs) -> anyhow::Result<()> {
    let current = api.connector().await?;
    let configured = current["configured"] != Value::Bool(false);
    let keep = |k: &str| configured.then(|| current[k].as_str().map(str::to_owned)).flatten();
    let authority = args.authority.or_else(|| keep("authorityUrl"));
    let graph = args.graph.or_else(|| keep("graphUrl"));
    let api_version = match args.api_version {
        Some(ApiVersion::V1) => Some("v1.0".to_owned()),
        Some(ApiVersion::Beta) => Some("beta".to_owned()),
        None => keep("apiVersion"),
    };
    let credential = Credential::read(args.cert, args.key)?;
    let body = ConnectorBody {
        enabled: true,
        tenant_id: &args.tenant_id,
        client_id: &args.client_id,
        credential: credential.body(),
        api_version: api_version.as_deref(),
        authority_url: authority.as_deref(),
        graph_url: graph.as_deref(),
        challenge_timeout_minutes: configured.then(|| current["challengeTimeoutMinutes"].as_u64()).flatten(),
    };
    api.set_connector(&body).await?;
    println!("connector settings stored; check them with `keyward connector test`");
    Ok(())
}

/// The client secret from `KEYWARD_CLIENT_SECRET`, else a no-echo prompt.
fn client_secret() -> anyhow::Result<SecretString> {
    if let Ok(s) = std::env::var("KEYWARD_CLIENT_SECRET") {
        return Ok(SecretString::from(s));
    }
    let typed = rpassword::prompt_password("client secret (the secret's value from the Entra portal): ")
        .context("cannot prompt for the client secret; set KEYWARD_CLIENT_SECRET, or use --cert and --key")?;
    if typed.trim().is_empty() {
        anyhow::bail!("no client secret given; set KEYWARD_CLIENT_SECRET or type it at the prompt");
    }
    Ok(SecretString::from(typed))
}

/// A certificate problem's name (as the API sends it) in words, with the fix.
fn problem_text(name: &str) -> String {
    match name {
        "keyDoesNotMatch" => "the private key does not belong to this certificate: use the key the certificate was issued for",
        "notRsa" => "the certificate key is not RSA: Entra assertions are signed RS256/PS256, issue an RSA certificate",
        "expired" => "the certificate has expired: issue a new one and upload it to the app registration",
        "notYetValid" => "the certificate is not valid yet: check its notBefore date and this machine's clock",
        "expiresSoon" => "the certificate expires within 30 days: plan its renewal",
        other => other,
    }
    .to_owned()
}

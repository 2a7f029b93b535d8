//! The Graph HTTP client: one place where every call gets its token, a fresh
//! `client-request-id`, retries by the rules of [`crate::retry`], the redacted debug log, and
//! an error carrying the service's `request-id`.
//!
//! What may be retried depends on the call: reads, PATCH of a policy and DELETE are safe to
//! repeat ([`Retry::Safe`]); a create (POST) is retried only on 429, which guarantees the
//! request was not processed ([`Retry::ThrottleOnly`]). Anything else that goes wrong with a
//! create is *ambiguous* and is handed back to the caller (see [`crate::register`]).
//!
//! Paging follows `@odata.nextLink` verbatim, but only on the configured Graph host: a link
//! elsewhere would receive our bearer token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::ConnectorConfig;
use crate::error::{ConfigError, GraphError, ServiceFailure, advice};
use crate::redact;
use crate::retry::{self, is_retryable_status, parse_retry_after};
use crate::token::TokenClient;

/// Which failures a call may be repeated after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Idempotent: retry on 429/503/504, timeouts and connection failures.
    Safe,
    /// Not idempotent: retry only on 429 (not processed); everything else goes back.
    ThrottleOnly,
}

/// A successful Graph answer.
#[derive(Debug, Clone)]
pub struct GraphResponse {
    /// HTTP status (2xx).
    pub status: u16,
    /// The JSON body, `Null` when empty.
    pub body: Value,
    /// The service's `request-id`.
    pub request_id: String,
    /// How many times the request was sent (more than 1 after a retried failure).
    pub attempts: u32,
}

/// The Entra connector: configuration, HTTP client and token cache; cheap to clone.
#[derive(Clone)]
pub struct Connector {
    pub(crate) http: reqwest::Client,
    pub(crate) config: Arc<ConnectorConfig>,
    pub(crate) tokens: TokenClient,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector").field("config", &self.config).finish_non_exhaustive()
    }
}

/// One Graph call as it is repeated: the same URL, body and `client-request-id` every attempt.
struct Call<'a> {
    method: Method,
    url: String,
    /// The URL's path, as errors and logs show it.
    shown_path: String,
    body: Option<&'a Value>,
    retry: Retry,
    client_request_id: String,
}

/// One attempt's answer, read in full.
struct Answer {
    status: u16,
    request_id: String,
    retry_after: Option<Duration>,
    text: zeroize::Zeroizing<String>,
}

impl Call<'_> {
    /// A failure to connect, send or read the answer.
    fn transport_error(&self, e: &reqwest::Error) -> GraphError {
        GraphError::Transport {
            method: self.method.to_string(),
            path: self.shown_path.clone(),
            detail: transport_detail(e),
            timeout: e.is_timeout(),
            client_request_id: self.client_request_id.clone(),
        }
    }

    /// A 2xx answer: its JSON body (`Null` when empty).
    fn success(&self, answer: Answer, attempts: u32) -> Result<GraphResponse, GraphError> {
        let Answer { status, request_id, text, .. } = answer;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|e| GraphError::Unexpected {
                method: self.method.to_string(),
                path: self.shown_path.clone(),
                detail: format!("body is not JSON: {e}"),
                request_id: request_id.clone(),
            })?
        };
        Ok(GraphResponse { status, body, request_id, attempts })
    }
}

impl Connector {
    /// A connector for a validated configuration.
    pub fn new(config: ConnectorConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(config.retry.request_timeout)
            .user_agent(concat!("keyward-entra/", env!("CARGO_PKG_VERSION")))
            // Never follow a redirect: a 307 would resend the token request, secret included,
            // or a Graph call with its bearer token, to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| ConfigError::Url("graphUrl", config.graph_url.clone()))?;
        let config = Arc::new(config);
        let tokens = TokenClient::new(http.clone(), config.clone());
        Ok(Self { http, config, tokens })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ConnectorConfig {
        &self.config
    }

    /// The token client (shared cache).
    pub fn tokens(&self) -> &TokenClient {
        &self.tokens
    }

    /// `path` (relative to the version root, e.g. `/users`) or an absolute Graph URL.
    pub(crate) fn url(&self, path_or_url: &str) -> Result<String, GraphError> {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            let base = self.config.graph_url.trim_end_matches('/');
            let ok = path_or_url.strip_prefix(base).is_some_and(|rest| rest.starts_with('/'));
            if !ok {
                return Err(GraphError::ForeignLink { expected: base.into(), link: path_or_url.into() });
            }
            Ok(path_or_url.to_owned())
        } else {
            Ok(format!("{}{}", self.config.graph_root(), path_or_url))
        }
    }

    /// One Graph call with token, correlation id, retries and debug log: attempts are sent
    /// until one succeeds, fails in a way that may not be retried, or the attempts run out.
    pub async fn request(
        &self,
        method: Method,
        path_or_url: &str,
        body: Option<&Value>,
        retry: Retry,
    ) -> Result<GraphResponse, GraphError> {
        let url = self.url(path_or_url)?;
        let call = Call {
            shown_path: display_path(&url),
            url,
            method,
            body,
            retry,
            client_request_id: uuid::Uuid::new_v4().to_string(),
        };
        let policy = &self.config.retry;
        let client_request_id = &call.client_request_id;
        let mut refreshed_after_401 = false;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let answer = match self.send_once(&call, attempt).await {
                Ok(answer) => answer,
                Err(error) if call.retry == Retry::Safe && attempt < policy.max_attempts => {
                    let wait = retry::backoff(policy, attempt);
                    tracing::warn!(%client_request_id, attempt, ?wait, "{error}; retrying");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Err(error) => return Err(error),
            };
            if (200..300).contains(&answer.status) {
                return call.success(answer, attempt);
            }
            if answer.status == 401 && !refreshed_after_401 {
                refreshed_after_401 = true;
                self.tokens.invalidate().await;
                continue;
            }
            if let Some(wait) = self.wait_before_retry(&call, &answer, attempt) {
                let (method, shown_path, request_id, status) =
                    (&call.method, &call.shown_path, &answer.request_id, answer.status);
                tracing::warn!(%client_request_id, %request_id, status, attempt, ?wait, "{method} {shown_path}: retrying after {wait:?}");
                tokio::time::sleep(wait).await;
                continue;
            }
            let Answer { status, request_id, text, .. } = answer;
            return Err(service_error(
                &call.method,
                &call.shown_path,
                status,
                &text,
                request_id,
                call.client_request_id,
            ));
        }
    }

    /// One attempt: a token, the request, and the whole answer read; a failure to connect,
    /// send or read is a transport error.
    async fn send_once(&self, call: &Call<'_>, attempt: u32) -> Result<Answer, GraphError> {
        let token = self.tokens.token().await?;
        let client_request_id = &call.client_request_id;
        if self.config.http_debug {
            tracing::debug!(
                target: "keyward_entra::http", %client_request_id, attempt,
                "{} {} headers: authorization: {}; body: {}", call.method, call.url,
                redact::REDACTED,
                call.body.map(|b| redact::json(b).to_string()).unwrap_or_default()
            );
        }
        let mut builder = self
            .http
            .request(call.method.clone(), &call.url)
            .bearer_auth(token.secret())
            .header("client-request-id", client_request_id)
            .timeout(self.config.retry.request_timeout);
        if let Some(body) = call.body {
            builder = builder.json(body);
        }
        let started = Instant::now();
        let response = builder.send().await.map_err(|e| call.transport_error(&e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let request_id = header("request-id").unwrap_or_else(|| "-".into());
        let retry_after = header("retry-after").as_deref().and_then(parse_retry_after);
        // Answers may carry secrets (a new TAP): the raw text is wiped when dropped.
        let text = zeroize::Zeroizing::new(response.text().await.map_err(|e| call.transport_error(&e))?);
        if self.config.http_debug {
            tracing::debug!(
                target: "keyward_entra::http", %client_request_id, %request_id, status,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "response headers: {}; body: {}", redact::headers(&headers), redact::body(&text)
            );
        }
        Ok(Answer { status, request_id, retry_after, text })
    }

    /// How long to wait before repeating a call that failed with this answer, or `None` when
    /// it may not be repeated: the call's [`Retry`] rule, attempts left, and Entra's
    /// `Retry-After` (a longer wait than the configured limit is not waited out).
    fn wait_before_retry(&self, call: &Call<'_>, answer: &Answer, attempt: u32) -> Option<Duration> {
        let policy = &self.config.retry;
        let may_retry = match call.retry {
            Retry::Safe => is_retryable_status(answer.status),
            Retry::ThrottleOnly => answer.status == 429,
        };
        if !may_retry || attempt >= policy.max_attempts {
            return None;
        }
        let wait = answer.retry_after.unwrap_or_else(|| retry::backoff(policy, attempt));
        (wait <= policy.max_retry_after).then_some(wait)
    }

    /// GET and deserialize.
    pub async fn get_json<T: DeserializeOwned>(&self, path_or_url: &str) -> Result<T, GraphError> {
        let response = self.request(Method::GET, path_or_url, None, Retry::Safe).await?;
        parse(&Method::GET, path_or_url, response)
    }

    /// Every item of a collection, following `@odata.nextLink` verbatim.
    pub async fn get_all<T: DeserializeOwned>(&self, path_or_url: &str) -> Result<Vec<T>, GraphError> {
        let mut items = Vec::new();
        let mut next = Some(path_or_url.to_owned());
        while let Some(link) = next {
            let page: keyward_webauthn::graph::Collection<T> = self.get_json(&link).await?;
            items.extend(page.value);
            next = page.next_link;
        }
        Ok(items)
    }
}

/// Deserializes a 2xx body.
pub(crate) fn parse<T: DeserializeOwned>(
    method: &Method,
    path: &str,
    response: GraphResponse,
) -> Result<T, GraphError> {
    serde_json::from_value(response.body).map_err(|e| GraphError::Unexpected {
        method: method.to_string(),
        path: display_path(path),
        detail: format!("body does not have the expected shape: {e}"),
        request_id: response.request_id,
    })
}

/// A Graph error from a status and body.
pub(crate) fn service_error(
    method: &Method,
    path: &str,
    status: u16,
    text: &str,
    request_id: String,
    client_request_id: String,
) -> GraphError {
    let parsed = serde_json::from_str::<keyward_webauthn::graph::GraphErrorBody>(text).ok();
    let (code, message, body_request_id) = match parsed {
        Some(b) => (b.error.code, b.error.message, b.error.inner_error.and_then(|i| i.request_id)),
        None => {
            (format!("http{status}"), redact::text(text.chars().take(200).collect::<String>().as_str()), None)
        }
    };
    let request_id = if request_id == "-" { body_request_id.unwrap_or(request_id) } else { request_id };
    GraphError::Service(Box::new(ServiceFailure {
        method: method.to_string(),
        path: display_path(path),
        status,
        hint: advice(status, &code, &message),
        code,
        message,
        request_id,
        client_request_id,
    }))
}

/// The path and query of a URL, for messages.
pub(crate) fn display_path(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        },
        Err(_) => url.to_owned(),
    }
}

fn transport_detail(e: &reqwest::Error) -> String {
    let mut detail = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        "connection closed before an answer".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Credential;

    #[test]
    fn next_links_outside_the_configured_graph_are_refused() {
        let config = ConnectorConfig::new(
            "contoso.onmicrosoft.com",
            "6731de76-14a6-49ae-97bc-6eba6914391e",
            Credential::Secret { client_secret: "x".into() },
        );
        let connector = Connector::new(config).unwrap();
        let cases = [
            ("/users?$top=5", true),
            ("https://graph.microsoft.com/v1.0/users?$skiptoken=abc", true),
            ("https://graph.microsoft.com.evil.example/v1.0/users", false),
            ("https://evil.example/v1.0/users", false),
            ("http://graph.microsoft.com/v1.0/users", false),
        ];
        for (link, allowed) in cases {
            let result = connector.url(link);
            assert_eq!(result.is_ok(), allowed, "{link}: {result:?}");
        }
        assert_eq!(connector.url("/users").unwrap(), "https://graph.microsoft.com/v1.0/users");
    }
}

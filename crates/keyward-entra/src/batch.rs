//! JSON batching (`POST /$batch`, docs/entra-graph-api.md §8.2) for fan-out reads and deletes.
//!
//! Up to 20 requests go in one batch; answers come back per item, in any order, and are
//! returned here in request order. Inner 429s (and 503/504) are throttled individually:
//! only those items are sent again, in a new batch, after the longest inner `Retry-After`.
//!
//! Only GET and DELETE can be batched through this API: both are safe to repeat, so the
//! batch POST itself may be retried after a transport failure. A DELETE repeated after its
//! first answer was lost finds nothing (404); [`BatchResult::is_success_or_gone`] treats
//! that as done.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::error::GraphError;
use crate::graph::{Connector, Retry};
use crate::retry::{self, is_retryable_status, parse_retry_after};

/// Largest number of requests Graph accepts in one batch.
pub const MAX_BATCH: usize = 20;

/// One request of a batch: a GET or a DELETE of a path relative to the version root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRequest {
    method: &'static str,
    url: String,
}

impl BatchRequest {
    /// A read, e.g. `/users/{id}/authentication/fido2Methods`.
    pub fn get(url: impl Into<String>) -> Self {
        Self { method: "GET", url: url.into() }
    }

    /// A delete, e.g. `/users/{id}/authentication/fido2Methods/{methodId}`.
    pub fn delete(url: impl Into<String>) -> Self {
        Self { method: "DELETE", url: url.into() }
    }
}

/// The answer to one batched request.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchResult {
    /// Inner HTTP status.
    pub status: u16,
    /// Inner body (`Null` for 204).
    pub body: Value,
    /// Whether the item was sent more than once.
    pub repeated: bool,
}

impl BatchResult {
    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// 2xx, or a 404 on an item that had to be sent again (its first delete went through).
    pub fn is_success_or_gone(&self) -> bool {
        self.is_success() || (self.status == 404 && self.repeated)
    }

    /// The Graph error code of a failed item.
    pub fn error_code(&self) -> Option<&str> {
        self.body.get("error")?.get("code")?.as_str()
    }
}

impl Connector {
    /// Runs `requests` in batches of 20, retrying throttled items; results in request order.
    pub async fn batch(&self, requests: &[BatchRequest]) -> Result<Vec<BatchResult>, GraphError> {
        let mut results: Vec<Option<BatchResult>> = vec![None; requests.len()];
        let mut pending: Vec<usize> = (0..requests.len()).collect();
        let mut sent_before = vec![false; requests.len()];
        let policy = &self.config.retry;
        let mut round = 0u32;
        while !pending.is_empty() {
            round += 1;
            let last_round = round >= policy.max_attempts;
            let mut again = Vec::new();
            let mut longest_wait: Option<Duration> = None;
            for chunk in pending.chunks(MAX_BATCH) {
                let body = json!({"requests": chunk.iter().map(|&i| json!({
                    "id": i.to_string(),
                    "method": requests[i].method,
                    "url": requests[i].url,
                })).collect::<Vec<_>>()});
                let response = self.request(Method::POST, "/$batch", Some(&body), Retry::Safe).await?;
                let answers =
                    response.body.get("responses").and_then(Value::as_array).cloned().unwrap_or_default();
                for &i in chunk {
                    let answer =
                        answers.iter().find(|a| a.get("id").and_then(Value::as_str) == Some(&i.to_string()));
                    let Some(answer) = answer else {
                        return Err(GraphError::Unexpected {
                            method: "POST".into(),
                            path: "/$batch".into(),
                            detail: format!("no answer for request {i}"),
                            request_id: response.request_id.clone(),
                        });
                    };
                    let status = answer.get("status").and_then(Value::as_u64).unwrap_or(0) as u16;
                    if is_retryable_status(status) && !last_round {
                        let wait = answer
                            .get("headers")
                            .and_then(|h| h.as_object())
                            .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case("retry-after")))
                            .and_then(|(_, v)| {
                                v.as_str().map(str::to_owned).or_else(|| v.as_f64().map(|f| f.to_string()))
                            })
                            .and_then(|v| parse_retry_after(&v));
                        let wait = wait.unwrap_or_else(|| retry::backoff(policy, round));
                        longest_wait = Some(longest_wait.map_or(wait, |w| w.max(wait)));
                        again.push(i);
                        continue;
                    }
                    results[i] = Some(BatchResult {
                        status,
                        body: answer.get("body").cloned().unwrap_or(Value::Null),
                        repeated: sent_before[i] || response.attempts > 1,
                    });
                }
            }
            for &i in &again {
                sent_before[i] = true;
            }
            if let Some(wait) = longest_wait {
                tracing::warn!(items = again.len(), ?wait, "batch items throttled; sending them again");
                tokio::time::sleep(wait.min(policy.max_retry_after)).await;
            }
            pending = again;
        }
        Ok(results.into_iter().map(|r| r.expect("every item answered or retried")).collect())
    }
}

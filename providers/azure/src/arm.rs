//! Azure Resource Manager over HTTPS: typed requests written from the ARM
//! REST reference. Every resource is a URL under the resource manager
//! endpoint (`/subscriptions/…/resourceGroups/…/providers/…`) with an
//! `api-version`; PUT creates or replaces it, GET reads it, DELETE removes
//! it. Long-running writes answer 201 or 202 with an `Azure-AsyncOperation`
//! or a `Location` URL to poll and a `Retry-After` to wait, which the caller
//! remembers and polls across reconciles (see `operations`).
//!
//! ARM errors (`{"error": {"code", "message"}}`) are sorted into provider
//! terms here:
//! - 429 is throttling, retried with backoff;
//! - 401 and 403 are refused credentials or permission, not retried hot;
//! - 400, 404 of a parent, 409 and quota codes are terminal with ARM's code
//!   and message, except a 409 saying another operation is in progress;
//! - 5xx, timeouts and dropped connections are retryable.

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use provider_sdk::ProviderError;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// How long one ARM call may take before it is retried by the reconciler.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// How long to wait before polling an operation that named no Retry-After:
/// ARM's documented default.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(15);

/// The longest Retry-After honoured, so a large one cannot stall a resource.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How a long-running operation is followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollKind {
    /// `Azure-AsyncOperation`: a status resource (`{"status": "InProgress"}`).
    AsyncOperation,
    /// `Location`: 202 while running, 200 or 204 once done.
    Location,
}

/// Where and how to poll an operation, and how long to wait first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poll {
    pub url: String,
    pub kind: PollKind,
    pub retry_after: Duration,
}

/// What a poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollState {
    Running {
        status: String,
        retry_after: Duration,
    },
    Succeeded,
    Failed(ProviderError),
}

/// What a write answered: the resource as ARM returned it (when it did),
/// and an operation to follow (when it is long-running).
#[derive(Debug, Clone)]
pub struct Written {
    pub body: Value,
    pub poll: Option<Poll>,
}

/// An ARM client for one ProviderConfig.
#[derive(Clone)]
pub struct Arm {
    pub http: reqwest::Client,
    /// The resource manager endpoint, without a trailing slash.
    pub base: String,
    pub credential: Arc<dyn TokenCredential>,
    /// The token scope: `<resource manager>/.default`.
    pub scope: String,
}

impl std::fmt::Debug for Arm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arm")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Arm {
    async fn token(&self) -> Result<String, ProviderError> {
        let token = self
            .credential
            .get_token(&[self.scope.as_str()], None)
            .await
            .map_err(|e| ProviderError::Unauthorized(format!("cannot get an Azure token: {e}")))?;
        Ok(token.token.secret().to_string())
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        api_version: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(StatusCode, HeaderMap, Value), ProviderError> {
        let what = format!("{method} {}", path_of(url));
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(self.token().await?)
            .timeout(CALL_TIMEOUT);
        if let Some(version) = api_version {
            request = request.query(&[("api-version", version)]);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ProviderError::retryable(format!("cannot {what}: {e}")))?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.map_err(|e| {
            ProviderError::retryable(format!("cannot read the answer to {what}: {e}"))
        })?;
        let json = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, headers, json))
    }

    fn url(&self, id: &str) -> String {
        format!("{}{id}", self.base)
    }

    /// A resource, or None when ARM says it does not exist. A missing
    /// parent (resource group, server) is an error, not an absence.
    pub async fn get(&self, id: &str, api_version: &str) -> Result<Option<Value>, ProviderError> {
        let (status, headers, body) = self
            .send(Method::GET, &self.url(id), Some(api_version), None)
            .await?;
        if status == StatusCode::NOT_FOUND && !parent_missing(&body) {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(classify(
                &format!("get {}", describe(id)),
                status,
                &headers,
                &body,
            ));
        }
        Ok(Some(body))
    }

    /// Creates or replaces a resource.
    pub async fn put(
        &self,
        id: &str,
        api_version: &str,
        body: &Value,
    ) -> Result<Written, ProviderError> {
        let (status, headers, answer) = self
            .send(Method::PUT, &self.url(id), Some(api_version), Some(body))
            .await?;
        if !status.is_success() {
            return Err(classify(
                &format!("put {}", describe(id)),
                status,
                &headers,
                &answer,
            ));
        }
        Ok(Written {
            poll: poll_of(status, &headers),
            body: answer,
        })
    }

    /// Deletes a resource; Ok(None) once there is nothing to wait for.
    pub async fn delete(&self, id: &str, api_version: &str) -> Result<Option<Poll>, ProviderError> {
        let (status, headers, body) = self
            .send(Method::DELETE, &self.url(id), Some(api_version), None)
            .await?;
        if status == StatusCode::NOT_FOUND || status == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(classify(
                &format!("delete {}", describe(id)),
                status,
                &headers,
                &body,
            ));
        }
        Ok(poll_of(status, &headers))
    }

    /// Asks how an operation is going.
    pub async fn poll(&self, poll: &Poll, what: &str) -> Result<PollState, ProviderError> {
        // The URL carries its own api-version.
        let (status, headers, body) = self.send(Method::GET, &poll.url, None, None).await?;
        let retry_after = retry_after(&headers).unwrap_or(poll.retry_after);
        match poll.kind {
            PollKind::AsyncOperation => {
                if !status.is_success() {
                    return Err(classify(
                        &format!("poll the operation that will {what}"),
                        status,
                        &headers,
                        &body,
                    ));
                }
                let state = body
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("InProgress");
                Ok(match state {
                    "Succeeded" => PollState::Succeeded,
                    "Failed" | "Canceled" | "Cancelled" => PollState::Failed(classify(
                        &format!("{what}: the operation {}", state.to_ascii_lowercase()),
                        StatusCode::OK,
                        &headers,
                        &body,
                    )),
                    other => PollState::Running {
                        status: other.to_string(),
                        retry_after,
                    },
                })
            }
            PollKind::Location => Ok(match status {
                StatusCode::ACCEPTED => PollState::Running {
                    status: "InProgress".into(),
                    retry_after,
                },
                s if s.is_success() => PollState::Succeeded,
                s => PollState::Failed(classify(
                    &format!("{what}: the operation failed"),
                    s,
                    &headers,
                    &body,
                )),
            }),
        }
    }
}

/// The path of a URL, for messages: a token or key never rides in one, but
/// the host adds nothing a user needs.
fn path_of(url: &str) -> &str {
    url.find("/subscriptions/").map_or(url, |i| &url[i..])
}

/// "Microsoft.Sql/servers orders" for a resource id.
pub fn describe(id: &str) -> String {
    let parts: Vec<&str> = id.split('/').filter(|s| !s.is_empty()).collect();
    match parts
        .iter()
        .position(|p| p.eq_ignore_ascii_case("providers"))
    {
        Some(i) if i + 2 < parts.len() => {
            let rest = &parts[i + 1..];
            let name = rest.last().copied().unwrap_or("");
            let types: Vec<&str> = rest.iter().skip(1).step_by(2).copied().collect();
            format!("{}/{} {name}", rest[0], types.join("/"))
        }
        _ => id.to_string(),
    }
}

/// Whether a 404 is about a parent (the resource group, the server) rather
/// than the resource itself.
fn parent_missing(body: &Value) -> bool {
    matches!(
        body.pointer("/error/code").and_then(Value::as_str),
        Some("ResourceGroupNotFound" | "ParentResourceNotFound" | "SubscriptionNotFound")
    )
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

/// The operation a write answered with, if it is long-running.
fn poll_of(status: StatusCode, headers: &HeaderMap) -> Option<Poll> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let retry_after = retry_after(headers).unwrap_or(DEFAULT_RETRY_AFTER);
    if let Some(url) = header("azure-asyncoperation") {
        return Some(Poll {
            url,
            kind: PollKind::AsyncOperation,
            retry_after,
        });
    }
    if status == StatusCode::ACCEPTED || status == StatusCode::CREATED {
        if let Some(url) = header("location") {
            return Some(Poll {
                url,
                kind: PollKind::Location,
                retry_after,
            });
        }
    }
    None
}

/// ARM error codes that mean a quota or capacity limit.
fn quota(code: &str, message: &str) -> bool {
    let lower = format!("{code} {message}").to_ascii_lowercase();
    lower.contains("quota")
        || code == "SkuNotAvailable"
        || code == "ZonalAllocationFailed"
        || code == "AllocationFailed"
}

/// An ARM error in provider terms, with ARM's code and message kept.
pub fn classify(
    what: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &Value,
) -> ProviderError {
    let error = body.get("error").unwrap_or(body);
    let code = error.get("code").and_then(Value::as_str).unwrap_or("");
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| match body {
            Value::String(text) => text.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        });
    let mut text = format!("cannot {what}: HTTP {}", status.as_u16());
    if !code.is_empty() {
        text.push_str(&format!(" {code}"));
    }
    if !message.is_empty() {
        text.push_str(&format!(": {message}"));
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        if let Some(wait) = retry_after(headers) {
            text.push_str(&format!(" (retry after {}s)", wait.as_secs()));
        }
        return ProviderError::Throttled(text);
    }
    if quota(code, &message) {
        return ProviderError::terminal(text);
    }
    match status.as_u16() {
        401 | 403 => ProviderError::Unauthorized(text),
        409 if code.contains("InProgress")
            || code == "Conflict" && message.contains("in progress") =>
        {
            ProviderError::retryable(text)
        }
        400 | 404 | 405 | 409 | 412 | 422 => ProviderError::terminal(text),
        s if s >= 500 => ProviderError::retryable(text),
        // An operation that failed answers 200 with its error.
        _ if code.contains("Internal") || code.contains("Timeout") || code == "RetryableError" => {
            ProviderError::retryable(text)
        }
        200 => ProviderError::terminal(text),
        _ => ProviderError::retryable(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kind(e: &ProviderError) -> &'static str {
        match e {
            ProviderError::Throttled(_) => "throttled",
            ProviderError::Terminal(_) => "terminal",
            ProviderError::Unauthorized(_) => "unauthorized",
            ProviderError::Retryable(_) => "retryable",
            ProviderError::NotConfigured(_) => "not configured",
        }
    }

    #[test]
    fn arm_errors_are_sorted_by_what_retrying_can_do() {
        let cases = [
            ("429 is throttling", 429, "TooManyRequests", "The request is being throttled.", "throttled"),
            ("a quota error is terminal", 409, "OperationNotAllowed", "Operation could not be completed as it results in exceeding approved Total Regional Cores quota.", "terminal"),
            ("an unavailable SKU is terminal", 409, "SkuNotAvailable", "The requested size for resource is currently not available in location.", "terminal"),
            ("a refused token is unauthorized", 401, "InvalidAuthenticationToken", "The access token is invalid.", "unauthorized"),
            ("a missing role is unauthorized", 403, "AuthorizationFailed", "The client does not have authorization to perform action.", "unauthorized"),
            ("a conflict is terminal", 409, "ServerNameAlreadyExists", "The specified server name is already in use.", "terminal"),
            ("another operation in progress is retried", 409, "AnotherOperationInProgress", "Another operation is in progress.", "retryable"),
            ("an invalid parameter is terminal", 400, "InvalidParameterValue", "Invalid value given for parameter Login.", "terminal"),
            ("5xx is retried", 503, "ServiceUnavailable", "The service is unavailable.", "retryable"),
        ];
        for (reason, status, code, message, want) in cases {
            let body = json!({"error": {"code": code, "message": message}});
            let got = classify(
                "put Microsoft.Sql/servers orders",
                StatusCode::from_u16(status).expect("status"),
                &HeaderMap::new(),
                &body,
            );
            assert_eq!(kind(&got), want, "{reason}: {got}");
            assert!(
                got.to_string().contains(code) && got.to_string().contains(message),
                "{reason}: {got}"
            );
        }
    }

    #[test]
    fn resource_ids_read_as_type_and_name() {
        assert_eq!(
            describe("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/orders/databases/app"),
            "Microsoft.Sql/servers/databases app"
        );
        assert_eq!(
            describe("/subscriptions/s/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/flexibleServers/pg"),
            "Microsoft.DBforPostgreSQL/flexibleServers pg"
        );
    }

    #[test]
    fn long_running_writes_name_how_to_follow_them() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "azure-asyncoperation",
            "https://arm/op/1".parse().expect("header"),
        );
        headers.insert("retry-after", "7".parse().expect("header"));
        assert_eq!(
            poll_of(StatusCode::CREATED, &headers),
            Some(Poll {
                url: "https://arm/op/1".into(),
                kind: PollKind::AsyncOperation,
                retry_after: Duration::from_secs(7)
            })
        );
        let mut location = HeaderMap::new();
        location.insert("location", "https://arm/results/2".parse().expect("header"));
        assert_eq!(
            poll_of(StatusCode::ACCEPTED, &location),
            Some(Poll {
                url: "https://arm/results/2".into(),
                kind: PollKind::Location,
                retry_after: DEFAULT_RETRY_AFTER
            })
        );
        assert_eq!(
            poll_of(StatusCode::OK, &HeaderMap::new()),
            None,
            "a synchronous answer has nothing to follow"
        );
    }
}

//! Google Cloud errors in provider terms. The clients have already retried
//! what Google marks retryable a few times by the time an error gets here;
//! what is left is sorted so the reconciler knows whether retrying can help:
//! - throttled (HTTP 429, `rateLimitExceeded`): retried with backoff;
//! - refused credentials or permission (401, 403): not retried hot, since
//!   nothing changes until the credentials or the IAM policy do;
//! - quota, conflict and invalid-argument answers: terminal until the spec
//!   changes, with Google's own code and message;
//! - anything else (5xx, timeouts, a dropped connection): retryable.
//!
//! Operations that finished with an error are sorted the same way by their
//! error code.

use google_cloud_gax::error::rpc::{Code, StatusDetails};
use google_cloud_gax::error::Error;
use provider_sdk::ProviderError;

/// What Google answered, reduced to what classification needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status code, when the service answered.
    pub http: Option<u16>,
    /// The canonical status, e.g. `ALREADY_EXISTS`, when the body had one.
    pub status: Option<String>,
    /// The first `errors[].reason` or ErrorInfo reason, e.g. `quotaExceeded`.
    pub reason: Option<String>,
    pub message: String,
}

impl Answer {
    pub fn of(err: &Error) -> Answer {
        let status = err.status();
        let reason = status.and_then(|s| {
            s.details.iter().find_map(|d| match d {
                StatusDetails::ErrorInfo(info) if !info.reason.is_empty() => {
                    Some(info.reason.clone())
                }
                _ => None,
            })
        });
        Answer {
            http: err.http_status_code(),
            status: status
                .map(|s| s.code)
                .filter(|c| *c != Code::Unknown)
                .map(|c| c.name().to_string()),
            reason,
            message: status.map_or_else(|| err.to_string(), |s| s.message.clone()),
        }
    }

    /// Whether Google said the thing asked for is not there.
    pub fn is_not_found(&self) -> bool {
        self.http == Some(404) || self.status.as_deref() == Some("NOT_FOUND")
    }

    /// Whether Google said the thing asked for is there already.
    pub fn is_conflict(&self) -> bool {
        self.http == Some(409)
    }

    fn describe(&self) -> String {
        let mut text = String::new();
        if let Some(code) = self.http {
            text.push_str(&format!("HTTP {code} "));
        }
        if let Some(status) = &self.status {
            text.push_str(status);
            text.push_str(": ");
        }
        text.push_str(&self.message);
        if let Some(reason) = &self.reason {
            text.push_str(&format!(" (reason {reason})"));
        }
        text
    }
}

/// Whether an error is Google saying the resource does not exist.
pub fn is_not_found(err: &Error) -> bool {
    Answer::of(err).is_not_found()
}

/// An error of a call, as the reconciler should treat it. `what` says what
/// was tried, e.g. "insert Cloud SQL instance db-1".
pub fn classify(what: &str, err: &Error) -> ProviderError {
    if err.is_authentication() {
        return ProviderError::Unauthorized(format!(
            "cannot {what}: the credentials were refused: {err}"
        ));
    }
    if err.is_timeout() || err.is_io() || err.is_connect() || err.is_transport() {
        return ProviderError::retryable(format!("cannot {what}: {err}"));
    }
    sort(what, &Answer::of(err))
}

/// Sorts an answer by its HTTP code, canonical status and reason.
pub fn sort(what: &str, answer: &Answer) -> ProviderError {
    let text = format!("cannot {what}: {}", answer.describe());
    let reason = answer.reason.as_deref().unwrap_or("");
    let status = answer.status.as_deref().unwrap_or("");
    let quota = reason.to_ascii_lowercase().contains("quota")
        || answer.message.to_ascii_lowercase().contains("quota");
    if matches!(reason, "rateLimitExceeded" | "userRateLimitExceeded")
        || (answer.http == Some(429) || status == "RESOURCE_EXHAUSTED") && !quota
    {
        return ProviderError::Throttled(text);
    }
    if quota {
        return ProviderError::terminal(text);
    }
    match answer.http {
        Some(401) => ProviderError::Unauthorized(text),
        Some(403) => ProviderError::Unauthorized(text),
        // Cloud SQL answers 409 while another operation on the instance runs.
        Some(409) if reason == "operationInProgress" || answer.message.contains("in progress") => {
            ProviderError::retryable(text)
        }
        Some(400 | 404 | 409 | 412 | 422) => ProviderError::terminal(text),
        Some(code) if code >= 500 => ProviderError::retryable(text),
        _ => match status {
            "UNAUTHENTICATED" | "PERMISSION_DENIED" => ProviderError::Unauthorized(text),
            "INVALID_ARGUMENT"
            | "ALREADY_EXISTS"
            | "FAILED_PRECONDITION"
            | "NOT_FOUND"
            | "OUT_OF_RANGE" => ProviderError::terminal(text),
            _ => ProviderError::retryable(text),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(http: u16, status: &str, reason: &str, message: &str) -> Answer {
        Answer {
            http: Some(http),
            status: (!status.is_empty()).then(|| status.to_string()),
            reason: (!reason.is_empty()).then(|| reason.to_string()),
            message: message.into(),
        }
    }

    #[test]
    fn answers_are_sorted_by_what_retrying_can_do() {
        let cases = [
            (
                "429 is throttling and backs off",
                answer(429, "RESOURCE_EXHAUSTED", "", "Too many requests"),
                "throttled",
            ),
            (
                "a rate limit reason is throttling even on 403",
                answer(
                    403,
                    "PERMISSION_DENIED",
                    "rateLimitExceeded",
                    "Rate Limit Exceeded",
                ),
                "throttled",
            ),
            (
                "a quota answer is terminal with Google's words",
                answer(
                    403,
                    "",
                    "quotaExceeded",
                    "Quota 'CPUS' exceeded. Limit: 8.0",
                ),
                "terminal",
            ),
            (
                "an exhausted quota on 429 is terminal too",
                answer(
                    429,
                    "RESOURCE_EXHAUSTED",
                    "",
                    "Quota exceeded for quota metric 'Queries'",
                ),
                "terminal",
            ),
            (
                "a refused token is unauthorized",
                answer(
                    401,
                    "UNAUTHENTICATED",
                    "",
                    "Request had invalid authentication credentials.",
                ),
                "unauthorized",
            ),
            (
                "a missing permission is unauthorized, not retried hot",
                answer(
                    403,
                    "PERMISSION_DENIED",
                    "forbidden",
                    "The client is not authorized to make this request.",
                ),
                "unauthorized",
            ),
            (
                "a conflict is terminal",
                answer(
                    409,
                    "ALREADY_EXISTS",
                    "instanceAlreadyExists",
                    "The Cloud SQL instance already exists.",
                ),
                "terminal",
            ),
            (
                "an operation in progress is retried",
                answer(
                    409,
                    "",
                    "operationInProgress",
                    "Operation failed because another operation was already in progress.",
                ),
                "retryable",
            ),
            (
                "an invalid argument is terminal",
                answer(
                    400,
                    "INVALID_ARGUMENT",
                    "invalid",
                    "Invalid request: Invalid Tier (db-nope).",
                ),
                "terminal",
            ),
            (
                "5xx is retried",
                answer(
                    503,
                    "UNAVAILABLE",
                    "",
                    "The service is currently unavailable.",
                ),
                "retryable",
            ),
        ];
        for (reason, answer, want) in cases {
            let got = sort("insert Cloud SQL instance db", &answer);
            let kind = match &got {
                ProviderError::Throttled(_) => "throttled",
                ProviderError::Terminal(_) => "terminal",
                ProviderError::Unauthorized(_) => "unauthorized",
                ProviderError::Retryable(_) => "retryable",
                ProviderError::NotConfigured(_) => "not configured",
            };
            assert_eq!(kind, want, "{reason}: {got}");
            assert!(
                got.to_string().contains(&answer.message),
                "{reason}: the message is kept: {got}"
            );
            assert!(
                got.to_string()
                    .contains("cannot insert Cloud SQL instance db"),
                "{reason}: {got}"
            );
        }
    }
}

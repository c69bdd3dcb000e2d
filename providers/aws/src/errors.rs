//! AWS errors in provider terms. The SDK has already retried throttling and
//! 5xx answers with backoff by the time an error gets here; what is left is
//! sorted so the reconciler knows whether retrying can help:
//! - throttled: retried with backoff, and the condition says so;
//! - refused credentials (AccessDenied and friends): terminal until the
//!   credentials change, not retried hot;
//! - invalid parameters: terminal until the spec changes;
//! - anything else (5xx, timeouts, a dropped connection): retryable.

use aws_sdk_rds::config::http::HttpResponse;
use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use provider_sdk::ProviderError;

/// Error codes AWS uses when it throttles a caller.
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Error codes AWS uses when it refuses the credentials or the permission.
const REFUSED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "AuthFailure",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "UnauthorizedOperation",
    "ExpiredToken",
    "ExpiredTokenException",
    "MissingAuthenticationToken",
    "IncompleteSignature",
    "OptInRequired",
];

/// Error codes that say the request itself is wrong.
fn invalid(code: &str) -> bool {
    code.starts_with("Invalid") && !code.starts_with("InvalidDBInstanceState")
        || code.starts_with("Missing")
        || code.ends_with(".NotFound")
        || code.ends_with("AlreadyExists")
        || code.ends_with("AlreadyExistsFault")
        || code.ends_with(".Malformed")
        || matches!(
            code,
            "ValidationError"
                | "Unsupported"
                | "UnsupportedOperation"
                | "StorageQuotaExceeded"
                | "InstanceQuotaExceeded"
                | "DBSubnetGroupNotFoundFault"
                | "DBSubnetGroupDoesNotCoverEnoughAZs"
                | "DBParameterGroupNotFound"
                | "OptionGroupNotFoundFault"
                | "StorageTypeNotSupported"
                | "KMSKeyNotAccessibleFault"
                | "VPCIdNotSpecified"
                | "InstanceLimitExceeded"
                | "VcpuLimitExceeded"
        )
}

/// The error code AWS answered with, if it answered.
pub fn code<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Option<&str> {
    match err {
        SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}

/// What an AWS call's failure means to the reconciler. `action` names the
/// call, e.g. "DescribeDBInstances", so the user can tell which one failed.
pub fn classify<E>(action: &str, err: &SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let SdkError::ServiceError(service) = err else {
        let causes = causes(err);
        // No credentials to sign with (the environment or the default chain
        // has none): as refused as a wrong key, and as little helped by
        // hot retries.
        if causes.to_lowercase().contains("credential") {
            return ProviderError::Unauthorized(format!(
                "AWS {action}: no usable credentials: {causes}; check the ProviderConfig's spec.credentials"
            ));
        }
        // No answer at all: a timeout, a refused or dropped connection.
        return ProviderError::retryable(format!("AWS {action} did not complete: {causes}"));
    };
    let status = service.raw().status().as_u16();
    let body = service
        .raw()
        .body()
        .bytes()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let code = service
        .err()
        .code()
        .or_else(|| xml_element(&body, "Code"))
        .unwrap_or("Unknown");
    let message = service
        .err()
        .message()
        .or_else(|| xml_element(&body, "Message"))
        .unwrap_or("no message");
    sort(action, status, code, message)
}

/// An error and its sources, each in its own words, without the Debug dump
/// `DisplayErrorContext` appends.
fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// The text of the first `<name>` element of an error body. The SDK parses
/// the error shape each service documents; this reads the code and message
/// of bodies in another shape (an emulator answering RDS calls with EC2's
/// `<Errors>` wrapper, say), so the user still sees AWS's own words.
fn xml_element<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = body.find(&open)? + open.len();
    let end = start + body[start..].find(&format!("</{name}>"))?;
    Some(body[start..end].trim()).filter(|s| !s.is_empty())
}

/// [`classify`] on the parts of an answer, so the sorting can be tested
/// without a server.
pub fn sort(action: &str, status: u16, code: &str, message: &str) -> ProviderError {
    let text = format!("AWS {action}: {code}: {message}");
    if THROTTLING.contains(&code) || status == 429 {
        ProviderError::Throttled(format!("AWS throttled {action} ({code}): {message}"))
    } else if REFUSED.contains(&code) || status == 401 || status == 403 {
        ProviderError::Unauthorized(text)
    } else if status >= 500 {
        // The contract, and AWS's own advice: a 5xx is the service
        // shedding load, retried with backoff like throttling.
        ProviderError::Throttled(format!(
            "AWS throttled {action} with a {status} answer ({code}): {message}"
        ))
    } else if invalid(code) {
        ProviderError::terminal(text)
    } else {
        ProviderError::retryable(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_sorted_by_what_retrying_can_do() {
        let cases = [
            (400, "Throttling", "Rate exceeded", "throttled"),
            (
                503,
                "RequestLimitExceeded",
                "Request limit exceeded.",
                "throttled",
            ),
            (429, "Whatever", "slow down", "throttled"),
            (
                403,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
                "refused",
            ),
            (
                401,
                "AuthFailure",
                "AWS was not able to validate the provided access credentials",
                "refused",
            ),
            (
                403,
                "AccessDenied",
                "User is not authorized to perform rds:CreateDBInstance",
                "refused",
            ),
            (
                400,
                "InvalidParameterValue",
                "Invalid DB Instance class: db.x9.huge",
                "terminal",
            ),
            (
                400,
                "InvalidParameterCombination",
                "Cannot delete protected DB Instance",
                "terminal",
            ),
            (
                400,
                "InvalidAMIID.NotFound",
                "The image id '[ami-1]' does not exist",
                "terminal",
            ),
            (
                400,
                "InvalidDBInstanceState",
                "Instance is not available",
                "retryable",
            ),
            (500, "InternalFailure", "oops", "throttled"),
            (503, "ServiceUnavailable", "try again", "throttled"),
        ];
        for (status, code, message, want) in cases {
            let got = sort("CreateDBInstance", status, code, message);
            let kind = match got {
                ProviderError::Throttled(_) => "throttled",
                ProviderError::Unauthorized(_) => "refused",
                ProviderError::Terminal(_) => "terminal",
                ProviderError::Retryable(_) => "retryable",
                ProviderError::NotConfigured(_) => "not configured",
            };
            assert_eq!(kind, want, "{status} {code}");
            assert!(got.to_string().contains(code), "{got} names {code}");
            assert!(
                got.to_string().contains(message),
                "{got} carries AWS's message"
            );
        }
        let body = "<ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error></Errors></ErrorResponse>";
        assert_eq!(xml_element(body, "Code"), Some("InvalidClientTokenId"));
        assert_eq!(
            xml_element(body, "Message"),
            Some("The security token included in the request is invalid.")
        );
        assert_eq!(xml_element("<Code></Code>", "Code"), None);
        assert!(sort("RunInstances", 400, "Throttling", "x")
            .to_string()
            .starts_with("throttled: "));
    }
}

//! Provider errors: retryable or terminal, with a message fit for a user.

use tonic::{Code, Status};

/// The prefix of the FAILED_PRECONDITION message that asks the host to call
/// Configure and retry.
pub const NOT_CONFIGURED_PREFIX: &str = "not configured:";

/// What went wrong in a provider call.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ProviderError {
    /// Trying again later may work: the external system was unavailable,
    /// throttled us, or timed out.
    #[error("{0}")]
    Retryable(String),
    /// Throttled by the external system; retried with backoff.
    #[error("throttled: {0}")]
    Throttled(String),
    /// Nothing will change until the spec or the credentials do.
    #[error("{0}")]
    Terminal(String),
    /// The credentials were refused.
    #[error("{0}")]
    Unauthorized(String),
    /// The ProviderConfig named is unknown to this provider process.
    #[error("{NOT_CONFIGURED_PREFIX} ProviderConfig {0:?} has not been given to this provider")]
    NotConfigured(String),
}

impl ProviderError {
    pub fn retryable(message: impl Into<String>) -> Self {
        ProviderError::Retryable(message.into())
    }

    pub fn terminal(message: impl Into<String>) -> Self {
        ProviderError::Terminal(message.into())
    }

    /// Whether calling again without any change can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::Retryable(_) | ProviderError::Throttled(_)
        )
    }

    pub fn code(&self) -> Code {
        match self {
            ProviderError::Retryable(_) => Code::Unavailable,
            ProviderError::Throttled(_) => Code::ResourceExhausted,
            ProviderError::Terminal(_) => Code::InvalidArgument,
            ProviderError::Unauthorized(_) => Code::PermissionDenied,
            ProviderError::NotConfigured(_) => Code::FailedPrecondition,
        }
    }

    /// Reads a status back, as the host sees it.
    pub fn from_status(status: &Status) -> ProviderError {
        let message = status.message().to_string();
        match status.code() {
            Code::ResourceExhausted => ProviderError::Throttled(
                message
                    .strip_prefix("throttled: ")
                    .unwrap_or(&message)
                    .to_string(),
            ),
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::Internal
            | Code::Unknown
            | Code::Cancelled => ProviderError::Retryable(if message.is_empty() {
                format!("the provider call failed: {}", status.code())
            } else {
                message
            }),
            Code::PermissionDenied | Code::Unauthenticated => ProviderError::Unauthorized(message),
            Code::FailedPrecondition if message.starts_with(NOT_CONFIGURED_PREFIX) => {
                ProviderError::NotConfigured(message)
            }
            _ => ProviderError::Terminal(message),
        }
    }
}

impl From<ProviderError> for Status {
    fn from(e: ProviderError) -> Status {
        Status::new(e.code(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for e in [
            ProviderError::retryable("down"),
            ProviderError::Throttled("slow down".into()),
            ProviderError::terminal("bad size"),
            ProviderError::Unauthorized("password authentication failed".into()),
        ] {
            let status: Status = e.clone().into();
            assert_eq!(ProviderError::from_status(&status), e);
        }
        let status: Status = ProviderError::NotConfigured("default".into()).into();
        assert!(matches!(
            ProviderError::from_status(&status),
            ProviderError::NotConfigured(_)
        ));
        assert!(ProviderError::retryable("x").is_retryable());
        assert!(!ProviderError::terminal("x").is_retryable());
    }
}

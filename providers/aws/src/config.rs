//! The AWS clients a ProviderConfig describes: its region, an optional
//! endpoint override (moto, LocalStack, a VPC endpoint) and where the
//! credentials come from. Clients are built once per ProviderConfig and
//! rebuilt when its spec or credentials change.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_rds::config::SharedHttpClient;
use provider_sdk::clients::PerConfig;
use provider_sdk::serde_json::Value;
use provider_sdk::{ProviderConfig, ProviderError};

/// Keys of the credentials Secret.
pub const ACCESS_KEY_ID: &str = "access_key_id";
pub const SECRET_ACCESS_KEY: &str = "secret_access_key";
pub const SESSION_TOKEN: &str = "session_token";

/// How many times the SDK tries a call before the error reaches the
/// reconciler, which then backs off on its own.
const MAX_ATTEMPTS: u32 = 3;

/// Where a ProviderConfig's credentials come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The keys of the Secret that `credentials.secretRef` names.
    Secret,
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` of this process.
    Environment,
    /// The SDK's default chain: environment, profile, web identity, IMDS.
    Default,
}

/// What a ProviderConfig's spec says, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub region: String,
    pub endpoint: Option<String>,
    pub source: Source,
}

impl Settings {
    pub fn from_config(config: &ProviderConfig) -> Result<Settings, ProviderError> {
        let text = |pointer: &str| {
            config
                .spec
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let region = text("/region").ok_or_else(|| {
            ProviderError::terminal(format!(
                "ProviderConfig {:?}: spec.region is required: set the AWS region, e.g. us-east-1",
                config.name
            ))
        })?;
        let endpoint = text("/endpoint").map(str::to_string);
        if let Some(url) = &endpoint {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ProviderError::terminal(format!(
                    "ProviderConfig {:?}: spec.endpoint must be an http:// or https:// URL, not {url:?}",
                    config.name
                )));
            }
        }
        let source = match text("/credentials/source").unwrap_or("Secret") {
            "Secret" => Source::Secret,
            "Environment" => Source::Environment,
            "Default" => Source::Default,
            other => {
                return Err(ProviderError::terminal(format!(
                    "ProviderConfig {:?}: spec.credentials.source must be Secret, Environment or Default, not {other:?}",
                    config.name
                )))
            }
        };
        Ok(Settings {
            region: region.to_string(),
            endpoint,
            source,
        })
    }
}

/// The clients of one ProviderConfig.
#[derive(Debug, Clone)]
pub struct Clients {
    pub rds: aws_sdk_rds::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub region: String,
}

/// Clients by ProviderConfig, rebuilt when its spec or credentials change.
#[derive(Default)]
pub struct Pool(PerConfig<Clients>);

impl Pool {
    /// The clients for a ProviderConfig, built on first use.
    pub async fn clients(&self, config: &ProviderConfig) -> Result<Arc<Clients>, ProviderError> {
        self.0.get_or_build(config, || build(config)).await
    }
}

/// One HTTPS client for every ProviderConfig: rustls with ring, which also
/// speaks plain HTTP for endpoints such as a local moto server.
fn http_client() -> SharedHttpClient {
    static CLIENT: OnceLock<SharedHttpClient> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            use aws_smithy_http_client::tls;
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https()
        })
        .clone()
}

async fn build(config: &ProviderConfig) -> Result<Clients, ProviderError> {
    let settings = Settings::from_config(config)?;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .http_client(http_client())
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(30))
                .operation_timeout(Duration::from_secs(90))
                .build(),
        );
    if let Some(endpoint) = &settings.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    match settings.source {
        Source::Secret => {
            let key = |name: &str| {
                config
                    .credential(name)
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
            };
            let missing = |name: &str| {
                ProviderError::terminal(format!(
                    "ProviderConfig {:?}: the credentials Secret (spec.credentials.secretRef) has no {name:?} key",
                    config.name
                ))
            };
            if config.spec.pointer("/credentials/secretRef").is_none() {
                return Err(ProviderError::terminal(format!(
                    "ProviderConfig {:?}: spec.credentials.source is Secret but spec.credentials.secretRef is not set; name a Secret with access_key_id and secret_access_key",
                    config.name
                )));
            }
            let access_key = key(ACCESS_KEY_ID).ok_or_else(|| missing(ACCESS_KEY_ID))?;
            let secret_key = key(SECRET_ACCESS_KEY).ok_or_else(|| missing(SECRET_ACCESS_KEY))?;
            let credentials = aws_sdk_rds::config::Credentials::new(
                access_key,
                secret_key,
                key(SESSION_TOKEN).map(str::to_string),
                None,
                "plinth-provider-config",
            );
            loader = loader.credentials_provider(credentials);
        }
        Source::Environment => {
            loader = loader.credentials_provider(
                aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
            );
        }
        // The SDK's own chain, as the loader builds it.
        Source::Default => {}
    }
    let sdk = loader.load().await;
    tracing::info!(
        provider_config = %config.name,
        region = %settings.region,
        endpoint = settings.endpoint.as_deref().unwrap_or("(AWS)"),
        source = ?settings.source,
        "AWS clients ready"
    );
    Ok(Clients {
        rds: aws_sdk_rds::Client::new(&sdk),
        ec2: aws_sdk_ec2::Client::new(&sdk),
        region: settings.region,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use provider_sdk::serde_json::json;

    fn config(spec: Value) -> ProviderConfig {
        ProviderConfig {
            name: "default".into(),
            spec,
            credentials: Default::default(),
        }
    }

    #[test]
    fn settings_are_read_and_checked() {
        let s = Settings::from_config(&config(json!({
            "region": "eu-west-1",
            "endpoint": "http://127.0.0.1:5000",
            "credentials": {"source": "Environment"}
        })))
        .expect("valid");
        assert_eq!(
            s,
            Settings {
                region: "eu-west-1".into(),
                endpoint: Some("http://127.0.0.1:5000".into()),
                source: Source::Environment
            }
        );
        let defaulted =
            Settings::from_config(&config(json!({"region": "us-east-1"}))).expect("valid");
        assert_eq!(defaulted.source, Source::Secret);
        for (spec, field) in [
            (json!({}), "spec.region"),
            (
                json!({"region": "us-east-1", "endpoint": "127.0.0.1:5000"}),
                "spec.endpoint",
            ),
            (
                json!({"region": "us-east-1", "credentials": {"source": "IMDS"}}),
                "spec.credentials.source",
            ),
        ] {
            let err = Settings::from_config(&config(spec)).expect_err("invalid");
            assert!(!err.is_retryable());
            assert!(err.to_string().contains(field), "{err} should name {field}");
        }
    }
}

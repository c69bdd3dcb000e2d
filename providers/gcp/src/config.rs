//! The Google Cloud clients a ProviderConfig describes: the project and
//! region, an optional endpoint override (a private or regional endpoint, or
//! a test server) and where the credentials come from. Clients are built once
//! per ProviderConfig and rebuilt when its spec or credentials change.

use std::sync::Arc;
use std::time::Duration;

use google_cloud_auth::credentials::{self, Credentials};
use google_cloud_compute_v1::client::Instances;
use google_cloud_gax::exponential_backoff::ExponentialBackoffBuilder;
use google_cloud_gax::retry_policy::{Aip194Strict, RetryPolicyExt};
use google_cloud_sql_v1::client::{
    SqlDatabasesService, SqlInstancesService, SqlOperationsService, SqlUsersService,
};
use provider_sdk::clients::PerConfig;
use provider_sdk::{ProviderConfig, ProviderError};
use serde_json::Value;

/// The key of the credentials Secret that holds the service-account JSON
/// key, when `credentials.secretRef.key` does not name one.
pub const DEFAULT_KEY: &str = "credentials.json";

/// How many times a client tries a call before the error reaches the
/// reconciler, which then backs off on its own.
const MAX_ATTEMPTS: u32 = 3;

/// Where a ProviderConfig's credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A service-account JSON key, under this key of the Secret that
    /// `credentials.secretRef` names.
    Secret { key: String },
    /// Application Default Credentials: `GOOGLE_APPLICATION_CREDENTIALS`,
    /// gcloud's own, or the metadata server of the machine.
    Default,
}

/// What a ProviderConfig's spec says, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub project: String,
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
        let refuse = |what: String| {
            ProviderError::terminal(format!("ProviderConfig {:?}: {what}", config.name))
        };
        let project = text("/projectID").ok_or_else(|| {
            refuse(
                "spec.projectID is required: set the Google Cloud project id, e.g. my-project"
                    .into(),
            )
        })?;
        let region = text("/region").ok_or_else(|| {
            refuse("spec.region is required: set the Google Cloud region, e.g. europe-west1".into())
        })?;
        let endpoint = text("/endpoint").map(|url| url.trim_end_matches('/').to_string());
        if let Some(url) = &endpoint {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(refuse(format!(
                    "spec.endpoint must be an http:// or https:// URL, not {url:?}"
                )));
            }
        }
        let source = match text("/credentials/source").unwrap_or("Secret") {
            "Secret" => Source::Secret {
                key: text("/credentials/secretRef/key")
                    .unwrap_or(DEFAULT_KEY)
                    .to_string(),
            },
            "Default" => Source::Default,
            other => {
                return Err(refuse(format!(
                    "spec.credentials.source must be Secret or Default, not {other:?}"
                )))
            }
        };
        Ok(Settings {
            project: project.to_string(),
            region: region.to_string(),
            endpoint,
            source,
        })
    }

    /// The credentials the settings name.
    fn credentials(&self, config: &ProviderConfig) -> Result<Credentials, ProviderError> {
        match &self.source {
            Source::Default => credentials::Builder::default().build().map_err(|e| {
                ProviderError::Unauthorized(format!(
                    "cannot find Application Default Credentials: {e}"
                ))
            }),
            Source::Secret { key } => {
                let text = config.credential(key).ok_or_else(|| {
                    ProviderError::terminal(format!(
                        "ProviderConfig {:?}: the credentials Secret has no key {key:?} holding a service-account JSON key (set spec.credentials.secretRef.key to the key that does)",
                        config.name
                    ))
                })?;
                let json: Value = serde_json::from_str(text).map_err(|e| {
                    ProviderError::terminal(format!(
                        "ProviderConfig {:?}: the credentials Secret's key {key:?} is not a service-account JSON key: {e}",
                        config.name
                    ))
                })?;
                if json.get("type").and_then(Value::as_str) != Some("service_account") {
                    return Err(ProviderError::terminal(format!(
                        "ProviderConfig {:?}: the credentials Secret's key {key:?} must be a service-account JSON key (\"type\": \"service_account\"), as `gcloud iam service-accounts keys create` writes",
                        config.name
                    )));
                }
                credentials::service_account::Builder::new(json)
                    .build()
                    .map_err(|e| {
                        ProviderError::terminal(format!(
                            "ProviderConfig {:?}: cannot use the service-account key: {e}",
                            config.name
                        ))
                    })
            }
        }
    }
}

/// The clients of one ProviderConfig, and where they act.
#[derive(Debug, Clone)]
pub struct Clients {
    pub project: String,
    pub region: String,
    pub sql_instances: SqlInstancesService,
    pub sql_databases: SqlDatabasesService,
    pub sql_users: SqlUsersService,
    pub sql_operations: SqlOperationsService,
    pub compute: Instances,
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

async fn build(config: &ProviderConfig) -> Result<Clients, ProviderError> {
    let settings = Settings::from_config(config)?;
    let credentials = settings.credentials(config)?;
    // Each builder type is its own, so one macro configures them alike:
    // a few quick retries of what Google marks retryable (429, 503), then
    // the error goes to the reconciler, which backs off across reconciles.
    macro_rules! client {
        ($service:ty) => {{
            let mut builder = <$service>::builder()
                .with_credentials(credentials.clone())
                .with_retry_policy(Aip194Strict.with_attempt_limit(MAX_ATTEMPTS))
                .with_backoff_policy(
                    ExponentialBackoffBuilder::new()
                        .with_initial_delay(Duration::from_millis(200))
                        .with_maximum_delay(Duration::from_secs(2))
                        .build()
                        .map_err(|e| {
                            ProviderError::terminal(format!("cannot build a backoff policy: {e}"))
                        })?,
                );
            if let Some(endpoint) = &settings.endpoint {
                builder = builder.with_endpoint(endpoint.clone());
            }
            builder.build().await.map_err(|e| {
                ProviderError::retryable(format!(
                    "cannot build the {} client: {e}",
                    stringify!($service)
                ))
            })?
        }};
    }
    Ok(Clients {
        project: settings.project.clone(),
        region: settings.region.clone(),
        sql_instances: client!(SqlInstancesService),
        sql_databases: client!(SqlDatabasesService),
        sql_users: client!(SqlUsersService),
        sql_operations: client!(SqlOperationsService),
        compute: client!(Instances),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(spec: Value) -> ProviderConfig {
        ProviderConfig {
            name: "default".into(),
            spec,
            credentials: Default::default(),
        }
    }

    #[test]
    fn settings_are_read_and_checked() {
        let cases = [
            (
                "a full spec is read as written, the endpoint without its trailing slash",
                json!({"projectID": "p", "region": "europe-west1", "endpoint": "http://127.0.0.1:9/",
                       "credentials": {"source": "Secret", "secretRef": {"namespace": "ns", "name": "gcp", "key": "sa.json"}}}),
                Ok(Settings {
                    project: "p".into(),
                    region: "europe-west1".into(),
                    endpoint: Some("http://127.0.0.1:9".into()),
                    source: Source::Secret {
                        key: "sa.json".into(),
                    },
                }),
            ),
            (
                "without a source the Secret is used, under the default key",
                json!({"projectID": "p", "region": "r"}),
                Ok(Settings {
                    project: "p".into(),
                    region: "r".into(),
                    endpoint: None,
                    source: Source::Secret {
                        key: DEFAULT_KEY.into(),
                    },
                }),
            ),
            (
                "Default asks for Application Default Credentials",
                json!({"projectID": "p", "region": "r", "credentials": {"source": "Default"}}),
                Ok(Settings {
                    project: "p".into(),
                    region: "r".into(),
                    endpoint: None,
                    source: Source::Default,
                }),
            ),
            (
                "a missing project says which field and what it takes",
                json!({"region": "r"}),
                Err("spec.projectID is required"),
            ),
            (
                "a missing region says so",
                json!({"projectID": "p"}),
                Err("spec.region is required"),
            ),
            (
                "an endpoint that is no URL is refused",
                json!({"projectID": "p", "region": "r", "endpoint": "sqladmin.googleapis.com"}),
                Err("spec.endpoint must be an http:// or https:// URL"),
            ),
            (
                "an unknown source is refused with the ones there are",
                json!({"projectID": "p", "region": "r", "credentials": {"source": "Environment"}}),
                Err("must be Secret or Default"),
            ),
        ];
        for (reason, spec, want) in cases {
            let got = Settings::from_config(&config(spec));
            match (want, got) {
                (Ok(want), Ok(got)) => assert_eq!(got, want, "{reason}"),
                (Err(want), Err(got)) => {
                    assert!(got.to_string().contains(want), "{reason}: got {got}")
                }
                (want, got) => panic!("{reason}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn a_secret_without_a_service_account_key_is_refused_clearly() {
        let mut with = config(json!({"projectID": "p", "region": "r"}));
        let settings = Settings::from_config(&with).expect("settings");
        let missing = settings.credentials(&with).expect_err("no key");
        assert!(
            missing.to_string().contains("no key \"credentials.json\""),
            "{missing}"
        );
        with.credentials.insert(
            DEFAULT_KEY.into(),
            br#"{"type": "authorized_user"}"#.to_vec(),
        );
        let wrong = settings
            .credentials(&with)
            .expect_err("not a service account");
        assert!(
            wrong
                .to_string()
                .contains("must be a service-account JSON key"),
            "{wrong}"
        );
    }
}

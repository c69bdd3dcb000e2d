//! The provider seam: what the managed reconciler asks of the provider that
//! serves a kind, in plain Rust.
//!
//! Modelled on crossplane-runtime's `ExternalClient`: four idempotent verbs
//! on one external resource, each with a typed result, plus Configure (a
//! ProviderConfig and its credentials) and Validate. The plugin host's gRPC
//! client implements it over `plinth.provider.v1`; tests use
//! [`ExternalClientFns`], built from closures, and [`NopClient`].
//!
//! The contract every implementation keeps:
//! - Observe never changes the external resource.
//! - Create tolerates "already exists" (a retried Create finds the first).
//! - Delete succeeds on "already gone".
//! - Every call may be repeated with the same input.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value};

/// Connection details: keys and their secret values.
pub type ConnectionDetails = BTreeMap<String, Vec<u8>>;

/// One managed resource as the provider sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExternalResource {
    pub kind: String,
    pub name: String,
    pub uid: String,
    /// The `crossplane.io/external-name` annotation; empty before it is known.
    pub external_name: String,
    pub for_provider: Value,
    /// The ProviderConfig it uses.
    pub provider_config: String,
    /// Values of the Secrets that `...SecretRef` fields of forProvider name.
    pub secrets: HashMap<String, Vec<u8>>,
    /// 32 bytes stable for the resource's life, for generated passwords.
    pub secret_seed: Vec<u8>,
}

/// A ProviderConfig and the credentials it names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProviderConfig {
    pub name: String,
    pub spec: Value,
    pub credentials: BTreeMap<String, Vec<u8>>,
}

/// How far an existing external resource is from usable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Readiness {
    #[default]
    Unspecified,
    Available,
    Creating,
    Deleting,
    Unavailable,
}

/// What Observe found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    pub exists: bool,
    /// Whether the external resource matches forProvider.
    pub up_to_date: bool,
    /// What differs, for a person.
    pub diff: String,
    /// forProvider fields the external system defaulted, to fill in.
    pub late_init: Map<String, Value>,
    pub at_provider: Option<Value>,
    pub connection: ConnectionDetails,
    pub readiness: Readiness,
    pub readiness_message: String,
    /// The external name, when the provider found it under another.
    pub external_name: String,
}

impl Observation {
    /// Nothing there.
    pub fn absent() -> Observation {
        Observation::default()
    }

    /// There, matching its spec, and usable.
    pub fn available() -> Observation {
        Observation {
            exists: true,
            up_to_date: true,
            readiness: Readiness::Available,
            ..Default::default()
        }
    }
}

/// What Create made.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Creation {
    pub external_name: String,
    pub connection: ConnectionDetails,
}

/// One problem Validate found in forProvider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The field, relative to `spec.forProvider` unless it starts with
    /// `spec.` or `metadata.`.
    pub field: String,
    pub message: String,
}

/// Why a provider call failed, as the reconciler acts on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExternalError {
    /// Trying again later may work.
    #[error("{0}")]
    Retryable(String),
    /// The external system throttled us; retried with backoff.
    #[error("throttled: {0}")]
    Throttled(String),
    /// Nothing will change until the spec or the credentials do.
    #[error("{0}")]
    Terminal(String),
    /// The credentials were refused.
    #[error("{0}")]
    Unauthorized(String),
    /// The provider has not been given this ProviderConfig: configure, then retry.
    #[error("{0}")]
    NotConfigured(String),
}

/// The provider of one kind.
#[async_trait::async_trait]
pub trait ExternalClient: Send + Sync {
    /// Gives the provider a ProviderConfig and its credentials.
    async fn configure(&self, config: &ProviderConfig) -> Result<(), ExternalError>;
    /// Whether forProvider can work, before anything is created or changed.
    async fn validate(&self, resource: &ExternalResource) -> Result<Vec<Violation>, ExternalError>;
    /// What exists; never changes anything.
    async fn observe(&self, resource: &ExternalResource) -> Result<Observation, ExternalError>;
    /// Makes it; finds the first one when called again.
    async fn create(&self, resource: &ExternalResource) -> Result<Creation, ExternalError>;
    /// Makes it match forProvider.
    async fn update(&self, resource: &ExternalResource)
        -> Result<ConnectionDetails, ExternalError>;
    /// Removes it; succeeds when it is already gone.
    async fn delete(&self, resource: &ExternalResource) -> Result<(), ExternalError>;
}

type Call<T> = Arc<dyn Fn(&ExternalResource) -> Result<T, ExternalError> + Send + Sync>;
type ConfigureCall = Arc<dyn Fn(&ProviderConfig) -> Result<(), ExternalError> + Send + Sync>;

/// A fake provider from closures, as crossplane-runtime's
/// `ExternalClientFns`: each verb not given succeeds with an empty result.
#[derive(Clone, Default)]
pub struct ExternalClientFns {
    pub configure: Option<ConfigureCall>,
    pub validate: Option<Call<Vec<Violation>>>,
    pub observe: Option<Call<Observation>>,
    pub create: Option<Call<Creation>>,
    pub update: Option<Call<ConnectionDetails>>,
    pub delete: Option<Call<()>>,
}

#[async_trait::async_trait]
impl ExternalClient for ExternalClientFns {
    async fn configure(&self, config: &ProviderConfig) -> Result<(), ExternalError> {
        self.configure.as_ref().map_or(Ok(()), |f| f(config))
    }
    async fn validate(&self, r: &ExternalResource) -> Result<Vec<Violation>, ExternalError> {
        self.validate.as_ref().map_or(Ok(Vec::new()), |f| f(r))
    }
    async fn observe(&self, r: &ExternalResource) -> Result<Observation, ExternalError> {
        self.observe
            .as_ref()
            .map_or(Ok(Observation::absent()), |f| f(r))
    }
    async fn create(&self, r: &ExternalResource) -> Result<Creation, ExternalError> {
        self.create
            .as_ref()
            .map_or(Ok(Creation::default()), |f| f(r))
    }
    async fn update(&self, r: &ExternalResource) -> Result<ConnectionDetails, ExternalError> {
        self.update
            .as_ref()
            .map_or(Ok(ConnectionDetails::new()), |f| f(r))
    }
    async fn delete(&self, r: &ExternalResource) -> Result<(), ExternalError> {
        self.delete.as_ref().map_or(Ok(()), |f| f(r))
    }
}

/// A provider for which everything exists, is up to date and available,
/// as crossplane-runtime's `NopClient`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NopClient;

#[async_trait::async_trait]
impl ExternalClient for NopClient {
    async fn configure(&self, _: &ProviderConfig) -> Result<(), ExternalError> {
        Ok(())
    }
    async fn validate(&self, _: &ExternalResource) -> Result<Vec<Violation>, ExternalError> {
        Ok(Vec::new())
    }
    async fn observe(&self, _: &ExternalResource) -> Result<Observation, ExternalError> {
        Ok(Observation::available())
    }
    async fn create(&self, r: &ExternalResource) -> Result<Creation, ExternalError> {
        Ok(Creation {
            external_name: r.name.clone(),
            connection: ConnectionDetails::new(),
        })
    }
    async fn update(&self, _: &ExternalResource) -> Result<ConnectionDetails, ExternalError> {
        Ok(ConnectionDetails::new())
    }
    async fn delete(&self, _: &ExternalResource) -> Result<(), ExternalError> {
        Ok(())
    }
}

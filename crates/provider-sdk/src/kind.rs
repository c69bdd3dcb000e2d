//! What a provider author implements: one [`ExternalResource`] per kind.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::error::ProviderError;
use crate::pb;

/// Connection details, key by key (a generated password, a host, a port).
pub type ConnectionDetails = BTreeMap<String, Vec<u8>>;

/// One ProviderConfig, as the control plane configured it.
#[derive(Debug, Clone, Default)]
pub struct ProviderConfig {
    pub name: String,
    pub spec: Value,
    /// The data of the credentials Secret. Never log these.
    pub credentials: BTreeMap<String, Vec<u8>>,
}

impl ProviderConfig {
    /// A credential as text, if present and UTF-8.
    pub fn credential(&self, key: &str) -> Option<&str> {
        self.credentials
            .get(key)
            .and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// One call's view of a managed resource.
#[derive(Debug, Clone)]
pub struct Request {
    pub name: String,
    pub uid: String,
    /// Empty until the resource has been created.
    pub external_name: String,
    pub for_provider: Value,
    /// The values behind forProvider's `...SecretRef` fields, by field name,
    /// resolved by the control plane. Never log these.
    pub secrets: BTreeMap<String, Vec<u8>>,
    /// Secret bytes stable for the resource's life; see [`Request::derived_secret`].
    pub secret_seed: Vec<u8>,
    pub config: Arc<ProviderConfig>,
}

impl Request {
    /// The external name, or the object's name before one is known: the
    /// name a deterministic kind creates under.
    pub fn external_name_or_name(&self) -> &str {
        if self.external_name.is_empty() {
            &self.name
        } else {
            &self.external_name
        }
    }

    /// A forProvider field, if set.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.for_provider.get(name).filter(|v| !v.is_null())
    }

    /// A secret for `purpose` (say "master password") that is the same on
    /// every call about this resource and unknown outside the control
    /// plane: 32 hex digits. `None` when the control plane sent no seed.
    pub fn derived_secret(&self, purpose: &str) -> Option<String> {
        use hmac::{KeyInit, Mac};
        if self.secret_seed.is_empty() {
            return None;
        }
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.secret_seed).ok()?;
        mac.update(purpose.as_bytes());
        let digest = mac.finalize().into_bytes();
        Some(digest[..16].iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The value behind a forProvider Secret reference such as
    /// `masterPasswordSecretRef`, as text.
    pub fn secret(&self, field: &str) -> Option<&str> {
        self.secrets
            .get(field)
            .and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// Whether the external resource can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Available,
    Creating,
    Deleting,
    Unavailable,
}

impl From<Readiness> for pb::Readiness {
    fn from(r: Readiness) -> pb::Readiness {
        match r {
            Readiness::Available => pb::Readiness::Available,
            Readiness::Creating => pb::Readiness::Creating,
            Readiness::Deleting => pb::Readiness::Deleting,
            Readiness::Unavailable => pb::Readiness::Unavailable,
        }
    }
}

/// What Observe found.
#[derive(Debug, Clone)]
pub struct Observation {
    pub exists: bool,
    pub up_to_date: bool,
    /// What differs, for humans, when not up to date.
    pub diff: String,
    /// forProvider fields the external system chose, to fill in where unset.
    pub late_init: Option<Value>,
    pub at_provider: Value,
    pub connection: ConnectionDetails,
    pub readiness: Readiness,
    pub message: String,
    /// The external name the resource was found under, when the request had
    /// none (a Create whose result was lost, found by an idempotency tag).
    pub external_name: Option<String>,
}

impl Observation {
    /// The resource does not exist.
    pub fn absent() -> Observation {
        Observation {
            exists: false,
            up_to_date: false,
            diff: String::new(),
            late_init: None,
            at_provider: Value::Null,
            connection: ConnectionDetails::new(),
            readiness: Readiness::Unavailable,
            message: String::new(),
            external_name: None,
        }
    }

    /// The resource exists and is usable and up to date.
    pub fn available(at_provider: Value) -> Observation {
        Observation {
            exists: true,
            up_to_date: true,
            readiness: Readiness::Available,
            at_provider,
            ..Observation::absent()
        }
    }

    pub fn with_diff(mut self, diff: impl Into<String>) -> Observation {
        let diff = diff.into();
        self.up_to_date = diff.is_empty();
        self.diff = diff;
        self
    }

    pub fn with_connection(mut self, connection: ConnectionDetails) -> Observation {
        self.connection = connection;
        self
    }

    pub fn with_readiness(
        mut self,
        readiness: Readiness,
        message: impl Into<String>,
    ) -> Observation {
        self.readiness = readiness;
        self.message = message.into();
        self
    }

    pub fn with_late_init(mut self, fields: Value) -> Observation {
        self.late_init = Some(fields);
        self
    }

    /// Reports the external name the resource was found under.
    pub fn found_as(mut self, external_name: impl Into<String>) -> Observation {
        self.external_name = Some(external_name.into());
        self
    }
}

/// What Create made.
#[derive(Debug, Clone, Default)]
pub struct Created {
    pub external_name: String,
    pub connection: ConnectionDetails,
}

/// The static description of a kind.
#[derive(Debug, Clone)]
pub struct KindSchema {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub description: String,
    pub for_provider: Value,
    pub at_provider: Value,
    pub connection_secret_keys: Vec<String>,
    pub deterministic_external_name: bool,
}

impl KindSchema {
    pub(crate) fn to_pb(&self) -> pb::KindSchema {
        pb::KindSchema {
            group: self.group.clone(),
            version: self.version.clone(),
            kind: self.kind.clone(),
            plural: self.plural.clone(),
            for_provider_schema_json: self.for_provider.to_string().into_bytes(),
            at_provider_schema_json: self.at_provider.to_string().into_bytes(),
            connection_secret_keys: self.connection_secret_keys.clone(),
            deterministic_external_name: self.deterministic_external_name,
            description: self.description.clone(),
        }
    }
}

/// One kind of external resource. Every method must be idempotent: `create`
/// of something that exists succeeds, `delete` of something gone succeeds.
#[tonic::async_trait]
pub trait ExternalResource: Send + Sync + 'static {
    fn schema(&self) -> KindSchema;

    /// Checks forProvider without touching the external system; returns
    /// `(field, message)` pairs.
    async fn validate(&self, _req: &Request) -> Vec<(String, String)> {
        Vec::new()
    }

    async fn observe(&self, req: &Request) -> Result<Observation, ProviderError>;
    async fn create(&self, req: &Request) -> Result<Created, ProviderError>;
    async fn update(&self, req: &Request) -> Result<ConnectionDetails, ProviderError>;
    async fn delete(&self, req: &Request) -> Result<(), ProviderError>;
}

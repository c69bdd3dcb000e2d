//! One managed-resource life cycle for every ARM kind. ARM resources are
//! alike: a URL, an api-version, a JSON body PUT to create or change them,
//! a `provisioningState`, a DELETE. Each kind says only what differs
//! (`ArmKind`): its id, its body, its readiness and connection details;
//! `Managed` runs Observe, Create, Update and Delete for all of them, with
//! long-running operations followed across reconciles.

use std::sync::Arc;

use provider_sdk::{
    async_trait, ConnectionDetails, Created, ExternalResource, KindSchema, Observation,
    ProviderError, Readiness, Request,
};
use serde_json::{json, Map, Value};

use crate::config::{Clients, Pool};
use crate::operations::{Operations, Progress};

/// The tag that records which resource made an ARM resource.
pub const UID_TAG: &str = "plinth-uid";

/// Fields whose whole value is managed: a tag the spec dropped is drift.
const WHOLE: &[&str] = &["tags"];

/// Where a resource lives: the ProviderConfig's defaults with the spec's
/// choices over them.
pub struct Place<'a> {
    pub clients: &'a Clients,
    pub resource_group: String,
    pub location: String,
}

impl<'a> Place<'a> {
    pub fn of(req: &Request, clients: &'a Clients) -> Result<Place<'a>, ProviderError> {
        let text = |field: &str| {
            req.field(field)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let resource_group = text("resourceGroupName")
            .map(str::to_string)
            .or_else(|| clients.resource_group.clone())
            .ok_or_else(|| {
                ProviderError::terminal(
                    "spec.forProvider.resourceGroupName is required (or set spec.resourceGroupName on the ProviderConfig): the resource group the resource goes in",
                )
            })?;
        let location = text("location").map_or_else(|| clients.location.clone(), str::to_string);
        Ok(Place {
            clients,
            resource_group,
            location,
        })
    }

    /// `/subscriptions/<s>/resourceGroups/<rg>/providers/<rest>`.
    pub fn id(&self, rest: &str) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/{rest}",
            self.clients.subscription, self.resource_group
        )
    }
}

/// What one ARM kind is.
#[async_trait]
pub trait ArmKind: Send + Sync + 'static {
    fn schema(&self) -> KindSchema;
    fn api_version(&self) -> &'static str;
    /// The resource's ARM id.
    fn id(&self, req: &Request, place: &Place) -> Result<String, ProviderError>;
    /// The body a PUT sends for the spec.
    fn body(&self, req: &Request, place: &Place) -> Result<Value, ProviderError>;
    /// The part of the body ARM shows back, compared with the observed
    /// resource: passwords are never shown.
    fn compared(&self, mut body: Value) -> Value {
        if let Some(properties) = body.get_mut("properties").and_then(Value::as_object_mut) {
            properties.retain(|k, _| !k.to_ascii_lowercase().contains("password"));
        }
        body
    }
    /// Whether the kind carries tags, and so Plinth's UID tag.
    fn tagged(&self) -> bool {
        true
    }
    fn validate(&self, _req: &Request) -> Vec<(String, String)> {
        Vec::new()
    }
    fn readiness(&self, observed: &Value) -> (Readiness, String) {
        provisioning_readiness(observed)
    }
    fn at_provider(&self, observed: &Value) -> Value;
    fn connection(
        &self,
        _req: &Request,
        _observed: Option<&Value>,
    ) -> Result<ConnectionDetails, ProviderError> {
        Ok(ConnectionDetails::new())
    }
    /// What the spec asks that ARM cannot do to an existing resource.
    fn immutable(&self, _want: &Value, _have: &Value) -> Vec<String> {
        Vec::new()
    }
    /// Work before the resource's own PUT (the network interface a virtual
    /// machine needs): Ok(Some(message)) while it is not done yet.
    async fn prepare(
        &self,
        _req: &Request,
        _place: &Place<'_>,
        _operations: &Operations,
    ) -> Result<Option<String>, ProviderError> {
        Ok(None)
    }
    /// What else the observed resource needs read (a virtual machine's
    /// address lives on its network interface), merged into it.
    async fn enrich(
        &self,
        _req: &Request,
        _place: &Place<'_>,
        observed: Value,
    ) -> Result<Value, ProviderError> {
        Ok(observed)
    }
}

/// ARM's `provisioningState` as readiness.
pub fn provisioning_readiness(observed: &Value) -> (Readiness, String) {
    let state = observed
        .pointer("/properties/provisioningState")
        .and_then(Value::as_str)
        .unwrap_or("Succeeded");
    state_readiness(state)
}

pub fn state_readiness(state: &str) -> (Readiness, String) {
    match state {
        "Succeeded" | "Ready" | "Online" => (Readiness::Available, String::new()),
        "Creating" | "Accepted" | "Provisioning" | "Updating" | "Running" | "InProgress"
        | "Starting" => (
            Readiness::Creating,
            format!("Azure reports the resource as {state}"),
        ),
        "Deleting" | "Dropping" => (
            Readiness::Deleting,
            format!("Azure reports the resource as {state}"),
        ),
        other => (
            Readiness::Unavailable,
            format!("Azure reports the resource as {other}"),
        ),
    }
}

/// A password for a generated field: the Secret's that `<field>SecretRef`
/// names, else one derived from the resource's secret seed, made to meet
/// Azure's complexity rule (three of upper case, lower case, digits and
/// symbols): the seed's 32 hex characters give lower case and digits.
pub fn password(req: &Request, secret_ref: &str, purpose: &str) -> Result<String, ProviderError> {
    if req.field(secret_ref).is_some() {
        return req.secret(secret_ref).map(str::to_string).ok_or_else(|| {
            ProviderError::retryable(format!(
                "the Secret key {secret_ref} names has no value yet"
            ))
        });
    }
    req.derived_secret(purpose)
        .map(|hex| format!("Pl{hex}-9"))
        .ok_or_else(|| {
            ProviderError::terminal(
                "cannot derive a password: the control plane sent no secret seed",
            )
        })
}

/// The login of a database server's administrator: the spec's
/// `administratorLogin`, else `plinthadmin`.
pub fn admin_login(req: &Request) -> &str {
    req.field("administratorLogin")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("plinthadmin")
}

/// The connection details of a database server's administrator, whose
/// password is the `administratorLoginPasswordSecretRef` Secret's or a
/// generated one, at the server's `fullyQualifiedDomainName` once Azure has
/// given it one.
pub fn admin_connection(
    req: &Request,
    observed: Option<&Value>,
    scheme: &str,
    port: u16,
    database: &str,
    sslmode: Option<&str>,
) -> Result<ConnectionDetails, ProviderError> {
    let password = password(
        req,
        "administratorLoginPasswordSecretRef",
        "administrator-password",
    )?;
    let host = observed
        .and_then(|o| o.pointer("/properties/fullyQualifiedDomainName"))
        .and_then(Value::as_str);
    Ok(provider_sdk::connection::database_details(
        &provider_sdk::connection::Endpoint {
            scheme,
            host,
            port,
            username: admin_login(req),
            password: Some(&password),
            database,
            sslmode,
        },
    ))
}

/// The tags a tagged resource should carry: the spec's and Plinth's own.
pub fn tags(req: &Request) -> Value {
    let mut tags = match req.field("tags") {
        Some(Value::Object(t)) => t.clone(),
        _ => Map::new(),
    };
    tags.insert(UID_TAG.into(), json!(req.uid));
    Value::Object(tags)
}

/// A kind with the provider's clients and operations: an ExternalResource.
pub struct Managed<K> {
    kind: K,
    clients: Arc<Pool>,
    operations: Arc<Operations>,
}

impl<K: ArmKind> Managed<K> {
    pub fn new(kind: K, clients: Arc<Pool>, operations: Arc<Operations>) -> Managed<K> {
        Managed {
            kind,
            clients,
            operations,
        }
    }
}

fn taken(id: &str) -> ProviderError {
    ProviderError::terminal(format!(
        "{} already exists and was not made by this resource: give the resource another name, or set its crossplane.io/external-name annotation to manage that one",
        crate::arm::describe(id)
    ))
}

/// Names the spec leaves to the ProviderConfig, written back so a changed
/// ProviderConfig does not move the resource.
fn late_init(req: &Request, place: &Place) -> Option<Value> {
    let mut fields = Map::new();
    if req.field("resourceGroupName").is_none() {
        fields.insert("resourceGroupName".into(), json!(place.resource_group));
    }
    if req.field("location").is_none() {
        fields.insert("location".into(), json!(place.location));
    }
    (!fields.is_empty()).then_some(Value::Object(fields))
}

#[async_trait]
impl<K: ArmKind> ExternalResource for Managed<K> {
    fn schema(&self) -> KindSchema {
        self.kind.schema()
    }

    async fn validate(&self, req: &Request) -> Vec<(String, String)> {
        self.kind.validate(req)
    }

    async fn observe(&self, req: &Request) -> Result<Observation, ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let place = Place::of(req, &clients)?;
        let id = self.kind.id(req, &place)?;
        let progress = self.operations.progress(&clients.arm, &req.uid).await?;
        let Some(observed) = clients.arm.get(&id, self.kind.api_version()).await? else {
            return Ok(match progress {
                Progress::Running(message) => {
                    Observation::available(json!({})).with_readiness(Readiness::Creating, message)
                }
                Progress::Idle => Observation::absent(),
            });
        };
        let ours = observed
            .pointer(&format!("/tags/{UID_TAG}"))
            .and_then(Value::as_str)
            == Some(req.uid.as_str());
        if self.kind.tagged() && req.external_name.is_empty() && !ours {
            return Err(taken(&id));
        }
        let observed = self.kind.enrich(req, &place, observed).await?;
        let (readiness, mut message) = self.kind.readiness(&observed);
        let mut diff = Vec::new();
        match progress {
            Progress::Running(running) => {
                message = if message.is_empty() {
                    running
                } else {
                    format!("{message}; {running}")
                };
            }
            Progress::Idle if readiness != Readiness::Deleting => {
                let want = self.kind.compared(self.kind.body(req, &place)?);
                provider_sdk::diff::differences("", &want, &observed, WHOLE, &mut diff);
            }
            Progress::Idle => {}
        }
        let mut observation = Observation::available(self.kind.at_provider(&observed))
            .with_diff(diff.join("; "))
            .with_connection(self.kind.connection(req, Some(&observed))?)
            .with_readiness(readiness, message);
        if let Some(fields) = late_init(req, &place) {
            observation = observation.with_late_init(fields);
        }
        Ok(observation)
    }

    async fn create(&self, req: &Request) -> Result<Created, ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let place = Place::of(req, &clients)?;
        let id = self.kind.id(req, &place)?;
        let external_name = req.external_name_or_name().to_string();
        let connection = self.kind.connection(req, None)?;
        if let Progress::Running(_) = self.operations.progress(&clients.arm, &req.uid).await? {
            // A retried Create while the first one runs: ARM would refuse a
            // second PUT as a conflict, and the first one is ours.
            return Ok(Created {
                external_name,
                connection,
            });
        }
        if self
            .kind
            .prepare(req, &place, &self.operations)
            .await?
            .is_some()
        {
            return Ok(Created {
                external_name,
                connection,
            });
        }
        if self.kind.tagged() && req.external_name.is_empty() {
            if let Some(existing) = clients.arm.get(&id, self.kind.api_version()).await? {
                if existing
                    .pointer(&format!("/tags/{UID_TAG}"))
                    .and_then(Value::as_str)
                    != Some(req.uid.as_str())
                {
                    return Err(taken(&id));
                }
            }
        }
        let written = clients
            .arm
            .put(&id, self.kind.api_version(), &self.kind.body(req, &place)?)
            .await?;
        self.operations.track(
            &req.uid,
            &format!("create {}", crate::arm::describe(&id)),
            written.poll,
        );
        Ok(Created {
            external_name,
            connection,
        })
    }

    async fn update(&self, req: &Request) -> Result<ConnectionDetails, ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let place = Place::of(req, &clients)?;
        let id = self.kind.id(req, &place)?;
        let api = self.kind.api_version();
        let Some(observed) = clients.arm.get(&id, api).await? else {
            return Err(ProviderError::retryable(format!(
                "{} vanished before the update",
                crate::arm::describe(&id)
            )));
        };
        let body = self.kind.body(req, &place)?;
        let fixed = self.kind.immutable(&body, &observed);
        if !fixed.is_empty() {
            return Err(ProviderError::terminal(format!(
                "{}: delete and re-create the resource for that, or put the spec back",
                fixed.join("; ")
            )));
        }
        let written = clients.arm.put(&id, api, &body).await?;
        self.operations.track(
            &req.uid,
            &format!("update {}", crate::arm::describe(&id)),
            written.poll,
        );
        self.kind.connection(req, Some(&observed))
    }

    async fn delete(&self, req: &Request) -> Result<(), ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let place = Place::of(req, &clients)?;
        let id = self.kind.id(req, &place)?;
        if self
            .operations
            .what(&req.uid)
            .is_some_and(|what| what.starts_with("delete"))
        {
            // Already deleting; observed again later.
            return Ok(());
        }
        let Some(observed) = clients.arm.get(&id, self.kind.api_version()).await? else {
            return Ok(());
        };
        if self.kind.readiness(&observed).0 == Readiness::Deleting {
            return Ok(());
        }
        let poll = clients.arm.delete(&id, self.kind.api_version()).await?;
        self.operations.track(
            &req.uid,
            &format!("delete {}", crate::arm::describe(&id)),
            poll,
        );
        Ok(())
    }
}

//! The managed-resource reconciler: one engine for every kind any provider
//! serves. Each cycle observes the external resource through the provider,
//! then creates, updates or deletes it as the object and its policies say,
//! and reports what it found in the object's status, its connection Secret
//! and Events.
//!
//! Layout:
//! - `plan`: the decisions, with no I/O, step by step.
//! - this module: the executor, which takes each step against the API
//!   (reading through the shared caches) and the provider.

pub mod plan;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use runtime::conditions::{self, Condition};
use runtime::events::{EventType, Recorder, Regarding};
use runtime::names::{self, annotation, condition, finalizer, reason};
use runtime::provider::{
    ConnectionDetails, ExternalClient, ExternalError, ExternalResource, Observation,
    ProviderConfig, Violation,
};
use runtime::ratelimit::{Backoff, RateLimiter};
use runtime::{Action, Cache, Caches, Controller, Key, Reason, Writes};
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use plan::{Cycle, Edit, Finish, Managed, Requeue, Status, Step};

/// How soon a cycle whose write met a newer version of the object runs again.
const CONFLICT_RETRY: Duration = Duration::from_millis(200);

/// Reconciles of one kind at once.
const CONCURRENCY: usize = 16;

/// forProvider fields with this suffix are Secret references the control
/// plane resolves for the provider.
const SECRET_REF_SUFFIX: &str = "SecretRef";

/// Why a cycle failed. The message ends up in the Synced condition.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Provider(#[from] ExternalError),
    #[error("{}", error_message(.0))]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Config(String),
    /// The provider's Validate refused forProvider; nothing changes until
    /// the spec does.
    #[error("invalid spec: {0}")]
    Invalid(String),
    /// A write met a newer version of the object: nothing failed, and the
    /// next cycle starts from the newer object.
    #[error("the object changed meanwhile")]
    Conflict,
    #[error("cannot read the cached object: {0}")]
    Cache(#[from] runtime::Error),
}

fn error_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => other.to_string(),
    }
}

impl Error {
    /// When to try again after `failures` failures in a row.
    fn retry_delay(&self, failures: u32, settings: &Settings) -> Duration {
        match self {
            // Only a spec change can help, and a spec change starts a cycle
            // of its own, so the poll interval is merely a safety net.
            Error::Invalid(_) | Error::Provider(ExternalError::Terminal(_)) => {
                settings.poll_interval
            }
            // Refused credentials are not retried hot (the external system
            // may lock the account): they start at 4 s, not 1 s, and double
            // to the cap, so a fixed Secret is still picked up soon.
            Error::Provider(ExternalError::Unauthorized(_)) => {
                settings.backoff.delay(failures.saturating_add(2))
            }
            Error::Conflict => CONFLICT_RETRY,
            _ => settings.backoff.delay(failures),
        }
    }

    /// Whether the control plane's own part failed (a provider's failures
    /// are recorded as Events where they happen).
    fn is_control_plane(&self) -> bool {
        matches!(
            self,
            Error::Kube(_) | Error::Config(_) | Error::Invalid(_) | Error::Cache(_)
        )
    }
}

/// Settings shared by every managed kind.
#[derive(Clone)]
pub struct Settings {
    pub poll_interval: Duration,
    pub limiter: Arc<RateLimiter>,
    pub backoff: Backoff,
    /// For fault-injection tests: exit right after Create returns, before
    /// its outcome is recorded.
    pub crash_after_create: bool,
    /// What each resource's secret seed is derived from (with its UID).
    pub seed_key: Arc<Vec<u8>>,
}

/// A Secret as the reconciler reads it: its resourceVersion and its data.
type SecretData = (String, BTreeMap<String, Vec<u8>>);

/// One running provider process, as the reconciler talks to it. What it
/// was configured with is per process: a restarted provider knows nothing.
pub struct Connection {
    pub client: Arc<dyn ExternalClient>,
    /// ProviderConfig name → the version of it (and of its Secret) last sent.
    pub configured: tokio::sync::Mutex<HashMap<String, String>>,
}

impl Connection {
    pub fn new(client: Arc<dyn ExternalClient>) -> Connection {
        Connection {
            client,
            configured: Default::default(),
        }
    }
}

/// Where the reconciler finds the provider of its kind.
pub trait Providers: Send + Sync {
    /// The running provider serving `group`/`kind`, if one is.
    fn connection(&self, group: &str, kind: &str) -> Option<Arc<Connection>>;
}

/// The kind one reconciler serves.
#[derive(Debug, Clone)]
pub struct Kind {
    pub resource: ApiResource,
    pub provider: String,
    pub config: ApiResource,
    pub deterministic: bool,
}

/// What the reconciler remembers of one object between cycles.
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    failures: u32,
    /// A failed object is retried no sooner than this, unless its spec
    /// changed or its deletion began since: our own writes after a failure
    /// must not bypass the backoff, and neither must unrelated ones.
    retry_at: Option<Instant>,
    generation: Option<i64>,
    deleting: bool,
    /// Cycles in a row that called Update.
    updates_in_a_row: u32,
}

struct Ctx {
    client: Client,
    kind: Kind,
    providers: Arc<dyn Providers>,
    objects: Arc<Cache>,
    configs: Arc<Cache>,
    secrets: Arc<Cache>,
    writes: Arc<Writes>,
    settings: Settings,
    recorder: Arc<Recorder>,
    memory: Mutex<HashMap<Key, Memory>>,
}

/// Runs the reconciler for one kind until the task is aborted.
/// `restarts` yields each time the kind's provider (re)starts: what it held
/// in memory is gone, so every object is looked at again.
pub async fn run(
    client: Client,
    caches: Arc<Caches>,
    kind: Kind,
    providers: Arc<dyn Providers>,
    settings: Settings,
    restarts: impl Stream<Item = ()> + Send + 'static,
) {
    let objects = caches.of(&kind.resource);
    let ctx = Arc::new(Ctx {
        recorder: Recorder::new(client.clone(), "plinth/managed"),
        client,
        configs: caches.of(&kind.config),
        secrets: caches.of(&ApiResource::erase::<Secret>(&())),
        objects: objects.clone(),
        writes: Arc::default(),
        providers,
        settings,
        kind,
        memory: Mutex::default(),
    });
    tracing::info!(kind = %ctx.kind.resource.kind, group = %ctx.kind.resource.group, "managing");
    let controller = Controller::new(
        format!("managed/{}", ctx.kind.resource.kind),
        objects.clone(),
        ctx.writes.clone(),
        Duration::ZERO,
        Some(ctx.settings.limiter.clone()),
    )
    .concurrency(CONCURRENCY);
    let queue = controller.queue();
    let restarted = tokio::spawn(async move {
        futures::pin_mut!(restarts);
        while restarts.next().await.is_some() {
            for cached in objects.list() {
                queue.changed(cached.key.clone(), None);
            }
        }
    });
    let reconciling = ctx.clone();
    controller
        .run(
            move |key, reason| reconcile(reconciling.clone(), key, reason),
            |never: &std::convert::Infallible, _| match *never {},
        )
        .await;
    restarted.abort();
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

async fn reconcile(
    ctx: Arc<Ctx>,
    key: Key,
    reason: Reason,
) -> Result<Action, std::convert::Infallible> {
    let Some(cached) = ctx.objects.get(&key) else {
        return Ok(Action::AwaitChange);
    };
    let object = match cached.object() {
        Ok(object) => object,
        Err(e) => {
            tracing::error!(kind = %ctx.kind.resource.kind, %key, error = %e, "cannot read a cached managed resource");
            return Ok(Action::AwaitChange);
        }
    };
    if let Some(wait) = ctx.backing_off(&key, &object) {
        return Ok(Action::Requeue(wait));
    }
    let memory = lock(&ctx.memory).get(&key).copied().unwrap_or_default();
    let mut cycle = Cycle::new(Managed::new(object), ctx.kind.deterministic, now());
    cycle.updates_in_a_row = memory.updates_in_a_row;
    cycle.backoff = ctx.settings.backoff;
    tracing::trace!(kind = %ctx.kind.resource.kind, %key, ?reason, "reconciling");
    let result = ctx.execute(&mut cycle).await;
    match result {
        Ok(requeue) => {
            let updates = if cycle.updating() {
                memory.updates_in_a_row + 1
            } else {
                0
            };
            {
                let mut memories = lock(&ctx.memory);
                if updates == 0 && cycle.object.deleting() && requeue == Requeue::Never {
                    memories.remove(&key);
                } else {
                    memories.insert(
                        key.clone(),
                        Memory {
                            updates_in_a_row: updates,
                            ..Memory::default()
                        },
                    );
                }
            }
            Ok(match requeue {
                Requeue::Poll => Action::Requeue(ctx.poll_interval(&cycle.object)),
                Requeue::After(after) => Action::Requeue(after),
                Requeue::Never => Action::AwaitChange,
            })
        }
        Err(Error::Conflict) => Ok(Action::Requeue(CONFLICT_RETRY)),
        Err(e) => {
            let failures = memory.failures + 1;
            let delay = e.retry_delay(failures, &ctx.settings);
            lock(&ctx.memory).insert(
                key.clone(),
                Memory {
                    failures,
                    retry_at: Some(Instant::now() + delay),
                    generation: cycle.object.object.metadata.generation,
                    deleting: cycle.object.deleting(),
                    updates_in_a_row: memory.updates_in_a_row,
                },
            );
            let message = e.to_string();
            tracing::info!(kind = %ctx.kind.resource.kind, %key, error = %message, ?delay, "reconcile failed");
            let synced = Condition::new(
                condition::SYNCED,
                false,
                reason::RECONCILE_ERROR,
                message.clone(),
            );
            if let Err(e) = ctx.write_status(&cycle.object, &[synced], None).await {
                tracing::debug!(%key, error = %e, "status not written");
            }
            if e.is_control_plane() {
                ctx.event(
                    &cycle.object,
                    EventType::Warning,
                    names::event::RECONCILE_ERROR,
                    message,
                );
            }
            Ok(Action::Requeue(delay))
        }
    }
}

impl Ctx {
    /// How long a failed object must still wait, unless its spec changed or
    /// its deletion began since it failed.
    fn backing_off(&self, key: &Key, object: &DynamicObject) -> Option<Duration> {
        let memory = lock(&self.memory).get(key).copied()?;
        let retry_at = memory.retry_at?;
        let same_state = memory.generation == object.metadata.generation
            && memory.deleting == object.metadata.deletion_timestamp.is_some();
        let now = Instant::now();
        (same_state && retry_at > now).then(|| retry_at - now)
    }

    fn poll_interval(&self, object: &Managed) -> Duration {
        let base = match object.annotation(annotation::POLL_INTERVAL) {
            None => self.settings.poll_interval,
            Some(text) => runtime::duration::parse(text).unwrap_or_else(|e| {
                tracing::warn!(name = %object.name(), "{}: {e}; polling at the default interval", annotation::POLL_INTERVAL);
                self.settings.poll_interval
            }),
        };
        // ±10 % so resources created together do not poll together forever.
        let jitter = 0.9 + rand::random::<f64>() * 0.2;
        base.mul_f64(jitter)
    }

    /// Takes the cycle's steps until it finishes.
    async fn execute(&self, cycle: &mut Cycle) -> Result<Requeue, Error> {
        let resource = &self.kind.resource;
        let Some(connection) = self.providers.connection(&resource.group, &resource.kind) else {
            return Err(Error::Provider(ExternalError::Retryable(format!(
                "provider {} is not running; see `kubectl get providers`",
                self.kind.provider
            ))));
        };
        loop {
            let step = plan::next(cycle);
            tracing::trace!(name = %cycle.object.name(), ?step, "step");
            match step {
                Step::Observe => {
                    let after_create = cycle.created.is_some();
                    match self.call(&connection, &cycle.object, verb::observe).await {
                        Ok(o) if after_create => cycle.observed_after_create = Some(o),
                        Ok(o) => cycle.observed = Some(o),
                        // Create succeeded; the look after it is only a shortcut.
                        Err(_) if after_create => {
                            cycle.observed_after_create = Some(Observation::absent())
                        }
                        Err(e) => {
                            self.event(
                                &cycle.object,
                                EventType::Warning,
                                names::event::CANNOT_OBSERVE,
                                e.to_string(),
                            );
                            return Err(e);
                        }
                    }
                }
                Step::Validate => {
                    let violations = self
                        .call(&connection, &cycle.object, verb::validate)
                        .await?;
                    if !violations.is_empty() {
                        return Err(Error::Invalid(describe(&violations)));
                    }
                    cycle.validated = true;
                }
                Step::Create => {
                    let created = self.call(&connection, &cycle.object, verb::create).await;
                    if self.settings.crash_after_create {
                        tracing::error!(
                            "fault injection: exiting between Create and recording its outcome"
                        );
                        std::process::exit(86);
                    }
                    match created {
                        Ok(created) => {
                            let external = if created.external_name.is_empty() {
                                cycle.object.name().to_string()
                            } else {
                                created.external_name.clone()
                            };
                            self.event(
                                &cycle.object,
                                EventType::Normal,
                                names::event::CREATED,
                                format!("created the external resource {external}"),
                            );
                            cycle.created = Some(created);
                        }
                        Err(e) => {
                            if !cycle.deterministic {
                                let failed = Edit {
                                    annotations: [(
                                        annotation::EXTERNAL_CREATE_FAILED.to_string(),
                                        now(),
                                    )]
                                    .into(),
                                    ..Default::default()
                                };
                                if let Err(e) = self.write(cycle, failed).await {
                                    tracing::debug!(name = %cycle.object.name(), error = %e, "create-failed not recorded");
                                }
                            }
                            self.event(
                                &cycle.object,
                                EventType::Warning,
                                names::event::CANNOT_CREATE,
                                e.to_string(),
                            );
                            return Err(e);
                        }
                    }
                }
                Step::Update => match self.call(&connection, &cycle.object, verb::update).await {
                    Ok(details) => {
                        let diff = cycle
                            .observed
                            .as_ref()
                            .map(|o| o.diff.clone())
                            .unwrap_or_default();
                        self.event(
                            &cycle.object,
                            EventType::Normal,
                            names::event::UPDATED,
                            if diff.is_empty() {
                                "updated the external resource".into()
                            } else {
                                format!("updated: {diff}")
                            },
                        );
                        cycle.updated = Some(details);
                    }
                    Err(e) => {
                        self.event(
                            &cycle.object,
                            EventType::Warning,
                            names::event::CANNOT_UPDATE,
                            e.to_string(),
                        );
                        return Err(e);
                    }
                },
                Step::Delete => {
                    if let Err(e) = self.call(&connection, &cycle.object, verb::delete).await {
                        self.event(
                            &cycle.object,
                            EventType::Warning,
                            names::event::CANNOT_DELETE,
                            e.to_string(),
                        );
                        return Err(e);
                    }
                    cycle.deleted = true;
                }
                Step::Write(edit) => {
                    let event = edit.event.clone();
                    match self.write(cycle, edit).await {
                        Ok(()) => {}
                        // Released, and the object went with its last finalizer.
                        Err(Error::Kube(kube::Error::Api(e)))
                            if e.code == 404 && cycle.object.deleting() =>
                        {
                            return Ok(Requeue::Never)
                        }
                        Err(e) => return Err(e),
                    }
                    cycle.written = true;
                    if let Some(event) = event {
                        self.event(&cycle.object, event.type_, event.reason, event.message);
                    }
                }
                Step::Report(status) => {
                    self.report(&cycle.object, &status).await?;
                    cycle.reported = true;
                }
                Step::Finish(Finish {
                    status,
                    connection,
                    requeue,
                }) => {
                    if let Some(details) = connection {
                        self.write_connection(&cycle.object, &details).await?;
                    }
                    if let Some(status) = status {
                        self.report(&cycle.object, &status).await?;
                    }
                    return Ok(requeue);
                }
            }
        }
    }

    /// Writes the object itself, with its resourceVersion as a
    /// precondition so two writers never both think they won.
    async fn write(&self, cycle: &mut Cycle, edit: Edit) -> Result<(), Error> {
        let mut next = cycle.object.object.clone();
        edit.apply_to(&mut next);
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &self.kind.resource);
        let written = match api
            .replace(cycle.object.name(), &PostParams::default(), &next)
            .await
        {
            Ok(written) => written,
            Err(kube::Error::Api(e)) if e.code == 409 => return Err(Error::Conflict),
            Err(e) => return Err(e.into()),
        };
        self.writes.record(&self.kind.resource, &written);
        cycle.object = Managed::new(written);
        Ok(())
    }

    async fn report(&self, object: &Managed, status: &Status) -> Result<(), Error> {
        let mut updates = vec![status.ready.clone()];
        updates.extend(status.synced.clone());
        self.write_status(object, &updates, status.at_provider.clone())
            .await
    }

    /// Merges conditions (and atProvider) into the status, unless the object
    /// already says exactly that: most cycles (every drift poll of a healthy
    /// resource) report what it already says, and those send nothing.
    async fn write_status(
        &self,
        object: &Managed,
        updates: &[Condition<'_>],
        at_provider: Option<Value>,
    ) -> Result<(), Error> {
        let generation = object.object.metadata.generation;
        let merged = conditions::merged(object.conditions(), updates, generation);
        let at_provider = at_provider.filter(|v| !v.is_null());
        let at_provider_unchanged = at_provider
            .as_ref()
            .is_none_or(|at| object.object.data.pointer("/status/atProvider") == Some(at));
        if at_provider_unchanged && object.conditions() == Some(&merged) {
            return Ok(());
        }
        let mut status = json!({"conditions": merged});
        if let Some(at) = at_provider {
            status["atProvider"] = at;
        }
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &self.kind.resource);
        let written = api
            .patch_status(
                object.name(),
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await?;
        self.writes.record(&self.kind.resource, &written);
        Ok(())
    }

    fn event(&self, object: &Managed, type_: EventType, reason: &str, message: String) {
        let meta = &object.object.metadata;
        self.recorder.publish(
            Regarding {
                api_version: self.kind.resource.api_version.clone(),
                kind: self.kind.resource.kind.clone(),
                namespace: None,
                name: object.name().to_string(),
                uid: meta.uid.clone().unwrap_or_default(),
            },
            type_,
            reason,
            message,
        );
    }

    /// The resource as the provider sees it.
    fn external(&self, object: &Managed) -> ExternalResource {
        let meta = &object.object.metadata;
        ExternalResource {
            kind: self.kind.resource.kind.clone(),
            name: object.name().to_string(),
            uid: meta.uid.clone().unwrap_or_default(),
            external_name: object
                .annotation(annotation::EXTERNAL_NAME)
                .unwrap_or_default()
                .to_string(),
            for_provider: object.for_provider(),
            provider_config: object.provider_config(),
            // Resolved, when there are any, by `call`.
            secrets: Default::default(),
            secret_seed: self.secret_seed(object),
        }
    }

    /// HMAC of the resource's UID under the control plane's key: stable
    /// for the resource's life, different for every resource.
    fn secret_seed(&self, object: &Managed) -> Vec<u8> {
        use hmac::{KeyInit, Mac};
        let Some(uid) = object.object.metadata.uid.as_deref() else {
            return Vec::new();
        };
        match hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.settings.seed_key) {
            Ok(mut mac) => {
                mac.update(uid.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    }

    /// Calls the provider, configuring it first when it asks to be.
    async fn call<T>(
        &self,
        connection: &Connection,
        object: &Managed,
        verb: verb::Verb<T>,
    ) -> Result<T, Error> {
        let config = object.provider_config();
        self.configure(connection, &config, false).await?;
        let mut resource = self.external(object);
        resource.secrets = self.resolve_secret_refs(object)?;
        match verb(&*connection.client, &resource).await {
            Err(ExternalError::NotConfigured(_)) => {
                self.configure(connection, &config, true).await?;
                Ok(verb(&*connection.client, &resource).await?)
            }
            other => Ok(other?),
        }
    }

    /// Sends the ProviderConfig (and its credentials) to the provider unless
    /// it already has this version of them, and marks the config in use.
    async fn configure(
        &self,
        connection: &Connection,
        name: &str,
        force: bool,
    ) -> Result<(), Error> {
        self.configs.synced().await;
        let Some(cached) = self.configs.get(&Key::cluster(name)) else {
            return Err(Error::Config(format!(
                "ProviderConfig {name:?} ({}) does not exist: create it, or set spec.providerConfigRef.name",
                self.kind.config.group
            )));
        };
        let config = cached.object()?;
        // The config is held for this resource from its first use, before
        // its credentials are even read: a config whose Secret is missing is
        // still in use, and must not vanish under the resources naming it.
        // A config being deleted keeps serving the resources that still use
        // it (its finalizer holds it for them), but gains no new finalizer.
        let finalizers = config.metadata.finalizers.clone().unwrap_or_default();
        if config.metadata.deletion_timestamp.is_none()
            && !finalizers.iter().any(|f| f == finalizer::IN_USE)
        {
            let mut list = finalizers;
            list.push(finalizer::IN_USE.to_string());
            let configs: Api<DynamicObject> = Api::all_with(self.client.clone(), &self.kind.config);
            configs
                .patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"finalizers": list}})),
                )
                .await?;
        }
        let spec = config
            .data
            .get("spec")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let mut credentials = BTreeMap::new();
        let mut version = cached.resource_version.to_string();
        if let Some(secret_ref) = spec.pointer("/credentials/secretRef") {
            let namespace = secret_ref
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or(names::EVENT_NAMESPACE);
            let Some(secret_name) = secret_ref.get("name").and_then(Value::as_str) else {
                return Err(Error::Config(format!(
                    "ProviderConfig {name:?}: spec.credentials.secretRef.name is required"
                )));
            };
            let (secret_version, data) = self.secret(namespace, secret_name)?.ok_or_else(|| {
                Error::Config(format!(
                    "the credentials Secret {namespace}/{secret_name} of ProviderConfig {name:?} does not exist"
                ))
            })?;
            version.push('/');
            version.push_str(&secret_version);
            credentials = data;
        }
        let mut configured = connection.configured.lock().await;
        if !force && configured.get(name) == Some(&version) {
            return Ok(());
        }
        connection
            .client
            .configure(&ProviderConfig {
                name: name.to_string(),
                spec,
                credentials,
            })
            .await?;
        configured.insert(name.to_string(), version);
        Ok(())
    }

    /// A Secret's resourceVersion and data, from the cache.
    fn secret(&self, namespace: &str, name: &str) -> Result<Option<SecretData>, Error> {
        let Some(cached) = self.secrets.get(&Key::new(Some(namespace), name)) else {
            return Ok(None);
        };
        let secret: Secret = cached.parse()?;
        let data = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        Ok(Some((cached.resource_version.to_string(), data)))
    }

    /// Reads the Secrets that top-level `...SecretRef` fields of forProvider
    /// name, such as `masterPasswordSecretRef: {namespace, name, key}`: a
    /// provider cannot read the API, so their values travel with the call.
    fn resolve_secret_refs(&self, object: &Managed) -> Result<HashMap<String, Vec<u8>>, Error> {
        let mut resolved = HashMap::new();
        let for_provider = object.for_provider();
        let Some(fields) = for_provider.as_object() else {
            return Ok(resolved);
        };
        for (field, reference) in fields {
            if !field.ends_with(SECRET_REF_SUFFIX) || !reference.is_object() {
                continue;
            }
            let text = |key: &str| reference.get(key).and_then(Value::as_str);
            let (Some(name), Some(key)) = (text("name"), text("key")) else {
                return Err(Error::Invalid(format!(
                    "spec.forProvider.{field}: needs name and key (and namespace), the Secret and the key in it"
                )));
            };
            let namespace = text("namespace").unwrap_or(names::EVENT_NAMESPACE);
            let (_, mut data) = self.secret(namespace, name)?.ok_or_else(|| {
                Error::Config(format!(
                    "the Secret {namespace}/{name} named by spec.forProvider.{field} does not exist"
                ))
            })?;
            let value = data.remove(key).ok_or_else(|| {
                Error::Config(format!(
                    "the Secret {namespace}/{name} named by spec.forProvider.{field} has no key {key:?}"
                ))
            })?;
            resolved.insert(field.clone(), value);
        }
        Ok(resolved)
    }

    /// Merges connection details into the Secret the object names. With no
    /// details and no Secret yet, none is written.
    async fn write_connection(
        &self,
        object: &Managed,
        details: &ConnectionDetails,
    ) -> Result<(), Error> {
        let Some((namespace, name)) = object.connection_secret() else {
            return Ok(());
        };
        let existing = self.secret(&namespace, &name)?;
        let existed = existing.is_some();
        if !existed && details.is_empty() {
            return Ok(());
        }
        let mut data = existing.map(|(_, data)| data).unwrap_or_default();
        let before = data.clone();
        data.extend(details.iter().map(|(k, v)| (k.clone(), v.clone())));
        if existed && data == before {
            return Ok(());
        }
        let encoded: Map<String, Value> = data
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    json!(base64::engine::general_purpose::STANDARD.encode(v)),
                )
            })
            .collect();
        let labels: Map<String, Value> = [
            names::label::COMPOSITE,
            names::label::CLAIM_NAME,
            names::label::CLAIM_NAMESPACE,
        ]
        .into_iter()
        .filter_map(|key| {
            let value = object.object.metadata.labels.as_ref()?.get(key)?;
            Some((key.to_string(), json!(value)))
        })
        .collect();
        let secret = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": labels,
                "ownerReferences": [{
                    "apiVersion": self.kind.resource.api_version,
                    "kind": self.kind.resource.kind,
                    "name": object.name(),
                    "uid": object.object.metadata.uid.clone().unwrap_or_default(),
                    "controller": true,
                    "blockOwnerDeletion": true
                }]
            },
            "type": "connection.crossplane.io/v1alpha1",
            "data": encoded
        });
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
        secrets
            .patch(
                &name,
                &PatchParams::apply(names::FIELD_MANAGER).force(),
                &Patch::Apply(secret),
            )
            .await?;
        Ok(())
    }
}

/// The provider's verbs as plain functions, so one `call` serves them all.
mod verb {
    use futures::future::BoxFuture;
    use runtime::provider::{
        ConnectionDetails, Creation, ExternalClient, ExternalError, ExternalResource, Observation,
        Violation,
    };

    pub type Verb<T> = for<'a> fn(
        &'a dyn ExternalClient,
        &'a ExternalResource,
    ) -> BoxFuture<'a, Result<T, ExternalError>>;

    pub fn validate<'a>(
        c: &'a dyn ExternalClient,
        r: &'a ExternalResource,
    ) -> BoxFuture<'a, Result<Vec<Violation>, ExternalError>> {
        c.validate(r)
    }
    pub fn observe<'a>(
        c: &'a dyn ExternalClient,
        r: &'a ExternalResource,
    ) -> BoxFuture<'a, Result<Observation, ExternalError>> {
        c.observe(r)
    }
    pub fn create<'a>(
        c: &'a dyn ExternalClient,
        r: &'a ExternalResource,
    ) -> BoxFuture<'a, Result<Creation, ExternalError>> {
        c.create(r)
    }
    pub fn update<'a>(
        c: &'a dyn ExternalClient,
        r: &'a ExternalResource,
    ) -> BoxFuture<'a, Result<ConnectionDetails, ExternalError>> {
        c.update(r)
    }
    pub fn delete<'a>(
        c: &'a dyn ExternalClient,
        r: &'a ExternalResource,
    ) -> BoxFuture<'a, Result<(), ExternalError>> {
        c.delete(r)
    }
}

fn describe(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| {
            let path = if v.field.starts_with("metadata.") || v.field.starts_with("spec.") {
                v.field.clone()
            } else {
                format!("spec.forProvider.{}", v.field)
            };
            format!("{path}: {}", v.message)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests;

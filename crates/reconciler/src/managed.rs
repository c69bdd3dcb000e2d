//! The managed-resource reconciler: one engine for every kind any provider
//! serves. Each cycle observes the external resource through the provider,
//! then creates, updates or deletes it as the object and its policies say,
//! and reports what it found in the object's status, its connection Secret
//! and Events.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use provider_sdk::pb::{self, provider_client::ProviderClient};
use provider_sdk::ProviderError;
use serde_json::{json, Map, Value};
use tonic::transport::Channel;

use crate::conditions::{self, Condition};
use crate::events::{self, EventType};
use crate::host::{Host, KindEntry, Plugin};
use crate::names::{self, annotation, condition, finalizer, policy, reason};
use crate::ratelimit::{Backoff, RateLimiter};

/// How long a ProviderConfig that was read stays trusted before it is read
/// again; a changed config or Secret reaches the provider within this.
const CONFIG_RECHECK: Duration = Duration::from_secs(5);
/// How soon a cycle whose write met a newer version of the object runs again.
const CONFLICT_RETRY: Duration = Duration::from_millis(200);

/// forProvider fields with this suffix are Secret references the control
/// plane resolves for the provider.
const SECRET_REF_SUFFIX: &str = "SecretRef";

/// Why a cycle failed. The message ends up in the Synced condition.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Provider(#[from] ProviderError),
    #[error("{0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Config(String),
    /// The provider's Validate refused forProvider; nothing changes until
    /// the spec does.
    #[error("invalid spec: {0}")]
    Invalid(String),
}

impl Error {
    /// When to try again after `failures` failures in a row.
    fn retry_delay(&self, failures: u32, settings: &Settings) -> Duration {
        match self {
            // Only a spec change can help, and a spec change triggers a
            // cycle of its own, so the poll interval is merely a safety net.
            Error::Invalid(_) | Error::Provider(ProviderError::Terminal(_)) => {
                settings.poll_interval
            }
            // Refused credentials are not retried hot (the external system
            // may lock the account): they start at 4 s, not 1 s, and double
            // to the cap, so a fixed Secret is still picked up soon.
            Error::Provider(ProviderError::Unauthorized(_)) => {
                settings.backoff.delay(failures.saturating_add(2))
            }
            _ => settings.backoff.delay(failures),
        }
    }
}

/// The last failure of one object: when it may be retried, and the state it
/// failed in. Our own writes after a failure (the create-failed annotation,
/// the Synced condition) wake the controller; they must not bypass backoff.
#[derive(Debug, Clone, Copy)]
struct Failure {
    count: u32,
    retry_at: tokio::time::Instant,
    generation: Option<i64>,
    deleting: bool,
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

struct Ctx {
    client: Client,
    host: Arc<Host>,
    entry: KindEntry,
    ar: ApiResource,
    settings: Settings,
    failures: Mutex<HashMap<String, Failure>>,
    /// Cycles in a row that called Update, per object.
    updates: Mutex<HashMap<String, u32>>,
}

/// Runs the reconciler for one kind until the process ends.
pub async fn run(client: Client, host: Arc<Host>, entry: KindEntry, settings: Settings) {
    let ar = entry.api_resource();
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let ctx = Arc::new(Ctx {
        client,
        host,
        entry,
        ar: ar.clone(),
        settings,
        failures: Mutex::default(),
        updates: Mutex::default(),
    });
    tracing::info!(kind = %ar.kind, group = %ar.group, "managing");
    let provider_started = ctx.host.starts_of(&ctx.entry.provider);
    crate::cache::controller(api, watcher::Config::default(), ar)
        .reconcile_all_on(provider_started)
        .with_config(ControllerConfig::default().concurrency(16))
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
}

fn error_policy(obj: Arc<DynamicObject>, err: &Error, ctx: Arc<Ctx>) -> Action {
    let mut failures = ctx.failures.lock().unwrap_or_else(|e| e.into_inner());
    let count = failures.get(&obj.name_any()).map_or(0, |f| f.count) + 1;
    let delay = err.retry_delay(count, &ctx.settings);
    failures.insert(
        obj.name_any(),
        Failure {
            count,
            retry_at: tokio::time::Instant::now() + delay,
            generation: obj.metadata.generation,
            deleting: obj.metadata.deletion_timestamp.is_some(),
        },
    );
    tracing::debug!(kind = %ctx.ar.kind, name = %obj.name_any(), error = %err, ?delay, "retrying");
    Action::requeue(delay)
}

impl Ctx {
    /// How long a failed object must still wait, unless its spec changed or
    /// its deletion began since it failed.
    fn backing_off(&self, obj: &DynamicObject) -> Option<Duration> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let failure = failures.get(&obj.name_any())?;
        let same_state = failure.generation == obj.metadata.generation
            && failure.deleting == obj.metadata.deletion_timestamp.is_some();
        let now = tokio::time::Instant::now();
        (same_state && failure.retry_at > now).then(|| failure.retry_at - now)
    }
}

async fn reconcile(obj: Arc<DynamicObject>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if let Some(wait) = ctx.backing_off(&obj) {
        return Ok(Action::requeue(wait));
    }
    ctx.settings.limiter.acquire().await;
    let result = cycle(&obj, &ctx).await;
    if let Err(Error::Kube(kube::Error::Api(e))) = &result {
        if e.code == 409 {
            // A write raced another (often this controller's own status
            // write, not yet in the cache): nothing failed, and the next
            // cycle starts from the newer object.
            return Ok(Action::requeue(CONFLICT_RETRY));
        }
    }
    match &result {
        Ok(_) => {
            ctx.failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&obj.name_any());
        }
        Err(e) => {
            let message = e.to_string();
            tracing::info!(kind = %ctx.ar.kind, name = %obj.name_any(), error = %message, "reconcile failed");
            ctx.set_conditions(
                &obj,
                &[Condition::new(
                    condition::SYNCED,
                    false,
                    reason::RECONCILE_ERROR,
                    message.clone(),
                )],
                None,
            )
            .await;
            // Provider failures were recorded as Events where they happened;
            // the control plane's own are recorded here.
            if matches!(e, Error::Kube(_) | Error::Config(_) | Error::Invalid(_)) {
                ctx.event(
                    &obj,
                    EventType::Warning,
                    names::event::RECONCILE_ERROR,
                    message,
                );
            }
        }
    }
    result
}

fn policies(obj: &DynamicObject) -> Vec<String> {
    obj.data
        .pointer("/spec/managementPolicies")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .filter(|p: &Vec<String>| !p.is_empty())
        .unwrap_or_else(|| vec![policy::ALL.to_string()])
}

fn allows(policies: &[String], verb: &str) -> bool {
    policies.iter().any(|p| p == policy::ALL || p == verb)
}

fn annotation<'a>(obj: &'a DynamicObject, key: &str) -> Option<&'a str> {
    obj.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// Whether a Create was started and its outcome never recorded.
fn create_interrupted(obj: &DynamicObject) -> bool {
    let Some(pending) = annotation(obj, annotation::EXTERNAL_CREATE_PENDING) else {
        return false;
    };
    let after = |key| annotation(obj, key).is_some_and(|t| t >= pending);
    !after(annotation::EXTERNAL_CREATE_SUCCEEDED) && !after(annotation::EXTERNAL_CREATE_FAILED)
}

/// A Go-style duration such as `30s`, `5m`, `1h30m` or `500ms`, as
/// Crossplane's poll-interval flags take. Hand-written: the duration crates
/// speak other dialects (humantime wants spaces or its own units).
fn parse_interval(s: &str) -> Option<Duration> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        let number: f64 = number.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let seconds = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += Duration::try_from_secs_f64(number * seconds).ok()?;
        rest = tail;
    }
    (!total.is_zero()).then_some(total)
}

impl Ctx {
    fn api(&self) -> Api<DynamicObject> {
        Api::all_with(self.client.clone(), &self.ar)
    }

    fn poll_interval(&self, obj: &DynamicObject) -> Duration {
        let base = match annotation(obj, annotation::POLL_INTERVAL) {
            None => self.settings.poll_interval,
            Some(text) => parse_interval(text).unwrap_or_else(|| {
                tracing::warn!(name = %obj.name_any(), value = text, "{} is not a duration such as 30s, 5m or 1h30m; polling at the default interval", annotation::POLL_INTERVAL);
                self.settings.poll_interval
            }),
        };
        // ±10 % so resources created together do not poll together forever.
        let jitter = 0.9 + rand::random::<f64>() * 0.2;
        base.mul_f64(jitter)
    }

    async fn set_conditions(
        &self,
        obj: &DynamicObject,
        updates: &[Condition<'_>],
        at_provider: Option<Value>,
    ) {
        // Most cycles (every drift poll of a healthy resource) report what
        // the object already says; those send nothing. A cache behind our
        // own last write cannot strand a stale status here: that write's
        // watch event runs another cycle on the newer object.
        let unchanged = conditions::merged(
            obj.data.pointer("/status/conditions"),
            updates,
            obj.metadata.generation,
        );
        let at_provider_unchanged = at_provider
            .as_ref()
            .filter(|v| !v.is_null())
            .is_none_or(|at| obj.data.pointer("/status/atProvider") == Some(at));
        if at_provider_unchanged && obj.data.pointer("/status/conditions") == Some(&unchanged) {
            return;
        }
        let api = self.api();
        let name = obj.name_any();
        let current = match api.get_opt(&name).await {
            Ok(Some(o)) => o,
            _ => return,
        };
        let mut status = json!({
            "conditions": conditions::merged(
                current.data.pointer("/status/conditions"),
                updates,
                // The generation this cycle acted on, not the newest: a spec
                // changed meanwhile is not yet reflected in what we report.
                obj.metadata.generation,
            )
        });
        if let Some(at) = at_provider.filter(|v| !v.is_null()) {
            status["atProvider"] = at;
        }
        if let Err(e) = api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
        {
            tracing::debug!(name = %name, error = %e, "status not written");
        }
    }

    /// Writes annotations (and finalizers) with the object's resourceVersion
    /// as a precondition, so two writers never both think they won.
    async fn replace_meta(
        &self,
        obj: &DynamicObject,
        edit: impl FnOnce(&mut DynamicObject),
    ) -> Result<DynamicObject, kube::Error> {
        let mut next = obj.clone();
        edit(&mut next);
        self.api()
            .replace(&obj.name_any(), &PostParams::default(), &next)
            .await
    }

    fn resource(&self, obj: &DynamicObject) -> pb::Resource {
        pb::Resource {
            kind: self.entry.schema.kind.clone(),
            name: obj.name_any(),
            uid: obj.metadata.uid.clone().unwrap_or_default(),
            external_name: annotation(obj, annotation::EXTERNAL_NAME)
                .unwrap_or_default()
                .to_string(),
            for_provider_json: obj
                .data
                .pointer("/spec/forProvider")
                .cloned()
                .unwrap_or_else(|| json!({}))
                .to_string()
                .into_bytes(),
            provider_config: config_name(obj),
            // Resolved, when there are any, by `call`.
            secrets: Default::default(),
            secret_seed: self.secret_seed(obj),
        }
    }

    /// HMAC of the resource's UID under the control plane's key: stable
    /// for the resource's life, different for every resource.
    fn secret_seed(&self, obj: &DynamicObject) -> Vec<u8> {
        use hmac::{KeyInit, Mac};
        let Some(uid) = obj.metadata.uid.as_deref() else {
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

    /// Sends the ProviderConfig (and its credentials) to the provider unless
    /// it already has this version of them, and marks the config in use.
    async fn configure(&self, plugin: &Plugin, name: &str, force: bool) -> Result<(), Error> {
        if !force {
            let checked = plugin.checked.lock().unwrap_or_else(|e| e.into_inner());
            if checked
                .get(name)
                .is_some_and(|t| t.elapsed() < CONFIG_RECHECK)
            {
                return Ok(());
            }
        }
        let configs: Api<DynamicObject> =
            Api::all_with(self.client.clone(), &self.entry.config_api_resource());
        let config = configs.get_opt(name).await?.ok_or_else(|| {
            Error::Config(format!(
                "ProviderConfig {name:?} ({}) does not exist: create it, or set spec.providerConfigRef.name",
                self.entry.config_group
            ))
        })?;
        // The config is held for this resource from its first use, before
        // its credentials are even read: a config whose Secret is missing is
        // still in use, and must not vanish under the resources naming it.
        // A config being deleted keeps serving the resources that still use
        // it (its finalizer holds it for them), but gains no new finalizer.
        if config.metadata.deletion_timestamp.is_none()
            && !config.finalizers().iter().any(|f| f == finalizer::IN_USE)
        {
            let mut list = config.finalizers().to_vec();
            list.push(finalizer::IN_USE.to_string());
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
        let mut credentials: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut version = config.resource_version().unwrap_or_default();
        if let Some(secret_ref) = spec.pointer("/credentials/secretRef") {
            let ns = secret_ref
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or(names::EVENT_NAMESPACE);
            let secret_name = secret_ref
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let secrets: Api<Secret> = Api::namespaced(self.client.clone(), ns);
            let secret = secrets.get_opt(secret_name).await?.ok_or_else(|| {
                Error::Config(format!(
                    "the credentials Secret {ns}/{secret_name} of ProviderConfig {name:?} does not exist"
                ))
            })?;
            version.push('/');
            version.push_str(&secret.resource_version().unwrap_or_default());
            for (k, v) in secret.data.unwrap_or_default() {
                credentials.insert(k, v.0);
            }
        }
        let mut configured = plugin.configured.lock().await;
        if !force && configured.get(name) == Some(&version) {
            plugin
                .checked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name.to_string(), std::time::Instant::now());
            return Ok(());
        }
        plugin
            .client
            .clone()
            .configure(pb::ConfigureRequest {
                name: name.to_string(),
                spec_json: spec.to_string().into_bytes(),
                credentials: credentials.into_iter().collect(),
            })
            .await
            .map_err(|s| ProviderError::from_status(&s))?;
        configured.insert(name.to_string(), version);
        plugin
            .checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), std::time::Instant::now());
        Ok(())
    }

    /// Calls the provider, configuring it first when it asks to be.
    async fn call<T, F, Fut>(&self, plugin: &Plugin, obj: &DynamicObject, f: F) -> Result<T, Error>
    where
        F: Fn(ProviderClient<Channel>, pb::Resource) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let config = config_name(obj);
        self.configure(plugin, &config, false).await?;
        let mut resource = self.resource(obj);
        resource.secrets = self.resolve_secret_refs(obj).await?;
        match f(plugin.client.clone(), resource.clone()).await {
            Ok(r) => Ok(r.into_inner()),
            Err(status) => match ProviderError::from_status(&status) {
                ProviderError::NotConfigured(_) => {
                    self.configure(plugin, &config, true).await?;
                    Ok(f(plugin.client.clone(), resource)
                        .await
                        .map_err(|s| ProviderError::from_status(&s))?
                        .into_inner())
                }
                other => Err(other.into()),
            },
        }
    }

    /// Reads the Secrets that top-level `...SecretRef` fields of forProvider
    /// name, such as `masterPasswordSecretRef: {namespace, name, key}`: a
    /// provider cannot read the API, so their values travel with the call.
    async fn resolve_secret_refs(
        &self,
        obj: &DynamicObject,
    ) -> Result<HashMap<String, Vec<u8>>, Error> {
        let mut resolved = HashMap::new();
        let Some(fields) = obj
            .data
            .pointer("/spec/forProvider")
            .and_then(Value::as_object)
        else {
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
            let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
            let secret = secrets.get_opt(name).await?.ok_or_else(|| {
                Error::Config(format!(
                    "the Secret {namespace}/{name} named by spec.forProvider.{field} does not exist"
                ))
            })?;
            let value = secret
                .data
                .and_then(|mut d| d.remove(key))
                .ok_or_else(|| {
                    Error::Config(format!(
                        "the Secret {namespace}/{name} named by spec.forProvider.{field} has no key {key:?}"
                    ))
                })?;
            resolved.insert(field.clone(), value.0);
        }
        Ok(resolved)
    }

    /// Asks the provider whether forProvider can work, before anything is
    /// created or changed.
    async fn validate(&self, plugin: &Plugin, obj: &DynamicObject) -> Result<(), Error> {
        let response: pb::ValidateResponse = self
            .call(plugin, obj, |mut c, r| async move {
                c.validate(pb::ValidateRequest { resource: Some(r) }).await
            })
            .await?;
        if response.violations.is_empty() {
            return Ok(());
        }
        let problems: Vec<String> = response
            .violations
            .iter()
            .map(|v| {
                let path = if v.field.starts_with("metadata.") || v.field.starts_with("spec.") {
                    v.field.clone()
                } else {
                    format!("spec.forProvider.{}", v.field)
                };
                format!("{path}: {}", v.message)
            })
            .collect();
        Err(Error::Invalid(problems.join("; ")))
    }

    fn event(&self, obj: &DynamicObject, type_: EventType, reason: &str, message: String) {
        let client = self.client.clone();
        let api_version = self.ar.api_version.clone();
        let kind = self.ar.kind.clone();
        let name = obj.name_any();
        let uid = obj.metadata.uid.clone().unwrap_or_default();
        let reason = reason.to_string();
        tokio::spawn(async move {
            events::record(
                &client,
                &api_version,
                &kind,
                &name,
                &uid,
                type_,
                &reason,
                &message,
            )
            .await;
        });
    }

    /// Merges connection details into the Secret the object names.
    async fn write_connection(
        &self,
        obj: &DynamicObject,
        details: &BTreeMap<String, Vec<u8>>,
    ) -> Result<(), Error> {
        let Some(target) = obj.data.pointer("/spec/writeConnectionSecretToRef") else {
            return Ok(());
        };
        let (Some(ns), Some(name)) = (
            target.get("namespace").and_then(Value::as_str),
            target.get("name").and_then(Value::as_str),
        ) else {
            return Ok(());
        };
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        let existing = secrets.get_opt(name).await?;
        let mut data: BTreeMap<String, Vec<u8>> = existing
            .as_ref()
            .and_then(|s| s.data.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        let before = data.clone();
        data.extend(details.iter().map(|(k, v)| (k.clone(), v.clone())));
        if existing.is_some() && data == before {
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
        .filter_map(|key| Some((key.to_string(), json!(obj.labels().get(key)?))))
        .collect();
        let secret = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": labels,
                "ownerReferences": [{
                    "apiVersion": self.ar.api_version,
                    "kind": self.ar.kind,
                    "name": obj.name_any(),
                    "uid": obj.metadata.uid.clone().unwrap_or_default(),
                    "controller": true,
                    "blockOwnerDeletion": true
                }]
            },
            "type": "connection.crossplane.io/v1alpha1",
            "data": encoded
        });
        secrets
            .patch(
                name,
                &PatchParams::apply(names::FIELD_MANAGER).force(),
                &Patch::Apply(secret),
            )
            .await?;
        Ok(())
    }
}

fn config_name(obj: &DynamicObject) -> String {
    obj.data
        .pointer("/spec/providerConfigRef/name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(names::DEFAULT_PROVIDER_CONFIG)
        .to_string()
}

fn readiness_condition(o: &pb::ObserveResponse) -> Condition<'static> {
    let message = o.readiness_message.clone();
    match pb::Readiness::try_from(o.readiness).unwrap_or(pb::Readiness::Unspecified) {
        pb::Readiness::Available => {
            Condition::new(condition::READY, true, reason::AVAILABLE, message)
        }
        pb::Readiness::Creating => {
            Condition::new(condition::READY, false, reason::CREATING, message)
        }
        pb::Readiness::Deleting => {
            Condition::new(condition::READY, false, reason::DELETING, message)
        }
        _ => Condition::new(condition::READY, false, reason::UNAVAILABLE, message),
    }
}

async fn cycle(obj: &DynamicObject, ctx: &Ctx) -> Result<Action, Error> {
    let schema = &ctx.entry.schema;
    let Some(plugin) = ctx.host.plugin_for(&schema.group, &schema.kind) else {
        return Err(Error::Provider(ProviderError::retryable(format!(
            "provider {} is not running; see `kubectl get providers`",
            ctx.entry.provider
        ))));
    };
    let policies = policies(obj);
    let has_finalizer = obj
        .finalizers()
        .iter()
        .any(|f| f == finalizer::MANAGED_RESOURCE);

    if obj.metadata.deletion_timestamp.is_some() {
        if !has_finalizer {
            return Ok(Action::await_change());
        }
        return delete(obj, ctx, &plugin, &policies).await;
    }

    let mut obj = obj.clone();

    let observed: pb::ObserveResponse = ctx
        .call(&plugin, &obj, |mut c, r| async move {
            c.observe(pb::ObserveRequest { resource: Some(r) }).await
        })
        .await
        .inspect_err(|e| {
            ctx.event(
                &obj,
                EventType::Warning,
                names::event::CANNOT_OBSERVE,
                e.to_string(),
            )
        })?;

    if !observed.exists {
        if !allows(&policies, policy::CREATE) {
            ctx.set_conditions(
                &obj,
                &[
                    Condition::new(condition::READY, false, reason::UNAVAILABLE, "the external resource does not exist"),
                    Condition::new(
                        condition::SYNCED,
                        false,
                        reason::RECONCILE_ERROR,
                        "the external resource does not exist, and spec.managementPolicies do not allow creating it",
                    ),
                ],
                None,
            )
            .await;
            return Ok(Action::requeue(ctx.poll_interval(&obj)));
        }
        return create(obj, ctx, &plugin).await;
    }

    // The finalizer goes on with the create-pending annotation when this
    // cycle creates; an existing resource gets it here.
    if !has_finalizer {
        obj = ctx
            .replace_meta(&obj, |o| {
                o.finalizers_mut()
                    .push(finalizer::MANAGED_RESOURCE.to_string())
            })
            .await?;
    }

    let mut connection: BTreeMap<String, Vec<u8>> =
        observed.connection_details.clone().into_iter().collect();

    if create_interrupted(&obj) || annotation(&obj, annotation::EXTERNAL_NAME).is_none() {
        // A Create whose outcome was never recorded, found by Observe: adopt it.
        let recovered = create_interrupted(&obj);
        let external = ctx.resource(&obj).external_name;
        let external = if !observed.external_name.is_empty() {
            observed.external_name.clone()
        } else if external.is_empty() {
            obj.name_any()
        } else {
            external
        };
        obj = ctx
            .replace_meta(&obj, |o| {
                let a = o.annotations_mut();
                a.insert(annotation::EXTERNAL_NAME.into(), external.clone());
                if recovered {
                    a.insert(annotation::EXTERNAL_CREATE_SUCCEEDED.into(), now());
                }
            })
            .await?;
        if recovered {
            ctx.event(
                &obj,
                EventType::Normal,
                names::event::RECOVERED,
                format!(
                    "found the external resource {external} of an interrupted Create; adopted it"
                ),
            );
        }
    }

    if allows(&policies, policy::LATE_INITIALIZE) && !observed.late_init_json.is_empty() {
        if let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&observed.late_init_json)
        {
            let current = obj
                .data
                .pointer("/spec/forProvider")
                .cloned()
                .unwrap_or_else(|| json!({}));
            let missing: Vec<(String, Value)> = fields
                .into_iter()
                .filter(|(k, _)| current.get(k).is_none_or(Value::is_null))
                .collect();
            if !missing.is_empty() {
                obj = ctx
                    .replace_meta(&obj, |o| {
                        if let Some(fp) = o
                            .data
                            .pointer_mut("/spec/forProvider")
                            .and_then(Value::as_object_mut)
                        {
                            fp.extend(missing);
                        }
                    })
                    .await?;
            }
        }
    }

    let updating = !observed.up_to_date && allows(&policies, policy::UPDATE);
    if updating {
        ctx.validate(&plugin, &obj).await?;
        let updated: pb::UpdateResponse = ctx
            .call(&plugin, &obj, |mut c, r| async move {
                c.update(pb::UpdateRequest { resource: Some(r) }).await
            })
            .await
            .inspect_err(|e| {
                ctx.event(
                    &obj,
                    EventType::Warning,
                    names::event::CANNOT_UPDATE,
                    e.to_string(),
                )
            })?;
        connection.extend(updated.connection_details);
        ctx.event(
            &obj,
            EventType::Normal,
            names::event::UPDATED,
            if observed.diff.is_empty() {
                "updated the external resource".into()
            } else {
                format!("updated: {}", observed.diff)
            },
        );
    }

    ctx.write_connection(&obj, &connection).await?;
    let at_provider = serde_json::from_slice::<Value>(&observed.at_provider_json).ok();
    let ready = readiness_condition(&observed);
    let available = ready.status;
    ctx.set_conditions(
        &obj,
        &[
            ready,
            Condition::new(condition::SYNCED, true, reason::RECONCILE_SUCCESS, ""),
        ],
        at_provider,
    )
    .await;
    // What was reported came from before the Update; observe again soon so
    // atProvider and Ready show its effect rather than waiting a poll. An
    // external system that never converges gets Updates ever further apart.
    let updates_in_a_row = {
        let mut updates = ctx.updates.lock().unwrap_or_else(|e| e.into_inner());
        if updating {
            let n = updates.entry(obj.name_any()).or_insert(0);
            *n += 1;
            *n
        } else {
            updates.remove(&obj.name_any());
            0
        }
    };
    Ok(if updating {
        Action::requeue(ctx.settings.backoff.delay(updates_in_a_row))
    } else if available {
        Action::requeue(ctx.poll_interval(&obj))
    } else {
        Action::requeue(Duration::from_secs(1))
    })
}

async fn create(obj: DynamicObject, ctx: &Ctx, plugin: &Plugin) -> Result<Action, Error> {
    ctx.validate(plugin, &obj).await?;
    if create_interrupted(&obj) {
        // The provider contract makes Create idempotent (a retried Create
        // finds the first one), so retrying is what avoids both a leak and a
        // duplicate here.
        ctx.event(
            &obj,
            EventType::Normal,
            names::event::RECOVERED,
            "a Create was interrupted before its outcome was recorded and the resource was not found; creating again".into(),
        );
    }
    // Recorded with the object's resourceVersion as a precondition: if
    // another cycle got here first, this one stops.
    let obj = match ctx
        .replace_meta(&obj, |o| {
            o.annotations_mut()
                .insert(annotation::EXTERNAL_CREATE_PENDING.into(), now());
            // The finalizer is written before Create, so deletion always
            // waits for the external resource.
            if !o
                .finalizers()
                .iter()
                .any(|f| f == finalizer::MANAGED_RESOURCE)
            {
                o.finalizers_mut()
                    .push(finalizer::MANAGED_RESOURCE.to_string());
            }
        })
        .await
    {
        Ok(o) => o,
        Err(kube::Error::Api(e)) if e.code == 409 => {
            return Ok(Action::requeue(Duration::from_millis(200)))
        }
        Err(e) => return Err(e.into()),
    };
    let created = ctx
        .call(plugin, &obj, |mut c, r| async move {
            c.create(pb::CreateRequest { resource: Some(r) }).await
        })
        .await;
    if ctx.settings.crash_after_create {
        tracing::error!("fault injection: exiting between Create and recording its outcome");
        std::process::exit(86);
    }
    let created = match created {
        Ok(c) => c,
        Err(e) => {
            let _ = ctx
                .replace_meta(&obj, |o| {
                    o.annotations_mut()
                        .insert(annotation::EXTERNAL_CREATE_FAILED.into(), now());
                })
                .await;
            ctx.event(
                &obj,
                EventType::Warning,
                names::event::CANNOT_CREATE,
                e.to_string(),
            );
            return Err(e);
        }
    };
    let external = if created.external_name.is_empty() {
        obj.name_any()
    } else {
        created.external_name.clone()
    };
    let mut latest = obj;
    for _ in 0..5 {
        let result = ctx
            .replace_meta(&latest, |o| {
                let a = o.annotations_mut();
                a.insert(annotation::EXTERNAL_NAME.into(), external.clone());
                a.insert(annotation::EXTERNAL_CREATE_SUCCEEDED.into(), now());
            })
            .await;
        match result {
            Ok(o) => {
                latest = o;
                break;
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                latest = ctx.api().get(&latest.name_any()).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    ctx.event(
        &latest,
        EventType::Normal,
        names::event::CREATED,
        format!("created the external resource {external}"),
    );
    // Many resources are usable as soon as Create returns: a look at once
    // takes those straight to Ready, rather than through a Creating status
    // and another cycle (a write and a wake-up of the composite each).
    let observed = ctx
        .call(plugin, &latest, |mut c, r| async move {
            c.observe(pb::ObserveRequest { resource: Some(r) }).await
        })
        .await
        .ok()
        .filter(|o| o.exists);
    let mut connection: BTreeMap<String, Vec<u8>> =
        created.connection_details.into_iter().collect();
    let (ready, at_provider, next) = match &observed {
        Some(o) => {
            connection.extend(o.connection_details.clone());
            let ready = readiness_condition(o);
            let next = if ready.status {
                ctx.poll_interval(&latest)
            } else {
                Duration::from_secs(1)
            };
            (
                ready,
                serde_json::from_slice::<Value>(&o.at_provider_json).ok(),
                next,
            )
        }
        None => (
            Condition::new(condition::READY, false, reason::CREATING, ""),
            None,
            Duration::from_millis(100),
        ),
    };
    ctx.write_connection(&latest, &connection).await?;
    ctx.set_conditions(
        &latest,
        &[
            ready,
            Condition::new(condition::SYNCED, true, reason::RECONCILE_SUCCESS, ""),
        ],
        at_provider,
    )
    .await;
    Ok(Action::requeue(next))
}

async fn delete(
    obj: &DynamicObject,
    ctx: &Ctx,
    plugin: &Plugin,
    policies: &[String],
) -> Result<Action, Error> {
    let orphan = obj
        .data
        .pointer("/spec/deletionPolicy")
        .and_then(Value::as_str)
        == Some("Orphan");
    if !orphan && allows(policies, policy::DELETE) {
        ctx.set_conditions(
            obj,
            &[Condition::new(
                condition::READY,
                false,
                reason::DELETING,
                "",
            )],
            None,
        )
        .await;
        let observed: pb::ObserveResponse = ctx
            .call(plugin, obj, |mut c, r| async move {
                c.observe(pb::ObserveRequest { resource: Some(r) }).await
            })
            .await?;
        if observed.exists {
            let readiness =
                pb::Readiness::try_from(observed.readiness).unwrap_or(pb::Readiness::Unspecified);
            if readiness != pb::Readiness::Deleting {
                ctx.call(plugin, obj, |mut c, r| async move {
                    c.delete(pb::DeleteRequest { resource: Some(r) }).await
                })
                .await
                .inspect_err(|e| {
                    ctx.event(
                        obj,
                        EventType::Warning,
                        names::event::CANNOT_DELETE,
                        e.to_string(),
                    )
                })?;
            }
            // Observed again next cycle; the finalizer stays until it is gone.
            return Ok(Action::requeue(Duration::from_millis(500)));
        }
        ctx.event(
            obj,
            EventType::Normal,
            names::event::DELETED,
            "deleted the external resource".into(),
        );
    }
    match ctx
        .replace_meta(obj, |o| {
            o.finalizers_mut()
                .retain(|f| f != finalizer::MANAGED_RESOURCE)
        })
        .await
    {
        Ok(_) => Ok(Action::await_change()),
        Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => {
            Ok(Action::requeue(Duration::from_millis(200)))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(annotations: &[(&str, &str)]) -> DynamicObject {
        let mut o = DynamicObject::new("x", &ApiResource::erase::<Secret>(&()));
        o.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        o
    }

    #[test]
    fn interrupted_create_is_detected() {
        assert!(!create_interrupted(&obj(&[])));
        assert!(create_interrupted(&obj(&[(
            annotation::EXTERNAL_CREATE_PENDING,
            "2026-01-01T00:00:01Z"
        )])));
        assert!(!create_interrupted(&obj(&[
            (annotation::EXTERNAL_CREATE_PENDING, "2026-01-01T00:00:01Z"),
            (
                annotation::EXTERNAL_CREATE_SUCCEEDED,
                "2026-01-01T00:00:02Z"
            ),
        ])));
        assert!(create_interrupted(&obj(&[
            (annotation::EXTERNAL_CREATE_PENDING, "2026-01-01T00:00:03Z"),
            (annotation::EXTERNAL_CREATE_FAILED, "2026-01-01T00:00:02Z"),
        ])));
    }

    #[test]
    fn policies_and_intervals() {
        assert!(allows(&["*".into()], policy::DELETE));
        assert!(!allows(&["Observe".into()], policy::CREATE));
        assert_eq!(parse_interval("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_interval("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_interval("soon"), None);
        assert_eq!(parse_interval("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_interval("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_interval("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_interval("0s"), None);
        assert_eq!(parse_interval("10"), None);
    }
}

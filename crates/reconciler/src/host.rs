//! The plugin host: runs the provider named by each `Provider` object,
//! completes the handshake, registers the CRDs of exactly the kinds it
//! serves, health-checks it, and restarts it with exponential backoff when it
//! dies. The managed reconciler reaches a provider through the host's
//! [`managed::Providers`] implementation.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use provider_sdk::client;
use provider_sdk::handshake::{self, Address, Handshake};
use provider_sdk::pb::{self, provider_client::ProviderClient};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use runtime::conditions::{self, Condition};
use runtime::names;

use crate::grpc::GrpcClient;
use crate::{crds, managed};

/// How long a plugin may take to print its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// Restart delays double from the first to the last.
const FIRST_RESTART_DELAY: Duration = Duration::from_millis(200);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);
/// A plugin that ran this long before dying is restarted from the first delay again.
const STABLE_AFTER: Duration = Duration::from_secs(60);
const HEALTH_INTERVAL: Duration = Duration::from_secs(2);
/// How long a provider has to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Consecutive failed health checks before a plugin is restarted.
const HEALTH_FAILURES: u32 = 3;
/// Consecutive calls that ran out of time before the plugin is probed with
/// GetSchema, and restarted if that gets no answer either: it answers
/// health checks but its handlers hang.
const TIMEOUTS_BEFORE_RESTART: u32 = 3;

/// A running, handshaken provider.
pub struct Plugin {
    pub provider: String,
    pub schema: pb::GetSchemaResponse,
    /// The provider seam over this process's channel.
    pub connection: Arc<managed::Connection>,
}

/// A managed-resource kind and the provider that serves it.
#[derive(Clone, Debug)]
pub struct KindEntry {
    pub provider: String,
    pub config_group: String,
    pub schema: pb::KindSchema,
}

impl KindEntry {
    pub fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(&self.schema.group, &self.schema.version, &self.schema.kind),
            &self.schema.plural,
        )
    }

    pub fn config_api_resource(&self) -> ApiResource {
        config_api_resource(&self.config_group)
    }
}

pub fn config_api_resource(group: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, "v1alpha1", names::PROVIDER_CONFIG_KIND),
        names::PROVIDER_CONFIG_PLURAL,
    )
}

pub fn provider_api_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(
            names::PROVIDER_GROUP,
            names::PROVIDER_VERSION,
            names::PROVIDER_KIND,
        ),
        names::PROVIDER_PLURAL,
    )
}

/// Asks a supervisor to stop its provider: when the whole host stops, or
/// when just this provider's object went away or changed.
#[derive(Clone)]
struct StopSignal {
    host: watch::Receiver<bool>,
    this: watch::Receiver<bool>,
}

impl StopSignal {
    fn requested(&self) -> bool {
        *self.host.borrow() || *self.this.borrow()
    }

    /// Returns once a stop is asked for (or nobody can ask any more).
    async fn wait(&mut self) {
        while !self.requested() {
            tokio::select! {
                changed = self.host.changed() => if changed.is_err() { return },
                changed = self.this.changed() => if changed.is_err() { return },
            }
        }
    }
}

/// One provider's supervisor: the spec it runs, how to stop it, its task.
struct Supervisor {
    spec: Value,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

pub struct Host {
    client: Client,
    socket_dir: PathBuf,
    /// How long one provider call may take.
    call_timeout: Duration,
    plugins: RwLock<HashMap<String, Arc<Plugin>>>,
    kinds: RwLock<HashMap<String, KindEntry>>,
    announce: mpsc::UnboundedSender<KindEntry>,
    /// Set once, when the host stops: every supervisor stops its provider
    /// with SIGTERM so the provider can clean up (the local provider stops
    /// the processes it supervises), then the host waits for them.
    stopping: watch::Sender<bool>,
    supervisors: std::sync::Mutex<HashMap<String, Supervisor>>,
    /// The name of each provider as it comes up, first start and restarts
    /// alike: what a provider held in memory (the processes the local
    /// provider supervises, say) is gone after a restart, so its resources
    /// are reconciled again at once rather than at their next poll.
    started: broadcast::Sender<String>,
}

fn kind_key(group: &str, kind: &str) -> String {
    format!("{kind}.{group}")
}

impl Host {
    pub fn new(
        client: Client,
        socket_dir: PathBuf,
        call_timeout: Duration,
        announce: mpsc::UnboundedSender<KindEntry>,
    ) -> Host {
        Host {
            client,
            socket_dir,
            call_timeout,
            plugins: RwLock::default(),
            kinds: RwLock::default(),
            announce,
            stopping: watch::channel(false).0,
            supervisors: Default::default(),
            started: broadcast::channel(16).0,
        }
    }

    /// Yields each time `provider` has (re)started and serves again.
    pub fn starts_of(&self, provider: &str) -> impl futures::Stream<Item = ()> + Send + 'static {
        let provider = provider.to_string();
        futures::stream::unfold(self.started.subscribe(), move |mut started| {
            let provider = provider.clone();
            async move {
                loop {
                    match started.recv().await {
                        Ok(name) if name == provider => return Some(((), started)),
                        Ok(_) => continue,
                        // Missed some: one of them may have been this provider.
                        Err(broadcast::error::RecvError::Lagged(_)) => return Some(((), started)),
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        })
    }

    /// Stops every provider gracefully (SIGTERM, then SIGKILL after
    /// [`STOP_GRACE`]) and waits for them.
    pub async fn shutdown(&self) {
        self.stopping.send_replace(true);
        let tasks: Vec<JoinHandle<()>> = self
            .supervisors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, s)| s.task)
            .collect();
        for task in tasks {
            if tokio::time::timeout(STOP_GRACE + Duration::from_secs(2), task)
                .await
                .is_err()
            {
                tracing::warn!("a provider supervisor did not stop in time");
            }
        }
    }

    /// The running plugin that serves a kind, if there is one.
    pub fn plugin_for(&self, group: &str, kind: &str) -> Option<Arc<Plugin>> {
        let provider = self
            .kinds
            .read()
            .ok()?
            .get(&kind_key(group, kind))?
            .provider
            .clone();
        self.plugins.read().ok()?.get(&provider).cloned()
    }

    /// The kind entry of `group`/`kind`, if a provider announced it.
    pub fn kind(&self, group: &str, kind: &str) -> Option<KindEntry> {
        self.kinds.read().ok()?.get(&kind_key(group, kind)).cloned()
    }

    /// Every kind a provider serves.
    pub fn kinds_of(&self, provider: &str) -> Vec<KindEntry> {
        self.kinds
            .read()
            .map(|k| {
                k.values()
                    .filter(|e| e.provider == provider)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Watches `Provider` objects and keeps one supervisor per object.
    pub async fn run(self: Arc<Self>) {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &provider_api_resource());
        let mut seen_in_relist: Vec<String> = Vec::new();
        let mut events = watcher(api, watcher::Config::default()).boxed();
        while let Some(event) = events.next().await {
            if *self.stopping.borrow() {
                return;
            }
            match event {
                Ok(watcher::Event::Init) => seen_in_relist.clear(),
                Ok(watcher::Event::InitApply(obj)) => {
                    seen_in_relist.push(obj.name_any());
                    self.ensure(obj);
                }
                Ok(watcher::Event::InitDone) => {
                    let gone: Vec<String> = self
                        .supervisors
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .keys()
                        .filter(|name| !seen_in_relist.contains(name))
                        .cloned()
                        .collect();
                    for name in gone {
                        self.stop_one(&name);
                    }
                }
                Ok(watcher::Event::Apply(obj)) => self.ensure(obj),
                Ok(watcher::Event::Delete(obj)) => {
                    let name = obj.name_any();
                    tracing::info!(provider = %name, "provider removed; stopping it");
                    self.stop_one(&name);
                    self.forget(&name);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "watching providers failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Asks one provider's supervisor to stop; it stops its process gracefully.
    fn stop_one(&self, name: &str) -> Option<JoinHandle<()>> {
        let supervisor = self
            .supervisors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)?;
        supervisor.stop.send_replace(true);
        Some(supervisor.task)
    }

    fn ensure(self: &Arc<Self>, obj: DynamicObject) {
        let name = obj.name_any();
        let spec = obj.data.get("spec").cloned().unwrap_or(Value::Null);
        if obj.metadata.deletion_timestamp.is_some() {
            return;
        }
        let running_spec = self
            .supervisors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&name)
            .map(|s| s.spec.clone());
        if running_spec.as_ref() == Some(&spec) {
            return;
        }
        // The old process stops before the new one starts, so two copies
        // of one provider never manage the same resources at once.
        let previous = if running_spec.is_some() {
            tracing::info!(provider = %name, "provider spec changed; restarting it");
            self.stop_one(&name)
        } else {
            None
        };
        let (stop, this) = watch::channel(false);
        let signal = StopSignal {
            host: self.stopping.subscribe(),
            this,
        };
        let host = self.clone();
        let task_name = name.clone();
        let task_spec = spec.clone();
        let task = tokio::spawn(async move {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            host.supervise(task_name, task_spec, signal).await;
        });
        self.supervisors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, Supervisor { spec, stop, task });
    }

    fn forget(&self, provider: &str) {
        if let Ok(mut plugins) = self.plugins.write() {
            plugins.remove(provider);
        }
    }

    /// Runs one provider for as long as its object exists.
    async fn supervise(self: Arc<Self>, name: String, spec: Value, mut stop: StopSignal) {
        let mut backoff =
            runtime::process::Backoff::new(FIRST_RESTART_DELAY, MAX_RESTART_DELAY, STABLE_AFTER);
        let mut restarts: u64 = 0;
        let mut installed = false;
        loop {
            let started = Instant::now();
            let result = self
                .run_once(&name, &spec, restarts, &mut stop, &mut installed)
                .await;
            self.forget(&name);
            if stop.requested() {
                tracing::info!(provider = %name, "provider stopped");
                return;
            }
            let error = match result {
                Ok(()) => "the provider stopped".to_string(),
                Err(e) => e,
            };
            tracing::warn!(provider = %name, error = %error, "provider is down");
            let delay = backoff.next(started);
            restarts += 1;
            let unhealthy = Condition::new(
                names::condition::HEALTHY,
                false,
                names::reason::UNHEALTHY,
                error.clone(),
            );
            // Until a provider has once served its kinds, it is not
            // installed either, so `kubectl wait --for=condition=Installed`
            // sees why instead of waiting for a condition that never comes.
            let not_installed = Condition::new(
                names::condition::INSTALLED,
                false,
                names::reason::INSTALL_FAILED,
                error.clone(),
            );
            let conditions = if installed {
                vec![unhealthy]
            } else {
                vec![not_installed, unhealthy]
            };
            self.set_status(
                &name,
                &conditions,
                json!({"lastError": error, "restarts": restarts}),
            )
            .await;
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.wait() => return,
            }
        }
    }

    async fn run_once(
        &self,
        name: &str,
        spec: &Value,
        restarts: u64,
        stop: &mut StopSignal,
        installed: &mut bool,
    ) -> Result<(), String> {
        let (mut child, channel, address) = if let Some(command) =
            spec.get("command").and_then(Value::as_str)
        {
            let (child, address) = self.start_child(name, command, spec).await?;
            let channel = connect_with_retry(&address).await?;
            (Some(child), channel, handshake_address(&address))
        } else if let Some(endpoint) = spec.get("endpoint").and_then(Value::as_str) {
            let tls = self.remote_tls(endpoint, spec).await?;
            let channel = client::connect_remote(endpoint, tls)
                .await
                .map_err(|e| remote_failure(endpoint, &chain(&e)))?;
            (None, channel, format!("https://{endpoint}"))
        } else {
            return Err(
                "spec needs either command (a local provider) or endpoint (a remote one)".into(),
            );
        };
        let mut provider = ProviderClient::new(channel.clone());
        let schema = tokio::time::timeout(
            self.call_timeout,
            provider.get_schema(pb::GetSchemaRequest {}),
        )
        .await
        .map_err(|_| format!("GetSchema did not answer within {:?}", self.call_timeout))?
        .map_err(|e| match spec.get("endpoint").and_then(Value::as_str) {
            // Over TLS 1.3 a server that refuses the client's
            // certificate says so on the first call, not at connect.
            Some(endpoint) => remote_failure(endpoint, &chain(&e)),
            None => format!("GetSchema failed: {}", e.message()),
        })?
        .into_inner();
        self.install(name, &schema).await?;
        *installed = true;
        let timeouts = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let plugin = Arc::new(Plugin {
            provider: name.to_string(),
            schema: schema.clone(),
            connection: Arc::new(managed::Connection::new(Arc::new(GrpcClient::new(
                name,
                provider,
                self.call_timeout,
                timeouts.clone(),
            )))),
        });
        if let Ok(mut plugins) = self.plugins.write() {
            plugins.insert(name.to_string(), plugin);
        }
        let kinds: Vec<String> = schema
            .kinds
            .iter()
            .map(|k| format!("{}.{}", k.kind, k.group))
            .collect();
        tracing::info!(provider = %name, kinds = ?kinds, "provider is healthy");
        let _ = self.started.send(name.to_string());
        self.set_status(
            name,
            &[
                Condition::new(
                    names::condition::INSTALLED,
                    true,
                    names::reason::INSTALLED,
                    "",
                ),
                Condition::new(names::condition::HEALTHY, true, names::reason::HEALTHY, ""),
            ],
            json!({"kinds": kinds, "address": address, "restarts": restarts}),
        )
        .await;
        self.watch_health(name, &channel, child.as_mut(), &timeouts, stop)
            .await
    }

    async fn start_child(
        &self,
        name: &str,
        command: &str,
        spec: &Value,
    ) -> Result<(Child, Address), String> {
        let args: Vec<String> = spec
            .get("args")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let env: Vec<(String, String)> = spec
            .get("env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|var| {
                Some((
                    var.get("name")?.as_str()?.to_string(),
                    var.get("value")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                ))
            })
            .collect();
        spawn_plugin(
            name,
            command,
            &args,
            &env,
            &self.socket_dir,
            &self.state_dir(name),
        )
        .await
    }

    /// `<data dir>/provider-state/<provider>`, beside the socket directory.
    fn state_dir(&self, provider: &str) -> PathBuf {
        let root = match self.socket_dir.parent() {
            Some(data_dir) => data_dir.join("provider-state"),
            None => self.socket_dir.join("state"),
        };
        root.join(provider)
    }

    /// The mTLS settings for a remote provider, from the Secrets its spec names.
    async fn remote_tls(&self, endpoint: &str, spec: &Value) -> Result<ClientTlsConfig, String> {
        let ca = self.tls_secret(spec, "caSecretRef").await?;
        let identity = self.tls_secret(spec, "clientSecretRef").await?;
        let server_name = spec
            .pointer("/tls/serverName")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| {
                endpoint
                    .rsplit_once(':')
                    .map_or(endpoint, |(h, _)| h)
                    .to_string()
            });
        Ok(ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(key_of(&ca, "caSecretRef", "ca.crt")?))
            .identity(Identity::from_pem(
                key_of(&identity, "clientSecretRef", "tls.crt")?,
                key_of(&identity, "clientSecretRef", "tls.key")?,
            ))
            .domain_name(server_name))
    }

    async fn tls_secret(&self, spec: &Value, field: &str) -> Result<Secret, String> {
        let reference = spec.pointer(&format!("/tls/{field}"));
        let ns = reference
            .and_then(|r| r.get("namespace"))
            .and_then(Value::as_str)
            .unwrap_or("plinth-system");
        let name = reference
            .and_then(|r| r.get("name"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                format!(
                    "a remote provider is reached only over mTLS: set spec.tls.{field} to a Secret"
                )
            })?;
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        secrets
            .get_opt(name)
            .await
            .map_err(|e| format!("reading Secret {ns}/{name}: {e}"))?
            .ok_or_else(|| format!("spec.tls.{field}: Secret {ns}/{name} does not exist"))
    }

    /// Registers the ProviderConfig CRD and one CRD per kind served.
    async fn install(&self, name: &str, schema: &pb::GetSchemaResponse) -> Result<(), String> {
        crds::check_schema(schema)?;
        // Two providers serving one kind would fight over every object of
        // it; the one that came first keeps it for as long as it exists.
        let supervised: Vec<String> = self
            .supervisors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        if let Ok(kinds) = self.kinds.read() {
            for kind in &schema.kinds {
                if let Some(owner) = kinds.get(&kind_key(&kind.group, &kind.kind)) {
                    if owner.provider != name && supervised.contains(&owner.provider) {
                        return Err(format!(
                            "the provider serves {}.{}, which the provider {} already serves",
                            kind.kind, kind.group, owner.provider
                        ));
                    }
                }
            }
        }
        // Before any CRD is there to be watched: the managed reconcilers the
        // kinds start act as the controllers, which hold only the groups
        // their ClusterRole aggregates.
        let role = crds::controller_role(name, schema);
        let roles: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(self.client.clone());
        roles
            .patch(
                &crds::controller_role_name(name),
                &kube::api::PatchParams::apply(names::FIELD_MANAGER).force(),
                &kube::api::Patch::Apply(role),
            )
            .await
            .map_err(|e| format!("cannot grant the controllers the provider's kinds: {e}"))?;
        // Checked above: empty means none, anything else is a JSON object.
        let config_schema = serde_json::from_slice(&schema.provider_config_schema_json)
            .unwrap_or_else(|_| json!({"type": "object"}));
        runtime::crds::apply(
            &self.client,
            crds::provider_config(&schema.provider_config_group, config_schema),
        )
        .await
        .map_err(|e| format!("registering the ProviderConfig CRD: {e}"))?;
        for kind in &schema.kinds {
            runtime::crds::apply(&self.client, crds::managed(name, kind))
                .await
                .map_err(|e| format!("registering the CRD of {}.{}: {e}", kind.kind, kind.group))?;
            let entry = KindEntry {
                provider: name.to_string(),
                config_group: schema.provider_config_group.clone(),
                schema: kind.clone(),
            };
            if let Ok(mut kinds) = self.kinds.write() {
                kinds.insert(kind_key(&kind.group, &kind.kind), entry.clone());
            }
            let _ = self.announce.send(entry);
        }
        Ok(())
    }

    /// Returns when the plugin exits or stops answering health checks, or
    /// once it has been stopped on request.
    async fn watch_health(
        &self,
        name: &str,
        channel: &Channel,
        mut child: Option<&mut Child>,
        timeouts: &std::sync::atomic::AtomicU32,
        stop: &mut StopSignal,
    ) -> Result<(), String> {
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        let mut failures = 0;
        loop {
            let exited = async {
                match child.as_deref_mut() {
                    Some(c) => c.wait().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                status = exited => {
                    return Err(match status {
                        Ok(s) => format!("the provider process exited ({s})"),
                        Err(e) => format!("waiting for the provider process failed: {e}"),
                    });
                }
                _ = stop.wait() => {
                    if let Some(c) = child.as_deref_mut() {
                        runtime::process::terminate(name, c, STOP_GRACE).await;
                    }
                    return Ok(());
                }
                _ = tokio::time::sleep(HEALTH_INTERVAL) => {}
            }
            if timeouts.load(std::sync::atomic::Ordering::Relaxed) >= TIMEOUTS_BEFORE_RESTART {
                // Slow calls may be one resource's; a provider whose
                // handlers hang does not answer GetSchema either.
                let mut provider = ProviderClient::new(channel.clone());
                let probe = tokio::time::timeout(
                    self.call_timeout,
                    provider.get_schema(pb::GetSchemaRequest {}),
                )
                .await;
                if matches!(probe, Ok(Ok(_))) {
                    timeouts.store(0, std::sync::atomic::Ordering::Relaxed);
                } else {
                    tracing::warn!(provider = %name, "provider calls time out and GetSchema gets no answer; restarting it");
                    if let Some(c) = child.as_deref_mut() {
                        let _ = c.start_kill();
                        let _ = c.wait().await;
                    }
                    return Err(format!(
                        "calls got no answer within {} and neither did GetSchema; the provider was restarted",
                        crate::grpc::humanize(self.call_timeout)
                    ));
                }
            }
            let check = tokio::time::timeout(
                HEALTH_INTERVAL,
                health.check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                }),
            )
            .await;
            let serving = matches!(&check, Ok(Ok(r)) if r.get_ref().status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
            if serving {
                failures = 0;
                continue;
            }
            failures += 1;
            tracing::warn!(provider = %name, failures, "health check failed");
            if failures >= HEALTH_FAILURES {
                if let Some(c) = child.as_deref_mut() {
                    let _ = c.start_kill();
                }
                return Err(format!(
                    "the provider failed {HEALTH_FAILURES} health checks in a row"
                ));
            }
        }
    }

    async fn set_status(&self, name: &str, updates: &[Condition<'_>], extra: Value) {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &provider_api_resource());
        if let Err(e) = conditions::patch_status(&api, name, updates, extra).await {
            tracing::warn!(provider = %name, error = %e, "cannot update the provider's status");
        }
    }
}

fn key_of(secret: &Secret, field: &str, key: &str) -> Result<Vec<u8>, String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone())
        .ok_or_else(|| {
            format!(
                "spec.tls.{field}: Secret {} has no {key:?} key",
                secret.metadata.name.as_deref().unwrap_or_default()
            )
        })
}

fn handshake_address(address: &Address) -> String {
    match address {
        Address::Unix(p) => format!("unix://{}", p.display()),
        Address::Tcp(a) => format!("tcp://{a}"),
    }
}

/// An error and every cause under it, as one line: tonic's transport
/// errors say only "transport error" at the top.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = c.source();
    }
    parts.join(": ")
}

/// Why a remote provider could not be reached, in terms of its spec when
/// TLS is what failed.
fn remote_failure(endpoint: &str, detail: &str) -> String {
    // rustls' words: BadSignature where the issuer's name matches but its
    // key does not; the server's DecryptError alert when it cannot verify
    // the client's certificate.
    let reason = if ["UnknownIssuer", "BadSignature"]
        .iter()
        .any(|m| detail.contains(m))
    {
        Some("the provider's certificate is not signed by the CA in spec.tls.caSecretRef")
    } else if detail.contains("NotValidForName") {
        Some("the provider's certificate is not valid for its name (spec.tls.serverName, else the endpoint's host)")
    } else if [
        "UnknownCA",
        "BadCertificate",
        "CertificateRequired",
        "DecryptError",
        "unknown ca",
        "certificate required",
    ]
    .iter()
    .any(|m| detail.contains(m))
    {
        Some("the provider refused the client certificate in spec.tls.clientSecretRef")
    } else {
        None
    };
    match reason {
        Some(reason) => format!(
            "cannot connect to the remote provider at {endpoint} over mTLS: {reason} ({detail})"
        ),
        None => format!("cannot connect to the remote provider at {endpoint} over mTLS: {detail}"),
    }
}

/// Starts a provider plugin and reads its handshake: the child (killed
/// when dropped) and the address it serves on.
async fn spawn_plugin(
    name: &str,
    command: &str,
    args: &[String],
    env: &[(String, String)],
    socket_dir: &std::path::Path,
    state_dir: &std::path::Path,
) -> Result<(Child, Address), String> {
    if let Err(e) = std::fs::create_dir_all(state_dir) {
        return Err(format!(
            "cannot create the provider's state directory {}: {e}",
            state_dir.display()
        ));
    }
    let mut cmd = Command::new(command);
    cmd.args(args)
        .env(handshake::MAGIC_COOKIE_KEY, handshake::MAGIC_COOKIE_VALUE)
        .env(handshake::SOCKET_DIR_ENV, socket_dir)
        .env(handshake::STATE_DIR_ENV, state_dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {command}: {e}"))?;
    if let Some(stderr) = child.stderr.take() {
        let provider = name.to_string();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(target: "provider", provider = %provider, "{line}");
            }
        });
    }
    let stdout = child
        .stdout
        .take()
        .ok_or("the provider's stdout was not captured")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(HANDSHAKE_TIMEOUT, lines.next_line())
        .await
        .map_err(|_| format!("{command} printed no handshake within {HANDSHAKE_TIMEOUT:?}"))?
        .map_err(|e| format!("cannot read the handshake from {command}: {e}"))?
        .ok_or_else(|| format!("{command} exited before its handshake"))?;
    let handshake = Handshake::parse(&line).map_err(|e| e.to_string())?;
    // Keep draining stdout so a chatty plugin never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, handshake.address))
}

/// What a provider binary serves, asked of it without a cluster: started
/// with its sockets in `dir`, asked for its schema, and stopped again.
/// `plinth crds` writes the CRDs from this.
pub async fn probe_schema(
    name: &str,
    binary: &std::path::Path,
    dir: &std::path::Path,
) -> Result<pb::GetSchemaResponse, String> {
    let command = binary.to_string_lossy();
    let (mut child, address) = spawn_plugin(name, &command, &[], &[], dir, &dir.join(name)).await?;
    let schema = async {
        let channel = connect_with_retry(&address).await?;
        ProviderClient::new(channel)
            .get_schema(pb::GetSchemaRequest {})
            .await
            .map(tonic::Response::into_inner)
            .map_err(|e| format!("cannot get the schema of {name}: {}", e.message()))
    }
    .await;
    runtime::process::terminate(name, &mut child, STOP_GRACE).await;
    schema
}

async fn connect_with_retry(address: &Address) -> Result<Channel, String> {
    let mut last = String::new();
    for _ in 0..50 {
        match client::connect(address).await {
            Ok(channel) => return Ok(channel),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "cannot connect to the provider at {}: {last}",
        handshake_address(address)
    ))
}

impl managed::Providers for Host {
    fn connection(&self, group: &str, kind: &str) -> Option<Arc<managed::Connection>> {
        self.plugin_for(group, kind).map(|p| p.connection.clone())
    }
}

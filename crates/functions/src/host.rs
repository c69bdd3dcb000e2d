//! The embedded runtimes of `Function` objects. No OCI registry can be
//! reached, so a Function runs one of two ways, chosen by annotations:
//!
//! - `render.crossplane.io/runtime: Development` with
//!   `render.crossplane.io/runtime-development-target: HOST:PORT`: the
//!   function already runs there and is dialled without TLS, exactly as
//!   `crossplane render` does, so one Function YAML works in both tools.
//! - `plinth.dev/function-command`: Plinth starts the command with
//!   `--address 127.0.0.1:PORT --insecure` (the flags Crossplane's function
//!   SDKs take), logs its output under the function's name, checks it
//!   answers, and restarts it with backoff when it dies.
//!
//! Each Function's `Installed` and `Healthy` conditions say which is
//! happening and, when not, why.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use runtime::conditions::{self, Condition};
use runtime::names;
use runtime::process::{terminate, Backoff};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::runner::Runner;

const FIRST_RESTART_DELAY: Duration = Duration::from_millis(200);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// How long a started function has to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const HEALTH_INTERVAL: Duration = Duration::from_secs(2);
const HEALTH_FAILURES: u32 = 3;
const STOP_GRACE: Duration = Duration::from_secs(10);

pub fn api_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(crate::GROUP, crate::VERSION, crate::KIND),
        crate::PLURAL,
    )
}

/// How a Function runs here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runtime {
    /// Already running at HOST:PORT.
    Development { target: String },
    /// Served elsewhere, reached over mTLS with the client certificate
    /// and CA in a Secret.
    Remote {
        endpoint: String,
        secret_namespace: String,
        secret_name: String,
        server_name: String,
    },
    /// A command Plinth starts and supervises.
    Process {
        command: Vec<String>,
        working_dir: Option<String>,
    },
    /// Neither: why not, and what to set.
    Unsupported(String),
}

/// The runtime a Function's annotations ask for.
pub fn runtime_of(function: &Value) -> Runtime {
    let annotation = |key: &str| {
        function
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let runtime = annotation(crate::ANNOTATION_RUNTIME);
    if runtime == Some(crate::RUNTIME_DEVELOPMENT) {
        return match annotation(crate::ANNOTATION_DEVELOPMENT_TARGET) {
            Some(target) => Runtime::Development {
                target: target.to_string(),
            },
            None => Runtime::Unsupported(format!(
                "metadata.annotations[{}]: Required value: a Development function needs HOST:PORT to dial",
                crate::ANNOTATION_DEVELOPMENT_TARGET
            )),
        };
    }
    if let Some(endpoint) = annotation(crate::ANNOTATION_ENDPOINT) {
        let secret = annotation(crate::ANNOTATION_TLS_SECRET).unwrap_or(crate::DEFAULT_TLS_SECRET);
        let Some((namespace, name)) = secret.split_once('/') else {
            return Runtime::Unsupported(format!(
                "metadata.annotations[{}]: Invalid value: {secret:?}: expected NAMESPACE/NAME",
                crate::ANNOTATION_TLS_SECRET
            ));
        };
        let host = endpoint.rsplit_once(':').map_or(endpoint, |(h, _)| h);
        return Runtime::Remote {
            endpoint: endpoint.to_string(),
            secret_namespace: namespace.to_string(),
            secret_name: name.to_string(),
            server_name: annotation(crate::ANNOTATION_TLS_SERVER_NAME)
                .unwrap_or(host)
                .trim_matches(|c| c == '[' || c == ']')
                .to_string(),
        };
    }
    if let Some(command) = annotation(crate::ANNOTATION_COMMAND) {
        return match parse_command(command) {
            Ok(command) if !command.is_empty() => Runtime::Process {
                command,
                working_dir: annotation(crate::ANNOTATION_WORKING_DIR).map(str::to_string),
            },
            Ok(_) => Runtime::Unsupported(format!(
                "metadata.annotations[{}]: Invalid value: the command is empty",
                crate::ANNOTATION_COMMAND
            )),
            Err(e) => Runtime::Unsupported(format!(
                "metadata.annotations[{}]: Invalid value: {e}",
                crate::ANNOTATION_COMMAND
            )),
        };
    }
    let how = format!(
        "annotate the Function with {}: {} and {}: HOST:PORT, with {}: COMMAND, or with {}: HOST:PORT (mTLS)",
        crate::ANNOTATION_RUNTIME,
        crate::RUNTIME_DEVELOPMENT,
        crate::ANNOTATION_DEVELOPMENT_TARGET,
        crate::ANNOTATION_COMMAND,
        crate::ANNOTATION_ENDPOINT
    );
    match runtime {
        Some(other) => Runtime::Unsupported(format!(
            "metadata.annotations[{}]: Unsupported value: {other:?}: embedded Plinth runs no containers; {how}",
            crate::ANNOTATION_RUNTIME
        )),
        None => Runtime::Unsupported(format!(
            "cannot pull package {:?}: embedded Plinth reaches no OCI registry; {how}",
            function
                .pointer("/spec/package")
                .and_then(Value::as_str)
                .unwrap_or("")
        )),
    }
}

/// A JSON array of strings, or words separated by white space.
fn parse_command(text: &str) -> Result<Vec<String>, String> {
    if text.starts_with('[') {
        serde_json::from_str::<Vec<String>>(text).map_err(|e| {
            format!("a command that starts with [ must be a JSON array of strings: {e}")
        })
    } else {
        Ok(text.split_whitespace().map(str::to_string).collect())
    }
}

struct Supervisor {
    runtime: Runtime,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

pub struct Host {
    client: Client,
    runner: Arc<Runner>,
    stopping: watch::Sender<bool>,
    supervisors: Mutex<HashMap<String, Supervisor>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether something accepts connections at HOST:PORT.
async fn answers(target: &str) -> bool {
    matches!(
        tokio::time::timeout(HEALTH_INTERVAL, tokio::net::TcpStream::connect(target)).await,
        Ok(Ok(_))
    )
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

fn log_lines(function: String, stream: impl AsyncRead + Unpin + Send + 'static) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!(target: "function", function = %function, "{line}");
        }
    });
}

/// Starts a function's command on a free port of 127.0.0.1, with its
/// output logged under its name, and returns once it accepts connections:
/// the child and its HOST:PORT. A child that is dropped is killed.
pub async fn start(
    name: &str,
    command: &[String],
    working_dir: Option<&str>,
) -> Result<(Child, String), String> {
    let Some((program, args)) = command.split_first() else {
        return Err("the function's command is empty".into());
    };
    let port = free_port()?;
    let address = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(program);
    cmd.args(args)
        .args(["--address", &address, "--insecure"])
        // Python buffers a pipe's output; the logs should come as they happen.
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so stopping it stops what it started too
        // (a wrapper script's server, say).
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = working_dir {
        cmd.current_dir(dir);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", command.join(" ")))?;
    if let Some(out) = child.stdout.take() {
        log_lines(name.to_string(), out);
    }
    if let Some(err) = child.stderr.take() {
        log_lines(name.to_string(), err);
    }
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if answers(&address).await {
            return Ok((child, address));
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the function exited before it served ({status})"));
        }
        if Instant::now() > deadline {
            runtime::process::kill(name, &mut child);
            return Err(format!(
                "the function did not listen on {address} within {START_TIMEOUT:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Host {
    pub fn new(client: Client, runner: Arc<Runner>) -> Arc<Host> {
        Arc::new(Host {
            client,
            runner,
            stopping: watch::channel(false).0,
            supervisors: Mutex::default(),
        })
    }

    /// Installs the Function CRD, then runs every Function until stopped.
    pub async fn run(self: Arc<Self>) {
        let mut delay = Duration::from_millis(200);
        while let Err(e) = runtime::crds::apply(&self.client, crate::crd::function()).await {
            tracing::warn!(error = %e, "cannot register the Function CRD; retrying");
            if *self.stopping.borrow() {
                return;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &api_resource());
        let mut seen: Vec<String> = Vec::new();
        let mut events = watcher(api, watcher::Config::default()).boxed();
        while let Some(event) = events.next().await {
            if *self.stopping.borrow() {
                return;
            }
            match event {
                Ok(watcher::Event::Init) => seen.clear(),
                Ok(watcher::Event::InitApply(f)) => {
                    seen.push(f.name_any());
                    self.ensure(&f);
                }
                Ok(watcher::Event::InitDone) => {
                    let gone: Vec<String> = lock(&self.supervisors)
                        .keys()
                        .filter(|n| !seen.contains(n))
                        .cloned()
                        .collect();
                    for name in gone {
                        self.stop_one(&name);
                        self.runner.remove(&name);
                    }
                }
                Ok(watcher::Event::Apply(f)) => self.ensure(&f),
                Ok(watcher::Event::Delete(f)) => {
                    let name = f.name_any();
                    self.stop_one(&name);
                    self.runner.remove(&name);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "watching functions failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Stops every function Plinth started, and waits for them.
    pub async fn shutdown(&self) {
        self.stopping.send_replace(true);
        let tasks: Vec<JoinHandle<()>> = lock(&self.supervisors)
            .drain()
            .map(|(_, s)| s.task)
            .collect();
        for task in tasks {
            let _ = tokio::time::timeout(STOP_GRACE + Duration::from_secs(2), task).await;
        }
    }

    fn stop_one(&self, name: &str) -> Option<JoinHandle<()>> {
        let s = lock(&self.supervisors).remove(name)?;
        s.stop.send_replace(true);
        Some(s.task)
    }

    fn ensure(self: &Arc<Self>, function: &DynamicObject) {
        if function.metadata.deletion_timestamp.is_some() {
            return;
        }
        let name = function.name_any();
        let value = serde_json::to_value(function).unwrap_or(Value::Null);
        let runtime = runtime_of(&value);
        if lock(&self.supervisors).get(&name).map(|s| &s.runtime) == Some(&runtime) {
            return;
        }
        let previous = self.stop_one(&name);
        if previous.is_some() {
            // Calls wait for the new runtime rather than reach the old one.
            self.runner
                .unregister(&name, "restarting: the Function's annotations changed");
        }
        let (stop, stopped) = watch::channel(false);
        let host = self.clone();
        let (task_name, task_runtime) = (name.clone(), runtime.clone());
        let mut host_stopping = self.stopping.subscribe();
        let task = tokio::spawn(async move {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            let mut stopped = stopped;
            let stop_requested = async move {
                tokio::select! {
                    _ = stopped.wait_for(|s| *s) => {}
                    _ = host_stopping.wait_for(|s| *s) => {}
                }
            };
            host.supervise(task_name, task_runtime, stop_requested)
                .await;
        });
        lock(&self.supervisors).insert(
            name,
            Supervisor {
                runtime,
                stop,
                task,
            },
        );
    }

    async fn supervise(
        &self,
        name: String,
        runtime: Runtime,
        stop: impl std::future::Future<Output = ()> + Send,
    ) {
        tokio::pin!(stop);
        match runtime {
            Runtime::Unsupported(why) => {
                self.runner.unregister(&name, why.clone());
                self.set_status(
                    &name,
                    &[
                        Condition::new(
                            names::condition::INSTALLED,
                            false,
                            names::reason::INSTALL_FAILED,
                            why.clone(),
                        ),
                        Condition::new(
                            names::condition::HEALTHY,
                            false,
                            names::reason::UNHEALTHY,
                            why.clone(),
                        ),
                    ],
                    json!({"lastError": why}),
                )
                .await;
            }
            Runtime::Development { target } => {
                tokio::select! {
                    _ = self.development(&name, &target) => {}
                    _ = &mut stop => {}
                }
            }
            Runtime::Remote {
                endpoint,
                secret_namespace,
                secret_name,
                server_name,
            } => {
                let remote = self.remote(
                    &name,
                    &endpoint,
                    &secret_namespace,
                    &secret_name,
                    &server_name,
                );
                tokio::select! {
                    _ = remote => {}
                    _ = &mut stop => {}
                }
            }
            Runtime::Process {
                command,
                working_dir,
            } => {
                let mut backoff =
                    Backoff::new(FIRST_RESTART_DELAY, MAX_RESTART_DELAY, STABLE_AFTER);
                let mut restarts: u64 = 0;
                let mut served = false;
                loop {
                    let started = Instant::now();
                    let error = match self
                        .process_once(
                            &name,
                            &command,
                            working_dir.as_deref(),
                            restarts,
                            &mut served,
                            &mut stop,
                        )
                        .await
                    {
                        Ok(()) => return,
                        Err(e) => e,
                    };
                    tracing::warn!(function = %name, error = %error, "function is down; restarting it");
                    self.runner.unregister(&name, error.clone());
                    restarts += 1;
                    let unhealthy = Condition::new(
                        names::condition::HEALTHY,
                        false,
                        names::reason::UNHEALTHY,
                        error.clone(),
                    );
                    // Until it has served once it is not installed either,
                    // so a wait for Installed sees why.
                    let conditions = if served {
                        vec![unhealthy]
                    } else {
                        vec![
                            Condition::new(
                                names::condition::INSTALLED,
                                false,
                                names::reason::INSTALL_FAILED,
                                error.clone(),
                            ),
                            unhealthy,
                        ]
                    };
                    self.set_status(
                        &name,
                        &conditions,
                        json!({"lastError": error, "restarts": restarts}),
                    )
                    .await;
                    tokio::select! {
                        _ = tokio::time::sleep(backoff.next(started)) => {}
                        _ = &mut stop => return,
                    }
                }
            }
        }
    }

    /// A function served elsewhere, over mTLS: the client certificate and
    /// CA come from a Secret, read again until it exists and is complete.
    async fn remote(
        &self,
        name: &str,
        endpoint: &str,
        namespace: &str,
        secret: &str,
        server_name: &str,
    ) {
        loop {
            match self.tls(namespace, secret, server_name).await {
                Ok(tls) => match self.runner.register_tls(name, endpoint, tls) {
                    Ok(()) => break,
                    Err(e) => {
                        self.install_failed(name, e.to_string()).await;
                        return;
                    }
                },
                Err(why) => {
                    self.runner.unregister(name, why.clone());
                    self.install_failed(name, why).await;
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
        self.watch_address(name, endpoint).await;
    }

    async fn tls(
        &self,
        namespace: &str,
        name: &str,
        server_name: &str,
    ) -> Result<tonic::transport::ClientTlsConfig, String> {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let secrets: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(self.client.clone(), namespace);
        let secret = secrets
            .get_opt(name)
            .await
            .map_err(|e| format!("cannot read Secret {namespace}/{name}: {e}"))?
            .ok_or_else(|| {
                format!(
                    "Secret {namespace}/{name} does not exist; it holds the client's tls.crt and tls.key and the ca.crt of a function reached over mTLS ({})",
                    crate::ANNOTATION_TLS_SECRET
                )
            })?;
        let data = secret.data.unwrap_or_default();
        let key = |k: &str| {
            data.get(k).map(|v| v.0.clone()).ok_or_else(|| {
                format!(
                    "Secret {namespace}/{name} has no {k}: it needs tls.crt, tls.key and ca.crt"
                )
            })
        };
        Ok(ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(key("ca.crt")?))
            .identity(Identity::from_pem(key("tls.crt")?, key("tls.key")?))
            .domain_name(server_name))
    }

    async fn install_failed(&self, name: &str, why: String) {
        self.set_status(
            name,
            &[Condition::new(
                names::condition::INSTALLED,
                false,
                names::reason::INSTALL_FAILED,
                why.clone(),
            )],
            json!({"lastError": why}),
        )
        .await;
    }

    /// A function someone else runs: dialled without TLS; healthy while
    /// it accepts connections.
    async fn development(&self, name: &str, target: &str) {
        if let Err(e) = self.runner.register_insecure(name, target) {
            self.install_failed(name, e.to_string()).await;
            return;
        }
        self.watch_address(name, target).await;
    }

    /// Installed, and Healthy while something accepts connections at
    /// `target`; said again only when that changes.
    async fn watch_address(&self, name: &str, target: &str) {
        let mut healthy: Option<bool> = None;
        loop {
            let now = answers(target).await;
            if healthy != Some(now) {
                let health = if now {
                    Condition::new(names::condition::HEALTHY, true, names::reason::HEALTHY, "")
                } else {
                    Condition::new(
                        names::condition::HEALTHY,
                        false,
                        names::reason::UNHEALTHY,
                        format!("nothing answers at {target}"),
                    )
                };
                self.set_status(
                    name,
                    &[
                        Condition::new(
                            names::condition::INSTALLED,
                            true,
                            names::reason::INSTALLED,
                            "",
                        ),
                        health,
                    ],
                    json!({"address": target}),
                )
                .await;
                healthy = Some(now);
            }
            tokio::time::sleep(HEALTH_INTERVAL).await;
        }
    }

    /// One run of a supervised function: `Ok` once stopped on request,
    /// else why it went down.
    async fn process_once(
        &self,
        name: &str,
        command: &[String],
        working_dir: Option<&str>,
        restarts: u64,
        served: &mut bool,
        stop: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    ) -> Result<(), String> {
        let started = start(name, command, working_dir);
        tokio::pin!(started);
        let (mut child, address) = tokio::select! {
            started = &mut started => started?,
            _ = &mut *stop => return Ok(()),
        };
        self.runner
            .register_insecure(name, &address)
            .map_err(|e| e.to_string())?;
        *served = true;
        tracing::info!(function = %name, address = %address, "function is serving");
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
            json!({"address": address, "restarts": restarts}),
        )
        .await;
        self.watch(name, &address, &mut child, stop).await
    }

    async fn watch(
        &self,
        name: &str,
        address: &str,
        child: &mut Child,
        stop: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    ) -> Result<(), String> {
        let mut failures = 0;
        loop {
            tokio::select! {
                status = child.wait() => {
                    return Err(match status {
                        Ok(s) => format!("the function process exited ({s})"),
                        Err(e) => format!("cannot wait for the function process: {e}"),
                    });
                }
                _ = &mut *stop => {
                    terminate(name, child, STOP_GRACE).await;
                    return Ok(());
                }
                _ = tokio::time::sleep(HEALTH_INTERVAL) => {}
            }
            if answers(address).await {
                failures = 0;
                continue;
            }
            failures += 1;
            if failures >= HEALTH_FAILURES {
                runtime::process::kill(name, child);
                return Err(format!(
                    "the function stopped accepting connections on {address}"
                ));
            }
        }
    }

    async fn set_status(&self, name: &str, updates: &[Condition<'_>], extra: Value) {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &api_resource());
        if let Err(e) = conditions::patch_status(&api, name, updates, extra).await {
            tracing::warn!(function = %name, error = %e, "cannot update the function's status");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn annotated(pairs: &[(&str, &str)]) -> Value {
        let annotations: serde_json::Map<String, Value> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        json!({"metadata": {"name": "f", "annotations": annotations}, "spec": {"package": "xpkg.upbound.io/f:v1"}})
    }

    #[test]
    fn annotations_choose_the_runtime() {
        let mut cases: Vec<(&str, Value, Runtime)> = vec![
            (
                "crossplane render's Development runtime is dialled at its target",
                annotated(&[
                    (crate::ANNOTATION_RUNTIME, "Development"),
                    (crate::ANNOTATION_DEVELOPMENT_TARGET, "localhost:9443"),
                ]),
                Runtime::Development {
                    target: "localhost:9443".into(),
                },
            ),
            (
                "a command to supervise may be words",
                annotated(&[(crate::ANNOTATION_COMMAND, "python3 fn.py")]),
                Runtime::Process {
                    command: vec!["python3".into(), "fn.py".into()],
                    working_dir: None,
                },
            ),
            (
                "or a JSON array, for arguments with spaces",
                annotated(&[
                    (crate::ANNOTATION_COMMAND, r#"["/opt/my fn/run", "-v"]"#),
                    (crate::ANNOTATION_WORKING_DIR, "/opt"),
                ]),
                Runtime::Process {
                    command: vec!["/opt/my fn/run".into(), "-v".into()],
                    working_dir: Some("/opt".into()),
                },
            ),
        ];
        cases.push((
            "a function served elsewhere is reached over mTLS with the default Secret",
            annotated(&[(
                crate::ANNOTATION_ENDPOINT,
                "function-x.crossplane-system:9443",
            )]),
            Runtime::Remote {
                endpoint: "function-x.crossplane-system:9443".into(),
                secret_namespace: "plinth-system".into(),
                secret_name: "plinth-function-tls-client".into(),
                server_name: "function-x.crossplane-system".into(),
            },
        ));
        cases.push((
            "or with a Secret and server name of its own",
            annotated(&[
                (crate::ANNOTATION_ENDPOINT, "127.0.0.1:9443"),
                (crate::ANNOTATION_TLS_SECRET, "fns/client"),
                (crate::ANNOTATION_TLS_SERVER_NAME, "fn.example.org"),
            ]),
            Runtime::Remote {
                endpoint: "127.0.0.1:9443".into(),
                secret_namespace: "fns".into(),
                secret_name: "client".into(),
                server_name: "fn.example.org".into(),
            },
        ));
        for (reason, function, want) in cases {
            assert_eq!(runtime_of(&function), want, "{reason}");
        }
    }

    #[test]
    fn what_cannot_run_says_which_annotation_to_set() {
        let cases = [
            (
                "no annotations: no registry to pull from",
                annotated(&[]),
                "embedded Plinth reaches no OCI registry",
            ),
            (
                "Development without a target",
                annotated(&[(crate::ANNOTATION_RUNTIME, "Development")]),
                "runtime-development-target]: Required value",
            ),
            (
                "an empty command",
                annotated(&[(crate::ANNOTATION_COMMAND, "[]")]),
                "function-command]: Invalid value: the command is empty",
            ),
            (
                "a command that is broken JSON",
                annotated(&[(crate::ANNOTATION_COMMAND, "[\"a\"")]),
                "function-command]: Invalid value",
            ),
            (
                "crossplane render's Docker runtime: no engine here",
                annotated(&[(crate::ANNOTATION_RUNTIME, "Docker")]),
                "Unsupported value: \"Docker\": embedded Plinth runs no containers",
            ),
        ];
        for (reason, function, want) in cases {
            match runtime_of(&function) {
                Runtime::Unsupported(why) => assert!(why.contains(want), "{reason}: {why}"),
                other => panic!("{reason}: want Unsupported, got {other:?}"),
            }
        }
    }
}

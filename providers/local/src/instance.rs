//! `Instance`: a local process the provider starts and supervises. It is
//! Ready while it runs, and restarted when it dies, whoever killed it. A
//! process that keeps exiting soon after it starts is crash-looping: it is
//! restarted with growing delays and reported Unavailable, with its last
//! exit status, until a run of it lasts.
//!
//! Each process's pid is also written to a pid file, so a provider that was
//! itself restarted stops the process its predecessor left behind before
//! starting a new one, instead of running two.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use provider_sdk::serde_json::{json, Value};
use provider_sdk::{
    async_trait, ConnectionDetails, Created, ExternalResource, KindSchema, Observation,
    ProviderError, Readiness, Request,
};
use tokio::process::Command;
use tokio::task::JoinHandle;

/// Where pid files live; a temp dir when unset.
pub const STATE_DIR_ENV: &str = "PLINTH_LOCAL_STATE_DIR";

/// A run shorter than this counts as a crash: the next one starts after a
/// longer delay, and the Instance is not Ready until a run outlasts it.
const MIN_HEALTHY_RUN: Duration = Duration::from_secs(3);
/// A process this young, that has not run before, is still starting: it is
/// reported Creating, so the control plane looks again in a moment and a
/// process that dies at once (a bad flag) is never reported Ready.
const STARTUP_GRACE: Duration = Duration::from_secs(1);
/// The longest delay between restarts of a crash-looping process.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);

/// How the supervised process is doing, shared between its supervising
/// task (which writes it) and Observe (which reads it).
#[derive(Debug, Default)]
struct Health {
    pid: Option<u32>,
    restarts: u32,
    /// When the current run started.
    started: Option<Instant>,
    /// The last run's exit status and how long it lasted.
    last_exit: Option<(String, Duration)>,
}

struct Supervised {
    spec: Value,
    health: Arc<Mutex<Health>>,
    task: JoinHandle<()>,
}

impl Drop for Supervised {
    fn drop(&mut self) {
        // The task owns the child with kill_on_drop, so aborting it stops the process.
        self.task.abort();
    }
}

#[derive(Default)]
pub struct Instance {
    running: Mutex<HashMap<String, Supervised>>,
}

/// Where pid files go: `PLINTH_LOCAL_STATE_DIR`, else the private state
/// directory the host gives this provider (so two control planes on one
/// machine never stop each other's processes), else a temp dir.
fn state_dir() -> PathBuf {
    std::env::var_os(STATE_DIR_ENV)
        .map(PathBuf::from)
        .or_else(|| provider_sdk::handshake::state_dir().map(|d| d.join("instances")))
        .unwrap_or_else(|| std::env::temp_dir().join("plinth-local-instances"))
}

fn pid_file(name: &str) -> PathBuf {
    state_dir().join(format!("{name}.pid"))
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Stops a process a previous provider left running.
async fn stop_leftover(name: &str) {
    let Ok(text) = std::fs::read_to_string(pid_file(name)) else {
        return;
    };
    if let Ok(pid) = text.trim().parse::<u32>() {
        if alive(pid) {
            let _ = Command::new("kill").arg(pid.to_string()).status().await;
        }
    }
    let _ = std::fs::remove_file(pid_file(name));
}

fn connection(req: &Request) -> ConnectionDetails {
    let port = req.field("port").and_then(Value::as_i64).unwrap_or(0);
    [
        ("host".to_string(), b"127.0.0.1".to_vec()),
        ("port".to_string(), port.to_string().into_bytes()),
    ]
    .into()
}

/// The program and its arguments: `argv` (the whole command line, as a
/// list) or `command` (the program alone), then `args`.
fn argv(spec: &Value) -> Result<Vec<String>, ProviderError> {
    let missing = || {
        ProviderError::terminal(
            "spec.forProvider.argv (the program and its arguments) or spec.forProvider.command (the program) is required",
        )
    };
    let mut line: Vec<String> = match spec.get("argv").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list
            .iter()
            .map(|a| {
                a.as_str().map(str::to_string).ok_or_else(|| {
                    ProviderError::terminal("spec.forProvider.argv must list strings")
                })
            })
            .collect::<Result<_, _>>()?,
        // `command` is the program, or (as in a Kubernetes container) the
        // program and its first arguments.
        _ => match spec.get("command") {
            Some(Value::String(program)) if !program.is_empty() => vec![program.clone()],
            Some(Value::Array(list)) if !list.is_empty() => list
                .iter()
                .map(|a| {
                    a.as_str().map(str::to_string).ok_or_else(|| {
                        ProviderError::terminal(
                            "spec.forProvider.command must be a string or a list of strings",
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(Value::String(_) | Value::Array(_)) | None | Some(Value::Null) => {
                return Err(missing())
            }
            Some(_) => {
                return Err(ProviderError::terminal(
                    "spec.forProvider.command must be a string or a list of strings",
                ))
            }
        },
    };
    if line[0].is_empty() {
        return Err(missing());
    }
    line.extend(
        spec.get("args")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|a| a.as_str().unwrap_or_default().to_string()),
    );
    Ok(line)
}

/// `env` as a list of `{name, value}` (a container's shape) or as a map of
/// names to values.
fn environment(spec: &Value) -> Result<Vec<(String, String)>, ProviderError> {
    let wrong = || {
        ProviderError::terminal(
            "spec.forProvider.env must be a list of {name, value} or a map of names to string values",
        )
    };
    match spec.get("env") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(list)) => list
            .iter()
            .map(|var| {
                let name = var.get("name").and_then(Value::as_str).ok_or_else(wrong)?;
                let value = match var.get("value") {
                    None | Some(Value::Null) => "",
                    Some(v) => v.as_str().ok_or_else(wrong)?,
                };
                Ok((name.to_string(), value.to_string()))
            })
            .collect(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(name, value)| Ok((name.clone(), value.as_str().ok_or_else(wrong)?.to_string())))
            .collect(),
        Some(_) => Err(wrong()),
    }
}

fn command(spec: &Value) -> Result<Command, ProviderError> {
    let line = argv(spec)?;
    let mut cmd = Command::new(&line[0]);
    cmd.args(&line[1..]);
    for (name, value) in environment(spec)? {
        cmd.env(name, value);
    }
    if let Some(port) = spec.get("port").and_then(Value::as_i64) {
        cmd.env("PORT", port.to_string());
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    Ok(cmd)
}

fn supervise(name: String, spec: Value) -> Result<Supervised, ProviderError> {
    // Fail now, not in the loop, on a spec that can never start.
    command(&spec)?;
    let health = Arc::new(Mutex::new(Health::default()));
    let (shared, task_spec) = (health.clone(), spec.clone());
    let task = tokio::spawn(async move {
        let update = |h: &Arc<Mutex<Health>>, f: &dyn Fn(&mut Health)| {
            // A poisoned lock only means a panic elsewhere; the data is still usable.
            let mut guard = h.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard);
        };
        let mut delay = Duration::from_millis(200);
        loop {
            let Ok(mut cmd) = command(&task_spec) else {
                return;
            };
            match cmd.spawn() {
                Ok(mut child) => {
                    let started = Instant::now();
                    let id = child.id();
                    update(&shared, &|h| {
                        h.pid = id;
                        h.started = Some(started);
                    });
                    if let Some(id) = id {
                        let _ = std::fs::create_dir_all(state_dir());
                        let _ = std::fs::write(pid_file(&name), id.to_string());
                    }
                    let status = match child.wait().await {
                        Ok(s) => s.to_string(),
                        Err(e) => format!("unknown ({e})"),
                    };
                    let lasted = started.elapsed();
                    tracing::warn!(instance = %name, %status, ?lasted, "process exited; restarting it");
                    update(&shared, &|h| h.last_exit = Some((status.clone(), lasted)));
                    // A process that dies at once would otherwise be restarted
                    // five times a second for ever.
                    delay = if lasted < MIN_HEALTHY_RUN {
                        (delay * 2).min(MAX_RESTART_DELAY)
                    } else {
                        Duration::from_millis(200)
                    };
                }
                Err(e) => {
                    tracing::warn!(instance = %name, error = %e, "cannot start the process");
                    let why = format!("cannot be started: {e}");
                    update(&shared, &|h| {
                        h.last_exit = Some((why.clone(), Duration::ZERO))
                    });
                    delay = (delay * 2).min(MAX_RESTART_DELAY);
                }
            }
            update(&shared, &|h| {
                h.pid = None;
                h.started = None;
                h.restarts += 1;
            });
            tokio::time::sleep(delay).await;
        }
    });
    Ok(Supervised { spec, health, task })
}

/// Why a supervised process is not serving, if it is not: dead between
/// restarts, alive but crash-looping (its last run was short and this one
/// has not yet outlasted it), or only just started.
fn unhealthy(h: &Health) -> Option<(Readiness, String)> {
    let last = h
        .last_exit
        .as_ref()
        .map(|(status, lasted)| format!("{status} after {:.1} s", lasted.as_secs_f64()))
        .unwrap_or_else(|| "not started yet".into());
    let alive = h.pid.filter(|p| alive(*p)).is_some();
    if !alive {
        return Some((
            Readiness::Unavailable,
            format!(
                "the process is not running: {last}; restarting it (restarts: {})",
                h.restarts
            ),
        ));
    }
    let age = h.started.map(|s| s.elapsed()).unwrap_or_default();
    let crashed = h
        .last_exit
        .as_ref()
        .is_some_and(|(_, lasted)| *lasted < MIN_HEALTHY_RUN);
    if crashed && age < MIN_HEALTHY_RUN {
        return Some((
            Readiness::Unavailable,
            format!(
                "the process keeps exiting soon after it starts (last: {last}; restarts: {})",
                h.restarts
            ),
        ));
    }
    if h.last_exit.is_none() && age < STARTUP_GRACE {
        return Some((Readiness::Creating, "the process is starting".into()));
    }
    None
}

impl Instance {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Supervised>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn start(&self, req: &Request) -> Result<(), ProviderError> {
        let name = req.external_name_or_name().to_string();
        let previous = self.lock().remove(&name);
        drop(previous);
        stop_leftover(&name).await;
        let supervised = supervise(name.clone(), req.for_provider.clone())?;
        self.lock().insert(name, supervised);
        Ok(())
    }
}

#[async_trait]
impl ExternalResource for Instance {
    fn schema(&self) -> KindSchema {
        KindSchema {
            group: "compute.local.plinth.dev".into(),
            version: "v1alpha1".into(),
            kind: "Instance".into(),
            plural: "instances".into(),
            description: "A local process that the provider starts, supervises and restarts."
                .into(),
            for_provider: json!({
                "type": "object",
                "properties": {
                    "argv": {"type": "array", "items": {"type": "string"}, "description": "The program and its arguments, as one list (the form a claim's command takes)."},
                    // Either shape is accepted, so these two carry no type;
                    // Validate names the field when neither fits.
                    "command": {"x-kubernetes-preserve-unknown-fields": true, "description": "The program to run (a string), or the program and its first arguments (a list of strings); used when argv is not given."},
                    "args": {"type": "array", "items": {"type": "string"}},
                    "env": {"x-kubernetes-preserve-unknown-fields": true, "description": "Environment variables: a list of {name, value}, or a map of names to values."},
                    "port": {"type": "integer", "minimum": 1, "maximum": 65535, "description": "The port it listens on; also given to it as $PORT."}
                }
            }),
            at_provider: json!({"type": "object", "properties": {"pid": {"type": "integer"}, "restarts": {"type": "integer"}, "lastExit": {"type": "string"}}}),
            connection_secret_keys: vec!["host".into(), "port".into()],
            deterministic_external_name: true,
        }
    }

    async fn validate(&self, req: &Request) -> Vec<(String, String)> {
        match command(&req.for_provider) {
            Ok(_) => Vec::new(),
            Err(e) if e.to_string().contains("spec.forProvider.env") => {
                vec![("env".into(), e.to_string())]
            }
            Err(e) => vec![("command".into(), e.to_string())],
        }
    }

    async fn observe(&self, req: &Request) -> Result<Observation, ProviderError> {
        let running = self.lock();
        let Some(s) = running.get(req.external_name_or_name()) else {
            return Ok(Observation::absent());
        };
        let health = s.health.lock().unwrap_or_else(|e| e.into_inner());
        let diff = if s.spec == req.for_provider {
            String::new()
        } else {
            "the process spec changed".to_string()
        };
        let mut at_provider = json!({"pid": health.pid, "restarts": health.restarts});
        if let Some((status, _)) = &health.last_exit {
            at_provider["lastExit"] = json!(status);
        }
        let observation = Observation::available(at_provider)
            .with_diff(diff)
            .with_connection(connection(req));
        Ok(match unhealthy(&health) {
            None => observation,
            Some((readiness, why)) => observation.with_readiness(readiness, why),
        })
    }

    async fn create(&self, req: &Request) -> Result<Created, ProviderError> {
        if !self.lock().contains_key(req.external_name_or_name()) {
            self.start(req).await?;
        }
        Ok(Created {
            external_name: req.external_name_or_name().to_string(),
            connection: connection(req),
        })
    }

    async fn update(&self, req: &Request) -> Result<ConnectionDetails, ProviderError> {
        self.start(req).await?;
        Ok(connection(req))
    }

    async fn delete(&self, req: &Request) -> Result<(), ProviderError> {
        let name = req.external_name_or_name().to_string();
        let removed = self.lock().remove(&name);
        drop(removed);
        stop_leftover(&name).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &str, for_provider: Value) -> Request {
        Request {
            name: name.into(),
            uid: format!("uid-{name}"),
            external_name: String::new(),
            for_provider,
            secrets: Default::default(),
            secret_seed: Vec::new(),
            config: Default::default(),
        }
    }

    async fn observe_until(
        instance: &Instance,
        req: &Request,
        done: impl Fn(&Observation) -> bool,
    ) -> Observation {
        for _ in 0..100 {
            let o = instance.observe(req).await.expect("observe");
            if done(&o) {
                return o;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the Instance never reached the expected state");
    }

    #[tokio::test]
    async fn argv_runs_the_whole_command_line() {
        let state = tempfile::tempdir().expect("state dir");
        std::env::set_var(STATE_DIR_ENV, state.path());
        let marker = state.path().join("ran");
        let script = format!("echo \"$0 $1\" > {} && exec sleep 30", marker.display());
        let instance = Instance::default();
        let req = request(
            "argv",
            json!({"argv": ["sh", "-c", script, "first", "second"], "port": 18282}),
        );
        instance.create(&req).await.expect("create");
        let o = observe_until(&instance, &req, |o| {
            o.readiness == Readiness::Available && marker.exists()
        })
        .await;
        assert!(
            o.at_provider["pid"].as_u64().is_some(),
            "{:?}",
            o.at_provider
        );
        let written = std::fs::read_to_string(&marker).expect("marker");
        assert_eq!(written.trim(), "first second");
        instance.delete(&req).await.expect("delete");
    }

    #[tokio::test]
    async fn a_crash_looping_process_is_not_ready() {
        let state = tempfile::tempdir().expect("state dir");
        std::env::set_var(STATE_DIR_ENV, state.path());
        let instance = Instance::default();
        let req = request("crashy", json!({"argv": ["sh", "-c", "exit 3"]}));
        instance.create(&req).await.expect("create");
        // Looked at straight away it is starting, not Ready.
        let first = instance.observe(&req).await.expect("observe");
        assert_ne!(first.readiness, Readiness::Available, "{}", first.message);
        let o = observe_until(&instance, &req, |o| {
            o.at_provider["restarts"].as_u64() >= Some(2)
        })
        .await;
        assert_eq!(o.readiness, Readiness::Unavailable);
        assert!(o.message.contains("exit status: 3"), "{}", o.message);
        assert_eq!(o.at_provider["lastExit"], "exit status: 3");
        // And it stays so while it keeps crashing, whenever it is looked at.
        for _ in 0..10 {
            let o = instance.observe(&req).await.expect("observe");
            assert_eq!(o.readiness, Readiness::Unavailable, "{}", o.message);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        instance.delete(&req).await.expect("delete");
    }

    #[tokio::test]
    async fn a_spec_without_a_program_is_refused() {
        let instance = Instance::default();
        let problems = instance
            .validate(&request("none", json!({"args": ["x"]})))
            .await;
        assert_eq!(problems.len(), 1);
        assert!(problems[0].1.contains("argv"), "{problems:?}");
    }
}

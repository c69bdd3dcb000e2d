//! `Instance`: a local process the provider starts and supervises. It is
//! Ready while it runs, and restarted when it dies, whoever killed it.
//!
//! Each process's pid is also written to a pid file, so a provider that was
//! itself restarted stops the process its predecessor left behind before
//! starting a new one, instead of running two.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use provider_sdk::serde_json::{json, Value};
use provider_sdk::{
    async_trait, ConnectionDetails, Created, ExternalResource, KindSchema, Observation,
    ProviderError, Readiness, Request,
};
use tokio::process::Command;
use tokio::task::JoinHandle;

/// Where pid files live; a temp dir when unset.
pub const STATE_DIR_ENV: &str = "PLINTH_LOCAL_STATE_DIR";

struct Supervised {
    spec: Value,
    pid: Arc<Mutex<Option<u32>>>,
    restarts: Arc<Mutex<u32>>,
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

fn state_dir() -> PathBuf {
    std::env::var_os(STATE_DIR_ENV)
        .map(PathBuf::from)
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

fn command(spec: &Value) -> Result<Command, ProviderError> {
    let program = spec
        .get("command")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            ProviderError::terminal("spec.forProvider.command is required: the program to run")
        })?;
    let mut cmd = Command::new(program);
    for arg in spec
        .get("args")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        cmd.arg(arg.as_str().unwrap_or_default());
    }
    for var in spec
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(name) = var.get("name").and_then(Value::as_str) {
            cmd.env(name, var.get("value").and_then(Value::as_str).unwrap_or(""));
        }
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
    let pid = Arc::new(Mutex::new(None));
    let restarts = Arc::new(Mutex::new(0));
    let (pid_slot, restart_count, task_spec) = (pid.clone(), restarts.clone(), spec.clone());
    let task = tokio::spawn(async move {
        let mut delay = Duration::from_millis(200);
        loop {
            let Ok(mut cmd) = command(&task_spec) else {
                return;
            };
            match cmd.spawn() {
                Ok(mut child) => {
                    if let Some(id) = child.id() {
                        *pid_slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(id);
                        let _ = std::fs::create_dir_all(state_dir());
                        let _ = std::fs::write(pid_file(&name), id.to_string());
                    }
                    let status = child.wait().await;
                    tracing::warn!(instance = %name, ?status, "process exited; restarting it");
                    delay = Duration::from_millis(200);
                }
                Err(e) => {
                    tracing::warn!(instance = %name, error = %e, "cannot start the process");
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
            *pid_slot.lock().unwrap_or_else(|e| e.into_inner()) = None;
            *restart_count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            tokio::time::sleep(delay).await;
        }
    });
    Ok(Supervised {
        spec,
        pid,
        restarts,
        task,
    })
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
                "required": ["command"],
                "properties": {
                    "command": {"type": "string", "description": "The program to run."},
                    "args": {"type": "array", "items": {"type": "string"}},
                    "env": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "value": {"type": "string"}}}},
                    "port": {"type": "integer", "minimum": 1, "maximum": 65535, "description": "The port it listens on; also given to it as $PORT."}
                }
            }),
            at_provider: json!({"type": "object", "properties": {"pid": {"type": "integer"}, "restarts": {"type": "integer"}}}),
            connection_secret_keys: vec!["host".into(), "port".into()],
            deterministic_external_name: true,
        }
    }

    async fn validate(&self, req: &Request) -> Vec<(String, String)> {
        match command(&req.for_provider) {
            Ok(_) => Vec::new(),
            Err(e) => vec![("command".into(), e.to_string())],
        }
    }

    async fn observe(&self, req: &Request) -> Result<Observation, ProviderError> {
        let running = self.lock();
        let Some(s) = running.get(req.external_name_or_name()) else {
            return Ok(Observation::absent());
        };
        let pid = *s.pid.lock().unwrap_or_else(|e| e.into_inner());
        let restarts = *s.restarts.lock().unwrap_or_else(|e| e.into_inner());
        let diff = if s.spec == req.for_provider {
            String::new()
        } else {
            "the process spec changed".to_string()
        };
        let observation = Observation::available(json!({"pid": pid, "restarts": restarts}))
            .with_diff(diff)
            .with_connection(connection(req));
        Ok(match pid.filter(|p| alive(*p)) {
            Some(_) => observation,
            None => observation.with_readiness(
                Readiness::Unavailable,
                format!("the process is restarting (restarts: {restarts})"),
            ),
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

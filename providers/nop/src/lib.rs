//! The nop provider: `NopResource`s that exist only in this process's memory,
//! become Ready after a configurable delay and fail at a configurable rate.
//! It is for scale and fault benchmarks, after crossplane-contrib/provider-nop,
//! and the smallest complete example of a provider.
//!
//! With `PLINTH_NOP_JOURNAL=FILE`, every create, update and delete is also
//! appended to FILE (one JSON object per line) before it is answered, and a
//! new process replays FILE: the "external system" then outlives the
//! process, as a real one does, and failover tests count the creates.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use provider_sdk::serde_json::{json, Value};
use provider_sdk::{
    async_trait, ConnectionDetails, Created, ExternalResource, KindSchema, Observation, Provider,
    ProviderError, Readiness, Request,
};

/// What exists "externally": spec and creation time, by external name.
type Store = HashMap<String, (Value, Instant)>;

/// Where the journal is named.
pub const JOURNAL_ENV: &str = "PLINTH_NOP_JOURNAL";

#[derive(Default)]
pub struct NopResource {
    resources: Mutex<Store>,
    journal: Option<std::path::PathBuf>,
}

impl NopResource {
    /// Fails the call at the resource's `failureRate`.
    async fn maybe_fail(req: &Request) -> Result<(), ProviderError> {
        // A provider that takes this long to answer: past the control
        // plane's --provider-timeout it looks hung.
        if let Some(delay) = req.field("answerAfterSeconds").and_then(Value::as_f64) {
            if delay > 0.0 && delay.is_finite() {
                tokio::time::sleep(Duration::from_secs_f64(delay.min(86_400.0))).await;
            }
        }
        let rate = req
            .field("failureRate")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        if rate > 0.0 && rand::random::<f64>() < rate {
            return Err(ProviderError::retryable(
                "nop: injected failure (spec.forProvider.failureRate)",
            ));
        }
        Ok(())
    }

    /// The resources the journal at `path` holds, and the journal kept on.
    pub fn with_journal(path: std::path::PathBuf) -> NopResource {
        NopResource {
            resources: Mutex::new(replay(&path)),
            journal: Some(path),
        }
    }

    /// Reads the journal again, for resources another process (another
    /// replica's provider) created since: what was already known keeps
    /// its creation time.
    fn refresh(&self, store: &mut Store) {
        let Some(path) = &self.journal else {
            return;
        };
        let mut fresh = replay(path);
        for (name, entry) in fresh.iter_mut() {
            if let Some(known) = store.get(name) {
                entry.1 = known.1;
            }
        }
        *store = fresh;
    }

    /// Appends one change to the journal, if there is one.
    fn record(&self, op: &str, name: &str, fields: &Value) -> Result<(), ProviderError> {
        use std::io::Write;
        let Some(path) = &self.journal else {
            return Ok(());
        };
        // One write of the whole line: with O_APPEND a single write lands
        // whole, whereas `writeln!` may write the text and the newline apart
        // and let another replica's provider slip its line in between.
        let mut line = json!({"op": op, "name": name, "fields": fields}).to_string();
        line.push('\n');
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .map_err(|e| ProviderError::retryable(format!("nop: cannot write the journal: {e}")))
    }

    fn store(&self) -> Result<std::sync::MutexGuard<'_, Store>, ProviderError> {
        self.resources
            .lock()
            .map_err(|_| ProviderError::retryable("nop: state lock poisoned"))
    }
}

/// The resources a journal holds after all its changes.
fn replay(path: &std::path::Path) -> Store {
    let mut store = Store::new();
    if let Ok(text) = std::fs::read_to_string(path) {
        for entry in text
            .lines()
            .filter_map(|l| provider_sdk::serde_json::from_str::<Value>(l).ok())
        {
            let name = entry["name"].as_str().unwrap_or_default().to_string();
            match entry["op"].as_str() {
                Some("create") | Some("update") => {
                    store.insert(name, (entry["fields"].clone(), Instant::now()));
                }
                Some("delete") => {
                    store.remove(&name);
                }
                _ => {}
            }
        }
    }
    store
}

#[async_trait]
impl ExternalResource for NopResource {
    fn schema(&self) -> KindSchema {
        KindSchema {
            group: "nop.plinth.dev".into(),
            version: "v1alpha1".into(),
            kind: "NopResource".into(),
            plural: "nopresources".into(),
            description: "A resource that exists only in the nop provider's memory.".into(),
            for_provider: json!({
                "type": "object",
                "properties": {
                    "readyAfterSeconds": {"type": "integer", "minimum": 0, "description": "Seconds from creation until Ready."},
                    "failureRate": {"type": "number", "minimum": 0, "maximum": 1, "description": "Chance that any call fails."},
                    "answerAfterSeconds": {"type": "number", "minimum": 0, "description": "Seconds each call waits before it answers: a hung provider, past the control plane's --provider-timeout."},
                    "fields": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "description": "Anything; compared for drift."}
                }
            }),
            at_provider: json!({"type": "object", "properties": {"fields": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}),
            connection_secret_keys: vec!["endpoint".into()],
            deterministic_external_name: true,
        }
    }

    async fn observe(&self, req: &Request) -> Result<Observation, ProviderError> {
        Self::maybe_fail(req).await?;
        let mut store = self.store()?;
        if !store.contains_key(req.external_name_or_name()) {
            self.refresh(&mut store);
        }
        let Some((fields, created)) = store.get(req.external_name_or_name()) else {
            return Ok(Observation::absent());
        };
        let ready_after = req
            .field("readyAfterSeconds")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let age = created.elapsed();
        let desired = req.field("fields").cloned().unwrap_or(Value::Null);
        let diff = if *fields == desired {
            String::new()
        } else {
            format!("fields: {fields} -> {desired}")
        };
        // What the "external system" holds, which changes only when it
        // does, so a drift poll that finds nothing new writes nothing.
        let observed = match fields {
            Value::Null => json!({}),
            held => json!({"fields": held}),
        };
        let observation = Observation::available(observed)
            .with_diff(diff)
            .with_connection(endpoint(req));
        Ok(if age < Duration::from_secs(ready_after) {
            observation.with_readiness(
                Readiness::Creating,
                format!("ready {ready_after}s after creation"),
            )
        } else {
            observation
        })
    }

    async fn create(&self, req: &Request) -> Result<Created, ProviderError> {
        Self::maybe_fail(req).await?;
        let name = req.external_name_or_name().to_string();
        let fields = req.field("fields").cloned().unwrap_or(Value::Null);
        let mut store = self.store()?;
        if !store.contains_key(&name) {
            self.refresh(&mut store);
        }
        if !store.contains_key(&name) {
            self.record("create", &name, &fields)?;
            store.insert(name.clone(), (fields, Instant::now()));
        }
        Ok(Created {
            external_name: name,
            connection: endpoint(req),
        })
    }

    async fn update(&self, req: &Request) -> Result<ConnectionDetails, ProviderError> {
        Self::maybe_fail(req).await?;
        let fields = req.field("fields").cloned().unwrap_or(Value::Null);
        match self.store()?.get_mut(req.external_name_or_name()) {
            Some(entry) => {
                self.record("update", req.external_name_or_name(), &fields)?;
                entry.0 = fields
            }
            None => {
                return Err(ProviderError::retryable(
                    "nop: the resource vanished before the update",
                ))
            }
        }
        Ok(endpoint(req))
    }

    async fn delete(&self, req: &Request) -> Result<(), ProviderError> {
        Self::maybe_fail(req).await?;
        if self.store()?.remove(req.external_name_or_name()).is_some() {
            self.record("delete", req.external_name_or_name(), &Value::Null)?;
        }
        Ok(())
    }
}

fn endpoint(req: &Request) -> ConnectionDetails {
    [(
        "endpoint".to_string(),
        format!("nop://{}", req.external_name_or_name()).into_bytes(),
    )]
    .into()
}

/// The nop provider with its one kind.
pub fn provider() -> Provider {
    Provider::new(
        "nop",
        "nop.plinth.dev",
        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
    )
    .kind(match std::env::var_os(JOURNAL_ENV) {
        Some(path) => NopResource::with_journal(path.into()),
        None => NopResource::default(),
    })
}

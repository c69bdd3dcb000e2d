//! The nop provider: `NopResource`s that exist only in this process's memory,
//! become Ready after a configurable delay and fail at a configurable rate.
//! It is for scale and fault benchmarks, after crossplane-contrib/provider-nop,
//! and the smallest complete example of a provider.

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

#[derive(Default)]
pub struct NopResource {
    resources: Mutex<Store>,
}

impl NopResource {
    /// Fails the call at the resource's `failureRate`.
    fn maybe_fail(req: &Request) -> Result<(), ProviderError> {
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

    fn store(&self) -> Result<std::sync::MutexGuard<'_, Store>, ProviderError> {
        self.resources
            .lock()
            .map_err(|_| ProviderError::retryable("nop: state lock poisoned"))
    }
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
                    "fields": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "description": "Anything; compared for drift."}
                }
            }),
            at_provider: json!({"type": "object", "properties": {"fields": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}),
            connection_secret_keys: vec!["endpoint".into()],
            deterministic_external_name: true,
        }
    }

    async fn observe(&self, req: &Request) -> Result<Observation, ProviderError> {
        Self::maybe_fail(req)?;
        let store = self.store()?;
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
        Self::maybe_fail(req)?;
        let name = req.external_name_or_name().to_string();
        let fields = req.field("fields").cloned().unwrap_or(Value::Null);
        self.store()?
            .entry(name.clone())
            .or_insert((fields, Instant::now()));
        Ok(Created {
            external_name: name,
            connection: endpoint(req),
        })
    }

    async fn update(&self, req: &Request) -> Result<ConnectionDetails, ProviderError> {
        Self::maybe_fail(req)?;
        let fields = req.field("fields").cloned().unwrap_or(Value::Null);
        match self.store()?.get_mut(req.external_name_or_name()) {
            Some(entry) => entry.0 = fields,
            None => {
                return Err(ProviderError::retryable(
                    "nop: the resource vanished before the update",
                ))
            }
        }
        Ok(endpoint(req))
    }

    async fn delete(&self, req: &Request) -> Result<(), ProviderError> {
        Self::maybe_fail(req)?;
        self.store()?.remove(req.external_name_or_name());
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
    .kind(NopResource::default())
}

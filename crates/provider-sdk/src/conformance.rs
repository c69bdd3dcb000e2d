//! The conformance harness every provider runs in its tests.
//!
//! It serves the provider over a real unix socket, talks to it through the
//! generated client as the host does, and checks the protocol's contract for
//! each case: deleting a missing resource succeeds, creating twice leaves one
//! resource, Observe after Create reports it, an update is observed as up to
//! date afterwards, every declared connection key is present, and deletion is
//! observed.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tonic::transport::Channel;

use crate::error::ProviderError;
use crate::pb::provider_client::ProviderClient;
use crate::pb::{self, Readiness};
use crate::service::Provider;

/// Counts the external resources behind a case, by external name, so the
/// harness can check that creating twice left exactly one.
pub type Counter = Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = usize> + Send>> + Send + Sync>;

/// One resource to take through its life.
pub struct Case {
    pub kind: String,
    pub name: String,
    pub for_provider: Value,
    /// A changed forProvider the provider must be able to apply.
    pub updated_for_provider: Value,
    /// The values behind the case's `...SecretRef` fields, as the control
    /// plane would resolve them.
    pub secrets: BTreeMap<String, Vec<u8>>,
    pub count: Option<Counter>,
}

/// What the harness needs: the provider, a ProviderConfig for it, the cases.
pub struct Harness {
    pub provider: Provider,
    pub config_spec: Value,
    pub credentials: BTreeMap<String, Vec<u8>>,
    pub cases: Vec<Case>,
    /// How long a resource may take to become available, or to go away.
    pub timeout: Duration,
}

/// A check that failed, and for which case.
#[derive(Debug, thiserror::Error)]
#[error("conformance: {kind} {name}: {check}: {detail}")]
pub struct Failure {
    pub kind: String,
    pub name: String,
    pub check: &'static str,
    pub detail: String,
}

const CONFIG: &str = "conformance";

impl Harness {
    /// Runs every check; returns the first failure.
    pub async fn run(self) -> Result<(), Failure> {
        let dir = std::env::temp_dir();
        let running = crate::serve::start(self.provider.clone(), &dir)
            .await
            .map_err(|e| fail("-", "-", "serve", e))?;
        let channel = crate::client::connect(&running.handshake.address)
            .await
            .map_err(|e| fail("-", "-", "connect", e))?;
        let mut client = ProviderClient::new(channel);
        let result = self.run_cases(&mut client).await;
        let _ = running.stop().await;
        result
    }

    async fn run_cases(&self, client: &mut ProviderClient<Channel>) -> Result<(), Failure> {
        let schema = client
            .get_schema(pb::GetSchemaRequest {})
            .await
            .map_err(|e| fail("-", "-", "GetSchema", e))?
            .into_inner();
        client
            .configure(pb::ConfigureRequest {
                name: CONFIG.into(),
                spec_json: self.config_spec.to_string().into_bytes(),
                credentials: self.credentials.clone().into_iter().collect(),
            })
            .await
            .map_err(|e| fail("-", "-", "Configure", e))?;
        for case in &self.cases {
            let declared = schema
                .kinds
                .iter()
                .find(|k| k.kind == case.kind)
                .ok_or_else(|| {
                    fail(
                        &case.kind,
                        &case.name,
                        "GetSchema",
                        "the kind is not in the schema",
                    )
                })?;
            self.run_case(client, case, declared).await?;
        }
        Ok(())
    }

    async fn run_case(
        &self,
        client: &mut ProviderClient<Channel>,
        case: &Case,
        declared: &pb::KindSchema,
    ) -> Result<(), Failure> {
        let f = |check: &'static str, detail: String| fail(&case.kind, &case.name, check, detail);
        let uid = format!("conformance-{}-{}", std::process::id(), case.name);
        let resource = |external_name: &str, spec: &Value| pb::Resource {
            kind: case.kind.clone(),
            name: case.name.clone(),
            uid: uid.clone(),
            external_name: external_name.to_string(),
            for_provider_json: spec.to_string().into_bytes(),
            provider_config: CONFIG.into(),
            secrets: case.secrets.clone().into_iter().collect(),
            secret_seed: format!("conformance seed for {uid}").into_bytes(),
        };

        let violations = client
            .validate(pb::ValidateRequest {
                resource: Some(resource("", &case.for_provider)),
            })
            .await
            .map_err(|e| f("Validate", e.to_string()))?
            .into_inner()
            .violations;
        if !violations.is_empty() {
            return Err(f(
                "Validate",
                format!("the case's forProvider is refused: {violations:?}"),
            ));
        }

        client
            .delete(pb::DeleteRequest {
                resource: Some(resource("", &case.for_provider)),
            })
            .await
            .map_err(|e| f("Delete of a missing resource succeeds", e.to_string()))?;
        let before = observe(client, resource("", &case.for_provider))
            .await
            .map_err(|e| f("Observe", e))?;
        if before.exists {
            return Err(f(
                "Observe before Create",
                "reports a resource that was never created".into(),
            ));
        }

        let first = client
            .create(pb::CreateRequest {
                resource: Some(resource("", &case.for_provider)),
            })
            .await
            .map_err(|e| f("Create", e.to_string()))?
            .into_inner();
        let second = client
            .create(pb::CreateRequest {
                resource: Some(resource("", &case.for_provider)),
            })
            .await
            .map_err(|e| f("Create twice", format!("the second Create failed: {e}")))?
            .into_inner();
        if first.external_name.is_empty() || first.external_name != second.external_name {
            return Err(f(
                "Create twice leaves one resource",
                format!(
                    "external names {:?} and {:?}",
                    first.external_name, second.external_name
                ),
            ));
        }
        let external = first.external_name.clone();
        if let Some(count) = &case.count {
            let n = count(external.clone()).await;
            if n != 1 {
                return Err(f(
                    "Create twice leaves one resource",
                    format!("found {n} resources"),
                ));
            }
        }

        let observed = self
            .wait(client, resource(&external, &case.for_provider), |o| {
                o.exists && o.readiness == Readiness::Available as i32
            })
            .await
            .map_err(|e| f("Observe after Create reports it available", e))?;

        let mut keys: BTreeSet<&String> = second.connection_details.keys().collect();
        keys.extend(observed.connection_details.keys());
        let missing: Vec<&String> = declared
            .connection_secret_keys
            .iter()
            .filter(|k| !keys.contains(k))
            .collect();
        if !missing.is_empty() {
            return Err(f(
                "declared connection keys are present",
                format!("missing {missing:?}"),
            ));
        }

        let changed = observe(client, resource(&external, &case.updated_for_provider))
            .await
            .map_err(|e| f("Observe a changed spec", e))?;
        if !changed.up_to_date {
            client
                .update(pb::UpdateRequest {
                    resource: Some(resource(&external, &case.updated_for_provider)),
                })
                .await
                .map_err(|e| f("Update", e.to_string()))?;
        }
        self.wait(
            client,
            resource(&external, &case.updated_for_provider),
            |o| o.exists && o.up_to_date,
        )
        .await
        .map_err(|e| f("an update is observed as up to date", e))?;

        client
            .delete(pb::DeleteRequest {
                resource: Some(resource(&external, &case.updated_for_provider)),
            })
            .await
            .map_err(|e| f("Delete", e.to_string()))?;
        self.wait(
            client,
            resource(&external, &case.updated_for_provider),
            |o| !o.exists,
        )
        .await
        .map_err(|e| f("Observe after Delete reports it gone", e))?;
        client
            .delete(pb::DeleteRequest {
                resource: Some(resource(&external, &case.updated_for_provider)),
            })
            .await
            .map_err(|e| {
                f(
                    "Delete of an already deleted resource succeeds",
                    e.to_string(),
                )
            })?;
        if let Some(count) = &case.count {
            let n = count(external.clone()).await;
            if n != 0 {
                return Err(f(
                    "Delete leaves nothing behind",
                    format!("found {n} resources"),
                ));
            }
        }
        Ok(())
    }

    async fn wait(
        &self,
        client: &mut ProviderClient<Channel>,
        resource: pb::Resource,
        done: impl Fn(&pb::ObserveResponse) -> bool,
    ) -> Result<pb::ObserveResponse, String> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let o = observe(client, resource.clone()).await?;
            if done(&o) {
                return Ok(o);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "not so after {:?}: exists={} up_to_date={} readiness={} message={:?} diff={:?}",
                    self.timeout, o.exists, o.up_to_date, o.readiness, o.readiness_message, o.diff
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn observe(
    client: &mut ProviderClient<Channel>,
    resource: pb::Resource,
) -> Result<pb::ObserveResponse, String> {
    client
        .observe(pb::ObserveRequest {
            resource: Some(resource),
        })
        .await
        .map(tonic::Response::into_inner)
        .map_err(|e| ProviderError::from_status(&e).to_string())
}

fn fail(kind: &str, name: &str, check: &'static str, detail: impl ToString) -> Failure {
    Failure {
        kind: kind.to_string(),
        name: name.to_string(),
        check,
        detail: detail.to_string(),
    }
}

/// A directory for sockets in tests.
pub fn socket_dir() -> PathBuf {
    std::env::temp_dir()
}

//! Plinth's provider controllers, which reach the API only through
//! `kube::Client` and so run the same against the embedded API server and a
//! real cluster.
//!
//! What they share with the composition controllers (names, conditions,
//! caches, the work queue, the provider seam) is the `runtime` crate's.
//!
//! Layout:
//! - `host`: the plugin host that runs providers and registers their kinds.
//! - `grpc`: the provider seam over `plinth.provider.v1`.
//! - `managed`: the managed-resource reconciler, one engine for every kind.
//! - `usage`: keeps a ProviderConfig while managed resources use it.
//! - `crds`: the Provider, ProviderConfig and managed-resource CRDs.
#![forbid(unsafe_code)]

pub mod crds;
pub mod grpc;
pub mod host;
pub mod managed;
pub mod usage;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use runtime::names;
use runtime::ratelimit::{Backoff, RateLimiter};
use runtime::Caches;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::host::Host;

/// How the controllers run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where provider plugins put their unix sockets.
    pub socket_dir: PathBuf,
    /// Drift polling of available resources (±10 % jitter).
    pub poll_interval: Duration,
    /// Reconciles per second across all managed kinds.
    pub max_reconcile_rate: u32,
    /// Providers to install as `Provider` objects: name and binary.
    pub bundled: Vec<(String, PathBuf)>,
    /// Fault injection for tests: exit right after a Create returns.
    pub crash_after_create: bool,
    /// How long one provider call may take before it fails.
    pub provider_timeout: Duration,
}

/// The running controllers; dropping this stops them and their plugins.
pub struct Controllers {
    tasks: JoinSet<()>,
    host: Arc<Host>,
}

impl Controllers {
    /// Stops the reconcilers, then the providers, each with SIGTERM first so
    /// they clean up what they run.
    pub async fn stop(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        self.host.shutdown().await;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot install the Provider CRD: {0}")]
    Crd(kube::Error),
    #[error("the Provider CRD was not served within 10 s")]
    NotServed,
    #[error("cannot install the bundled provider {0}: {1}")]
    Bundled(String, kube::Error),
    #[error("cannot create the plugin socket directory {0}: {1}")]
    SocketDir(PathBuf, std::io::Error),
    /// The Secret is names::SYSTEM_NAMESPACE / names::SEED_SECRET.
    #[error("cannot read or create the Secret plinth-system/plinth-resource-seed: {0}")]
    Seed(String),
}

/// The key managed resources' secret seeds are derived from: made once,
/// kept in a Secret, so every control plane process (and restart) derives
/// the same seed for a resource.
async fn seed_key(client: &Client) -> Result<Vec<u8>, String> {
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::ByteString;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), names::SYSTEM_NAMESPACE);
    for _ in 0..3 {
        let existing = secrets
            .get_opt(names::SEED_SECRET)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(secret) = existing {
            if let Some(key) = secret
                .data
                .and_then(|mut d| d.remove(names::SEED_SECRET_KEY))
            {
                return Ok(key.0);
            }
        }
        let key: [u8; 32] = rand::random();
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(names::SEED_SECRET.into()),
                namespace: Some(names::SYSTEM_NAMESPACE.into()),
                ..Default::default()
            },
            data: Some([(names::SEED_SECRET_KEY.to_string(), ByteString(key.to_vec()))].into()),
            ..Default::default()
        };
        match secrets.create(&Default::default(), &secret).await {
            Ok(_) => return Ok(key.to_vec()),
            // Another process made it first: read theirs.
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
    // The Secret exists without the key: refuse rather than overwrite what
    // someone put there.
    Err(format!(
        "the Secret has no {:?} key; delete it and restart to make a new one",
        names::SEED_SECRET_KEY
    ))
}

/// Installs the Provider CRD and the bundled providers, then starts the host
/// and, as providers announce kinds, one managed reconciler per kind, all
/// reading through `caches`.
pub async fn start(
    client: Client,
    caches: Arc<Caches>,
    options: Options,
) -> Result<Controllers, StartError> {
    std::fs::create_dir_all(&options.socket_dir)
        .map_err(|e| StartError::SocketDir(options.socket_dir.clone(), e))?;
    runtime::crds::apply(&client, crds::provider())
        .await
        .map_err(StartError::Crd)?;
    let providers: Api<DynamicObject> =
        Api::all_with(client.clone(), &host::provider_api_resource());
    let mut served = false;
    for _ in 0..100 {
        if providers.list(&Default::default()).await.is_ok() {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !served {
        return Err(StartError::NotServed);
    }
    for (name, binary) in &options.bundled {
        let provider = json!({
            "apiVersion": format!("{}/{}", names::PROVIDER_GROUP, names::PROVIDER_VERSION),
            "kind": names::PROVIDER_KIND,
            "metadata": {"name": name, "labels": {"pkg.plinth.dev/bundled": "true"}},
            "spec": {"command": binary.display().to_string()}
        });
        providers
            .patch(
                name,
                &PatchParams::apply(names::FIELD_MANAGER).force(),
                &Patch::Apply(provider),
            )
            .await
            .map_err(|e| StartError::Bundled(name.clone(), e))?;
    }

    let (announce, mut announced) = mpsc::unbounded_channel();
    let host = Arc::new(Host::new(
        client.clone(),
        options.socket_dir.clone(),
        options.provider_timeout,
        announce,
    ));
    let settings = managed::Settings {
        poll_interval: options.poll_interval,
        limiter: Arc::new(RateLimiter::new(options.max_reconcile_rate)),
        backoff: Backoff::default(),
        crash_after_create: options.crash_after_create,
        seed_key: Arc::new(seed_key(&client).await.map_err(StartError::Seed)?),
    };
    let mut tasks = JoinSet::new();
    tasks.spawn(host.clone().run());
    let shared = host.clone();
    tasks.spawn(async move {
        let host = shared;
        let mut kinds = HashSet::new();
        // The caches of each provider group's kinds, for its usage controller.
        let mut groups: HashMap<String, usage::Kinds> = HashMap::new();
        let mut children = JoinSet::new();
        while let Some(entry) = announced.recv().await {
            let key = format!("{}.{}", entry.schema.kind, entry.schema.group);
            if !kinds.insert(key) {
                continue;
            }
            let kind = managed::Kind {
                resource: entry.api_resource(),
                provider: entry.provider.clone(),
                config: entry.config_api_resource(),
                deterministic: entry.schema.deterministic_external_name,
            };
            let users = groups.entry(entry.config_group.clone()).or_insert_with(|| {
                let users = usage::Kinds::default();
                children.spawn(usage::run(
                    client.clone(),
                    caches.clone(),
                    entry.config_group.clone(),
                    users.clone(),
                ));
                users
            });
            users
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(caches.of(&kind.resource));
            let providers: Arc<dyn managed::Providers> = host.clone();
            children.spawn(managed::run(
                client.clone(),
                caches.clone(),
                kind,
                providers,
                settings.clone(),
                host.starts_of(&entry.provider),
            ));
        }
    });
    Ok(Controllers { tasks, host })
}

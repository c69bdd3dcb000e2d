//! Plinth's composition controllers. They reach the API only through
//! `kube::Client`, read through the shared caches of the `runtime` crate,
//! and leave all composing to the pure `composition` crate.
//!
//! Layout:
//! - `names`: groups, kinds, finalizers, labels.
//! - `crds`: the composition API's CRDs and the XR and claim CRDs an XRD defines.
//! - `xrd`: serves each XRD's kinds and starts their reconcilers.
//! - `revisions`: a CompositionRevision for every change of a Composition.
//! - `composite`: selects a Composition, renders and applies composed resources
//!   (`composite::plan` decides, the module executes).
//! - `claim`: binds claims to composite resources and copies their state back
//!   (`claim::plan` decides, the module executes).
//! - `builtin`: the DBaaS and Compute interfaces Plinth ships.
//! - `util`: what the reconcilers share.
#![forbid(unsafe_code)]

pub mod builtin;
pub mod claim;
pub mod composite;
pub mod crds;
pub mod names;
pub mod revisions;
pub mod roles;
pub mod util;
pub mod xrd;

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use runtime::Caches;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};

/// The running composition controllers.
pub struct Controllers {
    tasks: JoinSet<()>,
}

impl Controllers {
    pub async fn stop(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// The reconcilers running for one XRD, and the kinds they serve, so a
/// changed XRD (a new version, `claimNames` added or removed) restarts
/// exactly what changed.
struct Running {
    served: xrd::Served,
    composite: AbortHandle,
    claim: Option<AbortHandle>,
}

impl Running {
    fn stop(self) {
        self.composite.abort();
        if let Some(c) = self.claim {
            c.abort();
        }
    }
}

/// Creates a namespace if it is missing: docs-style Compositions write
/// connection Secrets to `crossplane-system`, which must exist.
async fn ensure_namespace(client: &Client, name: &str) -> Result<(), kube::Error> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            name,
            &PatchParams::apply(names::FIELD_MANAGER),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
            ),
        )
        .await?;
    Ok(())
}

/// Installs the composition API (and, when given the clouds' Compositions,
/// the built-in interfaces with them) and starts the controllers, all
/// reading through `caches`.
pub async fn start(
    client: Client,
    caches: Arc<Caches>,
    builtin_apis: Option<Vec<serde_json::Value>>,
    functions: Arc<functions::Runner>,
) -> Result<Controllers, kube::Error> {
    for crd in crds::composition_api() {
        runtime::crds::apply(&client, crd).await?;
    }
    for namespace in [names::SYSTEM_NAMESPACE, names::CROSSPLANE_NAMESPACE] {
        ensure_namespace(&client, namespace).await?;
    }
    util::wait_served(&client, &util::xrd_resource()).await;
    util::wait_served(&client, &util::composition_resource()).await;
    util::wait_served(&client, &util::revision_resource()).await;
    if let Some(cloud) = &builtin_apis {
        builtin::install(&client, cloud).await?;
    }
    let (announce, mut announced) = mpsc::unbounded_channel::<xrd::Announce>();
    let mut tasks = JoinSet::new();
    tasks.spawn(xrd::run(client.clone(), caches.clone(), announce));
    tasks.spawn(revisions::run(client.clone(), caches.clone()));
    tasks.spawn(async move {
        // Keyed by XRD name: two XRDs may define the same kinds in two
        // groups (the docs' XPostgreSQLInstance beside the built-in one),
        // and each needs reconcilers of its own.
        let mut running: HashMap<String, Running> = HashMap::new();
        // Dropped with this task on shutdown, which aborts every reconciler.
        let mut children = JoinSet::new();
        let start_composite = |children: &mut JoinSet<()>, served: &xrd::Served| {
            let (client, caches, served, functions) = (
                client.clone(),
                caches.clone(),
                served.clone(),
                functions.clone(),
            );
            children.spawn(async move {
                util::wait_served(&client, &served.composite).await;
                composite::run(client, caches, served, functions).await;
            })
        };
        let start_claim = |children: &mut JoinSet<()>, served: &xrd::Served| {
            let claim = served.claim.clone()?;
            let (client, caches, served) = (client.clone(), caches.clone(), served.clone());
            Some(children.spawn(async move {
                util::wait_served(&client, &claim).await;
                claim::run(client, caches, served).await;
            }))
        };
        while let Some(message) = announced.recv().await {
            // Reap finished reconcilers so the set does not grow.
            while children.try_join_next().is_some() {}
            match message {
                xrd::Announce::Served(served) => {
                    let served = *served;
                    let previous = running.remove(&served.xrd);
                    let next = match previous {
                        Some(r) if r.served == served => r,
                        Some(r) if r.served.composite == served.composite => {
                            // Only the claim kind changed (e.g. claimNames added).
                            if let Some(c) = &r.claim {
                                c.abort();
                            }
                            Running {
                                claim: start_claim(&mut children, &served),
                                composite: r.composite,
                                served,
                            }
                        }
                        other => {
                            if let Some(r) = other {
                                r.stop();
                            }
                            Running {
                                composite: start_composite(&mut children, &served),
                                claim: start_claim(&mut children, &served),
                                served,
                            }
                        }
                    };
                    running.insert(next.served.xrd.clone(), next);
                }
                xrd::Announce::Withdrawn(name) => {
                    if let Some(r) = running.remove(&name) {
                        tracing::info!(xrd = %name, "XRD deleted; its reconcilers stop");
                        r.stop();
                    }
                }
            }
        }
    });
    Ok(Controllers { tasks })
}

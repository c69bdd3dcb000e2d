//! OAM for Plinth: KubeVela-shaped `core.oam.dev/v1beta1` Applications
//! whose components become claims, so an OAM user never learns Plinth's
//! kinds. It reaches the API only through `kube::Client` and the shared
//! caches, and knows claims only as data: no composition code is linked.
//!
//! Layout:
//! - `names`: the group, kinds, labels and phases, in KubeVela's spellings.
//! - `crds`: the Application and ComponentDefinition CRDs.
//! - `plan`: what an Application's components become, with no I/O.
//! - `definitions`: the ComponentDefinition each XRD with a claim gets, and
//!   what a definition resolves to, with no I/O.
//! - `controller`: the executors.
//!
//! ```text
//!  XRD ──▶ ComponentDefinition (vela-system/<claim singular>) + component-schema-<name> ConfigMap
//!  Application ──plan──▶ claims <app>-<component> (owned, labelled) ──Ready──▶ status.services
//! ```
#![forbid(unsafe_code)]

pub mod controller;
pub mod crds;
pub mod definitions;
pub mod names;
pub mod plan;

use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use runtime::Caches;
use serde_json::json;
use tokio::task::JoinSet;

/// What can go wrong in a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach the API: {0}")]
    Api(#[from] kube::Error),
    #[error("cannot read a cached object: {0}")]
    Cache(#[from] runtime::Error),
}

/// The running OAM controllers.
pub struct Controllers {
    tasks: JoinSet<()>,
}

impl Controllers {
    pub async fn stop(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Installs the OAM CRDs and the `vela-system` namespace, and starts the
/// Application and ComponentDefinition reconcilers.
pub async fn start(client: Client, caches: Arc<Caches>) -> Result<Controllers, kube::Error> {
    for crd in crds::all() {
        runtime::crds::apply(&client, crd).await?;
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            names::DEFINITIONS_NAMESPACE,
            &PatchParams::apply(names::FIELD_MANAGER),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace",
                                 "metadata": {"name": names::DEFINITIONS_NAMESPACE}})),
        )
        .await?;
    wait_served(&client).await;
    let mut tasks = JoinSet::new();
    tasks.spawn(controller::applications(client.clone(), caches.clone()));
    tasks.spawn(controller::generated_definitions(
        client.clone(),
        caches.clone(),
    ));
    tasks.spawn(controller::definition_status(client, caches));
    Ok(Controllers { tasks })
}

/// Waits (bounded) until the OAM kinds are served, so the caches' first
/// list does not fail.
async fn wait_served(client: &Client) {
    for resource in [
        names::application_resource(),
        names::component_definition_resource(),
    ] {
        let api: Api<kube::api::DynamicObject> = Api::all_with(client.clone(), &resource);
        for _ in 0..100 {
            if api
                .list(&kube::api::ListParams::default().limit(1))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

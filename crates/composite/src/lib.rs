//! Plinth's composition controllers. They reach the API only through
//! `kube::Client`, and leave all composing to the pure `composition` crate.
//!
//! Layout:
//! - `names`: groups, kinds, finalizers, labels.
//! - `crds`: the composition API's CRDs and the XR and claim CRDs an XRD defines.
//! - `xrd`: serves each XRD's kinds and starts their reconcilers.
//! - `revisions`: a CompositionRevision for every change of a Composition.
//! - `composite`: selects a Composition, renders and applies composed resources.
//! - `claim`: binds claims to composite resources and copies their state back.
//! - `builtin`: the DBaaS and Compute interfaces Plinth ships.
//! - `util`: what the reconcilers share.
#![forbid(unsafe_code)]

pub mod builtin;
pub mod claim;
pub mod composite;
pub mod crds;
pub mod names;
pub mod revisions;
pub mod util;
pub mod xrd;

use std::collections::HashSet;
use std::time::Duration;

use kube::Client;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

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

/// Installs the composition API (and, if asked, the built-in interfaces)
/// and starts the controllers.
pub async fn start(client: Client, builtin_apis: bool) -> Result<Controllers, kube::Error> {
    for crd in crds::composition_api() {
        reconciler::crds::apply(&client, crd).await?;
    }
    util::wait_served(&client, &util::xrd_resource()).await;
    util::wait_served(&client, &util::composition_resource()).await;
    util::wait_served(&client, &util::revision_resource()).await;
    if builtin_apis {
        builtin::install(&client).await?;
    }
    let (announce, mut announced) = mpsc::unbounded_channel::<xrd::Served>();
    let mut tasks = JoinSet::new();
    tasks.spawn(xrd::run(client.clone(), announce));
    tasks.spawn(revisions::run(client.clone()));
    tasks.spawn(async move {
        let mut started = HashSet::new();
        let mut children = JoinSet::new();
        while let Some(served) = announced.recv().await {
            if !started.insert(served.composite.kind.clone()) {
                continue;
            }
            util::wait_served(&client, &served.composite).await;
            children.spawn(composite::run(client.clone(), served.clone()));
            if let Some(claim) = &served.claim {
                util::wait_served(&client, claim).await;
                children.spawn(claim::run(client.clone(), served.clone()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    Ok(Controllers { tasks })
}

//! CompositionRevisions: every distinct spec a Composition has had, numbered,
//! so composite resources can follow the latest or stay on one.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{DynamicObject, ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use runtime::{Action, Cache, Caches, Controller, Writes};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{names, util};

struct Ctx {
    client: Client,
    compositions: Arc<Cache>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read a cached object: {0}")]
    Cache(#[from] runtime::Error),
    #[error("cannot write a CompositionRevision: {0}")]
    Kube(#[from] kube::Error),
}

pub async fn run(client: Client, caches: Arc<Caches>) {
    let compositions = caches.of(&util::composition_resource());
    let ctx = Arc::new(Ctx {
        client,
        compositions: compositions.clone(),
    });
    // Its writes are revisions, which it does not watch: nothing to tell apart.
    let writes: Arc<Writes> = Arc::default();
    Controller::new("revisions", compositions, writes, Duration::ZERO, None)
        .concurrency(1)
        .run(
            move |key, _| {
                let ctx = ctx.clone();
                async move {
                    let Some(cached) = ctx.compositions.get(&key) else {
                        return Ok(Action::AwaitChange);
                    };
                    let obj = cached.object()?;
                    reconcile(obj, &ctx).await
                }
            },
            |_: &Error, _| Duration::from_secs(5),
        )
        .await;
}

/// A short hash of a Composition's spec.
pub fn spec_hash(spec: &Value) -> String {
    hex::encode(&Sha256::digest(spec.to_string().as_bytes())[..4])
}

async fn reconcile(obj: DynamicObject, ctx: &Ctx) -> Result<Action, Error> {
    if obj.metadata.deletion_timestamp.is_some() {
        return Ok(Action::AwaitChange);
    }
    let name = obj.name_any();
    let spec = obj.data.get("spec").cloned().unwrap_or_else(|| json!({}));
    let hash = spec_hash(&spec);
    let revisions: Api<DynamicObject> =
        Api::all_with(ctx.client.clone(), &util::revision_resource());
    // Read from the API, not the cache: revision numbers must follow the
    // revisions this controller just made, which the cache may not hold
    // yet. Compositions change rarely, so this list is rare too.
    let existing = revisions
        .list(&ListParams::default().labels(&format!("{}={name}", names::LABEL_COMPOSITION_NAME)))
        .await?
        .items;
    let newest = existing
        .iter()
        .filter_map(|r| r.data.pointer("/spec/revision").and_then(Value::as_i64))
        .max()
        .unwrap_or(0);
    if let Some(same) = existing
        .iter()
        .find(|r| r.labels().get(names::LABEL_COMPOSITION_HASH) == Some(&hash))
    {
        // Back to an earlier spec: that revision becomes the newest again,
        // as in Crossplane, rather than a duplicate being made.
        let number = same
            .data
            .pointer("/spec/revision")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if number < newest {
            revisions
                .patch(
                    &same.name_any(),
                    &kube::api::PatchParams::default(),
                    &kube::api::Patch::Merge(json!({"spec": {"revision": newest + 1}})),
                )
                .await?;
        }
        return Ok(Action::AwaitChange);
    }
    let next = newest + 1;
    let mut revision_spec = spec;
    revision_spec["revision"] = json!(next);
    let revision: DynamicObject = serde_json::from_value(json!({
        "apiVersion": format!("{}/{}", names::GROUP, names::VERSION),
        "kind": names::REVISION_KIND,
        "metadata": {
            "name": format!("{name}-{hash}"),
            "labels": {names::LABEL_COMPOSITION_NAME: name, names::LABEL_COMPOSITION_HASH: hash},
            "ownerReferences": [{"apiVersion": format!("{}/{}", names::GROUP, names::VERSION), "kind": names::COMPOSITION_KIND,
                                 "name": name, "uid": obj.metadata.uid.clone().unwrap_or_default(), "controller": true}]
        },
        "spec": revision_spec
    }))
    .map_err(kube::Error::SerdeError)?;
    match revisions.create(&PostParams::default(), &revision).await {
        Ok(_) => tracing::info!(composition = %name, revision = next, "new composition revision"),
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Action::AwaitChange)
}

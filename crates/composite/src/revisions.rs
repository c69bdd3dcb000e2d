//! CompositionRevisions: every distinct spec a Composition has had, numbered,
//! so composite resources can follow the latest or stay on one.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{DynamicObject, ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{names, util};

pub async fn run(client: Client) {
    let ar = util::composition_resource();
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    Controller::new_with(api, watcher::Config::default(), ar)
        .run(
            reconcile,
            |_, _, _| Action::requeue(Duration::from_secs(5)),
            Arc::new(client),
        )
        .for_each(|_| async {})
        .await;
}

/// A short hash of a Composition's spec.
pub fn spec_hash(spec: &Value) -> String {
    hex::encode(&Sha256::digest(spec.to_string().as_bytes())[..4])
}

async fn reconcile(obj: Arc<DynamicObject>, client: Arc<Client>) -> Result<Action, kube::Error> {
    if obj.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = obj.name_any();
    let spec = obj.data.get("spec").cloned().unwrap_or_else(|| json!({}));
    let hash = spec_hash(&spec);
    let revisions: Api<DynamicObject> =
        Api::all_with(client.as_ref().clone(), &util::revision_resource());
    let existing = revisions
        .list(&ListParams::default().labels(&format!("{}={name}", names::LABEL_COMPOSITION_NAME)))
        .await?;
    let newest = existing
        .items
        .iter()
        .filter_map(|r| r.data.pointer("/spec/revision").and_then(Value::as_i64))
        .max()
        .unwrap_or(0);
    if let Some(same) = existing
        .items
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
        return Ok(Action::await_change());
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
        Err(e) => return Err(e),
    }
    Ok(Action::await_change())
}

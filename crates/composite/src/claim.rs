//! The claim reconciler: a claim (namespaced) gets a composite resource of
//! its own, kept in step with the claim's spec; the XR's state, conditions
//! and connection Secret come back to the claim's namespace; deleting the
//! claim deletes the XR, and with it everything composed.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use reconciler::conditions::Condition;
use reconciler::names::{condition, reason};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::names;
use crate::util;
use crate::xrd::Served;

/// Claim fields that stay on the claim.
const CLAIM_ONLY: &[&str] = &[
    "compositeDeletePolicy",
    "resourceRef",
    "writeConnectionSecretToRef",
];

struct Ctx {
    client: Client,
    served: Served,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Error(String);

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Error(e.to_string())
    }
}

pub async fn run(client: Client, served: Served) {
    let Some(ar) = served.claim.clone() else {
        return;
    };
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let xrs: Api<DynamicObject> = Api::all_with(client.clone(), &served.composite);
    let xr_ar = served.composite.clone();
    let claim_ar = ar.clone();
    let ctx = Arc::new(Ctx { client, served });
    tracing::info!(kind = %ar.kind, "reconciling claims");
    Controller::new_with(api, watcher::Config::default(), ar)
        // A change to a composite resource reconciles the claim bound to it.
        .watches_with(
            xrs,
            xr_ar,
            watcher::Config::default(),
            move |xr: DynamicObject| {
                let name = xr
                    .data
                    .pointer("/spec/claimRef/name")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let namespace = xr
                    .data
                    .pointer("/spec/claimRef/namespace")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                match (name, namespace) {
                    (Some(n), Some(ns)) => {
                        Some(ObjectRef::new_with(&n, claim_ar.clone()).within(&ns))
                    }
                    _ => None,
                }
            },
        )
        .run(
            reconcile,
            |_, _, _| Action::requeue(Duration::from_secs(2)),
            ctx,
        )
        .for_each(|_| async {})
        .await;
}

/// The name of a claim's composite resource: the claim's name and a short
/// hash of its namespace and UID, so claims of one name in two namespaces
/// never share an XR.
pub fn composite_name(claim: &DynamicObject) -> String {
    let seed = format!(
        "{}/{}/{}",
        claim.namespace().unwrap_or_default(),
        claim.name_any(),
        claim.metadata.uid.clone().unwrap_or_default()
    );
    let hash = hex::encode(&Sha256::digest(seed.as_bytes())[..3]);
    let base: String = claim.name_any().chars().take(50).collect();
    format!("{base}-{}", &hash[..5])
}

async fn reconcile(obj: Arc<DynamicObject>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let Some(claim_ar) = ctx.served.claim.clone() else {
        return Ok(Action::await_change());
    };
    let namespace = obj.namespace().unwrap_or_else(|| "default".into());
    let claims: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &namespace, &claim_ar);
    match cycle(&obj, &ctx, &claims, &namespace).await {
        Ok(a) => Ok(a),
        Err(e) => {
            util::set_status(
                &claims,
                &obj,
                &[Condition::new(
                    condition::SYNCED,
                    false,
                    reason::RECONCILE_ERROR,
                    e.0.clone(),
                )],
                json!({}),
            )
            .await;
            Err(e)
        }
    }
}

async fn cycle(
    obj: &DynamicObject,
    ctx: &Ctx,
    claims: &Api<DynamicObject>,
    namespace: &str,
) -> Result<Action, Error> {
    let Some(claim_ar) = ctx.served.claim.clone() else {
        return Ok(Action::await_change());
    };
    let xrs: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &ctx.served.composite);
    let has_finalizer = obj.finalizers().iter().any(|f| f == names::CLAIM_FINALIZER);
    let xr_name = obj
        .data
        .pointer("/spec/resourceRef/name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| composite_name(obj));

    if obj.metadata.deletion_timestamp.is_some() {
        if !has_finalizer {
            return Ok(Action::await_change());
        }
        let policy = obj
            .data
            .pointer("/spec/compositeDeletePolicy")
            .and_then(Value::as_str)
            .unwrap_or("Background");
        let params = if policy == "Foreground" {
            DeleteParams::foreground()
        } else {
            DeleteParams::background()
        };
        match xrs.delete(&xr_name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        if policy == "Foreground" && xrs.get_opt(&xr_name).await?.is_some() {
            return Ok(Action::requeue(Duration::from_millis(500)));
        }
        let list: Vec<String> = obj
            .finalizers()
            .iter()
            .filter(|f| *f != names::CLAIM_FINALIZER)
            .cloned()
            .collect();
        claims
            .patch(
                &obj.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": list}})),
            )
            .await?;
        return Ok(Action::await_change());
    }

    if !has_finalizer {
        let mut list = obj.finalizers().to_vec();
        list.push(names::CLAIM_FINALIZER.to_string());
        claims
            .patch(
                &obj.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": list}})),
            )
            .await?;
    }

    // The XR: the claim's spec, less what belongs to the claim alone.
    let mut spec: Map<String, Value> = obj
        .data
        .get("spec")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for field in CLAIM_ONLY {
        spec.remove(*field);
    }
    spec.insert(
        "claimRef".into(),
        json!({"apiVersion": claim_ar.api_version, "kind": claim_ar.kind, "name": obj.name_any(), "namespace": namespace}),
    );
    spec.insert(
        "writeConnectionSecretToRef".into(),
        json!({"namespace": names::SYSTEM_NAMESPACE, "name": xr_name}),
    );
    let xr = json!({
        "apiVersion": ctx.served.composite.api_version,
        "kind": ctx.served.composite.kind,
        "metadata": {"name": xr_name, "labels": {names::LABEL_CLAIM_NAME: obj.name_any(), names::LABEL_CLAIM_NAMESPACE: namespace}},
        "spec": spec
    });
    let existing = xrs.get_opt(&xr_name).await?;
    if let Some(existing) = &existing {
        let bound = existing
            .data
            .pointer("/spec/claimRef/name")
            .and_then(Value::as_str);
        let bound_ns = existing
            .data
            .pointer("/spec/claimRef/namespace")
            .and_then(Value::as_str);
        if bound.is_some()
            && (bound != Some(obj.name_any().as_str()) || bound_ns != Some(namespace))
        {
            return Err(Error(format!(
                "composite resource {xr_name} is bound to another claim"
            )));
        }
    }
    let applied = if existing.is_none() {
        let body: DynamicObject = serde_json::from_value(xr).map_err(|e| Error(e.to_string()))?;
        xrs.create(&PostParams::default(), &body).await?
    } else {
        xrs.patch(
            &xr_name,
            &PatchParams::apply("plinth-claim").force(),
            &Patch::Apply(xr),
        )
        .await?
    };
    if obj
        .data
        .pointer("/spec/resourceRef/name")
        .and_then(Value::as_str)
        != Some(xr_name.as_str())
    {
        claims
            .patch(
                &obj.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"resourceRef": {
                    "apiVersion": ctx.served.composite.api_version, "kind": ctx.served.composite.kind, "name": xr_name}}})),
            )
            .await?;
    }

    // The XR's connection details, in the claim's namespace.
    if let Some(target) = obj
        .data
        .pointer("/spec/writeConnectionSecretToRef/name")
        .and_then(Value::as_str)
    {
        let system: Api<Secret> = Api::namespaced(ctx.client.clone(), names::SYSTEM_NAMESPACE);
        if let Some(source) = system.get_opt(&xr_name).await? {
            let data: Map<String, Value> = source
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        json!(base64::engine::general_purpose::STANDARD.encode(v.0)),
                    )
                })
                .collect();
            let secret = json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": target, "namespace": namespace, "ownerReferences": [{
                    "apiVersion": claim_ar.api_version, "kind": claim_ar.kind,
                    "name": obj.name_any(), "uid": obj.metadata.uid.clone().unwrap_or_default(), "controller": true}]},
                "type": "connection.crossplane.io/v1alpha1",
                "data": data
            });
            let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
            secrets
                .patch(
                    target,
                    &PatchParams::apply(names::FIELD_MANAGER).force(),
                    &Patch::Apply(secret),
                )
                .await?;
        }
    }

    // The XR's state and conditions, on the claim.
    let mut status = applied
        .data
        .get("status")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut updates = Vec::new();
    let copied: Vec<(String, bool, String, String)> = status
        .get("conditions")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|c| {
                    Some((
                        c.get("type")?.as_str()?.to_string(),
                        c.get("status")? == "True",
                        c.get("reason")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        c.get("message")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    for (type_, ok, why, message) in &copied {
        updates.push(Condition::new(type_, *ok, why, message.clone()));
    }
    if copied.iter().all(|c| c.0 != condition::READY) {
        updates.push(Condition::new(
            condition::READY,
            false,
            reason::CREATING,
            "waiting for the composite resource",
        ));
    }
    if copied.iter().all(|c| c.0 != condition::SYNCED) {
        updates.push(Condition::new(
            condition::SYNCED,
            true,
            reason::RECONCILE_SUCCESS,
            "",
        ));
    }
    if let Some(map) = status.as_object_mut() {
        map.remove("conditions");
    }
    util::set_status(claims, obj, &updates, status).await;
    let ready = copied.iter().any(|c| c.0 == condition::READY && c.1);
    // The composite resource is watched, so polling is only a slow safety net.
    Ok(Action::requeue(if ready {
        Duration::from_secs(600)
    } else {
        Duration::from_secs(30)
    }))
}

//! The claim reconciler: a claim (namespaced) gets a composite resource of
//! its own, kept in step with the claim's spec; the XR's state, conditions
//! and connection Secret come back to the claim's namespace; deleting the
//! claim deletes the XR, and with it everything composed.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action;
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
    /// What was last applied to composites and claims' Secrets.
    applied: util::Applied,
    /// The XRD, shared by bursts of cycles.
    definitions: util::Definitions,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Error(String);

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Error(util::error_message(&e))
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
    let secret_claim_ar = ar.clone();
    let composite_kind = served.composite.kind.clone();
    let secrets_client = client.clone();
    let ctx = Arc::new(Ctx {
        client,
        served,
        applied: Default::default(),
        definitions: Default::default(),
    });
    tracing::info!(kind = %ar.kind, "reconciling claims");
    reconciler::cache::controller(api, watcher::Config::default(), ar)
        // Every write to what an object composes wakes it, and writes come
        // in bursts (a managed resource is written four or five times while
        // it is created); a short debounce folds a burst into one cycle.
        .with_config(kube::runtime::controller::Config::default().debounce(crate::names::DEBOUNCE))
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
        // A change to the composite's connection Secret reconciles the
        // claim, which copies it into the claim's namespace.
        .watches_with(
            Api::<Secret>::all(secrets_client),
            (),
            watcher::Config::default().labels(names::LABEL_CLAIM_NAME),
            move |secret: Secret| {
                let owned_by_composite = secret
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.kind == composite_kind);
                let labels = secret.metadata.labels.unwrap_or_default();
                match (
                    labels.get(names::LABEL_CLAIM_NAME),
                    labels.get(names::LABEL_CLAIM_NAMESPACE),
                ) {
                    (Some(n), Some(ns)) if owned_by_composite => {
                        Some(ObjectRef::new_with(n, secret_claim_ar.clone()).within(ns))
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

/// What the claim's XRD decides for its claims.
struct Policies {
    delete: String,
    update: String,
    /// `spec.enforcedCompositionRef`: the composite resource's Composition
    /// is not the claim's to choose.
    enforced: bool,
    /// Where the composite resource writes its connection Secret.
    secrets_namespace: String,
}

impl Policies {
    fn of(xrd: &Value, claim: &DynamicObject) -> Policies {
        let spec = claim.data.get("spec");
        let field = |name: &str| {
            spec.and_then(|s| s.get(name))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        Policies {
            delete: field("compositeDeletePolicy")
                .unwrap_or_else(|| crate::crds::default_delete_policy(xrd).to_string()),
            update: field("compositionUpdatePolicy")
                .unwrap_or_else(|| crate::crds::default_update_policy(xrd).to_string()),
            enforced: xrd
                .pointer("/spec/enforcedCompositionRef/name")
                .and_then(Value::as_str)
                .is_some(),
            secrets_namespace: xrd
                .pointer("/spec/writeConnectionSecretsToNamespace")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .unwrap_or(names::SYSTEM_NAMESPACE)
                .to_string(),
        }
    }
}

/// The composite resource's spec as the claim wants it: the claim's spec,
/// less what belongs to the claim alone and less what the composite
/// resource decides (Crossplane's rule: Composition and revision selection
/// happen on the XR, and are copied back to the claim).
pub fn composite_spec(
    claim: &Value,
    policies_enforced: bool,
    update_policy: &str,
) -> Map<String, Value> {
    let mut spec: Map<String, Value> = claim
        .get("spec")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for field in CLAIM_ONLY {
        spec.remove(*field);
    }
    if policies_enforced {
        spec.remove("compositionRef");
    }
    // Only a Manual claim pins a revision; otherwise the XR follows the newest.
    if update_policy != names::POLICY_MANUAL {
        spec.remove("compositionRevisionRef");
    }
    spec.insert("compositionUpdatePolicy".into(), json!(update_policy));
    spec
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
    let xrds: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &util::xrd_resource());
    // A claim whose XRD is gone can still be deleted: the defaults then apply.
    let xrd = ctx
        .definitions
        .get(&xrds, &ctx.served.xrd)
        .await?
        .map(|x| serde_json::to_value(x).unwrap_or_default())
        .unwrap_or_default();
    let policies = Policies::of(&xrd, obj);
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
        let foreground = policies.delete == names::DELETE_FOREGROUND;
        let params = if foreground {
            DeleteParams::foreground()
        } else {
            DeleteParams::background()
        };
        match xrs.delete(&xr_name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        // Foreground: the composite resource stays until the garbage
        // collector has deleted its composed resources, and those stay until
        // their provider deleted what they stand for, so the claim is gone
        // only once everything behind it is. The composite's deletion wakes
        // this claim through the watch; the requeue is a safety net.
        if foreground && xrs.get_opt(&xr_name).await?.is_some() {
            return Ok(Action::requeue(Duration::from_secs(2)));
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

    let claim_value = serde_json::to_value(obj).map_err(|e| Error(e.to_string()))?;
    let mut spec = composite_spec(&claim_value, policies.enforced, &policies.update);
    spec.insert(
        "claimRef".into(),
        json!({"apiVersion": claim_ar.api_version, "kind": claim_ar.kind, "name": obj.name_any(), "namespace": namespace}),
    );
    spec.insert(
        "writeConnectionSecretToRef".into(),
        json!({"namespace": policies.secrets_namespace, "name": xr_name}),
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
    // Server-side apply creates it too: this manager then owns every field
    // it copied from the claim, so a field dropped from the claim is dropped
    // from the composite resource.
    let key = format!(
        "{}/{}/{xr_name}",
        ctx.served.composite.api_version, ctx.served.composite.kind
    );
    let live = existing
        .as_ref()
        .map(|x| serde_json::to_value(x).unwrap_or_default());
    let applied = match existing {
        Some(current) if !ctx.applied.needed(&key, &xr, live.as_ref()) => current,
        _ => {
            let applied = xrs
                .patch(
                    &xr_name,
                    &PatchParams::apply(names::CLAIM_FIELD_MANAGER).force(),
                    &Patch::Apply(&xr),
                )
                .await?;
            ctx.applied.record(&key, &xr);
            applied
        }
    };

    // What the composite resource decided, back on the claim.
    let mut back = Map::new();
    if obj
        .data
        .pointer("/spec/resourceRef/name")
        .and_then(Value::as_str)
        != Some(xr_name.as_str())
    {
        back.insert(
            "resourceRef".into(),
            json!({"apiVersion": ctx.served.composite.api_version, "kind": ctx.served.composite.kind, "name": xr_name}),
        );
    }
    for field in ["compositionRef", "compositionRevisionRef"] {
        let decided = applied
            .data
            .pointer(&format!("/spec/{field}/name"))
            .and_then(Value::as_str);
        let claimed = obj
            .data
            .pointer(&format!("/spec/{field}/name"))
            .and_then(Value::as_str);
        if let Some(name) = decided.filter(|d| Some(*d) != claimed) {
            back.insert(field.into(), json!({"name": name}));
        }
    }
    // The status below reports on the spec this cycle leaves, its own
    // write included; reporting the generation before it would take one
    // more status write to catch up.
    let mut acted_on = obj.clone();
    if !back.is_empty() {
        let written = claims
            .patch(
                &obj.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": back})),
            )
            .await?;
        acted_on.metadata.generation = written.metadata.generation;
    }

    // The XR's connection details, in the claim's namespace.
    let source_ref = (
        applied
            .data
            .pointer("/spec/writeConnectionSecretToRef/namespace")
            .and_then(Value::as_str),
        applied
            .data
            .pointer("/spec/writeConnectionSecretToRef/name")
            .and_then(Value::as_str),
    );
    if let (Some(target), (Some(source_ns), Some(source_name))) = (
        obj.data
            .pointer("/spec/writeConnectionSecretToRef/name")
            .and_then(Value::as_str),
        source_ref,
    ) {
        let system: Api<Secret> = Api::namespaced(ctx.client.clone(), source_ns);
        if let Some(source) = system.get_opt(source_name).await? {
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
            ctx.applied
                .apply_secret(&ctx.client, namespace, target, &secret)
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
    util::set_status_on(claims, &acted_on, &updates, status).await;
    let ready = copied.iter().any(|c| c.0 == condition::READY && c.1);
    Ok(Action::requeue(util::spread(
        if ready {
            names::RESYNC_READY
        } else {
            names::RESYNC_NOT_READY
        },
        obj.metadata.uid.as_deref(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim() -> Value {
        json!({"spec": {
            "color": "red",
            "compositionRef": {"name": "b"},
            "compositionRevisionRef": {"name": "b-old"},
            "compositeDeletePolicy": "Foreground",
            "writeConnectionSecretToRef": {"name": "conn"},
            "resourceRef": {"name": "x"}
        }})
    }

    #[test]
    fn the_claim_does_not_override_what_the_xr_decides() {
        // Enforced Composition, Automatic policy: neither ref goes down.
        let spec = composite_spec(&claim(), true, names::POLICY_AUTOMATIC);
        assert!(!spec.contains_key("compositionRef"));
        assert!(!spec.contains_key("compositionRevisionRef"));
        assert_eq!(spec["compositionUpdatePolicy"], names::POLICY_AUTOMATIC);
        assert_eq!(spec["color"], "red");
        for claim_only in CLAIM_ONLY {
            assert!(!spec.contains_key(*claim_only), "{claim_only}");
        }
        // Not enforced, Manual: the claim chooses both.
        let spec = composite_spec(&claim(), false, names::POLICY_MANUAL);
        assert_eq!(spec["compositionRef"]["name"], "b");
        assert_eq!(spec["compositionRevisionRef"]["name"], "b-old");
    }
}

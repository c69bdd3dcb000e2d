//! The claim reconciler's decisions, with no I/O: how a claim binds its
//! composite resource, what of the claim goes down to it and what comes
//! back, and how the claim goes when it is deleted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use runtime::conditions::Condition;
use runtime::names::{condition, reason};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::composite::plan::{select, XrKind};
use crate::names;
use crate::util::{self, Applied};

/// Claim fields that stay on the claim.
pub const CLAIM_ONLY: &[&str] = &[
    "compositeDeletePolicy",
    "resourceRef",
    "writeConnectionSecretToRef",
];

/// How soon a claim being deleted looks again for its composite resource
/// to be gone; the composite's deletion wakes it anyway.
pub const DELETE_RETRY: Duration = Duration::from_secs(2);

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// The name of a claim's composite resource: the claim's name and a short
/// hash of its namespace and UID, so claims of one name in two namespaces
/// never share an XR.
pub fn composite_name(claim: &Value) -> String {
    let name = text(claim, "/metadata/name").unwrap_or_default();
    let seed = format!(
        "{}/{name}/{}",
        text(claim, "/metadata/namespace").unwrap_or_default(),
        text(claim, "/metadata/uid").unwrap_or_default()
    );
    let hash = hex::encode(&Sha256::digest(seed.as_bytes())[..3]);
    let base: String = name.chars().take(50).collect();
    format!("{base}-{}", &hash[..5])
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

/// What the claim's XRD decides for its claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policies {
    pub delete: String,
    pub update: String,
    /// `spec.enforcedCompositionRef`: the composite resource's Composition
    /// is not the claim's to choose.
    pub enforced: bool,
    /// Where the composite resource writes its connection Secret.
    pub secrets_namespace: String,
}

impl Policies {
    pub fn of(xrd: &Value, claim: &Value) -> Policies {
        let field = |name: &str| text(claim, &format!("/spec/{name}")).map(str::to_string);
        Policies {
            delete: field("compositeDeletePolicy")
                .unwrap_or_else(|| crate::crds::default_delete_policy(xrd).to_string()),
            update: field("compositionUpdatePolicy")
                .unwrap_or_else(|| crate::crds::default_update_policy(xrd).to_string()),
            enforced: text(xrd, "/spec/enforcedCompositionRef/name").is_some(),
            secrets_namespace: text(xrd, "/spec/writeConnectionSecretsToNamespace")
                .filter(|n| !n.is_empty())
                .unwrap_or(names::SYSTEM_NAMESPACE)
                .to_string(),
        }
    }
}

/// The kinds a claim reconciler serves.
#[derive(Debug, Clone)]
pub struct Kinds {
    pub claim: XrKind,
    pub composite: XrKind,
    pub xrd: String,
}

/// What the plan reads besides the claim.
pub struct Inputs<'a> {
    pub kinds: &'a Kinds,
    /// `Null` once the XRD is gone: a claim can still be deleted, with the defaults.
    pub xrd: &'a Value,
    /// The composite resource, if it exists.
    pub xr: Option<&'a Value>,
    pub compositions: &'a [Arc<Value>],
    pub revisions: &'a [Arc<Value>],
    /// The data of the composite resource's connection Secret, if it exists.
    pub xr_secret: Option<&'a BTreeMap<String, Vec<u8>>>,
    /// The claim's own connection Secret as it is now, if it exists.
    pub claim_secret: Option<&'a Value>,
    pub applied: &'a Applied,
}

/// What one cycle of a claim does.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Nothing, until something changes.
    AwaitChange,
    /// The claim is deleted: delete its composite resource; with
    /// `foreground`, the claim waits until it is gone.
    Delete {
        composite: String,
        foreground: bool,
    },
    /// The composite resource is gone: let the claim go.
    Release,
    Sync(Box<Sync>),
}

/// The writes that keep a claim and its composite resource in step, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Sync {
    /// One merge patch of the claim: its finalizer and what the composite
    /// resource decided (resourceRef, compositionRef, compositionRevisionRef).
    pub claim: Option<Value>,
    /// The composite resource, server-side applied as the claim's manager.
    pub composite: Option<Value>,
    /// The claim's connection Secret, in the claim's namespace.
    pub secret: Option<(String, Value)>,
    /// The composite resource's state and conditions, for the claim.
    pub conditions: Vec<Condition<'static>>,
    pub status: Value,
    /// Whether there is anything to report yet: a claim whose composite
    /// resource has reported nothing says nothing either (the composite
    /// resource wakes it when it does).
    pub report: bool,
    pub requeue: Duration,
}

/// The cycle of one claim.
pub fn plan(claim: &Value, inputs: &Inputs<'_>) -> Result<Plan, String> {
    let Inputs { kinds, xrd, xr, .. } = inputs;
    let policies = Policies::of(xrd, claim);
    let has_finalizer = claim
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|f| f == names::CLAIM_FINALIZER));
    let xr_name = text(claim, "/spec/resourceRef/name")
        .map(str::to_string)
        .unwrap_or_else(|| composite_name(claim));

    if claim
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        if !has_finalizer {
            return Ok(Plan::AwaitChange);
        }
        let foreground = policies.delete == names::DELETE_FOREGROUND;
        return Ok(match xr {
            Some(xr)
                if xr
                    .pointer("/metadata/deletionTimestamp")
                    .is_none_or(Value::is_null) =>
            {
                Plan::Delete {
                    composite: xr_name,
                    foreground,
                }
            }
            // Foreground: the composite resource stays until the garbage
            // collector has deleted its composed resources, and those stay
            // until their provider deleted what they stand for, so the claim
            // is gone only once everything behind it is.
            Some(_) if foreground => Plan::Delete {
                composite: xr_name,
                foreground,
            },
            _ => Plan::Release,
        });
    }

    let name = text(claim, "/metadata/name").unwrap_or_default();
    let namespace = text(claim, "/metadata/namespace").unwrap_or("default");
    if let Some(existing) = xr {
        let bound = text(existing, "/spec/claimRef/name");
        let bound_ns = text(existing, "/spec/claimRef/namespace");
        if bound.is_some() && (bound != Some(name) || bound_ns != Some(namespace)) {
            return Err(format!(
                "composite resource {xr_name} is bound to another claim"
            ));
        }
    }

    // What the composite resource decided, back on the claim, in the one
    // write that binds it. Before the composite resource has decided, the
    // claim makes the same choice it will (the same rules over the same
    // Compositions), so the claim is written once rather than once to bind
    // and once more to copy the decision back.
    let mut back = Map::new();
    if text(claim, "/spec/resourceRef/name") != Some(xr_name.as_str()) {
        back.insert(
            "resourceRef".into(),
            json!({"apiVersion": kinds.composite.api_version, "kind": kinds.composite.kind, "name": xr_name}),
        );
    }
    let choice = match xr {
        Some(xr) if text(xr, "/spec/compositionRef/name").is_some() => (
            text(xr, "/spec/compositionRef/name").map(str::to_string),
            text(xr, "/spec/compositionRevisionRef/name").map(str::to_string),
        ),
        _ => {
            let would_be =
                json!({"spec": composite_spec(claim, policies.enforced, &policies.update)});
            match select(
                &would_be,
                xrd,
                &kinds.composite,
                &kinds.xrd,
                inputs.compositions,
                inputs.revisions,
            ) {
                Ok(selected) => (Some(selected.composition), selected.revision),
                // The composite resource reports why; the claim copies that.
                Err(_) => (None, None),
            }
        }
    };
    for (field, decided) in [
        ("compositionRef", &choice.0),
        ("compositionRevisionRef", &choice.1),
    ] {
        if let Some(decided) = decided
            .as_deref()
            .filter(|d| text(claim, &format!("/spec/{field}/name")) != Some(*d))
        {
            back.insert(field.into(), json!({"name": decided}));
        }
    }
    let mut claim_patch = Map::new();
    if !has_finalizer {
        let mut list: Vec<Value> = claim
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        list.push(json!(names::CLAIM_FINALIZER));
        claim_patch.insert("metadata".into(), json!({"finalizers": list}));
    }
    if !back.is_empty() {
        claim_patch.insert("spec".into(), Value::Object(back.clone()));
    }
    // The claim as it is once that write is made.
    let mut bound = claim.clone();
    if let Some(spec) = bound.get_mut("spec").and_then(Value::as_object_mut) {
        spec.extend(back);
    }

    let mut spec = composite_spec(&bound, policies.enforced, &policies.update);
    spec.insert(
        "claimRef".into(),
        json!({"apiVersion": kinds.claim.api_version, "kind": kinds.claim.kind, "name": name, "namespace": namespace}),
    );
    spec.insert(
        "writeConnectionSecretToRef".into(),
        json!({"namespace": policies.secrets_namespace, "name": xr_name}),
    );
    let mut desired = json!({
        "apiVersion": kinds.composite.api_version,
        "kind": kinds.composite.kind,
        "metadata": {"name": xr_name, "labels": {names::LABEL_CLAIM_NAME: name, names::LABEL_CLAIM_NAMESPACE: namespace}},
        "spec": spec
    });
    if let Some(secret) = text(claim, "/spec/writeConnectionSecretToRef/name") {
        desired["metadata"]["annotations"] =
            json!({names::ANNOTATION_CLAIM_CONNECTION_SECRET: secret});
    }
    // Server-side apply creates it too: the claim's manager then owns every
    // field it copied from the claim, so a field dropped from the claim is
    // dropped from the composite resource.
    let memory_key = format!(
        "{}/{}/{xr_name}",
        kinds.composite.api_version, kinds.composite.kind
    );
    let composite = match xr {
        Some(live) if !inputs.applied.needed(&memory_key, &desired, Some(live)) => None,
        _ => Some(desired),
    };

    let secret = claim_secret(claim, kinds, inputs, namespace);

    // The composite resource's state and conditions, on the claim.
    let mut status = xr
        .and_then(|x| x.get("status"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    // Ready and Synced, and whatever else functions target at the claim
    // (Crossplane lists those in the XR's status.claimConditionTypes).
    let for_claim: Vec<String> = status
        .get("claimConditionTypes")
        .and_then(Value::as_array)
        .map(|types| {
            types
                .iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let copied: Vec<Condition<'static>> = status
        .get("conditions")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(copy_condition)
                .filter(|c| {
                    c.type_ == condition::READY
                        || c.type_ == condition::SYNCED
                        || for_claim.iter().any(|t| *t == c.type_)
                })
                .collect()
        })
        .unwrap_or_default();
    let mut conditions = copied.clone();
    if copied.iter().all(|c| c.type_ != condition::READY) {
        conditions.push(Condition::new(
            condition::READY,
            false,
            reason::CREATING,
            "waiting for the composite resource",
        ));
    }
    if copied.iter().all(|c| c.type_ != condition::SYNCED) {
        conditions.push(Condition::new(
            condition::SYNCED,
            true,
            reason::RECONCILE_SUCCESS,
            "",
        ));
    }
    if let Some(map) = status.as_object_mut() {
        map.remove("conditions");
        map.remove("claimConditionTypes");
    }
    let ready = copied
        .iter()
        .any(|c| c.type_ == condition::READY && c.status);
    let report = !copied.is_empty() || claim.pointer("/status/conditions").is_some();
    Ok(Plan::Sync(Box::new(Sync {
        claim: (!claim_patch.is_empty()).then_some(Value::Object(claim_patch)),
        composite,
        secret,
        conditions,
        status,
        report,
        requeue: util::spread(
            if ready {
                names::RESYNC_READY
            } else {
                names::RESYNC_NOT_READY
            },
            text(claim, "/metadata/uid"),
        ),
    })))
}

/// A condition of the composite resource, as the claim reports it.
fn copy_condition(c: &Value) -> Option<Condition<'static>> {
    Some(Condition::new(
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
}

/// The claim's connection Secret: the composite resource's, in the claim's
/// namespace, when the claim asks for one and it is not in place as last
/// applied. Nothing is written before the composite resource's Secret exists.
fn claim_secret(
    claim: &Value,
    kinds: &Kinds,
    inputs: &Inputs<'_>,
    namespace: &str,
) -> Option<(String, Value)> {
    let target = text(claim, "/spec/writeConnectionSecretToRef/name")?;
    let data: Map<String, Value> = inputs
        .xr_secret?
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                json!(base64::engine::general_purpose::STANDARD.encode(v)),
            )
        })
        .collect();
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": target, "namespace": namespace, "ownerReferences": [{
            "apiVersion": kinds.claim.api_version, "kind": kinds.claim.kind,
            "name": text(claim, "/metadata/name").unwrap_or_default(),
            "uid": text(claim, "/metadata/uid").unwrap_or_default(), "controller": true}]},
        "type": "connection.crossplane.io/v1alpha1",
        "data": data
    });
    let key = format!("v1/Secret/{namespace}/{target}");
    inputs
        .applied
        .needed(
            &key,
            &secret,
            Some(inputs.claim_secret.unwrap_or(&Value::Null)),
        )
        .then(|| (target.to_string(), secret))
}

#[cfg(test)]
mod tests;

//! The composite reconciler's decisions, with no I/O: which Composition and
//! revision an XR uses, and, given what it composes as it is now, what to
//! apply, what to delete, and what to report.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use composition::{render, Composed, Observed, Rendered};
use runtime::conditions::Condition;
use runtime::names::{condition, reason};
use serde_json::{json, Map, Value};

use crate::names;
use crate::util::{self, Applied};

/// The XR kind a reconciler serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XrKind {
    pub api_version: String,
    pub kind: String,
}

/// The Composition (and revision) an XR renders.
#[derive(Debug, Clone, PartialEq)]
pub struct Selected {
    pub composition: String,
    /// The CompositionRevision, once the revision controller made one.
    pub revision: Option<String>,
    /// `{"spec": ...}` of what is rendered.
    pub spec: Value,
}

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// Whether a Composition (or revision) spec is for this composite kind:
/// group and kind, since two groups may share a kind (any served version of
/// the group will do, as the XR is the same object at each).
pub fn composes(composition: &Value, xr: &XrKind) -> bool {
    let group = |v: &str| {
        v.split_once('/')
            .map(|(g, _)| g.to_string())
            .unwrap_or_default()
    };
    text(composition, "/spec/compositeTypeRef/kind") == Some(xr.kind.as_str())
        && text(composition, "/spec/compositeTypeRef/apiVersion").map(group)
            == Some(group(&xr.api_version))
}

/// The Composition to use, enforced, named, selected by labels or the
/// default, and the revision of it: pinned by `compositionRevisionRef` under
/// the Manual policy, else the newest.
pub fn select(
    xr: &Value,
    xrd: &Value,
    kind: &XrKind,
    xrd_name: &str,
    compositions: &[Arc<Value>],
    revisions: &[Arc<Value>],
) -> Result<Selected, String> {
    let spec = xr.get("spec").cloned().unwrap_or_default();
    let chosen = if let Some(n) = text(xrd, "/spec/enforcedCompositionRef/name") {
        n.to_string()
    } else if let Some(n) = text(&spec, "/compositionRef/name") {
        n.to_string()
    } else if let Some(selector) = spec.get("compositionSelector").filter(|s| s.is_object()) {
        let mut matching: Vec<&str> = compositions
            .iter()
            .filter(|c| composes(c, kind) && util::labels_match(selector, &labels(c)))
            .filter_map(|c| text(c, "/metadata/name"))
            .collect();
        matching.sort();
        matching.first().map(|n| n.to_string()).ok_or_else(|| {
            format!(
                "no Composition for {} matches spec.compositionSelector {}",
                kind.kind,
                selector.get("matchLabels").cloned().unwrap_or_default()
            )
        })?
    } else if let Some(n) = text(xrd, "/spec/defaultCompositionRef/name") {
        n.to_string()
    } else {
        return Err(format!(
            "no Composition selected: set spec.compositionRef or spec.compositionSelector, or give XRD {xrd_name} a defaultCompositionRef"
        ));
    };
    let composition = compositions
        .iter()
        .find(|c| text(c, "/metadata/name") == Some(chosen.as_str()))
        .ok_or_else(|| format!("Composition {chosen:?} does not exist"))?;
    if !composes(composition, kind) {
        let type_ref = |field: &str| {
            text(composition, &format!("/spec/compositeTypeRef/{field}"))
                .unwrap_or("?")
                .to_string()
        };
        return Err(format!(
            "Composition {chosen:?} composes {} {}, not {} {}",
            type_ref("apiVersion"),
            type_ref("kind"),
            kind.api_version,
            kind.kind
        ));
    }
    let policy = text(xr, "/spec/compositionUpdatePolicy")
        .or_else(|| text(xrd, "/spec/defaultCompositionUpdatePolicy"))
        .unwrap_or(names::POLICY_AUTOMATIC);
    if policy == names::POLICY_MANUAL {
        if let Some(pinned) = text(xr, "/spec/compositionRevisionRef/name") {
            let r = revisions
                .iter()
                .find(|r| text(r, "/metadata/name") == Some(pinned))
                .ok_or_else(|| format!("CompositionRevision {pinned:?} does not exist"))?;
            return Ok(Selected {
                composition: chosen,
                revision: Some(pinned.to_string()),
                spec: json!({"spec": r.get("spec").cloned().unwrap_or_default()}),
            });
        }
    }
    let newest = revisions
        .iter()
        .filter(|r| {
            labels(r)
                .get(names::LABEL_COMPOSITION_NAME)
                .map(String::as_str)
                == Some(chosen.as_str())
        })
        .max_by_key(|r| {
            r.pointer("/spec/revision")
                .and_then(Value::as_i64)
                .unwrap_or(0)
        });
    Ok(match newest {
        Some(r) => Selected {
            composition: chosen,
            revision: text(r, "/metadata/name").map(str::to_string),
            spec: json!({"spec": r.get("spec").cloned().unwrap_or_default()}),
        },
        // The revision controller has not caught up yet; the Composition is the same spec.
        None => Selected {
            composition: chosen,
            revision: None,
            spec: json!({"spec": composition.get("spec").cloned().unwrap_or_default()}),
        },
    })
}

fn labels(o: &Value) -> BTreeMap<String, String> {
    o.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// One composed resource template's kind and the name its resource gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub template: String,
    pub api_version: String,
    pub kind: String,
    pub name: String,
}

/// The templates of a Composition spec, with their resources' names.
pub fn templates(xr_name: &str, selected: &Selected) -> Vec<Template> {
    selected
        .spec
        .pointer("/spec/resources")
        .and_then(Value::as_array)
        .map(|resources| {
            resources
                .iter()
                .enumerate()
                .filter_map(|(i, t)| {
                    let template = t
                        .get("name")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("resource-{i}"));
                    Some(Template {
                        name: composition::render::composed_name(xr_name, &template),
                        api_version: text(t, "/base/apiVersion")?.to_string(),
                        kind: text(t, "/base/kind")?.to_string(),
                        template,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// An object reference as `spec.resourceRefs` holds them: Crossplane's
/// `apiVersion`, `kind` and `name`, and `namespace` for a namespaced
/// composed resource (a Dapr Component in the claim's namespace), as
/// Crossplane v2 writes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
}

impl ObjectRef {
    fn json(&self) -> Value {
        let mut v = json!({"apiVersion": self.api_version, "kind": self.kind, "name": self.name});
        if let Some(ns) = &self.namespace {
            v["namespace"] = json!(ns);
        }
        v
    }

    /// The reference as a `resourceRefs` entry holds it.
    pub fn of(r: &Value) -> Option<ObjectRef> {
        Some(ObjectRef {
            api_version: r.get("apiVersion")?.as_str()?.to_string(),
            kind: r.get("kind")?.as_str()?.to_string(),
            name: r.get("name")?.as_str()?.to_string(),
            namespace: r
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .map(str::to_string),
        })
    }

    /// Where the shared cache keeps the object.
    pub fn key(&self) -> runtime::Key {
        runtime::Key::new(self.namespace.as_deref(), &self.name)
    }
}

/// One composed resource to server-side apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Apply {
    pub target: ObjectRef,
    pub template: String,
    pub object: Value,
}

impl Apply {
    /// What the memory of last applies is keyed by.
    pub fn memory_key(&self) -> String {
        match &self.target.namespace {
            Some(ns) => format!(
                "{}/{}/{ns}/{}",
                self.target.api_version, self.target.kind, self.target.name
            ),
            None => format!(
                "{}/{}/{}",
                self.target.api_version, self.target.kind, self.target.name
            ),
        }
    }
}

/// Everything one cycle does, in the order the executor does it.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub applies: Vec<Apply>,
    /// Resources the Composition no longer renders.
    pub deletes: Vec<ObjectRef>,
    /// What this reconciler owns of the XR, when the XR does not hold it yet.
    pub xr: Option<Value>,
    /// The XR's connection Secret: namespace, name and the Secret to apply,
    /// when it is not in place as last applied.
    pub secret: Option<(String, String, Value)>,
    pub conditions: Vec<Condition<'static>>,
    /// Status fields besides the conditions.
    pub status: Value,
    /// Whether there is anything to report yet: a new XR whose resources
    /// have reported nothing themselves says nothing either (they wake it
    /// when they do), rather than a status that only says they are coming.
    pub report: bool,
    pub requeue: Duration,
}

/// What the plan reads besides the XR and its selected Composition.
pub struct Inputs<'a> {
    pub kind: &'a XrKind,
    pub xrd: &'a Value,
    pub selected: &'a Selected,
    /// Each template's resource as it is now, by template name.
    pub observed: &'a BTreeMap<String, Observed>,
    /// What was last applied where, so an unchanged apply is skipped.
    pub applied: &'a Applied,
    /// The XR's connection Secret as it is now, if it exists.
    pub live_secret: Option<&'a Value>,
    /// What a function pipeline decided, for a `mode: Pipeline`
    /// Composition; `None` renders patch & transform.
    pub pipeline: Option<&'a Pipelined>,
}

/// Condition types the composite reconciler sets itself; a function's
/// condition of one of these types is ignored, as Crossplane ignores it.
const RESERVED_CONDITIONS: &[&str] = &[
    condition::READY,
    condition::SYNCED,
    condition::HEALTHY,
    "UpToDate",
    "Responsive",
];

/// The soonest a pipeline's TTL brings its XR back.
const MIN_TTL_REQUEUE: Duration = Duration::from_secs(1);

/// A function pipeline's outcome, in the terms the plan works in.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipelined {
    pub rendered: Rendered,
    /// Conditions functions set on the XR.
    pub conditions: Vec<Condition<'static>>,
    /// The types of those that also go to the claim.
    pub claim_condition_types: Vec<String>,
    /// Run the pipeline again this soon, as the shortest TTL asked.
    pub ttl: Option<Duration>,
}

/// The pipeline's desired state as composed resources: each named as it
/// is now (else as the function names it, else `<xr>-<resource name>`),
/// stamped with the labels, annotation and owner as patch & transform
/// stamps them, without the status a function may not set.
pub fn pipelined(
    xr: &Value,
    outcome: &functions::Outcome,
    observed: &BTreeMap<String, Observed>,
) -> Result<Pipelined, String> {
    let xr_name = text(xr, "/metadata/name").unwrap_or_default().to_string();
    let mut composed = Vec::new();
    for (name, desired) in &outcome.resources {
        let mut object = desired.object.clone();
        if !object.is_object() {
            return Err(format!("desired resource {name:?} is not an object"));
        }
        if text(&object, "/apiVersion").is_none() || text(&object, "/kind").is_none() {
            return Err(format!(
                "desired resource {name:?}: apiVersion and kind are required"
            ));
        }
        let current = observed
            .get(name)
            .and_then(|o| text(&o.object, "/metadata/name"))
            .or_else(|| text(&desired.object, "/metadata/name"))
            .map(str::to_string);
        composition::render::stamp(&mut object, xr, &xr_name, name);
        if let Some(n) = current {
            object["metadata"]["name"] = json!(n);
        }
        if let Some(map) = object.as_object_mut() {
            map.remove("status");
        }
        composed.push(Composed {
            template: name.clone(),
            object,
            ready: desired.ready,
        });
    }
    // The desired composite counts for its status only.
    let mut composite = xr.clone();
    if let Some(desired) = outcome.composite.get("status").and_then(Value::as_object) {
        if !composite.get("status").is_some_and(Value::is_object) {
            composite["status"] = json!({});
        }
        for (k, v) in desired {
            if k != "conditions" {
                composite["status"][k] = v.clone();
            }
        }
    }
    let ready = outcome
        .ready
        .unwrap_or_else(|| composed.iter().all(|c| c.ready));
    let mut conditions = Vec::new();
    let mut claim_condition_types = Vec::new();
    for c in &outcome.conditions {
        if RESERVED_CONDITIONS.contains(&c.type_.as_str()) {
            continue;
        }
        // Conditions here are True or not; Unknown reads as not True.
        conditions.push(Condition::new(
            c.type_.clone(),
            c.status == "True",
            c.reason.clone(),
            c.message.clone(),
        ));
        if c.target == functions::pipeline::Target::CompositeAndClaim
            && !claim_condition_types.contains(&c.type_)
        {
            claim_condition_types.push(c.type_.clone());
        }
    }
    Ok(Pipelined {
        rendered: Rendered {
            composed,
            composite,
            to_composite: json!({}),
            connection: outcome.connection.clone(),
            ready,
        },
        conditions,
        claim_condition_types,
        ttl: outcome.ttl,
    })
}

/// The cycle of one XR.
pub fn plan(xr: &Value, inputs: &Inputs<'_>) -> Result<Plan, String> {
    let Inputs {
        kind,
        xrd,
        selected,
        observed,
        applied,
        live_secret,
        pipeline,
    } = inputs;
    let xr_name = text(xr, "/metadata/name").unwrap_or_default().to_string();
    let rendered = match pipeline {
        Some(p) => p.rendered.clone(),
        None => render(xr, &selected.spec, observed)
            .map_err(|e| format!("Composition {:?}: {e}", selected.composition))?,
    };
    let template_specs = selected
        .spec
        .pointer("/spec/resources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();

    let mut applies = Vec::new();
    let mut refs = Vec::new();
    let mut unready = Vec::new();
    for c in &rendered.composed {
        let mut object = c.object.clone();
        let wants_secret = template_specs
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some(c.template.as_str()))
            .and_then(|t| t.get("connectionDetails"))
            .and_then(Value::as_array)
            .is_some_and(|d| !d.is_empty());
        if wants_secret && object.pointer("/spec/writeConnectionSecretToRef").is_none() {
            object["spec"]["writeConnectionSecretToRef"] = json!({"namespace": names::SYSTEM_NAMESPACE, "name": object["metadata"]["name"].clone()});
        }
        let target = ObjectRef {
            api_version: text(&object, "/apiVersion").unwrap_or_default().to_string(),
            kind: text(&object, "/kind").unwrap_or_default().to_string(),
            name: text(&object, "/metadata/name")
                .unwrap_or_default()
                .to_string(),
            namespace: text(&object, "/metadata/namespace")
                .filter(|n| !n.is_empty())
                .map(str::to_string),
        };
        let apply = Apply {
            target: target.clone(),
            template: c.template.clone(),
            object,
        };
        // Not there (deleted by someone, say): applied again whatever the memory says.
        let live = observed
            .get(&c.template)
            .map_or(&Value::Null, |o| &o.object);
        if applied.needed(&apply.memory_key(), &apply.object, Some(live)) {
            applies.push(apply);
        }
        refs.push(target.clone());
        if !c.ready {
            unready.push(format!(
                "{} {}: {}",
                target.kind,
                target.name,
                why_unready(observed.get(&c.template))
            ));
        }
    }
    let wanted: BTreeSet<&ObjectRef> = refs.iter().collect();
    let deletes: Vec<ObjectRef> = xr
        .pointer("/spec/resourceRefs")
        .and_then(Value::as_array)
        .map(|old| {
            old.iter()
                .filter_map(ObjectRef::of)
                .filter(|r| !wanted.contains(r))
                .collect()
        })
        .unwrap_or_default();
    // What this reconciler decides on the XR: the Composition and revision,
    // the composed resources, and whatever ToComposite patches wrote into
    // its spec and metadata (Crossplane applies those to the whole XR, not
    // only its status). Server-side applied as this manager, so a field a
    // ToComposite patch stops writing is removed again.
    let mut owned_spec = rendered
        .to_composite
        .get("spec")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    owned_spec.insert(
        "resourceRefs".into(),
        Value::Array(refs.iter().map(ObjectRef::json).collect()),
    );
    owned_spec.insert(
        "compositionRef".into(),
        json!({"name": selected.composition}),
    );
    if let Some(r) = &selected.revision {
        owned_spec.insert("compositionRevisionRef".into(), json!({"name": r}));
    }
    let own_secret = xr.pointer("/spec/writeConnectionSecretToRef").is_none()
        && xr.pointer("/spec/claimRef").is_none();
    if let Some(ns) =
        text(&selected.spec, "/spec/writeConnectionSecretsToNamespace").filter(|_| own_secret)
    {
        // Crossplane: an XR of its own (no claim) gets a Secret named after
        // its UID in the Composition's namespace.
        let name = text(xr, "/metadata/uid").unwrap_or(&xr_name).to_string();
        owned_spec.insert(
            "writeConnectionSecretToRef".into(),
            json!({"namespace": ns, "name": name}),
        );
    }
    let mut owned_meta = json!({"name": xr_name});
    for field in ["labels", "annotations"] {
        if let Some(m) = rendered
            .to_composite
            .pointer(&format!("/metadata/{field}"))
            .filter(|m| m.is_object())
        {
            owned_meta[field] = m.clone();
        }
    }
    let owned = json!({
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": owned_meta,
        "spec": owned_spec,
    });
    let xr_after = if util::contains(xr, &owned) {
        None
    } else {
        Some(owned.clone())
    };
    // The Secret goes where the XR says once that apply is made.
    let secret_ref = owned
        .pointer("/spec/writeConnectionSecretToRef")
        .or_else(|| xr.pointer("/spec/writeConnectionSecretToRef"));
    let secret = match secret_ref.and_then(|r| Some((text(r, "/namespace")?, text(r, "/name")?))) {
        Some((ns, n)) => connection_secret(
            xr,
            xrd,
            kind,
            &rendered.connection,
            ns,
            n,
            applied,
            *live_secret,
        ),
        None => None,
    };

    // State read back from composed resources, and readiness.
    let mut status = rendered
        .composite
        .get("status")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Some(map) = status.as_object_mut() {
        map.remove("conditions");
        if let Some(p) = pipeline {
            // Crossplane's field: which of the XR's conditions the claim shows.
            map.insert("claimConditionTypes".into(), json!(p.claim_condition_types));
        }
    }
    let ready = if rendered.ready {
        Condition::new(condition::READY, true, reason::AVAILABLE, "")
    } else {
        Condition::new(
            condition::READY,
            false,
            reason::CREATING,
            format!("Unready resources: {}", unready.join("; ")),
        )
    };
    let heard_from = observed
        .values()
        .any(|o| o.object.pointer("/status/conditions").is_some())
        || xr.pointer("/status/conditions").is_some();
    Ok(Plan {
        applies,
        deletes,
        xr: xr_after,
        secret,
        // A pipeline may compose nothing and still have status to show.
        report: heard_from || pipeline.is_some(),
        conditions: [
            ready,
            Condition::new(condition::SYNCED, true, reason::RECONCILE_SUCCESS, ""),
        ]
        .into_iter()
        .chain(pipeline.iter().flat_map(|p| p.conditions.iter().cloned()))
        .collect(),
        status,
        requeue: {
            let resync = util::spread(
                if rendered.ready {
                    names::RESYNC_READY
                } else {
                    names::RESYNC_NOT_READY
                },
                text(xr, "/metadata/uid"),
            );
            // A TTL shorter than a second would make a busy loop of it.
            pipeline
                .and_then(|p| p.ttl)
                .map_or(resync, |ttl| ttl.max(MIN_TTL_REQUEUE).min(resync))
        },
    })
}

/// Why a composed resource is not ready, in its own words where it has some.
fn why_unready(observed: Option<&Observed>) -> String {
    observed
        .and_then(|o| {
            let synced = util::condition(&o.object, condition::SYNCED);
            let ready = util::condition(&o.object, condition::READY);
            synced
                .filter(|s| s["status"] == "False")
                .or(ready)
                .and_then(|c| {
                    match c.get("message").and_then(Value::as_str) {
                        Some(message) if !message.is_empty() => Some(message),
                        // A resource on its way up says no more than that, so
                        // this message (and each status write it causes, here
                        // and on the claim) changes only when something does.
                        _ => c
                            .get("reason")
                            .and_then(Value::as_str)
                            .filter(|r| *r != reason::CREATING),
                    }
                })
        })
        .map(str::to_string)
        .unwrap_or_else(|| "being created".into())
}

/// The XR's connection Secret, when it has details to hold (or holds some
/// already) and is not in place as last applied.
#[allow(clippy::too_many_arguments)]
fn connection_secret(
    xr: &Value,
    xrd: &Value,
    kind: &XrKind,
    details: &BTreeMap<String, Vec<u8>>,
    namespace: &str,
    name: &str,
    applied: &Applied,
    live: Option<&Value>,
) -> Option<(String, String, Value)> {
    let keys: Vec<&str> = xrd
        .pointer("/spec/connectionSecretKeys")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let data: Map<String, Value> = details
        .iter()
        .filter(|(k, _)| keys.is_empty() || keys.contains(&k.as_str()))
        .map(|(k, v)| {
            (
                k.clone(),
                json!(base64::engine::general_purpose::STANDARD.encode(v)),
            )
        })
        .collect();
    // No details, and no Secret yet: none is written.
    if data.is_empty() && live.is_none() {
        return None;
    }
    // The claim's labels let the claim reconciler hear of a changed Secret.
    let labels: Map<String, Value> = [names::LABEL_CLAIM_NAME, names::LABEL_CLAIM_NAMESPACE]
        .into_iter()
        .filter_map(|key| {
            Some((
                key.to_string(),
                xr.pointer("/metadata/labels")?.get(key)?.clone(),
            ))
        })
        .collect();
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": labels, "ownerReferences": [{
            "apiVersion": kind.api_version, "kind": kind.kind,
            "name": text(xr, "/metadata/name").unwrap_or_default(), "uid": text(xr, "/metadata/uid").unwrap_or_default(), "controller": true}]},
        "type": "connection.crossplane.io/v1alpha1",
        "data": data
    });
    let key = format!("v1/Secret/{namespace}/{name}");
    applied
        .needed(&key, &secret, Some(live.unwrap_or(&Value::Null)))
        .then(|| (namespace.to_string(), name.to_string(), secret))
}

#[cfg(test)]
mod tests;

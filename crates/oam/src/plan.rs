//! The Application reconciler's decisions, with no I/O: what an
//! Application's components become (one claim each), in which order
//! (`dependsOn`, workflow steps), which claims a removed component leaves
//! to delete, and the status KubeVela users read.

use std::collections::{BTreeMap, BTreeSet};

use runtime::conditions::{self, Condition};
use runtime::contains;
use serde_json::{json, Map, Value};

use crate::names::{self, label, phase, steps, traits};

/// One component, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub name: String,
    pub type_: String,
    pub properties: Value,
    /// Components that must be healthy first: `dependsOn`, and every
    /// component of an earlier workflow step.
    pub depends_on: BTreeSet<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The Secret the claim writes its connection details to.
    pub connection_secret: Option<String>,
}

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn quoted(list: &[&str]) -> String {
    list.iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A trait's properties as a map of strings (labels, annotations).
fn string_map(field: &str, properties: Option<&Value>) -> Result<BTreeMap<String, String>, String> {
    let Some(properties) = properties else {
        return Ok(BTreeMap::new());
    };
    let Some(map) = properties.as_object() else {
        return Err(format!(
            "{field}: Invalid value: must be an object of strings"
        ));
    };
    map.iter()
        .map(|(k, v)| match v.as_str() {
            Some(s) => Ok((k.clone(), s.to_string())),
            None => Err(format!("{field}.{k}: Invalid value: {v}: must be a string")),
        })
        .collect()
}

/// Reads and checks an Application's spec: every component named once,
/// known trait types, no policies, workflow steps Plinth can run, and
/// dependencies that name components and form no cycle. The error names
/// the field, as the API server's validation does.
pub fn parse(app: &Value) -> Result<Vec<Component>, String> {
    let empty = Vec::new();
    let list = app
        .pointer("/spec/components")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    if let Some(policy) = app
        .pointer("/spec/policies")
        .and_then(Value::as_array)
        .and_then(|p| p.first())
    {
        return Err(format!(
            "spec.policies[0].type: Unsupported value: \"{}\": Plinth applies no Application policies (it runs every component on this control plane); remove spec.policies",
            text(policy, "/type").unwrap_or_default()
        ));
    }
    let mut components = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, c) in list.iter().enumerate() {
        let field = format!("spec.components[{i}]");
        let name = text(c, "/name")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("{field}.name: Required value"))?;
        let type_ = text(c, "/type")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("{field}.type: Required value"))?;
        if !seen.insert(name.to_string()) {
            return Err(format!("{field}.name: Duplicate value: \"{name}\""));
        }
        let properties = c.get("properties").cloned().unwrap_or_else(|| json!({}));
        if !properties.is_object() {
            return Err(format!(
                "{field}.properties: Invalid value: must be an object"
            ));
        }
        let mut component = Component {
            name: name.to_string(),
            type_: type_.to_string(),
            properties,
            depends_on: c
                .get("dependsOn")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            connection_secret: None,
        };
        for (j, t) in c
            .get("traits")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let field = format!("{field}.traits[{j}]");
            let properties = t.get("properties");
            match text(t, "/type").unwrap_or_default() {
                traits::LABELS => component
                    .labels
                    .extend(string_map(&format!("{field}.properties"), properties)?),
                traits::ANNOTATIONS => component
                    .annotations
                    .extend(string_map(&format!("{field}.properties"), properties)?),
                traits::CONNECTION_SECRET => {
                    let name = properties
                        .and_then(|p| p.get("name"))
                        .and_then(Value::as_str)
                        .filter(|n| !n.is_empty())
                        .ok_or_else(|| {
                            format!("{field}.properties.name: Required value: the name of the Secret the claim writes")
                        })?;
                    component.connection_secret = Some(name.to_string());
                }
                other => {
                    return Err(format!(
                        "{field}.type: Unsupported value: \"{other}\": supported values: {}",
                        quoted(traits::ALL)
                    ))
                }
            }
        }
        components.push(component);
    }
    // Workflow steps run in order: each step's component waits for those
    // of every earlier step.
    let mut earlier: BTreeSet<String> = BTreeSet::new();
    for (i, step) in app
        .pointer("/spec/workflow/steps")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = format!("spec.workflow.steps[{i}]");
        let type_ = text(step, "/type").unwrap_or_default();
        if type_ != steps::APPLY_COMPONENT {
            return Err(format!(
                "{field}.type: Unsupported value: \"{type_}\": supported values: {}",
                quoted(steps::ALL)
            ));
        }
        let target = text(step, "/properties/component").ok_or_else(|| {
            format!("{field}.properties.component: Required value: the component this step applies")
        })?;
        let Some(component) = components.iter_mut().find(|c| c.name == target) else {
            return Err(format!(
                "{field}.properties.component: Not found: \"{target}\": no component has that name"
            ));
        };
        component.depends_on.extend(earlier.iter().cloned());
        earlier.insert(target.to_string());
    }
    for (i, c) in components.iter().enumerate() {
        for dependency in &c.depends_on {
            if !seen.contains(dependency) {
                return Err(format!(
                    "spec.components[{i}].dependsOn: Not found: \"{dependency}\": no component has that name"
                ));
            }
        }
    }
    if let Some(cycle) = cycle(&components) {
        return Err(format!(
            "spec.components: Invalid value: the components depend on each other in a cycle: {}",
            cycle.join(" -> ")
        ));
    }
    Ok(components)
}

/// A dependency cycle among the components, if there is one.
fn cycle(components: &[Component]) -> Option<Vec<String>> {
    let by_name: BTreeMap<&str, &Component> =
        components.iter().map(|c| (c.name.as_str(), c)).collect();
    fn visit<'a>(
        name: &'a str,
        by_name: &BTreeMap<&'a str, &'a Component>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|p| *p == name) {
            let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
            cycle.push(name.to_string());
            return Some(cycle);
        }
        if !done.insert(name) {
            return None;
        }
        path.push(name);
        for dependency in by_name
            .get(name)
            .map(|c| &c.depends_on)
            .into_iter()
            .flatten()
        {
            if let Some(cycle) = visit(dependency, by_name, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    components
        .iter()
        .find_map(|c| visit(&c.name, &by_name, &mut Vec::new(), &mut done))
}

/// What a component type stands for: the claim kind a ComponentDefinition names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub api_version: String,
    pub kind: String,
    /// Whether properties go to `spec.parameters` (the claim's schema has
    /// it, as Plinth's interfaces and Crossplane's docs do) or to `spec`.
    pub into_parameters: bool,
}

/// A claim an Application made, as `status.appliedResources` lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Applied {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

impl Applied {
    pub fn to_value(&self) -> Value {
        json!({"apiVersion": self.api_version, "kind": self.kind, "name": self.name,
               "namespace": self.namespace, "creator": "workflow"})
    }

    fn of(v: &Value) -> Option<Applied> {
        Some(Applied {
            api_version: text(v, "/apiVersion")?.to_string(),
            kind: text(v, "/kind")?.to_string(),
            name: text(v, "/name")?.to_string(),
            namespace: text(v, "/namespace")?.to_string(),
        })
    }
}

/// What the plan reads.
pub struct Observed<'a> {
    pub app: &'a Value,
    /// By component type: the definition, or why it cannot be used.
    pub definitions: &'a BTreeMap<String, Result<Definition, String>>,
    /// By component name: its claim, if it exists.
    pub claims: &'a BTreeMap<String, Value>,
}

/// One entry of `status.services`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub healthy: bool,
    pub message: String,
    pub workload: Option<(String, String)>,
    /// Whether its claim is not made yet because of what it depends on.
    pub waiting: bool,
}

/// What one cycle of an Application does.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Claims to server-side apply, by component name.
    pub apply: Vec<(String, Value)>,
    /// Claims of components that are gone.
    pub delete: Vec<Applied>,
    pub services: Vec<Service>,
    /// `status.appliedResources` once the writes have succeeded.
    pub applied: Vec<Applied>,
    /// Why the Application cannot be run at all.
    pub refused: Option<String>,
}

/// The name of a component's claim: `<app>-<component>`, as KubeVela names
/// what it renders.
pub fn claim_name(app: &str, component: &str) -> String {
    format!("{app}-{component}")
}

/// Whether a claim reports `Ready=True`, and the Ready condition's words.
fn readiness(claim: &Value) -> (bool, String) {
    let ready = claim
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| text(c, "/type") == Some("Ready"));
    match ready {
        Some(c) if text(c, "/status") == Some("True") => (true, "Ready".into()),
        Some(c) => {
            let reason = text(c, "/reason").unwrap_or("NotReady");
            match text(c, "/message").filter(|m| !m.is_empty()) {
                Some(m) => (false, format!("{reason}: {m}")),
                None => (false, reason.to_string()),
            }
        }
        None => (false, "waiting for the claim to report Ready".into()),
    }
}

/// The claim a component becomes.
pub fn desired_claim(app: &Value, component: &Component, definition: &Definition) -> Value {
    let app_name = text(app, "/metadata/name").unwrap_or_default();
    let namespace = text(app, "/metadata/namespace").unwrap_or_default();
    let mut labels: Map<String, Value> = component
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    labels.insert(label::APP_NAME.into(), json!(app_name));
    labels.insert(label::APP_NAMESPACE.into(), json!(namespace));
    labels.insert(label::COMPONENT.into(), json!(component.name));
    labels.insert(label::WORKLOAD_TYPE.into(), json!(component.type_));
    labels.insert(label::RESOURCE_TYPE.into(), json!("WORKLOAD"));
    let mut metadata = json!({
        "name": claim_name(app_name, &component.name),
        "namespace": namespace,
        "labels": labels,
        "ownerReferences": [{
            "apiVersion": names::API_VERSION,
            "kind": names::APPLICATION,
            "name": app_name,
            "uid": text(app, "/metadata/uid").unwrap_or_default(),
            "controller": true,
            "blockOwnerDeletion": true
        }]
    });
    if !component.annotations.is_empty() {
        metadata["annotations"] = json!(component.annotations);
    }
    let mut spec = if definition.into_parameters {
        json!({"parameters": component.properties})
    } else {
        component.properties.clone()
    };
    if let Some(secret) = &component.connection_secret {
        spec["writeConnectionSecretToRef"] = json!({"name": secret});
    }
    json!({
        "apiVersion": definition.api_version,
        "kind": definition.kind,
        "metadata": metadata,
        "spec": spec
    })
}

/// Whether the live claim already is what the component asks for.
fn up_to_date(live: &Value, desired: &Value) -> bool {
    let owned = |v: &Value| {
        v.pointer("/metadata/ownerReferences/0/uid")
            .cloned()
            .unwrap_or(Value::Null)
    };
    contains(&live["spec"], &desired["spec"])
        && contains(&live["metadata"]["labels"], &desired["metadata"]["labels"])
        && desired["metadata"]
            .get("annotations")
            .is_none_or(|a| contains(&live["metadata"]["annotations"], a))
        && live
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|o| o.get("uid") == Some(&owned(desired)))
}

pub fn plan(observed: &Observed) -> Plan {
    let app = observed.app;
    let namespace = text(app, "/metadata/namespace").unwrap_or_default();
    let app_name = text(app, "/metadata/name").unwrap_or_default();
    let previous: Vec<Applied> = app
        .pointer("/status/appliedResources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Applied::of)
        .collect();
    let components = match parse(app) {
        Ok(c) => c,
        Err(why) => {
            return Plan {
                apply: Vec::new(),
                delete: Vec::new(),
                services: Vec::new(),
                applied: previous,
                refused: Some(why),
            }
        }
    };
    let healthy: BTreeSet<&str> = components
        .iter()
        .filter(|c| {
            observed
                .claims
                .get(&c.name)
                .is_some_and(|claim| readiness(claim).0)
        })
        .map(|c| c.name.as_str())
        .collect();
    let mut plan = Plan {
        apply: Vec::new(),
        delete: Vec::new(),
        services: Vec::new(),
        applied: Vec::new(),
        refused: None,
    };
    let mut wanted: BTreeSet<Applied> = BTreeSet::new();
    for c in &components {
        let definition = observed.definitions.get(&c.type_);
        let live = observed.claims.get(&c.name);
        let mut service = Service {
            name: c.name.clone(),
            healthy: false,
            message: String::new(),
            workload: None,
            waiting: false,
        };
        let definition = match definition {
            Some(Ok(d)) => d,
            Some(Err(why)) => {
                service.message = why.clone();
                plan.services.push(service);
                // A claim made before the definition went keeps running.
                keep_previous(
                    &previous,
                    namespace,
                    &claim_name(app_name, &c.name),
                    &mut wanted,
                );
                continue;
            }
            None => {
                service.message = format!("no ComponentDefinition named \"{}\"", c.type_);
                plan.services.push(service);
                keep_previous(
                    &previous,
                    namespace,
                    &claim_name(app_name, &c.name),
                    &mut wanted,
                );
                continue;
            }
        };
        service.workload = Some((definition.api_version.clone(), definition.kind.clone()));
        let target = Applied {
            api_version: definition.api_version.clone(),
            kind: definition.kind.clone(),
            name: claim_name(app_name, &c.name),
            namespace: namespace.to_string(),
        };
        let waiting: Vec<&str> = c
            .depends_on
            .iter()
            .map(String::as_str)
            .filter(|d| !healthy.contains(d))
            .collect();
        // A component waits for what it depends on before its claim is
        // made; once made, it is kept in step whatever they do later.
        if live.is_none() && !waiting.is_empty() {
            service.message = format!("waiting for {} to be healthy", waiting.join(", "));
            service.waiting = true;
            plan.services.push(service);
            continue;
        }
        let desired = desired_claim(app, c, definition);
        if !live.is_some_and(|l| up_to_date(l, &desired)) {
            plan.apply.push((c.name.clone(), desired));
        }
        wanted.insert(target);
        (service.healthy, service.message) = match live {
            Some(claim) => readiness(claim),
            None => (
                false,
                "claim created; waiting for it to report Ready".into(),
            ),
        };
        plan.services.push(service);
    }
    plan.delete = previous
        .iter()
        .filter(|p| !wanted.contains(p))
        .cloned()
        .collect();
    plan.applied = wanted.into_iter().collect();
    plan
}

fn keep_previous(
    previous: &[Applied],
    namespace: &str,
    name: &str,
    wanted: &mut BTreeSet<Applied>,
) {
    wanted.extend(
        previous
            .iter()
            .filter(|p| p.name == name && p.namespace == namespace)
            .cloned(),
    );
}

/// Condition reasons, as KubeVela (and crossplane-runtime) spell them.
pub mod reason {
    pub const AVAILABLE: &str = "Available";
    pub const CREATING: &str = "Creating";
    pub const ERROR: &str = "ReconcileError";
}

/// Condition types on an Application, as KubeVela sets them.
pub mod condition {
    /// The spec could be read and checked.
    pub const PARSED: &str = "Parsed";
    /// Every component's claim was written.
    pub const RENDER: &str = "Render";
    /// Every component was applied in its turn.
    pub const WORKFLOW: &str = "Workflow";
    /// Every component is healthy.
    pub const READY: &str = "Ready";
}

/// The Application's status after a cycle: `failed` holds, by component,
/// why its claim could not be written or deleted.
pub fn status(app: &Value, plan: &Plan, failed: &BTreeMap<String, String>) -> Value {
    let namespace = text(app, "/metadata/namespace").unwrap_or_default();
    let existing = app.pointer("/status/conditions");
    let generation = app.pointer("/metadata/generation").and_then(Value::as_i64);
    if let Some(why) = &plan.refused {
        let updates = [
            Condition::new(condition::PARSED, false, reason::ERROR, why.clone()),
            Condition::new(condition::READY, false, reason::ERROR, why.clone()),
        ];
        return json!({
            "status": phase::RENDERING,
            "services": [],
            "appliedResources": plan.applied.iter().map(Applied::to_value).collect::<Vec<_>>(),
            "conditions": conditions::merged(existing, &updates, generation),
            "observedGeneration": generation,
        });
    }
    let services: Vec<Value> = plan
        .services
        .iter()
        .map(|s| {
            let (healthy, message) = match failed.get(&s.name) {
                Some(why) => (false, why.clone()),
                None => (s.healthy, s.message.clone()),
            };
            let mut v = json!({"name": s.name, "namespace": namespace, "cluster": "local",
                               "healthy": healthy, "message": message});
            if let Some((api_version, kind)) = &s.workload {
                v["workloadDefinition"] = json!({"apiVersion": api_version, "kind": kind});
            }
            v
        })
        .collect();
    let all_healthy = failed.is_empty() && plan.services.iter().all(|s| s.healthy);
    let unhealthy: Vec<&str> = plan
        .services
        .iter()
        .filter(|s| !s.healthy || failed.contains_key(&s.name))
        .map(|s| s.name.as_str())
        .collect();
    let render = if failed.is_empty() {
        Condition::new(condition::RENDER, true, reason::AVAILABLE, "")
    } else {
        let list: Vec<String> = failed
            .iter()
            .map(|(c, why)| format!("{c}: {why}"))
            .collect();
        Condition::new(condition::RENDER, false, reason::ERROR, list.join("; "))
    };
    let waiting: Vec<&str> = plan
        .services
        .iter()
        .filter(|s| s.waiting)
        .map(|s| s.name.as_str())
        .collect();
    let workflow = if waiting.is_empty() {
        Condition::new(condition::WORKFLOW, true, reason::AVAILABLE, "")
    } else {
        Condition::new(
            condition::WORKFLOW,
            false,
            reason::CREATING,
            format!("waiting to apply: {}", waiting.join(", ")),
        )
    };
    let ready = if all_healthy {
        Condition::new(condition::READY, true, reason::AVAILABLE, "")
    } else {
        Condition::new(
            condition::READY,
            false,
            reason::CREATING,
            format!("not yet healthy: {}", unhealthy.join(", ")),
        )
    };
    let updates = [
        Condition::new(condition::PARSED, true, reason::AVAILABLE, ""),
        render,
        workflow,
        ready,
    ];
    json!({
        "status": if all_healthy { phase::RUNNING } else { phase::RUNNING_WORKFLOW },
        "services": services,
        "appliedResources": plan.applied.iter().map(Applied::to_value).collect::<Vec<_>>(),
        "conditions": conditions::merged(existing, &updates, generation),
        "observedGeneration": generation,
    })
}

#[cfg(test)]
mod tests;

//! The CRDs of `core.oam.dev/v1beta1` that Plinth serves: Application and
//! ComponentDefinition, in KubeVela's field names. Trait and workflow step
//! types are closed enums, so an Application asking for one Plinth does not
//! apply is refused when it is written, with the supported values named.

use serde_json::{json, Value};

use crate::names::{self, steps, traits};

fn open_object(description: &str) -> Value {
    json!({"type": "object", "description": description, "x-kubernetes-preserve-unknown-fields": true})
}

fn crd(
    kind: &str,
    plural: &str,
    short: &[&str],
    spec: Value,
    status: Value,
    columns: Value,
) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{}", names::GROUP)},
        "spec": {
            "group": names::GROUP,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(),
                      "listKind": format!("{kind}List"), "shortNames": short, "categories": ["oam"]},
            "versions": [{
                "name": names::VERSION, "served": true, "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": spec, "status": status}}}
            }]
        }
    })
}

/// `applications.core.oam.dev`.
pub fn application() -> Value {
    let trait_ = json!({
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "enum": traits::ALL,
                     "description": "The trait: labels and annotations add to the claim's metadata; connection-secret names the Secret the claim writes."},
            "properties": open_object("The trait's parameters.")
        }
    });
    let component = json!({
        "type": "object",
        "required": ["name", "type"],
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "type": {"type": "string", "minLength": 1,
                     "description": "A ComponentDefinition's name: a claim kind's singular name, e.g. postgresqlinstance."},
            "properties": open_object("The claim's parameters."),
            "dependsOn": {"type": "array", "items": {"type": "string"},
                          "description": "Components that must be healthy before this one is applied."},
            "traits": {"type": "array", "items": trait_},
            "inputs": {"type": "array", "items": open_object("")},
            "outputs": {"type": "array", "items": open_object("")},
            "externalRevision": {"type": "string"}
        }
    });
    let step = json!({
        "type": "object",
        "required": ["type"],
        "properties": {
            "name": {"type": "string"},
            "type": {"type": "string", "enum": steps::ALL},
            "properties": open_object("The step's parameters: `component` names the component to apply."),
            "dependsOn": {"type": "array", "items": {"type": "string"}}
        }
    });
    let spec = json!({
        "type": "object",
        "required": ["components"],
        "properties": {
            "components": {"type": "array", "items": component},
            "policies": {"type": "array", "items": {"type": "object", "required": ["type"], "properties": {
                "name": {"type": "string"}, "type": {"type": "string"}, "properties": open_object("")
            }}},
            "workflow": {"type": "object", "properties": {
                "steps": {"type": "array", "items": step},
                "mode": open_object(""),
                "ref": {"type": "string"}
            }}
        }
    });
    let service = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "namespace": {"type": "string"},
            "cluster": {"type": "string"},
            "healthy": {"type": "boolean"},
            "message": {"type": "string"},
            "workloadDefinition": {"type": "object", "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"}}},
            "traits": {"type": "array", "items": open_object("")}
        }
    });
    let status = json!({
        "type": "object",
        "properties": {
            "status": {"type": "string", "description": "The phase: rendering (the spec was refused), runningWorkflow, running."},
            "services": {"type": "array", "items": service},
            "appliedResources": {"type": "array", "items": {"type": "object", "properties": {
                "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "name": {"type": "string"},
                "namespace": {"type": "string"}, "uid": {"type": "string"}, "creator": {"type": "string"}
            }}},
            "conditions": runtime::crds::conditions_schema(),
            "observedGeneration": {"type": "integer", "format": "int64"}
        }
    });
    let columns = json!([
        {"name": "COMPONENT", "type": "string", "jsonPath": ".spec.components[*].name"},
        {"name": "TYPE", "type": "string", "jsonPath": ".spec.components[*].type"},
        {"name": "PHASE", "type": "string", "jsonPath": ".status.status"},
        {"name": "HEALTHY", "type": "boolean", "jsonPath": ".status.services[*].healthy"},
        {"name": "STATUS", "type": "string", "jsonPath": ".status.services[*].message"},
        {"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    ]);
    crd(
        names::APPLICATION,
        "applications",
        &["app"],
        spec,
        status,
        columns,
    )
}

/// `componentdefinitions.core.oam.dev`.
pub fn component_definition() -> Value {
    let spec = json!({
        "type": "object",
        "properties": {
            "workload": {"type": "object", "properties": {
                "definition": {"type": "object", "required": ["apiVersion", "kind"], "properties": {
                    "apiVersion": {"type": "string"}, "kind": {"type": "string"}
                }},
                "type": {"type": "string"}
            }},
            "schematic": open_object("How the workload is made. Plinth evaluates no CUE: a definition with spec.schematic.cue is refused."),
            "childResourceKinds": {"type": "array", "items": open_object("")},
            "revisionLabel": {"type": "string"},
            "podSpecPath": {"type": "string"},
            "status": open_object(""),
            "extension": open_object("")
        }
    });
    let status = json!({
        "type": "object",
        "properties": {
            "configMapRef": {"type": "string", "description": "The ConfigMap holding the parameter schema."},
            "latestRevision": open_object(""),
            "conditions": runtime::crds::conditions_schema()
        }
    });
    let columns = json!([
        {"name": "WORKLOAD-KIND", "type": "string", "jsonPath": ".spec.workload.definition.kind"},
        {"name": "DESCRIPTION", "type": "string", "jsonPath": ".metadata.annotations.definition\\.oam\\.dev/description"},
        runtime::crds::condition_column("READY", "Ready"),
        {"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    ]);
    crd(
        names::COMPONENT_DEFINITION,
        "componentdefinitions",
        &["comp"],
        spec,
        status,
        columns,
    )
}

/// Every OAM CRD.
pub fn all() -> Vec<Value> {
    vec![application(), component_definition()]
}

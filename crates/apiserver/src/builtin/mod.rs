//! The kinds compiled into the server: a few of core `v1`, `Lease`, and
//! `CustomResourceDefinition`, with their Table columns, published schemas
//! and the validation kube-apiserver applies to them.

use apimachinery::{CauseType, FieldError};
use serde_json::{json, Value};

use crate::resource::{Column, ColumnSource, Resource};

/// A built-in kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Namespace,
    Secret,
    ConfigMap,
    Event,
    ServiceAccount,
    Lease,
    CustomResourceDefinition,
}

impl Builtin {
    pub const ALL: [Builtin; 7] = [
        Builtin::Namespace,
        Builtin::Secret,
        Builtin::ConfigMap,
        Builtin::Event,
        Builtin::ServiceAccount,
        Builtin::Lease,
        Builtin::CustomResourceDefinition,
    ];

    pub fn kind(self) -> &'static str {
        match self {
            Builtin::Namespace => "Namespace",
            Builtin::Secret => "Secret",
            Builtin::ConfigMap => "ConfigMap",
            Builtin::Event => "Event",
            Builtin::ServiceAccount => "ServiceAccount",
            Builtin::Lease => "Lease",
            Builtin::CustomResourceDefinition => "CustomResourceDefinition",
        }
    }

    /// The served resource type.
    pub fn resource(self) -> Resource {
        let (group, plural, singular, short, namespaced, status) = match self {
            Builtin::Namespace => ("", "namespaces", "namespace", vec!["ns"], false, true),
            Builtin::Secret => ("", "secrets", "secret", vec![], true, false),
            Builtin::ConfigMap => ("", "configmaps", "configmap", vec!["cm"], true, false),
            Builtin::Event => ("", "events", "event", vec!["ev"], true, false),
            Builtin::ServiceAccount => (
                "",
                "serviceaccounts",
                "serviceaccount",
                vec!["sa"],
                true,
                false,
            ),
            Builtin::Lease => (
                "coordination.k8s.io",
                "leases",
                "lease",
                vec![],
                true,
                false,
            ),
            Builtin::CustomResourceDefinition => (
                "apiextensions.k8s.io",
                "customresourcedefinitions",
                "customresourcedefinition",
                vec!["crd", "crds"],
                false,
                true,
            ),
        };
        let kind = self.kind();
        Resource {
            group: group.to_string(),
            version: "v1".to_string(),
            storage_version: "v1".to_string(),
            kind: kind.to_string(),
            list_kind: format!("{kind}List"),
            plural: plural.to_string(),
            singular: singular.to_string(),
            short_names: short.into_iter().map(String::from).collect(),
            categories: Vec::new(),
            namespaced,
            status_subresource: status,
            builtin: Some(self),
            schema: None,
            openapi_schema: self.openapi_schema(),
            columns: self.columns(),
            crd_name: None,
        }
    }

    fn columns(self) -> Vec<Column> {
        fn col(name: &str, type_: &str, f: fn(&Value, jiff::Timestamp) -> Value) -> Column {
            Column {
                name: name.to_string(),
                type_: type_.to_string(),
                format: String::new(),
                description: String::new(),
                priority: 0,
                source: ColumnSource::Computed(f),
            }
        }
        let age = col("Age", "string", |o, now| {
            json!(apimachinery::printer::age(
                o.pointer("/metadata/creationTimestamp")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
                now
            ))
        });
        match self {
            Builtin::Namespace => vec![
                col("Status", "string", |o, _| {
                    o.pointer("/status/phase")
                        .cloned()
                        .unwrap_or(json!("Active"))
                }),
                age,
            ],
            Builtin::Secret => vec![
                col("Type", "string", |o, _| {
                    o.get("type").cloned().unwrap_or(json!("Opaque"))
                }),
                col("Data", "integer", |o, _| json!(count_keys(o, &["data"]))),
                age,
            ],
            Builtin::ConfigMap => vec![
                col("Data", "integer", |o, _| {
                    json!(count_keys(o, &["data", "binaryData"]))
                }),
                age,
            ],
            Builtin::ServiceAccount => vec![
                col("Secrets", "integer", |o, _| {
                    json!(o
                        .get("secrets")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len))
                }),
                age,
            ],
            Builtin::Lease => vec![
                col("Holder", "string", |o, _| {
                    o.pointer("/spec/holderIdentity")
                        .cloned()
                        .unwrap_or(json!(""))
                }),
                age,
            ],
            Builtin::Event => vec![
                col("Last Seen", "string", |o, now| {
                    let ts = ["lastTimestamp", "eventTime", "firstTimestamp"]
                        .iter()
                        .find_map(|f| o.get(*f).and_then(Value::as_str))
                        .or_else(|| {
                            o.pointer("/metadata/creationTimestamp")
                                .and_then(Value::as_str)
                        })
                        .unwrap_or("");
                    json!(apimachinery::printer::age(ts, now))
                }),
                col("Type", "string", |o, _| {
                    o.get("type").cloned().unwrap_or(json!(""))
                }),
                col("Reason", "string", |o, _| {
                    o.get("reason").cloned().unwrap_or(json!(""))
                }),
                col("Object", "string", |o, _| {
                    let kind = o
                        .pointer("/involvedObject/kind")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let name = o
                        .pointer("/involvedObject/name")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    json!(format!("{}/{}", kind.to_lowercase(), name))
                }),
                col("Message", "string", |o, _| {
                    o.get("message").cloned().unwrap_or(json!(""))
                }),
            ],
            Builtin::CustomResourceDefinition => vec![col("Created At", "date", |o, _| {
                o.pointer("/metadata/creationTimestamp")
                    .cloned()
                    .unwrap_or(json!(""))
            })],
        }
    }

    fn openapi_schema(self) -> Value {
        let string_map = json!({"type": "object", "additionalProperties": {"type": "string"}});
        let props = match self {
            Builtin::Namespace => json!({
                "spec": {"type": "object", "properties": {"finalizers": {"type": "array", "items": {"type": "string"}}}},
                "status": {"type": "object", "properties": {"phase": {"type": "string", "description": "Active or Terminating."}}},
            }),
            Builtin::Secret => json!({
                "data": {"type": "object", "description": "Secret data; each value is base64-encoded.", "additionalProperties": {"type": "string", "format": "byte"}},
                "stringData": string_map,
                "type": {"type": "string", "description": "Used to facilitate programmatic handling of secret data."},
                "immutable": {"type": "boolean"},
            }),
            Builtin::ConfigMap => json!({
                "data": string_map,
                "binaryData": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}},
                "immutable": {"type": "boolean"},
            }),
            Builtin::Event => json!({
                "involvedObject": {"type": "object", "properties": {
                    "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "name": {"type": "string"},
                    "namespace": {"type": "string"}, "uid": {"type": "string"}, "resourceVersion": {"type": "string"}, "fieldPath": {"type": "string"}}},
                "reason": {"type": "string"}, "message": {"type": "string"}, "type": {"type": "string"},
                "count": {"type": "integer", "format": "int32"},
                "firstTimestamp": {"type": "string", "format": "date-time"},
                "lastTimestamp": {"type": "string", "format": "date-time"},
                "eventTime": {"type": "string", "format": "date-time"},
                "source": {"type": "object", "properties": {"component": {"type": "string"}, "host": {"type": "string"}}},
                "reportingComponent": {"type": "string"}, "reportingInstance": {"type": "string"},
                "action": {"type": "string"},
            }),
            Builtin::ServiceAccount => json!({
                "secrets": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}}}},
                "automountServiceAccountToken": {"type": "boolean"},
            }),
            Builtin::Lease => json!({
                "spec": {"type": "object", "properties": {
                    "holderIdentity": {"type": "string"},
                    "leaseDurationSeconds": {"type": "integer", "format": "int32"},
                    "acquireTime": {"type": "string", "format": "date-time"},
                    "renewTime": {"type": "string", "format": "date-time"},
                    "leaseTransitions": {"type": "integer", "format": "int32"}}},
            }),
            Builtin::CustomResourceDefinition => json!({
                "spec": {"type": "object", "description": "The new type: group, names, scope and versions.", "x-kubernetes-preserve-unknown-fields": true},
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            }),
        };
        json!({"type": "object", "properties": props})
    }

    /// Kind-specific validation kube-apiserver would apply.
    pub fn validate(self, obj: &Value) -> Vec<FieldError> {
        let mut errors = Vec::new();
        match self {
            Builtin::Secret => {
                if let Some(data) = obj.get("data") {
                    match data.as_object() {
                        Some(map) => {
                            use base64::Engine;
                            for (key, value) in map {
                                let ok = value.as_str().is_some_and(|s| {
                                    base64::engine::general_purpose::STANDARD.decode(s).is_ok()
                                });
                                if !ok {
                                    errors.push(FieldError::new(
                                        CauseType::Invalid,
                                        format!("data[{key}]"),
                                        "Invalid value: must be a base64-encoded string",
                                    ));
                                }
                            }
                        }
                        None => errors.push(FieldError::new(
                            CauseType::TypeInvalid,
                            "data",
                            "Invalid value: must be an object of base64-encoded strings",
                        )),
                    }
                }
                check_string_map(obj, "stringData", &mut errors);
            }
            Builtin::ConfigMap => check_string_map(obj, "data", &mut errors),
            Builtin::Lease => {
                for field in ["leaseDurationSeconds", "leaseTransitions"] {
                    if let Some(v) = obj.pointer(&format!("/spec/{field}")) {
                        if !v.is_i64() {
                            errors.push(FieldError::new(
                                CauseType::TypeInvalid,
                                format!("spec.{field}"),
                                format!("Invalid value: {v}: spec.{field} must be an integer"),
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
        errors
    }

    /// Names of namespaces must be DNS labels; everything else DNS subdomains.
    pub fn requires_dns_label(self) -> bool {
        self == Builtin::Namespace
    }
}

fn count_keys(obj: &Value, fields: &[&str]) -> usize {
    fields
        .iter()
        .filter_map(|f| obj.get(*f).and_then(Value::as_object))
        .map(|m| m.len())
        .sum()
}

fn check_string_map(obj: &Value, field: &str, errors: &mut Vec<FieldError>) {
    let Some(value) = obj.get(field) else { return };
    let Some(map) = value.as_object() else {
        errors.push(FieldError::new(
            CauseType::TypeInvalid,
            field,
            format!("Invalid value: {field} must be an object of strings"),
        ));
        return;
    };
    for (key, v) in map {
        if !v.is_string() {
            errors.push(FieldError::new(
                CauseType::TypeInvalid,
                format!("{field}[{key}]"),
                format!("Invalid value: {v}: must be a string"),
            ));
        }
    }
}

//! CustomResourceDefinitions: checking one, turning it into served
//! [`Resource`]s, and the status conditions the server reports on it.

use std::sync::Arc;

use apimachinery::printer::{JsonPath, PrinterColumn};
use apimachinery::schema::StructuralSchema;
use apimachinery::{CauseType, FieldError};
use serde_json::{json, Value};

use crate::resource::{Column, ColumnSource, Resource};

/// Condition types and reasons on a CRD's status, as upstream spells them.
pub mod condition {
    pub const ESTABLISHED: &str = "Established";
    pub const NAMES_ACCEPTED: &str = "NamesAccepted";
    pub const REASON_NO_CONFLICTS: &str = "NoConflicts";
    pub const REASON_INITIAL_NAMES_ACCEPTED: &str = "InitialNamesAccepted";
    pub const TERMINATING: &str = "Terminating";
    pub const REASON_INSTANCE_DELETION_IN_PROGRESS: &str = "InstanceDeletionInProgress";
}

/// Where CRDs are stored: `Builtin::CustomResourceDefinition`'s key prefix,
/// spelled out so hot paths need not build the resource to find a CRD.
pub const KEY_PREFIX: &str = "/apiextensions.k8s.io/customresourcedefinitions/";

/// Finalizer that holds a CRD until all its custom resources are deleted.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// Checks a CRD and builds one resource per served version.
pub fn resources(crd: &Value) -> Result<Vec<Resource>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let spec = crd.get("spec").cloned().unwrap_or(Value::Null);
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let text = |path: &str| {
        spec.pointer(path)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let group = text("/group");
    let plural = text("/names/plural");
    let kind = text("/names/kind");
    let singular = {
        let s = text("/names/singular");
        if s.is_empty() {
            kind.to_lowercase()
        } else {
            s
        }
    };
    let list_kind = {
        let s = text("/names/listKind");
        if s.is_empty() {
            format!("{kind}List")
        } else {
            s
        }
    };
    let scope = text("/scope");

    if group.is_empty() {
        errors.push(required("spec.group"));
    } else if !group.contains('.') {
        errors.push(FieldError::new(
            CauseType::Invalid,
            "spec.group",
            format!("Invalid value: {group:?}: should be a domain with at least one dot"),
        ));
    }
    if plural.is_empty() {
        errors.push(required("spec.names.plural"));
    } else if !is_dns_label(&plural) {
        errors.push(invalid_name("spec.names.plural", &plural));
    }
    if !singular.is_empty() && !is_dns_label(&singular) {
        errors.push(invalid_name("spec.names.singular", &singular));
    }
    if kind.is_empty() {
        errors.push(required("spec.names.kind"));
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        errors.push(FieldError::new(
            CauseType::Invalid,
            "metadata.name",
            format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    let namespaced = match scope.as_str() {
        "Namespaced" => true,
        "Cluster" => false,
        "" => {
            errors.push(required("spec.scope"));
            true
        }
        other => {
            errors.push(FieldError::new(
                CauseType::NotSupported,
                "spec.scope",
                format!(
                    "Unsupported value: {other:?}: supported values: \"Cluster\", \"Namespaced\""
                ),
            ));
            true
        }
    };
    let short_names = string_list(spec.pointer("/names/shortNames"));
    let categories = string_list(spec.pointer("/names/categories"));

    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        errors.push(required("spec.versions"));
    }
    let storage: Vec<&Value> = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .collect();
    if !versions.is_empty() && storage.len() != 1 {
        errors.push(FieldError::new(
            CauseType::Invalid,
            "spec.versions",
            format!(
                "Invalid value: must have exactly one version marked as storage version, found {}",
                storage.len()
            ),
        ));
    }
    let storage_version = storage
        .first()
        .and_then(|v| v.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();

    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, version) in versions.iter().enumerate() {
        let base = format!("spec.versions[{i}]");
        let vname = version.get("name").and_then(Value::as_str).unwrap_or("");
        if vname.is_empty() {
            errors.push(required(&format!("{base}.name")));
            continue;
        }
        if !is_dns_label(vname) {
            errors.push(invalid_name(&format!("{base}.name"), vname));
        }
        if !seen.insert(vname.to_string()) {
            errors.push(FieldError::new(
                CauseType::Duplicate,
                format!("{base}.name"),
                format!("Duplicate value: {vname:?}"),
            ));
        }
        let schema_path = format!("{base}.schema.openAPIV3Schema");
        let raw_schema = version.pointer("/schema/openAPIV3Schema");
        let schema = match raw_schema {
            None => {
                errors.push(FieldError::new(
                    CauseType::Required,
                    schema_path.clone(),
                    "Required value: schemas are required",
                ));
                None
            }
            Some(raw) => match StructuralSchema::new(raw, &schema_path) {
                Ok(s) => Some(Arc::new(s)),
                Err(mut errs) => {
                    errors.append(&mut errs);
                    None
                }
            },
        };
        let mut columns = Vec::new();
        let printer = version
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (j, column) in printer.iter().enumerate() {
            let field = format!("{base}.additionalPrinterColumns[{j}]");
            match PrinterColumn::from_crd_json(column) {
                Ok(col) => match JsonPath::parse(&col.json_path) {
                    Ok(path) => columns.push(Column {
                        name: col.name.clone(),
                        type_: col.type_.clone(),
                        format: col.format.clone(),
                        description: col.description.clone(),
                        priority: col.priority,
                        source: ColumnSource::Path(col, Arc::new(path)),
                    }),
                    Err(message) => errors.push(FieldError::new(
                        CauseType::Invalid,
                        format!("{field}.jsonPath"),
                        format!("Invalid value: {:?}: {message}", col.json_path),
                    )),
                },
                Err(mut err) => {
                    err.field = format!("{field}.{}", err.field);
                    errors.push(err);
                }
            }
        }
        if printer.is_empty() {
            columns.push(age_column());
        }
        let served = version
            .get("served")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !served {
            continue;
        }
        let status_subresource = version.pointer("/subresources/status").is_some();
        let Some(schema) = schema else { continue };
        out.push(Resource {
            group: group.clone(),
            version: vname.to_string(),
            storage_version: storage_version.clone(),
            kind: kind.clone(),
            list_kind: list_kind.clone(),
            plural: plural.clone(),
            singular: singular.clone(),
            short_names: short_names.clone(),
            categories: categories.clone(),
            namespaced,
            status_subresource,
            builtin: None,
            openapi_schema: schema.raw().clone(),
            schema: Some(schema),
            columns,
            crd_name: Some(name.to_string()),
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The keys of `apiextensions.k8s.io/v1` `JSONSchemaProps`.
const SCHEMA_KEYWORDS: &[&str] = &[
    "id",
    "$schema",
    "$ref",
    "description",
    "type",
    "format",
    "title",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "enum",
    "maxProperties",
    "minProperties",
    "required",
    "items",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
    "properties",
    "additionalProperties",
    "patternProperties",
    "dependencies",
    "additionalItems",
    "definitions",
    "externalDocs",
    "example",
    "nullable",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
];

/// Drops keys `JSONSchemaProps` does not have from every version's
/// `openAPIV3Schema`, as decoding the CRD into its Go type does, and returns
/// their paths (`spec.versions[0].schema.openAPIV3Schema.properties.spec.typ`)
/// for `fieldValidation`. The CRD's own schema cannot say this: a JSON Schema
/// is recursive, so it keeps `openAPIV3Schema` whole.
pub fn prune_schemas(crd: &mut Value) -> Vec<String> {
    let mut removed = Vec::new();
    if let Some(Value::Array(versions)) = crd.pointer_mut("/spec/versions") {
        for (i, version) in versions.iter_mut().enumerate() {
            if let Some(schema) = version.pointer_mut("/schema/openAPIV3Schema") {
                let path = format!("spec.versions[{i}].schema.openAPIV3Schema");
                prune_schema(schema, &path, 0, &mut removed);
            }
        }
    }
    removed
}

fn prune_schema(schema: &mut Value, path: &str, depth: usize, removed: &mut Vec<String>) {
    // Bounded: the schema is user input, and nothing real nests this deep.
    if depth > 64 {
        return;
    }
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    map.retain(|key, _| {
        let known = SCHEMA_KEYWORDS.contains(&key.as_str());
        if !known {
            removed.push(format!("{path}.{key}"));
        }
        known
    });
    for (key, value) in map.iter_mut() {
        let here = format!("{path}.{key}");
        match key.as_str() {
            "properties" | "patternProperties" | "definitions" | "dependencies" => {
                if let Some(children) = value.as_object_mut() {
                    for (name, child) in children.iter_mut() {
                        // `dependencies` values may be lists of names instead of schemas.
                        if child.is_object() {
                            prune_schema(child, &format!("{here}.{name}"), depth + 1, removed);
                        }
                    }
                }
            }
            "items" | "allOf" | "oneOf" | "anyOf" => match value {
                Value::Array(items) => {
                    for (i, item) in items.iter_mut().enumerate() {
                        prune_schema(item, &format!("{here}[{i}]"), depth + 1, removed);
                    }
                }
                other => prune_schema(other, &here, depth + 1, removed),
            },
            "not" | "additionalProperties" | "additionalItems" => {
                prune_schema(value, &here, depth + 1, removed)
            }
            _ => {}
        }
    }
}

/// The status a served CRD carries: names accepted and established.
pub fn established_status(crd: &Value, now: &str) -> Value {
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let mut accepted = names.clone();
    if let Some(map) = accepted.as_object_mut() {
        let kind = map
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        map.entry("singular")
            .or_insert_with(|| json!(kind.to_lowercase()));
        map.entry("listKind")
            .or_insert_with(|| json!(format!("{kind}List")));
    }
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let mut stored_versions: Vec<Value> = crd
        .pointer("/status/storedVersions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for v in stored {
        if !stored_versions.contains(&v) {
            stored_versions.push(v);
        }
    }
    let previous = |t: &str| -> String {
        crd.pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.get("type").and_then(Value::as_str) == Some(t))
            })
            .and_then(|c| c.get("lastTransitionTime"))
            .and_then(Value::as_str)
            .unwrap_or(now)
            .to_string()
    };
    let mut conditions = vec![
        json!({
            "type": condition::NAMES_ACCEPTED,
            "status": "True",
            "lastTransitionTime": previous(condition::NAMES_ACCEPTED),
            "reason": condition::REASON_NO_CONFLICTS,
            "message": "no conflicts found",
        }),
        json!({
            "type": condition::ESTABLISHED,
            "status": "True",
            "lastTransitionTime": previous(condition::ESTABLISHED),
            "reason": condition::REASON_INITIAL_NAMES_ACCEPTED,
            "message": "the initial names have been accepted",
        }),
    ];
    let deleting = crd
        .pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if deleting {
        // As upstream's finalizer controller reports it while it deletes the instances.
        conditions.push(json!({
            "type": condition::TERMINATING,
            "status": "True",
            "lastTransitionTime": previous(condition::TERMINATING),
            "reason": condition::REASON_INSTANCE_DELETION_IN_PROGRESS,
            "message": "CustomResource deletion is in progress",
        }));
    }
    json!({
        "conditions": conditions,
        "acceptedNames": accepted,
        "storedVersions": stored_versions,
    })
}

fn age_column() -> Column {
    Column {
        name: "Age".into(),
        type_: "date".into(),
        format: String::new(),
        description: "CreationTimestamp is a timestamp representing the server time when this object was created.".into(),
        priority: 0,
        source: ColumnSource::Computed(|o, now| {
            json!(apimachinery::printer::age(
                o.pointer("/metadata/creationTimestamp").and_then(Value::as_str).unwrap_or(""),
                now
            ))
        }),
    }
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn required(field: &str) -> FieldError {
    FieldError::new(CauseType::Required, field, "Required value")
}

fn invalid_name(field: &str, value: &str) -> FieldError {
    FieldError::new(
        CauseType::Invalid,
        field,
        format!("Invalid value: {value:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"),
    )
}

/// RFC 1123 label: lower-case alphanumerics and '-', at most 63 characters.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 subdomain: dot-separated labels, at most 253 characters.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_schema_keywords_are_pruned_and_named() {
        let mut crd = json!({"spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
            "type": "object",
            "properties": {
                "spec": {"typ": "object", "properties": {
                    "list": {"type": "array", "items": {"type": "string", "colour": "red"}},
                    "any": {"anyOf": [{"type": "integer", "bogus": 1}]},
                }},
                "x": {"type": "object", "additionalProperties": {"type": "string", "maxlength": 3}},
            },
            "default": {"kept": "as is", "properties": {"not": "a schema"}},
        }}}]}});
        let removed = prune_schemas(&mut crd);
        let base = "spec.versions[0].schema.openAPIV3Schema.properties";
        assert_eq!(
            removed,
            vec![
                format!("{base}.spec.typ"),
                format!("{base}.spec.properties.list.items.colour"),
                format!("{base}.spec.properties.any.anyOf[0].bogus"),
                format!("{base}.x.additionalProperties.maxlength"),
            ]
        );
        assert_eq!(
            crd.pointer("/spec/versions/0/schema/openAPIV3Schema/default"),
            Some(&json!({"kept": "as is", "properties": {"not": "a schema"}}))
        );
        assert_eq!(
            KEY_PREFIX,
            crate::builtin::Builtin::CustomResourceDefinition
                .resource()
                .key_prefix(None)
        );
    }
}

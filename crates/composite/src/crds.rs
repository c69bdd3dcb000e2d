//! CRDs: the composition API itself (`apiextensions.crossplane.io/v1`), and
//! for each XRD the composite resource (XR) and claim CRDs it defines.

use serde_json::{json, Map, Value};

use crate::names;

fn conditions() -> Value {
    json!({
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {"type": "object", "required": ["type", "status"], "x-kubernetes-preserve-unknown-fields": true,
                  "properties": {"type": {"type": "string"}, "status": {"type": "string"}, "reason": {"type": "string"},
                                 "message": {"type": "string"}, "lastTransitionTime": {"type": "string"},
                                 "observedGeneration": {"type": "integer"}}}
    })
}

/// A schema with these properties required.
fn required(mut schema: Value, fields: &[&str]) -> Value {
    schema["required"] = json!(fields);
    schema
}

fn open_spec(properties: Value) -> Value {
    json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": properties})
}

fn api_crd(kind: &str, plural: &str, short: &[&str], spec: Value, columns: Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{}", names::GROUP)},
        "spec": {
            "group": names::GROUP,
            "scope": "Cluster",
            "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List"),
                      "shortNames": short, "categories": ["crossplane"]},
            "versions": [{
                "name": names::VERSION, "served": true, "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": spec,
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"conditions": conditions()}}
                }}}
            }]
        }
    })
}

/// The CRDs of `apiextensions.crossplane.io/v1`.
pub fn composition_api() -> Vec<Value> {
    let age = json!({"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"});
    vec![
        api_crd(
            names::XRD_KIND,
            names::XRD_PLURAL,
            &["xrd", "xrds"],
            open_spec(json!({
                "group": {"type": "string"},
                "names": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "claimNames": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "connectionSecretKeys": {"type": "array", "items": {"type": "string"}},
                "defaultCompositeDeletePolicy": {"type": "string", "enum": [names::DELETE_BACKGROUND, names::DELETE_FOREGROUND], "default": names::DELETE_BACKGROUND},
                "defaultCompositionUpdatePolicy": {"type": "string", "enum": [names::POLICY_AUTOMATIC, names::POLICY_MANUAL], "default": names::POLICY_AUTOMATIC},
                "defaultCompositionRef": {"type": "object", "properties": {"name": {"type": "string"}}},
                "enforcedCompositionRef": {"type": "object", "properties": {"name": {"type": "string"}}},
                "versions": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
            })),
            json!([
                {"name": "ESTABLISHED", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Established')].status"},
                {"name": "OFFERED", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Offered')].status"},
                age.clone()
            ]),
        ),
        api_crd(
            names::COMPOSITION_KIND,
            names::COMPOSITION_PLURAL,
            &["comp"],
            required(
                open_spec(json!({
                    "compositeTypeRef": {"type": "object", "required": ["apiVersion", "kind"], "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"}}},
                    "mode": {"type": "string", "enum": ["Resources", "Pipeline"], "default": "Resources"},
                    "resources": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                    "patchSets": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                    "writeConnectionSecretsToNamespace": {"type": "string"}
                })),
                &["compositeTypeRef"],
            ),
            json!([
                {"name": "XR-KIND", "type": "string", "jsonPath": ".spec.compositeTypeRef.kind"},
                {"name": "XR-APIVERSION", "type": "string", "jsonPath": ".spec.compositeTypeRef.apiVersion"},
                age.clone()
            ]),
        ),
        api_crd(
            names::REVISION_KIND,
            names::REVISION_PLURAL,
            &["comprev"],
            open_spec(json!({"revision": {"type": "integer"}})),
            json!([
                {"name": "REVISION", "type": "integer", "jsonPath": ".spec.revision"},
                {"name": "XR-KIND", "type": "string", "jsonPath": ".spec.compositeTypeRef.kind"},
                age
            ]),
        ),
    ]
}

fn reference(fields: &[&str]) -> Value {
    let props: Map<String, Value> = fields
        .iter()
        .map(|f| (f.to_string(), json!({"type": "string"})))
        .collect();
    json!({"type": "object", "properties": props})
}

/// `spec.defaultCompositionUpdatePolicy`, or Crossplane's default.
pub fn default_update_policy(xrd: &Value) -> &str {
    xrd.pointer("/spec/defaultCompositionUpdatePolicy")
        .and_then(Value::as_str)
        .filter(|p| [names::POLICY_AUTOMATIC, names::POLICY_MANUAL].contains(p))
        .unwrap_or(names::POLICY_AUTOMATIC)
}

/// `spec.defaultCompositeDeletePolicy`, or Crossplane's default.
pub fn default_delete_policy(xrd: &Value) -> &str {
    xrd.pointer("/spec/defaultCompositeDeletePolicy")
        .and_then(Value::as_str)
        .filter(|p| [names::DELETE_BACKGROUND, names::DELETE_FOREGROUND].contains(p))
        .unwrap_or(names::DELETE_BACKGROUND)
}

/// The `names` of a generated CRD: what the XRD gives (kind, plural,
/// singular, listKind, shortNames, categories), with Crossplane's category
/// for the kind (`composite` or `claim`) added.
fn crd_names(given: &Value, kind: &str, plural: &str, category: &str) -> Value {
    let singular = given
        .get("singular")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    let list_kind = given
        .get("listKind")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("{kind}List"));
    let strings = |field: &str| -> Vec<String> {
        given
            .get(field)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut categories = strings("categories");
    if !categories.iter().any(|c| c == category) {
        categories.push(category.to_string());
    }
    let mut names = json!({
        "kind": kind, "plural": plural, "singular": singular, "listKind": list_kind,
        "categories": categories
    });
    let short = strings("shortNames");
    if !short.is_empty() {
        names["shortNames"] = json!(short);
    }
    names
}

/// The version entries of an XRD with the standard fields added to their schemas.
fn versions(xrd: &Value, claim: bool) -> Vec<Value> {
    let mut out = Vec::new();
    for v in xrd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let mut schema = v
            .pointer("/schema/openAPIV3Schema")
            .cloned()
            .unwrap_or_else(|| json!({"type": "object"}));
        if schema.get("type").is_none() {
            schema["type"] = json!("object");
        }
        if !schema.get("properties").is_some_and(Value::is_object) {
            schema["properties"] = json!({});
        }
        let props = &mut schema["properties"];
        for part in ["spec", "status"] {
            if !props.get(part).is_some_and(Value::is_object) {
                props[part] = json!({"type": "object"});
            }
            if !props[part].get("properties").is_some_and(Value::is_object) {
                props[part]["properties"] = json!({});
            }
        }
        let spec = &mut props["spec"]["properties"];
        spec["compositionRef"] = reference(&["name"]);
        spec["compositionSelector"] = json!({"type": "object", "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}}});
        spec["compositionRevisionRef"] = reference(&["name"]);
        // The XRD's defaults become the schema's, so the API server fills
        // them in on create, as Crossplane's generated CRDs do.
        spec["compositionUpdatePolicy"] = json!({
            "type": "string",
            "enum": [names::POLICY_AUTOMATIC, names::POLICY_MANUAL],
            "default": default_update_policy(xrd)
        });
        if claim {
            spec["compositeDeletePolicy"] = json!({
                "type": "string",
                "enum": [names::DELETE_BACKGROUND, names::DELETE_FOREGROUND],
                "default": default_delete_policy(xrd)
            });
            spec["resourceRef"] = reference(&["apiVersion", "kind", "name"]);
            spec["writeConnectionSecretToRef"] = json!({"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}});
        } else {
            spec["claimRef"] = reference(&["apiVersion", "kind", "name", "namespace"]);
            // `namespace` for namespaced composed resources, as Crossplane v2 has it.
            spec["resourceRefs"] = json!({"type": "array", "items": reference(&["apiVersion", "kind", "name", "namespace"])});
            spec["writeConnectionSecretToRef"] = json!({"type": "object", "required": ["name", "namespace"], "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}}});
        }
        let status = &mut props["status"]["properties"];
        status["conditions"] = conditions();
        if !claim {
            // Which conditions of the XR its claim shows, as Crossplane's CRDs have it.
            status["claimConditionTypes"] = json!({"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}});
        }
        status["connectionDetails"] =
            json!({"type": "object", "properties": {"lastPublishedTime": {"type": "string"}}});
        let mut columns = vec![
            json!({"name": "SYNCED", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Synced')].status"}),
            json!({"name": "READY", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].status"}),
        ];
        if claim {
            columns.push(json!({"name": "CONNECTION-SECRET", "type": "string", "jsonPath": ".spec.writeConnectionSecretToRef.name"}));
        } else {
            columns.push(json!({"name": "COMPOSITION", "type": "string", "jsonPath": ".spec.compositionRef.name"}));
        }
        columns.extend(
            v.get("additionalPrinterColumns")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        );
        columns.push(
            json!({"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"}),
        );
        out.push(json!({
            "name": v.get("name").cloned().unwrap_or(json!("v1alpha1")),
            "served": v.get("served").cloned().unwrap_or(json!(true)),
            "storage": v.get("referenceable").cloned().unwrap_or(json!(true)),
            "subresources": {"status": {}},
            "additionalPrinterColumns": columns,
            "schema": {"openAPIV3Schema": schema}
        }));
    }
    out
}

/// The XR CRD an XRD defines.
pub fn composite(xrd: &Value) -> Result<Value, String> {
    let group = xrd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .ok_or("spec.group is required")?;
    let names = xrd
        .pointer("/spec/names")
        .cloned()
        .ok_or("spec.names is required")?;
    let plural = names
        .get("plural")
        .and_then(Value::as_str)
        .ok_or("spec.names.plural is required")?;
    let kind = names
        .get("kind")
        .and_then(Value::as_str)
        .ok_or("spec.names.kind is required")?;
    let versions = versions(xrd, false);
    if versions.is_empty() {
        return Err("spec.versions must list at least one version".into());
    }
    Ok(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}"), "labels": defined_by(xrd)},
        "spec": {
            "group": group,
            "scope": "Cluster",
            "names": crd_names(&names, kind, plural, "composite"),
            "versions": versions
        }
    }))
}

/// The label that names, on a generated CRD, the XRD that defines it (the
/// Backstage catalog's API entities select what their XRD made by it).
fn defined_by(xrd: &Value) -> Value {
    json!({names::LABEL_XRD: xrd.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default()})
}

/// The claim CRD an XRD offers, if it names one.
pub fn claim(xrd: &Value) -> Result<Option<Value>, String> {
    let Some(names) = xrd.pointer("/spec/claimNames").filter(|n| n.is_object()) else {
        return Ok(None);
    };
    let group = xrd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .ok_or("spec.group is required")?;
    let plural = names
        .get("plural")
        .and_then(Value::as_str)
        .ok_or("spec.claimNames.plural is required")?;
    let kind = names
        .get("kind")
        .and_then(Value::as_str)
        .ok_or("spec.claimNames.kind is required")?;
    Ok(Some(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}"), "labels": defined_by(xrd)},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": crd_names(names, kind, plural, "claim"),
            "versions": versions(xrd, true)
        }
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xrd() -> Value {
        json!({"spec": {
            "group": "example.org",
            "names": {"kind": "XThing", "plural": "xthings", "shortNames": ["xt"], "categories": ["things"], "singular": "xthing"},
            "claimNames": {"kind": "Thing", "plural": "things", "shortNames": ["th"]},
            "defaultCompositeDeletePolicy": "Foreground",
            "defaultCompositionUpdatePolicy": "Manual",
            "versions": [{"name": "v1", "served": true, "referenceable": true,
                          "schema": {"openAPIV3Schema": {"type": "object"}}}]
        }})
    }

    #[test]
    fn generated_crds_keep_the_xrd_names_and_defaults() {
        let xr = composite(&xrd()).unwrap();
        assert_eq!(xr["spec"]["names"]["shortNames"], json!(["xt"]));
        assert_eq!(
            xr["spec"]["names"]["categories"],
            json!(["things", "composite"])
        );
        assert_eq!(xr["spec"]["names"]["singular"], "xthing");
        let spec = &xr["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"];
        assert_eq!(spec["compositionUpdatePolicy"]["default"], "Manual");
        let claim = claim(&xrd()).unwrap().unwrap();
        assert_eq!(claim["spec"]["names"]["shortNames"], json!(["th"]));
        assert_eq!(claim["spec"]["names"]["categories"], json!(["claim"]));
        assert_eq!(claim["spec"]["names"]["singular"], "thing");
        let spec = &claim["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"];
        assert_eq!(spec["compositeDeletePolicy"]["default"], "Foreground");
        // Without the XRD's say, Crossplane's defaults.
        let mut plain = xrd();
        plain["spec"]
            .as_object_mut()
            .unwrap()
            .retain(|k, _| !k.starts_with("default"));
        assert_eq!(default_delete_policy(&plain), names::DELETE_BACKGROUND);
        assert_eq!(default_update_policy(&plain), names::POLICY_AUTOMATIC);
    }
}

//! OpenAPI v3, per group version: what `kubectl explain` reads, and what
//! `kubectl apply` checks to learn that the server validates fields itself
//! (the `fieldValidation` parameter on each PATCH operation).

use serde_json::{json, Map, Value};

use crate::resource::Resource;
use crate::status::ApiError;
use crate::Api;

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

pub fn index(api: &Api) -> Value {
    let generation = api.registry.generation();
    let mut paths = Map::new();
    for group in api.registry.groups() {
        for version in &group.versions {
            let path = if group.group.is_empty() {
                format!("api/{version}")
            } else {
                format!("apis/{}/{version}", group.group)
            };
            paths.insert(
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={generation:016X}")}),
            );
        }
    }
    json!({"paths": paths})
}

pub fn group_version(api: &Api, group: &str, version: &str) -> Result<Value, ApiError> {
    let resources = api.registry.in_group_version(group, version);
    if resources.is_empty() {
        return Err(ApiError::unknown_resource(&format!(
            "/openapi/v3/{}",
            if group.is_empty() {
                format!("api/{version}")
            } else {
                format!("apis/{group}/{version}")
            }
        )));
    }
    let mut schemas = Map::new();
    let mut paths = Map::new();
    schemas.insert(OBJECT_META.into(), object_meta());
    for r in &resources {
        let name = schema_name(r);
        schemas.insert(name.clone(), kind_schema(r));
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let reference = json!({"$ref": format!("#/components/schemas/{name}")});
        let base = if r.group.is_empty() {
            format!("/api/{}", r.version)
        } else {
            format!("/apis/{}/{}", r.group, r.version)
        };
        let item_path = if r.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{base}/{}/{{name}}", r.plural)
        };
        let body = json!({"content": {"application/json": {"schema": reference}}});
        let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}});
        let param = |n: &str, t: &str| json!({"name": n, "in": "query", "schema": {"type": t, "uniqueItems": true}});
        let write_params = vec![
            param("dryRun", "string"),
            param("fieldManager", "string"),
            param("fieldValidation", "string"),
        ];
        let mut patch_params = write_params.clone();
        patch_params.push(param("force", "boolean"));
        paths.insert(
            item_path,
            json!({
                "get": {"operationId": format!("read{}", r.kind), "responses": ok, "x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk},
                "put": {"operationId": format!("replace{}", r.kind), "parameters": write_params, "requestBody": body, "responses": ok, "x-kubernetes-action": "put", "x-kubernetes-group-version-kind": gvk},
                "patch": {"operationId": format!("patch{}", r.kind), "parameters": patch_params, "requestBody": {"content": {
                    "application/json-patch+json": {"schema": {"type": "object"}},
                    "application/merge-patch+json": {"schema": {"type": "object"}},
                    "application/apply-patch+yaml": {"schema": {"type": "object"}}}},
                    "responses": ok, "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk},
                "delete": {"operationId": format!("delete{}", r.kind), "responses": ok, "x-kubernetes-action": "delete", "x-kubernetes-group-version-kind": gvk},
            }),
        );
    }
    Ok(json!({
        "openapi": "3.0.0",
        "info": {"title": "Plinth", "version": format!("v1.{}.0", super::discovery::KUBERNETES_MINOR)},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// Upstream's schema naming: reversed group, version, kind.
fn schema_name(r: &Resource) -> String {
    match r.group.as_str() {
        "" => format!("io.k8s.api.core.{}.{}", r.version, r.kind),
        "apiextensions.k8s.io" => format!(
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.{}.{}",
            r.version, r.kind
        ),
        g if g.ends_with(".k8s.io") => format!(
            "io.k8s.api.{}.{}.{}",
            g.trim_end_matches(".k8s.io"),
            r.version,
            r.kind
        ),
        g => {
            let reversed: Vec<&str> = g.split('.').rev().collect();
            format!("{}.{}.{}", reversed.join("."), r.version, r.kind)
        }
    }
}

fn kind_schema(r: &Resource) -> Value {
    let mut schema = r.openapi_schema.clone();
    if !schema.is_object() {
        schema = json!({"type": "object"});
    }
    let props = schema
        .as_object_mut()
        .map(|m| m.entry("properties").or_insert_with(|| json!({})));
    if let Some(Value::Object(props)) = props {
        props.insert("apiVersion".into(), json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}));
        props.insert("kind".into(), json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}));
        props.insert(
            "metadata".into(),
            json!({
                "description": "Standard object's metadata.",
                "allOf": [{"$ref": format!("#/components/schemas/{OBJECT_META}")}],
            }),
        );
    }
    schema["x-kubernetes-group-version-kind"] =
        json!([{"group": r.group, "version": r.version, "kind": r.kind}]);
    schema
}

fn object_meta() -> Value {
    crate::builtin::schema::object_meta_openapi()
}

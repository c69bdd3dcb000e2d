//! OpenAPI v3, per group version: what `kubectl explain` reads, and what
//! `kubectl apply` checks to learn that the server validates fields itself
//! (the `fieldValidation` parameter on each PATCH operation). And OpenAPI v2,
//! the same schemas in one Swagger 2.0 document, as protobuf for client-go
//! (`kubectl explain --output plaintext-openapiv2`) or as JSON.

use bytes::Bytes;
use hyper::{Response, StatusCode};
use serde_json::{json, Map, Value};

use super::Body;

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

/// `/openapi/v2`: every served kind's schema as one Swagger 2.0 document.
pub fn v2(api: &Api) -> Value {
    let mut definitions = Map::new();
    definitions.insert(OBJECT_META.into(), to_v2(&object_meta(), 0));
    for r in api.registry.all() {
        definitions.insert(schema_name(&r), to_v2(&kind_schema(&r), 0));
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Plinth", "version": format!("v1.{}.0", super::discovery::KUBERNETES_MINOR)},
        "paths": {},
        "definitions": definitions,
    })
}

/// Protobuf when the client asks for it (client-go always does), else JSON.
pub fn v2_response(api: &Api, accept: &str) -> Response<Body> {
    let doc = v2(api);
    use apimachinery::openapi_v2::{MEDIA_TYPE, RESPONSE_MEDIA_TYPE};
    let (content_type, body) =
        if accept.contains(MEDIA_TYPE) || accept.contains(RESPONSE_MEDIA_TYPE) {
            (
                RESPONSE_MEDIA_TYPE,
                Bytes::from(apimachinery::openapi_v2::encode(&doc)),
            )
        } else {
            ("application/json", Bytes::from(doc.to_string()))
        };
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", content_type)
        .body(super::full(body))
        .unwrap_or_else(|_| Response::new(super::full(Bytes::new())))
}

/// A v3 schema as Swagger 2.0 says it: references under `#/definitions/`,
/// the `allOf: [$ref]` wrapper v3 needs beside a description unwrapped, and
/// the keywords v2 lacks (`nullable`, `anyOf`, `oneOf`, `not`) dropped.
fn to_v2(schema: &Value, depth: usize) -> Value {
    let Some(obj) = schema.as_object() else {
        return schema.clone();
    };
    // Bounded: CRD schemas are user input.
    if depth > 64 {
        return json!({});
    }
    if let Some([only]) = obj
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        if only.get("$ref").is_some() && !obj.contains_key("properties") {
            let mut unwrapped = to_v2(only, depth + 1);
            if let (Some(map), Some(d)) = (unwrapped.as_object_mut(), obj.get("description")) {
                map.insert("description".into(), d.clone());
            }
            return unwrapped;
        }
    }
    let mut out = Map::new();
    for (key, value) in obj {
        let converted = match key.as_str() {
            "nullable" | "anyOf" | "oneOf" | "not" => continue,
            "$ref" => match value.as_str() {
                Some(r) => json!(r.replace("#/components/schemas/", "#/definitions/")),
                None => continue,
            },
            "properties" => match value.as_object() {
                Some(props) => Value::Object(
                    props
                        .iter()
                        .map(|(k, v)| (k.clone(), to_v2(v, depth + 1)))
                        .collect(),
                ),
                None => continue,
            },
            "items" | "additionalProperties" if value.is_object() => to_v2(value, depth + 1),
            "allOf" => match value.as_array() {
                Some(all) => Value::Array(all.iter().map(|v| to_v2(v, depth + 1)).collect()),
                None => continue,
            },
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }
    Value::Object(out)
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

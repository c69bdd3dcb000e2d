//! The Backstage software catalog of a Plinth installation, as data in and
//! data out: given the XRDs, claims, composite and managed resources and
//! OAM Applications read from the API, the entities Backstage ingests.
//!
//! - each XRD is an `API` entity of type `openapi`, whose definition is an
//!   OpenAPI document of the claim (or, with no claim, the composite) kind;
//! - each claim is a `Resource` entity whose `spec.type` is the claim kind
//!   and whose `dependsOn` names its managed resources, each a `Resource`
//!   entity too (found through `spec.resourceRef` and `spec.resourceRefs`,
//!   the path the community's Crossplane plugins walk);
//! - each Application is a `Component` entity that depends on its claims.
//!
//! Entity names follow Backstage's rules (see [`entity_name`]); claims and
//! Applications live in the Backstage namespace of their Kubernetes
//! namespace, cluster-scoped objects in `default`.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The label and annotation a claim, its namespace or an XRD may carry to
/// name its owner in Backstage.
pub const OWNER: &str = "backstage.io/owner";
/// The owner of APIs whose XRD names none.
pub const DEFAULT_API_OWNER: &str = "platform-team";
/// Where Backstage's Kubernetes plugin finds an entity's objects.
pub const LABEL_SELECTOR: &str = "backstage.io/kubernetes-label-selector";
/// The Backstage namespace of cluster-scoped objects.
pub const DEFAULT_NAMESPACE: &str = "default";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot print the catalog as YAML: {0}")]
    Yaml(String),
}

/// What the catalog is made from, as the API serves it.
#[derive(Debug, Default, Clone)]
pub struct Inventory {
    pub xrds: Vec<Value>,
    /// Every claim, of every XRD's claim kind.
    pub claims: Vec<Value>,
    /// Every composite resource, of every XRD's composite kind.
    pub composites: Vec<Value>,
    /// The resources composites name in `spec.resourceRefs`.
    pub managed: Vec<Value>,
    pub applications: Vec<Value>,
    pub namespaces: Vec<Value>,
}

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn is_separator(c: char) -> bool {
    matches!(c, '-' | '_' | '.')
}

/// A Backstage entity name for a Kubernetes name. Backstage allows 1 to 63
/// characters of `[A-Za-z0-9]` separated by `-`, `_` or `.`, beginning and
/// ending with a letter or digit. A name that fits is kept as it is. One
/// that does not has every other character replaced by `-`, and one that is
/// then longer than 63 characters keeps its first 54 and gains `-` and 8
/// hex digits of the SHA-256 of the original name, so two names never map
/// to one.
pub fn entity_name(name: &str) -> String {
    let fits = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || is_separator(c))
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    if fits(name) {
        return name.to_string();
    }
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || is_separator(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let cleaned = cleaned.trim_matches(is_separator);
    let digest = hex::encode(&Sha256::digest(name.as_bytes())[..4]);
    let head: String = cleaned.chars().take(54).collect();
    let head = head.trim_end_matches(is_separator);
    if head.is_empty() {
        digest
    } else {
        format!("{head}-{digest}")
    }
}

/// A Backstage namespace for a Kubernetes namespace: both are DNS labels,
/// so it is kept, lower-cased.
fn entity_namespace(namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => ns.to_lowercase(),
        _ => DEFAULT_NAMESPACE.to_string(),
    }
}

fn reference(kind: &str, namespace: &str, name: &str) -> String {
    format!("{}:{namespace}/{name}", kind.to_lowercase())
}

/// The owner a label or annotation names on `object`.
fn named_owner(object: &Value) -> Option<String> {
    ["/metadata/annotations", "/metadata/labels"]
        .iter()
        .find_map(|p| {
            object
                .pointer(p)
                .and_then(|m| m.get(OWNER))
                .and_then(Value::as_str)
        })
        .filter(|o| !o.is_empty())
        .map(str::to_string)
}

/// The owner of a namespaced object: its own `backstage.io/owner`, else
/// its namespace's, else the namespace itself.
fn owner_in(object: &Value, namespace: &str, namespace_owner: &BTreeMap<&str, String>) -> String {
    named_owner(object)
        .or_else(|| namespace_owner.get(namespace).cloned())
        .unwrap_or_else(|| namespace.to_string())
}

/// The XRD version claims and composites are served at.
fn served_version(xrd: &Value) -> Option<&Value> {
    let versions = xrd.pointer("/spec/versions")?.as_array()?;
    versions
        .iter()
        .find(|v| v.get("referenceable").and_then(Value::as_bool) == Some(true))
        .or_else(|| versions.first())
}

/// An OpenAPI 3 document for the kind an XRD offers developers: its claim
/// if it has one, else its composite resource, with the REST paths the
/// API server serves it at.
pub fn openapi(xrd: &Value) -> Value {
    let group = text(xrd, "/spec/group").unwrap_or_default();
    let version = served_version(xrd)
        .and_then(|v| text(v, "/name"))
        .unwrap_or("v1alpha1");
    let (names, namespaced) = match xrd.pointer("/spec/claimNames") {
        Some(claim) => (claim, true),
        None => (xrd.pointer("/spec/names").unwrap_or(&Value::Null), false),
    };
    let kind = text(names, "/kind").unwrap_or_default();
    let plural = text(names, "/plural").unwrap_or_default();
    let mut schema = served_version(xrd)
        .and_then(|v| v.pointer("/schema/openAPIV3Schema"))
        .cloned()
        .unwrap_or_else(|| json!({"type": "object"}));
    if let Some(props) = schema
        .as_object_mut()
        .map(|s| s.entry("properties").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
    {
        props.insert(
            "apiVersion".into(),
            json!({"type": "string", "enum": [format!("{group}/{version}")]}),
        );
        props.insert("kind".into(), json!({"type": "string", "enum": [kind]}));
        props.insert(
            "metadata".into(),
            json!({"type": "object", "properties": {
                "name": {"type": "string"}, "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}}
            }}),
        );
    }
    let base = if namespaced {
        format!("/apis/{group}/{version}/namespaces/{{namespace}}/{plural}")
    } else {
        format!("/apis/{group}/{version}/{plural}")
    };
    let reference = json!({"$ref": format!("#/components/schemas/{kind}")});
    let list = json!({"type": "object", "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"},
        "items": {"type": "array", "items": reference}
    }});
    let one = |description: &str| json!({"description": description, "content": {"application/json": {"schema": reference}}});
    let mut parameters = Vec::new();
    if namespaced {
        parameters.push(json!({"name": "namespace", "in": "path", "required": true, "schema": {"type": "string"}}));
    }
    let mut named = parameters.clone();
    named.push(
        json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}),
    );
    let description = served_version(xrd)
        .and_then(|v| text(v, "/schema/openAPIV3Schema/description"))
        .map(str::to_string)
        .unwrap_or_else(|| {
            format!(
                "{kind} ({group}), defined by the XRD {}.",
                text(xrd, "/metadata/name").unwrap_or_default()
            )
        });
    json!({
        "openapi": "3.0.3",
        "info": {"title": format!("{kind} ({group}/{version})"), "version": version, "description": description},
        "paths": {
            base.clone(): {
                "parameters": parameters,
                "get": {"operationId": format!("list{kind}"), "summary": format!("List {plural}"),
                        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": list}}}}},
                "post": {"operationId": format!("create{kind}"), "summary": format!("Create a {kind}"),
                         "requestBody": {"required": true, "content": {"application/json": {"schema": reference}}},
                         "responses": {"201": one("Created")}}
            },
            format!("{base}/{{name}}"): {
                "parameters": named,
                "get": {"operationId": format!("read{kind}"), "summary": format!("Read a {kind}"), "responses": {"200": one("OK")}},
                "put": {"operationId": format!("replace{kind}"), "summary": format!("Replace a {kind}"),
                        "requestBody": {"required": true, "content": {"application/json": {"schema": reference}}},
                        "responses": {"200": one("OK")}},
                "delete": {"operationId": format!("delete{kind}"), "summary": format!("Delete a {kind}"),
                           "responses": {"200": {"description": "OK"}}}
            }
        },
        "components": {"schemas": {kind: schema}}
    })
}

/// `apiVersion/kind/name` of an object reference, for lookups.
fn ref_key(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> String {
    format!(
        "{api_version}/{kind}/{}/{name}",
        namespace.unwrap_or_default()
    )
}

fn object_key(object: &Value) -> String {
    ref_key(
        text(object, "/apiVersion").unwrap_or_default(),
        text(object, "/kind").unwrap_or_default(),
        text(object, "/metadata/namespace"),
        text(object, "/metadata/name").unwrap_or_default(),
    )
}

fn selector(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn entity(
    kind: &str,
    namespace: &str,
    name: &str,
    metadata: Map<String, Value>,
    spec: Value,
) -> Value {
    let mut meta = Map::new();
    meta.insert("name".into(), json!(name));
    meta.insert("namespace".into(), json!(namespace));
    meta.extend(metadata);
    json!({"apiVersion": "backstage.io/v1alpha1", "kind": kind, "metadata": meta, "spec": spec})
}

/// Annotations every entity carries: where Backstage's Kubernetes plugin
/// finds the objects, and which object the entity is.
fn annotations(selector: String, object: &Value) -> Value {
    let mut a = json!({LABEL_SELECTOR: selector});
    let kind = text(object, "/kind").unwrap_or_default();
    let api_version = text(object, "/apiVersion").unwrap_or_default();
    a["plinth.dev/kubernetes-object"] = json!(match text(object, "/metadata/namespace") {
        Some(ns) => format!(
            "{api_version}/{kind}/{ns}/{}",
            text(object, "/metadata/name").unwrap_or_default()
        ),
        None => format!(
            "{api_version}/{kind}/{}",
            text(object, "/metadata/name").unwrap_or_default()
        ),
    });
    a
}

/// Every entity of the inventory, in a stable order: APIs, then claims
/// and their managed resources, then Components.
pub fn entities(inventory: &Inventory) -> Vec<Value> {
    let namespace_owner: BTreeMap<&str, String> = inventory
        .namespaces
        .iter()
        .filter_map(|ns| Some((text(ns, "/metadata/name")?, named_owner(ns)?)))
        .collect();
    let composites: BTreeMap<String, &Value> = inventory
        .composites
        .iter()
        .map(|c| (object_key(c), c))
        .collect();
    let managed: BTreeMap<String, &Value> = inventory
        .managed
        .iter()
        .map(|m| (object_key(m), m))
        .collect();
    let mut out = Vec::new();

    let mut xrds: Vec<&Value> = inventory.xrds.iter().collect();
    xrds.sort_by_key(|x| text(x, "/metadata/name").unwrap_or_default().to_string());
    for xrd in xrds {
        let name = text(xrd, "/metadata/name").unwrap_or_default();
        let offered = text(xrd, "/spec/claimNames/kind")
            .or_else(|| text(xrd, "/spec/names/kind"))
            .unwrap_or_default();
        let definition = serde_json::to_string_pretty(&openapi(xrd)).unwrap_or_default();
        let mut metadata = Map::new();
        metadata.insert("title".into(), json!(offered));
        metadata.insert(
            "description".into(),
            json!(format!(
                "The {offered} API ({}), published by the XRD {name}.",
                text(xrd, "/spec/group").unwrap_or_default()
            )),
        );
        metadata.insert(
            "annotations".into(),
            annotations(selector(&[("plinth.dev/xrd", name)]), xrd),
        );
        out.push(entity(
            "API",
            DEFAULT_NAMESPACE,
            &entity_name(name),
            metadata,
            json!({"type": "openapi", "lifecycle": "production",
                   "owner": named_owner(xrd).unwrap_or_else(|| DEFAULT_API_OWNER.to_string()),
                   "definition": definition}),
        ));
    }

    // Managed resources are listed once, however many claims reach them.
    let mut managed_entities: BTreeMap<String, Value> = BTreeMap::new();
    let mut claims: Vec<&Value> = inventory.claims.iter().collect();
    claims.sort_by_key(|c| object_key(c));
    for claim in claims {
        let name = text(claim, "/metadata/name").unwrap_or_default();
        let namespace = text(claim, "/metadata/namespace").unwrap_or_default();
        let kind = text(claim, "/kind").unwrap_or_default();
        let owner = owner_in(claim, namespace, &namespace_owner);
        let composite = match (
            text(claim, "/spec/resourceRef/apiVersion"),
            text(claim, "/spec/resourceRef/kind"),
            text(claim, "/spec/resourceRef/name"),
        ) {
            (Some(a), Some(k), Some(n)) => composites.get(&ref_key(a, k, None, n)).copied(),
            _ => None,
        };
        let mut depends_on = Vec::new();
        for r in composite
            .and_then(|xr| xr.pointer("/spec/resourceRefs"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(a), Some(k), Some(n)) =
                (text(r, "/apiVersion"), text(r, "/kind"), text(r, "/name"))
            else {
                continue;
            };
            let ns = text(r, "/namespace");
            let Some(object) = managed.get(&ref_key(a, k, ns, n)) else {
                continue;
            };
            let entity_ns = entity_namespace(ns);
            let entity_name = entity_name(n);
            depends_on.push(reference("Resource", &entity_ns, &entity_name));
            managed_entities
                .entry(format!("{entity_ns}/{entity_name}"))
                .or_insert_with(|| {
                    let mut metadata = Map::new();
                    metadata.insert("title".into(), json!(format!("{k} {n}")));
                    metadata.insert(
                        "annotations".into(),
                        annotations(
                            selector(&[
                                ("crossplane.io/claim-name", name),
                                ("crossplane.io/claim-namespace", namespace),
                            ]),
                            object,
                        ),
                    );
                    entity(
                        "Resource",
                        &entity_ns,
                        &entity_name,
                        metadata,
                        json!({"type": k, "owner": owner}),
                    )
                });
        }
        let mut metadata = Map::new();
        metadata.insert("title".into(), json!(format!("{kind} {namespace}/{name}")));
        metadata.insert(
            "annotations".into(),
            annotations(
                selector(&[
                    ("crossplane.io/claim-name", name),
                    ("crossplane.io/claim-namespace", namespace),
                ]),
                claim,
            ),
        );
        if let Some(labels) = claim.pointer("/metadata/labels").and_then(Value::as_object) {
            let kept: Map<String, Value> = labels
                .iter()
                .filter(|(k, v)| valid_label(k, v.as_str().unwrap_or("-")))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !kept.is_empty() {
                metadata.insert("labels".into(), Value::Object(kept));
            }
        }
        let mut spec = json!({"type": kind, "owner": owner});
        if !depends_on.is_empty() {
            spec["dependsOn"] = json!(depends_on);
        }
        out.push(entity(
            "Resource",
            &entity_namespace(Some(namespace)),
            &entity_name(name),
            metadata,
            spec,
        ));
    }
    out.extend(managed_entities.into_values());

    let mut applications: Vec<&Value> = inventory.applications.iter().collect();
    applications.sort_by_key(|a| object_key(a));
    let claim_names: BTreeMap<String, ()> = inventory
        .claims
        .iter()
        .map(|c| {
            (
                format!(
                    "{}/{}",
                    text(c, "/metadata/namespace").unwrap_or_default(),
                    text(c, "/metadata/name").unwrap_or_default()
                ),
                (),
            )
        })
        .collect();
    for app in applications {
        let name = text(app, "/metadata/name").unwrap_or_default();
        let namespace = text(app, "/metadata/namespace").unwrap_or_default();
        let owner = owner_in(app, namespace, &namespace_owner);
        let depends_on: Vec<String> = app
            .pointer("/status/appliedResources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| {
                let n = text(r, "/name")?;
                let ns = text(r, "/namespace").unwrap_or(namespace);
                claim_names
                    .contains_key(&format!("{ns}/{n}"))
                    .then(|| reference("Resource", &entity_namespace(Some(ns)), &entity_name(n)))
            })
            .collect();
        let mut metadata = Map::new();
        metadata.insert(
            "title".into(),
            json!(format!("Application {namespace}/{name}")),
        );
        metadata.insert(
            "annotations".into(),
            annotations(selector(&[("app.oam.dev/name", name)]), app),
        );
        let mut spec = json!({"type": "service", "lifecycle": "production", "owner": owner});
        if !depends_on.is_empty() {
            spec["dependsOn"] = json!(depends_on);
        }
        out.push(entity(
            "Component",
            &entity_namespace(Some(namespace)),
            &entity_name(name),
            metadata,
            spec,
        ));
    }
    out
}

/// Whether a Kubernetes label is also a valid Backstage label (Backstage's
/// value rule is stricter: no empty separators at the ends, 63 at most).
fn valid_label(key: &str, value: &str) -> bool {
    let name_ok = |s: &str| entity_name(s) == s;
    let key_ok = match key.split_once('/') {
        Some((prefix, name)) => {
            !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                })
                && name_ok(name)
        }
        None => name_ok(key),
    };
    key_ok && (value.is_empty() || name_ok(value))
}

/// The entities as one YAML stream, one document each, as a Backstage
/// `url` location reads it.
pub fn to_yaml(entities: &[Value]) -> Result<String, Error> {
    let mut out = String::new();
    for e in entities {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(e).map_err(|e| Error::Yaml(e.to_string()))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;

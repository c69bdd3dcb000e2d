//! CustomResourceDefinition structural schemas, treated the way kube-apiserver's
//! apiextensions code treats a CRD version's `openAPIV3Schema`.
//!
//! A schema is parsed and checked once ([`StructuralSchema::new`]), which also
//! compiles every `pattern`. Custom resources then go through the same steps as in
//! kube-apiserver: unknown fields are pruned ([`StructuralSchema::prune`]), absent
//! fields are defaulted ([`StructuralSchema::apply_defaults`]) and the result is
//! validated ([`StructuralSchema::validate`]). The schema also tells server-side
//! apply how lists and maps merge, through [`TypeInfo`].
//!
//! Layout:
//! - this file: the parsed schema tree, the public API, pruning, defaulting, type info;
//! - `schema/parse.rs`: parsing plus the structural checks run at CRD admission;
//! - `schema/validate.rs`: validation of objects against the parsed tree;
//! - `schema/formats.rs`: `format` checks and the regex dialect translation.

use std::collections::HashMap;
use std::sync::Arc;

use regex::Regex;
use serde_json::{Number, Value};

use crate::field::{render_path, CauseType, FieldError, ListType, MapType, PathElement, TypeInfo};

mod formats;
mod parse;
mod validate;

/// The fields every Kubernetes object carries at its root, whatever its schema says.
const RESOURCE_META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// One of the OpenAPI v3 types a CRD schema may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SchemaType {
    Object,
    Array,
    String,
    Integer,
    Number,
    Boolean,
}

impl SchemaType {
    const ALL: [&'static str; 6] = ["array", "boolean", "integer", "number", "object", "string"];

    fn parse(name: &str) -> Option<SchemaType> {
        Some(match name {
            "object" => SchemaType::Object,
            "array" => SchemaType::Array,
            "string" => SchemaType::String,
            "integer" => SchemaType::Integer,
            "number" => SchemaType::Number,
            "boolean" => SchemaType::Boolean,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            SchemaType::Object => "object",
            SchemaType::Array => "array",
            SchemaType::String => "string",
            SchemaType::Integer => "integer",
            SchemaType::Number => "number",
            SchemaType::Boolean => "boolean",
        }
    }
}

/// What `additionalProperties` allows for keys not in `properties`.
#[derive(Debug, Clone, Default)]
enum Additional {
    /// Absent or `false`: unknown keys are pruned.
    #[default]
    None,
    /// `true`: any value is kept as it is.
    Any,
    /// A schema for every map value.
    Schema(Box<Node>),
}

/// A compiled `pattern`, keeping the original text for messages.
#[derive(Debug, Clone)]
struct Pattern {
    source: String,
    regex: Regex,
}

/// Value validations: the keywords that only accept or reject, never shape the data.
#[derive(Debug, Clone, Default)]
struct Checks {
    enum_values: Option<Vec<Value>>,
    pattern: Option<Pattern>,
    format: Option<String>,
    minimum: Option<Number>,
    maximum: Option<Number>,
    exclusive_minimum: bool,
    exclusive_maximum: bool,
    multiple_of: Option<Number>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    min_properties: Option<u64>,
    max_properties: Option<u64>,
    unique_items: bool,
    all_of: Vec<Node>,
    any_of: Vec<Node>,
    one_of: Vec<Node>,
    not: Option<Box<Node>>,
}

/// One parsed schema node. Junctor branches (`allOf` and friends) reuse this type
/// with only value validations filled in, since the structural check forbids the rest.
#[derive(Debug, Clone, Default)]
struct Node {
    ty: Option<SchemaType>,
    int_or_string: bool,
    nullable: bool,
    preserve_unknown: bool,
    embedded: bool,
    properties: Vec<(String, Node)>,
    /// Position of each property in `properties`, so lookups stay cheap on wide objects.
    index: HashMap<String, usize>,
    additional: Additional,
    items: Option<Box<Node>>,
    default: Option<Value>,
    required: Vec<String>,
    list_type: Option<ListType>,
    map_type: Option<MapType>,
    checks: Checks,
}

impl Node {
    fn property(&self, name: &str) -> Option<&Node> {
        self.index
            .get(name)
            .and_then(|&i| self.properties.get(i))
            .map(|(_, node)| node)
    }

    /// The schema governing the value under `key` of an object at this node.
    fn child(&self, key: &str) -> Option<&Node> {
        match (self.property(key), &self.additional) {
            (Some(node), _) => Some(node),
            (None, Additional::Schema(node)) => Some(node),
            _ => None,
        }
    }
}

struct Inner {
    raw: Value,
    root: Node,
}

/// A checked, compiled CRD `openAPIV3Schema`. Cloning is cheap: the tree is shared.
#[derive(Clone)]
pub struct StructuralSchema {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for StructuralSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StructuralSchema")
            .field("raw", &self.inner.raw)
            .finish()
    }
}

impl StructuralSchema {
    /// Parses and checks a CRD version's openAPIV3Schema.
    ///
    /// Errors name the offending schema path relative to `base_path` (e.g. base path
    /// `spec.versions[0].schema.openAPIV3Schema`, error field
    /// `spec.versions[0].schema.openAPIV3Schema.properties[spec].type`) with
    /// kube-apiserver's messages, such as
    /// `Required value: must not be empty for specified object fields`.
    /// Every problem is reported, not just the first.
    pub fn new(schema: &Value, base_path: &str) -> Result<StructuralSchema, Vec<FieldError>> {
        let (root, errors) = parse::parse(schema, base_path);
        if errors.is_empty() {
            Ok(StructuralSchema {
                inner: Arc::new(Inner {
                    raw: schema.clone(),
                    root,
                }),
            })
        } else {
            Err(errors)
        }
    }

    /// Fills in `default` values for absent fields, the way the apiserver defaults on
    /// create, update and read.
    ///
    /// Defaults apply recursively, including inside defaulted values, list items and
    /// `additionalProperties` values. A `null` in a non-nullable field that has a
    /// default is replaced by the default, as upstream does.
    pub fn apply_defaults(&self, obj: &mut Value) {
        default_node(&self.inner.root, obj, true);
    }

    /// Drops fields the schema does not know, unless `x-kubernetes-preserve-unknown-fields`
    /// keeps them, and returns the removed paths rendered like `spec.foo` or
    /// `spec.items[0].bar` (for strict field validation: `unknown field "spec.foo"`).
    ///
    /// `apiVersion`, `kind` and `metadata` are never pruned at the root or in embedded
    /// resources; what is inside `metadata` is left to ObjectMeta handling.
    pub fn prune(&self, obj: &mut Value) -> Vec<String> {
        let mut removed = Vec::new();
        prune_node(&self.inner.root, obj, true, &mut Vec::new(), &mut removed);
        removed
    }

    /// Validates a whole object and returns every error, each naming its field.
    ///
    /// Fields the schema does not know are ignored: callers prune before validating.
    /// Nothing under `metadata` is validated here.
    pub fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate::validate_node(&self.inner.root, obj, true, &mut Vec::new(), &mut errors);
        errors
    }

    /// [`prune`](Self::prune) for a value nested at `base` (a dotted field path
    /// such as `metadata`) that is not a resource itself: nothing at its root is
    /// exempt, and removed paths are rendered below `base` (`metadata.foo`).
    pub fn prune_at(&self, value: &mut Value, base: &str) -> Vec<String> {
        let mut removed = Vec::new();
        let mut path = base_path(base);
        prune_node(&self.inner.root, value, false, &mut path, &mut removed);
        removed
    }

    /// [`validate`](Self::validate) for a value nested at `base`, with errors
    /// naming fields below it (`metadata.generation`).
    pub fn validate_at(&self, value: &Value, base: &str) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut path = base_path(base);
        validate::validate_node(&self.inner.root, value, false, &mut path, &mut errors);
        errors
    }

    /// A schema that keeps and accepts any object, for callers that need a
    /// schema-shaped fallback which cannot fail to build.
    pub fn permissive() -> StructuralSchema {
        StructuralSchema {
            inner: Arc::new(Inner {
                raw: serde_json::json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
                root: Node {
                    ty: Some(SchemaType::Object),
                    preserve_unknown: true,
                    ..Node::default()
                },
            }),
        }
    }

    /// The schema exactly as the CRD gave it, for OpenAPI publishing.
    pub fn raw(&self) -> &Value {
        &self.inner.raw
    }

    /// The raw schema at a path of field names, list items stepped over (so the path
    /// of `spec.containers[0].image` is `["spec", "containers", "image"]`), for
    /// `kubectl explain`. Map values under `additionalProperties` are reached by any key.
    pub fn schema_at(&self, path: &[&str]) -> Option<&Value> {
        let mut current = &self.inner.raw;
        for name in path {
            current = step_over_items(current);
            current = match current.get("properties").and_then(|p| p.get(*name)) {
                Some(found) => found,
                None => match current.get("additionalProperties") {
                    Some(schema @ Value::Object(_)) => schema,
                    _ => return None,
                },
            };
        }
        Some(current)
    }

    /// The parsed node at a path of field names, or where the path enters `metadata`.
    fn lookup<'a, 'p>(&'a self, path: &'p [&'p str]) -> Lookup<'a, 'p> {
        let mut current = &self.inner.root;
        let mut resource = true;
        for (i, name) in path.iter().enumerate() {
            while current.ty == Some(SchemaType::Array) {
                match &current.items {
                    Some(items) => current = items,
                    None => return Lookup::Unknown,
                }
            }
            if resource && *name == "metadata" {
                return Lookup::Metadata(path.get(i + 1..).unwrap_or_default());
            }
            match current.child(name) {
                Some(next) => current = next,
                None => return Lookup::Unknown,
            }
            resource = current.embedded;
        }
        Lookup::Node(current)
    }
}

/// `a.b` as path elements.
fn base_path(base: &str) -> Vec<PathElement> {
    base.split('.')
        .filter(|s| !s.is_empty())
        .map(|s| PathElement::Field(s.to_string()))
        .collect()
}

/// Raw-schema counterpart of stepping over list items in a field-name path.
fn step_over_items(mut schema: &Value) -> &Value {
    // Bounded so a malformed schema that nests `items` oddly cannot loop forever.
    for _ in 0..64 {
        match schema.get("items") {
            Some(items @ Value::Object(_)) => schema = items,
            _ => break,
        }
    }
    schema
}

enum Lookup<'a, 'p> {
    Node(&'a Node),
    /// The rest of a path below an object's `metadata`.
    Metadata(&'p [&'p str]),
    Unknown,
}

impl TypeInfo for StructuralSchema {
    fn list_type(&self, path: &[&str]) -> ListType {
        match self.lookup(path) {
            Lookup::Node(node) => node.list_type.clone().unwrap_or(ListType::Atomic),
            // ObjectMeta's own markers, which no CRD schema may restate.
            Lookup::Metadata(["finalizers"]) => ListType::Set,
            Lookup::Metadata(["ownerReferences"]) => ListType::Map(vec!["uid".to_string()]),
            Lookup::Metadata(_) | Lookup::Unknown => ListType::Atomic,
        }
    }

    fn map_type(&self, path: &[&str]) -> MapType {
        match self.lookup(path) {
            Lookup::Node(node) => node.map_type.unwrap_or(MapType::Granular),
            Lookup::Metadata(_) | Lookup::Unknown => MapType::Granular,
        }
    }
}

/// Upstream replaces a non-nullable `null` with the default, since the null could
/// never validate and most likely came from a client that serialised an empty field.
fn default_if_null(node: &Node, value: &mut Value) {
    if value.is_null() && !node.nullable {
        if let Some(default) = &node.default {
            *value = default.clone();
        }
    }
}

fn default_node(node: &Node, value: &mut Value, resource: bool) {
    match value {
        Value::Object(map) => {
            for (name, prop) in &node.properties {
                if resource && name == "metadata" {
                    continue;
                }
                let Some(default) = &prop.default else {
                    continue;
                };
                match map.get_mut(name) {
                    Some(existing) => default_if_null(prop, existing),
                    None => {
                        map.insert(name.clone(), default.clone());
                    }
                }
            }
            for (key, child) in map.iter_mut() {
                if resource && key == "metadata" {
                    continue;
                }
                if let Some(prop) = node.property(key) {
                    default_node(prop, child, prop.embedded);
                } else if let Additional::Schema(values) = &node.additional {
                    default_if_null(values, child);
                    default_node(values, child, values.embedded);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_node) = &node.items {
                for item in items.iter_mut() {
                    default_if_null(item_node, item);
                    default_node(item_node, item, item_node.embedded);
                }
            }
        }
        _ => {}
    }
}

fn record(path: &mut Vec<PathElement>, key: &str, removed: &mut Vec<String>) {
    path.push(PathElement::Field(key.to_string()));
    removed.push(render_path(path));
    path.pop();
}

fn prune_node(
    node: &Node,
    value: &mut Value,
    resource: bool,
    path: &mut Vec<PathElement>,
    removed: &mut Vec<String>,
) {
    if node.preserve_unknown {
        skip_prune(node, value, resource, path, removed);
        return;
    }
    match value {
        Value::Object(map) => {
            // One pass in document order, so the reported paths read top to bottom.
            let mut unknown = std::collections::HashSet::new();
            for (key, child) in map.iter_mut() {
                if resource && RESOURCE_META_FIELDS.contains(&key.as_str()) {
                    continue;
                }
                match (node.child(key), &node.additional) {
                    (Some(child_node), _) => {
                        path.push(PathElement::Field(key.clone()));
                        prune_node(child_node, child, child_node.embedded, path, removed);
                        path.pop();
                    }
                    (None, Additional::Any) => {}
                    (None, _) => {
                        record(path, key, removed);
                        unknown.insert(key.clone());
                    }
                }
            }
            if !unknown.is_empty() {
                map.retain(|key, _| !unknown.contains(key));
            }
        }
        Value::Array(items) => {
            if let Some(item_node) = &node.items {
                for (i, item) in items.iter_mut().enumerate() {
                    path.push(PathElement::Index(i));
                    prune_node(item_node, item, item_node.embedded, path, removed);
                    path.pop();
                }
            }
        }
        _ => {}
    }
}

/// Inside a preserve-unknown-fields region unknown keys stay, but declared
/// properties switch back to normal pruning, as upstream does.
fn skip_prune(
    node: &Node,
    value: &mut Value,
    resource: bool,
    path: &mut Vec<PathElement>,
    removed: &mut Vec<String>,
) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if resource && RESOURCE_META_FIELDS.contains(&key.as_str()) {
                    continue;
                }
                if let Some(child_node) = node.child(key) {
                    path.push(PathElement::Field(key.clone()));
                    prune_node(child_node, child, child_node.embedded, path, removed);
                    path.pop();
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_node) = &node.items {
                for (i, item) in items.iter_mut().enumerate() {
                    path.push(PathElement::Index(i));
                    skip_prune(item_node, item, item_node.embedded, path, removed);
                    path.pop();
                }
            }
        }
        _ => {}
    }
}

/// Renders a value the way messages show it: JSON, so strings come out quoted.
fn json(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "<unprintable>".to_string())
}

/// Quotes a string as JSON (close to Go's `%q`).
fn quote(s: &str) -> String {
    json(&Value::String(s.to_string()))
}

fn required(field: &str, detail: &str) -> FieldError {
    let message = if detail.is_empty() {
        "Required value".to_string()
    } else {
        format!("Required value: {detail}")
    };
    FieldError::new(CauseType::Required, field, message)
}

fn forbidden(field: &str, detail: &str) -> FieldError {
    FieldError::new(CauseType::Forbidden, field, format!("Forbidden: {detail}"))
}

/// `value` is already rendered (see [`json`]).
fn invalid(field: &str, value: &str, detail: &str) -> FieldError {
    FieldError::new(
        CauseType::Invalid,
        field,
        format!("Invalid value: {value}: {detail}"),
    )
}

fn type_invalid(field: &str, value: &str, detail: &str) -> FieldError {
    FieldError::new(
        CauseType::TypeInvalid,
        field,
        format!("Invalid value: {value}: {detail}"),
    )
}

fn not_supported<S: AsRef<str>>(field: &str, value: &str, supported: &[S]) -> FieldError {
    let list: Vec<String> = supported.iter().map(|s| quote(s.as_ref())).collect();
    FieldError::new(
        CauseType::NotSupported,
        field,
        format!(
            "Unsupported value: {value}: supported values: {}",
            list.join(", ")
        ),
    )
}

fn duplicate(field: &str, value: &str) -> FieldError {
    FieldError::new(
        CauseType::Duplicate,
        field,
        format!("Duplicate value: {value}"),
    )
}

/// Upstream's `FieldValueTooLong` has no [`CauseType`] of its own here, so it maps to Invalid.
fn too_long(field: &str, max: u64) -> FieldError {
    FieldError::new(
        CauseType::Invalid,
        field,
        format!("Too long: may not be more than {max} bytes"),
    )
}

/// Upstream's `FieldValueTooMany` has no [`CauseType`] of its own here, so it maps to Invalid.
fn too_many(field: &str, actual: usize, max: u64) -> FieldError {
    FieldError::new(
        CauseType::Invalid,
        field,
        format!("Too many: {actual}: must have at most {max} items"),
    )
}

#[cfg(test)]
mod tests;

//! Parsing a CRD `openAPIV3Schema` into [`Node`]s, with the checks kube-apiserver
//! runs when a CustomResourceDefinition is written: structural invariants,
//! unsupported keywords, list/map type markers, and defaults that must validate.

use regex::Regex;
use serde_json::{json, Map, Number, Value};

use super::{
    default_node, forbidden, formats, invalid, json, not_supported, prune_node, quote, required,
    validate, Additional, Checks, Node, Pattern, SchemaType,
};
use crate::field::{FieldError, ListType, MapType, PathElement};

const X_PRESERVE: &str = "x-kubernetes-preserve-unknown-fields";
const X_EMBEDDED: &str = "x-kubernetes-embedded-resource";
const X_INT_OR_STRING: &str = "x-kubernetes-int-or-string";
const X_LIST_TYPE: &str = "x-kubernetes-list-type";
const X_LIST_MAP_KEYS: &str = "x-kubernetes-list-map-keys";
const X_MAP_TYPE: &str = "x-kubernetes-map-type";

/// JSON-Schema keywords a CRD schema may not use, with upstream's messages.
const UNSUPPORTED: [(&str, &str); 7] = [
    ("$ref", "$ref is not supported"),
    ("$schema", "$schema is not supported"),
    ("id", "id is not supported"),
    ("definitions", "definitions are not supported"),
    ("additionalItems", "additionalItems is not supported"),
    ("patternProperties", "patternProperties is not supported"),
    ("dependencies", "dependencies is not supported"),
];

/// Where a node sits, which decides what it must specify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    /// A property or `additionalProperties` value.
    Field,
    /// Array items.
    Item,
    /// Inside `allOf`/`anyOf`/`oneOf`/`not`: value validations only.
    Nested,
}

/// The int-or-string exception: a node with `x-kubernetes-int-or-string` may spell
/// its type as `anyOf: [{type: integer}, {type: string}]`, possibly as `allOf[0]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exempt {
    No,
    /// This junctor branch may name a type.
    Type,
    /// This junctor branch's `anyOf` branches may name a type.
    AnyOfTypes,
}

/// Parses `raw` and returns the tree together with every error found.
pub(super) fn parse(raw: &Value, base: &str) -> (Node, Vec<FieldError>) {
    let mut parser = Parser { errors: Vec::new() };
    let root = parser.node(raw, base, Level::Root, Exempt::No);
    parser.completeness(&root, base);
    parser.defaults(&root, base, true);
    (root, parser.errors)
}

struct Parser {
    errors: Vec<FieldError>,
}

fn is_int_or_string_any_of(obj: &Map<String, Value>) -> bool {
    obj.get("anyOf") == Some(&json!([{"type": "integer"}, {"type": "string"}]))
}

impl Parser {
    fn node(&mut self, raw: &Value, path: &str, level: Level, exempt: Exempt) -> Node {
        let Some(obj) = raw.as_object() else {
            self.errors
                .push(invalid(path, &json(raw), "must be a schema object"));
            return Node::default();
        };
        let at = |key: &str| format!("{path}.{key}");
        let mut node = Node::default();

        for (key, message) in UNSUPPORTED {
            if obj.contains_key(key) {
                self.errors.push(forbidden(&at(key), message));
            }
        }

        node.ty = self.schema_type(obj, path);
        node.nullable = self.flag(obj, "nullable", path);
        node.int_or_string = self.flag(obj, X_INT_OR_STRING, path);
        node.embedded = self.flag(obj, X_EMBEDDED, path);
        match obj.get(X_PRESERVE) {
            None => {}
            Some(Value::Bool(true)) => node.preserve_unknown = true,
            Some(other) => self.errors.push(invalid(
                &at(X_PRESERVE),
                &json(other),
                "must be true or undefined",
            )),
        }
        node.default = obj.get("default").cloned();
        node.required = self.strings(obj, "required", path);

        // Below a junctor everything stays a value validation.
        let below = |structural: Level| {
            if level == Level::Nested {
                Level::Nested
            } else {
                structural
            }
        };
        if let Some(props) = obj.get("properties") {
            match props.as_object() {
                Some(props) => {
                    for (name, sub) in props {
                        let child = self.node(
                            sub,
                            &format!("{path}.properties[{name}]"),
                            below(Level::Field),
                            Exempt::No,
                        );
                        node.index.insert(name.clone(), node.properties.len());
                        node.properties.push((name.clone(), child));
                    }
                }
                None => self.errors.push(invalid(
                    &at("properties"),
                    &json(props),
                    "must be an object",
                )),
            }
        }
        match obj.get("items") {
            None => {}
            Some(Value::Array(_)) => self.errors.push(forbidden(
                &at("items"),
                "items must be a schema object and not an array",
            )),
            Some(items) => {
                let items = self.node(items, &at("items"), below(Level::Item), Exempt::No);
                node.items = Some(Box::new(items));
            }
        }
        match obj.get("additionalProperties") {
            None | Some(Value::Bool(false)) => {}
            Some(Value::Bool(true)) => node.additional = Additional::Any,
            Some(schema @ Value::Object(_)) => {
                let values = self.node(
                    schema,
                    &at("additionalProperties"),
                    below(Level::Field),
                    Exempt::No,
                );
                node.additional = Additional::Schema(Box::new(values));
            }
            Some(other) => self.errors.push(invalid(
                &at("additionalProperties"),
                &json(other),
                "must be a boolean or a schema object",
            )),
        }
        if !node.properties.is_empty() && !matches!(node.additional, Additional::None) {
            self.errors.push(forbidden(
                &at("additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }

        let any_of_types = match level {
            Level::Nested => exempt == Exempt::AnyOfTypes,
            _ => node.int_or_string,
        };
        node.checks = self.checks(obj, path, any_of_types, node.int_or_string);

        let map_keys = self.strings(obj, X_LIST_MAP_KEYS, path);
        node.list_type = match obj.get(X_LIST_TYPE) {
            None => None,
            Some(Value::String(s)) if s == "atomic" => Some(ListType::Atomic),
            Some(Value::String(s)) if s == "set" => Some(ListType::Set),
            Some(Value::String(s)) if s == "map" => Some(ListType::Map(map_keys.clone())),
            Some(other) => {
                self.errors.push(not_supported(
                    &at(X_LIST_TYPE),
                    &json(other),
                    &["atomic", "set", "map"],
                ));
                None
            }
        };
        node.map_type = match obj.get(X_MAP_TYPE) {
            None => None,
            Some(Value::String(s)) if s == "granular" => Some(MapType::Granular),
            Some(Value::String(s)) if s == "atomic" => Some(MapType::Atomic),
            Some(other) => {
                self.errors.push(not_supported(
                    &at(X_MAP_TYPE),
                    &json(other),
                    &["granular", "atomic"],
                ));
                None
            }
        };

        if level == Level::Nested {
            self.nested_checks(obj, &node, path, exempt);
        } else {
            self.structural_checks(obj, &node, path, level);
            if obj.contains_key(X_LIST_MAP_KEYS)
                && !matches!(node.list_type, Some(ListType::Map(_)))
            {
                self.errors.push(forbidden(
                    &at(X_LIST_MAP_KEYS),
                    "must be empty if x-kubernetes-list-type is not map",
                ));
            }
        }
        node
    }

    fn schema_type(&mut self, obj: &Map<String, Value>, path: &str) -> Option<SchemaType> {
        match obj.get("type") {
            None => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => {
                let parsed = SchemaType::parse(s);
                if parsed.is_none() {
                    self.errors.push(not_supported(
                        &format!("{path}.type"),
                        &quote(s),
                        &SchemaType::ALL,
                    ));
                }
                parsed
            }
            Some(other) => {
                self.errors.push(invalid(
                    &format!("{path}.type"),
                    &json(other),
                    "must be a string",
                ));
                None
            }
        }
    }

    fn flag(&mut self, obj: &Map<String, Value>, key: &str, path: &str) -> bool {
        match obj.get(key) {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.errors.push(invalid(
                    &format!("{path}.{key}"),
                    &json(other),
                    "must be a boolean",
                ));
                false
            }
        }
    }

    fn strings(&mut self, obj: &Map<String, Value>, key: &str, path: &str) -> Vec<String> {
        let Some(value) = obj.get(key) else {
            return Vec::new();
        };
        let list = value.as_array().and_then(|items| {
            items
                .iter()
                .map(|item| item.as_str().map(str::to_string))
                .collect::<Option<Vec<String>>>()
        });
        list.unwrap_or_else(|| {
            self.errors.push(invalid(
                &format!("{path}.{key}"),
                &json(value),
                "must be a list of strings",
            ));
            Vec::new()
        })
    }

    fn number(&mut self, obj: &Map<String, Value>, key: &str, path: &str) -> Option<Number> {
        match obj.get(key)? {
            Value::Number(n) => Some(n.clone()),
            other => {
                self.errors.push(invalid(
                    &format!("{path}.{key}"),
                    &json(other),
                    "must be a number",
                ));
                None
            }
        }
    }

    fn count(&mut self, obj: &Map<String, Value>, key: &str, path: &str) -> Option<u64> {
        let value = obj.get(key)?;
        let count = value.as_u64().or_else(|| {
            // 3.0 is a fine count too; Go decodes it into an int64 field.
            value
                .as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 1.8e19)
                .map(|f| f as u64)
        });
        if count.is_none() {
            self.errors.push(invalid(
                &format!("{path}.{key}"),
                &json(value),
                "must be a non-negative integer",
            ));
        }
        count
    }

    fn schemas(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        path: &str,
        exempt_first: Exempt,
        exempt_rest: Exempt,
    ) -> Vec<Node> {
        let Some(value) = obj.get(key) else {
            return Vec::new();
        };
        let Some(branches) = value.as_array() else {
            self.errors.push(invalid(
                &format!("{path}.{key}"),
                &json(value),
                "must be a list of schemas",
            ));
            return Vec::new();
        };
        branches
            .iter()
            .enumerate()
            .map(|(i, branch)| {
                self.node(
                    branch,
                    &format!("{path}.{key}[{i}]"),
                    Level::Nested,
                    if i == 0 { exempt_first } else { exempt_rest },
                )
            })
            .collect()
    }

    fn checks(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        any_of_types: bool,
        int_or_string: bool,
    ) -> Checks {
        let at = |key: &str| format!("{path}.{key}");
        let mut checks = Checks {
            minimum: self.number(obj, "minimum", path),
            maximum: self.number(obj, "maximum", path),
            multiple_of: self.number(obj, "multipleOf", path),
            exclusive_minimum: self.flag(obj, "exclusiveMinimum", path),
            exclusive_maximum: self.flag(obj, "exclusiveMaximum", path),
            min_length: self.count(obj, "minLength", path),
            max_length: self.count(obj, "maxLength", path),
            min_items: self.count(obj, "minItems", path),
            max_items: self.count(obj, "maxItems", path),
            min_properties: self.count(obj, "minProperties", path),
            max_properties: self.count(obj, "maxProperties", path),
            unique_items: self.flag(obj, "uniqueItems", path),
            ..Checks::default()
        };
        if let Some(m) = &checks.multiple_of {
            if m.as_f64().is_none_or(|f| f <= 0.0) {
                self.errors.push(invalid(
                    &at("multipleOf"),
                    &m.to_string(),
                    "must be greater than zero",
                ));
                checks.multiple_of = None;
            }
        }
        match obj.get("enum") {
            None => {}
            Some(Value::Array(values)) => checks.enum_values = Some(values.clone()),
            Some(other) => {
                self.errors
                    .push(invalid(&at("enum"), &json(other), "must be a list"));
            }
        }
        match obj.get("pattern") {
            None => {}
            Some(Value::String(source)) => match Regex::new(&formats::translate_pattern(source)) {
                Ok(regex) => {
                    checks.pattern = Some(Pattern {
                        source: source.clone(),
                        regex,
                    })
                }
                Err(err) => {
                    // regex's messages span several lines with a caret diagram; keep the gist.
                    let text = err.to_string();
                    let reason = text
                        .lines()
                        .rev()
                        .find(|line| !line.trim().is_empty())
                        .unwrap_or("invalid pattern")
                        .trim()
                        .trim_start_matches("error: ")
                        .to_string();
                    self.errors.push(invalid(
                        &at("pattern"),
                        &quote(source),
                        &format!("must be a valid regular expression, but isn't: {reason}"),
                    ));
                }
            },
            Some(other) => {
                self.errors
                    .push(invalid(&at("pattern"), &json(other), "must be a string"));
            }
        }
        match obj.get("format") {
            None => {}
            Some(Value::String(format)) => checks.format = Some(format.clone()),
            Some(other) => {
                self.errors
                    .push(invalid(&at("format"), &json(other), "must be a string"));
            }
        }

        let any_of_exempt = if any_of_types && is_int_or_string_any_of(obj) {
            Exempt::Type
        } else {
            Exempt::No
        };
        let first_all_of_is_pattern = obj
            .get("allOf")
            .and_then(|all| all.get(0))
            .and_then(Value::as_object)
            .is_some_and(is_int_or_string_any_of);
        let all_of_exempt = if int_or_string && first_all_of_is_pattern {
            Exempt::AnyOfTypes
        } else {
            Exempt::No
        };
        checks.any_of = self.schemas(obj, "anyOf", path, any_of_exempt, any_of_exempt);
        checks.one_of = self.schemas(obj, "oneOf", path, Exempt::No, Exempt::No);
        checks.all_of = self.schemas(obj, "allOf", path, all_of_exempt, Exempt::No);
        if let Some(not) = obj.get("not") {
            checks.not = Some(Box::new(self.node(
                not,
                &at("not"),
                Level::Nested,
                Exempt::No,
            )));
        }
        checks
    }

    fn structural_checks(
        &mut self,
        obj: &Map<String, Value>,
        node: &Node,
        path: &str,
        level: Level,
    ) {
        let at = |key: &str| format!("{path}.{key}");
        let type_named = matches!(obj.get("type"), Some(Value::String(s)) if !s.is_empty());

        if node.ty == Some(SchemaType::Array) && node.items.is_none() {
            self.errors
                .push(required(&at("items"), "must be specified"));
        }
        if node.embedded && node.ty != Some(SchemaType::Object) {
            const MESSAGE: &str = "must be object if x-kubernetes-embedded-resource is true";
            match node.ty {
                Some(ty) => self
                    .errors
                    .push(invalid(&at("type"), &quote(ty.name()), MESSAGE)),
                None if !type_named => self.errors.push(required(&at("type"), MESSAGE)),
                None => {}
            }
        } else if !type_named && !node.int_or_string && !node.preserve_unknown {
            let message = match level {
                Level::Root => "must not be empty at the root",
                Level::Item => "must not be empty for specified array items",
                _ => "must not be empty for specified object fields",
            };
            self.errors.push(required(&at("type"), message));
        }
        if node.int_or_string {
            if let Some(ty) = node.ty {
                self.errors.push(invalid(
                    &at("type"),
                    &quote(ty.name()),
                    "must be empty if x-kubernetes-int-or-string is true",
                ));
            }
        }
        if node.embedded && obj.contains_key("additionalProperties") {
            self.errors.push(forbidden(
                &at("additionalProperties"),
                "must not be used if x-kubernetes-embedded-resource is set",
            ));
        }
        if level == Level::Root {
            if obj.contains_key("additionalProperties") {
                self.errors.push(forbidden(
                    &at("additionalProperties"),
                    "must not be used at the root",
                ));
            }
            if let Some(ty) = node.ty.filter(|ty| *ty != SchemaType::Object) {
                self.errors.push(invalid(
                    &at("type"),
                    &quote(ty.name()),
                    "must be object at the root",
                ));
            }
        }
        if level == Level::Root || node.embedded {
            for (name, want) in [
                ("kind", SchemaType::String),
                ("apiVersion", SchemaType::String),
                ("metadata", SchemaType::Object),
            ] {
                let Some(prop) = node.property(name) else {
                    continue;
                };
                if prop.ty != Some(want) {
                    let shown = prop.ty.map(SchemaType::name).unwrap_or("");
                    self.errors.push(invalid(
                        &format!("{path}.properties[{name}].type"),
                        &quote(shown),
                        &format!("must be {}", want.name()),
                    ));
                }
            }
        }
        if level == Level::Root {
            self.check_root_metadata(obj, path);
        }
        if node.embedded && !node.preserve_unknown && node.properties.is_empty() {
            self.errors.push(required(
                &at("properties"),
                "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
            ));
        }
        if node.map_type.is_some() && node.ty != Some(SchemaType::Object) {
            self.type_must_be(node, path, "object", "x-kubernetes-map-type");
        }
        if let Some(list_type) = &node.list_type {
            if node.ty != Some(SchemaType::Array) {
                self.type_must_be(node, path, "array", "x-kubernetes-list-type");
            } else if let Some(items) = &node.items {
                self.check_list_items(list_type, items, path);
            }
        }
    }

    fn type_must_be(&mut self, node: &Node, path: &str, want: &str, marker: &str) {
        let field = format!("{path}.type");
        let message = format!("must be {want} if {marker} is specified");
        match node.ty {
            Some(ty) => self
                .errors
                .push(invalid(&field, &quote(ty.name()), &message)),
            None => self.errors.push(required(&field, &message)),
        }
    }

    /// Sets and maps identify items by value or key, which only works for items
    /// that are compared whole (sets) or keyed by required scalars (maps).
    fn check_list_items(&mut self, list_type: &ListType, items: &Node, path: &str) {
        let items_at = |key: &str| format!("{path}.items.{key}");
        let kind = match list_type {
            ListType::Atomic => return,
            ListType::Set => "set",
            ListType::Map(_) => "map",
        };
        if items.nullable {
            self.errors.push(forbidden(
                &items_at("nullable"),
                &format!("cannot be nullable when x-kubernetes-list-type is {kind}"),
            ));
        }
        match list_type {
            ListType::Atomic => {}
            ListType::Set => {
                if items.ty == Some(SchemaType::Object) && items.map_type != Some(MapType::Atomic) {
                    self.errors.push(invalid(
                        &items_at(X_MAP_TYPE),
                        &quote(if items.map_type.is_some() {
                            "granular"
                        } else {
                            ""
                        }),
                        "must be atomic as item of a list with x-kubernetes-list-type=set",
                    ));
                }
                if items.ty == Some(SchemaType::Array)
                    && !matches!(items.list_type, None | Some(ListType::Atomic))
                {
                    self.errors.push(invalid(
                        &items_at(X_LIST_TYPE),
                        &quote(match &items.list_type {
                            Some(ListType::Set) => "set",
                            _ => "map",
                        }),
                        "must be atomic as item of a list with x-kubernetes-list-type=set",
                    ));
                }
            }
            ListType::Map(keys) => {
                let keys_field = format!("{path}.{X_LIST_MAP_KEYS}");
                let keys_json = json(&json!(keys));
                if keys.is_empty() {
                    self.errors.push(required(
                        &keys_field,
                        "must not be empty if x-kubernetes-list-type is map",
                    ));
                }
                if items.ty != Some(SchemaType::Object) {
                    let shown = items.ty.map(SchemaType::name).unwrap_or("");
                    self.errors.push(invalid(
                        &items_at("type"),
                        &quote(shown),
                        "must be object if parent array's x-kubernetes-list-type is map",
                    ));
                }
                if items.map_type == Some(MapType::Atomic) {
                    self.errors.push(invalid(
                        &items_at(X_MAP_TYPE),
                        &quote("atomic"),
                        "must be granular as item of a list with x-kubernetes-list-type=map",
                    ));
                }
                for (i, key) in keys.iter().enumerate() {
                    if keys.get(..i).is_some_and(|before| before.contains(key)) {
                        self.errors.push(invalid(
                            &keys_field,
                            &keys_json,
                            "must not contain duplicate entries",
                        ));
                    }
                    let Some(prop) = items.property(key) else {
                        self.errors.push(invalid(
                            &keys_field,
                            &keys_json,
                            "entries must all be names of item properties",
                        ));
                        continue;
                    };
                    let prop_at = |k: &str| format!("{path}.items.properties[{key}].{k}");
                    if matches!(prop.ty, Some(SchemaType::Array | SchemaType::Object)) {
                        self.errors.push(invalid(
                            &prop_at("type"),
                            &quote(prop.ty.map(SchemaType::name).unwrap_or("")),
                            "must be a scalar type if parent array's x-kubernetes-list-type is map",
                        ));
                    }
                    if !items.required.contains(key) && prop.default.is_none() {
                        self.errors.push(required(
                            &prop_at("default"),
                            "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                        ));
                    }
                    if prop.nullable {
                        self.errors.push(forbidden(
                            &prop_at("nullable"),
                            "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                        ));
                    }
                }
            }
        }
    }

    /// ObjectMeta is validated by the server itself; a CRD may only narrow
    /// `metadata.name` and `metadata.generateName`.
    fn check_root_metadata(&mut self, obj: &Map<String, Value>, path: &str) {
        let Some(metadata) = obj.get("properties").and_then(|p| p.get("metadata")) else {
            return;
        };
        let allowed = metadata.as_object().is_some_and(|meta| {
            meta.iter().all(|(key, value)| match key.as_str() {
                "type" | "description" | "title" => true,
                "properties" => value.as_object().is_some_and(|props| {
                    props
                        .keys()
                        .all(|name| name == "name" || name == "generateName")
                }),
                _ => false,
            })
        });
        if !allowed {
            self.errors.push(forbidden(
                &format!("{path}.properties[metadata]"),
                "must not specify anything other than name and generateName, but metadata is implicitly specified",
            ));
        }
    }

    /// Junctor branches may only validate values; anything that shapes the data
    /// (types, defaults, pruning markers) must live in the structural part.
    fn nested_checks(&mut self, obj: &Map<String, Value>, node: &Node, path: &str, exempt: Exempt) {
        let at = |key: &str| format!("{path}.{key}");
        let present = |key: &str| obj.contains_key(key);
        let non_empty = |key: &str| match obj.get(key) {
            Some(Value::String(s)) => !s.is_empty(),
            Some(Value::Array(a)) => !a.is_empty(),
            Some(_) => true,
            None => false,
        };
        let mut rules: Vec<(&str, &str)> = Vec::new();
        if non_empty("type") && exempt != Exempt::Type {
            rules.push(("type", "must be empty to be structural"));
        }
        if present("additionalProperties") {
            rules.push(("additionalProperties", "must be undefined to be structural"));
        }
        if present("default") {
            rules.push(("default", "must be undefined to be structural"));
        }
        if non_empty("title") {
            rules.push(("title", "must be empty to be structural"));
        }
        if non_empty("description") {
            rules.push(("description", "must be empty to be structural"));
        }
        if node.nullable {
            rules.push(("nullable", "must be false to be structural"));
        }
        if present(X_PRESERVE) {
            rules.push((X_PRESERVE, "must be undefined to be structural"));
        }
        if node.embedded {
            rules.push((X_EMBEDDED, "must be false to be structural"));
        }
        if node.int_or_string {
            rules.push((X_INT_OR_STRING, "must be false to be structural"));
        }
        if non_empty(X_LIST_MAP_KEYS) {
            rules.push((X_LIST_MAP_KEYS, "must be empty to be structural"));
        }
        if present(X_LIST_TYPE) {
            rules.push((X_LIST_TYPE, "must be undefined to be structural"));
        }
        if present(X_MAP_TYPE) {
            rules.push((X_MAP_TYPE, "must be undefined to be structural"));
        }
        for (key, message) in rules {
            self.errors.push(forbidden(&at(key), message));
        }
        if node.property("metadata").is_some() {
            self.errors.push(forbidden(
                &format!("{path}.properties[metadata]"),
                "must not be specified in a nested context",
            ));
        }
    }

    /// Every field a junctor talks about must also exist in the structural part,
    /// otherwise pruning would drop what the junctor validates.
    fn completeness(&mut self, node: &Node, path: &str) {
        self.junctors_complete(&node.checks, node, path, path);
        for (name, prop) in &node.properties {
            self.completeness(prop, &format!("{path}.properties[{name}]"));
        }
        if let Some(items) = &node.items {
            self.completeness(items, &format!("{path}.items"));
        }
        if let Additional::Schema(values) = &node.additional {
            self.completeness(values, &format!("{path}.additionalProperties"));
        }
    }

    fn junctors_complete(&mut self, checks: &Checks, s: &Node, s_path: &str, v_path: &str) {
        for (key, branches) in [
            ("allOf", &checks.all_of),
            ("anyOf", &checks.any_of),
            ("oneOf", &checks.one_of),
        ] {
            for (i, branch) in branches.iter().enumerate() {
                self.nested_complete(branch, Some(s), s_path, &format!("{v_path}.{key}[{i}]"));
            }
        }
        if let Some(not) = &checks.not {
            self.nested_complete(not, Some(s), s_path, &format!("{v_path}.not"));
        }
    }

    fn nested_complete(&mut self, v: &Node, s: Option<&Node>, s_path: &str, v_path: &str) {
        let Some(s) = s else {
            self.errors.push(required(
                s_path,
                &format!("because it is defined in {v_path}"),
            ));
            return;
        };
        self.junctors_complete(&v.checks, s, s_path, v_path);
        if let Some(items) = &v.items {
            self.nested_complete(
                items,
                s.items.as_deref(),
                &format!("{s_path}.items"),
                &format!("{v_path}.items"),
            );
        }
        for (name, v_prop) in &v.properties {
            let v_prop_path = format!("{v_path}.properties[{name}]");
            match (s.property(name), &s.additional) {
                (Some(s_prop), _) => self.nested_complete(
                    v_prop,
                    Some(s_prop),
                    &format!("{s_path}.properties[{name}]"),
                    &v_prop_path,
                ),
                (None, Additional::Schema(values)) => self.nested_complete(
                    v_prop,
                    Some(values),
                    &format!("{s_path}.additionalProperties"),
                    &v_prop_path,
                ),
                (None, _) => self.nested_complete(
                    v_prop,
                    None,
                    &format!("{s_path}.properties[{name}]"),
                    &v_prop_path,
                ),
            }
        }
    }

    /// Defaults must survive pruning and validate, or every object defaulted with
    /// them would be rejected; nested defaults are applied first, as at runtime.
    fn defaults(&mut self, node: &Node, path: &str, resource: bool) {
        if let Some(default) = &node.default {
            let field = format!("{path}.default");
            let mut value = default.clone();
            default_node(node, &mut value, node.embedded || resource);
            let mut pruned = value.clone();
            let mut removed = Vec::new();
            prune_node(
                node,
                &mut pruned,
                node.embedded || resource,
                &mut Vec::new(),
                &mut removed,
            );
            if !removed.is_empty() {
                self.errors.push(invalid(
                    &field,
                    &json(default),
                    &format!("must not have unknown fields: {}", removed.join(", ")),
                ));
            }
            validate::validate_node(
                node,
                &value,
                node.embedded || resource,
                &mut vec![PathElement::Field(field)],
                &mut self.errors,
            );
        }
        for (name, prop) in &node.properties {
            if (resource || node.embedded) && name == "metadata" {
                continue;
            }
            self.defaults(prop, &format!("{path}.properties[{name}]"), false);
        }
        if let Some(items) = &node.items {
            self.defaults(items, &format!("{path}.items"), false);
        }
        if let Additional::Schema(values) = &node.additional {
            self.defaults(values, &format!("{path}.additionalProperties"), false);
        }
    }
}

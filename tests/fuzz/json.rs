//! Arbitrary JSON for the property-based fuzz targets, shared by each
//! crate's `tests/fuzz.rs`. Keys and strings are drawn mostly from the words
//! Kubernetes objects, patches and compositions use, so the generated values
//! reach deep into the code under test instead of bouncing off at the top.
#![allow(dead_code)]

use proptest::prelude::*;
use serde_json::{Map, Value};

/// Words the code under test gives meaning to.
pub const WORDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "namespace",
    "labels",
    "annotations",
    "spec",
    "status",
    "data",
    "items",
    "containers",
    "ports",
    "containerPort",
    "env",
    "value",
    "image",
    "finalizers",
    "ownerReferences",
    "managedFields",
    "fields",
    "forProvider",
    "parameters",
    "$patch",
    "delete",
    "replace",
    "merge",
    "$retainKeys",
    "$setElementOrder/containers",
    "$deleteFromPrimitiveList/finalizers",
    "f:spec",
    "k:{\"name\":\"a\"}",
    "v:1",
    ".",
    "i:0",
    "type",
    "properties",
    "items",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "x-kubernetes-embedded-resource",
    "additionalProperties",
    "required",
    "enum",
    "default",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "nullable",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "x-kubernetes-validations",
    "rule",
    "object",
    "array",
    "string",
    "integer",
    "number",
    "boolean",
    "map",
    "set",
    "atomic",
    "a",
    "b",
    "",
    "0",
    "-1",
    "1.5",
    "true",
];

/// A string: usually one of [`WORDS`], sometimes anything.
pub fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(WORDS).prop_map(str::to_string),
        1 => any::<String>(),
    ]
}

/// Any JSON value, nested a few levels.
pub fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        word().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((word(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A JSON object.
pub fn object() -> impl Strategy<Value = Value> {
    proptest::collection::vec((word(), json()), 0..6)
        .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>()))
}

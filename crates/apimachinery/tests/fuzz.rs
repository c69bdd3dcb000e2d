//! Property-based fuzz targets (proptest, stable Rust): request bodies in
//! protobuf, label and field selectors, strategic merge and server-side
//! apply, and structural schemas. Each target feeds arbitrary input and
//! asserts that the answer is a value or an error, never a panic, plus
//! what must hold of a success. `PROPTEST_CASES=N` sets the cases per
//! target (256 by default, the short run the test command makes).

#[path = "../../../tests/fuzz/json.rs"]
mod json;

use apimachinery::fieldmanager::{self, Manager, Operation};
use apimachinery::schema::StructuralSchema;
use apimachinery::selector::{FieldSelector, LabelSelector};
use apimachinery::{protobuf, smp, Untyped};
use proptest::prelude::*;
use serde_json::{json, Value};

/// kube-apiserver's protobuf envelope: magic, then a runtime.Unknown.
const MAGIC: &[u8] = b"k8s\0";

fn selector_text() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("a".to_string()),
        Just("app".to_string()),
        Just("example.org/tier".to_string()),
        Just("metadata.name".to_string()),
        Just("=".to_string()),
        Just("==".to_string()),
        Just("!=".to_string()),
        Just("!".to_string()),
        Just(",".to_string()),
        Just(" in ".to_string()),
        Just(" notin ".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just(">".to_string()),
        Just("<".to_string()),
        Just(" ".to_string()),
        Just("\\".to_string()),
        proptest::collection::vec(
            proptest::sample::select(&['a', 'z', '0', '9', '.', '-'][..]),
            0..4
        )
        .prop_map(|c| c.into_iter().collect::<String>()),
        any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(pieces, 0..12).prop_map(|p| p.concat())
}

fn manager() -> Manager<'static> {
    Manager {
        name: "fuzz",
        operation: Operation::Apply,
        subresource: None,
        api_version: "v1",
        time: "2026-12-03T00:00:00Z",
    }
}

/// A schema with the shapes a CRD gives: nested objects, a map-list, a
/// set, int-or-string, defaults, enums and bounds.
fn crd_schema() -> StructuralSchema {
    StructuralSchema::new(
        &json!({
            "type": "object",
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object"},
                "spec": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1, "maxLength": 8, "pattern": "^[a-z]+$"},
                        "size": {"type": "integer", "minimum": 0, "maximum": 10, "default": 1},
                        "mode": {"type": "string", "enum": ["a", "b"]},
                        "port": {"x-kubernetes-int-or-string": true},
                        "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set", "maxItems": 4},
                        "containers": {
                            "type": "array",
                            "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["name"],
                            "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "image": {"type": "string"}}}
                        },
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                    }
                }
            }
        }),
        "",
    )
    .expect("the fixed schema is structural")
}

fn labels() -> impl Strategy<Value = serde_json::Map<String, Value>> {
    proptest::collection::vec((json::word(), json::word()), 0..4).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect()
    })
}

proptest! {
    #[test]
    fn protobuf_bodies_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..512), with_magic in any::<bool>()) {
        let body = if with_magic { [MAGIC, &bytes].concat() } else { bytes };
        if let Ok(value) = protobuf::decode(&body) {
            prop_assert!(value.is_object(), "a decoded body is an object: {value}");
        }
    }

    #[test]
    fn label_selectors_parse_or_fail_cleanly(text in selector_text(), labels in labels()) {
        if let Ok(selector) = LabelSelector::parse(&text) {
            let _ = selector.matches(Some(&labels));
        }
    }

    #[test]
    fn label_selectors_from_json_parse_or_fail_cleanly(value in json::json(), labels in labels()) {
        if let Ok(selector) = LabelSelector::from_json(&value) {
            let _ = selector.matches(Some(&labels));
        }
    }

    #[test]
    fn field_selectors_parse_or_fail_cleanly(text in selector_text()) {
        if let Ok(selector) = FieldSelector::parse(&text) {
            let _ = selector.matches(&|field| (field == "metadata.name").then(|| "a".to_string()));
        }
    }

    #[test]
    fn strategic_merge_patches_apply_or_fail_cleanly(
        original in json::object(),
        patch in json::json(),
        kind in proptest::sample::select(&["Pod", "Deployment", "ConfigMap", "Service", "Secret", "Namespace"][..]),
    ) {
        let meta = smp::builtin_patch_meta(kind);
        if let Ok(merged) = smp::strategic_merge(&original, &patch, meta.as_ref()) {
            prop_assert!(merged.is_object());
        }
    }

    #[test]
    fn server_side_apply_merges_or_fails_cleanly(live in proptest::option::of(json::object()), applied in json::json(), force in any::<bool>()) {
        if let Ok(merged) = fieldmanager::apply(live.as_ref(), &applied, &manager(), force, &Untyped) {
            prop_assert!(merged.is_object());
        }
        let schema = crd_schema();
        let _ = fieldmanager::apply(live.as_ref(), &applied, &manager(), force, &schema);
    }

    #[test]
    fn arbitrary_schemas_are_accepted_or_refused_cleanly(schema in json::object(), value in json::json()) {
        if let Ok(schema) = StructuralSchema::new(&schema, "spec") {
            let mut value = value;
            schema.apply_defaults(&mut value);
            let _ = schema.prune(&mut value);
            let _ = schema.validate(&value);
        }
    }

    #[test]
    fn objects_validate_against_a_crd_schema_cleanly(spec in json::json(), extra in json::object()) {
        let schema = crd_schema();
        let mut object = json!({"apiVersion": "v1", "kind": "K", "metadata": {"name": "x"}, "spec": spec});
        if let (Some(obj), Value::Object(extra)) = (object.as_object_mut(), extra) {
            obj.extend(extra);
        }
        schema.apply_defaults(&mut object);
        let _ = schema.prune(&mut object);
        for error in schema.validate(&object) {
            prop_assert!(!error.message.is_empty(), "every error says what is wrong");
        }
    }
}

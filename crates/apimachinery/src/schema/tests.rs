use serde_json::json;

use super::*;
use crate::field::CauseType;

const BASE: &str = "spec.versions[0].schema.openAPIV3Schema";

fn schema(raw: Value) -> StructuralSchema {
    match StructuralSchema::new(&raw, BASE) {
        Ok(s) => s,
        Err(errors) => panic!("schema rejected: {errors:#?}"),
    }
}

fn rejected(raw: Value) -> Vec<FieldError> {
    match StructuralSchema::new(&raw, BASE) {
        Ok(_) => panic!("schema unexpectedly accepted"),
        Err(errors) => errors,
    }
}

fn has(errors: &[FieldError], field: &str, message: &str) -> bool {
    errors
        .iter()
        .any(|e| e.field == field && e.message.contains(message))
}

#[track_caller]
fn assert_has(errors: &[FieldError], field: &str, message: &str) {
    assert!(
        has(errors, field, message),
        "no error at {field:?} containing {message:?} in {errors:#?}"
    );
}

fn crontab() -> StructuralSchema {
    schema(json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["cronSpec"],
                "properties": {
                    "cronSpec": {
                        "type": "string",
                        "pattern": "^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$"
                    },
                    "image": {"type": "string", "maxLength": 5},
                    "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
                    "size": {"type": "string", "enum": ["small", "medium", "large"]}
                }
            }
        }
    }))
}

fn spec(value: Value) -> Value {
    json!({"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "x"}, "spec": value})
}

#[test]
fn valid_object_has_no_errors() {
    let errors = crontab().validate(&spec(
        json!({"cronSpec": "* * * * */5", "replicas": 3, "size": "small"}),
    ));
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn type_error_names_field_and_types() {
    let errors = crontab().validate(&spec(json!({"cronSpec": "* * * * *", "replicas": "3"})));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].cause, CauseType::TypeInvalid);
    assert_eq!(errors[0].field, "spec.replicas");
    assert_eq!(
        errors[0].message,
        "Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""
    );
}

#[test]
fn required_field_missing() {
    let errors = crontab().validate(&spec(json!({})));
    assert_eq!(
        errors,
        vec![FieldError::new(
            CauseType::Required,
            "spec.cronSpec",
            "Required value"
        )]
    );
}

#[test]
fn enum_reports_supported_values() {
    let errors = crontab().validate(&spec(json!({"cronSpec": "* * * * *", "size": "huge"})));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].cause, CauseType::NotSupported);
    assert_eq!(errors[0].field, "spec.size");
    assert_eq!(
        errors[0].message,
        "Unsupported value: \"huge\": supported values: \"small\", \"medium\", \"large\""
    );
}

#[test]
fn pattern_mismatch_quotes_pattern() {
    let errors = crontab().validate(&spec(json!({"cronSpec": "x"})));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].cause, CauseType::Invalid);
    assert_eq!(
        errors[0].message,
        "Invalid value: \"x\": spec.cronSpec in body should match '^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$'"
    );
}

#[test]
fn pattern_classes_are_ascii_like_re2() {
    let errors = crontab().validate(&spec(json!({"cronSpec": "١ * * * *"})));
    assert_eq!(errors.len(), 1, "Arabic-Indic digits are not \\d in RE2");
}

#[test]
fn minimum_and_maximum() {
    let s = crontab();
    let low = s.validate(&spec(json!({"cronSpec": "* * * * *", "replicas": 0})));
    assert_eq!(
        low[0].message,
        "Invalid value: 0: spec.replicas in body should be greater than or equal to 1"
    );
    let high = s.validate(&spec(json!({"cronSpec": "* * * * *", "replicas": 11})));
    assert_eq!(
        high[0].message,
        "Invalid value: 11: spec.replicas in body should be less than or equal to 10"
    );
    assert!(s
        .validate(&spec(json!({"cronSpec": "* * * * *", "replicas": 10})))
        .is_empty());
}

#[test]
fn exclusive_bounds_and_multiple_of() {
    let s = schema(json!({"type": "object", "properties": {
        "ratio": {"type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 1, "exclusiveMaximum": true},
        "step": {"type": "number", "multipleOf": 0.1}
    }}));
    let errors = s.validate(&json!({"ratio": 1, "step": 0.3}));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(
        errors[0].message,
        "Invalid value: 1: ratio in body should be less than 1"
    );
    let errors = s.validate(&json!({"ratio": 0, "step": 0.25}));
    assert_has(&errors, "ratio", "should be greater than 0");
    assert_has(&errors, "step", "should be a multiple of 0.1");
}

#[test]
fn string_lengths_count_characters() {
    let s = schema(json!({"type": "object", "properties": {
        "name": {"type": "string", "minLength": 2, "maxLength": 5}
    }}));
    assert!(s.validate(&json!({"name": "ééééé"})).is_empty());
    let long = s.validate(&json!({"name": "abcdef"}));
    assert_eq!(
        long,
        vec![FieldError::new(
            CauseType::Invalid,
            "name",
            "Too long: may not be more than 5 bytes"
        )]
    );
    let short = s.validate(&json!({"name": "a"}));
    assert_eq!(
        short[0].message,
        "Invalid value: \"a\": name in body should be at least 2 chars long"
    );
}

#[test]
fn item_and_property_counts() {
    let s = schema(json!({"type": "object", "properties": {
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2, "uniqueItems": true},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1, "maxProperties": 2}
    }}));
    let errors = s.validate(&json!({"tags": [], "labels": {}}));
    assert_has(&errors, "tags", "tags in body should have at least 1 items");
    assert_has(
        &errors,
        "labels",
        "labels in body should have at least 1 properties",
    );
    let errors =
        s.validate(&json!({"tags": ["a", "b", "a"], "labels": {"a": "1", "b": "2", "c": "3"}}));
    assert_has(&errors, "tags", "Too many: 3: must have at most 2 items");
    assert_has(&errors, "labels", "Too many: 3: must have at most 2 items");
    assert!(errors
        .iter()
        .any(|e| e.field == "tags[2]" && e.cause == CauseType::Duplicate));
}

#[test]
fn integers_numbers_and_formats() {
    let s = schema(json!({"type": "object", "properties": {
        "count": {"type": "integer", "format": "int32"},
        "big": {"type": "integer", "format": "int64"},
        "ratio": {"type": "number"},
        "at": {"type": "string", "format": "date-time"},
        "data": {"type": "string", "format": "byte"},
        "free": {"type": "string", "format": "some-unknown-format"}
    }}));
    assert!(s
        .validate(&json!({"count": 2.0, "big": 9_000_000_000i64, "ratio": 3, "at": "2024-02-29T10:00:00.5Z", "data": "aGk=", "free": "x"}))
        .is_empty());
    let errors = s.validate(&json!({"count": 2.5, "big": 1, "ratio": "x", "at": "2023-02-29T10:00:00Z", "data": "a$==", "free": "x"}));
    assert_has(
        &errors,
        "count",
        "count in body must be of type integer: \"number\"",
    );
    assert_has(&errors, "ratio", "must be of type number: \"string\"");
    assert_has(
        &errors,
        "at",
        "at in body must be of type date-time: \"2023-02-29T10:00:00Z\"",
    );
    assert_has(&errors, "data", "must be of type byte");
    let errors =
        s.validate(&json!({"count": 3_000_000_000i64, "big": 18_446_744_073_709_551_615u64}));
    assert_has(&errors, "count", "must be of type int32");
    assert_has(&errors, "big", "must be of type int64");
}

#[test]
fn nullable_fields() {
    let s = schema(json!({"type": "object", "properties": {
        "maybe": {"type": "string", "nullable": true},
        "never": {"type": "string"}
    }}));
    assert!(s.validate(&json!({"maybe": null})).is_empty());
    let errors = s.validate(&json!({"never": null}));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].cause, CauseType::TypeInvalid);
    assert_eq!(
        errors[0].message,
        "Invalid value: \"null\": never in body must be of type string: \"null\""
    );
}

#[test]
fn int_or_string() {
    let s = schema(json!({"type": "object", "properties": {
        "port": {"x-kubernetes-int-or-string": true, "pattern": "^[a-z]+$", "maximum": 100}
    }}));
    assert!(s.validate(&json!({"port": 80})).is_empty());
    assert!(s.validate(&json!({"port": "http"})).is_empty());
    assert_has(
        &s.validate(&json!({"port": 101})),
        "port",
        "less than or equal to 100",
    );
    assert_has(
        &s.validate(&json!({"port": "HTTP"})),
        "port",
        "should match",
    );
    let errors = s.validate(&json!({"port": true}));
    assert_eq!(
        errors[0].message,
        "Invalid value: \"boolean\": port in body must be of type integer,string: \"boolean\""
    );
}

#[test]
fn int_or_string_any_of_pattern_is_structural() {
    let s = schema(json!({"type": "object", "properties": {
        "a": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
        "b": {"x-kubernetes-int-or-string": true, "allOf": [{"anyOf": [{"type": "integer"}, {"type": "string"}]}, {"pattern": "^\\d+%?$"}]}
    }}));
    assert!(s.validate(&json!({"a": 1, "b": "50%"})).is_empty());
    assert_has(&s.validate(&json!({"b": "x"})), "b", "should match");
}

#[test]
fn map_values_validated_and_unknown_keys_ignored() {
    let s = schema(json!({"type": "object", "properties": {
        "limits": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}
    }}));
    let errors = s.validate(&json!({"limits": {"cpu": -1, "mem": "x"}, "unknown": 1}));
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_has(
        &errors,
        "limits.cpu",
        "limits.cpu in body should be greater than or equal to 0",
    );
    assert_has(&errors, "limits.mem", "must be of type integer");
}

#[test]
fn list_type_set_and_map_duplicates() {
    let s = schema(json!({"type": "object", "properties": {
        "finalizers": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "ports": {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["port", "protocol"],
            "items": {"type": "object", "required": ["port"], "properties": {
                "port": {"type": "integer"},
                "protocol": {"type": "string", "default": "TCP"},
                "name": {"type": "string"}
            }}
        }
    }}));
    let errors = s.validate(&json!({
        "finalizers": ["a", "b", "a"],
        "ports": [{"port": 80, "protocol": "TCP", "name": "x"}, {"port": 80, "protocol": "UDP"}, {"port": 80, "protocol": "TCP"}]
    }));
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(
        errors[0],
        FieldError::new(
            CauseType::Duplicate,
            "finalizers[2]",
            "Duplicate value: \"a\""
        )
    );
    assert_eq!(errors[1].field, "ports[2]");
    assert_eq!(errors[1].cause, CauseType::Duplicate);
    assert_eq!(
        errors[1].message,
        "Duplicate value: {\"port\":80,\"protocol\":\"TCP\"}"
    );
}

#[test]
fn junctors() {
    let s = schema(json!({"type": "object", "properties": {
        "a": {"type": "string", "anyOf": [{"minLength": 3}, {"pattern": "^x"}]},
        "b": {"type": "integer", "oneOf": [{"minimum": 0}, {"maximum": 10}]},
        "c": {"type": "string", "not": {"enum": ["forbidden"]}},
        "d": {"type": "integer", "allOf": [{"minimum": 0}, {"maximum": 5}]}
    }}));
    assert!(s
        .validate(&json!({"a": "xy", "b": -5, "c": "ok", "d": 3}))
        .is_empty());
    let errors = s.validate(&json!({"a": "ab", "b": 5, "c": "forbidden", "d": 9}));
    assert_has(
        &errors,
        "a",
        "\"a\" must validate at least one schema (anyOf)",
    );
    assert_has(
        &errors,
        "b",
        "must validate one and only one schema (oneOf). Found 2 valid alternatives",
    );
    assert_has(&errors, "c", "\"c\" must not validate the schema (not)");
    assert_has(
        &errors,
        "d",
        "must validate all the schemas (allOf); failed: allOf[1]",
    );
    assert_has(&errors, "d", "d in body should be less than or equal to 5");
}

#[test]
fn junctor_properties_validate_nested_fields() {
    let s = schema(json!({"type": "object", "properties": {
        "spec": {
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "oneOf": [{"required": ["a"]}, {"required": ["b"]}]
        }
    }}));
    assert!(s.validate(&json!({"spec": {"a": "1"}})).is_empty());
    let errors = s.validate(&json!({"spec": {}}));
    assert_has(&errors, "spec", "Found none valid");
    assert_has(&errors, "spec.a", "Required value");
}

#[test]
fn every_error_is_reported() {
    let errors = crontab().validate(&spec(
        json!({"replicas": 0, "size": "huge", "image": "toolong"}),
    ));
    assert_eq!(errors.len(), 4, "{errors:#?}");
    for field in ["spec.cronSpec", "spec.replicas", "spec.size", "spec.image"] {
        assert!(errors.iter().any(|e| e.field == field), "missing {field}");
    }
}

#[test]
fn root_must_be_object_when_validating() {
    let errors = crontab().validate(&json!([1, 2]));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].cause, CauseType::TypeInvalid);
}

#[test]
fn metadata_is_neither_validated_nor_pruned() {
    let s = schema(json!({"type": "object", "properties": {
        "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 3}}},
        "spec": {"type": "object"}
    }}));
    let mut obj = json!({"apiVersion": "v1", "kind": "K", "metadata": {"name": "longer", "labels": {"a": "b"}}, "spec": {"x": 1}, "status": {}});
    assert!(s.validate(&obj).is_empty());
    let removed = s.prune(&mut obj);
    assert_eq!(removed, vec!["spec.x".to_string(), "status".to_string()]);
    assert_eq!(
        obj,
        json!({"apiVersion": "v1", "kind": "K", "metadata": {"name": "longer", "labels": {"a": "b"}}, "spec": {}})
    );
}

#[test]
fn prune_reports_paths_inside_lists_and_maps() {
    let s = schema(json!({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "items": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
            "byName": {"type": "object", "additionalProperties": {"type": "object", "properties": {"v": {"type": "integer"}}}},
            "closed": {"type": "object", "additionalProperties": false}
        }}
    }}));
    let mut obj = json!({"spec": {
        "items": [{"name": "a"}, {"name": "b", "bar": 1}],
        "byName": {"k": {"v": 1, "junk": true}},
        "closed": {"any": 1},
        "foo": "x"
    }});
    let removed = s.prune(&mut obj);
    assert_eq!(
        removed,
        vec![
            "spec.items[1].bar",
            "spec.byName.k.junk",
            "spec.closed.any",
            "spec.foo"
        ]
    );
    assert_eq!(
        obj,
        json!({"spec": {"items": [{"name": "a"}, {"name": "b"}], "byName": {"k": {"v": 1}}, "closed": {}}})
    );
}

#[test]
fn preserve_unknown_fields_keeps_unknown_but_prunes_declared() {
    let s = schema(json!({"type": "object", "properties": {
        "spec": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
            "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}
        },
        "raw": {"x-kubernetes-preserve-unknown-fields": true}
    }}));
    let mut obj = json!({"spec": {"extra": {"deep": 1}, "known": {"a": "x", "b": "y"}}, "raw": [1, {"z": 2}]});
    let removed = s.prune(&mut obj);
    assert_eq!(removed, vec!["spec.known.b"]);
    assert_eq!(
        obj,
        json!({"spec": {"extra": {"deep": 1}, "known": {"a": "x"}}, "raw": [1, {"z": 2}]})
    );
    assert!(s.validate(&obj).is_empty());
}

#[test]
fn embedded_resources_keep_their_header() {
    let s = schema(json!({"type": "object", "properties": {
        "template": {
            "type": "object",
            "x-kubernetes-embedded-resource": true,
            "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string"}}}}
        }
    }}));
    let mut obj = json!({"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"x": 1}, "spec": {"a": "b", "c": 1}, "d": 2}});
    let removed = s.prune(&mut obj);
    assert_eq!(removed, vec!["template.spec.c", "template.d"]);
    assert_eq!(obj["template"]["metadata"], json!({"x": 1}));
    assert!(s.validate(&obj).is_empty());
    let errors = s.validate(&json!({"template": {"apiVersion": "a/b/c"}}));
    assert_has(
        &errors,
        "template.kind",
        "Required value: must not be empty",
    );
    assert_has(
        &errors,
        "template.apiVersion",
        "unexpected GroupVersion string",
    );
}

#[test]
fn defaults_apply_recursively() {
    let s = schema(json!({"type": "object", "properties": {
        "spec": {"type": "object", "default": {}, "properties": {
            "replicas": {"type": "integer", "default": 1},
            "strategy": {"type": "object", "default": {"type": "Rolling"}, "properties": {
                "type": {"type": "string"},
                "maxSurge": {"type": "integer", "default": 25}
            }},
            "ports": {"type": "array", "items": {"type": "object", "properties": {
                "protocol": {"type": "string", "default": "TCP"},
                "port": {"type": "integer"}
            }}},
            "env": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                "value": {"type": "string", "default": "unset"}
            }}}
        }}
    }}));
    let mut obj = json!({"apiVersion": "v1", "kind": "K", "metadata": {}});
    s.apply_defaults(&mut obj);
    assert_eq!(
        obj["spec"],
        json!({"replicas": 1, "strategy": {"type": "Rolling", "maxSurge": 25}})
    );

    let mut obj = json!({"spec": {"replicas": 3, "ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}], "env": {"A": {}}}});
    s.apply_defaults(&mut obj);
    assert_eq!(obj["spec"]["replicas"], json!(3));
    assert_eq!(
        obj["spec"]["ports"],
        json!([{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}])
    );
    assert_eq!(obj["spec"]["env"], json!({"A": {"value": "unset"}}));
}

#[test]
fn defaults_replace_non_nullable_nulls_only() {
    let s = schema(json!({"type": "object", "properties": {
        "a": {"type": "string", "default": "x"},
        "b": {"type": "string", "nullable": true, "default": "y"},
        "c": {"type": "array", "items": {"type": "string", "default": "z"}}
    }}));
    let mut obj = json!({"a": null, "b": null, "c": [null, "q"]});
    s.apply_defaults(&mut obj);
    assert_eq!(obj, json!({"a": "x", "b": null, "c": ["z", "q"]}));
}

#[test]
fn structural_missing_type() {
    let errors = rejected(json!({"type": "object", "properties": {
        "spec": {"properties": {"a": {"type": "string"}}},
        "list": {"type": "array", "items": {}}
    }}));
    assert_eq!(
        errors,
        vec![
            FieldError::new(
                CauseType::Required,
                format!("{BASE}.properties[spec].type"),
                "Required value: must not be empty for specified object fields"
            ),
            FieldError::new(
                CauseType::Required,
                format!("{BASE}.properties[list].items.type"),
                "Required value: must not be empty for specified array items"
            ),
        ]
    );
}

#[test]
fn structural_shape_errors_are_all_collected() {
    let errors = rejected(json!({
        "type": "array",
        "additionalProperties": {"type": "string"},
        "properties": {
            "a": {"type": "array"},
            "b": {"type": "object", "properties": {"x": {"type": "string"}}, "additionalProperties": {"type": "string"}},
            "c": {"type": "strin"},
            "d": {"type": "object", "$ref": "#/definitions/x", "definitions": {}, "patternProperties": {}, "dependencies": {}},
            "e": {"type": "array", "items": [{"type": "string"}], "additionalItems": false}
        }
    }));
    assert_has(
        &errors,
        &format!("{BASE}.type"),
        "Invalid value: \"array\": must be object at the root",
    );
    assert_has(
        &errors,
        &format!("{BASE}.additionalProperties"),
        "must not be used at the root",
    );
    assert_has(
        &errors,
        &format!("{BASE}.additionalProperties"),
        "mutual exclusive",
    );
    assert_has(
        &errors,
        &format!("{BASE}.properties[a].items"),
        "Required value: must be specified",
    );
    assert_has(
        &errors,
        &format!("{BASE}.properties[b].additionalProperties"),
        "additionalProperties and properties are mutual exclusive",
    );
    assert_has(
        &errors,
        &format!("{BASE}.properties[c].type"),
        "Unsupported value: \"strin\"",
    );
    assert_has(
        &errors,
        &format!("{BASE}.properties[d].$ref"),
        "Forbidden: $ref is not supported",
    );
    assert_has(
        &errors,
        &format!("{BASE}.properties[d].definitions"),
        "Forbidden",
    );
    assert_has(
        &errors,
        &format!("{BASE}.properties[d].patternProperties"),
        "Forbidden",
    );
    assert_has(
        &errors,
        &format!("{BASE}.properties[d].dependencies"),
        "Forbidden",
    );
    assert_has(
        &errors,
        &format!("{BASE}.properties[e].items"),
        "must be a schema object and not an array",
    );
    assert_has(
        &errors,
        &format!("{BASE}.properties[e].additionalItems"),
        "Forbidden",
    );
    assert!(errors.iter().all(|e| e.field.starts_with(BASE)));
}

#[test]
fn structural_list_type_rules() {
    let errors = rejected(json!({"type": "object", "properties": {
        "m": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name", "missing"],
              "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
        "n": {"type": "array", "x-kubernetes-list-type": "map", "items": {"type": "string"}},
        "s": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "object"}},
        "t": {"type": "string", "x-kubernetes-list-type": "bogus"},
        "u": {"type": "array", "x-kubernetes-list-map-keys": ["a"], "items": {"type": "string"}}
    }}));
    let p = |name: &str, rest: &str| format!("{BASE}.properties[{name}].{rest}");
    assert_has(
        &errors,
        &p("m", "items.properties[name].default"),
        "must have a default or be a required property",
    );
    assert_has(
        &errors,
        &p("m", "x-kubernetes-list-map-keys"),
        "entries must all be names of item properties",
    );
    assert_has(
        &errors,
        &p("n", "x-kubernetes-list-map-keys"),
        "must not be empty if x-kubernetes-list-type is map",
    );
    assert_has(
        &errors,
        &p("n", "items.type"),
        "must be object if parent array's x-kubernetes-list-type is map",
    );
    assert_has(
        &errors,
        &p("s", "items.x-kubernetes-map-type"),
        "must be atomic as item of a list with x-kubernetes-list-type=set",
    );
    assert_has(
        &errors,
        &p("t", "x-kubernetes-list-type"),
        "Unsupported value: \"bogus\"",
    );
    assert_has(
        &errors,
        &p("u", "x-kubernetes-list-map-keys"),
        "must be empty if x-kubernetes-list-type is not map",
    );
}

#[test]
fn structural_bad_pattern_is_an_error_not_a_panic() {
    let errors = rejected(json!({"type": "object", "properties": {
        "a": {"type": "string", "pattern": "(?=lookahead)"},
        "b": {"type": "string", "pattern": "[unclosed"}
    }}));
    assert_has(
        &errors,
        &format!("{BASE}.properties[a].pattern"),
        "must be a valid regular expression, but isn't",
    );
    assert_has(
        &errors,
        &format!("{BASE}.properties[b].pattern"),
        "must be a valid regular expression",
    );
}

#[test]
fn structural_defaults_must_validate() {
    let errors = rejected(json!({"type": "object", "properties": {
        "a": {"type": "integer", "minimum": 1, "default": 0},
        "b": {"type": "object", "properties": {"x": {"type": "string"}}, "default": {"x": "ok", "y": 1}},
        "c": {"type": "object", "properties": {"x": {"type": "string", "enum": ["p"], "default": "q"}}, "default": {}},
        "d": {"type": "string", "default": null}
    }}));
    assert_has(
        &errors,
        &format!("{BASE}.properties[a].default"),
        "should be greater than or equal to 1",
    );
    assert_has(
        &errors,
        &format!("{BASE}.properties[b].default"),
        "must not have unknown fields: y",
    );
    assert_has(
        &errors,
        &format!("{BASE}.properties[c].default.x"),
        "Unsupported value: \"q\"",
    );
    assert_has(
        &errors,
        &format!("{BASE}.properties[d].default"),
        "must be of type string: \"null\"",
    );
    // Nested defaults applied inside a default count.
    schema(json!({"type": "object", "properties": {
        "c": {"type": "object", "required": ["x"], "properties": {"x": {"type": "string", "default": "p"}}, "default": {}}
    }}));
}

#[test]
fn structural_value_validations_may_not_shape_data() {
    let errors = rejected(json!({"type": "object", "properties": {
        "a": {"type": "object", "properties": {"x": {"type": "string"}}, "anyOf": [
            {"type": "object", "properties": {"x": {"default": "q"}}},
            {"nullable": true, "properties": {"y": {"maxLength": 3}}, "x-kubernetes-preserve-unknown-fields": true}
        ]},
        "b": {"type": "string", "allOf": [{"description": "no"}], "not": {"properties": {"metadata": {}}}}
    }}));
    let p = |rest: &str| format!("{BASE}.properties[{rest}");
    assert_has(
        &errors,
        &p("a].anyOf[0].type"),
        "Forbidden: must be empty to be structural",
    );
    assert_has(
        &errors,
        &p("a].anyOf[0].properties[x].default"),
        "must be undefined to be structural",
    );
    assert_has(
        &errors,
        &p("a].anyOf[1].nullable"),
        "must be false to be structural",
    );
    assert_has(
        &errors,
        &p("a].anyOf[1].x-kubernetes-preserve-unknown-fields"),
        "must be undefined",
    );
    assert_has(
        &errors,
        &p("a].properties[y]"),
        "Required value: because it is defined in",
    );
    assert_has(
        &errors,
        &p("b].allOf[0].description"),
        "must be empty to be structural",
    );
    assert_has(
        &errors,
        &p("b].not.properties[metadata]"),
        "must not be specified in a nested context",
    );
}

#[test]
fn structural_metadata_and_embedded_rules() {
    let errors = rejected(json!({"type": "object", "properties": {
        "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}},
        "kind": {"type": "integer"},
        "e": {"x-kubernetes-embedded-resource": true},
        "f": {"type": "object", "x-kubernetes-embedded-resource": true},
        "g": {"type": "string", "x-kubernetes-preserve-unknown-fields": false}
    }}));
    assert_has(
        &errors,
        &format!("{BASE}.properties[metadata]"),
        "must not specify anything other than name and generateName",
    );
    assert_has(
        &errors,
        &format!("{BASE}.properties[kind].type"),
        "must be string",
    );
    assert_has(
        &errors,
        &format!("{BASE}.properties[e].type"),
        "must be object if x-kubernetes-embedded-resource is true",
    );
    assert_has(
        &errors,
        &format!("{BASE}.properties[f].properties"),
        "must not be empty if x-kubernetes-embedded-resource is true",
    );
    assert_has(
        &errors,
        &format!("{BASE}.properties[g].x-kubernetes-preserve-unknown-fields"),
        "must be true or undefined",
    );
    schema(json!({"type": "object", "properties": {
        "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}}}
    }}));
}

#[test]
fn malformed_schemas_never_panic() {
    for raw in [
        json!(null),
        json!("object"),
        json!({"type": 3}),
        json!({"type": "object", "properties": []}),
        json!({"type": "object", "properties": {"a": 1}}),
        json!({"type": "object", "required": "a", "enum": 1, "minLength": -1, "maximum": "x", "allOf": {}}),
        json!({"type": "object", "properties": {"a": {"type": "number", "multipleOf": 0}}}),
    ] {
        assert!(StructuralSchema::new(&raw, BASE).is_err(), "{raw}");
    }
    let errors = rejected(json!({"type": "object", "properties": {"a": 1}}));
    assert_has(
        &errors,
        &format!("{BASE}.properties[a]"),
        "must be a schema object",
    );
}

#[test]
fn untyped_preserve_and_int_or_string_nodes_are_structural() {
    let s = schema(json!({"type": "object", "properties": {
        "anything": {"x-kubernetes-preserve-unknown-fields": true},
        "port": {"x-kubernetes-int-or-string": true}
    }}));
    let obj = json!({"anything": null, "port": "80"});
    assert!(s.validate(&obj).is_empty());
}

#[test]
fn type_info_from_markers() {
    let s = schema(json!({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "containers": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"},
                    "args": {"type": "array", "items": {"type": "string"}},
                    "ports": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "integer"}},
                    "selector": {"type": "object", "x-kubernetes-map-type": "atomic"}
                }}},
            "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }}
    }}));
    assert_eq!(
        s.list_type(&["spec", "containers"]),
        ListType::Map(vec!["name".to_string()])
    );
    assert_eq!(s.list_type(&["spec", "containers", "ports"]), ListType::Set);
    assert_eq!(
        s.list_type(&["spec", "containers", "args"]),
        ListType::Atomic
    );
    assert_eq!(
        s.map_type(&["spec", "containers", "selector"]),
        MapType::Atomic
    );
    assert_eq!(s.map_type(&["spec"]), MapType::Granular);
    assert_eq!(s.list_type(&["spec", "raw", "whatever"]), ListType::Atomic);
    assert_eq!(s.list_type(&["metadata", "finalizers"]), ListType::Set);
    assert_eq!(
        s.list_type(&["metadata", "ownerReferences"]),
        ListType::Map(vec!["uid".to_string()])
    );
    assert_eq!(s.list_type(&["nope"]), ListType::Atomic);
}

#[test]
fn schema_at_steps_over_items() {
    let s = crontab();
    assert_eq!(
        s.schema_at(&["spec", "replicas"]),
        Some(&json!({"type": "integer", "minimum": 1, "maximum": 10}))
    );
    assert_eq!(s.schema_at(&[]), Some(s.raw()));
    assert!(s.schema_at(&["spec", "missing"]).is_none());
    let s = schema(
        json!({"type": "object", "properties": {"l": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "string"}}}}}}),
    );
    assert_eq!(s.schema_at(&["l", "n"]), Some(&json!({"type": "string"})));
}

#[test]
fn prune_then_default_then_validate_round_trip() {
    let s = crontab();
    let mut obj = spec(json!({"cronSpec": "* * * * *", "bogus": 1}));
    let removed = s.prune(&mut obj);
    assert_eq!(removed, vec!["spec.bogus"]);
    s.apply_defaults(&mut obj);
    assert!(s.validate(&obj).is_empty());
    // Cheap clones share the tree.
    let copy = s.clone();
    assert!(Arc::ptr_eq(&copy.inner, &s.inner));
}

#[test]
fn other_string_formats() {
    for (format, good, bad) in [
        (
            "uuid",
            "123e4567-e89b-12d3-a456-426614174000",
            "123e4567-e89b-12d3-a456",
        ),
        ("ipv4", "10.0.0.1", "10.0.0"),
        ("ipv6", "::1", "1:::2"),
        ("cidr", "10.0.0.0/8", "10.0.0.0/33"),
        ("mac", "00:1a:2b:3c:4d:5e", "00:1a:2b"),
        ("date", "2024-12-31", "2024-13-01"),
    ] {
        let s = schema(
            json!({"type": "object", "properties": {"v": {"type": "string", "format": format}}}),
        );
        assert!(
            s.validate(&json!({"v": good})).is_empty(),
            "{format} {good}"
        );
        assert_has(
            &s.validate(&json!({"v": bad})),
            "v",
            &format!("must be of type {format}"),
        );
    }
}

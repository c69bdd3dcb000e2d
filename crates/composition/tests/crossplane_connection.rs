//! Crossplane v1.20's connection detail tests
//! (internal/controller/apiextensions/composite/connection_test.go:
//! TestExtractConnectionDetails, TestExtractConfigsFromTemplate,
//! TestConnectionDetailType), carried over case by case. The Secret
//! fetcher and publisher tests are about I/O, which this crate has none of.

use composition::connection::{self, Details};
use pretty_assertions::assert_eq;
use serde_json::{json, Value};

struct Case {
    name: &'static str,
    /// Why the case holds, in a sentence.
    reason: &'static str,
    details: Vec<Value>,
    object: Value,
    secret: Details,
    /// The extracted details, or a fragment of the error message.
    want: Result<Vec<(&'static str, &'static str)>, &'static str>,
}

fn secret(pairs: &[(&str, &str)]) -> Details {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
}

fn run(cases: Vec<Case>) {
    for c in cases {
        let got = connection::extract(&c.details, &c.object, &c.secret);
        match (&c.want, got) {
            (Ok(want), Ok(got)) => assert_eq!(got, secret(want), "{}: {}", c.name, c.reason),
            (Err(fragment), Err(message)) => assert!(
                message.contains(fragment),
                "{}: {}: {message:?} lacks {fragment:?}",
                c.name,
                c.reason
            ),
            (want, got) => panic!("{}: {}: want {want:?}, got {got:?}", c.name, c.reason),
        }
    }
}

#[test]
fn extract_connection_details() {
    run(vec![
        Case {
            name: "MissingNameError",
            reason: "We should return an error if a connection detail is missing a name.",
            details: vec![json!({})],
            object: json!({}),
            secret: Details::new(),
            want: Err("needs name"),
        },
        Case {
            name: "MissingValueError",
            reason: "We should return an error if the fixed value is missing.",
            details: vec![json!({"name": "cool-detail", "type": "FromValue"})],
            object: json!({}),
            secret: Details::new(),
            want: Err("FromValue needs value"),
        },
        Case {
            name: "MissingConnectionSecretKeyError",
            reason: "We should return an error if the connection secret key is missing.",
            details: vec![json!({"name": "cool-detail", "type": "FromConnectionSecretKey"})],
            object: json!({}),
            secret: Details::new(),
            want: Err("FromConnectionSecretKey needs fromConnectionSecretKey"),
        },
        Case {
            name: "MissingFieldPathError",
            reason: "We should return an error if the field path is missing.",
            details: vec![json!({"name": "cool-detail", "type": "FromFieldPath"})],
            object: json!({}),
            secret: Details::new(),
            want: Err("FromFieldPath needs fromFieldPath"),
        },
        Case {
            name: "FetchConfigSuccess",
            reason: "Should extract only the selected set of secret keys",
            details: vec![
                json!({"type": "FromConnectionSecretKey", "name": "bar", "fromConnectionSecretKey": "bar"}),
                json!({"type": "FromConnectionSecretKey", "name": "none", "fromConnectionSecretKey": "none"}),
                json!({"type": "FromConnectionSecretKey", "name": "convfoo", "fromConnectionSecretKey": "foo"}),
                json!({"type": "FromValue", "name": "fixed", "value": "value"}),
                json!({"type": "FromFieldPath", "name": "name", "fromFieldPath": "objectMeta.name"}),
                json!({"type": "FromFieldPath", "name": "generation", "fromFieldPath": "objectMeta.generation"}),
            ],
            object: json!({"objectMeta": {"name": "test", "generation": 4}}),
            secret: secret(&[("foo", "a"), ("bar", "b")]),
            want: Ok(vec![
                ("convfoo", "a"),
                ("bar", "b"),
                ("fixed", "value"),
                ("name", "test"),
                ("generation", "4"),
            ]),
        },
        // From TestExtractConfigsFromTemplate, through extraction.
        Case {
            name: "ExplicitName",
            reason: "When a template's connection details have an explicit name, we should use it.",
            details: vec![json!({"name": "cool-detail", "type": "FromConnectionSecretKey", "fromConnectionSecretKey": "cool-key"})],
            object: json!({}),
            secret: secret(&[("cool-key", "v")]),
            want: Ok(vec![("cool-detail", "v")]),
        },
        Case {
            name: "InferredName",
            reason: "When a template's connection details does not have an explicit name and is of TypeFromConnectionSecretKey, we should infer the name from the connection secret key.",
            details: vec![json!({"type": "FromConnectionSecretKey", "fromConnectionSecretKey": "cool-key"})],
            object: json!({}),
            secret: secret(&[("cool-key", "v")]),
            want: Ok(vec![("cool-key", "v")]),
        },
        // Ours, from ExtractConnectionDetails and fromFieldPath.
        Case {
            name: "FieldPathObjectAsJSON",
            reason: "A field that is not a string is published as Go's JSON of it",
            details: vec![
                json!({"name": "obj", "fromFieldPath": "status.obj"}),
                json!({"name": "list", "fromFieldPath": "status.list"}),
                json!({"name": "flag", "fromFieldPath": "status.flag"}),
                json!({"name": "nothing", "fromFieldPath": "status.nothing"}),
                json!({"name": "ratio", "fromFieldPath": "status.ratio"}),
            ],
            object: json!({"status": {"obj": {"b": "<", "a": 1}, "list": [1, "x"], "flag": true, "nothing": null, "ratio": 0.5}}),
            secret: Details::new(),
            want: Ok(vec![
                ("obj", "{\"a\":1,\"b\":\"\\u003c\"}"),
                ("list", "[1,\"x\"]"),
                ("flag", "true"),
                ("nothing", "null"),
                ("ratio", "0.5"),
            ]),
        },
        Case {
            name: "FieldPathUnreadableIsSkipped",
            reason: "A field path that cannot be read, for whatever reason, is skipped quietly",
            details: vec![
                json!({"name": "missing", "fromFieldPath": "status.missing"}),
                json!({"name": "wrong", "fromFieldPath": "status.s.x"}),
                json!({"name": "bad", "fromFieldPath": "status..x"}),
            ],
            object: json!({"status": {"s": "str"}}),
            secret: Details::new(),
            want: Ok(vec![]),
        },
        Case {
            name: "FieldPathNeedsName",
            reason: "Only a FromConnectionSecretKey detail borrows a name",
            details: vec![json!({"fromFieldPath": "status.s"})],
            object: json!({"status": {"s": "str"}}),
            secret: Details::new(),
            want: Err("FromFieldPath needs name"),
        },
        Case {
            name: "ValueBeatsKey",
            reason: "With no type, a value makes the detail FromValue even beside a key",
            details: vec![json!({"name": "n", "value": "fixed", "fromConnectionSecretKey": "k"})],
            object: json!({}),
            secret: secret(&[("k", "from-secret")]),
            want: Ok(vec![("n", "fixed")]),
        },
        Case {
            name: "EmptyNameIsNoName",
            reason: "An explicit empty name is missing, not inferred",
            details: vec![json!({"name": "", "fromConnectionSecretKey": "k"})],
            object: json!({}),
            secret: secret(&[("k", "v")]),
            want: Err("needs name"),
        },
        Case {
            name: "NameCheckedFirst",
            reason: "A missing name is reported before a missing value",
            details: vec![json!({"type": "FromValue"})],
            object: json!({}),
            secret: Details::new(),
            want: Err("FromValue needs name"),
        },
    ]);
}

#[test]
fn connection_detail_type() {
    struct TypeCase {
        name: &'static str,
        reason: &'static str,
        detail: Value,
        want: &'static str,
    }
    let cases = vec![
        TypeCase {
            name: "FromValueExplicit",
            reason: "An explicit type is used as it is",
            detail: json!({"type": "FromValue"}),
            want: "FromValue",
        },
        TypeCase {
            name: "FromValueInferred",
            reason: "Name and value trump key or field",
            detail: json!({"name": "coolsecret", "value": "coolvalue", "fromConnectionSecretKey": "coolkey", "fromFieldPath": "coolfield"}),
            want: "FromValue",
        },
        TypeCase {
            name: "FromConnectionSecretKeyInferred",
            reason: "From key trumps from field",
            detail: json!({"name": "coolsecret", "fromConnectionSecretKey": "coolkey", "fromFieldPath": "coolfield"}),
            want: "FromConnectionSecretKey",
        },
        TypeCase {
            name: "FromFieldPathInferred",
            reason: "A field path alone makes it FromFieldPath",
            detail: json!({"name": "coolsecret", "fromFieldPath": "coolfield"}),
            want: "FromFieldPath",
        },
        TypeCase {
            name: "DefaultToFromConnectionSecretKey",
            reason: "With nothing to go on, FromConnectionSecretKey, the original and only type",
            detail: json!({"name": "coolsecret"}),
            want: "FromConnectionSecretKey",
        },
    ];
    for c in cases {
        assert_eq!(
            connection::detail_type(&c.detail),
            c.want,
            "{}: {}",
            c.name,
            c.reason
        );
    }
}

//! Table-driven cases for every patch, transform and readiness kind,
//! errors included: each error must name what failed.

use std::collections::BTreeMap;

use composition::{connection, patch, readiness, render, transform, Observed};
use serde_json::{json, Value};

/// (description, transform, input, expected output or Err(fragment of the message))
type TransformCase = (&'static str, Value, Value, Result<Value, &'static str>);

fn transform_cases() -> Vec<TransformCase> {
    vec![
        (
            "map hit",
            json!({"type": "map", "map": {"small": "db.t3.micro"}}),
            json!("small"),
            Ok(json!("db.t3.micro")),
        ),
        (
            // Crossplane decodes map values into interface{}: numbers are float64.
            "map object value",
            json!({"type": "map", "map": {"a": {"x": 1}}}),
            json!("a"),
            Ok(json!({"x": 1.0})),
        ),
        (
            "map miss",
            json!({"type": "map", "map": {"small": "x"}}),
            json!("huge"),
            Err("key \"huge\" is not in the map"),
        ),
        (
            "map non-string input",
            json!({"type": "map", "map": {}}),
            json!([1]),
            Err("input must be a string"),
        ),
        (
            // Crossplane's Transform.type is required and has no default.
            "map without a type is refused",
            json!({"map": {"a": "b"}}),
            json!("a"),
            Err("the transform has no type"),
        ),
        (
            "match literal",
            json!({"type": "match", "match": {"patterns": [{"type": "literal", "literal": "us", "result": "us-east-1"}]}}),
            json!("us"),
            Ok(json!("us-east-1")),
        ),
        (
            "match regexp",
            json!({"type": "match", "match": {"patterns": [{"type": "regexp", "regexp": "^eu-", "result": "EU"}]}}),
            json!("eu-west-1"),
            Ok(json!("EU")),
        ),
        (
            "match first wins",
            json!({"type": "match", "match": {"patterns": [{"type": "literal", "literal": "a", "result": 1}, {"type": "regexp", "regexp": "a", "result": 2}]}}),
            json!("a"),
            // Results are decoded into interface{}: numbers are float64.
            Ok(json!(1.0)),
        ),
        (
            "match fallback value",
            json!({"type": "match", "match": {"patterns": [], "fallbackValue": "default"}}),
            json!("x"),
            Ok(json!("default")),
        ),
        (
            "match fallback input",
            json!({"type": "match", "match": {"patterns": [], "fallbackTo": "Input"}}),
            json!("x"),
            Ok(json!("x")),
        ),
        (
            "match no fallback",
            json!({"type": "match", "match": {"patterns": []}}),
            json!("x"),
            Ok(Value::Null),
        ),
        (
            "match bad regexp",
            json!({"type": "match", "match": {"patterns": [{"type": "regexp", "regexp": "(", "result": 1}]}}),
            json!("x"),
            Err("invalid regexp \"(\""),
        ),
        (
            "match bad pattern type",
            json!({"type": "match", "match": {"patterns": [{"type": "glob", "result": 1}]}}),
            json!("x"),
            Err("unknown type \"glob\""),
        ),
        (
            "math multiply int",
            json!({"type": "math", "math": {"type": "Multiply", "multiply": 1024}}),
            json!(20),
            Ok(json!(20480)),
        ),
        (
            // Crossplane's multiply is an int64.
            "math multiply by a float is refused",
            json!({"type": "math", "math": {"type": "Multiply", "multiply": 0.5}}),
            json!(3),
            Err("multiply must be an integer"),
        ),
        (
            "math multiply a float",
            json!({"type": "math", "math": {"type": "Multiply", "multiply": 2}}),
            json!(0.75),
            Ok(json!(1.5)),
        ),
        (
            "math implied multiply",
            json!({"type": "math", "math": {"multiply": 2}}),
            json!(4),
            Ok(json!(8)),
        ),
        (
            "math clamp min",
            json!({"type": "math", "math": {"type": "ClampMin", "clampMin": 20}}),
            json!(5),
            Ok(json!(20)),
        ),
        (
            "math clamp max",
            json!({"type": "math", "math": {"type": "ClampMax", "clampMax": 100}}),
            json!(500),
            Ok(json!(100)),
        ),
        (
            "math clamp passes",
            json!({"type": "math", "math": {"type": "ClampMax", "clampMax": 100}}),
            json!(50),
            Ok(json!(50)),
        ),
        (
            "math type mismatch",
            json!({"type": "math", "math": {"type": "Multiply", "multiply": 2}}),
            json!("ten"),
            Err("input must be a number, not a string"),
        ),
        (
            "math unknown",
            json!({"type": "math", "math": {"type": "Divide"}}),
            json!(1),
            Err("unknown type \"Divide\""),
        ),
        (
            "string format",
            json!({"type": "string", "string": {"type": "Format", "fmt": "%s-db"}}),
            json!("orders"),
            Ok(json!("orders-db")),
        ),
        (
            "string format number",
            json!({"type": "string", "string": {"fmt": "%d GiB"}}),
            json!(20),
            Ok(json!("20 GiB")),
        ),
        (
            "string format float",
            json!({"type": "string", "string": {"fmt": "%.1f"}}),
            json!(2.25),
            Ok(json!("2.2")),
        ),
        (
            "string upper",
            json!({"type": "string", "string": {"type": "Convert", "convert": "ToUpper"}}),
            json!("abc"),
            Ok(json!("ABC")),
        ),
        (
            "string lower",
            json!({"type": "string", "string": {"type": "Convert", "convert": "ToLower"}}),
            json!("AbC"),
            Ok(json!("abc")),
        ),
        (
            "string to base64",
            json!({"type": "string", "string": {"type": "Convert", "convert": "ToBase64"}}),
            json!("hi"),
            Ok(json!("aGk=")),
        ),
        (
            "string from base64",
            json!({"type": "string", "string": {"type": "Convert", "convert": "FromBase64"}}),
            json!("aGk="),
            Ok(json!("hi")),
        ),
        (
            "string from bad base64",
            json!({"type": "string", "string": {"type": "Convert", "convert": "FromBase64"}}),
            json!("***"),
            Err("not base64"),
        ),
        (
            "string sha256",
            json!({"type": "string", "string": {"type": "Convert", "convert": "ToSha256"}}),
            json!("abc"),
            Ok(json!(
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            )),
        ),
        (
            "string adler32",
            json!({"type": "string", "string": {"type": "Convert", "convert": "ToAdler32"}}),
            json!("Wikipedia"),
            Ok(json!("300286872")),
        ),
        (
            "string to json",
            json!({"type": "string", "string": {"type": "Convert", "convert": "ToJson"}}),
            json!({"a": 1}),
            Ok(json!("{\"a\":1}")),
        ),
        (
            "string unknown convert",
            json!({"type": "string", "string": {"type": "Convert", "convert": "ToKlingon"}}),
            json!("a"),
            Err("unknown convert \"ToKlingon\""),
        ),
        (
            "string trim prefix",
            json!({"type": "string", "string": {"type": "TrimPrefix", "trim": "arn:"}}),
            json!("arn:aws:x"),
            Ok(json!("aws:x")),
        ),
        (
            "string trim suffix",
            json!({"type": "string", "string": {"type": "TrimSuffix", "trim": ".com"}}),
            json!("a.com"),
            Ok(json!("a")),
        ),
        (
            "string regexp group",
            json!({"type": "string", "string": {"type": "Regexp", "regexp": {"match": "db-(\\d+)", "group": 1}}}),
            json!("db-42"),
            Ok(json!("42")),
        ),
        (
            "string regexp no match",
            json!({"type": "string", "string": {"type": "Regexp", "regexp": {"match": "^x"}}}),
            json!("abc"),
            Err("does not match"),
        ),
        (
            "string regexp bad",
            json!({"type": "string", "string": {"type": "Regexp", "regexp": {"match": "[a"}}}),
            json!("abc"),
            Err("invalid regexp"),
        ),
        (
            "string join",
            json!({"type": "string", "string": {"type": "Join", "join": {"separator": ","}}}),
            json!(["a", "b", 3]),
            Ok(json!("a,b,3")),
        ),
        (
            "string join needs array",
            json!({"type": "string", "string": {"type": "Join", "join": {"separator": ","}}}),
            json!("a"),
            Err("needs an array input"),
        ),
        (
            "string upper formats a number as Go's %v",
            json!({"type": "string", "string": {"type": "Convert", "convert": "ToUpper"}}),
            json!(5),
            Ok(json!("5")),
        ),
        (
            "string upper formats a boolean",
            json!({"type": "string", "string": {"type": "Convert", "convert": "ToUpper"}}),
            json!(true),
            Ok(json!("TRUE")),
        ),
        (
            "string sha1",
            json!({"type": "string", "string": {"type": "Convert", "convert": "ToSha1"}}),
            json!("abc"),
            Ok(json!("a9993e364706816aba3e25717850c26c9cd0d89d")),
        ),
        (
            "string sha256 of a number hashes its JSON",
            json!({"type": "string", "string": {"type": "Convert", "convert": "ToSha256"}}),
            json!(5),
            Ok(json!(
                "ef2d127de37b942baad06145e54b0c619a1f22327b2ebbcfbec78f5564afe39d"
            )),
        ),
        (
            "string trim prefix of a number",
            json!({"type": "string", "string": {"type": "TrimPrefix", "trim": "12"}}),
            json!(1234),
            Ok(json!("34")),
        ),
        (
            "string regexp on a number",
            json!({"type": "string", "string": {"type": "Regexp", "regexp": {"match": "\\d{3}"}}}),
            json!(12345),
            Ok(json!("123")),
        ),
        (
            "string format zero-padded",
            json!({"type": "string", "string": {"fmt": "%05s"}}),
            json!("ab"),
            Ok(json!("000ab")),
        ),
        (
            "string format left-justified",
            json!({"type": "string", "string": {"fmt": "%-6s|"}}),
            json!("ab"),
            Ok(json!("ab    |")),
        ),
        (
            "string format width of a number",
            json!({"type": "string", "string": {"fmt": "%3d"}}),
            json!(7),
            Ok(json!("  7")),
        ),
        (
            "string format whole float as %v",
            json!({"type": "string", "string": {"fmt": "v%v"}}),
            json!(2.0),
            Ok(json!("v2")),
        ),
        (
            "string format wrong verb marks it as Go does",
            json!({"type": "string", "string": {"fmt": "%d"}}),
            json!("x"),
            Ok(json!("%!d(string=x)")),
        ),
        (
            "convert whole float to string",
            json!({"type": "convert", "convert": {"toType": "string"}}),
            json!(2.0),
            Ok(json!("2")),
        ),
        (
            "convert float to string",
            json!({"type": "convert", "convert": {"toType": "string"}}),
            json!(2.5),
            Ok(json!("2.5")),
        ),
        (
            "convert 1 to bool",
            json!({"type": "convert", "convert": {"toType": "bool"}}),
            json!(1),
            Ok(json!(true)),
        ),
        (
            "convert 2 to bool is false, as in Crossplane",
            json!({"type": "convert", "convert": {"toType": "bool"}}),
            json!(2),
            Ok(json!(false)),
        ),
        (
            "convert int to string",
            json!({"type": "convert", "convert": {"toType": "string"}}),
            json!(5),
            Ok(json!("5")),
        ),
        (
            "convert string to int64",
            json!({"type": "convert", "convert": {"toType": "int64"}}),
            json!("42"),
            Ok(json!(42)),
        ),
        (
            "convert string to int",
            json!({"type": "convert", "convert": {"toType": "int"}}),
            json!("7"),
            Ok(json!(7)),
        ),
        (
            // strconv.ParseInt does not trim spaces.
            "convert string with spaces to int is refused",
            json!({"type": "convert", "convert": {"toType": "int"}}),
            json!(" 7 "),
            Err("cannot convert a string \" 7 \" to int64"),
        ),
        (
            "convert bad int",
            json!({"type": "convert", "convert": {"toType": "int64"}}),
            json!("seven"),
            Err("cannot convert a string \"seven\" to int64"),
        ),
        (
            "convert quantity",
            json!({"type": "convert", "convert": {"toType": "float64", "format": "quantity"}}),
            json!("2Gi"),
            Ok(json!(2147483648.0)),
        ),
        (
            // Crossplane parses quantities only into float64.
            "convert quantity to int64 is refused",
            json!({"type": "convert", "convert": {"toType": "int64", "format": "quantity"}}),
            json!("2Gi"),
            Err("conversion from string to int64 is not supported with format quantity"),
        ),
        (
            "convert milli quantity",
            json!({"type": "convert", "convert": {"toType": "float64", "format": "quantity"}}),
            json!("500m"),
            Ok(json!(0.5)),
        ),
        (
            "convert bad quantity",
            json!({"type": "convert", "convert": {"toType": "float64", "format": "quantity"}}),
            json!("2Qi"),
            Err("unknown quantity suffix"),
        ),
        (
            "convert string to bool",
            json!({"type": "convert", "convert": {"toType": "bool"}}),
            json!("true"),
            Ok(json!(true)),
        ),
        (
            "convert bad bool",
            json!({"type": "convert", "convert": {"toType": "bool"}}),
            json!("yes"),
            Err("to bool"),
        ),
        (
            "convert float to int",
            json!({"type": "convert", "convert": {"toType": "int64"}}),
            json!(3.9),
            Ok(json!(3)),
        ),
        (
            "convert string to float",
            json!({"type": "convert", "convert": {"toType": "float64"}}),
            json!("2.5"),
            Ok(json!(2.5)),
        ),
        (
            "convert bool to string",
            json!({"type": "convert", "convert": {"toType": "string"}}),
            json!(false),
            Ok(json!("false")),
        ),
        (
            "convert json to object",
            json!({"type": "convert", "convert": {"toType": "object", "format": "json"}}),
            json!("{\"a\":1}"),
            // json.Unmarshal into interface{}: numbers are float64.
            Ok(json!({"a": 1.0})),
        ),
        (
            "convert json to array",
            json!({"type": "convert", "convert": {"toType": "array", "format": "json"}}),
            json!("[1,2]"),
            Ok(json!([1.0, 2.0])),
        ),
        (
            "convert json wrong shape",
            json!({"type": "convert", "convert": {"toType": "object", "format": "json"}}),
            json!("[1]"),
            Err("is an array, not object"),
        ),
        (
            // Crossplane converts scalars only; ToJson is the way to JSON.
            "convert object to string is refused",
            json!({"type": "convert", "convert": {"toType": "string", "format": "json"}}),
            json!({"a": 1}),
            Err("invalid input type map[string]interface {}"),
        ),
        (
            "convert unknown type",
            json!({"type": "convert", "convert": {"toType": "complex"}}),
            json!(1),
            Err("unknown toType \"complex\""),
        ),
        (
            "unknown transform",
            json!({"type": "teleport"}),
            json!(1),
            Err("unknown transform type \"teleport\""),
        ),
    ]
}

#[test]
fn transforms() {
    let cases = transform_cases();
    // Every failing case is reported, not only the first.
    let mut failures = Vec::new();
    for (what, t, input, expected) in &cases {
        let got = transform::apply(t, input.clone());
        match (expected, got) {
            (Ok(want), Ok(got)) if &got == want => {}
            (Err(fragment), Err(message)) if message.contains(fragment) => {}
            (want, got) => failures.push(format!("{what}: expected {want:?}, got {got:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(cases.len() >= 55);
}

fn xr() -> Value {
    json!({
        "apiVersion": "platform.plinth.dev/v1alpha1",
        "kind": "XPostgreSQLInstance",
        "metadata": {"name": "orders-x7", "uid": "uid-1", "labels": {"crossplane.io/claim-name": "orders", "crossplane.io/claim-namespace": "team-a"}},
        "spec": {"parameters": {"size": "small", "storageGB": 20, "region": "eu", "tags": {"team": "a"}}},
        "status": {}
    })
}

/// (description, patch, source, target before, expected target or Err(fragment))
type PatchCase = (
    &'static str,
    Value,
    Value,
    Value,
    Result<Value, &'static str>,
);

fn patch_cases() -> Vec<PatchCase> {
    vec![
        (
            "from composite default type",
            json!({"fromFieldPath": "spec.parameters.storageGB", "toFieldPath": "spec.forProvider.allocatedStorage"}),
            xr(),
            json!({}),
            Ok(json!({"spec": {"forProvider": {"allocatedStorage": 20}}})),
        ),
        (
            "from composite with transform",
            json!({"type": "FromCompositeFieldPath", "fromFieldPath": "spec.parameters.size", "toFieldPath": "spec.forProvider.instanceClass", "transforms": [{"type": "map", "map": {"small": "db.t3.micro"}}]}),
            xr(),
            json!({}),
            Ok(json!({"spec": {"forProvider": {"instanceClass": "db.t3.micro"}}})),
        ),
        (
            "to field path defaults to from",
            json!({"fromFieldPath": "spec.parameters.region"}),
            xr(),
            json!({}),
            Ok(json!({"spec": {"parameters": {"region": "eu"}}})),
        ),
        (
            "optional missing is skipped",
            json!({"fromFieldPath": "spec.parameters.missing", "toFieldPath": "spec.x"}),
            xr(),
            json!({"spec": {"x": 1}}),
            Ok(json!({"spec": {"x": 1}})),
        ),
        (
            "required missing fails",
            json!({"fromFieldPath": "spec.parameters.missing", "toFieldPath": "spec.x", "policy": {"fromFieldPath": "Required"}}),
            xr(),
            json!({}),
            Err("required field spec.parameters.missing is not set"),
        ),
        (
            "labels by bracket path",
            json!({"fromFieldPath": "metadata.labels[crossplane.io/claim-name]", "toFieldPath": "metadata.labels[owner]"}),
            xr(),
            json!({}),
            Ok(json!({"metadata": {"labels": {"owner": "orders"}}})),
        ),
        (
            "to composite",
            json!({"type": "ToCompositeFieldPath", "fromFieldPath": "status.atProvider.address", "toFieldPath": "status.address"}),
            json!({"status": {"atProvider": {"address": "db.local"}}}),
            json!({}),
            Ok(json!({"status": {"address": "db.local"}})),
        ),
        (
            "combine from composite",
            json!({"type": "CombineFromComposite", "combine": {"variables": [{"fromFieldPath": "metadata.name"}, {"fromFieldPath": "spec.parameters.region"}], "strategy": "string", "string": {"fmt": "%s-%s"}}, "toFieldPath": "spec.forProvider.name"}),
            xr(),
            json!({}),
            Ok(json!({"spec": {"forProvider": {"name": "orders-x7-eu"}}})),
        ),
        (
            "combine skips on missing input",
            json!({"type": "CombineFromComposite", "combine": {"variables": [{"fromFieldPath": "spec.nope"}], "strategy": "string", "string": {"fmt": "%s"}}, "toFieldPath": "spec.x"}),
            xr(),
            json!({}),
            Ok(json!({})),
        ),
        (
            "combine to composite",
            json!({"type": "CombineToComposite", "combine": {"variables": [{"fromFieldPath": "status.host"}, {"fromFieldPath": "status.port"}], "strategy": "string", "string": {"fmt": "%s:%d"}}, "toFieldPath": "status.endpoint"}),
            json!({"status": {"host": "h", "port": 5432}}),
            json!({}),
            Ok(json!({"status": {"endpoint": "h:5432"}})),
        ),
        (
            "combine unknown strategy",
            json!({"type": "CombineFromComposite", "combine": {"variables": [{"fromFieldPath": "metadata.name"}], "strategy": "concat"}, "toFieldPath": "spec.x"}),
            xr(),
            json!({}),
            Err("unknown combine strategy \"concat\""),
        ),
        (
            "combine needs variables",
            json!({"type": "CombineFromComposite", "combine": {"variables": []}, "toFieldPath": "spec.x"}),
            xr(),
            json!({}),
            Err("combine.variables"),
        ),
        (
            "merge objects keeps existing",
            json!({"fromFieldPath": "spec.parameters.tags", "toFieldPath": "spec.forProvider.tags", "policy": {"toFieldPath": "MergeObjects"}}),
            xr(),
            json!({"spec": {"forProvider": {"tags": {"team": "keep", "env": "prod"}}}}),
            Ok(json!({"spec": {"forProvider": {"tags": {"team": "keep", "env": "prod"}}}})),
        ),
        (
            "force merge overrides",
            json!({"fromFieldPath": "spec.parameters.tags", "toFieldPath": "spec.forProvider.tags", "policy": {"toFieldPath": "ForceMergeObjects"}}),
            xr(),
            json!({"spec": {"forProvider": {"tags": {"team": "old", "env": "prod"}}}}),
            Ok(json!({"spec": {"forProvider": {"tags": {"team": "a", "env": "prod"}}}})),
        ),
        (
            "replace drops existing keys",
            json!({"fromFieldPath": "spec.parameters.tags", "toFieldPath": "spec.forProvider.tags"}),
            xr(),
            json!({"spec": {"forProvider": {"tags": {"env": "prod"}}}}),
            Ok(json!({"spec": {"forProvider": {"tags": {"team": "a"}}}})),
        ),
        (
            "merge options append slice",
            json!({"fromFieldPath": "spec.list", "toFieldPath": "spec.list", "policy": {"mergeOptions": {"appendSlice": true}}}),
            json!({"spec": {"list": [2, 3]}}),
            json!({"spec": {"list": [1, 2]}}),
            Ok(json!({"spec": {"list": [1, 2, 3]}})),
        ),
        (
            "transform error names the transform",
            json!({"fromFieldPath": "spec.parameters.size", "toFieldPath": "spec.x", "transforms": [{"type": "map", "map": {"large": "x"}}]}),
            xr(),
            json!({}),
            Err("transform 0 (map): map: key \"small\" is not in the map"),
        ),
        (
            "bad from path",
            json!({"fromFieldPath": "spec..x", "toFieldPath": "spec.x"}),
            xr(),
            json!({}),
            Err("invalid field path \"spec..x\""),
        ),
        (
            "unknown patch type",
            json!({"type": "Teleport", "fromFieldPath": "a"}),
            xr(),
            json!({}),
            Err("unknown patch type \"Teleport\""),
        ),
        (
            "unknown merge policy",
            json!({"fromFieldPath": "spec.parameters.tags", "toFieldPath": "spec.t", "policy": {"toFieldPath": "Smush"}}),
            xr(),
            json!({}),
            Err("unknown policy.toFieldPath \"Smush\""),
        ),
    ]
}

#[test]
fn patches() {
    for (what, p, source, before, expected) in patch_cases() {
        let mut target = before;
        let got = patch::apply(&p, &source, &mut target).map(|_| target);
        match (&expected, got) {
            (Ok(want), Ok(got)) => assert_eq!(&got, want, "{what}"),
            (Err(fragment), Err(message)) => assert!(
                message.contains(fragment),
                "{what}: {message:?} lacks {fragment:?}"
            ),
            (want, got) => panic!("{what}: expected {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn patch_sets_expand_and_refuse_unknown_names() {
    let sets = vec![
        json!({"name": "common", "patches": [{"fromFieldPath": "spec.parameters.region", "toFieldPath": "spec.forProvider.region"}]}),
    ];
    let expanded = patch::expand(
        &[json!({"type": "PatchSet", "patchSetName": "common"})],
        &sets,
    )
    .unwrap();
    assert_eq!(expanded.len(), 1);
    let err = patch::expand(
        &[json!({"type": "PatchSet", "patchSetName": "nope"})],
        &sets,
    )
    .unwrap_err();
    assert!(err.contains("patch 0 (PatchSet nope)"), "{err}");
}

/// (description, checks, object, expected readiness or Err(fragment))
type ReadinessCase = (&'static str, Vec<Value>, Value, Result<bool, &'static str>);

fn cond(type_: &str, status: &str) -> Value {
    json!({"status": {"conditions": [{"type": type_, "status": status}], "atProvider": {"state": "available", "port": 5432, "ok": true, "address": ""}}})
}

#[test]
fn readiness_checks() {
    let obj = cond("Ready", "True");
    let cases: Vec<ReadinessCase> = vec![
        ("default: Ready condition", vec![], obj.clone(), Ok(true)),
        (
            "default: not ready",
            vec![],
            cond("Ready", "False"),
            Ok(false),
        ),
        ("None", vec![json!({"type": "None"})], json!({}), Ok(true)),
        (
            "NonEmpty set",
            vec![json!({"type": "NonEmpty", "fieldPath": "status.atProvider.state"})],
            obj.clone(),
            Ok(true),
        ),
        (
            // Crossplane's NonEmpty only asks that the field exist.
            "NonEmpty empty string is ready",
            vec![json!({"type": "NonEmpty", "fieldPath": "status.atProvider.address"})],
            obj.clone(),
            Ok(true),
        ),
        (
            "NonEmpty missing",
            vec![json!({"type": "NonEmpty", "fieldPath": "status.nope"})],
            obj.clone(),
            Ok(false),
        ),
        (
            "MatchString",
            vec![
                json!({"type": "MatchString", "fieldPath": "status.atProvider.state", "matchString": "available"}),
            ],
            obj.clone(),
            Ok(true),
        ),
        (
            "MatchString differs",
            vec![
                json!({"type": "MatchString", "fieldPath": "status.atProvider.state", "matchString": "creating"}),
            ],
            obj.clone(),
            Ok(false),
        ),
        (
            "MatchInteger",
            vec![
                json!({"type": "MatchInteger", "fieldPath": "status.atProvider.port", "matchInteger": 5432}),
            ],
            obj.clone(),
            Ok(true),
        ),
        (
            "MatchTrue",
            vec![json!({"type": "MatchTrue", "fieldPath": "status.atProvider.ok"})],
            obj.clone(),
            Ok(true),
        ),
        (
            "MatchFalse",
            vec![json!({"type": "MatchFalse", "fieldPath": "status.atProvider.ok"})],
            obj.clone(),
            Ok(false),
        ),
        (
            "MatchCondition custom",
            vec![
                json!({"type": "MatchCondition", "matchCondition": {"type": "Synced", "status": "True"}}),
            ],
            cond("Synced", "True"),
            Ok(true),
        ),
        (
            "all must pass",
            vec![
                json!({"type": "None"}),
                json!({"type": "MatchFalse", "fieldPath": "status.atProvider.ok"}),
            ],
            obj.clone(),
            Ok(false),
        ),
        (
            "MatchString without matchString",
            vec![json!({"type": "MatchString", "fieldPath": "status.atProvider.state"})],
            obj.clone(),
            Err("readinessChecks[0]: readiness check MatchString needs matchString"),
        ),
        (
            "unknown check",
            vec![json!({"type": "Vibes"})],
            obj.clone(),
            Err("unknown readiness check \"Vibes\""),
        ),
        (
            "missing fieldPath",
            vec![json!({"type": "NonEmpty"})],
            obj.clone(),
            Err("needs fieldPath"),
        ),
    ];
    for (what, checks, obj, expected) in cases {
        match (expected, readiness::is_ready(&checks, &obj)) {
            (Ok(want), Ok(got)) => assert_eq!(got, want, "{what}"),
            (Err(fragment), Err(message)) => assert!(
                message.contains(fragment),
                "{what}: {message:?} lacks {fragment:?}"
            ),
            (want, got) => panic!("{what}: expected {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn connection_details() {
    let secret: BTreeMap<String, Vec<u8>> = [
        ("password".to_string(), b"pw".to_vec()),
        ("host".to_string(), b"h".to_vec()),
    ]
    .into();
    let obj = json!({"status": {"atProvider": {"port": 5432}}});
    let out = connection::extract(
        &[
            json!({"fromConnectionSecretKey": "password"}),
            json!({"name": "hostname", "type": "FromConnectionSecretKey", "fromConnectionSecretKey": "host"}),
            json!({"name": "port", "type": "FromFieldPath", "fromFieldPath": "status.atProvider.port"}),
            json!({"name": "engine", "type": "FromValue", "value": "postgres"}),
            json!({"fromConnectionSecretKey": "absent"}),
        ],
        &obj,
        &secret,
    )
    .unwrap();
    assert_eq!(out.get("password").map(Vec::as_slice), Some(&b"pw"[..]));
    assert_eq!(out.get("hostname").map(Vec::as_slice), Some(&b"h"[..]));
    assert_eq!(out.get("port").map(Vec::as_slice), Some(&b"5432"[..]));
    assert_eq!(out.get("engine").map(Vec::as_slice), Some(&b"postgres"[..]));
    assert!(!out.contains_key("absent"));
    let err = connection::extract(&[json!({"type": "FromValue", "value": "x"})], &obj, &secret)
        .unwrap_err();
    assert!(
        err.contains("connectionDetails[0]: FromValue needs name"),
        "{err}"
    );
}

fn composition() -> Value {
    json!({
        "apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "Composition",
        "metadata": {"name": "local"},
        "spec": {
            "compositeTypeRef": {"apiVersion": "platform.plinth.dev/v1alpha1", "kind": "XPostgreSQLInstance"},
            "patchSets": [{"name": "common", "patches": [{"fromFieldPath": "spec.parameters.region", "toFieldPath": "metadata.labels[region]"}]}],
            "resources": [{
                "name": "db",
                "base": {"apiVersion": "postgres.local.plinth.dev/v1alpha1", "kind": "Database", "spec": {"forProvider": {}}},
                "patches": [
                    {"type": "PatchSet", "patchSetName": "common"},
                    {"fromFieldPath": "spec.parameters.storageGB", "toFieldPath": "spec.forProvider.connectionLimit", "transforms": [{"type": "math", "math": {"type": "ClampMax", "clampMax": 10}}]},
                    {"type": "ToCompositeFieldPath", "fromFieldPath": "status.atProvider.owner", "toFieldPath": "status.owner"}
                ],
                "connectionDetails": [{"fromConnectionSecretKey": "password"}, {"name": "engine", "type": "FromValue", "value": "postgres"}]
            }]
        }
    })
}

#[test]
fn render_composes_deterministically() {
    let rendered = render(&xr(), &composition(), &BTreeMap::new()).unwrap();
    assert_eq!(rendered.composed.len(), 1);
    let db = &rendered.composed[0];
    assert_eq!(db.object["metadata"]["name"], "orders-x7-db");
    assert_eq!(db.object["metadata"]["labels"]["region"], "eu");
    assert_eq!(
        db.object["metadata"]["labels"]["crossplane.io/composite"],
        "orders-x7"
    );
    assert_eq!(
        db.object["metadata"]["labels"]["crossplane.io/claim-name"],
        "orders"
    );
    assert_eq!(
        db.object["metadata"]["annotations"]["crossplane.io/composition-resource-name"],
        "db"
    );
    assert_eq!(db.object["metadata"]["ownerReferences"][0]["uid"], "uid-1");
    assert_eq!(db.object["spec"]["forProvider"]["connectionLimit"], 10);
    assert!(!db.ready && !rendered.ready);
    assert_eq!(
        render(&xr(), &composition(), &BTreeMap::new()).unwrap(),
        rendered
    );
}

#[test]
fn render_reads_back_observed_state() {
    let observed: BTreeMap<String, Observed> = [(
        "db".to_string(),
        Observed {
            object: json!({"status": {"atProvider": {"owner": "orders"}, "conditions": [{"type": "Ready", "status": "True"}]}}),
            connection: [("password".to_string(), b"pw".to_vec())].into(),
        },
    )]
    .into();
    let rendered = render(&xr(), &composition(), &observed).unwrap();
    assert!(rendered.ready);
    assert_eq!(rendered.composite["status"]["owner"], "orders");
    assert_eq!(
        rendered.connection.get("password").map(Vec::as_slice),
        Some(&b"pw"[..])
    );
    assert_eq!(
        rendered.connection.get("engine").map(Vec::as_slice),
        Some(&b"postgres"[..])
    );
}

#[test]
fn render_errors_name_resource_patch_and_field() {
    let mut c = composition();
    c["spec"]["resources"][0]["patches"][1]["policy"] = json!({"fromFieldPath": "Required"});
    c["spec"]["resources"][0]["patches"][1]["fromFieldPath"] = json!("spec.parameters.missing");
    let err = render(&xr(), &c, &BTreeMap::new()).unwrap_err().to_string();
    assert!(err.contains("resource \"db\""), "{err}");
    assert!(err.contains("patch 1 (FromCompositeFieldPath spec.parameters.missing -> spec.forProvider.connectionLimit)"), "{err}");
    assert!(
        err.contains("required field spec.parameters.missing is not set"),
        "{err}"
    );
    let mut dup = composition();
    let first = dup["spec"]["resources"][0].clone();
    dup["spec"]["resources"].as_array_mut().unwrap().push(first);
    assert!(render(&xr(), &dup, &BTreeMap::new())
        .unwrap_err()
        .to_string()
        .contains("unique"));
    let mut pipeline = composition();
    pipeline["spec"]["mode"] = json!("Pipeline");
    assert!(render(&xr(), &pipeline, &BTreeMap::new())
        .unwrap_err()
        .to_string()
        .contains("Pipeline"));
}

#[test]
fn long_names_stay_valid_and_unique() {
    let a = render::composed_name(&"x".repeat(60), "database");
    let b = render::composed_name(&"x".repeat(60), "database2");
    assert!(a.len() <= 63 && b.len() <= 63);
    assert_ne!(a, b);
}

#[test]
fn render_keeps_to_composite_writes_to_spec_and_metadata() {
    let mut c = composition();
    let patches = c["spec"]["resources"][0]["patches"].as_array_mut().unwrap();
    patches.push(json!({"type": "ToCompositeFieldPath", "fromFieldPath": "status.atProvider.owner", "toFieldPath": "spec.owner"}));
    patches.push(json!({"type": "ToCompositeFieldPath", "fromFieldPath": "status.atProvider.owner", "toFieldPath": "metadata.annotations[example.org/owner]"}));
    patches.push(json!({"type": "CombineToComposite", "combine": {"variables": [{"fromFieldPath": "status.atProvider.owner"}, {"fromFieldPath": "metadata.name"}], "strategy": "string", "string": {"fmt": "%s@%s"}}, "toFieldPath": "spec.where"}));
    let observed: BTreeMap<String, Observed> = [(
        "db".to_string(),
        Observed {
            object: json!({"metadata": {"name": "orders-x7-db"}, "status": {"atProvider": {"owner": "orders"}}}),
            connection: Default::default(),
        },
    )]
    .into();
    let rendered = render(&xr(), &c, &observed).unwrap();
    // On the whole composite, and on its own for the reconciler to apply.
    for target in [&rendered.composite, &rendered.to_composite] {
        assert_eq!(target["spec"]["owner"], "orders", "{target}");
        assert_eq!(target["spec"]["where"], "orders@orders-x7-db", "{target}");
        assert_eq!(
            target["metadata"]["annotations"]["example.org/owner"],
            "orders"
        );
        assert_eq!(target["status"]["owner"], "orders");
    }
    // Only what the patches wrote: nothing of the composite's own spec.
    assert!(rendered.to_composite["spec"].get("parameters").is_none());
}

#[test]
fn render_counts_none_readiness_as_ready_before_it_is_observed() {
    let mut c = composition();
    c["spec"]["resources"][0]["readinessChecks"] = json!([{"type": "None"}]);
    let rendered = render(&xr(), &c, &BTreeMap::new()).unwrap();
    assert!(rendered.ready);
    c["spec"]["resources"][0]["readinessChecks"] = json!([]);
    assert!(!render(&xr(), &c, &BTreeMap::new()).unwrap().ready);
}

/// (description, Composition edit, expected problem fragment or None for sound)
type ValidateCase = (&'static str, fn(&mut Value), Option<&'static str>);

#[test]
fn composition_validation_names_the_field() {
    let cases: Vec<ValidateCase> = vec![
        ("sound", |_| {}, None),
        (
            "no compositeTypeRef",
            |c| {
                c["spec"].as_object_mut().unwrap().remove("compositeTypeRef");
            },
            Some("spec.compositeTypeRef: Required value"),
        ),
        (
            "unknown patch type",
            |c| c["spec"]["resources"][0]["patches"][1]["type"] = json!("Bogus"),
            Some("spec.resources[0].patches[1].type: Unsupported value: \"Bogus\""),
        ),
        (
            "math Divide",
            |c| {
                c["spec"]["resources"][0]["patches"][1]["transforms"][0]["math"] =
                    json!({"type": "Divide"})
            },
            Some("spec.resources[0].patches[1].transforms[0].math.type: Unsupported value: \"Divide\""),
        ),
        (
            "bad regexp",
            |c| {
                c["spec"]["resources"][0]["patches"][1]["transforms"][0] =
                    json!({"type": "string", "string": {"type": "Regexp", "regexp": {"match": "(("}}})
            },
            Some("spec.resources[0].patches[1].transforms[0].string.regexp.match: Invalid value: \"((\": not a regular expression: unclosed group"),
        ),
        (
            "unknown string convert",
            |c| {
                c["spec"]["resources"][0]["patches"][1]["transforms"][0] =
                    json!({"type": "string", "string": {"type": "Convert", "convert": "ToRot13"}})
            },
            Some("string.convert: Unsupported value: \"ToRot13\""),
        ),
        (
            "missing patch set",
            |c| c["spec"]["resources"][0]["patches"][0]["patchSetName"] = json!("nope"),
            Some("spec.resources[0].patches[0].patchSetName: Not found"),
        ),
        (
            "bad field path",
            |c| c["spec"]["resources"][0]["patches"][1]["fromFieldPath"] = json!("spec..x"),
            Some("spec.resources[0].patches[1].fromFieldPath: invalid field path"),
        ),
        (
            "unknown readiness check",
            |c| c["spec"]["resources"][0]["readinessChecks"] = json!([{"type": "Soon"}]),
            Some("spec.resources[0].readinessChecks[0].type: Unsupported value: \"Soon\""),
        ),
        (
            "connection detail without a name",
            |c| {
                c["spec"]["resources"][0]["connectionDetails"] =
                    json!([{"type": "FromValue", "value": "x"}])
            },
            Some("spec.resources[0].connectionDetails[0].name: Required value"),
        ),
        (
            "combine without fmt",
            |c| {
                c["spec"]["resources"][0]["patches"][1] = json!({"type": "CombineFromComposite", "combine": {"variables": [{"fromFieldPath": "spec.a"}], "strategy": "string"}, "toFieldPath": "spec.b"})
            },
            Some("spec.resources[0].patches[1].combine.string.fmt: Required value"),
        ),
    ];
    for (what, edit, expected) in cases {
        let mut c = composition();
        edit(&mut c);
        let problems = composition::validate::composition(&c);
        match expected {
            None => assert!(problems.is_empty(), "{what}: {problems:?}"),
            Some(fragment) => assert!(
                problems.iter().any(|p| p.contains(fragment)),
                "{what}: want {fragment:?}, got {problems:?}"
            ),
        }
    }
}

//! crossplane-runtime v1.20's `pkg/fieldpath` tests (fieldpath_test.go,
//! paved_test.go), carried over case by case: same names, same inputs,
//! same results. Error texts are ours; where upstream expects an error we
//! expect the same kind of error (parse, not found, wrong type, too large).

use composition::fieldpath::{self, FieldPathError, Segment};
use pretty_assertions::assert_eq;
use serde_json::{json, Value};

fn f(s: &str) -> Segment {
    Segment::field(s)
}

fn fi(s: &str) -> Segment {
    Segment::field_or_index(s)
}

// === fieldpath_test.go ===

struct SegmentsCase {
    name: &'static str,
    segments: Vec<Segment>,
    want: &'static str,
}

#[test]
fn segments_to_string() {
    let cases = vec![
        SegmentsCase {
            name: "SingleField",
            segments: vec![f("spec")],
            want: "spec",
        },
        SegmentsCase {
            name: "SingleIndex",
            segments: vec![fi("0")],
            want: "[0]",
        },
        SegmentsCase {
            name: "FieldsAndIndex",
            segments: vec![f("spec"), f("containers"), fi("0"), f("name")],
            want: "spec.containers[0].name",
        },
        SegmentsCase {
            name: "PeriodsInField",
            segments: vec![f("data"), f(".config.yml")],
            want: "data[.config.yml]",
        },
        SegmentsCase {
            name: "Wildcard",
            segments: vec![f("spec"), f("containers"), fi("*"), f("name")],
            want: "spec.containers[*].name",
        },
    ];
    for c in cases {
        assert_eq!(fieldpath::to_string(&c.segments), c.want, "{}", c.name);
    }
}

struct FieldOrIndexCase {
    name: &'static str,
    reason: &'static str,
    s: String,
    want: Segment,
}

#[test]
fn field_or_index() {
    let too_big = (u64::from(u32::MAX) + 1).to_string();
    let cases = vec![
        FieldOrIndexCase {
            name: "Field",
            reason: "An unambiguous string should be interpreted as a field segment",
            s: "coolField".into(),
            want: Segment::Field("coolField".into()),
        },
        FieldOrIndexCase {
            name: "QuotedField",
            reason: "A quoted string should be interpreted as a field segment with the quotes removed",
            s: "'coolField'".into(),
            want: Segment::Field("coolField".into()),
        },
        FieldOrIndexCase {
            name: "QuotedFieldWithPeriods",
            reason: "A quoted string with periods should be interpreted as a field segment with the quotes removed",
            s: "'cool.Field'".into(),
            want: Segment::Field("cool.Field".into()),
        },
        FieldOrIndexCase {
            name: "Index",
            reason: "An unambiguous integer should be interpreted as an index segment",
            s: "3".into(),
            want: Segment::Index(3),
        },
        FieldOrIndexCase {
            name: "Negative",
            reason: "A negative integer should be interpreted as an field segment",
            s: "-3".into(),
            want: Segment::Field("-3".into()),
        },
        FieldOrIndexCase {
            name: "Float",
            reason: "A float should be interpreted as an field segment",
            s: "3.0".into(),
            want: Segment::Field("3.0".into()),
        },
        FieldOrIndexCase {
            name: "Overflow",
            reason: "A very big integer will be interpreted as a field segment",
            s: too_big.clone(),
            want: Segment::Field(too_big),
        },
    ];
    for c in cases {
        assert_eq!(fi(&c.s), c.want, "{}: {}", c.name, c.reason);
    }
}

struct ParseCase {
    name: &'static str,
    reason: &'static str,
    path: &'static str,
    want: Result<Vec<Segment>, &'static str>,
}

#[test]
fn parse() {
    let cases = vec![
        ParseCase {
            name: "SingleField",
            reason:
                "A path with no brackets or periods should be interpreted as a single field segment",
            path: "spec",
            want: Ok(vec![f("spec")]),
        },
        ParseCase {
            name: "SingleIndex",
            reason: "An integer surrounded by brackets should be interpreted as an index",
            path: "[0]",
            want: Ok(vec![fi("0")]),
        },
        ParseCase {
            name: "TwoFields",
            reason: "A path with one period should be interpreted as two field segments",
            path: "metadata.name",
            want: Ok(vec![f("metadata"), f("name")]),
        },
        ParseCase {
            name: "APIConventionsExample",
            reason: "The example given by the Kubernetes API convention should be parse correctly",
            path: "fields[1].state.current",
            want: Ok(vec![f("fields"), fi("1"), f("state"), f("current")]),
        },
        ParseCase {
            name: "SimpleIndex",
            reason:
                "Indexing an object field that is an array should result in a field and an index",
            path: "items[0]",
            want: Ok(vec![f("items"), fi("0")]),
        },
        ParseCase {
            name: "FieldsAndIndex",
            reason: "A path with periods and braces should be interpreted as fields and indices",
            path: "spec.containers[0].name",
            want: Ok(vec![f("spec"), f("containers"), fi("0"), f("name")]),
        },
        ParseCase {
            name: "NestedArray",
            reason: "A nested array should result in two consecutive index fields",
            path: "nested[0][1].name",
            want: Ok(vec![f("nested"), fi("0"), fi("1"), f("name")]),
        },
        ParseCase {
            name: "BracketStyleField",
            reason: "A field name can be specified using brackets rather than a period",
            path: "spec[containers][0].name",
            want: Ok(vec![f("spec"), f("containers"), fi("0"), f("name")]),
        },
        ParseCase {
            name: "BracketFieldWithPeriod",
            reason: "A field name specified using brackets can include a period",
            path: "data[.config.yml]",
            want: Ok(vec![f("data"), fi(".config.yml")]),
        },
        ParseCase {
            name: "QuotedFieldWithPeriodInBracket",
            reason: "A field name specified using quote and in bracket can include a period",
            path: "metadata.labels['app.hash']",
            want: Ok(vec![f("metadata"), f("labels"), fi("app.hash")]),
        },
        ParseCase {
            name: "LeadingPeriod",
            reason: "A path may not start with a period (unlike a JSON path)",
            path: ".metadata.name",
            want: Err("unexpected '.' at position 0"),
        },
        ParseCase {
            name: "TrailingPeriod",
            reason: "A path may not end with a period",
            path: "metadata.name.",
            want: Err("unexpected '.' at position 13"),
        },
        ParseCase {
            name: "BracketsFollowingPeriod",
            reason: "Brackets may not follow a period",
            path: "spec.containers.[0].name",
            want: Err("unexpected '[' at position 16"),
        },
        ParseCase {
            name: "DoublePeriod",
            reason: "A path may not include two consecutive periods",
            path: "metadata..name",
            want: Err("unexpected '.' at position 9"),
        },
        ParseCase {
            name: "DanglingRightBracket",
            reason: "A right bracket may not appear in a field name",
            path: "metadata.]name",
            want: Err("unexpected ']' at position 9"),
        },
        ParseCase {
            name: "DoubleOpenBracket",
            reason: "Brackets may not be nested",
            path: "spec[bracketed[name]]",
            want: Err("unexpected '[' at position 14"),
        },
        ParseCase {
            name: "DanglingLeftBracket",
            reason: "A left bracket must be closed",
            path: "spec[name",
            want: Err("unterminated '[' at position 4"),
        },
        ParseCase {
            name: "EmptyBracket",
            reason: "Brackets may not be empty",
            path: "spec[]",
            want: Err("unexpected ']' at position 5"),
        },
        // Our own, from the lexer's rules rather than an upstream case.
        ParseCase {
            name: "Empty",
            reason:
                "The empty path has no segments, and is no error, as crossplane-runtime lexes it",
            path: "",
            want: Ok(vec![]),
        },
        ParseCase {
            name: "LabelWithSlash",
            reason: "Label keys with dots and slashes fit in brackets unquoted",
            path: "metadata.labels[app.kubernetes.io/name]",
            want: Ok(vec![
                f("metadata"),
                f("labels"),
                Segment::Field("app.kubernetes.io/name".into()),
            ]),
        },
        ParseCase {
            name: "FieldAfterBracket",
            reason: "A field may follow a closing bracket without a period",
            path: "a[0]b",
            want: Ok(vec![f("a"), Segment::Index(0), f("b")]),
        },
        ParseCase {
            name: "TrailingPeriodAfterBracket",
            reason: "A period may not end the path after a bracket either",
            path: "a[0].",
            want: Err("unexpected '.' at position 4"),
        },
    ];
    for c in cases {
        let got = fieldpath::parse(c.path).map_err(|e| e.message);
        let want = c.want.map_err(str::to_string);
        assert_eq!(got, want, "{}: {}", c.name, c.reason);
    }
}

// === paved_test.go ===

/// What a read or write came to, compared without our message texts.
#[derive(Debug, PartialEq)]
enum Outcome {
    Value(Value),
    Parse,
    NotFound,
    WrongType,
    IndexTooLarge,
}

fn outcome_of(e: &FieldPathError) -> Outcome {
    match e {
        FieldPathError::Parse(_) => Outcome::Parse,
        FieldPathError::NotFound { .. } => Outcome::NotFound,
        FieldPathError::WrongType { .. } => Outcome::WrongType,
        FieldPathError::IndexTooLarge { .. } => Outcome::IndexTooLarge,
    }
}

struct GetCase {
    name: &'static str,
    reason: &'static str,
    path: &'static str,
    data: Value,
    want: Outcome,
}

#[test]
fn get_value() {
    use Outcome::*;
    let cases = vec![
        GetCase {
            name: "MetadataName",
            reason: "It should be possible to get a field from a nested object",
            path: "metadata.name",
            data: json!({"metadata": {"name": "cool"}}),
            want: Value(json!("cool")),
        },
        GetCase {
            name: "ContainerName",
            reason: "It should be possible to get a field from an object array element",
            path: "spec.containers[0].name",
            data: json!({"spec": {"containers": [{"name": "cool"}]}}),
            want: Value(json!("cool")),
        },
        GetCase {
            name: "NestedArray",
            reason: "It should be possible to get a field from a nested array",
            path: "items[0][1]",
            data: json!({"items": [["a", "b"]]}),
            want: Value(json!("b")),
        },
        GetCase {
            name: "OwnerRefController",
            reason: "Requesting a boolean field path should work.",
            path: "metadata.ownerRefs[0].controller",
            data: json!({"metadata": {"ownerRefs": [{"controller": true}]}}),
            want: Value(json!(true)),
        },
        GetCase {
            name: "MetadataVersion",
            reason: "Requesting an integer field should work",
            path: "metadata.version",
            data: json!({"metadata": {"version": 2}}),
            want: Value(json!(2)),
        },
        GetCase {
            name: "SomeFloat",
            reason: "Requesting a float field should work",
            path: "metadata.version",
            data: json!({"metadata": {"version": 2.0}}),
            want: Value(json!(2.0)),
        },
        GetCase {
            name: "MetadataNope",
            reason: "Requesting a non-existent object field should fail",
            path: "metadata.name",
            data: json!({"metadata": {"nope": "cool"}}),
            want: NotFound,
        },
        GetCase {
            name: "InsufficientContainers",
            reason: "Requesting a non-existent array element should fail",
            path: "spec.containers[1].name",
            data: json!({"spec": {"containers": [{"name": "cool"}]}}),
            want: NotFound,
        },
        GetCase {
            name: "NotAnArray",
            reason: "Indexing an object should fail",
            path: "metadata[1]",
            data: json!({"metadata": {"nope": "cool"}}),
            want: WrongType,
        },
        GetCase {
            name: "NotAnObject",
            reason: "Requesting a field in an array should fail",
            path: "spec.containers[nope].name",
            data: json!({"spec": {"containers": [{"name": "cool"}]}}),
            want: WrongType,
        },
        GetCase {
            name: "MalformedPath",
            reason: "Requesting an invalid field path should fail",
            path: "spec[]",
            data: json!({}),
            want: Parse,
        },
        GetCase {
            name: "NilParent",
            reason: "Request for a path with a nil parent value",
            path: "spec.containers[*].name",
            data: json!({"spec": {"containers": null}}),
            want: NotFound,
        },
        // Ours, from getValueFromInterface's rules.
        GetCase {
            name: "NullValue",
            reason: "A field that is present but null is read as null, not as missing",
            path: "spec.x",
            data: json!({"spec": {"x": null}}),
            want: Value(json!(null)),
        },
        GetCase {
            name: "FieldOfScalar",
            reason: "Reading through a string is a type error, not a missing field",
            path: "spec.x.y",
            data: json!({"spec": {"x": "s"}}),
            want: WrongType,
        },
        GetCase {
            name: "IndexOfNull",
            reason: "Indexing a null is a type error (only a field of a null is 'not found')",
            path: "spec.x[0]",
            data: json!({"spec": {"x": null}}),
            want: WrongType,
        },
        GetCase {
            name: "WildcardOfArray",
            reason: "GetValue treats * as a field name, so it cannot read an array",
            path: "spec.containers[*].name",
            data: json!({"spec": {"containers": [{"name": "a"}]}}),
            want: WrongType,
        },
        GetCase {
            name: "HighIndexRead",
            reason: "The maximum index limits writes only: a read past the end is just not found",
            path: "items[5000]",
            data: json!({"items": []}),
            want: NotFound,
        },
    ];
    for c in cases {
        let got = match fieldpath::get(&c.data, c.path) {
            Ok(v) => Outcome::Value(v.clone()),
            Err(e) => outcome_of(&e),
        };
        assert_eq!(got, c.want, "{}: {}", c.name, c.reason);
    }
}

struct SetCase {
    name: &'static str,
    reason: &'static str,
    data: Value,
    path: String,
    value: Value,
    /// The object afterwards, and the error if there is one.
    want: (Value, Option<Outcome>),
}

#[test]
fn set_value() {
    let max = fieldpath::MAX_INDEX;
    let cases = vec![
        SetCase {
            name: "MetadataName",
            reason: "Setting an object field should work",
            data: json!({"metadata": {"name": "lame"}}),
            path: "metadata.name".into(),
            value: json!("cool"),
            want: (json!({"metadata": {"name": "cool"}}), None),
        },
        SetCase {
            name: "NonExistentMetadataName",
            reason: "Setting a non-existent object field should work",
            data: json!({}),
            path: "metadata.name".into(),
            value: json!("cool"),
            want: (json!({"metadata": {"name": "cool"}}), None),
        },
        SetCase {
            name: "ContainerName",
            reason: "Setting a field of an object that is an array element should work",
            data: json!({"spec": {"containers": [{"name": "lame"}]}}),
            path: "spec.containers[0].name".into(),
            value: json!("cool"),
            want: (json!({"spec": {"containers": [{"name": "cool"}]}}), None),
        },
        SetCase {
            name: "NonExistentContainerName",
            reason: "Setting a field of a non-existent object that is an array element should work",
            data: json!({}),
            path: "spec.containers[0].name".into(),
            value: json!("cool"),
            want: (json!({"spec": {"containers": [{"name": "cool"}]}}), None),
        },
        SetCase {
            name: "NewContainer",
            reason: "Growing an array object field should work",
            data: json!({"spec": {"containers": [{"name": "cool"}]}}),
            path: "spec.containers[1].name".into(),
            value: json!("cooler"),
            want: (
                json!({"spec": {"containers": [{"name": "cool"}, {"name": "cooler"}]}}),
                None,
            ),
        },
        SetCase {
            name: "NestedArray",
            reason: "Setting a value in a nested array should work",
            data: json!({}),
            path: "data[0][0]".into(),
            value: json!("a"),
            want: (json!({"data": [["a"]]}), None),
        },
        SetCase {
            name: "GrowNestedArray",
            reason: "Growing then setting a value in a nested array should work",
            data: json!({"data": [["a"]]}),
            path: "data[0][1]".into(),
            value: json!("b"),
            want: (json!({"data": [["a", "b"]]}), None),
        },
        SetCase {
            name: "GrowArrayField",
            reason: "Growing then setting a value in an array field should work",
            data: json!({"data": ["a"]}),
            path: "data[2]".into(),
            value: json!("c"),
            want: (json!({"data": ["a", null, "c"]}), None),
        },
        SetCase {
            name: "RejectsHighIndexes",
            reason: "Paths having indexes above the maximum default value are rejected",
            data: json!({"data": ["a"]}),
            path: format!("data[{}]", max + 1),
            value: json!("c"),
            want: (json!({"data": ["a"]}), Some(Outcome::IndexTooLarge)),
        },
        SetCase {
            name: "MapStringString",
            reason: "A map of string to string should be converted to a map of string to any",
            data: json!({"metadata": {}}),
            path: "metadata.labels".into(),
            value: json!({"cool": "very"}),
            want: (json!({"metadata": {"labels": {"cool": "very"}}}), None),
        },
        SetCase {
            name: "OwnerReference",
            reason: "An ObjectReference (i.e. struct) should be converted to a map of string to any",
            data: json!({"metadata": {}}),
            path: "metadata.ownerRefs[0]".into(),
            value: json!({"apiVersion": "v", "kind": "k", "name": "n", "uid": "u"}),
            want: (
                json!({"metadata": {"ownerRefs": [{"apiVersion": "v", "kind": "k", "name": "n", "uid": "u"}]}}),
                None,
            ),
        },
        SetCase {
            name: "NotAnArray",
            reason: "Indexing an object field should fail",
            data: json!({"data": {}}),
            path: "data[0]".into(),
            value: json!(null),
            want: (json!({"data": {}}), Some(Outcome::WrongType)),
        },
        SetCase {
            name: "NotAnObject",
            reason: "Requesting a field in an array should fail",
            data: json!({"data": []}),
            path: "data.name".into(),
            value: json!(null),
            want: (json!({"data": []}), Some(Outcome::WrongType)),
        },
        SetCase {
            name: "MalformedPath",
            reason: "Requesting an invalid field path should fail",
            data: json!({}),
            path: "spec[]".into(),
            value: json!(null),
            want: (json!({}), Some(Outcome::Parse)),
        },
        // Ours, from setValue's rules.
        SetCase {
            name: "MaxIndexItself",
            reason: "The maximum index itself may be written",
            data: json!({"data": []}),
            path: format!("data[{max}]"),
            value: json!("z"),
            want: (
                {
                    let mut items = vec![Value::Null; max + 1];
                    items[max] = json!("z");
                    json!({ "data": items })
                },
                None,
            ),
        },
        SetCase {
            name: "FieldOfScalar",
            reason: "Writing x.name where x is a string is an error, not an overwrite",
            data: json!({"spec": {"x": "s"}}),
            path: "spec.x.name".into(),
            value: json!(1),
            want: (json!({"spec": {"x": "s"}}), Some(Outcome::WrongType)),
        },
        SetCase {
            name: "IndexOfObject",
            reason: "Writing x[0] where x is an object is an error",
            data: json!({"spec": {"x": {"a": 1}}}),
            path: "spec.x[0].y".into(),
            value: json!(1),
            want: (json!({"spec": {"x": {"a": 1}}}), Some(Outcome::WrongType)),
        },
        SetCase {
            name: "FieldOfNullField",
            reason: "Crossplane creates only absent fields: a field that is null is not replaced by an object",
            data: json!({"spec": {"x": null}}),
            path: "spec.x.y".into(),
            value: json!(1),
            want: (json!({"spec": {"x": null}}), Some(Outcome::WrongType)),
        },
        SetCase {
            name: "FieldOfNullElement",
            reason: "A null array element, unlike a null field, is replaced by what the path needs",
            data: json!({"spec": {"x": [null]}}),
            path: "spec.x[0].y".into(),
            value: json!(1),
            want: (json!({"spec": {"x": [{"y": 1}]}}), None),
        },
        SetCase {
            name: "EmptyPath",
            reason: "The empty path sets nothing",
            data: json!({"a": 1}),
            path: "".into(),
            value: json!(2),
            want: (json!({"a": 1}), None),
        },
        SetCase {
            name: "WildcardIsAField",
            reason: "SetValue writes * as an ordinary key; only patches expand [*]",
            data: json!({"a": {}}),
            path: "a.*".into(),
            value: json!(1),
            want: (json!({"a": {"*": 1}}), None),
        },
    ];
    for mut c in cases {
        let err = fieldpath::set(&mut c.data, &c.path, c.value).err();
        let got = (c.data, err.as_ref().map(outcome_of));
        assert_eq!(got, c.want, "{}: {}", c.name, c.reason);
    }
}

struct ExpandCase {
    name: &'static str,
    reason: &'static str,
    path: &'static str,
    data: Value,
    want: Result<Vec<&'static str>, Outcome>,
}

#[test]
fn expand_wildcards() {
    let cases = vec![
        ExpandCase {
            name: "NoWildcardExisting",
            reason: "It should return same path if no wildcard in an existing path",
            path: "password",
            data: json!({"password": "top-secret"}),
            want: Ok(vec!["password"]),
        },
        ExpandCase {
            name: "NoWildcardNonExisting",
            reason: "It should return no results if no wildcard in a non-existing path",
            path: "username",
            data: json!({"password": "top-secret"}),
            want: Ok(vec![]),
        },
        ExpandCase {
            name: "NestedNoWildcardExisting",
            reason: "It should return same path if no wildcard in an existing path",
            path: "items[0][1]",
            data: json!({"items": [["a", "b"]]}),
            want: Ok(vec!["items[0][1]"]),
        },
        ExpandCase {
            name: "NestedNoWildcardNonExisting",
            reason: "It should return no results if no wildcard in a non-existing path",
            path: "items[0][5]",
            data: json!({"items": [["a", "b"]]}),
            want: Ok(vec![]),
        },
        ExpandCase {
            name: "NestedArray",
            reason: "It should return all possible paths for an array",
            path: "items[*][*]",
            data: json!({"items": [["a", "b", "c"], ["d"]]}),
            want: Ok(vec!["items[0][0]", "items[0][1]", "items[0][2]", "items[1][0]"]),
        },
        ExpandCase {
            name: "KeysOfMap",
            reason: "It should return all possible paths for a map in proper syntax",
            path: "items[*]",
            data: json!({"items": {"key1": "val1", "key2.as.annotation": "val2"}}),
            want: Ok(vec!["items.key1", "items[key2.as.annotation]"]),
        },
        ExpandCase {
            name: "ArrayOfObjects",
            reason: "It should return all possible paths for an array of objects",
            path: "spec.containers[*][*]",
            data: json!({"spec": {"containers": [{"name": "cool", "image": "latest", "args": ["start", "now"]}]}}),
            want: Ok(vec![
                "spec.containers[0].name",
                "spec.containers[0].image",
                "spec.containers[0].args",
            ]),
        },
        ExpandCase {
            name: "MultiLayer",
            reason: "It should return all possible paths for a multilayer input",
            path: "spec.containers[*].args[*]",
            data: json!({"spec": {"containers": [{"name": "cool", "image": "latest", "args": ["start", "now", "debug"]}]}}),
            want: Ok(vec![
                "spec.containers[0].args[0]",
                "spec.containers[0].args[1]",
                "spec.containers[0].args[2]",
            ]),
        },
        ExpandCase {
            name: "WildcardInTheBeginning",
            reason: "It should return all possible paths for a multilayer input with wildcard in the beginning",
            path: "spec.containers[*].args[1]",
            data: json!({"spec": {"containers": [{"name": "cool", "image": "latest", "args": ["start", "now", "debug"]}]}}),
            want: Ok(vec!["spec.containers[0].args[1]"]),
        },
        ExpandCase {
            name: "WildcardAtTheEnd",
            reason: "It should return all possible paths for a multilayer input with wildcard at the end",
            path: "spec.containers[0].args[*]",
            data: json!({"spec": {"containers": [{"name": "cool", "image": "latest", "args": ["start", "now", "debug"]}]}}),
            want: Ok(vec![
                "spec.containers[0].args[0]",
                "spec.containers[0].args[1]",
                "spec.containers[0].args[2]",
            ]),
        },
        ExpandCase {
            name: "NoData",
            reason: "If there is no input data, no expanded fields could be found",
            path: "metadata[*]",
            data: json!({}),
            want: Ok(vec![]),
        },
        ExpandCase {
            name: "InsufficientContainers",
            reason: "Requesting a non-existent array element should return nothing",
            path: "spec.containers[1].args[*]",
            data: json!({"spec": {"containers": [{"name": "cool"}]}}),
            want: Ok(vec![]),
        },
        ExpandCase {
            name: "UnexpectedWildcard",
            reason: "Requesting a wildcard for an object should fail",
            path: "spec.containers[0].name[*]",
            data: json!({"spec": {"containers": [{"name": "cool"}]}}),
            want: Err(Outcome::WrongType),
        },
        ExpandCase {
            name: "NotAnArray",
            reason: "Indexing an object should fail",
            path: "metadata[1]",
            data: json!({"metadata": {"nope": "cool"}}),
            want: Err(Outcome::WrongType),
        },
        ExpandCase {
            name: "NotAnObject",
            reason: "Requesting a field in an array should fail",
            path: "spec.containers[nope].name",
            data: json!({"spec": {"containers": [{"name": "cool"}]}}),
            want: Err(Outcome::WrongType),
        },
        ExpandCase {
            name: "MalformedPath",
            reason: "Requesting an invalid field path should fail",
            path: "spec[]",
            data: json!({}),
            want: Err(Outcome::Parse),
        },
        ExpandCase {
            name: "NilValue",
            reason: "Requesting a wildcard for an object that has nil value",
            path: "spec.containers[*].name",
            data: json!({"spec": {"containers": null}}),
            want: Err(Outcome::NotFound),
        },
        // Ours, from expandWildcards' rules.
        ExpandCase {
            name: "OnlyExistingFields",
            reason: "Elements without the field are left out, not created",
            path: "spec.containers[*].name",
            data: json!({"spec": {"containers": [{"name": "a"}, {"image": "b"}, {"name": "c"}]}}),
            want: Ok(vec!["spec.containers[0].name", "spec.containers[2].name"]),
        },
        ExpandCase {
            name: "ElementOfWrongType",
            reason: "An element of the wrong type on the way fails the whole expansion",
            path: "spec.containers[*].name",
            data: json!({"spec": {"containers": [{"name": "a"}, "b"]}}),
            want: Err(Outcome::WrongType),
        },
        ExpandCase {
            name: "EmptyArray",
            reason: "A wildcard over an empty array expands to nothing",
            path: "spec.containers[*].name",
            data: json!({"spec": {"containers": []}}),
            want: Ok(vec![]),
        },
        ExpandCase {
            name: "WildcardAtTheRoot",
            reason: "A leading wildcard expands over the object's own keys",
            path: "[*].name",
            data: json!({"a": {"name": 1}, "b": {}}),
            want: Ok(vec!["a.name"]),
        },
    ];
    for c in cases {
        let got = fieldpath::expand_wildcards(&c.data, c.path).map_err(|e| outcome_of(&e));
        let want = c
            .want
            .map(|v| v.into_iter().map(str::to_string).collect::<Vec<_>>());
        assert_eq!(got, want, "{}: {}", c.name, c.reason);
    }
}

#[test]
fn lookup_treats_only_not_found_as_absent() {
    let data = json!({"spec": {"x": "s", "n": null}});
    assert_eq!(
        fieldpath::lookup(&data, "spec.y").ok(),
        Some(None),
        "a missing field is absent"
    );
    assert_eq!(
        fieldpath::lookup(&data, "spec.n").ok(),
        Some(Some(&Value::Null)),
        "a null field is present"
    );
    assert!(
        fieldpath::lookup(&data, "spec.x.y").is_err(),
        "a wrong type is still an error"
    );
}

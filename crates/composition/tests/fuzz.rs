//! Property-based fuzz targets (proptest, stable Rust) for field paths,
//! patches, transforms, Go's fmt verbs, quantities and readiness checks:
//! arbitrary input gives a value or an error, never a panic, and a field
//! path that parses prints back to one that parses the same.
//! `PROPTEST_CASES=N` sets the cases per target (256 by default).

#[path = "../../../tests/fuzz/json.rs"]
mod json;

use composition::{fieldpath, gofmt, patch, quantity, readiness, transform};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Field paths from the characters their grammar gives meaning to.
fn field_path() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("spec".to_string()),
        Just("metadata".to_string()),
        Just("labels".to_string()),
        Just("containers".to_string()),
        Just(".".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("[0]".to_string()),
        Just("[*]".to_string()),
        Just("[-1]".to_string()),
        Just("[99999999999999999999]".to_string()),
        Just("[example.org/tier]".to_string()),
        Just("['quoted']".to_string()),
        Just("\\".to_string()),
        Just("*".to_string()),
        any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(pieces, 0..8).prop_map(|p| p.concat())
}

/// A transform: a known type with settings drawn from its vocabulary,
/// or something else entirely.
fn transform_spec() -> impl Strategy<Value = Value> {
    let string_types = proptest::sample::select(
        &[
            "Format",
            "Convert",
            "TrimPrefix",
            "TrimSuffix",
            "Regexp",
            "Join",
            "Replace",
            "Other",
        ][..],
    );
    let converts = proptest::sample::select(
        &[
            "ToUpper",
            "ToLower",
            "ToBase64",
            "FromBase64",
            "ToJson",
            "ToSha1",
            "ToSha256",
            "ToSha512",
            "ToAdler32",
            "Nope",
        ][..],
    );
    let fmt = proptest::collection::vec(
        proptest::sample::select(
            &[
                "%", "s", "d", "v", "q", "x", "f", "+", "-", "#", "0", " ", ".", "2", "*", "[1]",
                "%%", "t", "e", "g", "text",
            ][..],
        ),
        0..10,
    )
    .prop_map(|p| p.concat());
    let string = (string_types, converts, fmt.clone(), json::word(), json::word()).prop_map(|(kind, convert, fmt, a, b)| {
        json!({"type": "string", "string": {
            "type": kind, "fmt": fmt, "convert": convert, "trim": a,
            "regexp": {"match": b, "group": 1}, "join": {"separator": a}, "replace": {"search": a, "replace": b}
        }})
    });
    let math = (proptest::sample::select(&["Multiply", "ClampMin", "ClampMax", ""][..]), json::json())
        .prop_map(|(kind, operand)| json!({"type": "math", "math": {"type": kind, "multiply": operand, "clampMin": operand, "clampMax": operand}}));
    let convert = (
        proptest::sample::select(
            &[
                "string", "int", "int64", "bool", "float64", "object", "array", "x",
            ][..],
        ),
        proptest::sample::select(&["none", "quantity", "json", ""][..]),
    )
        .prop_map(
            |(to, format)| json!({"type": "convert", "convert": {"toType": to, "format": format}}),
        );
    let map = json::object().prop_map(|pairs| json!({"type": "map", "map": pairs}));
    let matching = (json::json(), json::word(), json::json(), proptest::sample::select(&["Value", "Input", ""][..]))
        .prop_map(|(result, pattern, fallback, to)| json!({"type": "match", "match": {
            "patterns": [{"type": "literal", "literal": pattern, "result": result}, {"type": "regexp", "regexp": pattern, "result": result}],
            "fallbackValue": fallback, "fallbackTo": to
        }}));
    prop_oneof![string, math, convert, map, matching, json::json()]
}

/// A patch of each Crossplane type, with arbitrary paths, policies and transforms.
fn patch_spec() -> impl Strategy<Value = Value> {
    (
        proptest::sample::select(&["FromCompositeFieldPath", "ToCompositeFieldPath", "CombineFromComposite", "CombineToComposite", "PatchSet", "Other"][..]),
        field_path(),
        field_path(),
        proptest::collection::vec(transform_spec(), 0..3),
        proptest::sample::select(&["Optional", "Required", ""][..]),
        proptest::sample::select(&["Replace", "MergeObjects", "MergeObjectsAppendArrays", "ForceMergeObjects", "ForceMergeObjectsAppendArrays", ""][..]),
        proptest::collection::vec(field_path(), 0..3),
        proptest::collection::vec(proptest::sample::select(&["%s", "%d", "%v-%v", "%q", "%[2]s", "%!", ""][..]), 1..2),
    )
        .prop_map(|(kind, from, to, transforms, from_policy, to_policy, variables, fmt)| {
            let variables: Vec<Value> = variables.into_iter().map(|p| json!({"fromFieldPath": p})).collect();
            json!({
                "type": kind,
                "fromFieldPath": from,
                "toFieldPath": to,
                "transforms": transforms,
                "policy": {"fromFieldPath": from_policy, "toFieldPath": to_policy},
                "combine": {"variables": variables, "strategy": "string", "string": {"fmt": fmt[0]}},
            })
        })
}

proptest! {
    #[test]
    fn field_paths_parse_and_print_back(path in field_path()) {
        // An empty field (from `""` or `''`, quotes being trimmed) prints
        // as nothing, in crossplane-runtime's String() as here.
        let printable = |s: &[fieldpath::Segment]| !s.iter().any(|s| matches!(s, fieldpath::Segment::Field(f) if f.is_empty()));
        if let Some(segments) = fieldpath::parse(&path).ok().filter(|s| printable(s)) {
            let printed = fieldpath::to_string(&segments);
            let again = fieldpath::parse(&printed);
            prop_assert_eq!(again.as_ref().ok(), Some(&segments), "{:?} printed as {:?}", path, printed);
        }
    }

    #[test]
    fn field_paths_read_and_write_any_value_cleanly(path in field_path(), obj in json::json(), value in json::json()) {
        let _ = fieldpath::get(&obj, &path);
        let _ = fieldpath::lookup(&obj, &path);
        let _ = fieldpath::expand_wildcards(&obj, &path);
        let mut target = obj;
        // An empty path sets nothing, as in Crossplane; any other set reads back.
        let settable = fieldpath::parse(&path).is_ok_and(|s| !s.is_empty()) && !path.contains('*');
        if fieldpath::set(&mut target, &path, value.clone()).is_ok() && settable {
            if let Ok(read) = fieldpath::get(&target, &path) {
                prop_assert_eq!(read, &value, "what was set at {:?} reads back", path);
            }
        }
    }

    #[test]
    fn transforms_apply_or_fail_cleanly(t in transform_spec(), input in json::json()) {
        let _ = transform::apply(&t, input);
    }

    #[test]
    fn patches_apply_or_fail_cleanly(p in patch_spec(), from in json::json(), to in json::object()) {
        let mut to = to;
        let _ = patch::apply(&p, &from, &mut to);
        let _ = patch::expand(std::slice::from_ref(&p), &[json!({"name": "set", "patches": [p]})]);
    }

    #[test]
    fn go_format_verbs_never_panic(fmt in proptest::collection::vec(proptest::sample::select(&["%", "s", "d", "v", "q", "x", "X", "f", "+", "-", "#", "0", " ", ".", "9", "*", "[1]", "[0]", "[x]", "%%", "t", "e", "g", "b", "o", "c", "U", "T", "é"][..]), 0..16), args in proptest::collection::vec(json::json(), 0..3)) {
        let _ = gofmt::sprintf(&fmt.concat(), &args);
    }

    #[test]
    fn quantities_parse_or_fail_cleanly(text in proptest::collection::vec(proptest::sample::select(&["1", "0", "9", ".", "-", "+", "e", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "m", "n", "u", " ", "x"][..]), 0..8)) {
        let _ = quantity::approximate_f64(&text.concat());
    }

    #[test]
    fn readiness_checks_answer_or_fail_cleanly(
        kind in proptest::sample::select(&["NonEmpty", "MatchString", "MatchInteger", "MatchTrue", "MatchFalse", "MatchCondition", "None", "Other"][..]),
        path in field_path(),
        expected in json::json(),
        obj in json::json(),
    ) {
        let check = json!({"type": kind, "fieldPath": path, "matchString": expected, "matchInteger": expected,
            "matchCondition": {"type": expected, "status": expected}});
        let _ = readiness::is_ready(&[check], &obj);
    }

    #[test]
    fn transform_lists_from_any_json_fail_cleanly(transforms in proptest::collection::vec(json::json(), 0..3), input in json::json()) {
        let _ = transform::apply_all(&transforms, input);
    }
}

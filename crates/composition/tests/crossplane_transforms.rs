//! Crossplane v1.20's transform tests
//! (internal/controller/apiextensions/composite/composition_transforms_test.go
//! and the transform part of composition_patches_test.go), carried over
//! case by case: same names, same inputs, same outputs. Go's `int` and
//! `int64` inputs are JSON integers here, its `float64` JSON floats.
//! Where upstream expects an error we expect one; the texts are ours.
//! Cases whose input is a Go func (a JSON-marshalling failure) cannot
//! occur in JSON and are left out.

use composition::transform;
use pretty_assertions::assert_eq;
use serde_json::{json, Value};

struct Case {
    name: &'static str,
    /// Why the case holds, in a sentence.
    reason: &'static str,
    transform: Value,
    input: Value,
    /// The output, or a fragment of the error message.
    want: Result<Value, &'static str>,
}

fn run(cases: Vec<Case>) {
    for c in cases {
        let got = transform::apply(&c.transform, c.input.clone());
        match (&c.want, got) {
            (Ok(want), Ok(got)) => assert_eq!(&got, want, "{}: {}", c.name, c.reason),
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

fn map(pairs: Value) -> Value {
    json!({"type": "map", "map": pairs})
}

fn matching(settings: Value) -> Value {
    json!({"type": "match", "match": settings})
}

fn math(settings: Value) -> Value {
    json!({"type": "math", "math": settings})
}

fn string(settings: Value) -> Value {
    json!({"type": "string", "string": settings})
}

fn convert(settings: Value) -> Value {
    json!({"type": "convert", "convert": settings})
}

fn string_convert(how: &str) -> Value {
    string(json!({"type": "Convert", "convert": how}))
}

#[test]
fn map_resolve() {
    run(vec![
        Case {
            name: "NonStringInput",
            reason: "A map looks up strings only; a number is an error, not its text",
            transform: map(json!({})),
            input: json!(5),
            want: Err("input must be a string"),
        },
        Case {
            name: "KeyNotFound",
            reason: "A key that is not in the map is an error",
            transform: map(json!({})),
            input: json!("ola"),
            want: Err("key \"ola\" is not in the map"),
        },
        Case {
            name: "SuccessString",
            reason: "A string value is returned as is",
            transform: map(json!({"ola": "voila"})),
            input: json!("ola"),
            want: Ok(json!("voila")),
        },
        Case {
            name: "SuccessNumber",
            reason: "A number value is a float64, as json.Unmarshal decodes it",
            transform: map(json!({"ola": 1.0})),
            input: json!("ola"),
            want: Ok(json!(1.0)),
        },
        Case {
            name: "SuccessBoolean",
            reason: "A boolean value is returned as is",
            transform: map(json!({"ola": true})),
            input: json!("ola"),
            want: Ok(json!(true)),
        },
        Case {
            name: "SuccessObject",
            reason: "An object value is returned as is",
            transform: map(json!({"ola": {"foo": "bar"}})),
            input: json!("ola"),
            want: Ok(json!({"foo": "bar"})),
        },
        Case {
            name: "SuccessSlice",
            reason: "An array value is returned as is",
            transform: map(json!({"ola": ["foo", "bar"]})),
            input: json!("ola"),
            want: Ok(json!(["foo", "bar"])),
        },
        Case {
            name: "IntegerValueIsFloat",
            reason: "Ours: an integer value is decoded as a float64 too, so %d would not print it",
            transform: map(json!({"ola": 5})),
            input: json!("ola"),
            want: Ok(json!(5.0)),
        },
        Case {
            name: "BooleanInput",
            reason: "Ours: a boolean is not looked up as \"true\"",
            transform: map(json!({"true": 1})),
            input: json!(true),
            want: Err("input must be a string"),
        },
    ]);
}

#[test]
fn match_resolve() {
    run(vec![
        Case {
            name: "ErrNonStringInput",
            reason: "A literal pattern matches strings only; other input is an error",
            transform: matching(json!({"patterns": [{"type": "literal", "literal": "5"}]})),
            input: json!(5),
            want: Err("cannot match pattern 0: unsupported input type int64"),
        },
        Case {
            name: "ErrFallbackValueAndToInput",
            reason: "A fallback value and fallbackTo: Input cannot both be set",
            transform: matching(
                json!({"patterns": [], "fallbackValue": "foo", "fallbackTo": "Input"}),
            ),
            input: json!("foo"),
            want: Err("cannot set both a fallback value and the fallback to input flag"),
        },
        Case {
            name: "NoPatternsFallback",
            reason: "With no patterns the fallback value is returned",
            transform: matching(json!({"patterns": [], "fallbackValue": "bar"})),
            input: json!("foo"),
            want: Ok(json!("bar")),
        },
        Case {
            name: "NoPatternsFallbackToValueExplicit",
            reason: "fallbackTo: Value is the default, and may be written out",
            transform: matching(
                json!({"patterns": [], "fallbackValue": "bar", "fallbackTo": "Value"}),
            ),
            input: json!("foo"),
            want: Ok(json!("bar")),
        },
        Case {
            name: "NoPatternsFallbackNil",
            reason: "A null fallback value gives null",
            transform: matching(json!({"patterns": [], "fallbackValue": null})),
            input: json!("foo"),
            want: Ok(json!(null)),
        },
        Case {
            name: "NoPatternsFallbackToInput",
            reason: "fallbackTo: Input returns the input",
            transform: matching(json!({"patterns": [], "fallbackTo": "Input"})),
            input: json!("foo"),
            want: Ok(json!("foo")),
        },
        Case {
            name: "NoPatternsFallbackNilToInput",
            reason: "A null fallback value counts as unset, so fallbackTo: Input is allowed",
            transform: matching(
                json!({"patterns": [], "fallbackValue": null, "fallbackTo": "Input"}),
            ),
            input: json!("foo"),
            want: Ok(json!("foo")),
        },
        Case {
            name: "MatchLiteral",
            reason: "A matching literal returns its result",
            transform: matching(
                json!({"patterns": [{"type": "literal", "literal": "foo", "result": "bar"}]}),
            ),
            input: json!("foo"),
            want: Ok(json!("bar")),
        },
        Case {
            name: "MatchLiteralFirst",
            reason: "The first matching pattern wins",
            transform: matching(json!({"patterns": [
                {"type": "literal", "literal": "foo", "result": "bar"},
                {"type": "literal", "literal": "foo", "result": "not this"}
            ]})),
            input: json!("foo"),
            want: Ok(json!("bar")),
        },
        Case {
            name: "MatchLiteralWithResultStruct",
            reason: "A result may be an object",
            transform: matching(
                json!({"patterns": [{"type": "literal", "literal": "foo", "result": {"Hello": "World"}}]}),
            ),
            input: json!("foo"),
            want: Ok(json!({"Hello": "World"})),
        },
        Case {
            name: "MatchLiteralWithResultSlice",
            reason: "A result may be an array",
            transform: matching(
                json!({"patterns": [{"type": "literal", "literal": "foo", "result": ["Hello", "World"]}]}),
            ),
            input: json!("foo"),
            want: Ok(json!(["Hello", "World"])),
        },
        Case {
            name: "MatchLiteralWithResultNumber",
            reason: "A number result is a float64, as json.Unmarshal decodes it",
            transform: matching(
                json!({"patterns": [{"type": "literal", "literal": "foo", "result": 5}]}),
            ),
            input: json!("foo"),
            want: Ok(json!(5.0)),
        },
        Case {
            name: "MatchLiteralWithResultBool",
            reason: "A result may be a boolean",
            transform: matching(
                json!({"patterns": [{"type": "literal", "literal": "foo", "result": true}]}),
            ),
            input: json!("foo"),
            want: Ok(json!(true)),
        },
        Case {
            name: "MatchLiteralWithResultNil",
            reason: "A null result gives null",
            transform: matching(
                json!({"patterns": [{"type": "literal", "literal": "foo", "result": null}]}),
            ),
            input: json!("foo"),
            want: Ok(json!(null)),
        },
        Case {
            name: "MatchRegexp",
            reason: "A matching regexp returns its result",
            transform: matching(
                json!({"patterns": [{"type": "regexp", "regexp": "^foo.*$", "result": "Hello World"}]}),
            ),
            input: json!("foobar"),
            want: Ok(json!("Hello World")),
        },
        Case {
            name: "ErrMissingRegexp",
            reason: "A regexp pattern needs its regexp",
            transform: matching(json!({"patterns": [{"type": "regexp"}]})),
            input: json!(null),
            want: Err("cannot match pattern 0: regexp is required by type regexp"),
        },
        Case {
            name: "ErrInvalidRegexp",
            reason: "A regexp that does not compile is an error",
            transform: matching(json!({"patterns": [{"type": "regexp", "regexp": "?="}]})),
            input: json!(null),
            want: Err("cannot match pattern 0: invalid regexp"),
        },
        Case {
            name: "ErrMissingLiteral",
            reason: "A literal pattern needs its literal",
            transform: matching(json!({"patterns": [{"type": "literal"}]})),
            input: json!(null),
            want: Err("cannot match pattern 0: literal is required by type literal"),
        },
        Case {
            name: "RegexpNullInput",
            reason: "Ours: a regexp pattern refuses null input, after compiling",
            transform: matching(json!({"patterns": [{"type": "regexp", "regexp": "x"}]})),
            input: json!(null),
            want: Err("unsupported input type null"),
        },
        Case {
            name: "RegexpNumberInput",
            reason: "Ours: a regexp pattern does not match a number as its text",
            transform: matching(json!({"patterns": [{"type": "regexp", "regexp": "5"}]})),
            input: json!(5),
            want: Err("unsupported input type int64"),
        },
        Case {
            name: "LiteralIsTheDefaultType",
            reason: "Ours: the schema defaults a pattern's type to literal",
            transform: matching(json!({"patterns": [{"literal": "a", "result": "b"}]})),
            input: json!("a"),
            want: Ok(json!("b")),
        },
        Case {
            name: "FallbackEmptyStringAndToInput",
            reason:
                "Ours: an empty-string fallback value is still a value, so it clashes with Input",
            transform: matching(
                json!({"patterns": [], "fallbackValue": "", "fallbackTo": "Input"}),
            ),
            input: json!("foo"),
            want: Err("cannot set both"),
        },
    ]);
}

#[test]
fn math_resolve() {
    run(vec![
        Case {
            name: "InvalidType",
            reason: "An unknown math type is an error",
            transform: math(json!({"type": "bad"})),
            input: json!(25),
            want: Err("unknown type \"bad\""),
        },
        Case {
            name: "NonNumberInput",
            reason: "Math needs a number",
            transform: math(json!({"type": "Multiply", "multiply": 2})),
            input: json!("ola"),
            want: Err("input must be a number"),
        },
        Case {
            name: "MultiplyNoConfig",
            reason: "Multiply needs multiply, checked before the input",
            transform: math(json!({"type": "Multiply"})),
            input: json!(25),
            want: Err("needs multiply"),
        },
        Case {
            name: "MultiplySuccess",
            reason: "An integer times the multiplier is an integer",
            transform: math(json!({"type": "Multiply", "multiply": 2})),
            input: json!(3),
            want: Ok(json!(6)),
        },
        Case {
            name: "MultiplySuccessInt64",
            reason: "An int64 times the multiplier is an int64",
            transform: math(json!({"type": "Multiply", "multiply": 2})),
            input: json!(3),
            want: Ok(json!(6)),
        },
        Case {
            name: "ClampMinSuccess",
            reason: "Below the minimum gives the minimum",
            transform: math(json!({"type": "ClampMin", "clampMin": 2})),
            input: json!(1),
            want: Ok(json!(2)),
        },
        Case {
            name: "ClampMinSuccessNoChangeInt",
            reason: "Above the minimum is unchanged",
            transform: math(json!({"type": "ClampMin", "clampMin": 2})),
            input: json!(3),
            want: Ok(json!(3)),
        },
        Case {
            name: "ClampMinSuccessNoChangeInt64",
            reason: "Above the minimum is unchanged",
            transform: math(json!({"type": "ClampMin", "clampMin": 2})),
            input: json!(3),
            want: Ok(json!(3)),
        },
        Case {
            name: "ClampMinSuccessInt64",
            reason: "Below the minimum gives the minimum",
            transform: math(json!({"type": "ClampMin", "clampMin": 2})),
            input: json!(1),
            want: Ok(json!(2)),
        },
        Case {
            name: "ClampMinNoConfig",
            reason: "ClampMin needs clampMin",
            transform: math(json!({"type": "ClampMin"})),
            input: json!(25),
            want: Err("needs clampMin"),
        },
        Case {
            name: "ClampMaxSuccess",
            reason: "Above the maximum gives the maximum",
            transform: math(json!({"type": "ClampMax", "clampMax": 2})),
            input: json!(3),
            want: Ok(json!(2)),
        },
        Case {
            name: "ClampMaxSuccessNoChange",
            reason: "Below the maximum is unchanged",
            transform: math(json!({"type": "ClampMax", "clampMax": 2})),
            input: json!(1),
            want: Ok(json!(1)),
        },
        Case {
            name: "ClampMaxSuccessInt64",
            reason: "Above the maximum gives the maximum",
            transform: math(json!({"type": "ClampMax", "clampMax": 2})),
            input: json!(3),
            want: Ok(json!(2)),
        },
        Case {
            name: "ClampMaxNoConfig",
            reason: "ClampMax needs clampMax",
            transform: math(json!({"type": "ClampMax"})),
            input: json!(25),
            want: Err("needs clampMax"),
        },
        // Ours, from ResolveMath's rules.
        Case {
            name: "MultiplyFloat",
            reason: "A float64 times the multiplier is a float64",
            transform: math(json!({"multiply": 2})),
            input: json!(1.5),
            want: Ok(json!(3.0)),
        },
        Case {
            name: "ClampMaxKeepsFloatAboveByFraction",
            reason: "Clamps compare the input truncated to an integer: int64(3.5) is not above 3",
            transform: math(json!({"type": "ClampMax", "clampMax": 3})),
            input: json!(3.5),
            want: Ok(json!(3.5)),
        },
        Case {
            name: "ClampMinOfFloatIsInteger",
            reason: "A clamped float gives the clamp, an integer",
            transform: math(json!({"type": "ClampMin", "clampMin": 3})),
            input: json!(2.9),
            want: Ok(json!(3)),
        },
        Case {
            name: "MultiplyOverflowWraps",
            reason: "int64 multiplication wraps as Go's does",
            transform: math(json!({"multiply": 2})),
            input: json!(i64::MAX),
            want: Ok(json!(-2)),
        },
        Case {
            name: "FloatOperandRefused",
            reason: "Operands are int64 in Crossplane's API",
            transform: math(json!({"type": "ClampMin", "clampMin": 1.5})),
            input: json!(1),
            want: Err("clampMin must be an integer"),
        },
        Case {
            name: "NoSettings",
            reason: "A math transform needs its settings",
            transform: json!({"type": "math"}),
            input: json!(1),
            want: Err("requires configuration"),
        },
    ]);
}

#[test]
fn string_resolve() {
    run(vec![
        Case {
            name: "NotSupportedType",
            reason: "An unknown string type is an error",
            transform: string(json!({"type": "Something"})),
            input: json!("value"),
            want: Err("unknown type \"Something\""),
        },
        Case {
            name: "FmtFailed",
            reason: "Format needs fmt",
            transform: string(json!({"type": "Format"})),
            input: json!("value"),
            want: Err("fmt is not set"),
        },
        Case {
            name: "FmtString",
            reason: "%s formats a string",
            transform: string(json!({"type": "Format", "fmt": "verycool%s"})),
            input: json!("thing"),
            want: Ok(json!("verycoolthing")),
        },
        Case {
            name: "FmtInteger",
            reason: "%d formats an integer",
            transform: string(json!({"type": "Format", "fmt": "the largest %d"})),
            input: json!(8),
            want: Ok(json!("the largest 8")),
        },
        Case {
            name: "ConvertNotSet",
            reason: "Convert needs convert",
            transform: string(json!({"type": "Convert"})),
            input: json!("crossplane"),
            want: Err("convert is not set"),
        },
        Case {
            name: "ConvertTypFailed",
            reason: "An unknown conversion is an error",
            transform: string_convert("Something"),
            input: json!("crossplane"),
            want: Err("unknown convert \"Something\""),
        },
        Case {
            name: "ConvertToUpper",
            reason: "ToUpper upper-cases",
            transform: string_convert("ToUpper"),
            input: json!("crossplane"),
            want: Ok(json!("CROSSPLANE")),
        },
        Case {
            name: "ConvertToLower",
            reason: "ToLower lower-cases",
            transform: string_convert("ToLower"),
            input: json!("CrossPlane"),
            want: Ok(json!("crossplane")),
        },
        Case {
            name: "ConvertToBase64",
            reason: "ToBase64 encodes with padding",
            transform: string_convert("ToBase64"),
            input: json!("CrossPlane"),
            want: Ok(json!("Q3Jvc3NQbGFuZQ==")),
        },
        Case {
            name: "ConvertFromBase64",
            reason: "FromBase64 decodes",
            transform: string_convert("FromBase64"),
            input: json!("Q3Jvc3NQbGFuZQ=="),
            want: Ok(json!("CrossPlane")),
        },
        Case {
            name: "ConvertFromBase64Error",
            reason: "Input that is not base64 is an error",
            transform: string_convert("FromBase64"),
            input: json!("ThisStringIsNotBase64"),
            want: Err("not base64"),
        },
        Case {
            name: "ConvertToSha1",
            reason: "ToSha1 hashes the string",
            transform: string_convert("ToSha1"),
            input: json!("Crossplane"),
            want: Ok(json!("3b683dc8ff44122b331a5e4f253dd69d90726d75")),
        },
        Case {
            name: "ConvertToSha256",
            reason: "ToSha256 hashes the string",
            transform: string_convert("ToSha256"),
            input: json!("Crossplane"),
            want: Ok(json!("19c8a7c24ed0067f606815b59e5b82d92935ff69deed04171457a55018e31224")),
        },
        Case {
            name: "ConvertToSha512",
            reason: "ToSha512 hashes the string",
            transform: string_convert("ToSha512"),
            input: json!("Crossplane"),
            want: Ok(json!("0016037c62c92b5cc4a282fbe30cdd228fa001624b26fd31baa9fcb76a9c60d48e2e7a16cf8729a2d9cba3d23e1d846e7721a5381b9a92dd813178e9a6686205")),
        },
        Case {
            name: "ConvertToSha512Int",
            reason: "A number is hashed as its JSON, which for an integer is its digits",
            transform: string_convert("ToSha512"),
            input: json!(1234),
            want: Ok(json!("d404559f602eab6fd602ac7680dacbfaadd13630335e951f097af3900e9de176b6db28512f2e000b9d04fba5133e8b1c6e8df59db3a8ab9d60be4b97cc9e81db")),
        },
        Case {
            name: "ConvertToSha512IntStr",
            reason: "The string of those digits hashes the same",
            transform: string_convert("ToSha512"),
            input: json!("1234"),
            want: Ok(json!("d404559f602eab6fd602ac7680dacbfaadd13630335e951f097af3900e9de176b6db28512f2e000b9d04fba5133e8b1c6e8df59db3a8ab9d60be4b97cc9e81db")),
        },
        Case {
            name: "ConvertToAdler32",
            reason: "ToAdler32 gives the checksum in decimal",
            transform: string_convert("ToAdler32"),
            input: json!("Crossplane"),
            want: Ok(json!("373097499")),
        },
        Case {
            name: "ConvertToAdler32Unicode",
            reason: "ToAdler32 checksums the UTF-8 bytes",
            transform: string_convert("ToAdler32"),
            input: json!("⡌⠁⠧⠑ ⠼⠁⠒  ⡍⠜⠇⠑⠹⠰⠎ ⡣⠕⠌"),
            want: Ok(json!("4110427190")),
        },
        Case {
            name: "TrimPrefix",
            reason: "TrimPrefix removes the prefix",
            transform: string(json!({"type": "TrimPrefix", "trim": "https://"})),
            input: json!("https://crossplane.io"),
            want: Ok(json!("crossplane.io")),
        },
        Case {
            name: "TrimSuffix",
            reason: "TrimSuffix removes the suffix",
            transform: string(json!({"type": "TrimSuffix", "trim": "-test"})),
            input: json!("my-string-test"),
            want: Ok(json!("my-string")),
        },
        Case {
            name: "TrimPrefixWithoutMatch",
            reason: "Without the prefix the input is unchanged",
            transform: string(json!({"type": "TrimPrefix", "trim": "https://"})),
            input: json!("crossplane.io"),
            want: Ok(json!("crossplane.io")),
        },
        Case {
            name: "TrimSuffixWithoutMatch",
            reason: "Without the suffix the input is unchanged",
            transform: string(json!({"type": "TrimSuffix", "trim": "-test"})),
            input: json!("my-string"),
            want: Ok(json!("my-string")),
        },
        Case {
            name: "RegexpNotCompiling",
            reason: "A regexp that does not compile is an error",
            transform: string(json!({"type": "Regexp", "regexp": {"match": "[a-z"}})),
            input: json!("my-string"),
            want: Err("invalid regexp"),
        },
        Case {
            name: "RegexpSimpleMatch",
            reason: "Without a group the whole match is returned",
            transform: string(json!({"type": "Regexp", "regexp": {"match": "[0-9]"}})),
            input: json!("my-1-string"),
            want: Ok(json!("1")),
        },
        Case {
            name: "RegexpCaptureGroup",
            reason: "A group returns that capture",
            transform: string(json!({"type": "Regexp", "regexp": {"match": "my-([0-9]+)-string", "group": 1}})),
            input: json!("my-1-string"),
            want: Ok(json!("1")),
        },
        Case {
            name: "RegexpNoSuchCaptureGroup",
            reason: "A group the regexp does not have is an error",
            transform: string(json!({"type": "Regexp", "regexp": {"match": "my-([0-9]+)-string", "group": 2}})),
            input: json!("my-1-string"),
            want: Err("has no group 2"),
        },
        Case {
            name: "JoinStrings",
            reason: "Join joins with the separator",
            transform: string(json!({"type": "Join", "join": {"separator": ","}})),
            input: json!(["a", "b", "c"]),
            want: Ok(json!("a,b,c")),
        },
        Case {
            name: "JoinNumbers",
            reason: "Numbers are joined as Go's %v prints them",
            transform: string(json!({"type": "Join", "join": {"separator": ","}})),
            input: json!([0.0, 1.0, 1.5]),
            want: Ok(json!("0,1,1.5")),
        },
        Case {
            name: "JoinFailedOnNonArray",
            reason: "Join needs an array",
            transform: string(json!({"type": "Join", "join": {"separator": ","}})),
            input: json!("wrong-type"),
            want: Err("cannot join non-array values"),
        },
        Case {
            name: "ConvertToJSONSuccess",
            reason: "ToJson writes JSON",
            transform: string_convert("ToJson"),
            input: json!({"foo": "bar"}),
            want: Ok(json!("{\"foo\":\"bar\"}")),
        },
        // Ours, from ResolveString's rules.
        Case {
            name: "FormatIsTheDefaultType",
            reason: "The schema defaults the string type to Format",
            transform: string(json!({"fmt": "%s!"})),
            input: json!("hi"),
            want: Ok(json!("hi!")),
        },
        Case {
            name: "FmtIntegerOfFloat",
            reason: "%d of a float64 (as a map result is) is marked, not printed, as Go does",
            transform: string(json!({"fmt": "%d"})),
            input: json!(5.0),
            want: Ok(json!("%!d(float64=5)")),
        },
        Case {
            name: "RegexpGroupNotTaken",
            reason: "A group that took no part in the match is the empty string",
            transform: string(json!({"type": "Regexp", "regexp": {"match": "a(b)?", "group": 1}})),
            input: json!("a"),
            want: Ok(json!("")),
        },
        Case {
            name: "RegexpNoMatch",
            reason: "No match at all is an error",
            transform: string(json!({"type": "Regexp", "regexp": {"match": "^x"}})),
            input: json!("abc"),
            want: Err("does not match"),
        },
        Case {
            name: "ToJsonEscapesHTML",
            reason: "Go's json.Marshal escapes <, > and &",
            transform: string_convert("ToJson"),
            input: json!("<a&b>"),
            want: Ok(json!("\"\\u003ca\\u0026b\\u003e\"")),
        },
        Case {
            name: "ToJsonWholeFloat",
            reason: "Go writes a whole float64 without a fraction",
            transform: string_convert("ToJson"),
            input: json!([2.0, 1e21, 1e-7]),
            want: Ok(json!("[2,1e+21,1e-7]")),
        },
        Case {
            name: "ToUpperRuneByRune",
            reason: "Go upper-cases rune by rune: ß has no single-rune upper case and stays",
            transform: string_convert("ToUpper"),
            input: json!("straße"),
            want: Ok(json!("STRAßE")),
        },
        Case {
            name: "FromBase64IgnoresNewlines",
            reason: "Go's standard decoding skips line breaks",
            transform: string_convert("FromBase64"),
            input: json!("Q3Jvc3\nNQbGFuZQ=="),
            want: Ok(json!("CrossPlane")),
        },
        Case {
            name: "FromBase64NeedsPadding",
            reason: "Go's standard decoding requires padding",
            transform: string_convert("FromBase64"),
            input: json!("aGk"),
            want: Err("not base64"),
        },
        Case {
            name: "JoinNeedsSeparator",
            reason: "The schema requires join.separator",
            transform: string(json!({"type": "Join", "join": {}})),
            input: json!(["a"]),
            want: Err("join.separator is required"),
        },
    ]);
}

#[test]
fn convert_resolve() {
    run(vec![
        Case {
            name: "StringToBool",
            reason: "strconv.ParseBool's true",
            transform: convert(json!({"toType": "bool"})),
            input: json!("true"),
            want: Ok(json!(true)),
        },
        Case {
            name: "StringToFloat64",
            reason: "A string of digits parses to a float64",
            transform: convert(json!({"toType": "float64"})),
            input: json!("1000"),
            want: Ok(json!(1000.0)),
        },
        Case {
            name: "StringToQuantityFloat64",
            reason: "A quantity parses to its value",
            transform: convert(json!({"toType": "float64", "format": "quantity"})),
            input: json!("1000m"),
            want: Ok(json!(1.0)),
        },
        Case {
            name: "StringToQuantityFloat64InvalidFormat",
            reason: "Something that is not a quantity is an error",
            transform: convert(json!({"toType": "float64", "format": "quantity"})),
            input: json!("1000 blabla"),
            want: Err("cannot parse quantity"),
        },
        Case {
            name: "SameTypeNoOp",
            reason: "Converting to the input's own type changes nothing",
            transform: convert(json!({"toType": "bool"})),
            input: json!(true),
            want: Ok(json!(true)),
        },
        Case {
            name: "IntAliasToInt64",
            reason: "int is int64",
            transform: convert(json!({"toType": "int"})),
            input: json!(1),
            want: Ok(json!(1)),
        },
        Case {
            name: "StringToObject",
            reason: "JSON text parses to an object",
            transform: convert(json!({"toType": "object", "format": "json"})),
            input: json!("{\"foo\":\"bar\"}"),
            want: Ok(json!({"foo": "bar"})),
        },
        Case {
            name: "StringToList",
            reason: "JSON text parses to an array",
            transform: convert(json!({"toType": "array", "format": "json"})),
            input: json!("[\"foo\", \"bar\", \"baz\"]"),
            want: Ok(json!(["foo", "bar", "baz"])),
        },
        Case {
            name: "InputTypeNotSupported",
            reason: "Only scalars are converted",
            transform: convert(json!({"toType": "string"})),
            input: json!([64]),
            want: Err("invalid input type"),
        },
        Case {
            name: "ConversionPairFormatNotSupported",
            reason: "The quantity format applies to string to float64 only",
            transform: convert(json!({"toType": "string", "format": "quantity"})),
            input: json!(100),
            want: Err("conversion from int64 to string is not supported with format quantity"),
        },
        Case {
            name: "ConversionPairNotSupported",
            reason: "An unknown toType is refused",
            transform: convert(json!({"toType": "[]int"})),
            input: json!("[64]"),
            want: Err("unknown toType \"[]int\""),
        },
        Case {
            name: "ConversionPairSupportedFloat64Int64",
            reason: "float64 to int64 truncates",
            transform: convert(json!({"toType": "int64"})),
            input: json!(1.1),
            want: Ok(json!(1)),
        },
    ]);
}

/// TestConvertTransformGetConversionFunc's pairs, each run through the
/// whole transform with an input of the pair's source type.
#[test]
fn convert_conversion_pairs() {
    run(vec![
        Case {
            name: "IntToString",
            reason: "Int to String should be valid",
            transform: convert(json!({"toType": "string"})),
            input: json!(5),
            want: Ok(json!("5")),
        },
        Case {
            name: "IntToInt",
            reason: "Int to Int should be valid",
            transform: convert(json!({"toType": "int"})),
            input: json!(5),
            want: Ok(json!(5)),
        },
        Case {
            name: "IntToInt64",
            reason: "Int to Int64 should be valid",
            transform: convert(json!({"toType": "int"})),
            input: json!(5),
            want: Ok(json!(5)),
        },
        Case {
            name: "Int64ToInt",
            reason: "Int64 to Int should be valid",
            transform: convert(json!({"toType": "int64"})),
            input: json!(5),
            want: Ok(json!(5)),
        },
        Case {
            name: "IntToFloat",
            reason: "Float to Int should be valid",
            transform: convert(json!({"toType": "int"})),
            input: json!(2.5),
            want: Ok(json!(2)),
        },
        Case {
            name: "IntToBool",
            reason: "Bool to Int should be valid",
            transform: convert(json!({"toType": "int"})),
            input: json!(true),
            want: Ok(json!(1)),
        },
        Case {
            name: "JSONStringToObject",
            reason: "JSON string to Object should be valid",
            transform: convert(json!({"toType": "object", "format": "json"})),
            input: json!("{\"a\": 1}"),
            want: Ok(json!({"a": 1.0})),
        },
        Case {
            name: "JSONStringToArray",
            reason: "JSON string to Array should be valid",
            transform: convert(json!({"toType": "array", "format": "json"})),
            input: json!("[1]"),
            want: Ok(json!([1.0])),
        },
        Case {
            name: "StringToObjectMissingFormat",
            reason: "String to Object without format should be invalid",
            transform: convert(json!({"toType": "object"})),
            input: json!("{}"),
            want: Err("conversion from string to object is not supported with format none"),
        },
        Case {
            name: "StringToIntInvalidFormat",
            reason: "String to Int with invalid format should be invalid",
            transform: convert(json!({"toType": "int", "format": "wrong"})),
            input: json!("1"),
            want: Err("invalid format"),
        },
        Case {
            // GetConversionFunc alone ignores the format for the same type,
            // but the transform validates the format before it gets there.
            name: "IntToIntInvalidFormat",
            reason:
                "Through the whole transform an invalid format is refused even for the same type",
            transform: convert(json!({"toType": "int", "format": "wrong"})),
            input: json!(1),
            want: Err("invalid format"),
        },
        // Ours, from the conversions table.
        Case {
            name: "StringToIntDoesNotTrim",
            reason: "strconv.ParseInt refuses surrounding spaces",
            transform: convert(json!({"toType": "int64"})),
            input: json!(" 7"),
            want: Err("to int64"),
        },
        Case {
            name: "StringToIntQuantity",
            reason: "There is no string to int64 conversion with the quantity format",
            transform: convert(json!({"toType": "int64", "format": "quantity"})),
            input: json!("1Gi"),
            want: Err("not supported with format quantity"),
        },
        Case {
            name: "ObjectToObject",
            reason: "Objects are not converted, not even to object",
            transform: convert(json!({"toType": "object"})),
            input: json!({"a": 1}),
            want: Err("invalid input type"),
        },
        Case {
            name: "NullInput",
            reason: "null is not a convertible type",
            transform: convert(json!({"toType": "string"})),
            input: json!(null),
            want: Err("invalid input type <nil>"),
        },
        Case {
            name: "IntToBoolOnlyOne",
            reason: "Only 1 is true",
            transform: convert(json!({"toType": "bool"})),
            input: json!(2),
            want: Ok(json!(false)),
        },
        Case {
            name: "FloatToStringNoExponent",
            reason: "FormatFloat(f, 'f', -1) never writes an exponent",
            transform: convert(json!({"toType": "string"})),
            input: json!(1e21),
            want: Ok(json!("1000000000000000000000")),
        },
        Case {
            name: "JSONWrongShape",
            reason: "An array is not an object",
            transform: convert(json!({"toType": "object", "format": "json"})),
            input: json!("[1]"),
            want: Err("is an array, not object"),
        },
        Case {
            name: "JSONFormatForString",
            reason: "The json format applies to string to object or array only",
            transform: convert(json!({"toType": "float64", "format": "json"})),
            input: json!("1"),
            want: Err("not supported with format json"),
        },
    ]);
}

#[test]
fn resolve_transforms() {
    struct Pipeline {
        name: &'static str,
        reason: &'static str,
        transforms: Vec<Value>,
        input: Value,
        want: Value,
    }
    let cases = vec![
        Pipeline {
            name: "NoTransforms",
            reason: "No transforms pass the input through",
            transforms: vec![],
            input: json!({"spec": {"parameters": {"test": "test"}}}),
            want: json!({"spec": {"parameters": {"test": "test"}}}),
        },
        Pipeline {
            name: "MathTransformWithConversionToFloat64",
            reason: "A float64 times an integer is a float64",
            transforms: vec![
                convert(json!({"toType": "float64"})),
                math(json!({"multiply": 2})),
            ],
            input: json!(2),
            want: json!(4.0),
        },
        Pipeline {
            name: "MathTransformWithConversionToInt64",
            reason: "An int64 times an integer is an int64",
            transforms: vec![
                convert(json!({"toType": "int64"})),
                math(json!({"multiply": 2})),
            ],
            input: json!(2),
            want: json!(4),
        },
    ];
    for c in cases {
        let got = transform::apply_all(&c.transforms, c.input);
        assert_eq!(got, Ok(c.want), "{}: {}", c.name, c.reason);
    }
}

#[test]
fn transform_type_is_required() {
    let got = transform::apply(&json!({"map": {"a": "b"}}), json!("a"));
    assert!(
        got.is_err(),
        "Crossplane's Transform.type has no default: {got:?}"
    );
}

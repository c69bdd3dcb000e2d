//! Transforms: `map`, `match`, `math`, `string` and `convert`, resolved as
//! Crossplane v1.20 resolves them, errors included.
//!
//! Values are typed as Go sees them in an unstructured object: a JSON
//! integer is an int64, any other number a float64. Transforms keep Go's
//! types, so a `map` or `match` result, or JSON parsed by `convert`, holds
//! float64s (as `encoding/json` decodes into `interface{}`), and a later
//! `%d` prints `%!d(float64=5)` exactly as Crossplane's would. The patch
//! that writes the result turns whole float64s back into integers, as
//! serialising to the API server does.

use base64::Engine;
use regex::Regex;
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256, Sha512};

use crate::gofmt;
use crate::quantity;

fn field<'a>(t: &'a Value, name: &str) -> Option<&'a Value> {
    t.get(name).filter(|v| !v.is_null())
}

fn str_field<'a>(t: &'a Value, name: &str) -> Option<&'a str> {
    field(t, name).and_then(Value::as_str)
}

/// The transform's type. Crossplane requires it (the schema has no
/// default), so a transform without one has the empty type.
pub fn kind(t: &Value) -> &str {
    str_field(t, "type").unwrap_or("")
}

/// A regex error on one line: the regex crate's message spans several
/// (pattern, caret, reason), which reads badly in a condition.
pub fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| text.lines().map(str::trim).collect::<Vec<_>>().join(" "))
}

/// The `string` transform's `convert` values.
pub const STRING_CONVERTS: &[&str] = &[
    "ToUpper",
    "ToLower",
    "ToBase64",
    "FromBase64",
    "ToJson",
    "ToSha1",
    "ToSha256",
    "ToSha512",
    "ToAdler32",
];

/// The `convert` transform's `toType` values.
pub const CONVERT_TYPES: &[&str] = &[
    "string", "bool", "int", "int64", "float64", "object", "array",
];

/// The `convert` transform's `format` values.
pub const CONVERT_FORMATS: &[&str] = &["none", "quantity", "json"];

/// Applies one transform to a value.
pub fn apply(t: &Value, input: Value) -> Result<Value, String> {
    let kind = kind(t);
    // Each type needs its settings object; Crossplane checks before it runs.
    let settings = || {
        field(t, kind)
            .ok_or_else(|| format!("{kind}: given transform type {kind} requires configuration"))
    };
    match kind {
        "map" => map(settings()?, input),
        "match" => matching(settings()?, input),
        "math" => math(settings()?, input),
        "string" => string(settings()?, input).map(Value::String),
        "convert" => convert(settings()?, input),
        "" => Err(
            "the transform has no type; set type to one of map, match, math, string, convert"
                .into(),
        ),
        other => Err(format!(
            "unknown transform type {other:?}; expected map, match, math, string or convert"
        )),
    }
}

/// Applies transforms in order; an error names the transform by index.
pub fn apply_all(transforms: &[Value], mut value: Value) -> Result<Value, String> {
    for (i, t) in transforms.iter().enumerate() {
        value = apply(t, value).map_err(|e| format!("transform {i} ({}): {e}", kind(t)))?;
    }
    Ok(value)
}

/// A JSON value as Go's `json.Unmarshal` into `interface{}` holds it:
/// every number a float64.
pub fn go_decoded(v: &Value) -> Value {
    match v {
        Value::Number(n) if !n.is_f64() => n
            .as_f64()
            .and_then(Number::from_f64)
            .map_or(Value::Null, Value::Number),
        Value::Array(a) => Value::Array(a.iter().map(go_decoded).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), go_decoded(v)))
                .collect::<Map<String, Value>>(),
        ),
        other => other.clone(),
    }
}

fn float(f: f64) -> Result<Value, String> {
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| format!("{} cannot be written as JSON", gofmt::float_decimal(f)))
}

/// An int64 in Go's sense: a JSON integer that fits.
fn as_int64(v: &Value) -> Option<i64> {
    v.as_i64().filter(|_| v.is_i64())
}

/// A float64 in Go's sense: any other JSON number.
fn as_float64(v: &Value) -> Option<f64> {
    v.as_f64().filter(|_| v.is_number() && !v.is_i64())
}

// === map ===

fn map(table: &Value, input: Value) -> Result<Value, String> {
    let table = table
        .as_object()
        .ok_or("map: the map transform needs a map of input to output")?;
    // Only strings are keys: a number is not looked up as its text.
    let Value::String(key) = &input else {
        return Err(format!(
            "map: input must be a string, not {}",
            type_name(&input)
        ));
    };
    table
        .get(key)
        .map(go_decoded)
        .ok_or_else(|| format!("map: key {key:?} is not in the map"))
}

// === match ===

fn matching(settings: &Value, input: Value) -> Result<Value, String> {
    let patterns = match field(settings, "patterns") {
        None => &[][..],
        Some(Value::Array(p)) => p.as_slice(),
        Some(_) => return Err("match: patterns must be a list".into()),
    };
    for (i, p) in patterns.iter().enumerate() {
        // The schema defaults a pattern's type to literal.
        let kind = str_field(p, "type").unwrap_or("literal");
        let at = |e: String| format!("match: cannot match pattern {i}: {e}");
        let hit = match kind {
            "literal" => {
                let literal = str_field(p, "literal")
                    .ok_or_else(|| at("literal is required by type literal".into()))?;
                match &input {
                    Value::String(s) => s == literal,
                    other => {
                        return Err(at(format!(
                            "unsupported input type {}",
                            gofmt::type_name(other)
                        )))
                    }
                }
            }
            "regexp" => {
                let pattern = str_field(p, "regexp")
                    .ok_or_else(|| at("regexp is required by type regexp".into()))?;
                // Compiled before the input is looked at, as in Crossplane.
                let re = Regex::new(pattern)
                    .map_err(|e| at(format!("invalid regexp {pattern:?}: {}", regex_error(&e))))?;
                match &input {
                    Value::String(s) => re.is_match(s),
                    Value::Null => return Err(at("unsupported input type null".into())),
                    other => {
                        return Err(at(format!(
                            "unsupported input type {}",
                            gofmt::type_name(other)
                        )))
                    }
                }
            }
            other => {
                return Err(format!(
                    "match: pattern {i} has unknown type {other:?}; expected literal or regexp"
                ))
            }
        };
        if hit {
            return Ok(field(p, "result").map(go_decoded).unwrap_or(Value::Null));
        }
    }
    let fallback = field(settings, "fallbackValue");
    match str_field(settings, "fallbackTo").unwrap_or("Value") {
        "Input" if fallback.is_some() => {
            Err("match: cannot set both a fallback value and the fallback to input flag".into())
        }
        "Input" => Ok(input),
        "Value" => Ok(fallback.map(go_decoded).unwrap_or(Value::Null)),
        other => Err(format!(
            "match: unknown fallbackTo {other:?}; expected Value or Input"
        )),
    }
}

// === math ===

fn math(settings: &Value, input: Value) -> Result<Value, String> {
    // The schema defaults the type to Multiply.
    let kind = str_field(settings, "type").unwrap_or("Multiply");
    // The operands are int64 in Crossplane's API: 0.5 or "2" is refused.
    let operand = |name: &str| -> Result<i64, String> {
        match field(settings, name) {
            None => Err(format!("math: type {kind} needs {name}")),
            Some(v) => as_int64(v).ok_or_else(|| format!("math: {name} must be an integer")),
        }
    };
    // The settings are checked before the input, as Crossplane validates first.
    let (name, n) = match kind {
        "Multiply" => ("multiply", operand("multiply")?),
        "ClampMin" => ("clampMin", operand("clampMin")?),
        "ClampMax" => ("clampMax", operand("clampMax")?),
        other => {
            return Err(format!(
                "math: unknown type {other:?}; expected Multiply, ClampMin or ClampMax"
            ))
        }
    };
    let (int, flt) = (as_int64(&input), as_float64(&input));
    if int.is_none() && flt.is_none() {
        return Err(format!(
            "math: input must be a number, not {}",
            type_name(&input)
        ));
    }
    match name {
        // int64 times int64 wraps on overflow, as Go's does; a float64
        // input gives a float64.
        "multiply" => match int {
            Some(i) => Ok(Value::Number(Number::from(i.wrapping_mul(n)))),
            None => float(flt.unwrap_or(0.0) * n as f64),
        },
        // Clamps compare the input truncated to an integer, and return
        // either the clamp (an int64) or the input untouched: ClampMax 3
        // keeps 3.5, since int64(3.5) is not above 3.
        _ => {
            let truncated = int.unwrap_or_else(|| flt.unwrap_or(0.0) as i64);
            let clamp = if name == "clampMin" {
                truncated < n
            } else {
                truncated > n
            };
            Ok(if clamp {
                Value::Number(Number::from(n))
            } else {
                input
            })
        }
    }
}

// === hashes ===

/// SHA-1 (FIPS 180-4), written out for `ToSha1`: Crossplane offers it for
/// names, not security, and thirty lines beat a new dependency.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut message = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bit_len.to_be_bytes());
    for chunk in message.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in chunk.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (slot, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *slot = slot.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (i, word) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// Adler-32, written out because no small maintained crate is worth a dependency for eight lines.
fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for byte in data {
        a = (a + u32::from(*byte)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

// === string ===

/// The text string transforms work on: Crossplane formats any input with
/// Go's `%v`, so a number or a boolean is transformed as its text.
fn as_text(input: &Value) -> String {
    gofmt::plain(input)
}

/// The bytes Crossplane hashes: a string as is, anything else as JSON.
fn hash_input(input: &Value) -> Vec<u8> {
    match input {
        Value::String(s) => s.as_bytes().to_vec(),
        other => gofmt::go_json(other).into_bytes(),
    }
}

/// Upper or lower case rune by rune, as Go's `strings.ToUpper` and
/// `ToLower` map each rune on its own: `ß` stays `ß` and a final sigma
/// is `σ`, where Rust's string methods would give `SS` and `ς`.
fn map_runes(s: &str, upper: bool) -> String {
    s.chars()
        .map(|c| {
            // The one rune whose lower case is two runes; Go takes `i`.
            if !upper && c == '\u{130}' {
                return 'i';
            }
            let mut mapped = if upper {
                c.to_uppercase().collect::<Vec<_>>()
            } else {
                c.to_lowercase().collect::<Vec<_>>()
            };
            // Go has no multi-rune mappings: such a rune stays as it is.
            if mapped.len() == 1 {
                mapped.pop().unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

/// Bytes as the string Crossplane would write: Go keeps invalid UTF-8 in
/// the string and `encoding/json` writes each bad byte as U+FFFD.
fn go_string(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                out.push('\u{fffd}');
                rest = &bad[1..];
            }
        }
    }
    out
}

/// Go's `base64.StdEncoding`: padding required, trailing bits not checked,
/// and line breaks ignored.
fn from_base64(s: &str) -> Result<String, String> {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireCanonical),
    );
    let cleaned: String = s.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    engine
        .decode(cleaned)
        .map(|b| go_string(&b))
        .map_err(|e| format!("string: FromBase64: the input is not base64: {e}"))
}

fn string(settings: &Value, input: Value) -> Result<String, String> {
    // The schema defaults the type to Format.
    let kind = str_field(settings, "type").unwrap_or("Format");
    let needs = |name: &str| format!("string: string transform of type {kind} {name} is not set");
    match kind {
        "Format" => {
            let fmt = str_field(settings, "fmt").ok_or_else(|| needs("fmt"))?;
            Ok(gofmt::sprintf(fmt, &[input]))
        }
        "Convert" => {
            let how = str_field(settings, "convert").ok_or_else(|| needs("convert"))?;
            let engine = base64::engine::general_purpose::STANDARD;
            Ok(match how {
                "ToUpper" => map_runes(&as_text(&input), true),
                "ToLower" => map_runes(&as_text(&input), false),
                "ToBase64" => engine.encode(as_text(&input)),
                "FromBase64" => from_base64(&as_text(&input))?,
                "ToJson" => gofmt::go_json(&input),
                "ToSha1" => hex::encode(sha1(&hash_input(&input))),
                "ToSha256" => hex::encode(Sha256::digest(hash_input(&input))),
                "ToSha512" => hex::encode(Sha512::digest(hash_input(&input))),
                "ToAdler32" => adler32(&hash_input(&input)).to_string(),
                other => {
                    return Err(format!(
                        "string: unknown convert {other:?}; expected {}",
                        STRING_CONVERTS.join(", ")
                    ))
                }
            })
        }
        "TrimPrefix" | "TrimSuffix" => {
            let trim = str_field(settings, "trim").ok_or_else(|| needs("trim"))?;
            let s = as_text(&input);
            let out = if kind == "TrimPrefix" {
                s.strip_prefix(trim)
            } else {
                s.strip_suffix(trim)
            };
            Ok(out.unwrap_or(&s).to_string())
        }
        "Regexp" => {
            let re_settings = field(settings, "regexp").ok_or_else(|| needs("regexp"))?;
            let pattern = str_field(re_settings, "match").ok_or("string: regexp.match is required")?;
            let group = match field(re_settings, "group") {
                None => 0,
                Some(g) => g
                    .as_u64()
                    .and_then(|g| usize::try_from(g).ok())
                    .ok_or("string: regexp.group must be a non-negative integer")?,
            };
            let re = Regex::new(pattern).map_err(|e| {
                format!("string: invalid regexp {pattern:?}: {}", regex_error(&e))
            })?;
            let s = as_text(&input);
            let caps = re
                .captures(&s)
                .ok_or_else(|| format!("string: regexp {pattern:?} does not match {s:?}"))?;
            if group >= caps.len() {
                return Err(format!("string: regexp {pattern:?} has no group {group}"));
            }
            // A group that took no part in the match is the empty string in Go.
            Ok(caps.get(group).map_or("", |m| m.as_str()).to_string())
        }
        "Join" => {
            let join = field(settings, "join").ok_or_else(|| needs("join"))?;
            let separator = str_field(join, "separator").ok_or("string: join.separator is required")?;
            let items = input.as_array().ok_or_else(|| {
                format!(
                    "string: cannot join non-array values: Join needs an array input, not {}",
                    type_name(&input)
                )
            })?;
            Ok(items.iter().map(gofmt::plain).collect::<Vec<_>>().join(separator))
        }
        other => Err(format!(
            "string: unknown type {other:?}; expected Format, Convert, TrimPrefix, TrimSuffix, Regexp or Join"
        )),
    }
}

// === convert ===

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// `strconv.ParseFloat`'s decimal forms: Rust's parser takes the same
/// digits, signs, exponents, `inf` and `nan`, but also nothing else.
fn parse_float(s: &str) -> Option<f64> {
    let f: f64 = s.parse().ok()?;
    // Go reports an out-of-range literal such as 1e400 as an error.
    let literal_infinite = s
        .trim_start_matches(['+', '-'])
        .to_ascii_lowercase()
        .starts_with("inf");
    (f.is_finite() || literal_infinite).then_some(f)
}

fn convert(settings: &Value, input: Value) -> Result<Value, String> {
    // Crossplane validates the settings before it looks at the input.
    let format = match field(settings, "format") {
        None => "none",
        Some(Value::String(f)) if CONVERT_FORMATS.contains(&f.as_str()) => f.as_str(),
        Some(other) => return Err(format!("convert: invalid format {}", gofmt::go_json(other))),
    };
    let to = match str_field(settings, "toType") {
        Some(t) if CONVERT_TYPES.contains(&t) => t,
        Some(t) => {
            return Err(format!(
                "convert: unknown toType {t:?}; expected string, bool, int, int64, float64, object or array"
            ))
        }
        None => return Err("convert: toType is required".into()),
    };
    let to = if to == "int" { "int64" } else { to };
    // Crossplane converts only scalars: objects, arrays and null are
    // refused whatever the target type.
    let from = match &input {
        Value::String(_) => "string",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() => "int64",
        Value::Number(_) => "float64",
        other => {
            return Err(format!(
                "convert: invalid input type {}",
                gofmt::type_name(other)
            ))
        }
    };
    // The same type is no conversion at all, whatever the format.
    if from == to {
        return Ok(input);
    }
    let unsupported =
        || format!("convert: conversion from {from} to {to} is not supported with format {format}");
    let cannot = |why: &str| {
        format!(
            "convert: cannot convert {} {} to {to}: {why}",
            type_name(&input),
            compact(&input)
        )
    };
    let s = input.as_str().unwrap_or_default();
    let i = as_int64(&input).unwrap_or_default();
    let f = as_float64(&input).unwrap_or_default();
    let b = input.as_bool().unwrap_or_default();
    match (from, to, format) {
        ("string", "int64", "none") => s
            .parse::<i64>()
            .map(|n| Value::Number(Number::from(n)))
            .map_err(|_| cannot("invalid syntax for int64")),
        ("string", "bool", "none") => parse_bool(s)
            .map(Value::Bool)
            .ok_or_else(|| cannot("invalid syntax for bool")),
        ("string", "float64", "none") => {
            float(parse_float(s).ok_or_else(|| cannot("invalid syntax for float64"))?)
        }
        ("string", "float64", "quantity") => {
            float(quantity::approximate_f64(s).map_err(|e| cannot(&e.to_string()))?)
        }
        ("string", "object" | "array", "json") => {
            let parsed: Value = serde_json::from_str(s)
                .map_err(|e| cannot(&format!("the input is not JSON: {e}")))?;
            match (&parsed, to) {
                // JSON null decodes to a nil map or slice.
                (Value::Null, _) | (Value::Object(_), "object") | (Value::Array(_), "array") => {
                    Ok(go_decoded(&parsed))
                }
                (other, _) => Err(cannot(&format!(
                    "the JSON input is {}, not {to}",
                    type_name(other)
                ))),
            }
        }
        ("int64", "string", "none") => Ok(Value::String(i.to_string())),
        ("int64", "bool", "none") => Ok(Value::Bool(i == 1)),
        ("int64", "float64", "none") => float(i as f64),
        ("bool", "string", "none") => Ok(Value::String(b.to_string())),
        ("bool", "int64", "none") => Ok(Value::Number(Number::from(i64::from(b)))),
        ("bool", "float64", "none") => float(if b { 1.0 } else { 0.0 }),
        // strconv.FormatFloat(f, 'f', -1, 64): shortest, never an exponent.
        ("float64", "string", "none") => Ok(Value::String(gofmt::float_decimal(f))),
        // Go truncates towards zero.
        ("float64", "int64", "none") => Ok(Value::Number(Number::from(f as i64))),
        ("float64", "bool", "none") => Ok(Value::Bool(f == 1.0)),
        _ => Err(unsupported()),
    }
}

/// A value for a message, cut short if it is long.
fn compact(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// `a string`, `a number` and so on, for messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::sha1;

    #[test]
    fn sha1_matches_the_standard_vectors() {
        assert_eq!(
            hex::encode(sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex::encode(sha1(b"")),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        assert_eq!(
            hex::encode(sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
    }
}

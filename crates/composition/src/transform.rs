//! Transforms: `map`, `match`, `math`, `string` and `convert`, with
//! Crossplane's field names and defaults.

use base64::Engine;
use regex::Regex;
use serde_json::{Number, Value};
use sha2::{Digest, Sha256, Sha512};

use crate::gofmt;

fn field<'a>(t: &'a Value, name: &str) -> Option<&'a Value> {
    t.get(name).filter(|v| !v.is_null())
}

fn str_field<'a>(t: &'a Value, name: &str) -> Option<&'a str> {
    field(t, name).and_then(Value::as_str)
}

/// The transform's type, as written or as implied by its one settings field.
pub fn kind(t: &Value) -> &str {
    if let Some(k) = str_field(t, "type") {
        return k;
    }
    ["map", "match", "math", "string", "convert"]
        .into_iter()
        .find(|k| field(t, k).is_some())
        .unwrap_or("")
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

/// Applies one transform to a value.
pub fn apply(t: &Value, input: Value) -> Result<Value, String> {
    match kind(t) {
        "map" => map(t, input),
        "match" => matching(t, input),
        "math" => math(t, input),
        "string" => string(t, input),
        "convert" => convert(t, input),
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

fn map(t: &Value, input: Value) -> Result<Value, String> {
    let table = field(t, "map")
        .and_then(Value::as_object)
        .ok_or("map: the map transform needs a map of input to output")?;
    let key = match &input {
        Value::String(s) => s.clone(),
        Value::Number(_) | Value::Bool(_) => input.to_string(),
        other => {
            return Err(format!(
                "map: input must be a string, not {}",
                type_name(other)
            ))
        }
    };
    table
        .get(&key)
        .cloned()
        .ok_or_else(|| format!("map: key {key:?} is not in the map"))
}

fn matching(t: &Value, input: Value) -> Result<Value, String> {
    let settings = field(t, "match").ok_or("match: the match transform needs settings")?;
    let patterns = field(settings, "patterns")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, p) in patterns.iter().enumerate() {
        let kind = str_field(p, "type").unwrap_or("literal");
        let hit = match kind {
            "literal" => {
                let literal = str_field(p, "literal")
                    .ok_or(format!("match: pattern {i} of type literal needs literal"))?;
                input.as_str() == Some(literal)
            }
            "regexp" => {
                let pattern = str_field(p, "regexp")
                    .ok_or(format!("match: pattern {i} of type regexp needs regexp"))?;
                let re = Regex::new(pattern).map_err(|e| {
                    format!(
                        "match: pattern {i}: invalid regexp {pattern:?}: {}",
                        regex_error(&e)
                    )
                })?;
                input.as_str().is_some_and(|s| re.is_match(s))
            }
            other => {
                return Err(format!(
                    "match: pattern {i} has unknown type {other:?}; expected literal or regexp"
                ))
            }
        };
        if hit {
            return Ok(p.get("result").cloned().unwrap_or(Value::Null));
        }
    }
    match str_field(settings, "fallbackTo").unwrap_or("Value") {
        "Input" => Ok(input),
        "Value" => Ok(settings
            .get("fallbackValue")
            .cloned()
            .unwrap_or(Value::Null)),
        other => Err(format!(
            "match: unknown fallbackTo {other:?}; expected Value or Input"
        )),
    }
}

fn number(n: f64, integer: bool) -> Value {
    if integer && n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::Number(Number::from(n as i64))
    } else {
        Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

fn math(t: &Value, input: Value) -> Result<Value, String> {
    let settings = field(t, "math").ok_or("math: the math transform needs settings")?;
    let x = input
        .as_f64()
        .ok_or_else(|| format!("math: input must be a number, not {}", type_name(&input)))?;
    let integer = input.is_i64() || input.is_u64();
    let kind = str_field(settings, "type").unwrap_or("Multiply");
    let operand = |name: &str| {
        field(settings, name)
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("math: type {kind} needs a number in {name}"))
    };
    match kind {
        "Multiply" => {
            let m = field(settings, "multiply").ok_or("math: type Multiply needs multiply")?;
            let f = m.as_f64().ok_or("math: multiply must be a number")?;
            Ok(number(x * f, integer && (m.is_i64() || m.is_u64())))
        }
        "ClampMin" => Ok(number(x.max(operand("clampMin")?), integer)),
        "ClampMax" => Ok(number(x.min(operand("clampMax")?), integer)),
        other => Err(format!(
            "math: unknown type {other:?}; expected Multiply, ClampMin or ClampMax"
        )),
    }
}

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

fn string(t: &Value, input: Value) -> Result<Value, String> {
    let settings = field(t, "string").ok_or("string: the string transform needs settings")?;
    let kind = str_field(settings, "type").unwrap_or(if field(settings, "fmt").is_some() {
        "Format"
    } else {
        ""
    });
    match kind {
        "Format" => {
            let fmt = str_field(settings, "fmt").ok_or("string: type Format needs fmt")?;
            Ok(Value::String(gofmt::sprintf(fmt, &[input])))
        }
        "Convert" => {
            let how = str_field(settings, "convert").ok_or("string: type Convert needs convert")?;
            let engine = base64::engine::general_purpose::STANDARD;
            let out = match how {
                "ToUpper" => as_text(&input).to_uppercase(),
                "ToLower" => as_text(&input).to_lowercase(),
                "ToBase64" => engine.encode(as_text(&input)),
                "FromBase64" => {
                    let bytes = engine
                        .decode(as_text(&input))
                        .map_err(|e| format!("string: FromBase64: the input is not base64: {e}"))?;
                    String::from_utf8(bytes).map_err(|_| "string: FromBase64: the decoded bytes are not UTF-8".to_string())?
                }
                "ToJson" => gofmt::go_json(&input),
                "ToSha1" => hex::encode(sha1(&hash_input(&input))),
                "ToSha256" => hex::encode(Sha256::digest(hash_input(&input))),
                "ToSha512" => hex::encode(Sha512::digest(hash_input(&input))),
                "ToAdler32" => adler32(&hash_input(&input)).to_string(),
                other => {
                    return Err(format!(
                        "string: unknown convert {other:?}; expected {}", STRING_CONVERTS.join(", ")
                    ))
                }
            };
            Ok(Value::String(out))
        }
        "TrimPrefix" | "TrimSuffix" => {
            let trim = str_field(settings, "trim").ok_or(format!("string: type {kind} needs trim"))?;
            let s = as_text(&input);
            let out = if kind == "TrimPrefix" { s.strip_prefix(trim) } else { s.strip_suffix(trim) };
            Ok(Value::String(out.unwrap_or(&s).to_string()))
        }
        "Regexp" => {
            let re_settings = field(settings, "regexp").ok_or("string: type Regexp needs regexp")?;
            let pattern = str_field(re_settings, "match").ok_or("string: regexp needs match")?;
            let re = Regex::new(pattern).map_err(|e| format!("string: invalid regexp {pattern:?}: {}", regex_error(&e)))?;
            let s = as_text(&input);
            let caps = re.captures(&s).ok_or_else(|| format!("string: regexp {pattern:?} does not match {s:?}"))?;
            let group = field(re_settings, "group").and_then(Value::as_u64).unwrap_or(0) as usize;
            caps.get(group)
                .map(|m| Value::String(m.as_str().to_string()))
                .ok_or_else(|| format!("string: regexp {pattern:?} has no group {group}"))
        }
        "Join" => {
            let separator = field(settings, "join").and_then(|j| str_field(j, "separator")).unwrap_or("");
            let items = input.as_array().ok_or_else(|| format!("string: Join needs an array input, not {}", type_name(&input)))?;
            Ok(Value::String(items.iter().map(gofmt::plain).collect::<Vec<_>>().join(separator)))
        }
        "" => Err("string: set type to Format, Convert, TrimPrefix, TrimSuffix, Regexp or Join".into()),
        other => Err(format!("string: unknown type {other:?}; expected Format, Convert, TrimPrefix, TrimSuffix, Regexp or Join")),
    }
}

/// Parses a Kubernetes quantity (`1Gi`, `500m`, `2k`, `1.5`) to a number.
/// Hand-written: the Rust Kubernetes crates carry quantities as strings only.
pub fn quantity(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a quantity such as 1Gi, 500m or 2"))?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        other => return Err(format!("{s:?} has an unknown quantity suffix {other:?}")),
    };
    Ok(n * factor)
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn convert(t: &Value, input: Value) -> Result<Value, String> {
    let settings = field(t, "convert").ok_or("convert: the convert transform needs settings")?;
    let to = str_field(settings, "toType").ok_or("convert: toType is required")?;
    let format = str_field(settings, "format").unwrap_or("none");
    let mismatch = || {
        format!(
            "convert: cannot convert {} {} to {to}",
            type_name(&input),
            compact(&input)
        )
    };
    match (to, &input) {
        ("string", Value::String(_)) => Ok(input.clone()),
        // Go's strconv: floats in their shortest decimal form, so 2.0 is "2".
        ("string", Value::Number(n)) if n.is_f64() => Ok(Value::String(gofmt::float_decimal(n.as_f64().unwrap_or(0.0)))),
        ("string", Value::Number(_) | Value::Bool(_)) => Ok(Value::String(input.to_string())),
        ("string", Value::Object(_) | Value::Array(_)) if format == "json" => Ok(Value::String(input.to_string())),
        ("bool", Value::Bool(_)) => Ok(input.clone()),
        ("bool", Value::String(s)) => parse_bool(s).map(Value::Bool).ok_or_else(mismatch),
        // Crossplane: only 1 is true.
        ("bool", Value::Number(n)) => Ok(Value::Bool(n.as_f64() == Some(1.0))),
        ("int" | "int64", Value::Number(n)) => Ok(Value::Number(Number::from(n.as_f64().unwrap_or(0.0) as i64))),
        ("int" | "int64", Value::Bool(b)) => Ok(Value::Number(Number::from(i64::from(*b)))),
        ("int" | "int64", Value::String(s)) => {
            if format == "quantity" {
                return Ok(Value::Number(Number::from(quantity(s).map_err(|e| format!("convert: {e}"))?.ceil() as i64)));
            }
            s.trim().parse::<i64>().map(|n| Value::Number(Number::from(n))).map_err(|_| mismatch())
        }
        ("float64", Value::Number(n)) => Ok(number(n.as_f64().unwrap_or(0.0), false)),
        ("float64", Value::Bool(b)) => Ok(number(f64::from(u8::from(*b)), false)),
        ("float64", Value::String(s)) => {
            let f = if format == "quantity" { quantity(s).map_err(|e| format!("convert: {e}"))? } else { s.trim().parse::<f64>().map_err(|_| mismatch())? };
            Ok(number(f, false))
        }
        ("object" | "array", Value::String(s)) if format == "json" => {
            let v: Value = serde_json::from_str(s).map_err(|e| format!("convert: the input is not JSON: {e}"))?;
            let ok = if to == "object" { v.is_object() } else { v.is_array() };
            if ok {
                Ok(v)
            } else {
                Err(format!("convert: the JSON input is {}, not {to}", type_name(&v)))
            }
        }
        ("object", Value::Object(_)) | ("array", Value::Array(_)) => Ok(input.clone()),
        ("string" | "bool" | "int" | "int64" | "float64" | "object" | "array", _) => Err(mismatch()),
        (other, _) => Err(format!("convert: unknown toType {other:?}; expected string, bool, int, int64, float64, object or array")),
    }
}

fn compact(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(60).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
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

//! The part of Go's `fmt.Sprintf` that Crossplane string transforms and
//! combine patches reach: the verbs `%s %v %d %f %F %e %E %g %G %t %q %x %X
//! %o %b %c %T %%`, the flags `- + # 0` and space, width and precision, and
//! Go's `%!verb(type=value)` / `%!(EXTRA …)` / `%!v(MISSING)` markers, so a
//! Composition written for Crossplane formats the same here.
//!
//! Values are what Crossplane sees in an unstructured object: strings,
//! int64 (JSON integers), float64 (other JSON numbers), bools, nil,
//! `[]interface {}` and `map[string]interface {}`.
//!
//! Hand-written: no Rust crate implements Go's verbs.

use serde_json::{Number, Value};

/// Text of a value as Go's `%v` prints it: `[a b]` for arrays, `map[k:v]`
/// (keys sorted) for objects, `<nil>` for null, floats in `%g` form.
pub fn plain(v: &Value) -> String {
    format_one(&Spec::default(), 'v', v)
}

/// A float as Go's `strconv.FormatFloat(f, 'f', -1, 64)` writes it: the
/// shortest decimal that reads back the same, never with an exponent.
pub fn float_decimal(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    // Rust's `{}` for f64 is the shortest round-trip decimal, without exponent.
    let s = format!("{f}");
    if s == "-0" {
        "-0".into()
    } else {
        s
    }
}

/// JSON as Go's `json.Marshal` writes it, which is what Crossplane hashes
/// and what `ToJson` returns: object keys sorted, `<`, `>`, `&`, U+2028 and
/// U+2029 escaped, floats without a fraction written as integers (`2`, not
/// `2.0`), and exponents only below 1e-6 or from 1e21 (`1e+21`, `1e-7`).
pub fn go_json(v: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, v);
    out
}

fn write_json(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) if n.is_f64() => out.push_str(&json_float(n.as_f64().unwrap_or(0.0))),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => json_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, k);
                out.push(':');
                write_json(out, &map[k]);
            }
            out.push('}');
        }
    }
}

/// A float64 as `encoding/json` writes it.
fn json_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let (digits, exp) = shortest(f);
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let mantissa = if rest.is_empty() {
            first.to_string()
        } else {
            format!("{first}.{rest}")
        };
        let sign = if f < 0.0 { "-" } else { "" };
        // Go writes at least two exponent digits, then drops the zero of
        // `e-0N` (but keeps `e+0N`).
        let exp = if (-9..0).contains(&exp) {
            format!("e-{}", -exp)
        } else {
            exponent(exp, false)
        };
        return format!("{sign}{mantissa}{exp}");
    }
    float_decimal(f)
}

fn json_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => {
                let b = c as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[b >> 4]));
                out.push(char::from(HEX[b & 0xf]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Flags, width and precision of one verb.
#[derive(Debug, Clone, Default)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

/// Formats `args` into `fmt` as Go's `fmt.Sprintf` does.
pub fn sprintf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let chars: Vec<char> = fmt.chars().collect();
    let mut i = 0;
    let mut next = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while i < chars.len() {
            match chars[i] {
                '-' => {
                    spec.minus = true;
                    // Zero padding is only ever to the left.
                    spec.zero = false;
                }
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = !spec.minus,
                _ => break,
            }
            i += 1;
        }
        let mut digits = String::new();
        while i < chars.len() && chars[i].is_ascii_digit() {
            digits.push(chars[i]);
            i += 1;
        }
        if !digits.is_empty() {
            spec.width = digits.parse().ok();
        }
        if i < chars.len() && chars[i] == '.' {
            i += 1;
            let mut digits = String::new();
            while i < chars.len() && chars[i].is_ascii_digit() {
                digits.push(chars[i]);
                i += 1;
            }
            spec.precision = Some(digits.parse().unwrap_or(0));
        }
        let Some(&verb) = chars.get(i) else {
            out.push_str("%!(NOVERB)");
            break;
        };
        i += 1;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        out.push_str(&format_one(&spec, verb, arg));
    }
    if next < args.len() {
        let extra: Vec<String> = args[next..].iter().map(typed).collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

/// Go's name for the type a value has in an unstructured object, as `%T`
/// prints it. Integers beyond int64 are float64, as Kubernetes decodes them.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if !n.is_i64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// `type=value`, as Go's error markers print an argument.
fn typed(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        other => format!("{}={}", type_name(other), plain(other)),
    }
}

fn bad_verb(verb: char, v: &Value) -> String {
    format!("%!{verb}({})", typed(v))
}

/// Pads to the width, counted in characters as Go counts runes.
fn pad(spec: &Spec, text: String, zero_ok: bool) -> String {
    let Some(width) = spec.width else {
        return text;
    };
    let len = text.chars().count();
    if len >= width {
        return text;
    }
    let fill = width - len;
    if spec.minus {
        format!("{text}{}", " ".repeat(fill))
    } else if spec.zero && zero_ok {
        format!("{}{text}", "0".repeat(fill))
    } else {
        format!("{}{text}", " ".repeat(fill))
    }
}

/// Pads a signed number: zeros go after the sign.
fn pad_number(spec: &Spec, sign: &str, body: String, zero_ok: bool) -> String {
    if spec.zero && zero_ok && !spec.minus {
        if let Some(width) = spec.width {
            let len = sign.chars().count() + body.chars().count();
            if len < width {
                return format!("{sign}{}{body}", "0".repeat(width - len));
            }
        }
    }
    pad(spec, format!("{sign}{body}"), false)
}

fn sign(spec: &Spec, negative: bool) -> &'static str {
    if negative {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    }
}

fn truncate(spec: &Spec, s: &str) -> String {
    match spec.precision {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_string(),
    }
}

/// Go's `strconv.Quote`.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => {
                if (c as u32) <= 0xffff {
                    out.push_str(&format!("\\u{:04x}", c as u32))
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32))
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn format_one(spec: &Spec, verb: char, v: &Value) -> String {
    if verb == 'T' {
        return pad(spec, type_name(v).to_string(), false);
    }
    match v {
        Value::Array(items) => {
            // Go formats each element with the same verb.
            let parts: Vec<String> = items.iter().map(|i| format_one(spec, verb, i)).collect();
            if matches!(
                verb,
                'v' | 's' | 'd' | 'q' | 'x' | 'X' | 'f' | 'g' | 'e' | 't'
            ) {
                format!("[{}]", parts.join(" "))
            } else {
                bad_verb(verb, v)
            }
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        format_one(spec, verb, &Value::String((*k).clone())),
                        format_one(spec, verb, &map[*k])
                    )
                })
                .collect();
            format!("map[{}]", parts.join(" "))
        }
        Value::Null => match verb {
            'v' => pad(spec, "<nil>".into(), false),
            _ => bad_verb(verb, v),
        },
        Value::String(s) => match verb {
            'v' | 's' => pad(spec, truncate(spec, s), true),
            'q' => pad(spec, quote(&truncate(spec, s)), true),
            'x' | 'X' => {
                let bytes: String = truncate(spec, s);
                let mut hex = hex::encode(bytes.as_bytes());
                if verb == 'X' {
                    hex = hex.to_uppercase();
                }
                if spec.sharp && !hex.is_empty() {
                    hex = format!("{}{hex}", if verb == 'X' { "0X" } else { "0x" });
                }
                pad(spec, hex, true)
            }
            _ => bad_verb(verb, v),
        },
        Value::Bool(b) => match verb {
            'v' | 't' => pad(spec, b.to_string(), false),
            _ => bad_verb(verb, v),
        },
        Value::Number(n) => format_number(spec, verb, n, v),
    }
}

fn format_number(spec: &Spec, verb: char, n: &Number, v: &Value) -> String {
    if let Some(i) = n.as_i64().filter(|_| !n.is_f64()) {
        return format_integer(spec, verb, i128::from(i), v);
    }
    // Integers beyond int64 reach Crossplane as float64.
    let f = n.as_f64().unwrap_or(0.0);
    format_float(spec, verb, f, v)
}

fn format_integer(spec: &Spec, verb: char, i: i128, v: &Value) -> String {
    let negative = i < 0;
    let magnitude = i.unsigned_abs();
    let (mut body, prefix) = match verb {
        'd' | 'v' => (magnitude.to_string(), ""),
        'b' => (format!("{magnitude:b}"), if spec.sharp { "0b" } else { "" }),
        'o' => (format!("{magnitude:o}"), if spec.sharp { "0" } else { "" }),
        'x' => (format!("{magnitude:x}"), if spec.sharp { "0x" } else { "" }),
        'X' => (format!("{magnitude:X}"), if spec.sharp { "0X" } else { "" }),
        'c' => {
            return match u32::try_from(i).ok().and_then(char::from_u32) {
                Some(c) => pad(spec, c.to_string(), true),
                None => pad(spec, "\u{fffd}".into(), true),
            }
        }
        'q' => {
            return match u32::try_from(i).ok().and_then(char::from_u32) {
                Some(c) => pad(spec, format!("'{c}'"), true),
                None => bad_verb(verb, v),
            }
        }
        'f' | 'F' | 'e' | 'E' | 'g' | 'G' | 's' | 't' => return bad_verb(verb, v),
        _ => return bad_verb(verb, v),
    };
    if let Some(p) = spec.precision {
        // Precision is the minimum number of digits; `%.0d` of 0 prints nothing.
        if p == 0 && magnitude == 0 {
            body = String::new();
        } else if body.len() < p {
            body = format!("{}{body}", "0".repeat(p - body.len()));
        }
    }
    let lead = format!("{}{prefix}", sign(spec, negative));
    // With a precision, Go pads with spaces even under the 0 flag.
    pad_number(spec, &lead, body, spec.precision.is_none())
}

/// Digits and decimal exponent of the shortest representation of `f`:
/// `1234.5` is ("12345", 3), meaning 1.2345e3.
fn shortest(f: f64) -> (String, i32) {
    let s = format!("{:e}", f.abs());
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    (digits, exp.parse().unwrap_or(0))
}

fn exponent(exp: i32, upper: bool) -> String {
    let e = if upper { 'E' } else { 'e' };
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{e}{sign}{:02}", exp.abs())
}

/// `%e` with a given number of fraction digits.
fn fmt_e(f: f64, precision: usize, upper: bool) -> String {
    let s = format!("{:.*e}", precision, f.abs());
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    format!("{mantissa}{}", exponent(exp.parse().unwrap_or(0), upper))
}

/// `%g`: shortest digits (or `precision` significant ones), in `%e` form
/// when the exponent is below -4 or at least the precision (6 for the shortest).
fn fmt_g(f: f64, precision: Option<usize>, upper: bool) -> String {
    let f = f.abs();
    let (digits, exp, eprec) = match precision {
        None => {
            let (digits, exp) = shortest(f);
            (digits, exp, 6)
        }
        Some(p) => {
            let p = p.max(1);
            let s = format!("{:.*e}", p - 1, f);
            let (mantissa, e) = s.split_once('e').unwrap_or((&s, "0"));
            let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
            let trimmed = digits.trim_end_matches('0');
            let digits = if trimmed.is_empty() { "0" } else { trimmed }.to_string();
            (digits, e.parse().unwrap_or(0), p as i32)
        }
    };
    if f == 0.0 {
        return "0".into();
    }
    if exp < -4 || exp >= eprec {
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() {
            first.to_string()
        } else {
            format!("{first}.{rest}")
        };
        return format!("{mantissa}{}", exponent(exp, upper));
    }
    // Plain decimal with the same digits.
    if exp >= 0 {
        let int_len = (exp + 1) as usize;
        if digits.len() <= int_len {
            format!("{digits}{}", "0".repeat(int_len - digits.len()))
        } else {
            format!("{}.{}", &digits[..int_len], &digits[int_len..])
        }
    } else {
        format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
    }
}

fn format_float(spec: &Spec, verb: char, f: f64, v: &Value) -> String {
    if f.is_nan() || f.is_infinite() {
        // JSON cannot carry these, but Go's spelling costs nothing.
        let body = if f.is_nan() { "NaN" } else { "Inf" };
        let sign = if f.is_infinite() && f < 0.0 {
            "-"
        } else if spec.plus || (f.is_infinite() && !spec.space) {
            "+"
        } else if spec.space {
            " "
        } else {
            ""
        };
        return pad(spec, format!("{sign}{body}"), false);
    }
    let negative = f.is_sign_negative();
    let body = match verb {
        'f' | 'F' => format!("{:.*}", spec.precision.unwrap_or(6), f.abs()),
        'e' | 'E' => fmt_e(f, spec.precision.unwrap_or(6), verb == 'E'),
        'g' | 'G' => fmt_g(f, spec.precision, verb == 'G'),
        'v' => fmt_g(f, spec.precision, false),
        _ => return bad_verb(verb, v),
    };
    pad_number(spec, sign(spec, negative), body, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn go(fmt: &str, arg: Value) -> String {
        sprintf(fmt, &[arg])
    }

    #[test]
    fn formats_like_go() {
        // Expected values are Go's own (fmt's tests and `go run`).
        assert_eq!(go("%5s", json!("abc")), "  abc");
        assert_eq!(go("%-5s", json!("abc")), "abc  ");
        assert_eq!(go("%05s", json!("abc")), "00abc");
        assert_eq!(go("%0-5s", json!("abc")), "abc  ");
        assert_eq!(go("%.5s", json!("abcdefgh")), "abcde");
        assert_eq!(go("%20.5s", json!("qwertyuiop")), "               qwert");
        assert_eq!(go("%3d", json!(7)), "  7");
        assert_eq!(go("%-3d|", json!(7)), "7  |");
        assert_eq!(go("%03d", json!(-7)), "-07");
        assert_eq!(go("%+d", json!(5)), "+5");
        assert_eq!(go("%x", json!(255)), "ff");
        assert_eq!(go("%#x", json!(255)), "0xff");
        assert_eq!(go("%X", json!("hi")), "6869");
        assert_eq!(go("%o", json!(8)), "10");
        assert_eq!(go("%b", json!(5)), "101");
        assert_eq!(go("%.2f", json!(1.005)), "1.00");
        assert_eq!(go("%07.2f", json!(-1.0)), "-001.00");
        assert_eq!(go("%e", json!(1234.5678)), "1.234568e+03");
        assert_eq!(go("%g", json!(1234567.8)), "1.2345678e+06");
        assert_eq!(go("%v", json!(2.0)), "2");
        assert_eq!(go("%v", json!(2.5)), "2.5");
        assert_eq!(go("%v", json!(1000000.0)), "1e+06");
        assert_eq!(go("%v", json!(0.00001)), "1e-05");
        assert_eq!(go("%v", json!(123456.0)), "123456");
        assert_eq!(go("%v", json!([1, "a", null])), "[1 a <nil>]");
        assert_eq!(go("%v", json!({"b": 1, "a": true})), "map[a:true b:1]");
        assert_eq!(go("%q", json!("a\"b")), "\"a\\\"b\"");
        assert_eq!(go("%t", json!(true)), "true");
        assert_eq!(go("%T", json!(1)), "int64");
        assert_eq!(go("%T", json!([1])), "[]interface {}");
        assert_eq!(go("%d", json!("x")), "%!d(string=x)");
        assert_eq!(go("%s", json!(5)), "%!s(int64=5)");
        assert_eq!(go("%d", json!(2.5)), "%!d(float64=2.5)");
        assert_eq!(go("%s", Value::Null), "%!s(<nil>)");
        assert_eq!(go("%v", Value::Null), "<nil>");
        assert_eq!(sprintf("%s-%s", &[json!("a")]), "a-%!s(MISSING)");
        assert_eq!(sprintf("x", &[json!("a")]), "x%!(EXTRA string=a)");
        assert_eq!(sprintf("100%%", &[]), "100%");
        assert_eq!(float_decimal(2.0), "2");
        assert_eq!(float_decimal(1e21), "1000000000000000000000");
        assert_eq!(float_decimal(0.1), "0.1");
    }
}

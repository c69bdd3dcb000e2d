//! The subset of Go's `fmt.Sprintf` that Crossplane string transforms use
//! (`%s`, `%v`, `%d`, `%f`, `%.2f`, `%t`, `%q`, `%x`, `%%`), so Compositions
//! written for Crossplane format the same here. Hand-written: no Rust crate
//! implements Go's verbs.

use serde_json::Value;

/// Text of a value as `%v` and `%s` print it.
pub fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        other => other.to_string(),
    }
}

/// Formats `args` into `fmt`. Missing arguments print `%!v(MISSING)`, as in Go.
pub fn sprintf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    let mut next = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut precision: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut digits = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
            precision = digits.parse().ok();
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        let text = match verb {
            'd' => match arg
                .as_i64()
                .or_else(|| arg.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            {
                Some(n) => n.to_string(),
                None => format!("%!d({})", plain(arg)),
            },
            'f' | 'F' => match arg.as_f64() {
                Some(f) => format!("{f:.*}", precision.unwrap_or(6)),
                None => format!("%!f({})", plain(arg)),
            },
            't' => match arg.as_bool() {
                Some(b) => b.to_string(),
                None => format!("%!t({})", plain(arg)),
            },
            'q' => format!("{:?}", plain(arg)),
            'x' => match arg {
                Value::String(s) => hex::encode(s.as_bytes()),
                Value::Number(n) => n
                    .as_i64()
                    .map(|n| format!("{n:x}"))
                    .unwrap_or_else(|| n.to_string()),
                other => format!("%!x({other})"),
            },
            's' | 'v' => plain(arg),
            other => format!("%!{other}({})", plain(arg)),
        };
        out.push_str(&text);
    }
    out
}

//! `format` checks for CRD schemas, and the translation of `pattern`s from the
//! RE2 dialect kube-apiserver uses (Go's `regexp`) to the `regex` crate.
//!
//! Upstream checks string formats from a fixed list and ignores the rest; the
//! common ones are implemented here, unknown formats are accepted.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::Number;

/// `Some(ok)` for a format this module knows, `None` for formats it ignores.
pub(super) fn string_format_ok(format: &str, s: &str) -> Option<bool> {
    Some(match format {
        "date-time" | "datetime" => is_date_time(s),
        "date" => is_date(s.as_bytes()),
        "byte" => is_base64(s),
        "uuid" => is_uuid(s, None),
        "uuid3" => is_uuid(s, Some(b'3')),
        "uuid4" => is_uuid(s, Some(b'4')),
        "uuid5" => is_uuid(s, Some(b'5')),
        "ipv4" => s.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<Ipv6Addr>().is_ok(),
        "cidr" => is_cidr(s),
        "mac" => is_mac(s),
        _ => return None,
    })
}

/// Range checks for `int32`/`int64`, which upstream leaves to the typed Go structs.
pub(super) fn number_format_ok(format: &str, n: &Number) -> Option<bool> {
    let fits = |lo: f64, hi: f64| {
        if let Some(i) = n.as_i64() {
            return i as f64 >= lo && i as f64 <= hi;
        }
        if n.as_u64().is_some() {
            // Only u64 values above i64::MAX get here.
            return false;
        }
        n.as_f64()
            .is_some_and(|f| f.fract() == 0.0 && f >= lo && f <= hi)
    };
    Some(match format {
        "int32" => fits(f64::from(i32::MIN), f64::from(i32::MAX)),
        "int64" => fits(-9.223_372_036_854_776e18, 9.223_372_036_854_775e18),
        _ => return None,
    })
}

fn digits(bytes: &[u8]) -> Option<u32> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    bytes.iter().try_fold(0u32, |acc, b| {
        acc.checked_mul(10)?.checked_add(u32::from(b - b'0'))
    })
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Spelled with `matches!` so it builds on toolchains older than `u32::is_multiple_of`
/// without tripping clippy's suggestion to use it.
fn is_leap(year: u32) -> bool {
    matches!(year % 4, 0) && (!matches!(year % 100, 0) || matches!(year % 400, 0))
}

/// `YYYY-MM-DD`, a real calendar date.
fn is_date(b: &[u8]) -> bool {
    if b.len() != 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return false;
    }
    let (Some(year), Some(month), Some(day)) = (
        b.get(0..4).and_then(digits),
        b.get(5..7).and_then(digits),
        b.get(8..10).and_then(digits),
    ) else {
        return false;
    };
    (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month)
}

/// RFC 3339 date-time with a zone, as strfmt's `IsDateTime` accepts it
/// (case-insensitive `T` and `Z`, optional fractional seconds).
fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 || !is_date(&b[..10]) || !matches!(b[10], b'T' | b't') {
        return false;
    }
    let time = &b[11..];
    let field = |range: std::ops::Range<usize>| time.get(range).and_then(digits);
    let (Some(hour), Some(minute), Some(second)) = (field(0..2), field(3..5), field(6..8)) else {
        return false;
    };
    if time.get(2) != Some(&b':') || time.get(5) != Some(&b':') {
        return false;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return false;
    }
    let mut rest = &time[8..];
    if rest.first() == Some(&b'.') {
        let fraction = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if fraction == 0 {
            return false;
        }
        rest = &rest[1 + fraction..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => match (digits(&[*h1, *h2]), digits(&[*m1, *m2])) {
            (Some(h), Some(m)) => h <= 23 && m <= 59,
            _ => false,
        },
        _ => false,
    }
}

/// Standard base64 with padding, as Go's `base64.StdEncoding` decodes it
/// (which skips line breaks).
fn is_base64(s: &str) -> bool {
    let body: Vec<u8> = s.bytes().filter(|b| *b != b'\r' && *b != b'\n').collect();
    if !matches!(body.len() % 4, 0) {
        return false;
    }
    let padding = body.iter().rev().take_while(|b| **b == b'=').count();
    if padding > 2 {
        return false;
    }
    body[..body.len() - padding]
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

fn is_uuid(s: &str, version: Option<u8>) -> bool {
    let hex: Vec<u8> = s.bytes().filter(|b| *b != b'-').collect();
    let dashed = s.len() == 36
        && s.bytes()
            .enumerate()
            .all(|(i, b)| matches!(i, 8 | 13 | 18 | 23) == (b == b'-'));
    if !(dashed || s.len() == 32) || hex.len() != 32 || !hex.iter().all(u8::is_ascii_hexdigit) {
        return false;
    }
    match version {
        None => true,
        Some(v) => {
            let variant_ok =
                v == b'3' || matches!(hex[16].to_ascii_lowercase(), b'8' | b'9' | b'a' | b'b');
            hex[12] == v && variant_ok
        }
    }
}

fn is_cidr(s: &str) -> bool {
    let Some((addr, prefix)) = s.split_once('/') else {
        return false;
    };
    let Some(prefix) = digits(prefix.as_bytes()) else {
        return false;
    };
    match addr.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => prefix <= 32,
        Ok(IpAddr::V6(_)) => prefix <= 128,
        Err(_) => false,
    }
}

/// The MAC spellings Go's `net.ParseMAC` accepts: `aa:bb:..`, `aa-bb-..`, `aabb.ccdd...`.
fn is_mac(s: &str) -> bool {
    let groups_ok = |sep: char, width: usize, counts: &[usize]| {
        let groups: Vec<&str> = s.split(sep).collect();
        counts.contains(&groups.len())
            && groups
                .iter()
                .all(|g| g.len() == width && g.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    groups_ok(':', 2, &[6, 8, 20])
        || groups_ok('-', 2, &[6, 8, 20])
        || groups_ok('.', 4, &[3, 4, 10])
}

/// Go's RE2 gives `\d`, `\w` and `\s` their ASCII meaning; the `regex` crate's are
/// Unicode-aware, so they are spelled out to match what kube-apiserver accepts.
pub(super) fn translate_pattern(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(next) = chars.next() else {
                    out.push('\\');
                    break;
                };
                let replacement = match (next, in_class) {
                    ('d', false) => Some("[0-9]"),
                    ('d', true) => Some("0-9"),
                    ('D', false) => Some("[^0-9]"),
                    ('w', false) => Some("[0-9A-Za-z_]"),
                    ('w', true) => Some("0-9A-Za-z_"),
                    ('W', false) => Some("[^0-9A-Za-z_]"),
                    ('s', false) => Some("[\\t\\n\\f\\r ]"),
                    ('s', true) => Some("\\t\\n\\f\\r "),
                    ('S', false) => Some("[^\\t\\n\\f\\r ]"),
                    _ => None,
                };
                match replacement {
                    Some(text) => out.push_str(text),
                    None => {
                        out.push('\\');
                        out.push(next);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
                // A leading `]` is a literal in RE2.
                if chars.peek() == Some(&']') {
                    chars.next();
                    out.push_str("\\]");
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '[' => {
                // Nested `[` only opens a class in the regex crate's syntax (or a
                // POSIX class like `[:alpha:]`, which both dialects share).
                if chars.peek() == Some(&':') {
                    out.push('[');
                    for inner in chars.by_ref() {
                        out.push(inner);
                        if inner == ']' {
                            break;
                        }
                    }
                } else {
                    out.push_str("\\[");
                }
            }
            '&' | '~' | '-' if in_class && chars.peek() == Some(&c) => {
                // `&&`, `~~` and `--` are set operators in the regex crate, not in RE2.
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

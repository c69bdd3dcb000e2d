//! Go-style durations (`30s`, `5m`, `1h30m`, `500ms`), as Kubernetes and
//! Crossplane flags and annotations spell them.
//!
//! Hand-written: the duration crates speak other dialects (humantime wants
//! spaces or its own units), and this is a few lines.

use std::time::Duration;

/// Parses a positive duration: one or more `<number><unit>` with units
/// `ms`, `s`, `m` and `h`, as in `1h30m`; a bare number is seconds.
pub fn parse(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err("an empty duration: use one such as 500ms, 30s, 5m or 1h30m".into());
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return positive(s, seconds);
    }
    let mut rest = text;
    let mut seconds = 0.0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        let number: f64 = number
            .parse()
            .map_err(|_| format!("{s:?} is not a duration such as 500ms, 30s, 5m or 1h30m"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        seconds += number
            * match unit {
                "ms" => 0.001,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => {
                    return Err(format!(
                        "{s:?} has an unknown unit {unit:?}; use ms, s, m or h"
                    ))
                }
            };
        rest = tail;
    }
    positive(s, seconds)
}

fn positive(s: &str, seconds: f64) -> Result<Duration, String> {
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(format!("{s:?} must be a positive duration"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_go_writes_them() {
        let cases = [
            ("30s", Some(30_000)),
            ("5m", Some(300_000)),
            ("1m30s", Some(90_000)),
            ("1h0m0s", Some(3_600_000)),
            ("500ms", Some(500)),
            ("10", Some(10_000)),
            ("0s", None),
            ("soon", None),
            ("5d", None),
            ("", None),
        ];
        for (text, want) in cases {
            let got = parse(text).ok().map(|d| d.as_millis() as u64);
            assert_eq!(got, want, "{text:?}");
        }
    }
}

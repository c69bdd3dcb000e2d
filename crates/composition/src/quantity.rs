//! Kubernetes quantities (`1Gi`, `500m`, `1.5`, `2e3`) as the `convert`
//! transform's `quantity` format reads them: parsed with apimachinery's
//! grammar and turned into a float64 the way `AsApproximateFloat64` does.
//! Hand-written: the Rust Kubernetes crates carry quantities as strings.

/// Why a string is not a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("cannot parse quantity {0:?}: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    Format(String),
    #[error("cannot parse quantity {0:?}: unknown quantity suffix {1:?}")]
    Suffix(String, String),
    #[error("cannot parse quantity {0:?}: the number is out of range")]
    Range(String),
}

/// The value of a quantity, approximately, as a float64.
pub fn approximate_f64(s: &str) -> Result<f64, QuantityError> {
    let format = || QuantityError::Format(s.to_string());
    let bytes = s.as_bytes();
    let mut i = 0;
    let negative = match bytes.first() {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let int_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let int_part = &s[int_start..i];
    let mut frac_part = "";
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        frac_part = &s[frac_start..i];
    }
    // `.`, `+` and the empty string have no digits at all.
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(format());
    }
    let suffix = &s[i..];
    // Mantissa digits and a power of ten: 1.5 is 15e-1.
    let digits = format!("{int_part}{frac_part}");
    let mut exp10 = -(frac_part.len() as i64);
    let mut binary_shift = 0u32;
    match suffix {
        "" => {}
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        "Ki" => binary_shift = 10,
        "Mi" => binary_shift = 20,
        "Gi" => binary_shift = 30,
        "Ti" => binary_shift = 40,
        "Pi" => binary_shift = 50,
        "Ei" => binary_shift = 60,
        other => {
            // A decimal exponent: e or E, an optional sign, digits.
            let rest = other
                .strip_prefix(['e', 'E'])
                .ok_or_else(|| QuantityError::Suffix(s.to_string(), other.to_string()))?;
            let unsigned = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return Err(QuantityError::Suffix(s.to_string(), other.to_string()));
            }
            let e: i64 = rest
                .parse()
                .map_err(|_| QuantityError::Range(s.to_string()))?;
            exp10 = exp10.saturating_add(e);
        }
    }
    // Quantities keep nine decimal places at most and round what is finer
    // up, away from zero: 0.1n is 1n.
    let mut mantissa = digits.trim_start_matches('0').to_string();
    if exp10 < -9 && binary_shift == 0 {
        let drop = (-9 - exp10) as usize;
        let keep = mantissa.len().saturating_sub(drop);
        let dropped_nonzero = mantissa[keep..].bytes().any(|b| b != b'0');
        mantissa.truncate(keep);
        if dropped_nonzero {
            mantissa = increment(&mantissa);
        }
        exp10 = -9;
    }
    if mantissa.is_empty() {
        return Ok(if negative { -0.0 } else { 0.0 });
    }
    let base: f64 = mantissa
        .parse()
        .map_err(|_| QuantityError::Range(s.to_string()))?;
    let mut value = if exp10 == 0 {
        base
    } else {
        base * pow10(exp10)
    };
    value *= f64::from(2u32).powi(binary_shift as i32);
    if !value.is_finite() {
        return Err(QuantityError::Range(s.to_string()));
    }
    Ok(if negative { -value } else { value })
}

/// A decimal string of digits plus one.
fn increment(digits: &str) -> String {
    let mut out: Vec<u8> = digits.bytes().collect();
    for d in out.iter_mut().rev() {
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            return String::from_utf8(out).unwrap_or_default();
        }
    }
    let mut s = String::from("1");
    s.push_str(std::str::from_utf8(&out).unwrap_or_default());
    s
}

/// 10^n as Go's `math.Pow10` computes it: exact table entries combined,
/// so results match Go's to the last bit.
fn pow10(n: i64) -> f64 {
    fn table(i: i64) -> f64 {
        format!("1e{i}").parse().unwrap_or(f64::NAN)
    }
    match n {
        0..=308 => table(n / 32 * 32) * table(n % 32),
        -323..=-1 => {
            let m = -n;
            table(-(m / 32 * 32)) / table(m % 32)
        }
        n if n > 308 => f64::INFINITY,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn quantities() {
        // (reason, input, expected value or None for an error)
        let cases: &[(&str, &str, Option<f64>)] = &[
            (
                "Crossplane's StringToQuantityFloat64 case",
                "1000m",
                Some(1.0),
            ),
            (
                "Crossplane's StringToQuantityFloat64InvalidFormat case",
                "1000 blabla",
                None,
            ),
            (
                "binary suffixes are powers of 1024",
                "2Gi",
                Some(2147483648.0),
            ),
            ("a milli quantity is a fraction", "500m", Some(0.5)),
            ("a plain number needs no suffix", "1.5", Some(1.5)),
            ("decimal exponents are suffixes too", "2e3", Some(2000.0)),
            ("a sign may lead", "-2k", Some(-2000.0)),
            (
                "nano is the finest precision; finer rounds up",
                "0.1n",
                Some(1e-9),
            ),
            ("a quantity needs digits", "Mi", None),
            ("spaces are not allowed", " 1", None),
            ("unknown suffixes are refused", "2Qi", None),
            ("the empty string is not a quantity", "", None),
            (
                "a tiny value rounds up to 1n, without overflowing",
                "0.1e-9223372036854775808",
                Some(1e-9),
            ),
            (
                "a huge positive exponent is out of range",
                "1e9223372036854775807",
                None,
            ),
        ];
        for (reason, input, want) in cases {
            let got = approximate_f64(input).ok();
            assert_eq!(got, *want, "{reason}: {input:?}");
        }
    }
}

//! What differs between a desired resource and an observed one, as JSON.
//! Clouds answer with more than was asked (kinds, etags, defaults, ids), so
//! only what the desired value sets is compared, except in the maps named
//! `whole` (labels, tags), where a key the spec dropped is a difference too.

use serde_json::Value;

/// Appends one `path: observed → desired` line per difference.
pub fn differences(path: &str, want: &Value, have: &Value, whole: &[&str], out: &mut Vec<String>) {
    match (want, have) {
        (Value::Object(want), Value::Object(have)) => {
            for (key, w) in want {
                let at = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                let h = have.get(key).unwrap_or(&Value::Null);
                if whole.contains(&key.as_str()) {
                    if w != h && !(is_empty(w) && is_empty(h)) {
                        out.push(format!("{at}: {h} → {w}"));
                    }
                } else {
                    differences(&at, w, h, whole, out);
                }
            }
        }
        (Value::Array(want), Value::Array(have)) if want.len() == have.len() => {
            for (i, (w, h)) in want.iter().zip(have).enumerate() {
                differences(&format!("{path}[{i}]"), w, h, whole, out);
            }
        }
        (want, have) => {
            if want != have && !(is_empty(want) && is_empty(have)) {
                out.push(format!("{path}: {have} → {want}"));
            }
        }
    }
}

/// Null, an empty object, array or string: what proto3 JSON and ARM leave
/// out.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_what_is_desired_is_compared() {
        let cases = [
            (
                "fields the cloud adds are not differences",
                json!({"settings": {"tier": "db-custom-1-3840"}}),
                json!({"kind": "sql#instance", "settings": {"tier": "db-custom-1-3840", "kind": "sql#settings"}}),
                vec![],
            ),
            (
                "a changed scalar names its path and both values",
                json!({"settings": {"tier": "db-custom-2-7680"}}),
                json!({"settings": {"tier": "db-custom-1-3840"}}),
                vec!["settings.tier: \"db-custom-1-3840\" → \"db-custom-2-7680\""],
            ),
            (
                "a label the spec dropped is a difference",
                json!({"settings": {"userLabels": {"team": "a"}}}),
                json!({"settings": {"userLabels": {"team": "a", "old": "x"}}}),
                vec!["settings.userLabels: {\"team\":\"a\",\"old\":\"x\"} → {\"team\":\"a\"}"],
            ),
            (
                "arrays compare element by element, each a subset",
                json!({"networks": [{"value": "10.0.0.0/8"}]}),
                json!({"networks": [{"value": "10.0.0.0/8", "kind": "sql#aclEntry"}]}),
                vec![],
            ),
            (
                "an array of another length differs whole",
                json!({"networks": [{"value": "10.0.0.0/8"}]}),
                json!({}),
                vec!["networks: null → [{\"value\":\"10.0.0.0/8\"}]"],
            ),
            (
                "empty and absent are the same to proto3 JSON",
                json!({"tags": {"items": []}}),
                json!({"tags": {}}),
                vec![],
            ),
        ];
        for (reason, want, have, expected) in cases {
            let mut got = Vec::new();
            differences("", &want, &have, &["userLabels"], &mut got);
            assert_eq!(got, expected, "{reason}");
        }
    }
}

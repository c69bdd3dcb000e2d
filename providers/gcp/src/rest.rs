//! Resources as their REST JSON. forProvider fields are named as the REST
//! reference names them, so the desired resource is written as JSON and read
//! into the client's model with the model's own serde, and the observed one
//! is compared in the same JSON form. Reading both through the model
//! normalizes what the wire allows several ways of (int64 as string or
//! number, enums by name).

use provider_sdk::ProviderError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// The model of a desired resource, from its REST JSON.
pub fn model<T: DeserializeOwned>(what: &str, json: Value) -> Result<T, ProviderError> {
    serde_json::from_value(json)
        .map_err(|e| ProviderError::terminal(format!("cannot read the desired {what}: {e}")))
}

/// A model as its REST JSON.
pub fn json<T: Serialize>(model: &T) -> Value {
    // The models are plain data: serializing them cannot fail.
    serde_json::to_value(model).unwrap_or(Value::Null)
}

/// A desired resource normalized by a round trip through its model, so it
/// compares field for field with an observed one.
pub fn normalized<T: DeserializeOwned + Serialize>(
    what: &str,
    json: Value,
) -> Result<Value, ProviderError> {
    let model: T = model(what, json)?;
    Ok(self::json(&model))
}

/// Fields whose whole value is managed: a key missing from the desired map
/// is a difference, not a default left alone.
const WHOLE: &[&str] = &["userLabels", "labels"];

/// What differs between a desired value and an observed one, as
/// `path: observed → desired` lines. Only what the desired value sets is
/// compared (the cloud adds kinds, etags and defaults), except in the
/// `WHOLE` maps and in arrays, which are compared element by element.
pub fn differences(path: &str, want: &Value, have: &Value, out: &mut Vec<String>) {
    match (want, have) {
        (Value::Object(want), Value::Object(have)) => {
            for (key, w) in want {
                let at = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                let h = have.get(key).unwrap_or(&Value::Null);
                if WHOLE.contains(&key.as_str()) {
                    if w != h && !(is_empty(w) && is_empty(h)) {
                        out.push(format!("{at}: {} → {}", h, w));
                    }
                } else {
                    differences(&at, w, h, out);
                }
            }
        }
        (Value::Array(want), Value::Array(have)) if want.len() == have.len() => {
            for (i, (w, h)) in want.iter().zip(have).enumerate() {
                differences(&format!("{path}[{i}]"), w, h, out);
            }
        }
        (want, have) => {
            if want != have && !(is_empty(want) && is_empty(have)) {
                out.push(format!("{path}: {have} → {want}"));
            }
        }
    }
}

/// Null, an empty object, array or string: what proto3 JSON leaves out.
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
            differences("", &want, &have, &mut got);
            assert_eq!(got, expected, "{reason}");
        }
    }
}

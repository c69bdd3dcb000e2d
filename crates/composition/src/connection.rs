//! Connection details a composite takes from its composed resources:
//! `FromConnectionSecretKey`, `FromFieldPath` and `FromValue`, as
//! Crossplane v1.20 extracts them.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::fieldpath;
use crate::gofmt;

/// Connection details, key by key.
pub type Details = BTreeMap<String, Vec<u8>>;

/// The detail's type: as written, or, for details written before `type`
/// existed, inferred in Crossplane's order: a `value` makes it FromValue,
/// then a `fromConnectionSecretKey`, then a `fromFieldPath`; with none of
/// them it is FromConnectionSecretKey (and fails for want of a key).
pub fn detail_type(d: &Value) -> &str {
    if let Some(t) = d.get("type").and_then(Value::as_str) {
        return t;
    }
    let has = |name: &str| d.get(name).is_some_and(|v| !v.is_null());
    if has("value") {
        "FromValue"
    } else if has("fromConnectionSecretKey") {
        "FromConnectionSecretKey"
    } else if has("fromFieldPath") {
        "FromFieldPath"
    } else {
        "FromConnectionSecretKey"
    }
}

/// The key the detail is published under: its `name`, or for a
/// FromConnectionSecretKey detail without one, the secret key it copies.
pub fn detail_name<'a>(d: &'a Value, kind: &str) -> Option<&'a str> {
    match d.get("name") {
        Some(Value::String(n)) => Some(n.as_str()),
        Some(v) if !v.is_null() => None,
        _ if kind == "FromConnectionSecretKey" => {
            d.get("fromConnectionSecretKey").and_then(Value::as_str)
        }
        _ => None,
    }
    .filter(|n| !n.is_empty())
}

/// A field's bytes for a FromFieldPath detail: a string as it is, anything
/// else as Go's JSON, so a number is `5432` and an object `{"a":1}`.
/// `None` when the field cannot be read, which Crossplane skips quietly:
/// the field may appear later.
fn field_bytes(obj: &Value, path: &str) -> Option<Vec<u8>> {
    match fieldpath::get(obj, path).ok()? {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        other => Some(gofmt::go_json(other).into_bytes()),
    }
}

/// The details one composed resource contributes.
pub fn extract(specs: &[Value], obj: &Value, secret: &Details) -> Result<Details, String> {
    let mut out = Details::new();
    for (i, d) in specs.iter().enumerate() {
        let kind = detail_type(d);
        let needs = |what: &str| format!("connectionDetails[{i}]: {kind} needs {what}");
        // Crossplane checks the name before anything else.
        let name = detail_name(d, kind).ok_or_else(|| needs("name"))?;
        match kind {
            "FromValue" => {
                let value = d
                    .get("value")
                    .and_then(Value::as_str)
                    .ok_or_else(|| needs("value"))?;
                out.insert(name.to_string(), value.as_bytes().to_vec());
            }
            "FromConnectionSecretKey" => {
                let key = d
                    .get("fromConnectionSecretKey")
                    .and_then(Value::as_str)
                    .ok_or_else(|| needs("fromConnectionSecretKey"))?;
                // A key the Secret lacks is skipped: it may be written later.
                if let Some(v) = secret.get(key) {
                    out.insert(name.to_string(), v.clone());
                }
            }
            "FromFieldPath" => {
                let path = d
                    .get("fromFieldPath")
                    .and_then(Value::as_str)
                    .ok_or_else(|| needs("fromFieldPath"))?;
                if let Some(bytes) = field_bytes(obj, path) {
                    out.insert(name.to_string(), bytes);
                }
            }
            // Crossplane's schema refuses other types before extraction
            // could skip them; refuse them here too.
            other => {
                return Err(format!(
                    "connectionDetails[{i}]: unknown type {other:?}; expected FromConnectionSecretKey, FromFieldPath or FromValue"
                ))
            }
        }
    }
    Ok(out)
}

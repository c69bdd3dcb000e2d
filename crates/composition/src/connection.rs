//! Connection details a composite takes from its composed resources:
//! `FromConnectionSecretKey`, `FromFieldPath` and `FromValue`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::fieldpath;
use crate::gofmt;

/// Connection details, key by key.
pub type Details = BTreeMap<String, Vec<u8>>;

/// The details one composed resource contributes.
pub fn extract(specs: &[Value], obj: &Value, secret: &Details) -> Result<Details, String> {
    let mut out = Details::new();
    for (i, d) in specs.iter().enumerate() {
        let kind = d.get("type").and_then(Value::as_str).unwrap_or_else(|| {
            if d.get("fromConnectionSecretKey").is_some() {
                "FromConnectionSecretKey"
            } else if d.get("fromFieldPath").is_some() {
                "FromFieldPath"
            } else {
                "FromValue"
            }
        });
        let name = d.get("name").and_then(Value::as_str);
        match kind {
            "FromConnectionSecretKey" => {
                let key = d
                    .get("fromConnectionSecretKey")
                    .and_then(Value::as_str)
                    .ok_or(format!("connectionDetails[{i}]: FromConnectionSecretKey needs fromConnectionSecretKey"))?;
                if let Some(v) = secret.get(key) {
                    out.insert(name.unwrap_or(key).to_string(), v.clone());
                }
            }
            "FromFieldPath" => {
                let path = d
                    .get("fromFieldPath")
                    .and_then(Value::as_str)
                    .ok_or(format!("connectionDetails[{i}]: FromFieldPath needs fromFieldPath"))?;
                let name = name.ok_or(format!("connectionDetails[{i}]: FromFieldPath needs name"))?;
                if let Some(v) = fieldpath::get(obj, path).map_err(|e| format!("connectionDetails[{i}]: {e}"))? {
                    out.insert(name.to_string(), gofmt::plain(v).into_bytes());
                }
            }
            "FromValue" => {
                let name = name.ok_or(format!("connectionDetails[{i}]: FromValue needs name"))?;
                let value = d
                    .get("value")
                    .and_then(Value::as_str)
                    .ok_or(format!("connectionDetails[{i}]: FromValue needs value"))?;
                out.insert(name.to_string(), value.as_bytes().to_vec());
            }
            other => {
                return Err(format!(
                    "connectionDetails[{i}]: unknown type {other:?}; expected FromConnectionSecretKey, FromFieldPath or FromValue"
                ))
            }
        }
    }
    Ok(out)
}

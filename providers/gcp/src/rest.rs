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
pub const WHOLE: &[&str] = &["userLabels", "labels"];

/// What differs between a desired value and an observed one (see
/// `provider_sdk::diff`), with the label maps compared whole.
pub fn differences(path: &str, want: &Value, have: &Value, out: &mut Vec<String>) {
    provider_sdk::diff::differences(path, want, have, WHOLE, out);
}

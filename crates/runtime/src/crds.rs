//! Installing CustomResourceDefinitions, as the controllers do for the kinds
//! they serve.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{json, Value};

use crate::names;

/// Server-side applies a CRD as the controllers' field manager.
pub async fn apply(client: &Client, crd: Value) -> Result<(), kube::Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    api.patch(
        &name,
        &PatchParams::apply(names::FIELD_MANAGER).force(),
        &Patch::Apply(crd),
    )
    .await?;
    Ok(())
}

/// The schema of `status.conditions`, as every Plinth kind has it.
pub fn conditions_schema() -> Value {
    json!({
        "type": "array",
        "description": "Conditions of the resource.",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "required": ["type", "status", "reason", "lastTransitionTime"],
            "properties": {
                "type": {"type": "string"},
                "status": {"type": "string"},
                "reason": {"type": "string"},
                "message": {"type": "string"},
                "lastTransitionTime": {"type": "string", "format": "date-time"},
                "observedGeneration": {"type": "integer", "format": "int64"}
            }
        }
    })
}

/// A printer column showing one condition's status.
pub fn condition_column(name: &str, type_: &str) -> Value {
    json!({"name": name, "type": "string", "jsonPath": format!(".status.conditions[?(@.type=='{type_}')].status")})
}

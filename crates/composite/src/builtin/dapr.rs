//! The Dapr opt-in of the DBaaS interface: for each of its Compositions, a
//! twin labelled `dapr: state` that composes, beside the database, the Dapr
//! `Component` a Dapr app uses it through: a `state.postgresql` v1 store in
//! the claim's namespace whose `connectionString` is read through
//! `secretKeyRef` from the claim's own connection Secret. A claim opts in
//! with `compositionSelector.matchLabels: {provider: …, dapr: state}`;
//! `spec.parameters.dapr.name` names the Component (the claim's name
//! otherwise) and `spec.parameters.dapr.scopes` lists the app ids that
//! may use it.

use serde_json::{json, Value};

use crate::names;

/// The label that selects a Composition with a Dapr state store.
pub const LABEL: (&str, &str) = ("dapr", "state");

/// The composed Component: the same for every backend.
fn state_store() -> Value {
    json!({
        "name": "dapr-state-store",
        "base": {
            "apiVersion": "dapr.io/v1alpha1",
            "kind": "Component",
            "metadata": {"namespace": "default"},
            "spec": {
                "type": "state.postgresql",
                "version": "v1",
                "metadata": [
                    {"name": "connectionString", "secretKeyRef": {"name": "", "key": "connectionString"}}
                ]
            }
        },
        "patches": [
            {"fromFieldPath": "spec.claimRef.namespace", "toFieldPath": "metadata.namespace"},
            {"fromFieldPath": "spec.claimRef.name", "toFieldPath": "metadata.name"},
            {"fromFieldPath": "spec.parameters.dapr.name", "toFieldPath": "metadata.name"},
            {"fromFieldPath": "spec.parameters.dapr.scopes", "toFieldPath": "scopes"},
            // The claim's connection Secret, which the claim reconciler names
            // on its composite resource: a Component without it cannot work,
            // so the composite says so instead of composing one.
            {"fromFieldPath": format!("metadata.annotations[{}]", names::ANNOTATION_CLAIM_CONNECTION_SECRET),
             "toFieldPath": "spec.metadata[0].secretKeyRef.name",
             "policy": {"fromFieldPath": "Required"}},
            {"type": "ToCompositeFieldPath", "fromFieldPath": "metadata.name", "toFieldPath": "status.daprComponent"}
        ],
        // A Component has no status: it is ready once it exists.
        "readinessChecks": [{"type": "None"}]
    })
}

/// The `dapr: state` twin of a DBaaS Composition.
pub fn with_state_store(mut composition: Value) -> Value {
    let name = composition["metadata"]["name"]
        .as_str()
        .unwrap_or("postgresqlinstance")
        .to_string();
    composition["metadata"]["name"] = json!(format!("{name}-dapr"));
    composition["metadata"]["labels"][LABEL.0] = json!(LABEL.1);
    if let Some(resources) = composition
        .pointer_mut("/spec/resources")
        .and_then(Value::as_array_mut)
    {
        resources.push(state_store());
    }
    composition
}

//! `functions.pkg.crossplane.io`: Crossplane's Function kind, served at v1
//! and v1beta1 as Crossplane serves it. `spec.package` is kept but not
//! pulled (no OCI registry is reached); the annotations in the crate root
//! say how Plinth runs a function instead.

use runtime::crds::{condition_column, conditions_schema};
use serde_json::{json, Value};

use crate::{GROUP, KIND, PLURAL};

pub fn function() -> Value {
    let version = |name: &str, storage: bool| {
        json!({
            "name": name,
            "served": true,
            "storage": storage,
            "subresources": {"status": {}},
            "additionalPrinterColumns": [
                condition_column("INSTALLED", runtime::names::condition::INSTALLED),
                condition_column("HEALTHY", runtime::names::condition::HEALTHY),
                {"name": "PACKAGE", "type": "string", "jsonPath": ".spec.package"},
                {"name": "ADDRESS", "type": "string", "jsonPath": ".status.address", "priority": 1},
                {"name": "RESTARTS", "type": "integer", "jsonPath": ".status.restarts", "priority": 1},
                {"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
            ],
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "description": "A composition function that Composition pipelines name in functionRef.",
                "properties": {
                    "spec": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": true,
                        "properties": {
                            "package": {"type": "string", "description": "The function's OCI package, as in Crossplane; Plinth does not pull it."}
                        }
                    },
                    "status": {
                        "type": "object",
                        "properties": {
                            "conditions": conditions_schema(),
                            "address": {"type": "string"},
                            "restarts": {"type": "integer"},
                            "lastError": {"type": "string"}
                        }
                    }
                }
            }}
        })
    };
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{PLURAL}.{GROUP}")},
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": {"plural": PLURAL, "singular": "function", "kind": KIND, "listKind": "FunctionList", "categories": ["crossplane", "pkg"]},
            "versions": [version(crate::VERSION, true), version("v1beta1", false)]
        }
    })
}

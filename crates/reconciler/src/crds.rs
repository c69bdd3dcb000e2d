//! The CRDs the controllers install: `Provider`, and for each provider its
//! `ProviderConfig` and one CRD per managed-resource kind it serves.

use provider_sdk::pb;
use runtime::crds::{condition_column, conditions_schema};
use runtime::names;
use serde_json::{json, Value};

/// `providers.pkg.plinth.dev`.
pub fn provider() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{}.{}", names::PROVIDER_PLURAL, names::PROVIDER_GROUP)},
        "spec": {
            "group": names::PROVIDER_GROUP,
            "scope": "Cluster",
            "names": {"plural": names::PROVIDER_PLURAL, "singular": "provider", "kind": names::PROVIDER_KIND, "listKind": "ProviderList", "categories": ["plinth", "pkg"]},
            "versions": [{
                "name": names::PROVIDER_VERSION,
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    condition_column("INSTALLED", names::condition::INSTALLED),
                    condition_column("HEALTHY", names::condition::HEALTHY),
                    {"name": "RESTARTS", "type": "integer", "jsonPath": ".status.restarts"},
                    {"name": "KINDS", "type": "string", "jsonPath": ".status.kinds", "priority": 1},
                    {"name": "LAST-ERROR", "type": "string", "jsonPath": ".status.lastError", "priority": 1},
                    {"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "A provider plugin: a local child process (command) or a remote endpoint over mTLS.",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "properties": {
                                "command": {"type": "string", "description": "The provider binary to run as a child process."},
                                "args": {"type": "array", "items": {"type": "string"}},
                                "env": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "value": {"type": "string"}}}},
                                "endpoint": {"type": "string", "description": "host:port of a remote provider, reached over mTLS."},
                                "tls": {
                                    "type": "object",
                                    "description": "Secrets for mTLS to a remote provider: ca.crt, tls.crt and tls.key.",
                                    "properties": {
                                        "caSecretRef": {"type": "object", "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}}},
                                        "clientSecretRef": {"type": "object", "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}}},
                                        "serverName": {"type": "string"}
                                    }
                                }
                            }
                        },
                        "status": {
                            "type": "object",
                            "properties": {
                                "conditions": conditions_schema(),
                                "kinds": {"type": "array", "items": {"type": "string"}},
                                "lastError": {"type": "string"},
                                "restarts": {"type": "integer"},
                                "address": {"type": "string"}
                            }
                        }
                    }
                }}
            }]
        }
    })
}

/// The ProviderConfig CRD of one provider.
pub fn provider_config(group: &str, spec_schema: Value) -> Value {
    let mut spec = if spec_schema.is_object() {
        spec_schema
    } else {
        json!({"type": "object"})
    };
    if spec.get("type").is_none() {
        spec["type"] = json!("object");
    }
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{}.{group}", names::PROVIDER_CONFIG_PLURAL)},
        "spec": {
            "group": group,
            "scope": "Cluster",
            "names": {"plural": names::PROVIDER_CONFIG_PLURAL, "singular": "providerconfig", "kind": names::PROVIDER_CONFIG_KIND, "listKind": "ProviderConfigList", "categories": ["plinth", "providerconfig"]},
            "versions": [{
                "name": "v1alpha1",
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [{"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "How a provider reaches its external system: endpoints and credentials by Secret reference.",
                    "properties": {
                        "spec": spec,
                        "status": {"type": "object", "properties": {"conditions": conditions_schema(), "users": {"type": "integer"}}}
                    }
                }}
            }]
        }
    })
}

/// The CRD of one managed-resource kind.
pub fn managed(provider: &str, kind: &pb::KindSchema) -> Value {
    let for_provider = serde_json::from_slice::<Value>(&kind.for_provider_schema_json)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    let at_provider = serde_json::from_slice::<Value>(&kind.at_provider_schema_json)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    // A kind whose forProvider fields are all optional needs none written;
    // one with required fields still gets a 422 naming them.
    let mut for_provider = for_provider;
    if let Some(schema) = for_provider.as_object_mut() {
        schema.entry("default").or_insert_with(|| json!({}));
    }
    let singular = kind.kind.to_lowercase();
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{}.{}", kind.plural, kind.group), "labels": {"pkg.plinth.dev/provider": provider}},
        "spec": {
            "group": kind.group,
            "scope": "Cluster",
            "names": {"plural": kind.plural, "singular": singular, "kind": kind.kind, "listKind": format!("{}List", kind.kind), "categories": ["crossplane", "managed", provider]},
            "versions": [{
                "name": kind.version,
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    condition_column("READY", names::condition::READY),
                    condition_column("SYNCED", names::condition::SYNCED),
                    {"name": "EXTERNAL-NAME", "type": "string", "jsonPath": ".metadata.annotations.crossplane\\.io/external-name"},
                    {"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": kind.description,
                    "required": ["spec"],
                    "properties": {
                        "spec": {
                            "type": "object",
                            "properties": {
                                "forProvider": for_provider,
                                "providerConfigRef": {
                                    "type": "object",
                                    "description": "The ProviderConfig to use; \"default\" when unset.",
                                    "default": {"name": names::DEFAULT_PROVIDER_CONFIG},
                                    "required": ["name"],
                                    "properties": {"name": {"type": "string"}}
                                },
                                "writeConnectionSecretToRef": {
                                    "type": "object",
                                    "description": "The Secret to write connection details to.",
                                    "required": ["name", "namespace"],
                                    "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}}
                                },
                                "managementPolicies": {
                                    "type": "array",
                                    "description": "What Plinth may do to the external resource.",
                                    "default": ["*"],
                                    "items": {"type": "string", "enum": ["*", "Observe", "Create", "Update", "Delete", "LateInitialize"]}
                                },
                                "deletionPolicy": {
                                    "type": "string",
                                    "description": "Delete the external resource with this object, or Orphan it.",
                                    "default": "Delete",
                                    "enum": ["Delete", "Orphan"]
                                }
                            }
                        },
                        "status": {
                            "type": "object",
                            "properties": {"atProvider": at_provider, "conditions": conditions_schema()}
                        }
                    }
                }}
            }]
        }
    })
}

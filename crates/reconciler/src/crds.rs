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

/// Checks what a provider's GetSchema answered before any CRD is made from
/// it: a provider that answers garbage is refused by name, not installed
/// with schemas silently widened to "anything goes".
pub fn check_schema(schema: &pb::GetSchemaResponse) -> Result<(), String> {
    let dns_name = |what: &str, value: &str| {
        let valid = !value.is_empty()
            && value.len() <= 253
            && value.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if valid {
            Ok(())
        } else {
            Err(format!(
                "the provider's schema has {what} {value:?}, which is not a lowercase DNS name"
            ))
        }
    };
    dns_name("providerConfigGroup", &schema.provider_config_group)?;
    json_object(
        "the ProviderConfig schema",
        &schema.provider_config_schema_json,
    )?;
    let mut seen = std::collections::BTreeSet::new();
    for kind in &schema.kinds {
        dns_name("a kind's group", &kind.group)?;
        dns_name(&format!("the plural of {}", kind.kind), &kind.plural)?;
        let is_kind = kind
            .kind
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_uppercase())
            && kind.kind.chars().all(|c| c.is_ascii_alphanumeric());
        if !is_kind {
            return Err(format!(
                "the provider's schema has kind {:?} in {}, which is not an UpperCamelCase name",
                kind.kind, kind.group
            ));
        }
        let is_version = kind.version.starts_with('v')
            && kind.version.len() > 1
            && kind
                .version
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !is_version {
            return Err(format!(
                "the provider's schema has version {:?} for {}.{}, which is not a Kubernetes version such as v1alpha1",
                kind.version, kind.kind, kind.group
            ));
        }
        if !seen.insert((kind.group.clone(), kind.kind.clone())) {
            return Err(format!(
                "the provider's schema names {}.{} twice",
                kind.kind, kind.group
            ));
        }
        let which = |side: &str| format!("the {side} schema of {}.{}", kind.kind, kind.group);
        json_object(&which("forProvider"), &kind.for_provider_schema_json)?;
        json_object(&which("atProvider"), &kind.at_provider_schema_json)?;
    }
    Ok(())
}

/// An optional JSON-object field of GetSchema: empty means "no schema".
fn json_object(what: &str, bytes: &[u8]) -> Result<(), String> {
    if bytes.is_empty() {
        return Ok(());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(_)) => Ok(()),
        Ok(_) => Err(format!(
            "{what} that the provider sent is not a JSON object"
        )),
        Err(e) => Err(format!("{what} that the provider sent is not JSON: {e}")),
    }
}

/// The ClusterRole that lets the controllers manage what one provider
/// serves: its kinds and its ProviderConfigs, with their status. Labelled to
/// aggregate into the controllers' own ClusterRole, as Crossplane's RBAC
/// manager writes a `crossplane:provider:*:system` role per provider, so
/// a provider installed at run time needs no edit to deploy/base/rbac.yaml.
pub fn controller_role(provider: &str, schema: &pb::GetSchemaResponse) -> Value {
    let mut rules = vec![json!({
        "apiGroups": [schema.provider_config_group],
        "resources": [names::PROVIDER_CONFIG_PLURAL, format!("{}/status", names::PROVIDER_CONFIG_PLURAL)],
        "verbs": MANAGE,
    })];
    let mut groups: Vec<&str> = schema.kinds.iter().map(|k| k.group.as_str()).collect();
    groups.sort_unstable();
    groups.dedup();
    for group in groups {
        let resources: Vec<String> = schema
            .kinds
            .iter()
            .filter(|k| k.group == group)
            .flat_map(|k| [k.plural.clone(), format!("{}/status", k.plural)])
            .collect();
        rules.push(json!({"apiGroups": [group], "resources": resources, "verbs": MANAGE}));
    }
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {
            "name": controller_role_name(provider),
            "labels": {names::label::AGGREGATE_TO_CONTROLLER: "true"},
        },
        "rules": rules,
    })
}

/// The name of [`controller_role`], as Crossplane names a provider's.
pub fn controller_role_name(provider: &str) -> String {
    format!("plinth:provider:{provider}:system")
}

/// What the managed reconciler and the usage controller do to a
/// provider's objects.
const MANAGE: [&str; 7] = [
    "get", "list", "watch", "create", "update", "patch", "delete",
];

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

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(group: &str, kind: &str, plural: &str, version: &str) -> pb::KindSchema {
        pb::KindSchema {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            for_provider_schema_json: br#"{"type":"object"}"#.to_vec(),
            ..Default::default()
        }
    }

    fn schema(kinds: Vec<pb::KindSchema>) -> pb::GetSchemaResponse {
        pb::GetSchemaResponse {
            provider: "test".into(),
            provider_config_group: "test.plinth.dev".into(),
            provider_config_schema_json: Vec::new(),
            kinds,
        }
    }

    #[test]
    fn a_provider_role_grants_its_kinds_and_configs_and_nothing_else() {
        let schema = pb::GetSchemaResponse {
            kinds: vec![
                kind("db.mine.example.com", "Database", "databases", "v1"),
                kind("vm.mine.example.com", "Machine", "machines", "v1"),
                kind("db.mine.example.com", "User", "users", "v1"),
            ],
            ..schema(vec![])
        };
        let role = controller_role("mine", &schema);
        assert_eq!(role["metadata"]["name"], "plinth:provider:mine:system");
        assert_eq!(
            role["metadata"]["labels"][names::label::AGGREGATE_TO_CONTROLLER],
            "true"
        );
        let rules: Vec<(Value, Value)> = role["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| (r["apiGroups"].clone(), r["resources"].clone()))
            .collect();
        pretty_assertions::assert_eq!(
            rules,
            vec![
                (
                    json!(["test.plinth.dev"]),
                    json!(["providerconfigs", "providerconfigs/status"])
                ),
                (
                    json!(["db.mine.example.com"]),
                    json!(["databases", "databases/status", "users", "users/status"])
                ),
                (
                    json!(["vm.mine.example.com"]),
                    json!(["machines", "machines/status"])
                ),
            ]
        );
    }

    #[test]
    fn garbage_schemas_are_refused_by_what_is_wrong() {
        let good = || kind("test.plinth.dev", "Thing", "things", "v1alpha1");
        let cases: Vec<(&str, pb::GetSchemaResponse, Option<&str>)> = vec![
            (
                "a well-formed schema passes",
                schema(vec![good()]),
                None,
            ),
            (
                "a provider with no kinds still has a ProviderConfig",
                schema(vec![]),
                None,
            ),
            (
                "an uppercase group is not a DNS name",
                schema(vec![kind("Test.plinth.dev", "Thing", "things", "v1")]),
                Some("a kind's group \"Test.plinth.dev\""),
            ),
            (
                "an empty plural cannot name a resource",
                schema(vec![kind("test.plinth.dev", "Thing", "", "v1")]),
                Some("the plural of Thing"),
            ),
            (
                "a kind must start with a capital letter",
                schema(vec![kind("test.plinth.dev", "thing", "things", "v1")]),
                Some("kind \"thing\""),
            ),
            (
                "a version must look like v1alpha1",
                schema(vec![kind("test.plinth.dev", "Thing", "things", "1.0")]),
                Some("version \"1.0\""),
            ),
            (
                "the same kind twice would be two CRDs of one name",
                schema(vec![good(), good()]),
                Some("names Thing.test.plinth.dev twice"),
            ),
            (
                "a forProvider schema that is not JSON",
                schema(vec![pb::KindSchema {
                    for_provider_schema_json: b"{\"type\": obj".to_vec(),
                    ..good()
                }]),
                Some("the forProvider schema of Thing.test.plinth.dev that the provider sent is not JSON"),
            ),
            (
                "an atProvider schema that is JSON but not an object",
                schema(vec![pb::KindSchema {
                    at_provider_schema_json: b"[]".to_vec(),
                    ..good()
                }]),
                Some("the atProvider schema of Thing.test.plinth.dev that the provider sent is not a JSON object"),
            ),
            (
                "a ProviderConfig schema that is not JSON",
                pb::GetSchemaResponse {
                    provider_config_schema_json: b"\xff".to_vec(),
                    ..schema(vec![])
                },
                Some("the ProviderConfig schema that the provider sent is not JSON"),
            ),
            (
                "an empty ProviderConfig group",
                pb::GetSchemaResponse {
                    provider_config_group: String::new(),
                    ..schema(vec![])
                },
                Some("providerConfigGroup \"\""),
            ),
        ];
        for (reason, schema, want) in cases {
            let got = check_schema(&schema);
            match (want, got) {
                (None, Ok(())) => {}
                (Some(want), Err(got)) => assert!(got.contains(want), "{reason}: {got}"),
                (want, got) => panic!("{reason}: want {want:?}, got {got:?}"),
            }
        }
    }
}

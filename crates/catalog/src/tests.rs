use pretty_assertions::assert_eq;
use serde_json::{json, Value};

use super::*;

fn xrd() -> Value {
    json!({
        "apiVersion": "apiextensions.crossplane.io/v1", "kind": "CompositeResourceDefinition",
        "metadata": {"name": "xpostgresqlinstances.platform.plinth.dev"},
        "spec": {
            "group": "platform.plinth.dev",
            "names": {"kind": "XPostgreSQLInstance", "plural": "xpostgresqlinstances"},
            "claimNames": {"kind": "PostgreSQLInstance", "plural": "postgresqlinstances"},
            "versions": [{"name": "v1alpha1", "referenceable": true, "schema": {"openAPIV3Schema": {
                "type": "object", "properties": {"spec": {"type": "object"}}}}}]
        }
    })
}

fn inventory() -> Inventory {
    Inventory {
        xrds: vec![xrd()],
        claims: vec![json!({
            "apiVersion": "platform.plinth.dev/v1alpha1", "kind": "PostgreSQLInstance",
            "metadata": {"name": "orders", "namespace": "team-a", "labels": {"app.oam.dev/name": "shop", "bad": "a b"}},
            "spec": {"resourceRef": {"apiVersion": "platform.plinth.dev/v1alpha1", "kind": "XPostgreSQLInstance", "name": "orders-x1"}}
        })],
        composites: vec![json!({
            "apiVersion": "platform.plinth.dev/v1alpha1", "kind": "XPostgreSQLInstance",
            "metadata": {"name": "orders-x1"},
            "spec": {"resourceRefs": [
                {"apiVersion": "postgres.local.plinth.dev/v1alpha1", "kind": "Database", "name": "orders-x1-database"},
                {"apiVersion": "postgres.local.plinth.dev/v1alpha1", "kind": "Database", "name": "not-there"}
            ]}
        })],
        managed: vec![json!({
            "apiVersion": "postgres.local.plinth.dev/v1alpha1", "kind": "Database",
            "metadata": {"name": "orders-x1-database"}
        })],
        applications: vec![json!({
            "apiVersion": "core.oam.dev/v1beta1", "kind": "Application",
            "metadata": {"name": "shop", "namespace": "team-a", "annotations": {"backstage.io/owner": "group:default/shop"}},
            "status": {"appliedResources": [{"apiVersion": "platform.plinth.dev/v1alpha1", "kind": "PostgreSQLInstance", "name": "orders", "namespace": "team-a"}]}
        })],
        namespaces: vec![
            json!({"metadata": {"name": "team-a", "labels": {"backstage.io/owner": "team-a-devs"}}}),
        ],
    }
}

#[test]
fn names_that_fit_are_kept_and_others_are_mapped_deterministically() {
    let cases = [
        (
            "orders",
            "orders",
            "a short DNS name is a valid entity name",
        ),
        (
            "xpostgresqlinstances.platform.plinth.dev",
            "xpostgresqlinstances.platform.plinth.dev",
            "dots are allowed",
        ),
    ];
    for (name, want, reason) in cases {
        assert_eq!(entity_name(name), want, "{reason}");
    }
    let long = "a".repeat(70);
    let mapped = entity_name(&long);
    assert_eq!(
        mapped.len(),
        63,
        "a long name is cut to 54 characters and a hash"
    );
    assert_eq!(mapped, entity_name(&long), "the mapping is deterministic");
    assert_ne!(
        mapped,
        entity_name(&"a".repeat(71)),
        "two long names do not collide"
    );
    assert!(
        entity_name("a:b").starts_with("a-b-"),
        "invalid characters become '-' and a hash is added"
    );
}

#[test]
fn the_inventory_becomes_api_resource_and_component_entities() {
    let entities = entities(&inventory());
    let summary: Vec<(String, String, String)> = entities
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["metadata"]["namespace"].as_str().unwrap().to_string(),
                e["metadata"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        summary,
        vec![
            s("API", "default", "xpostgresqlinstances.platform.plinth.dev"),
            s("Resource", "team-a", "orders"),
            s("Resource", "default", "orders-x1-database"),
            s("Component", "team-a", "shop"),
        ]
    );
    let api = &entities[0];
    assert_eq!(api["spec"]["type"], "openapi");
    assert_eq!(api["spec"]["owner"], DEFAULT_API_OWNER);
    let doc: Value = serde_json::from_str(api["spec"]["definition"].as_str().unwrap()).unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    assert!(doc["paths"]
        ["/apis/platform.plinth.dev/v1alpha1/namespaces/{namespace}/postgresqlinstances"]
        .is_object());
    assert!(doc["components"]["schemas"]["PostgreSQLInstance"]["properties"]["spec"].is_object());
    let claim = &entities[1];
    assert_eq!(claim["spec"]["type"], "PostgreSQLInstance");
    assert_eq!(
        claim["spec"]["owner"], "team-a-devs",
        "the namespace's owner label is used"
    );
    assert_eq!(
        claim["spec"]["dependsOn"],
        json!(["resource:default/orders-x1-database"]),
        "only managed resources that exist are named"
    );
    assert_eq!(
        claim["metadata"]["labels"],
        json!({"app.oam.dev/name": "shop"}),
        "labels Backstage would refuse are left out"
    );
    assert_eq!(
        claim["metadata"]["annotations"][LABEL_SELECTOR],
        "crossplane.io/claim-name=orders,crossplane.io/claim-namespace=team-a"
    );
    let component = &entities[3];
    assert_eq!(component["spec"]["owner"], "group:default/shop");
    assert_eq!(
        component["spec"]["dependsOn"],
        json!(["resource:team-a/orders"])
    );
    assert_eq!(
        component["metadata"]["annotations"][LABEL_SELECTOR],
        "app.oam.dev/name=shop"
    );
    let yaml = to_yaml(&entities).unwrap();
    assert_eq!(
        yaml.matches("---\n").count(),
        4,
        "one YAML document per entity"
    );
}

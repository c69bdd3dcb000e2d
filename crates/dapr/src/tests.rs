use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;

fn component(metadata: Value) -> Value {
    json!({"apiVersion": "dapr.io/v1alpha1", "kind": "Component",
           "metadata": {"name": "orders", "namespace": "team-a", "uid": "u"},
           "spec": {"type": "state.postgresql", "version": "v1", "metadata": metadata},
           "scopes": ["checkout"]})
}

#[test]
fn the_crd_is_daprs() {
    let crd = component_crd().unwrap();
    assert_eq!(crd["metadata"]["name"], "components.dapr.io");
    assert_eq!(crd["spec"]["versions"][0]["name"], "v1alpha1");
}

#[test]
fn components_are_checked_against_components_contrib() {
    let rules = Rules::state_postgresql_v1().unwrap();
    assert_eq!(
        (rules.type_.as_str(), rules.version.as_str()),
        ("state.postgresql", "v1")
    );
    let cases = [
        (
            "a connection string through a secret is complete",
            json!([{"name": "connectionString", "secretKeyRef": {"name": "orders", "key": "connectionString"}}]),
            vec![],
        ),
        (
            "a sensitive field as a plain value is refused",
            json!([{"name": "connectionString", "value": "host=x password=y"}]),
            vec!["spec.metadata[0]: Invalid value: \"connectionString\" is sensitive and must come through secretKeyRef, not a plain value"],
        ),
        (
            "a field the store does not have is refused",
            json!([{"name": "connectionString", "secretKeyRef": {"name": "s", "key": "k"}}, {"name": "tablename", "value": "t"}, {"name": "colour", "value": "blue"}]),
            vec!["spec.metadata[2].name: Unsupported value: \"colour\": state.postgresql v1 has no such metadata field"],
        ),
        (
            "without a connection string no profile is complete",
            json!([{"name": "tableName", "value": "t"}]),
            vec!["spec.metadata: Required value: no authentication profile is complete; one of: Connection string (connectionString); azuread (useAzureAD, connectionString); aws (useAWSIAM, connectionString)"],
        ),
    ];
    for (reason, metadata, want) in cases {
        assert_eq!(rules.check(&component(metadata)), want, "{reason}");
    }
}

#[test]
fn the_standalone_export_resolves_secrets_into_a_local_file_store() {
    let components = [component(
        json!([{"name": "connectionString", "secretKeyRef": {"name": "orders-db", "key": "connectionString"}}]),
    )];
    let secrets = BTreeMap::from([(
        "orders-db".to_string(),
        BTreeMap::from([
            (
                "connectionString".to_string(),
                "host=h dbname=d".to_string(),
            ),
            ("password".to_string(), "p".to_string()),
        ]),
    )]);
    let files = standalone(&components, &secrets, "/tmp/out/").unwrap();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["orders.yaml", "plinth-secrets.yaml", "secrets.json"]
    );
    let exported: Value = serde_saphyr::from_str(&files[0].1).unwrap();
    assert_eq!(exported["auth"]["secretStore"], SECRET_STORE);
    assert_eq!(
        exported["metadata"],
        json!({"name": "orders"}),
        "no namespace or server-side fields"
    );
    assert_eq!(exported["scopes"], json!(["checkout"]));
    let store: Value = serde_saphyr::from_str(&files[1].1).unwrap();
    assert_eq!(
        store["spec"]["metadata"][0]["value"],
        "/tmp/out/secrets.json"
    );
    let json: Value = serde_json::from_str(&files[2].1).unwrap();
    assert_eq!(
        json,
        json!({"orders-db": {"connectionString": "host=h dbname=d"}}),
        "only what is referenced"
    );
    let missing = standalone(&components, &BTreeMap::new(), "/tmp").unwrap_err();
    assert!(missing.to_string().contains("does not exist"), "{missing}");
}

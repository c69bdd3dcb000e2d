//! Dapr end to end: a PostgreSQLInstance claimed with the Dapr opt-in gets
//! a `state.postgresql` Component in its namespace that validates against
//! Dapr's CRD schema and components-contrib's metadata rules; its
//! connectionString, read from the claim's Secret, connects to the real
//! PostgreSQL with psql; and `plinth dapr components` writes everything
//! `dapr run --resources-path` needs.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{eventually, plinth_bin, postgres_url, psql, Plinth};

const CLAIM: &str = r#"
apiVersion: platform.plinth.dev/v1alpha1
kind: PostgreSQLInstance
metadata: {name: orders, namespace: shop}
spec:
  parameters:
    size: small
    dapr: {name: statestore, scopes: [checkout]}
  compositionSelector:
    matchLabels: {provider: local, dapr: state}
  writeConnectionSecretToRef: {name: orders-db}
"#;

async fn json(plinth: &Plinth, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&plinth.kubectl_ok(&all).await).expect("kubectl JSON")
}

/// Validates `object` against a JSON schema with Python's jsonschema (the
/// one kubernetes-validate brings into the test venv).
async fn validate_schema(schema: &Value, object: &Value) -> Result<(), String> {
    let python = std::env::var("PLINTH_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("PLINTH_TEST_PYTHON is not set: run the tests with ./scripts/test.sh")
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let (schema_file, object_file) = (
        dir.path().join("schema.json"),
        dir.path().join("object.json"),
    );
    std::fs::write(&schema_file, schema.to_string()).expect("write");
    std::fs::write(&object_file, object.to_string()).expect("write");
    let out = tokio::process::Command::new(python)
        .args([
            "-c",
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1])); obj = json.load(open(sys.argv[2]))\n\
             errors = [f'{\"/\".join(map(str, e.path))}: {e.message}' for e in jsonschema.Draft7Validator(schema).iter_errors(obj)]\n\
             print('\\n'.join(errors)); sys.exit(1 if errors else 0)",
        ])
        .arg(&schema_file)
        .arg(&object_file)
        .output()
        .await
        .expect("python runs");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn decoded(secret: &Value, key: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(
            secret["data"][key]
                .as_str()
                .unwrap_or_else(|| panic!("the Secret has {key}")),
        )
        .expect("base64");
    String::from_utf8(bytes).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_with_the_dapr_opt_in_gets_a_working_state_store_component() {
    let url = postgres_url();
    let plinth = Plinth::start_with(&["--local-postgres-url", &url]).await;
    plinth.kubectl_ok(&["create", "namespace", "shop"]).await;
    plinth.apply_ok(&["apply", "-f", "-"], CLAIM).await;
    plinth
        .kubectl_ok(&[
            "-n",
            "shop",
            "wait",
            "--for=condition=Ready",
            "postgresqlinstance/orders",
            "--timeout=120s",
        ])
        .await;
    eventually(Duration::from_secs(30), "the Component", || async {
        plinth
            .kubectl(&["-n", "shop", "get", "components.dapr.io", "statestore"])
            .await
            .ok
    })
    .await;
    let component = json(
        &plinth,
        &["-n", "shop", "get", "components.dapr.io", "statestore"],
    )
    .await;
    assert_eq!(component["spec"]["type"], "state.postgresql");
    assert_eq!(component["spec"]["version"], "v1");
    assert_eq!(
        component["scopes"],
        serde_json::json!(["checkout"]),
        "the claim's app ids"
    );
    assert_eq!(
        component["spec"]["metadata"][0]["secretKeyRef"],
        serde_json::json!({"name": "orders-db", "key": "connectionString"}),
        "the connection string comes from the claim's own Secret"
    );

    // Valid against Dapr's CRD schema, as served, and components-contrib's rules.
    let crd = json(&plinth, &["get", "crd", "components.dapr.io"]).await;
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    validate_schema(schema, &component)
        .await
        .expect("the Component fits Dapr's CRD schema");
    let mut broken = component.clone();
    broken["spec"]["metadata"][0]["secretKeyRef"] = serde_json::json!({"key": "x"});
    assert!(
        validate_schema(schema, &broken).await.is_err(),
        "the schema check can fail"
    );
    let rules = dapr::Rules::state_postgresql_v1().expect("bundled rules");
    assert_eq!(
        rules.check(&component),
        Vec::<String>::new(),
        "components-contrib's metadata rules"
    );

    // The connectionString connects to the real PostgreSQL.
    let secret = json(&plinth, &["-n", "shop", "get", "secret", "orders-db"]).await;
    let connection_string = decoded(&secret, "connectionString");
    assert!(
        connection_string.contains("dbname="),
        "libpq keyword form: {connection_string}"
    );
    assert_eq!(
        psql(&connection_string, "select current_user")
            .await
            .expect("psql connects"),
        decoded(&secret, "username")
    );

    // The standalone export is complete: each Component names the local
    // file secret store, which names a JSON file holding what each
    // secretKeyRef reads.
    let out_dir = plinth.dir.path().join("dapr");
    let run = tokio::process::Command::new(plinth_bin())
        .args(["dapr", "components", "-n", "shop", "--kubeconfig"])
        .arg(&plinth.kubeconfig)
        .arg("--output")
        .arg(&out_dir)
        .output()
        .await
        .expect("plinth dapr runs");
    assert!(
        run.status.success(),
        "plinth dapr components failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let read = |file: &str| -> Value {
        let text =
            std::fs::read_to_string(out_dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        serde_saphyr::from_str(&text).expect("YAML")
    };
    let exported = read("statestore.yaml");
    let store = read("plinth-secrets.yaml");
    assert_eq!(
        exported["auth"]["secretStore"], store["metadata"]["name"],
        "the Component names the secret store"
    );
    assert_eq!(store["spec"]["type"], "secretstores.local.file");
    let setting = |name: &str| {
        store["spec"]["metadata"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["name"] == name))
            .and_then(|m| m["value"].as_str())
            .unwrap_or_else(|| panic!("the store sets {name}"))
            .to_string()
    };
    assert_eq!(setting("multiValued"), "true");
    let secrets: Value = serde_json::from_str(
        &std::fs::read_to_string(setting("secretsFile")).expect("the secrets file the store names"),
    )
    .expect("JSON");
    let reference = &exported["spec"]["metadata"][0]["secretKeyRef"];
    let value = secrets[reference["name"].as_str().unwrap()][reference["key"].as_str().unwrap()]
        .as_str()
        .expect("the secretKeyRef resolves in the file");
    assert_eq!(value, connection_string);
    validate_schema(schema, &exported)
        .await
        .expect("the exported Component fits the CRD too");
    assert_eq!(rules.check(&exported), Vec::<String>::new());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(out_dir.join("secrets.json"))
        .expect("secrets.json")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "the secrets file is the owner's alone");

    // Deleting the claim takes the Component with it.
    plinth
        .kubectl_ok(&[
            "-n",
            "shop",
            "delete",
            "postgresqlinstance",
            "orders",
            "--timeout=60s",
        ])
        .await;
    eventually(Duration::from_secs(30), "the Component to go", || async {
        !plinth
            .kubectl(&["-n", "shop", "get", "components.dapr.io", "statestore"])
            .await
            .ok
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_component_crd_is_served_unless_turned_off() {
    let with = Plinth::start().await;
    with.kubectl_ok(&["get", "crd", "components.dapr.io"]).await;
    drop(with);
    let without = Plinth::start_with(&["--no-dapr"]).await;
    assert!(
        !without
            .kubectl(&["get", "crd", "components.dapr.io"])
            .await
            .ok,
        "--no-dapr serves no Dapr CRD"
    );
}

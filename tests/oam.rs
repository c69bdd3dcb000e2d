//! OAM end to end through the real kubectl: a KubeVela-shaped Application
//! with a database and a process that depends on it becomes two claims on
//! a real PostgreSQL; the second waits for the first; the Application
//! reports healthy services; removing a component deletes its claim and
//! deleting the Application deletes the rest. What Plinth does not run (an
//! unknown trait, a CUE schematic) is refused with a message.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{eventually, postgres_url, psql, Plinth};

const APP: &str = include_str!("../examples/oam/application.yaml");

async fn json(plinth: &Plinth, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&plinth.kubectl_ok(&all).await).expect("kubectl JSON")
}

async fn exists(plinth: &Plinth, kind: &str, name: &str) -> bool {
    plinth
        .kubectl(&["-n", "default", "get", kind, name])
        .await
        .ok
}

fn ready_since(object: &Value) -> Option<jiff::Timestamp> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready" && c["status"] == "True")?["lastTransitionTime"]
        .as_str()?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_becomes_claims_in_order_and_goes_with_its_components() {
    let url = postgres_url();
    let plinth = Plinth::start_with(&["--local-postgres-url", &url]).await;

    // Every XRD with a claim has a ComponentDefinition, named by the
    // claim's singular name, with its parameter schema where KubeVela keeps it.
    eventually(
        Duration::from_secs(30),
        "generated ComponentDefinitions",
        || async {
            plinth
                .kubectl(&[
                    "-n",
                    "vela-system",
                    "get",
                    "componentdefinition",
                    "postgresqlinstance",
                    "computeinstance",
                ])
                .await
                .ok
        },
    )
    .await;
    let definition = json(
        &plinth,
        &[
            "-n",
            "vela-system",
            "get",
            "componentdefinition",
            "postgresqlinstance",
        ],
    )
    .await;
    assert_eq!(
        definition["spec"]["workload"]["definition"]["kind"],
        "PostgreSQLInstance"
    );
    assert_eq!(
        definition["spec"]["workload"]["definition"]["apiVersion"],
        "platform.plinth.dev/v1alpha1"
    );
    let configmap = json(
        &plinth,
        &[
            "-n",
            "vela-system",
            "get",
            "configmap",
            "component-schema-postgresqlinstance",
        ],
    )
    .await;
    let schema: Value = serde_json::from_str(
        configmap["data"]["openapi-v3-json-schema"]
            .as_str()
            .expect("schema"),
    )
    .expect("schema JSON");
    assert_eq!(
        schema["properties"]["size"]["enum"],
        serde_json::json!(["small", "medium", "large"]),
        "the schema is the claim's parameters: {schema}"
    );

    plinth.apply_ok(&["apply", "-f", "-"], APP).await;

    // 1. Two claims, named <app>-<component>, labelled and owned as KubeVela does.
    eventually(Duration::from_secs(30), "the database's claim", || async {
        exists(&plinth, "postgresqlinstance", "shop-db").await
    })
    .await;
    plinth
        .kubectl_ok(&[
            "-n",
            "default",
            "wait",
            "--for=condition=Ready",
            "postgresqlinstance/shop-db",
            "--timeout=120s",
        ])
        .await;
    eventually(Duration::from_secs(60), "the process's claim", || async {
        exists(&plinth, "computeinstance", "shop-web").await
    })
    .await;
    plinth
        .kubectl_ok(&[
            "-n",
            "default",
            "wait",
            "--for=condition=Ready",
            "computeinstance/shop-web",
            "--timeout=120s",
        ])
        .await;
    let db = json(
        &plinth,
        &["-n", "default", "get", "postgresqlinstance", "shop-db"],
    )
    .await;
    let web = json(
        &plinth,
        &["-n", "default", "get", "computeinstance", "shop-web"],
    )
    .await;
    assert_eq!(db["metadata"]["labels"]["app.oam.dev/name"], "shop");
    assert_eq!(db["metadata"]["labels"]["app.oam.dev/component"], "db");
    assert_eq!(db["metadata"]["labels"]["team"], "shop", "the labels trait");
    assert_eq!(
        web["metadata"]["annotations"]["owner"], "shop-team",
        "the annotations trait"
    );
    assert_eq!(
        db["spec"]["parameters"]["size"], "small",
        "properties become spec.parameters"
    );
    assert_eq!(
        db["spec"]["writeConnectionSecretToRef"]["name"], "shop-db",
        "the connection-secret trait"
    );
    assert_eq!(db["metadata"]["ownerReferences"][0]["kind"], "Application");
    assert_eq!(db["metadata"]["ownerReferences"][0]["controller"], true);

    // 2. The process waited for the database: its claim was made no earlier
    // than the database's claim became Ready.
    let db_ready = ready_since(&db).expect("db Ready time");
    let web_created: jiff::Timestamp = web["metadata"]["creationTimestamp"]
        .as_str()
        .expect("created")
        .parse()
        .expect("time");
    assert!(
        web_created >= db_ready,
        "web ({web_created}) was claimed before db was Ready ({db_ready})"
    );

    // The claimed database is real: psql connects with its Secret.
    use base64::Engine;
    let secret = json(&plinth, &["-n", "default", "get", "secret", "shop-db"]).await;
    let uri = base64::engine::general_purpose::STANDARD
        .decode(secret["data"]["uri"].as_str().expect("uri"))
        .expect("base64");
    let uri = String::from_utf8(uri).expect("utf-8");
    assert_eq!(psql(&uri, "select 1").await.expect("psql"), "1");

    // 3. Both Ready: the Application says so in KubeVela's shape.
    eventually(
        Duration::from_secs(60),
        "the Application to be running",
        || async {
            let app = json(&plinth, &["-n", "default", "get", "application", "shop"]).await;
            app["status"]["status"] == "running"
                && app["status"]["services"]
                    .as_array()
                    .is_some_and(|s| s.len() == 2 && s.iter().all(|s| s["healthy"] == true))
        },
    )
    .await;
    let table = plinth
        .kubectl_ok(&["-n", "default", "get", "application", "shop"])
        .await;
    assert!(
        table.contains("running"),
        "kubectl get shows the phase: {table}"
    );

    // 4. Removing a component deletes its claim.
    let without_web = APP[..APP.find("    - name: web").expect("web component")].to_string();
    plinth.apply_ok(&["apply", "-f", "-"], &without_web).await;
    eventually(
        Duration::from_secs(60),
        "the removed component's claim to go",
        || async { !exists(&plinth, "computeinstance", "shop-web").await },
    )
    .await;
    assert!(
        exists(&plinth, "postgresqlinstance", "shop-db").await,
        "the other claim stays"
    );
    eventually(Duration::from_secs(30), "one service left", || async {
        let app = json(&plinth, &["-n", "default", "get", "application", "shop"]).await;
        app["status"]["services"]
            .as_array()
            .is_some_and(|s| s.len() == 1)
    })
    .await;

    // 5. Deleting the Application deletes the rest.
    plinth
        .kubectl_ok(&["-n", "default", "delete", "application", "shop"])
        .await;
    eventually(
        Duration::from_secs(60),
        "the Application's claims to go",
        || async { !exists(&plinth, "postgresqlinstance", "shop-db").await },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_plinth_does_not_run_is_refused_with_a_message() {
    let plinth = Plinth::start().await;
    let unknown_trait = r#"
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: scaled, namespace: default}
spec:
  components:
    - name: db
      type: postgresqlinstance
      traits:
        - type: scaler
          properties: {replicas: 3}
"#;
    let run = plinth
        .kubectl_stdin(&["apply", "-f", "-"], Some(unknown_trait))
        .await;
    assert!(!run.ok, "an unknown trait is refused");
    assert!(
        run.stderr
            .contains("spec.components[0].traits[0].type: Unsupported value: \"scaler\"")
            && run
                .stderr
                .contains("\"labels\", \"annotations\", \"connection-secret\""),
        "the refusal names the field and what is supported: {}",
        run.stderr
    );

    let step = r#"
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: stepped, namespace: default}
spec:
  components: [{name: db, type: postgresqlinstance}]
  workflow:
    steps: [{name: notify, type: notification}]
"#;
    let run = plinth
        .kubectl_stdin(&["apply", "-f", "-"], Some(step))
        .await;
    assert!(
        !run.ok && run.stderr.contains("\"apply-component\""),
        "an unknown step is refused: {}",
        run.stderr
    );

    // A policy, which no schema can refuse by name, is refused in status.
    let policy = r#"
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: placed, namespace: default}
spec:
  components: [{name: db, type: postgresqlinstance}]
  policies: [{name: where, type: topology, properties: {clusters: [local]}}]
"#;
    plinth.apply_ok(&["apply", "-f", "-"], policy).await;
    eventually(
        Duration::from_secs(30),
        "the policy to be refused in status",
        || async {
            let app = json(&plinth, &["-n", "default", "get", "application", "placed"]).await;
            app["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter().any(|c| {
                    c["type"] == "Parsed"
                        && c["status"] == "False"
                        && c["message"]
                            .as_str()
                            .is_some_and(|m| m.contains("topology"))
                })
            })
        },
    )
    .await;
    assert!(
        !exists(&plinth, "postgresqlinstance", "placed-db").await,
        "nothing of a refused Application is made"
    );

    // A ComponentDefinition that needs CUE is refused, and so is a component of its type.
    let cue = r#"
apiVersion: core.oam.dev/v1beta1
kind: ComponentDefinition
metadata: {name: webservice, namespace: vela-system}
spec:
  workload:
    definition: {apiVersion: apps/v1, kind: Deployment}
  schematic:
    cue:
      template: |
        output: {apiVersion: "apps/v1", kind: "Deployment"}
"#;
    plinth.apply_ok(&["apply", "-f", "-"], cue).await;
    eventually(
        Duration::from_secs(30),
        "the CUE definition to be refused",
        || async {
            let d = json(
                &plinth,
                &[
                    "-n",
                    "vela-system",
                    "get",
                    "componentdefinition",
                    "webservice",
                ],
            )
            .await;
            d["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter().any(|c| {
                    c["type"] == "Ready"
                        && c["status"] == "False"
                        && c["message"]
                            .as_str()
                            .is_some_and(|m| m.contains("does not evaluate CUE"))
                })
            })
        },
    )
    .await;
    let uses_cue = r#"
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: web, namespace: default}
spec:
  components: [{name: site, type: webservice, properties: {image: nginx}}]
"#;
    plinth.apply_ok(&["apply", "-f", "-"], uses_cue).await;
    eventually(
        Duration::from_secs(30),
        "the component's service to say why",
        || async {
            let app = json(&plinth, &["-n", "default", "get", "application", "web"]).await;
            app["status"]["services"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("does not evaluate CUE"))
                && app["status"]["services"][0]["healthy"] == false
        },
    )
    .await;
}

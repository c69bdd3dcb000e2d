//! The Backstage catalog end to end: a platform with two XRDs (the
//! built-in interfaces), several claims and an OAM Application is exported
//! by `plinth catalog` and by `plinth up`'s HTTPS endpoint, and the export
//! passes Backstage's own validators (`@backstage/catalog-model`, run by
//! tests/backstage/validate.js), dependsOn references included. The
//! Crossplane-shaped path the community's Backstage plugins walk (XRD →
//! claim → spec.resourceRef → XR → spec.resourceRefs → managed resources)
//! is walked through the API.

mod support;

use std::time::Duration;

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::Api;
use serde_json::Value;
use support::{eventually, plinth_bin, postgres_url, Plinth};

const CLAIMS: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: team-a
  labels: {backstage.io/owner: team-a-devs}
---
apiVersion: platform.plinth.dev/v1alpha1
kind: PostgreSQLInstance
metadata: {name: orders, namespace: team-a}
spec:
  parameters: {size: small}
  writeConnectionSecretToRef: {name: orders-db}
---
apiVersion: platform.plinth.dev/v1alpha1
kind: PostgreSQLInstance
metadata:
  name: billing
  namespace: team-a
  annotations: {backstage.io/owner: group:default/billing}
spec:
  parameters: {size: medium}
---
apiVersion: platform.plinth.dev/v1alpha1
kind: ComputeInstance
metadata: {name: worker, namespace: team-a}
spec:
  parameters: {command: ["sleep", "infinity"]}
"#;

/// Runs Backstage's validators on a catalog file; returns their report.
async fn validate(path: &std::path::Path) -> String {
    let script = std::env::var("PLINTH_TEST_BACKSTAGE_VALIDATE").unwrap_or_else(|_| {
        panic!("PLINTH_TEST_BACKSTAGE_VALIDATE is not set: run the tests with ./scripts/test.sh, which installs @backstage/catalog-model")
    });
    let out = tokio::process::Command::new("node")
        .arg(&script)
        .arg(path)
        .output()
        .await
        .expect("node runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "Backstage's validators refused the export: {report}\n{}",
        std::fs::read_to_string(path).unwrap_or_default()
    );
    report
}

fn resource(api_version: &str, kind: &str, plural: &str) -> ApiResource {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_export_passes_backstages_validators_and_the_crossplane_path_holds() {
    let url = postgres_url();
    let plinth = Plinth::start_with(&["--local-postgres-url", &url]).await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Offered",
            "xrd/xpostgresqlinstances.platform.plinth.dev",
            "xrd/xcomputeinstances.platform.plinth.dev",
            "--timeout=60s",
        ])
        .await;
    plinth.apply_ok(&["apply", "-f", "-"], CLAIMS).await;
    let app = include_str!("../examples/oam/application.yaml")
        .replace("namespace: default", "namespace: team-a");
    plinth.apply_ok(&["apply", "-f", "-"], &app).await;
    for claim in [
        "postgresqlinstance/orders",
        "postgresqlinstance/billing",
        "computeinstance/worker",
        "postgresqlinstance/shop-db",
        "computeinstance/shop-web",
    ] {
        plinth
            .kubectl_ok(&[
                "-n",
                "team-a",
                "wait",
                "--for=condition=Ready",
                claim,
                "--timeout=120s",
            ])
            .await;
    }
    eventually(
        Duration::from_secs(30),
        "the Application to list its claims",
        || async {
            let out = plinth
                .kubectl_ok(&[
                    "-n",
                    "team-a",
                    "get",
                    "application",
                    "shop",
                    "-o",
                    "jsonpath={.status.appliedResources[*].name}",
                ])
                .await;
            out.contains("shop-db") && out.contains("shop-web")
        },
    )
    .await;

    // `plinth catalog` writes the entities; Backstage's validators accept them.
    let file = plinth.dir.path().join("catalog.yaml");
    let out = tokio::process::Command::new(plinth_bin())
        .args(["catalog", "--kubeconfig"])
        .arg(&plinth.kubeconfig)
        .arg("--output")
        .arg(&file)
        .output()
        .await
        .expect("plinth catalog runs");
    assert!(
        out.status.success(),
        "plinth catalog failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = validate(&file).await;
    assert!(report.contains("API=2"), "both XRDs are APIs: {report}");
    assert!(
        report.contains("Component=1"),
        "the Application is a Component: {report}"
    );

    let text = std::fs::read_to_string(&file).expect("export");
    let entities: Vec<Value> = text
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_saphyr::from_str(d).expect("entity YAML"))
        .collect();
    let find = |kind: &str, name: &str| {
        entities
            .iter()
            .find(|e| e["kind"] == kind && e["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name} in the export:\n{text}"))
            .clone()
    };
    let orders = find("Resource", "orders");
    assert_eq!(orders["spec"]["type"], "PostgreSQLInstance");
    assert_eq!(
        orders["spec"]["owner"], "team-a-devs",
        "the namespace's backstage.io/owner label"
    );
    assert_eq!(
        find("Resource", "billing")["spec"]["owner"],
        "group:default/billing",
        "the claim's own annotation wins"
    );
    let depends = orders["spec"]["dependsOn"].as_array().expect("dependsOn");
    assert_eq!(
        depends.len(),
        1,
        "the database the claim stands for: {depends:?}"
    );
    assert!(
        orders["metadata"]["annotations"]["backstage.io/kubernetes-label-selector"]
            .as_str()
            .is_some_and(|s| s.contains("crossplane.io/claim-name=orders"))
    );
    let api = find("API", "xpostgresqlinstances.platform.plinth.dev");
    let openapi: Value =
        serde_json::from_str(api["spec"]["definition"].as_str().expect("definition"))
            .expect("OpenAPI JSON");
    assert_eq!(openapi["openapi"], "3.0.3");
    assert!(
        openapi["components"]["schemas"]["PostgreSQLInstance"]["properties"]["spec"]["properties"]
            ["parameters"]
            .is_object()
    );
    let shop = find("Component", "shop");
    assert_eq!(
        shop["spec"]["dependsOn"].as_array().map(Vec::len),
        Some(2),
        "the Application depends on its two claims"
    );
    for e in &entities {
        assert!(
            e["metadata"]["annotations"]["backstage.io/kubernetes-label-selector"].is_string(),
            "every entity has a label selector: {e}"
        );
    }

    // The same from plinth up's HTTPS endpoint, with its own token only.
    let endpoint = std::fs::read_to_string(plinth.dir.path().join("catalog-url"))
        .expect("catalog-url")
        .trim()
        .to_string();
    let token =
        std::fs::read_to_string(plinth.dir.path().join("catalog-token")).expect("catalog-token");
    let http = plinth.http();
    let denied = http.get(&endpoint).send().await.expect("request");
    assert_eq!(denied.status(), 401, "no token, no catalog");
    let admin = http
        .get(&endpoint)
        .bearer_auth(plinth.token())
        .send()
        .await
        .expect("request");
    assert_eq!(admin.status(), 401, "the API token is not the catalog's");
    let written = http
        .post(&endpoint)
        .bearer_auth(token.trim())
        .send()
        .await
        .expect("request");
    assert_eq!(written.status(), 405, "the catalog is read-only");
    let served = http
        .get(format!("{endpoint}?token={}", token.trim()))
        .send()
        .await
        .expect("request");
    assert_eq!(served.status(), 200);
    let body = served.text().await.expect("body");
    let served_file = plinth.dir.path().join("served.yaml");
    std::fs::write(&served_file, &body).expect("write");
    validate(&served_file).await;
    let with_header = http
        .get(&endpoint)
        .bearer_auth(token.trim())
        .send()
        .await
        .expect("request");
    assert_eq!(with_header.status(), 200, "a bearer token works too");

    // The Crossplane-shaped path, walked through the API as the
    // community's Backstage plugins walk it.
    let client = plinth.client().await;
    let xrds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &resource(
            "apiextensions.crossplane.io/v1",
            "CompositeResourceDefinition",
            "compositeresourcedefinitions",
        ),
    );
    let mut walked = 0;
    for xrd in xrds.list(&ListParams::default()).await.expect("XRDs").items {
        let spec = &xrd.data["spec"];
        let version = spec["versions"][0]["name"].as_str().expect("version");
        let group = spec["group"].as_str().expect("group");
        let claim_kind = resource(
            &format!("{group}/{version}"),
            spec["claimNames"]["kind"].as_str().expect("claim kind"),
            spec["claimNames"]["plural"].as_str().expect("plural"),
        );
        let claims: Api<DynamicObject> = Api::all_with(client.clone(), &claim_kind);
        for claim in claims
            .list(&ListParams::default())
            .await
            .expect("claims")
            .items
        {
            let reference = claim.data["spec"]["resourceRef"]
                .as_object()
                .expect("spec.resourceRef")
                .clone();
            let mut keys: Vec<&str> = reference.keys().map(String::as_str).collect();
            keys.sort();
            assert_eq!(
                keys,
                ["apiVersion", "kind", "name"],
                "spec.resourceRef as Crossplane has it"
            );
            let xr_kind = resource(
                reference["apiVersion"].as_str().unwrap(),
                reference["kind"].as_str().unwrap(),
                spec["names"]["plural"].as_str().expect("plural"),
            );
            let xrs: Api<DynamicObject> = Api::all_with(client.clone(), &xr_kind);
            let xr = xrs
                .get(reference["name"].as_str().unwrap())
                .await
                .expect("the composite resourceRef names");
            assert_eq!(
                xr.data["spec"]["claimRef"]["name"],
                serde_json::json!(claim.metadata.name),
                "spec.claimRef points back"
            );
            assert_eq!(
                xr.data["spec"]["claimRef"]["namespace"],
                serde_json::json!(claim.metadata.namespace)
            );
            for r in xr.data["spec"]["resourceRefs"]
                .as_array()
                .expect("spec.resourceRefs")
            {
                let (api_version, kind, name) = (
                    r["apiVersion"].as_str().unwrap(),
                    r["kind"].as_str().unwrap(),
                    r["name"].as_str().unwrap(),
                );
                let (group, version) = api_version.split_once('/').unwrap();
                let (managed, _) = kube::discovery::pinned_kind(
                    &client,
                    &GroupVersionKind::gvk(group, version, kind),
                )
                .await
                .expect("a served kind");
                let api: Api<DynamicObject> = Api::all_with(client.clone(), &managed);
                let object = api
                    .get(name)
                    .await
                    .expect("the managed resource resourceRefs names");
                assert!(
                    object.data["spec"]["forProvider"].is_object(),
                    "a managed resource"
                );
                walked += 1;
            }
        }
    }
    assert!(
        walked >= 5,
        "every claim reached its managed resources ({walked})"
    );
}

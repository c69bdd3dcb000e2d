//! End to end: a real `plinth up` (with the Google Cloud provider beside
//! it), the real `kubectl`, and the stand-in Google Cloud of
//! `support/fake_gcp.rs` in this test process. The same PostgreSQLInstance
//! and ComputeInstance claims as on AWS, changed in `compositionSelector`
//! alone; what exists in "Google Cloud" is checked in the stand-in, never
//! through Plinth.

#[path = "../../../tests/support/mod.rs"]
mod support;

#[path = "support/fake_gcp.rs"]
mod fake_gcp;

use std::time::Duration;

use fake_gcp::{error_body, FakeGcp, Fault, PROJECT, REGION, SERVICE_ACCOUNT_KEY};
use support::{eventually, Plinth};

const READY_TIMEOUT: &str = "--timeout=120s";

/// The credentials Secret and the `default` ProviderConfig, pointed at the
/// stand-in.
fn gcp_config(url: &str) -> String {
    let key = SERVICE_ACCOUNT_KEY.replace('\n', "\n    ");
    format!(
        r#"apiVersion: v1
kind: Secret
metadata:
  name: gcp-creds
  namespace: plinth-system
stringData:
  credentials.json: |
    {key}
---
apiVersion: gcp.plinth.dev/v1alpha1
kind: ProviderConfig
metadata:
  name: default
spec:
  projectID: {PROJECT}
  region: {REGION}
  endpoint: {url}
  credentials:
    source: Secret
    secretRef:
      namespace: plinth-system
      name: gcp-creds
      key: credentials.json
"#
    )
}

/// Starts Plinth and waits until it serves the Google Cloud kinds and config.
/// Drift polls are quick, so a change Google finishes after an Observe is
/// seen within the test.
async fn plinth_with_gcp(fake: &FakeGcp) -> Plinth {
    let plinth = Plinth::start_with(&["--poll-interval", "2s"]).await;
    eventually(Duration::from_secs(60), "the Google Cloud provider's kinds are served", || async {
        plinth
            .kubectl(&["get", "providerconfigs.gcp.plinth.dev,databaseinstances.sql.gcp.plinth.dev,instances.compute.gcp.plinth.dev"])
            .await
            .ok
    })
    .await;
    plinth
        .apply_ok(&["apply", "-f", "-"], &gcp_config(&fake.url))
        .await;
    plinth
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_claim_becomes_a_cloud_sql_instance() {
    let fake = FakeGcp::start().await;
    let plinth = plinth_with_gcp(&fake).await;
    let claim = r#"apiVersion: platform.plinth.dev/v1alpha1
kind: PostgreSQLInstance
metadata:
  name: orders
  namespace: default
spec:
  compositionSelector:
    matchLabels:
      provider: gcp
  parameters:
    size: small
    storageGB: 25
    version: "15"
  writeConnectionSecretToRef:
    name: orders-db
"#;
    plinth.apply_ok(&["apply", "-f", "-"], claim).await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            "postgresqlinstance/orders",
            READY_TIMEOUT,
        ])
        .await;

    let name = plinth
        .kubectl_ok(&[
            "get",
            "databaseinstances.sql.gcp.plinth.dev",
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ])
        .await;
    let instance = fake
        .sql_instance(name.trim())
        .expect("a Cloud SQL instance");
    assert_eq!(instance["state"], "RUNNABLE");
    assert_eq!(instance["settings"]["tier"], "db-custom-1-3840");
    assert_eq!(instance["settings"]["dataDiskSizeGb"], "25");
    assert_eq!(instance["region"], REGION);

    let address = instance["ipAddresses"][0]["ipAddress"]
        .as_str()
        .expect("an address")
        .to_string();
    assert_eq!(
        plinth.secret_value("default", "orders-db", "host").await,
        address
    );
    assert_eq!(
        plinth.secret_value("default", "orders-db", "port").await,
        "5432"
    );
    let password = plinth
        .secret_value("default", "orders-db", "password")
        .await;
    assert_eq!(
        Some(password.clone()),
        fake.password(name.trim(), "postgres"),
        "the root password Cloud SQL was given"
    );
    let uri = plinth.secret_value("default", "orders-db", "uri").await;
    assert_eq!(
        uri,
        format!("postgresql://postgres:{password}@{address}:5432/postgres")
    );
    let status_address = plinth
        .kubectl_ok(&[
            "get",
            "postgresqlinstance",
            "orders",
            "-o",
            "jsonpath={.status.address}",
        ])
        .await;
    assert_eq!(status_address.trim(), address);

    // A bigger size reaches Cloud SQL as a patch of the tier.
    plinth
        .kubectl_ok(&[
            "patch",
            "postgresqlinstance",
            "orders",
            "--type=merge",
            "-p",
            r#"{"spec":{"parameters":{"size":"medium"}}}"#,
        ])
        .await;
    eventually(
        Duration::from_secs(60),
        "the tier changes in Cloud SQL",
        || async {
            fake.sql_instance(name.trim())
                .is_some_and(|i| i["settings"]["tier"] == "db-custom-2-7680")
        },
    )
    .await;

    plinth
        .kubectl_ok(&["delete", "postgresqlinstance", "orders", "--timeout=120s"])
        .await;
    assert!(
        fake.sql_instance(name.trim()).is_none(),
        "deleting the claim returned once the instance was gone"
    );
    let left = plinth
        .kubectl_ok(&["get", "databaseinstances", "-o", "name"])
        .await;
    assert!(left.trim().is_empty(), "managed resources left: {left}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compute_claim_becomes_a_compute_engine_instance() {
    let fake = FakeGcp::start().await;
    let plinth = plinth_with_gcp(&fake).await;
    let claim = r#"apiVersion: platform.plinth.dev/v1alpha1
kind: ComputeInstance
metadata:
  name: web
  namespace: default
spec:
  compositionSelector:
    matchLabels:
      provider: gcp
  parameters:
    cpu: 2
    memoryMiB: 4096
    command: ["python3", "-m", "http.server", "8080"]
    ports: [8080]
  writeConnectionSecretToRef:
    name: web-conn
"#;
    plinth.apply_ok(&["apply", "-f", "-"], claim).await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            "computeinstance/web",
            READY_TIMEOUT,
        ])
        .await;
    let name = plinth
        .kubectl_ok(&[
            "get",
            "instances.compute.gcp.plinth.dev",
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ])
        .await;
    let zone = format!("{REGION}-b");
    let vm = fake
        .vm(&zone, name.trim())
        .expect("a Compute Engine instance in zone b of the region");
    assert_eq!(vm["status"], "RUNNING");
    assert!(
        vm["machineType"]
            .as_str()
            .unwrap_or("")
            .ends_with("/machineTypes/e2-medium"),
        "{}",
        vm["machineType"]
    );
    let user_data = vm["metadata"]["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["key"] == "user-data"))
        .and_then(|i| i["value"].as_str())
        .expect("user-data metadata");
    assert!(
        user_data.contains(r#"["python3","-m","http.server","8080"]"#),
        "{user_data}"
    );
    let host = plinth.secret_value("default", "web-conn", "host").await;
    assert_eq!(
        host,
        vm["networkInterfaces"][0]["networkIP"]
            .as_str()
            .expect("an address")
    );
    assert_eq!(
        plinth.secret_value("default", "web-conn", "port").await,
        "8080"
    );
    let written_zone = plinth
        .kubectl_ok(&[
            "get",
            "instances.compute.gcp.plinth.dev",
            "-o",
            "jsonpath={.items[0].spec.forProvider.zone}",
        ])
        .await;
    assert_eq!(
        written_zone.trim(),
        zone,
        "the zone chosen is written back to the spec"
    );

    plinth
        .kubectl_ok(&["delete", "computeinstance", "web", "--timeout=120s"])
        .await;
    assert_eq!(
        fake.vm_count(name.trim()),
        0,
        "the instance is gone from Compute Engine"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_and_a_quota_error_give_clear_conditions_and_create_nothing() {
    let fake = FakeGcp::start().await;
    fake.revoke();
    let plinth = plinth_with_gcp(&fake).await;
    let claim = r#"apiVersion: platform.plinth.dev/v1alpha1
kind: PostgreSQLInstance
metadata:
  name: refused
  namespace: default
spec:
  compositionSelector:
    matchLabels:
      provider: gcp
  parameters:
    size: small
"#;
    plinth.apply_ok(&["apply", "-f", "-"], claim).await;
    eventually(
        Duration::from_secs(60),
        "Synced=False says the credentials were refused",
        || async {
            let (status, message) = plinth
                .condition("databaseinstances.sql.gcp.plinth.dev", "Synced")
                .await;
            status == "False" && message.contains("invalid authentication credentials")
        },
    )
    .await;
    assert_eq!(fake.totals(), (0, 0), "nothing was created");

    fake.unrevoke();
    fake.fail(Fault {
        method: "POST",
        path_contains: "/instances".into(),
        times: 1000,
        status: 403,
        body: error_body(403, "", "quotaExceeded", "Quota exceeded for quota metric 'Instances' and limit 'Instances per project' of service 'sqladmin.googleapis.com'."),
    });
    eventually(
        Duration::from_secs(60),
        "Synced=False names the quota",
        || async {
            let (status, message) = plinth
                .condition("databaseinstances.sql.gcp.plinth.dev", "Synced")
                .await;
            status == "False"
                && message.contains("Quota exceeded for quota metric 'Instances'")
                && message.contains("quotaExceeded")
        },
    )
    .await;
    assert_eq!(fake.totals(), (0, 0), "nothing was created");
    fake.clear_faults();
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            "postgresqlinstance/refused",
            READY_TIMEOUT,
        ])
        .await;
    assert_eq!(fake.totals(), (1, 0), "created once the quota allows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_killed_while_a_create_operation_is_pending_leaves_exactly_one_instance() {
    let fake = FakeGcp::start().await;
    let plinth = plinth_with_gcp(&fake).await;
    fake.hold(true);
    let claim = r#"apiVersion: platform.plinth.dev/v1alpha1
kind: ComputeInstance
metadata:
  name: guarded
  namespace: default
spec:
  compositionSelector:
    matchLabels:
      provider: gcp
  parameters:
    cpu: 1
    memoryMiB: 1024
"#;
    plinth.apply_ok(&["apply", "-f", "-"], claim).await;
    eventually(
        Duration::from_secs(60),
        "the insert is accepted and its operation pending",
        || async { fake.totals().1 == 1 },
    )
    .await;
    let pid = plinth.provider_pid("gcp").await;
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .expect("kill");
    assert!(killed.success(), "kill -9 {pid}");
    eventually(
        Duration::from_secs(60),
        "plinth up restarts the provider",
        || async {
            let now = plinth.provider_pid("gcp").await;
            !now.is_empty() && now != pid
        },
    )
    .await;
    fake.hold(false);
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            "computeinstance/guarded",
            READY_TIMEOUT,
        ])
        .await;
    assert_eq!(fake.totals(), (0, 1), "exactly one instance");
    let inserts = fake
        .requests()
        .iter()
        .filter(|r| r.starts_with("POST") && r.ends_with("/instances"))
        .count();
    assert!(inserts >= 1, "{:?}", fake.requests());
}

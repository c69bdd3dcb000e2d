//! End to end: a real `plinth up` (with the Azure provider beside it), the
//! real `kubectl`, and the stand-in Azure of `support/fake_arm.rs` in this
//! test process. The same PostgreSQLInstance and ComputeInstance claims as
//! on the other clouds, changed in `compositionSelector` alone; what exists
//! in "Azure" is checked in the stand-in, never through Plinth.

#[path = "../../../tests/support/mod.rs"]
mod support;

#[path = "support/fake_arm.rs"]
mod fake_arm;

use std::time::Duration;

use fake_arm::{
    arm_error, sdk_auth, subnet_id, FakeArm, Fault, LOCATION, RESOURCE_GROUP, SUBSCRIPTION, TENANT,
};
use support::{eventually, Plinth};

const READY_TIMEOUT: &str = "--timeout=120s";

/// The credentials Secret and the `default` ProviderConfig, pointed at the
/// stand-in and trusting its CA.
fn azure_config(fake: &FakeArm) -> String {
    format!(
        r#"apiVersion: v1
kind: Secret
metadata:
  name: azure-creds
  namespace: plinth-system
stringData:
  credentials.json: '{sdk_auth}'
---
apiVersion: azure.plinth.dev/v1alpha1
kind: ProviderConfig
metadata:
  name: default
spec:
  subscriptionID: {SUBSCRIPTION}
  tenantID: {TENANT}
  location: {LOCATION}
  resourceGroupName: {RESOURCE_GROUP}
  subnetID: {subnet}
  endpoints:
    resourceManager: {url}
    activeDirectory: {url}
    caBundle: |
      {ca}
  credentials:
    source: Secret
    secretRef:
      namespace: plinth-system
      name: azure-creds
"#,
        sdk_auth = sdk_auth(),
        subnet = subnet_id(),
        url = fake.url,
        ca = fake.ca_pem.trim().replace('\n', "\n      "),
    )
}

async fn plinth_with_azure(fake: &FakeArm) -> Plinth {
    let plinth = Plinth::start_with(&["--poll-interval", "2s"]).await;
    eventually(Duration::from_secs(60), "the Azure provider's kinds are served", || async {
        plinth
            .kubectl(&["get", "providerconfigs.azure.plinth.dev,postgresqlflexibleservers.dbforpostgresql.azure.plinth.dev,virtualmachines.compute.azure.plinth.dev"])
            .await
            .ok
    })
    .await;
    plinth
        .apply_ok(&["apply", "-f", "-"], &azure_config(fake))
        .await;
    plinth
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_claim_becomes_a_flexible_server() {
    let fake = FakeArm::start().await;
    let plinth = plinth_with_azure(&fake).await;
    let claim = r#"apiVersion: platform.plinth.dev/v1alpha1
kind: PostgreSQLInstance
metadata:
  name: orders
  namespace: default
spec:
  compositionSelector:
    matchLabels:
      provider: azure
  parameters:
    size: medium
    storageGB: 50
    version: "16"
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
            "postgresqlflexibleservers",
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ])
        .await;
    let name = name.trim();
    let server = fake
        .resource(&format!("Microsoft.DBforPostgreSQL/flexibleServers/{name}"))
        .expect("a flexible server");
    assert_eq!(server["sku"]["name"], "Standard_D2ds_v5");
    assert_eq!(server["properties"]["storage"]["storageSizeGB"], 64);
    assert_eq!(server["properties"]["version"], "16");
    assert_eq!(server["location"], LOCATION);
    let host = format!("{name}.postgres.database.azure.com");
    assert_eq!(
        plinth.secret_value("default", "orders-db", "host").await,
        host
    );
    let password = plinth
        .secret_value("default", "orders-db", "password")
        .await;
    assert_eq!(
        Some(password.clone()),
        fake.password(&format!("Microsoft.DBforPostgreSQL/flexibleServers/{name}")),
        "the administrator password Azure was given"
    );
    let uri = plinth.secret_value("default", "orders-db", "uri").await;
    assert!(
        uri.starts_with("postgresql://plinthadmin:")
            && uri.ends_with(&format!("@{host}:5432/postgres")),
        "{uri}"
    );

    // A bigger size reaches Azure as a PUT of the new SKU.
    plinth
        .kubectl_ok(&[
            "patch",
            "postgresqlinstance",
            "orders",
            "--type=merge",
            "-p",
            r#"{"spec":{"parameters":{"size":"large"}}}"#,
        ])
        .await;
    eventually(
        Duration::from_secs(60),
        "the SKU changes in Azure",
        || async {
            fake.resource(&format!("{FLEXIBLE_SERVERS}/{name}"))
                .is_some_and(|s| {
                    s["sku"]["name"] == "Standard_D4ds_v5"
                        && s["properties"]["provisioningState"] == "Succeeded"
                })
        },
    )
    .await;

    plinth
        .kubectl_ok(&["delete", "postgresqlinstance", "orders", "--timeout=120s"])
        .await;
    assert_eq!(
        fake.count(&format!("Microsoft.DBforPostgreSQL/flexibleServers/{name}")),
        0,
        "gone from Azure"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compute_claim_becomes_a_virtual_machine() {
    let fake = FakeArm::start().await;
    let plinth = plinth_with_azure(&fake).await;
    let claim = r#"apiVersion: platform.plinth.dev/v1alpha1
kind: ComputeInstance
metadata:
  name: web
  namespace: default
spec:
  compositionSelector:
    matchLabels:
      provider: azure
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
            "virtualmachines.compute.azure.plinth.dev",
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ])
        .await;
    let name = name.trim();
    let vm = fake
        .resource(&format!("Microsoft.Compute/virtualMachines/{name}"))
        .expect("a virtual machine");
    assert_eq!(
        vm["properties"]["hardwareProfile"]["vmSize"],
        "Standard_B2s"
    );
    let nic = fake
        .resource(&format!("Microsoft.Network/networkInterfaces/{name}-nic"))
        .expect("its network interface");
    assert_eq!(
        nic["properties"]["ipConfigurations"][0]["properties"]["subnet"]["id"],
        subnet_id()
    );
    let address = nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"]
        .as_str()
        .expect("an address")
        .to_string();
    assert_eq!(
        plinth.secret_value("default", "web-conn", "host").await,
        address
    );
    assert_eq!(
        plinth.secret_value("default", "web-conn", "port").await,
        "8080"
    );

    plinth
        .kubectl_ok(&["delete", "computeinstance", "web", "--timeout=120s"])
        .await;
    assert_eq!(
        fake.count(&format!("Microsoft.Compute/virtualMachines/{name}")),
        0
    );
    assert_eq!(
        fake.count(&format!("Microsoft.Network/networkInterfaces/{name}-nic")),
        0,
        "the interface went with it"
    );
}

const FLEXIBLE_SERVERS: &str = "Microsoft.DBforPostgreSQL/flexibleServers";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_and_a_quota_error_give_clear_conditions_and_create_nothing() {
    let fake = FakeArm::start().await;
    fake.revoke();
    let plinth = plinth_with_azure(&fake).await;
    let claim = r#"apiVersion: platform.plinth.dev/v1alpha1
kind: PostgreSQLInstance
metadata:
  name: refused
  namespace: default
spec:
  compositionSelector:
    matchLabels:
      provider: azure
  parameters:
    size: small
"#;
    plinth.apply_ok(&["apply", "-f", "-"], claim).await;
    let resource = "postgresqlflexibleservers.dbforpostgresql.azure.plinth.dev";
    eventually(
        Duration::from_secs(60),
        "Synced=False says the secret was refused",
        || async {
            let (status, message) = plinth.condition(resource, "Synced").await;
            status == "False" && message.contains("AADSTS7000215")
        },
    )
    .await;
    assert_eq!(fake.total(FLEXIBLE_SERVERS), 0, "nothing was created");

    fake.unrevoke();
    fake.fail(Fault {
        method: "PUT",
        path_contains: "flexibleServers".into(),
        times: 1000,
        status: 409,
        body: arm_error("QuotaExceeded", "Operation could not be completed as it results in exceeding approved Total Regional vCores quota."),
    });
    eventually(
        Duration::from_secs(60),
        "Synced=False names the quota",
        || async {
            let (status, message) = plinth.condition(resource, "Synced").await;
            status == "False"
                && message.contains("QuotaExceeded")
                && message.contains("approved Total Regional vCores quota")
        },
    )
    .await;
    assert_eq!(fake.total(FLEXIBLE_SERVERS), 0, "nothing was created");
    fake.clear_faults();
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            "postgresqlinstance/refused",
            READY_TIMEOUT,
        ])
        .await;
    assert_eq!(
        fake.total(FLEXIBLE_SERVERS),
        1,
        "created once the quota allows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_killed_while_a_create_operation_is_pending_leaves_exactly_one_server() {
    let fake = FakeArm::start().await;
    let plinth = plinth_with_azure(&fake).await;
    fake.hold(true);
    let claim = r#"apiVersion: platform.plinth.dev/v1alpha1
kind: PostgreSQLInstance
metadata:
  name: guarded
  namespace: default
spec:
  compositionSelector:
    matchLabels:
      provider: azure
  parameters:
    size: small
"#;
    plinth.apply_ok(&["apply", "-f", "-"], claim).await;
    eventually(
        Duration::from_secs(60),
        "the PUT is accepted and its operation pending",
        || async { fake.total(FLEXIBLE_SERVERS) == 1 },
    )
    .await;
    let pid = plinth.provider_pid("azure").await;
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .expect("kill");
    assert!(killed.success(), "kill -9 {pid}");
    eventually(
        Duration::from_secs(60),
        "plinth up restarts the provider",
        || async {
            let now = plinth.provider_pid("azure").await;
            !now.is_empty() && now != pid
        },
    )
    .await;
    fake.hold(false);
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            "postgresqlinstance/guarded",
            READY_TIMEOUT,
        ])
        .await;
    assert_eq!(fake.total(FLEXIBLE_SERVERS), 1, "exactly one server");
}

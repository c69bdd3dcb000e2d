//! The Azure provider's kinds against the stand-in Azure of
//! `support/fake_arm.rs`, over HTTPS and with tokens from its Entra ID
//! token endpoint through `azure_identity`: operations followed across
//! calls at the pace Retry-After sets, readiness, someone else's resource,
//! and ARM's errors in Plinth terms.

#[path = "support/fake_arm.rs"]
mod fake_arm;

use std::sync::Arc;
use std::time::Duration;

use fake_arm::{
    arm_error, sdk_auth, subnet_id, FakeArm, Fault, LOCATION, RESOURCE_GROUP, SUBSCRIPTION, TENANT,
};
use plinth_provider_azure::compute::VirtualMachine;
use plinth_provider_azure::config::Pool;
use plinth_provider_azure::operations::Operations;
use plinth_provider_azure::postgresql::FlexibleServer;
use plinth_provider_azure::resource::Managed;
use plinth_provider_azure::sql::Server;
use provider_sdk::{
    ExternalResource, Observation, ProviderConfig, ProviderError, Readiness, Request,
};
use serde_json::{json, Value};

struct World {
    fake: FakeArm,
    config: Arc<ProviderConfig>,
    server: Managed<Server>,
    postgres: Managed<FlexibleServer>,
    vm: Managed<VirtualMachine>,
}

async fn world_with(secret: &str) -> World {
    plinth_provider_azure::install_crypto();
    let fake = FakeArm::start().await;
    let credentials = sdk_auth().replace(fake_arm::CLIENT_SECRET, secret);
    let config = Arc::new(ProviderConfig {
        name: "default".into(),
        spec: json!({
            "subscriptionID": SUBSCRIPTION, "tenantID": TENANT, "location": LOCATION,
            "resourceGroupName": RESOURCE_GROUP, "subnetID": subnet_id(),
            "endpoints": {"resourceManager": fake.url, "activeDirectory": fake.url, "caBundle": fake.ca_pem}
        }),
        credentials: [("credentials.json".to_string(), credentials.into_bytes())].into(),
    });
    let pool = Arc::new(Pool::default());
    let operations = Arc::new(Operations::default());
    World {
        server: Managed::new(Server, pool.clone(), operations.clone()),
        postgres: Managed::new(FlexibleServer, pool.clone(), operations.clone()),
        vm: Managed::new(VirtualMachine, pool, operations),
        fake,
        config,
    }
}

async fn world() -> World {
    world_with(fake_arm::CLIENT_SECRET).await
}

impl World {
    fn request(&self, name: &str, uid: &str, for_provider: Value) -> Request {
        Request {
            name: name.into(),
            uid: uid.into(),
            external_name: String::new(),
            for_provider,
            secrets: Default::default(),
            secret_seed: format!("seed of {uid}").into_bytes(),
            config: self.config.clone(),
        }
    }
}

/// Observes every 200 ms until `done`, for at most 15 s.
async fn observe_until(
    kind: &dyn ExternalResource,
    req: &Request,
    done: impl Fn(&Observation) -> bool,
) -> (Observation, Vec<Observation>) {
    let mut seen = Vec::new();
    for _ in 0..75 {
        let o = kind.observe(req).await.expect("observe");
        if done(&o) {
            return (o, seen);
        }
        seen.push(o);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("not done in 15 s; last: {:?}", seen.last());
}

fn text(details: &provider_sdk::ConnectionDetails, key: &str) -> String {
    String::from_utf8_lossy(details.get(key).map(Vec::as_slice).unwrap_or_default()).to_string()
}

fn postgres_spec() -> Value {
    json!({"version": "15", "sku": {"name": "Standard_B1ms", "tier": "Burstable"}, "storageSizeGb": 32})
}

#[tokio::test]
async fn a_flexible_server_is_creating_until_its_operation_succeeds_polled_as_retry_after_asks() {
    let w = world().await;
    let req = w.request("orders-pg", "uid-orders", postgres_spec());
    w.postgres.create(&req).await.expect("create");
    let polls_before = || {
        w.fake
            .requests()
            .iter()
            .filter(|r| r.contains("/operationStatuses/"))
            .count()
    };
    let (ready, creating) =
        observe_until(&w.postgres, &req, |o| o.readiness == Readiness::Available).await;
    assert!(!creating.is_empty(), "the operation took polls");
    assert!(
        creating.iter().all(|o| o.readiness == Readiness::Creating),
        "{creating:?}"
    );
    assert!(
        creating.iter().any(|o| o.message.contains("Retry-After")),
        "observes inside Retry-After do not poll: {creating:?}"
    );
    let polls = polls_before();
    assert!(
        polls >= 2 && polls < creating.len(),
        "polled {polls} times over {} observes, no faster than Retry-After",
        creating.len() + 1
    );
    assert_eq!(
        ready.at_provider["fullyQualifiedDomainName"],
        "orders-pg.postgres.database.azure.com"
    );
    assert!(ready.up_to_date, "{}", ready.diff);
    let password = w
        .fake
        .password("Microsoft.DBforPostgreSQL/flexibleServers/orders-pg")
        .expect("an administrator password");
    assert_eq!(text(&ready.connection, "password"), password);
    assert!(
        password.chars().any(|c| c.is_ascii_uppercase())
            && password.chars().any(|c| !c.is_ascii_alphanumeric()),
        "Azure's complexity rule: {password}"
    );
    assert_eq!(
        text(&ready.connection, "connectionString"),
        format!("host=orders-pg.postgres.database.azure.com port=5432 user=plinthadmin password={password} dbname=postgres sslmode=require")
    );
    assert_eq!(
        ready.late_init,
        Some(json!({"resourceGroupName": RESOURCE_GROUP, "location": LOCATION})),
        "the ProviderConfig's choices are written back, so changing it later moves nothing"
    );
}

#[tokio::test]
async fn an_update_is_put_once_and_seen_when_done() {
    let w = world().await;
    let req = w.request("billing-pg", "uid-billing", postgres_spec());
    w.postgres.create(&req).await.expect("create");
    observe_until(&w.postgres, &req, |o| o.readiness == Readiness::Available).await;
    let bigger = w.request("billing-pg", "uid-billing", json!({"version": "15", "sku": {"name": "Standard_D2ds_v5", "tier": "GeneralPurpose"}, "storageSizeGb": 64}));
    let stale = w.postgres.observe(&bigger).await.expect("observe");
    assert!(
        stale
            .diff
            .contains("sku.name: \"Standard_B1ms\" → \"Standard_D2ds_v5\""),
        "{}",
        stale.diff
    );
    w.postgres.update(&bigger).await.expect("update");
    let (done, during) = observe_until(&w.postgres, &bigger, |o| {
        o.up_to_date && !o.message.contains("waiting")
    })
    .await;
    assert!(
        during.iter().all(|o| o.up_to_date),
        "nothing is sent again while the update runs: {during:?}"
    );
    assert_eq!(done.at_provider["storageSizeGb"], 64);
    let puts = w
        .fake
        .requests()
        .iter()
        .filter(|r| r.starts_with("PUT") && r.contains("billing-pg"))
        .count();
    assert_eq!(puts, 2, "one create, one update: {:?}", w.fake.requests());
    let shrink = w.request("billing-pg", "uid-billing", json!({"version": "15", "sku": {"name": "Standard_D2ds_v5", "tier": "GeneralPurpose"}, "storageSizeGb": 32}));
    let err = w
        .postgres
        .update(&shrink)
        .await
        .expect_err("storage only grows");
    assert!(err.to_string().contains("only grows"), "{err}");
}

#[tokio::test]
async fn someone_elses_server_is_not_taken_over() {
    let w = world().await;
    w.fake.seed_sql_server("theirs");
    let req = w.request("theirs", "uid-mine", json!({}));
    let err = w.server.observe(&req).await.expect_err("not ours");
    assert!(
        err.to_string().contains("was not made by this resource"),
        "{err}"
    );
    let err = w.server.create(&req).await.expect_err("not taken over");
    assert!(
        err.to_string().contains("was not made by this resource"),
        "{err}"
    );
}

#[tokio::test]
async fn a_virtual_machine_gets_its_interface_first_and_deletes_it_with_itself() {
    let w = world().await;
    let req = w.request("web-vm", "uid-web", json!({"vmSize": "Standard_B2s", "port": 8080, "customData": "#cloud-config\nruncmd:\n  - [\"true\"]\n"}));
    w.vm.create(&req)
        .await
        .expect("create makes the interface, then the machine");
    assert_eq!(
        w.fake
            .count("Microsoft.Network/networkInterfaces/web-vm-nic"),
        1
    );
    assert_eq!(w.fake.count("Microsoft.Compute/virtualMachines/web-vm"), 1);
    let log = w.fake.requests();
    let nic = log
        .iter()
        .position(|r| r.starts_with("PUT") && r.ends_with("/web-vm-nic"))
        .expect("the interface was put");
    let vm = log
        .iter()
        .position(|r| r.starts_with("PUT") && r.ends_with("/virtualMachines/web-vm"))
        .expect("the machine was put");
    assert!(nic < vm, "the interface first: {log:?}");
    for _ in 0..75 {
        let o = w.vm.observe(&req).await.expect("observe");
        if o.readiness == Readiness::Available {
            assert_eq!(text(&o.connection, "port"), "8080");
            assert!(
                text(&o.connection, "host").starts_with("10.0.0."),
                "{:?}",
                o.connection
            );
            break;
        }
        if !o.exists {
            w.vm.create(&req).await.expect("create the machine");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let vm = w
        .fake
        .resource("Microsoft.Compute/virtualMachines/web-vm")
        .expect("a machine");
    assert_eq!(
        vm["properties"]["hardwareProfile"]["vmSize"],
        "Standard_B2s"
    );
    assert_eq!(
        vm["properties"]["storageProfile"]["imageReference"]["offer"],
        "ubuntu-24_04-lts"
    );
    w.vm.delete(&req).await.expect("delete");
    observe_until(&w.vm, &req, |o| !o.exists).await;
    assert_eq!(
        w.fake
            .count("Microsoft.Network/networkInterfaces/web-vm-nic"),
        0,
        "deleteOption Delete took the interface"
    );
}

#[tokio::test]
async fn arm_errors_reach_synced_in_plinth_terms() {
    let w = world().await;
    let req = w.request("errs-pg", "uid-errs", postgres_spec());
    let cases = [
        ("429 is throttling", 429, arm_error("TooManyRequests", "Number of write requests for subscription exceeded the limit."), "throttled"),
        ("a quota error is terminal", 409, arm_error("QuotaExceeded", "Operation results in exceeding quota limits of Core."), "terminal"),
        ("a missing role is not retried hot", 403, arm_error("AuthorizationFailed", "The client does not have authorization to perform action 'Microsoft.DBforPostgreSQL/flexibleServers/write'."), "unauthorized"),
        ("an invalid parameter is terminal", 400, arm_error("InvalidParameterValue", "Invalid value given for parameter storageSizeGB."), "terminal"),
        ("5xx is retried", 503, arm_error("ServiceUnavailable", "The server is currently unable to handle the request."), "retryable"),
    ];
    for (reason, status, body, want) in cases {
        let message = body["error"]["message"]
            .as_str()
            .expect("message")
            .to_string();
        w.fake.fail(Fault {
            method: "PUT",
            path_contains: "errs-pg".into(),
            times: 1,
            status,
            body,
        });
        let err = w.postgres.create(&req).await.expect_err(reason);
        let got = match &err {
            ProviderError::Throttled(_) => "throttled",
            ProviderError::Terminal(_) => "terminal",
            ProviderError::Unauthorized(_) => "unauthorized",
            ProviderError::Retryable(_) => "retryable",
            ProviderError::NotConfigured(_) => "not configured",
        };
        assert_eq!(got, want, "{reason}: {err}");
        assert!(
            err.to_string().contains(&message)
                && err.to_string().contains(&format!("HTTP {status}")),
            "{reason}: {err}"
        );
        w.fake.clear_faults();
    }
}

#[tokio::test]
async fn a_failed_operation_reports_arm_s_code_and_message() {
    let w = world().await;
    w.fake.fail_next_operation("big-pg", "ZonalAllocationFailed", "Allocation failed. We do not have sufficient capacity for the requested VM size in this zone.");
    let req = w.request("big-pg", "uid-big", postgres_spec());
    w.postgres
        .create(&req)
        .await
        .expect("the PUT is accepted; its operation fails later");
    let mut failure = None;
    for _ in 0..75 {
        match w.postgres.observe(&req).await {
            Ok(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let err = failure.expect("the failure is reported");
    assert!(
        err.to_string().contains("ZonalAllocationFailed")
            && err.to_string().contains("sufficient capacity"),
        "{err}"
    );
    assert!(matches!(err, ProviderError::Terminal(_)), "{err}");
}

#[tokio::test]
async fn a_refused_secret_is_unauthorized_and_a_missing_resource_group_terminal() {
    let w = world_with("not-the-secret").await;
    let err = w
        .postgres
        .observe(&w.request("any-pg", "uid-any", postgres_spec()))
        .await
        .expect_err("refused");
    assert!(matches!(err, ProviderError::Unauthorized(_)), "{err}");
    assert!(
        err.to_string().contains("AADSTS7000215"),
        "Entra ID's own words: {err}"
    );

    let w = world().await;
    let mut spec = postgres_spec();
    spec["resourceGroupName"] = json!("nowhere");
    let err = w
        .postgres
        .observe(&w.request("lost-pg", "uid-lost", spec))
        .await
        .expect_err("no such group");
    assert!(matches!(err, ProviderError::Terminal(_)), "{err}");
    assert!(err.to_string().contains("ResourceGroupNotFound"), "{err}");
}

//! The SDK's conformance harness, run against the Azure provider and the
//! stand-in Azure of `support/fake_arm.rs` (no emulator of Azure Resource
//! Manager runs here): every kind, counted in the stand-in.

#[path = "support/fake_arm.rs"]
mod fake_arm;

use std::sync::Arc;
use std::time::Duration;

use fake_arm::{sdk_auth, subnet_id, FakeArm, LOCATION, RESOURCE_GROUP, SUBSCRIPTION, TENANT};
use provider_sdk::conformance::{Case, Counter, Harness};
use serde_json::{json, Value};

fn counter(fake: &Arc<FakeArm>, path: &'static str) -> Counter {
    let fake = fake.clone();
    Arc::new(move |name: String| {
        let n = fake.count(&format!("{path}/{name}"));
        Box::pin(async move { n })
    })
}

pub fn config_spec(fake: &FakeArm) -> Value {
    json!({
        "subscriptionID": SUBSCRIPTION, "tenantID": TENANT, "location": LOCATION,
        "resourceGroupName": RESOURCE_GROUP, "subnetID": subnet_id(),
        "endpoints": {"resourceManager": fake.url, "activeDirectory": fake.url, "caBundle": fake.ca_pem},
        "credentials": {"source": "Secret", "secretRef": {"namespace": "plinth-system", "name": "azure", "key": "sp.json"}}
    })
}

#[tokio::test]
async fn azure_provider_is_conformant() {
    let fake = Arc::new(FakeArm::start().await);
    fake.seed_sql_server("shared-sql");
    Harness {
        provider: plinth_provider_azure::provider(),
        config_spec: config_spec(&fake),
        credentials: [("sp.json".to_string(), sdk_auth().into_bytes())].into(),
        cases: vec![
            Case {
                kind: "Server".into(),
                name: "conformance-sql".into(),
                for_provider: json!({"version": "12.0", "minimalTlsVersion": "1.2", "tags": {"team": "platform"}}),
                updated_for_provider: json!({"version": "12.0", "minimalTlsVersion": "1.2", "publicNetworkAccess": "Disabled", "tags": {"team": "data"}}),
                secrets: Default::default(),
                count: Some(counter(&fake, "Microsoft.Sql/servers")),
            },
            Case {
                kind: "Database".into(),
                name: "orders".into(),
                for_provider: json!({"serverName": "shared-sql", "sku": {"name": "Basic"}, "maxSizeBytes": 1073741824_i64}),
                updated_for_provider: json!({"serverName": "shared-sql", "sku": {"name": "S0", "tier": "Standard"}, "maxSizeBytes": 2147483648_i64}),
                secrets: Default::default(),
                count: Some(counter(&fake, "Microsoft.Sql/servers/shared-sql/databases")),
            },
            Case {
                kind: "FirewallRule".into(),
                name: "office".into(),
                for_provider: json!({"serverName": "shared-sql", "startIpAddress": "203.0.113.0", "endIpAddress": "203.0.113.255"}),
                updated_for_provider: json!({"serverName": "shared-sql", "startIpAddress": "203.0.113.0", "endIpAddress": "203.0.113.127"}),
                secrets: Default::default(),
                count: Some(counter(&fake, "Microsoft.Sql/servers/shared-sql/firewallRules")),
            },
            Case {
                kind: "PostgreSQLFlexibleServer".into(),
                name: "conformance-pg".into(),
                for_provider: json!({"version": "15", "sku": {"name": "Standard_B1ms", "tier": "Burstable"}, "storageSizeGb": 32}),
                updated_for_provider: json!({"version": "15", "sku": {"name": "Standard_D2ds_v5", "tier": "GeneralPurpose"}, "storageSizeGb": 64, "highAvailability": "ZoneRedundant"}),
                secrets: Default::default(),
                count: Some(counter(&fake, "Microsoft.DBforPostgreSQL/flexibleServers")),
            },
            Case {
                kind: "VirtualMachine".into(),
                name: "conformance-vm".into(),
                for_provider: json!({"vmSize": "Standard_B1s", "customData": "#cloud-config\n", "port": 8080, "tags": {"team": "web"}}),
                updated_for_provider: json!({"vmSize": "Standard_B2s", "customData": "#cloud-config\n", "port": 8080, "tags": {"team": "api"}}),
                secrets: Default::default(),
                count: Some(counter(&fake, "Microsoft.Compute/virtualMachines")),
            },
        ],
        timeout: Duration::from_secs(30),
    }
    .run()
    .await
    .expect("conformance");
    assert_eq!(
        fake.count("Microsoft.Network/networkInterfaces/conformance-vm-nic"),
        0,
        "the interface went with the machine"
    );
}

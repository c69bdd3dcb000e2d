//! The SDK's conformance harness, run against the Google Cloud provider and
//! the stand-in Google Cloud of `support/fake_gcp.rs` (no emulator of Cloud
//! SQL Admin or Compute Engine runs here): every kind, with the resources
//! counted in the stand-in rather than through the provider.

#[path = "support/fake_gcp.rs"]
mod fake_gcp;

use std::sync::Arc;
use std::time::Duration;

use fake_gcp::{FakeGcp, PROJECT, REGION, SERVICE_ACCOUNT_KEY, ZONE};
use provider_sdk::conformance::{Case, Counter, Harness};
use serde_json::json;

fn counter(fake: &Arc<FakeGcp>, count: fn(&FakeGcp, &str) -> usize) -> Counter {
    let fake = fake.clone();
    Arc::new(move |name: String| {
        let n = count(&fake, &name);
        Box::pin(async move { n })
    })
}

#[tokio::test]
async fn gcp_provider_is_conformant() {
    let fake = Arc::new(FakeGcp::start().await);
    // Databases and users need an instance that is RUNNABLE throughout.
    fake.seed_sql_instance("shared-pg", "POSTGRES_15");
    Harness {
        provider: plinth_provider_gcp::provider(),
        config_spec: json!({
            "projectID": PROJECT,
            "region": REGION,
            "endpoint": fake.url,
            "credentials": {"source": "Secret", "secretRef": {"namespace": "plinth-system", "name": "gcp", "key": "sa.json"}}
        }),
        credentials: [("sa.json".to_string(), SERVICE_ACCOUNT_KEY.as_bytes().to_vec())].into(),
        cases: vec![
            Case {
                kind: "DatabaseInstance".into(),
                name: "conformance-sql".into(),
                for_provider: json!({
                    "databaseVersion": "POSTGRES_15", "tier": "db-custom-1-3840", "edition": "ENTERPRISE",
                    "diskSizeGb": 20, "availabilityType": "ZONAL", "userLabels": {"team": "platform"},
                    "backupConfiguration": {"enabled": true, "startTime": "03:00"},
                    "ipConfiguration": {"ipv4Enabled": true, "authorizedNetworks": [{"name": "office", "value": "203.0.113.0/24"}]}
                }),
                updated_for_provider: json!({
                    "databaseVersion": "POSTGRES_15", "tier": "db-custom-2-7680", "edition": "ENTERPRISE",
                    "diskSizeGb": 30, "availabilityType": "REGIONAL", "userLabels": {"team": "data"},
                    "backupConfiguration": {"enabled": true, "startTime": "03:00"},
                    "ipConfiguration": {"ipv4Enabled": true, "authorizedNetworks": [{"name": "office", "value": "203.0.113.0/24"}]}
                }),
                secrets: Default::default(),
                count: Some(counter(&fake, |f, n| f.sql_instance_count(n))),
            },
            Case {
                kind: "Database".into(),
                name: "orders".into(),
                for_provider: json!({"instance": "shared-pg"}),
                updated_for_provider: json!({"instance": "shared-pg", "charset": "UTF8", "collation": "C"}),
                secrets: Default::default(),
                count: Some(counter(&fake, |f, n| f.database_count("shared-pg", n))),
            },
            Case {
                kind: "User".into(),
                name: "app".into(),
                for_provider: json!({"instance": "shared-pg", "database": "orders"}),
                updated_for_provider: json!({"instance": "shared-pg", "database": "orders",
                    "passwordSecretRef": {"namespace": "default", "name": "app", "key": "password"}}),
                secrets: [("passwordSecretRef".to_string(), b"s3cret-Passw0rd".to_vec())].into(),
                count: Some(counter(&fake, |f, n| f.user_count("shared-pg", n))),
            },
            Case {
                kind: "Instance".into(),
                name: "conformance-vm".into(),
                for_provider: json!({
                    "zone": ZONE, "machineType": "e2-small", "image": "projects/debian-cloud/global/images/family/debian-12",
                    "externalIp": true, "port": 8080, "metadata": {"startup-script": "echo hello"},
                    "labels": {"team": "web"}, "tags": ["http"]
                }),
                updated_for_provider: json!({
                    "zone": ZONE, "machineType": "e2-medium", "image": "projects/debian-cloud/global/images/family/debian-12",
                    "externalIp": true, "port": 8080, "metadata": {"startup-script": "echo hello again"},
                    "labels": {"team": "api"}, "tags": ["http", "https"]
                }),
                secrets: Default::default(),
                count: Some(counter(&fake, |f, n| f.vm_count(n))),
            },
        ],
        timeout: Duration::from_secs(30),
    }
    .run()
    .await
    .expect("conformance");
}

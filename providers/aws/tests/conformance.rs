//! The SDK's conformance harness, run against the AWS provider with the moto
//! server that `scripts/test.sh` starts: both kinds, with the resources
//! counted through the real AWS SDK rather than through the provider.

#[path = "support/moto.rs"]
mod moto;

use std::sync::Arc;
use std::time::Duration;

use provider_sdk::conformance::{Case, Counter, Harness};
use provider_sdk::serde_json::json;

/// DB instances with an identifier, as RDS lists them.
fn db_instances(url: String) -> Counter {
    Arc::new(move |id: String| {
        let url = url.clone();
        Box::pin(async move {
            let rds = moto::rds(&url).await;
            let all = rds
                .describe_db_instances()
                .send()
                .await
                .expect("DescribeDBInstances");
            all.db_instances()
                .iter()
                .filter(|d| d.db_instance_identifier() == Some(id.as_str()))
                .count()
        })
    })
}

/// Live EC2 instances, all of them: the harness's case is the only user.
fn ec2_instances(url: String) -> Counter {
    Arc::new(move |_id: String| {
        let url = url.clone();
        Box::pin(async move { moto::live_instances(&moto::ec2(&url).await).await.len() })
    })
}

#[tokio::test]
async fn aws_provider_is_conformant() {
    let _moto = moto::exclusive().await;
    let url = moto::url();
    Harness {
        provider: plinth_provider_aws::provider(),
        config_spec: json!({
            "region": moto::REGION,
            "endpoint": url,
            "credentials": {"source": "Secret", "secretRef": {"namespace": "plinth-system", "name": "aws"}}
        }),
        credentials: [
            ("access_key_id".to_string(), moto::ACCESS_KEY.as_bytes().to_vec()),
            ("secret_access_key".to_string(), moto::SECRET_KEY.as_bytes().to_vec()),
        ]
        .into(),
        cases: vec![
            Case {
                kind: "DBInstance".into(),
                name: "conformance-db".into(),
                for_provider: json!({
                    "engine": "postgres", "engineVersion": "15", "instanceClass": "db.t3.micro",
                    "allocatedStorage": 20, "tags": {"team": "platform"}
                }),
                updated_for_provider: json!({
                    "engine": "postgres", "engineVersion": "15", "instanceClass": "db.t3.medium",
                    "allocatedStorage": 30, "tags": {"team": "data"}
                }),
                secrets: Default::default(),
                count: Some(db_instances(url.clone())),
            },
            Case {
                kind: "DBInstance".into(),
                name: "conformance-db-own-password".into(),
                for_provider: json!({
                    "engine": "mysql", "instanceClass": "db.t3.micro", "allocatedStorage": 20,
                    "masterPasswordSecretRef": {"namespace": "default", "name": "db", "key": "password"}
                }),
                updated_for_provider: json!({
                    "engine": "mysql", "instanceClass": "db.t3.micro", "allocatedStorage": 20, "multiAZ": true,
                    "masterPasswordSecretRef": {"namespace": "default", "name": "db", "key": "password"}
                }),
                secrets: [("masterPasswordSecretRef".to_string(), b"s3cret-Passw0rd".to_vec())].into(),
                count: Some(db_instances(url.clone())),
            },
            Case {
                kind: "Instance".into(),
                name: "conformance-instance".into(),
                for_provider: json!({
                    "imageId": "ami-1e749f67", "instanceType": "t3.micro", "port": 8080,
                    "userData": "#!/bin/sh\necho hello\n", "tags": {"team": "web"}
                }),
                updated_for_provider: json!({
                    "imageId": "ami-1e749f67", "instanceType": "t3.micro", "port": 8080,
                    "userData": "#!/bin/sh\necho hello\n", "tags": {"team": "api", "tier": "front"}
                }),
                secrets: Default::default(),
                count: Some(ec2_instances(url.clone())),
            },
        ],
        timeout: Duration::from_secs(30),
    }
    .run()
    .await
    .expect("conformance");
}

//! The moto server `scripts/test.sh` starts for these tests, and the real
//! AWS SDK clients pointed at it, for asserting what exists in "AWS" without
//! going through Plinth.
#![allow(dead_code)]

use std::sync::OnceLock;

use aws_config::{BehaviorVersion, Region};
use tokio::sync::{Mutex, MutexGuard};

/// The region every test uses.
pub const REGION: &str = "us-east-1";
/// Credentials moto accepts (it checks none unless told to).
pub const ACCESS_KEY: &str = "AKIAPLINTHTEST000000";
pub const SECRET_KEY: &str = "plinth-test-secret-access-key";

/// The moto server's URL, from `scripts/test.sh`.
pub fn url() -> String {
    std::env::var("PLINTH_TEST_MOTO_URL").unwrap_or_else(|_| {
        panic!("PLINTH_TEST_MOTO_URL is not set: run the tests with ./scripts/test.sh, which starts moto_server on 127.0.0.1")
    })
}

/// Holds the shared moto server for one test and empties it first; tests
/// that share it take turns.
pub async fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: OnceLock<Mutex<()>> = OnceLock::new();
    let guard = LOCK.get_or_init(|| Mutex::new(())).lock().await;
    check_credentials(&url(), false).await;
    reset(&url()).await;
    guard
}

/// `POST /moto-api/reset`: forgets every resource.
pub async fn reset(url: &str) {
    let response = reqwest::Client::new()
        .post(format!("{url}/moto-api/reset"))
        .send()
        .await
        .expect("moto reset");
    assert!(
        response.status().is_success(),
        "moto reset: {}",
        response.status()
    );
}

/// Makes moto check credentials from now on: only keys of IAM users it
/// knows pass, and after a reset there are none. `exclusive` turns it off.
pub async fn check_credentials(url: &str, on: bool) {
    // moto reads the body as INITIAL_NO_AUTH_ACTION_COUNT: how many calls
    // pass before it starts checking.
    let count = if on { "0" } else { "inf" };
    let response = reqwest::Client::new()
        .post(format!("{url}/moto-api/reset-auth"))
        .body(count)
        .send()
        .await
        .expect("moto reset-auth");
    assert!(
        response.status().is_success(),
        "moto reset-auth: {}",
        response.status()
    );
}

async fn sdk_config(url: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_rds::config::Credentials::new(
            ACCESS_KEY, SECRET_KEY, None, None, "tests",
        ))
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https(),
        )
        .load()
        .await
}

pub async fn rds(url: &str) -> aws_sdk_rds::Client {
    aws_sdk_rds::Client::new(&sdk_config(url).await)
}

pub async fn ec2(url: &str) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&sdk_config(url).await)
}

/// EC2 instances that are not terminated.
pub async fn live_instances(ec2: &aws_sdk_ec2::Client) -> Vec<aws_sdk_ec2::types::Instance> {
    ec2.describe_instances()
        .send()
        .await
        .expect("DescribeInstances")
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| i.state().and_then(|s| s.name()).map(|n| n.as_str()) != Some("terminated"))
        .cloned()
        .collect()
}

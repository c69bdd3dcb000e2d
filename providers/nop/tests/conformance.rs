//! The SDK's conformance harness, run against the nop provider.

use std::time::Duration;

use provider_sdk::conformance::{Case, Harness};
use provider_sdk::serde_json::json;

#[tokio::test]
async fn nop_provider_is_conformant() {
    Harness {
        provider: plinth_provider_nop::provider(),
        config_spec: json!({}),
        credentials: Default::default(),
        cases: vec![Case {
            kind: "NopResource".into(),
            name: "conformance-nop".into(),
            for_provider: json!({"readyAfterSeconds": 1, "fields": {"a": 1}}),
            updated_for_provider: json!({"readyAfterSeconds": 1, "fields": {"a": 2}}),
            secrets: Default::default(),
            count: None,
        }],
        timeout: Duration::from_secs(10),
    }
    .run()
    .await
    .expect("conformance");
}

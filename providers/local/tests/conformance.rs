//! The SDK's conformance harness, run against the local provider: Database
//! on the real PostgreSQL server scripts/test.sh starts, Instance as a real
//! local process.

use std::sync::Arc;
use std::time::Duration;

use provider_sdk::conformance::{Case, Counter, Harness};
use provider_sdk::serde_json::json;

fn postgres_url() -> String {
    std::env::var("PLINTH_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("PLINTH_TEST_POSTGRES_URL is not set: run the tests with ./scripts/test.sh, which starts a throwaway PostgreSQL on 127.0.0.1")
    })
}

/// Counts databases of a name, through the admin connection.
fn database_counter(url: String) -> Counter {
    Arc::new(move |name: String| {
        let url = url.clone();
        Box::pin(async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("admin connection");
            tokio::spawn(connection);
            let row = client
                .query_one(
                    "SELECT count(*) FROM pg_database WHERE datname = $1",
                    &[&name],
                )
                .await
                .expect("count databases");
            row.get::<_, i64>(0) as usize
        })
    })
}

#[tokio::test]
async fn local_provider_is_conformant() {
    let url = postgres_url();
    let state = tempfile::tempdir().expect("state dir");
    std::env::set_var(plinth_provider_local::instance::STATE_DIR_ENV, state.path());
    Harness {
        provider: plinth_provider_local::provider(),
        config_spec: json!({"credentials": {"source": "Secret", "secretRef": {"namespace": "x", "name": "y"}}}),
        credentials: [("url".to_string(), url.clone().into_bytes())].into(),
        cases: vec![
            Case {
                kind: "Database".into(),
                name: "conformance-db".into(),
                for_provider: json!({"extensions": ["citext"]}),
                updated_for_provider: json!({"connectionLimit": 5, "extensions": ["citext", "hstore"]}),
                secrets: Default::default(),
                count: Some(database_counter(url)),
            },
            Case {
                kind: "Instance".into(),
                name: "conformance-instance".into(),
                for_provider: json!({"command": "sleep", "args": ["300"], "port": 18080}),
                updated_for_provider: json!({"command": "sleep", "args": ["301"], "port": 18080}),
                secrets: Default::default(),
                count: None,
            },
        ],
        timeout: Duration::from_secs(20),
    }
    .run()
    .await
    .expect("conformance");
}

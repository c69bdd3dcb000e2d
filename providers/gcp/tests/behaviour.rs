//! The Google Cloud provider's kinds against the stand-in Google Cloud of
//! `support/fake_gcp.rs`, through the real `google-cloud-sql-v1` and
//! `google-cloud-compute-v1` clients: operations followed across calls,
//! state mapping, name reuse, and Google's errors in Plinth terms.

#[path = "support/fake_gcp.rs"]
mod fake_gcp;

use std::sync::Arc;

use fake_gcp::{error_body, FakeGcp, Fault, PROJECT, REGION, SERVICE_ACCOUNT_KEY, ZONE};
use plinth_provider_gcp::compute::Instance;
use plinth_provider_gcp::config::Pool;
use plinth_provider_gcp::operations::Operations;
use plinth_provider_gcp::sql::instance::DatabaseInstance;
use provider_sdk::{
    ExternalResource, Observation, ProviderConfig, ProviderError, Readiness, Request,
};
use serde_json::{json, Value};

struct World {
    fake: FakeGcp,
    config: Arc<ProviderConfig>,
    sql: DatabaseInstance,
    vm: Instance,
}

async fn world() -> World {
    plinth_provider_gcp::install_crypto();
    let fake = FakeGcp::start().await;
    let config = Arc::new(ProviderConfig {
        name: "default".into(),
        spec: json!({"projectID": PROJECT, "region": REGION, "endpoint": fake.url}),
        credentials: [(
            "credentials.json".to_string(),
            SERVICE_ACCOUNT_KEY.as_bytes().to_vec(),
        )]
        .into(),
    });
    let pool = Arc::new(Pool::default());
    let operations = Arc::new(Operations::default());
    World {
        sql: DatabaseInstance::new(pool.clone(), operations.clone()),
        vm: Instance::new(pool, operations),
        fake,
        config,
    }
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

fn postgres() -> Value {
    json!({"databaseVersion": "POSTGRES_15", "tier": "db-custom-1-3840", "diskSizeGb": 20})
}

/// Observes until `done`, at most 20 times: each Observe is one poll.
async fn observe_until(
    kind: &dyn ExternalResource,
    req: &Request,
    done: impl Fn(&Observation) -> bool,
) -> (Observation, Vec<Observation>) {
    let mut seen = Vec::new();
    for _ in 0..20 {
        let o = kind.observe(req).await.expect("observe");
        if done(&o) {
            return (o, seen);
        }
        seen.push(o);
    }
    panic!("not done after 20 observes; last: {:?}", seen.last());
}

fn text(details: &provider_sdk::ConnectionDetails, key: &str) -> String {
    String::from_utf8_lossy(details.get(key).map(Vec::as_slice).unwrap_or_default()).to_string()
}

#[tokio::test]
async fn a_cloud_sql_instance_is_creating_across_polls_then_ready() {
    let w = world().await;
    let req = w.request("orders", "uid-orders", postgres());
    let created = w.sql.create(&req).await.expect("create");
    assert_eq!(created.external_name, "orders");
    assert_eq!(
        w.fake.sql_instance("orders").expect("inserted")["state"],
        "PENDING_CREATE",
        "the create returns at once; the instance is still being made"
    );
    let (ready, before) =
        observe_until(&w.sql, &req, |o| o.readiness == Readiness::Available).await;
    assert!(!before.is_empty(), "the operation took polls");
    for o in &before {
        assert_eq!(o.readiness, Readiness::Creating, "{o:?}");
        assert!(
            o.message.contains("create operation") || o.message.contains("PENDING_CREATE"),
            "{}",
            o.message
        );
    }
    assert!(ready.up_to_date, "{}", ready.diff);
    assert_eq!(ready.at_provider["state"], "RUNNABLE");
    assert_eq!(
        ready.at_provider["databaseVersion"], "POSTGRES_15",
        "enums read by name"
    );
    let details = &ready.connection;
    let password = w
        .fake
        .password("orders", "postgres")
        .expect("a root password was set");
    assert_eq!(text(details, "password"), password);
    assert_eq!(
        text(details, "host"),
        ready.at_provider["address"].as_str().expect("address")
    );
    assert_eq!(text(details, "port"), "5432");
    assert_eq!(
        text(details, "uri"),
        format!(
            "postgresql://postgres:{password}@{}:5432/postgres",
            text(details, "host")
        )
    );
    let late = ready
        .late_init
        .expect("what Cloud SQL chose is written back");
    assert_eq!(
        late,
        json!({"edition": "ENTERPRISE", "diskType": "PD_SSD", "availabilityType": "ZONAL"})
    );
}

#[tokio::test]
async fn an_update_in_flight_is_not_sent_again() {
    let w = world().await;
    let req = w.request("billing", "uid-billing", postgres());
    w.sql.create(&req).await.expect("create");
    observe_until(&w.sql, &req, |o| o.readiness == Readiness::Available).await;

    let bigger = w.request(
        "billing",
        "uid-billing",
        json!({"databaseVersion": "POSTGRES_15", "tier": "db-custom-2-7680", "diskSizeGb": 40}),
    );
    let stale = w.sql.observe(&bigger).await.expect("observe");
    assert!(!stale.up_to_date);
    assert!(
        stale
            .diff
            .contains("settings.tier: \"db-custom-1-3840\" → \"db-custom-2-7680\""),
        "{}",
        stale.diff
    );
    w.sql.update(&bigger).await.expect("update");
    let (done, during) = observe_until(&w.sql, &bigger, |o| {
        o.up_to_date && !o.message.contains("operation")
    })
    .await;
    assert!(!during.is_empty(), "the update took polls");
    for o in &during {
        assert!(
            o.up_to_date,
            "nothing is sent twice while the update runs: {o:?}"
        );
        assert!(o.message.contains("update operation"), "{}", o.message);
    }
    assert_eq!(done.at_provider["tier"], "db-custom-2-7680");
    assert_eq!(done.at_provider["diskSizeGb"], 40);
    let patches = w
        .fake
        .requests()
        .iter()
        .filter(|r| r.starts_with("PATCH"))
        .count();
    assert_eq!(patches, 1, "{:?}", w.fake.requests());

    let shrink = w.request(
        "billing",
        "uid-billing",
        json!({"databaseVersion": "POSTGRES_15", "tier": "db-custom-2-7680", "diskSizeGb": 10}),
    );
    let refused = w.sql.update(&shrink).await.expect_err("disks only grow");
    assert!(matches!(refused, ProviderError::Terminal(_)), "{refused}");
    assert!(
        refused.to_string().contains("Cloud SQL disks only grow"),
        "{refused}"
    );
}

#[tokio::test]
async fn maintenance_suspension_and_failure_are_unavailable_with_the_state() {
    let w = world().await;
    let req = w.request("ledger", "uid-ledger", postgres());
    w.sql.create(&req).await.expect("create");
    observe_until(&w.sql, &req, |o| o.readiness == Readiness::Available).await;
    for state in ["MAINTENANCE", "SUSPENDED", "FAILED"] {
        w.fake.set_sql_state("ledger", state);
        let o = w.sql.observe(&req).await.expect("observe");
        assert_eq!(o.readiness, Readiness::Unavailable, "{state}");
        assert!(o.message.contains(state), "{state}: {}", o.message);
    }
}

#[tokio::test]
async fn a_name_held_since_a_deletion_is_refused_clearly() {
    let w = world().await;
    let first = w.request("reused", "uid-first", postgres());
    w.sql.create(&first).await.expect("create");
    observe_until(&w.sql, &first, |o| o.readiness == Readiness::Available).await;
    w.sql.delete(&first).await.expect("delete");
    let (gone, deleting) = observe_until(&w.sql, &first, |o| !o.exists).await;
    assert!(!gone.exists);
    assert!(
        deleting.iter().all(|o| o.readiness == Readiness::Deleting),
        "{deleting:?}"
    );

    let second = w.request("reused", "uid-second", postgres());
    let err = w
        .sql
        .create(&second)
        .await
        .expect_err("Cloud SQL keeps the name");
    assert!(matches!(err, ProviderError::Terminal(_)), "{err}");
    assert!(err.to_string().contains("about a week"), "{err}");
    assert!(
        err.to_string().contains("reuse the name"),
        "Google's own words are kept: {err}"
    );
}

#[tokio::test]
async fn someone_elses_instance_is_not_taken_over() {
    let w = world().await;
    w.fake.seed_sql_instance("theirs", "POSTGRES_15");
    let req = w.request("theirs", "uid-mine", postgres());
    let err = w.sql.observe(&req).await.expect_err("not ours");
    assert!(
        err.to_string().contains("was not made by this resource"),
        "{err}"
    );
    let mut managed = req.clone();
    managed.external_name = "theirs".into();
    let o = w
        .sql
        .observe(&managed)
        .await
        .expect("an explicit external name manages it");
    assert!(o.exists);
}

#[tokio::test]
async fn deletion_protection_is_lifted_only_when_the_spec_says_false() {
    let w = world().await;
    let protected = w.request("kept", "uid-kept", json!({"databaseVersion": "POSTGRES_15", "tier": "db-custom-1-3840", "deletionProtectionEnabled": true}));
    w.sql.create(&protected).await.expect("create");
    observe_until(&w.sql, &protected, |o| o.readiness == Readiness::Available).await;
    let err = w.sql.delete(&protected).await.expect_err("protected");
    assert!(
        err.to_string()
            .contains("set spec.forProvider.deletionProtectionEnabled to false"),
        "{err}"
    );

    let unprotected = w.request("kept", "uid-kept", json!({"databaseVersion": "POSTGRES_15", "tier": "db-custom-1-3840", "deletionProtectionEnabled": false}));
    let lifting = w.sql.delete(&unprotected).await.expect_err("lifting first");
    assert!(lifting.is_retryable(), "{lifting}");
    observe_until(&w.sql, &unprotected, |o| !o.message.contains("operation")).await;
    w.sql.delete(&unprotected).await.expect("delete");
    observe_until(&w.sql, &unprotected, |o| !o.exists).await;
}

#[tokio::test]
async fn google_errors_reach_synced_in_plinth_terms() {
    let w = world().await;
    let req = w.request("errs", "uid-errs", postgres());
    let cases = [
        (
            "429 is throttling, retried with backoff",
            429,
            error_body(
                429,
                "RESOURCE_EXHAUSTED",
                "rateLimitExceeded",
                "Too many requests.",
            ),
            "throttled",
        ),
        (
            "a quota answer is terminal with its code and message",
            403,
            error_body(
                403,
                "",
                "quotaExceeded",
                "Quota exceeded for quota metric 'Instances'.",
            ),
            "terminal",
        ),
        (
            "a missing permission is not retried hot",
            403,
            error_body(
                403,
                "PERMISSION_DENIED",
                "forbidden",
                "The client is not authorized to make this request.",
            ),
            "unauthorized",
        ),
        (
            "an invalid argument is terminal",
            400,
            error_body(
                400,
                "INVALID_ARGUMENT",
                "invalid",
                "Invalid request: Invalid Tier (db-nope) for (POSTGRES_15) Database Version.",
            ),
            "terminal",
        ),
        (
            "5xx is retried",
            503,
            error_body(
                503,
                "UNAVAILABLE",
                "backendError",
                "The service is currently unavailable.",
            ),
            "retryable",
        ),
    ];
    for (reason, status, body, want) in cases {
        let message = body["error"]["message"]
            .as_str()
            .expect("message")
            .to_string();
        // More than the client's own attempts, so the error reaches us.
        w.fake.fail(Fault {
            method: "POST",
            path_contains: "/instances".into(),
            times: 5,
            status,
            body,
        });
        let err = w.sql.create(&req).await.expect_err(reason);
        let got = match &err {
            ProviderError::Throttled(_) => "throttled",
            ProviderError::Terminal(_) => "terminal",
            ProviderError::Unauthorized(_) => "unauthorized",
            ProviderError::Retryable(_) => "retryable",
            ProviderError::NotConfigured(_) => "not configured",
        };
        assert_eq!(got, want, "{reason}: {err}");
        assert!(
            err.to_string().contains(&message),
            "{reason}: Google's message is kept: {err}"
        );
        assert!(
            err.to_string().contains(&format!("HTTP {status}")),
            "{reason}: {err}"
        );
        w.fake.clear_faults();
    }
}

#[tokio::test]
async fn refused_credentials_are_unauthorized() {
    let w = world().await;
    w.fake.revoke();
    let err = w
        .sql
        .observe(&w.request("any", "uid-any", postgres()))
        .await
        .expect_err("refused");
    assert!(matches!(err, ProviderError::Unauthorized(_)), "{err}");
    assert!(
        err.to_string()
            .contains("invalid authentication credentials"),
        "{err}"
    );
}

#[tokio::test]
async fn a_failed_operation_reports_google_s_code_and_message() {
    let w = world().await;
    w.fake.fail_next_operation(
        "big-vm",
        Some(403),
        "QUOTA_EXCEEDED",
        "Quota 'CPUS' exceeded.  Limit: 8.0 in region europe-west1.",
    );
    let req = w.request("big-vm", "uid-big", json!({"zone": ZONE, "machineType": "e2-standard-32", "image": "projects/debian-cloud/global/images/family/debian-12"}));
    w.vm.create(&req)
        .await
        .expect("the insert is accepted; its operation fails later");
    let mut failure = None;
    for _ in 0..10 {
        match w.vm.observe(&req).await {
            Ok(o) => assert_eq!(o.readiness, Readiness::Creating, "{o:?}"),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let err = failure.expect("the failure is reported");
    assert!(matches!(err, ProviderError::Terminal(_)), "{err}");
    assert!(
        err.to_string().contains("QUOTA_EXCEEDED")
            && err.to_string().contains("Quota 'CPUS' exceeded"),
        "{err}"
    );
    let after = w.vm.observe(&req).await.expect("observe again");
    assert!(!after.exists, "a failed insert leaves nothing");
}

#[tokio::test]
async fn a_machine_type_change_stops_resizes_and_starts_the_vm() {
    let w = world().await;
    let spec = |machine: &str, team: &str| {
        json!({"zone": ZONE, "machineType": machine, "image": "projects/debian-cloud/global/images/family/debian-12",
               "labels": {"team": team}, "port": 22})
    };
    let req = w.request("web", "uid-web", spec("e2-small", "web"));
    w.vm.create(&req).await.expect("create");
    // The harness's second Create: the same request id, one instance.
    w.vm.create(&req).await.expect("create again");
    assert_eq!(w.fake.vm_count("web"), 1);
    let (ready, provisioning) =
        observe_until(&w.vm, &req, |o| o.readiness == Readiness::Available).await;
    assert!(!provisioning.is_empty());
    assert_eq!(text(&ready.connection, "port"), "22");
    assert!(
        text(&ready.connection, "host").starts_with("10.132.0."),
        "{:?}",
        ready.connection
    );

    let bigger = w.request("web", "uid-web", spec("e2-medium", "api"));
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let o = w.vm.observe(&bigger).await.expect("observe");
        statuses.push(o.at_provider["status"].as_str().unwrap_or("").to_string());
        if o.up_to_date && o.readiness == Readiness::Available {
            assert_eq!(o.at_provider["machineType"], "e2-medium");
            break;
        }
        if !o.up_to_date {
            w.vm.update(&bigger).await.expect("update");
        }
    }
    assert_eq!(
        statuses.last().map(String::as_str),
        Some("RUNNING"),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().any(|s| s == "TERMINATED"),
        "stopped on the way: {statuses:?}"
    );
    let vm = w.fake.vm(ZONE, "web").expect("vm");
    assert_eq!(vm["labels"]["team"], "api");
    assert!(vm["machineType"]
        .as_str()
        .unwrap_or("")
        .ends_with("/machineTypes/e2-medium"));
    let log = w.fake.requests();
    for step in ["/stop", "/setMachineType", "/start", "/setLabels"] {
        assert_eq!(
            log.iter().filter(|r| r.ends_with(step)).count(),
            1,
            "{step} once: {log:?}"
        );
    }
}

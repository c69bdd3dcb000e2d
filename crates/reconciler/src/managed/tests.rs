//! The executor against a real in-process API server and a fake provider
//! built from closures.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use runtime::provider::{Creation, ExternalClientFns, Observation};
use runtime::Caches;
use serde_json::json;

use super::*;

const GROUP: &str = "test.plinth.dev";

/// Counts of provider calls by verb.
#[derive(Default)]
struct Calls {
    observe: AtomicUsize,
    create: AtomicUsize,
    update: AtomicUsize,
    delete: AtomicUsize,
}

impl Calls {
    fn total(&self) -> usize {
        [&self.observe, &self.create, &self.update, &self.delete]
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .sum()
    }
}

/// A provider whose resources exist once created, until deleted.
fn fake(calls: Arc<Calls>) -> ExternalClientFns {
    let existing: Arc<std::sync::Mutex<std::collections::HashSet<String>>> = Arc::default();
    let (observe_calls, create_calls, update_calls, delete_calls) =
        (calls.clone(), calls.clone(), calls.clone(), calls);
    let (for_observe, for_create, for_delete) = (existing.clone(), existing.clone(), existing);
    ExternalClientFns {
        observe: Some(Arc::new(move |r| {
            observe_calls.observe.fetch_add(1, Ordering::SeqCst);
            Ok(if for_observe.lock().unwrap().contains(&r.name) {
                Observation {
                    at_provider: Some(json!({"size": r.for_provider["size"]})),
                    ..Observation::available()
                }
            } else {
                Observation::absent()
            })
        })),
        create: Some(Arc::new(move |r| {
            create_calls.create.fetch_add(1, Ordering::SeqCst);
            for_create.lock().unwrap().insert(r.name.clone());
            Ok(Creation {
                external_name: r.name.clone(),
                connection: Default::default(),
            })
        })),
        update: Some(Arc::new(move |_| {
            update_calls.update.fetch_add(1, Ordering::SeqCst);
            Ok(Default::default())
        })),
        delete: Some(Arc::new(move |r| {
            delete_calls.delete.fetch_add(1, Ordering::SeqCst);
            for_delete.lock().unwrap().remove(&r.name);
            Ok(())
        })),
        ..Default::default()
    }
}

struct Fixed(Arc<Connection>);

impl Providers for Fixed {
    fn connection(&self, _: &str, _: &str) -> Option<Arc<Connection>> {
        Some(self.0.clone())
    }
}

struct Server {
    _dir: tempfile::TempDir,
    running: apiserver::Running,
    client: kube::Client,
}

async fn server() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let running = apiserver::run(apiserver::Config {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().expect("address"),
        compaction_interval: Duration::from_secs(300),
        compaction_keep: 10_000,
        bookmark_interval: Duration::from_secs(60),
        event_ttl: Duration::from_secs(3600),
        hold_readiness: false,
        authorization: apiserver::authz::Mode::AlwaysAllow,
        rbac_bootstrap: Vec::new(),
        audit_log: None,
        encryption_key_file: None,
        rewrite_secrets: false,
    })
    .await
    .expect("API server");
    let kubeconfig = kube::config::Kubeconfig::read_from(&running.kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    let client = kube::Client::try_from(config).expect("client");
    Server {
        _dir: dir,
        running,
        client,
    }
}

fn kind() -> Kind {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(GROUP, "v1alpha1", "TestResource"),
        "testresources",
    );
    Kind {
        resource,
        provider: "test".into(),
        config: crate::host::config_api_resource(GROUP),
        deterministic: true,
    }
}

async fn install(client: &kube::Client) {
    let schema = provider_sdk::pb::KindSchema {
        group: GROUP.into(),
        version: "v1alpha1".into(),
        kind: "TestResource".into(),
        plural: "testresources".into(),
        deterministic_external_name: true,
        ..Default::default()
    };
    runtime::crds::apply(client, crate::crds::managed("test", &schema))
        .await
        .expect("managed CRD");
    runtime::crds::apply(client, crate::crds::provider_config(GROUP, json!({})))
        .await
        .expect("ProviderConfig CRD");
    let configs: Api<DynamicObject> = Api::all_with(client.clone(), &kind().config);
    let config: DynamicObject = serde_json::from_value(json!({
        "apiVersion": format!("{GROUP}/v1alpha1"), "kind": "ProviderConfig",
        "metadata": {"name": "default"}, "spec": {}
    }))
    .expect("config");
    for _ in 0..100 {
        if configs
            .create(&PostParams::default(), &config)
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the ProviderConfig kind was not served");
}

fn settings() -> Settings {
    Settings {
        poll_interval: Duration::from_secs(3600),
        limiter: Arc::new(RateLimiter::new(1000)),
        backoff: Backoff::default(),
        crash_after_create: false,
        seed_key: Arc::new(vec![7; 32]),
    }
}

async fn ready(api: &Api<DynamicObject>, name: &str) -> DynamicObject {
    for _ in 0..200 {
        if let Some(o) = api.get_opt(name).await.expect("get") {
            let ready = o
                .data
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
            if ready {
                return o;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} did not become Ready");
}

/// After a managed resource is Ready, nothing happens for it until its
/// drift poll: no provider call, no write. Its own status write, and the
/// watch event that write causes, start no further cycle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_resource_causes_no_further_work_until_its_poll() {
    let server = server().await;
    install(&server.client).await;
    let calls = Arc::new(Calls::default());
    let connection = Arc::new(Connection::new(Arc::new(fake(calls.clone()))));
    let caches = Caches::new(server.client.clone());
    let controller = tokio::spawn(run(
        server.client.clone(),
        caches.clone(),
        kind(),
        Arc::new(Fixed(connection)),
        settings(),
        futures::stream::pending(),
    ));
    let api: Api<DynamicObject> = Api::all_with(server.client.clone(), &kind().resource);
    let mr: DynamicObject = serde_json::from_value(json!({
        "apiVersion": format!("{GROUP}/v1alpha1"), "kind": "TestResource",
        "metadata": {"name": "quiet"}, "spec": {"forProvider": {"size": 1}}
    }))
    .expect("resource");
    api.create(&PostParams::default(), &mr)
        .await
        .expect("create");
    let first = ready(&api, "quiet").await;
    // Observe, Create, Observe: nothing more.
    assert_eq!(calls.create.load(Ordering::SeqCst), 1);
    assert_eq!(calls.observe.load(Ordering::SeqCst), 2);
    let annotations = first.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations
            .get(names::annotation::EXTERNAL_NAME)
            .map(String::as_str),
        Some("quiet")
    );
    assert!(
        !annotations.contains_key(names::annotation::EXTERNAL_CREATE_PENDING),
        "a deterministic kind needs no create-pending guard: {annotations:?}"
    );
    let calls_at_ready = calls.total();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = api.get("quiet").await.expect("get");
    assert_eq!(calls.total(), calls_at_ready, "provider calls after Ready");
    assert_eq!(
        later.metadata.resource_version, first.metadata.resource_version,
        "writes after Ready"
    );

    // A change of spec is acted on at once.
    api.patch(
        "quiet",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"forProvider": {"size": 2}}})),
    )
    .await
    .expect("patch");
    for _ in 0..100 {
        let o = api.get("quiet").await.expect("get");
        if o.data.pointer("/status/atProvider/size") == Some(&json!(2)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        api.get("quiet")
            .await
            .expect("get")
            .data
            .pointer("/status/atProvider/size"),
        Some(&json!(2))
    );

    // Deleting it deletes the external resource, then lets the object go.
    api.delete("quiet", &Default::default())
        .await
        .expect("delete");
    for _ in 0..100 {
        if api.get_opt("quiet").await.expect("get").is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        api.get_opt("quiet").await.expect("get").is_none(),
        "still there"
    );
    assert_eq!(calls.delete.load(Ordering::SeqCst), 1);
    controller.abort();
    caches.stop();
    server.running.shutdown().await;
}

/// A resource that keeps failing the same way gets one Event whose count
/// grows, not an Event per failure; and says why on its Synced condition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_fold_into_one_event() {
    use k8s_openapi::api::core::v1::Event;
    let server = server().await;
    install(&server.client).await;
    let failing = ExternalClientFns {
        observe: Some(Arc::new(|_| {
            Err(runtime::provider::ExternalError::Retryable(
                "the backend is down".into(),
            ))
        })),
        ..Default::default()
    };
    let caches = Caches::new(server.client.clone());
    let controller = tokio::spawn(run(
        server.client.clone(),
        caches.clone(),
        kind(),
        Arc::new(Fixed(Arc::new(Connection::new(Arc::new(failing))))),
        settings(),
        futures::stream::pending(),
    ));
    let api: Api<DynamicObject> = Api::all_with(server.client.clone(), &kind().resource);
    let mr: DynamicObject = serde_json::from_value(json!({
        "apiVersion": format!("{GROUP}/v1alpha1"), "kind": "TestResource",
        "metadata": {"name": "flaky"}, "spec": {"forProvider": {}}
    }))
    .expect("resource");
    api.create(&PostParams::default(), &mr)
        .await
        .expect("create");
    let events: Api<Event> = Api::namespaced(server.client.clone(), names::EVENT_NAMESPACE);
    let mut folded = Vec::new();
    for _ in 0..200 {
        folded = events
            .list(&Default::default())
            .await
            .expect("list events")
            .items
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some("flaky"))
            .collect();
        if folded.iter().any(|e| e.count.unwrap_or(0) >= 3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        folded.len(),
        1,
        "one Event for one repeated failure: {folded:?}"
    );
    let event = &folded[0];
    assert_eq!(event.reason.as_deref(), Some(names::event::CANNOT_OBSERVE));
    assert!(event.count.unwrap_or(0) >= 3, "{event:?}");
    assert!(
        event.last_timestamp > event.first_timestamp,
        "lastTimestamp moves on: {event:?}"
    );
    let synced = api
        .get("flaky")
        .await
        .expect("get")
        .data
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == "Synced").cloned())
        .expect("a Synced condition");
    assert_eq!(synced["status"], "False");
    assert_eq!(synced["message"], "the backend is down");
    controller.abort();
    caches.stop();
    server.running.shutdown().await;
}

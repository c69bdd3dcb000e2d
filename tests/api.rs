//! The API contract through kube-rs and raw HTTPS: watch across restarts and
//! compaction, optimistic concurrency, durability under kill -9,
//! authentication, and a corpus of bad requests.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use serde_json::{json, Value};
use support::{eventually, Plinth};

fn configmap(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"v": value}}))
        .expect("configmap")
}

async fn server_view(api: &Api<ConfigMap>) -> BTreeMap<String, String> {
    api.list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|cm| {
            let name = cm.metadata.name.clone().unwrap_or_default();
            let v = cm
                .data
                .and_then(|d| d.get("v").cloned())
                .unwrap_or_default();
            (name, v)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_stays_accurate_across_restart_and_compaction() {
    let mut plinth = Plinth::start_with(&[
        "--compaction-interval",
        "300ms",
        "--compaction-keep",
        "3",
        "--bookmark-interval",
        "1s",
    ])
    .await;
    let client = plinth.client().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..5 {
        api.create(&PostParams::default(), &configmap(&format!("cm-{i}"), "a"))
            .await
            .expect("create");
    }

    // A reflector over its own client, so it reconnects on its own.
    let (reader, writer) = reflector::store::<ConfigMap>();
    let watched: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let stream = reflector(writer, watcher(watched, watcher::Config::default()))
        .default_backoff()
        .applied_objects();
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while stream.next().await.is_some() {}
    });
    let view = |reader: reflector::Store<ConfigMap>| {
        reader
            .state()
            .iter()
            .map(|cm| {
                (
                    cm.metadata.name.clone().unwrap_or_default(),
                    cm.data
                        .as_ref()
                        .and_then(|d| d.get("v").cloned())
                        .unwrap_or_default(),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    let expected = server_view(&api).await;
    eventually(Duration::from_secs(20), "initial view", || {
        let reader = reader.clone();
        let expected = expected.clone();
        async move { view(reader) == expected }
    })
    .await;

    // Restart the server underneath the watcher, then change things.
    plinth.restart().await;
    let api: Api<ConfigMap> = Api::namespaced(plinth.client().await, "default");
    api.delete("cm-0", &Default::default())
        .await
        .expect("delete");
    api.create(&PostParams::default(), &configmap("after-restart", "b"))
        .await
        .expect("create");
    let expected = server_view(&api).await;
    eventually(Duration::from_secs(30), "view after restart", || {
        let reader = reader.clone();
        let expected = expected.clone();
        async move { view(reader) == expected }
    })
    .await;

    // Many changes while compaction keeps only the last few revisions.
    for i in 0..40 {
        let mut cm = configmap(&format!("churn-{}", i % 4), &i.to_string());
        cm.metadata.name = Some(format!("churn-{}", i % 4));
        let _ = api
            .delete(&format!("churn-{}", i % 4), &Default::default())
            .await;
        api.create(&PostParams::default(), &cm)
            .await
            .expect("create churn");
    }
    let expected = server_view(&api).await;
    eventually(Duration::from_secs(30), "view after compaction", || {
        let reader = reader.clone();
        let expected = expected.clone();
        async move { view(reader) == expected }
    })
    .await;
    task.abort();

    // A watch from a compacted revision gets 410 Gone, as kube-rs expects.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let url = format!(
        "{}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1&timeoutSeconds=5",
        plinth.url
    );
    let body = plinth
        .http()
        .get(url)
        .bearer_auth(plinth.token())
        .send()
        .await
        .expect("watch request")
        .text()
        .await
        .expect("watch body");
    let event: Value =
        serde_json::from_str(body.lines().next().expect("one event")).expect("json event");
    assert_eq!(event["type"], "ERROR", "{body}");
    assert_eq!(event["object"]["code"], 410, "{body}");
}

/// A kube-rs watcher relists page by page (100 at a time here) while
/// another client creates, updates and deletes: every page reports the
/// revision of the first, so the watch that follows replays whatever
/// changed during the relist, and the watcher's view ends up the server's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paged_relist_under_writes_misses_nothing() {
    let plinth = Plinth::start().await;
    let client = plinth.client().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    futures::stream::iter(0..2_000)
        .map(|i| {
            let api = api.clone();
            async move {
                api.create(
                    &PostParams::default(),
                    &configmap(&format!("cm-{i:04}"), "0"),
                )
                .await
                .expect("create")
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;

    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writer = {
        let (api, writing) = (api.clone(), writing.clone());
        tokio::spawn(async move {
            let mut round = 0u32;
            while writing.load(std::sync::atomic::Ordering::Relaxed) {
                round += 1;
                // Spread over the whole key range, so changes land both in
                // pages already served and in pages still to come.
                for i in (round as usize % 40..2_000).step_by(40) {
                    let name = format!("cm-{i:04}");
                    match round % 3 {
                        0 => {
                            let _ = api.delete(&name, &Default::default()).await;
                        }
                        1 => {
                            let _ = api
                                .create(
                                    &PostParams::default(),
                                    &configmap(&name, &round.to_string()),
                                )
                                .await;
                        }
                        _ => {
                            let patch = json!({"data": {"v": round.to_string()}});
                            let _ = api
                                .patch(
                                    &name,
                                    &kube::api::PatchParams::default(),
                                    &kube::api::Patch::Merge(patch),
                                )
                                .await;
                        }
                    }
                }
            }
        })
    };

    let mut readers = Vec::new();
    let mut tasks = Vec::new();
    // Several watchers, each relisting while the writes go on.
    for _ in 0..3 {
        let (reader, writer) = reflector::store::<ConfigMap>();
        let stream = reflector(
            writer,
            watcher(api.clone(), watcher::Config::default().page_size(100)),
        )
        .default_backoff()
        .applied_objects();
        tasks.push(tokio::spawn(async move {
            futures::pin_mut!(stream);
            while stream.next().await.is_some() {}
        }));
        readers.push(reader);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    writing.store(false, std::sync::atomic::Ordering::Relaxed);
    writer.await.expect("writer");

    let expected = server_view(&api).await;
    for (i, reader) in readers.into_iter().enumerate() {
        eventually(
            Duration::from_secs(30),
            &format!("watcher {i} matches the server"),
            || {
                let reader = reader.clone();
                let expected = expected.clone();
                async move {
                    let view: BTreeMap<String, String> = reader
                        .state()
                        .iter()
                        .map(|cm| {
                            (
                                cm.metadata.name.clone().unwrap_or_default(),
                                cm.data
                                    .as_ref()
                                    .and_then(|d| d.get("v").cloned())
                                    .unwrap_or_default(),
                            )
                        })
                        .collect();
                    view == expected
                }
            },
        )
        .await;
    }
    for task in tasks {
        task.abort();
    }
}

/// A label-selector watch resumed from a revision whose history is read
/// back from disk (after a restart nothing is in memory) reports an object
/// whose labels left the selector as DELETED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_selector_watch_sees_an_object_leave() {
    let mut plinth = Plinth::start().await;
    let api: Api<ConfigMap> = Api::namespaced(plinth.client().await, "default");
    let labelled = |app: &str| -> ConfigMap {
        serde_json::from_value(
            json!({"metadata": {"name": "moving", "labels": {"app": app}}, "data": {"v": "1"}}),
        )
        .expect("configmap")
    };
    let created = api
        .create(&PostParams::default(), &labelled("web"))
        .await
        .expect("create");
    let from = created
        .metadata
        .resource_version
        .clone()
        .expect("resourceVersion");
    api.replace("moving", &PostParams::default(), &{
        let mut moved = labelled("db");
        moved.metadata.resource_version = Some(from.clone());
        moved
    })
    .await
    .expect("relabel");
    plinth.restart().await;
    let url = format!(
        "{}/api/v1/namespaces/default/configmaps?watch=true&labelSelector=app%3Dweb&resourceVersion={from}&timeoutSeconds=2",
        plinth.url
    );
    let body = plinth
        .http()
        .get(url)
        .bearer_auth(plinth.token())
        .send()
        .await
        .expect("watch request")
        .text()
        .await
        .expect("watch body");
    let events: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("json event"))
        .collect();
    assert_eq!(events.len(), 1, "{body}");
    assert_eq!(events[0]["type"], "DELETED", "{body}");
    assert_eq!(events[0]["object"]["metadata"]["name"], "moving", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_resource_version_exactly_one_update_wins() {
    let plinth = Plinth::start().await;
    let api: Api<ConfigMap> = Api::namespaced(plinth.client().await, "default");
    let created = api
        .create(&PostParams::default(), &configmap("race", "0"))
        .await
        .expect("create");
    for round in 0..10 {
        let current = api.get("race").await.expect("get");
        let mut a = current.clone();
        let mut b = current.clone();
        a.data = Some([("v".to_string(), format!("a{round}"))].into());
        b.data = Some([("v".to_string(), format!("b{round}"))].into());
        let pp = PostParams::default();
        let (ra, rb) = tokio::join!(api.replace("race", &pp, &a), api.replace("race", &pp, &b));
        let wins = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {ra:?} / {rb:?}");
        let loser = if ra.is_err() { ra } else { rb };
        match loser {
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 409);
                assert_eq!(status.reason, "Conflict");
            }
            other => panic!("expected 409, got {other:?}"),
        }
    }
    assert_ne!(
        created.metadata.resource_version,
        api.get("race")
            .await
            .expect("get")
            .metadata
            .resource_version
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let mut plinth = Plinth::start().await;
    let api: Api<ConfigMap> = Api::namespaced(plinth.client().await, "default");
    // 1,000 acknowledged writes, sixteen at a time, then SIGKILL at once.
    let acked = futures::stream::iter(0..1000)
        .map(|i| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &configmap(&format!("d-{i}"), "x"))
                    .await
                    .map(|_| i)
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    assert!(acked.iter().all(|r| r.is_ok()), "every write acknowledged");
    plinth.kill9().await;

    // And writes in flight when the process dies: every acknowledged one stays.
    plinth.start_again().await;
    let api: Api<ConfigMap> = Api::namespaced(plinth.client().await, "default");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let writer = {
        let api = api.clone();
        tokio::spawn(async move {
            for i in 0..100_000 {
                if api
                    .create(&PostParams::default(), &configmap(&format!("f-{i}"), "y"))
                    .await
                    .is_err()
                {
                    break;
                }
                if tx.send(i).is_err() {
                    break;
                }
            }
        })
    };
    let mut in_flight_acked = Vec::new();
    while in_flight_acked.len() < 300 {
        in_flight_acked.push(rx.recv().await.expect("acked write"));
    }
    plinth.kill9().await;
    while let Ok(i) = rx.try_recv() {
        in_flight_acked.push(i);
    }
    writer.abort();

    plinth.start_again().await;
    let api: Api<ConfigMap> = Api::namespaced(plinth.client().await, "default");
    let names: std::collections::HashSet<String> = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|cm| cm.metadata.name)
        .collect();
    for i in 0..1000 {
        assert!(
            names.contains(&format!("d-{i}")),
            "acknowledged write d-{i} lost"
        );
    }
    for i in in_flight_acked {
        assert!(
            names.contains(&format!("f-{i}")),
            "acknowledged write f-{i} lost"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_or_tls_are_refused() {
    let plinth = Plinth::start().await;
    let http = plinth.http();
    let url = format!("{}/api/v1/namespaces", plinth.url);
    let none = http.get(&url).send().await.expect("request");
    assert_eq!(none.status().as_u16(), 401);
    let status: Value = none.json().await.expect("status body");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Unauthorized");
    let wrong = http
        .get(&url)
        .bearer_auth("not-the-token")
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status().as_u16(), 401);
    let right = http
        .get(&url)
        .bearer_auth(plinth.token())
        .send()
        .await
        .expect("request");
    assert_eq!(right.status().as_u16(), 200);

    // Plain HTTP gets nothing usable.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
        .get(format!(
            "http://127.0.0.1:{}/api/v1/namespaces",
            plinth.port
        ))
        .send()
        .await;
    match plain {
        Err(_) => {}
        Ok(response) => panic!("plain HTTP got a response: {}", response.status()),
    }

    // Health needs no token; files holding secrets are private.
    let ready = http
        .get(format!("{}/readyz", plinth.url))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status().as_u16(), 200);
    use std::os::unix::fs::PermissionsExt;
    // state.db holds Secrets; SQLite gives its -wal and -shm files its mode.
    for file in [
        "kubeconfig",
        "token",
        "ca.key",
        "state.db",
        "state.db-wal",
        "state.db-shm",
    ] {
        let mode = std::fs::metadata(plinth.dir.path().join(file))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file} mode {mode:o}");
    }
    let mode = std::fs::metadata(plinth.dir.path())
        .expect("data dir")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "data dir mode {mode:o}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_right_status_and_the_server_stays_healthy() {
    let plinth = Plinth::start().await;
    plinth
        .apply_ok(&["apply", "-f", "-"], support::CRONTAB_CRD)
        .await;
    let http = plinth.http();
    let token = plinth.token();
    let cm = "/api/v1/namespaces/default/configmaps";
    let ct = "/apis/stable.example.com/v1/namespaces/default/crontabs";
    let good_ct = r#"{"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"ok"},"spec":{"cronSpec":"* * * * *"}}"#;
    let big = format!(
        r#"{{"metadata":{{"name":"big"}},"data":{{"x":"{}"}}}}"#,
        "a".repeat(3 * 1024 * 1024 + 10)
    );
    // (method, path, content type, body, expected status, text the message must contain)
    let corpus: Vec<(&str, String, &str, String, u16, &str)> = vec![
        ("POST", cm.into(), "application/json", "{".into(), 400, "JSON"),
        ("POST", cm.into(), "application/json", "[1,2]".into(), 400, "object"),
        ("POST", cm.into(), "application/json", "".into(), 400, "empty"),
        ("POST", cm.into(), "application/json", "null".into(), 400, "object"),
        ("POST", cm.into(), "application/yaml", "a: [".into(), 400, "YAML"),
        ("POST", cm.into(), "application/json", r#"{"metadata":{}}"#.into(), 422, "metadata.name"),
        ("POST", cm.into(), "application/json", r#"{"metadata":{"name":"Bad_Name"}}"#.into(), 422, "metadata.name"),
        ("POST", cm.into(), "application/json", r#"{"metadata":{"name":"x","labels":{"a b":"c"}}}"#.into(), 422, "metadata.labels"),
        ("POST", cm.into(), "application/json", r#"{"metadata":{"name":"x"},"data":{"k":1}}"#.into(), 422, "data.k"),
        ("POST", cm.into(), "application/json", r#"{"kind":"Secret","metadata":{"name":"x"}}"#.into(), 400, "kind"),
        ("POST", cm.into(), "application/json", r#"{"apiVersion":"apps/v1","metadata":{"name":"x"}}"#.into(), 400, "API version"),
        ("POST", cm.into(), "application/json", r#"{"metadata":{"name":"x","namespace":"other"}}"#.into(), 400, "namespace"),
        ("POST", cm.into(), "text/plain", "hello".into(), 415, "format"),
        ("POST", cm.into(), "application/json", big, 413, "limit"),
        ("POST", "/api/v1/namespaces/nope/configmaps".into(), "application/json", r#"{"metadata":{"name":"x"}}"#.into(), 404, "nope"),
        ("GET", "/api/v1/namespaces/default/widgets".into(), "", "".into(), 404, "could not find"),
        ("GET", "/apis/no.such.group/v1/things".into(), "", "".into(), 404, "could not find"),
        ("GET", format!("{cm}/missing"), "", "".into(), 404, "missing"),
        ("GET", format!("{cm}?labelSelector=a%20in%20(b"), "", "".into(), 400, "labelSelector"),
        ("GET", format!("{cm}?fieldSelector=spec.foo%3Dbar"), "", "".into(), 400, "field label not supported"),
        ("GET", format!("{cm}?limit=-1"), "", "".into(), 400, "limit"),
        ("GET", format!("{cm}?limit=abc"), "", "".into(), 400, "limit"),
        ("GET", format!("{cm}?continue=garbage!"), "", "".into(), 400, "continue"),
        ("GET", format!("{cm}?watch=true&resourceVersion=xyz"), "", "".into(), 400, "resourceVersion"),
        ("PUT", format!("{cm}/absent"), "application/json", r#"{"metadata":{"name":"absent"}}"#.into(), 404, "absent"),
        ("PUT", format!("{cm}/a"), "application/json", r#"{"metadata":{"name":"b"}}"#.into(), 400, "does not match"),
        ("PATCH", format!("{cm}/absent"), "application/merge-patch+json", "{}".into(), 404, "absent"),
        ("PATCH", format!("{cm}/x"), "application/xml", "<a/>".into(), 415, "unknown format"),
        ("PATCH", format!("{cm}/x"), "application/apply-patch+yaml", "data: {}".into(), 400, "fieldManager"),
        ("DELETE", format!("{cm}/absent"), "", "".into(), 404, "absent"),
        ("DELETE", format!("{cm}/x?propagationPolicy=Sometimes"), "", "".into(), 400, "propagationPolicy"),
        ("POST", format!("{cm}?dryRun=Some"), "application/json", r#"{"metadata":{"name":"x"}}"#.into(), 400, "dryRun"),
        ("POST", format!("{cm}?fieldValidation=Loose"), "application/json", r#"{"metadata":{"name":"x"}}"#.into(), 400, "fieldValidation"),
        ("POST", ct.into(), "application/json", r#"{"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"bad"},"spec":{"cronSpec":5,"replicas":"many"}}"#.into(), 422, "spec.replicas"),
        ("POST", ct.into(), "application/json", r#"{"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"bad"},"spec":{}}"#.into(), 422, "spec.cronSpec"),
        ("POST", format!("{ct}?fieldValidation=Strict"), "application/json", r#"{"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"bad"},"spec":{"cronSpec":"* * * * *","colour":"blue"}}"#.into(), 400, "spec.colour"),
        ("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions".into(), "application/json", r#"{"metadata":{"name":"things.example.com"},"spec":{"group":"example.com","names":{"plural":"things","kind":"Thing"},"scope":"Galactic","versions":[]}}"#.into(), 422, "spec.scope"),
        ("POST", ct.into(), "application/json", good_ct.into(), 201, ""),
        ("POST", ct.into(), "application/json", good_ct.into(), 409, "already exists"),
        ("PATCH", format!("{ct}/ok"), "application/strategic-merge-patch+json", "{}".into(), 415, "strategic merge patch"),
        ("PATCH", format!("{ct}/ok"), "application/json-patch+json", r#"{"op":"add"}"#.into(), 400, "JSON patch"),
        ("PATCH", format!("{ct}/ok"), "application/json-patch+json", r#"[{"op":"test","path":"/spec/cronSpec","value":"nope"}]"#.into(), 422, "JSON patch"),
        ("PUT", format!("{ct}/ok"), "application/json", r#"{"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"ok","resourceVersion":"1"},"spec":{"cronSpec":"* * * * *"}}"#.into(), 409, "modified"),
        ("GET", format!("{ct}/ok/scale"), "", "".into(), 404, "subresource"),
    ];
    assert!(corpus.len() >= 25);
    for (method, path, content_type, body, expected, text) in corpus {
        let mut request = http
            .request(
                method.parse().expect("method"),
                format!("{}{path}", plinth.url),
            )
            .bearer_auth(&token);
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        let response = request.body(body).send().await.expect("response");
        let code = response.status().as_u16();
        let status: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(code, expected, "{method} {path}: {status}");
        if expected >= 400 {
            assert_eq!(status["kind"], "Status", "{method} {path}: {status}");
            assert_eq!(status["code"], expected, "{method} {path}: {status}");
            let message = status["message"].as_str().unwrap_or("");
            assert!(
                message.contains(text),
                "{method} {path}: message {message:?} lacks {text:?}"
            );
        }
        if expected == 422 || expected == 400 {
            let causes = status["details"]["causes"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert!(
                !causes.is_empty(),
                "{method} {path}: {expected} without causes: {status}"
            );
        }
    }
    // The 422 for a CR names every offending field.
    let response = http
        .post(format!("{}{ct}", plinth.url))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(r#"{"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"bad2"},"spec":{"cronSpec":"nope","replicas":99,"size":"huge"}}"#)
        .send()
        .await
        .expect("response");
    let status: Value = response.json().await.expect("status");
    let fields: Vec<&str> = status["details"]["causes"]
        .as_array()
        .expect("causes")
        .iter()
        .filter_map(|c| c["field"].as_str())
        .collect();
    for field in ["spec.cronSpec", "spec.replicas", "spec.size"] {
        assert!(fields.contains(&field), "{field} missing from {status}");
    }
    let ready = http
        .get(format!("{}/readyz", plinth.url))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status().as_u16(), 200);
    let api: Api<ConfigMap> = Api::namespaced(plinth.client().await, "default");
    api.create(&PostParams::default(), &configmap("still-works", "1"))
        .await
        .expect("server still serves");
}

/// Sends one request with the admin token and returns the status code, the
/// body as JSON (Null when it is not JSON) and the `Warning` headers.
async fn send(
    plinth: &Plinth,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, Value, Vec<String>) {
    let mut request = plinth
        .http()
        .request(
            method.parse().expect("method"),
            format!("{}{path}", plinth.url),
        )
        .bearer_auth(plinth.token());
    if !content_type.is_empty() {
        request = request.header("content-type", content_type);
    }
    let response = request
        .body(body.to_string())
        .send()
        .await
        .expect("response");
    let code = response.status().as_u16();
    let warnings = response
        .headers()
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok().map(String::from))
        .collect();
    let body = response.json().await.unwrap_or(Value::Null);
    (code, body, warnings)
}

fn cause_fields(status: &Value) -> Vec<String> {
    status["details"]["causes"]
        .as_array()
        .map(|causes| {
            causes
                .iter()
                .filter_map(|c| c["field"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_kinds_are_validated_and_pruned_like_upstream() {
    let plinth = Plinth::start().await;
    plinth
        .apply_ok(&["apply", "-f", "-"], support::CRONTAB_CRD)
        .await;
    let cm = "/api/v1/namespaces/default/configmaps";
    let secret = "/api/v1/namespaces/default/secrets";
    let sa = "/api/v1/namespaces/default/serviceaccounts";
    let ev = "/api/v1/namespaces/default/events";
    let ns = "/api/v1/namespaces";
    let lease = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
    let ct = "/apis/stable.example.com/v1/namespaces/default/crontabs";
    let strict = "?fieldValidation=Strict";
    let big = format!(
        r#"{{"metadata":{{"name":"big"}},"data":{{"x":"{}"}}}}"#,
        "a".repeat(1024 * 1024 + 1)
    );
    // (reason, path, body, expected status, a field the causes must name)
    let cases: Vec<(&str, String, String, u16, &str)> = vec![
        ("strict: unknown top-level field", format!("{cm}{strict}"), r#"{"metadata":{"name":"s1"},"foo":"bar"}"#.into(), 400, "foo"),
        ("strict: unknown metadata field", format!("{cm}{strict}"), r#"{"metadata":{"name":"s2","foo":"bar"}}"#.into(), 400, "metadata.foo"),
        ("strict: unknown nested field", format!("{lease}{strict}"), r#"{"metadata":{"name":"s3"},"spec":{"holder":"x"}}"#.into(), 400, "spec.holder"),
        ("strict: unknown metadata field on a custom resource", format!("{ct}{strict}"), r#"{"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"s4","foo":1},"spec":{"cronSpec":"* * * * *"}}"#.into(), 400, "metadata.foo"),
        ("Secret type must be a string", secret.into(), r#"{"metadata":{"name":"t1"},"type":5}"#.into(), 422, "type"),
        ("Secret stringData values must be strings", secret.into(), r#"{"metadata":{"name":"t2"},"stringData":{"a":1}}"#.into(), 422, "stringData.a"),
        ("Secret data must be base64", secret.into(), r#"{"metadata":{"name":"t3"},"data":{"a":"not base64!"}}"#.into(), 422, "data.a"),
        ("TLS Secrets need tls.crt and tls.key", secret.into(), r#"{"metadata":{"name":"t4"},"type":"kubernetes.io/tls","stringData":{"tls.crt":"x"}}"#.into(), 422, "data[tls.key]"),
        ("Secret data keys must be config keys", secret.into(), r#"{"metadata":{"name":"t5"},"stringData":{"a/b":"x"}}"#.into(), 422, "data[a/b]"),
        ("ServiceAccount secrets must be a list", sa.into(), r#"{"metadata":{"name":"u1"},"secrets":"x"}"#.into(), 422, "secrets"),
        ("automountServiceAccountToken must be a boolean", sa.into(), r#"{"metadata":{"name":"u2"},"automountServiceAccountToken":"yes"}"#.into(), 422, "automountServiceAccountToken"),
        ("Event count must be an integer", ev.into(), r#"{"metadata":{"name":"v1"},"involvedObject":{"kind":"Pod","name":"p","namespace":"default"},"count":"x"}"#.into(), 422, "count"),
        ("Event timestamps must be RFC 3339", ev.into(), r#"{"metadata":{"name":"v2"},"involvedObject":{"kind":"Pod","name":"p","namespace":"default"},"lastTimestamp":"garbage"}"#.into(), 422, "lastTimestamp"),
        ("Event namespace must match its object's", ev.into(), r#"{"metadata":{"name":"v3"},"involvedObject":{"kind":"Pod","name":"p","namespace":"other"}}"#.into(), 422, "involvedObject.namespace"),
        ("Namespace spec must be an object", ns.into(), r#"{"metadata":{"name":"w1"},"spec":"x"}"#.into(), 422, "spec"),
        ("Lease holderIdentity must be a string", lease.into(), r#"{"metadata":{"name":"x1"},"spec":{"holderIdentity":5}}"#.into(), 422, "spec.holderIdentity"),
        ("Lease renewTime must be a MicroTime", lease.into(), r#"{"metadata":{"name":"x2"},"spec":{"renewTime":"garbage"}}"#.into(), 422, "spec.renewTime"),
        ("Lease duration must be positive", lease.into(), r#"{"metadata":{"name":"x3"},"spec":{"leaseDurationSeconds":0}}"#.into(), 422, "spec.leaseDurationSeconds"),
        ("ConfigMap binaryData must be base64", cm.into(), r#"{"metadata":{"name":"y1"},"binaryData":{"k":"%%%"}}"#.into(), 422, "binaryData.k"),
        ("ConfigMap keys may not hold spaces", cm.into(), r#"{"metadata":{"name":"y2"},"data":{"a b":"x"}}"#.into(), 422, "data[a b]"),
        ("ConfigMap keys may not hold slashes", cm.into(), r#"{"metadata":{"name":"y3"},"data":{"a/b":"x"}}"#.into(), 422, "data[a/b]"),
        ("a key may not be in data and binaryData", cm.into(), r#"{"metadata":{"name":"y4"},"data":{"k":"x"},"binaryData":{"k":"eA=="}}"#.into(), 422, "binaryData[k]"),
        ("ConfigMaps hold at most 1 MiB", cm.into(), big, 422, "data"),
        ("metadata.finalizers must be a list", cm.into(), r#"{"metadata":{"name":"y5","finalizers":"x"}}"#.into(), 422, "metadata.finalizers"),
        ("owner reference flags must be booleans", cm.into(), r#"{"metadata":{"name":"y6","ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"o","uid":"1","controller":"yes"}]}}"#.into(), 422, "metadata.ownerReferences[0].controller"),
        ("strict: unknown keyword in a CRD's schema", format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions{strict}"), r#"{"metadata":{"name":"things.example.com"},"spec":{"group":"example.com","names":{"plural":"things","kind":"Thing"},"scope":"Namespaced","versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","properties":{"spec":{"typ":"object"}}}}}]}}"#.into(), 400, "spec.versions[0].schema.openAPIV3Schema.properties.spec.typ"),
        ("malformed JSON names where it broke off", cm.into(), r#"{"metadata":{"name":"z1","labels":{"a":}}}"#.into(), 400, "metadata.labels.a"),
        ("a bad continue token names the parameter", format!("{cm}?continue=bm9wZQ"), String::new(), 400, "continue"),
    ];
    for (reason, path, body, expected, field) in cases {
        let method = if body.is_empty() { "GET" } else { "POST" };
        let (code, status, _) = send(&plinth, method, &path, "application/json", &body).await;
        assert_eq!(code, expected, "{reason}: {status}");
        assert_eq!(status["kind"], "Status", "{reason}: {status}");
        let fields = cause_fields(&status);
        assert!(
            fields.iter().any(|f| f == field),
            "{reason}: causes {fields:?} lack {field:?}: {status}"
        );
        if expected == 400 && field.contains('.') || field == "foo" {
            let message = status["message"].as_str().unwrap_or("");
            if path.contains("fieldValidation=Strict") {
                assert!(
                    message.contains("strict decoding error") && message.contains(field),
                    "{reason}: {message}"
                );
            }
        }
    }

    // Without Strict, unknown fields are pruned with a warning, and typed
    // clients can still list and watch what was stored.
    let (code, created, warnings) = send(
        &plinth,
        "POST",
        cm,
        "application/json",
        r#"{"metadata":{"name":"pruned","foo":1},"foo":"bar","data":{"k":"v"}}"#,
    )
    .await;
    assert_eq!(code, 201, "{created}");
    assert!(created.get("foo").is_none(), "{created}");
    assert!(created["metadata"].get("foo").is_none(), "{created}");
    assert!(
        warnings
            .iter()
            .any(|w| w == r#"299 - "unknown field \"foo\"""#),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w == r#"299 - "unknown field \"metadata.foo\"""#),
        "{warnings:?}"
    );
    // Kinds without spec semantics carry no generation, as upstream.
    assert!(created["metadata"].get("generation").is_none(), "{created}");
    let (_, ignored, warnings) = send(
        &plinth,
        "POST",
        &format!("{cm}?fieldValidation=Ignore"),
        "application/json",
        r#"{"metadata":{"name":"ignored"},"foo":"bar"}"#,
    )
    .await;
    assert!(
        ignored.get("foo").is_none() && warnings.is_empty(),
        "{ignored} {warnings:?}"
    );
    let client = plinth.client().await;
    let typed: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    typed
        .list(&ListParams::default())
        .await
        .expect("typed list");

    // Timestamps are written the way Go marshals them.
    let (code, lease_obj, _) = send(
        &plinth,
        "POST",
        lease,
        "application/json",
        r#"{"metadata":{"name":"held"},"spec":{"holderIdentity":"me","leaseDurationSeconds":15,"renewTime":"2024-05-01T12:00:00.5+02:00","acquireTime":"2024-05-01T10:00:00Z"}}"#,
    )
    .await;
    assert_eq!(code, 201, "{lease_obj}");
    assert_eq!(
        lease_obj["spec"]["renewTime"],
        "2024-05-01T10:00:00.500000Z"
    );
    assert_eq!(
        lease_obj["spec"]["acquireTime"],
        "2024-05-01T10:00:00.000000Z"
    );
    assert!(
        lease_obj["metadata"].get("generation").is_none(),
        "{lease_obj}"
    );
    let (_, event, _) = send(
        &plinth,
        "POST",
        ev,
        "application/json",
        r#"{"metadata":{"name":"seen"},"involvedObject":{"kind":"Node","name":"n"},"reason":"R","lastTimestamp":"2024-05-01T12:00:00.9+02:00"}"#,
    )
    .await;
    assert_eq!(event["lastTimestamp"], "2024-05-01T10:00:00Z", "{event}");
    // Fields Go always writes are there even when the client left them out,
    // as typed clients (the Python client's models) require involvedObject.
    let (code, bare, _) = send(
        &plinth,
        "POST",
        ev,
        "application/json",
        r#"{"metadata":{"name":"bare"}}"#,
    )
    .await;
    assert_eq!(code, 201, "{bare}");
    assert_eq!(bare["involvedObject"], json!({}), "{bare}");
    assert_eq!(bare["reportingComponent"], "", "{bare}");

    // Namespaces are labelled with their name.
    let (code, team, _) = send(
        &plinth,
        "POST",
        ns,
        "application/json",
        r#"{"metadata":{"name":"team","labels":{"kubernetes.io/metadata.name":"forged"}}}"#,
    )
    .await;
    assert_eq!(code, 201, "{team}");
    assert_eq!(
        team["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "team"
    );
    assert!(team["metadata"].get("generation").is_none(), "{team}");
    let (_, default_ns, _) = send(&plinth, "GET", &format!("{ns}/default"), "", "").await;
    assert_eq!(
        default_ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "default"
    );

    // Custom resources and CRDs still count generations.
    let (_, crontab, _) = send(
        &plinth,
        "POST",
        ct,
        "application/json",
        r#"{"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"gen"},"spec":{"cronSpec":"* * * * *"}}"#,
    )
    .await;
    assert_eq!(crontab["metadata"]["generation"], 1, "{crontab}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immutable_secrets_and_config_maps_keep_their_data() {
    let plinth = Plinth::start().await;
    let cm = "/api/v1/namespaces/default/configmaps";
    let secret = "/api/v1/namespaces/default/secrets";
    let merge = "application/merge-patch+json";
    for (path, body) in [
        (
            cm,
            r#"{"metadata":{"name":"frozen"},"immutable":true,"data":{"k":"v"}}"#,
        ),
        (
            secret,
            r#"{"metadata":{"name":"frozen"},"immutable":true,"stringData":{"k":"v"}}"#,
        ),
        (
            secret,
            r#"{"metadata":{"name":"typed"},"stringData":{"username":"u"}}"#,
        ),
    ] {
        let (code, status, _) = send(&plinth, "POST", path, "application/json", body).await;
        assert_eq!(code, 201, "{status}");
    }
    // (reason, method, path, content type, body, expected status, field named)
    let cases: Vec<(&str, &str, String, &str, &str, u16, &str)> = vec![
        (
            "ConfigMap data cannot change",
            "PATCH",
            format!("{cm}/frozen"),
            merge,
            r#"{"data":{"k":"changed"}}"#,
            422,
            "data",
        ),
        (
            "ConfigMap binaryData cannot be added",
            "PATCH",
            format!("{cm}/frozen"),
            merge,
            r#"{"binaryData":{"b":"eA=="}}"#,
            422,
            "binaryData",
        ),
        (
            "ConfigMap cannot become mutable",
            "PATCH",
            format!("{cm}/frozen"),
            merge,
            r#"{"immutable":false}"#,
            422,
            "immutable",
        ),
        (
            "ConfigMap data cannot be replaced",
            "PUT",
            format!("{cm}/frozen"),
            "application/json",
            r#"{"metadata":{"name":"frozen"},"immutable":true,"data":{"k":"other"}}"#,
            422,
            "data",
        ),
        (
            "Secret data cannot change through stringData",
            "PATCH",
            format!("{secret}/frozen"),
            merge,
            r#"{"stringData":{"k":"changed"}}"#,
            422,
            "data",
        ),
        (
            "Secret data cannot change",
            "PATCH",
            format!("{secret}/frozen"),
            merge,
            r#"{"data":{"k":"eQ=="}}"#,
            422,
            "data",
        ),
        (
            "Secret type is immutable",
            "PATCH",
            format!("{secret}/typed"),
            merge,
            r#"{"type":"kubernetes.io/basic-auth"}"#,
            422,
            "type",
        ),
        (
            "ConfigMap metadata may change",
            "PATCH",
            format!("{cm}/frozen"),
            merge,
            r#"{"metadata":{"labels":{"a":"b"}}}"#,
            200,
            "",
        ),
        (
            "Secret metadata may change",
            "PATCH",
            format!("{secret}/frozen"),
            merge,
            r#"{"metadata":{"annotations":{"a":"b"}}}"#,
            200,
            "",
        ),
    ];
    for (reason, method, path, content_type, body, expected, field) in cases {
        let (code, status, _) = send(&plinth, method, &path, content_type, body).await;
        assert_eq!(code, expected, "{reason}: {status}");
        if expected == 422 {
            assert_eq!(status["reason"], "Invalid", "{reason}: {status}");
            assert!(
                cause_fields(&status).iter().any(|f| f == field),
                "{reason}: {status}"
            );
            let message = status["message"].as_str().unwrap_or("");
            assert!(
                message.contains("field is immutable"),
                "{reason}: {message}"
            );
        }
    }
    let (_, stored, _) = send(&plinth, "GET", &format!("{cm}/frozen"), "", "").await;
    assert_eq!(stored["data"], json!({"k": "v"}));
    assert_eq!(stored["metadata"]["labels"], json!({"a": "b"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_secrets_merge_by_name_under_server_side_apply() {
    let plinth = Plinth::start().await;
    let path = "/api/v1/namespaces/default/serviceaccounts/robot";
    for (manager, secret) in [("first", "one"), ("second", "two")] {
        let body = format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: robot\nsecrets:\n- name: {secret}\n"
        );
        let (code, status, _) = send(
            &plinth,
            "PATCH",
            &format!("{path}?fieldManager={manager}"),
            "application/apply-patch+yaml",
            &body,
        )
        .await;
        assert!(code == 200 || code == 201, "{manager}: {status}");
    }
    let (_, robot, _) = send(&plinth, "GET", path, "", "").await;
    assert_eq!(
        robot["secrets"],
        json!([{"name": "one"}, {"name": "two"}]),
        "{robot}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_crd_reports_terminating_and_refuses_new_instances() {
    let plinth = Plinth::start().await;
    plinth
        .apply_ok(&["apply", "-f", "-"], support::CRONTAB_CRD)
        .await;
    let crd = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/crontabs.stable.example.com";
    let ct = "/apis/stable.example.com/v1/namespaces/default/crontabs";
    let held = r#"{"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"held","finalizers":["example.com/hold"]},"spec":{"cronSpec":"* * * * *"}}"#;
    let (code, status, _) = send(&plinth, "POST", ct, "application/json", held).await;
    assert_eq!(code, 201, "{status}");
    let (code, status, _) = send(&plinth, "DELETE", crd, "", "").await;
    assert_eq!(code, 200, "{status}");
    eventually(Duration::from_secs(10), "Terminating condition", || {
        let plinth = &plinth;
        async move {
            let (_, crd_obj, _) = send(plinth, "GET", crd, "", "").await;
            crd_obj["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| {
                    cs.iter().any(|c| {
                        c["type"] == "Terminating"
                            && c["status"] == "True"
                            && c["reason"] == "InstanceDeletionInProgress"
                    })
                })
        }
    })
    .await;
    let another = r#"{"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"late"},"spec":{"cronSpec":"* * * * *"}}"#;
    let (code, status, _) = send(&plinth, "POST", ct, "application/json", another).await;
    assert_eq!(code, 405, "{status}");
    let (code, status, _) = send(
        &plinth,
        "PATCH",
        &format!("{ct}/held"),
        "application/merge-patch+json",
        r#"{"metadata":{"finalizers":null}}"#,
    )
    .await;
    assert_eq!(code, 200, "{status}");
    eventually(Duration::from_secs(15), "CRD gone", || {
        let plinth = &plinth;
        async move { send(plinth, "GET", crd, "", "").await.0 == 404 }
    })
    .await;
}

/// Events expire a TTL after their last write, as kube-apiserver's
/// `--event-ttl` makes them; a write in between starts the TTL again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_expire_after_the_event_ttl() {
    use k8s_openapi::api::core::v1::Event;
    let plinth = Plinth::start_with(&["--event-ttl", "3s"]).await;
    let events: Api<Event> = Api::namespaced(plinth.client().await, "default");
    let event = |name: &str| -> Event {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "involvedObject": {"kind": "ConfigMap", "name": "x", "namespace": "default"},
            "reason": "Testing", "message": "hello", "type": "Normal", "count": 1
        }))
        .expect("event")
    };
    let started = std::time::Instant::now();
    events
        .create(&PostParams::default(), &event("lasting"))
        .await
        .expect("create");
    events
        .create(&PostParams::default(), &event("fleeting"))
        .await
        .expect("create");
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Written again: its TTL starts over.
    events
        .patch(
            "lasting",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"count": 2})),
        )
        .await
        .expect("patch");
    eventually(
        Duration::from_secs(10),
        "the unwritten event expires",
        || {
            let events = events.clone();
            async move { events.get_opt("fleeting").await.expect("get").is_none() }
        },
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "expired before its TTL"
    );
    assert!(
        events.get_opt("lasting").await.expect("get").is_some(),
        "the event written again expired with the first TTL"
    );
    eventually(
        Duration::from_secs(10),
        "the rewritten event expires too",
        || {
            let events = events.clone();
            async move { events.get_opt("lasting").await.expect("get").is_none() }
        },
    )
    .await;
}

/// Only TLS 1.2 and 1.3 are served: a client held to 1.0 or 1.1 (with
/// OpenSSL's own floor lowered, so it is the server that refuses) gets a
/// handshake failure alert.
#[tokio::test(flavor = "multi_thread")]
async fn only_tls_1_2_and_later_is_served() {
    let mut plinth = Plinth::start_with(&["--no-bundled-providers"]).await;
    let script = r#"
import socket, ssl, sys
port = int(sys.argv[1])
for version in ["TLSv1", "TLSv1_1", "TLSv1_2", "TLSv1_3"]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, version)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw) as tls:
                print(version, "accepted", tls.version())
    except ssl.SSLError as e:
        print(version, "refused", e.reason)
"#;
    let out = tokio::process::Command::new("python3")
        .args(["-W", "ignore", "-c", script, &plinth.port.to_string()])
        .output()
        .await
        .expect("python3 runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(
        lines,
        [
            "TLSv1 refused SSLV3_ALERT_HANDSHAKE_FAILURE",
            "TLSv1_1 refused SSLV3_ALERT_HANDSHAKE_FAILURE",
            "TLSv1_2 accepted TLSv1.2",
            "TLSv1_3 accepted TLSv1.3",
        ],
        "{report}"
    );
    plinth.stop().await;
}

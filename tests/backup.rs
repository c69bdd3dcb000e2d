//! `plinth backup` while `plinth up` serves a write load, and `plinth
//! restore` into a fresh data directory: every write acknowledged before
//! the backup began is there, and a watch resuming from a revision seen
//! before the restore gets 410 Gone (kube-rs's watcher then lists again).

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use support::{plinth_bin, Plinth};

async fn plinth(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    tokio::process::Command::new(plinth_bin())
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .await
        .expect("plinth runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_under_load_keeps_every_acknowledged_write() {
    let mut source = Plinth::start_with(&["--no-bundled-providers"]).await;
    let client = source.client().await;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    // Writers keep creating ConfigMaps; each records its name once acknowledged.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (maps, acknowledged, stop) = (maps.clone(), acknowledged.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && i < 5_000 {
                let name = format!("load-{w}-{i}");
                let cm: ConfigMap = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": name}, "data": {"n": i.to_string()}
                }))
                .expect("configmap");
                if maps.create(&PostParams::default(), &cm).await.is_ok() {
                    acknowledged.lock().expect("lock").push(name);
                }
                i += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before: Vec<String> = acknowledged.lock().expect("lock").clone();
    let revision_before = maps
        .list(&ListParams::default().limit(1))
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("list revision");
    let snapshot = source.dir.path().join("snapshot.db");
    let out = plinth(
        &["backup", snapshot.to_str().expect("utf-8")],
        source.dir.path(),
    )
    .await;
    assert!(
        out.status.success(),
        "backup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }
    assert!(
        before.len() > 50,
        "the load was running: {} writes",
        before.len()
    );
    source.stop().await;

    // Restore into a fresh data directory and serve it.
    let target = tempfile::tempdir().expect("temp dir");
    let out = plinth(
        &["restore", snapshot.to_str().expect("utf-8")],
        target.path(),
    )
    .await;
    assert!(
        out.status.success(),
        "restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = Plinth::start_in(target, &["--no-bundled-providers"]).await;
    let client = restored.client().await;
    let maps: Api<ConfigMap> = Api::namespaced(client, "default");
    let names: std::collections::HashSet<String> = maps
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|cm| cm.metadata.name)
        .collect();
    let missing: Vec<&String> = before.iter().filter(|n| !names.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged writes lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );

    // A watch from before the restore is told to list again.
    let mut stream = Box::pin(
        maps.watch(&WatchParams::default().timeout(5), &revision_before)
            .await
            .expect("watch starts"),
    );
    use futures::StreamExt;
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("an answer")
        .expect("an event");
    match first {
        Ok(WatchEvent::Error(e)) => assert_eq!(e.code, 410, "{e:?}"),
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 410, "{e:?}"),
        other => panic!("expected 410 Gone, got {other:?}"),
    }
}

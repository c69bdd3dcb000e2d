//! Store behaviour through its public API, on a real SQLite file.

use serde_json::json;
use store::{EventType, Options, Store, StoreError, WatchItem};

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("state.db"), Options::default()).expect("open store")
}

#[tokio::test]
async fn create_update_delete_with_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let a = store
        .create("/g/r/a", json!({"metadata": {"name": "a"}}))
        .await
        .unwrap();
    assert_eq!(a.mod_revision, 1);
    assert_eq!(a.value().unwrap()["metadata"]["resourceVersion"], "1");
    assert!(matches!(
        store.create("/g/r/a", json!({})).await,
        Err(StoreError::AlreadyExists)
    ));
    let b = store
        .update("/g/r/a", json!({"v": 2}), Some(1))
        .await
        .unwrap();
    assert_eq!((b.create_revision, b.mod_revision), (1, 2));
    assert!(matches!(
        store.update("/g/r/a", json!({"v": 3}), Some(1)).await,
        Err(StoreError::Conflict { current: 2 })
    ));
    let gone = store.delete("/g/r/a", Some(2)).await.unwrap();
    assert_eq!(gone.mod_revision, 3);
    assert!(store.get("/g/r/a").is_none());
    assert!(matches!(
        store.delete("/g/r/a", None).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.revision(), 3);
}

#[tokio::test]
async fn list_pages_by_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for i in 0..10 {
        store
            .create(&format!("/g/r/ns/{i}"), json!({"i": i}))
            .await
            .unwrap();
    }
    store.create("/g/other/x", json!({})).await.unwrap();
    let page = store.list("/g/r/", None, 4, &|_| true);
    assert_eq!(page.items.len(), 4);
    assert_eq!(page.remaining, 6);
    let last = page.items.last().unwrap().key.clone();
    let next = store.list("/g/r/", Some(&last), 0, &|_| true);
    assert_eq!(next.items.len(), 6);
    assert_eq!(next.remaining, 0);
    let odd = store.list("/g/r/", None, 0, &|r| {
        r.value().unwrap()["i"].as_i64().unwrap_or(0) % 2 == 1
    });
    assert_eq!(odd.items.len(), 5);
}

#[tokio::test]
async fn state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir);
        for i in 0..100 {
            store
                .create(&format!("/g/r/{i:03}"), json!({"i": i}))
                .await
                .unwrap();
        }
        store.delete("/g/r/000", None).await.unwrap();
        store.close();
    }
    let store = open(&dir);
    assert_eq!(store.len(), 99);
    assert_eq!(store.revision(), 101);
    let next = store.create("/g/r/new", json!({})).await.unwrap();
    assert_eq!(next.mod_revision, 102);
}

#[tokio::test]
async fn watch_resumes_from_revision_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir);
        store.create("/g/r/a", json!({})).await.unwrap();
        store.create("/g/x/b", json!({})).await.unwrap();
        store.update("/g/r/a", json!({"v": 1}), None).await.unwrap();
        store.close();
    }
    let store = open(&dir);
    let mut watch = store.watch("/g/r/", 1).unwrap();
    let store2 = store.clone();
    tokio::spawn(async move {
        store2.delete("/g/r/a", None).await.unwrap();
    });
    let mut seen = Vec::new();
    for _ in 0..2 {
        match watch.next().await.unwrap() {
            WatchItem::Event(e) => seen.push((e.revision, e.kind)),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        seen,
        vec![(3, EventType::Modified), (4, EventType::Deleted)]
    );
}

#[tokio::test]
async fn compaction_makes_old_revisions_gone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for i in 0..20 {
        store.create(&format!("/g/r/{i}"), json!({})).await.unwrap();
    }
    let compacted = store.compact(5).await.unwrap();
    assert_eq!(compacted, 15);
    assert!(matches!(
        store.watch("/g/r/", 3),
        Err(StoreError::Compacted {
            compact_revision: 15
        })
    ));
    let mut watch = store.watch("/g/r/", 15).unwrap();
    match watch.next().await.unwrap() {
        WatchItem::Event(e) => assert_eq!(e.revision, 16),
        other => panic!("unexpected {other:?}"),
    }
    store.close();
    let store = open(&dir);
    assert_eq!(store.compact_revision(), 15);
    assert!(store.watch("/g/r/", 10).is_err());
}

#[tokio::test]
async fn list_and_watch_has_no_gap() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.create("/g/r/a", json!({})).await.unwrap();
    let (items, rev, mut watch) = store.list_and_watch("/g/r/");
    assert_eq!((items.len(), rev), (1, 1));
    store.create("/g/r/b", json!({})).await.unwrap();
    match watch.next().await.unwrap() {
        WatchItem::Event(e) => assert_eq!((e.revision, e.kind), (2, EventType::Added)),
        other => panic!("unexpected {other:?}"),
    }
}

/// The database holds Secrets: it and its WAL files are the owner's only,
/// even when an older version left them readable by others.
#[tokio::test]
async fn database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mode = |name: &str| {
        std::fs::metadata(dir.path().join(name))
            .map(|m| m.permissions().mode() & 0o777)
            .ok()
    };
    let store = open(&dir);
    store.create("/g/r/a", json!({})).await.unwrap();
    for name in ["state.db", "state.db-wal", "state.db-shm"] {
        assert_eq!(mode(name), Some(0o600), "{name}");
    }
    store.close();
    drop(store);
    for name in ["state.db", "state.db-wal", "state.db-shm"] {
        let path = dir.path().join(name);
        if path.exists() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let store = open(&dir);
    store.create("/g/r/b", json!({})).await.unwrap();
    for name in ["state.db", "state.db-wal", "state.db-shm"] {
        assert_eq!(mode(name), Some(0o600), "{name} after reopening");
    }
    store.close();
}

/// Records and events carry the exact JSON of their object, written once,
/// and read back the same after a restart.
#[tokio::test]
async fn records_carry_their_stored_json() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let (_, _, mut watch) = store.list_and_watch("/g/r/");
    let created = store
        .create(
            "/g/r/a",
            json!({"metadata": {"name": "a"}, "data": {"k": "v"}}),
        )
        .await
        .unwrap();
    let text = |r: &store::Record| String::from_utf8(r.json().unwrap().to_vec()).unwrap();
    assert_eq!(text(&created), created.value().unwrap().to_string());
    let updated = store
        .update(
            "/g/r/a",
            json!({"metadata": {"name": "a"}, "data": {"k": "w"}}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(text(&updated), updated.value().unwrap().to_string());
    for want in [&created, &updated] {
        match watch.next().await {
            Some(WatchItem::Event(event)) => {
                assert_eq!(text(&event.record), text(want));
            }
            other => panic!("expected an event, got {other:?}"),
        }
    }
    store.close();
    drop(store);
    let store = open(&dir);
    let loaded = store.get("/g/r/a").expect("stored");
    assert_eq!(text(&loaded), text(&updated));
    // After a restart the history comes from the events table, text and all.
    let mut history = store.watch("/g/r/", 0).expect("watch from the start");
    match history.next().await {
        Some(WatchItem::Event(event)) => assert_eq!(text(&event.record), text(&created)),
        other => panic!("expected the create event, got {other:?}"),
    }
    store.close();
}

#[tokio::test]
async fn a_watch_far_behind_reads_its_history_in_order_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    // More than one chunk of history on disk, interleaved with another
    // prefix, then read back after a reopen (nothing in memory).
    let mut want = Vec::new();
    {
        let store = open(&dir);
        want.push(
            store
                .create("/g/r/a", json!({}))
                .await
                .unwrap()
                .mod_revision,
        );
        store.create("/g/x/b", json!({})).await.unwrap();
        for i in 0..5_000 {
            let key = if i % 2 == 0 { "/g/r/a" } else { "/g/x/b" };
            let written = store.update(key, json!({"i": i}), None).await.unwrap();
            if key == "/g/r/a" {
                want.push(written.mod_revision);
            }
        }
        store.close();
    }
    let store = open(&dir);
    let mut resumed = store.watch("/g/r/", 0).unwrap();
    // A live watch that falls behind the live channel while it is not read.
    let mut lagging = store.watch("/g/r/", store.revision()).unwrap();
    let mut late = Vec::new();
    for i in 0..5_000 {
        let written = store
            .update("/g/r/a", json!({"late": i}), None)
            .await
            .unwrap();
        late.push(written.mod_revision);
    }
    want.extend(&late);
    let mut seen = Vec::new();
    while seen.len() < want.len() {
        match resumed.next().await.unwrap() {
            WatchItem::Event(e) => seen.push(e.revision),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, want);
    let mut seen_late = Vec::new();
    while seen_late.len() < late.len() {
        match lagging.next().await.unwrap() {
            WatchItem::Event(e) => seen_late.push(e.revision),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen_late, late);
}

/// An event read back from disk still tells a selector watch what the
/// object's labels were before the change, so an object that left the
/// selection can be reported as gone.
#[tokio::test]
async fn events_from_disk_carry_the_labels_they_replaced() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir);
        let labelled = |app: &str| json!({"metadata": {"name": "a", "labels": {"app": app}}});
        store.create("/g/r/a", labelled("web")).await.unwrap();
        store.update("/g/r/a", labelled("db"), None).await.unwrap();
        store
            .update(
                "/g/r/a",
                json!({"metadata": {"name": "a", "labels": {"app": "db"}}, "spec": 1}),
                None,
            )
            .await
            .unwrap();
        store.close();
    }
    let store = open(&dir);
    let mut watch = store.watch("/g/r/", 1).unwrap();
    let mut prev = Vec::new();
    for _ in 0..2 {
        match watch.next().await.unwrap() {
            WatchItem::Event(e) => {
                assert_eq!(e.kind, EventType::Modified);
                prev.push(
                    e.prev
                        .as_ref()
                        .and_then(|p| p.label("app").map(String::from)),
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(prev, vec![Some("web".to_string()), Some("db".to_string())]);
}

/// Settled objects are held compressed, and read back exactly as written.
#[tokio::test]
async fn settled_objects_are_packed_and_read_back_intact() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut written = Vec::new();
    for i in 0..600 {
        let value = json!({
            "apiVersion": "v1", "kind": "Thing",
            "metadata": {"name": format!("t{i}"), "namespace": "default", "labels": {"app": "bench", "i": i.to_string()}},
            "spec": {"replicas": i, "image": "registry.example/app:1.2.3", "args": ["--flag", "--other-flag"], "note": "x".repeat(i % 50)},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Available"}]}
        });
        let record = store
            .create(&format!("/g/r/default/t{i}"), value)
            .await
            .unwrap();
        written.push(record.json().unwrap());
    }
    let started = std::time::Instant::now();
    while store.footprint().packed < written.len() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "not packed: {:?}",
            store.footprint()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let footprint = store.footprint();
    let plain: usize = written.iter().map(|j| j.len()).sum();
    assert!(
        footprint.body_bytes * 3 < plain,
        "{footprint:?} against {plain} plain bytes"
    );
    for (i, want) in written.iter().enumerate() {
        let record = store.get(&format!("/g/r/default/t{i}")).unwrap();
        assert!(record.is_packed());
        assert_eq!(&record.json().unwrap(), want);
        assert_eq!(record.meta.label("i"), Some(i.to_string().as_str()));
    }
    // Written again, an object is plain until it settles again.
    let again = store
        .update("/g/r/default/t0", json!({"metadata": {"name": "t0"}}), None)
        .await
        .unwrap();
    assert!(!again.is_packed());
    store.close();
}

/// A watch hears only its own resource (and namespace), and a quiet watch
/// still reports the newest revision for its bookmarks.
#[tokio::test]
async fn watches_hear_their_own_keys_and_progress_past_others() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let (_, _, mut one_namespace) = store.list_and_watch("/g/r/ns1/");
    store.create("/g/r/ns2/a", json!({})).await.unwrap();
    store.create("/g/other/b", json!({})).await.unwrap();
    let mine = store.create("/g/r/ns1/c", json!({})).await.unwrap();
    match one_namespace.next().await.unwrap() {
        WatchItem::Event(e) => assert_eq!(e.revision, mine.mod_revision),
        other => panic!("unexpected {other:?}"),
    }
    let last = store.create("/g/other/d", json!({})).await.unwrap();
    assert_eq!(one_namespace.progress(), last.mod_revision);
    store.close();
}

/// Every byte the store keeps on disk for `dir`: the database and its WAL.
fn disk_bytes(dir: &tempfile::TempDir) -> Vec<u8> {
    ["state.db", "state.db-wal"]
        .iter()
        .filter_map(|name| std::fs::read(dir.path().join(name)).ok())
        .flatten()
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn sealed(keys: &[(&str, [u8; 32])], reseal: bool) -> Options {
    let keys = keys
        .iter()
        .map(|(name, secret)| store::SealKey::new(name, secret).expect("a valid key"))
        .collect();
    let sealer = store::Sealer::new(vec!["/core/secrets/".into()], keys, false).expect("a sealer");
    Options {
        sealer: Some(std::sync::Arc::new(sealer)),
        reseal,
        ..Options::default()
    }
}

#[tokio::test]
async fn secrets_are_sealed_on_disk_rotated_and_rewritten() {
    const PASSWORD: &str = "hunter2-very-secret";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let secret = |n: u32| json!({"metadata": {"name": format!("s{n}")}, "stringData": {"password": format!("{PASSWORD}-{n}")}});

    // Written plain first, as a store without a key file does.
    let plain = open(&dir);
    plain
        .create("/core/secrets/default/s0", secret(0))
        .await
        .unwrap();
    plain
        .create(
            "/core/configmaps/default/c",
            json!({"data": {"note": "plain-config"}}),
        )
        .await
        .unwrap();
    plain.close();
    assert!(
        contains(&disk_bytes(&dir), PASSWORD),
        "the unsealed store holds it in the clear"
    );

    // Under key k1: plain values still read, new ones are sealed.
    let first = Store::open(&path, sealed(&[("k1", [1; 32])], false)).expect("open with k1");
    assert!(first.get("/core/secrets/default/s0").is_some());
    first
        .create("/core/secrets/default/s1", secret(1))
        .await
        .unwrap();
    first
        .update("/core/secrets/default/s1", secret(11), None)
        .await
        .unwrap();
    first.close();
    let bytes = disk_bytes(&dir);
    assert!(
        !contains(&bytes, &format!("{PASSWORD}-1")),
        "s1 is sealed in both tables"
    );
    assert!(contains(&bytes, "k8s:enc:aesgcm:v1:k1:"));

    // Without the keys the store does not open, and says why.
    let err = Store::open(&path, Options::default())
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("/core/secrets/default/s1")
            && err.contains("\"k1\"")
            && err.contains("--encryption-key-file"),
        "{err}"
    );
    // A wrong secret under the right name is named too.
    let err = Store::open(&path, sealed(&[("k1", [9; 32])], false))
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("does not open it"), "{err}");

    // Rotated to k2 with k1 kept: old values open, and a rewrite moves all
    // of them (objects and events, plain or k1) under k2.
    let rotated = Store::open(&path, sealed(&[("k2", [2; 32]), ("k1", [1; 32])], true))
        .expect("open rotated with a rewrite");
    let s1 = rotated.get("/core/secrets/default/s1").expect("s1");
    assert_eq!(
        s1.value().unwrap()["stringData"]["password"],
        format!("{PASSWORD}-11")
    );
    let mut watch = rotated
        .watch("/core/secrets/", 0)
        .expect("history from disk");
    let mut seen = 0;
    while let Ok(Some(item)) =
        tokio::time::timeout(std::time::Duration::from_millis(500), watch.next()).await
    {
        if let WatchItem::Event(_) = item {
            seen += 1;
        }
        if seen == 3 {
            break;
        }
    }
    assert_eq!(seen, 3, "the Secrets' three events read back from disk");
    rotated.close();
    let bytes = disk_bytes(&dir);
    assert!(
        !contains(&bytes, PASSWORD),
        "nothing plain is left, not even in free pages"
    );
    assert!(
        !contains(&bytes, "k8s:enc:aesgcm:v1:k1:"),
        "nothing is left under k1"
    );
    assert!(contains(&bytes, "plain-config"), "other kinds stay plain");

    // k1 can now be dropped.
    let only_k2 =
        Store::open(&path, sealed(&[("k2", [2; 32])], false)).expect("open with k2 alone");
    assert_eq!(only_k2.len(), 3);
    only_k2.close();
}

/// A store that grows by tens of thousands of objects is packed soon after
/// it settles, not one batch per interval: at one batch of 4,096 every 2 s,
/// 30,000 objects took at least 15 s, longer with each new dictionary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_settled_store_is_packed_within_a_few_intervals() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let total = 30_000;
    let mut writers = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for i in (w..total).step_by(8) {
                let value = json!({
                    "apiVersion": "v1", "kind": "Thing",
                    "metadata": {"name": format!("t{i}"), "namespace": "default", "labels": {"app": "bench"}},
                    "spec": {"replicas": i, "image": "registry.example/app:1.2.3", "note": "x".repeat(i % 40)},
                    "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Available"}]}
                });
                store
                    .create(&format!("/g/r/default/t{i}"), value)
                    .await
                    .unwrap();
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let settled = std::time::Instant::now();
    while store.footprint().packed < total {
        assert!(
            settled.elapsed() < std::time::Duration::from_secs(12),
            "not packed {:?} after the last write: {:?}",
            settled.elapsed(),
            store.footprint()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    eprintln!(
        "packed {total} objects {:?} after the last write",
        settled.elapsed()
    );
    store.close();
}

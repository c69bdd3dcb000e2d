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
    assert_eq!(a.value["metadata"]["resourceVersion"], "1");
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
        r.value["i"].as_i64().unwrap_or(0) % 2 == 1
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
    assert_eq!(&*created.text, created.value.to_string());
    let updated = store
        .update(
            "/g/r/a",
            json!({"metadata": {"name": "a"}, "data": {"k": "w"}}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(&*updated.text, updated.value.to_string());
    for want in [&created, &updated] {
        match watch.next().await {
            Some(WatchItem::Event(event)) => {
                assert_eq!(event.text, want.text);
                assert_eq!(&*event.text, event.object.to_string());
            }
            other => panic!("expected an event, got {other:?}"),
        }
    }
    store.close();
    drop(store);
    let store = open(&dir);
    let loaded = store.get("/g/r/a").expect("stored");
    assert_eq!(loaded.text, updated.text);
    // After a restart the history comes from the events table, text and all.
    let mut history = store.watch("/g/r/", 0).expect("watch from the start");
    match history.next().await {
        Some(WatchItem::Event(event)) => assert_eq!(event.text, created.text),
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

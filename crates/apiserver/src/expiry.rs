//! Events expire a while after their last write, as kube-apiserver's do
//! (`--event-ttl`, one hour by default): Events are a log of what happened,
//! not state, and without expiry a busy control plane keeps every one of
//! them forever.
//!
//! Each write of an Event pushes its deadline to the back of a queue; the
//! queue is in deadline order because every deadline is the write's time
//! plus the same TTL. An Event written again is found in the queue twice;
//! the older entry no longer matches its revision and is skipped.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use store::{EventType, WatchItem};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::builtin::Builtin;
use crate::lifecycle::{self, DeleteOptions};
use crate::Api;

/// When one write of one Event expires.
struct Deadline {
    at: Instant,
    key: Arc<str>,
    /// The revision of the write; a later write replaces the deadline.
    revision: u64,
}

pub async fn run(api: Arc<Api>, ttl: Duration, mut stopped: watch::Receiver<bool>) {
    let events = Builtin::Event.resource();
    let prefix = events.key_prefix(None);
    let (items, _, mut changes) = api.store.list_and_watch(&prefix);
    let mut queue = initial(&items, ttl);
    drop(items);
    loop {
        let next = queue.front().map(|d| d.at);
        tokio::select! {
            item = changes.next() => match item {
                Some(WatchItem::Event(event)) => {
                    if event.kind != EventType::Deleted {
                        queue.push_back(Deadline {
                            at: Instant::now() + ttl,
                            key: event.record.key.clone(),
                            revision: event.revision,
                        });
                    }
                }
                Some(WatchItem::Compacted { .. }) => {
                    // A live watch that keeps up is never compacted; start over.
                    let (items, _, watch) = api.store.list_and_watch(&prefix);
                    queue = initial(&items, ttl);
                    changes = watch;
                }
                None => return,
            },
            _ = sleep_until(next) => {
                let now = Instant::now();
                while queue.front().is_some_and(|d| d.at <= now) {
                    if let Some(due) = queue.pop_front() {
                        expire(&api, &events, &due).await;
                    }
                }
            }
            _ = stopped.changed() => return,
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Deletes the Event if it is still at the revision that set this deadline.
async fn expire(api: &Api, events: &crate::resource::Resource, due: &Deadline) {
    let Some(record) = api.store.get(&due.key) else {
        return;
    };
    if record.mod_revision != due.revision {
        return;
    }
    let namespace = record.meta.namespace.as_deref();
    match lifecycle::delete(
        api,
        events,
        namespace,
        &record.meta.name,
        &DeleteOptions::background(),
    )
    .await
    {
        Ok(_) => tracing::debug!(key = %due.key, "event expired"),
        // Deleted or rewritten meanwhile: the newer write has its own deadline.
        Err(e) if e.code == 404 || e.code == 409 => {}
        Err(e) => tracing::warn!(key = %due.key, error = %e, "cannot delete an expired event"),
    }
}

/// Deadlines of the Events stored at start-up, from the newest time each
/// one records (the store keeps no write times of its own).
fn initial(items: &[Arc<store::Record>], ttl: Duration) -> VecDeque<Deadline> {
    let now_wall = jiff::Timestamp::now();
    let now = Instant::now();
    let mut deadlines: Vec<Deadline> = items
        .iter()
        .map(|record| {
            let age = match record.value() {
                Ok(event) => last_written(&event)
                    .map(|t| now_wall.duration_since(t))
                    .and_then(|age| Duration::try_from(age).ok())
                    .unwrap_or(Duration::ZERO),
                Err(e) => {
                    tracing::warn!(key = %record.key, error = %e, "cannot read a stored event; it expires a full TTL from now");
                    Duration::ZERO
                }
            };
            Deadline {
                at: now + ttl.saturating_sub(age),
                key: record.key.clone(),
                revision: record.mod_revision,
            }
        })
        .collect();
    deadlines.sort_by_key(|d| d.at);
    deadlines.into()
}

/// The newest of the times an Event records about itself.
fn last_written(event: &Value) -> Option<jiff::Timestamp> {
    [
        "/series/lastObservedTime",
        "/lastTimestamp",
        "/eventTime",
        "/metadata/creationTimestamp",
    ]
    .iter()
    .filter_map(|p| event.pointer(p)?.as_str()?.parse::<jiff::Timestamp>().ok())
    .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_event_is_as_old_as_its_newest_timestamp() {
        let event = json!({
            "metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"},
            "lastTimestamp": "2026-01-01T00:10:00Z",
            "eventTime": null
        });
        assert_eq!(
            last_written(&event),
            Some("2026-01-01T00:10:00Z".parse().unwrap())
        );
        assert_eq!(last_written(&json!({})), None);
    }
}

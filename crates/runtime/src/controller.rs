//! One controller: a queue, a bounded number of workers, and the cache
//! subscriptions that feed the queue.
//!
//! A change reaches a controller through the shared caches. Changes that
//! this controller's own writes caused are dropped before they reach its
//! queue: the controller recorded the resourceVersion each write returned
//! (in [`Writes`]), and a watch event at exactly that version tells it
//! nothing it did not already know. So a reconcile that ends in a status
//! write is not followed by one that finds nothing to do.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::api::{ApiResource, DynamicObject};
use tokio::task::JoinSet;

use crate::cache::{Cache, Change, Key};
use crate::lock;
use crate::queue::{Queue, Reason, Source};
use crate::ratelimit::RateLimiter;

/// What a reconcile asks for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Look again after this long, unless a change comes first.
    Requeue(Duration),
    /// Nothing to do until something changes.
    AwaitChange,
}

/// How many resourceVersions of one object a controller remembers having
/// written: enough for a burst of writes to one object whose events have
/// not arrived yet.
const WRITES_PER_OBJECT: usize = 4;

/// An object of a kind: the kind as `group/plural`, and its key.
type Object = (String, Key);

/// The resourceVersions this controller's own writes left, by object.
#[derive(Default)]
pub struct Writes {
    versions: Mutex<HashMap<Object, Vec<Box<str>>>>,
}

fn kind_of(resource: &ApiResource) -> String {
    format!("{}/{}", resource.group, resource.plural)
}

impl Writes {
    /// Records a write's result: the object as the API returned it.
    pub fn record(&self, resource: &ApiResource, object: &DynamicObject) {
        if let Some(version) = object.metadata.resource_version.as_deref() {
            self.record_version(resource, Key::of(&object.metadata), version);
        }
    }

    pub fn record_version(&self, resource: &ApiResource, key: Key, version: &str) {
        let mut versions = lock(&self.versions);
        let list = versions.entry((kind_of(resource), key)).or_default();
        if list.len() >= WRITES_PER_OBJECT {
            list.remove(0);
        }
        list.push(version.into());
    }

    /// Whether `source` is exactly the state one of our writes left.
    fn is_own(&self, source: &Source) -> bool {
        let mut versions = lock(&self.versions);
        let id = (source.kind.clone(), source.key.clone());
        let Some(list) = versions.get_mut(&id) else {
            return false;
        };
        let own = match list.iter().position(|v| *v == source.version) {
            Some(i) => {
                // Versions before it will not be seen any more.
                list.drain(..=i);
                true
            }
            None => false,
        };
        if list.is_empty() {
            versions.remove(&id);
        }
        own
    }

    /// Forgets an object that is gone.
    fn forget(&self, resource: &ApiResource, key: &Key) {
        lock(&self.versions).remove(&(kind_of(resource), key.clone()));
    }
}

type Mapper = Box<dyn Fn(&Change) -> Vec<Key> + Send + Sync>;

/// Feeds `queue` with the keys `map` names for each change to `cache`'s
/// objects, until the returned task is aborted: for kinds a controller
/// learns it depends on as it goes (the kinds a Composition composes).
pub fn feed(
    queue: Arc<Queue>,
    cache: Arc<Cache>,
    map: impl Fn(&Change) -> Vec<Key> + Send + Sync + 'static,
) -> tokio::task::JoinHandle<()> {
    let mut changes = cache.subscribe();
    let kind = kind_of(&cache.resource);
    tokio::spawn(async move {
        while let Some(change) = changes.recv().await {
            let source = source(&kind, &change);
            for key in map(&change) {
                queue.changed(key, source.clone());
            }
        }
    })
}

/// What a change is, for telling own writes apart; a deletion is always news.
fn source(kind: &str, change: &Change) -> Option<Source> {
    change.object.as_ref().map(|object| Source {
        kind: kind.to_string(),
        key: change.key.clone(),
        version: object.resource_version.clone(),
    })
}

/// A controller being put together; [`Controller::run`] runs it.
pub struct Controller {
    name: String,
    primary: Arc<Cache>,
    writes: Arc<Writes>,
    queue: Arc<Queue>,
    concurrency: usize,
    feeds: Vec<(Arc<Cache>, Mapper)>,
    /// Whether only the objects of this process's shards are reconciled.
    sharded: bool,
}

impl Controller {
    /// A controller of `primary`'s kind: each of its objects is a key.
    /// `writes` is where the reconciler records what its writes return.
    pub fn new(
        name: impl Into<String>,
        primary: Arc<Cache>,
        writes: Arc<Writes>,
        debounce: Duration,
        limiter: Option<Arc<RateLimiter>>,
    ) -> Controller {
        let own = {
            let writes = writes.clone();
            Arc::new(move |source: &Source| writes.is_own(source))
        };
        Controller {
            name: name.into(),
            primary,
            writes,
            queue: Arc::new(Queue::new(debounce, limiter, own)),
            concurrency: 8,
            feeds: Vec::new(),
            sharded: true,
        }
    }

    /// Reconciles every object whatever shards this process holds: for
    /// definitions (XRDs) that every replica must act on to run the
    /// controllers of their kinds.
    pub fn unsharded(mut self) -> Controller {
        self.sharded = false;
        self
    }

    /// At most `n` reconciles at once.
    pub fn concurrency(mut self, n: usize) -> Controller {
        self.concurrency = n.max(1);
        self
    }

    /// Changes to `cache`'s objects reconcile the keys `map` names.
    pub fn watches(
        mut self,
        cache: Arc<Cache>,
        map: impl Fn(&Change) -> Vec<Key> + Send + Sync + 'static,
    ) -> Controller {
        self.feeds.push((cache, Box::new(map)));
        self
    }

    /// The queue, to reconcile keys on events of the caller's own.
    pub fn queue(&self) -> Arc<Queue> {
        self.queue.clone()
    }

    /// Runs until the task is aborted. `retry` says how long to wait after
    /// a key has failed that many times in a row.
    pub async fn run<F, Fut, E>(
        self,
        reconcile: F,
        retry: impl Fn(&E, u32) -> Duration + Send + Sync + 'static,
    ) where
        F: Fn(Key, Reason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let Controller {
            name,
            primary,
            writes,
            queue,
            concurrency,
            feeds,
            sharded,
        } = self;
        let mut tasks = JoinSet::new();
        let ownership = crate::shard::ownership().filter(|_| sharded);
        // Shards this process comes to hold: their objects are reconciled
        // at once, not at their next change.
        if let Some(ownership) = ownership.clone() {
            let (queue, primary) = (queue.clone(), primary.clone());
            let mut changes = ownership.subscribe();
            tasks.spawn(async move {
                while changes.changed().await.is_ok() {
                    for cached in primary.list() {
                        if ownership.owns(&cached.uid) {
                            queue.changed(cached.key.clone(), None);
                        }
                    }
                }
            });
        }
        // Subscribed before the first list is read, so nothing is missed between.
        let own = primary.subscribe();
        let mut feeding = Vec::new();
        for (cache, map) in feeds {
            feeding.push(feed(queue.clone(), cache, map));
        }
        {
            let (queue, writes, primary) = (queue.clone(), writes.clone(), primary.clone());
            let kind = kind_of(&primary.resource);
            let mut changes = own;
            tasks.spawn(async move {
                primary.synced().await;
                for cached in primary.list() {
                    queue.changed(cached.key.clone(), None);
                }
                while let Some(change) = changes.recv().await {
                    if change.object.is_none() {
                        writes.forget(&primary.resource, &change.key);
                        queue.forget(&change.key);
                        continue;
                    }
                    let source = source(&kind, &change);
                    queue.changed(change.key, source);
                }
            });
        }
        let reconcile = Arc::new(reconcile);
        let retry = Arc::new(retry);
        let failures: Arc<Mutex<HashMap<Key, u32>>> = Arc::default();
        for _ in 0..concurrency {
            let (queue, reconcile, retry, failures, name) = (
                queue.clone(),
                reconcile.clone(),
                retry.clone(),
                failures.clone(),
                name.clone(),
            );
            let (ownership, primary) = (ownership.clone(), primary.clone());
            tasks.spawn(async move {
                while let Some((key, reason)) = queue.next().await {
                    // Another replica's shard: not this one's to reconcile.
                    if let Some(ownership) = &ownership {
                        if primary.get(&key).is_some_and(|c| !ownership.owns(&c.uid)) {
                            queue.done(&key, None);
                            continue;
                        }
                    }
                    let (ready, due, _) = queue.len();
                    crate::metrics::queue_depth(&name, ready + due);
                    let started = std::time::Instant::now();
                    let outcome = reconcile(key.clone(), reason).await;
                    let result = match &outcome {
                        Ok(Action::Requeue(_)) => "requeue",
                        Ok(Action::AwaitChange) => "success",
                        Err(_) => "error",
                    };
                    crate::metrics::reconciled(&name, result, started.elapsed());
                    let next = match outcome {
                        Ok(action) => {
                            lock(&failures).remove(&key);
                            match action {
                                Action::Requeue(after) => Some((after, Reason::Requeued)),
                                Action::AwaitChange => None,
                            }
                        }
                        Err(e) => {
                            let count = {
                                let mut failures = lock(&failures);
                                let count = failures.entry(key.clone()).or_insert(0);
                                *count += 1;
                                *count
                            };
                            let delay = retry(&e, count);
                            tracing::debug!(controller = %name, %key, error = %e, ?delay, "reconcile failed; retrying");
                            Some((delay, Reason::Retry))
                        }
                    };
                    queue.done(&key, next);
                }
            });
        }
        // Aborted with this future: the feeds stop with it.
        let _feeds = AbortOnDrop(feeding);
        while tasks.join_next().await.is_some() {}
    }
}

/// Aborts its tasks when dropped.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

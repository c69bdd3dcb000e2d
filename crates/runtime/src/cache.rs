//! Shared caches: one watch per kind, read by every controller that needs
//! that kind.
//!
//! Every managed resource is read by its own reconciler, by the composite
//! that composes it and by the usage count of its ProviderConfig; every
//! composite by its reconciler and its claim's. One watch and one copy per
//! kind serve them all, so the memory for 10,000 claims is one copy of each
//! object, not one per controller.
//!
//! A cached object keeps what controllers look up on every change (name,
//! namespace, resourceVersion, labels, controller owner, ProviderConfig) and
//! the object itself as JSON without `metadata.managedFields` (no
//! controller reads them, and they are about half of a typical object),
//! compressed once the kind has enough objects to train a dictionary on
//! (see `jsonpack`). Controllers parse what they read.
//!
//! ```text
//!  API watch ─▶ watcher task ─▶ Cached (extract + packed JSON) ─▶ map by key
//!                                           └──▶ Change to every subscriber
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use futures::StreamExt;
use jsonpack::{Body, Packer, Trainer};
use kube::api::{ApiResource, DynamicObject, ObjectMeta};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::{lock, read, write, Error};

/// Where an object is: its namespace (none for cluster-scoped kinds) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub namespace: Option<Arc<str>>,
    pub name: Arc<str>,
}

impl Key {
    pub fn new(namespace: Option<&str>, name: &str) -> Key {
        Key {
            namespace: namespace.map(Arc::from),
            name: Arc::from(name),
        }
    }

    pub fn cluster(name: &str) -> Key {
        Key::new(None, name)
    }

    pub fn of(meta: &ObjectMeta) -> Key {
        Key::new(
            meta.namespace.as_deref(),
            meta.name.as_deref().unwrap_or_default(),
        )
    }

    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The controller owner of an object, as its `ownerReferences` name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub api_version: Box<str>,
    pub kind: Box<str>,
    pub name: Box<str>,
    pub uid: Box<str>,
}

/// One object as the cache holds it.
#[derive(Debug)]
pub struct Cached {
    pub key: Key,
    pub resource_version: Box<str>,
    pub uid: Box<str>,
    pub generation: Option<i64>,
    /// Whether `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// Sorted by key.
    labels: Box<[(Box<str>, Box<str>)]>,
    pub controller: Option<Owner>,
    /// `spec.providerConfigRef.name`, for counting a ProviderConfig's users
    /// without reading every object.
    pub provider_config: Option<Box<str>>,
    body: Body,
}

impl Cached {
    fn of(mut object: DynamicObject, packing: &mut Packing) -> Result<Cached, Error> {
        object.metadata.managed_fields = None;
        let meta = &object.metadata;
        let mut labels: Vec<(Box<str>, Box<str>)> = meta
            .labels
            .iter()
            .flatten()
            .map(|(k, v)| (Box::from(k.as_str()), Box::from(v.as_str())))
            .collect();
        labels.sort();
        let controller = meta
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .map(|o| Owner {
                api_version: o.api_version.as_str().into(),
                kind: o.kind.as_str().into(),
                name: o.name.as_str().into(),
                uid: o.uid.as_str().into(),
            });
        let provider_config = object
            .data
            .pointer("/spec/providerConfigRef/name")
            .and_then(Value::as_str)
            .map(Box::from);
        let json = serde_json::to_vec(&object).map_err(Error::Encode)?;
        Ok(Cached {
            key: Key::of(meta),
            resource_version: meta.resource_version.as_deref().unwrap_or_default().into(),
            uid: meta.uid.as_deref().unwrap_or_default().into(),
            generation: meta.generation,
            deleting: meta.deletion_timestamp.is_some(),
            labels: labels.into(),
            controller,
            provider_config,
            body: packing.pack(Bytes::from(json)),
        })
    }

    /// The value of one label.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.labels[i].1)
    }

    /// The object, parsed.
    pub fn object(&self) -> Result<DynamicObject, Error> {
        self.parse()
    }

    /// The object, parsed as `T` (a typed kind such as a Secret).
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        let json = self.body.json()?;
        serde_json::from_slice(&json).map_err(Error::Decode)
    }

    /// The object as a JSON value.
    pub fn value(&self) -> Result<Value, Error> {
        let json = self.body.json()?;
        serde_json::from_slice(&json).map_err(Error::Decode)
    }

    /// Bytes of memory the object's JSON takes as held.
    pub fn size(&self) -> usize {
        self.body.size()
    }
}

/// One change seen by the cache.
#[derive(Debug, Clone)]
pub struct Change {
    pub key: Key,
    /// The object now; `None` once it is deleted.
    pub object: Option<Arc<Cached>>,
    /// The object before, when the cache held it.
    pub previous: Option<Arc<Cached>>,
}

impl Change {
    /// The object's newest state: now, or as it was last seen if deleted.
    pub fn latest(&self) -> Option<&Arc<Cached>> {
        self.object.as_ref().or(self.previous.as_ref())
    }
}

/// Compression of one kind's objects, trained on the kind's own objects.
#[derive(Default)]
struct Packing {
    trainer: Trainer,
    packer: Packer,
}

impl Packing {
    fn pack(&mut self, json: Bytes) -> Body {
        match self.trainer.dictionary().cloned() {
            Some(dictionary) => self
                .packer
                .pack(&dictionary, json.clone())
                .unwrap_or(Body::Plain(json)),
            None => Body::Plain(json),
        }
    }
}

/// The cache of one kind.
pub struct Cache {
    pub resource: ApiResource,
    objects: RwLock<HashMap<Key, Arc<Cached>>>,
    synced: watch::Sender<bool>,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<Change>>>,
    /// Used by the watcher task only; a lock so the cache stays `Sync`.
    packing: Mutex<Packing>,
}

impl Cache {
    fn new(resource: ApiResource) -> Cache {
        Cache {
            resource,
            objects: RwLock::default(),
            synced: watch::channel(false).0,
            subscribers: Mutex::default(),
            packing: Mutex::default(),
        }
    }

    /// The object under `key`.
    pub fn get(&self, key: &Key) -> Option<Arc<Cached>> {
        read(&self.objects).get(key).cloned()
    }

    /// Every object.
    pub fn list(&self) -> Vec<Arc<Cached>> {
        read(&self.objects).values().cloned().collect()
    }

    /// Objects `keep` accepts, without copying the others out.
    pub fn filter(&self, keep: impl Fn(&Cached) -> bool) -> Vec<Arc<Cached>> {
        read(&self.objects)
            .values()
            .filter(|c| keep(c))
            .cloned()
            .collect()
    }

    /// How many objects `count` accepts.
    pub fn count(&self, count: impl Fn(&Cached) -> bool) -> usize {
        read(&self.objects).values().filter(|c| count(c)).count()
    }

    pub fn len(&self) -> usize {
        read(&self.objects).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the cached objects' JSON takes as held.
    pub fn footprint(&self) -> usize {
        read(&self.objects).values().map(|c| c.size()).sum()
    }

    /// Changes from now on. A subscriber that also wants what is there
    /// already reads [`Cache::list`] after subscribing.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Change> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.subscribers).push(tx);
        rx
    }

    /// Waits until the first list of the kind is in.
    pub async fn synced(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|synced| *synced).await;
    }

    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    fn notify(&self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let mut subscribers = lock(&self.subscribers);
        subscribers.retain(|s| !s.is_closed());
        for subscriber in subscribers.iter() {
            for change in &changes {
                let _ = subscriber.send(change.clone());
            }
        }
    }

    fn ingest(&self, object: DynamicObject) -> Option<Arc<Cached>> {
        let mut packing = lock(&self.packing);
        match Cached::of(object, &mut packing) {
            Ok(cached) => Some(Arc::new(cached)),
            Err(e) => {
                tracing::warn!(kind = %self.resource.kind, error = %e, "cannot cache an object");
                None
            }
        }
    }

    fn apply(&self, object: DynamicObject) {
        let Some(cached) = self.ingest(object) else {
            return;
        };
        let key = cached.key.clone();
        let previous = write(&self.objects).insert(key.clone(), cached.clone());
        self.notify(vec![Change {
            key,
            object: Some(cached),
            previous,
        }]);
        self.train_if_due();
    }

    fn delete(&self, object: &DynamicObject) {
        let key = Key::of(&object.metadata);
        let previous = write(&self.objects).remove(&key);
        self.notify(vec![Change {
            key,
            object: None,
            previous,
        }]);
    }

    /// A relist's objects replace the cache's; what differs is a change.
    fn replace(&self, fresh: HashMap<Key, Arc<Cached>>) {
        let mut changes = Vec::new();
        {
            let mut objects = write(&self.objects);
            for (key, object) in &fresh {
                let previous = objects.get(key);
                if previous.is_none_or(|p| p.resource_version != object.resource_version) {
                    changes.push(Change {
                        key: key.clone(),
                        object: Some(object.clone()),
                        previous: previous.cloned(),
                    });
                }
            }
            for (key, previous) in objects.iter() {
                if !fresh.contains_key(key) {
                    changes.push(Change {
                        key: key.clone(),
                        object: None,
                        previous: Some(previous.clone()),
                    });
                }
            }
            *objects = fresh;
        }
        self.synced.send_replace(true);
        self.notify(changes);
        self.train_if_due();
    }

    /// Trains a (new) dictionary once the kind has grown enough, and packs
    /// every object with it.
    fn train_if_due(&self) {
        let count = self.len();
        let mut packing = lock(&self.packing);
        if !packing.trainer.due(count) {
            return;
        }
        let step = (count / Trainer::SAMPLES).max(1);
        let samples: Vec<Bytes> = read(&self.objects)
            .values()
            .step_by(step)
            .take(Trainer::SAMPLES)
            .filter_map(|c| c.body.json().ok())
            .collect();
        let Some(dictionary) = packing.trainer.train(count, &samples) else {
            return;
        };
        let Packing { packer, .. } = &mut *packing;
        let mut objects = write(&self.objects);
        for cached in objects.values_mut() {
            let Ok(json) = cached.body.json() else {
                continue;
            };
            let Ok(body) = packer.pack(&dictionary, json) else {
                continue;
            };
            *cached = Arc::new(Cached {
                key: cached.key.clone(),
                resource_version: cached.resource_version.clone(),
                uid: cached.uid.clone(),
                generation: cached.generation,
                deleting: cached.deleting,
                labels: cached.labels.clone(),
                controller: cached.controller.clone(),
                provider_config: cached.provider_config.clone(),
                body,
            });
        }
        tracing::debug!(kind = %self.resource.kind, objects = count, "cache trained a compression dictionary");
    }
}

/// The caches of one control plane, one per kind, each started when first asked for.
pub struct Caches {
    client: Client,
    kinds: Mutex<HashMap<String, Arc<Cache>>>,
    tasks: Mutex<tokio::task::JoinSet<()>>,
}

fn kind_key(ar: &ApiResource) -> String {
    format!("{}/{}/{}", ar.group, ar.version, ar.plural)
}

impl Caches {
    pub fn new(client: Client) -> Arc<Caches> {
        Arc::new(Caches {
            client,
            kinds: Mutex::default(),
            tasks: Mutex::default(),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The cache of `resource`, watching from its first use on.
    pub fn of(&self, resource: &ApiResource) -> Arc<Cache> {
        let mut kinds = lock(&self.kinds);
        if let Some(cache) = kinds.get(&kind_key(resource)) {
            return cache.clone();
        }
        let cache = Arc::new(Cache::new(resource.clone()));
        kinds.insert(kind_key(resource), cache.clone());
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), resource);
        lock(&self.tasks).spawn(watch_kind(cache.clone(), api));
        cache
    }

    /// The caches started so far, for benchmarks and diagnostics.
    pub fn all(&self) -> Vec<Arc<Cache>> {
        lock(&self.kinds).values().cloned().collect()
    }

    /// Stops every watch.
    pub fn stop(&self) {
        lock(&self.tasks).abort_all();
    }
}

impl Drop for Caches {
    fn drop(&mut self) {
        lock(&self.tasks).abort_all();
    }
}

/// Keeps one kind's cache in step with the API: relists replace it, then
/// every change is applied as it comes.
async fn watch_kind(cache: Arc<Cache>, api: Api<DynamicObject>) {
    // Backoff: a watch that keeps failing (a kind not yet served, say)
    // waits between attempts instead of spinning.
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut relist: Option<HashMap<Key, Arc<Cached>>> = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init) => relist = Some(HashMap::new()),
            Ok(watcher::Event::InitApply(object)) => {
                if let (Some(fresh), Some(cached)) = (relist.as_mut(), cache.ingest(object)) {
                    fresh.insert(cached.key.clone(), cached);
                }
            }
            Ok(watcher::Event::InitDone) => cache.replace(relist.take().unwrap_or_default()),
            Ok(watcher::Event::Apply(object)) => cache.apply(object),
            Ok(watcher::Event::Delete(object)) => cache.delete(&object),
            Err(e) => {
                tracing::debug!(kind = %cache.resource.kind, error = %e, "watch failed; retrying");
            }
        }
    }
}

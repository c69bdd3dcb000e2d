//! The garbage collector: in embedded mode nothing else deletes dependents.
//!
//! It keeps an index of owner references from the store's event stream and:
//! - deletes an object once every owner it names is gone (background cascade);
//! - for an owner held by `foregroundDeletion`, deletes its dependents first,
//!   then releases the owner;
//! - for an owner held by `orphan`, strips the owner reference from its
//!   dependents, then releases the owner;
//! - empties a terminating namespace, then removes it;
//! - deletes every custom resource of a deleted CRD, then removes the CRD.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use store::{EventType, Meta, Record, WatchItem};
use tokio::sync::watch;

use crate::builtin::Builtin;
use crate::lifecycle::{self, DeleteOptions, Part, Propagation, WriteOptions};
use crate::object::{self, meta};
use crate::resource::Resource;
use crate::{crd, Api};

/// The field manager the collector writes as.
const MANAGER: &str = lifecycle::NAMESPACE_CLEANUP_MANAGER;

/// How often objects that are being deleted are looked at again, in case an
/// event that would have woken the collector was missed.
const RESWEEP: Duration = Duration::from_secs(2);

/// An object's UID as a number: the index holds tens of thousands of them,
/// and 16 bytes inline beat a 36-character string on the heap each time.
/// UIDs this server gives are UUIDs; any other text is hashed to 128 bits.
type Uid = u128;

fn uid(text: &str) -> Uid {
    match uuid::Uuid::parse_str(text) {
        Ok(uuid) => uuid.as_u128(),
        Err(_) => {
            use std::hash::{Hash, Hasher};
            // Two hashes, salted apart, make the 128 bits.
            let half = |seed: u64| {
                let mut hasher = std::hash::DefaultHasher::new();
                seed.hash(&mut hasher);
                text.hash(&mut hasher);
                hasher.finish()
            };
            (u128::from(half(1)) << 64) | u128::from(half(2))
        }
    }
}

#[derive(Default)]
struct Index {
    /// uid → storage key of every object (the store's own key allocation).
    keys: HashMap<Uid, Arc<str>>,
    /// uid → owner uids, for objects that name owners, to undo index
    /// entries on change.
    owners: HashMap<Uid, Box<[Uid]>>,
    /// owner uid → uids of its dependents.
    dependents: HashMap<Uid, Vec<Uid>>,
    /// Keys of objects that carry a deletionTimestamp.
    deleting: BTreeSet<Arc<str>>,
}

impl Index {
    fn upsert(&mut self, key: &Arc<str>, meta: &Meta) {
        let id = uid(&meta.uid);
        let owners: Box<[Uid]> = meta.owners.iter().map(|o| uid(o)).collect();
        let before = self.owners.get(&id).map(|o| &**o).unwrap_or_default();
        if *before != *owners {
            self.unlink(id);
            for owner in owners.iter() {
                self.dependents.entry(*owner).or_default().push(id);
            }
            if !owners.is_empty() {
                self.owners.insert(id, owners);
            }
        }
        if meta.deleting {
            self.deleting.insert(key.clone());
        } else {
            self.deleting.remove(key);
        }
        self.keys.insert(id, key.clone());
    }

    fn remove(&mut self, key: &str, meta: &Meta) {
        let id = uid(&meta.uid);
        self.unlink(id);
        if self.keys.get(&id).is_some_and(|k| **k == *key) {
            self.keys.remove(&id);
        }
        self.deleting.remove(key);
    }

    /// Drops `id` from the dependents of the owners it named.
    fn unlink(&mut self, id: Uid) {
        let Some(owners) = self.owners.remove(&id) else {
            return;
        };
        for owner in owners.iter() {
            if let Some(list) = self.dependents.get_mut(owner) {
                list.retain(|d| *d != id);
                if list.is_empty() {
                    self.dependents.remove(owner);
                }
            }
        }
    }

    fn key(&self, uid_text: &str) -> Option<&Arc<str>> {
        self.keys.get(&uid(uid_text))
    }

    /// The keys of the dependents of the object with `uid_text`.
    fn dependents_of(&self, uid_text: &str) -> Vec<Arc<str>> {
        self.dependents
            .get(&uid(uid_text))
            .map(|list| {
                list.iter()
                    .filter_map(|d| self.keys.get(d).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub async fn run(api: Arc<Api>, mut stopped: watch::Receiver<bool>) {
    let (items, _, mut events) = api.store.list_and_watch("/");
    let mut index = Index::default();
    let mut pending: BTreeSet<Arc<str>> = BTreeSet::new();
    for record in &items {
        index.upsert(&record.key, &record.meta);
        if !record.meta.owners.is_empty() || record.meta.deleting {
            pending.insert(record.key.clone());
        }
    }
    drop(items);
    let mut resweep = tokio::time::interval(RESWEEP);
    loop {
        while let Some(key) = pending.pop_first() {
            if let Some(record) = api.store.get(&key) {
                examine(&api, &index, &record, &mut pending).await;
            }
            // Drain events between items so the index stays current.
            while let Some(item) = futures::FutureExt::now_or_never(events.next()) {
                match item {
                    Some(item) => absorb(&api, &mut index, item, &mut pending),
                    None => return,
                }
            }
        }
        tokio::select! {
            item = events.next() => match item {
                Some(item) => absorb(&api, &mut index, item, &mut pending),
                None => return,
            },
            _ = resweep.tick() => pending.extend(index.deleting.iter().cloned()),
            _ = stopped.changed() => return,
        }
    }
}

fn absorb(api: &Api, index: &mut Index, item: WatchItem, pending: &mut BTreeSet<Arc<str>>) {
    let event = match item {
        WatchItem::Event(event) => event,
        WatchItem::Compacted { .. } => {
            // Cannot happen for a live watch that keeps up; rebuild to be safe.
            let page = api.store.list("/", None, 0, &|_| true);
            *index = Index::default();
            for record in page.items {
                index.upsert(&record.key, &record.meta);
                pending.insert(record.key.clone());
            }
            return;
        }
    };
    let meta = &event.record.meta;
    let key = &event.record.key;
    match event.kind {
        EventType::Deleted => {
            // Dependents may now be orphaned; owners may now be free to go.
            pending.extend(index.dependents_of(&meta.uid));
            index.remove(key, meta);
            for owner in meta.owners.iter() {
                if let Some(owner_key) = index.key(owner) {
                    pending.insert(owner_key.clone());
                }
            }
            pending.extend(index.deleting.iter().cloned());
        }
        _ => {
            index.upsert(key, meta);
            if meta.deleting || !meta.owners.is_empty() {
                pending.insert(key.clone());
            }
            if meta.deleting {
                pending.extend(index.dependents_of(&meta.uid));
            }
        }
    }
}

async fn examine(api: &Api, index: &Index, record: &Record, pending: &mut BTreeSet<Arc<str>>) {
    let Some(res) = resource_of(api, &record.key) else {
        return;
    };
    let obj = &record.meta;
    let ns = namespace_of(&res, &record.key);
    let holds = |o: &Meta, finalizer: &str| o.finalizers.iter().any(|f| **f == *finalizer);

    // As a dependent: follow what its owners ask for.
    if !obj.owners.is_empty() {
        let live: Vec<Arc<Record>> = obj
            .owners
            .iter()
            .filter_map(|uid| index.key(uid))
            .filter_map(|key| api.store.get(key))
            .collect();
        if live.is_empty() {
            if !obj.deleting {
                delete(api, &res, ns.as_deref(), obj, Propagation::Background).await;
            }
            return;
        }
        let orphaning: Vec<String> = live
            .iter()
            .filter(|o| o.meta.deleting && holds(&o.meta, meta::ORPHAN))
            .map(|o| o.meta.uid.to_string())
            .collect();
        if !orphaning.is_empty() {
            strip_owners(api, &res, ns.as_deref(), obj, &orphaning).await;
            return;
        }
        let foreground = live
            .iter()
            .any(|o| o.meta.deleting && holds(&o.meta, meta::FOREGROUND_DELETION));
        if foreground && !obj.deleting {
            delete(api, &res, ns.as_deref(), obj, Propagation::Foreground).await;
        }
    }

    if !obj.deleting {
        return;
    }
    let dependents = index.dependents_of(&obj.uid);
    if holds(obj, meta::ORPHAN) {
        if dependents.is_empty() {
            release(api, &res, ns.as_deref(), obj, meta::ORPHAN).await;
        } else {
            pending.extend(dependents);
        }
    } else if holds(obj, meta::FOREGROUND_DELETION) {
        if dependents.is_empty() {
            release(api, &res, ns.as_deref(), obj, meta::FOREGROUND_DELETION).await;
        } else {
            pending.extend(dependents);
        }
    }
    match res.builtin {
        Some(Builtin::Namespace) => empty_namespace(api, obj).await,
        Some(Builtin::CustomResourceDefinition) => match record.value() {
            Ok(crd) => empty_crd(api, obj, &crd).await,
            Err(e) => {
                tracing::warn!(key = %record.key, error = %e, "cannot read a deleted CRD to empty it")
            }
        },
        _ => {}
    }
}

async fn delete(api: &Api, res: &Resource, ns: Option<&str>, obj: &Meta, propagation: Propagation) {
    let name = &*obj.name;
    let options = DeleteOptions {
        propagation: Some(propagation),
        precondition_uid: Some(obj.uid.to_string()),
        ..DeleteOptions::background()
    };
    match lifecycle::delete(api, res, ns, name, &options).await {
        Ok(_) => tracing::debug!(kind = %res.kind, name, "garbage collected"),
        Err(e) if e.code == 404 || e.code == 409 => {}
        Err(e) => tracing::warn!(kind = %res.kind, name, error = %e, "cannot garbage collect"),
    }
}

/// Removes owner references to `uids` from a dependent.
async fn strip_owners(api: &Api, res: &Resource, ns: Option<&str>, obj: &Meta, uids: &[String]) {
    let name = obj.name.to_string();
    let opts = WriteOptions::system(MANAGER);
    let result = lifecycle::update_with(api, res, ns, &name, Part::Main, &opts, |current| {
        let mut next = current.clone();
        if let Some(meta) = object::metadata_mut(&mut next) {
            if let Some(Value::Array(refs)) = meta.get_mut("ownerReferences") {
                refs.retain(|r| {
                    !r.get("uid")
                        .and_then(Value::as_str)
                        .is_some_and(|u| uids.iter().any(|x| x == u))
                });
                if refs.is_empty() {
                    meta.remove("ownerReferences");
                }
            }
            meta.remove("resourceVersion");
        }
        Ok(next)
    })
    .await;
    if let Err(e) = result {
        if e.code != 404 {
            tracing::warn!(kind = %res.kind, name, error = %e, "cannot orphan dependent");
        }
    }
}

/// Removes one finalizer (the deletion completes if it was the last).
async fn release(api: &Api, res: &Resource, ns: Option<&str>, obj: &Meta, finalizer: &str) {
    let name = obj.name.to_string();
    let opts = WriteOptions::system(MANAGER);
    let result = lifecycle::update_with(api, res, ns, &name, Part::Main, &opts, |current| {
        let mut next = current.clone();
        let remaining: Vec<String> = object::finalizers(current)
            .into_iter()
            .filter(|f| f != finalizer)
            .collect();
        object::set_finalizers(&mut next, &remaining);
        if let Some(meta) = object::metadata_mut(&mut next) {
            meta.remove("resourceVersion");
        }
        Ok(next)
    })
    .await;
    if let Err(e) = result {
        if e.code != 404 {
            tracing::warn!(kind = %res.kind, name, error = %e, finalizer, "cannot release finalizer");
        }
    }
}

/// Deletes everything in a terminating namespace, then lets it go.
async fn empty_namespace(api: &Api, ns_obj: &Meta) {
    let ns = ns_obj.name.to_string();
    let mut remaining = 0;
    let mut seen = HashSet::new();
    for res in api.registry.all() {
        if !res.namespaced || !seen.insert((res.group.clone(), res.plural.clone())) {
            continue;
        }
        let page = api
            .store
            .list(&res.key_prefix(Some(&ns)), None, 0, &|_| true);
        for record in page.items {
            remaining += 1;
            if !record.meta.deleting {
                delete(api, &res, Some(&ns), &record.meta, Propagation::Background).await;
            }
        }
    }
    if remaining == 0 {
        let namespaces = api.namespaces();
        let opts = WriteOptions::system(MANAGER);
        let result =
            lifecycle::update_with(api, namespaces, None, &ns, Part::Main, &opts, |current| {
                let mut next = current.clone();
                next["spec"] = json!({"finalizers": []});
                if let Some(meta) = object::metadata_mut(&mut next) {
                    meta.remove("resourceVersion");
                }
                Ok(next)
            })
            .await;
        if let Err(e) = result {
            if e.code != 404 {
                tracing::warn!(namespace = %ns, error = %e, "cannot finish deleting namespace");
            }
        }
    }
}

/// Deletes every instance of a deleted CRD, then lets the CRD go.
async fn empty_crd(api: &Api, crd_meta: &Meta, crd_obj: &Value) {
    if !crd_meta
        .finalizers
        .iter()
        .any(|f| **f == *crd::CLEANUP_FINALIZER)
    {
        return;
    }
    let group = crd_obj
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or("");
    let plural = crd_obj
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut remaining = 0;
    if let Some(res) = api.registry.storage(group, plural) {
        let page = api.store.list(&res.key_prefix(None), None, 0, &|_| true);
        for record in page.items {
            remaining += 1;
            if !record.meta.deleting {
                let ns = namespace_of(&res, &record.key);
                delete(
                    api,
                    &res,
                    ns.as_deref(),
                    &record.meta,
                    Propagation::Background,
                )
                .await;
            }
        }
    }
    if remaining == 0 {
        let crds = Builtin::CustomResourceDefinition.resource();
        release(api, &crds, None, crd_meta, crd::CLEANUP_FINALIZER).await;
    }
}

/// The served type that stores `key` (`/{group}/{plural}/...`).
fn resource_of(api: &Api, key: &str) -> Option<Arc<Resource>> {
    let mut parts = key.trim_start_matches('/').splitn(3, '/');
    let group = parts.next()?;
    let plural = parts.next()?;
    let group = if group == "core" { "" } else { group };
    api.registry.storage(group, plural)
}

fn namespace_of(res: &Resource, key: &str) -> Option<String> {
    if !res.namespaced {
        return None;
    }
    key.trim_start_matches('/')
        .split('/')
        .nth(2)
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: &str = "0b6f1c2e-8a4d-4f5e-9c3b-2d1e0f9a8b7c";
    const OTHER: &str = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d";
    const DEPENDENT: &str = "9f8e7d6c-5b4a-4c3d-9e2f-1a0b9c8d7e6f";

    fn meta(uid: &str, owners: &[&str], deleting: bool) -> Meta {
        Meta {
            uid: uid.into(),
            owners: owners.iter().map(|o| Box::from(*o)).collect(),
            deleting,
            ..Meta::default()
        }
    }

    fn key(k: &str) -> Arc<str> {
        Arc::from(k)
    }

    #[test]
    fn the_index_follows_owners_as_they_change() {
        let mut index = Index::default();
        let (owner, other, dependent) = (key("/o"), key("/p"), key("/d"));
        index.upsert(&owner, &meta(OWNER, &[], false));
        index.upsert(&other, &meta(OTHER, &[], false));
        index.upsert(&dependent, &meta(DEPENDENT, &[OWNER], false));
        assert_eq!(
            index.key(OWNER),
            Some(&owner),
            "an owner is found by its UID"
        );
        assert_eq!(index.dependents_of(OWNER), vec![dependent.clone()]);

        // The dependent changes owner: the old one no longer lists it.
        index.upsert(&dependent, &meta(DEPENDENT, &[OTHER], true));
        assert!(
            index.dependents_of(OWNER).is_empty(),
            "the old owner lets go"
        );
        assert_eq!(index.dependents_of(OTHER), vec![dependent.clone()]);
        assert!(
            index.deleting.contains(&dependent),
            "a deleting object is swept"
        );

        // Written again with the same owners: listed once, not twice.
        index.upsert(&dependent, &meta(DEPENDENT, &[OTHER], true));
        assert_eq!(index.dependents_of(OTHER).len(), 1);

        index.remove(&dependent, &meta(DEPENDENT, &[OTHER], true));
        assert!(
            index.dependents_of(OTHER).is_empty(),
            "a deleted dependent is gone"
        );
        assert!(index.key(DEPENDENT).is_none());
        assert!(index.deleting.is_empty());
        assert!(index.owners.is_empty() && index.dependents.is_empty());
    }

    #[test]
    fn uids_that_are_not_uuids_still_tell_objects_apart() {
        assert_eq!(uid("not-a-uuid"), uid("not-a-uuid"));
        assert_ne!(uid("not-a-uuid"), uid("not-a-uuid-either"));
        assert_ne!(uid(OWNER), uid(OTHER));
    }
}

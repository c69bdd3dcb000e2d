//! Controllers whose caches leave out what no reconciler reads.
//!
//! Every controller keeps every object of its kind in memory, and
//! `metadata.managedFields` is about half of a typical managed resource,
//! composite or claim. Writes never need it: an update that omits it keeps
//! the stored one, here and on a real cluster.

use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::{reflector, store::Writer};
use kube::runtime::{watcher, Controller, WatchStreamExt};

/// `Controller::new_with`, with `managedFields` dropped before caching.
pub fn controller(
    api: Api<DynamicObject>,
    config: watcher::Config,
    ar: ApiResource,
) -> Controller<DynamicObject> {
    let writer = Writer::new(ar.clone());
    let reader = writer.as_reader();
    let objects = reflector(
        writer,
        watcher(api, config).modify(|o| o.metadata.managed_fields = None),
    )
    .applied_objects();
    Controller::for_stream_with(objects, reader, ar)
}

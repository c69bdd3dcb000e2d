//! What Plinth's controllers share: the vocabulary they write, the caches
//! they read, the queue and runner every controller is built on, the
//! provider seam, Events and CRD installation. The controller crates
//! (`reconciler`, `composite`) depend on this one and on nothing of each
//! other's, and nothing here speaks gRPC.
//!
//! Layout:
//! - `names`: every annotation, label, finalizer, condition, reason and event reason.
//! - `conditions`: status conditions, merged the Kubernetes way.
//! - `cache`: one shared, compact cache per kind, with change subscriptions.
//! - `queue`, `controller`: a FIFO work queue with pacing, and the runner around it.
//! - `provider`: the provider seam ([`provider::ExternalClient`]) and its fakes.
//! - `events`: Events, with repeats folded.
//! - `crds`: installing CRDs.
//! - `kinds`: a kind's plural by discovery, once per kind.
//! - `ratelimit`, `duration`: pacing and Go-style durations.
//!
//! ```text
//!  API watch ─▶ Cache (one per kind) ─▶ Change ─▶ Controller: own writes dropped ─▶ Queue (FIFO)
//!                  ▲                                                                  │
//!                  └──────────── reconcile reads the caches ◀── workers (bounded) ◀───┘
//! ```
#![forbid(unsafe_code)]

pub mod cache;
pub mod conditions;
pub mod controller;
pub mod crds;
pub mod duration;
pub mod events;
pub mod kinds;
pub mod lease;
pub mod metrics;
pub mod names;
pub mod process;
pub mod provider;
pub mod queue;
pub mod ratelimit;
pub mod shard;

pub use cache::{Cache, Cached, Caches, Change, Key};
pub use controller::{Action, Controller, Writes};
pub use queue::Reason;

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// What can go wrong in the shared pieces.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot encode an object for the cache: {0}")]
    Encode(serde_json::Error),
    #[error("cannot decode a cached object: {0}")]
    Decode(serde_json::Error),
    #[error("cannot read a cached object: {0}")]
    Unpack(#[from] jsonpack::Error),
}

impl Error {
    /// A short stable label for logs and metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Encode(_) => "encode",
            Error::Decode(_) => "decode",
            Error::Unpack(_) => "unpack",
        }
    }
}

/// Whether `whole` holds everything in `part`: objects key by key
/// (recursively), anything else by equality. Lets a reconciler skip a write
/// that would change nothing, whatever defaults the API server filled in.
pub fn contains(whole: &serde_json::Value, part: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (whole, part) {
        (Value::Object(w), Value::Object(p)) => p
            .iter()
            .all(|(k, v)| w.get(k).is_some_and(|wv| contains(wv, v))),
        (w, p) => w == p,
    }
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it:
/// every critical section here leaves the data consistent before it can panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

//! The Plinth object store: Kubernetes storage semantics over SQLite.
//!
//! Every write gets the next value of one global revision counter. The current
//! objects live in memory (for fast get and list) and in the `objects` table;
//! every change is also appended to the `events` table so that a watch can
//! resume from any revision that has not been compacted away.
//!
//! ```text
//!  create/update/delete ──▶ writer thread ──▶ one SQLite transaction per batch
//!                              │                  (objects upsert + events append)
//!                              ▼ after commit
//!                      in-memory state ──▶ history ring ──▶ fan-out by key directory ──▶ watches
//!                       (JSON + extract)        ▲
//!                              ▲                └── watch(from revision): backlog from ring or
//!                   packer thread                   events table (blocking thread), then live
//!        (compresses settled objects)
//! ```
//!
//! The in-memory state keeps each object's JSON once (compressed once it
//! settles) beside a small extract (name, namespace, labels, owners,
//! finalizers, deletion, selectable fields); nothing keeps a parsed tree.
//!
//! A write is acknowledged only after its transaction has committed, so an
//! acknowledged write survives `kill -9` (WAL mode, `synchronous=NORMAL`).
//!
//! Layout:
//! - `error`: the store's error and its cheap control-flow cases (conflict, compacted).
//! - `record`: records, their extract, and events.
//! - `pack`: compresses settled records with a trained dictionary.
//! - `seal`: values under chosen prefixes (Secrets) encrypted on disk, as kube-apiserver's `aesgcm` provider does.
//! - `sqlite`: the SQL dialect, every statement in one place.
//! - `writer`: the single writer thread that batches writes into transactions.
//! - `backup`: online snapshots (SQLite's backup API) and restore with revisions moved past the old ones.
//! - `checkpoint`: copies the WAL into the database beside the writer, not in its commits.
//! - `fanout`: live events to the watches of the written key's resource only.
//! - `watch`: watch streams with backlog, lag recovery and progress tracking.
#![forbid(unsafe_code)]

mod backup;
mod checkpoint;
mod error;
mod fanout;
mod pack;
mod record;
mod seal;
mod sqlite;
mod watch;
mod writer;

pub use backup::{backup, restore, Snapshot};
pub use error::StoreError;
pub use pack::Footprint;
pub use record::{Event, EventType, Meta, Record};
pub use seal::{SealKey, Sealer};
pub use watch::{Watch, WatchItem};

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;
use tokio::sync::oneshot;

use writer::{Op, WriteRequest};

/// The selectable fields of an object beyond name and namespace, given its
/// key and value: what field selectors on its kind may name.
pub type FieldsFn = Arc<dyn Fn(&str, &Value) -> Vec<(Box<str>, Box<str>)> + Send + Sync>;

/// How many recent events are kept in memory for watches that resume from a
/// recent revision; older ones are read from the `events` table.
const HISTORY_IN_MEMORY: usize = 1_024;

/// Tunables for opening a store.
#[derive(Clone)]
pub struct Options {
    /// Most writes committed in one transaction (group commit).
    pub max_batch: usize,
    /// The selectable fields of each object, kept in its extract.
    pub fields: FieldsFn,
    /// Compress settled objects in memory (see `pack`).
    pub pack: bool,
    /// Encrypts values under its prefixes on disk (see `seal`).
    pub sealer: Option<Arc<Sealer>>,
    /// At open, rewrites every value under the sealer's prefixes that is
    /// plain or sealed with an older key.
    pub reseal: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_batch: 512,
            fields: Arc::new(|_, _| Vec::new()),
            pack: true,
            sealer: None,
            reseal: false,
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("max_batch", &self.max_batch)
            .field("pack", &self.pack)
            .field("seals_with", &self.sealer.as_ref().map(|s| s.write_key()))
            .field("reseal", &self.reseal)
            .finish_non_exhaustive()
    }
}

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

/// State shared between handles, the writer thread and watches.
pub(crate) struct Shared {
    /// Current objects and revisions. Written only by the writer thread, after
    /// a commit, so readers never see uncommitted state.
    pub(crate) state: RwLock<State>,
    /// Recent events, oldest first, for resuming watches without disk reads.
    pub(crate) history: Mutex<VecDeque<Arc<Event>>>,
    /// Live events to the watches of each key directory.
    pub(crate) fanout: fanout::Fanout,
    /// The revision of the newest event handed to the fan-out: every event
    /// up to it is in the watches' channels.
    pub(crate) published: AtomicU64,
    /// The selectable fields of each object.
    pub(crate) fields: FieldsFn,
    /// Seals values on disk, and opens them.
    pub(crate) sealer: Option<Arc<Sealer>>,
    /// Requests to the writer thread; `None` after shutdown.
    pub(crate) writer: Mutex<Option<std::sync::mpsc::Sender<WriteRequest>>>,
    /// Read-only connection for history reads that miss the in-memory ring.
    pub(crate) reader: Mutex<rusqlite::Connection>,
    pub(crate) writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Stopped (and joined) on close.
    pub(crate) packer: Mutex<Option<pack::Packer>>,
}

pub(crate) struct State {
    pub(crate) objects: BTreeMap<Arc<str>, Arc<Record>>,
    /// The revision of the newest committed write.
    pub(crate) revision: u64,
    /// Events at or below this revision may be gone; older watches get `Compacted`.
    pub(crate) compact_revision: u64,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct ListPage {
    pub items: Vec<Arc<Record>>,
    /// The store revision the page was read at.
    pub revision: u64,
    /// How many matching keys follow this page (0 when it is the last).
    pub remaining: usize,
}

impl Store {
    /// Opens (or creates) the store in `path`, loading every object into memory.
    pub fn open(path: &Path, options: Options) -> Result<Store, StoreError> {
        let mut conn = sqlite::open_writer(path)?;
        let sealer = options.sealer.as_deref();
        match sealer {
            Some(sealer) if options.reseal => {
                let done = sqlite::reseal(&mut conn, sealer)?;
                tracing::info!(
                    objects = done.objects,
                    events = done.events,
                    key = sealer.write_key().unwrap_or("identity"),
                    "rewrote stored values under the newest encryption key"
                );
            }
            None if options.reseal => {
                return Err(StoreError::InvalidKey {
                    name: String::new(),
                    message: "rewriting values needs the encryption keys".into(),
                });
            }
            _ => {}
        }
        let sqlite::Loaded {
            objects,
            revision,
            compact_revision,
        } = sqlite::load(&conn, &options.fields, sealer)?;
        let history = VecDeque::new();
        let reader = sqlite::open_reader(path)?;
        let shared = Arc::new(Shared {
            state: RwLock::new(State {
                objects,
                revision,
                compact_revision,
            }),
            history: Mutex::new(history),
            fanout: fanout::Fanout::default(),
            published: AtomicU64::new(revision),
            fields: options.fields.clone(),
            sealer: options.sealer.clone(),
            writer: Mutex::new(None),
            reader: Mutex::new(reader),
            writer_thread: Mutex::new(None),
            packer: Mutex::new(None),
        });
        let checkpointer = checkpoint::Checkpointer::spawn(path)?;
        let (tx, handle) = writer::spawn(conn, shared.clone(), options.max_batch, checkpointer)?;
        *lock(&shared.writer) = Some(tx);
        *lock(&shared.writer_thread) = Some(handle);
        if options.pack {
            let packer = pack::Packer::spawn(Arc::downgrade(&shared)).map_err(|e| {
                StoreError::CommitFailed(format!("cannot start the packer thread: {e}"))
            })?;
            *lock(&shared.packer) = Some(packer);
        }
        Ok(Store { shared })
    }

    /// The revision of the newest committed write.
    pub fn revision(&self) -> u64 {
        read(&self.shared.state).revision
    }

    /// The oldest revision a watch can still resume after.
    pub fn compact_revision(&self) -> u64 {
        read(&self.shared.state).compact_revision
    }

    /// How much memory the stored objects take.
    pub fn footprint(&self) -> Footprint {
        pack::footprint(&read(&self.shared.state).objects)
    }

    /// How many objects are stored.
    pub fn len(&self) -> usize {
        read(&self.shared.state).objects.len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The current record under `key`.
    pub fn get(&self, key: &str) -> Option<Arc<Record>> {
        read(&self.shared.state).objects.get(key).cloned()
    }

    /// Lists keys under `prefix`, in key order, after `start_after` (for
    /// pagination), at most `limit` (0 = no limit), keeping those `filter` accepts.
    pub fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        filter: &dyn Fn(&Record) -> bool,
    ) -> ListPage {
        let state = read(&self.shared.state);
        let (items, remaining) = scan(&state.objects, prefix, start_after, limit, filter);
        ListPage {
            items,
            revision: state.revision,
            remaining,
        }
    }

    /// Lists everything under `prefix` and starts a watch at exactly that
    /// revision, so no change between the two is missed.
    pub fn list_and_watch(&self, prefix: &str) -> (Vec<Arc<Record>>, u64, Watch) {
        // Subscribed first: whatever the state below does not hold yet
        // reaches the channel after this.
        let receiver = self.shared.fanout.subscribe(prefix);
        let state = read(&self.shared.state);
        let (items, _) = scan(&state.objects, prefix, None, 0, &|_| true);
        let revision = state.revision;
        drop(state);
        let watch = Watch::live(self.shared.clone(), prefix.to_string(), revision, receiver);
        (items, revision, watch)
    }

    /// Watches changes under `prefix` after `revision`.
    ///
    /// Fails with [`StoreError::Compacted`] when events after `revision` are
    /// no longer kept; the caller must list again.
    pub fn watch(&self, prefix: &str, revision: u64) -> Result<Watch, StoreError> {
        Watch::resume(self.shared.clone(), prefix.to_string(), revision)
    }

    /// Creates `key`; fails with `AlreadyExists` if it is present.
    pub async fn create(&self, key: &str, value: Value) -> Result<Arc<Record>, StoreError> {
        self.submit(Op::Create {
            key: key.to_string(),
            value,
        })
        .await
    }

    /// Replaces `key`. With `expected` set, fails with `Conflict` unless the
    /// stored record still has that modification revision.
    pub async fn update(
        &self,
        key: &str,
        value: Value,
        expected: Option<u64>,
    ) -> Result<Arc<Record>, StoreError> {
        self.submit(Op::Update {
            key: key.to_string(),
            value,
            expected,
        })
        .await
    }

    /// Deletes `key`, returning the final state stamped with the deletion's revision.
    pub async fn delete(
        &self,
        key: &str,
        expected: Option<u64>,
    ) -> Result<Arc<Record>, StoreError> {
        self.submit(Op::Delete {
            key: key.to_string(),
            expected,
        })
        .await
    }

    /// Forgets events at or below `current revision - keep`; watches older
    /// than that get `Compacted`. Returns the new compact revision.
    pub async fn compact(&self, keep: u64) -> Result<u64, StoreError> {
        let target = self.revision().saturating_sub(keep);
        if target <= self.compact_revision() {
            return Ok(self.compact_revision());
        }
        let (reply, rx) = oneshot::channel();
        self.send(WriteRequest::Compact { target, reply })?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Stops the writer thread after it has committed what it holds.
    pub fn close(&self) {
        lock(&self.shared.packer).take();
        lock(&self.shared.writer).take();
        if let Some(handle) = lock(&self.shared.writer_thread).take() {
            let _ = handle.join();
        }
    }

    async fn submit(&self, op: Op) -> Result<Arc<Record>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(WriteRequest::Write { op, reply })?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    fn send(&self, request: WriteRequest) -> Result<(), StoreError> {
        let guard = lock(&self.shared.writer);
        let sender = guard.as_ref().ok_or(StoreError::Closed)?;
        sender.send(request).map_err(|_| StoreError::Closed)
    }
}

fn scan(
    objects: &BTreeMap<Arc<str>, Arc<Record>>,
    prefix: &str,
    start_after: Option<&str>,
    limit: usize,
    filter: &dyn Fn(&Record) -> bool,
) -> (Vec<Arc<Record>>, usize) {
    let lower = match start_after {
        Some(after) if after >= prefix => Bound::Excluded(after),
        _ => Bound::Included(prefix),
    };
    let mut items = Vec::new();
    let mut remaining = 0;
    for (key, record) in objects.range::<str, _>((lower, Bound::Unbounded)) {
        if !key.starts_with(prefix) {
            break;
        }
        if !filter(record) {
            continue;
        }
        if limit > 0 && items.len() >= limit {
            remaining += 1;
        } else {
            items.push(record.clone());
        }
    }
    (items, remaining)
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it: every
/// critical section here leaves the data consistent before it can panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Drop for Shared {
    fn drop(&mut self) {
        lock(&self.writer).take();
    }
}

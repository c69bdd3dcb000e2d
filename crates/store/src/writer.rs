//! The single writer thread.
//!
//! All writes funnel through one thread so that revisions are assigned in
//! commit order and preconditions are checked against exactly the state they
//! will apply to. Requests that queue up while a transaction commits are taken
//! together into the next transaction (group commit), which is what lets one
//! SQLite connection keep up with many concurrent API clients.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use bytes::Bytes;
use rusqlite::Connection;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::checkpoint::{self, Checkpointer};
use crate::record::{stamp, Event, EventType, Meta, Record};
use crate::sqlite::{self, Change};
use crate::{lock, read, write, Shared, StoreError, HISTORY_IN_MEMORY};

pub(crate) enum Op {
    Create {
        key: String,
        value: Value,
    },
    Update {
        key: String,
        value: Value,
        expected: Option<u64>,
    },
    Delete {
        key: String,
        expected: Option<u64>,
    },
}

impl Op {
    fn key(&self) -> &str {
        match self {
            Op::Create { key, .. } | Op::Update { key, .. } | Op::Delete { key, .. } => key,
        }
    }
}

pub(crate) enum WriteRequest {
    Write {
        op: Op,
        reply: oneshot::Sender<Result<Arc<Record>, StoreError>>,
    },
    Compact {
        target: u64,
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
}

type Reply = oneshot::Sender<Result<Arc<Record>, StoreError>>;

/// A write whose precondition held, waiting for its transaction.
struct Planned {
    reply: Reply,
    record: Arc<Record>,
    kind: EventType,
    prev: Option<Arc<Meta>>,
}

pub(crate) fn spawn(
    conn: Connection,
    shared: Arc<Shared>,
    max_batch: usize,
    checkpointer: Checkpointer,
) -> Result<(Sender<WriteRequest>, std::thread::JoinHandle<()>), StoreError> {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || run(conn, shared, rx, max_batch.max(1), checkpointer))
        .map_err(|e| StoreError::CommitFailed(format!("cannot start the writer thread: {e}")))?;
    Ok((tx, handle))
}

fn run(
    mut conn: Connection,
    shared: Arc<Shared>,
    rx: Receiver<WriteRequest>,
    max_batch: usize,
    checkpointer: Checkpointer,
) {
    while let Ok(first) = rx.recv() {
        let mut writes = Vec::new();
        let mut compactions = Vec::new();
        let mut next = Some(first);
        while let Some(request) = next.take() {
            match request {
                WriteRequest::Write { op, reply } => writes.push((op, reply)),
                WriteRequest::Compact { target, reply } => compactions.push((target, reply)),
            }
            if writes.len() < max_batch {
                next = rx.try_recv().ok();
            }
        }
        if !writes.is_empty() {
            write_batch(&mut conn, &shared, writes);
            checkpointer.poke();
            if checkpointer.wal_too_big() {
                if let Err(err) = checkpoint::truncate(&conn) {
                    tracing::warn!(error = %err, "cannot truncate the WAL; retrying after the next batch");
                }
            }
        }
        for (target, reply) in compactions {
            let _ = reply.send(compact(&mut conn, &shared, target));
        }
    }
    drop(checkpointer);
    tracing::debug!("store writer stopped");
}

fn write_batch(conn: &mut Connection, shared: &Shared, writes: Vec<(Op, Reply)>) {
    let mut planned = Vec::with_capacity(writes.len());
    {
        let state = read(&shared.state);
        let mut revision = state.revision;
        // Later writes in the batch must see earlier ones.
        let mut overlay: HashMap<String, Option<Arc<Record>>> = HashMap::new();
        for (op, reply) in writes {
            let key = op.key().to_string();
            let current = match overlay.get(&key) {
                Some(entry) => entry.clone(),
                None => state.objects.get(key.as_str()).cloned(),
            };
            match plan(shared, op, current, revision + 1) {
                Ok((record, kind, prev)) => {
                    revision += 1;
                    let stored = (kind != EventType::Deleted).then(|| record.clone());
                    overlay.insert(key, stored);
                    planned.push(Planned {
                        reply,
                        record,
                        kind,
                        prev,
                    });
                }
                Err(err) => {
                    let _ = reply.send(Err(err));
                }
            }
        }
    }
    if planned.is_empty() {
        return;
    }

    let changes: Vec<Change<'_>> = planned
        .iter()
        .map(|p| Change {
            revision: p.record.mod_revision,
            kind: p.kind,
            record: &p.record,
            // Kept on disk only when a selector could tell the two apart.
            prev: p
                .prev
                .as_ref()
                .filter(|prev| {
                    p.kind == EventType::Modified
                        && (prev.labels != p.record.meta.labels
                            || prev.fields != p.record.meta.fields)
                })
                .map(|prev| prev.selectable_json()),
        })
        .collect();
    if let Err(err) = sqlite::commit(conn, &changes, shared.sealer.as_deref()) {
        tracing::error!(error = %err, "cannot commit a write batch");
        for p in planned {
            let _ = p.reply.send(Err(StoreError::of_commit(&err)));
        }
        return;
    }

    let mut events = Vec::with_capacity(planned.len());
    {
        let mut state = write(&shared.state);
        let mut history = lock(&shared.history);
        for p in &planned {
            match p.kind {
                EventType::Deleted => {
                    state.objects.remove(&p.record.key);
                }
                _ => {
                    state.objects.insert(p.record.key.clone(), p.record.clone());
                }
            }
            state.revision = p.record.mod_revision;
            let event = Arc::new(Event::new(p.kind, p.record.clone(), p.prev.clone()));
            history.push_back(event.clone());
            events.push(event);
        }
        while history.len() > HISTORY_IN_MEMORY {
            history.pop_front();
        }
    }
    // Outside the locks: a watch subscribes before it reads the state, so
    // an event it reads in the state and also receives here is dropped as
    // a duplicate by its revision, and none is missed.
    shared.fanout.send(&events);
    if let Some(last) = events.last() {
        shared.published.store(last.revision, Ordering::Release);
    }
    for p in planned {
        let _ = p.reply.send(Ok(p.record));
    }
}

type Plan = (Arc<Record>, EventType, Option<Arc<Meta>>);

fn plan(
    shared: &Shared,
    op: Op,
    current: Option<Arc<Record>>,
    revision: u64,
) -> Result<Plan, StoreError> {
    let check = |current: &Record, expected: Option<u64>| match expected {
        Some(e) if e != current.mod_revision => Err(StoreError::Conflict {
            current: current.mod_revision,
        }),
        _ => Ok(()),
    };
    // An existing key keeps its one allocation: the state's map, the
    // record and every later record of the key share it.
    let encode = |key: Arc<str>, mut value: Value, create_revision: u64| {
        stamp(&mut value, revision);
        let meta = Meta::of(&value, (shared.fields)(&key, &value));
        let json = serde_json::to_vec(&value).map_err(|e| {
            StoreError::CommitFailed(format!("cannot encode the object under {key}: {e}"))
        })?;
        Ok::<_, StoreError>(Record::new(
            key,
            create_revision,
            revision,
            Arc::new(meta),
            Bytes::from(json),
        ))
    };
    match op {
        Op::Create { key, value } => {
            if current.is_some() {
                return Err(StoreError::AlreadyExists);
            }
            let record = encode(key.into(), value, revision)?;
            Ok((Arc::new(record), EventType::Added, None))
        }
        Op::Update {
            key: _,
            value,
            expected,
        } => {
            let current = current.ok_or(StoreError::NotFound)?;
            check(&current, expected)?;
            let record = encode(current.key.clone(), value, current.create_revision)?;
            Ok((
                Arc::new(record),
                EventType::Modified,
                Some(current.meta.clone()),
            ))
        }
        Op::Delete { key: _, expected } => {
            let current = current.ok_or(StoreError::NotFound)?;
            check(&current, expected)?;
            let last = current.value()?;
            let record = encode(current.key.clone(), last, current.create_revision)?;
            Ok((
                Arc::new(record),
                EventType::Deleted,
                Some(current.meta.clone()),
            ))
        }
    }
}

fn compact(conn: &mut Connection, shared: &Shared, target: u64) -> Result<u64, StoreError> {
    {
        let mut state = write(&shared.state);
        if target <= state.compact_revision {
            return Ok(state.compact_revision);
        }
        // Raised before the rows go, so no watch can start reading a range
        // that is being deleted underneath it.
        state.compact_revision = target;
        let mut history = lock(&shared.history);
        while history.front().is_some_and(|e| e.revision <= target) {
            history.pop_front();
        }
    }
    while sqlite::compact_step(conn, target)? {}
    Ok(target)
}

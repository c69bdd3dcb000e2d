//! Watch streams.
//!
//! A watch subscribes to live events before it reads its backlog, then drops
//! anything at or below the last revision it delivered, so the stream has no
//! gaps and no duplicates. A watch that falls behind the live channel reads
//! what it missed from history; if that has been compacted, it ends with
//! `Compacted` and the client must list again. History that has left the
//! in-memory ring is read from SQLite on a blocking thread, never on the
//! async workers that serve requests.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::record::Event;
use crate::{lock, read, sqlite, Shared, StoreError};

/// What a watch yields.
#[derive(Debug, Clone)]
pub enum WatchItem {
    Event(Arc<Event>),
    /// The watch fell behind compaction and cannot continue.
    Compacted {
        compact_revision: u64,
    },
}

type HistoryRead = JoinHandle<Result<(Vec<Arc<Event>>, bool), StoreError>>;

/// A stream of changes under one key prefix.
pub struct Watch {
    shared: Arc<Shared>,
    prefix: Arc<str>,
    backlog: VecDeque<Arc<Event>>,
    /// History below this revision is still to be read into the backlog,
    /// a chunk at a time; 0 when there is none.
    history_until: u64,
    /// A read of history under way; kept here so that `next` stays
    /// cancel-safe while it runs.
    reading: Option<HistoryRead>,
    receiver: broadcast::Receiver<Arc<Event>>,
    /// Every change up to this revision has been delivered or did not match
    /// the prefix; this is what a bookmark may safely report.
    progress: u64,
}

impl Watch {
    pub(crate) fn live(
        shared: Arc<Shared>,
        prefix: String,
        revision: u64,
        receiver: broadcast::Receiver<Arc<Event>>,
    ) -> Watch {
        Watch {
            shared,
            prefix: prefix.into(),
            backlog: VecDeque::new(),
            history_until: 0,
            reading: None,
            receiver,
            progress: revision,
        }
    }

    pub(crate) fn resume(
        shared: Arc<Shared>,
        prefix: String,
        revision: u64,
    ) -> Result<Watch, StoreError> {
        let receiver = shared.fanout.subscribe(&prefix);
        let state = read(&shared.state);
        if revision < state.compact_revision {
            return Err(StoreError::Compacted {
                compact_revision: state.compact_revision,
            });
        }
        let current = state.revision;
        drop(state);
        Ok(Watch {
            shared,
            prefix: prefix.into(),
            backlog: VecDeque::new(),
            // Read by `next`, off the caller's thread.
            history_until: if revision < current { current + 1 } else { 0 },
            reading: None,
            receiver,
            progress: revision,
        })
    }

    /// The revision up to which this watch has seen every change. With
    /// nothing left to deliver, that is every change the store has
    /// published, even when none of them was under this watch's prefix.
    pub fn progress(&mut self) -> u64 {
        // Read before looking at the channel: whatever was published up to
        // this revision is in the channel already, or was taken from it.
        let published = self.shared.published.load(Ordering::Acquire);
        if self.backlog.is_empty()
            && self.history_until == 0
            && self.reading.is_none()
            && self.receiver.is_empty()
        {
            self.progress = self.progress.max(published);
        }
        self.progress
    }

    /// The next change, or `None` when the store shuts down. Cancel-safe.
    pub async fn next(&mut self) -> Option<WatchItem> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                if event.revision <= self.progress {
                    continue;
                }
                self.progress = event.revision;
                return Some(WatchItem::Event(event));
            }
            if self.history_until > 0 {
                let (shared, prefix) = (self.shared.clone(), self.prefix.clone());
                let (after, before) = (self.progress, self.history_until);
                let reading = self.reading.get_or_insert_with(|| {
                    tokio::task::spawn_blocking(move || {
                        history_between(&shared, &prefix, after, before)
                    })
                });
                let result = reading.await;
                self.reading = None;
                match result {
                    Ok(Ok((events, complete))) => {
                        if complete {
                            self.history_until = 0;
                        }
                        self.backlog = events.into();
                    }
                    Ok(Err(StoreError::Compacted { compact_revision })) => {
                        return Some(WatchItem::Compacted { compact_revision })
                    }
                    Ok(Err(err)) => {
                        tracing::error!(error = %err, "cannot read watch history");
                        return None;
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "the watch history read did not finish");
                        return None;
                    }
                }
                continue;
            }
            match self.receiver.recv().await {
                Ok(event) => {
                    if event.revision <= self.progress {
                        continue;
                    }
                    self.progress = event.revision;
                    if event.key().starts_with(&*self.prefix) {
                        return Some(WatchItem::Event(event));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Fell behind the live channel: catch up from history.
                    let (current, compact) = {
                        let state = read(&self.shared.state);
                        (state.revision, state.compact_revision)
                    };
                    if self.progress < compact {
                        return Some(WatchItem::Compacted {
                            compact_revision: compact,
                        });
                    }
                    tracing::debug!(prefix = %self.prefix, behind = current - self.progress, "watch fell behind; catching up from history");
                    self.history_until = current + 1;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(reading) = self.reading.take() {
            reading.abort();
        }
    }
}

/// Events read from disk at once by a watch catching up: a watch far behind
/// reads its history a chunk at a time, so it never holds more than this
/// many objects at once (a burst of writes used to make every lagging watch
/// load all it had missed, and that was most of the memory at scale).
const HISTORY_CHUNK: usize = 1_024;

/// Events with `after < revision < before` under `prefix`, from memory where
/// possible and from the events table for the older part, oldest first; at
/// most [`HISTORY_CHUNK`] from disk. True when that is all of them.
fn history_between(
    shared: &Shared,
    prefix: &str,
    after: u64,
    before: u64,
) -> Result<(Vec<Arc<Event>>, bool), StoreError> {
    if after + 1 >= before {
        return Ok((Vec::new(), true));
    }
    let (ring_start, mut from_ring) = {
        let history = lock(&shared.history);
        let start = history.front().map(|e| e.revision).unwrap_or(before);
        let events: Vec<Arc<Event>> = history
            .iter()
            .filter(|e| e.revision > after && e.revision < before && e.key().starts_with(prefix))
            .cloned()
            .collect();
        (start, events)
    };
    if ring_start <= after + 1 {
        return Ok((from_ring, true));
    }
    let reader = lock(&shared.reader);
    let mut events = sqlite::events_between(
        &reader,
        &shared.fields,
        shared.sealer.as_deref(),
        prefix,
        after,
        ring_start.min(before),
        HISTORY_CHUNK,
    )?;
    drop(reader);
    let compact = read(&shared.state).compact_revision;
    if after < compact {
        return Err(StoreError::Compacted {
            compact_revision: compact,
        });
    }
    if events.len() >= HISTORY_CHUNK {
        // More on disk: the ring's part follows once that is read.
        return Ok((events, false));
    }
    events.append(&mut from_ring);
    Ok((events, true))
}

//! Watch streams.
//!
//! A watch subscribes to live events before it reads its backlog, then drops
//! anything at or below the last revision it delivered, so the stream has no
//! gaps and no duplicates. A watch that falls behind the live channel reads
//! what it missed from history; if that has been compacted, it ends with
//! `Compacted` and the client must list again.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast;

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

/// A stream of changes under one key prefix.
pub struct Watch {
    shared: Arc<Shared>,
    prefix: String,
    backlog: VecDeque<Arc<Event>>,
    /// History below this revision is still to be read into the backlog,
    /// a chunk at a time; 0 when there is none.
    history_until: u64,
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
            prefix,
            backlog: VecDeque::new(),
            history_until: 0,
            receiver,
            progress: revision,
        }
    }

    pub(crate) fn resume(
        shared: Arc<Shared>,
        prefix: String,
        revision: u64,
    ) -> Result<Watch, StoreError> {
        let state = read(&shared.state);
        if revision < state.compact_revision {
            return Err(StoreError::Compacted {
                compact_revision: state.compact_revision,
            });
        }
        let receiver = shared.events.subscribe();
        let current = state.revision;
        drop(state);
        let (backlog, complete) = history_between(&shared, &prefix, revision, current + 1)?;
        Ok(Watch {
            shared,
            prefix,
            backlog: backlog.into(),
            history_until: if complete { 0 } else { current + 1 },
            receiver,
            progress: revision,
        })
    }

    /// The revision up to which this watch has seen every change.
    pub fn progress(&self) -> u64 {
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
                let until = self.history_until;
                match history_between(&self.shared, &self.prefix, self.progress, until) {
                    Ok((events, complete)) => {
                        if complete {
                            self.history_until = 0;
                        }
                        self.backlog = events.into();
                    }
                    Err(StoreError::Compacted { compact_revision }) => {
                        return Some(WatchItem::Compacted { compact_revision })
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "cannot read watch history");
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
                    if event.key.starts_with(&self.prefix) {
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

/// Events read from disk at once by a watch catching up: a watch far behind
/// reads its history a chunk at a time, so it never holds more than this
/// many objects parsed (a burst of writes used to make every lagging watch
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
            .filter(|e| e.revision > after && e.revision < before && e.key.starts_with(prefix))
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

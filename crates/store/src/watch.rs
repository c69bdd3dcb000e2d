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
        let backlog = history_between(&shared, &prefix, revision, current + 1)?;
        Ok(Watch {
            shared,
            prefix,
            backlog: backlog.into(),
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
                    match history_between(&self.shared, &self.prefix, self.progress, current + 1) {
                        Ok(events) => {
                            tracing::debug!(prefix = %self.prefix, behind = current - self.progress, events = events.len(), "watch fell behind; catching up from history");
                            self.backlog = events.into()
                        }
                        Err(StoreError::Compacted { compact_revision }) => {
                            return Some(WatchItem::Compacted { compact_revision })
                        }
                        Err(err) => {
                            tracing::error!(error = %err, "cannot read watch history");
                            return None;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// Events with `after < revision < before` under `prefix`, from memory where
/// possible and from the events table for the older part.
fn history_between(
    shared: &Shared,
    prefix: &str,
    after: u64,
    before: u64,
) -> Result<Vec<Arc<Event>>, StoreError> {
    if after + 1 >= before {
        return Ok(Vec::new());
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
        return Ok(from_ring);
    }
    let reader = lock(&shared.reader);
    let mut events = sqlite::events_between(&reader, prefix, after, ring_start.min(before))?;
    drop(reader);
    let compact = read(&shared.state).compact_revision;
    if after < compact {
        return Err(StoreError::Compacted {
            compact_revision: compact,
        });
    }
    events.append(&mut from_ring);
    Ok(events)
}

//! Live events to the watches that want them.
//!
//! Watches are grouped by the directory of their prefix (everything up to
//! its last `/`): `/group/plural/` for a watch of a whole resource,
//! `/group/plural/namespace/` for one namespace. A write is offered to the
//! groups of each directory of its key, so it wakes only the watches of
//! its own resource, and of its own namespace where they watch one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::lock;
use crate::record::Event;

/// Capacity of each group's channel; a watch that falls further behind
/// catches up from history instead of holding writers up. Each channel
/// keeps its last events alive until they are overwritten, so this is
/// kept well below the history ring.
const CAPACITY: usize = 1_024;

#[derive(Default)]
pub(crate) struct Fanout {
    groups: Mutex<HashMap<Box<str>, broadcast::Sender<Arc<Event>>>>,
}

/// The group a watch of `prefix` belongs to.
pub(crate) fn directory(prefix: &str) -> &str {
    match prefix.rfind('/') {
        Some(i) => &prefix[..=i],
        None => "",
    }
}

impl Fanout {
    /// Subscribes to the group of `prefix`; the caller filters by the prefix itself.
    pub(crate) fn subscribe(&self, prefix: &str) -> broadcast::Receiver<Arc<Event>> {
        let mut groups = lock(&self.groups);
        groups
            .entry(Box::from(directory(prefix)))
            .or_insert_with(|| broadcast::channel(CAPACITY).0)
            .subscribe()
    }

    /// Offers `events`, in revision order, to every group they belong to.
    /// Groups nobody watches any more are forgotten.
    pub(crate) fn send(&self, events: &[Arc<Event>]) {
        let mut groups = lock(&self.groups);
        if groups.is_empty() {
            return;
        }
        for event in events {
            let key = event.key();
            // "" is the group of prefixes without a `/`.
            let dirs = std::iter::once("").chain(key.match_indices('/').map(|(i, _)| &key[..=i]));
            for dir in dirs {
                if let Some(sender) = groups.get(dir) {
                    if sender.send(event.clone()).is_err() {
                        groups.remove(dir);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::directory;

    #[test]
    fn a_watch_belongs_to_the_directory_of_its_prefix() {
        assert_eq!(directory("/g/r/"), "/g/r/");
        assert_eq!(directory("/g/r/ns/"), "/g/r/ns/");
        assert_eq!(directory("/g/r/na"), "/g/r/");
        assert_eq!(directory(""), "");
    }
}

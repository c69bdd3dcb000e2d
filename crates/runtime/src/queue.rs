//! The work queue of one controller.
//!
//! Written here rather than taken from kube-runtime's `Controller` for what
//! that does not give: keys are handed out first in, first out, changes
//! ahead of the drift polls and retries that the global rate limit paces,
//! and each reconcile knows why it runs, so one that only its own previous
//! write caused can be told apart.
//!
//! A key is in at most one of three places: waiting (due at a time),
//! ready (in a FIFO), or active (being reconciled). A change to an active
//! key is kept with it, and once the reconcile is done the key runs again
//! unless every such change was the reconcile's own write: the write's
//! result is recorded before the reconcile ends, while its watch event may
//! arrive before or after that, and this way both orders are told apart.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::cache::Key;
use crate::lock;
use crate::ratelimit::RateLimiter;

/// What a change is: an object of a kind at a resourceVersion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub kind: String,
    pub key: Key,
    pub version: Box<str>,
}

/// Whether a change is exactly a state the controller's own write left.
pub type Own = Arc<dyn Fn(&Source) -> bool + Send + Sync>;

/// Why a key is reconciled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Something it depends on changed (or the controller just started).
    Changed,
    /// Its requeue came due: a drift poll, or a wait for something slow.
    Requeued,
    /// It failed and its backoff is over.
    Retry,
}

impl Reason {
    fn paced(self) -> bool {
        !matches!(self, Reason::Changed)
    }
}

#[derive(Default)]
struct State {
    /// Keys due later, by time, with their reasons; `due` is the index.
    waiting: BTreeSet<(Instant, u64, Key)>,
    due: HashMap<Key, (Instant, u64, Reason)>,
    /// Keys ready now: changes, and paced requeues and retries.
    changes: VecDeque<Key>,
    paced: VecDeque<(Key, Reason)>,
    /// Which FIFO each ready key is in; a key moved from `paced` to
    /// `changes` leaves a stale entry behind that is skipped.
    ready: HashMap<Key, Reason>,
    active: HashSet<Key>,
    /// Changes while active, looked at once done; `None` is a change of
    /// unknown source, which always counts.
    dirty: HashMap<Key, Vec<Option<Source>>>,
    sequence: u64,
    closed: bool,
}

/// A controller's queue of keys to reconcile.
pub struct Queue {
    state: Mutex<State>,
    notify: Notify,
    debounce: Duration,
    limiter: Option<Arc<RateLimiter>>,
    own: Own,
}

impl Queue {
    /// A queue that holds changes back for `debounce` (so a burst of
    /// changes to one object is one reconcile) and paces requeues and
    /// retries by `limiter`.
    /// `own` tells the changes the controller's own writes caused.
    pub fn new(debounce: Duration, limiter: Option<Arc<RateLimiter>>, own: Own) -> Queue {
        Queue {
            state: Mutex::default(),
            notify: Notify::new(),
            debounce,
            limiter,
            own,
        }
    }

    /// Something `key` depends on changed: `source`, when it is known.
    pub fn changed(&self, key: Key, source: Option<Source>) {
        let mut state = lock(&self.state);
        if state.active.contains(&key) {
            state.dirty.entry(key).or_default().push(source);
            return;
        }
        if source.as_ref().is_some_and(|s| (self.own)(s)) {
            return;
        }
        match state.ready.get(&key) {
            Some(Reason::Changed) => return,
            Some(_) => {
                // Waiting for the rate limit, but a change goes first.
                state.ready.insert(key.clone(), Reason::Changed);
                state.changes.push_back(key);
                drop(state);
                self.notify.notify_one();
                return;
            }
            None => {}
        }
        if self.debounce.is_zero() {
            unschedule(&mut state, &key);
            state.ready.insert(key.clone(), Reason::Changed);
            state.changes.push_back(key);
        } else {
            let at = Instant::now() + self.debounce;
            let earlier = state
                .due
                .get(&key)
                .is_some_and(|(t, _, r)| *t <= at && *r == Reason::Changed);
            if earlier {
                return;
            }
            schedule(&mut state, key, at, Reason::Changed);
        }
        drop(state);
        self.notify.notify_one();
    }

    /// Reconciles `key` again after `delay`, unless a change comes first.
    pub fn requeue(&self, key: Key, delay: Duration, reason: Reason) {
        let mut state = lock(&self.state);
        if state.active.contains(&key) || state.ready.contains_key(&key) {
            return;
        }
        schedule(&mut state, key, Instant::now() + delay, reason);
        drop(state);
        self.notify.notify_one();
    }

    /// The next key to reconcile and why; waits until there is one.
    /// `None` once the queue is closed.
    pub async fn next(&self) -> Option<(Key, Reason)> {
        loop {
            let notified = self.notify.notified();
            let wake = {
                let mut state = lock(&self.state);
                if state.closed {
                    return None;
                }
                promote(&mut state, Instant::now());
                if let Some(key) = pop_change(&mut state) {
                    state.active.insert(key.clone());
                    return Some((key, Reason::Changed));
                }
                let mut wake = state.waiting.first().map(|(t, _, _)| *t);
                if let Some((key, reason)) = peek_paced(&mut state) {
                    let turn = match &self.limiter {
                        Some(limiter) => limiter.try_acquire(),
                        None => None,
                    };
                    match turn {
                        None => {
                            state.paced.pop_front();
                            state.ready.remove(&key);
                            state.active.insert(key.clone());
                            return Some((key, reason));
                        }
                        Some(at) => wake = Some(wake.map_or(at, |w| w.min(at))),
                    }
                }
                wake
            };
            match wake {
                Some(at) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// `key` is reconciled; `requeue` says when to look again.
    pub fn done(&self, key: &Key, requeue: Option<(Duration, Reason)>) {
        let mut state = lock(&self.state);
        state.active.remove(key);
        let dirty = state.dirty.remove(key).is_some_and(|changes| {
            // Every change is looked at, so each own write is accounted for.
            changes
                .iter()
                .map(|c| c.as_ref().is_none_or(|s| !(self.own)(s)))
                .fold(false, |any, foreign| any | foreign)
        });
        if dirty {
            unschedule(&mut state, key);
            state.ready.insert(key.clone(), Reason::Changed);
            state.changes.push_back(key.clone());
        } else if let Some((delay, reason)) = requeue {
            schedule(&mut state, key.clone(), Instant::now() + delay, reason);
        } else {
            unschedule(&mut state, key);
        }
        drop(state);
        self.notify.notify_one();
    }

    /// Forgets `key`: it is gone, and nothing is to be done for it.
    pub fn forget(&self, key: &Key) {
        let mut state = lock(&self.state);
        unschedule(&mut state, key);
    }

    /// Wakes every waiting `next` with `None`.
    pub fn close(&self) {
        lock(&self.state).closed = true;
        self.notify.notify_waiters();
    }

    /// Keys ready, waiting and active, for tests and diagnostics.
    pub fn len(&self) -> (usize, usize, usize) {
        let state = lock(&self.state);
        (state.ready.len(), state.due.len(), state.active.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0, 0)
    }
}

fn schedule(state: &mut State, key: Key, at: Instant, reason: Reason) {
    unschedule(state, &key);
    state.sequence += 1;
    let sequence = state.sequence;
    state.waiting.insert((at, sequence, key.clone()));
    state.due.insert(key, (at, sequence, reason));
}

fn unschedule(state: &mut State, key: &Key) {
    if let Some((at, sequence, _)) = state.due.remove(key) {
        state.waiting.remove(&(at, sequence, key.clone()));
    }
}

/// Moves keys whose time has come from waiting to ready.
fn promote(state: &mut State, now: Instant) {
    while let Some((at, _, _)) = state.waiting.first() {
        if *at > now {
            break;
        }
        let Some((_, _, key)) = state.waiting.pop_first() else {
            break;
        };
        let Some((_, _, reason)) = state.due.remove(&key) else {
            continue;
        };
        // Being reconciled: that reconcile says when to look next.
        if state.active.contains(&key) || state.ready.contains_key(&key) {
            continue;
        }
        state.ready.insert(key.clone(), reason);
        if reason.paced() {
            state.paced.push_back((key, reason));
        } else {
            state.changes.push_back(key);
        }
    }
}

fn pop_change(state: &mut State) -> Option<Key> {
    while let Some(key) = state.changes.pop_front() {
        if state.ready.get(&key) == Some(&Reason::Changed) {
            state.ready.remove(&key);
            return Some(key);
        }
    }
    None
}

/// The first paced key still ready as paced, stale entries dropped.
fn peek_paced(state: &mut State) -> Option<(Key, Reason)> {
    while let Some((key, reason)) = state.paced.front().cloned() {
        if state.ready.get(&key) == Some(&reason) {
            return Some((key, reason));
        }
        state.paced.pop_front();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Key {
        Key::cluster(name)
    }

    fn never() -> Own {
        Arc::new(|_| false)
    }

    fn source(name: &str, version: &str) -> Source {
        Source {
            kind: "g/things".into(),
            key: key(name),
            version: version.into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_reconciles_own_write_does_not_run_it_again() {
        // Version 2 is what the reconcile wrote; 3 is someone else's.
        let own: Own = Arc::new(|s: &Source| &*s.version == "2");
        let queue = Queue::new(Duration::ZERO, None, own);
        queue.changed(key("a"), None);
        let (a, _) = queue.next().await.unwrap();
        // Its own write's event arrives while it still runs: not dirty.
        queue.changed(key("a"), Some(source("a", "2")));
        queue.done(&a, None);
        assert!(queue.is_empty());
        // The same event arriving after it is done is dropped too.
        queue.changed(key("a"), Some(source("a", "2")));
        assert!(queue.is_empty());
        // Someone else's change runs it, while active or not.
        queue.changed(key("a"), Some(source("a", "3")));
        let (a, _) = queue.next().await.unwrap();
        queue.changed(key("a"), Some(source("a", "2")));
        queue.changed(key("a"), Some(source("a", "3")));
        queue.done(&a, None);
        assert_eq!(queue.len(), (1, 0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn changes_come_out_first_in_first_out_and_once() {
        let queue = Queue::new(Duration::ZERO, None, never());
        for name in ["a", "b", "a", "c"] {
            queue.changed(key(name), None);
        }
        let mut order = Vec::new();
        for _ in 0..3 {
            let (k, reason) = queue.next().await.unwrap();
            assert_eq!(reason, Reason::Changed);
            order.push(k.name.to_string());
            queue.done(&k, None);
        }
        assert_eq!(order, ["a", "b", "c"]);
        assert!(queue.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_while_active_runs_again_once_done() {
        let queue = Queue::new(Duration::ZERO, None, never());
        queue.changed(key("a"), None);
        let (a, _) = queue.next().await.unwrap();
        queue.changed(key("a"), None);
        queue.changed(key("a"), None);
        assert_eq!(queue.len(), (0, 0, 1));
        queue.done(&a, Some((Duration::from_secs(60), Reason::Requeued)));
        let (again, reason) = queue.next().await.unwrap();
        assert_eq!((again.name.as_ref(), reason), ("a", Reason::Changed));
    }

    #[tokio::test(start_paused = true)]
    async fn requeues_come_due_and_a_change_goes_ahead_of_them() {
        let queue = Queue::new(Duration::ZERO, None, never());
        queue.requeue(key("poll"), Duration::from_secs(10), Reason::Requeued);
        queue.changed(key("change"), None);
        let started = Instant::now();
        let (first, _) = queue.next().await.unwrap();
        assert_eq!(first.name.as_ref(), "change");
        queue.done(&first, None);
        let (second, reason) = queue.next().await.unwrap();
        assert_eq!((second.name.as_ref(), reason), ("poll", Reason::Requeued));
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_limit_paces_requeues_but_not_changes() {
        let limiter = Arc::new(RateLimiter::new(10));
        let queue = Queue::new(Duration::ZERO, Some(limiter), never());
        for i in 0..5 {
            queue.requeue(key(&format!("poll-{i}")), Duration::ZERO, Reason::Requeued);
        }
        for i in 0..5 {
            queue.changed(key(&format!("change-{i}")), None);
        }
        let started = Instant::now();
        for _ in 0..5 {
            let (k, reason) = queue.next().await.unwrap();
            assert_eq!(reason, Reason::Changed, "{k}");
            queue.done(&k, None);
        }
        assert_eq!(started.elapsed(), Duration::ZERO, "changes are not paced");
        for _ in 0..5 {
            let (k, _) = queue.next().await.unwrap();
            queue.done(&k, None);
        }
        // Ten a second: the first at once, the fifth 400 ms later.
        assert_eq!(started.elapsed(), Duration::from_millis(400));
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_changes_is_held_for_the_debounce_then_runs_once() {
        let queue = Queue::new(Duration::from_millis(50), None, never());
        let started = Instant::now();
        for _ in 0..10 {
            queue.changed(key("a"), None);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (k, _) = queue.next().await.unwrap();
        assert_eq!(k.name.as_ref(), "a");
        assert_eq!(started.elapsed(), Duration::from_millis(50));
        queue.done(&k, None);
        assert!(queue.is_empty());
    }
}

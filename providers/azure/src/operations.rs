//! ARM long-running operations, followed across reconciles. A write that
//! answers with an `Azure-AsyncOperation` or `Location` URL is remembered
//! here with the time its `Retry-After` allows the next poll; each Observe
//! polls it once that time has come, and never waits in the call.
//!
//! What is remembered lives in the provider's memory: after a restart the
//! resource's own `provisioningState` says what is going on.

use std::collections::HashMap;
use std::sync::Mutex;

use provider_sdk::ProviderError;
use tokio::time::Instant;

use crate::arm::{Arm, Poll, PollState};

#[derive(Debug, Clone)]
struct Pending {
    poll: Poll,
    /// What the operation does, for messages: e.g. "create the server".
    what: String,
    not_before: Instant,
}

/// How a resource's operation is going.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Nothing is remembered for the resource, or it finished well.
    Idle,
    /// Still running; the message says which and how.
    Running(String),
}

/// The operations resources wait for, by resource UID.
#[derive(Default)]
pub struct Operations {
    pending: Mutex<HashMap<String, Pending>>,
}

impl Operations {
    /// Remembers the operation a write answered with, if it has one.
    pub fn track(&self, uid: &str, what: &str, poll: Option<Poll>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        match poll {
            Some(poll) => {
                let not_before = Instant::now() + poll.retry_after;
                pending.insert(
                    uid.to_string(),
                    Pending {
                        poll,
                        what: what.to_string(),
                        not_before,
                    },
                );
            }
            None => {
                pending.remove(uid);
            }
        }
    }

    /// What the operation a resource waits for does, if it waits for one.
    pub fn what(&self, uid: &str) -> Option<String> {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uid)
            .map(|p| p.what.clone())
    }

    pub fn forget(&self, uid: &str) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
    }

    /// How a resource's operation is going; polled only once its
    /// Retry-After has passed. A failed operation is forgotten and its
    /// error returned.
    pub async fn progress(&self, arm: &Arm, uid: &str) -> Result<Progress, ProviderError> {
        let Some(pending) = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uid)
            .cloned()
        else {
            return Ok(Progress::Idle);
        };
        let now = Instant::now();
        if now < pending.not_before {
            return Ok(Progress::Running(format!(
                "waiting for Azure to {} (next poll in {}s, as Retry-After asks)",
                pending.what,
                (pending.not_before - now).as_secs() + 1
            )));
        }
        match arm.poll(&pending.poll, &pending.what).await? {
            PollState::Running {
                status,
                retry_after,
            } => {
                if let Some(p) = self
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_mut(uid)
                {
                    p.not_before = Instant::now() + retry_after;
                }
                Ok(Progress::Running(format!(
                    "waiting for Azure to {} ({status})",
                    pending.what
                )))
            }
            PollState::Succeeded => {
                self.forget(uid);
                Ok(Progress::Idle)
            }
            PollState::Failed(error) => {
                self.forget(uid);
                Err(error)
            }
        }
    }
}

//! Kubernetes Events about the objects the controllers act on, so
//! `kubectl describe` shows what they did and why they could not.
//!
//! Repeats are folded the way client-go's recorder folds them (its
//! `EventCorrelator`): the same event about the same object (source,
//! object, type, reason and message alike) seen again within
//! [`FOLD_WINDOW`] updates the first one's `count` and `lastTimestamp`
//! instead of adding another object. A resource that keeps failing the
//! same way shows one Event with a count, not hundreds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Event;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use crate::{lock, names};

/// How long a repeat is folded into the first event, as client-go's
/// aggregation window.
pub const FOLD_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Most distinct events remembered for folding (client-go's cache is 4,096).
const REMEMBERED: usize = 4_096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// The object an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Regarding {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Identity {
    regarding: Regarding,
    type_: EventType,
    reason: String,
    message: String,
}

struct Seen {
    /// The Event object written for the first one.
    name: String,
    count: i32,
    last: Instant,
}

/// Records events for one controller component.
pub struct Recorder {
    client: Client,
    component: String,
    seen: Mutex<HashMap<Identity, Seen>>,
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

impl Recorder {
    /// `component` is the Events' `source.component` and `reportingComponent`.
    pub fn new(client: Client, component: impl Into<String>) -> Arc<Recorder> {
        Arc::new(Recorder {
            client,
            component: component.into(),
            seen: Mutex::default(),
        })
    }

    /// Records an event in the background; failures are logged, never fatal.
    pub fn publish(
        self: &Arc<Self>,
        regarding: Regarding,
        type_: EventType,
        reason: &str,
        message: String,
    ) {
        let recorder = self.clone();
        let reason = reason.to_string();
        tokio::spawn(async move {
            recorder.record(regarding, type_, &reason, message).await;
        });
    }

    /// Records an event, folding it into an earlier one when it repeats.
    pub async fn record(
        &self,
        regarding: Regarding,
        type_: EventType,
        reason: &str,
        message: String,
    ) {
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| names::EVENT_NAMESPACE.to_string());
        let identity = Identity {
            regarding,
            type_,
            reason: reason.to_string(),
            message,
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let repeat = {
            let mut seen = lock(&self.seen);
            match seen.get_mut(&identity) {
                Some(s) if s.last.elapsed() < FOLD_WINDOW => {
                    s.count += 1;
                    s.last = Instant::now();
                    Some((s.name.clone(), s.count))
                }
                _ => None,
            }
        };
        if let Some((name, count)) = repeat {
            let patch = json!({"count": count, "lastTimestamp": now()});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => return,
                // Expired or deleted: a new one is written below.
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => {
                    tracing::debug!(error = %e, "event not recorded");
                    return;
                }
            }
        }
        let stamp = now();
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": format!("{}.", identity.regarding.name), "namespace": namespace},
            "involvedObject": {
                "apiVersion": identity.regarding.api_version,
                "kind": identity.regarding.kind,
                "name": identity.regarding.name,
                "namespace": identity.regarding.namespace,
                "uid": identity.regarding.uid
            },
            "reason": identity.reason,
            "message": identity.message,
            "type": type_.as_str(),
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1
        });
        let event: Event = match serde_json::from_value(event) {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(error = %e, "event not recorded");
                return;
            }
        };
        match api.create(&PostParams::default(), &event).await {
            Ok(created) => {
                let mut seen = lock(&self.seen);
                if seen.len() >= REMEMBERED {
                    seen.retain(|_, s| s.last.elapsed() < FOLD_WINDOW);
                    if seen.len() >= REMEMBERED {
                        seen.clear();
                    }
                }
                seen.insert(
                    identity,
                    Seen {
                        name: created.metadata.name.unwrap_or_default(),
                        count: 1,
                        last: Instant::now(),
                    },
                );
            }
            Err(e) => tracing::debug!(error = %e, "event not recorded"),
        }
    }
}

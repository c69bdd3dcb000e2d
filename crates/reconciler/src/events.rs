//! Kubernetes Events about managed resources, so `kubectl describe` shows
//! what the controllers did and why they could not.

use k8s_openapi::api::core::v1::Event;
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::json;

use crate::names;

#[derive(Debug, Clone, Copy)]
pub enum EventType {
    Normal,
    Warning,
}

/// Records one Event; failures are logged, never fatal.
#[allow(clippy::too_many_arguments)]
pub async fn record(
    client: &Client,
    api_version: &str,
    kind: &str,
    name: &str,
    uid: &str,
    type_: EventType,
    reason: &str,
    message: &str,
) {
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": format!("{name}."), "namespace": names::EVENT_NAMESPACE},
        "involvedObject": {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid},
        "reason": reason,
        "message": message,
        "type": match type_ { EventType::Normal => "Normal", EventType::Warning => "Warning" },
        "source": {"component": "plinth/managed"},
        "reportingComponent": "plinth/managed",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1
    });
    let event: Event = match serde_json::from_value(event) {
        Ok(e) => e,
        Err(_) => return,
    };
    let api: Api<Event> = Api::namespaced(client.clone(), names::EVENT_NAMESPACE);
    if let Err(e) = api.create(&PostParams::default(), &event).await {
        tracing::debug!(error = %e, "event not recorded");
    }
}

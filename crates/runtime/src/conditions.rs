//! Status conditions: set one, keeping `lastTransitionTime` when nothing changed.

use std::borrow::Cow;

use serde_json::{json, Value};

/// One condition to set: its type and reason are usually constants, and
/// owned where they are copied from another object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition<'a> {
    pub type_: Cow<'a, str>,
    pub status: bool,
    pub reason: Cow<'a, str>,
    pub message: String,
}

impl<'a> Condition<'a> {
    pub fn new(
        type_: impl Into<Cow<'a, str>>,
        status: bool,
        reason: impl Into<Cow<'a, str>>,
        message: impl Into<String>,
    ) -> Self {
        Condition {
            type_: type_.into(),
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The conditions list with `updates` applied.
pub fn merged(
    existing: Option<&Value>,
    updates: &[Condition],
    observed_generation: Option<i64>,
) -> Value {
    let mut list: Vec<Value> = existing
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for c in updates {
        let status = if c.status { "True" } else { "False" };
        let previous = list
            .iter()
            .position(|x| x.get("type").and_then(Value::as_str) == Some(&*c.type_));
        let transition = previous
            .and_then(|i| {
                let old = &list[i];
                (old.get("status").and_then(Value::as_str) == Some(status))
                    .then(|| old.get("lastTransitionTime").cloned())
                    .flatten()
            })
            .unwrap_or_else(|| json!(now()));
        let mut entry = json!({
            "type": c.type_,
            "status": status,
            "reason": c.reason,
            "lastTransitionTime": transition,
        });
        if !c.message.is_empty() {
            entry["message"] = json!(c.message);
        }
        if let Some(g) = observed_generation {
            entry["observedGeneration"] = json!(g);
        }
        match previous {
            Some(i) => list[i] = entry,
            None => list.push(entry),
        }
    }
    Value::Array(list)
}

/// The status of a condition type, if set.
pub fn status_of<'a>(conditions: Option<&'a Value>, type_: &str) -> Option<&'a str> {
    conditions?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))?
        .get("status")?
        .as_str()
}

/// Sets conditions (and other status fields) on the status of the named
/// object, read fresh, with a merge patch: for objects a host writes now
/// and then (a Provider, a Function) rather than from a cache. An object
/// that is gone is not an error.
pub async fn patch_status(
    api: &kube::Api<kube::api::DynamicObject>,
    name: &str,
    updates: &[Condition<'_>],
    extra: Value,
) -> Result<(), kube::Error> {
    let Some(current) = api.get_opt(name).await? else {
        return Ok(());
    };
    let mut status = extra;
    status["conditions"] = merged(current.data.pointer("/status/conditions"), updates, None);
    api.patch_status(
        name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"status": status})),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_transition_time_when_status_is_unchanged() {
        let first = merged(
            None,
            &[Condition::new("Ready", true, "Available", "")],
            Some(1),
        );
        let t = first[0]["lastTransitionTime"].clone();
        let again = merged(
            Some(&first),
            &[Condition::new("Ready", true, "Available", "x")],
            Some(2),
        );
        assert_eq!(again[0]["lastTransitionTime"], t);
        assert_eq!(again[0]["observedGeneration"], 2);
        assert_eq!(again[0]["message"], "x");
        let both = merged(
            Some(&again),
            &[Condition::new("Synced", false, "ReconcileError", "boom")],
            None,
        );
        assert_eq!(both.as_array().unwrap().len(), 2);
        assert_eq!(status_of(Some(&both), "Synced"), Some("False"));
    }
}

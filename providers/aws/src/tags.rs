//! Tags: the `tags` map of a forProvider, the tags AWS reports, and what an
//! update must add and remove. Tags under `plinth.dev/` are the provider's
//! own bookkeeping and never count as drift.

use std::collections::BTreeMap;

use provider_sdk::serde_json::Value;

/// The prefix of the tags the provider writes for itself.
pub const OWN_PREFIX: &str = "plinth.dev/";
/// The tag holding the managed resource's UID, for finding a launch whose
/// result was lost.
pub const UID: &str = "plinth.dev/uid";
/// The tag holding the managed resource's name, for people in the console.
pub const NAME: &str = "plinth.dev/name";
/// A keyed fingerprint of the master password an RDS instance was given, so
/// a changed password is noticed without ever storing it. Keyed by the
/// resource's secret seed: it reveals nothing to someone who reads tags.
pub const PASSWORD_FINGERPRINT: &str = "plinth.dev/password-fingerprint";

/// The value of one tag among AWS's `(key, value)` pairs.
pub fn find<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>, key: &str) -> Option<&'a str> {
    tags.into_iter().find(|(k, _)| *k == key).map(|(_, v)| v)
}

pub type Tags = BTreeMap<String, String>;

/// The `tags` field of a forProvider. Non-string values are written as JSON
/// text, since AWS tag values are strings.
pub fn desired(for_provider: &Value) -> Tags {
    for_provider
        .get("tags")
        .and_then(Value::as_object)
        .map(|tags| {
            tags.iter()
                .map(|(k, v)| {
                    let value = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                    (k.clone(), value)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The user's tags among those AWS reports.
pub fn users(actual: impl IntoIterator<Item = (String, String)>) -> Tags {
    actual
        .into_iter()
        .filter(|(k, _)| !k.starts_with(OWN_PREFIX))
        .collect()
}

/// What turns `actual` into `desired`: tags to set, and keys to remove.
pub fn changes(desired: &Tags, actual: &Tags) -> (Tags, Vec<String>) {
    let set = desired
        .iter()
        .filter(|(k, v)| actual.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove = actual
        .keys()
        .filter(|k| !desired.contains_key(*k))
        .cloned()
        .collect();
    (set, remove)
}

/// `tags: {a: 1} -> {a: 2}`, or nothing when they agree.
pub fn diff(desired: &Tags, actual: &Tags) -> Option<String> {
    (desired != actual).then(|| format!("tags: {actual:?} -> {desired:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use provider_sdk::serde_json::json;

    #[test]
    fn changes_add_update_and_remove() {
        let desired = desired(&json!({"tags": {"team": "orders", "tier": 2}}));
        assert_eq!(desired.get("tier").map(String::as_str), Some("2"));
        let actual = users([
            ("team".to_string(), "payments".to_string()),
            ("old".to_string(), "x".to_string()),
            (UID.to_string(), "u-1".to_string()),
        ]);
        assert!(!actual.contains_key(UID), "own tags are not the user's");
        let (set, remove) = changes(&desired, &actual);
        assert_eq!(set.len(), 2);
        assert_eq!(set.get("team").map(String::as_str), Some("orders"));
        assert_eq!(remove, vec!["old".to_string()]);
        assert!(diff(&desired, &actual).is_some());
        assert_eq!(diff(&desired, &desired), None);
    }
}

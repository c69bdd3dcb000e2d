//! Records (the current state of a key) and events (one change to a key).

use std::sync::Arc;

use serde_json::Value;

/// The current state of one key.
#[derive(Debug, Clone)]
pub struct Record {
    pub key: String,
    /// The object, with `metadata.resourceVersion` already set to `mod_revision`.
    pub value: Arc<Value>,
    /// `value` as JSON, exactly as stored: serialized once by the writer (or
    /// read back at start-up), so reads, lists and watches send it as it is
    /// instead of encoding the object again for every client.
    pub text: Arc<str>,
    /// The revision that created the key.
    pub create_revision: u64,
    /// The revision of the last change to the key.
    pub mod_revision: u64,
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub(crate) fn code(self) -> i64 {
        match self {
            EventType::Added => 0,
            EventType::Modified => 1,
            EventType::Deleted => 2,
        }
    }

    pub(crate) fn from_code(code: i64) -> EventType {
        match code {
            0 => EventType::Added,
            2 => EventType::Deleted,
            _ => EventType::Modified,
        }
    }
}

/// One committed change.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventType,
    pub revision: u64,
    pub key: String,
    /// The new state; for a deletion, the last state stamped with the deletion revision.
    pub object: Arc<Value>,
    /// `object` as JSON (see [`Record::text`]).
    pub text: Arc<str>,
    /// The state before the change, when it is known (events read back from
    /// disk after a restart do not carry it).
    pub prev: Option<Arc<Value>>,
}

/// Sets `metadata.resourceVersion` to the revision, as the API expects to read it back.
pub(crate) fn stamp(value: &mut Value, revision: u64) {
    if let Some(obj) = value.as_object_mut() {
        let metadata = obj
            .entry("metadata")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(meta) = metadata.as_object_mut() {
            meta.insert(
                "resourceVersion".to_string(),
                Value::String(revision.to_string()),
            );
        }
    }
}

//! Records (the current state of a key), their extract, and events (one
//! change to a key).
//!
//! A record keeps its object as encoded JSON only, never as a parsed tree:
//! what lists, watches, field selectors and the garbage collector ask of
//! every object is kept beside it in a small [`Meta`], and the rest is
//! parsed on demand by whoever needs the whole object.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::StoreError;
use jsonpack::Body;

/// Key-value pairs sorted by key: labels, selectable fields.
pub type Pairs = Box<[(Box<str>, Box<str>)]>;

/// What is read of every object without parsing it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    pub api_version: Box<str>,
    pub name: Box<str>,
    pub namespace: Option<Box<str>>,
    pub uid: Box<str>,
    /// Sorted by key.
    pub labels: Pairs,
    /// The UIDs of `metadata.ownerReferences`.
    pub owners: Box<[Box<str>]>,
    pub finalizers: Box<[Box<str>]>,
    /// Whether `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// The values of the kind's selectable fields beyond name and
    /// namespace (see [`crate::Options::fields`]), sorted by field.
    pub fields: Pairs,
}

impl Meta {
    /// The extract of `value`, with the selectable `fields` the caller found in it.
    pub(crate) fn of(value: &Value, mut fields: Vec<(Box<str>, Box<str>)>) -> Meta {
        let metadata = value.get("metadata").and_then(Value::as_object);
        let text = |key: &str| {
            metadata
                .and_then(|m| m.get(key))
                .and_then(Value::as_str)
                .map(Box::from)
        };
        let mut labels: Vec<(Box<str>, Box<str>)> = metadata
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
            .map(|labels| {
                labels
                    .iter()
                    .filter_map(|(k, v)| Some((Box::from(k.as_str()), Box::from(v.as_str()?))))
                    .collect()
            })
            .unwrap_or_default();
        labels.sort();
        fields.sort();
        let strings = |key: &str, inner: Option<&str>| -> Box<[Box<str>]> {
            metadata
                .and_then(|m| m.get(key))
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(|v| match inner {
                            Some(field) => v.get(field)?.as_str(),
                            None => v.as_str(),
                        })
                        .map(Box::from)
                        .collect()
                })
                .unwrap_or_default()
        };
        Meta {
            api_version: value
                .get("apiVersion")
                .and_then(Value::as_str)
                .map(Box::from)
                .unwrap_or_default(),
            name: text("name").unwrap_or_default(),
            namespace: text("namespace"),
            uid: text("uid").unwrap_or_default(),
            labels: labels.into(),
            owners: strings("ownerReferences", Some("uid")),
            finalizers: strings("finalizers", None),
            deleting: metadata
                .is_some_and(|m| m.get("deletionTimestamp").is_some_and(|t| !t.is_null())),
            fields: fields.into(),
        }
    }

    /// The value of one label.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.labels[i].1)
    }

    /// The value of a selectable field: `metadata.name`, `metadata.namespace`
    /// or one of the kind's own.
    pub fn field(&self, field: &str) -> Option<&str> {
        match field {
            "metadata.name" => Some(&self.name),
            "metadata.namespace" => Some(self.namespace.as_deref().unwrap_or("")),
            _ => self
                .fields
                .binary_search_by(|(k, _)| (**k).cmp(field))
                .ok()
                .map(|i| &*self.fields[i].1),
        }
    }

    /// What a selector watch needs of the state before a change, as kept
    /// on disk with the change: labels and selectable fields.
    pub(crate) fn selectable_json(&self) -> String {
        let pairs = |list: &[(Box<str>, Box<str>)]| -> Map<String, Value> {
            list.iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect()
        };
        serde_json::json!({"labels": pairs(&self.labels), "fields": pairs(&self.fields)})
            .to_string()
    }

    /// `self` with the labels and fields of [`Meta::selectable_json`].
    pub(crate) fn with_selectable(&self, text: &str) -> Option<Meta> {
        let value: Value = serde_json::from_str(text).ok()?;
        let pairs = |key: &str| -> Option<Pairs> {
            let mut list: Vec<(Box<str>, Box<str>)> = value
                .get(key)?
                .as_object()?
                .iter()
                .filter_map(|(k, v)| Some((Box::from(k.as_str()), Box::from(v.as_str()?))))
                .collect();
            list.sort();
            Some(list.into())
        };
        Some(Meta {
            labels: pairs("labels")?,
            fields: pairs("fields")?,
            ..self.clone()
        })
    }
}

/// The current state of one key.
#[derive(Debug)]
pub struct Record {
    /// Shared with the state's map and the key's later records.
    pub key: Arc<str>,
    /// The revision that created the key.
    pub create_revision: u64,
    /// The revision of the last change to the key.
    pub mod_revision: u64,
    pub meta: Arc<Meta>,
    /// The object as JSON, with `metadata.resourceVersion` already set to
    /// `mod_revision`: plain while the key is written often, compressed once
    /// it has settled (see `pack`).
    pub(crate) body: Body,
}

impl Record {
    pub(crate) fn new(
        key: Arc<str>,
        create_revision: u64,
        mod_revision: u64,
        meta: Arc<Meta>,
        json: Bytes,
    ) -> Record {
        Record {
            key,
            create_revision,
            mod_revision,
            meta,
            body: Body::Plain(json),
        }
    }

    /// The object as JSON, exactly as stored, for reads and watches to send
    /// as it is.
    pub fn json(&self) -> Result<Bytes, StoreError> {
        self.body.json().map_err(|e| StoreError::Unpack {
            key: self.key.to_string(),
            message: e.to_string(),
        })
    }

    /// The object, parsed.
    pub fn value(&self) -> Result<Value, StoreError> {
        let json = self.json()?;
        serde_json::from_slice(&json).map_err(|source| StoreError::Corrupt {
            key: self.key.to_string(),
            source,
        })
    }

    /// Whether the body is held compressed.
    pub fn is_packed(&self) -> bool {
        self.body.is_packed()
    }

    /// Bytes of memory the body takes.
    pub fn body_size(&self) -> usize {
        self.body.size()
    }
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

    fn index(self) -> usize {
        self.code() as usize
    }
}

/// One committed change.
#[derive(Debug)]
pub struct Event {
    pub kind: EventType,
    pub revision: u64,
    /// The new state; for a deletion, the last state stamped with the deletion revision.
    pub record: Arc<Record>,
    /// The extract of the state before the change, for selector watches to
    /// tell an object that left their selection (events read back from disk
    /// carry its labels and fields, which is all a selector reads).
    pub prev: Option<Arc<Meta>>,
    /// The event as the API sends it, per type it can be shown as (a
    /// selector watch sees a MODIFIED as ADDED or DELETED when the object
    /// moves into or out of its selection), encoded once for every watcher.
    encoded: [OnceLock<Bytes>; 3],
}

impl Event {
    pub(crate) fn new(kind: EventType, record: Arc<Record>, prev: Option<Arc<Meta>>) -> Event {
        Event {
            kind,
            revision: record.mod_revision,
            record,
            prev,
            encoded: Default::default(),
        }
    }

    pub fn key(&self) -> &str {
        &self.record.key
    }

    /// The event shown as `kind`, encoded by `encode` the first time any
    /// watcher asks for it and shared by every watcher after that.
    pub fn encoded(
        &self,
        kind: EventType,
        encode: impl FnOnce() -> Result<Bytes, StoreError>,
    ) -> Result<Bytes, StoreError> {
        let slot = &self.encoded[kind.index()];
        if let Some(bytes) = slot.get() {
            return Ok(bytes.clone());
        }
        let bytes = encode()?;
        Ok(slot.get_or_init(|| bytes).clone())
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn meta_is_the_extract_lists_and_watches_read() {
        let value = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {
                "name": "s", "namespace": "ns", "uid": "u1",
                "labels": {"b": "2", "a": "1"},
                "ownerReferences": [{"uid": "o1"}, {"uid": "o2"}],
                "finalizers": ["f"],
                "deletionTimestamp": "2026-01-01T00:00:00Z"
            },
            "type": "Opaque"
        });
        let meta = Meta::of(&value, vec![("type".into(), "Opaque".into())]);
        assert_eq!(&*meta.api_version, "v1");
        assert_eq!(meta.label("a"), Some("1"));
        assert_eq!(meta.label("c"), None);
        assert_eq!(meta.field("metadata.namespace"), Some("ns"));
        assert_eq!(meta.field("type"), Some("Opaque"));
        assert_eq!(&*meta.owners, &[Box::from("o1"), Box::from("o2")]);
        assert!(meta.deleting);
        let back = meta.with_selectable(&meta.selectable_json()).unwrap();
        assert_eq!(back, meta);
    }
}

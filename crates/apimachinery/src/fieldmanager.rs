//! Field ownership for server-side apply: `metadata.managedFields`.
//!
//! Every write records which manager set which fields, in the FieldsV1 format
//! kubectl and client libraries read. An apply merges the applier's partial
//! object into the live one, refuses to change fields another manager owns
//! unless forced, and removes fields the applier alone used to set and has
//! now dropped from its configuration. An update takes ownership of whatever
//! it changed.
//!
//! A field set is held as a sorted set of paths, each path a list of FieldsV1
//! keys (`f:spec`, `k:{"name":"a"}`, `v:"x"`); the nested FieldsV1 JSON is only
//! the wire form.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{json, Map, Value};

use crate::field::{CauseType, FieldError, ListType, MapType, TypeInfo};

/// The manager upstream credits with everything an object held before it was
/// first applied, so the first apply still meets conflicts.
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// Object metadata the server owns; no manager is ever credited with it.
const UNTRACKED_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// Top-level fields that identify the type rather than hold data.
const UNTRACKED_TOP_LEVEL: &[&str] = &["apiVersion", "kind"];

/// The kind of write a manager made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }

    fn parse(s: &str) -> Option<Operation> {
        match s {
            "Apply" => Some(Operation::Apply),
            "Update" => Some(Operation::Update),
            _ => None,
        }
    }
}

/// Who is writing, and how.
#[derive(Debug, Clone, Copy)]
pub struct Manager<'a> {
    pub name: &'a str,
    pub operation: Operation,
    /// `Some("status")` for writes through the status subresource.
    pub subresource: Option<&'a str>,
    /// The API version the write was made in, e.g. `stable.example.com/v1`.
    pub api_version: &'a str,
    /// RFC 3339 time of the write.
    pub time: &'a str,
}

/// A field an apply would change that another manager owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub manager: String,
    pub operation: Operation,
    pub subresource: Option<String>,
    pub api_version: String,
    pub time: Option<String>,
    /// The field in fieldpath notation: `.spec.containers[name="a"].image`.
    pub field: String,
}

impl Conflict {
    /// The owner as kube-apiserver names it in conflict messages.
    fn owner(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            out.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == Operation::Update {
            out.push_str(&format!(" using {}", self.api_version));
            if let Some(time) = &self.time {
                out.push_str(&format!(" at {time}"));
            }
        }
        out
    }
}

/// Why an apply was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Other managers own fields the apply would change. Re-apply with
    /// `force=true` to take them, or drop them from the configuration.
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The applied configuration cannot be merged as its schema describes.
    #[error("{0}")]
    Invalid(FieldError),
}

/// The `Status` message for a refused apply, worded as kube-apiserver words it.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.owner(),
            only.field
        );
    }
    let mut owners: Vec<String> = conflicts.iter().map(Conflict::owner).collect();
    owners.sort();
    owners.dedup();
    let mut lines = Vec::new();
    for owner in &owners {
        lines.push(format!("conflicts with {owner}:"));
        for c in conflicts.iter().filter(|c| &c.owner() == owner) {
            lines.push(format!("- {}", c.field));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// One `details.causes` entry per conflicting field.
pub fn conflict_causes(conflicts: &[Conflict]) -> Vec<FieldError> {
    conflicts
        .iter()
        .map(|c| {
            FieldError::new(
                CauseType::ManagerConflict,
                c.field.clone(),
                format!("conflict with {}", c.owner()),
            )
        })
        .collect()
}

type Path = Vec<String>;
type FieldSet = BTreeSet<Path>;

/// One `managedFields` entry.
#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    operation: Operation,
    api_version: String,
    time: Option<String>,
    subresource: Option<String>,
    fields: FieldSet,
}

impl Entry {
    fn is(&self, m: &Manager) -> bool {
        self.manager == m.name
            && self.operation == m.operation
            && self.subresource.as_deref() == m.subresource
    }

    fn from_json(v: &Value) -> Option<Entry> {
        let manager = v
            .get("manager")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let operation = Operation::parse(v.get("operation")?.as_str()?)?;
        let mut fields = FieldSet::new();
        if let Some(tree) = v.get("fieldsV1") {
            parse_fields_v1(tree, &mut Vec::new(), &mut fields)?;
        }
        Some(Entry {
            manager,
            operation,
            api_version: v
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            time: v.get("time").and_then(Value::as_str).map(str::to_string),
            subresource: v
                .get("subresource")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            fields,
        })
    }

    fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("manager".into(), json!(self.manager));
        out.insert("operation".into(), json!(self.operation.as_str()));
        out.insert("apiVersion".into(), json!(self.api_version));
        if let Some(time) = &self.time {
            out.insert("time".into(), json!(time));
        }
        out.insert("fieldsType".into(), json!("FieldsV1"));
        out.insert("fieldsV1".into(), fields_v1(&self.fields));
        if let Some(sub) = &self.subresource {
            out.insert("subresource".into(), json!(sub));
        }
        Value::Object(out)
    }

    fn conflict(&self, path: &Path) -> Conflict {
        Conflict {
            manager: self.manager.clone(),
            operation: self.operation,
            subresource: self.subresource.clone(),
            api_version: self.api_version.clone(),
            time: self.time.clone(),
            field: render_field_path(path),
        }
    }
}

/// Merges `applied` into `live` (or into nothing, for a create) on behalf of
/// an applying manager, and returns the object with its new `managedFields`.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &Manager,
    force: bool,
    types: &dyn TypeInfo,
) -> Result<Value, ApplyError> {
    if !applied.is_object() {
        return Err(ApplyError::Invalid(FieldError::new(
            CauseType::TypeInvalid,
            "",
            "Invalid value: the applied configuration must be an object",
        )));
    }
    let applied_set = field_set(applied, types, Strictness::Strict)?;
    let mut entries = live.map(read_entries).unwrap_or_default();
    if let Some(live) = live {
        if entries.is_empty() {
            let fields = field_set(live, types, Strictness::Lenient).unwrap_or_default();
            if !fields.is_empty() {
                entries.push(Entry {
                    manager: BEFORE_FIRST_APPLY.to_string(),
                    operation: Operation::Update,
                    api_version: manager.api_version.to_string(),
                    time: None,
                    subresource: None,
                    fields,
                });
            }
        }
    }

    let mut conflicts = Vec::new();
    let mut conflicted: Vec<(usize, Path)> = Vec::new();
    if let Some(live) = live {
        for (i, entry) in entries.iter().enumerate() {
            if entry.is(manager) {
                continue;
            }
            for path in entry.fields.intersection(&applied_set) {
                if differs(live, applied, path) {
                    conflicts.push(entry.conflict(path));
                    conflicted.push((i, path.clone()));
                }
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(ApplyError::Conflicts(conflicts));
    }
    for (i, path) in conflicted {
        entries[i].fields.remove(&path);
    }

    let mut result = live.cloned().unwrap_or_else(|| json!({}));
    merge(&mut result, applied, types, &mut Vec::new());

    if let Some(previous) = entries.iter().find(|e| e.is(manager)) {
        let others: FieldSet = entries
            .iter()
            .filter(|e| !e.is(manager))
            .flat_map(|e| e.fields.iter().cloned())
            .collect();
        let dropped: Vec<&Path> = previous
            .fields
            .iter()
            .filter(|p| {
                !others.iter().any(|o| o.starts_with(p))
                    && !applied_set.iter().any(|a| a.starts_with(p))
            })
            .collect();
        // Removing an item removes its fields too; removing the fields first
        // would lose the key that finds the item.
        for path in &dropped {
            let inside_dropped = dropped
                .iter()
                .any(|d| d.len() < path.len() && path.starts_with(d));
            if !inside_dropped {
                remove_at(&mut result, path);
            }
        }
    }

    match entries.iter_mut().find(|e| e.is(manager)) {
        Some(entry) => {
            entry.fields = applied_set;
            entry.api_version = manager.api_version.to_string();
            entry.time = Some(manager.time.to_string());
        }
        None => entries.push(new_entry(manager, applied_set)),
    }
    write_entries(&mut result, entries);
    Ok(result)
}

/// Credits an update (create, PUT or patch) with every field it changed, and
/// takes those fields from whoever owned them before. `new` carries the
/// `managedFields` the write started from.
pub fn track_update(old: Option<&Value>, new: &mut Value, manager: &Manager, types: &dyn TypeInfo) {
    let mut entries = read_entries(new);
    let new_set = field_set(new, types, Strictness::Lenient).unwrap_or_default();
    let old_set = old
        .map(|o| field_set(o, types, Strictness::Lenient).unwrap_or_default())
        .unwrap_or_default();

    let removed: Vec<&Path> = old_set.difference(&new_set).collect();
    let changed: FieldSet = match old {
        None => new_set.clone(),
        Some(old) => new_set
            .iter()
            .filter(|p| differs(old, new, p))
            .cloned()
            .collect(),
    };
    for entry in &mut entries {
        for path in &removed {
            entry.fields.remove(*path);
        }
        if !entry.is(manager) {
            entry.fields.retain(|p| !changed.contains(p));
        }
    }
    if !changed.is_empty() {
        match entries.iter_mut().find(|e| e.is(manager)) {
            Some(entry) => {
                entry.fields.extend(changed);
                entry.api_version = manager.api_version.to_string();
                entry.time = Some(manager.time.to_string());
            }
            None => entries.push(new_entry(manager, changed)),
        }
    }
    write_entries(new, entries);
}

fn new_entry(manager: &Manager, fields: FieldSet) -> Entry {
    Entry {
        manager: manager.name.to_string(),
        operation: manager.operation,
        api_version: manager.api_version.to_string(),
        time: Some(manager.time.to_string()),
        subresource: manager.subresource.map(str::to_string),
        fields,
    }
}

fn read_entries(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Entry::from_json).collect())
        .unwrap_or_default()
}

fn write_entries(obj: &mut Value, entries: Vec<Entry>) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(Entry::to_json)
        .collect();
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    let meta = root.entry("metadata").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    if list.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(list));
    }
}

/// How to treat a list whose items cannot be keyed as its schema says.
#[derive(Clone, Copy, PartialEq)]
enum Strictness {
    /// Refuse: the applied configuration is wrong and its author should know.
    Strict,
    /// Own the list whole: stored objects are tracked as well as they can be.
    Lenient,
}

fn list_type(types: &dyn TypeInfo, path: &[String]) -> ListType {
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    // ObjectMeta's own list semantics hold for every kind, typed or not.
    match path.as_slice() {
        ["metadata", "finalizers"] => ListType::Set,
        ["metadata", "ownerReferences"] => ListType::Map(vec!["uid".to_string()]),
        _ => types.list_type(&path),
    }
}

fn map_type(types: &dyn TypeInfo, path: &[String]) -> MapType {
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    types.map_type(&path)
}

/// The fields a (partial) object sets: its leaves, atomic lists and maps,
/// list items, and empty objects.
fn field_set(
    obj: &Value,
    types: &dyn TypeInfo,
    strictness: Strictness,
) -> Result<FieldSet, ApplyError> {
    let mut out = FieldSet::new();
    let Some(root) = obj.as_object() else {
        return Ok(out);
    };
    for (name, value) in root {
        if UNTRACKED_TOP_LEVEL.contains(&name.as_str()) {
            continue;
        }
        if name == "metadata" {
            let Some(meta) = value.as_object() else {
                continue;
            };
            for (field, v) in meta {
                if UNTRACKED_METADATA.contains(&field.as_str()) {
                    continue;
                }
                let mut type_path = vec!["metadata".to_string(), field.clone()];
                let mut path = vec!["f:metadata".to_string(), format!("f:{field}")];
                collect(v, types, strictness, &mut type_path, &mut path, &mut out)?;
            }
            continue;
        }
        let mut type_path = vec![name.clone()];
        let mut path = vec![format!("f:{name}")];
        collect(
            value,
            types,
            strictness,
            &mut type_path,
            &mut path,
            &mut out,
        )?;
    }
    Ok(out)
}

fn collect(
    value: &Value,
    types: &dyn TypeInfo,
    strictness: Strictness,
    type_path: &mut Vec<String>,
    path: &mut Path,
    out: &mut FieldSet,
) -> Result<(), ApplyError> {
    match value {
        Value::Object(map)
            if !map.is_empty() && map_type(types, type_path) == MapType::Granular =>
        {
            collect_fields(map, types, strictness, type_path, path, out)
        }
        Value::Array(items) => match list_type(types, type_path) {
            ListType::Atomic => {
                out.insert(path.clone());
                Ok(())
            }
            ListType::Set => {
                for item in items {
                    let mut item_path = path.clone();
                    item_path.push(format!("v:{item}"));
                    out.insert(item_path);
                }
                Ok(())
            }
            ListType::Map(keys) => {
                let mut seen = BTreeSet::new();
                let mut keyed = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item_key(item, &keys) {
                        Ok(key) if seen.insert(key.clone()) => keyed.push((key, item)),
                        Ok(key) if strictness == Strictness::Strict => {
                            return Err(ApplyError::Invalid(FieldError::new(
                                CauseType::Duplicate,
                                format!("{}[{i}]", dotted(path)),
                                format!("Duplicate value: {key}: the list is keyed by {keys:?}, and each key may appear once"),
                            )));
                        }
                        Err(message) if strictness == Strictness::Strict => {
                            return Err(ApplyError::Invalid(FieldError::new(
                                CauseType::Required,
                                format!("{}[{i}]", dotted(path)),
                                message,
                            )));
                        }
                        _ => {
                            // A stored list that breaks its own keys is owned whole.
                            out.insert(path.clone());
                            return Ok(());
                        }
                    }
                }
                for (key, item) in keyed {
                    path.push(format!("k:{key}"));
                    out.insert(path.clone());
                    if let Some(map) = item.as_object() {
                        collect_fields(map, types, strictness, type_path, path, out)?;
                    }
                    path.pop();
                }
                Ok(())
            }
        },
        _ => {
            out.insert(path.clone());
            Ok(())
        }
    }
}

fn collect_fields(
    map: &Map<String, Value>,
    types: &dyn TypeInfo,
    strictness: Strictness,
    type_path: &mut Vec<String>,
    path: &mut Path,
    out: &mut FieldSet,
) -> Result<(), ApplyError> {
    for (name, v) in map {
        type_path.push(name.clone());
        path.push(format!("f:{name}"));
        let result = collect(v, types, strictness, type_path, path, out);
        path.pop();
        type_path.pop();
        result?;
    }
    Ok(())
}

/// The `k:` key of a map-list item: its key fields as a JSON object, in key
/// order, as FieldsV1 spells it.
fn item_key(item: &Value, keys: &[String]) -> Result<String, String> {
    let Some(map) = item.as_object() else {
        return Err(format!(
            "Required value: items of a list keyed by {keys:?} must be objects, found {item}"
        ));
    };
    let mut sorted: Vec<&String> = keys.iter().collect();
    sorted.sort();
    let mut key = Map::new();
    for k in sorted {
        match map.get(k.as_str()) {
            Some(v) if !v.is_null() => {
                key.insert(k.clone(), v.clone());
            }
            _ => {
                return Err(format!(
                    "Required value: list items must have the key field {k:?}"
                ))
            }
        }
    }
    Ok(Value::Object(key).to_string())
}

/// The value at a FieldsV1 path, if the object has one.
fn lookup<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for element in path {
        cur = step(cur, element)?;
    }
    Some(cur)
}

fn step<'a>(cur: &'a Value, element: &str) -> Option<&'a Value> {
    if let Some(name) = element.strip_prefix("f:") {
        return cur.as_object()?.get(name);
    }
    let items = cur.as_array()?;
    if let Some(key) = element.strip_prefix("k:") {
        let key: Map<String, Value> = serde_json::from_str(key).ok()?;
        return items
            .iter()
            .find(|item| key.iter().all(|(k, v)| item.get(k) == Some(v)));
    }
    if let Some(value) = element.strip_prefix("v:") {
        let value: Value = serde_json::from_str(value).ok()?;
        return items.iter().find(|item| **item == value);
    }
    None
}

/// Whether two objects disagree at a path. A list item is the same item
/// whatever its fields hold; its fields are compared on their own paths.
fn differs(a: &Value, b: &Value, path: &[String]) -> bool {
    let (x, y) = (lookup(a, path), lookup(b, path));
    if path
        .last()
        .is_some_and(|last| last.starts_with("k:") || last.starts_with("v:"))
    {
        return x.is_some() != y.is_some();
    }
    x != y
}

fn remove_at(obj: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for element in parents {
        let next = if let Some(name) = element.strip_prefix("f:") {
            cur.as_object_mut().and_then(|m| m.get_mut(name))
        } else if let Some(key) = element.strip_prefix("k:") {
            let key: Option<Map<String, Value>> = serde_json::from_str(key).ok();
            match (key, cur.as_array_mut()) {
                (Some(key), Some(items)) => items
                    .iter_mut()
                    .find(|item| key.iter().all(|(k, v)| item.get(k) == Some(v))),
                _ => None,
            }
        } else {
            None
        };
        match next {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(name) = last.strip_prefix("f:") {
        if let Some(map) = cur.as_object_mut() {
            map.remove(name);
        }
    } else if let Some(key) = last.strip_prefix("k:") {
        if let (Ok(key), Some(items)) = (
            serde_json::from_str::<Map<String, Value>>(key),
            cur.as_array_mut(),
        ) {
            items.retain(|item| !key.iter().all(|(k, v)| item.get(k) == Some(v)));
        }
    } else if let Some(value) = last.strip_prefix("v:") {
        if let (Ok(value), Some(items)) = (serde_json::from_str::<Value>(value), cur.as_array_mut())
        {
            items.retain(|item| *item != value);
        }
    }
}

/// Applies a partial object onto a full one, list by list as the schema says.
fn merge(dst: &mut Value, src: &Value, types: &dyn TypeInfo, type_path: &mut Vec<String>) {
    let root = type_path.is_empty();
    match (&mut *dst, src) {
        (Value::Object(d), Value::Object(s))
            if root || map_type(types, type_path) == MapType::Granular =>
        {
            for (name, v) in s {
                if v.is_null() {
                    d.remove(name);
                    continue;
                }
                type_path.push(name.clone());
                match d.get_mut(name) {
                    Some(existing) => merge(existing, v, types, type_path),
                    None => {
                        d.insert(name.clone(), v.clone());
                    }
                }
                type_path.pop();
            }
        }
        (Value::Array(d), Value::Array(s)) => match list_type(types, type_path) {
            ListType::Atomic => *dst = src.clone(),
            ListType::Set => {
                for item in s {
                    if !d.contains(item) {
                        d.push(item.clone());
                    }
                }
            }
            ListType::Map(keys) => {
                for item in s {
                    let key = item_key(item, &keys).ok();
                    let existing = key.as_ref().and_then(|key| {
                        d.iter_mut()
                            .find(|candidate| item_key(candidate, &keys).ok().as_ref() == Some(key))
                    });
                    match existing {
                        Some(existing) => merge(existing, item, types, type_path),
                        None => d.push(item.clone()),
                    }
                }
            }
        },
        _ => *dst = src.clone(),
    }
}

/// The FieldsV1 JSON tree for a set of paths.
fn fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        insert_path(&mut root, path);
    }
    collapse_leaves(&mut root);
    Value::Object(root)
}

fn insert_path(node: &mut Map<String, Value>, path: &[String]) {
    match path.split_first() {
        None => {
            node.insert(".".into(), json!({}));
        }
        Some((first, rest)) => {
            if let Value::Object(child) = node.entry(first.clone()).or_insert_with(|| json!({})) {
                insert_path(child, rest);
            }
        }
    }
}

/// A node that holds only itself is written `{}`, not `{".": {}}`; a node
/// that holds itself and children lists `"."` first.
fn collapse_leaves(map: &mut Map<String, Value>) {
    let owned = map.remove(".").is_some();
    for child in map.values_mut() {
        if let Value::Object(child) = child {
            collapse_leaves(child);
        }
    }
    if owned && !map.is_empty() {
        let children = std::mem::take(map);
        map.insert(".".into(), json!({}));
        map.extend(children);
    }
}

fn parse_fields_v1(tree: &Value, prefix: &mut Path, out: &mut FieldSet) -> Option<()> {
    let map = tree.as_object()?;
    if map.is_empty() && !prefix.is_empty() {
        out.insert(prefix.clone());
    }
    for (key, child) in map {
        if key == "." {
            if !prefix.is_empty() {
                out.insert(prefix.clone());
            }
            continue;
        }
        if !(key.starts_with("f:")
            || key.starts_with("k:")
            || key.starts_with("v:")
            || key.starts_with("i:"))
        {
            return None;
        }
        prefix.push(key.clone());
        let parsed = parse_fields_v1(child, prefix, out);
        prefix.pop();
        parsed?;
    }
    Some(())
}

/// A path in fieldpath notation: `.spec.ports[port=80,protocol="TCP"].name`,
/// `.metadata.finalizers[="x"]`.
fn render_field_path(path: &[String]) -> String {
    let mut out = String::new();
    for element in path {
        if let Some(name) = element.strip_prefix("f:") {
            out.push('.');
            out.push_str(name);
        } else if let Some(key) = element.strip_prefix("k:") {
            let fields: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
            let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(value) = element.strip_prefix("v:") {
            out.push_str(&format!("[={value}]"));
        } else {
            out.push_str(&format!("[{element}]"));
        }
    }
    out
}

/// A path as `FieldError.field` spells it, for errors found before merging.
fn dotted(path: &[String]) -> String {
    render_field_path(path).trim_start_matches('.').to_string()
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conflict with {}: {}", self.owner(), self.field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::Untyped;

    struct Containers;
    impl TypeInfo for Containers {
        fn list_type(&self, path: &[&str]) -> ListType {
            match path {
                ["spec", "containers"] => ListType::Map(vec!["name".into()]),
                ["spec", "tags"] => ListType::Set,
                _ => ListType::Atomic,
            }
        }
    }

    fn mgr(name: &str, operation: Operation) -> Manager<'_> {
        Manager {
            name,
            operation,
            subresource: None,
            api_version: "stable.example.com/v1",
            time: "2026-11-24T00:00:00Z",
        }
    }

    fn cfg(spec: Value) -> Value {
        json!({"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "a"}, "spec": spec})
    }

    #[test]
    fn apply_create_records_fields_v1() {
        let obj = apply(
            None,
            &cfg(json!({"image": "x", "cron": "* * * * *"})),
            &mgr("kubectl", Operation::Apply),
            false,
            &Untyped,
        )
        .unwrap();
        let mf = &obj["metadata"]["managedFields"][0];
        assert_eq!(mf["manager"], "kubectl");
        assert_eq!(mf["operation"], "Apply");
        assert_eq!(mf["fieldsType"], "FieldsV1");
        assert_eq!(
            mf["fieldsV1"],
            json!({"f:spec": {"f:cron": {}, "f:image": {}}})
        );
        assert_eq!(obj["spec"]["image"], "x");
    }

    #[test]
    fn conflicting_apply_is_refused_unless_forced() {
        let obj = apply(
            None,
            &cfg(json!({"image": "x"})),
            &mgr("a", Operation::Apply),
            false,
            &Untyped,
        )
        .unwrap();
        let err = apply(
            Some(&obj),
            &cfg(json!({"image": "y"})),
            &mgr("b", Operation::Apply),
            false,
            &Untyped,
        )
        .unwrap_err();
        let ApplyError::Conflicts(conflicts) = err else {
            panic!("expected conflicts")
        };
        assert_eq!(conflicts[0].field, ".spec.image");
        assert_eq!(
            conflict_message(&conflicts),
            "Apply failed with 1 conflict: conflict with \"a\": .spec.image"
        );
        let forced = apply(
            Some(&obj),
            &cfg(json!({"image": "y"})),
            &mgr("b", Operation::Apply),
            true,
            &Untyped,
        )
        .unwrap();
        assert_eq!(forced["spec"]["image"], "y");
        let managers: Vec<&str> = forced["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["manager"].as_str().unwrap())
            .collect();
        assert_eq!(managers, vec!["b"]);
    }

    #[test]
    fn equal_values_are_shared_without_conflict() {
        let obj = apply(
            None,
            &cfg(json!({"image": "x"})),
            &mgr("a", Operation::Apply),
            false,
            &Untyped,
        )
        .unwrap();
        let both = apply(
            Some(&obj),
            &cfg(json!({"image": "x"})),
            &mgr("b", Operation::Apply),
            false,
            &Untyped,
        )
        .unwrap();
        assert_eq!(
            both["metadata"]["managedFields"].as_array().unwrap().len(),
            2
        );
        // a drops the field, b still holds it: it stays.
        let after = apply(
            Some(&both),
            &cfg(json!({})),
            &mgr("a", Operation::Apply),
            false,
            &Untyped,
        )
        .unwrap();
        assert_eq!(after["spec"]["image"], "x");
    }

    #[test]
    fn dropped_fields_owned_alone_are_removed() {
        let obj = apply(
            None,
            &cfg(json!({"image": "x", "replicas": 2})),
            &mgr("a", Operation::Apply),
            false,
            &Untyped,
        )
        .unwrap();
        let after = apply(
            Some(&obj),
            &cfg(json!({"image": "x"})),
            &mgr("a", Operation::Apply),
            false,
            &Untyped,
        )
        .unwrap();
        assert_eq!(after["spec"], json!({"image": "x"}));
    }

    #[test]
    fn update_manager_conflict_names_version_and_time() {
        let mut created = cfg(json!({"image": "x"}));
        track_update(
            None,
            &mut created,
            &mgr("kubectl-client-side-apply", Operation::Update),
            &Untyped,
        );
        let err = apply(
            Some(&created),
            &cfg(json!({"image": "y"})),
            &mgr("kubectl", Operation::Apply),
            false,
            &Untyped,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using stable.example.com/v1 at 2026-11-24T00:00:00Z: .spec.image"
        );
    }

    #[test]
    fn update_takes_changed_fields_from_others() {
        let obj = apply(
            None,
            &cfg(json!({"image": "x", "cron": "c"})),
            &mgr("a", Operation::Apply),
            false,
            &Untyped,
        )
        .unwrap();
        let mut new = obj.clone();
        new["spec"]["image"] = json!("z");
        track_update(
            Some(&obj),
            &mut new,
            &mgr("editor", Operation::Update),
            &Untyped,
        );
        let mf = new["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(mf[0]["fieldsV1"], json!({"f:spec": {"f:cron": {}}}));
        assert_eq!(mf[1]["manager"], "editor");
        assert_eq!(mf[1]["fieldsV1"], json!({"f:spec": {"f:image": {}}}));
    }

    #[test]
    fn map_lists_merge_by_key_and_own_items() {
        let a = cfg(json!({"containers": [{"name": "web", "image": "nginx"}], "tags": ["a"]}));
        let obj = apply(None, &a, &mgr("a", Operation::Apply), false, &Containers).unwrap();
        assert_eq!(
            obj["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}}, "f:tags": {"v:\"a\"": {}}}})
        );
        let b = cfg(json!({"containers": [{"name": "sidecar", "image": "envoy"}], "tags": ["b"]}));
        let merged = apply(
            Some(&obj),
            &b,
            &mgr("b", Operation::Apply),
            false,
            &Containers,
        )
        .unwrap();
        assert_eq!(merged["spec"]["containers"].as_array().unwrap().len(), 2);
        assert_eq!(merged["spec"]["tags"], json!(["a", "b"]));
        let c = cfg(json!({"containers": [{"name": "web", "image": "httpd"}]}));
        let ApplyError::Conflicts(conflicts) = apply(
            Some(&merged),
            &c,
            &mgr("c", Operation::Apply),
            false,
            &Containers,
        )
        .unwrap_err() else {
            panic!("expected conflicts")
        };
        assert_eq!(conflicts[0].field, ".spec.containers[name=\"web\"].image");
        // a drops its container; b's stays.
        let dropped = apply(
            Some(&merged),
            &cfg(json!({"tags": ["a"]})),
            &mgr("a", Operation::Apply),
            false,
            &Containers,
        )
        .unwrap();
        assert_eq!(
            dropped["spec"]["containers"],
            json!([{"name": "sidecar", "image": "envoy"}])
        );
    }

    #[test]
    fn map_list_item_without_key_is_invalid() {
        let bad = cfg(json!({"containers": [{"image": "nginx"}]}));
        let err = apply(None, &bad, &mgr("a", Operation::Apply), false, &Containers).unwrap_err();
        let ApplyError::Invalid(e) = err else {
            panic!("expected invalid")
        };
        assert_eq!(e.field, "spec.containers[0]");
    }

    #[test]
    fn fields_v1_round_trips() {
        let tree =
            json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:a": {}}});
        let mut set = FieldSet::new();
        parse_fields_v1(&tree, &mut Vec::new(), &mut set).unwrap();
        assert_eq!(fields_v1(&set), tree);
    }

    #[test]
    fn untracked_metadata_is_not_owned() {
        let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "d", "uid": "u", "labels": {"x": "1"}}, "data": {"k": "v"}});
        track_update(
            None,
            &mut obj,
            &mgr("kubectl-create", Operation::Update),
            &Untyped,
        );
        assert_eq!(
            obj["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:x": {}}}})
        );
    }

    #[test]
    fn first_apply_over_unmanaged_object_meets_conflicts() {
        let live = cfg(json!({"image": "x"}));
        let err = apply(
            Some(&live),
            &cfg(json!({"image": "y"})),
            &mgr("a", Operation::Apply),
            false,
            &Untyped,
        )
        .unwrap_err();
        assert!(err.to_string().contains(BEFORE_FIRST_APPLY));
    }
}

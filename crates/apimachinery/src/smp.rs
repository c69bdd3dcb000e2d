//! Strategic merge patch (`application/strategic-merge-patch+json`) for the
//! built-in kinds.
//!
//! A strategic merge patch is a JSON merge patch in which some lists merge by
//! a key instead of being replaced, steered by `$patch`, `$retainKeys`,
//! `$setElementOrder/<field>` and `$deleteFromPrimitiveList/<field>`
//! directives. Which lists merge, and by which key, comes from the type; the
//! server describes its built-in types through [`PatchMeta`].

use serde_json::{Map, Value};

/// How a list at one path merges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeStrategy {
    /// The patch's list replaces the whole list (JSON merge patch behaviour).
    Replace,
    /// Items merge: objects by `merge_key`, primitives as a set when there is none.
    Merge { merge_key: Option<String> },
    /// Like `Merge`, and maps at this path honour `$retainKeys`.
    RetainKeys,
}

/// The patch strategy of each field of a type.
pub trait PatchMeta {
    /// The strategy at a path of field names from the root, with list items
    /// stepped over: `["metadata", "ownerReferences"]`.
    fn strategy(&self, path: &[&str]) -> MergeStrategy;
}

/// A patch that cannot be applied. The message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("the patch must be a JSON object, found {0}")]
    NotAnObject(&'static str),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// Applies `patch` to `original` and returns the result.
pub fn strategic_merge(
    original: &Value,
    patch: &Value,
    meta: &dyn PatchMeta,
) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::NotAnObject(type_name(patch)));
    };
    let empty = Map::new();
    let original = original.as_object().unwrap_or(&empty);
    match merge_map(original, patch, meta, &mut Vec::new())? {
        Some(map) => Ok(Value::Object(map)),
        None => Err(invalid(
            &[],
            "\"$patch\": \"delete\" cannot delete the whole object; send a DELETE request",
        )),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn invalid(path: &[String], message: impl Into<String>) -> PatchError {
    PatchError::Invalid {
        field: if path.is_empty() {
            "<root>".into()
        } else {
            path.join(".")
        },
        message: message.into(),
    }
}

fn strategy(meta: &dyn PatchMeta, path: &[String]) -> MergeStrategy {
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    meta.strategy(&path)
}

/// Merges a map; `None` means the patch deleted it (`$patch: delete`).
fn merge_map(
    original: &Map<String, Value>,
    patch: &Map<String, Value>,
    meta: &dyn PatchMeta,
    path: &mut Vec<String>,
) -> Result<Option<Map<String, Value>>, PatchError> {
    match patch.get(PATCH) {
        None => {}
        Some(Value::String(d)) if d == "merge" => {}
        Some(Value::String(d)) if d == "delete" => return Ok(None),
        Some(Value::String(d)) if d == "replace" => return strip(patch, path).map(Some),
        Some(other) => {
            return Err(invalid(
                path,
                format!("Unsupported value: {other}: supported values of \"$patch\": \"merge\", \"replace\", \"delete\""),
            ))
        }
    }
    let mut result = original.clone();
    for (key, value) in patch {
        if key.starts_with('$') {
            check_directive(key, value, path)?;
            continue;
        }
        if value.is_null() {
            result.remove(key);
            continue;
        }
        path.push(key.clone());
        let merged = match (result.get(key), value) {
            (Some(Value::Object(o)), Value::Object(p)) => {
                merge_map(o, p, meta, path)?.map(Value::Object)
            }
            (None, Value::Object(p)) => merge_map(&Map::new(), p, meta, path)?.map(Value::Object),
            (Some(Value::Array(o)), Value::Array(p)) => {
                Some(Value::Array(merge_list(o, p, meta, path)?))
            }
            (None, Value::Array(p)) => Some(Value::Array(merge_list(&[], p, meta, path)?)),
            (_, v) => Some(v.clone()),
        };
        path.pop();
        match merged {
            Some(v) => {
                result.insert(key.clone(), v);
            }
            None => {
                result.remove(key);
            }
        }
    }
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            let Value::Array(doomed) = value else {
                return Err(invalid(
                    path,
                    format!("{key} must be a list of values to delete"),
                ));
            };
            if let Some(Value::Array(items)) = result.get_mut(field) {
                items.retain(|item| !doomed.contains(item));
            }
        }
    }
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix(SET_ELEMENT_ORDER) {
            let Value::Array(order) = value else {
                return Err(invalid(path, format!("{key} must be a list")));
            };
            path.push(field.to_string());
            let merge_key = match strategy(meta, path) {
                MergeStrategy::Merge { merge_key } => merge_key,
                _ => None,
            };
            path.pop();
            if let Some(Value::Array(items)) = result.get_mut(field) {
                reorder(items, order, merge_key.as_deref());
            }
        }
    }
    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let Value::Array(keep) = retain else {
            return Err(invalid(path, "$retainKeys must be a list of field names"));
        };
        result.retain(|k, _| keep.iter().any(|kept| kept.as_str() == Some(k.as_str())));
    }
    Ok(Some(result))
}

fn check_directive(key: &str, value: &Value, path: &[String]) -> Result<(), PatchError> {
    if key == PATCH || key == RETAIN_KEYS {
        return Ok(());
    }
    if key.starts_with(SET_ELEMENT_ORDER) || key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
        return match value {
            Value::Array(_) => Ok(()),
            _ => Err(invalid(path, format!("{key} must be a list"))),
        };
    }
    Err(invalid(
        path,
        format!("unknown patch directive {key:?}: supported directives are $patch, $retainKeys, $setElementOrder/<field> and $deleteFromPrimitiveList/<field>"),
    ))
}

/// A patch value with its directives removed, for places it is taken whole.
fn strip(
    patch: &Map<String, Value>,
    path: &mut Vec<String>,
) -> Result<Map<String, Value>, PatchError> {
    let mut out = Map::new();
    for (key, value) in patch {
        if key.starts_with('$') {
            continue;
        }
        path.push(key.clone());
        let v = match value {
            Value::Object(m) => Value::Object(strip(m, path)?),
            other => other.clone(),
        };
        path.pop();
        out.insert(key.clone(), v);
    }
    Ok(out)
}

fn is_replace_marker(item: &Value) -> bool {
    item.as_object()
        .is_some_and(|m| m.len() == 1 && m.get(PATCH).and_then(Value::as_str) == Some("replace"))
}

fn merge_list(
    original: &[Value],
    patch: &[Value],
    meta: &dyn PatchMeta,
    path: &mut Vec<String>,
) -> Result<Vec<Value>, PatchError> {
    let strategy = strategy(meta, path);
    let replace = strategy == MergeStrategy::Replace || patch.iter().any(is_replace_marker);
    if replace {
        let mut out = Vec::new();
        for item in patch.iter().filter(|i| !is_replace_marker(i)) {
            out.push(match item {
                Value::Object(m) => Value::Object(strip(m, path)?),
                other => other.clone(),
            });
        }
        return Ok(out);
    }
    let merge_key = match strategy {
        MergeStrategy::Merge { merge_key } => merge_key,
        _ => None,
    };
    let mut result = original.to_vec();
    let Some(key) = merge_key else {
        for item in patch {
            if !result.contains(item) {
                result.push(item.clone());
            }
        }
        return Ok(result);
    };
    for (i, item) in patch.iter().enumerate() {
        let Value::Object(fields) = item else {
            return Err(invalid(
                path,
                format!("item {i} must be an object, since this list merges by {key:?}"),
            ));
        };
        let Some(id) = fields.get(&key) else {
            return Err(invalid(
                path,
                format!("item {i} does not contain the declared merge key {key:?}"),
            ));
        };
        let position = result.iter().position(|o| o.get(&key) == Some(id));
        let existing = position
            .and_then(|p| result[p].as_object().cloned())
            .unwrap_or_default();
        match (merge_map(&existing, fields, meta, path)?, position) {
            (Some(merged), Some(p)) => result[p] = Value::Object(merged),
            (Some(merged), None) => result.push(Value::Object(merged)),
            (None, Some(p)) => {
                result.remove(p);
            }
            (None, None) => {}
        }
    }
    Ok(result)
}

/// Orders `items` as `order` lists them; items it does not name keep their
/// relative order after the named ones.
fn reorder(items: &mut [Value], order: &[Value], merge_key: Option<&str>) {
    let rank = |item: &Value| -> usize {
        order
            .iter()
            .position(|o| match merge_key {
                Some(k) => o.get(k).is_some() && o.get(k) == item.get(k),
                None => o == item,
            })
            .unwrap_or(usize::MAX)
    };
    items.sort_by_key(rank);
}

/// The patch strategies of the built-in kinds' fields, as their Go types
/// declare them with `patchStrategy` and `patchMergeKey`.
struct Builtin {
    kind: String,
}

pub fn builtin_patch_meta(kind: &str) -> Box<dyn PatchMeta + Send + Sync> {
    Box::new(Builtin {
        kind: kind.to_string(),
    })
}

impl PatchMeta for Builtin {
    fn strategy(&self, path: &[&str]) -> MergeStrategy {
        let keyed = |k: &str| MergeStrategy::Merge {
            merge_key: Some(k.to_string()),
        };
        match (self.kind.as_str(), path) {
            (_, ["metadata", "ownerReferences"]) => keyed("uid"),
            (_, ["metadata", "finalizers"]) => MergeStrategy::Merge { merge_key: None },
            ("Namespace", ["spec", "finalizers"]) => MergeStrategy::Merge { merge_key: None },
            ("ServiceAccount", ["secrets"]) => keyed("name"),
            ("ServiceAccount", ["imagePullSecrets"]) => keyed("name"),
            _ => MergeStrategy::Replace,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cm() -> Value {
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": "a", "labels": {"app": "web", "tier": "front"},
                "finalizers": ["a", "b"],
                "ownerReferences": [
                    {"uid": "1", "name": "one", "kind": "X", "apiVersion": "v1"},
                    {"uid": "2", "name": "two", "kind": "X", "apiVersion": "v1"}
                ]
            },
            "data": {"k": "v"}
        })
    }

    fn patch(p: Value) -> Result<Value, PatchError> {
        strategic_merge(&cm(), &p, builtin_patch_meta("ConfigMap").as_ref())
    }

    #[test]
    fn maps_merge_and_null_deletes() {
        let out =
            patch(json!({"metadata": {"labels": {"tier": null, "env": "qa"}}, "data": {"x": "y"}}))
                .unwrap();
        assert_eq!(
            out["metadata"]["labels"],
            json!({"app": "web", "env": "qa"})
        );
        assert_eq!(out["data"], json!({"k": "v", "x": "y"}));
    }

    #[test]
    fn finalizers_merge_as_a_set() {
        let out = patch(json!({"metadata": {"finalizers": ["b", "c"]}})).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
    }

    #[test]
    fn owner_references_merge_by_uid() {
        let out = patch(json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "renamed"}, {"uid": "3", "name": "three"}]}}))
            .unwrap();
        let refs = out["metadata"]["ownerReferences"].as_array().unwrap();
        assert_eq!(refs.len(), 3);
        assert_eq!(refs[1]["name"], "renamed");
        assert_eq!(refs[1]["kind"], "X");
        let out =
            patch(json!({"metadata": {"ownerReferences": [{"uid": "1", "$patch": "delete"}]}}))
                .unwrap();
        assert_eq!(
            out["metadata"]["ownerReferences"].as_array().unwrap().len(),
            1
        );
    }

    #[test]
    fn merge_key_is_required() {
        let err = patch(json!({"metadata": {"ownerReferences": [{"name": "x"}]}})).unwrap_err();
        assert!(
            err.to_string().contains("metadata.ownerReferences"),
            "{err}"
        );
    }

    #[test]
    fn delete_from_primitive_list() {
        let out =
            patch(json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
    }

    #[test]
    fn set_element_order() {
        let out = patch(json!({"metadata": {"$setElementOrder/finalizers": ["b", "a"]}})).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "a"]));
        let out = patch(
            json!({"metadata": {"$setElementOrder/ownerReferences": [{"uid": "2"}, {"uid": "1"}]}}),
        )
        .unwrap();
        assert_eq!(out["metadata"]["ownerReferences"][0]["uid"], "2");
    }

    #[test]
    fn retain_keys() {
        let out = patch(json!({"data": {"$retainKeys": ["n"], "n": "1"}})).unwrap();
        assert_eq!(out["data"], json!({"n": "1"}));
    }

    #[test]
    fn replace_directives() {
        let out =
            patch(json!({"metadata": {"labels": {"$patch": "replace", "only": "this"}}})).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"only": "this"}));
        let out = patch(json!({"metadata": {"finalizers": [{"$patch": "replace"}, "z"]}})).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["z"]));
        let out = patch(json!({"data": {"$patch": "delete"}})).unwrap();
        assert!(out.get("data").is_none());
    }

    #[test]
    fn other_lists_are_replaced() {
        let base = json!({"spec": {"finalizers": ["kubernetes"]}, "x": [1, 2]});
        let meta = builtin_patch_meta("Namespace");
        let out = strategic_merge(
            &base,
            &json!({"x": [3], "spec": {"finalizers": ["other"]}}),
            meta.as_ref(),
        )
        .unwrap();
        assert_eq!(out["x"], json!([3]));
        assert_eq!(out["spec"]["finalizers"], json!(["kubernetes", "other"]));
    }

    #[test]
    fn bad_directives_are_errors() {
        assert!(patch(json!({"data": {"$patch": "explode"}})).is_err());
        assert!(patch(json!({"$unknown": 1})).is_err());
        assert!(patch(json!({"$patch": "delete"})).is_err());
        assert!(
            strategic_merge(&cm(), &json!([1]), builtin_patch_meta("ConfigMap").as_ref()).is_err()
        );
    }

    #[test]
    fn service_account_secrets_merge_by_name() {
        let base = json!({"secrets": [{"name": "a"}]});
        let meta = builtin_patch_meta("ServiceAccount");
        let out =
            strategic_merge(&base, &json!({"secrets": [{"name": "b"}]}), meta.as_ref()).unwrap();
        assert_eq!(out["secrets"], json!([{"name": "a"}, {"name": "b"}]));
    }
}

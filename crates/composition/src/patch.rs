//! Patches between a composite resource and its composed resources:
//! `FromCompositeFieldPath`, `ToCompositeFieldPath`, `CombineFromComposite`,
//! `CombineToComposite` and `PatchSet`, with `policy.fromFieldPath`
//! (Optional / Required) and the merge policies.

use serde_json::Value;

use crate::fieldpath;
use crate::gofmt;
use crate::transform;

/// Which way a patch copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the composite into a composed resource.
    ToComposed,
    /// From an observed composed resource back into the composite.
    ToComposite,
}

/// The patch's type, defaulting as Crossplane does.
pub fn kind(p: &Value) -> &str {
    p.get("type")
        .and_then(Value::as_str)
        .unwrap_or("FromCompositeFieldPath")
}

/// A short description for error messages: type and paths.
pub fn describe(p: &Value) -> String {
    let from = p
        .get("fromFieldPath")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            p.pointer("/combine/variables")
                .and_then(Value::as_array)
                .map(|vars| {
                    vars.iter()
                        .filter_map(|v| v.get("fromFieldPath").and_then(Value::as_str))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
        })
        .unwrap_or_default();
    let to = p
        .get("toFieldPath")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match kind(p) {
        "PatchSet" => format!(
            "PatchSet {}",
            p.get("patchSetName").and_then(Value::as_str).unwrap_or("?")
        ),
        k if to.is_empty() || to == from => format!("{k} {from}"),
        k => format!("{k} {from} -> {to}"),
    }
}

/// Replaces PatchSet references with the patches they name.
pub fn expand(patches: &[Value], patch_sets: &[Value]) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for (i, p) in patches.iter().enumerate() {
        if kind(p) != "PatchSet" {
            out.push(p.clone());
            continue;
        }
        let name = p
            .get("patchSetName")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("patch {i} (PatchSet): patchSetName is required"))?;
        let set = patch_sets
            .iter()
            .find(|s| s.get("name").and_then(Value::as_str) == Some(name))
            .ok_or_else(|| {
                format!("patch {i} (PatchSet {name}): no patchSet named {name:?} in spec.patchSets")
            })?;
        let inner = set
            .get("patches")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if inner.iter().any(|p| kind(p) == "PatchSet") {
            return Err(format!(
                "patch {i} (PatchSet {name}): a patchSet may not refer to another patchSet"
            ));
        }
        out.extend(inner);
    }
    Ok(out)
}

/// Whether a patch copies in `direction`.
pub fn direction(p: &Value) -> Option<Direction> {
    match kind(p) {
        "FromCompositeFieldPath" | "CombineFromComposite" => Some(Direction::ToComposed),
        "ToCompositeFieldPath" | "CombineToComposite" => Some(Direction::ToComposite),
        _ => None,
    }
}

fn required(p: &Value) -> bool {
    p.pointer("/policy/fromFieldPath").and_then(Value::as_str) == Some("Required")
}

/// Applies one patch, reading from `from` and writing into `to`.
pub fn apply(p: &Value, from: &Value, to: &mut Value) -> Result<(), String> {
    let value = match kind(p) {
        "FromCompositeFieldPath" | "ToCompositeFieldPath" => {
            let path = p
                .get("fromFieldPath")
                .and_then(Value::as_str)
                .ok_or("fromFieldPath is required")?;
            match fieldpath::get(from, path).map_err(|e| e.to_string())? {
                Some(v) => v.clone(),
                None if required(p) => return Err(format!("required field {path} is not set")),
                None => return Ok(()),
            }
        }
        "CombineFromComposite" | "CombineToComposite" => {
            let combine = p.get("combine").ok_or("combine is required")?;
            let variables = combine
                .get("variables")
                .and_then(Value::as_array)
                .filter(|v| !v.is_empty())
                .ok_or("combine.variables must list at least one fromFieldPath")?;
            let mut values = Vec::with_capacity(variables.len());
            for (i, var) in variables.iter().enumerate() {
                let path = var
                    .get("fromFieldPath")
                    .and_then(Value::as_str)
                    .ok_or(format!("combine.variables[{i}].fromFieldPath is required"))?;
                match fieldpath::get(from, path).map_err(|e| e.to_string())? {
                    Some(v) => values.push(v.clone()),
                    None if required(p) => return Err(format!("required field {path} is not set")),
                    // Crossplane skips a combine when any input is missing.
                    None => return Ok(()),
                }
            }
            match combine.get("strategy").and_then(Value::as_str).unwrap_or("string") {
                "string" => {
                    let fmt = combine
                        .pointer("/string/fmt")
                        .and_then(Value::as_str)
                        .ok_or("combine.string.fmt is required for the string strategy")?;
                    Value::String(gofmt::sprintf(fmt, &values))
                }
                other => return Err(format!("unknown combine strategy {other:?}; expected string")),
            }
        }
        "PatchSet" => return Err("PatchSet patches must be expanded before they are applied".into()),
        other => {
            return Err(format!(
                "unknown patch type {other:?}; expected FromCompositeFieldPath, ToCompositeFieldPath, CombineFromComposite, CombineToComposite or PatchSet"
            ))
        }
    };
    let transforms = p
        .get("transforms")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let value = transform::apply_all(&transforms, value)?;
    let to_path = p
        .get("toFieldPath")
        .and_then(Value::as_str)
        .or_else(|| p.get("fromFieldPath").and_then(Value::as_str))
        .ok_or("toFieldPath is required")?;
    write(p, to, to_path, value)
}

/// The merge behaviour a patch asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Merge {
    objects: bool,
    keep_existing: bool,
    append_arrays: bool,
}

fn merge_policy(p: &Value) -> Result<Merge, String> {
    if let Some(policy) = p.pointer("/policy/toFieldPath").and_then(Value::as_str) {
        return Ok(match policy {
            "Replace" => Merge { objects: false, keep_existing: false, append_arrays: false },
            "MergeObjects" => Merge { objects: true, keep_existing: true, append_arrays: false },
            "MergeObjectsAppendArrays" => Merge { objects: true, keep_existing: true, append_arrays: true },
            "ForceMergeObjects" => Merge { objects: true, keep_existing: false, append_arrays: false },
            "ForceMergeObjectsAppendArrays" => Merge { objects: true, keep_existing: false, append_arrays: true },
            other => {
                return Err(format!(
                    "unknown policy.toFieldPath {other:?}; expected Replace, MergeObjects, MergeObjectsAppendArrays, ForceMergeObjects or ForceMergeObjectsAppendArrays"
                ))
            }
        });
    }
    if let Some(options) = p.pointer("/policy/mergeOptions") {
        return Ok(Merge {
            objects: true,
            keep_existing: options
                .get("keepMapValues")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            append_arrays: options
                .get("appendSlice")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        });
    }
    Ok(Merge {
        objects: false,
        keep_existing: false,
        append_arrays: false,
    })
}

fn merge_into(dst: &mut Value, src: Value, m: Merge) {
    match (dst, src) {
        (Value::Object(d), Value::Object(s)) => {
            for (k, v) in s {
                match d.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        merge_into(existing, v, m)
                    }
                    Some(existing) if existing.is_array() && v.is_array() && m.append_arrays => {
                        merge_into(existing, v, m)
                    }
                    Some(_) if m.keep_existing => {}
                    _ => {
                        d.insert(k, v);
                    }
                }
            }
        }
        (Value::Array(d), Value::Array(s)) if m.append_arrays => {
            for item in s {
                if !d.contains(&item) {
                    d.push(item);
                }
            }
        }
        (dst, src) => {
            if !m.keep_existing || dst.is_null() {
                *dst = src;
            }
        }
    }
}

fn write(p: &Value, to: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let m = merge_policy(p)?;
    if !m.objects {
        return fieldpath::set(to, path, value).map_err(|e| e.to_string());
    }
    let mut current = fieldpath::get(to, path)
        .map_err(|e| e.to_string())?
        .cloned()
        .unwrap_or(Value::Null);
    if current.is_null() {
        current = value;
    } else {
        merge_into(&mut current, value, m);
    }
    fieldpath::set(to, path, current).map_err(|e| e.to_string())
}

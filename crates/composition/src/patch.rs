//! Patches between a composite resource and its composed resources:
//! `FromCompositeFieldPath`, `ToCompositeFieldPath`, `CombineFromComposite`,
//! `CombineToComposite` and `PatchSet`, with `policy.fromFieldPath`
//! (Optional / Required) and the merge policies.
//!
//! As in Crossplane v1.20: a `toFieldPath` with `[*]` writes every element
//! or key the destination already has (and fails when it has none); a
//! `fromFieldPath` is read without expansion, so `*` there is a field name.

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
    // Crossplane refuses a nested PatchSet in any patchSet, used or not.
    for set in patch_sets {
        let nested = set
            .get("patches")
            .and_then(Value::as_array)
            .is_some_and(|ps| ps.iter().any(|p| kind(p) == "PatchSet"));
        if nested {
            let name = set.get("name").and_then(Value::as_str).unwrap_or("?");
            return Err(format!(
                "patchSet {name:?}: a patch in a PatchSet cannot be of type PatchSet"
            ));
        }
    }
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

/// Reads a patch's input. `Ok(None)` means "skip the patch": the path is
/// not there and the policy is Optional. A value that is there but null is
/// read as null, and patched as null, as Crossplane does.
fn read(p: &Value, from: &Value, path: &str) -> Result<Option<Value>, String> {
    match fieldpath::get(from, path) {
        Ok(v) => Ok(Some(v.clone())),
        Err(e) if e.is_not_found() && required(p) => {
            Err(format!("required field {path} is not set: {e}"))
        }
        Err(e) if e.is_not_found() => Ok(None),
        // A path through a value of the wrong type is an error even for an
        // optional patch: the Composition and the resource disagree.
        Err(e) => Err(e.to_string()),
    }
}

/// Applies one patch, reading from `from` and writing into `to`.
pub fn apply(p: &Value, from: &Value, to: &mut Value) -> Result<(), String> {
    let kind = kind(p);
    match kind {
        "FromCompositeFieldPath" | "ToCompositeFieldPath" => {
            let path = p
                .get("fromFieldPath")
                .and_then(Value::as_str)
                .ok_or(format!("fromFieldPath is required by type {kind}"))?;
            let Some(value) = read(p, from, path)? else {
                return Ok(());
            };
            let value = transform::apply_all(transforms(p), value)?;
            // Without a toFieldPath the patch writes the field it read.
            let to_path = p.get("toFieldPath").and_then(Value::as_str).unwrap_or(path);
            // Only a literal `[*]` asks for expansion, as in Crossplane: a
            // field named `*` written as `a.*` or `a['*']` is set as is.
            if to_path.contains("[*]") {
                write_expanded(p, to, to_path, value)
            } else {
                write(p, to, to_path, value, true)
            }
        }
        "CombineFromComposite" | "CombineToComposite" => {
            let combine = p
                .get("combine")
                .filter(|c| !c.is_null())
                .ok_or(format!("combine is required by type {kind}"))?;
            // A combine has several inputs, so nothing to default the
            // destination to.
            let to_path = p
                .get("toFieldPath")
                .and_then(Value::as_str)
                .ok_or(format!("toFieldPath is required by type {kind}"))?;
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
                match read(p, from, path)? {
                    Some(v) => values.push(v),
                    // Crossplane skips a combine when any input is missing,
                    // rather than format too few values.
                    None => return Ok(()),
                }
            }
            let value = match combine.get("strategy").and_then(Value::as_str).unwrap_or("") {
                "string" => {
                    let settings = combine
                        .get("string")
                        .filter(|s| !s.is_null())
                        .ok_or("combine strategy string requires configuration in combine.string")?;
                    let fmt = settings
                        .get("fmt")
                        .and_then(Value::as_str)
                        .ok_or("combine.string.fmt is required for the string strategy")?;
                    Value::String(gofmt::sprintf(fmt, &values))
                }
                other => return Err(format!("unknown combine strategy {other:?}; expected string")),
            };
            let value = transform::apply_all(transforms(p), value)?;
            // Crossplane writes a combine's result with no merge options
            // and never expands wildcards in its destination.
            write(p, to, to_path, value, false)
        }
        "PatchSet" => Err("PatchSet patches must be expanded before they are applied".into()),
        other => Err(format!(
            "unknown patch type {other:?}; expected FromCompositeFieldPath, ToCompositeFieldPath, CombineFromComposite, CombineToComposite or PatchSet"
        )),
    }
}

fn transforms(p: &Value) -> &[Value] {
    p.get("transforms")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// A value as it is once written to the API server and read back: Go
/// writes a float64 without a fraction as an integer, which Kubernetes
/// then decodes as an int64.
pub fn unstructured(value: Value) -> Value {
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(0.0);
            // Exactly the floats that read back as int64.
            if f.fract() == 0.0
                && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f)
            {
                Value::Number((f as i64).into())
            } else {
                Value::Number(n)
            }
        }
        Value::Array(a) => Value::Array(a.into_iter().map(unstructured).collect()),
        Value::Object(m) => {
            Value::Object(m.into_iter().map(|(k, v)| (k, unstructured(v))).collect())
        }
        other => other,
    }
}

/// Writes `value` at every path `to_path`'s wildcards expand to in `to`.
/// Only fields that already exist are written, and expanding to nothing is
/// an error: the patch would otherwise silently do nothing.
fn write_expanded(p: &Value, to: &mut Value, to_path: &str, value: Value) -> Result<(), String> {
    let paths = fieldpath::expand_wildcards(to, to_path).map_err(|e| e.to_string())?;
    if paths.is_empty() {
        return Err(format!(
            "cannot expand toFieldPath {to_path}: it matches no field of the resource"
        ));
    }
    for path in paths {
        write(p, to, &path, value.clone(), true)?;
    }
    Ok(())
}

/// The merge behaviour a patch asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Merge {
    objects: bool,
    keep_existing: bool,
    append_arrays: bool,
}

fn merge_policy(p: &Value, use_merge_options: bool) -> Result<Merge, String> {
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
    if let Some(options) = p
        .pointer("/policy/mergeOptions")
        .filter(|o| use_merge_options && !o.is_null())
    {
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

/// Writes one value at one path, merging with what is there when the
/// patch's policy asks for it (`use_merge_options` is false for combines,
/// which Crossplane writes without their merge options).
fn write(
    p: &Value,
    to: &mut Value,
    path: &str,
    value: Value,
    use_merge_options: bool,
) -> Result<(), String> {
    let value = unstructured(value);
    let m = merge_policy(p, use_merge_options)?;
    if !m.objects {
        return fieldpath::set(to, path, value).map_err(|e| e.to_string());
    }
    // Merging reads the destination first: nothing there is nothing to
    // merge with, but a path through a value of the wrong type is an error.
    let current = fieldpath::lookup(to, path)
        .map_err(|e| e.to_string())?
        .cloned()
        .unwrap_or(Value::Null);
    let merged = if current.is_null() || value.is_null() {
        value
    } else {
        let mut current = current;
        merge_into(&mut current, value, m);
        current
    };
    fieldpath::set(to, path, merged).map_err(|e| e.to_string())
}

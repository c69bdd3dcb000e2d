//! Reading and checking the standard parts of an object: metadata, names,
//! labels, owner references, and the timestamps the server stamps.

use apimachinery::{CauseType, FieldError};
use serde_json::{Map, Value};

/// Well-known finalizers and annotations the server itself acts on.
pub mod meta {
    /// Deletion waits for dependents to be deleted first.
    pub const FOREGROUND_DELETION: &str = "foregroundDeletion";
    /// Deletion orphans dependents by removing their owner references.
    pub const ORPHAN: &str = "orphan";
    /// Namespaces keep this in `spec.finalizers` until their contents are gone.
    pub const NAMESPACE_FINALIZER: &str = "kubernetes";
    /// Namespaces created on first start.
    pub const DEFAULT_NAMESPACES: [&str; 2] = ["default", "plinth-system"];
}

/// The current time as Kubernetes writes timestamps (RFC 3339, seconds, UTC).
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub fn metadata(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

/// `metadata`, created if absent. Returns `None` only when `obj` is not an object.
pub fn metadata_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let map = obj.as_object_mut()?;
    let entry = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    entry.as_object_mut()
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    metadata(obj)
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name")
}

pub fn uid(obj: &Value) -> &str {
    meta_str(obj, "uid")
}

pub fn is_deleting(obj: &Value) -> bool {
    !meta_str(obj, "deletionTimestamp").is_empty()
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    metadata(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

pub fn set_finalizers(obj: &mut Value, finalizers: &[String]) {
    if let Some(meta) = metadata_mut(obj) {
        if finalizers.is_empty() {
            meta.remove("finalizers");
        } else {
            meta.insert("finalizers".into(), Value::from(finalizers.to_vec()));
        }
    }
}

/// The revision in `metadata.resourceVersion`, if set.
pub fn resource_version(obj: &Value) -> Result<Option<u64>, FieldError> {
    let rv = meta_str(obj, "resourceVersion");
    if rv.is_empty() {
        return Ok(None);
    }
    rv.parse().map(Some).map_err(|_| {
        FieldError::new(
            CauseType::Invalid,
            "metadata.resourceVersion",
            format!("Invalid value: {rv:?}: must be a resourceVersion the server returned"),
        )
    })
}

/// Checks what the metadata a client may set means (name syntax, label and
/// annotation keys, finalizers, owner references); its shape was checked
/// against the ObjectMeta schema first. Returns every problem.
/// Which rule an object's name must follow, as upstream's name validators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// Namespaces.
    DnsLabel,
    /// Most kinds.
    DnsSubdomain,
    /// RBAC kinds (`ValidatePathSegmentName`): anything a URL path segment
    /// can hold, so `system:aggregate-to-edit` is a name.
    PathSegment,
}

pub fn validate_metadata(obj: &Value, rule: NameRule) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let Some(meta) = metadata(obj) else {
        errors.push(FieldError::new(
            CauseType::Required,
            "metadata",
            "Required value: metadata must be an object",
        ));
        return errors;
    };
    let name = meta.get("name").and_then(Value::as_str).unwrap_or("");
    if !name.is_empty() {
        let problem = match rule {
            NameRule::DnsLabel => (!crate::crd::is_dns_label(name)).then_some(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            ),
            NameRule::DnsSubdomain => (!crate::crd::is_dns_subdomain(name)).then_some(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            ),
            NameRule::PathSegment => match name {
                "." => Some("may not be '.'"),
                ".." => Some("may not be '..'"),
                _ if name.contains('/') => Some("may not contain '/'"),
                _ if name.contains('%') => Some("may not contain '%'"),
                _ => None,
            },
        };
        if let Some(what) = problem {
            errors.push(FieldError::new(
                CauseType::Invalid,
                "metadata.name",
                format!("Invalid value: {name:?}: {what}"),
            ));
        }
    }
    for field in ["labels", "annotations"] {
        // Wrong types were reported by the ObjectMeta schema already.
        let Some(map) = meta.get(field).and_then(Value::as_object) else {
            continue;
        };
        let mut total = 0;
        for (key, value) in map {
            let path = format!("metadata.{field}");
            if let Err(message) = check_qualified_name(key) {
                errors.push(FieldError::new(
                    CauseType::Invalid,
                    path.clone(),
                    format!("Invalid value: {key:?}: {message}"),
                ));
            }
            match value.as_str() {
                None => {}
                Some(s) => {
                    total += key.len() + s.len();
                    if field == "labels" {
                        if let Err(message) = check_label_value(s) {
                            errors.push(FieldError::new(
                                CauseType::Invalid,
                                path,
                                format!("Invalid value: {s:?}: {message}"),
                            ));
                        }
                    }
                }
            }
        }
        if field == "annotations" && total > 256 * 1024 {
            errors.push(FieldError::new(
                CauseType::Invalid,
                "metadata.annotations",
                "Too long: must have at most 262144 bytes",
            ));
        }
    }
    if let Some(items) = meta.get("finalizers").and_then(Value::as_array) {
        for (i, item) in items.iter().enumerate() {
            let Some(s) = item.as_str() else { continue };
            if check_qualified_name(s).is_err() {
                errors.push(FieldError::new(
                    CauseType::Invalid,
                    format!("metadata.finalizers[{i}]"),
                    format!("Invalid value: {item}: a finalizer must be a qualified name, e.g. 'example.com/my-finalizer'"),
                ));
            }
        }
    }
    if let Some(refs) = meta.get("ownerReferences").and_then(Value::as_array) {
        for (i, r) in refs.iter().enumerate() {
            for field in ["apiVersion", "kind", "name", "uid"] {
                if r.get(field)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    errors.push(FieldError::new(
                        CauseType::Required,
                        format!("metadata.ownerReferences[{i}].{field}"),
                        "Required value",
                    ));
                }
            }
        }
    }
    errors
}

/// A qualified name: an optional DNS-subdomain prefix and '/', then a name of
/// at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric.
pub fn check_qualified_name(s: &str) -> Result<(), String> {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix {
        if !crate::crd::is_dns_subdomain(p) {
            return Err("prefix part must be a lowercase RFC 1123 subdomain".into());
        }
    }
    if name.is_empty() || name.len() > 63 {
        return Err("name part must be non-empty and at most 63 characters".into());
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !edge_ok(name.chars().next())
        || !edge_ok(name.chars().last())
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character".into());
    }
    Ok(())
}

fn check_label_value(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Ok(());
    }
    check_qualified_name(s).and_then(|_| {
        if s.contains('/') {
            Err("a valid label value must not contain '/'".into())
        } else {
            Ok(())
        }
    })
}

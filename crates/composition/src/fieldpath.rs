//! Crossplane field paths: `spec.parameters.size`, `spec.ports[0]`,
//! `metadata.labels[app.kubernetes.io/name]`, `metadata.annotations['x']`.

use serde_json::{Map, Value};

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Field(String),
    Index(usize),
}

/// A path that cannot be parsed; the message says where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid field path {path:?}: {message}")]
pub struct PathError {
    pub path: String,
    pub message: String,
}

/// Parses a field path.
pub fn parse(path: &str) -> Result<Vec<Segment>, PathError> {
    let err = |message: &str| PathError {
        path: path.to_string(),
        message: message.to_string(),
    };
    let mut segments = Vec::new();
    let mut rest = path.trim();
    if rest.is_empty() {
        return Err(err("the path is empty"));
    }
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let close = after.find(']').ok_or_else(|| err("unclosed '['"))?;
            let inner = after[..close].trim();
            let unquoted = inner
                .strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')));
            match (unquoted, inner.parse::<usize>()) {
                (Some(key), _) => segments.push(Segment::Field(key.to_string())),
                (None, Ok(i)) => segments.push(Segment::Index(i)),
                (None, Err(_)) if !inner.is_empty() => {
                    segments.push(Segment::Field(inner.to_string()))
                }
                _ => return Err(err("empty brackets")),
            }
            rest = &after[close + 1..];
            rest = rest.strip_prefix('.').unwrap_or(rest);
            continue;
        }
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        let name = &rest[..end];
        if name.is_empty() {
            return Err(err("a field name is empty"));
        }
        segments.push(Segment::Field(name.to_string()));
        rest = &rest[end..];
        if let Some(after) = rest.strip_prefix('.') {
            if after.is_empty() {
                return Err(err("the path ends with '.'"));
            }
            rest = after;
        }
    }
    Ok(segments)
}

/// The value at a path, if there is one.
pub fn get<'a>(obj: &'a Value, path: &str) -> Result<Option<&'a Value>, PathError> {
    let segments = parse(path)?;
    let mut cur = obj;
    for s in &segments {
        let next = match s {
            Segment::Field(name) => cur.as_object().and_then(|m| m.get(name)),
            Segment::Index(i) => cur.as_array().and_then(|a| a.get(*i)),
        };
        match next {
            Some(v) => cur = v,
            None => return Ok(None),
        }
    }
    Ok(if cur.is_null() { None } else { Some(cur) })
}

/// Sets the value at a path, creating objects and growing arrays on the way.
pub fn set(obj: &mut Value, path: &str, value: Value) -> Result<(), PathError> {
    let segments = parse(path)?;
    let mut cur = obj;
    for (i, s) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match s {
            Segment::Field(name) => {
                if !cur.is_object() {
                    *cur = Value::Object(Map::new());
                }
                let map = cur.as_object_mut().ok_or_else(|| PathError {
                    path: path.into(),
                    message: "not an object".into(),
                })?;
                if last {
                    map.insert(name.clone(), value);
                    return Ok(());
                }
                cur = map.entry(name.clone()).or_insert(Value::Null);
            }
            Segment::Index(idx) => {
                if !cur.is_array() {
                    *cur = Value::Array(Vec::new());
                }
                let arr = cur.as_array_mut().ok_or_else(|| PathError {
                    path: path.into(),
                    message: "not an array".into(),
                })?;
                if arr.len() <= *idx {
                    arr.resize(idx + 1, Value::Null);
                }
                if last {
                    arr[*idx] = value;
                    return Ok(());
                }
                cur = &mut arr[*idx];
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_crossplane_paths() {
        assert_eq!(
            parse("metadata.labels[app.kubernetes.io/name]").unwrap(),
            vec![
                Segment::Field("metadata".into()),
                Segment::Field("labels".into()),
                Segment::Field("app.kubernetes.io/name".into())
            ]
        );
        assert_eq!(
            parse("spec.ports[1].name").unwrap(),
            vec![
                Segment::Field("spec".into()),
                Segment::Field("ports".into()),
                Segment::Index(1),
                Segment::Field("name".into())
            ]
        );
        assert_eq!(parse("a['b.c']").unwrap()[1], Segment::Field("b.c".into()));
        assert!(parse("").is_err());
        assert!(parse("a..b").is_err());
        assert!(parse("a[").is_err());
    }

    #[test]
    fn gets_and_sets() {
        let mut v = json!({"spec": {"ports": [80]}});
        assert_eq!(get(&v, "spec.ports[0]").unwrap(), Some(&json!(80)));
        assert_eq!(get(&v, "spec.missing").unwrap(), None);
        set(&mut v, "spec.forProvider.tags[2]", json!("x")).unwrap();
        assert_eq!(v["spec"]["forProvider"]["tags"], json!([null, null, "x"]));
        set(&mut v, "metadata.labels[a/b]", json!("c")).unwrap();
        assert_eq!(v["metadata"]["labels"]["a/b"], "c");
    }
}

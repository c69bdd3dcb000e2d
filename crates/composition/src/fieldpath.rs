//! Crossplane field paths: `spec.parameters.size`, `spec.ports[0]`,
//! `metadata.labels[app.kubernetes.io/name]`, `metadata.annotations['x']`,
//! `spec.containers[*].name`.
//!
//! The grammar, the reads, the writes and the wildcard expansion follow
//! crossplane-runtime's `fieldpath` package (v1.20) corner by corner,
//! because a Composition written for Crossplane must read and write the
//! same fields here, and fail where Crossplane fails:
//!
//! - Parsing is strict: no leading, trailing or doubled `.`, no `.[`, no
//!   empty, nested or unclosed brackets. A bracketed run of digits that fits
//!   in 32 bits is an array index; anything else is a field name, with
//!   surrounding quotes trimmed.
//! - Reading distinguishes "not there" ([`FieldPathError::NotFound`], which
//!   an optional patch skips) from "the object has the wrong shape"
//!   ([`FieldPathError::WrongType`], always an error).
//! - Writing creates missing objects and arrays, grows arrays, and refuses
//!   to write a field into a non-object, an index into a non-array, or an
//!   index above [`MAX_INDEX`].
//! - `*` expands over the elements or keys that exist, and only those.

use std::fmt;

use serde_json::{Map, Value};

/// The highest array index a write may use: crossplane-runtime's
/// `DefaultMaxFieldPathIndex`, which keeps a patch such as `x[99999999]`
/// from allocating a huge array.
pub const MAX_INDEX: usize = 1024;

/// The segment that stands for every element or key.
pub const WILDCARD: &str = "*";

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Field(String),
    Index(usize),
}

impl Segment {
    /// A field segment, with surrounding quotes trimmed as Crossplane does
    /// (every leading and trailing `'` or `"`, not just one matched pair).
    pub fn field(s: &str) -> Segment {
        Segment::Field(s.trim_matches(['\'', '"']).to_string())
    }

    /// An index if `s` is a base-10 number that fits in 32 bits, else a
    /// field: `[-1]`, `[1.0]` and `[4294967296]` name fields.
    pub fn field_or_index(s: &str) -> Segment {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(i) = s.parse::<u32>() {
                return Segment::Index(i as usize);
            }
        }
        Segment::field(s)
    }

    fn is_wildcard(&self) -> bool {
        matches!(self, Segment::Field(f) if f == WILDCARD)
    }
}

/// Segments written back as a path, as crossplane-runtime writes them:
/// fields containing `.` (and the wildcard) in brackets, others after `.`.
pub struct Display<'a>(pub &'a [Segment]);

impl fmt::Display for Display<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in self.0 {
            match s {
                Segment::Field(name) if name == WILDCARD || name.contains('.') => {
                    write!(f, "[{name}]")?
                }
                Segment::Field(name) if first => write!(f, "{name}")?,
                Segment::Field(name) => write!(f, ".{name}")?,
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

/// The path of `segments` as a string.
pub fn to_string(segments: &[Segment]) -> String {
    Display(segments).to_string()
}

/// A path that cannot be parsed; the message says where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid field path {path:?}: {message}")]
pub struct PathError {
    pub path: String,
    pub message: String,
}

/// Why a field path cannot be read, written or expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldPathError {
    #[error(transparent)]
    Parse(#[from] PathError),
    /// Nothing is at the path: a missing field, an index past the end, or a
    /// null on the way. Optional patches skip these.
    #[error("cannot {verb} {path}: {detail}")]
    NotFound {
        verb: &'static str,
        path: String,
        detail: String,
    },
    /// The object has the wrong shape for the path: a field of a
    /// non-object, an index of a non-array, a wildcard over a scalar.
    #[error("cannot {verb} {path}: {detail}")]
    WrongType {
        verb: &'static str,
        path: String,
        detail: String,
    },
    #[error("cannot set {path}: index {index} is greater than the maximum index {MAX_INDEX}")]
    IndexTooLarge { path: String, index: usize },
}

impl FieldPathError {
    /// Whether the path simply is not there (as opposed to unparsable or
    /// through a value of the wrong type).
    pub fn is_not_found(&self) -> bool {
        matches!(self, FieldPathError::NotFound { .. })
    }
}

// === Parsing ===

#[derive(Clone, Copy)]
enum State {
    Field,
    Period,
    LeftBracket,
    FieldOrIndex,
    RightBracket,
}

/// Parses a field path with crossplane-runtime's grammar. The empty path
/// parses to no segments, as it does there.
pub fn parse(path: &str) -> Result<Vec<Segment>, PathError> {
    let err = |what: &str, c: char, pos: usize| PathError {
        path: path.to_string(),
        message: format!("{what} '{c}' at position {pos}"),
    };
    let bytes = path.as_bytes();
    let mut segments = Vec::new();
    // Byte offsets, as Go reports positions in bytes.
    let mut pos = 0;
    let mut state = State::Field;
    loop {
        match state {
            State::Field => {
                let rest = &path[pos..];
                match rest.find(['.', '[', ']']) {
                    Some(i) if bytes[pos + i] == b']' => {
                        return Err(err("unexpected", ']', pos + i))
                    }
                    Some(i) => {
                        if i > 0 {
                            segments.push(Segment::field(&rest[..i]));
                        }
                        pos += i;
                        state = if bytes[pos] == b'.' {
                            State::Period
                        } else {
                            State::LeftBracket
                        };
                    }
                    None => {
                        if !rest.is_empty() {
                            segments.push(Segment::field(rest));
                        }
                        return Ok(segments);
                    }
                }
            }
            State::Period => {
                if pos == 0 || pos + 1 == bytes.len() {
                    return Err(err("unexpected", '.', pos));
                }
                pos += 1;
                match bytes[pos] {
                    b'.' => return Err(err("unexpected", '.', pos)),
                    b'[' => return Err(err("unexpected", '[', pos)),
                    _ => state = State::Field,
                }
            }
            State::LeftBracket => {
                if !path[pos..].contains(']') {
                    return Err(err("unterminated", '[', pos));
                }
                pos += 1;
                state = State::FieldOrIndex;
            }
            State::FieldOrIndex => {
                let rest = &path[pos..];
                let close = rest
                    .find(']')
                    .ok_or_else(|| err("unterminated", '[', pos))?;
                if close == 0 {
                    return Err(err("unexpected", ']', pos));
                }
                // Periods mean nothing inside brackets; brackets may not nest.
                if let Some(open) = rest[..close].find('[') {
                    return Err(err("unexpected", '[', pos + open));
                }
                segments.push(Segment::field_or_index(&rest[..close]));
                pos += close;
                state = State::RightBracket;
            }
            State::RightBracket => {
                pos += 1;
                state = State::Field;
            }
        }
    }
}

// === Reading ===

static NULL: Value = Value::Null;

/// The value at already parsed segments. `path` names the whole path in
/// errors; the detail names the prefix where reading stopped.
fn get_segments<'a>(
    obj: &'a Value,
    segments: &[Segment],
    verb: &'static str,
    path: &str,
) -> Result<&'a Value, FieldPathError> {
    let not_found = |detail: String| FieldPathError::NotFound {
        verb,
        path: path.to_string(),
        detail,
    };
    let wrong = |detail: String| FieldPathError::WrongType {
        verb,
        path: path.to_string(),
        detail,
    };
    let mut cur = obj;
    for (i, s) in segments.iter().enumerate() {
        let before = Display(&segments[..i]);
        cur = match (s, cur) {
            (Segment::Index(idx), Value::Array(a)) => a.get(*idx).ok_or_else(|| {
                not_found(format!("{}: no such element", Display(&segments[..=i])))
            })?,
            (Segment::Index(_), _) => return Err(wrong(format!("{before}: not an array"))),
            (Segment::Field(name), Value::Object(m)) => m
                .get(name)
                .ok_or_else(|| not_found(format!("{}: no such field", Display(&segments[..=i]))))?,
            // A null on the way counts as "not there", unlike other scalars.
            (Segment::Field(_), Value::Null) => {
                return Err(not_found(format!("{before}: expected map, got nil")))
            }
            (Segment::Field(_), _) => return Err(wrong(format!("{before}: not an object"))),
        };
    }
    // With no segments Crossplane answers nil rather than the whole object.
    Ok(if segments.is_empty() { &NULL } else { cur })
}

/// The value at a path; it may be null. A wildcard is an ordinary field
/// name here, as in Crossplane's `GetValue`: use [`expand_wildcards`].
pub fn get<'a>(obj: &'a Value, path: &str) -> Result<&'a Value, FieldPathError> {
    let segments = parse(path)?;
    get_segments(obj, &segments, "get", path)
}

/// The value at a path, or `None` where [`get`] finds nothing there.
pub fn lookup<'a>(obj: &'a Value, path: &str) -> Result<Option<&'a Value>, FieldPathError> {
    match get(obj, path) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

// === Writing ===

/// An empty container for the segment that follows: an array long enough
/// for its index, or an object.
fn container_for(next: &Segment) -> Value {
    match next {
        Segment::Index(i) => Value::Array(vec![Value::Null; i + 1]),
        Segment::Field(_) => Value::Object(Map::new()),
    }
}

/// Makes `slot` ready for `next`: a container where there was nothing, or
/// a longer array where `next` indexes past the end. A value of the wrong
/// type is left alone so the next step reports it.
fn prepare(slot: &mut Value, next: &Segment) {
    if slot.is_null() {
        *slot = container_for(next);
        return;
    }
    if let (Segment::Index(i), Value::Array(a)) = (next, slot) {
        if a.len() <= *i {
            a.resize(i + 1, Value::Null);
        }
    }
}

/// Sets the value at a path, creating objects and growing arrays on the
/// way, as Crossplane's `SetValue` does.
pub fn set(obj: &mut Value, path: &str, value: Value) -> Result<(), FieldPathError> {
    let segments = parse(path)?;
    if let Some(index) = segments.iter().find_map(|s| match s {
        Segment::Index(i) if *i > MAX_INDEX => Some(*i),
        _ => None,
    }) {
        return Err(FieldPathError::IndexTooLarge {
            path: path.to_string(),
            index,
        });
    }
    let wrong = |i: usize, what: &str| FieldPathError::WrongType {
        verb: "set",
        path: path.to_string(),
        detail: format!("{} is not {what}", Display(&segments[..i])),
    };
    let mut cur = obj;
    for (i, s) in segments.iter().enumerate() {
        let next = segments.get(i + 1);
        cur = match s {
            Segment::Index(idx) => {
                let arr = cur.as_array_mut().ok_or_else(|| wrong(i, "an array"))?;
                // The step before grew the array to fit this index; only a
                // path that starts with an index can get here short.
                let slot = arr.get_mut(*idx).ok_or_else(|| wrong(i, "an array"))?;
                match next {
                    None => {
                        *slot = value;
                        return Ok(());
                    }
                    Some(next) => {
                        prepare(slot, next);
                        slot
                    }
                }
            }
            Segment::Field(name) => {
                let map = cur.as_object_mut().ok_or_else(|| wrong(i, "an object"))?;
                match next {
                    None => {
                        map.insert(name.clone(), value);
                        return Ok(());
                    }
                    Some(next) => {
                        // Crossplane creates only absent fields: an explicit
                        // null in an object is kept, and the next step fails
                        // on it. Null array elements, though, are replaced.
                        match map.get_mut(name) {
                            Some(slot) => {
                                if !slot.is_null() {
                                    prepare(slot, next);
                                }
                            }
                            None => {
                                map.insert(name.clone(), container_for(next));
                            }
                        }
                        map.get_mut(name).ok_or_else(|| wrong(i, "an object"))?
                    }
                }
            }
        };
    }
    // No segments: nothing to set, as in Crossplane.
    Ok(())
}

// === Wildcards ===

/// Expands every `*` in a path over the array elements and object keys the
/// object has, returning concrete paths (written as Crossplane writes them).
///
/// A path that reaches something missing expands to nothing; a wildcard
/// over null is "not found"; a wildcard over a scalar, or a read through a
/// value of the wrong type, is an error.
pub fn expand_wildcards(obj: &Value, path: &str) -> Result<Vec<String>, FieldPathError> {
    let segments = parse(path)?;
    let mut out = Vec::new();
    expand(obj, segments, 0, path, &mut out)?;
    Ok(out.iter().map(|s| to_string(s)).collect())
}

/// Expands the wildcards at or after `from`. Segments before it were
/// substituted already: a key that is itself `*` is that key, not another
/// wildcard. (crossplane-runtime rescans from the start and recurses
/// forever on such a key; the fuzz run found it here.)
fn expand(
    obj: &Value,
    segments: Vec<Segment>,
    from: usize,
    path: &str,
    out: &mut Vec<Vec<Segment>>,
) -> Result<(), FieldPathError> {
    let mut cur = obj;
    for (i, segment) in segments.iter().enumerate() {
        if i >= from && segment.is_wildcard() {
            let with = |s: Segment| {
                let mut expanded = segments.clone();
                expanded[i] = s;
                expanded
            };
            match cur {
                Value::Array(a) => {
                    for ix in 0..a.len() {
                        expand(
                            obj,
                            with(Segment::field_or_index(&ix.to_string())),
                            i + 1,
                            path,
                            out,
                        )?;
                    }
                }
                Value::Object(m) => {
                    for k in m.keys() {
                        // Crossplane builds the key segment with its quote
                        // trimming, so `'k'` expands to `k`.
                        expand(obj, with(Segment::field(k)), i + 1, path, out)?;
                    }
                }
                Value::Null => {
                    return Err(FieldPathError::NotFound {
                        verb: "expand wildcards in",
                        path: path.to_string(),
                        detail: format!("wildcard field {} is null", Display(&segments[..i])),
                    })
                }
                _ => {
                    return Err(FieldPathError::WrongType {
                        verb: "expand wildcards in",
                        path: path.to_string(),
                        detail: format!(
                            "{}: a wildcard needs an array or an object",
                            Display(&segments[..i])
                        ),
                    })
                }
            }
            return Ok(());
        }
        cur = match get_segments(obj, &segments[..=i], "expand wildcards in", path) {
            Ok(v) => v,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
    }
    out.push(segments);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    #[test]
    fn parses_crossplane_paths() {
        assert_eq!(
            parse("metadata.labels[app.kubernetes.io/name]").ok(),
            Some(vec![
                Segment::Field("metadata".into()),
                Segment::Field("labels".into()),
                Segment::Field("app.kubernetes.io/name".into())
            ])
        );
        assert_eq!(
            parse("spec.ports[1].name").ok(),
            Some(vec![
                Segment::Field("spec".into()),
                Segment::Field("ports".into()),
                Segment::Index(1),
                Segment::Field("name".into())
            ])
        );
        assert_eq!(
            parse("a['b.c']").ok().and_then(|s| s.get(1).cloned()),
            Some(Segment::Field("b.c".into()))
        );
        // crossplane-runtime lexes the empty path to no segments, no error.
        assert_eq!(parse("").ok(), Some(vec![]));
        assert!(parse("a..b").is_err());
        assert!(parse("a[").is_err());
    }

    #[test]
    fn gets_and_sets() {
        let mut v = json!({"spec": {"ports": [80]}});
        assert_eq!(get(&v, "spec.ports[0]").ok(), Some(&json!(80)));
        assert_eq!(lookup(&v, "spec.missing").ok(), Some(None));
        assert!(set(&mut v, "spec.forProvider.tags[2]", json!("x")).is_ok());
        assert_eq!(v["spec"]["forProvider"]["tags"], json!([null, null, "x"]));
        assert!(set(&mut v, "metadata.labels[a/b]", json!("c")).is_ok());
        assert_eq!(v["metadata"]["labels"]["a/b"], "c");
    }

    #[test]
    fn a_key_named_like_the_wildcard_expands_once() {
        // Found by the long fuzz run: this recursed until the stack overflowed.
        let obj = json!({"spec": {"*": {"a": 1}, "b": {"a": 2}}});
        let mut got = expand_wildcards(&obj, "spec.*.a").expect("expands");
        got.sort();
        assert_eq!(got, vec!["spec.b.a".to_string(), "spec[*].a".to_string()]);
        assert_eq!(
            expand_wildcards(&json!({"*": 1}), "*").ok(),
            Some(vec!["[*]".to_string()])
        );
    }
}

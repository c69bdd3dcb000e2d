//! Table output: CRD `additionalPrinterColumns`, the JSONPath dialect they
//! are written in, and the ages kubectl shows.
//!
//! Kubernetes JSONPath is not RFC 9535 JSONPath (it allows `{}` around the
//! expression, `@`-relative filters and backslash-escaped dots in keys), so the
//! small subset printer columns use is parsed here by hand.

use std::time::Duration;

use serde_json::Value;

use crate::field::{CauseType, FieldError};

/// The column types a CRD may declare.
const COLUMN_TYPES: &[&str] = &["integer", "number", "string", "boolean", "date"];

/// One `additionalPrinterColumns` entry of a CRD version.
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
}

impl PrinterColumn {
    /// Reads one entry. An error's `field` is relative to the entry.
    pub fn from_crd_json(v: &Value) -> Result<PrinterColumn, FieldError> {
        let text = |name: &str| {
            v.get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let name = text("name");
        if name.is_empty() {
            return Err(FieldError::new(
                CauseType::Required,
                "name",
                "Required value: every printer column needs a name",
            ));
        }
        let type_ = text("type");
        if type_.is_empty() {
            return Err(FieldError::new(
                CauseType::Required,
                "type",
                "Required value: one of \"integer\", \"number\", \"string\", \"boolean\", \"date\"",
            ));
        }
        if !COLUMN_TYPES.contains(&type_.as_str()) {
            return Err(FieldError::new(
                CauseType::NotSupported,
                "type",
                format!("Unsupported value: {type_:?}: supported values: \"integer\", \"number\", \"string\", \"boolean\", \"date\""),
            ));
        }
        let json_path = text("jsonPath");
        if json_path.is_empty() {
            return Err(FieldError::new(
                CauseType::Required,
                "jsonPath",
                "Required value: a JSONPath such as .spec.replicas",
            ));
        }
        let priority = match v.get("priority") {
            None | Some(Value::Null) => 0,
            Some(p) => p.as_i64().filter(|p| *p >= 0).ok_or_else(|| {
                FieldError::new(
                    CauseType::Invalid,
                    "priority",
                    format!("Invalid value: {p}: must be a non-negative integer"),
                )
            })?,
        };
        Ok(PrinterColumn {
            name,
            type_,
            format: text("format"),
            description: text("description"),
            priority,
            json_path,
        })
    }
}

/// One step of a parsed JSONPath.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    AllChildren,
    Descend(String),
    Index(i64),
    Slice(Option<i64>, Option<i64>),
    Filter(Filter),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    path: Vec<Step>,
    /// `None` for an existence test, `[?(@.status)]`.
    compare: Option<(Comparison, Value)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Comparison {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A parsed Kubernetes JSONPath expression.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

impl JsonPath {
    /// Parses `.spec.replicas`, `{.status.conditions[?(@.type=="Ready")].status}`,
    /// `.metadata.labels.app\.kubernetes\.io/name`, `.items[*].name`, `['a.b']`.
    pub fn parse(s: &str) -> Result<JsonPath, String> {
        let mut text = s.trim();
        if let Some(inner) = text.strip_prefix('{') {
            text = inner
                .strip_suffix('}')
                .ok_or_else(|| format!("unclosed '{{' in {s:?}"))?
                .trim();
        }
        text = text.strip_prefix('$').unwrap_or(text);
        if text.is_empty() {
            return Err("the path is empty; write one such as .spec.replicas".into());
        }
        let mut parser = Parser { rest: text };
        let steps = parser.steps(false)?;
        if !parser.rest.is_empty() {
            return Err(format!("unexpected {:?} in {s:?}", parser.rest));
        }
        Ok(JsonPath { steps })
    }

    /// Every value the path selects, in document order.
    pub fn find<'a>(&self, obj: &'a Value) -> Vec<&'a Value> {
        evaluate(&self.steps, vec![obj])
    }
}

struct Parser<'a> {
    rest: &'a str,
}

impl Parser<'_> {
    /// Steps until the end, or, inside a filter, until a comparison or `)`.
    fn steps(&mut self, in_filter: bool) -> Result<Vec<Step>, String> {
        let mut steps = Vec::new();
        loop {
            self.rest = if in_filter {
                self.rest.trim_start()
            } else {
                self.rest
            };
            if self.rest.is_empty()
                || (in_filter && self.rest.starts_with([')', '=', '!', '<', '>']))
            {
                return Ok(steps);
            }
            if let Some(rest) = self.rest.strip_prefix("..") {
                self.rest = rest;
                steps.push(Step::Descend(self.key()?));
            } else if let Some(rest) = self.rest.strip_prefix('.') {
                self.rest = rest;
                if let Some(rest) = self.rest.strip_prefix('*') {
                    self.rest = rest;
                    steps.push(Step::AllChildren);
                } else if self.rest.starts_with('[') || self.rest.is_empty() {
                    // `.` alone or `.[0]`: the current node.
                } else {
                    steps.push(Step::Key(self.key()?));
                }
            } else if let Some(rest) = self.rest.strip_prefix('[') {
                self.rest = rest;
                steps.push(self.bracket()?);
            } else if steps.is_empty() && !in_filter {
                // A leading key without a dot, as in `spec.replicas`.
                steps.push(Step::Key(self.key()?));
            } else {
                return Err(format!("expected '.' or '[' at {:?}", self.rest));
            }
        }
    }

    fn key(&mut self) -> Result<String, String> {
        let mut key = String::new();
        let mut chars = self.rest.char_indices();
        let mut end = self.rest.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, escaped)) => key.push(escaped),
                    None => return Err("the path ends with an unfinished escape".into()),
                },
                '.' | '[' | ')' | ' ' | '=' | '!' | '<' | '>' => {
                    end = i;
                    break;
                }
                c => key.push(c),
            }
        }
        if key.is_empty() {
            return Err(format!("expected a field name at {:?}", self.rest));
        }
        self.rest = &self.rest[end..];
        Ok(key)
    }

    fn bracket(&mut self) -> Result<Step, String> {
        let rest = self.rest.trim_start();
        if let Some(rest) = rest.strip_prefix("?(") {
            self.rest = rest.trim_start();
            self.rest = self
                .rest
                .strip_prefix('@')
                .ok_or_else(|| format!("a filter must start with '@', found {:?}", self.rest))?;
            let path = self.steps(true)?;
            self.rest = self.rest.trim_start();
            let compare = if self.rest.starts_with(')') {
                None
            } else {
                let (op, len) = [
                    ("==", Comparison::Eq),
                    ("!=", Comparison::Ne),
                    ("<=", Comparison::Le),
                    (">=", Comparison::Ge),
                    ("<", Comparison::Lt),
                    (">", Comparison::Gt),
                ]
                .iter()
                .find(|(text, _)| self.rest.starts_with(text))
                .map(|(text, op)| (*op, text.len()))
                .ok_or_else(|| format!("expected a comparison at {:?}", self.rest))?;
                self.rest = self.rest[len..].trim_start();
                Some((op, self.literal()?))
            };
            self.rest = self.rest.trim_start();
            self.rest = self
                .rest
                .strip_prefix(")]")
                .ok_or_else(|| format!("expected ')]' to close the filter at {:?}", self.rest))?;
            return Ok(Step::Filter(Filter { path, compare }));
        }
        let close = rest
            .find(']')
            .ok_or_else(|| format!("unclosed '[' at {rest:?}"))?;
        let inner = rest[..close].trim();
        self.rest = &rest[close + 1..];
        if inner == "*" {
            return Ok(Step::AllChildren);
        }
        if let Some(quoted) = unquote(inner) {
            return Ok(Step::Key(quoted));
        }
        if let Some((start, end)) = inner.split_once(':') {
            let bound = |s: &str| -> Result<Option<i64>, String> {
                let s = s.trim();
                if s.is_empty() {
                    Ok(None)
                } else {
                    s.parse()
                        .map(Some)
                        .map_err(|_| format!("invalid slice bound {s:?}"))
                }
            };
            // A step after a second ':' is accepted and ignored: kubectl's
            // printer columns never use one.
            let end = end.split(':').next().unwrap_or("");
            return Ok(Step::Slice(bound(start)?, bound(end)?));
        }
        inner
            .parse()
            .map(Step::Index)
            .map_err(|_| format!("invalid array index {inner:?}"))
    }

    fn literal(&mut self) -> Result<Value, String> {
        let rest = self.rest;
        if let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') {
            let body = &rest[1..];
            let end = body
                .find(quote)
                .ok_or_else(|| format!("unclosed string at {rest:?}"))?;
            self.rest = &body[end + 1..];
            return Ok(Value::String(body[..end].to_string()));
        }
        let end = rest.find([')', ' ']).unwrap_or(rest.len());
        let token = &rest[..end];
        self.rest = &rest[end..];
        match token {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            "null" => Ok(Value::Null),
            _ => serde_json::from_str::<serde_json::Number>(token)
                .map(Value::Number)
                .map_err(|_| {
                    format!("expected a quoted string, number or boolean, found {token:?}")
                }),
        }
    }
}

fn unquote(s: &str) -> Option<String> {
    for q in ['\'', '"'] {
        if let Some(inner) = s.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return Some(inner.to_string());
        }
    }
    None
}

fn evaluate<'a>(steps: &[Step], start: Vec<&'a Value>) -> Vec<&'a Value> {
    let mut current = start;
    for step in steps {
        let mut next = Vec::new();
        for node in current {
            match step {
                Step::Key(key) => next.extend(node.get(key.as_str())),
                Step::AllChildren => match node {
                    Value::Object(map) => next.extend(map.values()),
                    Value::Array(items) => next.extend(items.iter()),
                    _ => {}
                },
                Step::Descend(key) => descend(node, key, &mut next),
                Step::Index(i) => {
                    if let Some(items) = node.as_array() {
                        let len = items.len() as i64;
                        let i = if *i < 0 { len + i } else { *i };
                        if (0..len).contains(&i) {
                            next.push(&items[i as usize]);
                        }
                    }
                }
                Step::Slice(start, end) => {
                    if let Some(items) = node.as_array() {
                        let len = items.len() as i64;
                        let clamp = |v: i64| if v < 0 { (len + v).max(0) } else { v.min(len) };
                        let from = clamp(start.unwrap_or(0));
                        let to = clamp(end.unwrap_or(len));
                        if from < to {
                            next.extend(items[from as usize..to as usize].iter());
                        }
                    }
                }
                Step::Filter(filter) => {
                    let candidates: Vec<&Value> = match node {
                        Value::Array(items) => items.iter().collect(),
                        other => vec![other],
                    };
                    next.extend(candidates.into_iter().filter(|c| filter.holds(c)));
                }
            }
        }
        current = next;
    }
    current
}

fn descend<'a>(node: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    match node {
        Value::Object(map) => {
            if let Some(v) = map.get(key) {
                out.push(v);
            }
            for v in map.values() {
                descend(v, key, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| descend(v, key, out)),
        _ => {}
    }
}

impl Filter {
    fn holds(&self, candidate: &Value) -> bool {
        let found = evaluate(&self.path, vec![candidate]);
        let Some((op, literal)) = &self.compare else {
            return !found.is_empty();
        };
        let Some(actual) = found.first() else {
            return false;
        };
        let ordering = match (actual, literal) {
            (Value::Number(a), Value::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
            (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
            (a, b) if a == &b => Some(std::cmp::Ordering::Equal),
            _ => None,
        };
        match (op, ordering) {
            (Comparison::Eq, Some(o)) => o.is_eq(),
            (Comparison::Ne, o) => o.is_none_or(|o| o.is_ne()),
            (Comparison::Lt, Some(o)) => o.is_lt(),
            (Comparison::Le, Some(o)) => o.is_le(),
            (Comparison::Gt, Some(o)) => o.is_gt(),
            (Comparison::Ge, Some(o)) => o.is_ge(),
            _ => false,
        }
    }
}

/// The Table cell for one column of one object.
pub fn cell(obj: &Value, col: &PrinterColumn, path: &JsonPath, now: jiff::Timestamp) -> Value {
    let Some(value) = path.find(obj).into_iter().next() else {
        return Value::Null;
    };
    match (col.type_.as_str(), value) {
        ("date", Value::String(ts)) => Value::String(age(ts, now)),
        (_, Value::Object(_) | Value::Array(_)) => Value::String(value.to_string()),
        _ => value.clone(),
    }
}

/// How long ago, as kubectl prints it: `45s`, `3m20s`, `5h`, `3d4h`, `2y`.
/// Follows the breakpoints of apimachinery's `duration.HumanDuration`.
pub fn human_duration(d: Duration) -> String {
    human_seconds(d.as_secs() as i64)
}

fn human_seconds(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{h}h")
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        let d = days % 365;
        return if d == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{d}d")
        };
    }
    format!("{years}y")
}

/// The age of an RFC 3339 timestamp, or `<unknown>` when there is none.
pub fn age(ts: &str, now: jiff::Timestamp) -> String {
    match ts.parse::<jiff::Timestamp>() {
        Ok(then) => human_seconds(now.as_second() - then.as_second()),
        Err(_) => "<unknown>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "metadata": {"name": "a", "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"replicas": 3, "ports": [{"port": 80}, {"port": 443}]},
            "status": {"conditions": [
                {"type": "Synced", "status": "True"},
                {"type": "Ready", "status": "False", "reason": "Creating"}
            ]}
        })
    }

    fn first(path: &str) -> Option<Value> {
        JsonPath::parse(path)
            .unwrap()
            .find(&doc())
            .first()
            .map(|v| (*v).clone())
    }

    #[test]
    fn plain_paths() {
        assert_eq!(first(".spec.replicas"), Some(json!(3)));
        assert_eq!(first("{.spec.replicas}"), Some(json!(3)));
        assert_eq!(first("$.spec.replicas"), Some(json!(3)));
        assert_eq!(first(".spec.missing"), None);
        assert_eq!(first(".spec.ports[1].port"), Some(json!(443)));
        assert_eq!(first(".spec.ports[-1].port"), Some(json!(443)));
    }

    #[test]
    fn escaped_and_quoted_keys() {
        assert_eq!(
            first(".metadata.labels.app\\.kubernetes\\.io/name"),
            Some(json!("web"))
        );
        assert_eq!(
            first(".metadata.labels['app.kubernetes.io/name']"),
            Some(json!("web"))
        );
    }

    #[test]
    fn filters() {
        assert_eq!(
            first(".status.conditions[?(@.type==\"Ready\")].status"),
            Some(json!("False"))
        );
        assert_eq!(
            first(".status.conditions[?(@.type=='Synced')].status"),
            Some(json!("True"))
        );
        assert_eq!(
            first(".status.conditions[?(@.reason)].type"),
            Some(json!("Ready"))
        );
        assert_eq!(first(".spec.ports[?(@.port > 100)].port"), Some(json!(443)));
        assert_eq!(
            first(".status.conditions[?(@.type!=\"Ready\")].type"),
            Some(json!("Synced"))
        );
    }

    #[test]
    fn wildcards_and_slices() {
        let path = JsonPath::parse(".spec.ports[*].port").unwrap();
        let d = doc();
        assert_eq!(path.find(&d), vec![&json!(80), &json!(443)]);
        let path = JsonPath::parse(".spec.ports[0:1].port").unwrap();
        assert_eq!(path.find(&d), vec![&json!(80)]);
        let path = JsonPath::parse("..port").unwrap();
        assert_eq!(path.find(&d).len(), 2);
    }

    #[test]
    fn bad_paths_are_refused() {
        for bad in [
            "",
            "{.spec",
            ".spec[",
            ".spec[abc]",
            ".a[?(@.b ~ 1)]",
            ".a[?(@.b == \"x)]",
        ] {
            assert!(JsonPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn human_durations_follow_kubectl() {
        let h = |s: u64| human_duration(Duration::from_secs(s));
        assert_eq!(h(5), "5s");
        assert_eq!(h(119), "119s");
        assert_eq!(h(200), "3m20s");
        assert_eq!(h(600), "10m");
        assert_eq!(h(3 * 3600 + 60), "3h1m");
        assert_eq!(h(10 * 3600), "10h");
        assert_eq!(h(3 * 86400 + 4 * 3600), "3d4h");
        assert_eq!(h(30 * 86400), "30d");
        assert_eq!(h(3 * 365 * 86400 + 86400), "3y1d");
        assert_eq!(h(10 * 365 * 86400), "10y");
    }

    #[test]
    fn ages_and_date_cells() {
        let now: jiff::Timestamp = "2026-11-24T12:00:00Z".parse().unwrap();
        assert_eq!(age("2026-11-24T11:59:00Z", now), "60s");
        assert_eq!(age("", now), "<unknown>");
        let col = PrinterColumn::from_crd_json(
            &json!({"name": "Created", "type": "date", "jsonPath": ".t"}),
        )
        .unwrap();
        let path = JsonPath::parse(&col.json_path).unwrap();
        assert_eq!(
            cell(&json!({"t": "2026-11-24T10:00:00Z"}), &col, &path, now),
            json!("120m")
        );
        assert_eq!(cell(&json!({}), &col, &path, now), Value::Null);
    }

    #[test]
    fn column_definitions_are_checked() {
        let err =
            PrinterColumn::from_crd_json(&json!({"name": "X", "type": "foo", "jsonPath": ".a"}))
                .unwrap_err();
        assert_eq!(err.field, "type");
        assert_eq!(err.cause, CauseType::NotSupported);
        let err =
            PrinterColumn::from_crd_json(&json!({"name": "X", "type": "string"})).unwrap_err();
        assert_eq!(err.field, "jsonPath");
        let ok = PrinterColumn::from_crd_json(
            &json!({"name": "X", "type": "integer", "jsonPath": ".a", "priority": 1}),
        )
        .unwrap();
        assert_eq!(ok.priority, 1);
    }
}

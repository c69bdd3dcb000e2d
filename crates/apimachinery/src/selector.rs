//! Label and field selectors: the `labelSelector` and `fieldSelector` query
//! parameters of list and watch, and `metav1.LabelSelector` objects.
//!
//! Parsing follows the selector grammar kube-apiserver accepts, so a selector
//! kubectl builds means the same thing here.

use serde_json::{Map, Value};

/// A selector that could not be parsed. The message names what was found and
/// what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(String);

/// How one label requirement compares.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Operator {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    fn matches<'v>(&self, label: &dyn Fn(&str) -> Option<&'v str>) -> bool {
        let value = label(&self.key);
        match self.operator {
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::Equals | Operator::In => {
                value.is_some_and(|v| self.values.iter().any(|x| x == v))
            }
            Operator::NotEquals | Operator::NotIn => {
                value.is_none_or(|v| self.values.iter().all(|x| x != v))
            }
        }
    }
}

/// A set of label requirements, all of which must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses the string form: `app=web,tier!=db,env in (a,b),!legacy`.
    pub fn parse(s: &str) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Vec::new();
        let mut lexer = Lexer::new(s);
        if lexer.peek() == Token::End {
            return Ok(LabelSelector::default());
        }
        loop {
            requirements.push(parse_requirement(&mut lexer)?);
            match lexer.next() {
                Token::End => break,
                Token::Comma => continue,
                other => return Err(found(&other, "',' or end of selector")),
            }
        }
        Ok(LabelSelector { requirements })
    }

    /// Reads a `metav1.LabelSelector`: `matchLabels` and `matchExpressions`.
    pub fn from_json(v: &Value) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Vec::new();
        if v.is_null() {
            return Ok(LabelSelector::default());
        }
        let Some(obj) = v.as_object() else {
            return Err(SelectorError(
                "a label selector must be an object with matchLabels and/or matchExpressions"
                    .into(),
            ));
        };
        if let Some(labels) = obj.get("matchLabels").filter(|v| !v.is_null()) {
            let Some(labels) = labels.as_object() else {
                return Err(SelectorError(
                    "matchLabels must be a map of label keys to values".into(),
                ));
            };
            for (key, value) in labels {
                let Some(value) = value.as_str() else {
                    return Err(SelectorError(format!(
                        "matchLabels.{key}: label values must be strings"
                    )));
                };
                validate_key(key)?;
                validate_value(value)?;
                requirements.push(Requirement {
                    key: key.clone(),
                    operator: Operator::Equals,
                    values: vec![value.to_string()],
                });
            }
        }
        if let Some(exprs) = obj.get("matchExpressions").filter(|v| !v.is_null()) {
            let Some(exprs) = exprs.as_array() else {
                return Err(SelectorError("matchExpressions must be a list".into()));
            };
            for (i, expr) in exprs.iter().enumerate() {
                let key = expr.get("key").and_then(Value::as_str).ok_or_else(|| {
                    SelectorError(format!("matchExpressions[{i}].key: Required value"))
                })?;
                validate_key(key)?;
                let values: Vec<String> = match expr.get("values") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(vals)) => vals
                        .iter()
                        .map(|v| {
                            v.as_str().map(str::to_string).ok_or_else(|| {
                                SelectorError(format!(
                                    "matchExpressions[{i}].values: values must be strings"
                                ))
                            })
                        })
                        .collect::<Result<_, _>>()?,
                    Some(_) => {
                        return Err(SelectorError(format!(
                            "matchExpressions[{i}].values must be a list"
                        )))
                    }
                };
                let operator = match expr.get("operator").and_then(Value::as_str) {
                    Some("In") => Operator::In,
                    Some("NotIn") => Operator::NotIn,
                    Some("Exists") => Operator::Exists,
                    Some("DoesNotExist") => Operator::DoesNotExist,
                    other => {
                        return Err(SelectorError(format!(
                            "matchExpressions[{i}].operator: Unsupported value: {other:?}: supported values: \"In\", \"NotIn\", \"Exists\", \"DoesNotExist\""
                        )))
                    }
                };
                let needs_values = matches!(operator, Operator::In | Operator::NotIn);
                if needs_values && values.is_empty() {
                    return Err(SelectorError(format!(
                        "matchExpressions[{i}].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
                    )));
                }
                if !needs_values && !values.is_empty() {
                    return Err(SelectorError(format!(
                        "matchExpressions[{i}].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                    )));
                }
                requirements.push(Requirement {
                    key: key.to_string(),
                    operator,
                    values,
                });
            }
        }
        Ok(LabelSelector { requirements })
    }

    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.matches_with(&|key| labels?.get(key)?.as_str())
    }

    /// [`LabelSelector::matches`] on labels looked up one key at a time.
    pub fn matches_with<'v>(&self, label: &dyn Fn(&str) -> Option<&'v str>) -> bool {
        self.requirements.iter().all(|r| r.matches(label))
    }

    /// Whether the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

fn parse_requirement(lexer: &mut Lexer) -> Result<Requirement, SelectorError> {
    let negated = if lexer.peek() == Token::Not {
        lexer.next();
        true
    } else {
        false
    };
    let key = match lexer.next() {
        Token::Ident(key) => key,
        other => return Err(found(&other, "a label key")),
    };
    validate_key(&key)?;
    if negated {
        return Ok(Requirement {
            key,
            operator: Operator::DoesNotExist,
            values: Vec::new(),
        });
    }
    let operator = match lexer.peek() {
        Token::End | Token::Comma => {
            return Ok(Requirement {
                key,
                operator: Operator::Exists,
                values: Vec::new(),
            })
        }
        Token::Equals | Token::DoubleEquals => Operator::Equals,
        Token::NotEquals => Operator::NotEquals,
        Token::Ident(word) if word == "in" => Operator::In,
        Token::Ident(word) if word == "notin" => Operator::NotIn,
        other => return Err(found(&other, "one of '=', '==', '!=', 'in', 'notin'")),
    };
    lexer.next();
    let values = match operator {
        Operator::In | Operator::NotIn => {
            match lexer.next() {
                Token::OpenParen => {}
                other => return Err(found(&other, "'(' after 'in' or 'notin'")),
            }
            let mut values = Vec::new();
            loop {
                match lexer.next() {
                    Token::Ident(v) => {
                        validate_value(&v)?;
                        values.push(v);
                        match lexer.next() {
                            Token::Comma => continue,
                            Token::CloseParen => break,
                            other => return Err(found(&other, "',' or ')'")),
                        }
                    }
                    // An empty value inside the set, as in `in (a,)` or `in ()`.
                    Token::Comma => values.push(String::new()),
                    Token::CloseParen => {
                        values.push(String::new());
                        break;
                    }
                    other => return Err(found(&other, "a label value")),
                }
            }
            values
        }
        _ => match lexer.peek() {
            Token::Ident(v) => {
                lexer.next();
                validate_value(&v)?;
                vec![v]
            }
            // `key=` selects the empty value.
            Token::End | Token::Comma => vec![String::new()],
            other => return Err(found(&other, "a label value")),
        },
    };
    Ok(Requirement {
        key,
        operator,
        values,
    })
}

fn found(token: &Token, expected: &str) -> SelectorError {
    SelectorError(format!(
        "found '{}', expected: {expected}",
        token.describe()
    ))
}

/// A label key: an optional DNS subdomain prefix and `/`, then a name of at
/// most 63 alphanumerics, `-`, `_` and `.`, starting and ending alphanumeric.
fn validate_key(key: &str) -> Result<(), SelectorError> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let valid_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if prefix.is_empty() || prefix.len() > 253 || !prefix.split('.').all(valid_label) {
            return Err(SelectorError(format!(
                "invalid label key {key:?}: prefix part must be a lowercase RFC 1123 subdomain"
            )));
        }
    }
    if !is_qualified_name_part(name) {
        return Err(SelectorError(format!(
            "invalid label key {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63 characters)"
        )));
    }
    Ok(())
}

fn validate_value(value: &str) -> Result<(), SelectorError> {
    if value.is_empty() || is_qualified_name_part(value) {
        return Ok(());
    }
    Err(SelectorError(format!(
        "invalid label value {value:?}: must be 63 characters or less, consist of alphanumeric characters, '-', '_' or '.', and start and end with an alphanumeric character"
    )))
}

fn is_qualified_name_part(s: &str) -> bool {
    let bytes = s.as_bytes();
    !s.is_empty()
        && s.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Equals,
    DoubleEquals,
    NotEquals,
    Not,
    Comma,
    OpenParen,
    CloseParen,
    End,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Ident(s) => s.clone(),
            Token::Equals => "=".into(),
            Token::DoubleEquals => "==".into(),
            Token::NotEquals => "!=".into(),
            Token::Not => "!".into(),
            Token::Comma => ",".into(),
            Token::OpenParen => "(".into(),
            Token::CloseParen => ")".into(),
            Token::End => "end of selector".into(),
        }
    }
}

struct Lexer<'a> {
    rest: &'a str,
}

impl<'a> Lexer<'a> {
    fn new(s: &'a str) -> Self {
        Lexer { rest: s }
    }

    fn peek(&self) -> Token {
        Lexer { rest: self.rest }.next()
    }

    fn next(&mut self) -> Token {
        self.rest = self.rest.trim_start();
        let mut chars = self.rest.chars();
        let Some(c) = chars.next() else {
            return Token::End;
        };
        let (token, len) = match c {
            ',' => (Token::Comma, 1),
            '(' => (Token::OpenParen, 1),
            ')' => (Token::CloseParen, 1),
            '=' if self.rest.starts_with("==") => (Token::DoubleEquals, 2),
            '=' => (Token::Equals, 1),
            '!' if self.rest.starts_with("!=") => (Token::NotEquals, 2),
            '!' => (Token::Not, 1),
            _ => {
                let len = self
                    .rest
                    .find(|c: char| c.is_whitespace() || matches!(c, ',' | '(' | ')' | '=' | '!'))
                    .unwrap_or(self.rest.len());
                (Token::Ident(self.rest[..len].to_string()), len)
            }
        };
        self.rest = &self.rest[len..];
        token
    }
}

/// One `field=value` or `field!=value` term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldTerm {
    field: String,
    value: String,
    equal: bool,
}

/// A set of field requirements, all of which must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

impl FieldSelector {
    /// Parses `metadata.name=a,status.phase!=Done`. A backslash escapes `\`,
    /// `,`, `=` and `!` in values, as `fields.EscapeValue` writes them.
    pub fn parse(s: &str) -> Result<FieldSelector, SelectorError> {
        let mut terms = Vec::new();
        if s.trim().is_empty() {
            return Ok(FieldSelector::default());
        }
        for part in split_unescaped(s, ',') {
            let part = part.trim_start();
            let (field, value, equal) = if let Some(i) = find_unescaped(part, "!=") {
                (&part[..i], &part[i + 2..], false)
            } else if let Some(i) = find_unescaped(part, "==") {
                (&part[..i], &part[i + 2..], true)
            } else if let Some(i) = find_unescaped(part, "=") {
                (&part[..i], &part[i + 1..], true)
            } else {
                return Err(SelectorError(format!(
                    "invalid selector: '{part}'; can't understand '{part}': expected field=value or field!=value"
                )));
            };
            let field = field.trim();
            if field.is_empty() {
                return Err(SelectorError(format!(
                    "invalid selector: '{part}': the field name is empty"
                )));
            }
            terms.push(FieldTerm {
                field: field.to_string(),
                value: unescape(value)?,
                equal,
            });
        }
        Ok(FieldSelector { terms })
    }

    /// The fields the selector names.
    pub fn fields(&self) -> Vec<&str> {
        self.terms.iter().map(|t| t.field.as_str()).collect()
    }

    /// Whether an object matches; `lookup` gives a field's value, and a
    /// missing field compares as the empty string.
    pub fn matches(&self, lookup: &dyn Fn(&str) -> Option<String>) -> bool {
        self.terms.iter().all(|t| {
            let actual = lookup(&t.field).unwrap_or_default();
            (actual == t.value) == t.equal
        })
    }

    /// The value an `=` term requires of `field`, if there is one.
    pub fn exact(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.equal && t.field == field)
            .map(|t| t.value.as_str())
    }
}

fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    parts.push(&s[start..]);
    parts
}

fn find_unescaped(s: &str, needle: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
            continue;
        }
        if s[i..].starts_with(needle) {
            return Some(i);
        }
    }
    None
}

fn unescape(s: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(e @ ('\\' | ',' | '=' | '!')) => out.push(e),
            Some(other) => {
                return Err(SelectorError(format!(
                    "invalid field selector value {s:?}: '\\{other}' is not a valid escape; escape only '\\', ',', '=' and '!'"
                )))
            }
            None => {
                return Err(SelectorError(format!(
                    "invalid field selector value {s:?}: it ends with an unfinished escape"
                )))
            }
        }
    }
    Ok(out)
}

/// A field's value as field selectors compare it: strings as they are,
/// numbers and booleans as their JSON text.
pub fn field_value(obj: &Value, dotted: &str) -> Option<String> {
    let mut cur = obj;
    for part in dotted.split('.') {
        cur = cur.get(part)?;
    }
    match cur {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn equality_and_inequality() {
        let l = labels(json!({"app": "web", "tier": "front"}));
        assert!(LabelSelector::parse("app=web").unwrap().matches(Some(&l)));
        assert!(LabelSelector::parse("app==web,tier=front")
            .unwrap()
            .matches(Some(&l)));
        assert!(!LabelSelector::parse("app!=web").unwrap().matches(Some(&l)));
        assert!(LabelSelector::parse("env!=prod").unwrap().matches(Some(&l)));
        assert!(LabelSelector::parse("env!=prod").unwrap().matches(None));
    }

    #[test]
    fn set_based_and_existence() {
        let l = labels(json!({"env": "qa", "legacy": "yes"}));
        assert!(LabelSelector::parse("env in (qa, prod)")
            .unwrap()
            .matches(Some(&l)));
        assert!(!LabelSelector::parse("env notin (qa)")
            .unwrap()
            .matches(Some(&l)));
        assert!(LabelSelector::parse("legacy").unwrap().matches(Some(&l)));
        assert!(!LabelSelector::parse("!legacy").unwrap().matches(Some(&l)));
        assert!(LabelSelector::parse("!other,env")
            .unwrap()
            .matches(Some(&l)));
    }

    #[test]
    fn empty_selects_everything() {
        let s = LabelSelector::parse("  ").unwrap();
        assert!(s.is_empty());
        assert!(s.matches(None));
    }

    #[test]
    fn bad_label_selectors_are_explained() {
        let err = LabelSelector::parse("app in qa").unwrap_err().to_string();
        assert!(err.contains("'('"), "{err}");
        assert!(LabelSelector::parse("a=b=c").is_err());
        assert!(LabelSelector::parse("-bad=x").is_err());
        assert!(LabelSelector::parse("app=web,").is_err());
        assert!(LabelSelector::parse("UPPER.example/x=y").is_err());
        assert!(LabelSelector::parse("example.com/app=web").is_ok());
    }

    #[test]
    fn from_json_reads_match_labels_and_expressions() {
        let s = LabelSelector::from_json(&json!({
            "matchLabels": {"provider": "local"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]
        }))
        .unwrap();
        assert!(s.matches(Some(&labels(json!({"provider": "local", "tier": "b"})))));
        assert!(!s.matches(Some(&labels(json!({"provider": "aws", "tier": "b"})))));
        assert!(LabelSelector::from_json(
            &json!({"matchExpressions": [{"key": "a", "operator": "In"}]})
        )
        .is_err());
        assert!(LabelSelector::from_json(
            &json!({"matchExpressions": [{"key": "a", "operator": "Near"}]})
        )
        .is_err());
    }

    #[test]
    fn field_selectors() {
        let obj = json!({"metadata": {"name": "a,b", "namespace": "d"}, "count": 3});
        let lookup = |f: &str| field_value(&obj, f);
        let s = FieldSelector::parse("metadata.name=a\\,b,metadata.namespace!=x").unwrap();
        assert_eq!(s.fields(), vec!["metadata.name", "metadata.namespace"]);
        assert!(s.matches(&lookup));
        assert_eq!(s.exact("metadata.name"), Some("a,b"));
        assert_eq!(s.exact("metadata.namespace"), None);
        assert!(FieldSelector::parse("count==3").unwrap().matches(&lookup));
        assert!(FieldSelector::parse("spec.missing=")
            .unwrap()
            .matches(&lookup));
        assert!(FieldSelector::parse("").unwrap().matches(&lookup));
        assert!(FieldSelector::parse("metadata.name").is_err());
        assert!(FieldSelector::parse("a=\\q").is_err());
    }
}

//! Validation of an object against a parsed schema, reporting every problem with
//! kube-apiserver's field paths and messages (`<path> in body must be of type ...`).

use std::cmp::Ordering;
use std::collections::HashSet;

use serde_json::{Map, Number, Value};

use super::{
    duplicate, formats, invalid, json, not_supported, quote, required, too_long, too_many,
    type_invalid, Additional, Node, SchemaType,
};
use crate::field::{render_path, FieldError, ListType, PathElement};

/// Validates `value` against `node`, appending errors. `resource` marks objects whose
/// `metadata` is the server's business (the root and embedded resources).
pub(super) fn validate_node(
    node: &Node,
    value: &Value,
    resource: bool,
    path: &mut Vec<PathElement>,
    errors: &mut Vec<FieldError>,
) {
    let field = render_path(path);
    let expected = expected_type(node);
    if value.is_null() {
        if node.nullable {
            return;
        }
        if let Some(expected) = expected {
            errors.push(type_invalid(
                &field,
                &quote("null"),
                &format!("{} must be of type {expected}: \"null\"", body(&field)),
            ));
            return;
        }
    } else if let Some(expected) = expected {
        if !type_matches(node, value) {
            let actual = data_type(value);
            errors.push(type_invalid(
                &field,
                &quote(actual),
                &format!("{} must be of type {expected}: \"{actual}\"", body(&field)),
            ));
            // Further checks would only repeat that the value has the wrong shape.
            return;
        }
    }

    junctors(node, value, &field, path, errors);

    let checks = &node.checks;
    match value {
        Value::String(s) => validate_string(node, s, &field, errors),
        Value::Number(n) => validate_number(node, n, &field, errors),
        Value::Array(items) => {
            let len = items.len();
            if let Some(min) = checks.min_items.filter(|min| (len as u64) < *min) {
                errors.push(invalid(
                    &field,
                    &len.to_string(),
                    &format!("{} should have at least {min} items", body(&field)),
                ));
            }
            if let Some(max) = checks.max_items.filter(|max| (len as u64) > *max) {
                errors.push(too_many(&field, len, max));
            }
            if checks.unique_items && node.list_type != Some(ListType::Set) {
                report_duplicates(items, path, errors, |item| Some(item.clone()));
            }
        }
        Value::Object(map) => {
            let len = map.len();
            if let Some(max) = checks.max_properties.filter(|max| (len as u64) > *max) {
                errors.push(too_many(&field, len, max));
            }
            if let Some(min) = checks.min_properties.filter(|min| (len as u64) < *min) {
                errors.push(invalid(
                    &field,
                    &len.to_string(),
                    &format!("{} should have at least {min} properties", body(&field)),
                ));
            }
        }
        _ => {}
    }

    if let Some(values) = &checks.enum_values {
        if !values.iter().any(|allowed| values_equal(allowed, value)) {
            let supported: Vec<String> = values
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => json(other),
                })
                .collect();
            errors.push(not_supported(&field, &json(value), &supported));
        }
    }

    match value {
        Value::Object(map) => validate_object(node, map, resource, path, errors),
        Value::Array(items) => validate_items(node, items, path, errors),
        _ => {}
    }
}

/// `<path> in body`, the subject of kube-openapi's messages.
fn body(field: &str) -> String {
    format!("{field} in body")
}

fn expected_type(node: &Node) -> Option<&'static str> {
    if node.int_or_string {
        Some("integer,string")
    } else {
        node.ty.map(SchemaType::name)
    }
}

/// JSON numbers such as `2.0` are integers: Go decodes them as whole floats and
/// kube-openapi accepts those for `type: integer`.
fn is_integer(n: &Number) -> bool {
    n.is_i64()
        || n.is_u64()
        || n.as_f64()
            .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
}

fn type_matches(node: &Node, value: &Value) -> bool {
    if node.int_or_string {
        return match value {
            Value::String(_) => true,
            Value::Number(n) => is_integer(n),
            _ => false,
        };
    }
    match (node.ty, value) {
        (None, _) => true,
        (Some(SchemaType::Object), Value::Object(_))
        | (Some(SchemaType::Array), Value::Array(_))
        | (Some(SchemaType::String), Value::String(_))
        | (Some(SchemaType::Boolean), Value::Bool(_))
        | (Some(SchemaType::Number), Value::Number(_)) => true,
        (Some(SchemaType::Integer), Value::Number(n)) => is_integer(n),
        _ => false,
    }
}

/// The JSON-Schema type name of a value, as kube-openapi reports it.
fn data_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Renders a number like Go's `%v` of a float64 bound: `1`, not `1.0`.
fn show_number(n: &Number) -> String {
    match n.as_f64() {
        Some(f) if !(n.is_i64() || n.is_u64()) && f.fract() == 0.0 && f.abs() < 1e15 => {
            format!("{}", f as i64)
        }
        _ => n.to_string(),
    }
}

/// Junctor messages quote the whole value; huge objects would drown the message.
fn shown(value: &Value) -> String {
    let rendered = json(value);
    if rendered.chars().count() <= 120 {
        rendered
    } else {
        match value {
            Value::Object(_) => "{...}".to_string(),
            Value::Array(_) => "[...]".to_string(),
            _ => rendered.chars().take(117).chain("...".chars()).collect(),
        }
    }
}

fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// JSON equality where `1` and `1.0` are the same number.
fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| values_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        _ => a == b,
    }
}

/// An order-independent rendering, so equal values hash equal.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for key in keys {
                out.push_str(&quote(key));
                out.push(':');
                if let Some(v) = map.get(key) {
                    canonical(v, out);
                }
                out.push(',');
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for item in items {
                canonical(item, out);
                out.push(',');
            }
            out.push(']');
        }
        Value::Number(n) => out.push_str(&show_number(n)),
        other => out.push_str(&json(other)),
    }
}

fn index_field(path: &mut Vec<PathElement>, i: usize) -> String {
    path.push(PathElement::Index(i));
    let field = render_path(path);
    path.pop();
    field
}

fn child_field(path: &mut Vec<PathElement>, key: &str) -> String {
    path.push(PathElement::Field(key.to_string()));
    let field = render_path(path);
    path.pop();
    field
}

/// Reports each item whose identity (`key_of`) repeats an earlier one, at its index.
fn report_duplicates(
    items: &[Value],
    path: &mut Vec<PathElement>,
    errors: &mut Vec<FieldError>,
    key_of: impl Fn(&Value) -> Option<Value>,
) {
    let mut seen = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let Some(key) = key_of(item) else {
            continue;
        };
        let mut rendered = String::new();
        canonical(&key, &mut rendered);
        if !seen.insert(rendered) {
            errors.push(duplicate(&index_field(path, i), &json(&key)));
        }
    }
}

fn junctors(
    node: &Node,
    value: &Value,
    field: &str,
    path: &mut Vec<PathElement>,
    errors: &mut Vec<FieldError>,
) {
    let checks = &node.checks;
    let run = |branch: &Node, path: &mut Vec<PathElement>| {
        let mut found = Vec::new();
        validate_node(branch, value, false, path, &mut found);
        found
    };
    let subject = quote(field);

    if !checks.all_of.is_empty() {
        let mut failed = Vec::new();
        let mut found_all = Vec::new();
        for (i, branch) in checks.all_of.iter().enumerate() {
            let found = run(branch, path);
            if !found.is_empty() {
                failed.push(format!("allOf[{i}]"));
                found_all.extend(found);
            }
        }
        if !failed.is_empty() {
            errors.push(invalid(
                field,
                &shown(value),
                &format!(
                    "{subject} must validate all the schemas (allOf); failed: {}",
                    failed.join(", ")
                ),
            ));
            errors.extend(found_all);
        }
    }

    if !checks.any_of.is_empty() {
        let mut best: Option<Vec<FieldError>> = None;
        let mut matched = false;
        for branch in &checks.any_of {
            let found = run(branch, path);
            if found.is_empty() {
                matched = true;
                break;
            }
            if best.as_ref().is_none_or(|b| found.len() < b.len()) {
                best = Some(found);
            }
        }
        if !matched {
            errors.push(invalid(
                field,
                &shown(value),
                &format!("{subject} must validate at least one schema (anyOf)"),
            ));
            errors.extend(best.unwrap_or_default());
        }
    }

    if !checks.one_of.is_empty() {
        let mut best: Option<Vec<FieldError>> = None;
        let mut valid = Vec::new();
        for (i, branch) in checks.one_of.iter().enumerate() {
            let found = run(branch, path);
            if found.is_empty() {
                valid.push(format!("oneOf[{i}]"));
            } else if best.as_ref().is_none_or(|b| found.len() < b.len()) {
                best = Some(found);
            }
        }
        match valid.len() {
            1 => {}
            0 => {
                errors.push(invalid(
                    field,
                    &shown(value),
                    &format!("{subject} must validate one and only one schema (oneOf). Found none valid"),
                ));
                errors.extend(best.unwrap_or_default());
            }
            n => errors.push(invalid(
                field,
                &shown(value),
                &format!(
                    "{subject} must validate one and only one schema (oneOf). Found {n} valid alternatives: {}",
                    valid.join(", ")
                ),
            )),
        }
    }

    if let Some(not) = &checks.not {
        if run(not, path).is_empty() {
            errors.push(invalid(
                field,
                &shown(value),
                &format!("{subject} must not validate the schema (not)"),
            ));
        }
    }
}

fn validate_string(node: &Node, s: &str, field: &str, errors: &mut Vec<FieldError>) {
    let checks = &node.checks;
    let chars = s.chars().count() as u64;
    if let Some(max) = checks.max_length.filter(|max| chars > *max) {
        errors.push(too_long(field, max));
    }
    if let Some(min) = checks.min_length.filter(|min| chars < *min) {
        errors.push(invalid(
            field,
            &quote(s),
            &format!("{} should be at least {min} chars long", body(field)),
        ));
    }
    if let Some(pattern) = &checks.pattern {
        if !pattern.regex.is_match(s) {
            errors.push(invalid(
                field,
                &quote(s),
                &format!("{} should match '{}'", body(field), pattern.source),
            ));
        }
    }
    if let Some(format) = &checks.format {
        if formats::string_format_ok(format, s) == Some(false) {
            errors.push(type_invalid(
                field,
                &quote(s),
                &format!("{} must be of type {format}: {}", body(field), quote(s)),
            ));
        }
    }
}

fn validate_number(node: &Node, n: &Number, field: &str, errors: &mut Vec<FieldError>) {
    let checks = &node.checks;
    let shown_value = show_number(n);
    if let Some(format) = &checks.format {
        if formats::number_format_ok(format, n) == Some(false) {
            errors.push(type_invalid(
                field,
                &shown_value,
                &format!(
                    "{} must be of type {format}: \"{shown_value}\"",
                    body(field)
                ),
            ));
        }
    }
    if let Some(factor) = &checks.multiple_of {
        if !is_multiple_of(n, factor) {
            errors.push(invalid(
                field,
                &shown_value,
                &format!(
                    "{} should be a multiple of {}",
                    body(field),
                    show_number(factor)
                ),
            ));
        }
    }
    if let Some(max) = &checks.maximum {
        let order = compare_numbers(n, max);
        let (bad, relation) = if checks.exclusive_maximum {
            (order != Some(Ordering::Less), "less than")
        } else {
            (order == Some(Ordering::Greater), "less than or equal to")
        };
        if bad {
            errors.push(invalid(
                field,
                &shown_value,
                &format!("{} should be {relation} {}", body(field), show_number(max)),
            ));
        }
    }
    if let Some(min) = &checks.minimum {
        let order = compare_numbers(n, min);
        let (bad, relation) = if checks.exclusive_minimum {
            (order != Some(Ordering::Greater), "greater than")
        } else {
            (order == Some(Ordering::Less), "greater than or equal to")
        };
        if bad {
            errors.push(invalid(
                field,
                &shown_value,
                &format!("{} should be {relation} {}", body(field), show_number(min)),
            ));
        }
    }
}

fn is_multiple_of(n: &Number, factor: &Number) -> bool {
    if let (Some(x), Some(m)) = (n.as_i64(), factor.as_i64()) {
        return m != 0 && x.checked_rem(m).is_none_or(|r| r == 0);
    }
    let (Some(x), Some(m)) = (n.as_f64(), factor.as_f64()) else {
        return true;
    };
    if m == 0.0 {
        return true;
    }
    // Same trick as kube-openapi: divide by small factors via their inverse to
    // keep 0.3 / 0.1 from looking fractional.
    let ratio = if m < 1.0 { (1.0 / m) * x } else { x / m };
    if !ratio.is_finite() {
        return false;
    }
    (ratio - ratio.round()).abs() <= 1e-9 * ratio.abs().max(1.0)
}

fn validate_object(
    node: &Node,
    map: &Map<String, Value>,
    resource: bool,
    path: &mut Vec<PathElement>,
    errors: &mut Vec<FieldError>,
) {
    for name in &node.required {
        if !map.contains_key(name) {
            errors.push(required(&child_field(path, name), ""));
        }
    }
    if node.embedded {
        validate_embedded(map, path, errors);
    }
    for (key, child) in map {
        if resource && key == "metadata" {
            continue;
        }
        let child_node = match (node.property(key), &node.additional) {
            (Some(prop), _) => prop,
            (None, Additional::Schema(values)) => values,
            // Unknown keys are pruned before validation, so they are not errors here.
            _ => continue,
        };
        path.push(PathElement::Field(key.clone()));
        validate_node(child_node, child, child_node.embedded, path, errors);
        path.pop();
    }
}

/// An embedded resource must say what it is, as every Kubernetes object does.
fn validate_embedded(
    map: &Map<String, Value>,
    path: &mut Vec<PathElement>,
    errors: &mut Vec<FieldError>,
) {
    for key in ["apiVersion", "kind"] {
        let field = child_field(path, key);
        match map.get(key) {
            None => errors.push(required(&field, "must not be empty")),
            Some(Value::String(s)) if s.is_empty() => {
                errors.push(invalid(&field, &quote(s), "must not be empty"))
            }
            Some(Value::String(s)) if key == "apiVersion" && s.matches('/').count() > 1 => errors
                .push(invalid(
                    &field,
                    &quote(s),
                    &format!("unexpected GroupVersion string: {s}"),
                )),
            Some(Value::String(_)) => {}
            Some(other) => errors.push(invalid(&field, &json(other), "must be a string")),
        }
    }
}

fn validate_items(
    node: &Node,
    items: &[Value],
    path: &mut Vec<PathElement>,
    errors: &mut Vec<FieldError>,
) {
    if let Some(item_node) = &node.items {
        for (i, item) in items.iter().enumerate() {
            path.push(PathElement::Index(i));
            validate_node(item_node, item, item_node.embedded, path, errors);
            path.pop();
        }
    }
    match &node.list_type {
        Some(ListType::Set) => report_duplicates(items, path, errors, |item| Some(item.clone())),
        Some(ListType::Map(keys)) => report_duplicates(items, path, errors, |item| {
            let obj = item.as_object()?;
            let mut key = Map::new();
            for name in keys {
                if let Some(v) = obj.get(name) {
                    key.insert(name.clone(), v.clone());
                }
            }
            Some(Value::Object(key))
        }),
        _ => {}
    }
}

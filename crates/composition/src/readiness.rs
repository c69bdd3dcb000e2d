//! Readiness checks of composed resources: `NonEmpty`, `MatchString`,
//! `MatchInteger`, `MatchTrue`, `MatchFalse`, `MatchCondition` and `None`.
//! With no checks a resource is ready when its `Ready` condition is `True`.

use serde_json::Value;

use crate::fieldpath;

fn condition_status<'a>(obj: &'a Value, type_: &str) -> Option<&'a str> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))?
        .get("status")?
        .as_str()
}

/// Whether one check passes; an error names what is wrong with the check.
pub fn check(c: &Value, obj: &Value) -> Result<bool, String> {
    let kind = c
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("MatchCondition");
    let field = || -> Result<Option<&Value>, String> {
        let path = c
            .get("fieldPath")
            .and_then(Value::as_str)
            .ok_or(format!("readiness check {kind} needs fieldPath"))?;
        fieldpath::get(obj, path).map_err(|e| e.to_string())
    };
    Ok(match kind {
        "None" => true,
        "NonEmpty" => match field()? {
            None => false,
            Some(Value::String(s)) => !s.is_empty(),
            Some(Value::Array(a)) => !a.is_empty(),
            Some(Value::Object(o)) => !o.is_empty(),
            Some(_) => true,
        },
        "MatchString" => {
            let want = c.get("matchString").and_then(Value::as_str).ok_or("readiness check MatchString needs matchString")?;
            field()?.and_then(Value::as_str) == Some(want)
        }
        "MatchInteger" => {
            let want = c.get("matchInteger").and_then(Value::as_i64).ok_or("readiness check MatchInteger needs matchInteger")?;
            field()?.and_then(Value::as_i64) == Some(want)
        }
        "MatchTrue" => field()?.and_then(Value::as_bool) == Some(true),
        "MatchFalse" => field()?.and_then(Value::as_bool) == Some(false),
        "MatchCondition" => {
            let m = c.get("matchCondition");
            let type_ = m.and_then(|m| m.get("type")).and_then(Value::as_str).unwrap_or("Ready");
            let status = m.and_then(|m| m.get("status")).and_then(Value::as_str).unwrap_or("True");
            condition_status(obj, type_) == Some(status)
        }
        other => {
            return Err(format!(
                "unknown readiness check {other:?}; expected NonEmpty, MatchString, MatchInteger, MatchTrue, MatchFalse, MatchCondition or None"
            ))
        }
    })
}

/// Whether a composed resource is ready: every check passes.
pub fn is_ready(checks: &[Value], obj: &Value) -> Result<bool, String> {
    if checks.is_empty() {
        return Ok(condition_status(obj, "Ready") == Some("True"));
    }
    for (i, c) in checks.iter().enumerate() {
        if !check(c, obj).map_err(|e| format!("readinessChecks[{i}]: {e}"))? {
            return Ok(false);
        }
    }
    Ok(true)
}

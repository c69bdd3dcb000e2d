//! Readiness checks of composed resources: `NonEmpty`, `MatchString`,
//! `MatchInteger`, `MatchTrue`, `MatchFalse`, `MatchCondition` and `None`,
//! as Crossplane v1.20 runs them. With no checks a resource is ready when
//! its `Ready` condition is `True`.
//!
//! Crossplane's corners, kept: `NonEmpty` means "the field exists", so an
//! empty string or null is ready; a field of the wrong type is an error,
//! not "not ready"; and since its checks carry `matchString: ""` and
//! `matchInteger: 0` as "unset", those values cannot be matched.

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

/// Whether one check passes; an error names what is wrong with the check
/// or with the field it reads.
pub fn check(c: &Value, obj: &Value) -> Result<bool, String> {
    // Crossplane's schema defaults the type to MatchCondition.
    let kind = c
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("MatchCondition");
    let field = || -> Result<Option<&Value>, String> {
        let path = c
            .get("fieldPath")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
            .ok_or(format!("readiness check {kind} needs fieldPath"))?;
        fieldpath::lookup(obj, path).map_err(|e| e.to_string())
    };
    let path = || c.get("fieldPath").and_then(Value::as_str).unwrap_or("");
    let wrong = |what: &str| format!("readiness check {kind}: {}: not {what}", path());
    Ok(match kind {
        "None" => true,
        "NonEmpty" => field()?.is_some(),
        "MatchString" => {
            let want = c
                .get("matchString")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or("readiness check MatchString needs matchString")?;
            match field()? {
                None => false,
                Some(Value::String(s)) => s == want,
                Some(_) => return Err(wrong("a string")),
            }
        }
        "MatchInteger" => {
            let want = c
                .get("matchInteger")
                .and_then(Value::as_i64)
                .filter(|i| *i != 0)
                .ok_or("readiness check MatchInteger needs matchInteger")?;
            match field()? {
                None => false,
                Some(v) if v.is_i64() => v.as_i64() == Some(want),
                Some(_) => return Err(wrong("an (int64) number")),
            }
        }
        "MatchTrue" | "MatchFalse" => match field()? {
            None => false,
            Some(Value::Bool(b)) => *b == (kind == "MatchTrue"),
            Some(_) => return Err(wrong("a bool")),
        },
        "MatchCondition" => {
            let m = c.get("matchCondition");
            let type_ = m
                .and_then(|m| m.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("Ready");
            let status = m
                .and_then(|m| m.get("status"))
                .and_then(Value::as_str)
                .unwrap_or("True");
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

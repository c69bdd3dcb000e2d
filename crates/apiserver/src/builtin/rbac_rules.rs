//! The checks `ValidateRole`, `ValidateClusterRole`, `ValidateRoleBinding`
//! and `ValidateClusterRoleBinding` make once the shape has passed the
//! schema, with upstream's field paths and messages.

use apimachinery::{CauseType, FieldError};
use serde_json::Value;

use super::RBAC_GROUP;

fn strings<'a>(rule: &'a Value, field: &str) -> Vec<&'a str> {
    rule.get(field)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn quote_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// `ValidatePolicyRule` for every rule; namespaced roles may not name URLs.
pub fn validate_rules(obj: &Value, namespaced: bool, errors: &mut Vec<FieldError>) {
    let Some(rules) = obj.get("rules").and_then(Value::as_array) else {
        return;
    };
    for (i, rule) in rules.iter().enumerate() {
        let path = format!("rules[{i}]");
        if strings(rule, "verbs").is_empty() {
            errors.push(FieldError::new(
                CauseType::Required,
                format!("{path}.verbs"),
                "Required value: verbs must contain at least one value",
            ));
        }
        let urls = strings(rule, "nonResourceURLs");
        if !urls.is_empty() {
            if namespaced {
                errors.push(FieldError::new(
                    CauseType::Invalid,
                    format!("{path}.nonResourceURLs"),
                    format!(
                        "Invalid value: {}: namespaced rules cannot apply to non-resource URLs",
                        quote_list(&urls)
                    ),
                ));
            }
            if !strings(rule, "apiGroups").is_empty() || !strings(rule, "resources").is_empty() {
                errors.push(FieldError::new(
                    CauseType::Invalid,
                    format!("{path}.nonResourceURLs"),
                    format!(
                        "Invalid value: {}: rules cannot apply to both regular resources and non-resource URLs",
                        quote_list(&urls)
                    ),
                ));
            }
            continue;
        }
        if strings(rule, "apiGroups").is_empty() {
            errors.push(FieldError::new(
                CauseType::Required,
                format!("{path}.apiGroups"),
                "Required value: resource rules must supply at least one api group",
            ));
        }
        if strings(rule, "resources").is_empty() {
            errors.push(FieldError::new(
                CauseType::Required,
                format!("{path}.resources"),
                "Required value: resource rules must supply at least one resource",
            ));
        }
    }
}

/// A binding's role reference and subjects; the reference never changes.
pub fn validate_binding(
    obj: &Value,
    old: Option<&Value>,
    namespaced: bool,
    errors: &mut Vec<FieldError>,
) {
    let role_ref = obj.get("roleRef");
    let field = |name: &str| {
        role_ref
            .and_then(|r| r.get(name))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    if field("apiGroup") != RBAC_GROUP {
        errors.push(FieldError::new(
            CauseType::NotSupported,
            "roleRef.apiGroup",
            format!(
                "Unsupported value: {:?}: supported values: {RBAC_GROUP:?}",
                field("apiGroup")
            ),
        ));
    }
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&field("kind")) {
        let supported: Vec<String> = kinds.iter().map(|k| format!("{k:?}")).collect();
        errors.push(FieldError::new(
            CauseType::NotSupported,
            "roleRef.kind",
            format!(
                "Unsupported value: {:?}: supported values: {}",
                field("kind"),
                supported.join(", ")
            ),
        ));
    }
    if field("name").is_empty() {
        errors.push(FieldError::new(
            CauseType::Required,
            "roleRef.name",
            "Required value",
        ));
    }
    if let Some(old) = old {
        if old.get("roleRef") != role_ref {
            errors.push(FieldError::new(
                CauseType::Invalid,
                "roleRef",
                format!(
                    "Invalid value: {}: cannot change roleRef",
                    role_ref.map(Value::to_string).unwrap_or_default()
                ),
            ));
        }
    }
    let subjects = obj
        .get("subjects")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, subject) in subjects.iter().enumerate() {
        let path = format!("subjects[{i}]");
        let get = |name: &str| subject.get(name).and_then(Value::as_str).unwrap_or("");
        if get("name").is_empty() {
            errors.push(FieldError::new(
                CauseType::Required,
                format!("{path}.name"),
                "Required value",
            ));
        }
        match get("kind") {
            "ServiceAccount" => {
                if !get("apiGroup").is_empty() {
                    errors.push(FieldError::new(
                        CauseType::NotSupported,
                        format!("{path}.apiGroup"),
                        format!("Unsupported value: {:?}: supported values: \"\"", get("apiGroup")),
                    ));
                }
                if !namespaced && get("namespace").is_empty() {
                    errors.push(FieldError::new(
                        CauseType::Required,
                        format!("{path}.namespace"),
                        "Required value",
                    ));
                }
            }
            "User" | "Group" => {
                if get("apiGroup") != RBAC_GROUP {
                    errors.push(FieldError::new(
                        CauseType::NotSupported,
                        format!("{path}.apiGroup"),
                        format!(
                            "Unsupported value: {:?}: supported values: {RBAC_GROUP:?}",
                            get("apiGroup")
                        ),
                    ));
                }
            }
            other => errors.push(FieldError::new(
                CauseType::NotSupported,
                format!("{path}.kind"),
                format!(
                    "Unsupported value: {other:?}: supported values: \"ServiceAccount\", \"User\", \"Group\""
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(errors: &[FieldError]) -> Vec<String> {
        errors.iter().map(|e| e.field.clone()).collect()
    }

    #[test]
    fn rules_and_bindings_are_checked_as_upstream() {
        struct Case {
            reason: &'static str,
            obj: Value,
            binding: Option<bool>,
            want: Vec<&'static str>,
        }
        let cases = [
            Case {
                reason: "a complete resource rule passes",
                obj: json!({"rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]}),
                binding: None,
                want: vec![],
            },
            Case {
                reason: "a rule without verbs, groups or resources names each",
                obj: json!({"rules": [{}]}),
                binding: None,
                want: vec!["rules[0].verbs", "rules[0].apiGroups", "rules[0].resources"],
            },
            Case {
                reason: "a URL rule may not also name resources",
                obj: json!({"rules": [{"verbs": ["get"], "nonResourceURLs": ["/x"], "resources": ["pods"]}]}),
                binding: None,
                want: vec!["rules[0].nonResourceURLs"],
            },
            Case {
                reason: "a ClusterRoleBinding may only refer to a ClusterRole",
                obj: json!({"roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "r"}}),
                binding: Some(false),
                want: vec!["roleRef.kind"],
            },
            Case {
                reason: "subjects need a known kind and the right group",
                obj: json!({"roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "r"},
                    "subjects": [{"kind": "Robot", "name": "x"}, {"kind": "User", "name": "a"}]}),
                binding: Some(true),
                want: vec!["subjects[0].kind", "subjects[1].apiGroup"],
            },
        ];
        for case in cases {
            let mut errors = Vec::new();
            match case.binding {
                None => validate_rules(&case.obj, false, &mut errors),
                Some(namespaced) => validate_binding(&case.obj, None, namespaced, &mut errors),
            }
            pretty_assertions::assert_eq!(fields(&errors), case.want, "{}", case.reason);
        }
    }

    #[test]
    fn role_ref_cannot_change() {
        let old =
            json!({"roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "view"}});
        let new =
            json!({"roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "admin"}});
        let mut errors = Vec::new();
        validate_binding(&new, Some(&old), true, &mut errors);
        assert_eq!(fields(&errors), vec!["roleRef"]);
        assert!(errors[0].message.ends_with("cannot change roleRef"));
    }
}

//! One policy rule, and how it matches a request.

use serde::{Deserialize, Serialize};

use crate::Attributes;

/// `rbacv1.PolicyRule`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
    #[serde(
        default,
        rename = "nonResourceURLs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub non_resource_urls: Vec<String>,
}

const ALL: &str = "*";

fn has(items: &[String], want: &str) -> bool {
    items.iter().any(|i| i == ALL || i == want)
}

fn resource_matches(rule: &PolicyRule, resource: &str, subresource: &str) -> bool {
    rule.resources.iter().any(|r| {
        if r == ALL {
            return true;
        }
        if subresource.is_empty() {
            return r == resource;
        }
        // "x/y" names one subresource of x; "*/y" that subresource of any.
        match r.split_once('/') {
            Some((res, sub)) => sub == subresource && (res == ALL || res == resource),
            None => false,
        }
    })
}

fn name_matches(rule: &PolicyRule, name: &str) -> bool {
    rule.resource_names.is_empty() || rule.resource_names.iter().any(|n| n == name)
}

fn url_matches(rule: &PolicyRule, path: &str) -> bool {
    rule.non_resource_urls.iter().any(|u| {
        if u == ALL || u == path {
            return true;
        }
        // Only a trailing '*' is a wildcard: a prefix match.
        u.strip_suffix('*')
            .is_some_and(|prefix| path.starts_with(prefix))
    })
}

/// True when `rule` allows what `attrs` asks (upstream's `RuleAllows`).
pub fn rule_allows(attrs: &Attributes, rule: &PolicyRule) -> bool {
    if !has(&rule.verbs, attrs.verb) {
        return false;
    }
    if attrs.resource_request {
        has(&rule.api_groups, attrs.api_group)
            && resource_matches(rule, attrs.resource, attrs.subresource)
            && name_matches(rule, attrs.name)
    } else {
        url_matches(rule, attrs.path)
    }
}

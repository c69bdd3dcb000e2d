//! The escalation check: does one set of rules cover another (upstream's
//! `validation.Covers`)? Each rule asked for is broken down to one verb,
//! group, resource and name (or URL), and each piece must be allowed by
//! some rule held.

use crate::PolicyRule;

/// Upstream's `BreakdownRule`: one rule per verb × group × resource × name, or verb × URL.
pub fn breakdown_rule(rule: &PolicyRule) -> Vec<PolicyRule> {
    let mut out = Vec::new();
    let one = |s: &String| vec![s.clone()];
    for verb in &rule.verbs {
        for group in &rule.api_groups {
            for resource in &rule.resources {
                if rule.resource_names.is_empty() {
                    out.push(PolicyRule {
                        verbs: one(verb),
                        api_groups: one(group),
                        resources: one(resource),
                        ..PolicyRule::default()
                    });
                }
                for name in &rule.resource_names {
                    out.push(PolicyRule {
                        verbs: one(verb),
                        api_groups: one(group),
                        resources: one(resource),
                        resource_names: one(name),
                        ..PolicyRule::default()
                    });
                }
            }
        }
        for url in &rule.non_resource_urls {
            out.push(PolicyRule {
                verbs: one(verb),
                non_resource_urls: one(url),
                ..PolicyRule::default()
            });
        }
    }
    out
}

fn covers_item(owner: &[String], want: &str) -> bool {
    owner.iter().any(|o| o == "*" || o == want)
}

fn covers_resource(owner: &[String], want: &str) -> bool {
    owner.iter().any(|o| {
        if o == "*" || o == want {
            return true;
        }
        // "*/sub" covers "x/sub".
        match (o.split_once('/'), want.split_once('/')) {
            (Some(("*", sub)), Some((_, want_sub))) => sub == want_sub,
            _ => false,
        }
    })
}

fn covers_url(owner: &[String], want: &str) -> bool {
    owner.iter().any(|o| {
        o == "*"
            || o == want
            || o.strip_suffix('*')
                .is_some_and(|prefix| want.starts_with(prefix))
    })
}

/// True when `owner` alone covers the broken-down rule `piece`.
fn rule_covers(owner: &PolicyRule, piece: &PolicyRule) -> bool {
    let verb = &piece.verbs[0];
    if !covers_item(&owner.verbs, verb) {
        return false;
    }
    if let Some(url) = piece.non_resource_urls.first() {
        return covers_url(&owner.non_resource_urls, url);
    }
    let (group, resource) = (&piece.api_groups[0], &piece.resources[0]);
    if !covers_item(&owner.api_groups, group) || !covers_resource(&owner.resources, resource) {
        return false;
    }
    if owner.resource_names.is_empty() {
        return true;
    }
    piece
        .resource_names
        .first()
        .is_some_and(|name| owner.resource_names.contains(name))
}

/// Ok when every rule in `servant` is covered by `owner`; else the pieces
/// that are not.
pub fn covers(owner: &[PolicyRule], servant: &[PolicyRule]) -> Result<(), Vec<PolicyRule>> {
    let missing: Vec<PolicyRule> = servant
        .iter()
        .flat_map(breakdown_rule)
        .filter(|piece| !owner.iter().any(|o| rule_covers(o, piece)))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing)
    }
}

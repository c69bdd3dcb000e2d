//! The policy snapshot: every Role, ClusterRole and binding, indexed by the
//! subjects they name, with aggregated ClusterRoles resolved.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::rule::rule_allows;
use crate::{Attributes, Decision, PolicyRule, UserInfo};

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SelectorRequirement {
    key: String,
    operator: String,
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct LabelSelector {
    #[serde(default)]
    match_labels: BTreeMap<String, String>,
    #[serde(default)]
    match_expressions: Vec<SelectorRequirement>,
}

impl LabelSelector {
    /// `metav1.LabelSelector` semantics; an unknown operator matches nothing.
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|e| {
                let value = labels.get(&e.key);
                match e.operator.as_str() {
                    "In" => value.is_some_and(|v| e.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !e.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AggregationRule {
    #[serde(default)]
    cluster_role_selectors: Vec<LabelSelector>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleObject {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    rules: Vec<PolicyRule>,
    aggregation_rule: Option<AggregationRule>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct RoleRef {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize, Clone)]
struct Subject {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BindingObject {
    #[serde(default)]
    metadata: Meta,
    role_ref: RoleRef,
    #[serde(default)]
    subjects: Vec<Subject>,
}

/// One binding, resolved: whose it is, where it applies, what it grants.
struct Binding {
    /// `"NAME"` for a ClusterRoleBinding, `"NAME/NS"` for a RoleBinding (upstream's wording).
    describe: String,
    cluster: bool,
    namespace: String,
    role_kind: String,
    role_name: String,
    /// `None` when the role it names does not exist.
    rules: Option<Arc<Vec<PolicyRule>>>,
}

/// The rules that apply to one user, for SelfSubjectRulesReview.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulesForUser {
    pub resource_rules: Vec<PolicyRule>,
    pub non_resource_rules: Vec<PolicyRule>,
    pub incomplete: bool,
    pub evaluation_error: String,
}

/// An immutable snapshot of the RBAC objects.
pub struct Policy {
    cluster_roles: HashMap<String, Arc<Vec<PolicyRule>>>,
    roles: HashMap<(String, String), Arc<Vec<PolicyRule>>>,
    bindings: Vec<Binding>,
    /// Binding indexes by the user names and group names they name, and
    /// which subject of the binding it was (for the decision's reason).
    by_user: HashMap<String, Vec<(usize, String)>>,
    by_group: HashMap<String, Vec<(usize, String)>>,
    stale: Vec<(String, Vec<PolicyRule>)>,
    problems: Vec<String>,
}

fn parse<T: for<'de> Deserialize<'de>>(
    what: &str,
    value: &Value,
    problems: &mut Vec<String>,
) -> Option<T> {
    match T::deserialize(value) {
        Ok(v) => Some(v),
        Err(e) => {
            let name = value
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?");
            problems.push(format!("cannot read {what} {name:?}: {e}"));
            None
        }
    }
}

impl Policy {
    pub fn new(
        roles: &[Value],
        cluster_roles: &[Value],
        role_bindings: &[Value],
        cluster_role_bindings: &[Value],
    ) -> Policy {
        let mut problems = Vec::new();
        let mut parsed_cluster_roles: Vec<RoleObject> = cluster_roles
            .iter()
            .filter_map(|v| parse("ClusterRole", v, &mut problems))
            .collect();
        parsed_cluster_roles.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        // Aggregation from the stored rules of the other roles, in name
        // order, as one pass of upstream's aggregation controller builds it.
        let mut cluster_map = HashMap::new();
        let mut stale = Vec::new();
        for role in &parsed_cluster_roles {
            let rules = match &role.aggregation_rule {
                None => role.rules.clone(),
                Some(aggregation) => {
                    let mut rules: Vec<PolicyRule> = Vec::new();
                    for other in &parsed_cluster_roles {
                        if other.metadata.name == role.metadata.name
                            || !aggregation
                                .cluster_role_selectors
                                .iter()
                                .any(|s| s.matches(&other.metadata.labels))
                        {
                            continue;
                        }
                        for rule in &other.rules {
                            if !rules.contains(rule) {
                                rules.push(rule.clone());
                            }
                        }
                    }
                    if rules != role.rules {
                        stale.push((role.metadata.name.clone(), rules.clone()));
                    }
                    rules
                }
            };
            cluster_map.insert(role.metadata.name.clone(), Arc::new(rules));
        }
        let mut role_map = HashMap::new();
        for role in roles
            .iter()
            .filter_map(|v| parse::<RoleObject>("Role", v, &mut problems))
        {
            role_map.insert(
                (role.metadata.namespace.clone(), role.metadata.name.clone()),
                Arc::new(role.rules),
            );
        }
        let mut bindings = Vec::new();
        let mut by_user: HashMap<String, Vec<(usize, String)>> = HashMap::new();
        let mut by_group: HashMap<String, Vec<(usize, String)>> = HashMap::new();
        let all = cluster_role_bindings
            .iter()
            .map(|v| (true, v))
            .chain(role_bindings.iter().map(|v| (false, v)));
        for (cluster, value) in all {
            let what = if cluster {
                "ClusterRoleBinding"
            } else {
                "RoleBinding"
            };
            let Some(binding) = parse::<BindingObject>(what, value, &mut problems) else {
                continue;
            };
            let namespace = binding.metadata.namespace.clone();
            let rules = match (cluster, binding.role_ref.kind.as_str()) {
                (_, "ClusterRole") => cluster_map.get(&binding.role_ref.name).cloned(),
                (false, "Role") => role_map
                    .get(&(namespace.clone(), binding.role_ref.name.clone()))
                    .cloned(),
                _ => None,
            };
            let index = bindings.len();
            for subject in &binding.subjects {
                match subject.kind.as_str() {
                    "User" => by_user
                        .entry(subject.name.clone())
                        .or_default()
                        .push((index, format!("User {:?}", subject.name))),
                    "Group" => by_group
                        .entry(subject.name.clone())
                        .or_default()
                        .push((index, format!("Group {:?}", subject.name))),
                    "ServiceAccount" => {
                        let ns = if subject.namespace.is_empty() {
                            &namespace
                        } else {
                            &subject.namespace
                        };
                        by_user
                            .entry(crate::service_account_user(ns, &subject.name))
                            .or_default()
                            .push((index, format!("ServiceAccount \"{}/{ns}\"", subject.name)));
                    }
                    _ => {}
                }
            }
            bindings.push(Binding {
                describe: if cluster {
                    format!("{:?}", binding.metadata.name)
                } else {
                    format!("\"{}/{}\"", binding.metadata.name, namespace)
                },
                cluster,
                namespace,
                role_kind: binding.role_ref.kind,
                role_name: binding.role_ref.name,
                rules,
            });
        }
        Policy {
            cluster_roles: cluster_map,
            roles: role_map,
            bindings,
            by_user,
            by_group,
            stale,
            problems,
        }
    }

    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The bindings that name `user`, directly or through a group, with the subject named.
    fn bindings_of<'a>(
        &'a self,
        user: &'a UserInfo,
    ) -> impl Iterator<Item = (&'a Binding, &'a str)> + 'a {
        let direct = self.by_user.get(&user.name).into_iter().flatten();
        let groups = user
            .groups
            .iter()
            .filter_map(|g| self.by_group.get(g))
            .flatten();
        direct
            .chain(groups)
            .map(|(i, subject)| (&self.bindings[*i], subject.as_str()))
    }

    pub fn authorize(&self, attrs: &Attributes) -> Decision {
        if attrs.user.groups.iter().any(|g| g == crate::SYSTEM_MASTERS) {
            return Decision {
                allowed: true,
                reason: String::new(),
            };
        }
        for (binding, subject) in self.bindings_of(attrs.user) {
            // A RoleBinding grants in its namespace only, and never on
            // cluster-scoped resources or URLs.
            if !binding.cluster && (binding.namespace != attrs.namespace || !attrs.resource_request)
            {
                continue;
            }
            let Some(rules) = &binding.rules else {
                continue;
            };
            if rules.iter().any(|r| rule_allows(attrs, r)) {
                let kind = if binding.cluster {
                    "ClusterRoleBinding"
                } else {
                    "RoleBinding"
                };
                return Decision {
                    allowed: true,
                    reason: format!(
                        "RBAC: allowed by {kind} {} of {} {:?} to {subject}",
                        binding.describe, binding.role_kind, binding.role_name
                    ),
                };
            }
        }
        Decision {
            allowed: false,
            reason: String::new(),
        }
    }

    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> RulesForUser {
        let mut out = RulesForUser::default();
        let mut errors = Vec::new();
        for (binding, _) in self.bindings_of(user) {
            if !binding.cluster && (namespace.is_empty() || binding.namespace != namespace) {
                continue;
            }
            let Some(rules) = &binding.rules else {
                errors.push(format!(
                    "{} {:?} not found",
                    binding.role_kind, binding.role_name
                ));
                continue;
            };
            for rule in rules.iter() {
                let target = if rule.non_resource_urls.is_empty() {
                    &mut out.resource_rules
                } else {
                    // URLs are cluster-wide: only ClusterRoleBindings grant them.
                    if !binding.cluster {
                        continue;
                    }
                    &mut out.non_resource_rules
                };
                if !target.contains(rule) {
                    target.push(rule.clone());
                }
            }
        }
        if !errors.is_empty() {
            out.incomplete = true;
            out.evaluation_error = errors.join(", ");
        }
        out
    }

    pub fn cluster_role_rules(&self, name: &str) -> Option<&[PolicyRule]> {
        self.cluster_roles.get(name).map(|r| r.as_slice())
    }

    pub fn role_rules(&self, namespace: &str, name: &str) -> Option<&[PolicyRule]> {
        self.roles
            .get(&(namespace.to_string(), name.to_string()))
            .map(|r| r.as_slice())
    }

    pub fn stale_aggregations(&self) -> Vec<(String, Vec<PolicyRule>)> {
        self.stale.clone()
    }
}

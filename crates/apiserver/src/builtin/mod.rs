//! The kinds compiled into the server: a few of core `v1`, `Lease`,
//! `CustomResourceDefinition`, the RBAC kinds, and the authentication and
//! authorization reviews (answered, never stored), with their Table columns, their structural
//! schemas (validated, pruned and published like a CRD's) and the rules
//! kube-apiserver applies to them.
//!
//! Layout:
//! - this file: the kinds, how they are served, their Table columns;
//! - `schema`: the structural schemas of the kinds and of `ObjectMeta`;
//! - `rules`: normalization and the kind-specific validation upstream runs.

pub mod rbac_rules;
pub mod rules;
pub mod schema;

use serde_json::{json, Value};

use crate::resource::{Column, ColumnSource, Resource};

/// A built-in kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Namespace,
    Secret,
    ConfigMap,
    Event,
    ServiceAccount,
    Lease,
    CustomResourceDefinition,
    Role,
    ClusterRole,
    RoleBinding,
    ClusterRoleBinding,
    // Reviews: created and answered, never stored.
    SelfSubjectReview,
    SelfSubjectAccessReview,
    SubjectAccessReview,
    LocalSubjectAccessReview,
    SelfSubjectRulesReview,
}

/// The group of the RBAC kinds.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

impl Builtin {
    pub const ALL: [Builtin; 16] = [
        Builtin::Namespace,
        Builtin::Secret,
        Builtin::ConfigMap,
        Builtin::Event,
        Builtin::ServiceAccount,
        Builtin::Lease,
        Builtin::CustomResourceDefinition,
        Builtin::Role,
        Builtin::ClusterRole,
        Builtin::RoleBinding,
        Builtin::ClusterRoleBinding,
        Builtin::SelfSubjectReview,
        Builtin::SelfSubjectAccessReview,
        Builtin::SubjectAccessReview,
        Builtin::LocalSubjectAccessReview,
        Builtin::SelfSubjectRulesReview,
    ];

    /// Kinds that only answer a `create`, as kube-apiserver's reviews do.
    pub fn is_review(self) -> bool {
        matches!(
            self,
            Builtin::SelfSubjectReview
                | Builtin::SelfSubjectAccessReview
                | Builtin::SubjectAccessReview
                | Builtin::LocalSubjectAccessReview
                | Builtin::SelfSubjectRulesReview
        )
    }

    /// The RBAC kinds, whose writes change what everyone may do.
    pub fn is_rbac(self) -> bool {
        matches!(
            self,
            Builtin::Role
                | Builtin::ClusterRole
                | Builtin::RoleBinding
                | Builtin::ClusterRoleBinding
        )
    }

    pub fn kind(self) -> &'static str {
        match self {
            Builtin::Namespace => "Namespace",
            Builtin::Secret => "Secret",
            Builtin::ConfigMap => "ConfigMap",
            Builtin::Event => "Event",
            Builtin::ServiceAccount => "ServiceAccount",
            Builtin::Lease => "Lease",
            Builtin::CustomResourceDefinition => "CustomResourceDefinition",
            Builtin::Role => "Role",
            Builtin::ClusterRole => "ClusterRole",
            Builtin::RoleBinding => "RoleBinding",
            Builtin::ClusterRoleBinding => "ClusterRoleBinding",
            Builtin::SelfSubjectReview => "SelfSubjectReview",
            Builtin::SelfSubjectAccessReview => "SelfSubjectAccessReview",
            Builtin::SubjectAccessReview => "SubjectAccessReview",
            Builtin::LocalSubjectAccessReview => "LocalSubjectAccessReview",
            Builtin::SelfSubjectRulesReview => "SelfSubjectRulesReview",
        }
    }

    /// The served resource type.
    pub fn resource(self) -> Resource {
        let (group, plural, singular, short, namespaced, status) = match self {
            Builtin::Namespace => ("", "namespaces", "namespace", vec!["ns"], false, true),
            Builtin::Secret => ("", "secrets", "secret", vec![], true, false),
            Builtin::ConfigMap => ("", "configmaps", "configmap", vec!["cm"], true, false),
            Builtin::Event => ("", "events", "event", vec!["ev"], true, false),
            Builtin::ServiceAccount => (
                "",
                "serviceaccounts",
                "serviceaccount",
                vec!["sa"],
                true,
                false,
            ),
            Builtin::Lease => (
                "coordination.k8s.io",
                "leases",
                "lease",
                vec![],
                true,
                false,
            ),
            Builtin::CustomResourceDefinition => (
                "apiextensions.k8s.io",
                "customresourcedefinitions",
                "customresourcedefinition",
                vec!["crd", "crds"],
                false,
                true,
            ),
            Builtin::Role => (RBAC_GROUP, "roles", "role", vec![], true, false),
            Builtin::ClusterRole => (
                RBAC_GROUP,
                "clusterroles",
                "clusterrole",
                vec![],
                false,
                false,
            ),
            Builtin::RoleBinding => (
                RBAC_GROUP,
                "rolebindings",
                "rolebinding",
                vec![],
                true,
                false,
            ),
            Builtin::ClusterRoleBinding => (
                RBAC_GROUP,
                "clusterrolebindings",
                "clusterrolebinding",
                vec![],
                false,
                false,
            ),
            Builtin::SelfSubjectReview => (
                "authentication.k8s.io",
                "selfsubjectreviews",
                "",
                vec![],
                false,
                false,
            ),
            Builtin::SelfSubjectAccessReview => (
                "authorization.k8s.io",
                "selfsubjectaccessreviews",
                "",
                vec![],
                false,
                false,
            ),
            Builtin::SubjectAccessReview => (
                "authorization.k8s.io",
                "subjectaccessreviews",
                "",
                vec![],
                false,
                false,
            ),
            Builtin::LocalSubjectAccessReview => (
                "authorization.k8s.io",
                "localsubjectaccessreviews",
                "",
                vec![],
                true,
                false,
            ),
            Builtin::SelfSubjectRulesReview => (
                "authorization.k8s.io",
                "selfsubjectrulesreviews",
                "",
                vec![],
                false,
                false,
            ),
        };
        let kind = self.kind();
        Resource {
            group: group.to_string(),
            version: "v1".to_string(),
            storage_version: "v1".to_string(),
            kind: kind.to_string(),
            list_kind: format!("{kind}List"),
            plural: plural.to_string(),
            singular: singular.to_string(),
            short_names: short.into_iter().map(String::from).collect(),
            categories: Vec::new(),
            namespaced,
            status_subresource: status,
            builtin: Some(self),
            schema: Some(schema::structural(self)),
            openapi_schema: schema::raw(self),
            columns: self.columns(),
            crd_name: None,
        }
    }

    fn columns(self) -> Vec<Column> {
        fn col(name: &str, type_: &str, f: fn(&Value, jiff::Timestamp) -> Value) -> Column {
            Column {
                name: name.to_string(),
                type_: type_.to_string(),
                format: String::new(),
                description: String::new(),
                priority: 0,
                source: ColumnSource::Computed(f),
            }
        }
        let age = col("Age", "string", |o, now| {
            json!(apimachinery::printer::age(
                o.pointer("/metadata/creationTimestamp")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
                now
            ))
        });
        match self {
            Builtin::Namespace => vec![
                col("Status", "string", |o, _| {
                    o.pointer("/status/phase")
                        .cloned()
                        .unwrap_or(json!("Active"))
                }),
                age,
            ],
            Builtin::Secret => vec![
                col("Type", "string", |o, _| {
                    o.get("type").cloned().unwrap_or(json!("Opaque"))
                }),
                col("Data", "integer", |o, _| json!(count_keys(o, &["data"]))),
                age,
            ],
            Builtin::ConfigMap => vec![
                col("Data", "integer", |o, _| {
                    json!(count_keys(o, &["data", "binaryData"]))
                }),
                age,
            ],
            Builtin::ServiceAccount => vec![
                col("Secrets", "integer", |o, _| {
                    json!(o
                        .get("secrets")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len))
                }),
                age,
            ],
            Builtin::Lease => vec![
                col("Holder", "string", |o, _| {
                    o.pointer("/spec/holderIdentity")
                        .cloned()
                        .unwrap_or(json!(""))
                }),
                age,
            ],
            Builtin::Event => vec![
                col("Last Seen", "string", |o, now| {
                    let ts = ["lastTimestamp", "eventTime", "firstTimestamp"]
                        .iter()
                        .find_map(|f| o.get(*f).and_then(Value::as_str))
                        .or_else(|| {
                            o.pointer("/metadata/creationTimestamp")
                                .and_then(Value::as_str)
                        })
                        .unwrap_or("");
                    json!(apimachinery::printer::age(ts, now))
                }),
                col("Type", "string", |o, _| {
                    o.get("type").cloned().unwrap_or(json!(""))
                }),
                col("Reason", "string", |o, _| {
                    o.get("reason").cloned().unwrap_or(json!(""))
                }),
                col("Object", "string", |o, _| {
                    let kind = o
                        .pointer("/involvedObject/kind")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let name = o
                        .pointer("/involvedObject/name")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    json!(format!("{}/{}", kind.to_lowercase(), name))
                }),
                col("Message", "string", |o, _| {
                    o.get("message").cloned().unwrap_or(json!(""))
                }),
            ],
            Builtin::CustomResourceDefinition | Builtin::Role | Builtin::ClusterRole => {
                vec![col("Created At", "date", |o, _| {
                    o.pointer("/metadata/creationTimestamp")
                        .cloned()
                        .unwrap_or(json!(""))
                })]
            }
            Builtin::RoleBinding | Builtin::ClusterRoleBinding => vec![
                col("Role", "string", |o, _| {
                    let kind = o
                        .pointer("/roleRef/kind")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let name = o
                        .pointer("/roleRef/name")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    json!(format!("{kind}/{name}"))
                }),
                age,
            ],
            Builtin::SelfSubjectReview
            | Builtin::SelfSubjectAccessReview
            | Builtin::SubjectAccessReview
            | Builtin::LocalSubjectAccessReview
            | Builtin::SelfSubjectRulesReview => Vec::new(),
        }
    }

    /// Names of namespaces must be DNS labels; everything else DNS subdomains.
    pub fn requires_dns_label(self) -> bool {
        self == Builtin::Namespace
    }
}

fn count_keys(obj: &Value, fields: &[&str]) -> usize {
    fields
        .iter()
        .filter_map(|f| obj.get(*f).and_then(Value::as_object))
        .map(|m| m.len())
        .sum()
}

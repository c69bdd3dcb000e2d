//! Kubernetes RBAC (`rbac.authorization.k8s.io/v1`) as pure data: the
//! semantics of kube-apiserver's RBAC authorizer, its rule resolver and
//! escalation check, and kube-controller-manager's ClusterRole aggregation,
//! as plain functions over the objects' Kubernetes JSON. Nothing here does
//! I/O, and nothing panics on input: objects that cannot be read grant
//! nothing and are listed in [`Policy::problems`].
//!
//! Layout:
//! - `user`: [`UserInfo`], the well-known groups, service-account names.
//! - `request`: the [`Attributes`] of a request and the [`Decision`] on it.
//! - `rule`: [`PolicyRule`] and how one rule matches a request.
//! - `policy`: the [`Policy`] snapshot (aggregation resolved, bindings
//!   indexed by subject), `authorize` and `rules_for`.
//! - `escalation`: [`covers`], with upstream's rule breakdown.
//! - `message`: kube-apiserver's forbidden message.
//! - `defaults`: the bootstrap ClusterRoles and ClusterRoleBindings.
#![forbid(unsafe_code)]

pub mod defaults;
mod escalation;
mod message;
mod policy;
mod request;
mod rule;
mod user;

pub use escalation::{breakdown_rule, covers};
pub use message::forbidden_message;
pub use policy::{Policy, RulesForUser};
pub use request::{Attributes, Decision};
pub use rule::{rule_allows, PolicyRule};
pub use user::{
    service_account_groups, service_account_user, split_service_account_user, UserInfo,
    SERVICE_ACCOUNTS_GROUP, SERVICE_ACCOUNT_USER_PREFIX, SYSTEM_AUTHENTICATED, SYSTEM_MASTERS,
    SYSTEM_UNAUTHENTICATED,
};

/// The API group of the RBAC kinds.
pub const GROUP: &str = "rbac.authorization.k8s.io";
/// The `apiVersion` of the objects [`defaults`] returns.
pub const API_VERSION: &str = "rbac.authorization.k8s.io/v1";

#[cfg(test)]
mod tests;

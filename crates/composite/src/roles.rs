//! The ClusterRoles every XRD gets, as Crossplane's RBAC manager makes
//! them: its claims aggregate into the namespace roles `admin`, `edit` and
//! `view`, so a team's `edit` RoleBinding lets it claim; its composite
//! resources aggregate into none of them, so only cluster admins (and the
//! controllers) touch them; and the controllers' own ClusterRole gains
//! both kinds through `plinth.dev/aggregate-to-controller`.
//!
//! Pure data: the XRD controller applies what [`for_xrd`] returns.

use runtime::names::label::AGGREGATE_TO_CONTROLLER;
use serde_json::{json, Value};
const AGGREGATE_TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
const AGGREGATE_TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
const AGGREGATE_TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

const READ: [&str; 3] = ["get", "list", "watch"];
const WRITE: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// What one XRD serves, as its ClusterRoles need it.
pub struct Kinds<'a> {
    pub xrd_name: &'a str,
    pub xrd_uid: &'a str,
    pub group: &'a str,
    pub composite_plural: &'a str,
    pub claim_plural: Option<&'a str>,
}

/// The name of one of an XRD's ClusterRoles.
pub fn role_name(xrd_name: &str, suffix: &str) -> String {
    format!("plinth:xrd:{xrd_name}:{suffix}")
}

/// The ClusterRoles for one XRD, each owned by it so they go with it.
pub fn for_xrd(kinds: &Kinds) -> Vec<Value> {
    let owner = json!([{
        "apiVersion": format!("{}/{}", crate::names::GROUP, crate::names::VERSION),
        "kind": "CompositeResourceDefinition",
        "name": kinds.xrd_name,
        "uid": kinds.xrd_uid,
        "controller": true,
        "blockOwnerDeletion": true,
    }]);
    let role = |suffix: &str, labels: Value, rules: Value| {
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {
                "name": role_name(kinds.xrd_name, suffix),
                "labels": labels,
                "ownerReferences": owner.clone(),
            },
            "rules": rules,
        })
    };
    let mut every: Vec<String> = vec![
        kinds.composite_plural.to_string(),
        format!("{}/status", kinds.composite_plural),
    ];
    if let Some(claim) = kinds.claim_plural {
        every.push(claim.to_string());
        every.push(format!("{claim}/status"));
    }
    let all_verbs: Vec<&str> = READ.iter().chain(WRITE.iter()).copied().collect();
    let mut roles = vec![role(
        "aggregate-to-controller",
        json!({AGGREGATE_TO_CONTROLLER: "true"}),
        json!([{"apiGroups": [kinds.group], "resources": every, "verbs": all_verbs}]),
    )];
    if let Some(claim) = kinds.claim_plural {
        roles.push(role(
            "aggregate-to-edit",
            json!({AGGREGATE_TO_ADMIN: "true", AGGREGATE_TO_EDIT: "true"}),
            json!([{"apiGroups": [kinds.group], "resources": [claim], "verbs": all_verbs}]),
        ));
        roles.push(role(
            "aggregate-to-view",
            json!({AGGREGATE_TO_VIEW: "true"}),
            json!([{"apiGroups": [kinds.group], "resources": [claim, format!("{claim}/status")], "verbs": READ}]),
        ));
    }
    roles
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(claim: Option<&'static str>) -> Kinds<'static> {
        Kinds {
            xrd_name: "xpostgresqlinstances.platform.plinth.dev",
            xrd_uid: "u1",
            group: "platform.plinth.dev",
            composite_plural: "xpostgresqlinstances",
            claim_plural: claim,
        }
    }

    #[test]
    fn claims_aggregate_into_the_namespace_roles_and_composites_only_into_the_controllers() {
        struct Case {
            reason: &'static str,
            claim: Option<&'static str>,
            want: Vec<(&'static str, Vec<&'static str>)>,
        }
        let cases = [
            Case {
                reason:
                    "an XRD offering a claim lets edit and admin write claims and view read them",
                claim: Some("postgresqlinstances"),
                want: vec![
                    ("aggregate-to-controller", vec![AGGREGATE_TO_CONTROLLER]),
                    (
                        "aggregate-to-edit",
                        vec![AGGREGATE_TO_ADMIN, AGGREGATE_TO_EDIT],
                    ),
                    ("aggregate-to-view", vec![AGGREGATE_TO_VIEW]),
                ],
            },
            Case {
                reason: "an XRD without a claim grants namespace roles nothing",
                claim: None,
                want: vec![("aggregate-to-controller", vec![AGGREGATE_TO_CONTROLLER])],
            },
        ];
        for case in cases {
            let got: Vec<(String, Vec<String>)> = for_xrd(&kinds(case.claim))
                .iter()
                .map(|r| {
                    let name = r["metadata"]["name"].as_str().unwrap_or("").to_string();
                    let labels = r["metadata"]["labels"]
                        .as_object()
                        .map(|m| m.keys().cloned().collect())
                        .unwrap_or_default();
                    (name, labels)
                })
                .collect();
            let want: Vec<(String, Vec<String>)> = case
                .want
                .iter()
                .map(|(suffix, labels)| {
                    (
                        role_name("xpostgresqlinstances.platform.plinth.dev", suffix),
                        labels.iter().map(|l| l.to_string()).collect(),
                    )
                })
                .collect();
            pretty_assertions::assert_eq!(got, want, "{}", case.reason);
        }
    }

    #[test]
    fn edit_never_reaches_composites() {
        let roles = for_xrd(&kinds(Some("postgresqlinstances")));
        let edit = &roles[1];
        assert_eq!(
            edit["rules"][0]["resources"],
            json!(["postgresqlinstances"])
        );
    }
}

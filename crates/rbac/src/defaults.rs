//! The roles and bindings every cluster starts with (upstream's
//! bootstrap policy), cut to the resources Plinth serves.

use serde_json::{json, Value};

const READ: [&str; 3] = ["get", "list", "watch"];
const WRITE: [&str; 5] = ["create", "delete", "deletecollection", "patch", "update"];

fn meta(name: &str, labels: Value) -> Value {
    let mut labels = labels;
    labels["kubernetes.io/bootstrapping"] = json!("rbac-defaults");
    json!({
        "name": name,
        "labels": labels,
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    })
}

fn role(name: &str, labels: Value, rules: Value) -> Value {
    json!({
        "apiVersion": crate::API_VERSION,
        "kind": "ClusterRole",
        "metadata": meta(name, labels),
        "rules": rules,
    })
}

fn aggregated(name: &str, label: &str) -> Value {
    let mut role = role(name, json!({}), json!([]));
    role["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]});
    role
}

const TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
const TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
const TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

/// Every default ClusterRole.
pub fn cluster_roles() -> Vec<Value> {
    let discovery = json!([
        "/api",
        "/api/*",
        "/apis",
        "/apis/*",
        "/openapi",
        "/openapi/*",
        "/version",
        "/version/"
    ]);
    vec![
        role(
            "cluster-admin",
            json!({}),
            json!([
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ]),
        ),
        aggregated("admin", TO_ADMIN),
        aggregated("edit", TO_EDIT),
        aggregated("view", TO_VIEW),
        role(
            "system:aggregate-to-admin",
            json!({TO_ADMIN: "true"}),
            json!([
                {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings", "roles"], "verbs": READ.iter().chain(WRITE.iter()).collect::<Vec<_>>()},
                {"apiGroups": ["authorization.k8s.io"], "resources": ["localsubjectaccessreviews"], "verbs": ["create"]},
            ]),
        ),
        role(
            "system:aggregate-to-edit",
            json!({TO_ADMIN: "true", TO_EDIT: "true"}),
            json!([
                {"apiGroups": [""], "resources": ["configmaps", "events", "secrets", "serviceaccounts"], "verbs": WRITE},
                {"apiGroups": [""], "resources": ["secrets", "serviceaccounts"], "verbs": READ},
                {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": READ.iter().chain(WRITE.iter()).collect::<Vec<_>>()},
            ]),
        ),
        role(
            "system:aggregate-to-view",
            json!({TO_ADMIN: "true", TO_EDIT: "true", TO_VIEW: "true"}),
            json!([
                {"apiGroups": [""], "resources": ["configmaps", "events", "serviceaccounts", "namespaces", "namespaces/status"], "verbs": READ},
            ]),
        ),
        role(
            "system:discovery",
            json!({}),
            json!([{"nonResourceURLs": discovery, "verbs": ["get"]}]),
        ),
        role(
            "system:public-info-viewer",
            json!({}),
            json!([{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]}]),
        ),
        role(
            "system:basic-user",
            json!({}),
            json!([
                {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]},
                {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]},
            ]),
        ),
    ]
}

fn binding(name: &str, role: &str, groups: &[&str]) -> Value {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({"apiGroup": crate::GROUP, "kind": "Group", "name": g}))
        .collect();
    json!({
        "apiVersion": crate::API_VERSION,
        "kind": "ClusterRoleBinding",
        "metadata": meta(name, json!({})),
        "roleRef": {"apiGroup": crate::GROUP, "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    })
}

/// Every default ClusterRoleBinding.
pub fn cluster_role_bindings() -> Vec<Value> {
    vec![
        binding("cluster-admin", "cluster-admin", &[crate::SYSTEM_MASTERS]),
        binding(
            "system:discovery",
            "system:discovery",
            &[crate::SYSTEM_AUTHENTICATED],
        ),
        binding(
            "system:basic-user",
            "system:basic-user",
            &[crate::SYSTEM_AUTHENTICATED],
        ),
        binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            &[crate::SYSTEM_AUTHENTICATED, crate::SYSTEM_UNAUTHENTICATED],
        ),
    ]
}

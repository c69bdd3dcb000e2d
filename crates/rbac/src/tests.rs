//! Reason-labelled tables for matching, subjects, scope, aggregation,
//! coverage and messages.

use pretty_assertions::assert_eq;
use serde_json::{json, Value};

use crate::*;

fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo {
        name: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..UserInfo::default()
    }
}

fn cluster_role(name: &str, labels: Value, rules: Value) -> Value {
    json!({"metadata": {"name": name, "labels": labels}, "rules": rules})
}

fn binding(name: &str, namespace: Option<&str>, kind: &str, role: &str, subjects: Value) -> Value {
    let mut meta = json!({"name": name});
    if let Some(ns) = namespace {
        meta["namespace"] = json!(ns);
    }
    json!({"metadata": meta, "roleRef": {"apiGroup": GROUP, "kind": kind, "name": role}, "subjects": subjects})
}

fn policy() -> Policy {
    let mut cluster_roles = defaults::cluster_roles();
    cluster_roles.push(cluster_role(
        "pods-reader",
        json!({}),
        json!([{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}]),
    ));
    cluster_roles.push(cluster_role(
        "one-config",
        json!({}),
        json!([{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["settings"], "verbs": ["get", "update"]}]),
    ));
    cluster_roles.push(cluster_role(
        "any-status",
        json!({}),
        json!([{"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["get"]}, {"nonResourceURLs": ["/logs/*"], "verbs": ["get"]}]),
    ));
    cluster_roles.push(cluster_role(
        "widgets",
        json!({"rbac.authorization.k8s.io/aggregate-to-edit": "true"}),
        json!([{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["create"]}]),
    ));
    let roles = vec![
        json!({"metadata": {"name": "lease-writer", "namespace": "team-a"},
        "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["update"]}]}),
    ];
    let mut crbs = defaults::cluster_role_bindings();
    crbs.push(binding(
        "ops-status",
        None,
        "ClusterRole",
        "any-status",
        json!([{"kind": "Group", "name": "ops"}]),
    ));
    let rbs = vec![
        binding(
            "alice-edit",
            Some("team-a"),
            "ClusterRole",
            "edit",
            json!([{"kind": "User", "name": "alice"}]),
        ),
        binding(
            "pods",
            Some("team-a"),
            "ClusterRole",
            "pods-reader",
            json!([{"kind": "ServiceAccount", "name": "builder"}]),
        ),
        binding(
            "settings",
            Some("team-b"),
            "ClusterRole",
            "one-config",
            json!([{"kind": "User", "name": "alice"}]),
        ),
        binding(
            "leases",
            Some("team-a"),
            "Role",
            "lease-writer",
            json!([{"kind": "ServiceAccount", "name": "ci", "namespace": "tools"}]),
        ),
    ];
    Policy::new(&roles, &cluster_roles, &rbs, &crbs)
}

#[test]
fn authorize_follows_upstream_rbac() {
    struct Case {
        reason: &'static str,
        user: UserInfo,
        verb: &'static str,
        namespace: &'static str,
        group: &'static str,
        resource: &'static str,
        subresource: &'static str,
        name: &'static str,
        path: Option<&'static str>,
        want: bool,
    }
    let base = |reason, user: UserInfo, verb, namespace, group, resource, want| Case {
        reason,
        user,
        verb,
        namespace,
        group,
        resource,
        subresource: "",
        name: "",
        path: None,
        want,
    };
    let alice = user("alice", &[SYSTEM_AUTHENTICATED]);
    let builder = UserInfo {
        name: service_account_user("team-a", "builder"),
        groups: service_account_groups("team-a"),
        ..UserInfo::default()
    };
    let cases = vec![
        base(
            "system:masters may do anything",
            user("root", &[SYSTEM_MASTERS]),
            "delete",
            "",
            "",
            "namespaces",
            true,
        ),
        base(
            "edit, aggregated, lets alice create Secrets in her namespace",
            alice.clone(),
            "create",
            "team-a",
            "",
            "secrets",
            true,
        ),
        base(
            "a RoleBinding grants nothing in another namespace",
            alice.clone(),
            "list",
            "plinth-system",
            "",
            "secrets",
            false,
        ),
        base(
            "a RoleBinding grants nothing at the cluster scope",
            alice.clone(),
            "list",
            "",
            "",
            "secrets",
            false,
        ),
        base(
            "a role aggregated into edit joins it",
            alice.clone(),
            "create",
            "team-a",
            "example.com",
            "widgets",
            true,
        ),
        base(
            "edit does not bind roles",
            alice.clone(),
            "create",
            "team-a",
            "rbac.authorization.k8s.io",
            "rolebindings",
            false,
        ),
        base(
            "a service account subject without a namespace is in the binding's",
            builder.clone(),
            "list",
            "team-a",
            "",
            "pods",
            true,
        ),
        base(
            "the group must match",
            alice.clone(),
            "list",
            "team-a",
            "apps",
            "pods",
            false,
        ),
        Case {
            subresource: "log",
            ..base(
                "pods/log names the subresource",
                builder.clone(),
                "get",
                "team-a",
                "",
                "pods",
                true,
            )
        },
        Case {
            subresource: "exec",
            ..base(
                "pods does not reach other subresources",
                builder.clone(),
                "get",
                "team-a",
                "",
                "pods",
                false,
            )
        },
        Case {
            subresource: "status",
            ..base(
                "*/status reaches any resource's status",
                user("o", &["ops"]),
                "get",
                "team-a",
                "apps",
                "deployments",
                true,
            )
        },
        base(
            "*/status is not the resource itself",
            user("o", &["ops"]),
            "get",
            "team-a",
            "apps",
            "deployments",
            false,
        ),
        Case {
            name: "settings",
            ..base(
                "resourceNames lets the named object through",
                alice.clone(),
                "get",
                "team-b",
                "",
                "configmaps",
                true,
            )
        },
        Case {
            name: "other",
            ..base(
                "and no other",
                alice.clone(),
                "get",
                "team-b",
                "",
                "configmaps",
                false,
            )
        },
        base(
            "resourceNames never allow a list",
            alice.clone(),
            "list",
            "team-b",
            "",
            "configmaps",
            false,
        ),
        base(
            "a Role in the binding's namespace applies",
            UserInfo {
                name: service_account_user("tools", "ci"),
                ..UserInfo::default()
            },
            "update",
            "team-a",
            "coordination.k8s.io",
            "leases",
            true,
        ),
        Case {
            path: Some("/apis/apps"),
            ..base(
                "discovery is for every authenticated user",
                alice.clone(),
                "get",
                "",
                "",
                "",
                true,
            )
        },
        Case {
            path: Some("/logs/x/y"),
            ..base(
                "a trailing * is a prefix",
                user("o", &["ops"]),
                "get",
                "",
                "",
                "",
                true,
            )
        },
        Case {
            path: Some("/metrics"),
            ..base(
                "other URLs are not",
                alice.clone(),
                "get",
                "",
                "",
                "",
                false,
            )
        },
        base(
            "anyone authenticated may ask what it may do",
            alice.clone(),
            "create",
            "",
            "authorization.k8s.io",
            "selfsubjectaccessreviews",
            true,
        ),
    ];
    let policy = policy();
    for case in cases {
        let attrs = Attributes {
            user: &case.user,
            verb: case.verb,
            resource_request: case.path.is_none(),
            namespace: case.namespace,
            api_group: case.group,
            api_version: "v1",
            resource: case.resource,
            subresource: case.subresource,
            name: case.name,
            path: case.path.unwrap_or(""),
        };
        assert_eq!(
            policy.authorize(&attrs).allowed,
            case.want,
            "{}",
            case.reason
        );
    }
}

#[test]
fn an_allow_says_which_binding() {
    let alice = user("alice", &[]);
    let attrs = Attributes::resource(&alice, "get", "team-a", "", "secrets");
    assert_eq!(
        policy().authorize(&attrs).reason,
        r#"RBAC: allowed by RoleBinding "alice-edit/team-a" of ClusterRole "edit" to User "alice""#
    );
}

#[test]
fn aggregated_roles_report_the_rules_to_write_back() {
    let policy = policy();
    let stale: Vec<String> = policy
        .stale_aggregations()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        stale,
        vec!["admin", "edit", "view"],
        "the defaults ship with empty rules"
    );
    let edit = policy.cluster_role_rules("edit").expect("edit");
    assert!(edit.iter().any(|r| r.resources == ["widgets"]));
    assert!(
        !policy
            .cluster_role_rules("view")
            .expect("view")
            .iter()
            .any(|r| r.resources.contains(&"secrets".to_string())),
        "view reads no Secrets"
    );
}

#[test]
fn match_expressions_select_as_label_selectors_do() {
    let roles = vec![
        json!({"metadata": {"name": "agg"}, "aggregationRule": {"clusterRoleSelectors": [{"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}, {"key": "off", "operator": "DoesNotExist"}]}]}}),
        cluster_role(
            "in-a",
            json!({"tier": "a"}),
            json!([{"apiGroups": [""], "resources": ["x"], "verbs": ["get"]}]),
        ),
        cluster_role(
            "in-c",
            json!({"tier": "c"}),
            json!([{"apiGroups": [""], "resources": ["y"], "verbs": ["get"]}]),
        ),
        cluster_role(
            "off",
            json!({"tier": "b", "off": "1"}),
            json!([{"apiGroups": [""], "resources": ["z"], "verbs": ["get"]}]),
        ),
    ];
    let policy = Policy::new(&[], &roles, &[], &[]);
    let got: Vec<Vec<String>> = policy
        .cluster_role_rules("agg")
        .expect("agg")
        .iter()
        .map(|r| r.resources.clone())
        .collect();
    assert_eq!(got, vec![vec!["x".to_string()]]);
}

#[test]
fn coverage_refuses_what_is_not_held() {
    fn rule(v: Value) -> PolicyRule {
        serde_json::from_value(v).expect("rule")
    }
    struct Case {
        reason: &'static str,
        owner: Vec<PolicyRule>,
        servant: Vec<PolicyRule>,
        missing: usize,
    }
    let star = rule(json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}));
    let secrets_rw =
        rule(json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create"]}));
    let cases = [
        Case {
            reason: "* covers anything",
            owner: vec![star.clone()],
            servant: vec![secrets_rw.clone()],
            missing: 0,
        },
        Case {
            reason: "a servant * needs an owner *",
            owner: vec![secrets_rw.clone()],
            servant: vec![star.clone()],
            missing: 1,
        },
        Case {
            reason: "each verb is checked alone",
            owner: vec![rule(
                json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}),
            )],
            servant: vec![secrets_rw.clone()],
            missing: 1,
        },
        Case {
            reason: "*/status covers x/status",
            owner: vec![rule(
                json!({"apiGroups": ["a"], "resources": ["*/status"], "verbs": ["get"]}),
            )],
            servant: vec![rule(
                json!({"apiGroups": ["a"], "resources": ["x/status"], "verbs": ["get"]}),
            )],
            missing: 0,
        },
        Case {
            reason: "an owner without names covers any names",
            owner: vec![secrets_rw.clone()],
            servant: vec![rule(
                json!({"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a"], "verbs": ["get"]}),
            )],
            missing: 0,
        },
        Case {
            reason: "an owner with names covers only those",
            owner: vec![rule(
                json!({"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a"], "verbs": ["get"]}),
            )],
            servant: vec![rule(
                json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}),
            )],
            missing: 1,
        },
        Case {
            reason: "a URL prefix covers what is under it",
            owner: vec![rule(
                json!({"nonResourceURLs": ["/foo/*"], "verbs": ["get"]}),
            )],
            servant: vec![rule(
                json!({"nonResourceURLs": ["/foo/bar", "/foo/*"], "verbs": ["get"]}),
            )],
            missing: 0,
        },
    ];
    for case in cases {
        let got = match covers(&case.owner, &case.servant) {
            Ok(()) => 0,
            Err(missing) => missing.len(),
        };
        assert_eq!(got, case.missing, "{}", case.reason);
    }
}

#[test]
fn forbidden_messages_read_as_kube_apiserver_writes_them() {
    let alice = user("alice", &[]);
    let cases = [
        (
            Attributes::resource(&alice, "list", "plinth-system", "", "secrets"),
            r#"User "alice" cannot list resource "secrets" in API group "" in the namespace "plinth-system""#,
        ),
        (
            Attributes::resource(&alice, "create", "", GROUP, "clusterrolebindings"),
            r#"User "alice" cannot create resource "clusterrolebindings" in API group "rbac.authorization.k8s.io" at the cluster scope"#,
        ),
        (
            Attributes::resource(&alice, "update", "a", "g", "things").with_subresource("status"),
            r#"User "alice" cannot update resource "things/status" in API group "g" in the namespace "a""#,
        ),
        (
            Attributes::non_resource(&alice, "get", "/metrics"),
            r#"User "alice" cannot get path "/metrics""#,
        ),
    ];
    for (attrs, want) in cases {
        assert_eq!(forbidden_message(&attrs), want);
    }
}

#[test]
fn rules_for_lists_cluster_and_namespace_rules() {
    let alice = user("alice", &[SYSTEM_AUTHENTICATED]);
    let rules = policy().rules_for(&alice, "team-a");
    assert!(rules
        .resource_rules
        .iter()
        .any(|r| r.resources.contains(&"secrets".to_string())));
    assert!(rules
        .non_resource_rules
        .iter()
        .any(|r| r.non_resource_urls.contains(&"/apis/*".to_string())));
    assert!(!rules.incomplete);
    let elsewhere = policy().rules_for(&alice, "plinth-system");
    assert!(!elsewhere
        .resource_rules
        .iter()
        .any(|r| r.resources.contains(&"secrets".to_string())));
}

#[test]
fn objects_that_do_not_parse_grant_nothing_and_are_reported() {
    let policy = Policy::new(
        &[],
        &[json!({"metadata": {"name": "bad"}, "rules": "nope"})],
        &[],
        &[json!({"metadata": {"name": "b"}})],
    );
    assert_eq!(policy.problems().len(), 2);
}

#[test]
fn authorize_stays_fast_with_thousands_of_bindings() {
    let mut rbs = Vec::new();
    for i in 0..2_000 {
        rbs.push(binding(
            &format!("b{i}"),
            Some(&format!("ns{i}")),
            "ClusterRole",
            "edit",
            json!([{"kind": "User", "name": format!("user{i}")}]),
        ));
    }
    let policy = Policy::new(
        &[],
        &defaults::cluster_roles(),
        &rbs,
        &defaults::cluster_role_bindings(),
    );
    let someone = user("user1999", &[SYSTEM_AUTHENTICATED]);
    let started = std::time::Instant::now();
    for _ in 0..100_000 {
        let attrs = Attributes::resource(&someone, "get", "ns1999", "", "configmaps");
        assert!(policy.authorize(&attrs).allowed);
    }
    // Generous: the index makes this a few microseconds per call at most.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

//! Multi-tenancy end to end, through the real kubectl with each user's own
//! kubeconfig: users from `plinth user add` (a token or a client
//! certificate), Kubernetes RBAC with the default roles and the ClusterRoles
//! every XRD gets, `kubectl auth whoami` and `kubectl auth can-i` agreeing
//! with what the server does, escalation refused, service-account tokens
//! from `kubectl create token` (and refused once expired), revocation, and
//! the audit log.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::{kubectl_bin, plinth_bin, postgres_url, Plinth, Run};

const CLAIM: &str = r#"
apiVersion: platform.plinth.dev/v1alpha1
kind: PostgreSQLInstance
metadata: {name: orders, namespace: team-a}
spec:
  parameters: {size: small}
  compositionSelector:
    matchLabels: {provider: local}
  writeConnectionSecretToRef: {name: orders-db}
"#;

/// `plinth user add`, writing the user's kubeconfig into the data directory.
async fn add_user(plinth: &Plinth, name: &str, extra: &[&str]) -> PathBuf {
    let path = plinth.dir.path().join(format!("{name}.kubeconfig"));
    let out = tokio::process::Command::new(plinth_bin())
        .args(["user", "add", name, "--data-dir"])
        .arg(plinth.dir.path())
        .arg("--kubeconfig")
        .arg(&path)
        .args(extra)
        .output()
        .await
        .expect("plinth user add runs");
    assert!(
        out.status.success(),
        "plinth user add {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// kubectl as the user whose kubeconfig is `kubeconfig`.
async fn kubectl_as(plinth: &Plinth, kubeconfig: &Path, args: &[&str], input: Option<&str>) -> Run {
    let mut cmd = tokio::process::Command::new(kubectl_bin());
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(plinth.dir.path().join(format!(
            "cache-{}",
            kubeconfig.file_name().and_then(|n| n.to_str()).unwrap_or("x")
        )))
        .args(args)
        .stdin(if input.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("kubectl runs");
    if let Some(text) = input {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).await.expect("write stdin");
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("kubectl finishes")
        .expect("kubectl output");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// What `kubectl auth can-i` answers: true for "yes".
async fn can_i(plinth: &Plinth, kubeconfig: &Path, args: &[&str]) -> bool {
    let mut all = vec!["auth", "can-i"];
    all.extend(args);
    let run = kubectl_as(plinth, kubeconfig, &all, None).await;
    match run.stdout.trim() {
        "yes" => true,
        "no" => false,
        other => panic!("kubectl auth can-i {args:?}: {other:?} / {}", run.stderr),
    }
}

fn whoami(run: &Run) -> Value {
    assert!(run.ok, "kubectl auth whoami: {}", run.stderr);
    serde_json::from_str(&run.stdout).expect("whoami JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn teams_claim_in_their_namespace_and_nowhere_else() {
    let url = postgres_url();
    let audit = tempfile::NamedTempFile::new().expect("temp file");
    let audit_path = audit.path().to_str().expect("utf-8 path").to_string();
    let plinth =
        Plinth::start_with(&["--local-postgres-url", &url, "--audit-log", &audit_path]).await;
    for ns in ["team-a", "team-b"] {
        plinth.kubectl_ok(&["create", "namespace", ns]).await;
    }
    plinth
        .kubectl_ok(&[
            "-n",
            "team-b",
            "create",
            "secret",
            "generic",
            "theirs",
            "--from-literal=password=team-b-only",
        ])
        .await;
    let alice = add_user(&plinth, "alice", &["--namespace", "team-a"]).await;
    plinth
        .kubectl_ok(&[
            "-n",
            "team-a",
            "create",
            "rolebinding",
            "alice-edit",
            "--clusterrole=edit",
            "--user=alice",
        ])
        .await;

    // Who she is.
    let me = whoami(&kubectl_as(&plinth, &alice, &["auth", "whoami", "-o", "json"], None).await);
    assert_eq!(me["status"]["userInfo"]["username"], "alice");
    assert!(me["status"]["userInfo"]["groups"]
        .as_array()
        .is_some_and(|g| g.iter().any(|g| g == "system:authenticated")));

    // She claims a database in her namespace and reads its Secret there.
    let run = kubectl_as(&plinth, &alice, &["apply", "-f", "-"], Some(CLAIM)).await;
    assert!(run.ok, "alice claims: {}", run.stderr);
    let run = kubectl_as(
        &plinth,
        &alice,
        &[
            "wait",
            "--for=condition=Ready",
            "postgresqlinstance/orders",
            "--timeout=120s",
        ],
        None,
    )
    .await;
    assert!(
        run.ok,
        "the claim becomes Ready under the controllers' own RBAC: {} {}",
        run.stdout, run.stderr
    );
    let run = kubectl_as(
        &plinth,
        &alice,
        &[
            "get",
            "secret",
            "orders-db",
            "-o",
            "jsonpath={.data.password}",
        ],
        None,
    )
    .await;
    assert!(
        run.ok && !run.stdout.is_empty(),
        "alice reads her connection Secret: {}",
        run.stderr
    );

    // What she may not do, the server refuses, with kube-apiserver's message.
    let denied: [(&[&str], &str); 4] = [
        (
            &["-n", "plinth-system", "get", "secrets"],
            r#"secrets is forbidden: User "alice" cannot list resource "secrets" in API group "" in the namespace "plinth-system""#,
        ),
        (
            &["-n", "team-b", "get", "secret", "theirs"],
            r#"secrets "theirs" is forbidden: User "alice" cannot get resource "secrets" in API group "" in the namespace "team-b""#,
        ),
        (
            &["get", "xpostgresqlinstances.platform.plinth.dev"],
            r#"xpostgresqlinstances.platform.plinth.dev is forbidden: User "alice" cannot list resource "xpostgresqlinstances" in API group "platform.plinth.dev" at the cluster scope"#,
        ),
        (
            &[
                "create",
                "clusterrolebinding",
                "mine",
                "--clusterrole=cluster-admin",
                "--user=alice",
            ],
            r#"clusterrolebindings.rbac.authorization.k8s.io is forbidden: User "alice" cannot create resource "clusterrolebindings" in API group "rbac.authorization.k8s.io" at the cluster scope"#,
        ),
    ];
    for (args, message) in denied {
        let run = kubectl_as(&plinth, &alice, args, None).await;
        assert!(!run.ok, "{args:?} must be refused");
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("team-b-only"));
    }

    // can-i agrees with the server, case by case.
    let answers: [(&[&str], bool); 8] = [
        (
            &[
                "create",
                "postgresqlinstances.platform.plinth.dev",
                "-n",
                "team-a",
            ],
            true,
        ),
        (&["get", "secrets", "-n", "team-a"], true),
        (&["list", "secrets", "-n", "plinth-system"], false),
        (&["get", "secrets", "-n", "team-b"], false),
        (&["list", "xpostgresqlinstances.platform.plinth.dev"], false),
        (&["create", "clusterrolebindings"], false),
        (&["create", "rolebindings", "-n", "team-a"], false),
        (&["get", "secrets/theirs", "-n", "team-b"], false),
    ];
    for (args, want) in answers {
        assert_eq!(
            can_i(&plinth, &alice, args).await,
            want,
            "kubectl auth can-i {args:?}"
        );
    }
    let run = kubectl_as(
        &plinth,
        &alice,
        &["auth", "can-i", "--list", "-n", "team-a"],
        None,
    )
    .await;
    assert!(run.ok, "can-i --list: {}", run.stderr);
    assert!(
        run.stdout
            .contains("postgresqlinstances.platform.plinth.dev"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("xpostgresqlinstances"),
        "{}",
        run.stdout
    );

    // Escalation: edit cannot grant admin; admin can grant admin, not cluster-admin.
    let run = kubectl_as(
        &plinth,
        &alice,
        &[
            "-n",
            "team-a",
            "create",
            "rolebinding",
            "bob-admin",
            "--clusterrole=admin",
            "--user=bob",
        ],
        None,
    )
    .await;
    assert!(
        !run.ok && run.stderr.contains("forbidden"),
        "edit cannot grant admin: {}",
        run.stderr
    );
    let carol = add_user(&plinth, "carol", &["--namespace", "team-a"]).await;
    plinth
        .kubectl_ok(&[
            "-n",
            "team-a",
            "create",
            "rolebinding",
            "carol-admin",
            "--clusterrole=admin",
            "--user=carol",
        ])
        .await;
    let run = kubectl_as(
        &plinth,
        &carol,
        &[
            "-n",
            "team-a",
            "create",
            "rolebinding",
            "dave-admin",
            "--clusterrole=admin",
            "--user=dave",
        ],
        None,
    )
    .await;
    assert!(
        run.ok,
        "admin may hand on admin in its namespace: {}",
        run.stderr
    );
    let run = kubectl_as(
        &plinth,
        &carol,
        &[
            "-n",
            "team-a",
            "create",
            "rolebinding",
            "dave-root",
            "--clusterrole=cluster-admin",
            "--user=dave",
        ],
        None,
    )
    .await;
    assert!(!run.ok, "admin cannot grant cluster-admin");
    assert!(
        run.stderr
            .contains("is attempting to grant RBAC permissions not currently held"),
        "{}",
        run.stderr
    );

    // A client certificate names the user (CN) and its groups (O).
    let bob = add_user(
        &plinth,
        "bob",
        &["--group", "devs", "--auth", "certificate"],
    )
    .await;
    let me = whoami(&kubectl_as(&plinth, &bob, &["auth", "whoami", "-o", "json"], None).await);
    assert_eq!(me["status"]["userInfo"]["username"], "bob");
    assert!(me["status"]["userInfo"]["groups"]
        .as_array()
        .is_some_and(|g| g.iter().any(|g| g == "devs")));

    // Removing a user ends its credentials at once.
    let out = tokio::process::Command::new(plinth_bin())
        .args(["user", "remove", "alice", "--data-dir"])
        .arg(plinth.dir.path())
        .output()
        .await
        .expect("plinth user remove runs");
    assert!(out.status.success());
    let run = kubectl_as(&plinth, &alice, &["get", "configmaps"], None).await;
    assert!(
        !run.ok && run.stderr.contains("Unauthorized"),
        "a removed user: {}",
        run.stderr
    );

    // The admin acting as her: the audit log says who sent it and as whom.
    plinth
        .kubectl_ok(&["-n", "team-a", "get", "configmaps", "--as", "alice"])
        .await;

    // The audit log has her denied request, and never a Secret's data.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = std::fs::read_to_string(&audit_path).expect("audit log");
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect();
    assert!(lines
        .iter()
        .all(|e| e["apiVersion"] == "audit.k8s.io/v1" && e["level"] == "Metadata"));
    assert!(lines.iter().any(|e| e["user"]["username"] == "alice"
        && e["verb"] == "list"
        && e["objectRef"]["resource"] == "secrets"
        && e["objectRef"]["namespace"] == "plinth-system"
        && e["responseStatus"]["code"] == 403
        && e["annotations"]["authorization.k8s.io/decision"] == "forbid"));
    assert!(
        lines.iter().any(|e| e["user"]["username"] == "plinth-admin"
            && e["impersonatedUser"]["username"] == "alice"
            && e["verb"] == "list"
            && e["objectRef"]["resource"] == "configmaps"),
        "the impersonated list in the audit log"
    );
    assert!(
        !log.contains("team-b-only") && !log.contains("dGVhbS1iLW9ubHk="),
        "no Secret data in the audit log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn service_account_tokens_work_until_they_expire() {
    let plinth = Plinth::start_with(&["--no-bundled-providers"]).await;
    plinth.kubectl_ok(&["create", "namespace", "team-a"]).await;
    plinth
        .kubectl_ok(&["-n", "team-a", "create", "serviceaccount", "builder"])
        .await;
    plinth
        .kubectl_ok(&[
            "-n",
            "team-a",
            "create",
            "rolebinding",
            "builder-view",
            "--clusterrole=view",
            "--serviceaccount=team-a:builder",
        ])
        .await;
    let token = plinth
        .kubectl_ok(&["-n", "team-a", "create", "token", "builder"])
        .await;
    let token = token.trim();
    // Three base64url parts: a JWT.
    assert_eq!(token.split('.').count(), 3);

    let as_builder = |token: String, args: &'static [&'static str]| {
        let plinth = &plinth;
        async move {
            let mut all = vec!["--token".to_string(), token];
            all.extend(args.iter().map(|s| s.to_string()));
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            plinth.kubectl(&refs).await
        }
    };
    let me = whoami(&as_builder(token.to_string(), &["auth", "whoami", "-o", "json"]).await);
    assert_eq!(
        me["status"]["userInfo"]["username"],
        "system:serviceaccount:team-a:builder"
    );
    let groups = me["status"]["userInfo"]["groups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for g in [
        "system:serviceaccounts",
        "system:serviceaccounts:team-a",
        "system:authenticated",
    ] {
        assert!(groups.iter().any(|x| x == g), "groups {groups:?} lack {g}");
    }
    let run = as_builder(token.to_string(), &["-n", "team-a", "get", "configmaps"]).await;
    assert!(run.ok, "view reads configmaps: {}", run.stderr);
    let run = as_builder(token.to_string(), &["-n", "team-a", "get", "secrets"]).await;
    assert!(
        !run.ok && run.stderr.contains("system:serviceaccount:team-a:builder"),
        "view reads no Secrets: {}",
        run.stderr
    );

    // A short-lived token stops working the second it expires.
    let short = plinth
        .kubectl_ok(&[
            "-n",
            "team-a",
            "create",
            "token",
            "builder",
            "--duration=2s",
        ])
        .await;
    let run = as_builder(
        short.trim().to_string(),
        &["-n", "team-a", "get", "configmaps"],
    )
    .await;
    assert!(run.ok, "a fresh token works: {}", run.stderr);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let run = as_builder(
        short.trim().to_string(),
        &["-n", "team-a", "get", "configmaps"],
    )
    .await;
    assert!(
        !run.ok && run.stderr.contains("Unauthorized"),
        "an expired token: {}",
        run.stderr
    );

    // Deleting the account ends its tokens.
    plinth
        .kubectl_ok(&["-n", "team-a", "delete", "serviceaccount", "builder"])
        .await;
    let run = as_builder(token.to_string(), &["-n", "team-a", "get", "configmaps"]).await;
    assert!(
        !run.ok && run.stderr.contains("Unauthorized"),
        "a deleted account's token: {}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn default_roles_aggregate_and_show_their_rules() {
    let plinth = Plinth::start_with(&["--no-bundled-providers"]).await;
    let edit: Value = serde_json::from_str(
        &plinth
            .kubectl_ok(&["get", "clusterrole", "edit", "-o", "json"])
            .await,
    )
    .expect("JSON");
    assert_eq!(
        edit["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"]
            ["rbac.authorization.k8s.io/aggregate-to-edit"],
        "true"
    );
    // The aggregated rules are written back, as the aggregation controller does.
    support::eventually(
        Duration::from_secs(20),
        "edit's aggregated rules",
        || async {
            let edit: Value = serde_json::from_str(
                &plinth
                    .kubectl_ok(&["get", "clusterrole", "edit", "-o", "json"])
                    .await,
            )
            .unwrap_or_default();
            edit["rules"].as_array().is_some_and(|r| !r.is_empty())
        },
    )
    .await;
    // A new ClusterRole with the label joins at once.
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: widgets-edit
  labels: {rbac.authorization.k8s.io/aggregate-to-edit: "true"}
rules:
- apiGroups: [example.com]
  resources: [widgets]
  verbs: [get, create]
"#,
        )
        .await;
    plinth.kubectl_ok(&["create", "namespace", "team-a"]).await;
    let alice = add_user(&plinth, "alice", &[]).await;
    plinth
        .kubectl_ok(&[
            "-n",
            "team-a",
            "create",
            "rolebinding",
            "alice-edit",
            "--clusterrole=edit",
            "--user=alice",
        ])
        .await;
    assert!(
        can_i(
            &plinth,
            &alice,
            &["create", "widgets.example.com", "-n", "team-a"]
        )
        .await
    );
    assert!(
        !can_i(
            &plinth,
            &alice,
            &["create", "widgets.example.com", "-n", "default"]
        )
        .await
    );
    // A rule with resourceNames covers a list or watch of that one name,
    // as kube-apiserver authorizes `kubectl get X -w`, and nothing wider.
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: shared, namespace: team-a}
data: {colour: blue}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: read-shared, namespace: team-a}
rules:
- apiGroups: [""]
  resources: [configmaps]
  resourceNames: [shared]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bob-read-shared, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: read-shared}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}
"#,
        )
        .await;
    let bob = add_user(&plinth, "bob", &[]).await;
    let named = kubectl_as(
        &plinth,
        &bob,
        &[
            "-n",
            "team-a",
            "get",
            "configmaps",
            "--field-selector",
            "metadata.name=shared",
            "-o",
            "name",
        ],
        None,
    )
    .await;
    assert!(
        named.ok && named.stdout.trim() == "configmap/shared",
        "{named:?}"
    );
    let watched = kubectl_as(
        &plinth,
        &bob,
        &["get", "--raw", "/api/v1/namespaces/team-a/configmaps?watch=true&fieldSelector=metadata.name%3Dshared&timeoutSeconds=1"],
        None,
    )
    .await;
    assert!(
        watched.ok && watched.stdout.contains(r#""type":"ADDED""#),
        "{watched:?}"
    );
    let all = kubectl_as(&plinth, &bob, &["-n", "team-a", "get", "configmaps"], None).await;
    assert!(
        !all.ok && all.stderr.contains(r#"cannot list resource "configmaps""#),
        "{all:?}"
    );
    assert!(
        can_i(
            &plinth,
            &bob,
            &["list", "configmaps/shared", "-n", "team-a"]
        )
        .await
    );
    assert!(!can_i(&plinth, &bob, &["list", "configmaps", "-n", "team-a"]).await);
    // A server-side apply that would create takes create, as on a cluster:
    // with patch alone bob changes what exists and makes nothing new.
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: patch-configmaps, namespace: team-a}
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bob-patch-configmaps, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: patch-configmaps}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}
"#,
        )
        .await;
    let config_map = |name: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: team-a}}\ndata: {{colour: green}}\n")
    };
    let changed = kubectl_as(
        &plinth,
        &bob,
        &[
            "apply",
            "--server-side",
            "--field-manager=bob",
            "--force-conflicts",
            "-f",
            "-",
        ],
        Some(&config_map("shared")),
    )
    .await;
    assert!(changed.ok, "{changed:?}");
    let created = kubectl_as(
        &plinth,
        &bob,
        &["apply", "--server-side", "--field-manager=bob", "-f", "-"],
        Some(&config_map("fresh")),
    )
    .await;
    assert!(
        !created.ok
            && created.stderr.contains(r#"configmaps "fresh" is forbidden: User "bob" cannot create resource "configmaps" in API group "" in the namespace "team-a""#),
        "{created:?}"
    );
    assert!(
        !plinth
            .kubectl(&["-n", "team-a", "get", "configmap", "fresh"])
            .await
            .ok
    );
    // The admin may impersonate, as `kubectl --as` asks; the answers are
    // the impersonated user's own.
    let as_bob = plinth
        .kubectl(&[
            "-n",
            "team-a",
            "get",
            "configmap",
            "shared",
            "-o",
            "name",
            "--as",
            "bob",
        ])
        .await;
    assert!(
        as_bob.ok && as_bob.stdout.trim() == "configmap/shared",
        "{as_bob:?}"
    );
    let as_bob = plinth
        .kubectl(&["-n", "team-a", "get", "configmaps", "--as", "bob"])
        .await;
    assert!(
        !as_bob.ok
            && as_bob
                .stderr
                .contains(r#"User "bob" cannot list resource "configmaps""#),
        "{as_bob:?}"
    );
    let admin = plinth.kubeconfig.clone();
    assert!(
        !can_i(
            &plinth,
            &admin,
            &["list", "secrets", "-n", "plinth-system", "--as", "alice"]
        )
        .await
    );
    assert!(
        can_i(
            &plinth,
            &admin,
            &[
                "create",
                "widgets.example.com",
                "-n",
                "team-a",
                "--as",
                "alice"
            ]
        )
        .await
    );
    let who = whoami(
        &kubectl_as(
            &plinth,
            &admin,
            &[
                "auth",
                "whoami",
                "-o",
                "json",
                "--as",
                "bob",
                "--as-group",
                "auditors",
            ],
            None,
        )
        .await,
    );
    assert_eq!(who["status"]["userInfo"]["username"], "bob");
    assert_eq!(
        who["status"]["userInfo"]["groups"],
        serde_json::json!(["auditors", "system:authenticated"])
    );
    // Impersonating takes its own permission, which edit does not hold.
    let run = kubectl_as(
        &plinth,
        &alice,
        &["-n", "team-a", "get", "configmaps", "--as", "bob"],
        None,
    )
    .await;
    assert!(
        !run.ok
            && run.stderr.contains(r#"users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope"#),
        "{run:?}"
    );
    // A bad rule is refused with the field named.
    let run = plinth
        .kubectl_stdin(
            &["apply", "-f", "-"],
            Some("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: broken}\nrules:\n- resources: [pods]\n  verbs: [get]\n"),
        )
        .await;
    assert!(
        !run.ok && run.stderr.contains("rules[0].apiGroups"),
        "{}",
        run.stderr
    );
}

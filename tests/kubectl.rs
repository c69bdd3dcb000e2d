//! The real kubectl against a real `plinth up`, in the order a user meets it.

mod support;

use std::time::Duration;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::json;
use support::{eventually, Plinth, CRONTAB_CRD};
use tokio::io::AsyncBufReadExt;

const CRONTAB: &str = r#"
apiVersion: stable.example.com/v1
kind: CronTab
metadata:
  name: my-cron
  namespace: default
spec:
  cronSpec: "* * * * */5"
  image: my-image
"#;

fn crontabs(client: kube::Client) -> Api<DynamicObject> {
    let ar = ApiResource {
        group: "stable.example.com".into(),
        version: "v1".into(),
        api_version: "stable.example.com/v1".into(),
        kind: "CronTab".into(),
        plural: "crontabs".into(),
    };
    Api::namespaced_with(client, "default", &ar)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_walkthrough() {
    let plinth = Plinth::start().await;

    // The namespaces every cluster starts with.
    let ns = plinth.kubectl_ok(&["get", "ns"]).await;
    assert!(
        ns.contains("default") && ns.contains("plinth-system"),
        "{ns}"
    );

    // 1. apply a CRD, then a custom resource.
    plinth.apply_ok(&["apply", "-f", "-"], CRONTAB_CRD).await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            "crd/crontabs.stable.example.com",
            "--timeout=10s",
        ])
        .await;
    let out = plinth.apply_ok(&["apply", "-f", "-"], CRONTAB).await;
    assert!(
        out.contains("crontab.stable.example.com/my-cron created"),
        "{out}"
    );

    // 2. get with printer columns, get -o yaml, describe.
    let table = plinth.kubectl_ok(&["get", "crontabs"]).await;
    let header = table.lines().next().unwrap_or_default();
    for column in ["NAME", "SPEC", "REPLICAS", "READY", "AGE"] {
        assert!(header.contains(column), "missing column {column}: {table}");
    }
    assert!(
        table.contains("my-cron") && table.contains("* * * * */5"),
        "{table}"
    );
    let yaml = plinth
        .kubectl_ok(&["get", "ct", "my-cron", "-o", "yaml"])
        .await;
    assert!(
        yaml.contains("replicas: 1"),
        "the schema default was not applied:\n{yaml}"
    );
    assert!(
        yaml.contains("uid:") && yaml.contains("resourceVersion:"),
        "{yaml}"
    );
    let described = plinth.kubectl_ok(&["describe", "crontab", "my-cron"]).await;
    assert!(
        described.contains("my-cron") && described.contains("Cron Spec"),
        "{described}"
    );

    // 3. apply again with a change: client-side three-way merge.
    let changed = CRONTAB.replace("my-image", "my-image:v2") + "  replicas: 3\n";
    let out = plinth.apply_ok(&["apply", "-f", "-"], &changed).await;
    assert!(out.contains("configured"), "{out}");
    let image = plinth
        .kubectl_ok(&[
            "get",
            "ct",
            "my-cron",
            "-o",
            "jsonpath={.spec.image}/{.spec.replicas}",
        ])
        .await;
    assert_eq!(image, "my-image:v2/3");

    // 4. server-side apply: a conflict with the client-side applier, then forced.
    let ssa = changed.replace("my-image:v2", "my-image:v3");
    let run = plinth
        .kubectl_stdin(&["apply", "--server-side", "-f", "-"], Some(&ssa))
        .await;
    assert!(!run.ok, "expected a conflict, got: {}", run.stdout);
    assert!(run.stderr.contains("conflict"), "{}", run.stderr);
    assert!(run.stderr.contains(".spec.image"), "{}", run.stderr);
    plinth
        .apply_ok(
            &["apply", "--server-side", "--force-conflicts", "-f", "-"],
            &ssa,
        )
        .await;
    let image = plinth
        .kubectl_ok(&["get", "ct", "my-cron", "-o", "jsonpath={.spec.image}"])
        .await;
    assert_eq!(image, "my-image:v3");
    let managers = plinth
        .kubectl_ok(&[
            "get",
            "ct",
            "my-cron",
            "--show-managed-fields",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ])
        .await;
    assert!(managers.contains("kubectl"), "{managers}");

    // 5. patch (merge and JSON), label, annotate.
    plinth
        .kubectl_ok(&[
            "patch",
            "ct",
            "my-cron",
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":5}}"#,
        ])
        .await;
    plinth
        .kubectl_ok(&[
            "patch",
            "ct",
            "my-cron",
            "--type=json",
            "-p",
            r#"[{"op":"add","path":"/spec/size","value":"large"}]"#,
        ])
        .await;
    plinth
        .kubectl_ok(&["label", "ct", "my-cron", "tier=gold"])
        .await;
    plinth
        .kubectl_ok(&["annotate", "ct", "my-cron", "note=hello"])
        .await;
    let got = plinth
        .kubectl_ok(&["get", "ct", "my-cron", "-o", "jsonpath={.spec.replicas}/{.spec.size}/{.metadata.labels.tier}/{.metadata.annotations.note}"])
        .await;
    assert_eq!(got, "5/large/gold/hello");
    let selected = plinth
        .kubectl_ok(&["get", "ct", "-l", "tier=gold", "-o", "name"])
        .await;
    assert_eq!(selected.trim(), "crontab.stable.example.com/my-cron");
    let none = plinth
        .kubectl_ok(&["get", "ct", "-l", "tier=silver", "-o", "name"])
        .await;
    assert_eq!(none.trim(), "");

    // A merge patch that breaks the schema is refused with the field named.
    let run = plinth
        .kubectl(&[
            "patch",
            "ct",
            "my-cron",
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":50}}"#,
        ])
        .await;
    assert!(
        !run.ok && run.stderr.contains("spec.replicas"),
        "{}",
        run.stderr
    );

    // 6. kubectl wait for a condition the test sets through kube-rs.
    let client = plinth.client().await;
    let api = crontabs(client.clone());
    let waiter = {
        let kubeconfig = plinth.kubeconfig.clone();
        let cache = plinth.dir.path().join("kubectl-cache");
        tokio::spawn(async move {
            tokio::process::Command::new(support::kubectl_bin())
                .arg("--kubeconfig")
                .arg(kubeconfig)
                .arg("--cache-dir")
                .arg(cache)
                .args([
                    "wait",
                    "--for=condition=Ready",
                    "crontab/my-cron",
                    "--timeout=30s",
                ])
                .output()
                .await
                .expect("kubectl wait")
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Test", "message": "set by the test", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    api.patch_status("my-cron", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("patch status");
    let waited = waiter.await.expect("join");
    assert!(
        waited.status.success(),
        "kubectl wait failed: {}",
        String::from_utf8_lossy(&waited.stderr)
    );
    let table = plinth.kubectl_ok(&["get", "ct", "my-cron"]).await;
    assert!(table.contains("True"), "READY column: {table}");

    // 7. kubectl get -w sees a change.
    let mut watcher = tokio::process::Command::new(support::kubectl_bin())
        .arg("--kubeconfig")
        .arg(&plinth.kubeconfig)
        .arg("--cache-dir")
        .arg(plinth.dir.path().join("kubectl-cache"))
        .args([
            "get",
            "ct",
            "my-cron",
            "-w",
            "-o",
            "jsonpath={.spec.image}{\"\\n\"}",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl get -w");
    let mut lines = tokio::io::BufReader::new(watcher.stdout.take().expect("stdout")).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("initial watch line")
        .expect("read");
    assert_eq!(first.as_deref(), Some("my-image:v3"));
    plinth
        .kubectl_ok(&[
            "patch",
            "ct",
            "my-cron",
            "--type=merge",
            "-p",
            r#"{"spec":{"image":"watched"}}"#,
        ])
        .await;
    let next = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("watch saw the change")
        .expect("read");
    assert_eq!(next.as_deref(), Some("watched"));
    let _ = watcher.kill().await;

    // 8. delete --wait, with a finalizer held and then released.
    plinth
        .kubectl_ok(&[
            "patch",
            "ct",
            "my-cron",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
        ])
        .await;
    let deleter = {
        let kubeconfig = plinth.kubeconfig.clone();
        let cache = plinth.dir.path().join("kubectl-cache");
        tokio::spawn(async move {
            tokio::process::Command::new(support::kubectl_bin())
                .arg("--kubeconfig")
                .arg(kubeconfig)
                .arg("--cache-dir")
                .arg(cache)
                .args(["delete", "ct", "my-cron", "--wait=true", "--timeout=30s"])
                .output()
                .await
                .expect("kubectl delete")
        })
    };
    eventually(Duration::from_secs(10), "deletionTimestamp", || async {
        api.get("my-cron")
            .await
            .map(|o| o.metadata.deletion_timestamp.is_some())
            .unwrap_or(false)
    })
    .await;
    assert!(
        !deleter.is_finished(),
        "kubectl delete --wait returned while a finalizer held the object"
    );
    plinth
        .kubectl_ok(&[
            "patch",
            "ct",
            "my-cron",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
        ])
        .await;
    let deleted = tokio::time::timeout(Duration::from_secs(30), deleter)
        .await
        .expect("delete finished")
        .expect("join");
    assert!(
        deleted.status.success(),
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    let run = plinth.kubectl(&["get", "ct", "my-cron"]).await;
    assert!(!run.ok && run.stderr.contains("NotFound"), "{}", run.stderr);

    // 9. api-resources and explain.
    let resources = plinth.kubectl_ok(&["api-resources"]).await;
    let line = resources
        .lines()
        .find(|l| l.starts_with("crontabs"))
        .unwrap_or_else(|| panic!("crontabs not listed:\n{resources}"));
    assert!(
        line.contains("ct") && line.contains("stable.example.com/v1") && line.contains("CronTab"),
        "{line}"
    );
    assert!(
        resources.contains("configmaps") && resources.contains("leases"),
        "{resources}"
    );
    let explained = plinth.kubectl_ok(&["explain", "crontab.spec"]).await;
    assert!(
        explained.contains("cronSpec") && explained.contains("When to run"),
        "{explained}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rejects_invalid_objects_with_the_field_named() {
    let plinth = Plinth::start().await;
    plinth.apply_ok(&["apply", "-f", "-"], CRONTAB_CRD).await;
    let bad = CRONTAB.replace("* * * * */5", "every minute") + "  replicas: 0\n  size: huge\n";
    let run = plinth
        .kubectl_stdin(&["apply", "-f", "-"], Some(&bad))
        .await;
    assert!(!run.ok);
    for field in ["spec.cronSpec", "spec.replicas", "spec.size"] {
        assert!(
            run.stderr.contains(field),
            "{field} not named: {}",
            run.stderr
        );
    }
    let unknown = CRONTAB.to_string() + "  colour: blue\n";
    let run = plinth
        .kubectl_stdin(&["apply", "-f", "-"], Some(&unknown))
        .await;
    assert!(
        !run.ok && run.stderr.contains("colour"),
        "strict validation: {}",
        run.stderr
    );
    let run = plinth.kubectl(&["get", "nosuchthings"]).await;
    assert!(
        !run.ok && run.stderr.contains("nosuchthings"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_builtin_kinds_and_cascading_delete() {
    let plinth = Plinth::start().await;
    plinth.kubectl_ok(&["create", "namespace", "team-a"]).await;
    plinth
        .kubectl_ok(&[
            "-n",
            "team-a",
            "create",
            "configmap",
            "owner",
            "--from-literal=a=1",
        ])
        .await;
    plinth
        .kubectl_ok(&[
            "-n",
            "team-a",
            "create",
            "secret",
            "generic",
            "creds",
            "--from-literal=password=s3cret",
        ])
        .await;
    let secrets = plinth.kubectl_ok(&["-n", "team-a", "get", "secrets"]).await;
    assert!(
        secrets.contains("creds") && secrets.contains("Opaque"),
        "{secrets}"
    );
    let owner_uid = plinth
        .kubectl_ok(&[
            "-n",
            "team-a",
            "get",
            "cm",
            "owner",
            "-o",
            "jsonpath={.metadata.uid}",
        ])
        .await;
    let dependent = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dependent\n  namespace: team-a\n  ownerReferences:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: owner\n    uid: {owner_uid}\ndata:\n  b: \"2\"\n"
    );
    plinth.apply_ok(&["apply", "-f", "-"], &dependent).await;
    // Strategic merge patch on a built-in kind.
    plinth
        .kubectl_ok(&[
            "-n",
            "team-a",
            "patch",
            "cm",
            "owner",
            "-p",
            r#"{"data":{"c":"3"}}"#,
        ])
        .await;
    let data = plinth
        .kubectl_ok(&[
            "-n",
            "team-a",
            "get",
            "cm",
            "owner",
            "-o",
            "jsonpath={.data.a}{.data.c}",
        ])
        .await;
    assert_eq!(data, "13");
    // Background cascade: deleting the owner removes the dependent.
    plinth
        .kubectl_ok(&["-n", "team-a", "delete", "cm", "owner"])
        .await;
    let client = plinth.client().await;
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), "team-a");
    eventually(Duration::from_secs(10), "dependent collected", || async {
        matches!(cms.get("dependent").await, Err(kube::Error::Api(e)) if e.code == 404)
    })
    .await;
    // Deleting the namespace removes what is in it, then the namespace.
    plinth
        .kubectl_ok(&["delete", "namespace", "team-a", "--timeout=30s"])
        .await;
    let run = plinth.kubectl(&["get", "namespace", "team-a"]).await;
    assert!(!run.ok, "namespace still there: {}", run.stdout);
    let run = plinth
        .kubectl(&["-n", "team-a", "get", "secret", "creds"])
        .await;
    assert!(!run.ok, "secret survived its namespace: {}", run.stdout);
}

/// Built-in kinds through kubectl with its default (Strict) validation, and
/// `kubectl explain` from OpenAPI v2 as well as v3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_validates_built_in_kinds_and_explains_from_openapi_v2() {
    let plinth = Plinth::start().await;
    plinth.apply_ok(&["apply", "-f", "-"], CRONTAB_CRD).await;
    let typo = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\n  namespace: default\n  lables: {a: b}\ndata:\n  a: b\ndatta:\n  c: d\n";
    let run = plinth
        .kubectl_stdin(&["apply", "-f", "-"], Some(typo))
        .await;
    assert!(!run.ok, "{}", run.stdout);
    for field in [
        "unknown field \"metadata.lables\"",
        "unknown field \"datta\"",
    ] {
        assert!(run.stderr.contains(field), "{field}: {}", run.stderr);
    }
    let run = plinth
        .kubectl_stdin(&["apply", "--validate=warn", "-f", "-"], Some(typo))
        .await;
    assert!(
        run.ok && run.stderr.contains("unknown field \"datta\""),
        "{}",
        run.stderr
    );
    let stored: serde_json::Value = serde_json::from_str(
        &plinth
            .kubectl_ok(&["get", "configmap", "typo", "-o", "json"])
            .await,
    )
    .expect("json");
    assert!(stored.get("datta").is_none(), "{stored}");
    assert!(stored["metadata"].get("lables").is_none(), "{stored}");
    let run = plinth
        .kubectl(&[
            "create",
            "secret",
            "generic",
            "half-tls",
            "--type=kubernetes.io/tls",
            "--from-literal=tls.crt=x",
        ])
        .await;
    assert!(
        !run.ok && run.stderr.contains("data[tls.key]"),
        "{}",
        run.stderr
    );
    for (what, want) in [
        ("configmap.data", "map[string]string"),
        ("lease.spec.renewTime", "renewTime"),
        ("crontab.spec", "When to run"),
    ] {
        let explained = plinth
            .kubectl_ok(&["explain", "--output", "plaintext-openapiv2", what])
            .await;
        assert!(explained.contains(want), "{what}: {explained}");
    }
}

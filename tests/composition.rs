//! Composition end to end through the real kubectl: the built-in
//! PostgreSQLInstance claim on a real PostgreSQL (psql checks it), and a
//! user-defined XRD and Composition from examples/platform.

mod support;

use std::time::Duration;

use support::{eventually, postgres_url, psql, Plinth};

const WAIT: &str = "--timeout=120s";

async fn secret_value(plinth: &Plinth, namespace: &str, name: &str, key: &str) -> String {
    use base64::Engine;
    let encoded = plinth
        .kubectl_ok(&[
            "-n",
            namespace,
            "get",
            "secret",
            name,
            "-o",
            &format!("jsonpath={{.data.{key}}}"),
        ])
        .await;
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .expect("base64"),
    )
    .expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_postgresql_claim_end_to_end() {
    let url = postgres_url();
    let mut plinth = Plinth::start_with(&["--local-postgres-url", &url]).await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Offered",
            "xrd/xpostgresqlinstances.platform.plinth.dev",
            WAIT,
        ])
        .await;
    plinth.kubectl_ok(&["create", "namespace", "shop"]).await;
    let claim = include_str!("../examples/postgresql-claim.yaml")
        .replace("namespace: default", "namespace: shop");
    plinth.apply_ok(&["apply", "-f", "-"], &claim).await;

    // Ready within seconds, and psql works with the claim's Secret.
    let started = std::time::Instant::now();
    plinth
        .kubectl_ok(&[
            "-n",
            "shop",
            "wait",
            "--for=condition=Ready",
            "postgresqlinstance/orders",
            WAIT,
        ])
        .await;
    eprintln!("claim Ready after {:?}", started.elapsed());
    let uri = secret_value(&plinth, "shop", "orders-db", "uri").await;
    let user = secret_value(&plinth, "shop", "orders-db", "username").await;
    assert_eq!(
        psql(&uri, "SELECT current_user")
            .await
            .expect("psql with the claim's Secret"),
        user
    );
    let keys = plinth
        .kubectl_ok(&[
            "-n",
            "shop",
            "get",
            "secret",
            "orders-db",
            "-o",
            "jsonpath={.data}",
        ])
        .await;
    for key in ["host", "port", "username", "password", "database", "uri"] {
        assert!(
            keys.contains(&format!("\"{key}\"")),
            "missing {key}: {keys}"
        );
    }

    // A change of size reaches the managed resource and the server.
    let xr = plinth
        .kubectl_ok(&[
            "-n",
            "shop",
            "get",
            "postgresqlinstance",
            "orders",
            "-o",
            "jsonpath={.spec.resourceRef.name}",
        ])
        .await;
    let database = format!("{xr}-database");
    plinth
        .kubectl_ok(&[
            "-n",
            "shop",
            "patch",
            "postgresqlinstance",
            "orders",
            "--type=merge",
            "-p",
            r#"{"spec":{"parameters":{"size":"large","storageGB":50}}}"#,
        ])
        .await;
    eventually(
        Duration::from_secs(30),
        "the new size to reach PostgreSQL",
        || async {
            psql(
                &url,
                &format!("SELECT datconnlimit FROM pg_database WHERE datname = '{database}'"),
            )
            .await
            .as_deref()
                == Ok("100")
        },
    )
    .await;
    let storage = plinth
        .kubectl_ok(&[
            "get",
            "database",
            &database,
            "-o",
            "jsonpath={.metadata.annotations.platform\\.plinth\\.dev/storage-gb}",
        ])
        .await;
    assert_eq!(storage, "50");

    // plinth trace shows the tree: claim, composite resource, database.
    let trace = std::process::Command::new(support::plinth_bin())
        .args([
            "trace",
            "postgresqlinstance/orders",
            "-n",
            "shop",
            "--kubeconfig",
        ])
        .arg(&plinth.kubeconfig)
        .output()
        .expect("plinth trace");
    let tree = String::from_utf8_lossy(&trace.stdout);
    assert!(
        trace.status.success(),
        "{tree} {}",
        String::from_utf8_lossy(&trace.stderr)
    );
    assert!(tree.contains("PostgreSQLInstance/orders (shop)"), "{tree}");
    assert!(
        tree.contains(&format!("└─ XPostgreSQLInstance/{xr}")),
        "{tree}"
    );
    assert!(tree.contains(&format!("└─ Database/{database}")), "{tree}");
    let json = std::process::Command::new(support::plinth_bin())
        .args([
            "trace",
            "postgresqlinstance/orders",
            "-n",
            "shop",
            "-o",
            "json",
            "--kubeconfig",
        ])
        .arg(&plinth.kubeconfig)
        .output()
        .expect("plinth trace -o json");
    let tree: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON tree");
    assert_eq!(tree["children"][0]["children"][0]["kind"], "Database");
    assert_eq!(tree["children"][0]["children"][0]["ready"], "True");

    // Deleting the claim removes the database and every Plinth object of it.
    plinth
        .kubectl_ok(&[
            "-n",
            "shop",
            "delete",
            "postgresqlinstance",
            "orders",
            "--wait",
            WAIT,
        ])
        .await;
    eventually(
        Duration::from_secs(60),
        "the database to be dropped",
        || async {
            psql(
                &url,
                &format!("SELECT count(*) FROM pg_database WHERE datname = '{database}'"),
            )
            .await
            .as_deref()
                == Ok("0")
        },
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "no composite or managed resources left",
        || async {
            let left = plinth
                .kubectl(&["get", "xpostgresqlinstances,databases", "-o", "name"])
                .await;
            left.ok && left.stdout.trim().is_empty()
        },
    )
    .await;
    let secrets = plinth
        .kubectl_ok(&["-n", "shop", "get", "secrets", "-o", "name"])
        .await;
    assert!(!secrets.contains("orders-db"), "{secrets}");
    plinth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_defined_xrd_and_composition_reconcile() {
    let mut plinth = Plinth::start_with(&["--no-builtin-apis"]).await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Healthy", "provider/nop", WAIT])
        .await;
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            include_str!("../examples/platform/nop-config.yaml"),
        )
        .await;
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            include_str!("../examples/platform/xrd.yaml"),
        )
        .await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            "xrd/xqueues.example.org",
            WAIT,
        ])
        .await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Offered",
            "xrd/xqueues.example.org",
            WAIT,
        ])
        .await;
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            include_str!("../examples/platform/composition.yaml"),
        )
        .await;
    eventually(
        Duration::from_secs(30),
        "the queues kind to be served",
        || async { plinth.kubectl(&["get", "queues"]).await.ok },
    )
    .await;
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            include_str!("../examples/platform/claim.yaml"),
        )
        .await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Ready", "queue/orders-events", WAIT])
        .await;

    let xr = plinth
        .kubectl_ok(&[
            "get",
            "queue",
            "orders-events",
            "-o",
            "jsonpath={.spec.resourceRef.name}",
        ])
        .await;
    let nop = format!("{xr}-queue");
    let fields = plinth
        .kubectl_ok(&[
            "get",
            "nopresource",
            &nop,
            "-o",
            "jsonpath={.spec.forProvider.fields}",
        ])
        .await;
    assert!(fields.contains("\"retentionSeconds\":172800"), "{fields}");
    assert!(fields.contains("\"plan\":\"premium-48h\""), "{fields}");
    let tier = plinth
        .kubectl_ok(&[
            "get",
            "nopresource",
            &nop,
            "-o",
            "jsonpath={.metadata.labels.tier}",
        ])
        .await;
    assert_eq!(tier, "premium");
    assert_eq!(
        secret_value(&plinth, "default", "orders-events-queue", "endpoint").await,
        format!("nop://{nop}")
    );
    assert_eq!(
        secret_value(&plinth, "default", "orders-events-queue", "tier").await,
        "premium"
    );
    eventually(
        Duration::from_secs(30),
        "state read back onto the XR",
        || async {
            plinth
                .kubectl(&["get", "xqueue", &xr, "-o", "jsonpath={.status.queueAge}"])
                .await
                .stdout
                .trim()
                .parse::<u64>()
                .is_ok()
        },
    )
    .await;
    let composition = plinth
        .kubectl_ok(&[
            "get",
            "xqueue",
            &xr,
            "-o",
            "jsonpath={.spec.compositionRef.name}",
        ])
        .await;
    assert_eq!(composition, "queue-nop");
    let revision = plinth
        .kubectl_ok(&[
            "get",
            "xqueue",
            &xr,
            "-o",
            "jsonpath={.spec.compositionRevisionRef.name}",
        ])
        .await;
    assert!(revision.starts_with("queue-nop-"), "{revision}");

    // A claim on the Manual policy stays on the revision it names.
    let pinned = format!(
        "apiVersion: example.org/v1alpha1\nkind: Queue\nmetadata:\n  name: pinned\n  namespace: default\nspec:\n  compositionUpdatePolicy: Manual\n  compositionRevisionRef:\n    name: {revision}\n  parameters: {{}}\n"
    );
    plinth.apply_ok(&["apply", "-f", "-"], &pinned).await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Ready", "queue/pinned", WAIT])
        .await;
    let pinned_xr = plinth
        .kubectl_ok(&[
            "get",
            "queue",
            "pinned",
            "-o",
            "jsonpath={.spec.resourceRef.name}",
        ])
        .await;

    // A resource added to the Composition is composed; removed again, it is deleted.
    let original = include_str!("../examples/platform/composition.yaml");
    let extended = format!(
        "{original}  - name: extra\n    base:\n      apiVersion: nop.plinth.dev/v1alpha1\n      kind: NopResource\n      spec:\n        forProvider: {{}}\n"
    );
    plinth.apply_ok(&["apply", "-f", "-"], &extended).await;
    let extra = format!("{xr}-extra");
    eventually(
        Duration::from_secs(30),
        "the added resource to be composed",
        || async { plinth.kubectl(&["get", "nopresource", &extra]).await.ok },
    )
    .await;
    let pinned_extra = plinth
        .kubectl(&["get", "nopresource", &format!("{pinned_xr}-extra")])
        .await;
    assert!(
        !pinned_extra.ok,
        "a Manual composite must not follow a new revision"
    );
    plinth.apply_ok(&["apply", "-f", "-"], original).await;
    eventually(
        Duration::from_secs(30),
        "the removed resource to be deleted",
        || async {
            let run = plinth.kubectl(&["get", "nopresource", &extra]).await;
            !run.ok && run.stderr.contains("NotFound")
        },
    )
    .await;
    let revisions = plinth
        .kubectl_ok(&[
            "get",
            "compositionrevisions",
            "-l",
            "crossplane.io/composition-name=queue-nop",
            "-o",
            "name",
        ])
        .await;
    assert!(revisions.lines().count() >= 2, "{revisions}");

    // A claim naming a missing Composition says so.
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            "apiVersion: example.org/v1alpha1\nkind: Queue\nmetadata:\n  name: lost\n  namespace: default\nspec:\n  compositionRef:\n    name: no-such-composition\n  parameters: {}\n",
        )
        .await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Synced=False", "queue/lost", WAIT])
        .await;
    let message = plinth
        .kubectl_ok(&[
            "get",
            "queue",
            "lost",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Synced\")].message}",
        ])
        .await;
    assert!(
        message.contains("no-such-composition") && message.contains("does not exist"),
        "{message}"
    );

    plinth
        .kubectl_ok(&[
            "delete",
            "queue",
            "orders-events",
            "lost",
            "pinned",
            "--wait",
            WAIT,
        ])
        .await;
    eventually(
        Duration::from_secs(30),
        "composed resources to be collected",
        || async {
            let left = plinth
                .kubectl(&["get", "xqueues,nopresources", "-o", "name"])
                .await;
            left.ok && left.stdout.trim().is_empty()
        },
    )
    .await;
    plinth.stop().await;
}

#[test]
fn render_and_validate_work_offline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let xr = dir.path().join("xr.yaml");
    std::fs::write(&xr, "apiVersion: example.org/v1alpha1\nkind: XQueue\nmetadata:\n  name: q1\nspec:\n  parameters:\n    retentionHours: 2\n    tier: standard\n").expect("write");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/platform");
    let out = std::process::Command::new(support::plinth_bin())
        .arg("render")
        .arg(&xr)
        .arg(root.join("composition.yaml"))
        .output()
        .expect("plinth render");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("name: q1-queue")
            && text.contains("retentionSeconds: 7200")
            && text.contains("plan: standard-2h"),
        "{text}"
    );

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "apiVersion: example.org/v1alpha1\nkind: Queue\nmetadata:\n  name: bad\nspec:\n  parameters:\n    tier: gold\n").expect("write");
    let out = std::process::Command::new(support::plinth_bin())
        .arg("validate")
        .arg(root.join("xrd.yaml"))
        .arg(root.join("claim.yaml"))
        .arg(&bad)
        .output()
        .expect("plinth validate");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("Queue/orders-events: valid"), "{text}");
    assert!(
        text.contains("spec.parameters.tier: Unsupported value: \"gold\""),
        "{text}"
    );
}

/// A directory the postgres user can reach, for a cluster `plinth up` runs.
fn cluster_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("plinth-e2e-pg")
        .tempdir_in("/tmp")
        .expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_postgres_serves_a_claim_with_no_set_up() {
    let dir = cluster_dir();
    let cluster = dir.path().join("cluster");
    let cluster_str = cluster.display().to_string();
    let mut plinth =
        Plinth::start_with_env(&[], &[("PLINTH_LOCAL_POSTGRES_DIR", &cluster_str)]).await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Offered",
            "xrd/xpostgresqlinstances.platform.plinth.dev",
            WAIT,
        ])
        .await;
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            include_str!("../examples/postgresql-claim.yaml"),
        )
        .await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            "postgresqlinstance/orders",
            WAIT,
        ])
        .await;
    let uri = secret_value(&plinth, "default", "orders-db", "uri").await;
    let user = secret_value(&plinth, "default", "orders-db", "username").await;
    assert_eq!(psql(&uri, "SELECT current_user").await.expect("psql"), user);
    plinth
        .kubectl_ok(&["delete", "postgresqlinstance", "orders", "--wait", WAIT])
        .await;
    plinth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_postgres_the_claim_names_the_flag() {
    let mut plinth = Plinth::start_with_env(
        &[],
        &[("PLINTH_POSTGRES_BIN", "/nonexistent/postgresql/bin")],
    )
    .await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Offered",
            "xrd/xpostgresqlinstances.platform.plinth.dev",
            WAIT,
        ])
        .await;
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            include_str!("../examples/postgresql-claim.yaml"),
        )
        .await;
    eventually(
        Duration::from_secs(60),
        "the claim to name --local-postgres-url",
        || async {
            let message = plinth
                .kubectl(&[
                    "get",
                    "postgresqlinstance",
                    "orders",
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].message}",
                ])
                .await
                .stdout;
            message.contains("--local-postgres-url")
        },
    )
    .await;
    plinth
        .kubectl_ok(&["delete", "postgresqlinstance", "orders", "--wait", WAIT])
        .await;
    plinth.stop().await;
}

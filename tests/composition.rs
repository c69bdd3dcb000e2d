//! Composition end to end through the real kubectl: the built-in
//! PostgreSQLInstance claim on a real PostgreSQL (psql checks it), and a
//! user-defined XRD and Composition from examples/platform.

mod support;

use std::time::Duration;

use support::{eventually, postgres_url, psql, Plinth};

const WAIT: &str = "--timeout=120s";

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
    let uri = plinth.secret_value("shop", "orders-db", "uri").await;
    let user = plinth.secret_value("shop", "orders-db", "username").await;
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

    // Deleting the claim removes the database and every Plinth object of it:
    // the built-in XRD's Foreground policy makes the delete wait for it.
    let policy = plinth
        .kubectl_ok(&[
            "-n",
            "shop",
            "get",
            "postgresqlinstance",
            "orders",
            "-o",
            "jsonpath={.spec.compositeDeletePolicy}",
        ])
        .await;
    assert_eq!(policy, "Foreground");
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
    assert_eq!(
        psql(
            &url,
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{database}'"),
        )
        .await
        .as_deref(),
        Ok("0"),
        "the database outlived its claim"
    );
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
    install_queue_api(&plinth).await;
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
        plinth
            .secret_value("default", "orders-events-queue", "endpoint")
            .await,
        format!("nop://{nop}")
    );
    assert_eq!(
        plinth
            .secret_value("default", "orders-events-queue", "tier")
            .await,
        "premium"
    );
    eventually(
        Duration::from_secs(30),
        "state read back onto the XR",
        || async {
            plinth
                .kubectl(&[
                    "get",
                    "xqueue",
                    &xr,
                    "-o",
                    "jsonpath={.status.retentionSeconds}",
                ])
                .await
                .stdout
                .trim()
                == "172800"
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

    // Compositions are checked beyond their schema, and a manifest without
    // apiVersion is an error, not "not checked".
    let unsound = dir.path().join("unsound.yaml");
    std::fs::write(
        &unsound,
        "apiVersion: apiextensions.crossplane.io/v1\nkind: Composition\nmetadata: {name: untyped}\nspec:\n  resources: []\n---\napiVersion: apiextensions.crossplane.io/v1\nkind: Composition\nmetadata: {name: bogus}\nspec:\n  compositeTypeRef: {apiVersion: example.org/v1alpha1, kind: XQueue}\n  resources:\n  - name: q\n    base: {apiVersion: nop.plinth.dev/v1alpha1, kind: NopResource}\n    patches:\n    - {type: Bogus, fromFieldPath: spec.a}\n    - fromFieldPath: spec.b\n      transforms:\n      - {type: math, math: {type: Divide}}\n      - {type: string, string: {type: Regexp, regexp: {match: \"((\"}}}\n---\nkind: Queue\nmetadata: {name: typeless}\n",
    )
    .expect("write");
    let out = std::process::Command::new(support::plinth_bin())
        .arg("validate")
        .arg(&unsound)
        .arg(root.join("composition.yaml"))
        .output()
        .expect("plinth validate");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    for want in [
        "Composition/untyped: spec.compositeTypeRef: Required value",
        "Composition/bogus: spec.resources[0].patches[0].type: Unsupported value: \"Bogus\"",
        "spec.resources[0].patches[1].transforms[0].math.type: Unsupported value: \"Divide\"",
        "spec.resources[0].patches[1].transforms[1].string.regexp.match: Invalid value: \"((\"",
        "typeless: apiVersion: Required value",
        "Composition/queue-nop: valid",
    ] {
        assert!(text.contains(want), "want {want:?} in:\n{text}");
    }
}

/// The newest PostgreSQL server programs on the machine, as `plinth up`
/// (and `scripts/test.sh`, with `sort -V`) would find them: by version,
/// so 16 comes after 9.6.
fn postgres_bin() -> String {
    let mut dirs: Vec<(Vec<u32>, std::path::PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server programs under /usr/lib/postgresql (see scripts/test.sh)")
        .filter_map(|e| {
            let dir = e.ok()?.path();
            let version = dir
                .file_name()?
                .to_str()?
                .split('.')
                .map(|part| part.parse::<u32>().ok())
                .collect::<Option<Vec<u32>>>()?;
            Some((version, dir.join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").is_file())
        .collect();
    dirs.sort();
    dirs.pop().expect("initdb").1.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_postgres_serves_a_claim_with_no_set_up() {
    // The data directory is a private temp dir, as a user's would be.
    let bin = postgres_bin();
    let mut plinth = Plinth::start_with_env(&[], &[("PLINTH_POSTGRES_BIN", &bin)]).await;
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
    let uri = plinth.secret_value("default", "orders-db", "uri").await;
    let user = plinth
        .secret_value("default", "orders-db", "username")
        .await;
    assert_eq!(psql(&uri, "SELECT current_user").await.expect("psql"), user);
    // The cluster lives in the data directory, even when run as root.
    assert!(
        plinth.dir.path().join("postgres/data/PG_VERSION").is_file(),
        "no cluster under the data directory"
    );
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

/// Applies a manifest, retrying while the kinds it uses are not served yet
/// (an XRD's CRDs appear a moment after the XRD).
async fn apply_eventually(plinth: &Plinth, manifest: &str) {
    eventually(Duration::from_secs(30), "the manifest to apply", || async {
        plinth
            .kubectl_stdin(&["apply", "-f", "-"], Some(manifest))
            .await
            .ok
    })
    .await;
}

async fn jsonpath(plinth: &Plinth, args: &[&str], path: &str) -> String {
    let mut all: Vec<&str> = args.to_vec();
    let expr = format!("jsonpath={path}");
    all.extend(["-o", &expr]);
    plinth.kubectl_ok(&all).await
}

const ENFORCED_XRD: &str = r#"
apiVersion: apiextensions.crossplane.io/v1
kind: CompositeResourceDefinition
metadata: {name: xbuckets.enforced.example.org}
spec:
  group: enforced.example.org
  names: {kind: XBucket, plural: xbuckets, shortNames: [xbk], categories: [storage]}
  claimNames: {kind: Bucket, plural: buckets, shortNames: [bk]}
  enforcedCompositionRef: {name: bucket-a}
  writeConnectionSecretsToNamespace: crossplane-system
  defaultCompositeDeletePolicy: Foreground
  defaultCompositionUpdatePolicy: Manual
  versions:
  - name: v1
    served: true
    referenceable: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              color: {type: string}
              size: {type: string}
              observed: {type: string}
---
apiVersion: apiextensions.crossplane.io/v1
kind: Composition
metadata: {name: bucket-a}
spec:
  compositeTypeRef: {apiVersion: enforced.example.org/v1, kind: XBucket}
  resources:
  - name: one
    base: {apiVersion: nop.plinth.dev/v1alpha1, kind: NopResource, spec: {forProvider: {fields: {which: a}}}}
    patches:
    - {fromFieldPath: spec.color, toFieldPath: spec.forProvider.fields.color}
    - {type: ToCompositeFieldPath, fromFieldPath: metadata.name, toFieldPath: spec.observed}
    - {type: ToCompositeFieldPath, fromFieldPath: spec.forProvider.fields.which, toFieldPath: "metadata.annotations[enforced.example.org/which]"}
---
apiVersion: apiextensions.crossplane.io/v1
kind: Composition
metadata: {name: bucket-b}
spec:
  compositeTypeRef: {apiVersion: enforced.example.org/v1, kind: XBucket}
  resources:
  - name: one
    base: {apiVersion: nop.plinth.dev/v1alpha1, kind: NopResource, spec: {forProvider: {fields: {which: b}}}}
"#;

/// Crossplane's own example XRD beside the built-in one of the same kinds;
/// XRD defaults, enforced Compositions and the Automatic policy without a
/// claim/XR tug of war; fields removed from a claim; short names; ToComposite
/// patches into the XR's spec; and a deleted XRD taking its kinds along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossplane_examples_and_xrd_policies() {
    let mut plinth = Plinth::start().await;
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
        .kubectl_ok(&[
            "wait",
            "--for=condition=Offered",
            "xrd/xpostgresqlinstances.platform.plinth.dev",
            WAIT,
        ])
        .await;

    // The documented XRD, Composition and claim reconcile although the
    // built-in interface has the same kinds in another group, and the
    // Composition's crossplane-system namespace exists.
    apply_eventually(
        &plinth,
        include_str!("../examples/crossplane/definition.yaml"),
    )
    .await;
    apply_eventually(
        &plinth,
        include_str!("../examples/crossplane/composition.yaml"),
    )
    .await;
    apply_eventually(&plinth, include_str!("../examples/crossplane/claim.yaml")).await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            "postgresqlinstances.database.example.org/my-db",
            WAIT,
        ])
        .await;
    assert_eq!(
        plinth.secret_value("default", "db-conn", "username").await,
        "masteruser"
    );
    let xr = jsonpath(
        &plinth,
        &["get", "postgresqlinstances.database.example.org", "my-db"],
        "{.spec.resourceRef.name}",
    )
    .await;
    let uid = jsonpath(
        &plinth,
        &["get", "xpostgresqlinstances.database.example.org", &xr],
        "{.metadata.uid}",
    )
    .await;
    plinth
        .kubectl_ok(&[
            "-n",
            "crossplane-system",
            "get",
            "secret",
            &format!("{uid}-postgresql"),
        ])
        .await;
    // The claim got the Composition the selector chose, and the user XRD's
    // default delete policy is Crossplane's Background.
    let spec = jsonpath(
        &plinth,
        &["get", "postgresqlinstances.database.example.org", "my-db"],
        "{.spec.compositionRef.name} {.spec.compositeDeletePolicy} {.spec.compositionUpdatePolicy}",
    )
    .await;
    assert_eq!(
        spec,
        "xpostgresqlinstances.nop.database.example.org Background Automatic"
    );
    // plinth trace finds the group that holds the object, or the one named.
    for target in [
        "postgresqlinstance/my-db",
        "postgresqlinstance.database.example.org/my-db",
    ] {
        let trace = std::process::Command::new(support::plinth_bin())
            .args(["trace", target, "--kubeconfig"])
            .arg(&plinth.kubeconfig)
            .output()
            .expect("plinth trace");
        let tree = String::from_utf8_lossy(&trace.stdout);
        assert!(trace.status.success(), "{target}: {tree}");
        assert!(
            tree.contains(&format!("└─ NopResource/{xr}-rdsinstance")),
            "{target}: {tree}"
        );
    }
    let missing = std::process::Command::new(support::plinth_bin())
        .args(["trace", "postgresqlinstance/nothing", "--kubeconfig"])
        .arg(&plinth.kubeconfig)
        .output()
        .expect("plinth trace");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(
        stderr.contains("not found") && !stderr.contains("Status {"),
        "{stderr}"
    );

    // Enforced Composition: the claim asks for b, the XR uses a, and the
    // claim is told so rather than fighting over it.
    apply_eventually(&plinth, ENFORCED_XRD).await;
    apply_eventually(
        &plinth,
        "apiVersion: enforced.example.org/v1\nkind: Bucket\nmetadata: {name: pail, namespace: default}\nspec:\n  color: red\n  size: large\n  compositionRef: {name: bucket-b}\n",
    )
    .await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Ready", "bucket/pail", WAIT])
        .await;
    let claim = jsonpath(
        &plinth,
        &["get", "bk", "pail"],
        "{.spec.compositionRef.name} {.spec.compositeDeletePolicy} {.spec.compositionUpdatePolicy}",
    )
    .await;
    assert_eq!(claim, "bucket-a Foreground Manual");
    let bucket = jsonpath(&plinth, &["get", "bk", "pail"], "{.spec.resourceRef.name}").await;
    let which = jsonpath(
        &plinth,
        &["get", "nopresource", &format!("{bucket}-one")],
        "{.spec.forProvider.fields.which}",
    )
    .await;
    assert_eq!(which, "a");
    // The XR's Secret goes where the XRD says, and the XRD's category works.
    let secret_ns = jsonpath(
        &plinth,
        &["get", "xbk", &bucket],
        "{.spec.writeConnectionSecretToRef.namespace}",
    )
    .await;
    assert_eq!(secret_ns, "crossplane-system");
    let listed = plinth.kubectl_ok(&["get", "storage", "-o", "name"]).await;
    assert!(listed.contains(&bucket), "{listed}");
    // ToComposite patches reach the XR's spec and metadata, not only status.
    eventually(Duration::from_secs(30), "ToComposite writes on the XR", || async {
        plinth
            .kubectl(&["get", "xbk", &bucket, "-o", "jsonpath={.spec.observed}/{.metadata.annotations.enforced\\.example\\.org/which}"])
            .await
            .stdout
            == format!("{bucket}-one/a")
    })
    .await;
    // Settled: the claim and composite reconcilers do not rewrite the XR
    // back and forth (it used to climb ~20 generations a second).
    let generation = ["get", "xbk", bucket.as_str()];
    let before = jsonpath(&plinth, &generation, "{.metadata.generation}").await;
    plinth
        .kubectl_ok(&["annotate", "bk", "pail", "poke=1"])
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        before,
        jsonpath(&plinth, &generation, "{.metadata.generation}").await
    );

    // A field removed from the claim is removed from the XR.
    plinth
        .kubectl_ok(&[
            "patch",
            "bk",
            "pail",
            "--type=merge",
            "-p",
            r#"{"spec":{"size":null}}"#,
        ])
        .await;
    eventually(Duration::from_secs(30), "size to leave the XR", || async {
        let run = plinth
            .kubectl(&[
                "get",
                "xbk",
                &bucket,
                "-o",
                "jsonpath={.spec.size}/{.spec.color}",
            ])
            .await;
        run.ok && run.stdout == "/red"
    })
    .await;

    // Deleting the XRD deletes its claims, XRs, composed resources and CRDs.
    plinth
        .kubectl_ok(&[
            "delete",
            "xrd",
            "xbuckets.enforced.example.org",
            "--wait",
            WAIT,
        ])
        .await;
    for crd in [
        "buckets.enforced.example.org",
        "xbuckets.enforced.example.org",
    ] {
        let run = plinth.kubectl(&["get", "crd", crd]).await;
        assert!(
            !run.ok && run.stderr.contains("NotFound"),
            "{crd}: {}",
            run.stderr
        );
    }
    let run = plinth
        .kubectl(&["get", "nopresource", &format!("{bucket}-one")])
        .await;
    assert!(!run.ok, "the composed resource outlived its XRD");

    plinth.stop().await;
}

/// An XRD that gains claimNames later offers its claim; a claim on the
/// Automatic policy naming an old revision follows the newest instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_names_added_later_and_automatic_revisions() {
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
    let xrd = include_str!("../examples/platform/xrd.yaml");
    let without_claims: String = {
        // The example XRD without its claimNames block.
        let mut out = Vec::new();
        let mut skipping = false;
        for line in xrd.lines() {
            if line.starts_with("  claimNames:") {
                skipping = true;
                continue;
            }
            if skipping && line.starts_with("    ") {
                continue;
            }
            skipping = false;
            out.push(line);
        }
        out.join("\n")
    };
    assert!(!without_claims.contains("claimNames"));
    apply_eventually(&plinth, &without_claims).await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            "xrd/xqueues.example.org",
            WAIT,
        ])
        .await;
    apply_eventually(
        &plinth,
        include_str!("../examples/platform/composition.yaml"),
    )
    .await;
    apply_eventually(&plinth, xrd).await;
    apply_eventually(
        &plinth,
        "apiVersion: example.org/v1alpha1\nkind: Queue\nmetadata: {name: auto, namespace: default}\nspec:\n  compositionUpdatePolicy: Automatic\n  compositionRevisionRef: {name: queue-nop-not-a-revision}\n  parameters: {}\n",
    )
    .await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Ready", "queue/auto", WAIT])
        .await;
    let xr = jsonpath(
        &plinth,
        &["get", "queue", "auto"],
        "{.spec.resourceRef.name}",
    )
    .await;
    let newest = jsonpath(
        &plinth,
        &["get", "xqueue", &xr],
        "{.spec.compositionRevisionRef.name}",
    )
    .await;
    assert!(
        newest.starts_with("queue-nop-") && newest != "queue-nop-not-a-revision",
        "{newest}"
    );
    eventually(
        Duration::from_secs(30),
        "the claim to follow the XR's revision",
        || async {
            plinth
                .kubectl(&[
                    "get",
                    "queue",
                    "auto",
                    "-o",
                    "jsonpath={.spec.compositionRevisionRef.name}",
                ])
                .await
                .stdout
                == newest
        },
    )
    .await;
    plinth
        .kubectl_ok(&["delete", "queue", "auto", "--wait", WAIT])
        .await;
    plinth.stop().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The built-in Compute interface runs the claim's whole command line on
/// its first port, and a process that keeps crashing makes the claim
/// unready, with the exit status in its message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_compute_runs_the_command_and_reports_crash_loops() {
    let url = postgres_url();
    let mut plinth = Plinth::start_with(&["--local-postgres-url", &url]).await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Offered",
            "xrd/xcomputeinstances.platform.plinth.dev",
            WAIT,
        ])
        .await;
    let port = free_port();
    let claim = |name: &str, extra: &str| {
        format!(
            "apiVersion: platform.plinth.dev/v1alpha1\nkind: ComputeInstance\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  parameters:\n    command: [python3, -m, http.server, \"{port}\", --bind, 127.0.0.1{extra}]\n    ports: [{port}]\n  writeConnectionSecretToRef: {{name: {name}-conn}}\n"
        )
    };
    apply_eventually(&plinth, &claim("web", "")).await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Ready", "computeinstance/web", WAIT])
        .await;
    let page = reqwest::get(format!("http://127.0.0.1:{port}/"))
        .await
        .expect("the claim's process serves its port");
    assert!(page.status().is_success(), "{}", page.status());
    assert_eq!(
        plinth.secret_value("default", "web-conn", "port").await,
        port.to_string()
    );

    // An unknown flag: python exits with status 2 every time it starts.
    apply_eventually(&plinth, &claim("broken", ", --no-such-flag")).await;
    eventually(
        Duration::from_secs(60),
        "the crash loop to show on the claim",
        || async {
            let run = plinth
                .kubectl(&[
                    "get",
                    "computeinstance",
                    "broken",
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].status} {.status.conditions[?(@.type==\"Ready\")].message}",
                ])
                .await;
            run.stdout.starts_with("False ") && run.stdout.contains("exit status: 2")
        },
    )
    .await;
    plinth
        .kubectl_ok(&["delete", "computeinstance", "web", "broken", "--wait", WAIT])
        .await;
    // Foreground: the process is stopped by the time the delete returns.
    assert!(
        reqwest::get(format!("http://127.0.0.1:{port}/"))
            .await
            .is_err(),
        "the claim's process outlived it"
    );
    plinth.stop().await;
}

/// The platform team's Queue API from examples/platform: its nop
/// ProviderConfig, XRD and Composition, served and ready for claims.
async fn install_queue_api(plinth: &Plinth) {
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_connection_secret_reaches_the_claim() {
    let plinth = Plinth::start_with(&["--no-builtin-apis"]).await;
    install_queue_api(&plinth).await;
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
    let nop_secret = plinth
        .kubectl_ok(&[
            "get",
            "nopresource",
            &nop,
            "-o",
            "jsonpath={.spec.writeConnectionSecretToRef.name}",
        ])
        .await;
    let nop_namespace = plinth
        .kubectl_ok(&[
            "get",
            "nopresource",
            &nop,
            "-o",
            "jsonpath={.spec.writeConnectionSecretToRef.namespace}",
        ])
        .await;
    // The managed resource's Secret changes (say, a rotated password) while
    // the managed resource itself does not.
    use base64::Engine;
    let changed = base64::engine::general_purpose::STANDARD.encode("nop://rotated");
    plinth
        .kubectl_ok(&[
            "-n",
            &nop_namespace,
            "patch",
            "secret",
            &nop_secret,
            "-p",
            &format!(r#"{{"data":{{"endpoint":"{changed}"}}}}"#),
        ])
        .await;
    eventually(
        Duration::from_secs(20),
        "the claim's Secret follows",
        || async {
            plinth
                .secret_value("default", "orders-events-queue", "endpoint")
                .await
                == "nop://rotated"
        },
    )
    .await;
}

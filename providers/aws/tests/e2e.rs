//! End to end: a real `plinth up` (with the AWS provider beside it), the real
//! `kubectl`, and moto standing in for AWS. What exists in "AWS" is checked
//! through the real AWS SDK, never through Plinth.

#[path = "../../../tests/support/mod.rs"]
mod support;

#[path = "support/moto.rs"]
mod moto;

use std::time::Duration;

use support::{eventually, Plinth};

/// How long a claim on moto may take to become Ready.
const READY_TIMEOUT: &str = "--timeout=120s";

/// The credentials Secret and the `default` ProviderConfig, pointed at `url`.
fn aws_config(url: &str, access_key: &str, secret_key: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Secret
metadata:
  name: aws-creds
  namespace: plinth-system
stringData:
  access_key_id: {access_key}
  secret_access_key: {secret_key}
---
apiVersion: aws.plinth.dev/v1alpha1
kind: ProviderConfig
metadata:
  name: default
spec:
  region: {region}
  endpoint: {url}
  credentials:
    source: Secret
    secretRef:
      namespace: plinth-system
      name: aws-creds
"#,
        region = moto::REGION
    )
}

/// Starts Plinth and waits until it serves the AWS kinds and config.
async fn plinth_with_aws(
    env: &[(&str, &str)],
    url: &str,
    access_key: &str,
    secret_key: &str,
) -> Plinth {
    let plinth = Plinth::start_with_env(&[], env).await;
    eventually(Duration::from_secs(60), "the AWS provider's kinds are served", || async {
        let run = plinth.kubectl(&["get", "providerconfigs.aws.plinth.dev,dbinstances.rds.aws.plinth.dev,instances.ec2.aws.plinth.dev"]).await;
        run.ok
    })
    .await;
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            &aws_config(url, access_key, secret_key),
        )
        .await;
    plinth
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_claim_becomes_an_rds_instance() {
    let _moto = moto::exclusive().await;
    let url = moto::url();
    let rds = moto::rds(&url).await;
    let plinth = plinth_with_aws(&[], &url, moto::ACCESS_KEY, moto::SECRET_KEY).await;
    let claim = r#"apiVersion: platform.plinth.dev/v1alpha1
kind: PostgreSQLInstance
metadata:
  name: orders
  namespace: default
spec:
  compositionSelector:
    matchLabels:
      provider: aws
  parameters:
    size: small
    storageGB: 25
    version: "15"
  writeConnectionSecretToRef:
    name: orders-db
"#;
    plinth.apply_ok(&["apply", "-f", "-"], claim).await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            "postgresqlinstance/orders",
            READY_TIMEOUT,
        ])
        .await;

    let instances = rds
        .describe_db_instances()
        .send()
        .await
        .expect("DescribeDBInstances");
    let [db] = instances.db_instances() else {
        panic!(
            "want exactly one DB instance, found {:?}",
            instances.db_instances()
        );
    };
    assert_eq!(db.db_instance_class(), Some("db.t3.micro"));
    assert_eq!(db.allocated_storage(), Some(25));
    assert_eq!(db.engine(), Some("postgres"));
    let endpoint = db.endpoint().expect("an endpoint");
    let address = endpoint.address().expect("an address");

    let host = plinth.secret_value("default", "orders-db", "host").await;
    assert_eq!(host, address);
    let port = plinth.secret_value("default", "orders-db", "port").await;
    assert_eq!(port, endpoint.port().expect("a port").to_string());
    let uri = plinth.secret_value("default", "orders-db", "uri").await;
    assert!(
        uri.starts_with("postgresql://postgres:") && uri.contains(address),
        "{uri}"
    );
    let password = plinth
        .secret_value("default", "orders-db", "password")
        .await;
    assert!(password.len() >= 16, "a generated password");

    // A bigger size reaches RDS as a ModifyDBInstance.
    plinth
        .kubectl_ok(&[
            "patch",
            "postgresqlinstance",
            "orders",
            "--type=merge",
            "-p",
            r#"{"spec":{"parameters":{"size":"medium"}}}"#,
        ])
        .await;
    let id = db.db_instance_identifier().expect("identifier").to_string();
    eventually(
        Duration::from_secs(60),
        "the instance class changes in RDS",
        || async {
            let out = rds
                .describe_db_instances()
                .db_instance_identifier(&id)
                .send()
                .await;
            out.ok()
                .and_then(|o| {
                    o.db_instances()
                        .first()
                        .and_then(|d| d.db_instance_class().map(str::to_string))
                })
                .as_deref()
                == Some("db.t3.medium")
        },
    )
    .await;

    plinth
        .kubectl_ok(&["delete", "postgresqlinstance", "orders", "--timeout=120s"])
        .await;
    eventually(
        Duration::from_secs(60),
        "the DB instance is gone from RDS",
        || async {
            rds.describe_db_instances()
                .send()
                .await
                .is_ok_and(|o| o.db_instances().is_empty())
        },
    )
    .await;
    let left = plinth
        .kubectl_ok(&["get", "dbinstances", "-o", "name"])
        .await;
    assert!(left.trim().is_empty(), "managed resources left: {left}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compute_claim_becomes_an_ec2_instance() {
    let _moto = moto::exclusive().await;
    let url = moto::url();
    let ec2 = moto::ec2(&url).await;
    let plinth = plinth_with_aws(&[], &url, moto::ACCESS_KEY, moto::SECRET_KEY).await;
    let claim = r#"apiVersion: platform.plinth.dev/v1alpha1
kind: ComputeInstance
metadata:
  name: web
  namespace: default
spec:
  compositionSelector:
    matchLabels:
      provider: aws
  parameters:
    cpu: 2
    memoryMiB: 4096
    command: ["python3", "-m", "http.server", "8080"]
    ports: [8080]
  writeConnectionSecretToRef:
    name: web-conn
"#;
    plinth.apply_ok(&["apply", "-f", "-"], claim).await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            "computeinstance/web",
            READY_TIMEOUT,
        ])
        .await;

    let live = moto::live_instances(&ec2).await;
    let [instance] = live.as_slice() else {
        panic!("want exactly one live EC2 instance, found {live:?}");
    };
    assert_eq!(
        instance.instance_type().map(|t| t.as_str()),
        Some("t3.medium")
    );
    let id = instance.instance_id().expect("an instance id").to_string();
    let host = plinth.secret_value("default", "web-conn", "host").await;
    let address = instance
        .public_ip_address()
        .or(instance.private_ip_address())
        .expect("an address");
    assert_eq!(host, address);
    assert_eq!(
        plinth.secret_value("default", "web-conn", "port").await,
        "8080"
    );
    let external = plinth
        .kubectl_ok(&[
            "get",
            "instances.ec2.aws.plinth.dev",
            "-o",
            "jsonpath={.items[0].metadata.annotations.crossplane\\.io/external-name}",
        ])
        .await;
    assert_eq!(external.trim(), id);

    // More cpu and memory: EC2 changes the type while the instance is stopped.
    plinth
        .kubectl_ok(&[
            "patch",
            "computeinstance",
            "web",
            "--type=merge",
            "-p",
            r#"{"spec":{"parameters":{"cpu":4,"memoryMiB":16384}}}"#,
        ])
        .await;
    eventually(
        Duration::from_secs(90),
        "the instance runs as t3.xlarge",
        || async {
            let live = moto::live_instances(&ec2).await;
            live.len() == 1
                && live[0].instance_id() == Some(id.as_str())
                && live[0].instance_type().map(|t| t.as_str()) == Some("t3.xlarge")
                && live[0].state().and_then(|s| s.name()).map(|n| n.as_str()) == Some("running")
        },
    )
    .await;

    plinth
        .kubectl_ok(&["delete", "computeinstance", "web", "--timeout=120s"])
        .await;
    eventually(
        Duration::from_secs(60),
        "the EC2 instance is terminated",
        || async { moto::live_instances(&ec2).await.is_empty() },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_killed_after_run_instances_leaves_exactly_one_instance() {
    let _moto = moto::exclusive().await;
    let url = moto::url();
    let ec2 = moto::ec2(&url).await;
    let marker_dir = tempfile::tempdir().expect("temp dir");
    let marker = marker_dir.path().join("fired");
    let marker_text = marker.display().to_string();
    let plinth = plinth_with_aws(
        &[(
            plinth_provider_aws::FAULT_EXIT_AFTER_RUN_INSTANCES,
            &marker_text,
        )],
        &url,
        moto::ACCESS_KEY,
        moto::SECRET_KEY,
    )
    .await;
    let instance = r#"apiVersion: ec2.aws.plinth.dev/v1alpha1
kind: Instance
metadata:
  name: lonely
spec:
  forProvider:
    imageId: ami-1e749f67
    instanceType: t3.micro
    port: 22
  writeConnectionSecretToRef:
    name: lonely-conn
    namespace: default
"#;
    plinth.apply_ok(&["apply", "-f", "-"], instance).await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            "instances.ec2.aws.plinth.dev/lonely",
            READY_TIMEOUT,
        ])
        .await;
    assert!(
        marker.exists(),
        "the provider was killed between RunInstances and its answer"
    );
    let live = moto::live_instances(&ec2).await;
    assert_eq!(live.len(), 1, "exactly one instance, not {live:?}");
    let external = plinth
        .kubectl_ok(&[
            "get",
            "instances.ec2.aws.plinth.dev",
            "lonely",
            "-o",
            "jsonpath={.metadata.annotations.crossplane\\.io/external-name}",
        ])
        .await;
    assert_eq!(Some(external.trim()), live[0].instance_id());
    let restarts = plinth
        .kubectl_ok(&[
            "get",
            "providers",
            "aws",
            "-o",
            "jsonpath={.status.restarts}",
        ])
        .await;
    assert!(
        restarts.trim().parse::<u32>().is_ok_and(|n| n >= 1),
        "the provider restarted: {restarts}"
    );

    plinth
        .kubectl_ok(&[
            "delete",
            "instances.ec2.aws.plinth.dev",
            "lonely",
            "--timeout=120s",
        ])
        .await;
    assert!(
        moto::live_instances(&ec2).await.is_empty(),
        "deleting the resource terminated the instance"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_reported_and_nothing_is_created() {
    let _moto = moto::exclusive().await;
    let url = moto::url();
    let plinth = plinth_with_aws(&[], &url, "AKIAWRONGWRONGWRONG0", "not-the-secret").await;
    // From here moto accepts only keys of IAM users it knows: none.
    moto::check_credentials(&url, true).await;
    let db = r#"apiVersion: rds.aws.plinth.dev/v1alpha1
kind: DBInstance
metadata:
  name: refused
spec:
  forProvider:
    engine: postgres
    instanceClass: db.t3.micro
    allocatedStorage: 20
"#;
    plinth.apply_ok(&["apply", "-f", "-"], db).await;
    let waited = plinth
        .kubectl(&[
            "wait",
            "--for=condition=Synced=False",
            "dbinstances/refused",
            "--timeout=60s",
        ])
        .await;
    let message = plinth
        .kubectl_ok(&[
            "get",
            "dbinstances",
            "refused",
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Synced")].message}"#,
        ])
        .await;
    let annotations = plinth
        .kubectl_ok(&[
            "get",
            "dbinstances",
            "refused",
            "-o",
            "jsonpath={.metadata.annotations}",
        ])
        .await;
    moto::check_credentials(&url, false).await;
    assert!(waited.ok, "Synced=False: {}", waited.stderr);
    assert!(
        message.contains("AWS") && message.contains("InvalidClientTokenId"),
        "{message}"
    );
    assert!(
        !annotations.contains("external-create-pending"),
        "no Create was tried: {annotations}"
    );
    let rds = moto::rds(&url).await;
    let stored = rds
        .describe_db_instances()
        .send()
        .await
        .expect("DescribeDBInstances");
    assert!(
        stored.db_instances().is_empty(),
        "moto holds no DB instance"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_parameters_wait_for_the_spec_to_change() {
    let _moto = moto::exclusive().await;
    let url = moto::url();
    let plinth = plinth_with_aws(&[], &url, moto::ACCESS_KEY, moto::SECRET_KEY).await;
    let db = r#"apiVersion: rds.aws.plinth.dev/v1alpha1
kind: DBInstance
metadata:
  name: badengine
spec:
  forProvider:
    engine: nosuchengine
    instanceClass: db.t3.micro
    allocatedStorage: 20
"#;
    plinth.apply_ok(&["apply", "-f", "-"], db).await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Synced=False",
            "dbinstances/badengine",
            "--timeout=60s",
        ])
        .await;
    let message = plinth
        .kubectl_ok(&[
            "get",
            "dbinstances",
            "badengine",
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Synced")].message}"#,
        ])
        .await;
    assert!(
        message.contains("InvalidParameterValue") && message.contains("nosuchengine"),
        "{message}"
    );
    // Terminal: not tried again while the spec stays as it is, though the
    // controller's own writes (annotations, status) wake it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let failures = plinth
        .kubectl_ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=badengine,reason=CannotCreateExternalResource",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(
        failures.lines().count(),
        1,
        "one failed Create, not a retry loop: {failures}"
    );
    // A fixed spec is acted on at once.
    plinth
        .kubectl_ok(&[
            "patch",
            "dbinstances",
            "badengine",
            "--type=merge",
            "-p",
            r#"{"spec":{"forProvider":{"engine":"postgres"}}}"#,
        ])
        .await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            "dbinstances/badengine",
            "--timeout=60s",
        ])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_password_comes_from_its_secret_and_deletion_protection_holds() {
    let _moto = moto::exclusive().await;
    let url = moto::url();
    let rds = moto::rds(&url).await;
    let plinth = plinth_with_aws(&[], &url, moto::ACCESS_KEY, moto::SECRET_KEY).await;
    let db = r#"apiVersion: v1
kind: Secret
metadata:
  name: billing-master
  namespace: default
stringData:
  password: Chosen-By-Hand-42
---
apiVersion: rds.aws.plinth.dev/v1alpha1
kind: DBInstance
metadata:
  name: billing
spec:
  forProvider:
    engine: postgres
    instanceClass: db.t3.micro
    allocatedStorage: 20
    dbName: billing
    deletionProtection: true
    masterPasswordSecretRef:
      namespace: default
      name: billing-master
      key: password
  writeConnectionSecretToRef:
    name: billing-conn
    namespace: default
"#;
    plinth.apply_ok(&["apply", "-f", "-"], db).await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            "dbinstances/billing",
            READY_TIMEOUT,
        ])
        .await;
    assert_eq!(
        plinth
            .secret_value("default", "billing-conn", "password")
            .await,
        "Chosen-By-Hand-42"
    );
    assert_eq!(
        plinth
            .secret_value("default", "billing-conn", "database")
            .await,
        "billing"
    );
    let uri = plinth.secret_value("default", "billing-conn", "uri").await;
    assert!(
        uri.contains(":Chosen-By-Hand-42@") && uri.ends_with("/billing"),
        "{uri}"
    );

    // Protected: deleting the object leaves the instance, and says why.
    plinth
        .kubectl_ok(&["delete", "dbinstances", "billing", "--wait=false"])
        .await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Synced=False",
            "dbinstances/billing",
            "--timeout=60s",
        ])
        .await;
    let message = plinth
        .kubectl_ok(&[
            "get",
            "dbinstances",
            "billing",
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Synced")].message}"#,
        ])
        .await;
    assert!(message.contains("deletionProtection"), "{message}");
    let still = rds
        .describe_db_instances()
        .db_instance_identifier("billing")
        .send()
        .await;
    assert!(
        still.is_ok_and(|o| o.db_instances().len() == 1),
        "the protected instance stays"
    );

    // Lifting the protection in the spec lets the deletion through.
    plinth
        .kubectl_ok(&[
            "patch",
            "dbinstances",
            "billing",
            "--type=merge",
            "-p",
            r#"{"spec":{"forProvider":{"deletionProtection":false}}}"#,
        ])
        .await;
    eventually(
        Duration::from_secs(60),
        "the instance is deleted",
        || async {
            rds.describe_db_instances()
                .send()
                .await
                .is_ok_and(|o| o.db_instances().is_empty())
        },
    )
    .await;
    eventually(Duration::from_secs(30), "the object is gone", || async {
        !plinth.kubectl(&["get", "dbinstances", "billing"]).await.ok
    })
    .await;
}

/// A tag of the DB instance `id`, as RDS reports it.
async fn rds_tag(rds: &aws_sdk_rds::Client, id: &str, key: &str) -> Option<String> {
    let out = rds
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .ok()?;
    out.db_instances()
        .first()?
        .tag_list()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_password_secret_reaches_rds() {
    let _moto = moto::exclusive().await;
    let url = moto::url();
    let rds = moto::rds(&url).await;
    let plinth = plinth_with_aws(&[], &url, moto::ACCESS_KEY, moto::SECRET_KEY).await;
    let db = r#"apiVersion: v1
kind: Secret
metadata:
  name: ledger-master
  namespace: default
stringData:
  password: First-Passw0rd
---
apiVersion: rds.aws.plinth.dev/v1alpha1
kind: DBInstance
metadata:
  name: ledger
spec:
  forProvider:
    engine: postgres
    instanceClass: db.t3.micro
    allocatedStorage: 20
    masterPasswordSecretRef:
      namespace: default
      name: ledger-master
      key: password
  writeConnectionSecretToRef:
    name: ledger-conn
    namespace: default
"#;
    plinth.apply_ok(&["apply", "-f", "-"], db).await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            "dbinstances/ledger",
            READY_TIMEOUT,
        ])
        .await;
    let first = rds_tag(&rds, "ledger", "plinth.dev/password-fingerprint")
        .await
        .expect("the instance records its password's fingerprint");
    plinth
        .kubectl_ok(&[
            "-n",
            "default",
            "patch",
            "secret",
            "ledger-master",
            "-p",
            r#"{"stringData":{"password":"Second-Passw0rd"}}"#,
        ])
        .await;
    // Secrets are not watched; the next reconcile (here: a touch) sees it.
    plinth
        .kubectl_ok(&["annotate", "dbinstances", "ledger", "example.com/touched=1"])
        .await;
    eventually(
        Duration::from_secs(60),
        "RDS gets the new password",
        || async {
            rds_tag(&rds, "ledger", "plinth.dev/password-fingerprint")
                .await
                .is_some_and(|now| now != first)
        },
    )
    .await;
    eventually(Duration::from_secs(30), "the Secret carries it", || async {
        plinth
            .secret_value("default", "ledger-conn", "password")
            .await
            == "Second-Passw0rd"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_elses_instance_is_neither_taken_over_nor_deleted() {
    let _moto = moto::exclusive().await;
    let url = moto::url();
    let rds = moto::rds(&url).await;
    rds.create_db_instance()
        .db_instance_identifier("taken")
        .engine("postgres")
        .db_instance_class("db.t3.small")
        .allocated_storage(20)
        .master_username("owner")
        .master_user_password("Theirs-Passw0rd")
        .deletion_protection(false)
        .send()
        .await
        .expect("an instance made outside Plinth");
    let plinth = plinth_with_aws(&[], &url, moto::ACCESS_KEY, moto::SECRET_KEY).await;
    let db = r#"apiVersion: rds.aws.plinth.dev/v1alpha1
kind: DBInstance
metadata:
  name: taken
spec:
  forProvider:
    engine: postgres
    instanceClass: db.t3.micro
    allocatedStorage: 20
"#;
    plinth.apply_ok(&["apply", "-f", "-"], db).await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Synced=False",
            "dbinstances/taken",
            "--timeout=60s",
        ])
        .await;
    let message = plinth
        .kubectl_ok(&[
            "get",
            "dbinstances",
            "taken",
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Synced")].message}"#,
        ])
        .await;
    assert!(
        message.contains("already exists and was not made by this resource"),
        "{message}"
    );
    plinth
        .kubectl_ok(&["delete", "dbinstances", "taken", "--timeout=60s"])
        .await;
    let still = rds
        .describe_db_instances()
        .db_instance_identifier("taken")
        .send()
        .await
        .expect("the other instance is still there");
    assert_eq!(
        still
            .db_instances()
            .first()
            .and_then(|d| d.db_instance_class()),
        Some("db.t3.small"),
        "and unchanged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_protection_switched_on_in_aws_is_honoured() {
    let _moto = moto::exclusive().await;
    let url = moto::url();
    let rds = moto::rds(&url).await;
    let plinth = plinth_with_aws(&[], &url, moto::ACCESS_KEY, moto::SECRET_KEY).await;
    let db = r#"apiVersion: rds.aws.plinth.dev/v1alpha1
kind: DBInstance
metadata:
  name: guarded
spec:
  forProvider:
    engine: postgres
    instanceClass: db.t3.micro
    allocatedStorage: 20
"#;
    plinth.apply_ok(&["apply", "-f", "-"], db).await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            "dbinstances/guarded",
            READY_TIMEOUT,
        ])
        .await;
    rds.modify_db_instance()
        .db_instance_identifier("guarded")
        .deletion_protection(true)
        .apply_immediately(true)
        .send()
        .await
        .expect("protection switched on outside Plinth");
    plinth
        .kubectl_ok(&["delete", "dbinstances", "guarded", "--wait=false"])
        .await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Synced=False",
            "dbinstances/guarded",
            "--timeout=60s",
        ])
        .await;
    let message = plinth
        .kubectl_ok(&[
            "get",
            "dbinstances",
            "guarded",
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Synced")].message}"#,
        ])
        .await;
    assert!(
        message.contains("deletion protection switched on in AWS"),
        "{message}"
    );
    assert!(
        rds.describe_db_instances()
            .db_instance_identifier("guarded")
            .send()
            .await
            .is_ok(),
        "the protected instance stays"
    );
    plinth
        .kubectl_ok(&[
            "patch",
            "dbinstances",
            "guarded",
            "--type=merge",
            "-p",
            r#"{"spec":{"forProvider":{"deletionProtection":false}}}"#,
        ])
        .await;
    eventually(
        Duration::from_secs(60),
        "the instance is deleted",
        || async {
            rds.describe_db_instances()
                .send()
                .await
                .is_ok_and(|o| o.db_instances().is_empty())
        },
    )
    .await;
}

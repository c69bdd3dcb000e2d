//! Providers end to end: `plinth up` runs the bundled local and nop
//! providers; the real kubectl drives managed resources; a real PostgreSQL
//! server (started by scripts/test.sh) holds the databases; the real psql
//! checks them.

mod support;

use std::time::Duration;

use support::{eventually, postgres_url, psql, Plinth};

const WAIT: &str = "--timeout=90s";

/// Installs the admin Secret and a ProviderConfig named `name` for the local provider.
async fn local_config(plinth: &Plinth, name: &str, url: &str) {
    plinth
        .kubectl_ok(&["wait", "--for=condition=Healthy", "provider/local", WAIT])
        .await;
    let secret = format!("pg-admin-{name}");
    plinth
        .kubectl_ok(&[
            "-n",
            "plinth-system",
            "create",
            "secret",
            "generic",
            &secret,
            &format!("--from-literal=url={url}"),
        ])
        .await;
    let config = format!(
        "apiVersion: local.plinth.dev/v1alpha1\nkind: ProviderConfig\nmetadata:\n  name: {name}\nspec:\n  credentials:\n    source: Secret\n    secretRef:\n      namespace: plinth-system\n      name: {secret}\n"
    );
    plinth.apply_ok(&["apply", "-f", "-"], &config).await;
}

fn database(name: &str, config: &str, extra: &str) -> String {
    format!(
        "apiVersion: postgres.local.plinth.dev/v1alpha1\nkind: Database\nmetadata:\n  name: {name}\nspec:\n  providerConfigRef:\n    name: {config}\n  writeConnectionSecretToRef:\n    name: {name}-conn\n    namespace: default\n  forProvider:\n    extensions: [pgcrypto]\n{extra}"
    )
}

async fn count(url: &str, query: &str) -> i64 {
    psql(url, query)
        .await
        .expect("admin query")
        .parse()
        .expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_lifecycle_through_kubectl_and_psql() {
    let url = postgres_url();
    let mut plinth = Plinth::start().await;
    local_config(&plinth, "default", &url).await;

    // 1. A Database becomes Ready.
    plinth
        .apply_ok(&["apply", "-f", "-"], &database("life-db", "default", ""))
        .await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Ready", "database/life-db", WAIT])
        .await;
    let table = plinth.kubectl_ok(&["get", "databases"]).await;
    assert!(
        table.contains("READY") && table.contains("life-db"),
        "{table}"
    );

    // 2. psql connects with exactly the credentials in the Secret.
    let keys = plinth
        .kubectl_ok(&["get", "secret", "life-db-conn", "-o", "jsonpath={.data}"])
        .await;
    for key in ["host", "port", "username", "password", "database", "uri"] {
        assert!(
            keys.contains(&format!("\"{key}\"")),
            "missing {key}: {keys}"
        );
    }
    let uri = format!(
        "postgresql://{}:{}@{}:{}/{}",
        plinth
            .secret_value("default", "life-db-conn", "username")
            .await,
        plinth
            .secret_value("default", "life-db-conn", "password")
            .await,
        plinth.secret_value("default", "life-db-conn", "host").await,
        plinth.secret_value("default", "life-db-conn", "port").await,
        plinth
            .secret_value("default", "life-db-conn", "database")
            .await,
    );
    assert_eq!(
        uri,
        plinth.secret_value("default", "life-db-conn", "uri").await
    );
    let who = psql(&uri, "SELECT current_user || '/' || current_database()")
        .await
        .expect("psql with the Secret's credentials");
    assert_eq!(who, "life-db/life-db");
    let ext = psql(
        &uri,
        "SELECT count(*) FROM pg_extension WHERE extname = 'pgcrypto'",
    )
    .await
    .expect("psql");
    assert_eq!(ext, "1");

    // Late initialization filled in what the server chose.
    let limit = plinth
        .kubectl_ok(&[
            "get",
            "database",
            "life-db",
            "-o",
            "jsonpath={.spec.forProvider.connectionLimit}",
        ])
        .await;
    assert_eq!(limit, "-1");
    // An update reaches the server.
    plinth
        .kubectl_ok(&[
            "patch",
            "database",
            "life-db",
            "--type=merge",
            "-p",
            r#"{"spec":{"forProvider":{"connectionLimit":7}}}"#,
        ])
        .await;
    eventually(
        Duration::from_secs(30),
        "the connection limit to change",
        || async {
            psql(
                &url,
                "SELECT datconnlimit FROM pg_database WHERE datname = 'life-db'",
            )
            .await
            .as_deref()
                == Ok("7")
        },
    )
    .await;
    let described = plinth
        .kubectl_ok(&["describe", "database", "life-db"])
        .await;
    assert!(described.contains("CreatedExternalResource"), "{described}");

    // 3. Deleting it drops the database and the role.
    plinth
        .kubectl_ok(&["delete", "database", "life-db", "--wait", WAIT])
        .await;
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM pg_database WHERE datname = 'life-db'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM pg_roles WHERE rolname = 'life-db'"
        )
        .await,
        0
    );

    // A ProviderConfig in use cannot go; once unused it can.
    plinth
        .apply_ok(&["apply", "-f", "-"], &database("life-db2", "default", ""))
        .await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Ready", "database/life-db2", WAIT])
        .await;
    plinth
        .kubectl_ok(&[
            "delete",
            "providerconfig.local.plinth.dev",
            "default",
            "--wait=false",
        ])
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let still = plinth
        .kubectl_ok(&[
            "get",
            "providerconfig.local.plinth.dev",
            "default",
            "-o",
            "jsonpath={.metadata.name}",
        ])
        .await;
    assert_eq!(still, "default");
    plinth
        .kubectl_ok(&["delete", "database", "life-db2", "--wait", WAIT])
        .await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=delete",
            "providerconfig.local.plinth.dev/default",
            WAIT,
        ])
        .await;
    plinth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_crash_during_fifty_creates_leaves_exactly_fifty() {
    let url = postgres_url();
    let mut plinth = Plinth::start().await;
    local_config(&plinth, "default", &url).await;
    let manifest: String = (0..50)
        .map(|i| format!("---\n{}", database(&format!("crash-{i:02}"), "default", "")))
        .collect();
    plinth.apply_ok(&["apply", "-f", "-"], &manifest).await;
    // The provider's pid is in its socket's name.
    let address = plinth
        .kubectl_ok(&[
            "get",
            "provider",
            "local",
            "-o",
            "jsonpath={.status.address}",
        ])
        .await;
    let pid: String = address
        .rsplit('-')
        .next()
        .unwrap_or_default()
        .trim_end_matches(".sock")
        .to_string();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .expect("kill");
    assert!(killed.success(), "kill -9 {pid} (from {address})");
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            "databases",
            "--all",
            "--timeout=180s",
        ])
        .await;
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'crash-%'"
        )
        .await,
        50
    );
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'crash-%'"
        )
        .await,
        50
    );
    let restarts = plinth
        .kubectl_ok(&[
            "get",
            "provider",
            "local",
            "-o",
            "jsonpath={.status.restarts}",
        ])
        .await;
    assert!(
        restarts.parse::<u32>().unwrap_or(0) >= 1,
        "restarts: {restarts}"
    );
    plinth
        .kubectl_ok(&["delete", "databases", "--all", "--wait", "--timeout=180s"])
        .await;
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'crash-%'"
        )
        .await,
        0
    );
    plinth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_crash_between_create_and_record_neither_leaks_nor_duplicates() {
    let url = postgres_url();
    let mut plinth = Plinth::start_with_env(&[], &[("PLINTH_FAULT_CRASH_AFTER_CREATE", "1")]).await;
    local_config(&plinth, "default", &url).await;
    plinth
        .apply_ok(&["apply", "-f", "-"], &database("cp-crash", "default", ""))
        .await;
    let code = plinth.wait_exit(Duration::from_secs(90)).await;
    assert_eq!(
        code,
        Some(86),
        "plinth up should have stopped at the injected fault"
    );
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM pg_database WHERE datname = 'cp-crash'"
        )
        .await,
        1
    );

    plinth.clear_env();
    plinth.start_again().await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Ready", "database/cp-crash", WAIT])
        .await;
    let annotations = plinth
        .kubectl_ok(&[
            "get",
            "database",
            "cp-crash",
            "-o",
            "jsonpath={.metadata.annotations}",
        ])
        .await;
    // A local Database's name is deterministic: the external name is
    // written before Create, and the resource found again by it after the
    // crash, so no create-pending guard is needed (the kinds whose names
    // are not deterministic keep it: see the AWS EC2 crash test).
    assert!(
        !annotations.contains("crossplane.io/external-create-pending"),
        "{annotations}"
    );
    assert!(
        annotations.contains("\"crossplane.io/external-name\":\"cp-crash\""),
        "{annotations}"
    );
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM pg_database WHERE datname = 'cp-crash'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM pg_roles WHERE rolname = 'cp-crash'"
        )
        .await,
        1
    );
    let uri = plinth.secret_value("default", "cp-crash-conn", "uri").await;
    assert_eq!(
        psql(&uri, "SELECT current_database()").await.as_deref(),
        Ok("cp-crash")
    );
    plinth
        .kubectl_ok(&["delete", "database", "cp-crash", "--wait", WAIT])
        .await;
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM pg_database WHERE datname = 'cp-crash'"
        )
        .await,
        0
    );
    plinth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_shows_postgres_message_and_creates_nothing() {
    let url = postgres_url();
    let wrong = url.replacen("postgres:", "postgres:not-the-password-", 1);
    assert_ne!(wrong, url);
    let mut plinth = Plinth::start().await;
    local_config(&plinth, "wrong", &wrong).await;
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            &database("bad-config-db", "wrong", ""),
        )
        .await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Synced=False",
            "database/bad-config-db",
            WAIT,
        ])
        .await;
    let message = plinth
        .kubectl_ok(&[
            "get",
            "database",
            "bad-config-db",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Synced\")].message}",
        ])
        .await;
    assert!(
        message.contains("password authentication failed"),
        "{message}"
    );
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM pg_database WHERE datname = 'bad-config-db'"
        )
        .await,
        0
    );
    // Refused credentials are retried with a backoff, not given up on: the
    // corrected Secret is picked up and the database made.
    let fixed = serde_json::json!({"stringData": {"url": url}}).to_string();
    plinth
        .kubectl_ok(&[
            "-n",
            "plinth-system",
            "patch",
            "secret",
            "pg-admin-wrong",
            "--type=merge",
            "-p",
            &fixed,
        ])
        .await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            "database/bad-config-db",
            WAIT,
        ])
        .await;
    plinth
        .kubectl_ok(&["delete", "database", "bad-config-db", "--wait", WAIT])
        .await;
    plinth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_means_the_bundled_kinds_are_served_and_defaults_never_overwrite() {
    let url = postgres_url();
    let mut plinth = Plinth::start_with(&["--local-postgres-url", &url]).await;
    // Applied the moment the ready line is out, with no ProviderConfig of
    // its own: the kind is served and the nop provider's default exists.
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            "apiVersion: nop.plinth.dev/v1alpha1\nkind: NopResource\nmetadata:\n  name: first\nspec: {}\n",
        )
        .await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Ready", "nopresource/first", WAIT])
        .await;
    eventually(
        Duration::from_secs(30),
        "plinth up to create the local provider's default ProviderConfig",
        || async {
            plinth
                .kubectl(&["get", "providerconfigs.local.plinth.dev", "default"])
                .await
                .ok
        },
    )
    .await;
    // Someone points `default` at a server of their own; plinth up keeps
    // it as they wrote it, across a restart too.
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            "apiVersion: local.plinth.dev/v1alpha1\nkind: ProviderConfig\nmetadata:\n  name: default\nspec:\n  credentials:\n    source: Secret\n    secretRef:\n      namespace: plinth-system\n      name: theirs\n",
        )
        .await;
    plinth.restart().await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Ready", "nopresource/first", WAIT])
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let named = plinth
        .kubectl_ok(&[
            "get",
            "providerconfigs.local.plinth.dev",
            "default",
            "-o",
            "jsonpath={.spec.credentials.secretRef.name}",
        ])
        .await;
    assert_eq!(named, "theirs");
    plinth
        .kubectl_ok(&["delete", "nopresource", "first", "--wait", WAIT])
        .await;
    plinth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nop_provider_serves_only_its_kinds() {
    let mut plinth = Plinth::start().await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Healthy", "provider/nop", WAIT])
        .await;
    let kinds = plinth
        .kubectl_ok(&["get", "provider", "nop", "-o", "jsonpath={.status.kinds}"])
        .await;
    assert_eq!(kinds, r#"["NopResource.nop.plinth.dev"]"#);
    let crds = plinth.kubectl_ok(&["get", "crd", "-o", "name"]).await;
    assert!(crds.contains("nopresources.nop.plinth.dev"), "{crds}");
    assert!(
        crds.contains("databases.postgres.local.plinth.dev"),
        "{crds}"
    );
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            "apiVersion: nop.plinth.dev/v1alpha1\nkind: ProviderConfig\nmetadata:\n  name: default\nspec: {}\n---\napiVersion: nop.plinth.dev/v1alpha1\nkind: NopResource\nmetadata:\n  name: n1\nspec:\n  forProvider:\n    readyAfterSeconds: 1\n  writeConnectionSecretToRef:\n    name: n1-conn\n    namespace: default\n",
        )
        .await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Ready", "nopresource/n1", WAIT])
        .await;
    let endpoint = plinth.secret_value("default", "n1-conn", "endpoint").await;
    assert_eq!(endpoint, "nop://n1");
    plinth
        .kubectl_ok(&["delete", "nopresource", "n1", "--wait", WAIT])
        .await;
    plinth.stop().await;
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM.
struct Pki {
    ca: String,
    server: (String, String),
    client: (String, String),
}

fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
        SanType,
    };
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::default();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.clone().self_signed(&ca_key).expect("CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |server: bool| {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        if server {
            params.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().expect("ip"))];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        } else {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        let cert = params.signed_by(&key, &issuer).expect("leaf");
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca: ca.pem(),
        server: leaf(true),
        client: leaf(false),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_provider_over_mtls() {
    let pki = pki();
    let tls = tempfile::tempdir().expect("tls dir");
    std::fs::write(tls.path().join("ca.crt"), &pki.ca).expect("write");
    std::fs::write(tls.path().join("tls.crt"), &pki.server.0).expect("write");
    std::fs::write(tls.path().join("tls.key"), &pki.server.1).expect("write");
    let nop = support::plinth_bin().with_file_name("plinth-provider-nop");
    let mut remote = tokio::process::Command::new(&nop)
        .env("PLINTH_PROVIDER_LISTEN", "127.0.0.1:0")
        .env("PLINTH_PROVIDER_TLS_DIR", tls.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the remote nop provider");
    let stdout = remote.stdout.take().expect("stdout");
    use tokio::io::AsyncBufReadExt;
    let line = tokio::io::BufReader::new(stdout)
        .lines()
        .next_line()
        .await
        .expect("read")
        .expect("handshake line");
    let endpoint = line.split('|').nth(3).expect("address").to_string();

    let mut plinth = Plinth::start_with(&["--no-bundled-providers"]).await;
    let certs = plinth.dir.path().join("certs");
    std::fs::create_dir_all(&certs).expect("certs dir");
    for (file, body) in [
        ("ca.crt", &pki.ca),
        ("tls.crt", &pki.client.0),
        ("tls.key", &pki.client.1),
    ] {
        std::fs::write(certs.join(file), body).expect("write");
    }
    let from = |file: &str| format!("--from-file={}", certs.join(file).display());
    plinth
        .kubectl_ok(&[
            "-n",
            "plinth-system",
            "create",
            "secret",
            "generic",
            "remote-ca",
            &from("ca.crt"),
        ])
        .await;
    plinth
        .kubectl_ok(&[
            "-n",
            "plinth-system",
            "create",
            "secret",
            "generic",
            "remote-client",
            &from("tls.crt"),
            &from("tls.key"),
        ])
        .await;
    let provider = format!(
        "apiVersion: pkg.plinth.dev/v1\nkind: Provider\nmetadata:\n  name: remote-nop\nspec:\n  endpoint: \"{endpoint}\"\n  tls:\n    caSecretRef:\n      namespace: plinth-system\n      name: remote-ca\n    clientSecretRef:\n      namespace: plinth-system\n      name: remote-client\n"
    );
    plinth.apply_ok(&["apply", "-f", "-"], &provider).await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Healthy",
            "provider/remote-nop",
            WAIT,
        ])
        .await;
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            "apiVersion: nop.plinth.dev/v1alpha1\nkind: ProviderConfig\nmetadata:\n  name: default\nspec: {}\n---\napiVersion: nop.plinth.dev/v1alpha1\nkind: NopResource\nmetadata:\n  name: far\nspec:\n  forProvider: {}\n",
        )
        .await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Ready", "nopresource/far", WAIT])
        .await;

    // Without a client certificate the provider refuses the connection.
    let tls_only_ca = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(pki.ca.clone()))
        .domain_name("127.0.0.1");
    let refused = match provider_sdk::client::connect_remote(&endpoint, tls_only_ca).await {
        Err(_) => true,
        Ok(channel) => provider_sdk::pb::provider_client::ProviderClient::new(channel)
            .get_schema(provider_sdk::pb::GetSchemaRequest {})
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate must be refused");
    plinth.stop().await;
    let _ = remote.kill().await;
}

/// Command lines of the running processes whose arguments include `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .filter(|cmdline| cmdline.split_whitespace().any(|arg| arg == needle))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_takes_the_supervised_processes_with_it() {
    let mut plinth = Plinth::start().await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Healthy", "provider/local", WAIT])
        .await;
    // An argument no other process on the machine has.
    let seconds = format!("{}.{}", 7000 + std::process::id() % 1000, plinth.port);
    let instance = format!(
        "apiVersion: compute.local.plinth.dev/v1alpha1\nkind: Instance\nmetadata:\n  name: sleeper\nspec:\n  forProvider:\n    command: sleep\n    args: [\"{seconds}\"]\n    port: 18191\n"
    );
    plinth.apply_ok(&["apply", "-f", "-"], &instance).await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            "instances.compute.local.plinth.dev/sleeper",
            WAIT,
        ])
        .await;
    assert_eq!(processes_with(&seconds).len(), 1, "the Instance runs");
    // SIGTERM to plinth up: it stops the local provider with SIGTERM, which
    // stops what it supervises, rather than orphaning it.
    plinth.stop().await;
    eventually(
        Duration::from_secs(15),
        "the supervised process stopped",
        || async { processes_with(&seconds).is_empty() },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_cannot_start_is_not_installed_and_says_why() {
    let plinth = Plinth::start().await;
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            "apiVersion: pkg.plinth.dev/v1\nkind: Provider\nmetadata:\n  name: broken\nspec:\n  command: /nonexistent/plinth-provider-broken\n",
        )
        .await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Installed=False",
            "provider/broken",
            WAIT,
        ])
        .await;
    let message = plinth
        .kubectl_ok(&[
            "get",
            "provider",
            "broken",
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Installed")].message}"#,
        ])
        .await;
    assert!(
        message.contains("/nonexistent/plinth-provider-broken"),
        "{message}"
    );
    let wide = plinth
        .kubectl_ok(&["get", "provider", "broken", "-o", "wide"])
        .await;
    assert!(
        wide.contains("RESTARTS") && wide.contains("LAST-ERROR"),
        "{wide}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_config_is_held_from_first_use_even_without_its_secret() {
    let plinth = Plinth::start().await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Healthy", "provider/local", WAIT])
        .await;
    let config = "apiVersion: local.plinth.dev/v1alpha1\nkind: ProviderConfig\nmetadata:\n  name: nosecret\nspec:\n  credentials:\n    source: Secret\n    secretRef:\n      namespace: plinth-system\n      name: missing\n";
    plinth.apply_ok(&["apply", "-f", "-"], config).await;
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            &database("nosecret-db", "nosecret", ""),
        )
        .await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Synced=False",
            "databases/nosecret-db",
            WAIT,
        ])
        .await;
    let message = plinth
        .kubectl_ok(&[
            "get",
            "databases",
            "nosecret-db",
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Synced")].message}"#,
        ])
        .await;
    assert!(
        message.contains("plinth-system/missing") && message.contains("does not exist"),
        "{message}"
    );
    plinth
        .kubectl_ok(&[
            "delete",
            "providerconfigs.local.plinth.dev",
            "nosecret",
            "--wait=false",
        ])
        .await;
    let held = plinth
        .kubectl_ok(&[
            "get",
            "providerconfigs.local.plinth.dev",
            "nosecret",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}",
        ])
        .await;
    assert!(
        !held.trim().is_empty(),
        "the config waits for the resource using it"
    );
    plinth
        .kubectl_ok(&["delete", "databases", "nosecret-db", WAIT])
        .await;
    eventually(
        Duration::from_secs(30),
        "the config goes once unused",
        || async {
            let run = plinth
                .kubectl(&["get", "providerconfigs.local.plinth.dev", "nosecret"])
                .await;
            !run.ok && run.stderr.contains("NotFound")
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_provider_from_another_ca_is_refused_with_a_clear_reason() {
    let (ours, theirs) = (pki(), pki());
    let tls = tempfile::tempdir().expect("tls dir");
    std::fs::write(tls.path().join("ca.crt"), &ours.ca).expect("write");
    std::fs::write(tls.path().join("tls.crt"), &ours.server.0).expect("write");
    std::fs::write(tls.path().join("tls.key"), &ours.server.1).expect("write");
    let nop = support::plinth_bin().with_file_name("plinth-provider-nop");
    let mut remote = tokio::process::Command::new(&nop)
        .env("PLINTH_PROVIDER_LISTEN", "127.0.0.1:0")
        .env("PLINTH_PROVIDER_TLS_DIR", tls.path())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the remote nop provider");
    use tokio::io::AsyncBufReadExt;
    let line = tokio::io::BufReader::new(remote.stdout.take().expect("stdout"))
        .lines()
        .next_line()
        .await
        .expect("read")
        .expect("handshake line");
    let endpoint = line.split('|').nth(3).expect("address").to_string();

    let plinth = Plinth::start_with(&["--no-bundled-providers"]).await;
    let certs = plinth.dir.path().join("certs");
    std::fs::create_dir_all(&certs).expect("certs dir");
    let secret = |name: &str, files: &[(&str, &str)]| {
        let mut args = vec![
            "-n".to_string(),
            "plinth-system".into(),
            "create".into(),
            "secret".into(),
            "generic".into(),
            name.to_string(),
        ];
        for (file, body) in files {
            let path = certs.join(format!("{name}-{file}"));
            std::fs::write(&path, body).expect("write");
            args.push(format!("--from-file={file}={}", path.display()));
        }
        args
    };
    for args in [
        secret("their-ca", &[("ca.crt", &theirs.ca)]),
        secret("our-ca", &[("ca.crt", &ours.ca)]),
        secret(
            "our-client",
            &[("tls.crt", &ours.client.0), ("tls.key", &ours.client.1)],
        ),
        secret(
            "their-client",
            &[("tls.crt", &theirs.client.0), ("tls.key", &theirs.client.1)],
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        plinth.kubectl_ok(&args).await;
    }
    let provider = |name: &str, ca: &str, client: &str| {
        format!("apiVersion: pkg.plinth.dev/v1\nkind: Provider\nmetadata:\n  name: {name}\nspec:\n  endpoint: \"{endpoint}\"\n  tls:\n    caSecretRef:\n      namespace: plinth-system\n      name: {ca}\n    clientSecretRef:\n      namespace: plinth-system\n      name: {client}\n")
    };
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            &provider("unknown-server", "their-ca", "our-client"),
        )
        .await;
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            &provider("unknown-client", "our-ca", "their-client"),
        )
        .await;
    for (name, want) in [
        (
            "unknown-server",
            "the provider's certificate is not signed by the CA in spec.tls.caSecretRef",
        ),
        (
            "unknown-client",
            "the provider refused the client certificate in spec.tls.clientSecretRef",
        ),
    ] {
        eventually(Duration::from_secs(30), want, || async {
            let message = plinth
                .kubectl(&[
                    "get",
                    "provider",
                    name,
                    "-o",
                    "jsonpath={.status.conditions[?(@.type=='Healthy')].message}",
                ])
                .await
                .stdout;
            message.contains(want)
        })
        .await;
        let status = plinth
            .kubectl_ok(&[
                "get",
                "provider",
                name,
                "-o",
                "jsonpath={.status.conditions[?(@.type=='Healthy')].status}",
            ])
            .await;
        assert_eq!(status, "False", "{name}");
    }
    let _ = remote.kill().await;
}
